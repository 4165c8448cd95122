//! Sessions: a scratch workspace and one interpreter kept alive across
//! runs, with an idle timeout, a maximum lifetime and a cap on their number.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use moat_audit::Actor;
use moat_egress::RunGate;
use moat_runtime::{DirGrant, FileAccess, Language, Runtime, RuntimeError, Sandbox};
use tokio_util::sync::CancellationToken;

use crate::types::SessionInfo;

/// A failure to create or find a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No open session has this id.
    #[error(
        "unknown session {0:?}: it was never created, was closed, or expired; \
         call list_sessions to see open sessions or create_session for a new one"
    )]
    NotFound(String),
    /// The session cap is reached.
    #[error(
        "session limit reached: {0} sessions are open, the server's maximum; \
         close one with close_session or run without a session"
    )]
    LimitReached(usize),
    /// The scratch directory or the sandbox could not be set up.
    #[error("failed to set up the session: {0}")]
    Setup(String),
}

/// The part of a session that one run at a time may use.
#[derive(Debug)]
pub struct SessionSlot {
    /// The interpreter; replaced after a run that stopped it.
    pub sandbox: Sandbox,
    /// Runs started in this session, for numbering cells in tracebacks.
    pub cells: u64,
    /// Set when a cancelled run's interpreter was replaced: the client
    /// never saw that result, so the next run reports the restart.
    pub restart_unreported: bool,
}

/// One session. Runs and file operations lock [`Session::slot`], so they
/// happen one at a time.
#[derive(Debug)]
pub struct Session {
    /// Random id, unguessable; not an authentication token.
    pub id: String,
    /// The interpreter's language.
    pub language: Language,
    /// The caller that created it, for the audit records of its end.
    pub actor: Actor,
    /// Directories preopened for the sandbox; `workspace` is `_scratch`.
    pub files: FileAccess,
    /// Locked by the run or file operation in progress.
    pub slot: tokio::sync::Mutex<SessionSlot>,
    /// Cancelled when the session is closed, to stop a run in progress.
    pub closed: CancellationToken,
    created: Instant,
    last_used: Mutex<Instant>,
    runs: AtomicU64,
    busy: AtomicBool,
    /// Deletes the workspace when the last reference to the session goes.
    _scratch: tempfile::TempDir,
}

impl Session {
    /// Whether `caller` may use the session: the same principal and tenant
    /// as its creator. Over stdio every caller is the local user; over HTTP
    /// the principal and tenant come from the request's headers, so callers
    /// that send none share their sessions.
    pub fn belongs_to(&self, caller: &Actor) -> bool {
        self.actor.principal == caller.principal && self.actor.tenant == caller.tenant
    }

