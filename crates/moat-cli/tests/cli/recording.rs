//! What `moat run` writes to the audit trail: the records of a run, capture
//! levels, redaction of secret values, concurrent runs, and refusing to run
//! when the store cannot be written. Each test has its own store and reads
//! it back with rusqlite.

use std::path::Path;

use crate::support::{finish, json, moat, moat_python, script, tempdir};

/// Returns every record's event, in chain order.
fn events(db: &Path) -> Vec<serde_json::Value> {
    let connection = rusqlite::Connection::open(db).expect("open the audit store");
    let mut statement = connection
        .prepare("SELECT body FROM entries ORDER BY seq")
        .expect("query the audit store");
    statement
        .query_map([], |row| row.get::<_, String>(0))
        .expect("read the audit store")
        .map(|body| {
            let body: serde_json::Value =
                serde_json::from_str(&body.expect("a body")).expect("a body is JSON");
            body["event"].clone()
        })
        .collect()
}

fn executions(db: &Path) -> Vec<serde_json::Value> {
    events(db)
        .into_iter()
        .filter(|event| event["kind"] == "execution")
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    moat_audit::sha256_hex(bytes)
}

#[test]
fn run_writes_a_start_and_an_execution_record() {
    let dir = tempdir();
    let db = dir.path().join("audit.db");
    let workspace = dir.path().join("work");
    std::fs::create_dir(&workspace).expect("create the workspace");
    std::fs::write(workspace.join("in.txt"), "given").expect("write an input");
    let code = "print(open('in.txt').read())\nopen('out.txt', 'w').write('made')\n";
    let path = script(dir.path(), "job.py", code);

    let finished = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .arg("--json")
            .arg("--audit-db")
            .arg(&db)
            .arg("--workspace")
            .arg(&workspace)
            .args(["--principal", "ci-bot", "--tenant", "team-a"])
            .args(["--model", "model-x"]),
    );
    assert_eq!(finished.code, 0, "{finished:#?}");
    let report = json(&finished);
    let execution_id = report["execution_id"].as_str().expect("an execution id");

    let events = events(&db);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["execution_started", "execution"]);
    assert_eq!(events[0]["execution_id"], execution_id);
    assert_eq!(events[0]["code_sha256"], sha256(code.as_bytes()));

    let execution = &events[1];
    assert_eq!(execution["execution_id"], execution_id);
    assert_eq!(
        execution["actor"],
        serde_json::json!({
            "principal": "ci-bot",
            "tenant": "team-a",
            "transport": "cli",
            "client": null,
            "model": "model-x",
        })
    );
    assert_eq!(execution["outcome"], "ok");
    assert_eq!(execution["exit_code"], 0);
    assert_eq!(execution["capture"], "full");
    assert_eq!(execution["code"]["text"], code);
    assert_eq!(execution["stdout"]["text"], "given\n");
    assert_eq!(execution["guest_hash"], report["guest_hash"]);
    assert_eq!(execution["policy"]["sha256"], sha256(b""));
    assert_eq!(
        execution["files_in"],
        serde_json::json!([{"path": "in.txt", "change": "input", "size": 5, "sha256": sha256(b"given")}])
    );
    assert_eq!(
        execution["files_out"],
        serde_json::json!([{"path": "out.txt", "change": "created", "size": 4, "sha256": sha256(b"made")}])
    );
    assert!(execution["fuel_used"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn run_records_limit_and_traceback() {
    let dir = tempdir();
    let db = dir.path().join("audit.db");
    let looping = script(dir.path(), "loop.py", "while True:\n    pass\n");
    let raising = script(dir.path(), "raise.py", "raise ValueError('bad input')\n");

    let timed_out = finish(
        moat_python()
            .arg("run")
            .arg(&looping)
            .args(["--timeout", "300ms", "--audit-db"])
            .arg(&db),
    );
    assert_eq!(timed_out.code, 124, "{timed_out:#?}");
    let raised = finish(
        moat_python()
            .arg("run")
            .arg(&raising)
            .arg("--audit-db")
            .arg(&db),
    );
    assert_eq!(raised.code, 1, "{raised:#?}");

    let executions = executions(&db);
    assert_eq!(executions.len(), 2);
    assert_eq!(executions[0]["outcome"], "timeout");
    assert_eq!(executions[0]["limits"]["timeout_ms"], 300);
    assert!(executions[0]["limit_message"].is_string());
    assert_eq!(executions[1]["outcome"], "error");
    assert_eq!(executions[1]["error"]["name"], "ValueError");
    assert_eq!(executions[1]["error"]["message"]["text"], "bad input");
}

#[test]
fn hashes_capture_keeps_no_text() {
    let dir = tempdir();
    let db = dir.path().join("audit.db");
    let code = "print('private figures')\n";
    let path = script(dir.path(), "job.py", code);
    let finished = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .args(["--policy", "policy/ci.toml", "--audit-db"])
            .arg(&db),
    );
    assert_eq!(finished.code, 0, "{finished:#?}");

    let execution = &executions(&db)[0];
    assert_eq!(execution["capture"], "hashes");
    assert_eq!(execution["policy"]["name"], "ci");
    assert_eq!(execution["code"]["text"], serde_json::Value::Null);
    assert_eq!(execution["code"]["sha256"], sha256(code.as_bytes()));
    assert_eq!(execution["stdout"]["text"], serde_json::Value::Null);
    assert_eq!(execution["stdout"]["sha256"], sha256(b"private figures\n"));
    let stored = std::fs::read(&db).expect("read the store");
    assert!(
        !String::from_utf8_lossy(&stored).contains("private figures"),
        "the text reached the store file"
    );
}

#[test]
fn truncated_capture_cuts_long_output() {
    let dir = tempdir();
    let db = dir.path().join("audit.db");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[audit]\ncapture = \"truncated\"\n").expect("write the policy");
    let path = script(dir.path(), "job.py", "print('x' * 10000)\n");
    let finished = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .arg("--policy")
            .arg(&policy)
            .arg("--audit-db")
            .arg(&db),
    );
    assert_eq!(finished.code, 0, "{finished:#?}");

    let stdout = &executions(&db)[0]["stdout"];
    assert_eq!(stdout["bytes"], 10001);
    assert_eq!(stdout["truncated"], true);
    assert_eq!(stdout["text"].as_str().map(str::len), Some(4096));
    assert_eq!(
        stdout["sha256"],
        sha256(format!("{}\n", "x".repeat(10000)).as_bytes())
    );
}

