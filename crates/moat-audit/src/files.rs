//! The files of a workspace before and after a run, for the `files_in` and
//! `files_out` of its record.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use moat_runtime::DirGrant;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::record::FileRef;

/// Entries a scan visits before it stops; a workspace with more is marked
/// truncated and its changes past the cap are not recorded.
pub const MAX_SCANNED_ENTRIES: usize = 10_000;

/// The regular files below a directory, by path relative to it, with their
/// size and modification time. Symbolic links are not followed.
#[derive(Debug, Clone, Default)]
pub struct DirState {
    files: BTreeMap<String, (u64, Option<SystemTime>)>,
    /// Whether the scan stopped at [`MAX_SCANNED_ENTRIES`].
    pub truncated: bool,
}

impl DirState {
    /// Scans `dir`. Unreadable entries are skipped; a missing `dir` is empty.
    pub fn scan(dir: &Path) -> DirState {
        let mut state = DirState::default();
        let mut pending = vec![(dir.to_path_buf(), String::new())];
        let mut visited = 0usize;
        while let Some((path, prefix)) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&path) else {
                continue;
            };
            for entry in entries.flatten() {
                visited += 1;
                if visited > MAX_SCANNED_ENTRIES {
                    state.truncated = true;
                    return state;
                }
                let Ok(metadata) = entry.path().symlink_metadata() else {
                    continue;
                };
                let name = entry.file_name().to_string_lossy().into_owned();
                let relative = match prefix.is_empty() {
                    true => name,
                    false => format!("{prefix}/{name}"),
                };
                if metadata.is_dir() {
                    pending.push((entry.path(), relative));
                } else if metadata.is_file() {
                    state
                        .files
                        .insert(relative, (metadata.len(), metadata.modified().ok()));
                }
            }
        }
        state
    }

    /// Returns every file, hashed, as the inputs of a run.
    pub fn inputs(&self, dir: &Path) -> Vec<FileRef> {
        self.files
            .iter()
            .map(|(path, (size, _))| FileRef {
                path: path.clone(),
                change: "input".to_owned(),
                size: *size,
                sha256: hash_file(&dir.join(path)),
            })
            .collect()
    }

    /// Returns the files created, modified or deleted between `self` and `after`,
    /// with the content hash of those that exist after.
    pub fn changes(&self, after: &DirState, dir: &Path) -> Vec<FileRef> {
        let mut changes = Vec::new();
        for (path, state) in &after.files {
            let change = match self.files.get(path) {
                None => "created",
                Some(before) if before != state => "modified",
                Some(_) => continue,
            };
            changes.push(FileRef {
                path: path.clone(),
                change: change.to_owned(),
                size: state.0,
                sha256: hash_file(&dir.join(path)),
            });
        }
        for path in self.files.keys() {
            if !after.files.contains_key(path) && !after.truncated {
                changes.push(FileRef {
                    path: path.clone(),
                    change: "deleted".to_owned(),
                    size: 0,
                    sha256: None,
                });
            }
        }
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        changes
    }
}

/// The read-write directory grants of a run, scanned before it, so that
/// the files it changes there are recorded with their guest paths (such as
/// `/out/report.csv`).
///
/// A grant shared by runs that overlap in time is scanned by each of them,
/// so a run's record may also list changes another run made there.
#[derive(Debug, Clone, Default)]
pub struct GrantsState {
    grants: Vec<(String, PathBuf, DirState)>,
}

impl GrantsState {
    /// Scans every read-write grant in `grants`; read-only grants cannot
    /// change and are skipped.
    pub fn scan(grants: &[DirGrant]) -> GrantsState {
        GrantsState {
            grants: grants
                .iter()
                .filter(|grant| !grant.read_only)
                .map(|grant| {
                    let state = DirState::scan(&grant.host_path);
                    (grant.guest_path.clone(), grant.host_path.clone(), state)
                })
                .collect(),
        }
    }

    /// Returns the changes in the grants since the scan, with guest paths.
    pub fn changes(&self) -> Vec<FileRef> {
        let mut changes = Vec::new();
        for (guest, host, before) in &self.grants {
            let prefix = guest.trim_end_matches('/');
            for mut change in before.changes(&DirState::scan(host), host) {
                change.path = format!("{prefix}/{}", change.path);
                changes.push(change);
            }
        }
        changes
    }
}

/// Returns the reference of a file given to a run as bytes, hashed.
pub fn input_file(path: &str, bytes: &[u8]) -> FileRef {
    FileRef {
        path: path.to_owned(),
        change: "input".to_owned(),
        size: bytes.len() as u64,
        sha256: Some(crate::capture::sha256_hex(bytes)),
    }
}

/// SHA-256 of a file's content, or `None` when it cannot be read.
pub fn hash_file(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer).ok()?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Some(
        hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_changes_carry_guest_paths() {
        let writable = tempfile::tempdir().expect("temporary directory");
        let readable = tempfile::tempdir().expect("temporary directory");
        let grants = [
            DirGrant {
                host_path: writable.path().to_path_buf(),
                guest_path: "/out/".into(),
                read_only: false,
            },
            DirGrant {
                host_path: readable.path().to_path_buf(),
                guest_path: "/data".into(),
                read_only: true,
            },
        ];
        let before = GrantsState::scan(&grants);
        std::fs::write(writable.path().join("report.csv"), "a,b").expect("write");
        std::fs::write(readable.path().join("ignored.txt"), "x").expect("write");

        let changes = before.changes();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "/out/report.csv");
        assert_eq!(changes[0].change, "created");
    }

    #[test]
    fn changes_name_created_modified_and_deleted_files() {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("keep.txt"), "same").expect("write");
        std::fs::write(dir.path().join("edit.txt"), "old").expect("write");
        std::fs::write(dir.path().join("gone.txt"), "bye").expect("write");
        let before = DirState::scan(dir.path());
        assert_eq!(before.inputs(dir.path()).len(), 3);

        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/new.txt"), "abc").expect("write");
        std::fs::write(dir.path().join("edit.txt"), "longer").expect("write");
        std::fs::remove_file(dir.path().join("gone.txt")).expect("remove");
        let after = DirState::scan(dir.path());

        let changes = before.changes(&after, dir.path());
        let summary: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.path.as_str(), c.change.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("edit.txt", "modified"),
                ("gone.txt", "deleted"),
                ("sub/new.txt", "created")
            ]
        );
        assert_eq!(
            changes[2].sha256.as_deref(),
            Some(crate::capture::sha256_hex(b"abc").as_str())
        );
    }
}
