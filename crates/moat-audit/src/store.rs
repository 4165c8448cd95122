//! The SQLite store: one file in WAL mode with `synchronous=FULL`, so that a
//! record is on disk when `append` returns, and one chain of entries.
//!
//! Appends from several processes on one file are serialized by SQLite's
//! write lock (`BEGIN IMMEDIATE`): each reads the chain's head and adds the
//! next entry inside one transaction.
//!
//! The store is written only when its schema is exactly moat's (see
//! [`crate::schema`]), and each append reads its row back before it
//! commits, so that a trigger added outside moat cannot drop or rewrite a
//! record while moat reports it written.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::capture::sha256_hex;
use crate::error::AuditError;
use crate::record::{Entry, EntryBody, Event, GENESIS_HASH};
use crate::schema::{self, SchemaProblem};

/// Version of the store's tables; a store of a higher version is refused.
pub const FORMAT_VERSION: i64 = 1;

/// Time a write waits for another process holding the store's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An open audit store.
#[derive(Debug)]
pub struct AuditStore {
    path: PathBuf,
    /// The files an export or report must never be written over.
    protected: ProtectedFiles,
    /// Problems of the schema found when the store was opened read-only.
    /// A store opened for writing has none, or it would not have opened.
    schema_problems: Vec<SchemaProblem>,
    connection: Mutex<Connected>,
}

/// A connection and the schema version at which its schema was checked.
#[derive(Debug)]
struct Connected {
    connection: Connection,
    checked_schema_version: i64,
}