#[test]
fn secret_values_are_redacted_from_records() {
    const VARIABLE: &str = "MOAT_CLI_AUDIT_TEST_KEY";
    const VALUE: &str = "sk-audit-test-Q7r2Lm9Xw4";
    let dir = tempdir();
    let db = dir.path().join("audit.db");
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[egress]]\nname = \"api\"\nhost = \"api.example.test\"\nmethods = [\"GET\"]\n\n\
             [[secrets]]\nname = \"api_key\"\nenv = \"{VARIABLE}\"\nrule = \"api\"\n\
             header = \"Authorization\"\n"
        ),
    )
    .expect("write the policy");
    // Model-written code that pasted the key: it must not reach the trail.
    let path = script(
        dir.path(),
        "job.py",
        format!("key = '{VALUE}'\nprint(key)\n"),
    );
    let finished = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .arg("--policy")
            .arg(&policy)
            .arg("--audit-db")
            .arg(&db)
            .args(["--model", &format!("model-{VALUE}")])
            .env(VARIABLE, VALUE),
    );
    assert_eq!(finished.code, 0, "{finished:#?}");

    let execution = &executions(&db)[0];
    let redacted_code = "key = '[REDACTED:api_key]'\nprint(key)\n";
    assert_eq!(execution["code"]["text"], redacted_code);
    assert_eq!(execution["code"]["redacted"], true);
    // A hash of the original would let a reader test guesses of the key.
    assert_eq!(
        execution["code"]["sha256"],
        sha256(redacted_code.as_bytes())
    );
    assert_eq!(execution["actor"]["model"], "model-[REDACTED:api_key]");
    assert_eq!(execution["stdout"]["text"], "[REDACTED:api_key]\n");
    for file in ["audit.db", "audit.db-wal"] {
        let path = dir.path().join(file);
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(VALUE),
                "the secret reached {file}"
            );
        }
    }
}

#[test]
fn concurrent_runs_are_all_recorded_in_one_chain() {
    let dir = tempdir();
    let db = dir.path().join("audit.db");
    let children: Vec<_> = (0..6)
        .map(|index| {
            let path = script(
                dir.path(),
                &format!("job{index}.py"),
                format!("print({index})\n"),
            );
            moat_python()
                .arg("run")
                .arg(&path)
                .arg("--audit-db")
                .arg(&db)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start moat")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("wait for moat");
        assert!(output.status.success(), "{output:?}");
    }

    let mut printed: Vec<String> = executions(&db)
        .iter()
        .map(|e| e["stdout"]["text"].as_str().unwrap_or("").to_owned())
        .collect();
    printed.sort();
    assert_eq!(printed, ["0\n", "1\n", "2\n", "3\n", "4\n", "5\n"]);
    let verified = finish(moat().args(["audit", "verify", "--audit-db"]).arg(&db));
    assert_eq!(verified.code, 0, "{verified:#?}");
}

#[test]
fn unopenable_store_rejects_run() {
    let dir = tempdir();
    let workspace = dir.path().join("work");
    std::fs::create_dir(&workspace).expect("create the workspace");
    // A regular file where the store's directory should be.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").expect("write a file");
    let path = script(dir.path(), "job.py", "open('ran.txt', 'w').write('x')\n");

    let finished = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .arg("--workspace")
            .arg(&workspace)
            .arg("--audit-db")
            .arg(blocker.join("audit.db")),
    );
    assert_eq!(finished.code, 125, "{finished:#?}");
    assert!(
        finished
            .stderr
            .contains("the audit trail is unavailable, so nothing was run")
            && finished.stderr.contains("--audit-db"),
        "{}",
        finished.stderr
    );
    assert!(!workspace.join("ran.txt").exists(), "the script ran");
}

