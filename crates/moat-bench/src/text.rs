//! Plain-text rendering of the benchmark report: aligned tables with the
//! verdict beside each target.

use std::fmt::Write;

use moat_runtime::Language;

use crate::audit::AuditCost;
use crate::inprocess::{FreshSandbox, FuelCost};
use crate::report::{BenchReport, Reference, Row, TargetResult};
use crate::stats::Summary;

impl BenchReport {
    /// Renders the report as aligned plain text.
    pub fn render_text(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail, so the results are ignored.
        let _ = self.write_text(&mut text);
        text
    }

    fn write_text(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "moat-bench: release build, {} CPUs", self.cpus)?;
        writeln!(out, "guest dir  {}", self.guest_dir.display())?;
        writeln!(out, "cache dir  {}", self.cache_dir.display())?;

        writeln!(out, "\nGuest loading (once per runtime, before any timing)")?;
        for load in &self.guest_loads {
            let metering = match load.fuel_metering {
                true => "fuel and epochs",
                false => "epochs only",
            };
            let label = format!("{} guest, {metering}", load.language);
            writeln!(
                out,
                "  {label:<44} {:>11}   cache {}",
                ms(load.load_ms),
                load.cache
            )?;
        }

        let settings = self.settings;
        writeln!(
            out,
            "\nFresh sandbox in-process: {} runs after {} warm-up runs",
            settings.runs, settings.warmup
        )?;
        writeln!(out, "  {:<44} {:>11} {:>11}   target", "", "median", "p95")?;
        for (language, row) in &self.fresh_sandbox {
            let target = self.target_for(*language);
            match row {
                Row::Measured(fresh) => write_fresh(out, fresh, target)?,
                Row::Skipped(reason) => writeln!(out, "  {language:<44} {reason}")?,
            }
        }

        self.write_audit_section(out)?;

        writeln!(
            out,
            "\nReference processes: {} runs after {} warm-up runs",
            settings.reference_runs, settings.warmup
        )?;
        for reference in &self.references {
            self.write_reference(out, reference)?;
        }

        writeln!(
            out,
            "\nEnd to end: moat run as a process, {} runs after 1 warm-up run, compiled guest cached",
            settings.cli_runs
        )?;
        match &self.end_to_end {
            Row::Measured(end_to_end) => {
                let target = self.targets.get(2);
                write_summary(out, "moat run hello.py", &end_to_end.timing, target)?;
                writeln!(out, "    command: {}", end_to_end.command)?;
            }
            Row::Skipped(reason) => writeln!(out, "  {:<44} {reason}", "moat run hello.py")?,
        }

        writeln!(
            out,
            "\nFuel metering cost, CPU-bound loop in a fresh sandbox: {} runs each, alternating",
            settings.fuel_runs
        )?;
        for (language, row) in &self.fuel_cost {
            match row {
                Row::Measured(cost) => write_fuel_cost(out, cost)?,
                Row::Skipped(reason) => writeln!(out, "  {language:<44} {reason}")?,
            }
        }

        writeln!(out, "\nTargets (medians; a miss is reported, never fatal)")?;
        for target in &self.targets {
            let bound = match target.inclusive {
                true => "<=",
                false => "<",
            };
            let median = target
                .median_ms
                .map(ms)
                .unwrap_or_else(|| "not measured".into());
            writeln!(
                out,
                "  {:<44} {median:>11}   {bound} {}   {}",
                target.name,
                ms(target.limit_ms),
                verdict(target)
            )?;
        }
        Ok(())
    }

    fn write_audit_section(&self, out: &mut String) -> std::fmt::Result {
        let settings = self.settings;
        writeln!(
            out,
            "\nAudit recording: fresh sandbox without and with the records of moat run, \
             {} runs each after {} warm-up runs, alternating",
            settings.audit_runs, settings.warmup
        )?;
        let filesystem = self
            .audit_store
            .filesystem
            .as_deref()
            .unwrap_or("filesystem unknown");
        writeln!(
            out,
            "  store {} ({filesystem}; SQLite WAL, synchronous=FULL)",
            self.audit_store.path.display()
        )?;
        writeln!(out, "  {:<44} {:>11} {:>11}   target", "", "median", "p95")?;
        write_summary(
            out,
            "4 KiB append + fdatasync beside the store",
            &self.disk_sync,
            None,
        )?;
        for (language, row) in &self.audit_cost {
            match row {
                Row::Measured(cost) => {
                    write_audit_cost(out, cost, self.audit_target(*language))?;
                }
                Row::Skipped(reason) => writeln!(out, "  {language:<44} {reason}")?,
            }
        }
        Ok(())
    }

    fn target_for(&self, language: Language) -> Option<&TargetResult> {
        match language {
            Language::Python => self.targets.first(),
            Language::JavaScript => self.targets.get(1),
        }
    }

    fn write_reference(&self, out: &mut String, reference: &Reference) -> std::fmt::Result {
        let summary = match &reference.timing {
            Row::Measured(summary) => summary,
            Row::Skipped(reason) => return writeln!(out, "  {:<44} {reason}", reference.command),
        };
        write_summary(out, reference.command, summary, None)?;
        if let Some(executable) = &reference.executable {
            writeln!(out, "    executable: {}", executable.display())?;
        }

        if let Some(fresh) = self.fresh_median(reference.language) {
            let comparison = compare(fresh, summary.median_ms);
            writeln!(
                out,
                "    moat {} fresh sandbox in-process: {comparison}",
                reference.language
            )?;
        }
        let moat_run = self
            .end_to_end
            .measured()
            .map(|end_to_end| end_to_end.timing.median_ms);
        if let (Language::Python, Some(moat_run)) = (reference.language, moat_run) {
            let comparison = compare(moat_run, summary.median_ms);
            writeln!(out, "    moat run hello.py as a process: {comparison}")?;
        }
        Ok(())
    }
}