impl AuditStore {
    /// Opens the store at `path`, creating the file and its directory when
    /// they do not exist.
    ///
    /// An existing file must be a moat audit store with exactly the tables
    /// and indexes moat creates, or an empty file. Anything else is
    /// rejected before SQLite writes to it, so a file of another program is
    /// never changed.
    pub fn open(path: &Path) -> Result<AuditStore, AuditError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|cause| AuditError::CreateDir {
                path: parent.to_path_buf(),
                cause,
            })?;
        }
        check_file_type(path, false)?;
        let open_error = |cause| AuditError::Open {
            path: path.to_path_buf(),
            cause,
        };
        let connection = Connection::open(path).map_err(open_error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;

        // Only reads happen until the file is known to be a moat store or
        // empty.
        let version = read_version(&connection, path, open_error)?;
        let empty = schema::is_empty(&connection).map_err(open_error)?;
        match version {
            0 if empty => {}
            0 => {
                let objects = schema::describe_foreign(&connection).map_err(open_error)?;
                return Err(AuditError::Format {
                    path: path.to_path_buf(),
                    reason: format!(
                        "it is a SQLite database of another program (it has {objects})"
                    ),
                });
            }
            FORMAT_VERSION => check_writable_schema(&connection, path)?,
            other => return Err(version_error(path, other)),
        }

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
        if version == 0 {
            // Another process may create the schema at the same time; the
            // write lock orders the two, and the second changes nothing.
            connection
                .execute_batch(&format!(
                    "BEGIN IMMEDIATE; {} PRAGMA user_version = {FORMAT_VERSION}; COMMIT;",
                    schema::create_sql()
                ))
                .map_err(open_error)?;
            check_writable_schema(&connection, path)?;
        }
        let checked_schema_version = schema_version(&connection).map_err(open_error)?;

        Ok(AuditStore {
            path: path.to_path_buf(),
            protected: ProtectedFiles::of(path),
            schema_problems: Vec::new(),
            connection: Mutex::new(Connected {
                connection,
                checked_schema_version,
            }),
        })
    }

    /// Opens an existing store for reading only: nothing is created, and
    /// the file is never written. A missing file is [`AuditError::Missing`].
    ///
    /// A store whose schema has objects that moat does not create (a
    /// trigger, say) opens, because reading cannot run them. They are
    /// listed in [`AuditStore::schema_problems`], and `verify` fails on
    /// them. A store
    /// without a table or column that moat reads is rejected.
    pub fn open_read_only(path: &Path) -> Result<AuditStore, AuditError> {
        check_file_type(path, true)?;
        let open_error = |cause| AuditError::OpenReadOnly {
            path: path.to_path_buf(),
            cause,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags).map_err(open_error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        let version = read_version(&connection, path, open_error)?;
        match version {
            FORMAT_VERSION => {}
            0 if schema::is_empty(&connection).map_err(open_error)? => {
                return Err(AuditError::Format {
                    path: path.to_path_buf(),
                    reason: "the file is empty: moat has not written to it".into(),
                });
            }
            0 => {
                let objects = schema::describe_foreign(&connection).map_err(open_error)?;
                return Err(AuditError::Format {
                    path: path.to_path_buf(),
                    reason: format!(
                        "it is a SQLite database of another program (it has {objects})"
                    ),
                });
            }
            other => return Err(version_error(path, other)),
        }
        let schema_problems = schema::inspect(&connection).map_err(open_error)?;
        if let Some(problem) = schema_problems.iter().find(|p| p.blocks_reading) {
            return Err(AuditError::Format {
                path: path.to_path_buf(),
                reason: problem.message.clone(),
            });
        }
        let checked_schema_version = schema_version(&connection).map_err(open_error)?;
        Ok(AuditStore {
            path: path.to_path_buf(),
            protected: ProtectedFiles::of(path),
            schema_problems,
            connection: Mutex::new(Connected {
                connection,
                checked_schema_version,
            }),
        })
    }

    /// Returns the schema objects, found when the store was opened
    /// read-only, that a moat audit store does not have or has otherwise.
    pub fn schema_problems(&self) -> &[SchemaProblem] {
        &self.schema_problems
    }

    /// Returns the store's file and its SQLite side files, which an export
    /// or report must not replace.
    pub(crate) fn protected_files(&self) -> &ProtectedFiles {
        &self.protected
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the store's connection.
    pub(crate) fn with_connection<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut connected = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut connected.connection)
    }

    /// Keeps the text of the policy whose SHA-256 is `sha256`, so that an
    /// export can include every policy its records name. A policy already
    /// kept is left as it is.
    ///
    /// Policies are not part of the chain: a record names its policy by
    /// hash, and `verify` checks each kept text against its hash.
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
                .map_err(|cause| AuditError::Write {
                    path: self.path.clone(),
                    cause,
                })
        })
    }

    /// Appends `event` as the chain's next entry and returns it once it is
    /// on disk.
    ///
    /// The entry is read back before the transaction commits. When the
    /// insert did not add exactly one row, or the row contains another body or
    /// hash (a trigger added outside moat can cause both), the append fails
    /// and nothing is committed.
    pub fn append(&self, event: Event) -> Result<Entry, AuditError> {
        let write_error = |cause| AuditError::Write {
            path: self.path.clone(),
            cause,
        };
        let mut connected = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Connected {
            connection,
            checked_schema_version,
        } = &mut *connected;

        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(write_error)?;
        // A trigger added while this process runs changes the schema
        // version, which the write lock now holds still.
        let version = schema_version(&transaction).map_err(write_error)?;
        if version != *checked_schema_version {
            check_writable_schema(&transaction, &self.path)?;
            *checked_schema_version = version;
        }

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
            reason: error.to_string(),
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
            Event::ExecutionStarted(start) => (Some(start.language.as_str()), None, Vec::new()),
            Event::SessionCreated(event)
            | Event::SessionClosed(event)
            | Event::SessionExpired(event) => (Some(event.language.as_str()), None, Vec::new()),
        };
        let inserted = transaction
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
        let not_kept = |reason: String| AuditError::NotKept {
            path: self.path.clone(),
            seq,
            reason,
        };
        if inserted != 1 {
            return Err(not_kept(format!(
                "the insert added {inserted} rows instead of 1"
            )));
        }
        for host in hosts {
            let inserted = transaction
                .execute(
                    "INSERT INTO egress_hosts (seq, host) VALUES (?1, ?2)",
                    params![sql_seq, host],
                )
                .map_err(write_error)?;
            if inserted != 1 {
                return Err(not_kept(format!(
                    "the insert of egress host {host:?} added {inserted} rows instead of 1"
                )));
            }
        }

        let kept: Option<(String, String)> = transaction
            .query_row(
                "SELECT hash, body FROM entries WHERE seq = ?1",
                params![sql_seq],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(write_error)?;
        match kept {
            None => return Err(not_kept("the row is gone after the insert".to_owned())),
            Some((kept_hash, kept_body)) if kept_hash != hash || kept_body != json => {
                return Err(not_kept(format!(
                    "the row read back has hash {kept_hash}, not {hash}, or another body"
                )));
            }
            Some(_) => {}
        }
        transaction.commit().map_err(write_error)?;

        Ok(Entry {
            seq: body.seq,
            time: body.time,
            prev_hash: body.prev_hash,
            event: body.event,
            hash,
        })
    }
}

