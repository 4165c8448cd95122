//! Errors of the audit trail.
//!
//! Each variant puts its cause in its own message and does not return it
//! as [`std::error::Error::source`]. rusqlite's errors repeat their message
//! in their source ("database is locked: Error code 5: database is
//! locked"), so a chain rendered with `{:#}` would show the cause two or
//! three times.

use std::path::PathBuf;

/// Why the audit trail could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store's directory could not be created.
    #[error(
        "cannot create the audit store's directory {path}: {cause}; pass --audit-db with a writable path"
    )]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A store opened for reading does not exist.
    #[error(
        "the audit store {path} does not exist; pass --audit-db with the path of the store that moat run or moat serve wrote"
    )]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The path names something other than a regular file, such as a
    /// directory or a device.
    #[error(
        "the audit store {path} is not a regular file ({found}); pass --audit-db with the path of a file"
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// The kind of file the path names instead.
        found: String,
    },
    /// SQLite could not open the file for writing or set it up.
    #[error(
        "cannot open the audit store {path}: {cause}; check that the path is a writable file, or pass --audit-db with another"
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: rusqlite::Error,
    },
    /// SQLite could not open the file for reading.
    #[error(
        "cannot open the audit store {path} for reading: {cause}; check that the file is readable and that moat run or moat serve wrote it"
    )]
    OpenReadOnly {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: rusqlite::Error,
    },
    /// The file is not a moat audit store, or one of a newer format, or a
    /// store whose tables were changed.
    #[error("{path} is not a moat audit store this version can use: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A record could not be written.
    #[error("cannot write to the audit store {path}: {cause}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: rusqlite::Error,
    },
    /// A record was written, but the store did not keep it as written: a
    /// change to the store outside moat (a trigger, say) dropped or altered
    /// it.
    #[error("the audit store {path} did not keep record {seq} as written: {reason}")]
    NotKept {
        /// The file.
        path: PathBuf,
        /// The record's position.
        seq: u64,
        /// The difference between the row written and the store's result.
        reason: String,
    },
    /// Records could not be read.
    #[error("cannot read the audit store {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: rusqlite::Error,
    },
    /// A record could not be serialized.
    #[error("record {seq} for {path} cannot be serialized: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The record's position.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// An export or report would be written over the store or one of its
    /// SQLite files.
    #[error(
        "cannot write to {output}: it is the audit store {store} or one of its -wal, -shm and -journal files; choose another output path"
    )]
    OutputIsStore {
        /// The output path as given.
        output: PathBuf,
        /// The store's path.
        store: PathBuf,
    },
    /// Writing an export or report failed.
    #[error("cannot write {path}: {cause}")]
    Output {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A request is invalid (a filter, a range, a destination).
    #[error("{0}")]
    Invalid(String),
}
