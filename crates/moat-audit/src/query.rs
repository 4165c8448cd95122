//! Reading the trail: filters, listing, and finding one execution or record.
//!
//! The store's indexed columns (`time`, `principal`, `outcome`, ...) and the
//! `egress_hosts` table only narrow the search in SQL. The record's body is
//! what the chain hashes, so every row found is parsed and checked against
//! the filter again. A row whose columns match but whose body does not is
//! left out and reported in [`Listing::index_mismatches`]. An edited column can
//! still hide a record from a filtered search; `verify` is what catches it.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveTime, SubsecRound, TimeDelta, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::Serialize;

use crate::capture::sha256_hex;
use crate::error::AuditError;
use crate::record::{EntryBody, Event, Execution};
use crate::store::AuditStore;

/// The format of stored times, which sort as text in time order.
pub(crate) const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// The conditions of a search. Every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// Earliest record time, inclusive, in the stored format.
    #[serde(rename = "from_inclusive", skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Time at which the range ends, exclusive, in the stored format.
    #[serde(rename = "to_exclusive", skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The actor's principal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The actor's tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The MCP client's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The model identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// "python" or "javascript".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// An execution's outcome, or [`UNFINISHED`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// A host the execution attempted to reach, allowed or not (lower case).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress_host: Option<String>,
    /// The MCP session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The kinds of records selected.
    pub kind: Kind,
}

/// The pseudo-outcome of an execution whose `execution_started` record has
/// no `execution` record: it is still running, or moat stopped (a crash,
/// `kill -9`, power loss) before it could record the end.
pub const UNFINISHED: &str = "unfinished";

/// Record kinds that a search selects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One record per execution: the `execution` record of each finished
    /// run, and the `execution_started` record of each unfinished one.
    #[default]
    Execution,
    /// Session records: created, closed and expired.
    Session,
    /// Every record, `execution_started` records of finished runs included.
    All,
}

impl FromStr for Kind {
    type Err = AuditError;

    fn from_str(text: &str) -> Result<Kind, AuditError> {
        match text {
            "execution" => Ok(Kind::Execution),
            "session" => Ok(Kind::Session),
            "all" => Ok(Kind::All),
            other => Err(AuditError::Invalid(format!(
                "invalid record kind {other:?}: expected execution, session or all"
            ))),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Execution => "execution",
            Kind::Session => "session",
            Kind::All => "all",
        })
    }
}

impl Filter {
    /// Sets the start of the time range from a date (`2026-03-01`, the
    /// start of that UTC day) or an RFC 3339 time.
    pub fn set_from(&mut self, text: &str) -> Result<(), AuditError> {
        self.from = Some(format_time(parse_bound(text, "--from", false)?));
        self.check_range()
    }

    /// Sets the end of the time range from a date (`2026-03-31`, up to the
    /// end of that UTC day) or an RFC 3339 time, which is included.
    pub fn set_to(&mut self, text: &str) -> Result<(), AuditError> {
        self.to = Some(format_time(parse_bound(text, "--to", true)?));
        self.check_range()
    }

    /// Sets the egress host, normalized as records store hosts: lower case,
    /// without a trailing dot.
    pub fn set_egress_host(&mut self, host: &str) {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.egress_host = Some(host);
    }

    fn check_range(&self) -> Result<(), AuditError> {
        if let (Some(from), Some(to)) = (&self.from, &self.to)
            && from >= to
        {
            return Err(AuditError::Invalid(format!(
                "the time range is empty: --from starts at {from}, and --to ends before it at {to}"
            )));
        }
        Ok(())
    }

