//! A guest trap ends the run as an error named `Trap` and leaves the host
//! and its other sandboxes working.

use moat_runtime::{Language, Limits, Outcome, RuntimeError};

use crate::support::{assert_ok, assert_outcome, python, sandbox, stdout};

/// Compares two lists nested 200,000 deep. CPython's list comparison
/// recurses in C once a level, which exhausts the WebAssembly call stack
/// before any Python recursion check fires.
const DEEP_C_RECURSION: &str = r#"
left = []
right = []
for _ in range(200_000):
    left = [left]
    right = [right]
left == right
"#;

#[tokio::test]
async fn python_trap_is_error() {
    let mut scratch = sandbox(Language::Python);
    let report = scratch.run(DEEP_C_RECURSION).await;

    assert_outcome(&report, Outcome::Error);
    assert_eq!(report.exit_code, None);
    assert!(report.limit_message.is_none(), "report: {report:#?}");
    let error = report.error.as_ref().expect("a trap error");
    assert_eq!(error.name, "Trap");
    assert_eq!(
        error.message,
        "the guest trapped: wasm trap: call stack exhausted"
    );
    assert!(
        error.stack.starts_with(&error.message),
        "stack: {}",
        error.stack
    );

    let next = scratch
        .sandbox
        .run("1", "main.py", &Limits::default())
        .await;
    match next {
        Err(RuntimeError::SandboxPoisoned { reason }) => assert_eq!(reason, "trap"),
        other => panic!("expected SandboxPoisoned after a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn python_trap_host_survives() {
    let trapped = python(DEEP_C_RECURSION).await;
    assert_outcome(&trapped, Outcome::Error);

    let report = python("print('after the trap')").await;

    assert_ok(&report);
    assert_eq!(stdout(&report), "after the trap\n");
}
