//! Filters select exactly the expected records, and lookups by number,
//! execution id and prefix find the right ones.

use moat_audit::{AuditStore, Entry, Event, Filter, Kind, Order, UNFINISHED};

use crate::support::{Run, record_run, session, store_path, tempdir};

/// Id of the run whose id starts with digits, for ambiguous lookups.
const DIGIT_RUN: &str = "0019beef";

/// The twenty records of the fixture, with the runs in the order written.
struct Fixture {
    _dir: tempfile::TempDir,
    store: AuditStore,
    entries: Vec<Entry>,
}

/// Id, principal, tenant, client, model, language and outcome of each run.
type RunRow = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
    &'static str,
);

#[rustfmt::skip]
const RUNS: [RunRow; 9] = [
    ("r01", Some("alice"), Some("acme"), Some("claude-desktop"), Some("m1"), "python", "ok"),
    ("r02", Some("bob"), Some("globex"), Some("cursor"), Some("m2"), "javascript", "error"),
    ("r03", Some("alice"), Some("acme"), Some("cursor"), Some("m2"), "python", "timeout"),
    ("r04", Some("carol"), None, None, None, "python", "ok"),
    ("r05", Some("bob"), Some("globex"), Some("claude-desktop"), Some("m1"), "python", "ok"),
    ("r06", Some("alice"), Some("acme"), Some("claude-desktop"), Some("m1"), "javascript", "ok"),
    ("r07", Some("dave"), Some("initech"), Some("cursor"), Some("m3"), "python", "fuel_exhausted"),
    ("r08", Some("alice"), None, None, None, "javascript", "ok"),
    (DIGIT_RUN, Some("erin"), Some("acme"), Some("claude-desktop"), Some("m1"), "python", "ok"),
];

/// Returns the egress attempts (host, decision) of a run in [`RUNS`].
fn egress_of(id: &str) -> &'static [(&'static str, &'static str)] {
    match id {
        "r01" => &[("api.example.com", "allowed")],
        "r02" => &[("evil.example", "denied"), ("api.example.com", "allowed")],
        "r05" => &[("data.example.org", "failed")],
        "r07" => &[("evil.example", "denied")],
        _ => &[],
    }
}

fn build_run(row: &RunRow) -> Run {
    let (id, principal, tenant, client, model, language, outcome) = *row;
    let mut run = Run::new(id);
    run.principal = principal.map(str::to_owned);
    run.tenant = tenant.map(str::to_owned);
    run.client = client.map(str::to_owned);
    run.model = model.map(str::to_owned);
    run.language = language.to_owned();
    run.outcome = outcome.to_owned();
    run.egress = egress_of(id)
        .iter()
        .map(|(host, decision)| {
            let reason = (*decision != "allowed").then(|| format!("{decision} by the test"));
            (host.to_string(), decision.to_string(), reason)
        })
        .collect();
    if id == "r05" {
        run.session_id = Some("s2".into());
    }
    run
}

/// One step of writing the fixture.
enum Step {
    Created(&'static str, &'static str),
    Closed(&'static str, &'static str),
    Expired(&'static str, &'static str),
    /// A run of [`RUNS`] by index, and whether it finishes.
    Run(usize, bool),
}

/// Records, by number:
/// 1 session s1 created (alice); 2-3 r01; 4-5 r02; 6 session s2 created
/// (bob); 7-8 r03; 9 r04 started only; 10-11 r05 in s2; 12 s2 closed;
/// 13-14 r06; 15-16 r07; 17 r08 started only; 18-19 0019beef; 20 s1 expired.
fn fixture() -> Fixture {
    let dir = tempdir();
    let store = AuditStore::open(&store_path(dir.path())).expect("open the store");
    let steps = [
        Step::Created("s1", "alice"),
        Step::Run(0, true),
        Step::Run(1, true),
        Step::Created("s2", "bob"),
        Step::Run(2, true),
        Step::Run(3, false),
        Step::Run(4, true),
        Step::Closed("s2", "bob"),
        Step::Run(5, true),
        Step::Run(6, true),
        Step::Run(7, false),
        Step::Run(8, true),
        Step::Expired("s1", "alice"),
    ];
    let mut entries = Vec::new();
    for step in steps {
        let event = match step {
            Step::Created(id, principal) => Event::SessionCreated(session(id, principal)),
            Step::Closed(id, principal) => Event::SessionClosed(session(id, principal)),
            Step::Expired(id, principal) => Event::SessionExpired(session(id, principal)),
            Step::Run(index, finish) => {
                entries.extend(record_run(&store, &build_run(&RUNS[index]), finish));
                continue;
            }
        };
        entries.push(store.append(event).expect("append"));
    }
    assert_eq!(entries.len(), 20);
    Fixture {
        _dir: dir,
        store,
        entries,
    }
}

