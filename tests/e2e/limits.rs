//! Each limit stopping a run in both languages, the outcome it reports, and
//! the sandbox refusing further runs afterwards.

use std::time::{Duration, Instant};

use moat_runtime::{Language, Limits, Outcome, RunReport, RuntimeError};

use crate::support::{Scratch, assert_ok, assert_outcome, sandbox, stdout, timeout_limits};

/// Generous bound for a run with a 1 s timeout on a busy shared machine.
const TIMEOUT_BOUND: Duration = Duration::from_secs(20);

const MIB: u64 = 1024 * 1024;

/// Runs `code` under `limits` in a fresh sandbox, checks `outcome`, then
/// checks that the sandbox refuses the next run as poisoned by `reason`.
async fn run_until_limit(
    language: Language,
    code: &str,
    limits: &Limits,
    outcome: Outcome,
    reason: &str,
) -> (RunReport, Scratch) {
    let mut scratch = sandbox(language);
    let report = scratch.run_with(code, limits).await;
    assert_outcome(&report, outcome);
    assert_eq!(
        report.exit_code, None,
        "a limit leaves no exit code: {report:#?}"
    );
    assert!(
        report.error.is_none(),
        "a limit is not a guest error: {report:#?}"
    );
    assert!(scratch.sandbox.is_stopped());

    let error = scratch
        .sandbox
        .run("1", "next", &Limits::default())
        .await
        .expect_err("a stopped sandbox refuses to run");
    match &error {
        RuntimeError::SandboxPoisoned { reason: actual } => assert_eq!(actual, reason),
        other => panic!("expected SandboxPoisoned, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        format!(
            "this sandbox cannot run more code: its instance was stopped by an earlier \
             {reason}; start a new sandbox"
        )
    );
    (report, scratch)
}

