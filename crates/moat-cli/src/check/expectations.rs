//! Expectations of a script, read from a sidecar `SCRIPT.check.toml` or
//! from an entry of a manifest, with every problem reported as
//! `FILE:LINE: message`.

mod sources;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use moat_policy::HumanDuration;
use moat_runtime::WORKSPACE_GUEST_PATH;
use serde::Deserialize;
use toml::Spanned;

use super::violations::ViolationKind;
use sources::read_source;

/// A script's expectations, checked and ready to apply. The default is
/// what a script without expectations gets: exit code 0 and nothing else.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// The file (`FILE` or `FILE:LINE`) they were written in, or `None` for
    /// the defaults of a script without expectations.
    pub origin: Option<String>,
    /// Bytes given to the script on standard input.
    pub stdin: Vec<u8>,
    /// Files placed in `/workspace` before the run.
    pub inputs: Vec<InputFile>,
    /// The exit status the script must end with, as a process would report
    /// it: `sys.exit(n)` and `process.exit(n)` count as `n` modulo 256.
    pub exit_code: u8,
    /// The required standard output, if any.
    pub stdout: Option<ContentMatch>,
    /// Files the script must leave in `/workspace`.
    pub outputs: Vec<OutputFile>,
    /// Maximum run time, instantiation excluded.
    pub max_duration: Option<Duration>,
    /// Violations the script is expected to commit.
    pub violations: BTreeSet<ViolationKind>,
    /// Host files read for `stdin_file` and each input's `source`, by their
    /// canonical paths.
    pub source_files: Vec<PathBuf>,
}

/// A file placed in `/workspace` before the run.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// Path inside `/workspace`, `/`-separated, with no `.` or `..`.
    pub path: String,
    /// The file's bytes.
    pub contents: Vec<u8>,
}

/// A file the script must produce in `/workspace`.
#[derive(Debug, Clone)]
pub struct OutputFile {
    /// Path inside `/workspace`, `/`-separated, with no `.` or `..`.
    pub path: String,
    /// The required contents. `None` requires only that the file exists.
    pub content: Option<ContentMatch>,
}

/// Exact text, or a regular expression that must match somewhere in the
/// text. `^` and `$` match at line boundaries; `\A` and `\z` anchor the
/// whole text.
#[derive(Debug, Clone)]
pub enum ContentMatch {
    /// The bytes must equal this text.
    Exact(String),
    /// The regular expression must find a match.
    Regex(regex::bytes::Regex),
}

impl fmt::Display for ContentMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentMatch::Exact(text) => write!(f, "{text:?}"),
            ContentMatch::Regex(regex) => write!(f, "/{}/", regex.as_str()),
        }
    }
}

/// Upper bound on the size of a regular expression once compiled; a
/// pattern above it is rejected as a configuration error.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A sidecar file, or one `[[script]]` entry of a manifest, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectations {
    path: Option<Spanned<String>>,
    stdin: Option<Spanned<String>>,
    stdin_file: Option<Spanned<String>>,
    #[serde(default)]
    input: Vec<Spanned<RawInput>>,
    exit_code: Option<Spanned<i64>>,
    stdout: Option<Spanned<String>>,
    stdout_regex: Option<Spanned<String>>,
    #[serde(default)]
    output: Vec<Spanned<RawOutput>>,
    max_duration: Option<Spanned<HumanDuration>>,
    #[serde(default)]
    violations: Vec<Spanned<ViolationKind>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    path: Spanned<String>,
    text: Option<String>,
    source: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    path: Spanned<String>,
    text: Option<Spanned<String>>,
    regex: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    script: Vec<Spanned<RawExpectations>>,
}

/// One `[[script]]` entry of a manifest.
#[derive(Debug)]
pub struct ManifestEntry {
    /// The script, resolved against the manifest's directory.
    pub script: PathBuf,
    /// Location of the entry's start, as `FILE:LINE`.
    pub location: String,
    /// The entry's expectations.
    pub expectations: Expectations,
}

