//! Host-side access to a sandbox's `/workspace`: paths confined to it,
//! sizes capped, and snapshots that tell which files a run changed.
//!
//! Every operation goes through a `cap_std::fs::Dir` opened on the
//! workspace directory, so a path (or a symlink the guest created) that
//! would leave it fails instead of reaching other host files.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::types::{Change, EntryKind, FileEntry};

/// Entries a listing or a snapshot visits before it stops. Guards the host
/// against a guest that creates millions of files.
pub const MAX_WALK_ENTRIES: usize = 10_000;

/// Directory depth a listing or a snapshot descends to.
const MAX_WALK_DEPTH: usize = 32;

/// A failed workspace operation. Each message names the path.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The path is not a plain relative path inside `/workspace`.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// The problem with the path.
        reason: &'static str,
    },
    /// Nothing exists at the path.
    #[error("no file at {path:?} in /workspace")]
    NotFound {
        /// The path as given.
        path: String,
    },
    /// The path names a directory or a symlink where a file was expected.
    #[error("{path:?} in /workspace is not a regular file")]
    NotAFile {
        /// The path as given.
        path: String,
    },
    /// The file is larger than the cap.
    #[error("file {path:?} is {size} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// The path as given.
        path: String,
        /// The file's size.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// The operating system refused the operation.
    #[error("failed to {step} {path:?} in /workspace: {source}")]
    Io {
        /// The operation, such as "write".
        step: &'static str,
        /// The path as given.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Opens the workspace directory as a capability. Only paths below it are
/// reachable through the returned handle.
pub fn open(workspace: &Path) -> Result<Dir, WorkspaceError> {
    Dir::open_ambient_dir(workspace, ambient_authority()).map_err(|source| WorkspaceError::Io {
        step: "open",
        path: workspace.display().to_string(),
        source,
    })
}

/// Checks a client-given path and returns it relative to `/workspace`.
/// A leading `/workspace/` is accepted and removed, because the code opens
/// the same file under that path.
pub fn relative_path(path: &str) -> Result<PathBuf, WorkspaceError> {
    let invalid = |reason| WorkspaceError::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    let trimmed = path
        .strip_prefix("/workspace/")
        .or_else(|| path.strip_prefix("./"))
        .unwrap_or(path);
    if trimmed.is_empty() {
        return Err(invalid("the path is empty"));
    }
    if trimmed.contains('\0') || trimmed.contains('\\') {
        return Err(invalid("it contains NUL or a backslash"));
    }
    if trimmed.starts_with('/') {
        return Err(invalid(
            "absolute paths are rejected: give a path relative to /workspace, such as out/data.csv",
        ));
    }
    let mut relative = PathBuf::new();
    for part in trimmed.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err(invalid("`..` is rejected: paths stay inside /workspace")),
            part => relative.push(part),
        }
    }
    if relative.as_os_str().is_empty() {
        return Err(invalid("the path names /workspace itself, not a file"));
    }
    Ok(relative)
}

/// Like [`relative_path`], but an empty path or `/workspace` names the root.
pub fn relative_dir(path: Option<&str>) -> Result<PathBuf, WorkspaceError> {
    match path {
        None | Some("") | Some(".") | Some("/workspace") | Some("/workspace/") => {
            Ok(PathBuf::new())
        }
        Some(path) => relative_path(path),
    }
}

/// Writes `bytes` to `path`, creating parent directories and replacing an
/// existing file.
pub fn write(dir: &Dir, path: &str, bytes: &[u8]) -> Result<PathBuf, WorkspaceError> {
    let relative = relative_path(path)?;
    let io = |step, source| WorkspaceError::Io {
        step,
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
        dir.create_dir_all(parent)
            .map_err(|source| io("create the parent directory of", source))?;
    }
    if let Ok(metadata) = dir.symlink_metadata(&relative)
        && metadata.is_dir()
    {
        return Err(WorkspaceError::NotAFile {
            path: path.to_owned(),
        });
    }
    dir.write(&relative, bytes)
        .map_err(|source| io("write", source))?;
    Ok(relative)
}

