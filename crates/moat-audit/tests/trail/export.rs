//! Evidence bundles: written whole or not at all, and checkable from their
//! own files.

use std::collections::BTreeSet;
use std::path::Path;

use moat_audit::{AuditStore, Event, Filter, export, sha256_hex};
use serde_json::Value;

use crate::support::{POLICY_TEXT, Run, raw, record_run, session, store_path, tempdir};

/// Writes: 1 session created, 2-3 r1 (ok), 4-5 r2 (error, denied egress),
/// 6 r3 started only, 7-8 r4 by bob, 9 session closed.
fn store_with_runs(dir: &Path) -> AuditStore {
    let store = AuditStore::open(&store_path(dir)).expect("open the store");
    let policy_sha256 = sha256_hex(POLICY_TEXT.as_bytes());
    store
        .record_policy(&policy_sha256, Some("tests"), POLICY_TEXT)
        .expect("record the policy");
    store
        .append(Event::SessionCreated(session("s1", "alice")))
        .expect("append");
    record_run(&store, &Run::new("r1"), true);
    let mut r2 = Run::new("r2");
    r2.outcome = "error".into();
    r2.egress = vec![(
        "evil.example".into(),
        "denied".into(),
        Some("host not in the allow-list".into()),
    )];
    record_run(&store, &r2, true);
    record_run(&store, &Run::new("r3"), false);
    let mut r4 = Run::new("r4");
    r4.principal = Some("bob".into());
    record_run(&store, &r4, true);
    store
        .append(Event::SessionClosed(session("s1", "alice")))
        .expect("append");
    store
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read a JSON file");
    serde_json::from_str(&text).expect("valid JSON")
}

/// Checks every line of `records.jsonl` from the file alone, as the
/// bundle's README instructs an inspector, and returns the record numbers.
fn check_records_file(bundle: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(bundle.join("records.jsonl")).expect("read records");
    let mut seqs = Vec::new();
    let mut previous: Option<(u64, String)> = None;
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).expect("a JSON line");
        let body = record["body"].as_str().expect("body is a string");
        let hash = record["hash"].as_str().expect("hash is a string");
        assert_eq!(sha256_hex(body.as_bytes()), hash, "line {line}");
        let parsed: Value = serde_json::from_str(body).expect("body is JSON");
        let seq = parsed["seq"].as_u64().expect("seq");
        assert_eq!(record["seq"].as_u64(), Some(seq));
        if let Some((previous_seq, previous_hash)) = &previous
            && previous_seq + 1 == seq
        {
            assert_eq!(parsed["prev_hash"].as_str(), Some(previous_hash.as_str()));
        }
        previous = Some((seq, hash.to_owned()));
        seqs.push(seq);
    }
    seqs
}