/// A file of expectations being read: its path and text, to place problems.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    /// Returns the directory that relative paths in the file are resolved
    /// against.
    fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }

    /// `FILE:LINE` of byte offset `offset`.
    fn location(&self, offset: usize) -> String {
        format!("{}:{}", self.path.display(), self.line(offset))
    }

    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count()
            + 1
    }

    /// Builds an error at byte offset `offset`.
    fn error(&self, offset: usize, message: impl fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("{}: {message}", self.location(offset))
    }

    /// Builds the error for a TOML syntax or type error, placed at its line
    /// and column.
    fn toml_error(&self, error: &toml::de::Error) -> anyhow::Error {
        let message = error.message().trim_end();
        match error.span() {
            Some(span) => {
                let start = span.start.min(self.text.len());
                let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
                let column = self.text[line_start..start].chars().count() + 1;
                anyhow::anyhow!(
                    "{}:{}:{column}: {message}",
                    self.path.display(),
                    self.line(start)
                )
            }
            None => anyhow::anyhow!("{}: {message}", self.path.display()),
        }
    }
}

/// Reads the sidecar at `path`, which contains the expectations of the
/// script it is named after.
pub fn read_sidecar(path: &Path) -> anyhow::Result<Expectations> {
    let text = read_text(path)?;
    let source = Source { path, text: &text };
    let raw: RawExpectations = toml::from_str(&text).map_err(|error| source.toml_error(&error))?;
    if let Some(script) = &raw.path {
        return Err(source.error(
            script.span().start,
            "`path` belongs in manifest entries; a sidecar applies to the script it is \
             named after, so remove this key",
        ));
    }
    let mut expectations = validate(&source, raw)?;
    expectations.origin = Some(path.display().to_string());
    Ok(expectations)
}

/// Reads the manifest at `path`: a `[[script]]` entry for each script, whose
/// `path` is relative to the manifest's directory.
pub fn read_manifest(path: &Path) -> anyhow::Result<Vec<ManifestEntry>> {
    let text = read_text(path)?;
    let source = Source { path, text: &text };
    let raw: RawManifest = toml::from_str(&text).map_err(|error| source.toml_error(&error))?;

    let mut entries = Vec::new();
    for entry in raw.script {
        let start = entry.span().start;
        let mut raw = entry.into_inner();
        let Some(script) = raw.path.take() else {
            return Err(source.error(
                start,
                "this [[script]] entry has no `path`; add the script's path, relative to \
                 the manifest",
            ));
        };
        let location = source.location(start);
        let mut expectations = validate(&source, raw)?;
        expectations.origin = Some(location.clone());
        entries.push(ManifestEntry {
            script: source.base_dir().join(script.get_ref()),
            location,
            expectations,
        });
    }
    Ok(entries)
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|error| anyhow::anyhow!("failed to read {}: {error}", path.display()))?;
    String::from_utf8(bytes).map_err(|error| {
        anyhow::anyhow!(
            "{} is not valid UTF-8 (invalid byte at offset {})",
            path.display(),
            error.utf8_error().valid_up_to()
        )
    })
}

