//! A record whose body is not a valid record does not stop listing,
//! showing, exporting or reporting: it is kept as damaged, with its stored
//! bytes, and the filters report when they leave it out.

use std::path::{Path, PathBuf};

use moat_audit::{AuditStore, DAMAGED, Filter, Kind, Order, export, report, sha256_hex};
use rusqlite::params;
use serde_json::Value;

use crate::support::{POLICY_TEXT, Run, raw, record_run, store_path, tempdir};

/// A body that is not JSON, with characters a terminal or page must not
/// show raw.
const NOT_JSON: &str = "not json at all \u{0} <script>";

/// Writes 1-2 r1 by alice, 3-4 r2 by bob (error), 5-6 r3 by alice.
fn three_runs(dir: &Path) -> PathBuf {
    let path = store_path(dir);
    let store = AuditStore::open(&path).expect("open the store");
    store
        .record_policy(
            &sha256_hex(POLICY_TEXT.as_bytes()),
            Some("tests"),
            POLICY_TEXT,
        )
        .expect("record the policy");
    record_run(&store, &Run::new("r1"), true);
    let mut r2 = Run::new("r2");
    r2.principal = Some("bob".into());
    r2.outcome = "error".into();
    record_run(&store, &r2, true);
    record_run(&store, &Run::new("r3"), true);
    path
}

/// Replaces the body of record `seq` with `body` and stores its hash, as
/// someone who damages a record and hides the hash mismatch would.
fn damage(path: &Path, seq: i64, body: &str) {
    raw(path)
        .execute(
            "UPDATE entries SET body = ?1, hash = ?2 WHERE seq = ?3",
            params![body, sha256_hex(body.as_bytes()), seq],
        )
        .expect("damage a record");
}

fn seqs(store: &AuditStore, filter: &Filter) -> Vec<u64> {
    store
        .list(filter, Order::OldestFirst, None)
        .expect("list")
        .entries
        .iter()
        .map(|listed| listed.entry.seq)
        .collect()
}

#[test]
fn damaged_body_listed_with_status() {
    let dir = tempdir();
    let path = three_runs(dir.path());
    damage(&path, 4, NOT_JSON);
    let store = AuditStore::open_read_only(&path).expect("open");

    let listing = store
        .list(&Filter::default(), Order::OldestFirst, None)
        .expect("list");

    let seqs: Vec<u64> = listing.entries.iter().map(|l| l.entry.seq).collect();
    // r2's end record is damaged, so its start looks unfinished.
    assert_eq!(seqs, [2, 3, 4, 6]);
    let damaged = &listing.entries[2];
    assert_eq!(damaged.status(), DAMAGED);
    assert_eq!(damaged.entry.record(), None);
    assert_eq!(damaged.entry.body_text(), Some(NOT_JSON));
    assert!(damaged.entry.hash_matches());
    assert!(
        damaged
            .entry
            .damage()
            .is_some_and(|reason| reason.starts_with("expected ")),
        "{:?}",
        damaged.entry.damage()
    );
    assert_eq!(listing.entries[1].status(), "unfinished");
    assert!(listing.damaged_left_out.is_empty());
}

#[test]
fn filters_leave_damaged_out() {
    let dir = tempdir();
    let path = three_runs(dir.path());
    damage(&path, 4, NOT_JSON);
    let store = AuditStore::open_read_only(&path).expect("open");
    let alice = Filter {
        principal: Some("alice".into()),
        ..Filter::default()
    };
    let mut only_damaged = Filter::default();
    only_damaged.set_outcome(DAMAGED).expect("outcome");
    let sessions = Filter {
        kind: Kind::Session,
        ..Filter::default()
    };

    let alice_listing = store.list(&alice, Order::OldestFirst, None).expect("list");

    let alice_seqs: Vec<u64> = alice_listing.entries.iter().map(|l| l.entry.seq).collect();
    assert_eq!(alice_seqs, [2, 6]);
    assert_eq!(alice_listing.damaged_left_out, [4]);
    assert_eq!(seqs(&store, &only_damaged), [4]);
    // The kind of a damaged record is unknown, so every kind lists it.
    assert_eq!(seqs(&store, &sessions), [4]);
}

