//! Helpers shared by the audit trail tests: records built field by field,
//! stores in temporary directories, and direct SQL on a store's file.

use std::path::{Path, PathBuf};

use moat_audit::{
    Actor, AuditStore, Capture, Captured, Client, EgressAttempt, Entry, ErrorRef, Event, Execution,
    ExecutionStart, LimitsRef, PolicyRef, SessionEvent, Transport, sha256_hex,
};

/// The policy text every run in these tests names.
pub const POLICY_TEXT: &str = "name = \"tests\"\n[audit]\ncapture = \"full\"\n";

/// Creates a temporary directory that is deleted when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("moat-audit-test-")
        .tempdir()
        .expect("create a temporary directory")
}

/// Path of a store file inside `dir`.
pub fn store_path(dir: &Path) -> PathBuf {
    dir.join("audit.db")
}

/// One run, described by the fields the filters look at.
#[derive(Debug, Clone)]
pub struct Run {
    pub execution_id: String,
    pub session_id: Option<String>,
    pub principal: Option<String>,
    pub tenant: Option<String>,
    pub client: Option<String>,
    pub model: Option<String>,
    pub language: String,
    pub outcome: String,
    pub duration_ms: f64,
    pub stdout: String,
    pub stderr: String,
    pub code: String,
    /// (host, decision, reason) of each egress attempt.
    pub egress: Vec<(String, String, Option<String>)>,
}

impl Run {
    /// Describes a Python run by alice that ended ok without egress.
    pub fn new(execution_id: &str) -> Run {
        Run {
            execution_id: execution_id.to_owned(),
            session_id: None,
            principal: Some("alice".into()),
            tenant: None,
            client: None,
            model: None,
            language: "python".into(),
            outcome: "ok".into(),
            duration_ms: 5.0,
            stdout: "hello\n".into(),
            stderr: String::new(),
            code: "print('hello')\n".into(),
            egress: Vec::new(),
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            principal: self.principal.clone(),
            tenant: self.tenant.clone(),
            transport: Some(Transport::Http),
            client: self.client.as_ref().map(|name| Client {
                name: name.clone(),
                version: "1.0.0".into(),
            }),
            model: self.model.clone(),
        }
    }

    pub fn policy(&self) -> PolicyRef {
        PolicyRef {
            name: Some("tests".into()),
            sha256: sha256_hex(POLICY_TEXT.as_bytes()),
        }
    }

    /// Builds the `execution_started` record.
    pub fn started(&self) -> Event {
        Event::ExecutionStarted(ExecutionStart {
            execution_id: self.execution_id.clone(),
            session_id: self.session_id.clone(),
            actor: self.actor(),
            policy: self.policy(),
            language: self.language.clone(),
            guest_hash: "b3".repeat(32),
            code_sha256: sha256_hex(self.code.as_bytes()),
        })
    }

    /// Builds the `execution` record.
    pub fn finished(&self) -> Event {
        let error = (self.outcome == "error").then(|| ErrorRef {
            name: "ValueError".into(),
            message: text("bad value"),
            stack: text("Traceback (most recent call last):\nValueError: bad value"),
        });
        Event::Execution(Box::new(Execution {
            execution_id: self.execution_id.clone(),
            session_id: self.session_id.clone(),
            actor: self.actor(),
            policy: self.policy(),
            language: self.language.clone(),
            guest_hash: "b3".repeat(32),
            started_at: "2026-01-01T00:00:00.000000Z".into(),
            capture: Capture::Full,
            code: text(&self.code),
            stdin: None,
            files_in: Vec::new(),
            files_out: Vec::new(),
            stdout: text(&self.stdout),
            stderr: text(&self.stderr),
            result: None,
            outcome: self.outcome.clone(),
            exit_code: Some(i32::from(self.outcome != "ok")),
            error,
            limit_message: (self.outcome == "timeout").then(|| "ran past 30 s".to_owned()),
            limits: LimitsRef {
                timeout_ms: 30_000,
                fuel: 1_000_000,
                memory_bytes: 64 << 20,
                stdout_bytes: 1 << 20,
                stderr_bytes: 1 << 20,
            },
            duration_ms: self.duration_ms,
            fuel_used: 1234,
            peak_memory_bytes: 2 << 20,
            egress: self
                .egress
                .iter()
                .enumerate()
                .map(|(index, (host, decision, reason))| EgressAttempt {
                    time: "2026-01-01T00:00:00.001Z".into(),
                    method: "GET".into(),
                    url: format!("https://{host}/item/{index}"),
                    host: host.clone(),
                    hop: 0,
                    decision: decision.clone(),
                    rule: (decision == "allowed").then(|| format!("https://{host}/")),
                    reason: reason.clone(),
                    address: None,
                    status: (decision == "allowed").then_some(200),
                    bytes_sent: 0,
                    bytes_received: 10,
                    secrets_injected: Vec::new(),
                    duration_ms: 3,
                })
                .collect(),
        }))
    }
}

/// Full capture of `content`.
pub fn text(content: &str) -> Captured {
    Captured {
        sha256: sha256_hex(content.as_bytes()),
        bytes: content.len() as u64,
        text: Some(content.to_owned()),
        truncated: false,
        redacted: false,
    }
}

/// Builds a session event for `session_id` by `principal`.
pub fn session(session_id: &str, principal: &str) -> SessionEvent {
    SessionEvent {
        session_id: session_id.to_owned(),
        actor: Actor {
            principal: Some(principal.to_owned()),
            ..Actor::default()
        },
        language: "python".into(),
        reason: None,
    }
}

/// Appends a run's start and, when `finish`, its end.
pub fn record_run(store: &AuditStore, run: &Run, finish: bool) -> Vec<Entry> {
    let mut entries = vec![store.append(run.started()).expect("append start")];
    if finish {
        entries.push(store.append(run.finished()).expect("append end"));
    }
    entries
}

/// Opens a plain SQLite connection to a store's file, as an attacker with
/// write access to it would.
pub fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("open the store with rusqlite")
}
