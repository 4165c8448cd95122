//! The verdict on one script: pass, fail or error, and every reason, judged
//! from its run and its expectations.
//!
//! The rules, in order:
//! 1. Each violation the expectations do not list fails the script, and each
//!    listed violation that did not happen fails it too.
//! 2. When an unlisted violation ended the run, or any limit stopped it, the
//!    violations are the whole verdict: the run never finished on its own,
//!    so its exit code, output and files are not compared.
//! 3. Otherwise the exit code (0 unless expected otherwise), stdout, output
//!    files and `max_duration` are each compared, and each mismatch is a
//!    reason of its own.

use std::time::Duration;

use moat_egress::EgressEvent;
use moat_runtime::{Limits, RunReport};
use serde::Serialize;

use super::compare::compare;
use super::expectations::{ContentMatch, Expectations};
use super::violations::{Violation, ViolationKind};

/// Whether a script passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every expectation held and the policy was kept.
    Pass,
    /// The script broke the policy or missed an expectation.
    Fail,
    /// moat could not run the script; the script itself may be fine.
    Error,
}

impl Status {
    /// Returns the status as the summary shows it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Error => "ERROR",
        }
    }
}

/// The reason for a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The policy's wall-clock timeout stopped the run.
    Timeout,
    /// The run used all of its fuel.
    FuelExhausted,
    /// The run asked for more memory than the policy allows.
    MemoryLimit,
    /// The run wrote more output than the policy allows.
    OutputTruncated,
    /// The egress gate refused a request.
    EgressDenied,
    /// An import was refused.
    ImportRefused,
    /// A write to a read-only grant was refused.
    ReadOnlyWrite,
    /// A path outside the sandbox's directories was accessed.
    PathNotGranted,
    /// A violation listed in the expectations did not happen.
    MissingViolation,
    /// An uncaught exception or a trap ended the run.
    Exception,
    /// The script exited with another code than expected.
    ExitCode,
    /// Standard output did not match.
    Stdout,
    /// An expected output file is missing.
    FileMissing,
    /// An output file's content did not match.
    FileContent,
    /// The run took longer than its `max_duration`.
    MaxDuration,
    /// The script is empty.
    EmptyScript,
    /// The script is not valid UTF-8.
    InvalidScript,
    /// moat failed to run the script.
    MoatError,
}

impl FailureKind {
    /// Returns the kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::FuelExhausted => "fuel_exhausted",
            FailureKind::MemoryLimit => "memory_limit",
            FailureKind::OutputTruncated => "output_truncated",
            FailureKind::EgressDenied => "egress_denied",
            FailureKind::ImportRefused => "import_refused",
            FailureKind::ReadOnlyWrite => "read_only_write",
            FailureKind::PathNotGranted => "path_not_granted",
            FailureKind::MissingViolation => "missing_violation",
            FailureKind::Exception => "exception",
            FailureKind::ExitCode => "exit_code",
            FailureKind::Stdout => "stdout",
            FailureKind::FileMissing => "file_missing",
            FailureKind::FileContent => "file_content",
            FailureKind::MaxDuration => "max_duration",
            FailureKind::EmptyScript => "empty_script",
            FailureKind::InvalidScript => "invalid_script",
            FailureKind::MoatError => "moat_error",
        }
    }
}

impl From<ViolationKind> for FailureKind {
    fn from(kind: ViolationKind) -> Self {
        match kind {
            ViolationKind::Timeout => FailureKind::Timeout,
            ViolationKind::FuelExhausted => FailureKind::FuelExhausted,
            ViolationKind::MemoryLimit => FailureKind::MemoryLimit,
            ViolationKind::OutputTruncated => FailureKind::OutputTruncated,
            ViolationKind::EgressDenied => FailureKind::EgressDenied,
            ViolationKind::ImportRefused => FailureKind::ImportRefused,
            ViolationKind::ReadOnlyWrite => FailureKind::ReadOnlyWrite,
            ViolationKind::PathNotGranted => FailureKind::PathNotGranted,
        }
    }
}

/// One reason a script failed. The message contains no timings, so the
/// same run gives the same message every time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The kind of failure.
    pub kind: FailureKind,
    /// Description of what happened and what was expected.
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

/// Results of one run of a script, for the verdict, the reports and the
/// audit trail.
#[derive(Debug)]
pub struct Execution {
    /// The runtime's report.
    pub report: RunReport,
    /// Every egress request hop, allowed or refused.
    pub egress: Vec<EgressEvent>,
    /// The limits the run had.
    pub limits: Limits,
    /// BLAKE3 hash of the guest component.
    pub guest_hash: String,
    /// The policy violations found in the run.
    pub violations: Vec<Violation>,
    /// The state of each expected output file after the run.
    pub outputs: Vec<(String, OutputState)>,
    /// Whether the run's deadline was the script's `max_duration`, shorter
    /// than the policy's timeout.
    pub deadline_is_max_duration: bool,
}

