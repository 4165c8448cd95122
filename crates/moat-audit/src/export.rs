//! The evidence bundle: a directory that an inspector can check and read
//! without moat.
//!
//! ```text
//! records.jsonl      every selected record: {"seq", "hash", "body"}, where
//!                    body is the exact JSON text that the hash covers
//! summary.csv        one row per execution
//! policies/          the text of every policy the records name, by SHA-256
//! verification.json  the check of the whole chain and of the selection
//! README.txt         how to check the bundle by hand
//! manifest.json      SHA-256 of every file above, the filter, counts, head
//! SHA256SUMS         SHA-256 of every file, manifest.json included, in the
//!                    format `sha256sum -c` reads
//! ```
//!
//! The bundle is written to a temporary directory beside the destination
//! and renamed into place, so a failed export leaves nothing behind. All
//! reads happen in one SQLite read transaction, so the bundle shows one
//! state of a store that `moat serve` may be appending to.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::capture::sha256_hex;
use crate::error::AuditError;
use crate::query::{Filter, Kind, Listed, Order, StoredEntry, execution_entries, list_in};
use crate::record::Event;
use crate::store::{AuditStore, now_rfc3339};
use crate::summary_csv::summary_csv;
use crate::verify::{Head, Verification, verify_in};

/// Version of the bundle's layout, in `manifest.json`.
pub const BUNDLE_FORMAT_VERSION: u32 = 1;

/// A selection read in one transaction, with the chain's verification.
#[derive(Debug, Clone)]
pub(crate) struct Gathered {
    /// The whole chain, checked.
    pub verification: Verification,
    /// The records the filter selected, oldest first.
    pub selected: Vec<Listed>,
    /// The selected records, and the `execution_started` record of each
    /// selected finished execution, by number.
    pub records: Vec<StoredEntry>,
}

/// Reads the selection of `filter` and verifies the chain, in one read
/// transaction.
pub(crate) fn gather(store: &AuditStore, filter: &Filter) -> Result<Gathered, AuditError> {
    store.with_connection(|connection| {
        let transaction = connection.transaction().map_err(|e| store.read_error(e))?;
        let gathered = gather_in(&transaction, store, filter)?;
        transaction.commit().map_err(|e| store.read_error(e))?;
        Ok(gathered)
    })
}

fn gather_in(
    connection: &Connection,
    store: &AuditStore,
    filter: &Filter,
) -> Result<Gathered, AuditError> {
    let verification = verify_in(connection, store, None)?;
    let listing = list_in(connection, store, filter, Order::OldestFirst, None)?;

    let mut records: BTreeMap<u64, StoredEntry> = BTreeMap::new();
    for listed in &listing.entries {
        records.insert(listed.entry.seq, listed.entry.clone());
        if filter.kind == Kind::Execution
            && let Event::Execution(execution) = &listed.entry.body.event
        {
            for entry in execution_entries(connection, store, &execution.execution_id)? {
                if matches!(entry.body.event, Event::ExecutionStarted(_)) {
                    records.insert(entry.seq, entry);
                }
            }
        }
    }
    Ok(Gathered {
        verification,
        selected: listing.entries,
        records: records.into_values().collect(),
    })
}

/// The result of checking the selected records among themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelectionCheck {
    /// Records in `records.jsonl`.
    pub records: usize,
    /// Records whose body does not hash to their stored hash.
    pub hash_mismatches: Vec<u64>,
    /// Pairs of consecutive records (N and N + 1) that are both in the
    /// selection and whose link holds.
    pub linked_pairs: usize,
    /// Records whose `prev_hash` is not the hash of the selected record
    /// before them.
    pub broken_links: Vec<u64>,
    /// Records at or after the first failure of the whole chain.
    pub outside_verified_chain: Vec<u64>,
    /// None of the lists above has an entry.
    pub all_link: bool,
}

/// Checks the selected records against each other and the verification.
pub(crate) fn check_selection(records: &[StoredEntry], chain: &Verification) -> SelectionCheck {
    let mut check = SelectionCheck {
        records: records.len(),
        hash_mismatches: Vec::new(),
        linked_pairs: 0,
        broken_links: Vec::new(),
        outside_verified_chain: Vec::new(),
        all_link: false,
    };
    let mut previous: Option<&StoredEntry> = None;
    for entry in records {
        if !entry.hash_matches() {
            check.hash_mismatches.push(entry.seq);
        }
        if let Some(previous) = previous
            && previous.seq + 1 == entry.seq
        {
            match entry.body.prev_hash == previous.hash {
                true => check.linked_pairs += 1,
                false => check.broken_links.push(entry.seq),
            }
        }
        if !chain.covers(entry.seq) {
            check.outside_verified_chain.push(entry.seq);
        }
        previous = Some(entry);
    }
    check.all_link = check.hash_mismatches.is_empty()
        && check.broken_links.is_empty()
        && check.outside_verified_chain.is_empty();
    check
}