/// Reads the file at `path`, refusing files larger than `max_bytes`.
pub fn read(dir: &Dir, path: &str, max_bytes: u64) -> Result<Vec<u8>, WorkspaceError> {
    let relative = relative_path(path)?;
    let metadata = match dir.symlink_metadata(&relative) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(WorkspaceError::NotFound {
                path: path.to_owned(),
            });
        }
        Err(source) => {
            return Err(WorkspaceError::Io {
                step: "inspect",
                path: path.to_owned(),
                source,
            });
        }
    };
    if !metadata.is_file() {
        return Err(WorkspaceError::NotAFile {
            path: path.to_owned(),
        });
    }
    if metadata.len() > max_bytes {
        return Err(WorkspaceError::TooLarge {
            path: path.to_owned(),
            size: metadata.len(),
            max: max_bytes,
        });
    }

    let io = |source| WorkspaceError::Io {
        step: "read",
        path: path.to_owned(),
        source,
    };
    let file = dir.open(&relative).map_err(io)?;
    // The file may have grown since the size check; read at most one byte
    // past the cap to tell.
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(WorkspaceError::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
            max: max_bytes,
        });
    }
    Ok(bytes)
}

/// Lists the entries below `relative` (recursively, symlinks not followed),
/// at most [`MAX_WALK_ENTRIES`]. Returns the entries and whether the walk
/// stopped early.
pub fn list(dir: &Dir, relative: &Path) -> Result<(Vec<FileEntry>, bool), WorkspaceError> {
    let shown = relative.display().to_string();
    let start = match relative.as_os_str().is_empty() {
        true => dir.try_clone(),
        false => dir.open_dir(relative),
    };
    let start = start.map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => WorkspaceError::NotFound {
            path: shown.clone(),
        },
        _ => WorkspaceError::Io {
            step: "open the directory",
            path: shown.clone(),
            source,
        },
    })?;

    let mut entries = Vec::new();
    let truncated = walk(&start, relative, 0, &mut |path, kind, size, _| {
        entries.push(FileEntry {
            path: path.to_string_lossy().into_owned(),
            kind,
            size_bytes: size,
            uri: None,
        });
    })
    .map_err(|source| WorkspaceError::Io {
        step: "list",
        path: shown,
        source,
    })?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((entries, truncated))
}

/// Called for each entry of a walk with its path, kind, size and
/// modification time (files only).
type Visitor<'a> = dyn FnMut(&Path, EntryKind, u64, Option<SystemTime>) + 'a;

/// Visits entries below `dir` depth-first, calling `visit` with the path
/// (prefixed by `prefix`), kind and size. Returns whether it stopped at the
/// entry or depth cap.
fn walk(dir: &Dir, prefix: &Path, depth: usize, visit: &mut Visitor<'_>) -> std::io::Result<bool> {
    let mut count = 0;
    walk_counted(dir, prefix, depth, &mut count, visit)
}

fn walk_counted(
    dir: &Dir,
    prefix: &Path,
    depth: usize,
    count: &mut usize,
    visit: &mut Visitor<'_>,
) -> std::io::Result<bool> {
    if depth > MAX_WALK_DEPTH {
        return Ok(true);
    }
    for entry in dir.entries()? {
        let entry = entry?;
        *count += 1;
        if *count > MAX_WALK_ENTRIES {
            return Ok(true);
        }
        let path = prefix.join(entry.file_name());
        let file_type = entry.file_type()?;
        if file_type.is_symlink() {
            visit(&path, EntryKind::Symlink, 0, None);
        } else if file_type.is_dir() {
            visit(&path, EntryKind::Directory, 0, None);
            let child = entry.open_dir()?;
            if walk_counted(&child, &path, depth + 1, count, visit)? {
                return Ok(true);
            }
        } else {
            let metadata = entry.metadata()?;
            let modified = metadata.modified().ok().map(|time| time.into_std());
            visit(&path, EntryKind::File, metadata.len(), modified);
        }
    }
    Ok(false)
}

/// The regular files of a workspace at one moment: size and modification
/// time by path.
#[derive(Debug, Default)]
pub struct Snapshot {
    files: BTreeMap<PathBuf, (u64, Option<SystemTime>)>,
    /// Whether the walk stopped at the entry cap, so changes may be missed.
    pub truncated: bool,
}

