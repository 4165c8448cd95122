//! moat's built-in defaults, which apply wherever a policy leaves a value unset.

// These constants are meant as the one source of the defaults for the runtime,
// the CLI and the MCP server. `policy/default.toml` writes them out for
// reviewers, and a test checks that it matches.

use std::time::Duration;

use crate::model::{EgressRule, LimitValues, LimitsSection, SessionsSection};

/// Wall-clock time one run may take, host calls included. Guards against
/// infinite loops and code that sleeps or waits forever.
pub const BUILTIN_TIMEOUT: Duration = Duration::from_secs(30);

/// WebAssembly instructions one run may execute. Guards against CPU-bound
/// code independently of machine speed, so a verdict is the same on a fast
/// and a slow machine.
pub const BUILTIN_FUEL: u64 = 10_000_000_000;

/// Bytes of linear memory one run may grow to. Guards the host's memory
/// against code that allocates without bound.
pub const BUILTIN_MEMORY_BYTES: u64 = 512 << 20;

/// Bytes of stdout kept before the run is stopped. Guards the host and the
/// caller against code that prints without bound.
pub const BUILTIN_STDOUT_BYTES: u64 = 1 << 20;

/// Bytes of stderr kept before the run is stopped.
pub const BUILTIN_STDERR_BYTES: u64 = 1 << 20;

/// Upper bound for any memory limit: a 32-bit guest cannot address more.
pub const MAX_MEMORY_BYTES: u64 = 4 << 30;

/// Time after which `moat serve` closes a session that received no call.
pub const BUILTIN_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Time after which `moat serve` closes a session, however busy.
pub const BUILTIN_SESSION_MAX_LIFETIME: Duration = Duration::from_secs(4 * 3600);

/// Sessions `moat serve` keeps open at once.
pub const BUILTIN_MAX_SESSIONS: u32 = 16;

/// Methods an egress rule allows when it lists none: reads only.
pub const DEFAULT_EGRESS_METHODS: &[&str] = &["GET", "HEAD"];

/// Guest path of the scratch directory every run gets.
pub const WORKSPACE_GUEST_PATH: &str = "/workspace";

/// Limits with every value filled in, from the policy or from the built-in
/// defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveLimits {
    /// Wall-clock time, host calls included.
    pub timeout: Duration,
    /// WebAssembly instructions.
    pub fuel: u64,
    /// Bytes of linear memory.
    pub memory_bytes: u64,
    /// Bytes of captured stdout.
    pub stdout_bytes: u64,
    /// Bytes of captured stderr.
    pub stderr_bytes: u64,
}

impl EffectiveLimits {
    /// The built-in limits.
    pub const BUILTIN: EffectiveLimits = EffectiveLimits {
        timeout: BUILTIN_TIMEOUT,
        fuel: BUILTIN_FUEL,
        memory_bytes: BUILTIN_MEMORY_BYTES,
        stdout_bytes: BUILTIN_STDOUT_BYTES,
        stderr_bytes: BUILTIN_STDERR_BYTES,
    };

    /// Fills each value that `values` leaves unset from `fallback`.
    fn fill(values: &LimitValues, fallback: EffectiveLimits) -> EffectiveLimits {
        EffectiveLimits {
            timeout: values.timeout.map_or(fallback.timeout, |t| t.0),
            fuel: values.fuel.unwrap_or(fallback.fuel),
            memory_bytes: values.memory.map_or(fallback.memory_bytes, |m| m.0),
            stdout_bytes: values.stdout.map_or(fallback.stdout_bytes, |s| s.0),
            stderr_bytes: values.stderr.map_or(fallback.stderr_bytes, |s| s.0),
        }
    }
}

impl LimitsSection {
    /// Limits of a run whose caller asks for none: the policy's defaults,
    /// with the built-in value for each one it leaves unset.
    pub fn effective_default(&self) -> EffectiveLimits {
        EffectiveLimits::fill(&self.default, EffectiveLimits::BUILTIN)
    }

    /// Highest limits a caller may request: the policy's maxima, with the
    /// effective default for each one it leaves unset.
    pub fn effective_max(&self) -> EffectiveLimits {
        EffectiveLimits::fill(&self.max, self.effective_default())
    }
}

impl EgressRule {
    /// The port requests must use: the rule's, or the scheme's default.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }

    /// The methods the rule allows: its list, or [`DEFAULT_EGRESS_METHODS`]
    /// when the list is empty.
    pub fn effective_methods(&self) -> Vec<&str> {
        match self.methods.is_empty() {
            true => DEFAULT_EGRESS_METHODS.to_vec(),
            false => self.methods.iter().map(String::as_str).collect(),
        }
    }
}

impl SessionsSection {
    /// The idle timeout: the policy's, or [`BUILTIN_SESSION_IDLE_TIMEOUT`].
    pub fn effective_idle_timeout(&self) -> Duration {
        self.idle_timeout
            .map_or(BUILTIN_SESSION_IDLE_TIMEOUT, |t| t.0)
    }

    /// The maximum lifetime: the policy's, or
    /// [`BUILTIN_SESSION_MAX_LIFETIME`].
    pub fn effective_max_lifetime(&self) -> Duration {
        self.max_lifetime
            .map_or(BUILTIN_SESSION_MAX_LIFETIME, |t| t.0)
    }

    /// Sessions open at once: the policy's number, or
    /// [`BUILTIN_MAX_SESSIONS`].
    pub fn effective_max_sessions(&self) -> u32 {
        self.max_sessions.unwrap_or(BUILTIN_MAX_SESSIONS)
    }
}
