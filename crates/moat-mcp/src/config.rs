//! The server's configuration: default and maximum limits, session quotas,
//! concurrency and size caps, with their documented defaults.

use std::time::Duration;

use moat_runtime::{DirGrant, Limits, MAX_MEMORY_BYTES};

/// Time a session may sit unused before it is closed. Guards the host's
/// memory and disk against sessions that clients forget.
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Time a session may live in total, however busy. Bounds how long one
/// interpreter's state, and its workspace, can grow.
pub const DEFAULT_SESSION_MAX_LIFETIME: Duration = Duration::from_secs(4 * 3600);

/// Sessions open at once. Each holds an interpreter instance (tens of MiB
/// for Python) and a scratch directory.
pub const DEFAULT_MAX_SESSIONS: usize = 16;

/// Executions running at once across all sessions. Past it a run is
/// rejected with a busy error instead of queueing.
pub const DEFAULT_MAX_CONCURRENT_EXECUTIONS: usize = 8;

/// Size of the `code` argument of one run, in bytes.
pub const DEFAULT_MAX_CODE_BYTES: usize = 1024 * 1024;

/// Size of one workspace file that a client writes or reads, and of one
/// file returned inline after a run, in bytes.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Size of one request message, in bytes: an HTTP request body, or a line
/// over stdio. A larger message is refused (HTTP 413) or, over stdio,
/// dropped by the MCP library, as the official MCP SDKs drop input they
/// cannot read. The default fits the code and one file of
/// [`DEFAULT_MAX_FILE_BYTES`] in base64.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// Time running executions get to finish after SIGINT or SIGTERM before
/// they are cancelled.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Default wall-clock limit of one run over MCP. Shorter than `moat run`'s,
/// because a model waits for the answer in a conversation.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// Highest wall-clock limit a request may ask for.
pub const MAX_RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Highest fuel a request may ask for: about ten times the default.
pub const MAX_RUN_FUEL: u64 = 100_000_000_000;

/// Highest linear memory a request may ask for, in bytes.
pub const MAX_RUN_MEMORY_BYTES: u64 = MAX_MEMORY_BYTES;

/// Highest stdout or stderr cap a request may ask for, in bytes.
pub const MAX_RUN_OUTPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Room for the JSON-RPC envelope and arguments around a file's content.
const MESSAGE_OVERHEAD_BYTES: u64 = 64 * 1024;

/// Everything `moat serve` can be told, filled from flags or a policy file.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Limits of a run that asks for none.
    pub default_limits: Limits,
    /// Upper bound of each limit; a request asking for more gets this.
    pub max_limits: Limits,
    /// Time an unused session stays open.
    pub session_idle_timeout: Duration,
    /// Time a session stays open in total.
    pub session_max_lifetime: Duration,
    /// Sessions open at once.
    pub max_sessions: usize,
    /// Executions running at once across all sessions.
    pub max_concurrent_executions: usize,
    /// Size of the `code` argument, in bytes.
    pub max_code_bytes: usize,
    /// Size of one file written, read or returned, in bytes.
    pub max_file_bytes: u64,
    /// Size of one request message, in bytes.
    pub max_request_bytes: usize,
    /// Host directories every sandbox sees besides its `/workspace`.
    pub grants: Vec<DirGrant>,
    /// Time running executions get to finish at shutdown.
    pub shutdown_grace: Duration,
    /// The policy's egress gate; `None` denies every HTTP request.
    pub network: Option<moat_egress::Gate>,
    /// One line per egress rule, for `describe_sandbox`.
    pub network_rules: Vec<String>,
    /// Python modules the policy allows by name; `None` allows every baked
    /// module.
    pub allowed_modules: Option<Vec<String>>,
    /// The caller that runs are recorded as when a request names none.
    pub identity: Identity,
}

