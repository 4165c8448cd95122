//! Reading the trail: listing the records a filter selects, and finding
//! one execution or record.
//!
//! Every search reads every record's body and judges it alone. The indexed
//! columns (`principal`, `outcome`, ...) and `egress_hosts` are not used to
//! narrow a search, because an edited column would then hide a record.
//! Records whose columns disagree with their bodies are reported in
//! [`Listing::index_mismatches`], and `verify` fails on them.
//!
//! A body that is not a valid record (not JSON, or JSON without a record's
//! fields) does not stop a search: the record is kept as damaged, with its
//! stored bytes, so that it can be shown and exported.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};

use crate::capture::sha256_hex;
use crate::error::AuditError;
use crate::filter::{DAMAGED, Filter, UNFINISHED};
use crate::record::{EntryBody, Event, Execution};
use crate::store::AuditStore;
use crate::verify::{COLUMNS_SQL, Problem, check_columns};

/// Order of a listing, by position in the chain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// The most recent record first.
    #[default]
    NewestFirst,
    /// The first record first.
    OldestFirst,
}

/// A record as stored: its position, its hash, the exact bytes of the body
/// that the hash covers, and that body parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// Position in the chain.
    pub seq: u64,
    /// The stored hash.
    pub hash: String,
    /// The body exactly as stored and hashed.
    pub body_bytes: Vec<u8>,
    /// The body parsed, or why it is not a valid record.
    pub body: Result<EntryBody, String>,
}

impl StoredEntry {
    /// Checks whether the SHA-256 of the stored body equals the stored hash.
    /// This covers one record alone, and `verify` checks the links between
    /// records.
    pub fn hash_matches(&self) -> bool {
        sha256_hex(&self.body_bytes) == self.hash
    }

    /// Returns the parsed body, or `None` for a damaged record.
    pub fn record(&self) -> Option<&EntryBody> {
        self.body.as_ref().ok()
    }

    /// Returns why the body is not a valid record, or `None` when it is.
    pub fn damage(&self) -> Option<&str> {
        self.body.as_ref().err().map(String::as_str)
    }

