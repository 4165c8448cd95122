//! The walk over the chain that [`AuditStore::verify`] runs: each record
//! checked against the one before it, merged with `egress_hosts`, and the
//! store's schema and policy texts checked after it.
//!
//! The walk reads records through [`scan`], so an export can select
//! records in the same pass and parse each body once.

use std::ops::ControlFlow;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Rows};

use super::{ExpectedHead, Failure, Head, Problem, StoreFailure, StoreProblem, Verification};
use crate::capture::sha256_hex;
use crate::error::AuditError;
use crate::filter::event_language;
use crate::query::{Order, Scanned, scan};
use crate::record::{EntryBody, Event, GENESIS_HASH};
use crate::schema;
use crate::store::AuditStore;

impl AuditStore {
    /// Checks the whole chain in one read transaction, and that it still
    /// contains `expected`, a head recorded earlier.
    pub fn verify(&self, expected: Option<&ExpectedHead>) -> Result<Verification, AuditError> {
        self.with_connection(|connection| {
            let transaction = connection.transaction().map_err(|e| self.read_error(e))?;
            let verification = verify_in(&transaction, self, expected)?;
            transaction.commit().map_err(|e| self.read_error(e))?;
            Ok(verification)
        })
    }
}

/// Derives the indexed columns from a body, as `AuditStore::append` does.
/// Both must derive them the same way, or every record would fail.
fn expected_columns(body: &EntryBody) -> [(&'static str, Option<&str>); 11] {
    let event = &body.event;
    let actor = event.actor();
    let outcome = match event {
        Event::Execution(execution) => Some(execution.outcome.as_str()),
        _ => None,
    };
    [
        ("time", Some(&body.time)),
        ("kind", Some(event.kind())),
        ("execution_id", event.execution_id()),
        ("session_id", event.session_id()),
        ("principal", actor.principal.as_deref()),
        ("tenant", actor.tenant.as_deref()),
        ("client", actor.client.as_ref().map(|c| c.name.as_str())),
        ("model", actor.model.as_deref()),
        ("language", Some(event_language(event))),
        ("outcome", outcome),
        ("prev_hash", Some(&body.prev_hash)),
    ]
}

/// Columns that [`scan`] selects after `seq, hash, body`, in the order of
/// [`expected_columns`].
pub(crate) const COLUMNS_SQL: &str = "time, kind, execution_id, session_id, principal, tenant, client, model, language, outcome, prev_hash";

fn body_hosts(body: &EntryBody) -> Vec<String> {
    let mut hosts: Vec<String> = match &body.event {
        Event::Execution(execution) => execution.egress.iter().map(|a| a.host.clone()).collect(),
        _ => Vec::new(),
    };
    hosts.sort_unstable();
    hosts.dedup();
    hosts
}

/// Reads a text column; another type is returned as `Err` with its name.
fn text_value(value: ValueRef<'_>) -> Result<Option<String>, String> {
    match value {
        ValueRef::Null => Ok(None),
        ValueRef::Text(bytes) => String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| "text that is not UTF-8".to_owned()),
        ValueRef::Integer(number) => Err(format!("the integer {number}")),
        ValueRef::Real(number) => Err(format!("the number {number}")),
        ValueRef::Blob(_) => Err("a blob".to_owned()),
    }
}

/// Checks the chain on `connection`, which should be inside a transaction
/// so that the entries and egress hosts read belong to one state.
fn verify_in(
    connection: &Connection,
    store: &AuditStore,
    expected: Option<&ExpectedHead>,
) -> Result<Verification, AuditError> {
    walk(connection, store, expected, None)
}

/// Checks the chain like [`verify_in`] and passes every record to `visit`,
/// those after the first failure included, parsing each body once.
pub(crate) fn verify_visiting(
    connection: &Connection,
    store: &AuditStore,
    visit: &mut dyn FnMut(Scanned),
) -> Result<Verification, AuditError> {
    walk(connection, store, None, Some(visit))
}

