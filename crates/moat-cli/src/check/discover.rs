//! Finds the scripts to check and pairs each with its expectations.
//!
//! Paths on the command line are scripts or directories. Directories are
//! searched recursively, skipping hidden entries and not following
//! symlinked directories. Expectations come from a sidecar
//! `SCRIPT.check.toml`, from a `moat-check.toml` manifest, or from
//! `--manifest`. Manifests are read from every directory searched, from the
//! directory of each named script, and from the directories above a path
//! argument up to the current directory, so a script gets the same
//! expectations however it is named.
//! Naming one script's expectations twice is an error, as is an expectations
//! file whose script does not exist.
//!
//! Files are identified by their location: the canonical path of their
//! directory joined with their own name. A file reached through two paths
//! counts once, but a symlink to a script is a script of its own, reported
//! under its own path and judged by its own expectations.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use moat_runtime::Language;

use super::expectations::{Expectations, read_manifest, read_sidecar};

/// Name of the manifest read from each directory that is searched, that
/// contains a script named on the command line, or that is above a path
/// argument within the current directory.
pub const MANIFEST_NAME: &str = "moat-check.toml";

/// Suffix of a sidecar file: `report.py.check.toml` belongs to `report.py`.
pub const SIDECAR_SUFFIX: &str = ".check.toml";

/// One script to check.
#[derive(Debug)]
pub struct Script {
    /// The path as found, for reading and for messages.
    pub path: PathBuf,
    /// The path with `/` separators, as reports show it; scripts are sorted
    /// by it.
    pub display: String,
    /// The language, from the extension.
    pub language: Language,
    /// The file's bytes; decoded when the script is run.
    pub source: Vec<u8>,
    /// The script's expectations, or the defaults when none were written.
    pub expectations: Arc<Expectations>,
}

/// The scripts of a check and every other file it reads.
#[derive(Debug)]
pub struct Collected {
    /// The scripts, sorted by their display path.
    pub scripts: Vec<Script>,
    /// Sidecars and manifests, as found.
    pub expectation_files: Vec<PathBuf>,
    /// Files that expectations read for stdin and inputs, by canonical path.
    pub source_files: Vec<PathBuf>,
}

/// Collects the scripts under `paths`, sorted by their display path, each
/// with its expectations. Every problem is a configuration error.
pub fn collect(paths: &[PathBuf], manifest: Option<&Path>) -> anyhow::Result<Collected> {
    // Without a current directory, only the directory of each named script
    // is looked at for a manifest.
    let cwd = std::env::current_dir().ok();
    let mut found = Found::default();
    for path in paths {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("cannot check {}", path.display()))?;
        // The directory above the argument, as written; "" is the current
        // directory.
        let above = path.parent().unwrap_or(Path::new(""));
        if metadata.is_dir() {
            found.search_dir(path)?;
            found.add_manifests_above(above, cwd.as_deref(), false)?;
        } else {
            found.add_named_file(path)?;
            found.add_manifests_above(above, cwd.as_deref(), true)?;
        }
    }
    if let Some(manifest) = manifest {
        let key = location(manifest)
            .with_context(|| format!("cannot read manifest {}", manifest.display()))?;
        found
            .manifests
            .entry(key)
            .or_insert_with(|| manifest.to_path_buf());
    }

    // Script location -> expectations and where they came from.
    let mut assigned: BTreeMap<PathBuf, (Expectations, String)> = BTreeMap::new();
    let mut source_files = Vec::new();
    for manifest in found.manifests.values() {
        for entry in read_manifest(manifest)? {
            source_files.extend_from_slice(&entry.expectations.source_files);
            let script = existing_script(&entry.script).map_err(|problem| {
                anyhow::anyhow!(
                    "{}: script {} {problem}; fix the entry's path or remove the entry",
                    entry.location,
                    entry.script.display()
                )
            })?;
            assign(&mut assigned, script, entry.expectations, entry.location)?;
        }
    }
    for sidecar in found.sidecars.values() {
        let script = sidecar_script(sidecar);
        let script = existing_script(&script).map_err(|problem| {
            anyhow::anyhow!(
                "sidecar {} belongs to {}, which {problem}; rename or remove the sidecar",
                sidecar.display(),
                script.display()
            )
        })?;
        let expectations = read_sidecar(sidecar)?;
        source_files.extend_from_slice(&expectations.source_files);
        assign(
            &mut assigned,
            script,
            expectations,
            sidecar.display().to_string(),
        )?;
    }

    let mut scripts = Vec::new();
    for (key, (path, language)) in found.scripts {
        let source = std::fs::read(&path)
            .with_context(|| format!("failed to read script {}", path.display()))?;
        let expectations = assigned
            .remove(&key)
            .map(|(expectations, _)| expectations)
            .unwrap_or_default();
        scripts.push(Script {
            display: display_path(&path),
            path,
            language,
            source,
            expectations: Arc::new(expectations),
        });
    }
    scripts.sort_by(|a, b| a.display.cmp(&b.display));
    let expectation_files = found
        .manifests
        .into_values()
        .chain(found.sidecars.into_values())
        .collect();
    Ok(Collected {
        scripts,
        expectation_files,
        source_files,
    })
}

