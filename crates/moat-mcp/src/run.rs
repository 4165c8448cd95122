//! One execution requested over MCP: argument checks, the session or a
//! one-off sandbox, cancellation, progress, and the result.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use moat_audit::{Actor, Ended};
use moat_runtime::{FileAccess, Language, Limits, RunReport, Sandbox};
use rmcp::ErrorData;
use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RequestContext};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::errors::{self, invalid_params};
use crate::sessions::{Session, SessionSlot, new_sandbox};
use crate::state::ServerState;
use crate::types::{
    AppliedLimits, Encoding, ErrorInfo, FileChange, InputFile, LimitsRequest, RunArgs, RunOutcome,
    RunResult,
};
use crate::workspace::{self, Snapshot};

/// Files a run may ask to place in `/workspace`.
pub const MAX_INPUT_FILES: usize = 100;

/// How often progress is reported while a run goes on; the first report
/// comes after one interval, so runs shorter than this send none.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// A cause that ends a run before the sandbox reports.
#[derive(Debug, Clone, Copy)]
enum Interruption {
    /// The client cancelled the request.
    Request,
    /// The session was closed.
    SessionClosed,
    /// The server is shutting down.
    Shutdown,
}

impl Interruption {
    fn message(self) -> &'static str {
        match self {
            Interruption::Request => "the client cancelled the request",
            Interruption::SessionClosed => "the session was closed during the run",
            Interruption::Shutdown => "the server shut down during the run",
        }
    }
}

/// A checked run request.
struct Checked {
    code: String,
    limits: Limits,
    files: Vec<(String, Vec<u8>)>,
}

/// Runs `args` as `language` and returns the result, or a JSON-RPC error
/// when the request is invalid or cannot be served now.
pub async fn run(
    state: &Arc<ServerState>,
    language: Language,
    args: RunArgs,
    context: &RequestContext<RoleServer>,
) -> Result<RunResult, ErrorData> {
    let checked = check(state, args.code, args.files, args.limits)?;
    if let Some(error) = state.guest_error(language) {
        return Err(errors::internal(format!(
            "{} is not available on this server: {error}",
            language.name()
        )));
    }
    if state.is_closing() {
        return Err(errors::shutting_down());
    }

    let execution = uuid::Uuid::new_v4().simple().to_string();
    let span = tracing::info_span!(
        "execution",
        execution = %execution,
        session = args.session_id.as_deref().unwrap_or("none"),
        language = language.name(),
    );
    let watch = Watch {
        request: context.ct.clone(),
        shutdown: state.cancel_runs.clone(),
        peer: context.peer.clone(),
        progress: context.meta.get_progress_token(),
    };

    let audited = Audited {
        execution_id: execution.clone(),
        actor: crate::audit::actor(state, context),
    };
    async {
        let result = match &args.session_id {
            Some(id) => run_in_session(state, language, id, checked, &watch, &audited).await,
            None => run_once(state, language, checked, &watch, &audited).await,
        };
        match &result {
            Ok(result) => tracing::info!(
                outcome = result.outcome.name(),
                duration_ms = result.duration_ms,
                session_restarted = result.session_restarted,
                "run finished"
            ),
            Err(error) => tracing::info!(message = %error.message, "run rejected"),
        }
        result
    }
    .instrument(span)
    .await
}

/// Checks sizes and decodes the input files.
fn check(
    state: &ServerState,
    code: String,
    files: Vec<InputFile>,
    limits: Option<LimitsRequest>,
) -> Result<Checked, ErrorData> {
    let config = &state.config;
    if code.len() > config.max_code_bytes {
        return Err(invalid_params(format!(
            "code is {} bytes, more than the server's limit of {} bytes (max_code_bytes); \
             send less code or place data in files",
            code.len(),
            config.max_code_bytes
        )));
    }
    if files.len() > MAX_INPUT_FILES {
        return Err(invalid_params(format!(
            "{} files were given, more than the limit of {MAX_INPUT_FILES} a run",
            files.len()
        )));
    }

    let mut decoded = Vec::with_capacity(files.len());
    for file in files {
        workspace::relative_path(&file.path)?;
        let bytes = decode(&file.path, file.content, file.encoding)?;
        if bytes.len() as u64 > config.max_file_bytes {
            return Err(invalid_params(format!(
                "file {:?} is {} bytes, more than the server's limit of {} bytes (max_file_bytes)",
                file.path,
                bytes.len(),
                config.max_file_bytes
            )));
        }
        decoded.push((file.path, bytes));
    }

    let limits = effective_limits(&config.default_limits, &config.max_limits, limits)?;
    Ok(Checked {
        code,
        limits,
        files: decoded,
    })
}