/// An expected output file as found in the workspace after the run.
#[derive(Debug)]
pub enum OutputState {
    /// Not there.
    Missing,
    /// There, but a directory, a symlink or another non-regular file.
    NotAFile,
    /// Larger than moat reads for a comparison.
    TooLarge(u64),
    /// There, but reading it failed.
    Unreadable(String),
    /// The file's bytes.
    Contents(Vec<u8>),
}

/// The verdict on one script.
#[derive(Debug)]
pub struct Verdict {
    /// The script's path as reports show it.
    pub path: String,
    /// The script's language.
    pub language: moat_runtime::Language,
    /// Whether it passed.
    pub status: Status,
    /// Every reason it did not pass, in a fixed order.
    pub failures: Vec<Failure>,
    /// Location of its expectations, if any were written.
    pub expectations: Option<String>,
    /// The run, when the script was run.
    pub execution: Option<Execution>,
    /// The `execution_id` of the run's audit records, when the run was
    /// recorded; `moat audit show ID` prints them.
    pub execution_id: Option<String>,
    /// Wall-clock time spent on the script, sandbox set-up included.
    pub duration: Duration,
}

/// Judges a finished run against `expectations`.
pub fn judge(expectations: &Expectations, execution: &Execution) -> Vec<Failure> {
    let report = &execution.report;
    let mut failures = Vec::new();

    for violation in &execution.violations {
        if !expectations.violations.contains(&violation.kind) {
            failures.push(Failure::new(violation.kind.into(), &violation.message));
        }
    }
    for expected in &expectations.violations {
        if !execution.violations.iter().any(|v| v.kind == *expected) {
            failures.push(Failure::new(
                FailureKind::MissingViolation,
                format!(
                    "expected the violation {}, but the run had none",
                    expected.name()
                ),
            ));
        }
    }

    if report.outcome.is_limit() {
        if execution.deadline_is_max_duration && report.outcome == moat_runtime::Outcome::Timeout {
            failures.push(max_duration_failure(expectations));
        }
        return failures;
    }
    let ended_by_unlisted = execution
        .violations
        .iter()
        .any(|v| v.ended_run && !expectations.violations.contains(&v.kind));
    if ended_by_unlisted {
        return failures;
    }

    if let Some(failure) = exit_code_failure(expectations, execution) {
        failures.push(failure);
    }
    if let Some(expected) = &expectations.stdout
        && let Some(difference) = compare(expected, &report.stdout)
    {
        failures.push(Failure::new(
            FailureKind::Stdout,
            format!("stdout {difference}"),
        ));
    }
    for (expected, (path, state)) in expectations.outputs.iter().zip(&execution.outputs) {
        if let Some(failure) = output_failure(path, expected.content.as_ref(), state) {
            failures.push(failure);
        }
    }
    if let Some(max) = expectations.max_duration
        && report.duration > max
    {
        failures.push(max_duration_failure(expectations));
    }
    failures
}

fn max_duration_failure(expectations: &Expectations) -> Failure {
    let max = expectations.max_duration.unwrap_or_default();
    Failure::new(
        FailureKind::MaxDuration,
        format!(
            "the run took longer than its max_duration of {}",
            moat_policy::HumanDuration(max)
        ),
    )
}

fn exit_code_failure(expectations: &Expectations, execution: &Execution) -> Option<Failure> {
    let report = &execution.report;
    let requested = report.exit_code.unwrap_or(1);
    // The status a process would exit with: the low byte, as `moat run` and
    // a shell report it, so `sys.exit(-1)` is 255.
    let status = requested as u8;
    if status == expectations.exit_code {
        return None;
    }
    let expected = expectations.exit_code;
    let actual = match i32::from(status) == requested {
        true => status.to_string(),
        false => format!("{status} (the script asked for {requested})"),
    };

    let Some(error) = &report.error else {
        return Some(Failure::new(
            FailureKind::ExitCode,
            format!("exit code {actual}, expected {expected}"),
        ));
    };
    let explained_by = execution.violations.iter().find(|v| v.ended_run);
    if let Some(violation) = explained_by {
        // The violation is listed, or rule 2 would have ended judging.
        return Some(Failure::new(
            FailureKind::ExitCode,
            format!(
                "exit code {actual}, expected {expected}: the expected {} violation ended \
                 the run; expect exit_code = {status} as well",
                violation.kind.name()
            ),
        ));
    }
    Some(Failure::new(
        FailureKind::Exception,
        format!(
            "uncaught {}: {} (exit code {actual}, expected {expected})",
            error.name,
            first_line(&error.message)
        ),
    ))
}