async fn check_timeout(language: Language, code: &str) {
    let limits = timeout_limits(Duration::from_secs(1));
    let start = Instant::now();
    let (report, _) = run_until_limit(language, code, &limits, Outcome::Timeout, "timeout").await;

    assert!(
        start.elapsed() < TIMEOUT_BOUND,
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(
        report.limit_message.as_deref(),
        Some("the run timed out after 1 s")
    );
}

#[tokio::test]
async fn python_timeout_busy_loop() {
    check_timeout(Language::Python, "while True:\n    pass").await;
}

#[tokio::test]
async fn python_timeout_sleep() {
    // time.sleep waits in a host call, where no fuel burns and no epoch
    // check runs inside the guest.
    check_timeout(Language::Python, "import time\ntime.sleep(100)").await;
}

#[tokio::test]
async fn python_timeout_asyncio_sleep() {
    check_timeout(
        Language::Python,
        "import asyncio\nasyncio.run(asyncio.sleep(100))",
    )
    .await;
}

#[tokio::test]
async fn javascript_timeout_busy_loop() {
    check_timeout(Language::JavaScript, "for (;;) {}").await;
}

#[tokio::test]
async fn javascript_timeout_set_timeout() {
    check_timeout(
        Language::JavaScript,
        "await new Promise((r) => setTimeout(r, 100000));",
    )
    .await;
}

#[tokio::test]
async fn javascript_timeout_regex_backtracking() {
    // QuickJS has no backtracking limit: only the deadline stops this.
    check_timeout(Language::JavaScript, "/^(a+)+$/.test('a'.repeat(40) + 'b')").await;
}

async fn check_fuel(language: Language, code: &str) {
    let limits = Limits {
        fuel: 50_000_000,
        ..Limits::default()
    };
    let (report, _) = run_until_limit(
        language,
        code,
        &limits,
        Outcome::FuelExhausted,
        "fuel exhausted",
    )
    .await;

    assert_eq!(report.fuel_used, 50_000_000);
    assert_eq!(
        report.limit_message.as_deref(),
        Some("the run used all of its fuel (50000000 instructions)")
    );
}

#[tokio::test]
async fn python_fuel_exhausted() {
    check_fuel(Language::Python, "while True:\n    pass").await;
}

#[tokio::test]
async fn javascript_fuel_exhausted() {
    check_fuel(Language::JavaScript, "for (;;) {}").await;
}

#[tokio::test]
async fn python_fuel_reported() {
    let report = sandbox(Language::Python).run("sum(range(1000))").await;

    assert_ok(&report);
    assert!(report.fuel_used > 0);
    assert!(report.peak_memory_bytes > 0);
}

async fn check_memory(language: Language, code: &str) {
    let limits = Limits {
        memory_bytes: 64 * MIB,
        ..Limits::default()
    };
    let (report, _) = run_until_limit(
        language,
        code,
        &limits,
        Outcome::MemoryLimit,
        "memory limit",
    )
    .await;

    let message = report.limit_message.as_deref().expect("a limit message");
    assert!(
        message.ends_with("over its limit of 67108864 bytes"),
        "message: {message}"
    );
    assert!(
        report.peak_memory_bytes <= 64 * MIB,
        "peak: {}",
        report.peak_memory_bytes
    );
}

#[tokio::test]
async fn python_memory_limit() {
    check_memory(Language::Python, "data = bytearray(200 * 1024 * 1024)").await;
}

#[tokio::test]
async fn python_memory_limit_gradual() {
    check_memory(
        Language::Python,
        "chunks = []\nwhile True:\n    chunks.append(b'x' * 1_000_000)",
    )
    .await;
}

#[tokio::test]
async fn javascript_memory_limit() {
    check_memory(
        Language::JavaScript,
        "const data = new Uint8Array(200 * 1024 * 1024);",
    )
    .await;
}

async fn check_stdout_cap(language: Language, code: &str) {
    let limits = Limits {
        stdout_bytes: 1000,
        ..Limits::default()
    };
    let (report, _) = run_until_limit(
        language,
        code,
        &limits,
        Outcome::OutputTruncated,
        "output truncated",
    )
    .await;

    assert_eq!(report.stdout.len(), 1000);
    assert!(report.stdout_truncated);
    assert!(!report.stderr_truncated);
    assert!(stdout(&report).starts_with("line 0\nline 1\n"));
    assert_eq!(
        report.limit_message.as_deref(),
        Some("stdout passed its limit of 1000 bytes")
    );
}

#[tokio::test]
async fn python_stdout_truncated() {
    check_stdout_cap(
        Language::Python,
        "i = 0\nwhile True:\n    print(f'line {i}')\n    i += 1",
    )
    .await;
}

#[tokio::test]
async fn javascript_stdout_truncated() {
    check_stdout_cap(
        Language::JavaScript,
        "for (let i = 0; ; i++) console.log(`line ${i}`);",
    )
    .await;
}

#[tokio::test]
async fn python_stderr_truncated() {
    let limits = Limits {
        stderr_bytes: 500,
        ..Limits::default()
    };
    let code = "import sys\nwhile True:\n    print('warning', file=sys.stderr)";
    let (report, _) = run_until_limit(
        Language::Python,
        code,
        &limits,
        Outcome::OutputTruncated,
        "output truncated",
    )
    .await;

    assert_eq!(report.stderr.len(), 500);
    assert!(report.stderr_truncated);
    assert!(!report.stdout_truncated);
}

#[tokio::test]
async fn python_default_stdout_cap() {
    let code = "while True:\n    print('x' * 99)";
    let (report, _) = run_until_limit(
        Language::Python,
        code,
        &Limits::default(),
        Outcome::OutputTruncated,
        "output truncated",
    )
    .await;

    assert_eq!(
        report.stdout.len() as u64,
        moat_runtime::DEFAULT_STDOUT_BYTES
    );
    assert!(report.stdout_truncated);
}

#[tokio::test]
async fn limit_leaves_runtime_usable() {
    let limits = Limits {
        fuel: 10_000_000,
        ..Limits::default()
    };
    let mut first = sandbox(Language::Python);
    let stopped = first.run_with("while True:\n    pass", &limits).await;
    assert_outcome(&stopped, Outcome::FuelExhausted);

    let report = sandbox(Language::Python).run("print('still here')").await;

    assert_ok(&report);
    assert_eq!(stdout(&report), "still here\n");
}

#[tokio::test]
async fn zero_limit_rejected() {
    let mut scratch = sandbox(Language::Python);
    let limits = Limits {
        timeout: Duration::ZERO,
        ..Limits::default()
    };

    let error = scratch
        .sandbox
        .run("1", "main.py", &limits)
        .await
        .expect_err("zero timeout");

    assert_eq!(
        error.to_string(),
        "invalid timeout limit: must be greater than zero"
    );
    assert!(
        !scratch.sandbox.is_stopped(),
        "an invalid limit does not stop the sandbox"
    );
    assert_ok(&scratch.run("1").await);
}

#[tokio::test]
async fn python_output_before_limit_kept() {
    let limits = Limits {
        fuel: 50_000_000,
        ..Limits::default()
    };
    let code = "print('before the loop')\nwhile True:\n    pass";
    let (report, _) = run_until_limit(
        Language::Python,
        code,
        &limits,
        Outcome::FuelExhausted,
        "fuel exhausted",
    )
    .await;

    assert_eq!(stdout(&report), "before the loop\n");
}

#[tokio::test]
async fn javascript_output_before_limit_kept() {
    let limits = Limits {
        fuel: 50_000_000,
        ..Limits::default()
    };
    let code = "console.log('before the loop');\nfor (;;) {}";
    let (report, _) = run_until_limit(
        Language::JavaScript,
        code,
        &limits,
        Outcome::FuelExhausted,
        "fuel exhausted",
    )
    .await;

    assert_eq!(stdout(&report), "before the loop\n");
}

#[tokio::test]
async fn dropped_run_poisons_sandbox() {
    let mut scratch = sandbox(Language::Python);
    let limits = timeout_limits(Duration::from_secs(60));

    let cancelled = tokio::time::timeout(
        Duration::from_millis(300),
        scratch
            .sandbox
            .run("while True:\n    pass", "main.py", &limits),
    )
    .await;
    assert!(cancelled.is_err(), "the busy loop cannot finish on its own");

    let error = scratch
        .sandbox
        .run("1", "main.py", &Limits::default())
        .await
        .expect_err("poisoned");
    match error {
        RuntimeError::SandboxPoisoned { reason } => assert_eq!(reason, "cancelled run"),
        other => panic!("expected SandboxPoisoned, got {other:?}"),
    }
}

#[tokio::test]
async fn stdout_exactly_at_cap_ok() {
    let limits = Limits {
        stdout_bytes: 1000,
        ..Limits::default()
    };
    let mut scratch = sandbox(Language::Python);

    let report = scratch
        .run_with("import sys\nsys.stdout.write('x' * 1000)", &limits)
        .await;

    assert_ok(&report);
    assert_eq!(report.stdout.len(), 1000);
    assert!(!report.stdout_truncated);
}

#[tokio::test]
async fn stdout_one_past_cap_truncated() {
    let limits = Limits {
        stdout_bytes: 1000,
        ..Limits::default()
    };
    let mut scratch = sandbox(Language::Python);

    let report = scratch
        .run_with("import sys\nsys.stdout.write('x' * 1001)", &limits)
        .await;

    assert_outcome(&report, Outcome::OutputTruncated);
    assert_eq!(report.stdout.len(), 1000);
    assert!(report.stdout_truncated);
}

#[tokio::test]
async fn fuel_resets_each_run() {
    let code = "total = 0\nfor i in range(20_000):\n    total += i";
    let measured = sandbox(Language::Python).run(code).await;
    assert_ok(&measured);

    // The first run of a sandbox also pays for instantiation, so each later
    // run of the same code needs no more fuel than the measured one.
    let limits = Limits {
        fuel: measured.fuel_used * 3 / 2,
        ..Limits::default()
    };
    let mut scratch = sandbox(Language::Python);
    for run in 0..3 {
        let report = scratch.run_with(code, &limits).await;
        assert_eq!(report.outcome, Outcome::Ok, "run {run}: {report:#?}");
    }
}

#[tokio::test]
async fn memory_below_baseline_limit() {
    let limits = Limits {
        memory_bytes: 8 * MIB,
        ..Limits::default()
    };
    let (report, _) = run_until_limit(
        Language::Python,
        "1",
        &limits,
        Outcome::MemoryLimit,
        "memory limit",
    )
    .await;

    let message = report.limit_message.as_deref().expect("a limit message");
    assert!(
        message.ends_with("over its limit of 8388608 bytes"),
        "message: {message}"
    );
}

/// One large write must arrive whole: CPython's `sys.stdout` in the guest
/// drops what a stream does not accept in one call.
#[tokio::test]
async fn large_single_writes_kept_whole() {
    let limits = Limits {
        stdout_bytes: 8 * MIB,
        stderr_bytes: 8 * MIB,
        ..Limits::default()
    };
    let cases = [
        (
            Language::Python,
            "import sys\nprint('a' * 200_000)\nsys.stderr.write('b' * 3_000_000)",
        ),
        (
            Language::JavaScript,
            "console.log('a'.repeat(200000)); console.error('b'.repeat(2999999));",
        ),
    ];
    for (language, code) in cases {
        let report = sandbox(language).run_with(code, &limits).await;
        assert_ok(&report);
        assert_eq!(report.stdout.len(), 200_001, "{language:?} stdout");
        assert_eq!(report.stderr.len(), 3_000_000, "{language:?} stderr");
        assert!(!report.stdout_truncated && !report.stderr_truncated);
    }
}