/// Decodes a file's `content` according to `encoding`.
pub fn decode(path: &str, content: String, encoding: Encoding) -> Result<Vec<u8>, ErrorData> {
    match encoding {
        Encoding::Text => Ok(content.into_bytes()),
        Encoding::Base64 => BASE64.decode(content.as_bytes()).map_err(|error| {
            invalid_params(format!(
                "content of file {path:?} is not valid base64 ({error}); \
                 send standard base64 with padding, or set encoding to text"
            ))
        }),
    }
}

/// Overrides the defaults with the request's limits, each capped by its
/// maximum.
/// Zero is rejected, as the runtime would reject it.
pub fn effective_limits(
    defaults: &Limits,
    maxima: &Limits,
    requested: Option<LimitsRequest>,
) -> Result<Limits, ErrorData> {
    let requested = requested.unwrap_or_default();
    let pick = |name: &str, asked: Option<u64>, default: u64, max: u64| match asked {
        Some(0) => Err(invalid_params(format!(
            "invalid limit {name}: must be greater than zero"
        ))),
        Some(value) => Ok(value.min(max)),
        None => Ok(default),
    };
    let millis = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);

    let timeout_ms = pick(
        "timeout_ms",
        requested.timeout_ms,
        millis(defaults.timeout),
        millis(maxima.timeout),
    )?;
    Ok(Limits {
        timeout: Duration::from_millis(timeout_ms),
        fuel: pick("fuel", requested.fuel, defaults.fuel, maxima.fuel)?,
        memory_bytes: pick(
            "memory_bytes",
            requested.memory_bytes,
            defaults.memory_bytes,
            maxima.memory_bytes,
        )?,
        stdout_bytes: pick(
            "stdout_bytes",
            requested.stdout_bytes,
            defaults.stdout_bytes,
            maxima.stdout_bytes,
        )?,
        stderr_bytes: pick(
            "stderr_bytes",
            requested.stderr_bytes,
            defaults.stderr_bytes,
            maxima.stderr_bytes,
        )?,
    })
}

/// The audit facts of a run known from its request.
struct Audited {
    execution_id: String,
    actor: Actor,
}

/// The tokens that interrupt a run, and the peer its progress goes to.
struct Watch {
    request: CancellationToken,
    shutdown: CancellationToken,
    peer: Peer<RoleServer>,
    progress: Option<ProgressToken>,
}

async fn run_in_session(
    state: &Arc<ServerState>,
    language: Language,
    session_id: &str,
    checked: Checked,
    watch: &Watch,
    audited: &Audited,
) -> Result<RunResult, ErrorData> {
    let session = state.sessions.get(session_id, &audited.actor)?;
    if session.language != language {
        let tool = match session.language {
            Language::Python => "run_python",
            Language::JavaScript => "run_javascript",
        };
        return Err(invalid_params(format!(
            "session {session_id:?} is a {} session, so it cannot run {}: call {tool} with it, \
             or create a {} session",
            session.language.name(),
            language.name(),
            language.name()
        )));
    }

    // Runs in one session queue here. The wait is bounded by the running
    // run's timeout, and the waiting request can be cancelled.
    let mut slot = tokio::select! {
        slot = session.slot.lock() => slot,
        _ = watch.request.cancelled() => return Err(errors::internal("the request was cancelled while waiting for the session")),
        _ = session.closed.cancelled() => return Err(crate::sessions::SessionError::NotFound(session_id.to_owned()).into()),
        _ = watch.shutdown.cancelled() => return Err(errors::shutting_down()),
    };
    if state.is_closing() {
        return Err(errors::shutting_down());
    }
    let Some(_permit) = state.try_permit() else {
        return Err(errors::busy(state.config.max_concurrent_executions));
    };

    session.set_busy(true);
    let result = run_locked(state, &session, &mut slot, checked, watch, audited).await;
    session.set_busy(false);
    result
}

