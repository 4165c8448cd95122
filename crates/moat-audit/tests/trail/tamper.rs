//! Edits made to a store's file behind moat's back, each caught by
//! verification at the right record and for the right reason.

use moat_audit::{
    AuditStore, Entry, Event, ExpectedHead, Filter, Order, Problem, StoreProblem, sha256_hex,
};
use rusqlite::params;

use crate::support::{Run, raw, record_run, session, store_path, tempdir};

/// Writes ten records:
/// 1 session created, 2-3 run r1 (allowed egress), 4-5 run r2 (denied
/// egress, error), 6-7 run r3, 8-9 run r4 (allowed egress), 10 session closed.
fn ten_records(store: &AuditStore) -> Vec<Entry> {
    let mut entries = vec![
        store
            .append(Event::SessionCreated(session("s1", "alice")))
            .expect("append"),
    ];
    let mut r1 = Run::new("r1");
    r1.egress = vec![("api.example.com".into(), "allowed".into(), None)];
    let mut r2 = Run::new("r2");
    r2.outcome = "error".into();
    r2.egress = vec![(
        "evil.example".into(),
        "denied".into(),
        Some("host not in the allow-list".into()),
    )];
    let r3 = Run::new("r3");
    let mut r4 = Run::new("r4");
    r4.egress = vec![("api.example.com".into(), "allowed".into(), None)];
    for run in [&r1, &r2, &r3, &r4] {
        entries.extend(record_run(store, run, true));
    }
    entries.push(
        store
            .append(Event::SessionClosed(session("s1", "alice")))
            .expect("append"),
    );
    assert_eq!(entries.len(), 10);
    entries
}

/// Creates a store of [`ten_records`] in a fresh directory.
fn fixture() -> (tempfile::TempDir, std::path::PathBuf, Vec<Entry>) {
    let dir = tempdir();
    let path = store_path(dir.path());
    let store = AuditStore::open(&path).expect("open the store");
    let entries = ten_records(&store);
    drop(store);
    (dir, path, entries)
}

fn verify(path: &std::path::Path, expected: Option<&str>) -> moat_audit::Verification {
    let expected: Option<ExpectedHead> = expected.map(|text| text.parse().expect("head"));
    AuditStore::open_read_only(path)
        .expect("open read-only")
        .verify(expected.as_ref())
        .expect("verify runs")
}

fn body_of(connection: &rusqlite::Connection, seq: i64) -> String {
    connection
        .query_row("SELECT body FROM entries WHERE seq = ?1", [seq], |row| {
            row.get(0)
        })
        .expect("read a body")
}

#[test]
fn untouched_chain_verifies() {
    let (_dir, path, entries) = fixture();

    let verification = verify(&path, None);

    assert!(verification.valid, "{verification:#?}");
    assert_eq!(verification.records, 10);
    assert_eq!(verification.verified, 10);
    let head = verification.head.expect("a head");
    assert_eq!(head.seq, 10);
    assert_eq!(head.hash, entries[9].hash);
    assert_eq!(verification.first_failure, None);
}

#[test]
fn empty_store_verifies() {
    let dir = tempdir();
    let path = store_path(dir.path());
    drop(AuditStore::open(&path).expect("create the store"));

    let verification = verify(&path, None);

    assert!(verification.valid);
    assert_eq!(verification.records, 0);
    assert_eq!(verification.head, None);
}

#[test]
fn deleted_record_reported_missing() {
    let (_dir, path, _) = fixture();
    raw(&path)
        .execute("DELETE FROM entries WHERE seq = 6", [])
        .expect("delete");

    let verification = verify(&path, None);

    assert!(!verification.valid);
    assert_eq!(verification.verified, 5);
    let failure = verification.first_failure.expect("a failure");
    assert_eq!(failure.seq, 6);
    assert_eq!(
        failure.problem,
        Problem::Missing {
            missing_from: 6,
            found: 7
        }
    );
    assert_eq!(
        failure.message,
        "records jump from 5 to 7: record 6 is missing"
    );
}

#[test]
fn deleted_first_record_reported() {
    let (_dir, path, _) = fixture();
    raw(&path)
        .execute("DELETE FROM entries WHERE seq IN (1, 2)", [])
        .expect("delete");

    let failure = verify(&path, None).first_failure.expect("a failure");

    assert_eq!(failure.seq, 1);
    assert_eq!(
        failure.message,
        "the chain starts at record 3: records 1 to 2 are missing"
    );
}

