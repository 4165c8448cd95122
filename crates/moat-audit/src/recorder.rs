//! The writing side used by `moat run`, `moat check` and `moat serve`: one
//! [`Recorder`] per process (or per policy), which records a run's start
//! before the guest runs and its end afterwards.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use moat_egress::{EgressEvent, Gate};
use moat_policy::{CaptureLevel, LoadedPolicy};
use moat_runtime::{Language, Limits, RunReport};

use crate::capture::capture;
use crate::error::AuditError;
use crate::record::{
    Actor, Capture, Captured, Client, EgressAttempt, Entry, ErrorRef, Event, Execution,
    ExecutionStart, FileRef, LimitsRef, PolicyRef, SessionEvent,
};
use crate::store::AuditStore;

/// Writes the records of runs under one policy.
pub struct Recorder {
    store: Arc<AuditStore>,
    policy: PolicyRef,
    capture: Capture,
    gate: Option<Gate>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("store", &self.store.path())
            .field("policy", &self.policy)
            .field("capture", &self.capture)
            .finish_non_exhaustive()
    }
}

/// A run as known before it starts.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Unique id of the execution, from [`new_execution_id`].
    pub execution_id: String,
    /// The MCP session, for runs inside one.
    pub session_id: Option<String>,
    /// Who asked.
    pub actor: Actor,
    /// The language.
    pub language: Language,
    /// BLAKE3 of the guest component.
    pub guest_hash: String,
    /// When the run started, RFC 3339 in UTC.
    pub started_at: String,
}

/// The end of a run.
#[derive(Debug, Clone, Copy)]
pub enum Ended<'a> {
    /// The sandbox reported.
    Report(&'a RunReport),
    /// The run was cancelled before it ended.
    Cancelled {
        /// Why.
        message: &'a str,
        /// Time it ran.
        duration: Duration,
    },
    /// moat could not run the code (the sandbox failed to start).
    Failed {
        /// Why.
        message: &'a str,
    },
}

/// Everything about a finished run besides [`RunInfo`].
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    /// The code.
    pub code: &'a str,
    /// Standard input, when the run was given some.
    pub stdin: Option<&'a [u8]>,
    /// Files placed in the workspace before the run.
    pub files_in: &'a [FileRef],
    /// Files the run changed.
    pub files_out: &'a [FileRef],
    /// The end of the run.
    pub ended: Ended<'a>,
    /// The limits it had.
    pub limits: &'a Limits,
    /// Every HTTP request hop it attempted.
    pub egress: &'a [EgressEvent],
}