async fn run_locked(
    state: &Arc<ServerState>,
    session: &Arc<Session>,
    slot: &mut SessionSlot,
    checked: Checked,
    watch: &Watch,
    audited: &Audited,
) -> Result<RunResult, ErrorData> {
    let dir = workspace::open(&session.files.workspace)?;
    for (path, bytes) in &checked.files {
        workspace::write(&dir, path, bytes)?;
    }
    let before = snapshot_or_empty(&dir);

    slot.cells += 1;
    let filename = cell_filename(session.language, Some(slot.cells));
    let run_gate =
        crate::sessions::prepare_run(&mut slot.sandbox, &state.config, &audited.execution_id);
    let info = crate::audit::run_info(
        &audited.execution_id,
        Some(&session.id),
        &audited.actor,
        session.language,
        slot.sandbox.guest_hash(),
    );
    let grants_before = moat_audit::GrantsState::scan(&state.config.grants);
    crate::audit::start(state, &info, &checked.code).await?;
    let executed = execute(
        &mut slot.sandbox,
        &checked.code,
        &filename,
        &checked.limits,
        watch,
        Some(&session.closed),
    )
    .await;
    let egress = run_gate.map(|gate| gate.events()).unwrap_or_default();

    let mut session_restarted = std::mem::take(&mut slot.restart_unreported);
    if slot.sandbox.is_stopped() && !session.closed.is_cancelled() {
        slot.sandbox = new_sandbox(&state.runtime, session.language, &session.files)
            .map_err(|error| errors::internal(format!("failed to restart the session: {error}")))?;
        session_restarted = true;
        slot.restart_unreported = matches!(executed, Ok((_, Some(_))));
    }

    let after = snapshot_or_empty(&dir);
    let files = changed_files(&dir, &before, &after, None);
    let end = RunEnd {
        state,
        info: &info,
        grants_before: &grants_before,
        checked: &checked,
        executed: &executed,
        files: &files,
        workspace: &session.files.workspace,
        egress: &egress,
    };
    end.record().await?;
    let (report, interruption) = executed?;
    Ok(build_result(
        report,
        interruption,
        &checked.limits,
        files,
        before.truncated || after.truncated,
        Ids {
            session_id: Some(session.id.clone()),
            session_restarted,
            execution_id: info.execution_id,
        },
    ))
}

async fn run_once(
    state: &Arc<ServerState>,
    language: Language,
    checked: Checked,
    watch: &Watch,
    audited: &Audited,
) -> Result<RunResult, ErrorData> {
    let Some(_permit) = state.try_permit() else {
        return Err(errors::busy(state.config.max_concurrent_executions));
    };

    let scratch = tempfile::Builder::new()
        .prefix("moat-run-")
        .tempdir()
        .map_err(|error| {
            errors::internal(format!(
                "failed to create a scratch workspace directory: {error}"
            ))
        })?;
    let files = FileAccess {
        workspace: scratch.path().to_path_buf(),
        grants: state.config.grants.clone(),
    };
    let dir = workspace::open(scratch.path())?;
    for (path, bytes) in &checked.files {
        workspace::write(&dir, path, bytes)?;
    }
    let before = snapshot_or_empty(&dir);

    let mut sandbox = new_sandbox(&state.runtime, language, &files)
        .map_err(|error| errors::internal(format!("failed to create the sandbox: {error}")))?;
    let filename = cell_filename(language, None);
    let run_gate = crate::sessions::prepare_run(&mut sandbox, &state.config, &audited.execution_id);
    let info = crate::audit::run_info(
        &audited.execution_id,
        None,
        &audited.actor,
        language,
        sandbox.guest_hash(),
    );
    let grants_before = moat_audit::GrantsState::scan(&state.config.grants);
    crate::audit::start(state, &info, &checked.code).await?;
    let executed = execute(
        &mut sandbox,
        &checked.code,
        &filename,
        &checked.limits,
        watch,
        None,
    )
    .await;
    drop(sandbox);
    let egress = run_gate.map(|gate| gate.events()).unwrap_or_default();

    let after = snapshot_or_empty(&dir);
    let changed = changed_files(&dir, &before, &after, Some(state.config.max_file_bytes));
    let end = RunEnd {
        state,
        info: &info,
        grants_before: &grants_before,
        checked: &checked,
        executed: &executed,
        files: &changed,
        workspace: scratch.path(),
        egress: &egress,
    };
    end.record().await?;
    let (report, interruption) = executed?;
    Ok(build_result(
        report,
        interruption,
        &checked.limits,
        changed,
        before.truncated || after.truncated,
        Ids {
            session_id: None,
            session_restarted: false,
            execution_id: info.execution_id,
        },
    ))
}

/// The facts of an ended run that the audit trail records.
struct RunEnd<'a> {
    state: &'a ServerState,
    info: &'a moat_audit::RunInfo,
    grants_before: &'a moat_audit::GrantsState,
    checked: &'a Checked,
    executed: &'a Executed,
    files: &'a [FileChange],
    workspace: &'a Path,
    egress: &'a [moat_egress::EgressEvent],
}