    /// Checks whether `body` matches every field, judged by the body alone.
    /// `unfinished` is true for an `execution_started` record that has no
    /// `execution` record.
    pub fn matches(&self, body: &EntryBody, unfinished: bool) -> bool {
        let event = &body.event;
        let kind_matches = match (self.kind, event) {
            (Kind::All, _) => true,
            (Kind::Execution, Event::Execution(_)) => true,
            (Kind::Execution, Event::ExecutionStarted(_)) => unfinished,
            (Kind::Execution, _) => false,
            (Kind::Session, event) => event.execution_id().is_none(),
        };
        if !kind_matches {
            return false;
        }
        if let Some(from) = &self.from
            && body.time.as_str() < from.as_str()
        {
            return false;
        }
        if let Some(to) = &self.to
            && body.time.as_str() >= to.as_str()
        {
            return false;
        }

        let actor = event.actor();
        let client = actor.client.as_ref().map(|client| client.name.as_str());
        let fields = [
            (&self.principal, actor.principal.as_deref()),
            (&self.tenant, actor.tenant.as_deref()),
            (&self.client, client),
            (&self.model, actor.model.as_deref()),
            (&self.language, Some(event_language(event))),
            (&self.session_id, event.session_id()),
        ];
        for (wanted, actual) in fields {
            if let Some(wanted) = wanted
                && actual != Some(wanted.as_str())
            {
                return false;
            }
        }

        if let Some(outcome) = &self.outcome {
            let actual = match event {
                Event::Execution(execution) => Some(execution.outcome.as_str()),
                Event::ExecutionStarted(_) if unfinished => Some(UNFINISHED),
                _ => None,
            };
            if actual != Some(outcome.as_str()) {
                return false;
            }
        }
        if let Some(host) = &self.egress_host {
            let reached = match event {
                Event::Execution(execution) => execution.egress.iter().any(|a| &a.host == host),
                _ => false,
            };
            if !reached {
                return false;
            }
        }
        true
    }
}

/// Returns the language an event names.
pub(crate) fn event_language(event: &Event) -> &str {
    match event {
        Event::ExecutionStarted(start) => &start.language,
        Event::Execution(execution) => &execution.language,
        Event::SessionCreated(session)
        | Event::SessionClosed(session)
        | Event::SessionExpired(session) => &session.language,
    }
}

/// Parses a time-range bound. A date is the start of that UTC day, or for
/// an end bound the start of the next day. An RFC 3339 end bound is moved
/// one microsecond later, so that a record stamped at exactly that time is
/// included.
fn parse_bound(text: &str, flag: &str, end: bool) -> Result<DateTime<Utc>, AuditError> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = date.and_time(NaiveTime::MIN).and_utc();
        return Ok(match end {
            true => day + TimeDelta::days(1),
            false => day,
        });
    }
    match DateTime::parse_from_rfc3339(text) {
        Ok(time) => {
            let time = time.with_timezone(&Utc).trunc_subsecs(6);
            Ok(match end {
                true => time + TimeDelta::microseconds(1),
                false => time,
            })
        }
        Err(error) => Err(AuditError::Invalid(format!(
            "invalid time {text:?} for {flag}: {error}; expected a date such as 2026-03-01 or an RFC 3339 time such as 2026-03-01T09:30:00Z"
        ))),
    }
}

fn format_time(time: DateTime<Utc>) -> String {
    time.format(TIME_FORMAT).to_string()
}

/// Order of a listing, by position in the chain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// The most recent record first.
    #[default]
    NewestFirst,
    /// The first record first.
    OldestFirst,
}

/// A record as stored: its position, its hash, the exact body JSON that
/// the hash covers, and that body parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// Position in the chain.
    pub seq: u64,
    /// The stored hash.
    pub hash: String,
    /// The body exactly as stored and hashed.
    pub body_json: String,
    /// The body, parsed.
    pub body: EntryBody,
}

impl StoredEntry {
    /// Checks whether the SHA-256 of the stored body equals the stored hash.
    /// This covers one record alone, and `verify` checks the links between
    /// records.
    pub fn hash_matches(&self) -> bool {
        sha256_hex(self.body_json.as_bytes()) == self.hash
    }

    /// Returns the execution record of an `execution` entry.
    pub fn execution(&self) -> Option<&Execution> {
        match &self.body.event {
            Event::Execution(execution) => Some(execution),
            _ => None,
        }
    }
}

/// One record of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// The record.
    pub entry: StoredEntry,
    /// For an `execution_started` record: no `execution` record with the
    /// same execution id exists.
    pub unfinished: bool,
}

impl Listed {
    /// Returns the execution's outcome, [`UNFINISHED`], or for other
    /// records the record's kind.
    pub fn status(&self) -> &str {
        match &self.entry.body.event {
            Event::Execution(execution) => &execution.outcome,
            Event::ExecutionStarted(_) if self.unfinished => UNFINISHED,
            event => event.kind(),
        }
    }
}

/// The records a search found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// The records, in the order asked for.
    pub entries: Vec<Listed>,
    /// Records that the indexed columns selected but whose body does not
    /// match the filter: the columns were edited after the record was
    /// written, which `verify` reports.
    pub index_mismatches: Vec<u64>,
}

/// Records that [`AuditStore::find`] returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The records, oldest first: one for a record number, the
    /// `execution_started` and `execution` records for an execution id.
    pub entries: Vec<StoredEntry>,
    /// The execution id, when the lookup was by execution.
    pub execution_id: Option<String>,
}

