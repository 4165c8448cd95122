//! moat's policy files: what a guest may do, as a TOML file a risk team can
//! read, review and keep in version control.
//!
//! [`Policy::load`] parses and validates a file; every problem is reported
//! with the key it concerns and, where the key appears in the file, its
//! line. [`Policy::default`] is the built-in policy used when none is given:
//! no network, no host directories, a scratch workspace and moat's default
//! limits.

mod defaults;
mod explain;
mod host_check;
mod model;
mod units;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use model::{
    AccessMode, AuditSection, CaptureLevel, DirRule, EgressRule, LimitValues, LimitsSection,
    Policy, PythonSection, Scheme, SecretRule, SessionsSection,
};
pub use units::{ByteSize, HumanDuration, parse_bytes, parse_duration};

pub use defaults::{
    BUILTIN_FUEL, BUILTIN_MAX_SESSIONS, BUILTIN_MEMORY_BYTES, BUILTIN_SESSION_IDLE_TIMEOUT,
    BUILTIN_SESSION_MAX_LIFETIME, BUILTIN_STDERR_BYTES, BUILTIN_STDOUT_BYTES, BUILTIN_TIMEOUT,
    DEFAULT_EGRESS_METHODS, EffectiveLimits, MAX_MEMORY_BYTES, WORKSPACE_GUEST_PATH,
};
pub use explain::{explain, explain_json};

/// The list of modules baked into the Python guest, one a line, as the guest
/// build reads it.
const BAKED_MODULES_FILE: &str = include_str!("../../../guest-runtimes/python/modules.txt");

/// Modules baked into the Python guest, in file order.
pub static BAKED_PYTHON_MODULES: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| {
        BAKED_MODULES_FILE
            .lines()
            .map(|line| line.split('#').next().unwrap_or("").trim())
            .filter(|name| !name.is_empty())
            .collect()
    });

/// One thing wrong with a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path, such as `egress[1].host`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// A problem placed in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedProblem {
    /// The problem.
    pub problem: Problem,
    /// 1-based line of the key in the file, when found.
    pub line: Option<usize>,
}

/// Why a policy could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("failed to read policy file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has an unknown key or a value of the
    /// wrong type. The message includes the line and column.
    #[error("invalid policy file {path}:\n{message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line, the column and the text.
        message: String,
    },
    /// The file parses but breaks a rule.
    #[error("invalid policy file {path}:\n{}", render_problems(problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<LocatedProblem>,
    },
}

fn render_problems(problems: &[LocatedProblem]) -> String {
    let mut text = String::new();
    for located in problems {
        let line = match located.line {
            Some(line) => format!("line {line}: "),
            None => String::new(),
        };
        text.push_str(&format!(
            "  {line}{}: {}\n",
            located.problem.path, located.problem.message
        ));
    }
    text.trim_end().to_owned()
}

/// A policy together with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    /// The parsed, validated policy with relative host paths made absolute.
    pub policy: Policy,
    /// The file, or `None` for the built-in default.
    pub path: Option<PathBuf>,
    /// SHA-256 of the file's bytes in hex, or of the empty string for the
    /// built-in default. Identifies the exact policy in audit records.
    pub sha256: String,
    /// The file's text (empty for the built-in default), kept so that the
    /// audit trail can store every policy its records name.
    pub text: String,
}

impl LoadedPolicy {
    /// The built-in policy: no network, no host directories, default limits.
    pub fn builtin() -> Self {
        LoadedPolicy {
            policy: Policy::default(),
            path: None,
            sha256: sha256_hex(b""),
            text: String::new(),
        }
    }

    /// Parses and validates policy text that is not in a file, such as a
    /// policy embedded in the binary; `origin` names it in messages and
    /// relative host paths resolve against the working directory.
    pub fn from_text(text: &str, origin: &Path) -> Result<Self, PolicyError> {
        Ok(LoadedPolicy {
            policy: Policy::parse(text, origin)?,
            path: None,
            sha256: sha256_hex(text.as_bytes()),
            text: text.to_owned(),
        })
    }
}

impl Policy {
    /// Reads, parses and validates the policy at `path`. Relative host paths
    /// in `filesystem` and `secrets` are resolved against the file's
    /// directory.
    pub fn load(path: &Path) -> Result<LoadedPolicy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut policy = Policy::parse(&text, path)?;

