//! The SQLite store: one file in WAL mode with `synchronous=FULL`, so that a
//! record is on disk when `append` returns, and one chain of entries.
//!
//! Appends from several processes on one file are serialized by SQLite's
//! write lock (`BEGIN IMMEDIATE`): each reads the chain's head and adds the
//! next entry inside one transaction.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::capture::sha256_hex;
use crate::error::AuditError;
use crate::record::{Entry, EntryBody, Event, GENESIS_HASH};

/// Version of the store's tables; a store of a higher version is refused.
pub const FORMAT_VERSION: i64 = 1;

/// Time a write waits for another process holding the store's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    seq          INTEGER PRIMARY KEY,
    time         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    execution_id TEXT,
    session_id   TEXT,
    principal    TEXT,
    tenant       TEXT,
    client       TEXT,
    model        TEXT,
    language     TEXT,
    outcome      TEXT,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_time ON entries (time);
CREATE INDEX IF NOT EXISTS entries_execution ON entries (execution_id);
CREATE TABLE IF NOT EXISTS egress_hosts (
    seq  INTEGER NOT NULL,
    host TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS egress_hosts_host ON egress_hosts (host, seq);
CREATE TABLE IF NOT EXISTS policies (
    sha256 TEXT PRIMARY KEY,
    name   TEXT,
    text   TEXT NOT NULL
);
";

/// An open audit store.
#[derive(Debug)]
pub struct AuditStore {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl AuditStore {
    /// Opens the store at `path`, creating the file and its directory when
    /// they do not exist.
    pub fn open(path: &Path) -> Result<AuditStore, AuditError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| AuditError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let open_error = |source| AuditError::Open {
            path: path.to_path_buf(),
            source,
        };
        let connection = Connection::open(path).map_err(open_error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(open_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(AuditError::Format {
                path: path.to_path_buf(),
                reason: format!("SQLite kept journal mode {mode:?} instead of WAL"),
            });
        }
        connection
            .execute_batch("PRAGMA synchronous = FULL;")
            .map_err(open_error)?;

        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(open_error)?;
        if version > FORMAT_VERSION {
            return Err(AuditError::Format {
                path: path.to_path_buf(),
                reason: format!(
                    "format version {version}, newer than {FORMAT_VERSION}; use a newer moat"
                ),
            });
        }
        if version == 0 {
            let has_tables: bool = connection
                .query_row(
                    "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name NOT IN ('entries', 'egress_hosts', 'policies')",
                    [],
                    |row| row.get(0),
                )
                .map_err(open_error)?;
            if has_tables {
                return Err(AuditError::Format {
                    path: path.to_path_buf(),
                    reason: "the file is a SQLite database with other tables".into(),
                });
            }
            connection
                .execute_batch(&format!(
                    "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {FORMAT_VERSION}; COMMIT;"
                ))
                .map_err(open_error)?;
        }
        Ok(AuditStore {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        })
    }

    /// Opens an existing store for reading only: nothing is created, and
    /// the file is never written. A missing file is [`AuditError::Missing`].
    pub fn open_read_only(path: &Path) -> Result<AuditStore, AuditError> {
        if !path.exists() {
            return Err(AuditError::Missing {
                path: path.to_path_buf(),
            });
        }
        let open_error = |source| AuditError::Open {
            path: path.to_path_buf(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags).map_err(open_error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(open_error)?;
        let reason = match version {
            0 => Some("it has no moat audit tables".to_owned()),
            FORMAT_VERSION => None,
            newer if newer > FORMAT_VERSION => Some(format!(
                "format version {newer}, newer than {FORMAT_VERSION}; use a newer moat"
            )),
            other => Some(format!("unknown format version {other}")),
        };
        if let Some(reason) = reason {
            return Err(AuditError::Format {
                path: path.to_path_buf(),
                reason,
            });
        }
        Ok(AuditStore {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the store's connection.
    pub(crate) fn with_connection<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut connection)
    }

    /// Keeps the text of the policy whose SHA-256 is `sha256`, so that an
    /// export can include every policy its records name. A policy already
    /// kept is left as it is.
    ///
    /// Policies are not part of the chain: a record names its policy by
    /// hash, and the kept text can be checked against that hash.
    pub fn record_policy(
        &self,
        sha256: &str,
        name: Option<&str>,
        text: &str,
    ) -> Result<(), AuditError> {
        self.with_connection(|connection| {
            connection
                .execute(
                    "INSERT OR IGNORE INTO policies (sha256, name, text) VALUES (?1, ?2, ?3)",
                    params![sha256, name, text],
                )
                .map(drop)
                .map_err(|source| AuditError::Write {
                    path: self.path.clone(),
                    source,
                })
        })
    }

    /// Appends `event` as the chain's next entry and returns it once it is
    /// on disk.
    pub fn append(&self, event: Event) -> Result<Entry, AuditError> {
        let write_error = |source| AuditError::Write {
            path: self.path.clone(),
            source,
        };
        self.with_connection(|connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(write_error)?;
            let head: Option<(i64, String)> = transaction
                .query_row(
                    "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(write_error)?;
            let (seq, prev_hash) = match head {
                Some((seq, hash)) => (seq.unsigned_abs() + 1, hash),
                None => (1, GENESIS_HASH.to_owned()),
            };
            let body = EntryBody {
                seq,
                time: now_rfc3339(),
                prev_hash,
                event,
            };
            let json = serde_json::to_string(&body).map_err(|error| AuditError::Corrupt {
                path: self.path.clone(),
                seq,
                reason: format!("cannot serialize the record: {error}"),
            })?;
            let hash = sha256_hex(json.as_bytes());
            let sql_seq = i64::try_from(seq).unwrap_or(i64::MAX);

            let actor = body.event.actor();
            let (language, outcome, hosts) = match &body.event {
                Event::Execution(execution) => {
                    let mut hosts: Vec<&str> =
                        execution.egress.iter().map(|a| a.host.as_str()).collect();
                    hosts.sort_unstable();
                    hosts.dedup();
                    (
                        Some(execution.language.as_str()),
                        Some(execution.outcome.as_str()),
                        hosts,
                    )
                }
                Event::ExecutionStarted(start) => {
                    (Some(start.language.as_str()), None, Vec::new())
                }
                Event::SessionCreated(event)
                | Event::SessionClosed(event)
                | Event::SessionExpired(event) => (Some(event.language.as_str()), None, Vec::new()),
            };
            transaction
                .execute(
                    "INSERT INTO entries (seq, time, kind, execution_id, session_id, principal, tenant, client, model, language, outcome, prev_hash, hash, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                    params![
                        sql_seq,
                        body.time,
                        body.event.kind(),
                        body.event.execution_id(),
                        body.event.session_id(),
                        actor.principal,
                        actor.tenant,
                        actor.client.as_ref().map(|c| c.name.as_str()),
                        actor.model,
                        language,
                        outcome,
                        body.prev_hash,
                        hash,
                        json,
                    ],
                )
                .map_err(write_error)?;
            for host in hosts {
                transaction
                    .execute(
                        "INSERT INTO egress_hosts (seq, host) VALUES (?1, ?2)",
                        params![sql_seq, host],
                    )
                    .map_err(write_error)?;
            }
            transaction.commit().map_err(write_error)?;
            Ok(Entry {
                seq: body.seq,
                time: body.time,
                prev_hash: body.prev_hash,
                event: body.event,
                hash,
            })
        })
    }
}

/// The current time as stored: RFC 3339, UTC, microseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}
