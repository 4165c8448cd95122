//! Helpers shared by the end-to-end tests: where the guests are, one shared
//! runtime, fresh sandboxes with their own scratch workspace, and asserts
//! that print the whole report when they fail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use moat_runtime::{
    ComponentCache, DirGrant, FileAccess, Language, Limits, Outcome, RunReport, Runtime,
    RuntimeConfig, Sandbox,
};
use tempfile::TempDir;

/// Returns the workspace root, because this crate lives in `<root>/tests`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits inside the workspace")
        .to_path_buf()
}

/// Directory of the built guests: `MOAT_GUEST_DIR`, else `target/guests`.
pub fn guest_dir() -> PathBuf {
    match std::env::var_os("MOAT_GUEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target/guests"),
    }
}

/// Directory of compiled guests shared across test processes:
/// `MOAT_CACHE_DIR`, else `target/moat-cache`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("MOAT_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target/moat-cache"),
    }
}

/// Directory of the test fixtures.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("tests/fixtures")
}

/// Fails the test unless the guest component for `language` exists.
pub fn require_guest(language: Language) -> PathBuf {
    let path = guest_dir().join(language.component_file());
    assert!(
        path.is_file(),
        "the {language} guest is missing at {}: run `cargo xtask guests` first \
         (or set MOAT_GUEST_DIR to the directory that holds {})",
        path.display(),
        language.component_file(),
    );
    path
}

/// Builds the configuration every runtime in these tests uses, with `cache`.
pub fn config(cache: Option<ComponentCache>) -> RuntimeConfig {
    RuntimeConfig {
        guest_dir: guest_dir(),
        cache,
        fuel_metering: true,
    }
}

/// Returns the one runtime of the whole test binary, created on first use.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let cache = ComponentCache::new(cache_dir());
        Runtime::new(config(Some(cache))).expect("create the shared runtime")
    })
}

/// Returns the shared runtime after loading the guest for `language`. Loading is
/// serialized so that parallel tests do not compile the same guest twice.
pub fn loaded_runtime(language: Language) -> &'static Runtime {
    static LOADED: OnceLock<Mutex<HashMap<Language, Result<(), String>>>> = OnceLock::new();

    require_guest(language);
    let runtime = runtime();
    let mut loaded = LOADED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let status = loaded.entry(language).or_insert_with(|| {
        runtime
            .load(language)
            .map(|_| ())
            .map_err(|error| error.to_string())
    });
    if let Err(error) = status {
        panic!("failed to load the {language} guest: {error}");
    }
    runtime
}

/// A sandbox with its own scratch workspace, which lives as long as it.
#[derive(Debug)]
pub struct Scratch {
    pub workspace: TempDir,
    pub sandbox: Sandbox,
}

impl Scratch {
    /// Runs `code` under the default limits.
    pub async fn run(&mut self, code: &str) -> RunReport {
        self.run_with(code, &Limits::default()).await
    }

    /// Runs `code` under `limits`; a runtime error fails the test.
    pub async fn run_with(&mut self, code: &str, limits: &Limits) -> RunReport {
        let filename = match self.sandbox.language() {
            Language::Python => "main.py",
            Language::JavaScript => "main.js",
        };
        self.sandbox
            .run(code, filename, limits)
            .await
            .expect("run the code")
    }
}

/// Creates a sandbox for `language` with only its workspace.
pub fn sandbox(language: Language) -> Scratch {
    sandbox_with(language, Vec::new())
}

/// Creates a sandbox for `language` with extra directory grants.
pub fn sandbox_with(language: Language, grants: Vec<DirGrant>) -> Scratch {
    let runtime = loaded_runtime(language);
    let workspace = tempfile::Builder::new()
        .prefix("moat-e2e-")
        .tempdir()
        .expect("create a scratch workspace");
    let files = FileAccess {
        workspace: workspace.path().to_path_buf(),
        grants,
    };
    let sandbox = Sandbox::new(runtime, language, &files, Vec::new()).expect("create a sandbox");
    Scratch { workspace, sandbox }
}

/// Runs `code` once in a fresh sandbox under the default limits.
pub async fn run(language: Language, code: &str) -> RunReport {
    sandbox(language).run(code).await
}

/// Runs Python `code` once in a fresh sandbox.
pub async fn python(code: &str) -> RunReport {
    run(Language::Python, code).await
}

/// Runs JavaScript `code` once in a fresh sandbox.
pub async fn javascript(code: &str) -> RunReport {
    run(Language::JavaScript, code).await
}

/// Builds a grant of `host` at `guest`, read-only when `read_only` is set.
pub fn grant(host: &Path, guest: &str, read_only: bool) -> DirGrant {
    DirGrant {
        host_path: host.to_path_buf(),
        guest_path: guest.to_owned(),
        read_only,
    }
}

/// Limits that let only `timeout` stop a busy loop: fuel is effectively
/// unlimited.
pub fn timeout_limits(timeout: Duration) -> Limits {
    Limits {
        timeout,
        fuel: u64::MAX / 2,
        ..Limits::default()
    }
}

/// Returns the captured stdout as text.
pub fn stdout(report: &RunReport) -> String {
    String::from_utf8_lossy(&report.stdout).into_owned()
}

/// Returns the captured stderr as text.
pub fn stderr(report: &RunReport) -> String {
    String::from_utf8_lossy(&report.stderr).into_owned()
}

/// Fails the test unless the run ended with `outcome`, printing the report.
#[track_caller]
pub fn assert_outcome(report: &RunReport, outcome: Outcome) {
    assert_eq!(
        report.outcome, outcome,
        "unexpected outcome; report: {report:#?}"
    );
}

/// Fails the test unless the run ended normally with exit code 0.
#[track_caller]
pub fn assert_ok(report: &RunReport) {
    assert_outcome(report, Outcome::Ok);
    assert_eq!(report.exit_code, Some(0), "report: {report:#?}");
    assert!(report.error.is_none(), "report: {report:#?}");
}

/// Fails the test unless stdout is exactly `expected`.
#[track_caller]
pub fn assert_stdout(report: &RunReport, expected: &str) {
    assert_eq!(stdout(report), expected, "report: {report:#?}");
}
