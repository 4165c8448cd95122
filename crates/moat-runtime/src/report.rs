//! The result of one run: what the guest printed and returned, and how and
//! why it ended.

use std::time::Duration;

use serde::{Serialize, Serializer};

/// How a run ended. Every limit that stops a run has its own variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The code ran to its end, or exited with status 0.
    Ok,
    /// The code raised an uncaught exception, exited with a non-zero status,
    /// or the guest trapped.
    Error,
    /// The wall-clock deadline passed.
    Timeout,
    /// The code used up its fuel.
    FuelExhausted,
    /// The code asked for more linear memory than its limit.
    MemoryLimit,
    /// The code wrote more to stdout or stderr than their caps.
    OutputTruncated,
}

impl Outcome {
    /// The outcome's name as it appears in reports.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::FuelExhausted => "fuel_exhausted",
            Outcome::MemoryLimit => "memory_limit",
            Outcome::OutputTruncated => "output_truncated",
        }
    }

    /// Whether a resource limit ended the run.
    pub fn is_limit(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Error)
    }
}

/// An uncaught exception, or a trap, that ended a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestError {
    /// Exception class or error name; `Trap` when the guest trapped.
    pub name: String,
    /// The exception's message.
    pub message: String,
    /// Traceback or stack trace, as the language prints it.
    pub stack: String,
}

/// Everything a caller learns from one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// How the run ended.
    pub outcome: Outcome,
    /// The run's exit status: the guest's own (0 at a normal end, 1 after an
    /// uncaught exception, `n` after `sys.exit(n)`), or `None` when a limit
    /// stopped it.
    pub exit_code: Option<i32>,
    /// Display form of the final expression's value, if it had one.
    pub result: Option<String>,
    /// The uncaught exception or trap, if any.
    pub error: Option<GuestError>,
    /// A message naming the limit that ended the run, if one did.
    pub limit_message: Option<String>,
    /// Captured standard output, up to its cap.
    #[serde(serialize_with = "lossy_utf8")]
    pub stdout: Vec<u8>,
    /// Captured standard error, up to its cap.
    #[serde(serialize_with = "lossy_utf8")]
    pub stderr: Vec<u8>,
    /// Whether stdout passed its cap and was cut.
    pub stdout_truncated: bool,
    /// Whether stderr passed its cap and was cut.
    pub stderr_truncated: bool,
    /// Wall-clock time of the run, instantiation excluded.
    #[serde(serialize_with = "micros", rename = "duration_us")]
    pub duration: Duration,
    /// Fuel the run consumed; 0 when fuel metering is off.
    pub fuel_used: u64,
    /// Highest linear memory the sandbox has held, in bytes.
    pub peak_memory_bytes: u64,
}

fn lossy_utf8<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&String::from_utf8_lossy(bytes))
}

fn micros<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u128(duration.as_micros())
}
