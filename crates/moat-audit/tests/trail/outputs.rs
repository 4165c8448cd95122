//! Export and report outputs never land on the store or its SQLite side
//! files, however the path is spelled, and missing parents are created.

use std::path::{Path, PathBuf};

use moat_audit::{AuditError, AuditStore, Filter, check_output, export, write_output};

use crate::support::{Run, record_run, store_path, tempdir};

/// Creates a store with one run and returns it open read-only.
fn store_in(dir: &Path) -> (PathBuf, AuditStore) {
    let path = store_path(dir);
    let store = AuditStore::open(&path).expect("create");
    record_run(&store, &Run::new("r1"), true);
    drop(store);
    let store = AuditStore::open_read_only(&path).expect("open");
    (path, store)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

fn assert_store_intact(path: &Path) {
    let store = AuditStore::open_read_only(path).expect("the store still opens");
    let verification = store.verify(None).expect("verify");
    assert!(verification.valid, "{verification:#?}");
    assert_eq!(verification.records, 2);
}

#[test]
fn report_over_store_rejected() {
    let dir = tempdir();
    let (path, store) = store_in(dir.path());
    let spellings = [
        path.clone(),
        dir.path().join("./audit.db"),
        dir.path().join("new/../audit.db"),
        with_suffix(&path, "-wal"),
        with_suffix(&path, "-shm"),
        with_suffix(&path, "-journal"),
        with_suffix(&path, "-wal").join("report.html"),
    ];

    for output in spellings {
        let error = write_output(&store, &output, b"<html>").expect_err("rejected");
        assert!(
            matches!(error, AuditError::OutputIsStore { .. }),
            "{output:?}: {error}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "cannot write to {}: it is the audit store {} or one of its -wal, -shm and -journal files; choose another output path",
                output.display(),
                path.display()
            )
        );
    }
    assert!(!dir.path().join("new").exists());
    assert!(!with_suffix(&path, "-wal").is_dir());
    assert_store_intact(&path);
}

#[cfg(unix)]
#[test]
fn links_to_store_rejected() {
    let dir = tempdir();
    let (path, store) = store_in(dir.path());
    let symlink = dir.path().join("link.html");
    std::os::unix::fs::symlink(&path, &symlink).expect("symlink");
    let hard_link = dir.path().join("hard.html");
    std::fs::hard_link(&path, &hard_link).expect("hard link");
    let linked_dir = dir.path().join("linked-dir");
    std::os::unix::fs::symlink(dir.path(), &linked_dir).expect("symlink a directory");

    for output in [symlink, hard_link, linked_dir.join("audit.db")] {
        let error = check_output(&store, &output).expect_err("rejected");
        assert!(
            matches!(error, AuditError::OutputIsStore { .. }),
            "{output:?}: {error}"
        );
    }
    assert_store_intact(&path);
}

#[test]
fn export_over_store_files_rejected() {
    let dir = tempdir();
    let (path, store) = store_in(dir.path());
    let wal_dir = with_suffix(&path, "-wal");

    let over_wal = export(&store, &Filter::default(), &wal_dir, &[]).expect_err("rejected");
    let below_shm = export(
        &store,
        &Filter::default(),
        &with_suffix(&path, "-shm").join("bundle"),
        &[],
    )
    .expect_err("rejected");
    let over_store = export(&store, &Filter::default(), &path, &[]).expect_err("rejected");
    let store_dir = export(&store, &Filter::default(), dir.path(), &[]).expect_err("rejected");

    assert!(matches!(over_wal, AuditError::OutputIsStore { .. }));
    assert!(matches!(below_shm, AuditError::OutputIsStore { .. }));
    assert!(matches!(over_store, AuditError::OutputIsStore { .. }));
    assert!(
        store_dir.to_string().contains("the directory is not empty"),
        "{store_dir}"
    );
    assert!(!wal_dir.is_dir());
    assert_store_intact(&path);
}

#[test]
fn report_creates_missing_parents() {
    let dir = tempdir();
    let (_path, store) = store_in(dir.path());
    let output = dir.path().join("reports/2026/march.html");

    write_output(&store, &output, b"<html>").expect("write");
    write_output(&store, &output, b"<html>again").expect("replace");

    assert_eq!(
        std::fs::read(&output).expect("read the report"),
        b"<html>again"
    );
    let leftovers: Vec<_> = std::fs::read_dir(output.parent().expect("parent"))
        .expect("list")
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert_eq!(leftovers, ["march.html"]);
}

#[cfg(unix)]
#[test]
fn report_readable_like_new_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let (_path, store) = store_in(dir.path());
    let output = dir.path().join("report.html");
    let plain = dir.path().join("plain.txt");
    std::fs::write(&plain, b"x").expect("write a plain file");

    write_output(&store, &output, b"<html>").expect("write");

    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&output), mode(&plain));
}

#[test]
fn report_into_directory_rejected() {
    let dir = tempdir();
    let (_path, store) = store_in(dir.path());

    let error = write_output(&store, dir.path(), b"<html>").expect_err("a directory");

    assert_eq!(
        error.to_string(),
        format!(
            "cannot write {}: it is a directory; give the path of a file",
            dir.path().display()
        )
    );
}

#[test]
fn export_into_empty_directory_by_dot() {
    let dir = tempdir();
    let (_path, store) = store_in(dir.path());
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");

    export(&store, &Filter::default(), &empty.join("."), &[]).expect("export");

    let mut names: Vec<String> = std::fs::read_dir(&empty)
        .expect("list")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "README.txt",
            "SHA256SUMS",
            "manifest.json",
            "records.jsonl",
            "summary.csv",
            "verification.json"
        ]
    );
}

#[cfg(unix)]
#[test]
fn export_to_dangling_link_rejected() {
    let dir = tempdir();
    let (_path, store) = store_in(dir.path());
    let link = dir.path().join("bundle");
    std::os::unix::fs::symlink(dir.path().join("missing"), &link).expect("symlink");

    let error = export(&store, &Filter::default(), &link, &[]).expect_err("rejected");

    assert_eq!(
        error.to_string(),
        format!(
            "cannot export to {}: it is a symbolic link to a path that does not exist; choose a new directory",
            link.display()
        )
    );
}