/// A policy written to `policies/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyFile {
    /// The SHA-256 the records name.
    pub sha256: String,
    /// The policy's name, if it has one.
    pub name: Option<String>,
    /// Path inside the bundle.
    pub file: String,
    /// Whether the SHA-256 of the kept text is `sha256`. A mismatch means
    /// the `policies` table was edited.
    pub text_matches_sha256: bool,
    /// The text is empty: moat's built-in default policy.
    pub builtin: bool,
}

/// Counts and checks of the bundle that [`export`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    /// The bundle's directory.
    pub out_dir: PathBuf,
    /// Records in `records.jsonl`.
    pub records: usize,
    /// Executions in `summary.csv`, unfinished ones included.
    pub executions: usize,
    /// Executions without an end record.
    pub unfinished: usize,
    /// Session records.
    pub session_records: usize,
    /// Policies written.
    pub policies: Vec<PolicyFile>,
    /// Policies the records name whose text the store does not keep.
    pub missing_policies: Vec<String>,
    /// The whole chain, checked.
    pub verification: Verification,
    /// The selection, checked.
    pub selection: SelectionCheck,
    /// SHA-256 of `manifest.json`, to note down with the chain's head.
    pub manifest_sha256: String,
}

/// Writes the evidence bundle of `filter`'s selection to `out_dir`, which
/// must not exist or be an empty directory. The bundle is written even when
/// the chain is broken, and `verification.json` names the first failing
/// record.
pub fn export(
    store: &AuditStore,
    filter: &Filter,
    out_dir: &Path,
) -> Result<ExportSummary, AuditError> {
    let replace_empty_dir = check_destination(out_dir)?;
    let parent = match out_dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|source| AuditError::Output {
        path: parent.clone(),
        source,
    })?;
    let staging = tempfile::Builder::new()
        .prefix(".moat-export-")
        .tempdir_in(&parent)
        .map_err(|source| AuditError::Output {
            path: parent.clone(),
            source,
        })?;

    let (gathered, policies) = store.with_connection(|connection| {
        let transaction = connection.transaction().map_err(|e| store.read_error(e))?;
        let gathered = gather_in(&transaction, store, filter)?;
        let policies = read_policies(&transaction, store, &gathered.records)?;
        transaction.commit().map_err(|e| store.read_error(e))?;
        Ok::<_, AuditError>((gathered, policies))
    })?;

    let mut summary = write_bundle(staging.path(), store, filter, &gathered, &policies)?;
    summary.out_dir = out_dir.to_path_buf();

    let staged = staging.keep();
    if replace_empty_dir {
        // rename(2) may replace an empty directory, but Windows cannot.
        if let Err(source) = std::fs::remove_dir(out_dir) {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(AuditError::Output {
                path: out_dir.to_path_buf(),
                source,
            });
        }
    }
    if let Err(source) = std::fs::rename(&staged, out_dir) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(AuditError::Output {
            path: out_dir.to_path_buf(),
            source,
        });
    }
    sync_dir(&parent);
    Ok(summary)
}

/// Rejects a destination that contains anything, and returns whether it is
/// an existing empty directory.
fn check_destination(out_dir: &Path) -> Result<bool, AuditError> {
    match std::fs::read_dir(out_dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(true),
            Some(_) => Err(AuditError::Invalid(format!(
                "cannot export to {}: the directory is not empty; choose a new directory",
                out_dir.display()
            ))),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(_) if out_dir.exists() => Err(AuditError::Invalid(format!(
            "cannot export to {}: it exists and is not a directory; choose a new directory",
            out_dir.display()
        ))),
        Err(source) => Err(AuditError::Output {
            path: out_dir.to_path_buf(),
            source,
        }),
    }
}

/// The kept policy texts, by SHA-256, and the names of those missing.
struct Policies {
    found: Vec<(String, Option<String>, String)>,
    missing: Vec<String>,
}

fn read_policies(
    connection: &Connection,
    store: &AuditStore,
    records: &[StoredEntry],
) -> Result<Policies, AuditError> {
    let mut referenced: BTreeMap<String, ()> = BTreeMap::new();
    for entry in records {
        let policy = match &entry.body.event {
            Event::ExecutionStarted(start) => &start.policy,
            Event::Execution(execution) => &execution.policy,
            _ => continue,
        };
        referenced.insert(policy.sha256.clone(), ());
    }
    let mut policies = Policies {
        found: Vec::new(),
        missing: Vec::new(),
    };
    for sha256 in referenced.into_keys() {
        let row: Option<(Option<String>, String)> = connection
            .query_row(
                "SELECT name, text FROM policies WHERE sha256 = ?1",
                params![sha256],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(|e| store.read_error(e))?;
        match row {
            Some((name, text)) => policies.found.push((sha256, name, text)),
            None => policies.missing.push(sha256),
        }
    }
    Ok(policies)
}

/// One file of the bundle, for the manifest.
#[derive(Debug, Clone, Serialize)]
struct FileDigest {
    path: String,
    bytes: u64,
    sha256: String,
}

#[derive(Debug, Serialize)]
struct Counts {
    records: usize,
    executions: usize,
    unfinished: usize,
    session_records: usize,
    policies: usize,
}

#[derive(Debug, Serialize)]
struct ChainState<'a> {
    valid: bool,
    records: u64,
    head: Option<&'a Head>,
    first_failure: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct Manifest<'a> {
    format: &'static str,
    format_version: u32,
    moat_version: &'static str,
    created: String,
    store: String,
    filter: &'a Filter,
    counts: Counts,
    chain: ChainState<'a>,
    policies: &'a [PolicyFile],
    missing_policies: &'a [String],
    files: &'a [FileDigest],
}

