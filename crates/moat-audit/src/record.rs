//! The contents of one audit record: an execution, the start of one, or a
//! session event, with the caller and the policy in force.
//!
//! Records are serialized to JSON once, when they are appended; the stored
//! bytes are what the chain hashes, so field order here is part of the
//! format. Add fields at the end of a struct and make them optional, so that
//! older records still parse.

use serde::{Deserialize, Serialize};

/// One entry of the trail, as stored and exported.
///
/// `hash` is the SHA-256 (lower-case hex) of the exact JSON bytes of the
/// entry without `hash` (an [`EntryBody`]); `prev_hash` is the `hash` of the
/// entry before it, or [`GENESIS_HASH`] for the first. Deleting, editing or
/// reordering entries breaks one of these links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When the entry was appended, RFC 3339 in UTC with microseconds.
    pub time: String,
    /// `hash` of the entry before, or [`GENESIS_HASH`].
    pub prev_hash: String,
    /// What happened.
    pub event: Event,
    /// SHA-256 of this entry's body.
    pub hash: String,
}

/// The hashed part of an entry: everything but its own hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryBody {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When the entry was appended, RFC 3339 in UTC with microseconds.
    pub time: String,
    /// `hash` of the entry before, or [`GENESIS_HASH`].
    pub prev_hash: String,
    /// What happened.
    pub event: Event,
}

/// `prev_hash` of the first entry: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The event an entry records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// An execution is about to run. Written before the guest starts, so
    /// that a store that cannot be written stops the run, and so that a run
    /// the process never finished (a crash, `kill -9`) still leaves a trace.
    ExecutionStarted(ExecutionStart),
    /// An execution ended (or was cancelled), with everything it did.
    Execution(Box<Execution>),
    /// An MCP session was created.
    SessionCreated(SessionEvent),
    /// An MCP session was closed by its client or at shutdown.
    SessionClosed(SessionEvent),
    /// An MCP session was closed because it sat idle or lived too long.
    SessionExpired(SessionEvent),
}

impl Event {
    /// Returns the `kind` tag, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::ExecutionStarted(_) => "execution_started",
            Event::Execution(_) => "execution",
            Event::SessionCreated(_) => "session_created",
            Event::SessionClosed(_) => "session_closed",
            Event::SessionExpired(_) => "session_expired",
        }
    }

    /// Returns the caller that caused the event.
    pub fn actor(&self) -> &Actor {
        match self {
            Event::ExecutionStarted(start) => &start.actor,
            Event::Execution(execution) => &execution.actor,
            Event::SessionCreated(event)
            | Event::SessionClosed(event)
            | Event::SessionExpired(event) => &event.actor,
        }
    }

    /// Returns the execution the event belongs to, if any.
    pub fn execution_id(&self) -> Option<&str> {
        match self {
            Event::ExecutionStarted(start) => Some(&start.execution_id),
            Event::Execution(execution) => Some(&execution.execution_id),
            _ => None,
        }
    }

    /// Returns the session the event belongs to, if any.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Event::ExecutionStarted(start) => start.session_id.as_deref(),
            Event::Execution(execution) => execution.session_id.as_deref(),
            Event::SessionCreated(event)
            | Event::SessionClosed(event)
            | Event::SessionExpired(event) => Some(&event.session_id),
        }
    }
}

/// The transport a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// `moat run`.
    Cli,
    /// `moat check`.
    Check,
    /// `moat serve` over stdio.
    Stdio,
    /// `moat serve --http`.
    Http,
}

impl Transport {
    /// Returns the name as stored.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Cli => "cli",
            Transport::Check => "check",
            Transport::Stdio => "stdio",
            Transport::Http => "http",
        }
    }
}

/// An MCP client as it named itself in `initialize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// `clientInfo.name`.
    pub name: String,
    /// `clientInfo.version`.
    pub version: String,
}

/// The caller of an execution or session, as far as moat can tell.
///
/// Over HTTP, principal and tenant come from request headers that the
/// deployment's authenticating proxy sets; moat records them as claimed by a
/// caller that held the server's bearer token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The user or service on whose behalf the code ran: the local account
    /// for `moat run`, `moat check` and stdio, a header over HTTP.
    pub principal: Option<String>,
    /// The tenant, for servers shared by several customers.
    pub tenant: Option<String>,
    /// The transport of the request.
    pub transport: Option<Transport>,
    /// The MCP client, from `initialize`.
    pub client: Option<Client>,
    /// The model that wrote the code, when the client named one.
    pub model: Option<String>,
}

/// The policy a run was under.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// The policy's `name`, if it has one.
    pub name: Option<String>,
    /// SHA-256 of the policy file's bytes (of the built-in policy's text
    /// when none was given).
    pub sha256: String,
}

/// The record written before an execution starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionStart {
    /// Unique id of the execution; the finished record carries the same.
    pub execution_id: String,
    /// The MCP session, for runs inside one.
    pub session_id: Option<String>,
    /// Who asked.
    pub actor: Actor,
    /// The policy in force.
    pub policy: PolicyRef,
    /// "python" or "javascript".
    pub language: String,
    /// BLAKE3 of the guest component that runs the code.
    pub guest_hash: String,
    /// SHA-256 of the code (of the redacted code when it holds a secret's
    /// value).
    pub code_sha256: String,
}

/// How much of each text a record keeps, from the policy's
/// `[audit] capture`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capture {
    /// Everything, up to the run's own caps.
    #[default]
    Full,
    /// The first [`TRUNCATED_CAPTURE_BYTES`] of each text.
    Truncated,
    /// Only sizes and SHA-256 hashes.
    Hashes,
}

