//! Checking the hash chain: every record, in order, from the first.
//!
//! A record passes when its number follows the one before it and its body
//! parses and names the same number. Its `prev_hash` must be the hash of the
//! record before it, and the SHA-256 of its body must be its stored hash.
//! Its indexed columns and `egress_hosts` rows must agree with its body.
//! Verification stops at the first record that fails and names the reason.
//!
//! Outside the chain, the schema must have only the objects moat creates
//! (a trigger could have dropped records as they were written), and each
//! kept policy text must hash to the SHA-256 it is kept under.
//!
//! Deleting the newest records leaves a shorter chain that is still valid.
//! Only a head recorded elsewhere (an export's manifest, a ticket, a log)
//! shows that: pass it as an [`ExpectedHead`].

use std::fmt;
use std::str::FromStr;

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde::Serialize;

use crate::capture::sha256_hex;
use crate::error::AuditError;
use crate::filter::event_language;
use crate::record::{EntryBody, Event, GENESIS_HASH};
use crate::schema;
use crate::store::AuditStore;

/// The last record of a chain: its number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    /// Position of the last record.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

/// A head recorded earlier, which the chain must still contain: a hash,
/// or `SEQ:HASH` to also say which record it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedHead {
    /// The record's number, when given.
    pub seq: Option<u64>,
    /// The record's hash, lower-case hex.
    pub hash: String,
}

impl FromStr for ExpectedHead {
    type Err = AuditError;

    fn from_str(text: &str) -> Result<ExpectedHead, AuditError> {
        let text = text.trim();
        let (seq, hash) = match text.split_once(':') {
            Some((seq, hash)) => {
                let seq = seq
                    .parse::<u64>()
                    .ok()
                    .filter(|&seq| seq >= 1)
                    .ok_or_else(|| {
                        AuditError::Invalid(format!(
                            "invalid expected head {text:?}: {seq:?} is not a record number"
                        ))
                    })?;
                (Some(seq), hash)
            }
            None => (None, text),
        };
        let hash = hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuditError::Invalid(format!(
                "invalid expected head {text:?}: expected a SHA-256 of 64 hex digits, optionally after SEQ:"
            )));
        }
        Ok(ExpectedHead { seq, hash })
    }
}

impl fmt::Display for ExpectedHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "{seq}:{}", self.hash),
            None => f.write_str(&self.hash),
        }
    }
}

/// A problem found in a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// Records are missing before this one (numbers `missing_from` up to
    /// this record's number minus one).
    Missing {
        /// First missing number.
        missing_from: u64,
        /// Number of the record found after the gap.
        found: u64,
    },
    /// The record's number is below 1.
    InvalidSeq {
        /// The stored number.
        stored: i64,
    },
    /// The body is not text or not a record.
    Unparseable {
        /// The parser's message.
        reason: String,
    },
    /// The body names another position than the row it is stored in.
    SeqMismatch {
        /// The number inside the body.
        body_seq: u64,
    },
    /// `prev_hash` is not the hash of the record before.
    PrevHashMismatch {
        /// The hash the link should carry.
        expected: String,
        /// The body's `prev_hash`.
        found: String,
    },
    /// The body's SHA-256 is not the stored hash.
    HashMismatch {
        /// The stored hash.
        stored: String,
        /// SHA-256 of the stored body.
        computed: String,
    },
    /// An indexed column disagrees with the body.
    ColumnMismatch {
        /// The column's name.
        column: String,
        /// The column's value.
        stored: Option<String>,
        /// The value the body implies.
        body: Option<String>,
    },
    /// `egress_hosts` has rows for a record that does not exist.
    OrphanEgressHosts {
        /// Hosts in the table.
        stored: Vec<String>,
    },
    /// The `egress_hosts` rows of the record disagree with its body.
    EgressHostsMismatch {
        /// Hosts in the table.
        stored: Vec<String>,
        /// Hosts in the body.
        body: Vec<String>,
    },
    /// The expected head's number is past the end of the chain.
    Truncated {
        /// Number of the last record.
        last_seq: Option<u64>,
    },
    /// The record at the expected head's position has another hash.
    HeadMismatch {
        /// The expected hash.
        expected: String,
        /// The record's hash.
        found: String,
    },
    /// No record carries the expected head's hash.
    HeadNotFound {
        /// The expected hash.
        expected: String,
    },
}

/// The first record that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The record's number (for missing records, the first one missing).
    pub seq: u64,
    /// The problem found.
    #[serde(flatten)]
    pub problem: Problem,
    /// The same as one sentence.
    pub message: String,
}