fn walk(
    connection: &Connection,
    store: &AuditStore,
    expected: Option<&ExpectedHead>,
    mut visit: Option<&mut dyn FnMut(Scanned)>,
) -> Result<Verification, AuditError> {
    let read = |e| store.read_error(e);

    let (records, head) = connection
        .query_row(
            "SELECT count(*), (SELECT seq FROM entries ORDER BY seq DESC LIMIT 1),
                    (SELECT hash FROM entries ORDER BY seq DESC LIMIT 1) FROM entries",
            [],
            |row| {
                let count: i64 = row.get(0)?;
                let seq: Option<i64> = row.get(1)?;
                let hash = text_value(row.get_ref(2)?).unwrap_or_else(Some);
                Ok((count, seq.zip(hash)))
            },
        )
        .map_err(read)?;
    let head = head.map(|(seq, hash)| Head {
        seq: u64::try_from(seq).unwrap_or(0),
        hash,
    });

    let mut hosts_statement = connection
        .prepare("SELECT seq, host FROM egress_hosts ORDER BY seq, host")
        .map_err(read)?;
    let mut hosts = HostCursor {
        rows: hosts_statement.query([]).map_err(read)?,
        pending: None,
    };
    hosts.advance().map_err(read)?;

    let mut chain = ChainCheck {
        expected,
        verified: 0,
        previous_hash: GENESIS_HASH.to_owned(),
        head_found: false,
        hash_at_expected_seq: None,
        failure: None,
    };
    scan(connection, store, Order::OldestFirst, |scanned| {
        if chain.failure.is_none() {
            chain.check(&scanned, &mut hosts).map_err(read)?;
        }
        match &mut visit {
            Some(visit) => {
                visit(scanned);
                Ok(ControlFlow::Continue(()))
            }
            None if chain.failure.is_some() => Ok(ControlFlow::Break(())),
            None => Ok(ControlFlow::Continue(())),
        }
    })?;
    let ChainCheck {
        verified,
        head_found,
        hash_at_expected_seq,
        mut failure,
        ..
    } = chain;

    // Egress host rows past the last record.
    if failure.is_none()
        && let Some((host_seq, host)) = hosts.pending.take()
    {
        failure = Some(Failure::new(
            u64::try_from(host_seq).unwrap_or(0),
            Problem::OrphanEgressHosts {
                stored: host.into_iter().collect(),
            },
        ));
    }

    if failure.is_none()
        && let Some(expected) = expected
        && !head_found
    {
        failure = Some(head_failure(expected, head.as_ref(), hash_at_expected_seq));
    }

    let mut store_failures = Vec::new();
    for problem in schema::inspect(connection).map_err(read)? {
        store_failures.push(StoreFailure {
            message: problem.message,
            problem: StoreProblem::Schema {
                object_type: problem.object_type,
                name: problem.name,
            },
        });
    }
    store_failures.extend(check_policies(connection).map_err(read)?);

    Ok(Verification {
        valid: failure.is_none() && store_failures.is_empty(),
        records: u64::try_from(records).unwrap_or(0),
        verified,
        head,
        expected_head: expected.cloned(),
        first_failure: failure,
        store_failures,
    })
}

/// The rows of `egress_hosts` in order, merged with the records as the
/// walk reaches them.
struct HostCursor<'statement> {
    rows: Rows<'statement>,
    /// The next row not yet matched to a record: its seq and host.
    pending: Option<(i64, Option<String>)>,
}

impl HostCursor<'_> {
    fn advance(&mut self) -> rusqlite::Result<()> {
        self.pending = match self.rows.next()? {
            Some(row) => {
                // A seq that is not an integer sorts after every integer:
                // its hosts belong to no record.
                let seq = match row.get_ref(0)? {
                    ValueRef::Integer(seq) => seq,
                    _ => i64::MAX,
                };
                let host = text_value(row.get_ref(1)?).ok().flatten();
                Some((seq, host))
            }
            None => None,
        };
        Ok(())
    }
}

/// The state of the walk: the records that passed so far, and the first
/// failure.
struct ChainCheck<'a> {
    expected: Option<&'a ExpectedHead>,
    /// Number of the last record that passed, or 0.
    verified: u64,
    /// Hash of that record, or the genesis hash.
    previous_hash: String,
    head_found: bool,
    hash_at_expected_seq: Option<String>,
    failure: Option<Failure>,
}