#[derive(Debug, Serialize)]
struct VerificationFile<'a> {
    chain: &'a Verification,
    selection: &'a SelectionCheck,
}

/// One line of `records.jsonl`.
#[derive(Debug, Serialize)]
struct RecordLine<'a> {
    seq: u64,
    hash: &'a str,
    body: &'a str,
}

/// Writes files into a bundle directory and keeps their digests.
struct BundleWriter<'a> {
    dir: &'a Path,
    files: Vec<FileDigest>,
}

impl BundleWriter<'_> {
    fn write(&mut self, relative: &str, bytes: &[u8]) -> Result<(), AuditError> {
        let path = self.dir.join(relative);
        let output_error = |source| AuditError::Output {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(output_error)?;
        }
        let mut file = File::create(&path).map_err(output_error)?;
        file.write_all(bytes).map_err(output_error)?;
        file.sync_all().map_err(output_error)?;
        self.files.push(FileDigest {
            path: relative.to_owned(),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        });
        Ok(())
    }
}

fn write_bundle(
    dir: &Path,
    store: &AuditStore,
    filter: &Filter,
    gathered: &Gathered,
    policies: &Policies,
) -> Result<ExportSummary, AuditError> {
    let mut writer = BundleWriter {
        dir,
        files: Vec::new(),
    };
    let serialize_error = |error: serde_json::Error| {
        AuditError::Invalid(format!("cannot serialize the bundle: {error}"))
    };

    let mut jsonl = String::new();
    for entry in &gathered.records {
        let line = RecordLine {
            seq: entry.seq,
            hash: &entry.hash,
            body: &entry.body_json,
        };
        jsonl.push_str(&serde_json::to_string(&line).map_err(serialize_error)?);
        jsonl.push('\n');
    }
    writer.write("records.jsonl", jsonl.as_bytes())?;

    let (csv, executions, unfinished) = summary_csv(&gathered.selected);
    writer.write("summary.csv", csv.as_bytes())?;

    let mut policy_files = Vec::new();
    for (sha256, name, text) in &policies.found {
        let file = format!("policies/{sha256}.toml");
        writer.write(&file, text.as_bytes())?;
        policy_files.push(PolicyFile {
            sha256: sha256.clone(),
            name: name.clone(),
            file,
            text_matches_sha256: sha256_hex(text.as_bytes()) == *sha256,
            builtin: text.is_empty(),
        });
    }

    let selection = check_selection(&gathered.records, &gathered.verification);
    let verification = VerificationFile {
        chain: &gathered.verification,
        selection: &selection,
    };
    let mut verification_json =
        serde_json::to_string_pretty(&verification).map_err(serialize_error)?;
    verification_json.push('\n');
    writer.write("verification.json", verification_json.as_bytes())?;

    writer.write("README.txt", README.as_bytes())?;

    let session_records = gathered
        .records
        .iter()
        .filter(|entry| entry.body.event.execution_id().is_none())
        .count();
    let chain = &gathered.verification;
    let manifest = Manifest {
        format: "moat-audit-evidence",
        format_version: BUNDLE_FORMAT_VERSION,
        moat_version: env!("CARGO_PKG_VERSION"),
        created: now_rfc3339(),
        store: store.path().display().to_string(),
        filter,
        counts: Counts {
            records: gathered.records.len(),
            executions,
            unfinished,
            session_records,
            policies: policy_files.len(),
        },
        chain: ChainState {
            valid: chain.valid,
            records: chain.records,
            head: chain.head.as_ref(),
            first_failure: chain.first_failure.as_ref().map(|f| f.message.as_str()),
        },
        policies: &policy_files,
        missing_policies: &policies.missing,
        files: &writer.files,
    };
    let mut manifest_json = serde_json::to_string_pretty(&manifest).map_err(serialize_error)?;
    manifest_json.push('\n');
    writer.write("manifest.json", manifest_json.as_bytes())?;
    let manifest_sha256 = sha256_hex(manifest_json.as_bytes());

    let mut sums = String::new();
    for file in &writer.files {
        sums.push_str(&format!("{}  {}\n", file.sha256, file.path));
    }
    writer.write("SHA256SUMS", sums.as_bytes())?;

    Ok(ExportSummary {
        out_dir: dir.to_path_buf(),
        records: gathered.records.len(),
        executions,
        unfinished,
        session_records,
        policies: policy_files,
        missing_policies: policies.missing.clone(),
        verification: gathered.verification.clone(),
        selection,
        manifest_sha256,
    })
}

/// Flushes a directory's entries to disk where the platform allows it.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// `README.txt` of every bundle.
const README: &str = include_str!("bundle_readme.txt");