/// Rejects a path that exists and is not a regular file (a directory, a
/// device such as /dev/null, a socket) before SQLite opens it, because
/// SQLite would create side files beside it. A symbolic link to a regular
/// file is accepted. A missing path is accepted when `must_exist` is false.
fn check_file_type(path: &Path, must_exist: bool) -> Result<(), AuditError> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => Ok(()),
        Ok(metadata) => {
            let found = match metadata.is_dir() {
                true => "it is a directory",
                false => "it is a device, socket or pipe",
            };
            Err(AuditError::NotAFile {
                path: path.to_path_buf(),
                found: found.to_owned(),
            })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if must_exist {
                return Err(AuditError::Missing {
                    path: path.to_path_buf(),
                });
            }
            // A dangling symbolic link would make SQLite create its target.
            match std::fs::symlink_metadata(path) {
                Ok(_) => Err(AuditError::NotAFile {
                    path: path.to_path_buf(),
                    found: "it is a symbolic link to a path that does not exist".to_owned(),
                }),
                Err(_) => Ok(()),
            }
        }
        // SQLite reports other failures, such as a directory that cannot
        // be searched, when it opens the path.
        Err(_) => Ok(()),
    }
}

/// Reads `PRAGMA user_version`, which also shows whether the file is a
/// SQLite database at all.
fn read_version(
    connection: &Connection,
    path: &Path,
    open_error: impl Fn(rusqlite::Error) -> AuditError,
) -> Result<i64, AuditError> {
    match connection.query_row("PRAGMA user_version", [], |row| row.get(0)) {
        Ok(version) => Ok(version),
        Err(error) if error.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => {
            Err(AuditError::Format {
                path: path.to_path_buf(),
                reason: "it is not a SQLite database".into(),
            })
        }
        Err(error) => Err(open_error(error)),
    }
}

fn version_error(path: &Path, version: i64) -> AuditError {
    let reason = match version > FORMAT_VERSION {
        true => format!("format version {version}, newer than {FORMAT_VERSION}; use a newer moat"),
        false => format!("unknown format version {version}"),
    };
    AuditError::Format {
        path: path.to_path_buf(),
        reason,
    }
}

/// Rejects a schema that differs in any way from a moat store's, naming
/// the first object that differs.
fn check_writable_schema(connection: &Connection, path: &Path) -> Result<(), AuditError> {
    let problems = schema::inspect(connection).map_err(|cause| AuditError::Open {
        path: path.to_path_buf(),
        cause,
    })?;
    match problems.first() {
        None => Ok(()),
        Some(problem) => {
            let more = match problems.len() {
                1 => String::new(),
                count => format!(" (and {} more differences)", count - 1),
            };
            Err(AuditError::Format {
                path: path.to_path_buf(),
                reason: format!(
                    "{}{more}; moat writes only to a store whose schema it created",
                    problem.message
                ),
            })
        }
    }
}

fn schema_version(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row("PRAGMA schema_version", [], |row| row.get(0))
}

/// The store's file and the side files SQLite keeps beside it, by the path
/// given and by the path with symbolic links resolved, and the identity
/// (device and inode) of the store's file.
#[derive(Debug, Clone)]
pub(crate) struct ProtectedFiles {
    paths: Vec<PathBuf>,
    #[cfg(unix)]
    identity: Option<(u64, u64)>,
}