        // Resolve against the file's directory made absolute, so the grants
        // stay right whatever the working directory is when they are used.
        let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = std::path::absolute(&parent).unwrap_or(parent);
        let absolute = |value: &str| -> String {
            let candidate = Path::new(value);
            match candidate.is_absolute() {
                true => value.to_owned(),
                false => base.join(candidate).display().to_string(),
            }
        };
        for rule in &mut policy.filesystem {
            rule.host = absolute(&rule.host);
        }
        for secret in &mut policy.secrets {
            if let Some(file) = &secret.file {
                secret.file = Some(absolute(file));
            }
        }

        Ok(LoadedPolicy {
            policy,
            path: Some(path.to_path_buf()),
            sha256: sha256_hex(text.as_bytes()),
            text,
        })
    }

    /// Parses and validates policy text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|error| PolicyError::Syntax {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;

        let problems = validate::check(&policy);
        if problems.is_empty() {
            return Ok(policy);
        }
        let located = problems
            .into_iter()
            .map(|problem| {
                let line = line_of(text, &problem.path);
                LocatedProblem { problem, line }
            })
            .collect();
        Err(PolicyError::Invalid {
            path: path.to_path_buf(),
            problems: located,
        })
    }

    /// The JSON Schema of the policy file, for editors.
    pub fn json_schema() -> serde_json::Value {
        let schema = schemars::schema_for!(Policy);
        serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
    }

    /// The egress rule named `name`.
    pub fn egress_rule(&self, name: &str) -> Option<&EgressRule> {
        self.egress.iter().find(|rule| rule.name == name)
    }
}

/// Finds the 1-based line of a key path such as `egress[1].host` by walking
/// the document with spans.
fn line_of(text: &str, path: &str) -> Option<usize> {
    let document = toml::de::DeTable::parse(text).ok()?;
    let mut span = document.span();
    let mut table = Some(document.get_ref());

    for segment in path.split('.') {
        let (key, index) = match segment.split_once('[') {
            Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let (_, value) = table?
            .iter()
            .find(|(name, _)| name.get_ref().as_ref() == key)?;
        span = value.span();
        let mut current = value.get_ref();
        if let Some(index) = index {
            let toml::de::DeValue::Array(items) = value.get_ref() else {
                break;
            };
            let item = items.get(index)?;
            span = item.span();
            current = item.get_ref();
        }
        table = match current {
            toml::de::DeValue::Table(inner) => Some(inner),
            _ => None,
        };
    }
    Some(text[..span.start.min(text.len())].matches('\n').count() + 1)
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl fmt::Display for AccessMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccessMode::Ro => "read-only",
            AccessMode::Rw => "read-write",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_policy_is_default() {
        assert_eq!(parse("").expect("empty is valid"), Policy::default());
    }

    #[test]
    fn unknown_key_names_line() {
        let error = parse("name = \"x\"\n[limits.default]\ntimeout = \"1s\"\nfuell = 5\n")
            .expect_err("unknown key");
        let text = error.to_string();
        assert!(text.contains("line 4"), "{text}");
        assert!(text.contains("fuell"), "{text}");
    }

    #[test]
    fn semantic_problem_names_line() {
        let text = "[[egress]]\nname = \"a\"\nhost = \"api.example.com\"\n\n[[egress]]\nname = \"b\"\nhost = \"*\"\n";
        let error = parse(text).expect_err("bad host");
        let PolicyError::Invalid { problems, .. } = &error else {
            panic!("expected Invalid, got {error:?}");
        };
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].problem.path, "egress[1].host");
        assert_eq!(problems[0].line, Some(7));
    }

    #[test]
    fn secret_must_reference_rule() {
        let text = "[[secrets]]\nname = \"key\"\nenv = \"KEY\"\nrule = \"nope\"\nheader = \"Authorization\"\n";
        let error = parse(text).expect_err("unknown rule").to_string();
        assert!(
            error.contains("line 4: secrets[0].rule: \"nope\" is not the name of an egress rule"),
            "{error}"
        );
    }

    #[test]
    fn unbaked_python_module_rejected() {
        let error = parse("[python]\nmodules = [\"json\", \"numpy\"]\n")
            .expect_err("numpy")
            .to_string();
        assert!(
            error.contains("python.modules[1]: \"numpy\" is not baked"),
            "{error}"
        );
    }

    #[test]
    fn baked_modules_include_json() {
        assert!(BAKED_PYTHON_MODULES.contains(&"json"));
        assert!(BAKED_PYTHON_MODULES.contains(&"sqlite3"));
    }

    #[test]
    fn default_above_max_rejected() {
        let error = parse("[limits.default]\ntimeout = \"60s\"\n[limits.max]\ntimeout = \"30s\"\n")
            .expect_err("default above max")
            .to_string();
        assert!(
            error.contains("limits.default.timeout: is above limits.max.timeout"),
            "{error}"
        );
    }
}
