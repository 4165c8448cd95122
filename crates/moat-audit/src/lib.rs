//! The audit trail of moat: one hash-chained record per execution and per
//! session event, kept in a SQLite file, verified, queried and exported as
//! evidence.

mod capture;
mod error;
mod files;
mod record;
mod recorder;
mod store;

pub use capture::{Redact, capture, no_secrets, sha256_hex};
pub use error::AuditError;
pub use files::{DirState, MAX_SCANNED_ENTRIES, hash_file, input_file};
pub use record::*;
pub use recorder::{Ended, Finished, Recorder, RunInfo, SessionEventKind, new_execution_id};
pub use store::{AuditStore, FORMAT_VERSION, now_rfc3339};