/// Bytes of each text kept at [`Capture::Truncated`].
pub const TRUNCATED_CAPTURE_BYTES: usize = 4096;

/// A text the run was given or produced: always its size and hash, and its
/// content as far as the capture level allows.
///
/// `bytes` is the size of the original bytes, and `sha256` their hash,
/// unless `redacted` is set: then `sha256` is the hash of the redacted
/// text. `text` is the content as UTF-8 (invalid sequences replaced), with
/// every secret value replaced by `[REDACTED:name]`, and cut at the capture
/// limit when `truncated`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Captured {
    /// SHA-256 of the original bytes, or of the redacted text when
    /// `redacted` is set.
    pub sha256: String,
    /// Size of the original bytes.
    pub bytes: u64,
    /// The content kept; `None` at [`Capture::Hashes`].
    pub text: Option<String>,
    /// Whether `text` is shorter than the original.
    pub truncated: bool,
    /// Whether a secret's value was found and replaced in `text`.
    pub redacted: bool,
}

/// A file placed in the workspace before the run, or changed by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Path inside `/workspace`.
    pub path: String,
    /// "input" for a file given to the run; "created", "modified" or
    /// "deleted" for a change the run made.
    pub change: String,
    /// Size in bytes (0 for a deleted file).
    pub size: u64,
    /// SHA-256 of the content, when it was read.
    pub sha256: Option<String>,
}

/// The limits a run was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsRef {
    /// Wall-clock limit in milliseconds.
    pub timeout_ms: u64,
    /// Fuel.
    pub fuel: u64,
    /// Linear memory in bytes.
    pub memory_bytes: u64,
    /// Stdout cap in bytes.
    pub stdout_bytes: u64,
    /// Stderr cap in bytes.
    pub stderr_bytes: u64,
}

/// The exception or trap that ended a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRef {
    /// Exception class or error name.
    pub name: String,
    /// Its message, captured like the run's output.
    pub message: Captured,
    /// The traceback or stack trace, captured like the run's output.
    pub stack: Captured,
}

/// One HTTP request hop the guest attempted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressAttempt {
    /// When the hop started, RFC 3339 in UTC with milliseconds.
    pub time: String,
    /// Method.
    pub method: String,
    /// URL, with secret values redacted.
    pub url: String,
    /// Host name of the URL (lower case), for filtering.
    pub host: String,
    /// 0 for the guest's request, then 1, 2... for redirects.
    pub hop: u32,
    /// "allowed", "denied" or "failed".
    pub decision: String,
    /// The policy rule that allowed it.
    pub rule: Option<String>,
    /// Why it was denied or failed.
    pub reason: Option<String>,
    /// The address connected to.
    pub address: Option<String>,
    /// Response status.
    pub status: Option<u16>,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Names of the secrets injected (never their values).
    pub secrets_injected: Vec<String>,
    /// Time the hop took, in milliseconds.
    pub duration_ms: u64,
}

/// Everything one execution did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// Unique id, the same as in the run's `execution_started` record.
    pub execution_id: String,
    /// The MCP session, for runs inside one.
    pub session_id: Option<String>,
    /// Who asked.
    pub actor: Actor,
    /// The policy in force.
    pub policy: PolicyRef,
    /// "python" or "javascript".
    pub language: String,
    /// BLAKE3 of the guest component.
    pub guest_hash: String,
    /// When the run started, RFC 3339 in UTC with microseconds.
    pub started_at: String,
    /// The capture level the texts below were kept at.
    pub capture: Capture,
    /// The code.
    pub code: Captured,
    /// Standard input, when the run was given some.
    pub stdin: Option<Captured>,
    /// Files placed in the workspace before the run.
    pub files_in: Vec<FileRef>,
    /// Files the run created, modified or deleted in its workspace.
    pub files_out: Vec<FileRef>,
    /// Standard output as the run's report kept it.
    pub stdout: Captured,
    /// Standard error as the run's report kept it.
    pub stderr: Captured,
    /// The value of the last expression, when there was one.
    pub result: Option<Captured>,
    /// "ok", "error", "timeout", "fuel_exhausted", "memory_limit",
    /// "output_truncated" or "cancelled".
    pub outcome: String,
    /// Exit status, when the code exited.
    pub exit_code: Option<i32>,
    /// The exception or trap, when one ended the run.
    pub error: Option<ErrorRef>,
    /// The limit that ended the run, or why it was cancelled.
    pub limit_message: Option<String>,
    /// The limits the run had.
    pub limits: LimitsRef,
    /// Wall-clock time, in milliseconds.
    pub duration_ms: f64,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Peak linear memory, in bytes.
    pub peak_memory_bytes: u64,
    /// Every HTTP request hop the guest attempted, in order.
    pub egress: Vec<EgressAttempt>,
}

impl Execution {
    /// Whether a resource limit ended the run.
    pub fn limit_hit(&self) -> bool {
        matches!(
            self.outcome.as_str(),
            "timeout" | "fuel_exhausted" | "memory_limit" | "output_truncated"
        )
    }
}

/// A session being created, closed or expiring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// The session.
    pub session_id: String,
    /// Who asked (for expiry: who created the session, when known).
    pub actor: Actor,
    /// "python" or "javascript".
    pub language: String,
    /// Why it ended, for closed and expired sessions.
    pub reason: Option<String>,
}
