//! The on-disk cache of compiled guests.
//!
//! Compiling the Python guest takes seconds, so the compiled artifact is kept
//! in a cache directory, keyed by the BLAKE3 hash of the guest component and
//! by the engine's compatibility hash (wasmtime version and settings). Each
//! entry starts with the BLAKE3 hash of its payload; an entry whose payload
//! does not match, or that wasmtime rejects as built for another engine, is
//! deleted and compiled again, never loaded.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::RuntimeError;

/// First bytes of every cache entry, with the format version.
const MAGIC: &[u8; 8] = b"MOATCW01";
const HEADER_LEN: usize = MAGIC.len() + blake3::OUT_LEN;

/// A directory of compiled guest components.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
}

/// The source of a compiled component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Loaded from a valid cache entry.
    Hit,
    /// No entry existed; compiled and stored.
    Miss,
    /// An entry existed but was corrupt or stale; compiled and replaced.
    Replaced,
    /// Compiled without a cache.
    Disabled,
}

impl ComponentCache {
    /// Uses `dir` for cache entries, creating it when needed.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ComponentCache { dir: dir.into() }
    }

    /// Returns the cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the entry for a guest with hash `guest_hash` on `engine`.
    pub fn entry_path(&self, engine: &Engine, name: &str, guest_hash: &blake3::Hash) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hasher.finish();
        let guest_hex = guest_hash.to_hex();
        self.dir.join(format!(
            "{name}-{}-{engine_hash:016x}.cwasm",
            &guest_hex[..32]
        ))
    }

    /// Loads the compiled form of `wasm` from the cache, or compiles it and
    /// stores the result. Failing to write the cache is logged, not fatal.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        name: &str,
        wasm: &[u8],
        guest_hash: &blake3::Hash,
    ) -> Result<(Component, CacheStatus), RuntimeError> {
        let path = self.entry_path(engine, name, guest_hash);

        let status = match fs::read(&path) {
            Ok(entry) => match load_entry(engine, &entry) {
                Ok(component) => return Ok((component, CacheStatus::Hit)),
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "discarding compiled guest cache entry");
                    if let Err(error) = fs::remove_file(&path) {
                        tracing::warn!(path = %path.display(), %error, "failed to delete cache entry");
                    }
                    CacheStatus::Replaced
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => CacheStatus::Miss,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "failed to read cache entry");
                CacheStatus::Miss
            }
        };

        let component = Component::new(engine, wasm)
            .map_err(|error| RuntimeError::wasmtime(format!("compile the {name} guest"), error))?;

        if let Err(error) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), error = format!("{error:#}"), "failed to write cache entry");
        }
        Ok((component, status))
    }

    fn store(&self, path: &Path, component: &Component) -> wasmtime::Result<()> {
        let payload = component.serialize()?;
        let hash = hash_parallel(&payload);

        fs::create_dir_all(&self.dir)?;
        // Write to a temporary file in the same directory and rename it into
        // place, so a reader never sees a half-written entry.
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(MAGIC)?;
        file.write_all(hash.as_bytes())?;
        file.write_all(&payload)?;
        file.as_file().sync_all()?;
        file.persist(path)?;

        self.prune_other_entries(path);
        Ok(())
    }

    /// Deletes entries of the same guest name other than `keep`: they belong
    /// to earlier builds of the guest or of moat, and each is tens of
    /// megabytes. Two moat versions sharing one cache directory therefore
    /// recompile in turn instead of growing the directory without bound.
    fn prune_other_entries(&self, keep: &Path) {
        let Some(prefix) = keep
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.split_once('-').map(|(guest, _)| format!("{guest}-")))
        else {
            return;
        };
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path != keep && name.starts_with(&prefix) && name.ends_with(".cwasm") {
                match fs::remove_file(&path) {
                    Ok(()) => tracing::debug!(path = %path.display(), "deleted an old cache entry"),
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "failed to delete an old cache entry")
                    }
                }
            }
        }
    }
}

/// Checks an entry's header and payload hash, then deserializes it.
fn load_entry(engine: &Engine, entry: &[u8]) -> Result<Component, String> {
    if entry.len() < HEADER_LEN || &entry[..MAGIC.len()] != MAGIC {
        return Err("not a moat cache entry".into());
    }
    let (expected, payload) = entry[MAGIC.len()..].split_at(blake3::OUT_LEN);
    if hash_parallel(payload).as_bytes() != expected {
        return Err("payload does not match its hash".into());
    }
    deserialize(engine, payload).map_err(|error| format!("{error:#}"))
}

/// BLAKE3 of `bytes`, spread over all cores: entries and guests are tens of
/// megabytes, and hashing them is on the start-up path of every process.
pub(crate) fn hash_parallel(bytes: &[u8]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update_rayon(bytes);
    hasher.finalize()
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, payload: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires that the bytes come from `serialize` on a
    // compatible engine and were not modified, because they are executable
    // code. The payload was written by `store` above and its BLAKE3 hash
    // matches the one written with it; wasmtime itself checks the engine
    // version and settings and rejects a mismatch with an error.
    unsafe { Component::deserialize(engine, payload) }
}
