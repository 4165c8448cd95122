//! Finds the scripts to check and pairs each with its expectations.
//!
//! Paths on the command line are scripts or directories. Directories are
//! searched recursively, skipping hidden entries and not following
//! symlinked directories. Expectations come from a sidecar
//! `SCRIPT.check.toml`, from a `moat-check.toml` manifest in a directory
//! that is searched or that contains a named script, or from
//! `--manifest`.
//! Naming one script's expectations twice is an error, as is an expectations
//! file whose script does not exist.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use moat_runtime::Language;

use super::expectations::{Expectations, read_manifest, read_sidecar};

/// Name of the manifest read from each directory that is searched or that
/// contains a script named on the command line.
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

/// Collects the scripts under `paths`, sorted by their display path, each
/// with its expectations. Every problem is a configuration error.
pub fn collect(paths: &[PathBuf], manifest: Option<&Path>) -> anyhow::Result<Vec<Script>> {
    let mut found = Found::default();
    for path in paths {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("cannot check {}", path.display()))?;
        if metadata.is_dir() {
            found.search_dir(path)?;
        } else {
            found.add_named_file(path)?;
        }
    }

    // Canonical script path -> expectations and where they came from.
    let mut assigned: BTreeMap<PathBuf, (Expectations, String)> = BTreeMap::new();
    let mut manifests = found.manifests;
    if let Some(manifest) = manifest {
        let key = canonical(manifest)
            .with_context(|| format!("cannot read manifest {}", manifest.display()))?;
        manifests
            .entry(key)
            .or_insert_with(|| manifest.to_path_buf());
    }
    for manifest in manifests.values() {
        for entry in read_manifest(manifest)? {
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
        assign(
            &mut assigned,
            script,
            expectations,
            sidecar.display().to_string(),
        )?;
    }

    let mut scripts = Vec::new();
    for (canonical, (path, language)) in found.scripts {
        let source = std::fs::read(&path)
            .with_context(|| format!("failed to read script {}", path.display()))?;
        let expectations = assigned
            .remove(&canonical)
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
    Ok(scripts)
}

/// Scripts, sidecars and manifests found so far, keyed by canonical path so
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

    /// Adds a script named on the command line, with the sidecar and the
    /// manifest beside it when they exist.
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
        let manifest = path.with_file_name(MANIFEST_NAME);
        if manifest.is_file() {
            self.add(Kind::Manifest, &manifest)?;
        }
        Ok(())
    }

    fn add(&mut self, kind: Kind, path: &Path) -> anyhow::Result<()> {
        let key =
            canonical(path).with_context(|| format!("failed to resolve {}", path.display()))?;
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

/// Records that the script at canonical path `script` has `expectations`
/// from `origin`, failing when another file already gave it some.
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

/// Returns the canonical path of `script` after checking that it is a
/// script file moat can run, or else what is wrong with it.
fn existing_script(script: &Path) -> Result<PathBuf, String> {
    if !script.is_file() {
        return Err("does not exist".to_owned());
    }
    if language_of(script).is_none() {
        return Err("is not a .py, .js or .mjs script".to_owned());
    }
    std::fs::canonicalize(script).map_err(|error| format!("cannot be resolved: {error}"))
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

fn canonical(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(std::fs::canonicalize(path)?)
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
    fn sidecar_names_its_script() {
        assert_eq!(
            sidecar_script(Path::new("dir/ok.py.check.toml")),
            PathBuf::from("dir/ok.py")
        );
    }
}
