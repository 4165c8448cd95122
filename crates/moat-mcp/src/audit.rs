//! Recording MCP runs and sessions in the audit trail: who asked (from
//! `initialize` or the request's `_meta`, and HTTP headers) and the blocking
//! store calls moved off the async workers.

use std::path::Path;
use std::sync::Arc;

use moat_audit::{
    Actor, AuditError, Client, Ended, Entry, FileRef, Finished, Recorder, RunInfo, SessionEvent,
    SessionEventKind,
};
use moat_egress::EgressEvent;
use moat_runtime::{Language, Limits};
use rmcp::ErrorData;
use rmcp::RoleServer;
use rmcp::service::RequestContext;

use crate::errors;
use crate::state::ServerState;
use crate::types::{Change, FileChange};

/// Characters kept of a principal, tenant or model a request names.
const MAX_NAME_CHARS: usize = 200;

/// Header naming the principal over HTTP, set by an authenticating proxy.
pub const PRINCIPAL_HEADER: &str = "x-moat-principal";
/// Header naming the tenant over HTTP.
pub const TENANT_HEADER: &str = "x-moat-tenant";
/// Header naming the model that wrote the code.
pub const MODEL_HEADER: &str = "x-moat-model";
/// Keys of the request's `_meta` that may name the model, first found wins.
pub const MODEL_META_KEYS: [&str; 2] = ["moat/model", "model"];

/// Returns the caller of the request in `context`.
pub fn actor(state: &ServerState, context: &RequestContext<RoleServer>) -> Actor {
    let identity = &state.config.identity;
    let parts = context.extensions.get::<axum::http::request::Parts>();
    let header = |name: &str| {
        parts
            .and_then(|parts| parts.headers.get(name))
            .and_then(|value| value.to_str().ok())
            .and_then(clean)
    };
    let meta_model = MODEL_META_KEYS.iter().find_map(|key| {
        context
            .meta
            .get(*key)
            .and_then(|value| value.as_str())
            .and_then(clean)
    });
    // Clients of the 2026-07-28 protocol name themselves in each request's
    // `_meta`; earlier ones once, in `initialize`.
    let implementation = context.meta.client_info().or_else(|| {
        context
            .peer
            .peer_info()
            .map(|info| info.client_info.clone())
    });
    let client = implementation.map(|info| Client {
        name: clean(&info.name).unwrap_or_default(),
        version: clean(&info.version).unwrap_or_default(),
    });
    Actor {
        principal: header(PRINCIPAL_HEADER).or_else(|| identity.principal.clone()),
        tenant: header(TENANT_HEADER).or_else(|| identity.tenant.clone()),
        transport: Some(identity.transport),
        client,
        model: meta_model
            .or_else(|| header(MODEL_HEADER))
            .or_else(|| identity.model.clone()),
    }
}

/// Returns a name from a request without control characters and cut to
/// [`MAX_NAME_CHARS`]; `None` when nothing is left.
fn clean(value: &str) -> Option<String> {
    let cleaned: String = value
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_owned())
}

/// Returns the facts of a run known before it starts.
pub fn run_info(
    execution_id: &str,
    session_id: Option<&str>,
    actor: &Actor,
    language: Language,
    guest_hash: String,
) -> RunInfo {
    RunInfo {
        execution_id: execution_id.to_owned(),
        session_id: session_id.map(str::to_owned),
        actor: actor.clone(),
        language,
        guest_hash,
        started_at: moat_audit::now_rfc3339(),
    }
}

/// Runs a store call on the blocking pool: appends wait for the disk.
async fn blocking<T: Send + 'static>(
    recorder: &Arc<Recorder>,
    call: impl FnOnce(&Recorder) -> Result<T, AuditError> + Send + 'static,
) -> Result<T, AuditError> {
    let recorder = Arc::clone(recorder);
    match tokio::task::spawn_blocking(move || call(&recorder)).await {
        Ok(result) => result,
        Err(error) => Err(AuditError::Invalid(format!(
            "the audit writer stopped: {error}"
        ))),
    }
}