#[test]
fn locked_store_rejects_run() {
    let dir = tempdir();
    let db = dir.path().join("audit.db");
    let workspace = dir.path().join("work");
    std::fs::create_dir(&workspace).expect("create the workspace");
    let path = script(dir.path(), "job.py", "open('ran.txt', 'w').write('x')\n");
    // Create the store, then hold its write lock past moat's 10 s wait.
    let first = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .arg("--audit-db")
            .arg(&db),
    );
    assert_eq!(first.code, 0, "{first:#?}");
    let holder = rusqlite::Connection::open(&db).expect("open the store");
    holder
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");

    let finished = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .arg("--workspace")
            .arg(&workspace)
            .arg("--audit-db")
            .arg(&db),
    );
    holder.execute_batch("ROLLBACK").expect("release the lock");
    assert_eq!(finished.code, 125, "{finished:#?}");
    assert!(
        finished
            .stderr
            .contains("the audit trail is unavailable, so nothing was run")
            && finished.stderr.contains("locked"),
        "{}",
        finished.stderr
    );
    assert!(!workspace.join("ran.txt").exists(), "the script ran");
    assert_eq!(executions(&db).len(), 1);
}

#[test]
fn check_records_each_script_it_runs() {
    let dir = tempdir();
    let db = dir.path().join("audit.db");
    let scripts = dir.path().join("scripts");
    std::fs::create_dir(&scripts).expect("create the script directory");
    script(&scripts, "good.py", "print('fine')\n");
    script(&scripts, "bad.js", "throw new Error('broken')\n");

    let finished = finish(
        moat_python()
            .arg("check")
            .arg(&scripts)
            .args(["--model", "gen-1", "--audit-db"])
            .arg(&db),
    );
    assert_eq!(finished.code, 1, "{finished:#?}");

    let mut executions = executions(&db);
    executions.sort_by_key(|e| e["language"].as_str().unwrap_or("").to_owned());
    assert_eq!(executions.len(), 2);
    for execution in &executions {
        assert_eq!(execution["actor"]["transport"], "check");
        assert_eq!(execution["actor"]["model"], "gen-1");
        assert_eq!(execution["policy"]["name"], "ci");
        // The built-in CI policy keeps hashes only.
        assert_eq!(execution["capture"], "hashes");
    }
    assert_eq!(executions[0]["language"], "javascript");
    assert_eq!(executions[0]["outcome"], "error");
    assert_eq!(executions[1]["language"], "python");
    assert_eq!(executions[1]["outcome"], "ok");
    assert_eq!(executions[1]["stdout"]["sha256"], sha256(b"fine\n"));
}

#[test]
fn check_with_an_unusable_store_runs_nothing() {
    let dir = tempdir();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").expect("write a file");
    let path = script(dir.path(), "job.py", "print('ran')\n");

    let finished = finish(
        moat_python()
            .arg("check")
            .arg(&path)
            .arg("--audit-db")
            .arg(blocker.join("audit.db")),
    );
    assert_eq!(finished.code, 2, "{finished:#?}");
    assert!(
        finished
            .stderr
            .contains("the audit trail is unavailable, so nothing was run"),
        "{}",
        finished.stderr
    );
    assert!(!finished.stdout.contains("PASS"), "{}", finished.stdout);
}

#[test]
fn writes_to_a_granted_directory_are_recorded() {
    let dir = tempdir();
    let db = dir.path().join("audit.db");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("create the grant");
    let path = script(
        dir.path(),
        "job.py",
        "open('/out/report.csv', 'w').write('a,b\\n')\n",
    );

    let finished = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .arg("--dir")
            .arg(format!("{}:/out", out.display()))
            .arg("--audit-db")
            .arg(&db),
    );
    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_eq!(
        executions(&db)[0]["files_out"],
        serde_json::json!([{"path": "/out/report.csv", "change": "created", "size": 4, "sha256": sha256(b"a,b\n")}])
    );
}

#[test]
fn refused_requests_are_recorded_without_a_policy() {
    let dir = tempdir();
    let db = dir.path().join("audit.db");
    let path = script(
        dir.path(),
        "job.py",
        "import urllib.request\ntry:\n    urllib.request.urlopen('http://example.test/data')\nexcept Exception:\n    print('refused')\n",
    );
    let finished = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .arg("--json")
            .arg("--audit-db")
            .arg(&db),
    );
    assert_eq!(finished.code, 0, "{finished:#?}");
    let report = json(&finished);
    assert_eq!(report["stdout"], "refused\n");
    assert_eq!(report["egress"][0]["decision"], "denied");

    let egress = &executions(&db)[0]["egress"];
    assert_eq!(egress.as_array().map(Vec::len), Some(1), "{egress}");
    assert_eq!(egress[0]["host"], "example.test");
    assert_eq!(egress[0]["url"], "http://example.test/data");
    assert_eq!(egress[0]["decision"], "denied");
    assert_eq!(
        egress[0]["reason"],
        "network access is denied: the policy has no egress rules"
    );
}