fn write_fresh(
    out: &mut String,
    fresh: &FreshSandbox,
    target: Option<&TargetResult>,
) -> std::fmt::Result {
    let label = format!("{} {}", fresh.language, fresh.code);
    writeln!(out, "  {label}")?;
    write_summary(out, "  Sandbox::new + first run", &fresh.total, target)?;
    write_summary(out, "    Sandbox::new", &fresh.setup, None)?;
    write_summary(
        out,
        "    first run (instantiate + call)",
        &fresh.first_run,
        None,
    )?;
    write_summary(
        out,
        "  second run, same instance (call only)",
        &fresh.reused_run,
        None,
    )?;
    write_summary(out, "  drop (not in the total)", &fresh.teardown, None)?;
    let instantiate = fresh.first_run.median_ms - fresh.reused_run.median_ms;
    writeln!(
        out,
        "    instantiation and first-call setup (first minus second run median): {}",
        ms(instantiate)
    )
}

fn write_audit_cost(
    out: &mut String,
    cost: &AuditCost,
    target: Option<&TargetResult>,
) -> std::fmt::Result {
    writeln!(out, "  {} {}", cost.language, cost.code)?;
    write_summary(out, "  without recording", &cost.without_recording, None)?;
    write_summary(
        out,
        "  with recording (start, run, finish)",
        &cost.with_recording,
        None,
    )?;
    write_summary(out, "  start + finish appends alone", &cost.appends, None)?;
    write_summary(out, "    start record", &cost.start_append, None)?;
    write_summary(out, "    finish record", &cost.finish_append, None)?;
    let label = format!("  added by recording ({:.2}x)", cost.ratio);
    write!(out, "  {label:<44} {:>11} {:>11}", ms(cost.added_ms), "")?;
    if let Some(target) = target {
        write!(out, "   <= {}  {}", ms(target.limit_ms), verdict(target))?;
    }
    writeln!(out)
}

fn write_fuel_cost(out: &mut String, cost: &FuelCost) -> std::fmt::Result {
    writeln!(out, "  {} {}", cost.language, cost.code)?;
    write_summary(out, "  fuel and epochs", &cost.fuel, None)?;
    write_summary(out, "  epochs only", &cost.epoch_only, None)?;
    writeln!(
        out,
        "    fuel metering makes it {:.2}x as slow (ratio of medians)",
        cost.ratio
    )
}

fn write_summary(
    out: &mut String,
    label: &str,
    summary: &Summary,
    target: Option<&TargetResult>,
) -> std::fmt::Result {
    write!(
        out,
        "  {label:<44} {:>11} {:>11}",
        ms(summary.median_ms),
        ms(summary.p95_ms)
    )?;
    if let Some(target) = target {
        let bound = match target.inclusive {
            true => "<=",
            false => "<",
        };
        write!(
            out,
            "   {bound} {}  {}",
            ms(target.limit_ms),
            verdict(target)
        )?;
    }
    writeln!(out)
}

fn verdict(target: &TargetResult) -> &'static str {
    match target.passed {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "-",
    }
}

/// Phrases how `moat_ms` compares with `reference_ms`.
fn compare(moat_ms: f64, reference_ms: f64) -> String {
    if moat_ms <= reference_ms {
        format!(
            "{:.1}x faster ({} against {})",
            reference_ms / moat_ms,
            ms(moat_ms),
            ms(reference_ms)
        )
    } else {
        format!(
            "{:.1}x slower ({} against {})",
            moat_ms / reference_ms,
            ms(moat_ms),
            ms(reference_ms)
        )
    }
}

/// Milliseconds with three significant figures or more.
fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.3} ms")
    } else if value < 100.0 {
        format!("{value:.2} ms")
    } else {
        format!("{value:.1} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_says_faster_or_slower() {
        assert_eq!(
            compare(1.0, 10.0),
            "10.0x faster (1.000 ms against 10.00 ms)"
        );
        assert_eq!(
            compare(30.0, 10.0),
            "3.0x slower (30.00 ms against 10.00 ms)"
        );
    }
}