/// Scripts, sidecars and manifests found so far, keyed by [`location`] so
/// that a file reached twice counts once.
#[derive(Default)]
struct Found {
    scripts: BTreeMap<PathBuf, (PathBuf, Language)>,
    sidecars: BTreeMap<PathBuf, PathBuf>,
    manifests: BTreeMap<PathBuf, PathBuf>,
}

impl Found {
    fn search_dir(&mut self, dir: &Path) -> anyhow::Result<()> {
        let before = self.scripts.len();
        let walk = walkdir::WalkDir::new(dir)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|entry| entry.depth() == 0 || !is_hidden(entry.file_name()));
        for entry in walk {
            let entry = entry.with_context(|| format!("failed to search {}", dir.display()))?;
            let path = entry.path();
            // A symlink counts when it leads to a file; symlinked
            // directories are not entered, so a link cycle cannot loop.
            let is_file =
                entry.file_type().is_file() || (entry.path_is_symlink() && path.is_file());
            if !is_file {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            if name == MANIFEST_NAME {
                self.add(Kind::Manifest, path)?;
            } else if name.ends_with(SIDECAR_SUFFIX) {
                self.add(Kind::Sidecar, path)?;
            } else if let Some(language) = language_of(path) {
                self.add(Kind::Script(language), path)?;
            }
        }
        if self.scripts.len() == before {
            bail!(
                "no scripts to check in {}: it contains no .py, .js or .mjs files outside \
                 hidden directories",
                dir.display()
            );
        }
        Ok(())
    }

    /// Adds a script named on the command line, with the sidecar beside it
    /// when it exists.
    fn add_named_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let Some(language) = language_of(path) else {
            bail!(
                "cannot check {}: only .py, .js and .mjs scripts can be checked",
                path.display()
            );
        };
        self.add(Kind::Script(language), path)?;

        let mut sidecar = path.as_os_str().to_owned();
        sidecar.push(SIDECAR_SUFFIX);
        let sidecar = PathBuf::from(sidecar);
        if sidecar.is_file() {
            self.add(Kind::Sidecar, &sidecar)?;
        }
        Ok(())
    }

    /// Adds the manifests in `dir` and in each directory above it, up to and
    /// including the current directory `cwd`. The walk is lexical: `dir` is
    /// made relative to `cwd` without resolving symlinks, and manifests are
    /// named by that relative path. When `dir` is outside `cwd`, only its own
    /// manifest is added, and only when `include_start` is set, as for the
    /// directory of a named script.
    fn add_manifests_above(
        &mut self,
        dir: &Path,
        cwd: Option<&Path>,
        include_start: bool,
    ) -> anyhow::Result<()> {
        let relative = cwd.and_then(|cwd| {
            let absolute = lexical_absolute(cwd, dir);
            absolute.strip_prefix(cwd).ok().map(Path::to_path_buf)
        });
        let Some(relative) = relative else {
            if include_start {
                self.add_manifest_in(dir)?;
            }
            return Ok(());
        };
        for ancestor in relative.ancestors() {
            self.add_manifest_in(ancestor)?;
        }
        Ok(())
    }

    fn add_manifest_in(&mut self, dir: &Path) -> anyhow::Result<()> {
        let manifest = dir.join(MANIFEST_NAME);
        if manifest.is_file() {
            self.add(Kind::Manifest, &manifest)?;
        }
        Ok(())
    }

    fn add(&mut self, kind: Kind, path: &Path) -> anyhow::Result<()> {
        let key =
            location(path).with_context(|| format!("failed to resolve {}", path.display()))?;
        let path = path.to_path_buf();
        match kind {
            Kind::Script(language) => {
                self.scripts.entry(key).or_insert((path, language));
            }
            Kind::Sidecar => {
                self.sidecars.entry(key).or_insert(path);
            }
            Kind::Manifest => {
                self.manifests.entry(key).or_insert(path);
            }
        }
        Ok(())
    }
}

enum Kind {
    Script(Language),
    Sidecar,
    Manifest,
}

