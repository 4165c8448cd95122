//! How Python code ends badly: rejected imports, `sys.exit` and uncaught
//! exceptions.

use moat_runtime::Outcome;

use crate::support::{assert_ok, assert_outcome, python, stderr};

#[tokio::test]
async fn import_unbaked_module_rejected() {
    for module in ["numpy", "tkinter", "ctypes", "pandas"] {
        let report = python(&format!("import {module}")).await;

        assert_outcome(&report, Outcome::Error);
        assert_eq!(report.exit_code, Some(1));
        let error = report.error.as_ref().expect("an import error");
        assert_eq!(error.name, "ModuleNotFoundError", "module {module}");
        let expected = format!("module '{module}' is not available in the moat sandbox");
        assert!(
            error.message.starts_with(&expected),
            "module {module}: {}",
            error.message
        );
        assert!(
            error.message.contains("json"),
            "lists what is available: {}",
            error.message
        );
    }
}

#[tokio::test]
async fn import_submodule_of_missing_rejected() {
    let report = python("import numpy.linalg").await;

    let error = report.error.as_ref().expect("an import error");
    assert_eq!(error.name, "ModuleNotFoundError");
    assert!(
        error.message.contains("not available in the moat sandbox"),
        "message: {}",
        error.message
    );
}

#[tokio::test]
async fn import_error_catchable() {
    let code = r#"
try:
    import numpy
except ImportError as error:
    print(type(error).__name__, error.name)
"#;
    let report = python(code).await;

    assert_ok(&report);
    assert_eq!(
        String::from_utf8_lossy(&report.stdout),
        "ModuleNotFoundError numpy\n"
    );
}

#[tokio::test]
async fn sys_exit_nonzero() {
    let report = python("import sys\nprint('before')\nsys.exit(3)\nprint('after')").await;

    assert_outcome(&report, Outcome::Error);
    assert_eq!(report.exit_code, Some(3));
    assert!(
        report.error.is_none(),
        "sys.exit is not an exception: {report:#?}"
    );
    assert_eq!(String::from_utf8_lossy(&report.stdout), "before\n");
}

#[tokio::test]
async fn sys_exit_zero() {
    let report = python("import sys\nsys.exit(0)").await;

    assert_ok(&report);
}

#[tokio::test]
async fn sys_exit_message() {
    let report = python("import sys\nsys.exit('giving up')").await;

    assert_outcome(&report, Outcome::Error);
    assert_eq!(report.exit_code, Some(1));
    assert_eq!(stderr(&report), "giving up\n");
}

#[tokio::test]
async fn exception_stack_starts_at_user_code() {
    let code = "def inner():\n    raise ValueError('bad value 7')\n\ndef outer():\n    inner()\n\nouter()\n";
    let report = python(code).await;

    assert_outcome(&report, Outcome::Error);
    assert_eq!(report.exit_code, Some(1));
    let error = report.error.as_ref().expect("an uncaught exception");
    assert_eq!(error.name, "ValueError");
    assert_eq!(error.message, "bad value 7");
    assert!(
        error
            .stack
            .starts_with("Traceback (most recent call last):\n  File \"main.py\", line 7"),
        "stack: {}",
        error.stack
    );
    assert!(error.stack.contains("in outer"), "stack: {}", error.stack);
    assert!(error.stack.contains("in inner"), "stack: {}", error.stack);
    assert!(
        error.stack.ends_with("ValueError: bad value 7\n"),
        "stack: {}",
        error.stack
    );
    assert!(
        !error.stack.contains("app.py"),
        "guest frames leak: {}",
        error.stack
    );
}

#[tokio::test]
async fn syntax_error_reported() {
    let report = python("def broken(:\n    pass").await;

    assert_outcome(&report, Outcome::Error);
    let error = report.error.as_ref().expect("a syntax error");
    assert_eq!(error.name, "SyntaxError");
    assert!(error.stack.contains("main.py"), "stack: {}", error.stack);
    assert!(
        !error.stack.contains("app.py"),
        "guest frames leak: {}",
        error.stack
    );
}

#[tokio::test]
async fn recursion_error_not_trap() {
    let code = "def down(n):\n    return down(n + 1)\ndown(0)";
    let report = python(code).await;

    assert_outcome(&report, Outcome::Error);
    let error = report.error.as_ref().expect("a recursion error");
    assert_eq!(error.name, "RecursionError");
}

#[tokio::test]
async fn sandbox_usable_after_exception() {
    let mut scratch = crate::support::sandbox(moat_runtime::Language::Python);

    let failed = scratch
        .run("kept = 'yes'\nraise RuntimeError('first cell fails')")
        .await;
    assert_outcome(&failed, Outcome::Error);

    let report = scratch.run("kept").await;
    assert_ok(&report);
    assert_eq!(report.result.as_deref(), Some("'yes'"));
}

#[tokio::test]
async fn sandbox_usable_after_sys_exit() {
    let mut scratch = crate::support::sandbox(moat_runtime::Language::Python);

    let exited = scratch.run("kept = 5\nimport sys\nsys.exit(4)").await;
    assert_eq!(exited.exit_code, Some(4));

    let report = scratch.run("kept * 2").await;
    assert_ok(&report);
    assert_eq!(report.result.as_deref(), Some("10"));
}
