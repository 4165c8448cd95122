//! Arguments and results of the tools, as JSON. Their doc comments become
//! the descriptions in the tools' input and output schemas, which a model
//! reads, so they say what each field means to the caller.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A language with an interpreter in the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LanguageName {
    /// CPython 3.14 with a fixed set of standard-library modules.
    Python,
    /// QuickJS (ES2023) with console, timers, promises and a Node-style `fs`.
    Javascript,
}

impl LanguageName {
    /// The name as JSON spells it.
    pub fn name(self) -> &'static str {
        match self {
            LanguageName::Python => "python",
            LanguageName::Javascript => "javascript",
        }
    }
}

impl From<LanguageName> for moat_runtime::Language {
    fn from(language: LanguageName) -> Self {
        match language {
            LanguageName::Python => moat_runtime::Language::Python,
            LanguageName::Javascript => moat_runtime::Language::JavaScript,
        }
    }
}

impl From<moat_runtime::Language> for LanguageName {
    fn from(language: moat_runtime::Language) -> Self {
        match language {
            moat_runtime::Language::Python => LanguageName::Python,
            moat_runtime::Language::JavaScript => LanguageName::Javascript,
        }
    }
}

/// How a file's `content` string is encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 text, as is.
    #[default]
    Text,
    /// Standard base64 (RFC 4648, with padding) of the raw bytes.
    Base64,
}

/// A file to place in `/workspace` before the code runs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputFile {
    /// Path relative to `/workspace`, such as `data/input.csv`. Parent
    /// directories are created. Absolute paths and `..` are rejected.
    pub path: String,
    /// The file's content, encoded according to `encoding`.
    pub content: String,
    /// `text` (default) or `base64` for binary content.
    #[serde(default)]
    pub encoding: Encoding,
}

/// Limits for one run. Each is optional; a value above the server's maximum
/// is lowered to that maximum, and the limits applied are in the result.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsRequest {
    /// Wall-clock limit in milliseconds.
    pub timeout_ms: Option<u64>,
    /// WebAssembly instructions the interpreter may execute (about 10^9 is
    /// one second of work).
    pub fuel: Option<u64>,
    /// Linear memory the interpreter may grow to, in bytes.
    pub memory_bytes: Option<u64>,
    /// Bytes of stdout kept; writing more ends the run.
    pub stdout_bytes: Option<u64>,
    /// Bytes of stderr kept; writing more ends the run.
    pub stderr_bytes: Option<u64>,
}

/// Arguments of `run_python` and `run_javascript`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunArgs {
    /// Source code to run. The value of the last expression is returned as
    /// `result`, as a notebook cell shows it.
    pub code: String,
    /// Session to run in, from `create_session`. Without it the code runs
    /// in a fresh interpreter with an empty `/workspace` that is deleted
    /// afterwards.
    pub session_id: Option<String>,
    /// Files to write into `/workspace` before the run.
    #[serde(default)]
    pub files: Vec<InputFile>,
    /// Limits for this run; omitted ones take the server's defaults.
    pub limits: Option<LimitsRequest>,
}

/// Arguments of `create_session`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionArgs {
    /// Language of the session's interpreter.
    pub language: LanguageName,
}

/// Arguments that name one session.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionArgs {
    /// The session's id, from `create_session` or `list_sessions`.
    pub session_id: String,
}

/// Arguments of `list_files`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListFilesArgs {
    /// The session's id.
    pub session_id: String,
    /// Directory to list, relative to `/workspace`; the whole workspace
    /// when omitted. Listing is recursive.
    pub path: Option<String>,
}

/// Arguments of `read_file`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadFileArgs {
    /// The session's id.
    pub session_id: String,
    /// File path relative to `/workspace`.
    pub path: String,
    /// `text` or `base64`; when omitted, text for valid UTF-8 and base64
    /// otherwise.
    pub encoding: Option<Encoding>,
}

/// Arguments of `write_file`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFileArgs {
    /// The session's id.
    pub session_id: String,
    /// File path relative to `/workspace`; parent directories are created
    /// and an existing file is replaced.
    pub path: String,
    /// The file's content, encoded according to `encoding`.
    pub content: String,
    /// `text` (default) or `base64` for binary content.
    #[serde(default)]
    pub encoding: Encoding,
}

/// Arguments of tools that take none.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The code ran to its end, or exited with status 0.
    Ok,
    /// An uncaught exception, a non-zero exit status, or an interpreter
    /// trap.
    Error,
    /// The wall-clock limit passed.
    Timeout,
    /// The instruction budget (fuel) ran out.
    FuelExhausted,
    /// The code asked for more memory than its limit.
    MemoryLimit,
    /// stdout or stderr passed its cap.
    OutputTruncated,
    /// The client cancelled the request, the session was closed, or the
    /// server shut down.
    Cancelled,
}

