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

mod walk;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::AuditError;

pub(crate) use walk::{COLUMNS_SQL, check_columns, verify_visiting};

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
