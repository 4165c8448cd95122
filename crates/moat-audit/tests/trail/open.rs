//! Opening a store: files of other programs are rejected before anything
//! is written to them, a store with schema objects moat does not create is
//! never written to, and errors name their cause once.

use std::error::Error as _;
use std::path::Path;

use moat_audit::{AuditError, AuditStore, Event, StoreProblem};

use crate::support::{Run, raw, record_run, session, store_path, tempdir};

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read the file")
}

fn side_file(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

#[test]
fn foreign_database_left_unchanged() {
    let dir = tempdir();
    let path = dir.path().join("other.db");
    let connection = rusqlite::Connection::open(&path).expect("create");
    connection
        .execute_batch("CREATE TABLE foo (x); INSERT INTO foo VALUES (1);")
        .expect("fill");
    drop(connection);
    let before = file_bytes(&path);

    let error = AuditStore::open(&path).expect_err("not a store");

    assert_eq!(
        error.to_string(),
        format!(
            "{} is not a moat audit store this version can use: it is a SQLite database of another program (it has table \"foo\")",
            path.display()
        )
    );
    assert_eq!(file_bytes(&path), before, "the file was changed");
    let mode: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("journal mode");
    assert_eq!(mode, "delete");
    assert!(!side_file(&path, "-wal").exists());
}

#[test]
fn text_file_left_unchanged() {
    let dir = tempdir();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "not a database, just notes\n".repeat(100)).expect("write");
    let before = file_bytes(&path);

    let writing = AuditStore::open(&path).expect_err("not a store");
    let reading = AuditStore::open_read_only(&path).expect_err("not a store");

    let expected = format!(
        "{} is not a moat audit store this version can use: it is not a SQLite database",
        path.display()
    );
    assert_eq!(writing.to_string(), expected);
    assert_eq!(reading.to_string(), expected);
    assert_eq!(file_bytes(&path), before);
}

#[test]
fn directory_rejected_before_sqlite() {
    let dir = tempdir();

    let writing = AuditStore::open(dir.path()).expect_err("a directory");
    let reading = AuditStore::open_read_only(dir.path()).expect_err("a directory");

    let expected = format!(
        "the audit store {} is not a regular file (it is a directory); pass --audit-db with the path of a file",
        dir.path().display()
    );
    assert_eq!(writing.to_string(), expected);
    assert_eq!(reading.to_string(), expected);
}