/// The audit trail's view of a server: its transport and the principal,
/// tenant and model recorded when a request names none.
#[derive(Debug, Clone)]
pub struct Identity {
    /// stdio or HTTP.
    pub transport: moat_audit::Transport,
    /// Principal of every request: over stdio, the local user; over HTTP,
    /// the fallback when a request has no `X-Moat-Principal` header.
    pub principal: Option<String>,
    /// Tenant when a request has no `X-Moat-Tenant` header.
    pub tenant: Option<String>,
    /// Model when a request names none (`--model`).
    pub model: Option<String>,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            transport: moat_audit::Transport::Stdio,
            principal: None,
            tenant: None,
            model: None,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            default_limits: Limits {
                timeout: DEFAULT_RUN_TIMEOUT,
                ..Limits::default()
            },
            max_limits: Limits {
                timeout: MAX_RUN_TIMEOUT,
                fuel: MAX_RUN_FUEL,
                memory_bytes: MAX_RUN_MEMORY_BYTES,
                stdout_bytes: MAX_RUN_OUTPUT_BYTES,
                stderr_bytes: MAX_RUN_OUTPUT_BYTES,
            },
            session_idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            session_max_lifetime: DEFAULT_SESSION_MAX_LIFETIME,
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_concurrent_executions: DEFAULT_MAX_CONCURRENT_EXECUTIONS,
            max_code_bytes: DEFAULT_MAX_CODE_BYTES,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            grants: Vec::new(),
            network: None,
            network_rules: Vec::new(),
            allowed_modules: None,
            identity: Identity::default(),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

impl ServerConfig {
    /// Checks that the configuration can work: limits valid, each default
    /// within its maximum, quotas above zero.
    pub fn validate(&self) -> Result<(), String> {
        self.default_limits
            .validate()
            .map_err(|error| format!("invalid default limits: {error}"))?;
        self.max_limits
            .validate()
            .map_err(|error| format!("invalid maximum limits: {error}"))?;

        let defaults = &self.default_limits;
        let maxima = &self.max_limits;
        let pairs = [
            (
                "timeout (ms)",
                defaults.timeout.as_millis() as u64,
                maxima.timeout.as_millis() as u64,
            ),
            ("fuel", defaults.fuel, maxima.fuel),
            ("memory (bytes)", defaults.memory_bytes, maxima.memory_bytes),
            ("stdout (bytes)", defaults.stdout_bytes, maxima.stdout_bytes),
            ("stderr (bytes)", defaults.stderr_bytes, maxima.stderr_bytes),
        ];
        for (name, default, max) in pairs {
            if default > max {
                return Err(format!(
                    "the default {name} limit {default} is above its maximum {max}: \
                     lower the default or raise the maximum"
                ));
            }
        }

        let quotas = [
            ("max sessions", self.max_sessions),
            ("max concurrent executions", self.max_concurrent_executions),
            ("max code bytes", self.max_code_bytes),
        ];
        for (name, value) in quotas {
            if value == 0 {
                return Err(format!("invalid {name}: must be greater than zero"));
            }
        }
        if self.max_file_bytes == 0 {
            return Err("invalid max file bytes: must be greater than zero".into());
        }
        // A file travels as base64 inside a JSON message: four bytes for
        // every three, plus the message around it.
        let encoded_file = self.max_file_bytes.saturating_mul(4).div_ceil(3);
        let needed = encoded_file.saturating_add(MESSAGE_OVERHEAD_BYTES);
        if (self.max_request_bytes as u64) < needed {
            return Err(format!(
                "the request size limit of {} bytes cannot carry one file of the file size \
                 limit ({} bytes, {needed} bytes as a base64 message): raise the request size \
                 limit or lower the file size limit",
                self.max_request_bytes, self.max_file_bytes
            ));
        }
        if self.session_idle_timeout.is_zero() || self.session_max_lifetime.is_zero() {
            return Err("invalid session timeouts: both must be greater than zero".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert_eq!(ServerConfig::default().validate(), Ok(()));
    }

    #[test]
    fn default_above_maximum_is_rejected() {
        let mut config = ServerConfig::default();
        config.default_limits.fuel = config.max_limits.fuel + 1;
        let error = config.validate().expect_err("default above maximum");
        assert!(error.contains("default fuel limit"), "{error}");
    }

    #[test]
    fn request_limit_must_hold_a_file() {
        let config = ServerConfig {
            max_request_bytes: 4 * 1024 * 1024,
            ..ServerConfig::default()
        };
        let error = config
            .validate()
            .expect_err("10 MiB files in 4 MiB requests");
        assert!(error.contains("request size limit"), "{error}");
    }

    #[test]
    fn zero_quota_is_rejected() {
        let config = ServerConfig {
            max_sessions: 0,
            ..ServerConfig::default()
        };
        let error = config.validate().expect_err("zero sessions");
        assert_eq!(error, "invalid max sessions: must be greater than zero");
    }
}