impl RunOutcome {
    /// The outcome's name as it appears in results.
    pub fn name(self) -> &'static str {
        match self {
            RunOutcome::Ok => "ok",
            RunOutcome::Error => "error",
            RunOutcome::Timeout => "timeout",
            RunOutcome::FuelExhausted => "fuel_exhausted",
            RunOutcome::MemoryLimit => "memory_limit",
            RunOutcome::OutputTruncated => "output_truncated",
            RunOutcome::Cancelled => "cancelled",
        }
    }
}

impl From<moat_runtime::Outcome> for RunOutcome {
    fn from(outcome: moat_runtime::Outcome) -> Self {
        match outcome {
            moat_runtime::Outcome::Ok => RunOutcome::Ok,
            moat_runtime::Outcome::Error => RunOutcome::Error,
            moat_runtime::Outcome::Timeout => RunOutcome::Timeout,
            moat_runtime::Outcome::FuelExhausted => RunOutcome::FuelExhausted,
            moat_runtime::Outcome::MemoryLimit => RunOutcome::MemoryLimit,
            moat_runtime::Outcome::OutputTruncated => RunOutcome::OutputTruncated,
        }
    }
}

/// An uncaught exception or trap.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ErrorInfo {
    /// Exception class or error name, such as `ZeroDivisionError`; `Trap`
    /// when the interpreter itself failed.
    pub name: String,
    /// The exception's message.
    pub message: String,
    /// Traceback or stack trace.
    pub stack: String,
}

/// The limits a run was given, after capping by the server's maxima.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub struct AppliedLimits {
    /// Wall-clock limit in milliseconds.
    pub timeout_ms: u64,
    /// Instruction budget.
    pub fuel: u64,
    /// Linear memory limit in bytes.
    pub memory_bytes: u64,
    /// stdout cap in bytes.
    pub stdout_bytes: u64,
    /// stderr cap in bytes.
    pub stderr_bytes: u64,
}

impl From<&moat_runtime::Limits> for AppliedLimits {
    fn from(limits: &moat_runtime::Limits) -> Self {
        AppliedLimits {
            timeout_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
            fuel: limits.fuel,
            memory_bytes: limits.memory_bytes,
            stdout_bytes: limits.stdout_bytes,
            stderr_bytes: limits.stderr_bytes,
        }
    }
}

/// How a file in `/workspace` changed during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// The file did not exist before the run.
    Created,
    /// The file's size or modification time changed.
    Modified,
    /// The file existed before the run and is gone.
    Deleted,
}

/// A file the run created, changed or deleted in `/workspace`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileChange {
    /// Path relative to `/workspace`.
    pub path: String,
    /// What happened to it.
    pub change: Change,
    /// Size after the run, in bytes (0 when deleted).
    pub size_bytes: u64,
    /// For runs without a session, whose workspace is deleted afterwards:
    /// the file's content (when it fits the server's file size cap),
    /// encoded according to `encoding`. Otherwise null; read it with
    /// `read_file`.
    pub content: Option<String>,
    /// `text` or `base64` when `content` is set.
    pub encoding: Option<Encoding>,
}

/// The result of `run_python` or `run_javascript`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RunResult {
    /// How the run ended: `ok`, `error`, or the limit that stopped it.
    pub outcome: RunOutcome,
    /// Exit status: 0 ok, 1 after an uncaught exception, `n` after
    /// `sys.exit(n)` or `process.exit(n)`; null when a limit or a
    /// cancellation stopped the run.
    pub exit_code: Option<i32>,
    /// The value of the last expression, rendered as the language's repr;
    /// null when there is none.
    pub result: Option<String>,
    /// Captured standard output (invalid UTF-8 replaced).
    pub stdout: String,
    /// Captured standard error (invalid UTF-8 replaced).
    pub stderr: String,
    /// Whether stdout passed its cap and was cut.
    pub stdout_truncated: bool,
    /// Whether stderr passed its cap and was cut.
    pub stderr_truncated: bool,
    /// The uncaught exception, if any.
    pub error: Option<ErrorInfo>,
    /// Which limit stopped the run and its value, when one did.
    pub limit_message: Option<String>,
    /// Wall-clock time of the run in milliseconds.
    pub duration_ms: f64,
    /// Instructions executed.
    pub fuel_used: u64,
    /// Highest linear memory the interpreter held, in bytes.
    pub peak_memory_bytes: u64,
    /// The limits the run was given.
    pub limits: AppliedLimits,
    /// Files the run created, changed or deleted in `/workspace`.
    pub files: Vec<FileChange>,
    /// Whether `files` was cut short because the workspace holds too many
    /// entries to compare.
    pub files_truncated: bool,
    /// The session the code ran in, or null for a one-off run.
    pub session_id: Option<String>,
    /// True when this run, or a cancelled run before it, stopped the
    /// session's interpreter (a limit, a trap or a cancellation), so the
    /// session was given a fresh one: files in `/workspace` are kept,
    /// variables and imports are lost.
    pub session_restarted: bool,
    /// Id of the execution in the audit trail (`moat audit show ID`).
    pub execution_id: String,
}

