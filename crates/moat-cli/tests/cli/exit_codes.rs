//! Exit codes 121 to 125: one for each limit that stops a run and one for
//! failures of moat itself.

use std::time::{Duration, Instant};

use crate::support::{finish, json, moat, moat_javascript, moat_python, script, tempdir};

/// Generous bound for a run with a 1 s timeout on a busy shared machine.
const TIMEOUT_BOUND: Duration = Duration::from_secs(20);

#[test]
fn exit_output_truncated() {
    let dir = tempdir();
    let path = script(
        dir.path(),
        "loud.py",
        "while True:\n    print('0123456789')\n",
    );

    let finished = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .args(["--max-stdout", "1KiB"]),
    );

    assert_eq!(finished.code, 121, "{finished:#?}");
    assert_eq!(finished.stdout.len(), 1024);
    assert_eq!(
        finished.stderr,
        "moat: output_truncated: stdout passed its limit of 1024 bytes\n"
    );
}

#[test]
fn exit_output_truncated_json() {
    let dir = tempdir();
    let path = script(
        dir.path(),
        "loud.py",
        "while True:\n    print('0123456789')\n",
    );

    let finished =
        finish(
            moat_python()
                .arg("run")
                .arg(&path)
                .args(["--json", "--max-stdout", "1000"]),
        );

    assert_eq!(finished.code, 121, "{finished:#?}");
    let report = json(&finished);
    assert_eq!(report["outcome"], "output_truncated");
    assert_eq!(report["stdout"].as_str().map(str::len), Some(1000));
    assert_eq!(report["stdout_truncated"], true);
    assert_eq!(report["exit_code"], serde_json::Value::Null);
}

#[test]
fn exit_memory_limit() {
    let dir = tempdir();
    let path = script(
        dir.path(),
        "big.py",
        "data = bytearray(200 * 1024 * 1024)\n",
    );

    let finished = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .args(["--memory", "64MiB"]),
    );

    assert_eq!(finished.code, 122, "{finished:#?}");
    assert!(
        finished
            .stderr
            .starts_with("moat: memory_limit: guest asked for "),
        "{finished:#?}"
    );
    assert!(
        finished
            .stderr
            .ends_with(" bytes of linear memory, over its limit of 67108864 bytes\n"),
        "{finished:#?}"
    );
}

#[test]
fn exit_fuel_exhausted() {
    let dir = tempdir();
    let path = script(dir.path(), "spin.py", "while True:\n    pass\n");

    let finished = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .args(["--fuel", "10_000_000"]),
    );

    assert_eq!(finished.code, 123, "{finished:#?}");
    assert_eq!(
        finished.stderr,
        "moat: fuel_exhausted: the run used all of its fuel (10000000 instructions)\n"
    );
}

#[test]
fn exit_timeout_python() {
    let dir = tempdir();
    let path = script(dir.path(), "sleep.py", "import time\ntime.sleep(100)\n");
    let start = Instant::now();

    let finished = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .args(["--timeout", "1s"]),
    );

    assert!(
        start.elapsed() < TIMEOUT_BOUND,
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(finished.code, 124, "{finished:#?}");
    assert_eq!(
        finished.stderr,
        "moat: timeout: the run timed out after 1 s\n"
    );
}

#[test]
fn exit_timeout_javascript() {
    let dir = tempdir();
    let path = script(dir.path(), "spin.js", "for (;;) {}\n");
    let start = Instant::now();

    let finished = finish(moat_javascript().arg("run").arg(&path).args([
        "--timeout",
        "500ms",
        "--fuel",
        "1_000_000_000_000_000",
    ]));

    assert!(
        start.elapsed() < TIMEOUT_BOUND,
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(finished.code, 124, "{finished:#?}");
    assert_eq!(
        finished.stderr,
        "moat: timeout: the run timed out after 500 ms\n"
    );
}

#[test]
fn exit_moat_error() {
    let finished = finish(moat().args(["run", "does-not-exist.py"]));

    assert_eq!(finished.code, 125, "{finished:#?}");
}

#[test]
fn exit_guest_missing() {
    let dir = tempdir();
    let empty = tempdir();
    let path = script(dir.path(), "hello.py", "print(1)\n");

    let finished = finish(
        moat()
            .arg("run")
            .arg(&path)
            .env("MOAT_GUEST_DIR", empty.path()),
    );

    assert_eq!(finished.code, 125, "{finished:#?}");
    let expected = format!(
        "moat: error: no python guest at {}: build the guests with `cargo xtask guests` \
         or point --guest-dir (MOAT_GUEST_DIR) at a directory that holds python.wasm\n",
        empty.path().join("python.wasm").display()
    );
    assert_eq!(finished.stderr, expected);
}