    /// Marks the session used now.
    pub fn touch(&self) {
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// Marks a run as started or finished.
    pub fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::Relaxed);
        if !busy {
            self.runs.fetch_add(1, Ordering::Relaxed);
        }
        self.touch();
    }

    /// Whether a run is in progress.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed)
    }

    fn idle(&self, now: Instant) -> Duration {
        now.saturating_duration_since(
            *self
                .last_used
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

/// All open sessions of one server.
#[derive(Debug)]
pub struct SessionManager {
    sessions: Mutex<BTreeMap<String, Arc<Session>>>,
    max_sessions: usize,
    idle_timeout: Duration,
    max_lifetime: Duration,
}

impl SessionManager {
    /// Creates an empty manager with the given quotas.
    pub fn new(max_sessions: usize, idle_timeout: Duration, max_lifetime: Duration) -> Self {
        SessionManager {
            sessions: Mutex::new(BTreeMap::new()),
            max_sessions,
            idle_timeout,
            max_lifetime,
        }
    }

    /// Sessions that may be open at once.
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// Opens a session: a fresh scratch workspace and a sandbox for
    /// `language` that also has `grants` preopened.
    ///
    /// TODO: the session cap is shared by every principal and tenant, so
    /// one tenant can use all of it; a per-tenant quota would stop that.
    pub fn create(
        &self,
        runtime: &Runtime,
        language: Language,
        grants: &[DirGrant],
        actor: Actor,
    ) -> Result<Arc<Session>, SessionError> {
        if self.count() >= self.max_sessions {
            return Err(SessionError::LimitReached(self.max_sessions));
        }

        let scratch = tempfile::Builder::new()
            .prefix("moat-session-")
            .tempdir()
            .map_err(|error| {
                SessionError::Setup(format!("create a scratch workspace directory: {error}"))
            })?;
        let files = FileAccess {
            workspace: scratch.path().to_path_buf(),
            grants: grants.to_vec(),
        };
        let sandbox = new_sandbox(runtime, language, &files)
            .map_err(|error| SessionError::Setup(error.to_string()))?;

        let now = Instant::now();
        let session = Arc::new(Session {
            id: format!("s-{}", uuid::Uuid::new_v4().simple()),
            language,
            actor,
            files,
            slot: tokio::sync::Mutex::new(SessionSlot {
                sandbox,
                cells: 0,
                restart_unreported: false,
            }),
            closed: CancellationToken::new(),
            created: now,
            last_used: Mutex::new(now),
            runs: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            _scratch: scratch,
        });

        let mut sessions = self.lock();
        // Checked again under the lock: another request may have created a
        // session while this one set up its sandbox.
        if sessions.len() >= self.max_sessions {
            return Err(SessionError::LimitReached(self.max_sessions));
        }
        sessions.insert(session.id.clone(), Arc::clone(&session));
        Ok(session)
    }

    /// Finds the open session `id` of `caller`. A session of another
    /// principal or tenant is reported as not found, so its id reveals
    /// nothing.
    pub fn get(&self, id: &str, caller: &Actor) -> Result<Arc<Session>, SessionError> {
        self.lock()
            .get(id)
            .filter(|session| session.belongs_to(caller))
            .cloned()
            .ok_or_else(|| SessionError::NotFound(id.to_owned()))
    }

    /// Closes session `id` of `caller` and cancels its run in progress, if
    /// any.
    pub fn close(&self, id: &str, caller: &Actor) -> Result<Arc<Session>, SessionError> {
        let mut sessions = self.lock();
        let session = sessions
            .get(id)
            .filter(|session| session.belongs_to(caller))
            .ok_or_else(|| SessionError::NotFound(id.to_owned()))?;
        let id = session.id.clone();
        let session = sessions
            .remove(&id)
            .ok_or_else(|| SessionError::NotFound(id.clone()))?;
        session.closed.cancel();
        Ok(session)
    }

    /// Closes every session, for shutdown.
    /// Returns the sessions closed.
    pub fn close_all(&self) -> Vec<Arc<Session>> {
        let sessions = std::mem::take(&mut *self.lock());
        for session in sessions.values() {
            session.closed.cancel();
        }
        sessions.into_values().collect()
    }

    /// Closes sessions idle past the idle timeout or older than the
    /// maximum lifetime. A session with a run in progress is left until the
    /// run ends. Returns the sessions closed, each with the reason.
    pub fn expire(&self, now: Instant) -> Vec<(Arc<Session>, &'static str)> {
        let mut sessions = self.lock();
        let expired: Vec<(String, &'static str)> = sessions
            .values()
            .filter(|session| !session.is_busy())
            .filter_map(|session| {
                let reason = if now.saturating_duration_since(session.created) >= self.max_lifetime
                {
                    "it reached its maximum lifetime"
                } else if session.idle(now) >= self.idle_timeout {
                    "it sat idle past the idle timeout"
                } else {
                    return None;
                };
                Some((session.id.clone(), reason))
            })
            .collect();
        let mut closed = Vec::with_capacity(expired.len());
        for (id, reason) in expired {
            if let Some(session) = sessions.remove(&id) {
                session.closed.cancel();
                closed.push((session, reason));
            }
        }
        closed
    }

    /// Facts about each open session of `caller`, oldest first.
    pub fn list(&self, now: Instant, caller: &Actor) -> Vec<SessionInfo> {
        let sessions = self.lock();
        let mut list: Vec<(Instant, SessionInfo)> = sessions
            .values()
            .filter(|session| session.belongs_to(caller))
            .map(|session| (session.created, self.info(session, now)))
            .collect();
        list.sort_by_key(|(created, _)| *created);
        list.into_iter().map(|(_, info)| info).collect()
    }

    /// Facts about one session.
    pub fn info(&self, session: &Session, now: Instant) -> SessionInfo {
        let age = now.saturating_duration_since(session.created);
        let idle = session.idle(now);
        let expires_in = self
            .idle_timeout
            .saturating_sub(idle)
            .min(self.max_lifetime.saturating_sub(age));
        SessionInfo {
            session_id: session.id.clone(),
            language: session.language.into(),
            age_seconds: age.as_secs(),
            idle_seconds: idle.as_secs(),
            expires_in_seconds: expires_in.as_secs(),
            runs: session.runs.load(Ordering::Relaxed),
            busy: session.is_busy(),
        }
    }

    /// Sessions open now.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Applies the policy's network and module rules before a run: each run
/// gets a fresh view of the gate, so request and byte budgets are per run.
/// Returns the run's gate, whose events list the run's requests.
pub fn prepare_run(
    sandbox: &mut Sandbox,
    config: &crate::config::ServerConfig,
    execution_id: &str,
) -> Option<Arc<RunGate>> {
    if let Some(modules) = &config.allowed_modules {
        sandbox.set_allowed_modules(modules.clone());
    }
    let gate = config
        .network
        .as_ref()
        .map(|gate| gate.for_execution(execution_id));
    if let Some(gate) = &gate {
        sandbox.set_network(gate.clone());
    }
    gate
}

/// Creates a sandbox with no standard input and `files` preopened.
pub fn new_sandbox(
    runtime: &Runtime,
    language: Language,
    files: &FileAccess,
) -> Result<Sandbox, RuntimeError> {
    Sandbox::new(runtime, language, files, Vec::new())
}
