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
//! The bundle is written to a temporary directory and then moved into
//! place, so a failed export leaves nothing behind. All reads happen in one
//! SQLite read transaction, so the bundle shows one state of a store that
//! `moat serve` may be appending to.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use moat_policy::LoadedPolicy;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::capture::sha256_hex;
use crate::error::AuditError;
use crate::filter::{Filter, Kind};
use crate::output::{check_destination, check_output, move_into, sync_dir};
use crate::query::{Listed, Selector, StoredEntry, entry_at};
use crate::record::Event;
use crate::store::{AuditStore, now_rfc3339};
use crate::summary_csv::summary_csv;
use crate::verify::{Head, Verification, verify_visiting};

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
    /// Records whose indexed columns disagree with their bodies.
    pub index_mismatches: Vec<u64>,
    /// Damaged records that the filter's conditions left out.
    pub damaged_left_out: Vec<u64>,
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
    // One pass verifies the chain and selects, so each body is parsed once.
    let mut selector = Selector::new(filter, filter.kind == Kind::Execution);
    let verification = verify_visiting(connection, store, &mut |scanned| {
        selector.visit(scanned);
    })?;
    let selection = selector.finish();

    let mut records: BTreeMap<u64, StoredEntry> = BTreeMap::new();
    for listed in &selection.listing.entries {
        records.insert(listed.entry.seq, listed.entry.clone());
        let Some(execution) = listed.entry.execution() else {
            continue;
        };
        for seq in selection
            .starts
            .get(&execution.execution_id)
            .into_iter()
            .flatten()
        {
            if let Some(start) = entry_at(connection, store, *seq)? {
                records.insert(start.seq, start);
            }
        }
    }
    let listing = selection.listing;
    Ok(Gathered {
        verification,
        selected: listing.entries,
        records: records.into_values().collect(),
        index_mismatches: listing.index_mismatches,
        damaged_left_out: listing.damaged_left_out,
    })
}

/// The result of checking the selected records among themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelectionCheck {
    /// Records in `records.jsonl`.
    pub records: usize,
    /// Records whose body does not hash to their stored hash.
    pub hash_mismatches: Vec<u64>,
    /// Records whose body is not a valid record, so that their links
    /// cannot be checked.
    pub damaged: Vec<u64>,
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
        damaged: Vec::new(),
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
        match entry.record() {
            None => check.damaged.push(entry.seq),
            Some(body) => {
                if let Some(previous) = previous
                    && previous.seq + 1 == entry.seq
                {
                    match body.prev_hash == previous.hash {
                        true => check.linked_pairs += 1,
                        false => check.broken_links.push(entry.seq),
                    }
                }
            }
        }
        if !chain.covers(entry.seq) {
            check.outside_verified_chain.push(entry.seq);
        }
        previous = Some(entry);
    }
    check.all_link = check.hash_mismatches.is_empty()
        && check.damaged.is_empty()
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
    /// Whether the SHA-256 of the text is `sha256`. A mismatch means the
    /// `policies` table was edited.
    pub text_matches_sha256: bool,
    /// The text is that of a policy built into moat rather than read from
    /// a file: the empty default policy, or one the exporting program
    /// names, such as the CI policy of `moat check`.
    pub builtin: bool,
    /// The text came from the store. A built-in policy that the store does
    /// not keep is written from moat's own copy, which matches its SHA-256.
    pub kept_in_store: bool,
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
    /// Policies the records name whose text the store does not keep and
    /// moat does not have built in.
    pub missing_policies: Vec<String>,
    /// Damaged records in `records.jsonl`.
    pub damaged: Vec<u64>,
    /// Damaged records that the filter's conditions left out.
    pub damaged_left_out: Vec<u64>,
    /// Records whose indexed columns disagree with their bodies.
    pub index_mismatches: Vec<u64>,
    /// The whole chain, checked.
    pub verification: Verification,
    /// The selection, checked.
    pub selection: SelectionCheck,
    /// SHA-256 of `manifest.json`, to note down with the chain's head.
    pub manifest_sha256: String,
}