/// One open session.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionInfo {
    /// The session's id, to pass as `session_id`.
    pub session_id: String,
    /// The interpreter's language.
    pub language: LanguageName,
    /// Seconds since the session was created.
    pub age_seconds: u64,
    /// Seconds since the session was last used.
    pub idle_seconds: u64,
    /// Seconds until the session is closed if it stays unused (the idle
    /// timeout or the maximum lifetime, whichever comes first).
    pub expires_in_seconds: u64,
    /// Runs completed in this session.
    pub runs: u64,
    /// Whether a run is in progress.
    pub busy: bool,
}

/// The result of `list_sessions`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionList {
    /// Open sessions, oldest first.
    pub sessions: Vec<SessionInfo>,
    /// Sessions that may be open at once.
    pub max_sessions: u64,
}

/// The result of `close_session`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionClosed {
    /// The closed session.
    pub session_id: String,
    /// Whether a run in progress was cancelled.
    pub cancelled_run: bool,
}

/// What a workspace entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link (never followed).
    Symlink,
}

/// One entry of a workspace listing.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileEntry {
    /// Path relative to `/workspace`.
    pub path: String,
    /// File, directory or symlink.
    pub kind: EntryKind,
    /// Size in bytes (0 for directories).
    pub size_bytes: u64,
    /// Resource URI that reads the file through `resources/read`; null for
    /// directories and symlinks.
    pub uri: Option<String>,
}

/// The result of `list_files`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileList {
    /// The session.
    pub session_id: String,
    /// The directory listed, relative to `/workspace` ("" for the root).
    pub path: String,
    /// Entries below it, sorted by path.
    pub entries: Vec<FileEntry>,
    /// Whether the listing stopped at the entry cap.
    pub truncated: bool,
}

/// The result of `read_file`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileContent {
    /// The session.
    pub session_id: String,
    /// Path relative to `/workspace`.
    pub path: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// How `content` is encoded.
    pub encoding: Encoding,
    /// The file's content.
    pub content: String,
    /// Resource URI of the file.
    pub uri: String,
}

/// The result of `write_file`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileWritten {
    /// The session.
    pub session_id: String,
    /// Path relative to `/workspace`.
    pub path: String,
    /// Bytes written.
    pub size_bytes: u64,
    /// Resource URI of the file.
    pub uri: String,
}

/// A host directory visible to the code.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GrantInfo {
    /// Where the code sees it, such as `/data`.
    pub guest_path: String,
    /// Whether the code may only read it.
    pub read_only: bool,
}

/// What one language offers inside the sandbox.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LanguageInfo {
    /// The language.
    pub language: LanguageName,
    /// The tool that runs it.
    pub tool: String,
    /// Whether its interpreter is loaded; false means its runs fail.
    pub available: bool,
    /// Modules the code may import (Python) or globals it may use
    /// (JavaScript).
    pub modules: Vec<String>,
    /// What does not exist in this interpreter.
    pub missing: String,
}

/// The result of `describe_sandbox`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SandboxDescription {
    /// The whole description as prose, also served as the resource
    /// `moat://sandbox`.
    pub text: String,
    /// Languages and what each offers.
    pub languages: Vec<LanguageInfo>,
    /// Host directories visible besides `/workspace`.
    pub grants: Vec<GrantInfo>,
    /// Limits of a run that asks for none.
    pub default_limits: AppliedLimits,
    /// Highest limits a run may ask for.
    pub max_limits: AppliedLimits,
    /// Network access: "none", or "allow-list: " and the allowed
    /// destinations.
    pub network: String,
    /// Sessions that may be open at once.
    pub max_sessions: u64,
    /// Seconds an unused session stays open.
    pub session_idle_timeout_seconds: u64,
    /// Seconds a session stays open in total.
    pub session_max_lifetime_seconds: u64,
    /// Runs that may execute at once across all sessions.
    pub max_concurrent_runs: u64,
    /// Largest `code` argument, in bytes.
    pub max_code_bytes: u64,
    /// Largest file that may be written, read or returned, in bytes.
    pub max_file_bytes: u64,
}