impl RunEnd<'_> {
    /// Writes the run's execution record; an error means the result must
    /// be withheld.
    async fn record(&self) -> Result<(), ErrorData> {
        let failure;
        let ended = match self.executed {
            Ok((Some(report), _)) => Ended::Report(report),
            Ok((None, interruption)) => {
                let (interruption, duration) =
                    interruption.unwrap_or((Interruption::Request, Duration::ZERO));
                Ended::Cancelled {
                    message: interruption.message(),
                    duration,
                }
            }
            Err(error) => {
                failure = error.message.to_string();
                Ended::Failed { message: &failure }
            }
        };
        crate::audit::finish(
            self.state,
            self.info,
            crate::audit::RunEnd {
                code: &self.checked.code,
                grants_before: self.grants_before,
                files_in: &self.checked.files,
                files_out: self.files,
                workspace: self.workspace,
                ended,
                limits: &self.checked.limits,
                egress: self.egress,
            },
        )
        .await
        .map(drop)
    }
}

/// The result of [`execute`]: the report, or the interruption that ended
/// the run first.
type Executed = Result<(Option<RunReport>, Option<(Interruption, Duration)>), ErrorData>;

/// Runs the code until it ends or something interrupts it, sending
/// progress every second when the client asked for it.
async fn execute(
    sandbox: &mut Sandbox,
    code: &str,
    filename: &str,
    limits: &Limits,
    watch: &Watch,
    session_closed: Option<&CancellationToken>,
) -> Executed {
    let started = Instant::now();
    let never = CancellationToken::new();
    let closed = session_closed.unwrap_or(&never);

    let run = sandbox.run(code, filename, limits);
    tokio::pin!(run);
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + PROGRESS_INTERVAL,
        PROGRESS_INTERVAL,
    );
    loop {
        let interruption = tokio::select! {
            report = &mut run => {
                let report = report.map_err(|error| errors::internal(format!("failed to run the code: {error}")))?;
                return Ok((Some(report), None));
            }
            _ = watch.request.cancelled() => Interruption::Request,
            _ = closed.cancelled() => Interruption::SessionClosed,
            _ = watch.shutdown.cancelled() => Interruption::Shutdown,
            _ = ticks.tick() => {
                send_progress(watch, started.elapsed(), limits.timeout).await;
                continue;
            }
        };
        // Returning drops the run future, which stops the guest at its next
        // epoch tick and marks the sandbox stopped.
        tracing::info!(reason = interruption.message(), "run cancelled");
        return Ok((None, Some((interruption, started.elapsed()))));
    }
}

async fn send_progress(watch: &Watch, elapsed: Duration, timeout: Duration) {
    let Some(token) = &watch.progress else {
        return;
    };
    let mut param = ProgressNotificationParam::new(token.clone(), elapsed.as_secs_f64());
    param.total = Some(timeout.as_secs_f64());
    param.message = Some(format!(
        "running for {} s of at most {} s",
        elapsed.as_secs(),
        timeout.as_secs()
    ));
    if let Err(error) = watch.peer.notify_progress(param).await {
        tracing::debug!(%error, "failed to send a progress notification");
    }
}

fn cell_filename(language: Language, cell: Option<u64>) -> String {
    let extension = match language {
        Language::Python => "py",
        Language::JavaScript => "js",
    };
    match cell {
        Some(number) => format!("cell{number}.{extension}"),
        None => format!("main.{extension}"),
    }
}

fn snapshot_or_empty(dir: &cap_std::fs::Dir) -> Snapshot {
    match workspace::snapshot(dir) {
        Ok(snapshot) => snapshot,
        Err(error) => {
            tracing::warn!(%error, "failed to scan the workspace; file changes are not reported");
            Snapshot::unknown()
        }
    }
}

/// Lists the changes between two snapshots. With `inline_max`, each created or
/// modified file up to that size is returned with its content.
fn changed_files(
    dir: &cap_std::fs::Dir,
    before: &Snapshot,
    after: &Snapshot,
    inline_max: Option<u64>,
) -> Vec<FileChange> {
    workspace::changes(before, after)
        .into_iter()
        .map(|(path, change, size)| {
            let shown = path.to_string_lossy().into_owned();
            let (content, encoding) = match inline_max {
                Some(max) if change != crate::types::Change::Deleted && size <= max => {
                    inline_content(dir, &path, max)
                }
                _ => (None, None),
            };
            FileChange {
                path: shown,
                change,
                size_bytes: size,
                content,
                encoding,
            }
        })
        .collect()
}

