//! The languages moat runs, and how each maps to its guest component.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A language with an interpreter guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// CPython, packaged with componentize-py.
    Python,
    /// QuickJS, through the rquickjs crate.
    JavaScript,
}

impl Language {
    /// Every language, in a stable order.
    pub const ALL: [Language; 2] = [Language::Python, Language::JavaScript];

    /// Lowercase name, as used on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::JavaScript => "javascript",
        }
    }

    /// File name of the guest component inside the guest directory.
    pub fn component_file(self) -> &'static str {
        match self {
            Language::Python => "python.wasm",
            Language::JavaScript => "javascript.wasm",
        }
    }

    /// The language of a source file with extension `extension` (without
    /// the dot), if moat runs it.
    pub fn from_extension(extension: &str) -> Option<Language> {
        match extension {
            "py" => Some(Language::Python),
            "js" | "mjs" => Some(Language::JavaScript),
            _ => None,
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a language name that moat does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown language {0:?}: expected python (py) or javascript (js)")]
pub struct UnknownLanguage(String);

impl FromStr for Language {
    type Err = UnknownLanguage;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.to_ascii_lowercase().as_str() {
            "python" | "py" => Ok(Language::Python),
            "javascript" | "js" => Ok(Language::JavaScript),
            _ => Err(UnknownLanguage(name.to_owned())),
        }
    }
}