/// Checks what serde could not: exclusive keys, paths, value ranges, regular
/// expressions and input sources, which are read now.
fn validate(source: &Source<'_>, raw: RawExpectations) -> anyhow::Result<Expectations> {
    let mut source_files = Vec::new();
    let stdin = match (raw.stdin, raw.stdin_file) {
        (Some(_), Some(file)) => {
            return Err(source.error(
                file.span().start,
                "`stdin` and `stdin_file` are both set; keep one",
            ));
        }
        (Some(text), None) => text.into_inner().into_bytes(),
        (None, Some(file)) => read_source(source, "stdin_file", &file, &mut source_files)?,
        (None, None) => Vec::new(),
    };

    let mut inputs: Vec<InputFile> = Vec::new();
    for entry in raw.input {
        let start = entry.span().start;
        let input = entry.into_inner();
        let path = workspace_path(source, &input.path)?;
        let contents = match (input.text, input.source) {
            (Some(text), None) => text.into_bytes(),
            (None, Some(file)) => read_source(source, "source", &file, &mut source_files)?,
            (Some(_), Some(file)) => {
                return Err(source.error(
                    file.span().start,
                    "an [[input]] has both `text` and `source`; keep one",
                ));
            }
            (None, None) => {
                return Err(source.error(
                    start,
                    "an [[input]] needs `text` (the contents) or `source` (a file, relative \
                     to this file)",
                ));
            }
        };
        if let Some(clash) = inputs.iter().find(|other| paths_clash(&other.path, &path)) {
            return Err(source.error(
                input.path.span().start,
                format!(
                    "input {path:?} clashes with input {:?}: one cannot be both a file and \
                     a directory, or be written twice",
                    clash.path
                ),
            ));
        }
        inputs.push(InputFile { path, contents });
    }

    let stdout = match (raw.stdout, raw.stdout_regex) {
        (Some(_), Some(regex)) => {
            return Err(source.error(
                regex.span().start,
                "`stdout` and `stdout_regex` are both set; keep one",
            ));
        }
        (Some(text), None) => Some(ContentMatch::Exact(text.into_inner())),
        (None, Some(regex)) => Some(compile_regex(source, "stdout_regex", &regex)?),
        (None, None) => None,
    };

    let mut outputs: Vec<OutputFile> = Vec::new();
    for entry in raw.output {
        let output = entry.into_inner();
        let path = workspace_path(source, &output.path)?;
        let content = match (output.text, output.regex) {
            (Some(_), Some(regex)) => {
                return Err(source.error(
                    regex.span().start,
                    "an [[output]] has both `text` and `regex`; keep one",
                ));
            }
            (Some(text), None) => Some(ContentMatch::Exact(text.into_inner())),
            (None, Some(regex)) => Some(compile_regex(source, "regex", &regex)?),
            (None, None) => None,
        };
        if outputs.iter().any(|other| other.path == path) {
            return Err(source.error(
                output.path.span().start,
                format!("output {path:?} is listed twice"),
            ));
        }
        outputs.push(OutputFile { path, content });
    }

    let mut violations = BTreeSet::new();
    for kind in raw.violations {
        if !violations.insert(*kind.get_ref()) {
            return Err(source.error(
                kind.span().start,
                format!("violation {:?} is listed twice", kind.get_ref().name()),
            ));
        }
    }

    let exit_code = match raw.exit_code {
        None => 0,
        Some(code) => u8::try_from(*code.get_ref()).map_err(|_| {
            source.error(
                code.span().start,
                format!(
                    "invalid `exit_code` {}: an exit status is 0 to 255, and a script's \
                     sys.exit(n) or process.exit(n) counts as n modulo 256, as for a \
                     process; write the status, such as 255 for -1",
                    code.get_ref()
                ),
            )
        })?,
    };

    let max_duration = match raw.max_duration {
        None => None,
        Some(max) if max.get_ref().0.is_zero() => {
            return Err(source.error(
                max.span().start,
                "invalid `max_duration`: it must be longer than zero; write a duration such \
                 as \"500ms\" or \"2s\", or remove the key",
            ));
        }
        Some(max) => Some(max.into_inner().0),
    };

    Ok(Expectations {
        origin: None,
        stdin,
        inputs,
        exit_code,
        stdout,
        outputs,
        max_duration,
        violations,
        source_files,
    })
}

fn compile_regex(
    source: &Source<'_>,
    key: &str,
    pattern: &Spanned<String>,
) -> anyhow::Result<ContentMatch> {
    regex::bytes::RegexBuilder::new(pattern.get_ref())
        .multi_line(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(ContentMatch::Regex)
        .map_err(|error| source.error(pattern.span().start, format!("invalid `{key}`: {error}")))
}

/// Checks a path inside `/workspace` and returns it relative, without the
/// optional `/workspace/` prefix.
fn workspace_path(source: &Source<'_>, path: &Spanned<String>) -> anyhow::Result<String> {
    let prefix = format!("{WORKSPACE_GUEST_PATH}/");
    let relative = path
        .get_ref()
        .strip_prefix(&prefix)
        .unwrap_or(path.get_ref());
    let problem = if relative.is_empty() {
        Some("it is empty")
    } else if relative.starts_with('/') {
        Some("it is absolute and not under /workspace")
    } else if relative.contains('\\') || relative.contains('\0') {
        Some("it contains a backslash or a NUL byte")
    } else if relative
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        Some("it has an empty, `.` or `..` component")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(source.error(
            path.span().start,
            format!(
                "invalid workspace path {:?}: {problem}; write a relative path such as \
                 \"data/input.csv\"",
                path.get_ref()
            ),
        )),
        None => Ok(relative.to_owned()),
    }
}

