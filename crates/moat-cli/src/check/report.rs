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
    /// The run's audit `execution_id`, or `None` when it was not recorded.
    execution_id: Option<&'a str>,
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
            execution_id: verdict.execution_id.as_deref(),
            duration_ms: verdict.duration.as_millis(),
            run,
        }
    }
}

/// A writer for standard output that stops quietly when the reader goes
/// away, as `moat check | head` does. After a broken pipe, every write
/// succeeds without output, so the check still finishes, writes its JUnit
/// report and exits with the code of its verdicts.
pub struct QuietPipe<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> QuietPipe<W> {
    pub fn new(inner: W) -> Self {
        QuietPipe {
            inner,
            closed: false,
        }
    }

    /// Turns a broken pipe into success and remembers it.
    fn absorb<T>(&mut self, result: std::io::Result<T>, quiet: T) -> std::io::Result<T> {
        match result {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(quiet)
            }
            other => other,
        }
    }
}

impl<W: Write> Write for QuietPipe<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let result = self.inner.write(buf);
        self.absorb(result, buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.inner.flush();
        self.absorb(result, ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader has gone away.
    struct Broken {
        writes: usize,
    }

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            self.writes += 1;
            Err(std::io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn broken_pipe_stops_quietly() {
        let mut out = QuietPipe::new(Broken { writes: 0 });
        writeln!(out, "PASS  a.py").expect("a broken pipe is not an error");
        writeln!(out, "PASS  b.py").expect("later writes succeed");
        out.flush().expect("flush succeeds");
        assert_eq!(
            out.inner.writes, 1,
            "nothing is written after the pipe broke"
        );
    }

    #[test]
    fn other_errors_still_fail() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::StorageFull.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut out = QuietPipe::new(Full);
        assert!(writeln!(out, "PASS  a.py").is_err());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_millis(42)), "42 ms");
        assert_eq!(format_duration(Duration::from_millis(12_345)), "12.3 s");
    }
}