/// Suffixes of the files SQLite keeps beside a database.
const SIDE_FILE_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

impl ProtectedFiles {
    fn of(path: &Path) -> ProtectedFiles {
        let mut bases = Vec::new();
        if let Ok(absolute) = std::path::absolute(path) {
            bases.push(absolute);
        }
        if let Ok(canonical) = std::fs::canonicalize(path) {
            bases.push(canonical);
        }
        let mut paths = Vec::new();
        for base in bases {
            for suffix in SIDE_FILE_SUFFIXES {
                let mut side = base.clone().into_os_string();
                side.push(suffix);
                paths.push(PathBuf::from(side));
            }
            paths.push(base);
        }
        ProtectedFiles {
            paths,
            #[cfg(unix)]
            identity: file_identity(path),
        }
    }

    /// Checks whether `resolved`, an absolute path with symbolic links
    /// resolved as far as it exists, is one of the files or lies below one,
    /// or is the same file as the store by device and inode.
    pub(crate) fn covers(&self, resolved: &Path) -> bool {
        if self.paths.iter().any(|path| resolved.starts_with(path)) {
            return true;
        }
        #[cfg(unix)]
        if let Some(identity) = self.identity
            && file_identity(resolved) == Some(identity)
        {
            return true;
        }
        false
    }
}

#[cfg(unix)]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()))
}

/// The current time as stored: RFC 3339, UTC, microseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Actor, SessionEvent};

    fn session_event() -> Event {
        Event::SessionCreated(SessionEvent {
            session_id: "s1".into(),
            actor: Actor::default(),
            language: "python".into(),
            reason: None,
        })
    }

    /// Opens a new store and adds `trigger_sql` as a TEMP trigger on its
    /// own connection, which leaves the file's schema version as it is, so
    /// that only the read-back check of `append` can notice it.
    fn store_with_temp_trigger(trigger_sql: &str) -> (tempfile::TempDir, AuditStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AuditStore::open(&dir.path().join("audit.db")).expect("open");
        store
            .append(session_event())
            .expect("append before the trigger");
        store.with_connection(|connection| {
            connection
                .execute_batch(trigger_sql)
                .expect("add a trigger")
        });
        (dir, store)
    }

    #[test]
    fn dropped_insert_fails_append() {
        let (_dir, store) = store_with_temp_trigger(
            "CREATE TEMP TRIGGER drop_all BEFORE INSERT ON main.entries BEGIN SELECT RAISE(IGNORE); END;",
        );

        let error = store.append(session_event()).expect_err("dropped");

        assert!(
            error.to_string().ends_with(
                "did not keep record 2 as written: the insert added 0 rows instead of 1"
            ),
            "{error}"
        );
    }

    #[test]
    fn deleted_row_fails_append() {
        let (_dir, store) = store_with_temp_trigger(
            "CREATE TEMP TRIGGER delete_new AFTER INSERT ON main.entries BEGIN DELETE FROM main.entries WHERE seq = new.seq; END;",
        );

        let error = store.append(session_event()).expect_err("deleted");

        assert!(
            error
                .to_string()
                .ends_with("did not keep record 2 as written: the row is gone after the insert"),
            "{error}"
        );
    }

    #[test]
    fn rewritten_row_fails_append() {
        let (_dir, store) = store_with_temp_trigger(
            "CREATE TEMP TRIGGER rewrite AFTER INSERT ON main.entries BEGIN UPDATE main.entries SET body = '{}' WHERE seq = new.seq; END;",
        );

        let error = store.append(session_event()).expect_err("rewritten");

        assert!(
            error.to_string().contains("the row read back has hash "),
            "{error}"
        );
        let count: i64 = store.with_connection(|connection| {
            connection
                .query_row("SELECT count(*) FROM main.entries", [], |row| row.get(0))
                .expect("count")
        });
        assert_eq!(count, 1, "the failed append was rolled back");
    }
}