#[cfg(unix)]
#[test]
fn device_rejected_before_sqlite() {
    let error = AuditStore::open(Path::new("/dev/null")).expect_err("a device");

    assert!(matches!(error, AuditError::NotAFile { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "the audit store /dev/null is not a regular file (it is a device, socket or pipe); pass --audit-db with the path of a file"
    );
}

#[cfg(unix)]
#[test]
fn dangling_link_rejected() {
    let dir = tempdir();
    let link = dir.path().join("audit.db");
    std::os::unix::fs::symlink(dir.path().join("elsewhere/target.db"), &link).expect("symlink");

    let error = AuditStore::open(&link).expect_err("a dangling link");

    assert!(
        error
            .to_string()
            .contains("(it is a symbolic link to a path that does not exist)"),
        "{error}"
    );
    assert!(!dir.path().join("elsewhere").exists());
}

#[test]
fn wrong_columns_named_briefly() {
    let dir = tempdir();
    let path = dir.path().join("wrong.db");
    raw(&path)
        .execute_batch(
            "CREATE TABLE entries (id INTEGER PRIMARY KEY, data TEXT);
             PRAGMA user_version = 1;",
        )
        .expect("create");

    let writing = AuditStore::open(&path).expect_err("wrong columns");
    let reading = AuditStore::open_read_only(&path).expect_err("wrong columns");

    for error in [writing.to_string(), reading.to_string()] {
        assert!(
            error.contains(
                "table entries lacks the columns seq, time, kind, execution_id, session_id, principal, tenant, client, model, language, outcome, prev_hash, hash, body that moat reads (it has id, data)"
            ),
            "{error}"
        );
        assert!(!error.contains("CREATE"), "{error}");
    }
}

#[test]
fn store_with_trigger_not_written() {
    let dir = tempdir();
    let path = store_path(dir.path());
    let store = AuditStore::open(&path).expect("create");
    record_run(&store, &Run::new("r1"), true);
    drop(store);
    raw(&path)
        .execute_batch(
            "CREATE TRIGGER t BEFORE INSERT ON entries
             WHEN new.body LIKE '%secret-job%'
             BEGIN SELECT RAISE(IGNORE); END;",
        )
        .expect("add a trigger");

    let writing = AuditStore::open(&path).expect_err("a trigger");
    let reading = AuditStore::open_read_only(&path).expect("reading is safe");
    let verification = reading.verify(None).expect("verify");

    assert_eq!(
        writing.to_string(),
        format!(
            "{} is not a moat audit store this version can use: the store has trigger \"t\" on table entries, which moat does not create, and a trigger can drop or change records as they are written; moat writes only to a store whose schema it created",
            path.display()
        )
    );
    assert_eq!(reading.schema_problems().len(), 1);
    assert!(!verification.valid);
    assert_eq!(verification.first_failure, None, "the chain itself holds");
    assert_eq!(
        verification.store_failures[0].problem,
        StoreProblem::Schema {
            object_type: "trigger".into(),
            name: "t".into(),
        }
    );
}

#[test]
fn trigger_added_while_open_stops_appends() {
    let dir = tempdir();
    let path = store_path(dir.path());
    let store = AuditStore::open(&path).expect("create");
    record_run(&store, &Run::new("r1"), true);
    raw(&path)
        .execute_batch(
            "CREATE TRIGGER t AFTER INSERT ON entries BEGIN DELETE FROM entries WHERE seq = new.seq; END;",
        )
        .expect("add a trigger");

    let error = store
        .append(Event::SessionCreated(session("s1", "alice")))
        .expect_err("the trigger is seen");

    assert!(
        error
            .to_string()
            .contains("the store has trigger \"t\" on table entries"),
        "{error}"
    );
    let count: i64 = raw(&path)
        .query_row("SELECT count(*) FROM entries", [], |row| row.get(0))
        .expect("count");
    assert_eq!(count, 2, "nothing was appended");
}

#[test]
fn extra_table_and_view_reported() {
    let dir = tempdir();
    let path = store_path(dir.path());
    drop(AuditStore::open(&path).expect("create"));
    raw(&path)
        .execute_batch("CREATE TABLE shadow (x); CREATE VIEW visible AS SELECT seq FROM entries;")
        .expect("add objects");

    let writing = AuditStore::open(&path).expect_err("extra objects");
    let reading = AuditStore::open_read_only(&path).expect("open");

    assert!(
        writing.to_string().contains(
            "the store has table \"shadow\", which moat does not create (and 1 more differences)"
        ),
        "{writing}"
    );
    let names: Vec<&str> = reading
        .schema_problems()
        .iter()
        .map(|problem| problem.name.as_str())
        .collect();
    assert_eq!(names, ["shadow", "visible"]);
}

#[test]
fn read_only_open_keeps_read_advice() {
    let dir = tempdir();
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").expect("create an empty file");

    let error = AuditStore::open_read_only(&path).expect_err("empty");

    assert_eq!(
        error.to_string(),
        format!(
            "{} is not a moat audit store this version can use: the file is empty: moat has not written to it",
            path.display()
        )
    );
}

#[test]
fn error_names_cause_once() {
    let locked = rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("database is locked".into()),
    );
    let error = AuditError::Write {
        path: "audit.db".into(),
        cause: locked,
    };

    assert_eq!(
        error.to_string(),
        "cannot write to the audit store audit.db: database is locked"
    );
    assert!(error.source().is_none(), "a chain would repeat the cause");
}

#[test]
fn read_only_error_gives_read_advice() {
    let error = AuditError::OpenReadOnly {
        path: "audit.db".into(),
        cause: rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            None,
        ),
    };

    let message = error.to_string();

    assert!(message.contains("for reading"), "{message}");
    assert!(!message.contains("writable"), "{message}");
}