/// Returns a new random execution id: 32 lower-case hex digits.
pub fn new_execution_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Recorder {
    /// Creates a recorder writing to `store` for runs under `policy`, whose text is
    /// kept in the store. Values of the secrets that `gate` injects are
    /// redacted from everything recorded.
    pub fn new(
        store: Arc<AuditStore>,
        policy: &LoadedPolicy,
        gate: Option<Gate>,
    ) -> Result<Recorder, AuditError> {
        let name = policy.policy.name.clone();
        store.record_policy(&policy.sha256, name.as_deref(), &policy.text)?;
        Ok(Recorder {
            store,
            policy: PolicyRef {
                name,
                sha256: policy.sha256.clone(),
            },
            capture: match policy.policy.audit.capture {
                CaptureLevel::Full => Capture::Full,
                CaptureLevel::Truncated => Capture::Truncated,
                CaptureLevel::Hashes => Capture::Hashes,
            },
            gate,
        })
    }

    /// Returns the store written to.
    pub fn store(&self) -> &Arc<AuditStore> {
        &self.store
    }

    /// Returns the capture level in force.
    pub fn capture_level(&self) -> Capture {
        self.capture
    }

    /// Returns the policy that records name.
    pub fn policy(&self) -> &PolicyRef {
        &self.policy
    }

    /// Records that `run` is about to execute `code`. The caller must not
    /// run the code when this fails.
    pub fn start(&self, run: &RunInfo, code: &str) -> Result<Entry, AuditError> {
        self.store.append(Event::ExecutionStarted(ExecutionStart {
            execution_id: run.execution_id.clone(),
            session_id: run.session_id.clone(),
            actor: self.redact_actor(&run.actor),
            policy: self.policy.clone(),
            language: run.language.name().to_owned(),
            guest_hash: run.guest_hash.clone(),
            code_sha256: self.keep(code.as_bytes()).sha256,
        }))
    }

    /// Records how `run` ended.
    pub fn finish(&self, run: &RunInfo, finished: Finished<'_>) -> Result<Entry, AuditError> {
        self.append_execution(self.execution(run, finished))
    }

    /// Appends an execution record built earlier with [`Recorder::execution`],
    /// for callers that build it outside the thread that writes it.
    pub fn append_execution(&self, execution: Execution) -> Result<Entry, AuditError> {
        self.store.append(Event::Execution(Box::new(execution)))
    }

    /// Records a session event.
    pub fn session(
        &self,
        event: SessionEventKind,
        mut session: SessionEvent,
    ) -> Result<Entry, AuditError> {
        session.actor = self.redact_actor(&session.actor);
        let event = match event {
            SessionEventKind::Created => Event::SessionCreated(session),
            SessionEventKind::Closed => Event::SessionClosed(session),
            SessionEventKind::Expired => Event::SessionExpired(session),
        };
        self.store.append(event)
    }

    /// `text` with secret values redacted.
    fn redact(&self, text: &str) -> String {
        self.gate
            .as_ref()
            .and_then(|gate| gate.redact(text))
            .unwrap_or_else(|| text.to_owned())
    }

    /// Returns the caller's names with secret values redacted.
    fn redact_actor(&self, actor: &Actor) -> Actor {
        let redact = |value: &Option<String>| value.as_deref().map(|text| self.redact(text));
        Actor {
            principal: redact(&actor.principal),
            tenant: redact(&actor.tenant),
            transport: actor.transport,
            client: actor.client.as_ref().map(|client| Client {
                name: self.redact(&client.name),
                version: self.redact(&client.version),
            }),
            model: redact(&actor.model),
        }
    }

    /// Returns file references with secret values redacted from their paths.
    fn redact_files(&self, files: &[FileRef]) -> Vec<FileRef> {
        files
            .iter()
            .map(|file| FileRef {
                path: self.redact(&file.path),
                ..file.clone()
            })
            .collect()
    }

    fn keep(&self, bytes: &[u8]) -> Captured {
        let redact = |text: &str| self.gate.as_ref().and_then(|gate| gate.redact(text));
        capture(bytes, self.capture, &redact)
    }

    /// Builds the execution record of a finished run.
    pub fn execution(&self, run: &RunInfo, finished: Finished<'_>) -> Execution {
        let limits = finished.limits;
        let mut execution = Execution {
            execution_id: run.execution_id.clone(),
            session_id: run.session_id.clone(),
            actor: self.redact_actor(&run.actor),
            policy: self.policy.clone(),
            language: run.language.name().to_owned(),
            guest_hash: run.guest_hash.clone(),
            started_at: run.started_at.clone(),
            capture: self.capture,
            code: self.keep(finished.code.as_bytes()),
            stdin: finished.stdin.map(|stdin| self.keep(stdin)),
            files_in: self.redact_files(finished.files_in),
            files_out: self.redact_files(finished.files_out),
            stdout: self.keep(b""),
            stderr: self.keep(b""),
            result: None,
            outcome: String::new(),
            exit_code: None,
            error: None,
            limit_message: None,
            limits: LimitsRef {
                timeout_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
                fuel: limits.fuel,
                memory_bytes: limits.memory_bytes,
                stdout_bytes: limits.stdout_bytes,
                stderr_bytes: limits.stderr_bytes,
            },
            duration_ms: 0.0,
            fuel_used: 0,
            peak_memory_bytes: 0,
            egress: finished
                .egress
                .iter()
                .map(|event| self.attempt(event))
                .collect(),
        };
        match finished.ended {
            Ended::Report(report) => {
                execution.stdout = self.keep(&report.stdout);
                execution.stderr = self.keep(&report.stderr);
                execution.result = report
                    .result
                    .as_ref()
                    .map(|value| self.keep(value.as_bytes()));
                execution.outcome = report.outcome.name().to_owned();
                execution.exit_code = report.exit_code;
                execution.error = report.error.as_ref().map(|error| ErrorRef {
                    name: error.name.clone(),
                    message: self.keep(error.message.as_bytes()),
                    stack: self.keep(error.stack.as_bytes()),
                });
                execution.limit_message = report.limit_message.as_deref().map(|m| self.redact(m));
                execution.duration_ms = report.duration.as_secs_f64() * 1000.0;
                execution.fuel_used = report.fuel_used;
                execution.peak_memory_bytes = report.peak_memory_bytes;
            }
            Ended::Cancelled { message, duration } => {
                execution.outcome = "cancelled".to_owned();
                execution.limit_message = Some(self.redact(message));
                execution.duration_ms = duration.as_secs_f64() * 1000.0;
            }
            Ended::Failed { message } => {
                execution.outcome = "failed".to_owned();
                execution.limit_message = Some(self.redact(message));
            }
        }
        execution
    }

    fn attempt(&self, event: &EgressEvent) -> EgressAttempt {
        let host = url_host(&event.url);
        EgressAttempt {
            time: millis_rfc3339(event.started_at_ms),
            method: event.method.clone(),
            url: self
                .gate
                .as_ref()
                .and_then(|gate| gate.redact(&event.url))
                .unwrap_or_else(|| event.url.clone()),
            host,
            hop: event.hop,
            decision: serde_json::to_value(event.decision)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default(),
            rule: event.rule.clone(),
            reason: event.reason.as_ref().map(|reason| {
                self.gate
                    .as_ref()
                    .and_then(|g| g.redact(reason))
                    .unwrap_or_else(|| reason.clone())
            }),
            address: event.address.clone(),
            status: event.status,
            bytes_sent: event.bytes_sent,
            bytes_received: event.bytes_received,
            secrets_injected: event.secrets_injected.clone(),
            duration_ms: u64::try_from(event.duration_ms).unwrap_or(u64::MAX),
        }
    }
}

/// The kind of session event to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEventKind {
    /// Created.
    Created,
    /// Closed by its client or at shutdown.
    Closed,
    /// Closed for idleness or age.
    Expired,
}

/// Returns the lower-case host of `url`, or an empty string when it has none.
fn url_host(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
        .map(|host| host.trim_end_matches('.').to_owned())
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch as RFC 3339 in UTC.
fn millis_rfc3339(millis: u128) -> String {
    let millis = u64::try_from(millis).unwrap_or(u64::MAX);
    let time = UNIX_EPOCH + Duration::from_millis(millis);
    let time: chrono::DateTime<chrono::Utc> = time.into();
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