/// SQL that is true for an `execution_started` row without an `execution`
/// row of the same execution id.
const UNFINISHED_SQL: &str = "(e.kind = 'execution_started' AND NOT EXISTS (
    SELECT 1 FROM entries f WHERE f.kind = 'execution' AND f.execution_id = e.execution_id))";

/// Narrowest prefix of an execution id that `find` looks up, so that a
/// short number is not taken for a prefix by accident.
const MIN_PREFIX_LEN: usize = 4;

/// Most candidates listed when a prefix is ambiguous.
const MAX_CANDIDATES_SHOWN: usize = 5;

impl AuditStore {
    /// Lists the records that `filter` selects, in `order`, at most `limit`
    /// of them. Filter values go to SQLite as bound parameters only.
    pub fn list(
        &self,
        filter: &Filter,
        order: Order,
        limit: Option<usize>,
    ) -> Result<Listing, AuditError> {
        self.with_connection(|connection| list_in(connection, self, filter, order, limit))
    }

    /// Finds records by `id`: a record number (`17` or `seq:17`), an
    /// execution id, or a unique prefix of one of at least four characters.
    /// Plain digits that are both a record number and the prefix of an
    /// execution id are ambiguous.
    pub fn find(&self, id: &str) -> Result<Found, AuditError> {
        self.with_connection(|connection| find_in(connection, self, id.trim()))
    }

    /// Returns the record at position `seq`, if there is one.
    pub fn get_seq(&self, seq: u64) -> Result<Option<StoredEntry>, AuditError> {
        self.with_connection(|connection| entry_at(connection, self, seq))
    }

    /// Returns the records of one execution, oldest first, or an empty list.
    pub fn get_execution(&self, execution_id: &str) -> Result<Vec<StoredEntry>, AuditError> {
        self.with_connection(|connection| execution_entries(connection, self, execution_id))
    }

    pub(crate) fn read_error(&self, source: rusqlite::Error) -> AuditError {
        AuditError::Read {
            path: self.path().to_path_buf(),
            source,
        }
    }

    /// Parses one stored body.
    pub(crate) fn parse_entry(
        &self,
        seq: i64,
        hash: String,
        body_json: String,
    ) -> Result<StoredEntry, AuditError> {
        let seq = u64::try_from(seq).map_err(|_| AuditError::Corrupt {
            path: self.path().to_path_buf(),
            seq: 0,
            reason: format!("invalid record number {seq}; run moat audit verify"),
        })?;
        let body: EntryBody =
            serde_json::from_str(&body_json).map_err(|error| AuditError::Corrupt {
                path: self.path().to_path_buf(),
                seq,
                reason: format!("{error}; run moat audit verify"),
            })?;
        Ok(StoredEntry {
            seq,
            hash,
            body_json,
            body,
        })
    }
}

/// Runs a listing on `connection`, which may be inside a transaction.
pub(crate) fn list_in(
    connection: &Connection,
    store: &AuditStore,
    filter: &Filter,
    order: Order,
    limit: Option<usize>,
) -> Result<Listing, AuditError> {
    let mut conditions = Conditions::default();
    match filter.kind {
        Kind::Execution => {
            conditions.add(&format!("(e.kind = 'execution' OR {UNFINISHED_SQL})"));
        }
        Kind::Session => conditions.add("e.execution_id IS NULL"),
        Kind::All => {}
    }
    if let Some(from) = &filter.from {
        conditions.bind("e.time >= ?", from);
    }
    if let Some(to) = &filter.to {
        conditions.bind("e.time < ?", to);
    }
    let columns = [
        ("e.principal = ?", &filter.principal),
        ("e.tenant = ?", &filter.tenant),
        ("e.client = ?", &filter.client),
        ("e.model = ?", &filter.model),
        ("e.language = ?", &filter.language),
        ("e.session_id = ?", &filter.session_id),
    ];
    for (clause, value) in columns {
        if let Some(value) = value {
            conditions.bind(clause, value);
        }
    }
    match filter.outcome.as_deref() {
        Some(UNFINISHED) => conditions.add(UNFINISHED_SQL),
        Some(outcome) => conditions.bind("e.outcome = ?", outcome),
        None => {}
    }
    if let Some(host) = &filter.egress_host {
        conditions.bind(
            "e.seq IN (SELECT seq FROM egress_hosts WHERE host = ?)",
            host,
        );
    }

    let Conditions {
        clauses,
        mut values,
    } = conditions;
    let mut sql = format!(
        "SELECT e.seq, e.hash, e.body, {UNFINISHED_SQL} FROM entries e WHERE {}",
        match clauses.is_empty() {
            true => "1".to_owned(),
            false => clauses.join(" AND "),
        }
    );
    sql.push_str(match order {
        Order::NewestFirst => " ORDER BY e.seq DESC",
        Order::OldestFirst => " ORDER BY e.seq ASC",
    });
    if let Some(limit) = limit {
        sql.push_str(" LIMIT ?");
        values.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    }

    let mut statement = connection.prepare(&sql).map_err(|e| store.read_error(e))?;
    let mut rows = statement
        .query(params_from_iter(values))
        .map_err(|e| store.read_error(e))?;
    let mut listing = Listing::default();
    while let Some(row) = rows.next().map_err(|e| store.read_error(e))? {
        let (seq, hash, body, unfinished) = read_row(row).map_err(|e| store.read_error(e))?;
        let entry = store.parse_entry(seq, hash, body)?;
        if filter.matches(&entry.body, unfinished) {
            listing.entries.push(Listed { entry, unfinished });
        } else {
            listing.index_mismatches.push(entry.seq);
        }
    }
    Ok(listing)
}

