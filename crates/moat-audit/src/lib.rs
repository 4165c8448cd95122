//! The audit trail of moat: one hash-chained record per execution and per
//! session event, kept in a SQLite file, verified, queried and exported as
//! evidence.

mod capture;
mod error;
mod export;
mod files;
mod filter;
mod output;
mod query;
mod record;
mod recorder;
mod report;
mod schema;
mod store;
mod summary_csv;
mod verify;

pub use capture::{Redact, capture, no_secrets, sha256_hex};
pub use error::AuditError;
pub use export::{BUNDLE_FORMAT_VERSION, ExportSummary, PolicyFile, SelectionCheck, export};
pub use files::{DirState, GrantsState, MAX_SCANNED_ENTRIES, hash_file, input_file};
pub use filter::{DAMAGED, Filter, Kind, OUTCOMES, UNFINISHED};
pub use output::{check_output, write_output};
pub use query::{Found, Listed, Listing, Order, StoredEntry};
pub use record::*;
pub use recorder::{Ended, Finished, Recorder, RunInfo, SessionEventKind, new_execution_id};
pub use report::{Report, escape_html, report};
pub use schema::SchemaProblem;
pub use store::{AuditStore, FORMAT_VERSION, now_rfc3339};
pub use verify::{ExpectedHead, Failure, Head, Problem, StoreFailure, StoreProblem, Verification};
