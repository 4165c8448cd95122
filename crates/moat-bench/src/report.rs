//! The benchmark's results and the targets they are judged against. The
//! same structure is printed as JSON by `--json`, and as a table by the
//! `text` module.

use std::path::PathBuf;

use moat_runtime::Language;
use serde::Serialize;

use crate::audit::{AuditCost, StoreLocation};
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

/// Target for what audit recording adds to a fresh execution: the median
/// with recording minus the median without, for each guest.
pub const AUDIT_RECORDING_TARGET_MS: f64 = 1.0;

/// A measurement, or the reason it was not made.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", content = "value", rename_all = "snake_case")]
pub enum Row<T> {
    Measured(T),
    Skipped(String),
}

impl<T> Row<T> {
    pub fn measured(&self) -> Option<&T> {
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
    pub audit_runs: u32,
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
    /// The measured median; for the audit recording targets, the median
    /// with recording minus the median without.
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
    /// The store that the recorded runs of `audit_cost` appended to.
    pub audit_store: StoreLocation,
    /// Appending 4 KiB to a file beside the audit store and syncing it: the
    /// floor under each append.
    pub disk_sync: Summary,
    /// One row for each guest, in `Language::ALL` order.
    pub audit_cost: Vec<(Language, Row<AuditCost>)>,
    pub references: Vec<Reference>,
    pub end_to_end: Row<EndToEnd>,
    pub fuel_cost: Vec<(Language, Row<FuelCost>)>,
    pub targets: Vec<TargetResult>,
}

impl BenchReport {
    /// Judges the measured medians against the targets: the three latency
    /// targets first, then the audit recording target of each guest in
    /// `Language::ALL` order.
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
        for language in Language::ALL {
            let added = self.audit_cost(language).map(|cost| cost.added_ms);
            self.targets.push(judge(
                audit_target_name(language),
                AUDIT_RECORDING_TARGET_MS,
                true,
                added,
            ));
        }
    }

    pub fn fresh_median(&self, language: Language) -> Option<f64> {
        self.fresh_sandbox
            .iter()
            .find(|(row_language, _)| *row_language == language)
            .and_then(|(_, row)| row.measured())
            .map(|fresh| fresh.total.median_ms)
    }

    fn audit_cost(&self, language: Language) -> Option<&AuditCost> {
        self.audit_cost
            .iter()
            .find(|(row_language, _)| *row_language == language)
            .and_then(|(_, row)| row.measured())
    }

    /// Returns the audit recording target of `language`.
    pub fn audit_target(&self, language: Language) -> Option<&TargetResult> {
        let name = audit_target_name(language);
        self.targets.iter().find(|target| target.name == name)
    }
}

fn audit_target_name(language: Language) -> &'static str {
    match language {
        Language::Python => "python audit recording, added median",
        Language::JavaScript => "javascript audit recording, added median",
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_respects_inclusive_bound() {
        assert_eq!(judge("t", 2.0, true, Some(2.0)).passed, Some(true));
        assert_eq!(judge("t", 150.0, false, Some(150.0)).passed, Some(false));
        assert_eq!(judge("t", 2.0, true, None).passed, None);
    }
}
