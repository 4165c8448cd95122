//! Helpers shared by the CLI tests: the binary with the test's guest and
//! cache directories, scripts in temporary directories, and the finished
//! process's status and output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Returns the workspace root, because this crate lives in
/// `<root>/crates/moat-cli`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("moat-cli sits two levels inside the workspace")
        .to_path_buf()
}

/// Directory of the built guests: `MOAT_GUEST_DIR`, else `target/guests`.
pub fn guest_dir() -> PathBuf {
    match std::env::var_os("MOAT_GUEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target/guests"),
    }
}

/// Directory of compiled guests: `MOAT_CACHE_DIR`, else `target/moat-cache`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("MOAT_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target/moat-cache"),
    }
}

/// The audit store of tests that do not check their records:
/// `target/test-audit/cli.db`, shared by every test process (SQLite
/// serializes their appends). Tests of the audit trail pass their own
/// `--audit-db`.
pub fn shared_audit_db() -> PathBuf {
    workspace_root().join("target/test-audit/cli.db")
}

/// Prepares the `moat` binary with the guest and cache directories of these
/// tests, run from the workspace root. Nothing about the guests is checked, so
/// this suits tests of argument errors.
pub fn moat() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_moat"));
    command
        .env("MOAT_GUEST_DIR", guest_dir())
        .env("MOAT_CACHE_DIR", cache_dir())
        .env("MOAT_AUDIT_DB", shared_audit_db())
        .env_remove("MOAT_LOG")
        // A developer's collector must not receive the tests' spans.
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .current_dir(workspace_root());
    command
}

/// Prepares [`moat`] after checking that the guest `file` exists and is compiled in
/// the cache, so that parallel tests do not all compile it at once.
pub fn moat_with_guest(file: &'static str) -> Command {
    static PYTHON: OnceLock<()> = OnceLock::new();
    static JAVASCRIPT: OnceLock<()> = OnceLock::new();

    let (cell, lang) = match file {
        "python.wasm" => (&PYTHON, "python"),
        "javascript.wasm" => (&JAVASCRIPT, "javascript"),
        other => panic!("unknown guest file {other}"),
    };
    let path = guest_dir().join(file);
    assert!(
        path.is_file(),
        "the {lang} guest is missing at {}: run `cargo xtask guests` first \
         (or set MOAT_GUEST_DIR to the directory that holds {file})",
        path.display(),
    );
    cell.get_or_init(|| {
        let warm = finish_with_stdin(moat().args(["run", "-", "--lang", lang]), b"1");
        assert_eq!(warm.code, 0, "warming the {lang} guest failed: {warm:#?}");
    });
    moat()
}

/// Prepares [`moat_with_guest`] for the Python guest.
pub fn moat_python() -> Command {
    moat_with_guest("python.wasm")
}

/// Prepares [`moat_with_guest`] for the JavaScript guest.
pub fn moat_javascript() -> Command {
    moat_with_guest("javascript.wasm")
}

/// A finished `moat` process.
#[derive(Debug)]
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` with empty stdin and waits for it.
pub fn finish(command: &mut Command) -> Finished {
    finish_with_stdin(command, b"")
}

/// Runs `command` with `input` on stdin and waits for it.
pub fn finish_with_stdin(command: &mut Command, input: &[u8]) -> Finished {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start moat");
    let mut stdin = child.stdin.take().expect("piped stdin");
    // moat may exit on a bad argument before it reads its input.
    match stdin.write_all(input) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            panic!("failed to write moat's stdin: {error}")
        }
        _ => drop(stdin),
    }
    let output = child.wait_with_output().expect("wait for moat");
    Finished {
        code: output
            .status
            .code()
            .expect("moat exited with a status, not a signal"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Writes `contents` to `name` in `dir` and returns its path.
pub fn script(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write the script");
    path
}

/// Creates a temporary directory that is deleted when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("moat-cli-test-")
        .tempdir()
        .expect("create a temporary directory")
}

/// Parses the `--json` report printed on stdout.
pub fn json(finished: &Finished) -> serde_json::Value {
    serde_json::from_str(&finished.stdout)
        .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {finished:#?}"))
}
