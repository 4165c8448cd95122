//! State shared by every connection of one server: the runtime, the
//! sessions, the concurrency permits and the shutdown signals.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use moat_audit::{Recorder, SessionEventKind};
use moat_runtime::{Language, Runtime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::sessions::SessionManager;

/// How often expired sessions are looked for.
const EXPIRY_SCAN_INTERVAL: Duration = Duration::from_secs(1);

/// Everything the tools of all connections share.
#[derive(Debug)]
pub struct ServerState {
    /// The engine and compiled guests.
    pub runtime: Arc<Runtime>,
    /// Writes every run and session event to the audit trail.
    pub recorder: Arc<Recorder>,
    /// The configuration in force.
    pub config: ServerConfig,
    /// Open sessions.
    pub sessions: SessionManager,
    /// For each language, `None` when its guest loaded, or why it did not.
    pub guest_errors: HashMap<Language, Option<String>>,
    /// One permit per execution that may run at once.
    permits: Arc<Semaphore>,
    /// Set when shutdown starts: new runs are rejected.
    closing: AtomicBool,
    /// Cancelled when shutdown stops the runs still in progress.
    pub cancel_runs: CancellationToken,
}

impl ServerState {
    /// Loads both guests (compiling them or taking them from the cache) and
    /// prepares the shared state. A guest that fails to load leaves its
    /// language unavailable; the error is logged and returned by its tools.
    pub fn new(runtime: Arc<Runtime>, config: ServerConfig, recorder: Arc<Recorder>) -> Self {
        let mut guest_errors = HashMap::new();
        for language in Language::ALL {
            let error = match runtime.load(language) {
                Ok(info) => {
                    tracing::debug!(language = language.name(), hash = %info.hash, "guest ready");
                    None
                }
                Err(error) => {
                    tracing::warn!(language = language.name(), %error, "guest unavailable");
                    Some(error.to_string())
                }
            };
            guest_errors.insert(language, error);
        }

        let sessions = SessionManager::new(
            config.max_sessions,
            config.session_idle_timeout,
            config.session_max_lifetime,
        );
        ServerState {
            runtime,
            recorder,
            permits: Arc::new(Semaphore::new(config.max_concurrent_executions)),
            config,
            sessions,
            guest_errors,
            closing: AtomicBool::new(false),
            cancel_runs: CancellationToken::new(),
        }
    }

    /// Why `language` cannot run, if it cannot.
    pub fn guest_error(&self, language: Language) -> Option<&str> {
        self.guest_errors.get(&language).and_then(|e| e.as_deref())
    }

    /// Takes an execution permit without waiting; `None` when
    /// `max_concurrent_executions` runs are already in progress.
    pub fn try_permit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).try_acquire_owned().ok()
    }

    /// Whether shutdown has started.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Stops new runs, gives those in progress `grace` to finish, cancels
    /// the rest and waits for them to end, then closes every session.
    pub async fn shut_down(&self, grace: Duration) {
        self.closing.store(true, Ordering::Relaxed);
        let all = u32::try_from(self.config.max_concurrent_executions).unwrap_or(u32::MAX);

        let drained = tokio::time::timeout(grace, self.permits.acquire_many(all)).await;
        match drained {
            Ok(_) => tracing::info!("all executions finished"),
            Err(_) => {
                tracing::info!(
                    grace_ms = grace.as_millis() as u64,
                    "cancelling executions still running after the grace period"
                );
                self.cancel_runs.cancel();
                // A cancelled run stops within a few epoch ticks; the bound
                // only guards against a bug keeping shutdown waiting.
                let cancelled =
                    tokio::time::timeout(Duration::from_secs(5), self.permits.acquire_many(all))
                        .await;
                if cancelled.is_err() {
                    tracing::warn!("executions did not stop within 5 s of cancellation");
                }
            }
        }
        for session in self.sessions.close_all() {
            let _ = crate::audit::session(
                self,
                SessionEventKind::Closed,
                &session.id,
                &session.actor,
                session.language,
                Some("the server shut down"),
            )
            .await;
        }
    }

    /// Closes expired sessions every second until `stop` is cancelled.
    pub async fn expire_sessions(self: Arc<Self>, stop: CancellationToken) {
        let mut interval = tokio::time::interval(EXPIRY_SCAN_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = interval.tick() => {
                    for (session, reason) in self.sessions.expire(Instant::now()) {
                        tracing::info!(session = %session.id, reason, "session expired");
                        let _ = crate::audit::session(
                            &self,
                            SessionEventKind::Expired,
                            &session.id,
                            &session.actor,
                            session.language,
                            Some(reason),
                        )
                        .await;
                    }
                }
            }
        }
    }
}