impl Failure {
    fn new(seq: u64, problem: Problem) -> Failure {
        let message = describe(seq, &problem);
        Failure {
            seq,
            problem,
            message,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn describe(seq: u64, problem: &Problem) -> String {
    match problem {
        Problem::Missing {
            missing_from,
            found,
        } => {
            let last_missing = found - 1;
            let which = match missing_from == &last_missing {
                true => format!("record {missing_from} is missing"),
                false => format!("records {missing_from} to {last_missing} are missing"),
            };
            match missing_from {
                1 => format!("the chain starts at record {found}: {which}"),
                _ => format!("records jump from {} to {found}: {which}", missing_from - 1),
            }
        }
        Problem::InvalidSeq { stored } => {
            format!("record {stored}: invalid record number (numbers start at 1)")
        }
        Problem::Unparseable { reason } => {
            format!("record {seq}: the body is not a valid record: {reason}")
        }
        Problem::SeqMismatch { body_seq } => format!(
            "record {seq}: the body says it is record {body_seq} (records were moved or swapped)"
        ),
        Problem::PrevHashMismatch { expected, found } => match seq {
            1 => format!(
                "record 1: prev_hash is {found}, not the genesis value {expected} (records before it were deleted, or it was edited)"
            ),
            _ => format!(
                "record {seq}: prev_hash does not match record {}'s hash (a record was deleted, edited or moved): prev_hash {found}, record {} has {expected}",
                seq - 1,
                seq - 1
            ),
        },
        Problem::HashMismatch { stored, computed } => format!(
            "record {seq}: hash mismatch: stored {stored}, computed {computed} (the body was edited)"
        ),
        Problem::ColumnMismatch {
            column,
            stored,
            body,
        } => format!(
            "record {seq}: indexed column {column} is {}, but the body says {} (the column was edited)",
            quote(stored.as_deref()),
            quote(body.as_deref())
        ),
        Problem::OrphanEgressHosts { stored } => format!(
            "record {seq}: egress_hosts lists [{}] for this record, which does not exist (it was deleted)",
            stored.join(", ")
        ),
        Problem::EgressHostsMismatch { stored, body } => format!(
            "record {seq}: egress_hosts lists [{}], but the body reached [{}] (the index was edited)",
            stored.join(", "),
            body.join(", ")
        ),
        Problem::Truncated { last_seq } => match last_seq {
            Some(last) => format!(
                "record {seq}: the expected head is record {seq}, but the chain ends at record {last}: the newest records were deleted"
            ),
            None => format!(
                "record {seq}: the expected head is record {seq}, but the store holds no records: all records were deleted"
            ),
        },
        Problem::HeadMismatch { expected, found } => format!(
            "record {seq}: hash {found}, but the expected head is {expected} (the chain was rewritten from there, or the head belongs to another store)"
        ),
        Problem::HeadNotFound { expected } => format!(
            "no record has the expected head hash {expected}: the records up to it were deleted or rewritten, or it belongs to another store"
        ),
    }
}

fn quote(value: Option<&str>) -> String {
    match value {
        Some(value) => format!("{value:?}"),
        None => "NULL".to_owned(),
    }
}

/// A problem of the store outside the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum StoreProblem {
    /// The schema has an object that moat does not create (a trigger, a
    /// view, a table or an index), or lacks or redefines one of its own.
    Schema {
        /// "table", "index", "trigger" or "view".
        object_type: String,
        /// The object's name.
        name: String,
    },
    /// A kept policy text does not hash to the SHA-256 it is kept under.
    PolicyText {
        /// The SHA-256 that records name and the text is kept under.
        sha256: String,
        /// SHA-256 of the kept text, or `None` when it is NULL.
        computed: Option<String>,
    },
}

/// A problem of the store outside the chain, and the same as one sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreFailure {
    /// The problem found.
    #[serde(flatten)]
    pub problem: StoreProblem,
    /// The same as one sentence.
    pub message: String,
}

impl fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The result of checking a whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// No record failed, the expected head, if any, was found, and the
    /// store has no problem outside the chain.
    pub valid: bool,
    /// Records in the store.
    pub records: u64,
    /// Records that passed, in order from the first, before any failure.
    pub verified: u64,
    /// The last record, as stored (trust it only when `valid`).
    pub head: Option<Head>,
    /// The head that was expected, if any.
    pub expected_head: Option<ExpectedHead>,
    /// The first record that failed.
    pub first_failure: Option<Failure>,
    /// Problems of the schema and of the kept policy texts.
    pub store_failures: Vec<StoreFailure>,
}

impl Verification {
    /// Checks whether the record at `seq` lies in the part of the chain
    /// that passed.
    pub fn covers(&self, seq: u64) -> bool {
        seq >= 1 && seq <= self.verified
    }
}

