//! `moat audit` on stores that `moat run` wrote: listing, showing,
//! verifying, exporting and reporting, and a store edited behind moat's
//! back.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Finished, finish, json, moat, moat_javascript, moat_python, script, tempdir};

/// Runs `moat audit ARGS` against the store at `db`.
fn audit(db: &Path, args: &[&str]) -> Finished {
    finish(moat().arg("--audit-db").arg(db).arg("audit").args(args))
}

/// Runs three scripts recorded in `dir/audit.db` and returns its path:
/// records 1-2 a Python run by tester with model m-test that prints,
/// 3-4 a Python run by tester that raises, 5-6 a JavaScript run by other.
fn recorded_store(dir: &Path) -> PathBuf {
    let db = dir.join("audit.db");
    let ok = script(dir, "ok.py", "print('recorded <b>output</b>')\n");
    let fails = script(dir, "fails.py", "raise ValueError('on purpose')\n");
    let js = script(dir, "hello.js", "console.log('from js');\n");

    let first = finish(
        moat_python()
            .arg("--audit-db")
            .arg(&db)
            .args(["run", "--principal", "tester", "--model", "m-test"])
            .arg(&ok),
    );
    assert_eq!(first.code, 0, "{first:#?}");
    let second = finish(
        moat_python()
            .arg("--audit-db")
            .arg(&db)
            .args(["run", "--principal", "tester"])
            .arg(&fails),
    );
    assert_eq!(second.code, 1, "{second:#?}");
    let third = finish(
        moat_javascript()
            .arg("--audit-db")
            .arg(&db)
            .args(["run", "--principal", "other"])
            .arg(&js),
    );
    assert_eq!(third.code, 0, "{third:#?}");
    db
}

fn statuses(listing: &Value) -> Vec<String> {
    listing
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|record| record["status"].as_str().expect("status").to_owned())
        .collect()
}

#[test]
fn audit_list_filters_runs() {
    let dir = tempdir();
    let db = recorded_store(dir.path());

    let table = audit(&db, &["list"]);
    let all = audit(&db, &["list", "--json"]);
    let tester = audit(&db, &["list", "--json", "--principal", "tester"]);
    let errors = audit(&db, &["list", "--json", "--outcome", "error"]);
    let model = audit(
        &db,
        &["list", "--json", "--model", "m-test", "--oldest-first"],
    );
    let javascript = audit(&db, &["list", "--json", "--language", "javascript"]);

    assert_eq!(table.code, 0, "{table:#?}");
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", table.stdout);
    assert!(lines[0].starts_with("SEQ  TIME (UTC)"), "{}", lines[0]);
    assert!(
        lines[1].trim_start().starts_with("6 "),
        "newest first: {}",
        lines[1]
    );
    assert_eq!(all.code, 0, "{all:#?}");
    assert_eq!(statuses(&json(&all)), ["ok", "error", "ok"]);
    assert_eq!(statuses(&json(&tester)), ["error", "ok"]);
    assert_eq!(statuses(&json(&errors)), ["error"]);
    let model = json(&model);
    assert_eq!(model.as_array().map(Vec::len), Some(1));
    assert_eq!(model[0]["seq"], 2);
    assert_eq!(model[0]["record"]["event"]["actor"]["model"], "m-test");
    assert_eq!(
        json(&javascript)[0]["record"]["event"]["language"],
        "javascript"
    );
}

#[test]
fn audit_show_by_prefix() {
    let dir = tempdir();
    let db = recorded_store(dir.path());
    let listing = json(&audit(&db, &["list", "--json", "--outcome", "error"]));
    let execution_id = listing[0]["record"]["event"]["execution_id"]
        .as_str()
        .expect("execution id")
        .to_owned();

    let shown = audit(&db, &["show", &execution_id[..8]]);
    let shown_json = audit(&db, &["show", &execution_id, "--json"]);
    let by_number = audit(&db, &["show", "1"]);
    let missing = audit(&db, &["show", "999"]);

    assert_eq!(shown.code, 0, "{shown:#?}");
    assert!(
        shown.stdout.starts_with("record 3 · execution_started"),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("\nrecord 4 · execution · "),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains("raise ValueError('on purpose')"));
    assert!(shown.stdout.contains("outcome     error (exit code 1)"));
    assert!(shown.stdout.contains("(matches the body)"));
    let value = json(&shown_json);
    assert_eq!(value["execution_id"], execution_id.as_str());
    assert_eq!(value["records"][1]["hash_matches"], true);
    assert_eq!(by_number.code, 0, "{by_number:#?}");
    assert!(by_number.stdout.starts_with("record 1 · execution_started"));
    assert_eq!(missing.code, 125, "{missing:#?}");
    assert!(
        missing
            .stderr
            .contains("no record or execution \"999\" in the audit store"),
        "{}",
        missing.stderr
    );
}

