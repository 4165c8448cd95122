//! The on-disk cache of compiled guests: a miss, a hit, and entries that
//! were corrupted or cut short and must be replaced.

use std::path::{Path, PathBuf};

use moat_runtime::{CacheStatus, ComponentCache, Language, Limits, Outcome, Runtime, Sandbox};
use tempfile::TempDir;

use crate::support::{cache_dir, config, loaded_runtime, require_guest};

/// Loads the Python guest in a new runtime that caches in `dir`.
fn load(dir: &Path) -> (Runtime, CacheStatus) {
    let runtime = Runtime::new(config(Some(ComponentCache::new(dir)))).expect("create a runtime");
    let info = runtime
        .load(Language::Python)
        .expect("load the python guest");
    (runtime, info.cache)
}

/// Runs `print(6 * 7)` in a fresh sandbox of `runtime`.
async fn check_runs(runtime: &Runtime) {
    let workspace = tempfile::tempdir().expect("create a workspace");
    let files = moat_runtime::FileAccess {
        workspace: workspace.path().to_path_buf(),
        grants: vec![],
    };
    let mut sandbox =
        Sandbox::new(runtime, Language::Python, &files, Vec::new()).expect("create a sandbox");
    let report = sandbox
        .run("print(6 * 7)", "main.py", &Limits::default())
        .await
        .expect("run");
    assert_eq!(report.outcome, Outcome::Ok, "report: {report:#?}");
    assert_eq!(report.stdout, b"42\n");
}

/// Returns the path of the Python guest's cache entry inside `dir`, for
/// the engine configuration that every runtime of these tests uses.
fn entry_path(dir: &Path) -> PathBuf {
    let runtime = loaded_runtime(Language::Python);
    let wasm = std::fs::read(require_guest(Language::Python)).expect("read the python guest");
    let hash = blake3::hash(&wasm);
    ComponentCache::new(dir).entry_path(runtime.engine(), Language::Python.name(), &hash)
}

/// Creates a temporary cache directory that contains a copy of the shared,
/// valid entry, so the test needs no compile before it corrupts the entry.
fn seeded_cache() -> (TempDir, PathBuf) {
    let shared = entry_path(&cache_dir());
    assert!(
        shared.is_file(),
        "the shared cache has no entry at {}",
        shared.display()
    );
    let dir = tempfile::tempdir().expect("create a cache dir");
    let entry = entry_path(dir.path());
    std::fs::copy(&shared, &entry).expect("copy the cache entry");
    (dir, entry)
}

#[tokio::test]
async fn cache_miss_then_hit() {
    require_guest(Language::Python);
    let dir = tempfile::tempdir().expect("create a cache dir");

    let (first, status) = load(dir.path());
    assert_eq!(status, CacheStatus::Miss);
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list the cache")
        .collect();
    assert_eq!(entries.len(), 1, "one entry after a miss: {entries:?}");
    assert!(entry_path(dir.path()).is_file());
    check_runs(&first).await;
    drop(first);

    let (second, status) = load(dir.path());
    assert_eq!(status, CacheStatus::Hit);
    check_runs(&second).await;
}

#[tokio::test]
async fn cache_same_runtime_reports_hit() {
    let runtime = loaded_runtime(Language::Python);

    let info = runtime.load(Language::Python).expect("load again");

    assert_eq!(info.cache, CacheStatus::Hit);
}

async fn check_replaced(corrupt: impl FnOnce(&mut Vec<u8>)) {
    let (dir, entry) = seeded_cache();
    let original = std::fs::read(&entry).expect("read the entry");
    let mut damaged = original.clone();
    corrupt(&mut damaged);
    assert_ne!(damaged, original);
    std::fs::write(&entry, &damaged).expect("write the damaged entry");

    let (runtime, status) = load(dir.path());
    assert_eq!(status, CacheStatus::Replaced);
    check_runs(&runtime).await;

    let rewritten = std::fs::read(&entry).expect("the entry is written again");
    assert_ne!(rewritten, damaged);
    assert_eq!(rewritten.len(), original.len());
    let (_, status) = load(dir.path());
    assert_eq!(status, CacheStatus::Hit);
}

#[tokio::test]
async fn cache_flipped_bytes_replaced() {
    check_replaced(|bytes| {
        let middle = bytes.len() / 2;
        for byte in &mut bytes[middle..middle + 16] {
            *byte ^= 0xff;
        }
    })
    .await;
}

#[tokio::test]
async fn cache_truncated_entry_replaced() {
    check_replaced(|bytes| bytes.truncate(bytes.len() / 2)).await;
}

#[tokio::test]
async fn cache_garbage_entry_replaced() {
    check_replaced(|bytes| *bytes = b"not a cache entry".to_vec()).await;
}