/// Records that a run is about to start; the run must not start when this
/// fails.
pub async fn start(state: &ServerState, info: &RunInfo, code: &str) -> Result<(), ErrorData> {
    let execution_id = info.execution_id.clone();
    let info = info.clone();
    let code = code.to_owned();
    blocking(&state.recorder, move |recorder| {
        recorder.start(&info, &code)
    })
    .await
    .map(drop)
    .map_err(|error| {
        tracing::error!(%error, execution = %execution_id, "failed to write the audit record, so the run was rejected");
        errors::internal(format!(
            "the audit trail cannot be written, so the code was not run: {error}"
        ))
    })
}

/// The facts of a finished run that the audit trail records.
pub struct RunEnd<'a> {
    pub code: &'a str,
    pub grants_before: &'a moat_audit::GrantsState,
    pub files_in: &'a [(String, Vec<u8>)],
    pub files_out: &'a [FileChange],
    pub workspace: &'a Path,
    pub ended: Ended<'a>,
    pub limits: &'a Limits,
    pub egress: &'a [EgressEvent],
}

/// Records how a run ended. When this fails the caller must withhold the
/// result: an execution that left no record is reported as an error.
pub async fn finish(
    state: &ServerState,
    info: &RunInfo,
    end: RunEnd<'_>,
) -> Result<Entry, ErrorData> {
    let files_in: Vec<FileRef> = end
        .files_in
        .iter()
        .map(|(path, bytes)| moat_audit::input_file(path, bytes))
        .collect();
    let mut files_out: Vec<FileRef> = end
        .files_out
        .iter()
        .map(|change| file_ref(end.workspace, change))
        .collect();
    files_out.extend(end.grants_before.changes());
    let execution = state.recorder.execution(
        info,
        Finished {
            code: end.code,
            stdin: None,
            files_in: &files_in,
            files_out: &files_out,
            ended: end.ended,
            limits: end.limits,
            egress: end.egress,
        },
    );
    blocking(&state.recorder, move |recorder| {
        recorder.append_execution(execution)
    })
    .await
    .map_err(|error| {
        tracing::error!(%error, "audit record of a finished run not written; result withheld");
        errors::internal(format!(
            "the code ran, but its audit record cannot be written, so its result is withheld: {error}"
        ))
    })
}

/// Returns a change as the audit trail records it, with the content hash of a file
/// that still exists.
fn file_ref(workspace: &Path, change: &FileChange) -> FileRef {
    let (name, sha256) = match change.change {
        Change::Created => ("created", hash(workspace, &change.path)),
        Change::Modified => ("modified", hash(workspace, &change.path)),
        Change::Deleted => ("deleted", None),
    };
    FileRef {
        path: change.path.clone(),
        change: name.to_owned(),
        size: change.size_bytes,
        sha256,
    }
}

fn hash(workspace: &Path, relative: &str) -> Option<String> {
    // The guest cannot create symbolic links; a path that is not a regular
    // file is still not read.
    let path = workspace.join(relative);
    let metadata = std::fs::symlink_metadata(&path).ok()?;
    metadata
        .is_file()
        .then(|| moat_audit::hash_file(&path))
        .flatten()
}

/// Records a session event. Creation fails closed (the caller refuses the
/// session); closing and expiry cannot be refused, so a failure is logged.
pub async fn session(
    state: &ServerState,
    kind: SessionEventKind,
    session_id: &str,
    actor: &Actor,
    language: Language,
    reason: Option<&str>,
) -> Result<(), AuditError> {
    let event = SessionEvent {
        session_id: session_id.to_owned(),
        actor: actor.clone(),
        language: language.name().to_owned(),
        reason: reason.map(str::to_owned),
    };
    let result = blocking(&state.recorder, move |recorder| {
        recorder.session(kind, event)
    })
    .await
    .map(drop);
    if let Err(error) = &result {
        tracing::error!(%error, session = session_id, "audit record of a session event not written");
    }
    result
}
