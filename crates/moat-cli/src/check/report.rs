//! The reports of a check: the human summary and the `--json` document.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use moat_egress::EgressEvent;
use moat_runtime::{GuestError, Language, Limits, Outcome};
use serde::Serialize;

use super::verdict::{Failure, Status, Verdict};

/// Counts of verdicts by status.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Totals {
    /// Scripts checked.
    pub total: usize,
    /// Scripts that passed.
    pub passed: usize,
    /// Scripts that failed.
    pub failed: usize,
    /// Scripts moat could not run.
    pub errors: usize,
}

impl Totals {
    pub fn of(verdicts: &[Verdict]) -> Self {
        let count = |status| verdicts.iter().filter(|v| v.status == status).count();
        Totals {
            total: verdicts.len(),
            passed: count(Status::Pass),
            failed: count(Status::Fail),
            errors: count(Status::Error),
        }
    }
}

/// Writes the human summary line of one verdict, with its reasons indented.
pub fn write_verdict(out: &mut impl Write, verdict: &Verdict) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<5} {} ({})",
        verdict.status.label(),
        verdict.path,
        format_duration(verdict.duration)
    )
    .context("failed to write the summary")?;
    for failure in &verdict.failures {
        writeln!(out, "        {}: {}", failure.kind.name(), failure.message)
            .context("failed to write the summary")?;
    }
    Ok(())
}

/// Writes the totals line that ends the human summary.
pub fn write_totals(
    out: &mut impl Write,
    totals: Totals,
    policy: &str,
    elapsed: Duration,
) -> anyhow::Result<()> {
    let noun = match totals.total {
        1 => "script",
        _ => "scripts",
    };
    let mut line = format!(
        "\n{} {noun} checked under {policy}: {} passed, {} failed",
        totals.total, totals.passed, totals.failed
    );
    if totals.errors > 0 {
        line.push_str(&format!(", {} could not be run", totals.errors));
    }
    line.push_str(&format!(" ({})", format_duration(elapsed)));
    writeln!(out, "{line}").context("failed to write the summary")?;
    Ok(())
}

/// `12 ms` under ten seconds, else `12.3 s`.
pub fn format_duration(duration: Duration) -> String {
    match duration.as_millis() {
        millis @ 0..10_000 => format!("{millis} ms"),
        _ => format!("{:.1} s", duration.as_secs_f64()),
    }
}

/// The `--json` document.
#[derive(Serialize)]
pub struct JsonDocument<'a> {
    /// The policy the scripts ran under.
    pub policy: JsonPolicy<'a>,
    /// Counts by status.
    pub totals: Totals,
    /// One entry per script, sorted by path.
    pub scripts: Vec<JsonVerdict<'a>>,
}

/// The policy, as the JSON document names it.
#[derive(Serialize)]
pub struct JsonPolicy<'a> {
    /// The policy's `name`, if it has one.
    pub name: Option<&'a str>,
    /// The file, or "built-in" for the embedded CI policy.
    pub source: &'a str,
    /// SHA-256 of the policy text.
    pub sha256: &'a str,
}

/// One verdict in the JSON document.
#[derive(Serialize)]
pub struct JsonVerdict<'a> {
    path: &'a str,
    language: Language,
    status: Status,
    failures: &'a [Failure],
    /// File and line of the expectations, if any.
    expectations: Option<&'a str>,
    duration_ms: u128,
    /// `None` when the script was not run.
    run: Option<JsonRun<'a>>,
}

#[derive(Serialize)]
struct JsonRun<'a> {
    outcome: Outcome,
    exit_code: Option<i32>,
    error: Option<&'a GuestError>,
    limit_message: Option<&'a str>,
    stdout: String,
    stderr: String,
    stdout_truncated: bool,
    stderr_truncated: bool,
    duration_us: u128,
    fuel_used: u64,
    peak_memory_bytes: u64,
    limits: Limits,
    guest_hash: &'a str,
    egress: &'a [EgressEvent],
}

impl<'a> JsonVerdict<'a> {
    pub fn new(verdict: &'a Verdict) -> Self {
        let run = verdict.execution.as_ref().map(|execution| {
            let report = &execution.report;
            JsonRun {
                outcome: report.outcome,
                exit_code: report.exit_code,
                error: report.error.as_ref(),
                limit_message: report.limit_message.as_deref(),
                stdout: String::from_utf8_lossy(&report.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&report.stderr).into_owned(),
                stdout_truncated: report.stdout_truncated,
                stderr_truncated: report.stderr_truncated,
                duration_us: report.duration.as_micros(),
                fuel_used: report.fuel_used,
                peak_memory_bytes: report.peak_memory_bytes,
                limits: execution.limits,
                guest_hash: &execution.guest_hash,
                egress: &execution.egress,
            }
        });
        JsonVerdict {
            path: &verdict.path,
            language: verdict.language,
            status: verdict.status,
            failures: &verdict.failures,
            expectations: verdict.expectations.as_deref(),
            duration_ms: verdict.duration.as_millis(),
            run,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_millis(42)), "42 ms");
        assert_eq!(format_duration(Duration::from_millis(12_345)), "12.3 s");
    }
}
