//! Checks the `--junit` path before anything runs: its directory must exist,
//! and writing it must not replace a file that the check reads or the audit
//! store keeps.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// Most symlinks followed to find the file that a write would create, as
/// Linux's own limit for a path lookup (40).
const MAX_SYMLINKS: usize = 40;

/// A file that the JUnit report must not replace.
#[derive(Debug)]
pub struct Protected {
    /// The file's role, as an error message names it, such as "the audit
    /// store".
    pub role: String,
    /// The file, as the user gave it or as it was found.
    pub path: PathBuf,
}

impl Protected {
    pub fn new(role: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Protected {
            role: role.into(),
            path: path.into(),
        }
    }
}

/// Fails when the JUnit report cannot be written to `path` later, or when
/// writing it would replace one of the `protected` files. Two paths are the
/// same file when they resolve to the same canonical path, and a path that
/// does not exist yet resolves through its directory. On Unix, two existing
/// paths with the same device and inode, such as hard links, are the same
/// file too.
pub fn check_report_path(path: &Path, protected: &[Protected]) -> anyhow::Result<()> {
    let parent = parent_dir(path);
    if !parent.is_dir() {
        bail!(
            "cannot write the JUnit report {}: directory {} does not exist",
            path.display(),
            parent.display()
        );
    }
    if path.is_dir() {
        bail!(
            "cannot write the JUnit report {}: it is a directory",
            path.display()
        );
    }

    let target = write_target(path);
    for file in protected {
        let same_target = target.is_some() && target == write_target(&file.path);
        if same_target || same_file(path, &file.path) {
            bail!(
                "cannot write the JUnit report to {}: it is {} {}; choose another --junit path",
                path.display(),
                file.role,
                file.path.display()
            );
        }
    }
    Ok(())
}

/// Returns the canonical path of the file that writing `path` would write:
/// the file itself when it exists, else the file that a dangling symlink
/// names, else the canonical directory joined with the name. Returns `None`
/// when the directory cannot be resolved.
fn write_target(path: &Path) -> Option<PathBuf> {
    let mut path = path.to_path_buf();
    for _ in 0..MAX_SYMLINKS {
        if let Ok(canonical) = std::fs::canonicalize(&path) {
            return Some(canonical);
        }
        let parent = parent_dir(&path).to_path_buf();
        match std::fs::read_link(&path) {
            Ok(link) => path = parent.join(link),
            Err(_) => {
                let name = path.file_name()?;
                return Some(std::fs::canonicalize(&parent).ok()?.join(name));
            }
        }
    }
    None
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;

    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> bool {
    false
}

/// Returns the directory of `path` as written, `.` for a bare file name.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().expect("create a temporary directory")
    }

    fn store(dir: &Path) -> Vec<Protected> {
        vec![
            Protected::new("the audit store", dir.join("au.db")),
            Protected::new("the audit store's write-ahead log", dir.join("au.db-wal")),
        ]
    }

    #[test]
    fn new_report_beside_store_is_accepted() {
        let dir = tempdir();
        check_report_path(&dir.path().join("junit.xml"), &store(dir.path()))
            .expect("a new file is fine");
    }

    #[test]
    fn store_path_is_rejected_before_it_exists() {
        let dir = tempdir();
        let report = dir.path().join("sub/../au.db-wal");
        std::fs::create_dir(dir.path().join("sub")).expect("create sub");
        let error = check_report_path(&report, &store(dir.path()))
            .expect_err("the store's log")
            .to_string();
        assert!(
            error.contains("it is the audit store's write-ahead log"),
            "{error}"
        );
        assert!(
            error.contains("au.db-wal; choose another --junit path"),
            "{error}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn links_to_protected_files_are_rejected() {
        let dir = tempdir();
        let script = dir.path().join("a.py");
        std::fs::write(&script, "print(1)\n").expect("write");
        let protected = [Protected::new("the script", &script)];

        let hard = dir.path().join("hard.xml");
        std::fs::hard_link(&script, &hard).expect("hard link");
        let error = check_report_path(&hard, &protected).expect_err("hard link");
        assert!(error.to_string().contains("it is the script"), "{error}");

        let soft = dir.path().join("soft.xml");
        std::os::unix::fs::symlink("a.py", &soft).expect("symlink");
        let error = check_report_path(&soft, &protected).expect_err("symlink");
        assert!(error.to_string().contains("it is the script"), "{error}");

        let dangling = dir.path().join("dangling.xml");
        std::os::unix::fs::symlink("au.db-wal", &dangling).expect("symlink");
        let error = check_report_path(&dangling, &store(dir.path())).expect_err("dangling");
        assert!(error.to_string().contains("write-ahead log"), "{error}");
    }
}
