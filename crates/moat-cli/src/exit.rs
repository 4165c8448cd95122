//! Exit codes of `moat run`.
//!
//! When the guest ran to an end of its own, moat exits with the guest's
//! status: 0 at a normal end, 1 after an uncaught exception or a trap, and
//! `n` after `sys.exit(n)` or `process.exit(n)` (taken modulo 256, as a
//! process would). A limit that stopped the run, and a failure of moat
//! itself, each have a code of their own near the top of the range, where
//! scripts rarely exit on purpose.

use moat_runtime::{Outcome, RunReport};

/// The run wrote more to stdout or stderr than its cap.
pub const OUTPUT_TRUNCATED: u8 = 121;
/// The run asked for more memory than its limit.
pub const MEMORY_LIMIT: u8 = 122;
/// The run used all of its fuel.
pub const FUEL_EXHAUSTED: u8 = 123;
/// The run passed its wall-clock timeout (the same code as GNU `timeout`).
pub const TIMEOUT: u8 = 124;
/// moat itself failed: bad arguments, a missing file, a missing guest.
pub const MOAT_ERROR: u8 = 125;

/// The process exit code for a finished run.
pub fn for_report(report: &RunReport) -> u8 {
    match report.outcome {
        Outcome::OutputTruncated => OUTPUT_TRUNCATED,
        Outcome::MemoryLimit => MEMORY_LIMIT,
        Outcome::FuelExhausted => FUEL_EXHAUSTED,
        Outcome::Timeout => TIMEOUT,
        Outcome::Ok | Outcome::Error => match report.exit_code {
            // Truncation to the low byte is what a process exit does.
            Some(code) => code as u8,
            None => 1,
        },
    }
}