#[test]
fn damaged_record_shown_by_number() {
    let dir = tempdir();
    let path = three_runs(dir.path());
    damage(&path, 4, NOT_JSON);
    let store = AuditStore::open_read_only(&path).expect("open");

    let by_number = store.find("4").expect("find 4");
    let by_id = store.find("r2").expect("find r2");

    assert_eq!(by_number.entries.len(), 1);
    assert_eq!(by_number.entries[0].body_bytes, NOT_JSON.as_bytes());
    assert!(by_number.entries[0].damage().is_some());
    let id_seqs: Vec<u64> = by_id.entries.iter().map(|e| e.seq).collect();
    assert_eq!(id_seqs, [3], "the damaged body no longer names r2");
}

#[test]
fn missing_fields_are_damaged() {
    let dir = tempdir();
    let path = three_runs(dir.path());
    damage(&path, 4, "{\"seq\":4}");
    let store = AuditStore::open_read_only(&path).expect("open");

    let entry = store.get_seq(4).expect("read").expect("record 4");

    assert!(
        entry
            .damage()
            .is_some_and(|reason| reason.starts_with("missing field")),
        "{:?}",
        entry.damage()
    );
    let verification = store.verify(None).expect("verify");
    assert_eq!(verification.first_failure.map(|f| f.seq), Some(4));
}

#[test]
fn blob_body_exported_as_hex() {
    let dir = tempdir();
    let path = three_runs(dir.path());
    raw(&path)
        .execute("UPDATE entries SET body = X'00ff' WHERE seq = 4", [])
        .expect("store a blob");
    let store = AuditStore::open_read_only(&path).expect("open");
    let bundle = dir.path().join("evidence");

    let summary = export(&store, &Filter::default(), &bundle, &[]).expect("export");

    assert_eq!(summary.damaged, [4]);
    let records = std::fs::read_to_string(bundle.join("records.jsonl")).expect("records");
    let line: Value = records
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON"))
        .find(|line| line["seq"] == 4)
        .expect("record 4 is exported");
    assert_eq!(line["body_hex"], "00ff");
    assert_eq!(line["damaged"], "the body is a blob, not text");
    assert_eq!(line.get("body"), None);
}

#[test]
fn export_keeps_damaged_body() {
    let dir = tempdir();
    let path = three_runs(dir.path());
    damage(&path, 4, NOT_JSON);
    let store = AuditStore::open_read_only(&path).expect("open");
    let bundle = dir.path().join("evidence");

    let summary = export(&store, &Filter::default(), &bundle, &[]).expect("export");

    assert!(!summary.verification.valid);
    assert_eq!(
        summary.verification,
        store.verify(None).expect("verify"),
        "the export's pass verifies like verify"
    );
    assert_eq!(summary.damaged, [4]);
    assert_eq!(summary.selection.damaged, [4]);
    assert!(!summary.selection.all_link);
    let records = std::fs::read_to_string(bundle.join("records.jsonl")).expect("records");
    let lines: Vec<Value> = records
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| l["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let damaged = &lines[3];
    assert_eq!(damaged["body"], NOT_JSON, "the body is kept verbatim");
    assert_eq!(
        damaged["hash"].as_str(),
        Some(sha256_hex(NOT_JSON.as_bytes()).as_str())
    );
    assert!(damaged["damaged"].as_str().is_some());
    assert_eq!(lines[2].get("damaged"), None);

    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(bundle.join("manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    assert_eq!(manifest["counts"]["damaged"], 1);
    assert_eq!(manifest["damaged_records"], serde_json::json!([4]));
    let csv = std::fs::read_to_string(bundle.join("summary.csv")).expect("csv");
    let row = csv
        .split_terminator("\r\n")
        .find(|row| row.starts_with("4,"))
        .expect("a row for record 4");
    assert!(row.contains(",damaged,"), "{row}");
    assert!(row.ends_with(&sha256_hex(NOT_JSON.as_bytes())), "{row}");
}

#[test]
fn report_shows_damaged_section() {
    let dir = tempdir();
    let path = three_runs(dir.path());
    damage(&path, 4, NOT_JSON);
    let store = AuditStore::open_read_only(&path).expect("open");

    let rendered = report(&store, &Filter::default()).expect("report");

    assert!(!rendered.verification.valid);
    let html = rendered.html;
    assert!(html.contains("<h2 id=\"damaged\">Damaged records</h2>"));
    assert!(html.contains("<section class=\"record\" id=\"record-4\">"));
    assert!(
        html.contains("not json at all <span class=\"ctl\">\\u{0}</span> &lt;script&gt;"),
        "{html}"
    );
    assert!(!html.contains('\0'));
}