fn output_failure(
    path: &str,
    expected: Option<&ContentMatch>,
    state: &OutputState,
) -> Option<Failure> {
    let contents = match state {
        OutputState::Contents(contents) => contents,
        OutputState::Missing => {
            return Some(Failure::new(
                FailureKind::FileMissing,
                format!("expected output file /workspace/{path} was not created"),
            ));
        }
        OutputState::NotAFile => {
            return Some(Failure::new(
                FailureKind::FileMissing,
                format!("expected output file /workspace/{path} is not a regular file"),
            ));
        }
        OutputState::TooLarge(size) => {
            return Some(Failure::new(
                FailureKind::FileContent,
                format!("output file /workspace/{path} has {size} bytes, more than moat compares"),
            ));
        }
        OutputState::Unreadable(error) => {
            return Some(Failure::new(
                FailureKind::FileContent,
                format!("failed to read output file /workspace/{path}: {error}"),
            ));
        }
    };
    let expected = expected?;
    let difference = compare(expected, contents)?;
    Some(Failure::new(
        FailureKind::FileContent,
        format!("output file /workspace/{path} {difference}"),
    ))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_runtime::{GuestError, Outcome};

    fn import_refused_run() -> Execution {
        let message = "module 'sqlite3' is not allowed by the moat policy (allowed: json)";
        Execution {
            report: RunReport {
                outcome: Outcome::Error,
                exit_code: Some(1),
                result: None,
                error: Some(GuestError {
                    name: "ModuleNotFoundError".to_owned(),
                    message: message.to_owned(),
                    stack: String::new(),
                }),
                limit_message: None,
                stdout: b"started\n".to_vec(),
                stderr: Vec::new(),
                stdout_truncated: false,
                stderr_truncated: false,
                duration: Duration::from_millis(5),
                fuel_used: 0,
                peak_memory_bytes: 0,
            },
            egress: Vec::new(),
            limits: Limits::default(),
            guest_hash: String::new(),
            violations: vec![Violation {
                kind: ViolationKind::ImportRefused,
                message: "import of module 'sqlite3' was refused".to_owned(),
                ended_run: true,
            }],
            outputs: Vec::new(),
            deadline_is_max_duration: false,
        }
    }

    fn kinds(failures: &[Failure]) -> Vec<FailureKind> {
        failures.iter().map(|failure| failure.kind).collect()
    }

    #[test]
    fn unlisted_violation_is_the_whole_verdict() {
        let expectations = Expectations {
            exit_code: 1,
            stdout: Some(ContentMatch::Exact("other\n".to_owned())),
            ..Expectations::default()
        };
        let failures = judge(&expectations, &import_refused_run());
        assert_eq!(kinds(&failures), [FailureKind::ImportRefused]);
    }

    #[test]
    fn listed_violation_with_expected_exit_passes() {
        let expectations = Expectations {
            exit_code: 1,
            violations: [ViolationKind::ImportRefused].into(),
            ..Expectations::default()
        };
        assert_eq!(judge(&expectations, &import_refused_run()), []);
    }

    #[test]
    fn listed_violation_still_checks_exit_code() {
        let expectations = Expectations {
            violations: [ViolationKind::ImportRefused].into(),
            ..Expectations::default()
        };
        let failures = judge(&expectations, &import_refused_run());
        assert_eq!(kinds(&failures), [FailureKind::ExitCode]);
        assert!(
            failures[0].message.contains("expect exit_code = 1"),
            "{failures:?}"
        );
    }

    #[test]
    fn listed_violation_still_checks_stdout() {
        let expectations = Expectations {
            exit_code: 1,
            stdout: Some(ContentMatch::Exact("other\n".to_owned())),
            violations: [ViolationKind::ImportRefused].into(),
            ..Expectations::default()
        };
        let failures = judge(&expectations, &import_refused_run());
        assert_eq!(kinds(&failures), [FailureKind::Stdout]);
    }

    #[test]
    fn missing_listed_violation_fails() {
        let mut run = import_refused_run();
        run.violations.clear();
        run.report.error = None;
        run.report.outcome = Outcome::Ok;
        run.report.exit_code = Some(0);
        let expectations = Expectations {
            violations: [ViolationKind::EgressDenied].into(),
            ..Expectations::default()
        };
        let failures = judge(&expectations, &run);
        assert_eq!(kinds(&failures), [FailureKind::MissingViolation]);
    }

    #[test]
    fn exit_code_compares_process_status() {
        let mut run = import_refused_run();
        run.violations.clear();
        run.report.error = None;
        run.report.exit_code = Some(-1);
        let expectations = Expectations {
            exit_code: 255,
            ..Expectations::default()
        };
        assert_eq!(judge(&expectations, &run), []);

        let failures = judge(&Expectations::default(), &run);
        assert_eq!(kinds(&failures), [FailureKind::ExitCode]);
        assert_eq!(
            failures[0].message,
            "exit code 255 (the script asked for -1), expected 0"
        );
    }

    #[test]
    fn limit_skips_output_checks() {
        let mut run = import_refused_run();
        run.report.outcome = Outcome::FuelExhausted;
        run.report.exit_code = None;
        run.report.error = None;
        run.violations = vec![Violation {
            kind: ViolationKind::FuelExhausted,
            message: "the run used all of its fuel".to_owned(),
            ended_run: true,
        }];
        let expectations = Expectations {
            stdout: Some(ContentMatch::Exact("other\n".to_owned())),
            violations: [ViolationKind::FuelExhausted].into(),
            ..Expectations::default()
        };
        assert_eq!(judge(&expectations, &run), []);
    }
}
