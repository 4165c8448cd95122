//! The tables and indexes of an audit store, and the check that a file has
//! exactly those.
//!
//! Anything else in the schema is a change made outside moat. A trigger can
//! drop or rewrite records as they are inserted, so a store with one must
//! never be written to. Reading is safe while the known tables have the
//! columns moat reads, because SQLite runs no trigger or view on a plain
//! SELECT, so a read-only open accepts extra objects and `verify` reports
//! them.

use rusqlite::{Connection, params};
use serde::Serialize;

/// One object of the schema: its type, name, table and `CREATE` statement
/// without `IF NOT EXISTS`, as SQLite keeps it in `sqlite_schema`.
struct Object {
    kind: &'static str,
    name: &'static str,
    table: &'static str,
    sql: Option<&'static str>,
}

/// The schema of [`crate::FORMAT_VERSION`], in creation order.
const OBJECTS: [Object; 7] = [
    Object {
        kind: "table",
        name: "entries",
        table: "entries",
        sql: Some(
            "CREATE TABLE entries (
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
)",
        ),
    },
    Object {
        kind: "index",
        name: "entries_time",
        table: "entries",
        sql: Some("CREATE INDEX entries_time ON entries (time)"),
    },
    Object {
        kind: "index",
        name: "entries_execution",
        table: "entries",
        sql: Some("CREATE INDEX entries_execution ON entries (execution_id)"),
    },
    Object {
        kind: "table",
        name: "egress_hosts",
        table: "egress_hosts",
        sql: Some(
            "CREATE TABLE egress_hosts (
    seq  INTEGER NOT NULL,
    host TEXT NOT NULL
)",
        ),
    },
    Object {
        kind: "index",
        name: "egress_hosts_host",
        table: "egress_hosts",
        sql: Some("CREATE INDEX egress_hosts_host ON egress_hosts (host, seq)"),
    },
    Object {
        kind: "table",
        name: "policies",
        table: "policies",
        sql: Some(
            "CREATE TABLE policies (
    sha256 TEXT PRIMARY KEY,
    name   TEXT,
    text   TEXT NOT NULL
)",
        ),
    },
    // SQLite's own index for the primary key of `policies`.
    Object {
        kind: "index",
        name: "sqlite_autoindex_policies_1",
        table: "policies",
        sql: None,
    },
];

/// Columns that reading a store selects, by table.
const READ_COLUMNS: [(&str, &[&str]); 3] = [
    (
        "entries",
        &[
            "seq",
            "time",
            "kind",
            "execution_id",
            "session_id",
            "principal",
            "tenant",
            "client",
            "model",
            "language",
            "outcome",
            "prev_hash",
            "hash",
            "body",
        ],
    ),
    ("egress_hosts", &["seq", "host"]),
    ("policies", &["sha256", "name", "text"]),
];

/// Tables that `ANALYZE` writes. They only steer SQLite's query planner,
/// which cannot change what a query returns, so a store may have them.
const PLANNER_TABLES: [&str; 2] = ["sqlite_stat1", "sqlite_stat4"];