/// Records that the script at location `script` has `expectations` from
/// `origin`, failing when another file already gave it some.
fn assign(
    assigned: &mut BTreeMap<PathBuf, (Expectations, String)>,
    script: PathBuf,
    expectations: Expectations,
    origin: String,
) -> anyhow::Result<()> {
    match assigned.entry(script) {
        Entry::Vacant(slot) => {
            slot.insert((expectations, origin));
            Ok(())
        }
        Entry::Occupied(slot) => bail!(
            "expectations for {} are given twice, in {} and in {origin}; keep one",
            slot.key().display(),
            slot.get().1
        ),
    }
}

/// Returns the [`location`] of `script` after checking that it is a script
/// file moat can run, or else what is wrong with it.
fn existing_script(script: &Path) -> Result<PathBuf, String> {
    match std::fs::metadata(script) {
        Ok(metadata) if metadata.is_file() => {}
        Ok(metadata) if metadata.is_dir() => return Err("is a directory".to_owned()),
        Ok(_) => return Err("is not a regular file".to_owned()),
        Err(_) if script.is_symlink() => {
            return Err("is a symlink to a file that does not exist".to_owned());
        }
        Err(_) => return Err("does not exist".to_owned()),
    }
    if language_of(script).is_none() {
        return Err("is not a .py, .js or .mjs script".to_owned());
    }
    location(script).map_err(|error| format!("cannot be resolved: {error:#}"))
}

/// Returns the script a sidecar belongs to: its path without `.check.toml`.
fn sidecar_script(sidecar: &Path) -> PathBuf {
    let text = sidecar.as_os_str().to_string_lossy();
    let script = text.strip_suffix(SIDECAR_SUFFIX).unwrap_or(&text);
    PathBuf::from(script)
}

fn language_of(path: &Path) -> Option<Language> {
    let extension = path.extension()?.to_str()?;
    Language::from_extension(extension)
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

/// Returns the canonical path of the file's directory joined with the
/// file's own name. Unlike a canonical path, it keeps a symlinked file apart
/// from its target.
fn location(path: &Path) -> anyhow::Result<PathBuf> {
    let Some(name) = path.file_name() else {
        bail!("{} does not name a file", path.display());
    };
    let dir = std::fs::canonicalize(parent_dir(path))?;
    Ok(dir.join(name))
}

/// Returns the directory of `path` as written, `.` for a bare file name.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Joins `path` to `cwd` and removes `.` and `..` components without
/// looking at the file system.
fn lexical_absolute(cwd: &Path, path: &Path) -> PathBuf {
    let mut absolute = PathBuf::new();
    for component in cwd.join(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                absolute.pop();
            }
            other => absolute.push(other.as_os_str()),
        }
    }
    absolute
}

/// Formats the path as reports show it: `/`-separated, without a leading
/// `./`.
fn display_path(path: &Path) -> String {
    let parts: Vec<String> = path
        .components()
        .filter(|component| !matches!(component, Component::CurDir))
        .map(|component| component.as_os_str().to_string_lossy().into_owned())
        .collect();
    let joined = parts.join("/");
    // A root component renders as "/" and would double the separator.
    match joined.strip_prefix("//") {
        Some(rest) => format!("/{rest}"),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_paths_use_slashes() {
        assert_eq!(display_path(Path::new("./a/b.py")), "a/b.py");
        assert_eq!(display_path(Path::new("/tmp/x/b.py")), "/tmp/x/b.py");
        assert_eq!(display_path(Path::new("a/./b.js")), "a/b.js");
    }

    #[test]
    fn lexical_absolute_resolves_dots() {
        let cwd = Path::new("/work/repo");
        assert_eq!(
            lexical_absolute(cwd, Path::new("./a/../b")),
            PathBuf::from("/work/repo/b")
        );
        assert_eq!(lexical_absolute(cwd, Path::new("")), PathBuf::from(cwd));
        assert_eq!(
            lexical_absolute(cwd, Path::new("../other")),
            PathBuf::from("/work/other")
        );
        assert_eq!(
            lexical_absolute(cwd, Path::new("/tmp/x")),
            PathBuf::from("/tmp/x")
        );
    }

    #[cfg(unix)]
    #[test]
    fn location_keeps_symlink_apart_from_target() {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let target = dir.path().join("ok.py");
        std::fs::write(&target, "print(1)\n").expect("write");
        let link = dir.path().join("link.py");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let canonical_dir = std::fs::canonicalize(dir.path()).expect("canonical");

        assert_eq!(
            location(&link).expect("link"),
            canonical_dir.join("link.py")
        );
        assert_eq!(
            location(&dir.path().join("./ok.py")).expect("target"),
            canonical_dir.join("ok.py")
        );
    }

    #[test]
    fn sidecar_names_its_script() {
        assert_eq!(
            sidecar_script(Path::new("dir/ok.py.check.toml")),
            PathBuf::from("dir/ok.py")
        );
    }
}