#[test]
fn deleted_and_renumbered_record_caught() {
    let (_dir, path, _) = fixture();
    let connection = raw(&path);
    connection
        .execute("DELETE FROM entries WHERE seq = 6", [])
        .expect("delete");
    for seq in 7..=10 {
        connection
            .execute(
                "UPDATE entries SET seq = ?1 WHERE seq = ?2",
                params![seq - 1, seq],
            )
            .expect("renumber");
    }

    let failure = verify(&path, None).first_failure.expect("a failure");

    assert_eq!(failure.seq, 6);
    assert_eq!(failure.problem, Problem::SeqMismatch { body_seq: 7 });
    assert!(
        failure
            .message
            .starts_with("record 6: the body says it is record 7"),
        "{}",
        failure.message
    );
}

#[test]
fn edited_body_is_hash_mismatch() {
    let (_dir, path, entries) = fixture();
    let connection = raw(&path);
    let body = body_of(&connection, 5);
    let edited = body.replace("hello\\n", "goodbye\\n");
    assert_ne!(body, edited, "the fixture's stdout is in record 5");
    connection
        .execute("UPDATE entries SET body = ?1 WHERE seq = 5", [&edited])
        .expect("edit");

    let failure = verify(&path, None).first_failure.expect("a failure");

    assert_eq!(failure.seq, 5);
    assert_eq!(
        failure.problem,
        Problem::HashMismatch {
            stored: entries[4].hash.clone(),
            computed: sha256_hex(edited.as_bytes()),
        }
    );
    assert!(
        failure.message.starts_with(&format!(
            "record 5: hash mismatch: stored {}, computed ",
            entries[4].hash
        )),
        "{}",
        failure.message
    );
}

#[test]
fn edited_body_with_new_hash_breaks_next_link() {
    let (_dir, path, entries) = fixture();
    let connection = raw(&path);
    let edited = body_of(&connection, 5).replace("hello\\n", "goodbye\\n");
    connection
        .execute(
            "UPDATE entries SET body = ?1, hash = ?2 WHERE seq = 5",
            params![edited, sha256_hex(edited.as_bytes())],
        )
        .expect("edit");

    let failure = verify(&path, None).first_failure.expect("a failure");

    assert_eq!(failure.seq, 6);
    assert_eq!(
        failure.problem,
        Problem::PrevHashMismatch {
            expected: sha256_hex(edited.as_bytes()),
            found: entries[4].hash.clone(),
        }
    );
    assert!(
        failure.message.starts_with(
            "record 6: prev_hash does not match record 5's hash (a record was deleted, edited or moved)"
        ),
        "{}",
        failure.message
    );
}

#[test]
fn edited_column_only_caught() {
    let (_dir, path, _) = fixture();
    raw(&path)
        .execute("UPDATE entries SET principal = 'mallory' WHERE seq = 4", [])
        .expect("edit");

    let failure = verify(&path, None).first_failure.expect("a failure");

    assert_eq!(failure.seq, 4);
    assert_eq!(
        failure.problem,
        Problem::ColumnMismatch {
            column: "principal".into(),
            stored: Some("mallory".into()),
            body: Some("alice".into()),
        }
    );
    assert_eq!(
        failure.message,
        "record 4: indexed column principal is \"mallory\", but the body says \"alice\" (the column was edited)"
    );
}

#[test]
fn edited_column_does_not_hide_record() {
    let (_dir, path, _) = fixture();
    let connection = raw(&path);
    connection
        .execute("UPDATE entries SET outcome = 'ok' WHERE seq = 5", [])
        .expect("edit");
    connection
        .execute("UPDATE entries SET principal = 'evil' WHERE seq = 7", [])
        .expect("edit");
    connection
        .execute("DELETE FROM egress_hosts WHERE seq = 9", [])
        .expect("edit");
    let store = AuditStore::open_read_only(&path).expect("open");
    let ok = Filter {
        outcome: Some("ok".into()),
        ..Filter::default()
    };
    let alice = Filter {
        principal: Some("alice".into()),
        ..Filter::default()
    };
    let evil = Filter {
        principal: Some("evil".into()),
        ..Filter::default()
    };
    let mut api = Filter::default();
    api.set_egress_host("api.example.com").expect("host");
    let seqs = |filter: &Filter| -> Vec<u64> {
        store
            .list(filter, Order::OldestFirst, None)
            .expect("list")
            .entries
            .iter()
            .map(|listed| listed.entry.seq)
            .collect()
    };

    let listing = store.list(&alice, Order::OldestFirst, None).expect("list");

    // The bodies decide: record 5 ended with an error, record 7 is alice's
    // and record 9 reached api.example.com, whatever the index contains.
    assert_eq!(seqs(&ok), [3, 7, 9]);
    assert_eq!(seqs(&alice), [3, 5, 7, 9]);
    assert_eq!(seqs(&evil), Vec::<u64>::new());
    assert_eq!(seqs(&api), [3, 9]);
    assert_eq!(listing.index_mismatches, [5, 7]);
    let failure = store.verify(None).expect("verify").first_failure;
    assert_eq!(failure.map(|f| f.seq), Some(5));
}