impl AuditStore {
    /// Checks the whole chain in one read transaction, and that it still
    /// contains `expected`, a head recorded earlier.
    pub fn verify(&self, expected: Option<&ExpectedHead>) -> Result<Verification, AuditError> {
        self.with_connection(|connection| {
            let transaction = connection.transaction().map_err(|e| self.read_error(e))?;
            let verification = verify_in(&transaction, self, expected)?;
            transaction.commit().map_err(|e| self.read_error(e))?;
            Ok(verification)
        })
    }
}

/// Derives the indexed columns from a body, as `AuditStore::append` does.
/// Both must derive them the same way, or every record would fail.
fn expected_columns(body: &EntryBody) -> [(&'static str, Option<&str>); 11] {
    let event = &body.event;
    let actor = event.actor();
    let outcome = match event {
        Event::Execution(execution) => Some(execution.outcome.as_str()),
        _ => None,
    };
    [
        ("time", Some(&body.time)),
        ("kind", Some(event.kind())),
        ("execution_id", event.execution_id()),
        ("session_id", event.session_id()),
        ("principal", actor.principal.as_deref()),
        ("tenant", actor.tenant.as_deref()),
        ("client", actor.client.as_ref().map(|c| c.name.as_str())),
        ("model", actor.model.as_deref()),
        ("language", Some(event_language(event))),
        ("outcome", outcome),
        ("prev_hash", Some(&body.prev_hash)),
    ]
}

/// Columns selected by [`verify_in`], in the order of [`expected_columns`].
pub(crate) const COLUMNS_SQL: &str = "time, kind, execution_id, session_id, principal, tenant, client, model, language, outcome, prev_hash";

fn body_hosts(body: &EntryBody) -> Vec<String> {
    let mut hosts: Vec<String> = match &body.event {
        Event::Execution(execution) => execution.egress.iter().map(|a| a.host.clone()).collect(),
        _ => Vec::new(),
    };
    hosts.sort_unstable();
    hosts.dedup();
    hosts
}

/// Reads a text column; another type is returned as `Err` with its name.
fn text_value(value: ValueRef<'_>) -> Result<Option<String>, String> {
    match value {
        ValueRef::Null => Ok(None),
        ValueRef::Text(bytes) => String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| "text that is not UTF-8".to_owned()),
        ValueRef::Integer(number) => Err(format!("the integer {number}")),
        ValueRef::Real(number) => Err(format!("the number {number}")),
        ValueRef::Blob(_) => Err("a blob".to_owned()),
    }
}