impl ChainCheck<'_> {
    /// Checks the next record, and records the first failure.
    fn check(&mut self, scanned: &Scanned, hosts: &mut HostCursor<'_>) -> rusqlite::Result<()> {
        let stored_seq = scanned.seq;
        let expected_seq = self.verified + 1;

        // Egress host rows of records that do not exist come before this
        // record in the merge.
        if let Some((host_seq, host)) = &hosts.pending
            && *host_seq < stored_seq
        {
            let seq = u64::try_from(*host_seq).unwrap_or(0);
            if seq < expected_seq {
                let stored = host.iter().cloned().collect();
                self.fail(seq, Problem::OrphanEgressHosts { stored });
                return Ok(());
            }
        }

        let Some(entry) = &scanned.entry else {
            self.fail(0, Problem::InvalidSeq { stored: stored_seq });
            return Ok(());
        };
        let seq = entry.seq;
        if seq != expected_seq {
            let problem = Problem::Missing {
                missing_from: expected_seq,
                found: seq,
            };
            self.fail(expected_seq, problem);
            return Ok(());
        }
        let body = match &entry.body {
            Ok(body) => body,
            Err(reason) => {
                let reason = reason.clone();
                self.fail(seq, Problem::Unparseable { reason });
                return Ok(());
            }
        };
        if body.seq != seq {
            self.fail(seq, Problem::SeqMismatch { body_seq: body.seq });
            return Ok(());
        }
        if body.prev_hash != self.previous_hash {
            let problem = Problem::PrevHashMismatch {
                expected: self.previous_hash.clone(),
                found: body.prev_hash.clone(),
            };
            self.fail(seq, problem);
            return Ok(());
        }
        let computed = sha256_hex(&entry.body_bytes);
        if entry.hash != computed {
            let problem = Problem::HashMismatch {
                stored: entry.hash.clone(),
                computed,
            };
            self.fail(seq, problem);
            return Ok(());
        }
        if let Some(problem) = &scanned.column_problem {
            self.fail(seq, problem.clone());
            return Ok(());
        }

        let mut stored_hosts = Vec::new();
        while let Some((host_seq, host)) = &hosts.pending {
            if *host_seq != stored_seq {
                break;
            }
            stored_hosts.push(host.clone().unwrap_or_default());
            hosts.advance()?;
        }
        let body_hosts = body_hosts(body);
        if stored_hosts != body_hosts {
            let problem = Problem::EgressHostsMismatch {
                stored: stored_hosts,
                body: body_hosts,
            };
            self.fail(seq, problem);
            return Ok(());
        }

        if let Some(expected) = self.expected {
            if expected.seq == Some(seq) {
                self.hash_at_expected_seq = Some(computed.clone());
            }
            if computed == expected.hash && expected.seq.is_none_or(|at| at == seq) {
                self.head_found = true;
            }
        }
        self.previous_hash = computed;
        self.verified = seq;
        Ok(())
    }

    fn fail(&mut self, seq: u64, problem: Problem) {
        self.failure = Some(Failure::new(seq, problem));
    }
}

/// Checks that every kept policy text hashes to the SHA-256 it is kept
/// under.
fn check_policies(connection: &Connection) -> rusqlite::Result<Vec<StoreFailure>> {
    let mut statement = connection.prepare("SELECT sha256, text FROM policies ORDER BY sha256")?;
    let mut rows = statement.query([])?;
    let mut failures = Vec::new();
    while let Some(row) = rows.next()? {
        let sha256 = match row.get_ref(0)? {
            ValueRef::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            other => format!("({:?})", other.data_type()),
        };
        let computed = match row.get_ref(1)? {
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Some(sha256_hex(bytes)),
            ValueRef::Integer(number) => Some(sha256_hex(number.to_string().as_bytes())),
            ValueRef::Real(number) => Some(sha256_hex(number.to_string().as_bytes())),
            ValueRef::Null => None,
        };
        if computed.as_deref() == Some(sha256.as_str()) {
            continue;
        }
        let message = match &computed {
            Some(computed) => format!(
                "policy {sha256}: the kept text has SHA-256 {computed} (the policies table was edited)"
            ),
            None => {
                format!("policy {sha256}: the kept text is NULL (the policies table was edited)")
            }
        };
        failures.push(StoreFailure {
            problem: StoreProblem::PolicyText { sha256, computed },
            message,
        });
    }
    Ok(failures)
}

/// Explains why a chain that verified does not contain `expected`.
/// `found` is the hash of the record at the expected head's number.
fn head_failure(expected: &ExpectedHead, head: Option<&Head>, found: Option<String>) -> Failure {
    let last_seq = head.map(|head| head.seq);
    match (expected.seq, found) {
        (Some(seq), Some(found)) => Failure::new(
            seq,
            Problem::HeadMismatch {
                expected: expected.hash.clone(),
                found,
            },
        ),
        (Some(seq), None) => Failure::new(seq, Problem::Truncated { last_seq }),
        (None, _) => Failure::new(
            0,
            Problem::HeadNotFound {
                expected: expected.hash.clone(),
            },
        ),
    }
}

/// Compares the indexed columns of `row`, selected after `seq, hash, body`
/// in the order of [`COLUMNS_SQL`], with what `body` implies.
pub(crate) fn check_columns(
    row: &rusqlite::Row<'_>,
    body: &EntryBody,
) -> rusqlite::Result<Option<Problem>> {
    for (index, (column, wanted)) in expected_columns(body).into_iter().enumerate() {
        let stored = text_value(row.get_ref(3 + index)?);
        let agrees = matches!(&stored, Ok(value) if value.as_deref() == wanted);
        if !agrees {
            let stored = match stored {
                Ok(value) => value,
                Err(kind) => Some(kind),
            };
            return Ok(Some(Problem::ColumnMismatch {
                column: column.to_owned(),
                stored,
                body: wanted.map(str::to_owned),
            }));
        }
    }
    Ok(None)
}
