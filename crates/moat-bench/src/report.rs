//! The benchmark's results, the targets they are judged against, and their
//! plain-text rendering. The same structure is printed as JSON by `--json`.

use std::fmt::Write;
use std::path::PathBuf;

use moat_runtime::Language;
use serde::Serialize;

use crate::inprocess::{FreshSandbox, FuelCost, GuestLoad};
use crate::stats::Summary;

/// Target for the median fresh execution of `print(1)` in the Python guest.
pub const PYTHON_FRESH_TARGET_MS: f64 = 2.0;

/// Target for the median fresh execution of `console.log(1)` in the
/// JavaScript guest.
pub const JAVASCRIPT_FRESH_TARGET_MS: f64 = 0.5;

/// Target for the median `moat run hello.py` process once the compiled
/// guest is cached. A median equal to the limit misses.
pub const MOAT_RUN_TARGET_MS: f64 = 150.0;

/// A measurement, or the reason it was not made.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", content = "value", rename_all = "snake_case")]
pub enum Row<T> {
    Measured(T),
    Skipped(String),
}

impl<T> Row<T> {
    fn measured(&self) -> Option<&T> {
        match self {
            Row::Measured(value) => Some(value),
            Row::Skipped(_) => None,
        }
    }
}

/// How many runs each measurement used.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Settings {
    pub runs: u32,
    pub warmup: u32,
    pub reference_runs: u32,
    pub cli_runs: u32,
    pub fuel_runs: u32,
}

/// A reference interpreter started as a process.
#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    /// The command as a user would type it.
    pub command: &'static str,
    /// The guest whose fresh execution it is compared with.
    pub language: Language,
    /// The interpreter that was timed; a version manager's shim is resolved
    /// to the executable behind it.
    pub executable: Option<PathBuf>,
    pub timing: Row<Summary>,
}

/// `moat run hello.py` started as a process.
#[derive(Debug, Clone, Serialize)]
pub struct EndToEnd {
    pub command: String,
    pub timing: Summary,
}

/// A target and whether the measured median met it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetResult {
    pub name: &'static str,
    /// The bound, in milliseconds.
    pub limit_ms: f64,
    /// Whether a median equal to the bound passes.
    pub inclusive: bool,
    pub median_ms: Option<f64>,
    pub passed: Option<bool>,
}

/// Everything one benchmark run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub cpus: usize,
    pub guest_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub settings: Settings,
    pub guest_loads: Vec<GuestLoad>,
    /// One row for each guest, in `Language::ALL` order.
    pub fresh_sandbox: Vec<(Language, Row<FreshSandbox>)>,
    pub references: Vec<Reference>,
    pub end_to_end: Row<EndToEnd>,
    pub fuel_cost: Vec<(Language, Row<FuelCost>)>,
    pub targets: Vec<TargetResult>,
}

impl BenchReport {
    /// Judges the measured medians against the three targets.
    pub fn judge_targets(&mut self) {
        let python = self.fresh_median(Language::Python);
        let javascript = self.fresh_median(Language::JavaScript);
        let moat_run = self
            .end_to_end
            .measured()
            .map(|end_to_end| end_to_end.timing.median_ms);
        self.targets = vec![
            judge(
                "python fresh sandbox print(1)",
                PYTHON_FRESH_TARGET_MS,
                true,
                python,
            ),
            judge(
                "javascript fresh sandbox console.log(1)",
                JAVASCRIPT_FRESH_TARGET_MS,
                true,
                javascript,
            ),
            judge(
                "second moat run hello.py",
                MOAT_RUN_TARGET_MS,
                false,
                moat_run,
            ),
        ];
    }

    fn fresh_median(&self, language: Language) -> Option<f64> {
        self.fresh_sandbox
            .iter()
            .find(|(row_language, _)| *row_language == language)
            .and_then(|(_, row)| row.measured())
            .map(|fresh| fresh.total.median_ms)
    }

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

fn judge(
    name: &'static str,
    limit_ms: f64,
    inclusive: bool,
    median_ms: Option<f64>,
) -> TargetResult {
    let passed = median_ms.map(|median| match inclusive {
        true => median <= limit_ms,
        false => median < limit_ms,
    });
    TargetResult {
        name,
        limit_ms,
        inclusive,
        median_ms,
        passed,
    }
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

    #[test]
    fn judge_respects_inclusive_bound() {
        assert_eq!(judge("t", 2.0, true, Some(2.0)).passed, Some(true));
        assert_eq!(judge("t", 150.0, false, Some(150.0)).passed, Some(false));
        assert_eq!(judge("t", 2.0, true, None).passed, None);
    }
}