/// Checks the chain on `connection`, which should be inside a transaction
/// so that the entries and egress hosts read belong to one state.
pub(crate) fn verify_in(
    connection: &Connection,
    store: &AuditStore,
    expected: Option<&ExpectedHead>,
) -> Result<Verification, AuditError> {
    let read = |e| store.read_error(e);

    let (records, head) = connection
        .query_row(
            "SELECT count(*), (SELECT seq FROM entries ORDER BY seq DESC LIMIT 1),
                    (SELECT hash FROM entries ORDER BY seq DESC LIMIT 1) FROM entries",
            [],
            |row| {
                let count: i64 = row.get(0)?;
                let seq: Option<i64> = row.get(1)?;
                let hash = text_value(row.get_ref(2)?).unwrap_or_else(Some);
                Ok((count, seq.zip(hash)))
            },
        )
        .map_err(read)?;
    let head = head.map(|(seq, hash)| Head {
        seq: u64::try_from(seq).unwrap_or(0),
        hash,
    });

    let mut hosts_statement = connection
        .prepare("SELECT seq, host FROM egress_hosts ORDER BY seq, host")
        .map_err(read)?;
    let mut hosts_rows = hosts_statement.query([]).map_err(read)?;
    let mut pending_host: Option<(i64, Option<String>)> = None;
    let mut next_host = |pending: &mut Option<(i64, Option<String>)>| -> Result<(), AuditError> {
        *pending = match hosts_rows.next().map_err(read)? {
            Some(row) => {
                // A seq that is not an integer sorts after every integer:
                // its hosts belong to no record.
                let seq = match row.get_ref(0).map_err(read)? {
                    ValueRef::Integer(seq) => seq,
                    _ => i64::MAX,
                };
                let host = text_value(row.get_ref(1).map_err(read)?).ok().flatten();
                Some((seq, host))
            }
            None => None,
        };
        Ok(())
    };
    next_host(&mut pending_host)?;

    let mut statement = connection
        .prepare(&format!(
            "SELECT seq, hash, body, {COLUMNS_SQL} FROM entries ORDER BY seq"
        ))
        .map_err(read)?;
    let mut rows = statement.query([]).map_err(read)?;

    let mut verified: u64 = 0;
    let mut previous_hash = GENESIS_HASH.to_owned();
    let mut head_found = false;
    let mut hash_at_expected_seq: Option<String> = None;
    let mut failure: Option<Failure> = None;

    while let Some(row) = rows.next().map_err(read)? {
        let stored_seq: i64 = row.get(0).map_err(read)?;
        let expected_seq = verified + 1;

        // Egress host rows of records that do not exist come before this
        // record in the merge.
        if let Some((host_seq, host)) = &pending_host
            && *host_seq < stored_seq
        {
            let seq = u64::try_from(*host_seq).unwrap_or(0);
            if seq < expected_seq {
                failure = Some(Failure::new(
                    seq,
                    Problem::OrphanEgressHosts {
                        stored: host.iter().cloned().collect(),
                    },
                ));
                break;
            }
        }

        let Ok(seq) = u64::try_from(stored_seq) else {
            failure = Some(Failure::new(0, Problem::InvalidSeq { stored: stored_seq }));
            break;
        };
        if seq == 0 {
            failure = Some(Failure::new(0, Problem::InvalidSeq { stored: stored_seq }));
            break;
        }
        if seq != expected_seq {
            failure = Some(Failure::new(
                expected_seq,
                Problem::Missing {
                    missing_from: expected_seq,
                    found: seq,
                },
            ));
            break;
        }

        let hash = text_value(row.get_ref(1).map_err(read)?);
        let body_json = match text_value(row.get_ref(2).map_err(read)?) {
            Ok(Some(body)) => body,
            Ok(None) => {
                failure = Some(Failure::new(
                    seq,
                    Problem::Unparseable {
                        reason: "the body is NULL".into(),
                    },
                ));
                break;
            }
            Err(kind) => {
                failure = Some(Failure::new(
                    seq,
                    Problem::Unparseable {
                        reason: format!("the body is {kind}, not text"),
                    },
                ));
                break;
            }
        };
        let body: EntryBody = match serde_json::from_str(&body_json) {
            Ok(body) => body,
            Err(error) => {
                failure = Some(Failure::new(
                    seq,
                    Problem::Unparseable {
                        reason: error.to_string(),
                    },
                ));
                break;
            }
        };
        if body.seq != seq {
            failure = Some(Failure::new(
                seq,
                Problem::SeqMismatch { body_seq: body.seq },
            ));
            break;
        }
        if body.prev_hash != previous_hash {
            failure = Some(Failure::new(
                seq,
                Problem::PrevHashMismatch {
                    expected: previous_hash,
                    found: body.prev_hash.clone(),
                },
            ));
            break;
        }
        let computed = sha256_hex(body_json.as_bytes());
        let stored_hash = hash.clone().ok().flatten();
        if stored_hash.as_deref() != Some(computed.as_str()) {
            let stored = match hash {
                Ok(Some(hash)) => hash,
                Ok(None) => "NULL".to_owned(),
                Err(kind) => kind,
            };
            failure = Some(Failure::new(
                seq,
                Problem::HashMismatch { stored, computed },
            ));
            break;
        }

        if let Some(problem) = check_columns(row, &body).map_err(read)? {
            failure = Some(Failure::new(seq, problem));
            break;
        }

        let mut stored_hosts = Vec::new();
        while let Some((host_seq, host)) = &pending_host {
            if *host_seq != stored_seq {
                break;
            }
            stored_hosts.push(host.clone().unwrap_or_default());
            next_host(&mut pending_host)?;
        }
        let hosts = body_hosts(&body);
        if stored_hosts != hosts {
            failure = Some(Failure::new(
                seq,
                Problem::EgressHostsMismatch {
                    stored: stored_hosts,
                    body: hosts,
                },
            ));
            break;
        }

        if let Some(expected) = expected {
            if expected.seq == Some(seq) {
                hash_at_expected_seq = Some(computed.clone());
            }
            if computed == expected.hash && expected.seq.is_none_or(|at| at == seq) {
                head_found = true;
            }
        }
        previous_hash = computed;
        verified = seq;
    }

    // Egress host rows past the last record.
    if failure.is_none()
        && let Some((host_seq, host)) = pending_host
    {
        failure = Some(Failure::new(
            u64::try_from(host_seq).unwrap_or(0),
            Problem::OrphanEgressHosts {
                stored: host.into_iter().collect(),
            },
        ));
    }

    if failure.is_none()
        && let Some(expected) = expected
        && !head_found
    {
        failure = Some(head_failure(expected, head.as_ref(), hash_at_expected_seq));
    }

    let mut store_failures = Vec::new();
    for problem in schema::inspect(connection).map_err(read)? {
        store_failures.push(StoreFailure {
            message: problem.message,
            problem: StoreProblem::Schema {
                object_type: problem.object_type,
                name: problem.name,
            },
        });
    }
    store_failures.extend(check_policies(connection).map_err(read)?);

    Ok(Verification {
        valid: failure.is_none() && store_failures.is_empty(),
        records: u64::try_from(records).unwrap_or(0),
        verified,
        head,
        expected_head: expected.cloned(),
        first_failure: failure,
        store_failures,
    })
}