/// SQL conditions joined by AND, and the values bound to their `?`s.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    values: Vec<Value>,
}

impl Conditions {
    fn add(&mut self, clause: &str) {
        self.clauses.push(clause.to_owned());
    }

    fn bind(&mut self, clause: &str, value: &str) {
        self.clauses.push(clause.to_owned());
        self.values.push(Value::Text(value.to_owned()));
    }
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String, bool)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn find_in(connection: &Connection, store: &AuditStore, id: &str) -> Result<Found, AuditError> {
    if id.is_empty() {
        return Err(AuditError::Invalid(
            "empty record id: give a record number, an execution id or a prefix of one".into(),
        ));
    }
    if let Some(number) = id.strip_prefix("seq:") {
        let seq = parse_seq(number)?;
        return match entry_at(connection, store, seq)? {
            Some(entry) => Ok(Found {
                entries: vec![entry],
                execution_id: None,
            }),
            None => Err(not_found(store, id)),
        };
    }

    let by_seq = match id.bytes().all(|b| b.is_ascii_digit()) {
        true => entry_at(connection, store, parse_seq(id)?)?,
        false => None,
    };
    let executions = match id.len() >= MIN_PREFIX_LEN || by_seq.is_none() {
        true => executions_with_prefix(connection, store, id)?,
        false => Vec::new(),
    };

    match (by_seq, executions.as_slice()) {
        (Some(entry), []) => Ok(Found {
            entries: vec![entry],
            execution_id: None,
        }),
        (Some(_), [execution_id, ..]) => Err(AuditError::Invalid(format!(
            "{id:?} is both a record number and the start of execution id {execution_id}: write seq:{id} for the record, or more of the execution id"
        ))),
        (None, []) => Err(not_found(store, id)),
        (None, [execution_id]) => {
            if id.len() < MIN_PREFIX_LEN && id != execution_id {
                return Err(AuditError::Invalid(format!(
                    "{id:?} is too short to look up an execution by prefix: give at least {MIN_PREFIX_LEN} characters"
                )));
            }
            Ok(Found {
                entries: execution_entries(connection, store, execution_id)?,
                execution_id: Some(execution_id.clone()),
            })
        }
        (None, candidates) => {
            let count = count_executions_with_prefix(connection, store, id)?;
            let shown: Vec<&str> = candidates
                .iter()
                .take(MAX_CANDIDATES_SHOWN)
                .map(String::as_str)
                .collect();
            let more = match count > shown.len() {
                true => ", ...",
                false => "",
            };
            Err(AuditError::Invalid(format!(
                "{id:?} matches {count} executions ({}{more}): give more of the execution id",
                shown.join(", ")
            )))
        }
    }
}

fn parse_seq(text: &str) -> Result<u64, AuditError> {
    text.parse::<u64>()
        .ok()
        .filter(|&seq| seq >= 1 && i64::try_from(seq).is_ok())
        .ok_or_else(|| {
            AuditError::Invalid(format!(
                "invalid record number {text:?}: expected a whole number from 1"
            ))
        })
}

fn not_found(store: &AuditStore, id: &str) -> AuditError {
    AuditError::Invalid(format!(
        "no record or execution {id:?} in the audit store {}; run moat audit list to see the ids",
        store.path().display()
    ))
}