/// Returns whether two workspace paths are the same file or one is a
/// directory of the other.
fn paths_clash(a: &str, b: &str) -> bool {
    let nested = |outer: &str, inner: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    a == b || nested(a, b) || nested(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write the test file");
        path
    }

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().expect("create a temporary directory")
    }

    #[test]
    fn sidecar_with_every_key() {
        let dir = tempdir();
        write(dir.path(), "rows.csv", "a,b\n");
        let path = write(
            dir.path(),
            "x.py.check.toml",
            r#"
stdin = "hello"
exit_code = 3
stdout_regex = '^total: \d+$'
max_duration = "2s"
violations = ["egress_denied"]

[[input]]
path = "data/rows.csv"
source = "rows.csv"

[[input]]
path = "/workspace/notes.txt"
text = "n"

[[output]]
path = "report.txt"
text = "done\n"
"#,
        );
        let expectations = read_sidecar(&path).expect("valid sidecar");
        assert_eq!(expectations.stdin, b"hello");
        assert_eq!(expectations.exit_code, 3);
        assert_eq!(expectations.max_duration, Some(Duration::from_secs(2)));
        assert_eq!(expectations.inputs[0].path, "data/rows.csv");
        assert_eq!(expectations.inputs[0].contents, b"a,b\n");
        assert_eq!(expectations.inputs[1].path, "notes.txt");
        assert_eq!(expectations.outputs[0].path, "report.txt");
        assert!(
            expectations
                .violations
                .contains(&ViolationKind::EgressDenied)
        );
        let Some(ContentMatch::Regex(regex)) = &expectations.stdout else {
            panic!("expected a regex: {:?}", expectations.stdout);
        };
        assert!(regex.is_match(b"rows\ntotal: 12\n"));
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let dir = tempdir();
        let path = write(
            dir.path(),
            "x.py.check.toml",
            "exit_code = 0\nstdot = \"x\"\n",
        );
        let error = read_sidecar(&path).expect_err("unknown key").to_string();
        assert!(error.contains("x.py.check.toml:2:1:"), "{error}");
        assert!(error.contains("stdot"), "{error}");
    }

    #[test]
    fn unknown_violation_is_rejected() {
        let dir = tempdir();
        let path = write(
            dir.path(),
            "x.py.check.toml",
            "violations = [\"segfault\"]\n",
        );
        let error = read_sidecar(&path)
            .expect_err("unknown violation")
            .to_string();
        assert!(error.contains(":1:"), "{error}");
        assert!(error.contains("segfault"), "{error}");
    }

    #[test]
    fn exclusive_keys_are_rejected() {
        let dir = tempdir();
        let path = write(
            dir.path(),
            "x.py.check.toml",
            "stdout = \"a\"\n\nstdout_regex = \"b\"\n",
        );
        let error = read_sidecar(&path).expect_err("both set").to_string();
        assert!(error.contains("x.py.check.toml:3:"), "{error}");
    }

    #[test]
    fn escaping_input_path_is_rejected() {
        let dir = tempdir();
        let path = write(
            dir.path(),
            "x.py.check.toml",
            "[[input]]\npath = \"../etc/passwd\"\ntext = \"x\"\n",
        );
        let error = read_sidecar(&path).expect_err("escape").to_string();
        assert!(error.contains(":2:"), "{error}");
        assert!(error.contains("`..`"), "{error}");
    }

    #[test]
    fn clashing_inputs_are_rejected() {
        let dir = tempdir();
        let path = write(
            dir.path(),
            "x.py.check.toml",
            "[[input]]\npath = \"a\"\ntext = \"x\"\n[[input]]\npath = \"a/b\"\ntext = \"y\"\n",
        );
        let error = read_sidecar(&path).expect_err("clash").to_string();
        assert!(error.contains("clashes"), "{error}");
    }

    #[test]
    fn invalid_regex_names_line() {
        let dir = tempdir();
        let path = write(dir.path(), "x.py.check.toml", "\nstdout_regex = \"(\"\n");
        let error = read_sidecar(&path).expect_err("bad regex").to_string();
        assert!(error.contains("x.py.check.toml:2:"), "{error}");
        assert!(error.contains("invalid `stdout_regex`"), "{error}");
    }

    #[test]
    fn missing_source_names_line() {
        let dir = tempdir();
        let path = write(dir.path(), "x.py.check.toml", "stdin_file = \"nope.txt\"\n");
        let error = read_sidecar(&path).expect_err("missing source").to_string();
        assert!(error.contains(":1:"), "{error}");
        assert!(error.contains("nope.txt"), "{error}");
    }

    #[test]
    fn zero_max_duration_is_rejected() {
        let dir = tempdir();
        let path = write(
            dir.path(),
            "x.py.check.toml",
            "exit_code = 0\nmax_duration = \"0s\"\n",
        );
        let error = read_sidecar(&path).expect_err("zero").to_string();
        assert!(
            error.contains("x.py.check.toml:2: invalid `max_duration`"),
            "{error}"
        );
        assert!(error.contains("longer than zero"), "{error}");
    }

    #[test]
    fn exit_code_outside_status_range_is_rejected() {
        let dir = tempdir();
        for value in ["-1", "256", "9999999999"] {
            let path = write(
                dir.path(),
                "x.py.check.toml",
                &format!("\nexit_code = {value}\n"),
            );
            let error = read_sidecar(&path).expect_err(value).to_string();
            assert!(
                error.contains(&format!("x.py.check.toml:2: invalid `exit_code` {value}")),
                "{error}"
            );
            assert!(error.contains("0 to 255"), "{error}");
        }
        for (value, expected) in [("0", 0), ("255", 255)] {
            let path = write(
                dir.path(),
                "x.py.check.toml",
                &format!("exit_code = {value}\n"),
            );
            let expectations = read_sidecar(&path).expect(value);
            assert_eq!(expectations.exit_code, expected);
        }
    }

    #[test]
    fn sidecar_rejects_path() {
        let dir = tempdir();
        let path = write(dir.path(), "x.py.check.toml", "path = \"y.py\"\n");
        let error = read_sidecar(&path).expect_err("path key").to_string();
        assert!(error.contains("manifest entries"), "{error}");
    }

    #[test]
    fn manifest_entries_resolve_against_directory() {
        let dir = tempdir();
        let path = write(
            dir.path(),
            "moat-check.toml",
            "[[script]]\npath = \"a.py\"\n\n[[script]]\npath = \"sub/b.js\"\nexit_code = 2\n",
        );
        let entries = read_manifest(&path).expect("valid manifest");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].script, dir.path().join("a.py"));
        assert_eq!(entries[1].script, dir.path().join("sub/b.js"));
        assert_eq!(entries[1].expectations.exit_code, 2);
        assert!(entries[1].location.ends_with("moat-check.toml:4"));
    }

    #[test]
    fn manifest_entry_needs_path() {
        let dir = tempdir();
        let path = write(dir.path(), "moat-check.toml", "[[script]]\nexit_code = 1\n");
        let error = read_manifest(&path).expect_err("no path").to_string();
        assert!(error.contains("moat-check.toml:1:"), "{error}");
    }

    #[test]
    fn manifest_unknown_top_level_key() {
        let dir = tempdir();
        let path = write(dir.path(), "moat-check.toml", "\n\n[scripts]\n");
        let error = read_manifest(&path).expect_err("unknown table").to_string();
        assert!(error.contains("moat-check.toml:3:"), "{error}");
        assert!(error.contains("scripts"), "{error}");
    }
}
