//! Host directories a sandbox may see: its workspace and extra grants.
//!
//! The guest sees nothing of the host filesystem except these directories,
//! each preopened through wasmtime-wasi's capability-based `Dir` handles.
//! Paths inside a grant resolve relative to that handle, so `..`, absolute
//! paths and symlinks cannot leave it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::RuntimeError;

/// Guest path of the scratch directory every sandbox has.
pub const WORKSPACE_GUEST_PATH: &str = "/workspace";

/// One host directory made visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirGrant {
    /// Directory on the host.
    pub host_path: PathBuf,
    /// Absolute path where the guest sees it, such as `/data`.
    pub guest_path: String,
    /// Whether the guest may only read.
    pub read_only: bool,
}

impl DirGrant {
    /// Parses `HOST:GUEST[:ro|:rw]`, the form the command line takes.
    ///
    /// The host path may itself contain colons (a Windows drive letter, for
    /// one), so the guest path is found from the right.
    pub fn parse(spec: &str) -> Result<DirGrant, String> {
        let (rest, read_only) = if let Some(rest) = spec.strip_suffix(":ro") {
            (rest, true)
        } else if let Some(rest) = spec.strip_suffix(":rw") {
            (rest, false)
        } else {
            (spec, false)
        };

        let Some((host, guest)) = rest.rsplit_once(':') else {
            return Err(format!(
                "invalid directory grant {spec:?}: expected HOST:GUEST or HOST:GUEST:ro, \
                 such as ./data:/data:ro"
            ));
        };
        // `data:/x:rx` splits into host `data:/x` and guest `rx`: a guest
        // path that is not absolute after another colon is a mistyped mode.
        if !guest.starts_with('/')
            && let Some((_, earlier)) = host.rsplit_once(':')
            && earlier.starts_with('/')
        {
            return Err(format!(
                "invalid directory grant {spec:?}: unknown mode {guest:?}, expected ro or rw"
            ));
        }
        if host.is_empty() {
            return Err(format!(
                "invalid directory grant {spec:?}: the host path is empty"
            ));
        }
        Ok(DirGrant {
            host_path: PathBuf::from(host),
            guest_path: guest.to_owned(),
            read_only,
        })
    }
}

/// The directories of one sandbox.
#[derive(Debug, Clone)]
pub struct FileAccess {
    /// Host directory preopened read-write at `/workspace`.
    pub workspace: PathBuf,
    /// Further grants.
    pub grants: Vec<DirGrant>,
}

impl FileAccess {
    /// Checks that every host directory exists and that guest paths are
    /// absolute, normal, distinct and do not hide one another.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        check_host_dir(&self.workspace)?;

        let mut seen = vec![WORKSPACE_GUEST_PATH.to_owned()];
        for grant in &self.grants {
            check_host_dir(&grant.host_path)?;
            let reason =
                guest_path_problem(&grant.guest_path).or_else(|| {
                    seen.iter().find(|other| nests(other, &grant.guest_path)).map(|other| {
                    format!("overlaps {other}, which is already mounted; choose another guest path")
                })
                });
            if let Some(reason) = reason {
                return Err(RuntimeError::InvalidGrant {
                    host_path: grant.host_path.clone(),
                    guest_path: grant.guest_path.clone(),
                    reason,
                });
            }
            seen.push(grant.guest_path.clone());
        }
        Ok(())
    }
}

/// The WASI filesystem interface as wasmtime-wasi 48 defines it.
const WASI_FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Replaces `descriptor.symlink-at` with one that always fails.
///
/// wasmtime-wasi rejects absolute symlink targets but creates relative ones
/// such as `../../etc/passwd` without checking where they lead. The guest
/// cannot follow such a link, but the link stays in the host directory, and
/// a host program that later reads the workspace would. Guest code rarely
/// needs symlinks, so creating them is not permitted at all.
pub(crate) fn deny_symlink_creation<T: 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::bindings::filesystem::types::{Descriptor, ErrorCode};

    linker.allow_shadowing(true);
    let mut types = linker.instance(WASI_FILESYSTEM_TYPES)?;
    types.func_wrap(
        "[method]descriptor.symlink-at",
        |_store, (_descriptor, _target, _path): (Resource<Descriptor>, String, String)| {
            Ok((Err::<(), ErrorCode>(ErrorCode::NotPermitted),))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn check_host_dir(path: &Path) -> Result<(), RuntimeError> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => Err(RuntimeError::OpenDirectory {
            path: path.to_path_buf(),
            source: std::io::Error::other("not a directory"),
        }),
        Err(source) => Err(RuntimeError::OpenDirectory {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn guest_path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some("must be absolute, such as /data".into());
    }
    if path == "/" {
        return Some("cannot be the root: mount the directory below it, such as /data".into());
    }
    if path.ends_with('/') {
        return Some("must not end with a slash".into());
    }
    let bad_component = path[1..]
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..");
    if bad_component {
        return Some("must not contain empty, `.` or `..` components".into());
    }
    if path.contains('\\') || path.contains('\0') {
        return Some("must not contain backslashes or NUL".into());
    }
    None
}

/// Whether one guest path equals the other or lies inside it.
fn nests(a: &str, b: &str) -> bool {
    let inside = |outer: &str, inner: &str| {
        inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    inside(a, b) || inside(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_read_only_grant() {
        let grant = DirGrant::parse("./data:/data:ro").expect("valid");
        assert_eq!(grant.host_path, PathBuf::from("./data"));
        assert_eq!(grant.guest_path, "/data");
        assert!(grant.read_only);
    }

    #[test]
    fn parse_grant_defaults_to_read_write() {
        let grant = DirGrant::parse("/srv/in:/in").expect("valid");
        assert!(!grant.read_only);
    }

    #[test]
    fn parse_grant_with_colon_in_host_path() {
        let grant = DirGrant::parse(r"C:\data:/data:ro").expect("valid");
        assert_eq!(grant.host_path, PathBuf::from(r"C:\data"));
        assert_eq!(grant.guest_path, "/data");
    }

    #[test]
    fn parse_grant_with_mistyped_mode_fails() {
        let error = DirGrant::parse("data:/x:rx").expect_err("bad mode");
        assert!(
            error.contains("unknown mode \"rx\", expected ro or rw"),
            "{error}"
        );
    }

    #[test]
    fn parse_grant_without_guest_path_fails() {
        let error = DirGrant::parse("data").expect_err("no colon");
        assert!(error.contains("expected HOST:GUEST"), "{error}");
    }

    #[test]
    fn guest_path_rules() {
        assert!(guest_path_problem("/data").is_none());
        assert!(guest_path_problem("/data/in").is_none());
        for bad in ["data", "/", "/data/", "/a/../b", "/a//b", "/./a", "/a\\b"] {
            assert!(
                guest_path_problem(bad).is_some(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn overlapping_guest_paths() {
        assert!(nests("/workspace", "/workspace"));
        assert!(nests("/workspace", "/workspace/x"));
        assert!(nests("/data/x", "/data"));
        assert!(!nests("/data", "/database"));
    }
}
