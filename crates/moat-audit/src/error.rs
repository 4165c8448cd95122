//! Errors of the audit trail.

use std::path::PathBuf;

/// Why the audit trail could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store's directory could not be created.
    #[error(
        "cannot create the audit store's directory {path}: {source}; pass --audit-db with a writable path"
    )]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A store opened for reading does not exist.
    #[error(
        "the audit store {path} does not exist; pass --audit-db with the path of the store that moat run or moat serve wrote"
    )]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// SQLite refused to open the file or set it up.
    #[error(
        "cannot open the audit store {path}: {source}; check that the path is a writable file, or pass --audit-db with another"
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The file is not a moat audit store, or one of a newer format.
    #[error("{path} is not a moat audit store this version can use: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A record could not be written.
    #[error("cannot write to the audit store {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// Records could not be read.
    #[error("cannot read the audit store {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// A stored record does not parse.
    #[error("record {seq} in {path} does not parse: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The record's position.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// Writing an export or report failed.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A request is invalid (a filter, a range, a destination).
    #[error("{0}")]
    Invalid(String),
}