/// Checks that every kept policy text hashes to the SHA-256 it is kept
/// under.
fn check_policies(connection: &Connection) -> rusqlite::Result<Vec<StoreFailure>> {
    let mut statement = connection.prepare("SELECT sha256, text FROM policies ORDER BY sha256")?;
    let mut rows = statement.query([])?;
    let mut failures = Vec::new();
    while let Some(row) = rows.next()? {
        let sha256 = match row.get_ref(0)? {
            ValueRef::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            other => format!("({:?})", other.data_type()),
        };
        let computed = match row.get_ref(1)? {
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Some(sha256_hex(bytes)),
            ValueRef::Integer(number) => Some(sha256_hex(number.to_string().as_bytes())),
            ValueRef::Real(number) => Some(sha256_hex(number.to_string().as_bytes())),
            ValueRef::Null => None,
        };
        if computed.as_deref() == Some(sha256.as_str()) {
            continue;
        }
        let message = match &computed {
            Some(computed) => format!(
                "policy {sha256}: the kept text has SHA-256 {computed} (the policies table was edited)"
            ),
            None => {
                format!("policy {sha256}: the kept text is NULL (the policies table was edited)")
            }
        };
        failures.push(StoreFailure {
            problem: StoreProblem::PolicyText { sha256, computed },
            message,
        });
    }
    Ok(failures)
}

/// Explains why a chain that verified does not contain `expected`.
/// `found` is the hash of the record at the expected head's number.
fn head_failure(expected: &ExpectedHead, head: Option<&Head>, found: Option<String>) -> Failure {
    let last_seq = head.map(|head| head.seq);
    match (expected.seq, found) {
        (Some(seq), Some(found)) => Failure::new(
            seq,
            Problem::HeadMismatch {
                expected: expected.hash.clone(),
                found,
            },
        ),
        (Some(seq), None) => Failure::new(seq, Problem::Truncated { last_seq }),
        (None, _) => Failure::new(
            0,
            Problem::HeadNotFound {
                expected: expected.hash.clone(),
            },
        ),
    }
}

/// Compares the indexed columns of `row` with what `body` implies.
pub(crate) fn check_columns(
    row: &rusqlite::Row<'_>,
    body: &EntryBody,
) -> rusqlite::Result<Option<Problem>> {
    for (index, (column, wanted)) in expected_columns(body).into_iter().enumerate() {
        let stored = text_value(row.get_ref(3 + index)?);
        let agrees = matches!(&stored, Ok(value) if value.as_deref() == wanted);
        if !agrees {
            let stored = match stored {
                Ok(value) => value,
                Err(kind) => Some(kind),
            };
            return Ok(Some(Problem::ColumnMismatch {
                column: column.to_owned(),
                stored,
                body: wanted.map(str::to_owned),
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_head_parses_both_forms() {
        let hash = "ab".repeat(32);
        let plain: ExpectedHead = hash.parse().expect("plain hash");
        assert_eq!(plain.seq, None);
        assert_eq!(plain.hash, hash);
        let with_seq: ExpectedHead = format!("42:{}", hash.to_uppercase())
            .parse()
            .expect("seq and hash");
        assert_eq!(with_seq.seq, Some(42));
        assert_eq!(with_seq.hash, hash);
    }

    #[test]
    fn expected_head_rejects_short_hash() {
        let error = "12:abcd".parse::<ExpectedHead>().expect_err("short");
        assert!(error.to_string().contains("64 hex digits"), "{error}");
    }

    #[test]
    fn missing_messages() {
        let one = describe(
            17,
            &Problem::Missing {
                missing_from: 17,
                found: 18,
            },
        );
        assert_eq!(one, "records jump from 16 to 18: record 17 is missing");
        let several = describe(
            1,
            &Problem::Missing {
                missing_from: 1,
                found: 4,
            },
        );
        assert_eq!(
            several,
            "the chain starts at record 4: records 1 to 3 are missing"
        );
    }
}
