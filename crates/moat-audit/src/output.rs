//! Output paths of exports and reports, resolved before anything is
//! created, so that no output lands on the audit store or on the side files
//! SQLite keeps beside it, and the moves that put an output in place.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::error::AuditError;
use crate::store::AuditStore;

/// Resolves `path` to the absolute path that writing to it would reach.
/// Symbolic links are resolved in the part of the path that exists. The
/// rest is joined as written, and a `..` there removes the component before
/// it, which will be a new directory.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut resolved = PathBuf::new();
    let mut exists = true;
    for component in absolute.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => resolved.push(component.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                resolved.pop();
                exists = std::fs::symlink_metadata(&resolved).is_ok();
            }
            Component::Normal(name) => {
                resolved.push(name);
                if exists {
                    match std::fs::canonicalize(&resolved) {
                        Ok(canonical) => resolved = canonical,
                        // Missing, or a symbolic link to a missing path:
                        // what follows is created, not followed.
                        Err(_) => exists = false,
                    }
                }
            }
        }
    }
    Ok(resolved)
}

/// Resolves `path` and rejects it when writing there, or creating a
/// directory on the way, would replace the store or one of its `-wal`,
/// `-shm` and `-journal` files. Returns the resolved path, which the
/// caller writes to, so that the path checked is the path written.
pub fn check_output(store: &AuditStore, path: &Path) -> Result<PathBuf, AuditError> {
    let resolved = resolve(path).map_err(|cause| AuditError::Output {
        path: path.to_path_buf(),
        cause,
    })?;
    if store.protected_files().covers(&resolved) {
        return Err(AuditError::OutputIsStore {
            output: path.to_path_buf(),
            store: store.path().to_path_buf(),
        });
    }
    Ok(resolved)
}

/// Writes `bytes` to the file `path`, which must not be the store or one
/// of its SQLite files. Missing parent directories are created. The bytes
/// go to a temporary file beside `path` that is then renamed over it, so a
/// reader never sees half a file, and an existing file is replaced.
pub fn write_output(store: &AuditStore, path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    let resolved = check_output(store, path)?;
    let output_error = |cause| AuditError::Output {
        path: path.to_path_buf(),
        cause,
    };
    if resolved.is_dir() {
        return Err(AuditError::Invalid(format!(
            "cannot write {}: it is a directory; give the path of a file",
            path.display()
        )));
    }
    let (Some(parent), Some(name)) = (resolved.parent(), resolved.file_name()) else {
        return Err(AuditError::Invalid(format!(
            "cannot write {}: it does not name a file",
            path.display()
        )));
    };
    std::fs::create_dir_all(parent).map_err(output_error)?;

    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".moat-tmp");
    // tempfile creates files readable by their owner alone. The output
    // gets the permissions of any new file, which the umask narrows.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut staged = builder.tempfile_in(parent).map_err(output_error)?;
    staged.write_all(bytes).map_err(output_error)?;
    staged.as_file().sync_all().map_err(output_error)?;
    staged
        .persist(&resolved)
        .map_err(|error| output_error(error.error))?;
    sync_dir(parent);
    Ok(())
}

/// Rejects a destination that exists and is not an empty directory, and
/// returns whether it is an existing empty directory. `resolved` is the
/// destination with symbolic links resolved; `given` names it in messages.
pub(crate) fn check_destination(resolved: &Path, given: &Path) -> Result<bool, AuditError> {
    let rejected = |why: &str| {
        AuditError::Invalid(format!(
            "cannot export to {}: {why}; choose a new directory",
            given.display()
        ))
    };
    let metadata = match std::fs::symlink_metadata(resolved) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(cause) => {
            return Err(AuditError::Output {
                path: given.to_path_buf(),
                cause,
            });
        }
    };
    if metadata.is_symlink() {
        return Err(rejected(
            "it is a symbolic link to a path that does not exist",
        ));
    }
    if !metadata.is_dir() {
        return Err(rejected("it exists and is not a directory"));
    }
    let mut entries = std::fs::read_dir(resolved).map_err(|cause| AuditError::Output {
        path: given.to_path_buf(),
        cause,
    })?;
    match entries.next() {
        None => Ok(true),
        Some(_) => Err(rejected("the directory is not empty")),
    }
}

/// Moves the staged bundle's entries into the existing directory `dir`,
/// with `manifest.json` and then `SHA256SUMS` last, so that a bundle with
/// `SHA256SUMS` is complete. When a move fails, the entries already moved
/// are removed again.
pub(crate) fn move_into(staging: tempfile::TempDir, dir: &Path) -> Result<(), AuditError> {
    let output_error = |path: &Path, cause| AuditError::Output {
        path: path.to_path_buf(),
        cause,
    };
    let mut names: Vec<OsString> = std::fs::read_dir(staging.path())
        .and_then(|entries| entries.map(|entry| entry.map(|e| e.file_name())).collect())
        .map_err(|cause| output_error(staging.path(), cause))?;
    let rank = |name: &OsString| match name.to_str() {
        Some("manifest.json") => 1,
        Some("SHA256SUMS") => 2,
        _ => 0,
    };
    names.sort_by_key(|name| (rank(name), name.clone()));

    let mut moved: Vec<PathBuf> = Vec::new();
    for name in names {
        let target = dir.join(&name);
        if let Err(cause) = std::fs::rename(staging.path().join(&name), &target) {
            for path in moved {
                let _ = match path.is_dir() {
                    true => std::fs::remove_dir_all(&path),
                    false => std::fs::remove_file(&path),
                };
            }
            return Err(output_error(&target, cause));
        }
        moved.push(target);
    }
    staging.close().map_err(|cause| output_error(dir, cause))
}

/// Flushes a directory's entries to disk where the platform allows it.
pub(crate) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_removes_dots_of_new_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(dir.path()).expect("canonical");

        let resolved = resolve(&dir.path().join("new/../report.html")).expect("resolve");
        let nested = resolve(&dir.path().join("./a/b/../c")).expect("resolve");

        assert_eq!(resolved, base.join("report.html"));
        assert_eq!(nested, base.join("a/c"));
    }

    #[cfg(unix)]
    #[test]
    fn resolve_follows_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(dir.path()).expect("canonical");
        std::fs::create_dir(base.join("real")).expect("mkdir");
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).expect("symlink");

        let resolved = resolve(&base.join("link/out.html")).expect("resolve");

        assert_eq!(resolved, base.join("real/out.html"));
    }
}