/// Records the regular files below `dir`.
pub fn snapshot(dir: &Dir) -> std::io::Result<Snapshot> {
    let mut files = BTreeMap::new();
    // NOTE: a change that keeps both the size and the modification time
    // (within the filesystem's timestamp resolution) is missed.
    let truncated = walk(dir, Path::new(""), 0, &mut |path, kind, size, modified| {
        if kind == EntryKind::File {
            files.insert(path.to_path_buf(), (size, modified));
        }
    })?;
    Ok(Snapshot { files, truncated })
}

impl Snapshot {
    /// Creates an empty snapshot marked truncated, for a workspace that
    /// could not be scanned.
    pub fn unknown() -> Self {
        Snapshot {
            files: BTreeMap::new(),
            truncated: true,
        }
    }
}

/// Files that differ between two snapshots, sorted by path.
pub fn changes(before: &Snapshot, after: &Snapshot) -> Vec<(PathBuf, Change, u64)> {
    let mut changes = Vec::new();
    for (path, (size, modified)) in &after.files {
        match before.files.get(path) {
            None => changes.push((path.clone(), Change::Created, *size)),
            Some((old_size, old_modified)) if old_size != size || old_modified != modified => {
                changes.push((path.clone(), Change::Modified, *size))
            }
            Some(_) => {}
        }
    }
    for path in before.files.keys() {
        if !after.files.contains_key(path) {
            changes.push((path.clone(), Change::Deleted, 0));
        }
    }
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_accepted() {
        assert_eq!(
            relative_path("out/data.csv").ok(),
            Some(PathBuf::from("out/data.csv"))
        );
        assert_eq!(
            relative_path("/workspace/a.txt").ok(),
            Some(PathBuf::from("a.txt"))
        );
        assert_eq!(relative_path("./a//b").ok(), Some(PathBuf::from("a/b")));
    }

    #[test]
    fn escaping_paths_are_rejected() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a\\b",
            "a\0b",
            "/workspace/",
        ] {
            assert!(relative_path(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn symlink_out_of_workspace_is_not_followed() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret"), b"secret").expect("write");
        let workspace = tempfile::tempdir().expect("tempdir");
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path().join("secret"), workspace.path().join("link"))
            .expect("symlink");
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path(), workspace.path().join("dirlink"))
            .expect("symlink");

        let dir = open(workspace.path()).expect("open");
        let error = read(&dir, "link", 1024).expect_err("symlink read");
        assert!(matches!(error, WorkspaceError::NotAFile { .. }), "{error}");
        let error = read(&dir, "dirlink/secret", 1024).expect_err("read through symlink");
        assert!(matches!(error, WorkspaceError::Io { .. }), "{error}");
        let error = write(&dir, "dirlink/new", b"x").expect_err("write through symlink");
        assert!(matches!(error, WorkspaceError::Io { .. }), "{error}");
        assert!(!outside.path().join("new").exists());
    }

    #[test]
    fn oversized_file_is_rejected() {
        let workspace = tempfile::tempdir().expect("tempdir");
        let dir = open(workspace.path()).expect("open");
        write(&dir, "big.bin", &[0u8; 100]).expect("write");
        let error = read(&dir, "big.bin", 99).expect_err("too large");
        assert_eq!(
            error.to_string(),
            "file \"big.bin\" is 100 bytes, more than the limit of 99 bytes"
        );
    }

    #[test]
    fn changes_between_snapshots() {
        let workspace = tempfile::tempdir().expect("tempdir");
        let dir = open(workspace.path()).expect("open");
        write(&dir, "keep.txt", b"a").expect("write");
        write(&dir, "edit.txt", b"a").expect("write");
        write(&dir, "gone.txt", b"a").expect("write");
        let before = snapshot(&dir).expect("snapshot");

        write(&dir, "edit.txt", b"longer").expect("write");
        write(&dir, "sub/new.txt", b"new").expect("write");
        dir.remove_file("gone.txt").expect("remove");
        let after = snapshot(&dir).expect("snapshot");

        let found = changes(&before, &after);
        let expected = vec![
            (PathBuf::from("edit.txt"), Change::Modified, 6),
            (PathBuf::from("gone.txt"), Change::Deleted, 0),
            (PathBuf::from("sub/new.txt"), Change::Created, 3),
        ];
        assert_eq!(found, expected);
    }
}