/// Returns the statements that create the schema in an empty file.
pub(crate) fn create_sql() -> String {
    let mut sql = String::new();
    for object in &OBJECTS {
        let Some(statement) = object.sql else {
            continue;
        };
        let statement = statement
            .replacen("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1)
            .replacen("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1);
        sql.push_str(&statement);
        sql.push_str(";\n");
    }
    sql
}

/// An object of a store's schema that a moat audit store does not have, or
/// has with another definition, or lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaProblem {
    /// "table", "index", "trigger" or "view".
    pub object_type: String,
    /// The object's name.
    pub name: String,
    /// The problem, as one clause that names the object.
    pub message: String,
    /// Reading the store would fail or be wrong: a table or a column that
    /// moat reads is missing.
    #[serde(skip)]
    pub(crate) blocks_reading: bool,
}

/// Compares the schema of the file open on `connection` with a moat audit
/// store's and returns every difference.
pub(crate) fn inspect(connection: &Connection) -> rusqlite::Result<Vec<SchemaProblem>> {
    let mut statement =
        connection.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY rowid")?;
    let found: Vec<(String, String, String, Option<String>)> = statement
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<_, _>>()?;

    let mut problems = Vec::new();
    for (kind, name, table, sql) in &found {
        if kind == "table" && PLANNER_TABLES.contains(&name.as_str()) {
            continue;
        }
        let known = OBJECTS.iter().find(|object| object.name == name);
        match known {
            None => problems.push(unexpected(kind, name, table)),
            Some(object) if object.kind != kind || object.table != table => {
                problems.push(unexpected(kind, name, table));
            }
            Some(object) if normalize(object.sql) != normalize(sql.as_deref()) => {
                problems.push(changed(connection, object)?);
            }
            Some(_) => {}
        }
    }
    for object in &OBJECTS {
        let present = found
            .iter()
            .any(|(kind, name, _, _)| kind == object.kind && name == object.name);
        if !present {
            problems.push(SchemaProblem {
                object_type: object.kind.to_owned(),
                name: object.name.to_owned(),
                message: format!("{} {} is missing", object.kind, object.name),
                blocks_reading: object.kind == "table",
            });
        }
    }
    Ok(problems)
}

/// Checks whether the file has no schema objects at all: a new or empty
/// SQLite file.
pub(crate) fn is_empty(connection: &Connection) -> rusqlite::Result<bool> {
    connection.query_row("SELECT count(*) = 0 FROM sqlite_schema", [], |row| {
        row.get(0)
    })
}

/// Names the objects of a file that is not a moat store, for a message:
/// "tables notes and todo".
pub(crate) fn describe_foreign(connection: &Connection) -> rusqlite::Result<String> {
    let mut statement = connection
        .prepare("SELECT type, name FROM sqlite_schema WHERE type IN ('table', 'view') ORDER BY rowid LIMIT 6")?;
    let names: Vec<(String, String)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut shown: Vec<String> = names
        .iter()
        .take(5)
        .map(|(kind, name)| format!("{kind} {name:?}"))
        .collect();
    if names.len() > 5 {
        shown.push("more".to_owned());
    }
    Ok(shown.join(", "))
}

fn unexpected(kind: &str, name: &str, table: &str) -> SchemaProblem {
    let on_table = match kind {
        "table" | "view" => String::new(),
        _ => format!(" on table {table}"),
    };
    let why = match kind {
        "trigger" => ", and a trigger can drop or change records as they are written",
        _ => "",
    };
    SchemaProblem {
        object_type: kind.to_owned(),
        name: name.to_owned(),
        message: format!(
            "the store has {kind} {name:?}{on_table}, which moat does not create{why}"
        ),
        blocks_reading: false,
    }
}

/// Describes a known object whose definition differs from moat's. For a
/// table, the message names the columns moat reads that are missing.
fn changed(connection: &Connection, object: &Object) -> rusqlite::Result<SchemaProblem> {
    let mut problem = SchemaProblem {
        object_type: object.kind.to_owned(),
        name: object.name.to_owned(),
        message: format!(
            "{} {} is defined differently from a moat audit store's",
            object.kind, object.name
        ),
        blocks_reading: false,
    };
    if object.kind != "table" {
        return Ok(problem);
    }
    let mut statement = connection.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let columns: Vec<String> = statement
        .query_map(params![object.name], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let read = READ_COLUMNS
        .iter()
        .find(|(table, _)| *table == object.name)
        .map(|(_, columns)| *columns)
        .unwrap_or_default();
    let missing: Vec<&str> = read
        .iter()
        .copied()
        .filter(|wanted| !columns.iter().any(|column| column == wanted))
        .collect();
    if !missing.is_empty() {
        problem.message = format!(
            "table {} lacks the columns {} that moat reads (it has {})",
            object.name,
            missing.join(", "),
            columns.join(", ")
        );
        problem.blocks_reading = true;
    }
    Ok(problem)
}

/// Collapses every run of white space to one space, so that a statement
/// compares equal however SQLite or an older moat laid it out.
fn normalize(sql: Option<&str>) -> Option<String> {
    sql.map(|sql| sql.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> Connection {
        let connection = Connection::open_in_memory().expect("open");
        connection
            .execute_batch(&create_sql())
            .expect("create the schema");
        connection
    }

    #[test]
    fn created_schema_has_no_problems() {
        let problems = inspect(&created()).expect("inspect");
        assert_eq!(problems, Vec::new());
    }

    #[test]
    fn trigger_reported() {
        let connection = created();
        connection
            .execute_batch(
                "CREATE TRIGGER t BEFORE INSERT ON entries BEGIN SELECT RAISE(IGNORE); END;",
            )
            .expect("add a trigger");

        let problems = inspect(&connection).expect("inspect");

        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].object_type, "trigger");
        assert_eq!(
            problems[0].message,
            "the store has trigger \"t\" on table entries, which moat does not create, and a trigger can drop or change records as they are written"
        );
        assert!(!problems[0].blocks_reading);
    }

    #[test]
    fn missing_column_blocks_reading() {
        let connection = Connection::open_in_memory().expect("open");
        connection
            .execute_batch(
                "CREATE TABLE entries (seq INTEGER PRIMARY KEY, body TEXT);
                 CREATE TABLE egress_hosts (seq INTEGER NOT NULL, host TEXT NOT NULL);",
            )
            .expect("create");

        let problems = inspect(&connection).expect("inspect");

        let entries = problems
            .iter()
            .find(|p| p.name == "entries")
            .expect("entries");
        assert!(entries.blocks_reading);
        assert!(
            entries
                .message
                .starts_with("table entries lacks the columns time, kind, "),
            "{}",
            entries.message
        );
        assert!(entries.message.ends_with("(it has seq, body)"));
        let policies = problems
            .iter()
            .find(|p| p.name == "policies")
            .expect("policies");
        assert_eq!(policies.message, "table policies is missing");
    }

    #[test]
    fn planner_statistics_allowed() {
        let connection = created();
        connection.execute_batch("ANALYZE").expect("analyze");

        assert_eq!(inspect(&connection).expect("inspect"), Vec::new());
    }
}