#[test]
fn edited_execution_id_column_does_not_hide_run() {
    let (_dir, path, _) = fixture();
    raw(&path)
        .execute(
            "UPDATE entries SET execution_id = 'other' WHERE seq = 5",
            [],
        )
        .expect("edit");
    let store = AuditStore::open_read_only(&path).expect("open");

    let found = store.find("r2").expect("find r2");
    let listing = store
        .list(&Filter::default(), Order::OldestFirst, None)
        .expect("list");

    let seqs: Vec<u64> = found.entries.iter().map(|entry| entry.seq).collect();
    assert_eq!(seqs, [4, 5]);
    assert!(
        listing.entries.iter().all(|listed| !listed.unfinished),
        "r2 still has its end record"
    );
}

#[test]
fn escaped_execution_id_still_found() {
    let (_dir, path, _) = fixture();
    let connection = raw(&path);
    let body = body_of(&connection, 5);
    let escaped = body.replace(
        "\"execution_id\":\"r2\"",
        "\"execution_id\":\"\\u0072\\u0032\"",
    );
    assert_ne!(body, escaped, "record 5 names r2");
    connection
        .execute(
            "UPDATE entries SET body = ?1, hash = ?2 WHERE seq = 5",
            params![escaped, sha256_hex(escaped.as_bytes())],
        )
        .expect("edit");
    let store = AuditStore::open_read_only(&path).expect("open");

    let found = store.find("r2").expect("find r2");

    let seqs: Vec<u64> = found.entries.iter().map(|entry| entry.seq).collect();
    assert_eq!(seqs, [4, 5]);
}

#[test]
fn edited_policy_text_fails_verification() {
    let (_dir, path, _) = fixture();
    let store = AuditStore::open(&path).expect("open");
    let text = "name = \"tests\"\n";
    let sha256 = sha256_hex(text.as_bytes());
    store
        .record_policy(&sha256, Some("tests"), text)
        .expect("record a policy");
    drop(store);
    let edited = "name = \"tests\"\n# allow everything\n";
    raw(&path)
        .execute(
            "UPDATE policies SET text = ?1 WHERE sha256 = ?2",
            params![edited, sha256],
        )
        .expect("edit the policy");

    let verification = verify(&path, None);

    assert!(!verification.valid);
    assert_eq!(verification.first_failure, None, "the chain itself holds");
    assert_eq!(verification.store_failures.len(), 1);
    let failure = &verification.store_failures[0];
    assert_eq!(
        failure.problem,
        StoreProblem::PolicyText {
            sha256: sha256.clone(),
            computed: Some(sha256_hex(edited.as_bytes())),
        }
    );
    assert_eq!(
        failure.message,
        format!(
            "policy {sha256}: the kept text has SHA-256 {} (the policies table was edited)",
            sha256_hex(edited.as_bytes())
        )
    );
}

#[test]
fn edited_egress_hosts_caught() {
    let (_dir, path, _) = fixture();
    raw(&path)
        .execute(
            "UPDATE egress_hosts SET host = 'harmless.example' WHERE seq = 5",
            [],
        )
        .expect("edit");

    let failure = verify(&path, None).first_failure.expect("a failure");

    assert_eq!(failure.seq, 5);
    assert_eq!(
        failure.problem,
        Problem::EgressHostsMismatch {
            stored: vec!["harmless.example".into()],
            body: vec!["evil.example".into()],
        }
    );
}

#[test]
fn deleted_egress_host_row_caught() {
    let (_dir, path, _) = fixture();
    raw(&path)
        .execute("DELETE FROM egress_hosts WHERE seq = 3", [])
        .expect("delete");

    let failure = verify(&path, None).first_failure.expect("a failure");

    assert_eq!(failure.seq, 3);
    assert_eq!(
        failure.message,
        "record 3: egress_hosts lists [], but the body reached [api.example.com] (the index was edited)"
    );
}

#[test]
fn deleted_newest_record_leaves_orphan_hosts() {
    let (_dir, path, _) = fixture();
    let connection = raw(&path);
    connection
        .execute("DELETE FROM entries WHERE seq >= 9", [])
        .expect("delete");

    let failure = verify(&path, None).first_failure.expect("a failure");

    assert_eq!(failure.seq, 9);
    assert_eq!(
        failure.problem,
        Problem::OrphanEgressHosts {
            stored: vec!["api.example.com".into()],
        }
    );
}