/// Writes the evidence bundle of `filter`'s selection to `out_dir`, which
/// must not exist or be an empty directory, and must not be the store or
/// one of its SQLite files. The bundle is written even when the chain is
/// broken, and `verification.json` names the first failing record.
///
/// `builtin_policies` are the texts of policies built into the calling
/// program besides the empty default policy, such as the CI policy of
/// `moat check`. The bundle marks them as built in, and writes them when
/// the store does not keep them.
pub fn export(
    store: &AuditStore,
    filter: &Filter,
    out_dir: &Path,
    builtin_policies: &[&str],
) -> Result<ExportSummary, AuditError> {
    let destination = check_output(store, out_dir)?;
    let existing_empty_dir = check_destination(&destination, out_dir)?;
    let Some(parent) = destination.parent().map(Path::to_path_buf) else {
        return Err(AuditError::Invalid(format!(
            "cannot export to {}: choose a new directory",
            out_dir.display()
        )));
    };
    // A bundle for an existing directory is staged inside it, so that only
    // that directory needs to be writable.
    let staging_parent = match existing_empty_dir {
        true => destination.clone(),
        false => parent.clone(),
    };
    std::fs::create_dir_all(&staging_parent).map_err(|cause| AuditError::Output {
        path: staging_parent.clone(),
        cause,
    })?;
    let staging = tempfile::Builder::new()
        .prefix(".moat-export-")
        .tempdir_in(&staging_parent)
        .map_err(|cause| AuditError::Output {
            path: staging_parent.clone(),
            cause,
        })?;

    let (gathered, policies) = store.with_connection(|connection| {
        let transaction = connection.transaction().map_err(|e| store.read_error(e))?;
        let gathered = gather_in(&transaction, store, filter)?;
        let policies = read_policies(&transaction, store, &gathered.records, builtin_policies)?;
        transaction.commit().map_err(|e| store.read_error(e))?;
        Ok::<_, AuditError>((gathered, policies))
    })?;

    let mut summary = write_bundle(staging.path(), store, filter, &gathered, &policies)?;
    summary.out_dir = out_dir.to_path_buf();

    if existing_empty_dir {
        move_into(staging, &destination)?;
        sync_dir(&destination);
        return Ok(summary);
    }
    let staged = staging.keep();
    if let Err(cause) = std::fs::rename(&staged, &destination) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(AuditError::Output {
            path: out_dir.to_path_buf(),
            cause,
        });
    }
    sync_dir(&parent);
    Ok(summary)
}

/// A policy text for `policies/`, and where it came from.
struct PolicyText {
    sha256: String,
    name: Option<String>,
    text: Vec<u8>,
    builtin: bool,
    kept_in_store: bool,
}

/// The policy texts to write, by SHA-256, and the SHA-256 of those missing.
struct Policies {
    found: Vec<PolicyText>,
    missing: Vec<String>,
}

fn read_policies(
    connection: &Connection,
    store: &AuditStore,
    records: &[StoredEntry],
    builtin_policies: &[&str],
) -> Result<Policies, AuditError> {
    let default_text = LoadedPolicy::builtin().text;
    let mut builtin_texts: Vec<&str> = vec![default_text.as_str()];
    builtin_texts.extend(builtin_policies.iter().copied());

    let mut referenced: BTreeSet<String> = BTreeSet::new();
    for entry in records {
        let policy = match entry.event() {
            Some(Event::ExecutionStarted(start)) => &start.policy,
            Some(Event::Execution(execution)) => &execution.policy,
            _ => continue,
        };
        referenced.insert(policy.sha256.clone());
    }
    let mut policies = Policies {
        found: Vec::new(),
        missing: Vec::new(),
    };
    for sha256 in referenced {
        // The key names a file in the bundle, and a damaged or forged
        // record may give anything.
        if !is_sha256_hex(&sha256) {
            policies.missing.push(sha256);
            continue;
        }
        let row: Option<(Option<String>, Vec<u8>)> = connection
            .query_row(
                "SELECT name, text FROM policies WHERE sha256 = ?1",
                params![sha256],
                |row| {
                    let name = match row.get_ref(0)? {
                        ValueRef::Text(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
                        _ => None,
                    };
                    let text = match row.get_ref(1)? {
                        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes.to_vec(),
                        _ => Vec::new(),
                    };
                    Ok((name, text))
                },
            )
            .optional()
            .map_err(|e| store.read_error(e))?;
        let is_builtin = |text: &[u8]| builtin_texts.iter().any(|b| b.as_bytes() == text);
        match row {
            Some((name, text)) => policies.found.push(PolicyText {
                builtin: sha256_hex(&text) == sha256 && is_builtin(&text),
                sha256,
                name,
                text,
                kept_in_store: true,
            }),
            None => {
                let known = builtin_texts
                    .iter()
                    .find(|text| sha256_hex(text.as_bytes()) == sha256);
                match known {
                    Some(text) => policies.found.push(PolicyText {
                        sha256,
                        name: None,
                        text: text.as_bytes().to_vec(),
                        builtin: true,
                        kept_in_store: false,
                    }),
                    None => policies.missing.push(sha256),
                }
            }
        }
    }
    Ok(policies)
}

/// Checks whether `text` is a SHA-256 in lower-case hex, as records name
/// policies.
fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
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
    damaged: usize,
    policies: usize,
}