#[test]
fn audit_verify_catches_edit() {
    let dir = tempdir();
    let db = recorded_store(dir.path());

    let valid = audit(&db, &["verify"]);
    let connection = rusqlite::Connection::open(&db).expect("open the store");
    let body: String = connection
        .query_row("SELECT body FROM entries WHERE seq = 2", [], |row| {
            row.get(0)
        })
        .expect("read record 2");
    let edited = body.replace("recorded", "forged");
    assert_ne!(body, edited, "record 2 holds the run's output");
    connection
        .execute("UPDATE entries SET body = ?1 WHERE seq = 2", [&edited])
        .expect("edit record 2");
    drop(connection);
    let broken = audit(&db, &["verify"]);
    let broken_json = audit(&db, &["verify", "--json"]);
    let shown = audit(&db, &["show", "2"]);

    assert_eq!(valid.code, 0, "{valid:#?}");
    assert!(
        valid
            .stdout
            .starts_with("audit chain valid: 6 records, from record 1 to the newest\nhead: 6:"),
        "{}",
        valid.stdout
    );
    assert_eq!(broken.code, 1, "{broken:#?}");
    assert!(
        broken
            .stdout
            .starts_with("audit chain broken: record 2: hash mismatch: stored "),
        "{}",
        broken.stdout
    );
    assert!(
        broken
            .stdout
            .contains("records 1 to 1 verify; the store holds 6 records")
    );
    let value = json(&broken_json);
    assert_eq!(broken_json.code, 1);
    assert_eq!(value["valid"], false);
    assert_eq!(value["first_failure"]["seq"], 2);
    assert_eq!(value["first_failure"]["problem"], "hash_mismatch");
    assert_eq!(shown.code, 1, "{shown:#?}");
    assert!(
        shown
            .stdout
            .contains("(DOES NOT match the body; run moat audit verify)"),
        "{}",
        shown.stdout
    );
}

#[test]
fn audit_verify_catches_deleted_record() {
    let dir = tempdir();
    let db = recorded_store(dir.path());
    rusqlite::Connection::open(&db)
        .expect("open the store")
        .execute("DELETE FROM entries WHERE seq = 3", [])
        .expect("delete record 3");

    let broken = audit(&db, &["verify"]);

    assert_eq!(broken.code, 1, "{broken:#?}");
    assert!(
        broken
            .stdout
            .starts_with("audit chain broken: records jump from 2 to 4: record 3 is missing\n"),
        "{}",
        broken.stdout
    );
}

#[test]
fn audit_verify_expected_head() {
    let dir = tempdir();
    let db = recorded_store(dir.path());
    let head = json(&audit(&db, &["verify", "--json"]))["head"].clone();
    let old_head = format!("{}:{}", head["seq"], head["hash"].as_str().expect("hash"));
    let later = script(dir.path(), "later.py", "print('later')\n");
    let run = finish(
        moat_python()
            .arg("--audit-db")
            .arg(&db)
            .arg("run")
            .arg(&later),
    );
    assert_eq!(run.code, 0, "{run:#?}");

    let grown = audit(&db, &["verify", "--expect-head", &old_head]);
    rusqlite::Connection::open(&db)
        .expect("open the store")
        .execute("DELETE FROM entries WHERE seq >= 5", [])
        .expect("delete the newest records");
    let cut = audit(&db, &["verify"]);
    let cut_against_head = audit(&db, &["verify", "--expect-head", &old_head]);
    let malformed = audit(&db, &["verify", "--expect-head", "6:abc"]);

    assert_eq!(grown.code, 0, "{grown:#?}");
    assert!(
        grown
            .stdout
            .contains(&format!("the chain contains the expected head {old_head}"))
    );
    assert_eq!(cut.code, 0, "a cut tail alone looks valid: {cut:#?}");
    assert_eq!(cut_against_head.code, 1, "{cut_against_head:#?}");
    assert_eq!(
        cut_against_head.stdout.lines().next(),
        Some(
            "audit chain broken: record 6: the expected head is record 6, but the chain ends at record 4: the newest records were deleted"
        )
    );
    assert_eq!(malformed.code, 125, "{malformed:#?}");
    assert!(
        malformed.stderr.contains("64 hex digits"),
        "{}",
        malformed.stderr
    );
}