#[test]
fn swapped_records_caught() {
    let (_dir, path, _) = fixture();
    let connection = raw(&path);
    for (from, to) in [(4, -4), (5, 4), (-4, 5)] {
        connection
            .execute(
                "UPDATE entries SET seq = ?1 WHERE seq = ?2",
                params![to, from],
            )
            .expect("swap");
    }

    let failure = verify(&path, None).first_failure.expect("a failure");

    assert_eq!(failure.seq, 4);
    assert_eq!(failure.problem, Problem::SeqMismatch { body_seq: 5 });
}

#[test]
fn swapped_bodies_and_hashes_caught() {
    let (_dir, path, _) = fixture();
    let connection = raw(&path);
    let read = |seq: i64| -> (String, String) {
        connection
            .query_row(
                "SELECT body, hash FROM entries WHERE seq = ?1",
                [seq],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .expect("read a record")
    };
    let (body6, hash6) = read(6);
    let (body7, hash7) = read(7);
    // The indexed columns stay with their rows; bodies and hashes move.
    for (seq, body, hash) in [(6, &body7, &hash7), (7, &body6, &hash6)] {
        connection
            .execute(
                "UPDATE entries SET body = ?1, hash = ?2 WHERE seq = ?3",
                params![body, hash, seq],
            )
            .expect("swap");
    }

    let failure = verify(&path, None).first_failure.expect("a failure");

    assert_eq!(failure.seq, 6);
    assert_eq!(failure.problem, Problem::SeqMismatch { body_seq: 7 });
}

#[test]
fn truncated_tail_needs_expected_head() {
    let (_dir, path, entries) = fixture();
    let connection = raw(&path);
    connection
        .execute("DELETE FROM entries WHERE seq >= 9", [])
        .expect("truncate");
    connection
        .execute("DELETE FROM egress_hosts WHERE seq >= 9", [])
        .expect("truncate");
    let old_head = format!("10:{}", entries[9].hash);

    let alone = verify(&path, None);
    let against_head = verify(&path, Some(&old_head));
    let against_hash = verify(&path, Some(&entries[9].hash));
    let against_kept = verify(&path, Some(&format!("8:{}", entries[7].hash)));

    assert!(alone.valid, "a cut tail leaves a valid chain: {alone:#?}");
    assert_eq!(alone.records, 8);

    assert!(!against_head.valid);
    let failure = against_head.first_failure.expect("a failure");
    assert_eq!(failure.seq, 10);
    assert_eq!(failure.problem, Problem::Truncated { last_seq: Some(8) });
    assert_eq!(
        failure.message,
        "record 10: the expected head is record 10, but the chain ends at record 8: the newest records were deleted"
    );

    assert!(!against_hash.valid);
    assert_eq!(
        against_hash.first_failure.map(|f| f.problem),
        Some(Problem::HeadNotFound {
            expected: entries[9].hash.clone()
        })
    );

    assert!(against_kept.valid, "{against_kept:#?}");
}

#[test]
fn rewritten_chain_caught_by_expected_head() {
    let (_dir, path, entries) = fixture();
    let connection = raw(&path);
    // Rewrites records 5 to 10 with recomputed hashes, as someone with
    // write access and knowledge of the format could.
    let mut previous = entries[3].hash.clone();
    for seq in 5..=10 {
        let body = body_of(&connection, seq);
        let mut value: serde_json::Value = serde_json::from_str(&body).expect("body JSON");
        value["prev_hash"] = serde_json::Value::String(previous.clone());
        let rewritten = serde_json::to_string(&value)
            .expect("serialize")
            .replace("hello\\n", "forged\\n");
        let hash = sha256_hex(rewritten.as_bytes());
        connection
            .execute(
                "UPDATE entries SET body = ?1, hash = ?2, prev_hash = ?3 WHERE seq = ?4",
                params![rewritten, hash, previous, seq],
            )
            .expect("rewrite");
        previous = hash;
    }
    let old_head = format!("10:{}", entries[9].hash);

    let alone = verify(&path, None);
    let against_head = verify(&path, Some(&old_head));

    assert!(
        alone.valid,
        "a consistent rewrite verifies alone: {alone:#?}"
    );
    let failure = against_head.first_failure.expect("a failure");
    assert_eq!(failure.seq, 10);
    assert_eq!(
        failure.problem,
        Problem::HeadMismatch {
            expected: entries[9].hash.clone(),
            found: previous,
        }
    );
}

#[test]
fn unparseable_body_named() {
    let (_dir, path, _) = fixture();
    raw(&path)
        .execute("UPDATE entries SET body = '{not json' WHERE seq = 2", [])
        .expect("edit");

    let failure = verify(&path, None).first_failure.expect("a failure");

    assert_eq!(failure.seq, 2);
    assert!(
        failure
            .message
            .starts_with("record 2: the body is not a valid record: "),
        "{}",
        failure.message
    );
}