#[test]
fn export_round_trip() {
    let dir = tempdir();
    let store = store_with_runs(dir.path());
    let bundle = dir.path().join("evidence");

    let summary = export(&store, &Filter::default(), &bundle, &[]).expect("export");

    // The executions and the start records of finished ones; no sessions.
    let seqs = check_records_file(&bundle);
    assert_eq!(seqs, [2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(summary.records, 7);
    assert_eq!(summary.executions, 4);
    assert_eq!(summary.unfinished, 1);
    assert!(summary.verification.valid);
    assert!(summary.selection.all_link, "{:#?}", summary.selection);
    assert_eq!(summary.selection.linked_pairs, 6);

    let manifest = read_json(&bundle.join("manifest.json"));
    assert_eq!(manifest["format"], "moat-audit-evidence");
    assert_eq!(manifest["counts"]["records"], 7);
    assert_eq!(manifest["counts"]["executions"], 4);
    assert_eq!(manifest["counts"]["unfinished"], 1);
    assert_eq!(manifest["chain"]["valid"], true);
    assert_eq!(manifest["chain"]["records"], 9);
    let head = store.verify(None).expect("verify").head.expect("head");
    assert_eq!(manifest["chain"]["head"]["seq"], 9);
    assert_eq!(manifest["chain"]["head"]["hash"], head.hash.as_str());
    assert_eq!(manifest["filter"]["kind"], "execution");

    let mut listed = BTreeSet::new();
    for file in manifest["files"].as_array().expect("files") {
        let relative = file["path"].as_str().expect("path");
        let bytes = std::fs::read(bundle.join(relative)).expect("read a listed file");
        assert_eq!(file["sha256"], sha256_hex(&bytes).as_str(), "{relative}");
        assert_eq!(file["bytes"], bytes.len(), "{relative}");
        listed.insert(relative.to_owned());
    }
    let policy_file = format!("policies/{}.toml", sha256_hex(POLICY_TEXT.as_bytes()));
    let expected: BTreeSet<String> = [
        "records.jsonl",
        "summary.csv",
        policy_file.as_str(),
        "verification.json",
        "README.txt",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(listed, expected);
    assert_eq!(
        std::fs::read_to_string(bundle.join(&policy_file)).expect("policy"),
        POLICY_TEXT
    );

    let manifest_bytes = std::fs::read(bundle.join("manifest.json")).expect("manifest");
    assert_eq!(summary.manifest_sha256, sha256_hex(&manifest_bytes));
    let sums = std::fs::read_to_string(bundle.join("SHA256SUMS")).expect("sums");
    let mut summed = BTreeSet::new();
    for line in sums.lines() {
        let (hash, relative) = line.split_once("  ").expect("sha256sum format");
        let bytes = std::fs::read(bundle.join(relative)).expect("read a summed file");
        assert_eq!(sha256_hex(&bytes), hash, "{relative}");
        summed.insert(relative.to_owned());
    }
    assert!(summed.contains("manifest.json"));
    assert_eq!(summed.len(), expected.len() + 1);

    let verification = read_json(&bundle.join("verification.json"));
    assert_eq!(verification["chain"]["valid"], true);
    assert_eq!(verification["selection"]["all_link"], true);

    let csv = std::fs::read_to_string(bundle.join("summary.csv")).expect("csv");
    let rows: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(rows.len(), 1 + 4, "{csv}");
    assert!(rows[0].starts_with("record_seq,time,execution_id,"));
    assert!(rows.iter().any(|row| row.contains(",unfinished,")), "{csv}");

    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with(".moat-export-")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn export_with_filter_keeps_start_records() {
    let dir = tempdir();
    let store = store_with_runs(dir.path());
    let bundle = dir.path().join("bob");
    let filter = Filter {
        principal: Some("bob".into()),
        ..Filter::default()
    };

    let summary = export(&store, &filter, &bundle, &[]).expect("export");

    assert_eq!(check_records_file(&bundle), [7, 8]);
    assert_eq!(summary.executions, 1);
    let manifest = read_json(&bundle.join("manifest.json"));
    assert_eq!(manifest["filter"]["principal"], "bob");
}

#[test]
fn export_refuses_non_empty_directory() {
    let dir = tempdir();
    let store = store_with_runs(dir.path());
    let bundle = dir.path().join("taken");
    std::fs::create_dir(&bundle).expect("mkdir");
    std::fs::write(bundle.join("notes.txt"), "keep me").expect("write");

    let error = export(&store, &Filter::default(), &bundle, &[]).expect_err("refused");

    assert_eq!(
        error.to_string(),
        format!(
            "cannot export to {}: the directory is not empty; choose a new directory",
            bundle.display()
        )
    );
    let names: Vec<_> = std::fs::read_dir(&bundle)
        .expect("list")
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert_eq!(names, ["notes.txt"]);
}

#[test]
fn export_fills_empty_directory() {
    let dir = tempdir();
    let store = store_with_runs(dir.path());
    let bundle = dir.path().join("empty");
    std::fs::create_dir(&bundle).expect("mkdir");

    export(&store, &Filter::default(), &bundle, &[]).expect("export");

    assert!(bundle.join("manifest.json").is_file());
}

#[test]
fn export_of_tampered_store_reports_it() {
    let dir = tempdir();
    let path = store_path(dir.path());
    drop(store_with_runs(dir.path()));
    let connection = raw(&path);
    let body: String = connection
        .query_row("SELECT body FROM entries WHERE seq = 3", [], |row| {
            row.get(0)
        })
        .expect("read");
    connection
        .execute(
            "UPDATE entries SET body = ?1 WHERE seq = 3",
            [body.replace("hello", "HELLO")],
        )
        .expect("edit");
    let store = AuditStore::open_read_only(&path).expect("open");
    let bundle = dir.path().join("evidence");

    let summary = export(&store, &Filter::default(), &bundle, &[]).expect("export");

    assert!(!summary.verification.valid);
    assert_eq!(summary.selection.hash_mismatches, [3]);
    assert_eq!(summary.selection.outside_verified_chain, [3, 4, 5, 6, 7, 8]);
    assert!(!summary.selection.all_link);
    let verification = read_json(&bundle.join("verification.json"));
    assert_eq!(verification["chain"]["valid"], false);
    assert_eq!(verification["chain"]["first_failure"]["seq"], 3);
    assert_eq!(
        verification["chain"]["first_failure"]["problem"],
        "hash_mismatch"
    );
}

#[test]
fn summary_csv_escapes_hostile_values() {
    let dir = tempdir();
    let store = AuditStore::open(&store_path(dir.path())).expect("open");
    let mut run = Run::new("r1");
    run.principal = Some("=HYPERLINK(\"http://x\",\"y\"),\nnext".into());
    run.model = Some("plain, with comma".into());
    record_run(&store, &run, true);
    let bundle = dir.path().join("evidence");

    export(&store, &Filter::default(), &bundle, &[]).expect("export");

    let csv = std::fs::read_to_string(bundle.join("summary.csv")).expect("csv");
    assert!(
        csv.contains(",\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\"),\nnext\","),
        "{csv}"
    );
    assert!(csv.contains(",\"plain, with comma\","), "{csv}");
}

#[test]
fn export_lists_missing_policies() {
    let dir = tempdir();
    let store = AuditStore::open(&store_path(dir.path())).expect("open");
    record_run(&store, &Run::new("r1"), true);
    let bundle = dir.path().join("evidence");

    let summary = export(&store, &Filter::default(), &bundle, &[]).expect("export");

    assert_eq!(
        summary.missing_policies,
        [sha256_hex(POLICY_TEXT.as_bytes())]
    );
    assert!(summary.policies.is_empty());
}

#[test]
fn export_marks_builtin_policies() {
    let dir = tempdir();
    let store = AuditStore::open(&store_path(dir.path())).expect("open");
    let ci_policy = "name = \"ci\"\n[limits]\ntimeout = \"10s\"\n";
    store
        .record_policy(&sha256_hex(ci_policy.as_bytes()), Some("ci"), ci_policy)
        .expect("record the CI policy");
    // Runs under the CI policy, and under the empty default policy, whose
    // text this store does not keep.
    let ci_run = Run::new("ci-run");
    let mut ci_started = ci_run.started();
    let mut ci_finished = ci_run.finished();
    let default_run = Run::new("default-run");
    let mut default_started = default_run.started();
    let mut default_finished = default_run.finished();
    for (event, text, name) in [
        (&mut ci_started, ci_policy, Some("ci")),
        (&mut ci_finished, ci_policy, Some("ci")),
        (&mut default_started, "", None),
        (&mut default_finished, "", None),
    ] {
        let policy = match event {
            Event::ExecutionStarted(start) => &mut start.policy,
            Event::Execution(execution) => &mut execution.policy,
            _ => unreachable!("only execution records"),
        };
        policy.sha256 = sha256_hex(text.as_bytes());
        policy.name = name.map(str::to_owned);
    }
    for event in [ci_started, ci_finished, default_started, default_finished] {
        store.append(event).expect("append");
    }
    let bundle = dir.path().join("evidence");

    let summary = export(&store, &Filter::default(), &bundle, &[ci_policy]).expect("export");

    assert!(summary.missing_policies.is_empty(), "{summary:#?}");
    let ci = summary
        .policies
        .iter()
        .find(|policy| policy.name.as_deref() == Some("ci"))
        .expect("the CI policy");
    assert!(ci.builtin);
    assert!(ci.kept_in_store);
    let default = summary
        .policies
        .iter()
        .find(|policy| policy.sha256 == sha256_hex(b""))
        .expect("the default policy");
    assert!(default.builtin);
    assert!(!default.kept_in_store);
    assert!(default.text_matches_sha256);
    assert_eq!(
        std::fs::read(bundle.join(&default.file)).expect("policy file"),
        b""
    );
}

#[test]
fn export_with_edited_policy_records_mismatch() {
    let dir = tempdir();
    let path = store_path(dir.path());
    drop(store_with_runs(dir.path()));
    let edited = format!("{POLICY_TEXT}# allow everything\n");
    raw(&path)
        .execute("UPDATE policies SET text = ?1", [&edited])
        .expect("edit the policy");
    let store = AuditStore::open_read_only(&path).expect("open");
    let bundle = dir.path().join("evidence");

    let summary = export(&store, &Filter::default(), &bundle, &[]).expect("export");

    assert!(!summary.verification.valid);
    assert_eq!(summary.verification.store_failures.len(), 1);
    assert!(!summary.policies[0].text_matches_sha256);
    let manifest = read_json(&bundle.join("manifest.json"));
    assert_eq!(manifest["chain"]["valid"], false);
    assert_eq!(manifest["policies"][0]["text_matches_sha256"], false);
    let failures = manifest["chain"]["store_failures"]
        .as_array()
        .expect("store failures");
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0]
            .as_str()
            .is_some_and(|message| message.contains("(the policies table was edited)")),
        "{failures:?}"
    );
}

#[test]
fn export_ignores_forged_policy_keys() {
    let dir = tempdir();
    let store = AuditStore::open(&store_path(dir.path())).expect("open");
    let run = Run::new("r1");
    let mut finished = run.finished();
    if let Event::Execution(execution) = &mut finished {
        execution.policy.sha256 = "../../escaped".into();
    }
    store.append(run.started()).expect("append");
    store.append(finished).expect("append");
    let bundle = dir.path().join("evidence");

    let summary = export(&store, &Filter::default(), &bundle, &[]).expect("export");

    assert!(
        summary
            .missing_policies
            .contains(&"../../escaped".to_owned())
    );
    assert!(!dir.path().join("escaped.toml").exists());
}