fn inline_content(
    dir: &cap_std::fs::Dir,
    path: &Path,
    max: u64,
) -> (Option<String>, Option<Encoding>) {
    let shown = path.to_string_lossy();
    match workspace::read(dir, &shown, max) {
        Ok(bytes) => {
            let (content, encoding) = encode(bytes);
            (Some(content), Some(encoding))
        }
        Err(error) => {
            tracing::debug!(%error, "not returning a changed file's content");
            (None, None)
        }
    }
}

/// Text when `bytes` are UTF-8, base64 otherwise.
pub fn encode(bytes: Vec<u8>) -> (String, Encoding) {
    match String::from_utf8(bytes) {
        Ok(text) if is_text(&text) => (text, Encoding::Text),
        Ok(text) => (BASE64.encode(text.as_bytes()), Encoding::Base64),
        Err(error) => (BASE64.encode(error.as_bytes()), Encoding::Base64),
    }
}

/// Whether valid UTF-8 reads as text: no NUL and no control characters
/// other than tab, line breaks, form feed and escape. Files with others
/// (binary formats that happen to be valid UTF-8) are returned as base64.
pub fn is_text(text: &str) -> bool {
    text.chars().all(|c| {
        !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c' | '\x1b') || c as u32 >= 0x80
    })
}

#[cfg(test)]
mod encode_tests {
    use super::*;

    #[test]
    fn control_bytes_are_base64() {
        assert_eq!(encode(vec![0, 1, 2]), ("AAEC".to_owned(), Encoding::Base64));
    }

    #[test]
    fn plain_text_stays_text() {
        assert_eq!(
            encode(b"a\tb\r\n".to_vec()),
            ("a\tb\r\n".to_owned(), Encoding::Text)
        );
    }
}

/// The ids of the run a result belongs to.
struct Ids {
    session_id: Option<String>,
    session_restarted: bool,
    execution_id: String,
}

fn build_result(
    report: Option<RunReport>,
    interruption: Option<(Interruption, Duration)>,
    limits: &Limits,
    files: Vec<FileChange>,
    files_truncated: bool,
    ids: Ids,
) -> RunResult {
    let Ids {
        session_id,
        session_restarted,
        execution_id,
    } = ids;
    let applied = AppliedLimits::from(limits);
    let Some(report) = report else {
        let (interruption, elapsed) =
            interruption.unwrap_or((Interruption::Request, Duration::ZERO));
        return RunResult {
            outcome: RunOutcome::Cancelled,
            exit_code: None,
            result: None,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            error: None,
            limit_message: Some(interruption.message().to_owned()),
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            fuel_used: 0,
            peak_memory_bytes: 0,
            limits: applied,
            files,
            files_truncated,
            session_id,
            session_restarted,
            execution_id,
        };
    };

    RunResult {
        outcome: report.outcome.into(),
        exit_code: report.exit_code,
        result: report.result,
        stdout: String::from_utf8_lossy(&report.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&report.stderr).into_owned(),
        stdout_truncated: report.stdout_truncated,
        stderr_truncated: report.stderr_truncated,
        error: report.error.map(|error| ErrorInfo {
            name: error.name,
            message: error.message,
            stack: error.stack,
        }),
        limit_message: report.limit_message,
        duration_ms: report.duration.as_secs_f64() * 1000.0,
        fuel_used: report.fuel_used,
        peak_memory_bytes: report.peak_memory_bytes,
        limits: applied,
        files,
        files_truncated,
        session_id,
        session_restarted,
        execution_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_capped_by_maxima() {
        let defaults = Limits::default();
        let maxima = Limits {
            fuel: 1_000,
            ..Limits::default()
        };
        let requested = LimitsRequest {
            fuel: Some(5_000),
            timeout_ms: Some(250),
            ..LimitsRequest::default()
        };
        let limits = effective_limits(&defaults, &maxima, Some(requested)).expect("valid");
        assert_eq!(limits.fuel, 1_000);
        assert_eq!(limits.timeout, Duration::from_millis(250));
        assert_eq!(limits.memory_bytes, defaults.memory_bytes);
    }

    #[test]
    fn zero_limit_is_rejected() {
        let requested = LimitsRequest {
            memory_bytes: Some(0),
            ..LimitsRequest::default()
        };
        let error = effective_limits(&Limits::default(), &Limits::default(), Some(requested))
            .expect_err("zero memory");
        assert_eq!(
            error.message,
            "invalid limit memory_bytes: must be greater than zero"
        );
    }

    #[test]
    fn bad_base64_names_the_file() {
        let error = decode("in.bin", "@@@".into(), Encoding::Base64).expect_err("bad base64");
        assert!(error.message.contains("\"in.bin\""), "{}", error.message);
    }
}