    /// Returns the stored body as text, or `None` when it is not UTF-8.
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body_bytes).ok()
    }

    /// Returns the event of a valid record.
    pub fn event(&self) -> Option<&Event> {
        self.record().map(|body| &body.event)
    }

    /// Returns the execution record of an `execution` entry.
    pub fn execution(&self) -> Option<&Execution> {
        match self.event() {
            Some(Event::Execution(execution)) => Some(execution),
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
    /// Returns the execution's outcome, [`UNFINISHED`], [`DAMAGED`], or for
    /// other records the record's kind.
    pub fn status(&self) -> &str {
        match self.entry.event() {
            None => DAMAGED,
            Some(Event::Execution(execution)) => &execution.outcome,
            Some(Event::ExecutionStarted(_)) if self.unfinished => UNFINISHED,
            Some(event) => event.kind(),
        }
    }
}

/// The records a search found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// The records, in the order asked for.
    pub entries: Vec<Listed>,
    /// Records in the store, selected or not, whose indexed columns
    /// disagree with their bodies: the columns were edited after the record
    /// was written, which `verify` reports. The search used the bodies.
    pub index_mismatches: Vec<u64>,
    /// Damaged records that the filter left out, because it has conditions
    /// on their content, which cannot be read.
    pub damaged_left_out: Vec<u64>,
    /// Stored record numbers below 1, which no search can select.
    pub invalid_seqs: Vec<i64>,
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

/// Narrowest prefix of an execution id that `find` looks up, so that a
/// short number is not taken for a prefix by accident.
const MIN_PREFIX_LEN: usize = 4;

/// Most candidates listed when a prefix is ambiguous.
const MAX_CANDIDATES_SHOWN: usize = 5;

impl AuditStore {
    /// Lists the records that `filter` selects, in `order`, at most `limit`
    /// of them.
    pub fn list(
        &self,
        filter: &Filter,
        order: Order,
        limit: Option<usize>,
    ) -> Result<Listing, AuditError> {
        self.with_connection(|connection| {
            if let (Order::NewestFirst, Some(limit)) = (order, limit) {
                return newest_in(connection, self, filter, limit);
            }
            let selection = select_in(connection, self, filter)?;
            let mut listing = selection.listing;
            if order == Order::NewestFirst {
                listing.entries.reverse();
            }
            if let Some(limit) = limit {
                listing.entries.truncate(limit);
            }
            Ok(listing)
        })
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

    /// Returns the records whose body names `execution_id`, oldest first,
    /// or an empty list.
    pub fn get_execution(&self, execution_id: &str) -> Result<Vec<StoredEntry>, AuditError> {
        self.with_connection(|connection| {
            let mut entries = executions_with_prefix(connection, self, execution_id)?;
            Ok(entries.remove(execution_id).unwrap_or_default())
        })
    }

    pub(crate) fn read_error(&self, cause: rusqlite::Error) -> AuditError {
        AuditError::Read {
            path: self.path().to_path_buf(),
            cause,
        }
    }
}

/// Reads one row of `seq, hash, body`, whatever the types SQLite stores
/// in it. Returns `None` for a record number below 1.
fn read_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<StoredEntry>> {
    let seq: i64 = row.get(0)?;
    let Some(seq) = u64::try_from(seq).ok().filter(|&seq| seq >= 1) else {
        return Ok(None);
    };
    let hash = match row.get_ref(1)? {
        ValueRef::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        ValueRef::Null => "NULL".to_owned(),
        other => format!("({:?})", other.data_type()),
    };
    let (body_bytes, not_text) = match row.get_ref(2)? {
        ValueRef::Text(bytes) => (bytes.to_vec(), None),
        ValueRef::Blob(bytes) => (bytes.to_vec(), Some("the body is a blob, not text")),
        ValueRef::Null => (Vec::new(), Some("the body is NULL")),
        ValueRef::Integer(number) => (
            number.to_string().into_bytes(),
            Some("the body is a number, not text"),
        ),
        ValueRef::Real(number) => (
            number.to_string().into_bytes(),
            Some("the body is a number, not text"),
        ),
    };
    let body = match (not_text, std::str::from_utf8(&body_bytes)) {
        (Some(reason), _) => Err(reason.to_owned()),
        (None, Err(_)) => Err("the body is not UTF-8 text".to_owned()),
        (None, Ok(text)) => serde_json::from_str::<EntryBody>(text).map_err(|e| e.to_string()),
    };
    Ok(Some(StoredEntry {
        seq,
        hash,
        body_bytes,
        body,
    }))
}

/// One row of `entries` read by [`scan`].
pub(crate) struct Scanned {
    /// The stored record number.
    pub seq: i64,
    /// The record, or `None` when its number is below 1.
    pub entry: Option<StoredEntry>,
    /// The first indexed column that disagrees with a valid body.
    pub column_problem: Option<Problem>,
}

/// Reads every record in chain order, or newest first for
/// [`Order::NewestFirst`], and passes each to `visit` until it breaks.
pub(crate) fn scan(
    connection: &Connection,
    store: &AuditStore,
    order: Order,
    mut visit: impl FnMut(Scanned) -> Result<ControlFlow<()>, AuditError>,
) -> Result<(), AuditError> {
    let read = |e| store.read_error(e);
    let direction = match order {
        Order::OldestFirst => "ASC",
        Order::NewestFirst => "DESC",
    };
    let mut statement = connection
        .prepare(&format!(
            "SELECT seq, hash, body, {COLUMNS_SQL} FROM entries ORDER BY seq {direction}"
        ))
        .map_err(read)?;
    let mut rows = statement.query([]).map_err(read)?;
    while let Some(row) = rows.next().map_err(read)? {
        let seq: i64 = row.get(0).map_err(read)?;
        let entry = read_entry(row).map_err(read)?;
        let column_problem = match entry.as_ref().and_then(StoredEntry::record) {
            Some(body) => check_columns(row, body).map_err(read)?,
            None => None,
        };
        let scanned = Scanned {
            seq,
            entry,
            column_problem,
        };
        if visit(scanned)?.is_break() {
            break;
        }
    }
    Ok(())
}

/// Lists the newest `limit` records that `filter` selects, reading from
/// the newest record and stopping when it has them, so that a listing of a
/// large store reads only its end. The warnings cover the records read.
///
/// A start record is unfinished when no newer record ends its execution.
/// moat writes an end after its start, so this is exact unless records
/// were moved, which `verify` reports.
fn newest_in(
    connection: &Connection,
    store: &AuditStore,
    filter: &Filter,
    limit: usize,
) -> Result<Listing, AuditError> {
    let mut listing = Listing::default();
    let mut finished: HashSet<String> = HashSet::new();
    if limit == 0 {
        return Ok(listing);
    }
    scan(connection, store, Order::NewestFirst, |scanned| {
        let Some(entry) = scanned.entry else {
            listing.invalid_seqs.push(scanned.seq);
            return Ok(ControlFlow::Continue(()));
        };
        if scanned.column_problem.is_some() {
            listing.index_mismatches.push(entry.seq);
        }
        let unfinished = match entry.event() {
            Some(Event::Execution(execution)) => {
                finished.insert(execution.execution_id.clone());
                false
            }
            Some(Event::ExecutionStarted(start)) => !finished.contains(&start.execution_id),
            _ => false,
        };
        let selected = match entry.record() {
            None if filter.selects_damaged() => true,
            None => {
                listing.damaged_left_out.push(entry.seq);
                false
            }
            Some(body) => {
                filter.outcome.as_deref() != Some(DAMAGED) && filter.matches(body, unfinished)
            }
        };
        if selected {
            listing.entries.push(Listed { entry, unfinished });
        }
        Ok(match listing.entries.len() >= limit {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        })
    })?;
    Ok(listing)
}

/// The records a filter selects, oldest first, with where the
/// `execution_started` records of every execution are, when that was asked
/// for.
pub(crate) struct Selection {
    /// The selected records, oldest first, and the warnings of the search.
    pub listing: Listing,
    /// The numbers of every `execution_started` record, by execution id,
    /// when the [`Selector`] was asked to keep them.
    pub starts: HashMap<String, Vec<u64>>,
}

/// Selects the records that a filter matches from every record of the
/// chain, passed in order to [`Selector::visit`].
pub(crate) struct Selector<'f> {
    filter: &'f Filter,
    keep_starts: bool,
    listing: Listing,
    selected: Vec<StoredEntry>,
    /// Execution ids with an end record. Whether a start record is
    /// selected depends on them, so it is decided in [`Selector::finish`].
    finished: HashSet<String>,
    starts: HashMap<String, Vec<u64>>,
}

impl<'f> Selector<'f> {
    pub(crate) fn new(filter: &'f Filter, keep_starts: bool) -> Selector<'f> {
        Selector {
            filter,
            keep_starts,
            listing: Listing::default(),
            selected: Vec::new(),
            finished: HashSet::new(),
            starts: HashMap::new(),
        }
    }

    pub(crate) fn visit(&mut self, scanned: Scanned) {
        let filter = self.filter;
        let Some(entry) = scanned.entry else {
            self.listing.invalid_seqs.push(scanned.seq);
            return;
        };
        if scanned.column_problem.is_some() {
            self.listing.index_mismatches.push(entry.seq);
        }
        let Ok(body) = &entry.body else {
            match filter.selects_damaged() {
                true => self.selected.push(entry),
                false => self.listing.damaged_left_out.push(entry.seq),
            }
            return;
        };
        if filter.outcome.as_deref() == Some(DAMAGED) {
            return;
        }
        match &body.event {
            Event::ExecutionStarted(start) => {
                if self.keep_starts {
                    let id = start.execution_id.clone();
                    self.starts.entry(id).or_default().push(entry.seq);
                }
                if filter.matches(body, true) || filter.matches(body, false) {
                    self.selected.push(entry);
                }
            }
            event => {
                if let Event::Execution(execution) = event {
                    self.finished.insert(execution.execution_id.clone());
                }
                if filter.matches(body, false) {
                    self.selected.push(entry);
                }
            }
        }
    }

    pub(crate) fn finish(self) -> Selection {
        let mut listing = self.listing;
        for entry in self.selected {
            let unfinished = match entry.event() {
                Some(Event::ExecutionStarted(start)) => {
                    !self.finished.contains(&start.execution_id)
                }
                _ => false,
            };
            if let Some(body) = entry.record()
                && !self.filter.matches(body, unfinished)
            {
                continue;
            }
            listing.entries.push(Listed { entry, unfinished });
        }
        Selection {
            listing,
            starts: self.starts,
        }
    }
}

/// Selects the records that `filter` matches by reading every body, on
/// `connection`, which may be inside a transaction.
fn select_in(
    connection: &Connection,
    store: &AuditStore,
    filter: &Filter,
) -> Result<Selection, AuditError> {
    let mut selector = Selector::new(filter, false);
    scan(connection, store, Order::OldestFirst, |scanned| {
        selector.visit(scanned);
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(selector.finish())
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
    let mut executions = match id.len() >= MIN_PREFIX_LEN || by_seq.is_none() {
        true => executions_with_prefix(connection, store, id)?,
        false => BTreeMap::new(),
    };

    let first_id = executions.keys().next().cloned();
    match (by_seq, first_id) {
        (Some(entry), None) => Ok(Found {
            entries: vec![entry],
            execution_id: None,
        }),
        (Some(_), Some(execution_id)) => Err(AuditError::Invalid(format!(
            "{id:?} is both a record number and the start of execution id {execution_id}: write seq:{id} for the record, or more of the execution id"
        ))),
        (None, None) => Err(not_found(store, id)),
        (None, Some(execution_id)) if executions.len() == 1 => {
            if id.len() < MIN_PREFIX_LEN && id != execution_id {
                return Err(AuditError::Invalid(format!(
                    "{id:?} is too short to look up an execution by prefix: give at least {MIN_PREFIX_LEN} characters"
                )));
            }
            Ok(Found {
                entries: executions.remove(&execution_id).unwrap_or_default(),
                execution_id: Some(execution_id),
            })
        }
        (None, Some(_)) => {
            let count = executions.len();
            let shown: Vec<&str> = executions
                .keys()
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

/// Returns the records of every execution whose id, as its bodies give
/// it, starts with `prefix`, by execution id, oldest first.
///
/// Each body is first read for its execution id alone, which is several
/// times faster than parsing the whole record. Only bodies whose id
/// matches are parsed in full, and a damaged body never matches.
fn executions_with_prefix(
    connection: &Connection,
    store: &AuditStore,
    prefix: &str,
) -> Result<BTreeMap<String, Vec<StoredEntry>>, AuditError> {
    let read = |e| store.read_error(e);
    let mut statement = connection
        .prepare("SELECT seq, hash, body FROM entries ORDER BY seq")
        .map_err(read)?;
    let mut rows = statement.query([]).map_err(read)?;
    let mut executions: BTreeMap<String, Vec<StoredEntry>> = BTreeMap::new();
    while let Some(row) = rows.next().map_err(read)? {
        let ValueRef::Text(text) = row.get_ref(2).map_err(read)? else {
            continue;
        };
        let Ok(probe) = serde_json::from_slice::<IdProbe<'_>>(text) else {
            continue;
        };
        if !probe
            .event
            .execution_id
            .is_some_and(|id| id.starts_with(prefix))
        {
            continue;
        }
        let Some(entry) = read_entry(row).map_err(read)? else {
            continue;
        };
        if let Some(execution_id) = entry.event().and_then(Event::execution_id)
            && execution_id.starts_with(prefix)
        {
            let execution_id = execution_id.to_owned();
            executions.entry(execution_id).or_default().push(entry);
        }
    }
    Ok(executions)
}

/// The execution id of a body, read without parsing the rest of it.
#[derive(serde::Deserialize)]
struct IdProbe<'a> {
    #[serde(borrow)]
    event: EventIdProbe<'a>,
}

#[derive(serde::Deserialize)]
struct EventIdProbe<'a> {
    #[serde(borrow)]
    execution_id: Option<Cow<'a, str>>,
}

pub(crate) fn entry_at(
    connection: &Connection,
    store: &AuditStore,
    seq: u64,
) -> Result<Option<StoredEntry>, AuditError> {
    let Ok(sql_seq) = i64::try_from(seq) else {
        return Ok(None);
    };
    connection
        .query_row(
            "SELECT seq, hash, body FROM entries WHERE seq = ?1",
            params![sql_seq],
            read_entry,
        )
        .optional()
        .map(Option::flatten)
        .map_err(|e| store.read_error(e))
}