#[test]
fn audit_export_writes_bundle() {
    let dir = tempdir();
    let db = recorded_store(dir.path());
    let bundle = dir.path().join("evidence");
    let bundle_arg = bundle.to_str().expect("UTF-8 path");

    let exported = audit(
        &db,
        &["export", "--principal", "tester", "--out", bundle_arg],
    );
    let again = audit(&db, &["export", "--out", bundle_arg]);

    assert_eq!(exported.code, 0, "{exported:#?}");
    assert!(
        exported.stdout.starts_with(&format!(
            "exported 4 records (2 executions, 0 of them unfinished; 0 session records) to {}\nchain: valid, 6 records, head 6:",
            bundle.display()
        )),
        "{}",
        exported.stdout
    );
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(bundle.join("manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    assert_eq!(manifest["counts"]["records"], 4);
    assert_eq!(manifest["filter"]["principal"], "tester");
    let records = std::fs::read_to_string(bundle.join("records.jsonl")).expect("records");
    assert_eq!(records.lines().count(), 4);
    // An inspector checks the store later against the head in the manifest.
    let head = &manifest["chain"]["head"];
    let expected = format!("{}:{}", head["seq"], head["hash"].as_str().expect("hash"));
    let later = audit(&db, &["verify", "--expect-head", &expected]);
    assert_eq!(later.code, 0, "{later:#?}");
    assert_eq!(again.code, 125, "{again:#?}");
    assert!(
        again.stderr.contains("the directory is not empty"),
        "{}",
        again.stderr
    );
}

#[test]
fn audit_report_writes_page() {
    let dir = tempdir();
    let db = recorded_store(dir.path());
    let page = dir.path().join("report.html");

    let reported = audit(
        &db,
        &[
            "report",
            "--from",
            "2000-01-01",
            "--out",
            page.to_str().expect("UTF-8 path"),
        ],
    );

    assert_eq!(reported.code, 0, "{reported:#?}");
    assert!(
        reported
            .stdout
            .starts_with("wrote the report of 6 records to ")
    );
    let html = std::fs::read_to_string(&page).expect("read the report");
    for seq in 1..=6 {
        assert!(
            html.contains(&format!("id=\"record-{seq}\"")),
            "record {seq}"
        );
    }
    assert!(html.contains("recorded &lt;b&gt;output&lt;/b&gt;"));
    assert!(!html.contains("<b>output</b>"));
}

#[test]
fn audit_missing_store_is_error() {
    let dir = tempdir();
    let db = dir.path().join("none.db");

    let listed = audit(&db, &["list"]);

    assert_eq!(listed.code, 125, "{listed:#?}");
    assert_eq!(
        listed.stderr,
        format!(
            "moat: error: the audit store {} does not exist; pass --audit-db with the path of the store that moat run or moat serve wrote\n",
            db.display()
        )
    );
    assert!(!db.exists(), "reading must not create the store");
}

#[test]
fn audit_invalid_time_is_error() {
    let dir = tempdir();
    let db = dir.path().join("audit.db");

    let listed = audit(&db, &["list", "--from", "yesterday"]);

    assert_eq!(listed.code, 125, "{listed:#?}");
    assert!(
        listed
            .stderr
            .contains("invalid time \"yesterday\" for --from"),
        "{}",
        listed.stderr
    );
}

/// Replaces record `seq`'s body in the store at `db` with `body` and stores
/// the body's hash, so that only the body's content is wrong.
fn damage_record(db: &Path, seq: i64, body: &str) {
    let hash = moat_audit::sha256_hex(body.as_bytes());
    rusqlite::Connection::open(db)
        .expect("open the store")
        .execute(
            "UPDATE entries SET body = ?1, hash = ?2 WHERE seq = ?3",
            rusqlite::params![body, hash, seq],
        )
        .expect("damage the record");
}

#[test]
fn audit_report_over_store_rejected() {
    let dir = tempdir();
    let db = recorded_store(dir.path());
    let db_arg = db.to_str().expect("UTF-8 path");
    let wal = format!("{db_arg}-wal");

    let over_store = audit(&db, &["report", "--out", db_arg]);
    let over_wal = audit(&db, &["export", "--out", &wal]);
    let verified = audit(&db, &["verify"]);

    assert_eq!(over_store.code, 125, "{over_store:#?}");
    assert_eq!(
        over_store.stderr,
        format!(
            "moat: error: cannot write to {db_arg}: it is the audit store {db_arg} or one of its -wal, -shm and -journal files; choose another output path\n"
        )
    );
    assert!(over_store.stdout.is_empty(), "{}", over_store.stdout);
    assert_eq!(over_wal.code, 125, "{over_wal:#?}");
    assert!(!Path::new(&wal).is_dir());
    assert_eq!(verified.code, 0, "the store is intact: {verified:#?}");
}

#[test]
fn audit_damaged_record_still_read() {
    let dir = tempdir();
    let db = recorded_store(dir.path());
    damage_record(&db, 4, "not json at all \u{0} <script>");
    let bundle = dir.path().join("evidence");
    let page = dir.path().join("report.html");

    let listed = audit(&db, &["list"]);
    let listed_json = audit(&db, &["list", "--json", "--outcome", "damaged"]);
    let filtered = audit(&db, &["list", "--principal", "tester"]);
    let shown = audit(&db, &["show", "4"]);
    let exported = audit(
        &db,
        &["export", "--out", bundle.to_str().expect("UTF-8 path")],
    );
    let reported = audit(
        &db,
        &["report", "--out", page.to_str().expect("UTF-8 path")],
    );

    assert_eq!(listed.code, 1, "{listed:#?}");
    let damaged_row = listed
        .stdout
        .lines()
        .find(|line| line.trim_start().starts_with("4 "))
        .expect("a row for record 4");
    assert!(damaged_row.contains("damaged"), "{damaged_row}");
    assert_eq!(listed_json.code, 1, "{listed_json:#?}");
    let damaged = &json(&listed_json)[0];
    assert_eq!(damaged["seq"], 4);
    assert_eq!(damaged["status"], "damaged");
    assert_eq!(damaged["record"], Value::Null);
    assert_eq!(damaged["body"], "not json at all \u{0} <script>");
    assert!(damaged["damaged"].as_str().is_some());
    assert_eq!(filtered.code, 1, "{filtered:#?}");
    assert_eq!(
        filtered.stderr,
        "moat: warning: left out record 4, which the filter cannot be checked against because the body is damaged; list damaged records with --outcome damaged\n"
    );
    assert_eq!(shown.code, 1, "{shown:#?}");
    assert!(
        shown.stdout.starts_with("record 4 · damaged\n"),
        "{}",
        shown.stdout
    );
    assert!(
        shown
            .stdout
            .contains("    not json at all \\u{0} <script>\n"),
        "{}",
        shown.stdout
    );
    assert_eq!(exported.code, 1, "{exported:#?}");
    assert!(
        exported.stdout.contains("; 1 damaged) to "),
        "{}",
        exported.stdout
    );
    assert!(bundle.join("SHA256SUMS").is_file());
    assert_eq!(reported.code, 1, "{reported:#?}");
    let html = std::fs::read_to_string(&page).expect("read the report");
    assert!(html.contains("<h2 id=\"damaged\">Damaged records</h2>"));
}

#[test]
fn audit_edited_column_warns() {
    let dir = tempdir();
    let db = recorded_store(dir.path());
    rusqlite::Connection::open(&db)
        .expect("open the store")
        .execute("UPDATE entries SET principal = 'evil' WHERE seq = 4", [])
        .expect("edit a column");

    let listed = audit(&db, &["list", "--json", "--principal", "tester"]);

    assert_eq!(listed.code, 1, "{listed:#?}");
    assert_eq!(
        statuses(&json(&listed)),
        ["error", "ok"],
        "record 4 is found"
    );
    assert_eq!(
        listed.stderr,
        "moat: warning: the indexed columns of record 4 disagree with the body, so they were edited; records were selected by their bodies; run moat audit verify\n"
    );
}

#[test]
fn audit_edited_policy_fails() {
    let dir = tempdir();
    let db = recorded_store(dir.path());
    rusqlite::Connection::open(&db)
        .expect("open the store")
        .execute(
            "UPDATE policies SET text = text || '# allow everything'",
            [],
        )
        .expect("edit the policy");
    let bundle = dir.path().join("evidence");

    let verified = audit(&db, &["verify"]);
    let exported = audit(
        &db,
        &["export", "--out", bundle.to_str().expect("UTF-8 path")],
    );

    assert_eq!(verified.code, 1, "{verified:#?}");
    let lines: Vec<&str> = verified.stdout.lines().collect();
    assert!(
        lines[0].starts_with("audit chain valid: 6 records"),
        "{}",
        verified.stdout
    );
    assert!(
        lines[2].starts_with("audit store broken: policy ")
            && lines[2].ends_with("(the policies table was edited)"),
        "{}",
        verified.stdout
    );
    assert_eq!(exported.code, 1, "{exported:#?}");
    assert!(
        exported.stdout.contains("\nstore: broken: policy "),
        "{}",
        exported.stdout
    );
    assert!(
        exported
            .stderr
            .contains("does not hash to it, so the policies table was edited"),
        "{}",
        exported.stderr
    );
    assert!(bundle.join("manifest.json").is_file());
}

#[test]
fn audit_trigger_stops_runs() {
    let dir = tempdir();
    let db = recorded_store(dir.path());
    rusqlite::Connection::open(&db)
        .expect("open the store")
        .execute_batch(
            "CREATE TRIGGER hide BEFORE INSERT ON entries WHEN new.body LIKE '%secret-job%'
             BEGIN SELECT RAISE(IGNORE); END;",
        )
        .expect("add a trigger");
    let job = script(dir.path(), "job.py", "print('secret-job')\n");

    let run = finish(
        moat_python()
            .arg("--audit-db")
            .arg(&db)
            .arg("run")
            .arg(&job),
    );
    let verified = audit(&db, &["verify"]);
    let listed = audit(&db, &["list"]);

    assert_eq!(run.code, 125, "{run:#?}");
    assert!(
        !run.stdout.contains("secret-job"),
        "the output was released"
    );
    assert!(
        run.stderr.contains(
            "the store has trigger \"hide\" on table entries, which moat does not create"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(verified.code, 1, "{verified:#?}");
    assert!(
        verified
            .stdout
            .contains("audit store broken: the store has trigger \"hide\""),
        "{}",
        verified.stdout
    );
    assert_eq!(listed.code, 1, "{listed:#?}");
    assert!(
        listed.stderr.starts_with(
            "moat: warning: the store has trigger \"hide\" on table entries, which moat does not create"
        ),
        "{}",
        listed.stderr
    );
    assert_eq!(
        listed.stdout.lines().count(),
        4,
        "the records are still listed"
    );
}

#[test]
fn audit_unknown_outcome_rejected() {
    let dir = tempdir();
    let db = dir.path().join("audit.db");

    let listed = audit(&db, &["list", "--outcome", "bogus"]);

    assert_eq!(listed.code, 125, "{listed:#?}");
    assert!(
        listed.stderr.contains("invalid value 'bogus' for '--outcome <OUTCOME>'")
            && listed.stderr.contains(
                "[possible values: ok, error, timeout, fuel_exhausted, memory_limit, output_truncated, cancelled, failed, unfinished, damaged]"
            ),
        "{}",
        listed.stderr
    );
}

#[test]
fn audit_invalid_date_named() {
    let dir = tempdir();
    let db = dir.path().join("audit.db");

    let listed = audit(&db, &["list", "--to", "2026-02-30"]);

    assert_eq!(listed.code, 125, "{listed:#?}");
    assert!(
        listed
            .stderr
            .starts_with("moat: error: invalid date \"2026-02-30\" for --to: no such day; expected a date such as 2026-03-01"),
        "{}",
        listed.stderr
    );
}

#[test]
fn audit_non_database_read_advice() {
    let dir = tempdir();
    let db = script(dir.path(), "notes.db", "just some text\n");

    let verified = audit(&db, &["verify"]);

    assert_eq!(verified.code, 125, "{verified:#?}");
    assert_eq!(
        verified.stderr,
        format!(
            "moat: error: {} is not a moat audit store this version can use: it is not a SQLite database\n",
            db.display()
        )
    );
}

#[test]
fn audit_export_into_current_directory() {
    let dir = tempdir();
    let db = recorded_store(dir.path());
    let here = dir.path().join("evidence");
    std::fs::create_dir(&here).expect("create the directory");

    let exported = finish(
        moat()
            .arg("--audit-db")
            .arg(&db)
            .args(["audit", "export", "--out", "."])
            .current_dir(&here),
    );

    assert_eq!(exported.code, 0, "{exported:#?}");
    assert!(here.join("SHA256SUMS").is_file());
    assert!(here.join("records.jsonl").is_file());
}

#[test]
fn audit_report_creates_parents() {
    let dir = tempdir();
    let db = recorded_store(dir.path());
    let page = dir.path().join("reports/2026/march.html");

    let reported = audit(
        &db,
        &["report", "--out", page.to_str().expect("UTF-8 path")],
    );

    assert_eq!(reported.code, 0, "{reported:#?}");
    assert!(page.is_file());
}