/// Lists oldest first and returns each record's execution id, or its
/// session id for session records.
fn ids(fixture: &Fixture, filter: &Filter) -> Vec<String> {
    let listing = fixture
        .store
        .list(filter, Order::OldestFirst, None)
        .expect("list");
    assert!(listing.index_mismatches.is_empty(), "{listing:#?}");
    listing
        .entries
        .iter()
        .map(|listed| {
            let event = listed.entry.event().expect("a valid record");
            event
                .execution_id()
                .or(event.session_id())
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn seqs(fixture: &Fixture, filter: &Filter) -> Vec<u64> {
    fixture
        .store
        .list(filter, Order::OldestFirst, None)
        .expect("list")
        .entries
        .iter()
        .map(|listed| listed.entry.seq)
        .collect()
}

#[test]
fn default_lists_every_execution() {
    let fixture = fixture();
    let listing = fixture
        .store
        .list(&Filter::default(), Order::OldestFirst, None)
        .expect("list");

    let seqs: Vec<u64> = listing.entries.iter().map(|l| l.entry.seq).collect();
    assert_eq!(seqs, [3, 5, 8, 9, 11, 14, 16, 17, 19]);
    let unfinished: Vec<u64> = listing
        .entries
        .iter()
        .filter(|l| l.unfinished)
        .map(|l| l.entry.seq)
        .collect();
    assert_eq!(unfinished, [9, 17]);
    assert_eq!(listing.entries[3].status(), UNFINISHED);
    assert_eq!(listing.entries[1].status(), "error");
}

#[test]
fn actor_filters_match_exactly() {
    let fixture = fixture();
    let cases: [(&str, Filter, &[&str]); 5] = [
        (
            "principal",
            Filter {
                principal: Some("alice".into()),
                ..Filter::default()
            },
            &["r01", "r03", "r06", "r08"],
        ),
        (
            "tenant",
            Filter {
                tenant: Some("globex".into()),
                ..Filter::default()
            },
            &["r02", "r05"],
        ),
        (
            "client",
            Filter {
                client: Some("cursor".into()),
                ..Filter::default()
            },
            &["r02", "r03", "r07"],
        ),
        (
            "model",
            Filter {
                model: Some("m1".into()),
                ..Filter::default()
            },
            &["r01", "r05", "r06", DIGIT_RUN],
        ),
        (
            "principal and language",
            Filter {
                principal: Some("alice".into()),
                language: Some("python".into()),
                ..Filter::default()
            },
            &["r01", "r03"],
        ),
    ];
    for (name, filter, expected) in cases {
        assert_eq!(ids(&fixture, &filter), expected, "filter by {name}");
    }
}

#[test]
fn language_filter() {
    let fixture = fixture();
    let filter = Filter {
        language: Some("javascript".into()),
        ..Filter::default()
    };
    assert_eq!(ids(&fixture, &filter), ["r02", "r06", "r08"]);
}

#[test]
fn outcome_filters() {
    let fixture = fixture();
    let cases: [(&str, &[&str]); 5] = [
        ("ok", &["r01", "r05", "r06", DIGIT_RUN]),
        ("error", &["r02"]),
        ("timeout", &["r03"]),
        (UNFINISHED, &["r04", "r08"]),
        ("cancelled", &[]),
    ];
    for (outcome, expected) in cases {
        let filter = Filter {
            outcome: Some(outcome.into()),
            ..Filter::default()
        };
        assert_eq!(ids(&fixture, &filter), expected, "outcome {outcome}");
    }
}

#[test]
fn egress_host_filter() {
    let fixture = fixture();
    let mut denied = Filter::default();
    denied.set_egress_host("evil.example").expect("host");
    let mut allowed = Filter::default();
    allowed.set_egress_host("API.Example.com.").expect("host");
    let mut failed = Filter::default();
    failed.set_egress_host("data.example.org").expect("host");

    assert_eq!(ids(&fixture, &denied), ["r02", "r07"]);
    assert_eq!(ids(&fixture, &allowed), ["r01", "r02"]);
    assert_eq!(ids(&fixture, &failed), ["r05"]);
}

#[test]
fn egress_host_filter_normalizes_like_records() {
    let dir = tempdir();
    let store = AuditStore::open(&store_path(dir.path())).expect("open the store");
    // Hosts as the recorder stores them: the URL parser's form of the host.
    let mut idn = Run::new("idn");
    idn.egress = vec![("xn--bcher-kva.example".into(), "denied".into(), None)];
    let mut loopback = Run::new("loopback");
    loopback.egress = vec![("[::1]".into(), "denied".into(), None)];
    record_run(&store, &idn, true);
    record_run(&store, &loopback, true);
    let listed = |host: &str| -> Vec<String> {
        let mut filter = Filter::default();
        filter.set_egress_host(host).expect("host");
        store
            .list(&filter, Order::OldestFirst, None)
            .expect("list")
            .entries
            .iter()
            .map(|listed| {
                let event = listed.entry.event().expect("a valid record");
                event.execution_id().unwrap_or_default().to_owned()
            })
            .collect()
    };

    assert_eq!(listed("bücher.example"), ["idn"]);
    assert_eq!(listed("xn--bcher-kva.example"), ["idn"]);
    assert_eq!(listed("::1"), ["loopback"]);
    assert_eq!(listed("[::1]"), ["loopback"]);
}

#[test]
fn session_filter_and_kinds() {
    let fixture = fixture();
    let in_session = Filter {
        session_id: Some("s2".into()),
        ..Filter::default()
    };
    let sessions = Filter {
        kind: Kind::Session,
        ..Filter::default()
    };
    let bob_sessions = Filter {
        kind: Kind::Session,
        principal: Some("bob".into()),
        ..Filter::default()
    };
    let everything = Filter {
        kind: Kind::All,
        ..Filter::default()
    };
    let all_unfinished = Filter {
        kind: Kind::All,
        outcome: Some(UNFINISHED.into()),
        ..Filter::default()
    };

    assert_eq!(ids(&fixture, &in_session), ["r05"]);
    assert_eq!(seqs(&fixture, &sessions), [1, 6, 12, 20]);
    assert_eq!(seqs(&fixture, &bob_sessions), [6, 12]);
    assert_eq!(seqs(&fixture, &everything), (1..=20).collect::<Vec<_>>());
    assert_eq!(seqs(&fixture, &all_unfinished), [9, 17]);
}

#[test]
fn hostile_values_match_nothing() {
    let fixture = fixture();
    for value in ["' OR 1=1 --", "alice' OR '1'='1", "%", "_lice", "\0"] {
        let filter = Filter {
            principal: Some(value.into()),
            ..Filter::default()
        };
        assert_eq!(ids(&fixture, &filter), Vec::<String>::new(), "{value:?}");
    }
}

#[test]
fn time_range_selects_by_record_time() {
    let fixture = fixture();
    let from = fixture.entries[9].time.clone();
    let to = fixture.entries[15].time.clone();
    let mut filter = Filter {
        kind: Kind::All,
        ..Filter::default()
    };
    filter.set_from(&from).expect("from");
    filter.set_to(&to).expect("to");

    let expected: Vec<u64> = fixture
        .entries
        .iter()
        .filter(|entry| entry.time >= from && entry.time <= to)
        .map(|entry| entry.seq)
        .collect();
    assert!(
        expected.contains(&10) && expected.contains(&16),
        "{expected:?}"
    );
    assert_eq!(seqs(&fixture, &filter), expected);
}

#[test]
fn date_selects_whole_utc_day() {
    let fixture = fixture();
    let day = fixture.entries[0].time[..10].to_owned();
    let mut filter = Filter {
        kind: Kind::All,
        ..Filter::default()
    };
    filter.set_from(&day).expect("from");
    filter.set_to(&day).expect("to");
    let mut before = Filter {
        kind: Kind::All,
        ..Filter::default()
    };
    before.set_to("2000-01-01").expect("to");

    let expected: Vec<u64> = fixture
        .entries
        .iter()
        .filter(|entry| entry.time.starts_with(&day))
        .map(|entry| entry.seq)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(seqs(&fixture, &filter), expected);
    assert_eq!(seqs(&fixture, &before), Vec::<u64>::new());
}

#[test]
fn newest_first_with_limit() {
    let fixture = fixture();
    let listing = fixture
        .store
        .list(&Filter::default(), Order::NewestFirst, Some(3))
        .expect("list");

    let seqs: Vec<u64> = listing.entries.iter().map(|l| l.entry.seq).collect();
    assert_eq!(seqs, [19, 17, 16]);
}

#[test]
fn limited_listing_agrees_with_full_scan() {
    let fixture = fixture();
    let filters = [
        Filter::default(),
        Filter {
            principal: Some("alice".into()),
            ..Filter::default()
        },
        Filter {
            outcome: Some(UNFINISHED.into()),
            ..Filter::default()
        },
        Filter {
            kind: Kind::All,
            ..Filter::default()
        },
        Filter {
            kind: Kind::Session,
            ..Filter::default()
        },
    ];
    for filter in filters {
        let mut full: Vec<(u64, bool)> = fixture
            .store
            .list(&filter, Order::OldestFirst, None)
            .expect("list")
            .entries
            .iter()
            .map(|listed| (listed.entry.seq, listed.unfinished))
            .collect();
        full.reverse();
        for limit in [1, 3, 100] {
            let limited: Vec<(u64, bool)> = fixture
                .store
                .list(&filter, Order::NewestFirst, Some(limit))
                .expect("list")
                .entries
                .iter()
                .map(|listed| (listed.entry.seq, listed.unfinished))
                .collect();
            let expected: Vec<(u64, bool)> = full.iter().copied().take(limit).collect();
            assert_eq!(limited, expected, "{filter:?}, limit {limit}");
        }
    }
}

#[test]
fn find_by_number_and_id() {
    let fixture = fixture();

    let by_number = fixture.store.find("12").expect("find 12");
    let by_seq_prefix = fixture.store.find("seq:19").expect("find seq:19");
    let by_id = fixture.store.find("r05").expect("find r05");
    let by_prefix = fixture.store.find("0019b").expect("find 0019b");

    assert_eq!(by_number.entries.len(), 1);
    assert_eq!(by_number.entries[0].seq, 12);
    assert_eq!(by_number.execution_id, None);
    assert_eq!(by_seq_prefix.entries[0].seq, 19);
    let seqs: Vec<u64> = by_id.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [10, 11]);
    assert_eq!(by_id.execution_id.as_deref(), Some("r05"));
    assert_eq!(by_prefix.execution_id.as_deref(), Some(DIGIT_RUN));
    assert!(by_prefix.entries.iter().all(|entry| entry.hash_matches()));
}

#[test]
fn find_rejects_ambiguous_and_unknown() {
    let fixture = fixture();

    let digits = fixture.store.find("0019").expect_err("ambiguous");
    let prefix = fixture.store.find("r0").expect_err("ambiguous");
    let missing = fixture
        .store
        .find("nothing-like-this")
        .expect_err("missing");
    let past_end = fixture.store.find("seq:21").expect_err("missing");

    assert_eq!(
        digits.to_string(),
        "\"0019\" is both a record number and the start of execution id 0019beef: write seq:0019 for the record, or more of the execution id"
    );
    assert_eq!(
        prefix.to_string(),
        "\"r0\" matches 8 executions (r01, r02, r03, r04, r05, ...): give more of the execution id"
    );
    assert!(
        missing
            .to_string()
            .starts_with("no record or execution \"nothing-like-this\" in the audit store "),
        "{missing}"
    );
    assert!(past_end.to_string().contains("\"seq:21\""), "{past_end}");
}

#[test]
fn read_only_open_of_missing_store_fails() {
    let dir = tempdir();
    let path = store_path(dir.path());

    let error = AuditStore::open_read_only(&path).expect_err("missing store");

    assert_eq!(
        error.to_string(),
        format!(
            "the audit store {} does not exist; pass --audit-db with the path of the store that moat run or moat serve wrote",
            path.display()
        )
    );
    assert!(
        !path.exists(),
        "opening for reading must not create the file"
    );
}

#[test]
fn read_only_open_rejects_other_databases() {
    let dir = tempdir();
    let path = dir.path().join("other.db");
    rusqlite::Connection::open(&path)
        .expect("create")
        .execute_batch("CREATE TABLE notes (text TEXT);")
        .expect("create a table");

    let error = AuditStore::open_read_only(&path).expect_err("not a store");

    assert_eq!(
        error.to_string(),
        format!(
            "{} is not a moat audit store this version can use: it is a SQLite database of another program (it has table \"notes\")",
            path.display()
        )
    );
}