/// Distinct execution ids that start with `prefix`, at most one more than
/// an ambiguity error shows.
fn executions_with_prefix(
    connection: &Connection,
    store: &AuditStore,
    prefix: &str,
) -> Result<Vec<String>, AuditError> {
    let mut statement = connection
        .prepare(
            "SELECT DISTINCT execution_id FROM entries
             WHERE execution_id IS NOT NULL AND substr(execution_id, 1, length(?1)) = ?1
             ORDER BY execution_id LIMIT ?2",
        )
        .map_err(|e| store.read_error(e))?;
    let limit = i64::try_from(MAX_CANDIDATES_SHOWN + 1).unwrap_or(i64::MAX);
    let rows = statement
        .query_map(params![prefix, limit], |row| row.get::<_, String>(0))
        .map_err(|e| store.read_error(e))?;
    let ids: BTreeSet<String> = rows
        .collect::<Result<_, _>>()
        .map_err(|e| store.read_error(e))?;
    Ok(ids.into_iter().collect())
}

fn count_executions_with_prefix(
    connection: &Connection,
    store: &AuditStore,
    prefix: &str,
) -> Result<usize, AuditError> {
    let count: i64 = connection
        .query_row(
            "SELECT count(DISTINCT execution_id) FROM entries
             WHERE execution_id IS NOT NULL AND substr(execution_id, 1, length(?1)) = ?1",
            params![prefix],
            |row| row.get(0),
        )
        .map_err(|e| store.read_error(e))?;
    Ok(usize::try_from(count).unwrap_or(0))
}

pub(crate) fn entry_at(
    connection: &Connection,
    store: &AuditStore,
    seq: u64,
) -> Result<Option<StoredEntry>, AuditError> {
    let Ok(sql_seq) = i64::try_from(seq) else {
        return Ok(None);
    };
    let row: Option<(i64, String, String)> = connection
        .query_row(
            "SELECT seq, hash, body FROM entries WHERE seq = ?1",
            params![sql_seq],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()
        .map_err(|e| store.read_error(e))?;
    row.map(|(seq, hash, body)| store.parse_entry(seq, hash, body))
        .transpose()
}

pub(crate) fn execution_entries(
    connection: &Connection,
    store: &AuditStore,
    execution_id: &str,
) -> Result<Vec<StoredEntry>, AuditError> {
    let mut statement = connection
        .prepare("SELECT seq, hash, body FROM entries WHERE execution_id = ?1 ORDER BY seq")
        .map_err(|e| store.read_error(e))?;
    let rows = statement
        .query_map(params![execution_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .map_err(|e| store.read_error(e))?;
    let mut entries = Vec::new();
    for row in rows {
        let (seq, hash, body) = row.map_err(|e| store.read_error(e))?;
        let entry = store.parse_entry(seq, hash, body)?;
        // The column is only an index: keep the records whose body agrees.
        if entry.body.event.execution_id() == Some(execution_id) {
            entries.push(entry);
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_bounds_cover_whole_day() {
        let mut filter = Filter::default();
        filter.set_from("2026-03-01").expect("from");
        filter.set_to("2026-03-01").expect("to");
        assert_eq!(filter.from.as_deref(), Some("2026-03-01T00:00:00.000000Z"));
        assert_eq!(filter.to.as_deref(), Some("2026-03-02T00:00:00.000000Z"));
    }

    #[test]
    fn rfc3339_bounds_convert_to_utc() {
        let mut filter = Filter::default();
        filter.set_from("2026-03-01T10:00:00+02:00").expect("from");
        filter.set_to("2026-03-01T09:00:00.5Z").expect("to");
        assert_eq!(filter.from.as_deref(), Some("2026-03-01T08:00:00.000000Z"));
        assert_eq!(filter.to.as_deref(), Some("2026-03-01T09:00:00.500001Z"));
    }

    #[test]
    fn empty_range_rejected() {
        let mut filter = Filter::default();
        filter.set_from("2026-03-02").expect("from");
        let error = filter.set_to("2026-03-01").expect_err("empty range");
        assert!(
            error.to_string().contains("the time range is empty"),
            "{error}"
        );
    }

    #[test]
    fn invalid_time_names_flag() {
        let mut filter = Filter::default();
        let error = filter.set_from("yesterday").expect_err("invalid");
        let message = error.to_string();
        assert!(message.contains("\"yesterday\""), "{message}");
        assert!(message.contains("--from"), "{message}");
    }

    #[test]
    fn egress_host_normalized() {
        let mut filter = Filter::default();
        filter.set_egress_host("API.Example.COM.");
        assert_eq!(filter.egress_host.as_deref(), Some("api.example.com"));
    }
}