#[derive(Debug, Serialize)]
struct ChainState<'a> {
    valid: bool,
    records: u64,
    head: Option<&'a Head>,
    first_failure: Option<&'a str>,
    store_failures: Vec<&'a str>,
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
    damaged_records: &'a [u64],
    damaged_records_left_out: &'a [u64],
    index_mismatches: &'a [u64],
    files: &'a [FileDigest],
}

#[derive(Debug, Serialize)]
struct VerificationFile<'a> {
    chain: &'a Verification,
    selection: &'a SelectionCheck,
}

/// One line of `records.jsonl`. A damaged record keeps its stored body
/// too, as text, or as hex when it is not UTF-8, with why it is damaged.
#[derive(Debug, Serialize)]
struct RecordLine<'a> {
    seq: u64,
    hash: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    damaged: Option<&'a str>,
}

impl<'a> RecordLine<'a> {
    fn of(entry: &'a StoredEntry) -> RecordLine<'a> {
        let body = entry.body_text();
        RecordLine {
            seq: entry.seq,
            hash: &entry.hash,
            body,
            body_hex: match body {
                Some(_) => None,
                None => Some(
                    entry
                        .body_bytes
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect(),
                ),
            },
            damaged: entry.damage(),
        }
    }
}

/// Writes files into a bundle directory and keeps their digests.
struct BundleWriter<'a> {
    dir: &'a Path,
    files: Vec<FileDigest>,
}

impl BundleWriter<'_> {
    fn write(&mut self, relative: &str, bytes: &[u8]) -> Result<(), AuditError> {
        let path = self.dir.join(relative);
        let output_error = |cause| AuditError::Output {
            path: path.clone(),
            cause,
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
        let line = RecordLine::of(entry);
        jsonl.push_str(&serde_json::to_string(&line).map_err(serialize_error)?);
        jsonl.push('\n');
    }
    writer.write("records.jsonl", jsonl.as_bytes())?;

    let (csv, executions, unfinished) = summary_csv(&gathered.selected);
    writer.write("summary.csv", csv.as_bytes())?;

    let mut policy_files = Vec::new();
    for policy in &policies.found {
        let file = format!("policies/{}.toml", policy.sha256);
        writer.write(&file, &policy.text)?;
        policy_files.push(PolicyFile {
            sha256: policy.sha256.clone(),
            name: policy.name.clone(),
            file,
            text_matches_sha256: sha256_hex(&policy.text) == policy.sha256,
            builtin: policy.builtin,
            kept_in_store: policy.kept_in_store,
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
        .filter(|entry| {
            entry
                .event()
                .is_some_and(|event| event.execution_id().is_none())
        })
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
            damaged: selection.damaged.len(),
            policies: policy_files.len(),
        },
        chain: ChainState {
            valid: chain.valid,
            records: chain.records,
            head: chain.head.as_ref(),
            first_failure: chain.first_failure.as_ref().map(|f| f.message.as_str()),
            store_failures: chain
                .store_failures
                .iter()
                .map(|failure| failure.message.as_str())
                .collect(),
        },
        policies: &policy_files,
        missing_policies: &policies.missing,
        damaged_records: &selection.damaged,
        damaged_records_left_out: &gathered.damaged_left_out,
        index_mismatches: &gathered.index_mismatches,
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
        damaged: selection.damaged.clone(),
        damaged_left_out: gathered.damaged_left_out.clone(),
        index_mismatches: gathered.index_mismatches.clone(),
        verification: gathered.verification.clone(),
        selection,
        manifest_sha256,
    })
}

/// `README.txt` of every bundle.
const README: &str = include_str!("bundle_readme.txt");
