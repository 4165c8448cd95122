//! `moat check` on the fixture scripts in `tests/fixtures/check`: the exit
//! code, every verdict in the JUnit XML and in the JSON, the same verdicts
//! whatever `--jobs` is, and exit code 2 for each configuration error.

use std::path::Path;

use serde_json::Value;

use crate::support::{Finished, finish, json, moat, moat_javascript, moat_python, tempdir};

const FIXTURES: &str = "tests/fixtures/check";
const FIXTURE_POLICY: &str = "tests/fixtures/check/policy.toml";

/// Every fixture script under the fixture policy, with the kinds of its
/// failures in report order; an empty list means it passes.
const EXPECTED: &[(&str, &[&str])] = &[
    ("control_chars.js", &[]),
    ("egress_caught.js", &["egress_denied"]),
    ("egress_expected.js", &[]),
    ("egress_refused.py", &["egress_denied"]),
    ("empty.py", &["empty_script"]),
    ("exception_expected.py", &[]),
    ("exit_expected.py", &[]),
    ("exit_unexpected.js", &["exit_code"]),
    ("exit_wrong.py", &["exit_code"]),
    ("file_missing.py", &["file_missing"]),
    ("file_wrong.js", &["file_content"]),
    ("fuel.py", &["fuel_exhausted"]),
    ("hello.js", &[]),
    ("hello.py", &[]),
    ("import_refused.py", &["import_refused"]),
    ("max_duration.js", &["max_duration"]),
    ("mean_regex.py", &[]),
    ("memory.py", &["memory_limit"]),
    ("nested/deep.js", &[]),
    ("no_expectations.py", &[]),
    ("output_flood.py", &["output_truncated"]),
    ("read_grant.py", &[]),
    ("require_refused.js", &["import_refused"]),
    ("sales_report.py", &[]),
    ("stdin_sum.py", &[]),
    ("summary_file.js", &[]),
    ("syntax_error.js", &["exception"]),
    ("syntax_error.py", &["exception"]),
    ("throws.js", &["exception"]),
    ("timeout.js", &["timeout"]),
    ("traceback.py", &["exception"]),
    ("unicode.py", &[]),
    ("violation_expected.py", &[]),
    ("violation_missing.py", &["missing_violation"]),
    ("write_escape.js", &["path_not_granted"]),
    ("write_etc.py", &["path_not_granted"]),
    ("write_read_only.js", &["read_only_write"]),
    ("write_read_only.py", &["read_only_write"]),
    ("wrong_output.py", &["stdout"]),
    ("wrong_output_regex.js", &["stdout"]),
];

/// Text that a failure's message must contain, for the failures whose
/// message names what was refused or missed.
const EXPECTED_MESSAGES: &[(&str, &str)] = &[
    ("egress_caught.js", "POST https://exfil.invalid/upload"),
    (
        "egress_refused.py",
        "no egress rule allows host blocked.invalid",
    ),
    ("exit_unexpected.js", "exit code 4, expected 0"),
    ("exit_wrong.py", "exit code 2, expected 3"),
    ("file_missing.py", "/workspace/report.txt was not created"),
    ("file_wrong.js", r#"expected "final\n", got "draft\n""#),
    ("fuel.py", "2000000000 instructions"),
    ("import_refused.py", "module 'sqlite3'"),
    ("max_duration.js", "max_duration of 200ms"),
    ("memory.py", "over its limit of 134217728 bytes"),
    ("output_flood.py", "stdout passed its limit of 262144 bytes"),
    ("require_refused.js", "require('child_process')"),
    ("syntax_error.js", "SyntaxError"),
    ("syntax_error.py", "SyntaxError"),
    ("throws.js", "TypeError"),
    ("timeout.js", "timed out after 3 s"),
    ("traceback.py", "ZeroDivisionError: division by zero"),
    ("violation_missing.py", "egress_denied"),
    ("write_escape.js", "/escape.txt"),
    ("write_etc.py", "/etc/cron.d/backdoor"),
    ("write_read_only.js", "/data/new.csv"),
    ("write_read_only.py", "grants /data read-only"),
    (
        "wrong_output.py",
        r#"expected "total: 42\n", got "total: 41\n""#,
    ),
    ("wrong_output_regex.js", "/^status: ok$/"),
];

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// `moat check` after both guests are compiled into the test cache.
fn moat_check() -> std::process::Command {
    moat_javascript();
    let mut command = moat_python();
    command.arg("check");
    command
}

/// A script's path, status, and failures as `(kind, message)`.
type ScriptVerdict = (String, String, Vec<(String, String)>);

/// The verdict of each script in a `--json` document.
fn verdicts(document: &Value) -> Vec<ScriptVerdict> {
    let scripts = document["scripts"].as_array().expect("scripts is an array");
    scripts
        .iter()
        .map(|script| {
            let failures = script["failures"]
                .as_array()
                .expect("failures is an array")
                .iter()
                .map(|failure| {
                    (
                        failure["kind"].as_str().expect("kind").to_owned(),
                        failure["message"].as_str().expect("message").to_owned(),
                    )
                })
                .collect();
            (
                script["path"].as_str().expect("path").to_owned(),
                script["status"].as_str().expect("status").to_owned(),
                failures,
            )
        })
        .collect()
}

/// The entry of fixture `name` in a `--json` document.
fn script_entry<'a>(document: &'a Value, name: &str) -> &'a Value {
    let path = fixture(name);
    document["scripts"]
        .as_array()
        .and_then(|scripts| {
            scripts
                .iter()
                .find(|script| script["path"] == path.as_str())
        })
        .unwrap_or_else(|| panic!("{path} is not in the report"))
}

fn check_fixtures_json(jobs: &str) -> Value {
    let finished = finish(moat_check().args([
        FIXTURES,
        "--policy",
        FIXTURE_POLICY,
        "--json",
        "--jobs",
        jobs,
    ]));
    assert_eq!(finished.code, 1, "{finished:#?}");
    json(&finished)
}

#[test]
fn fixtures_give_expected_verdicts() {
    let dir = tempdir();
    let junit = dir.path().join("report.xml");
    let finished = finish(moat_check().args([
        FIXTURES,
        "--policy",
        FIXTURE_POLICY,
        "--json",
        "--jobs",
        "2",
        "--junit",
        junit.to_str().expect("UTF-8 path"),
    ]));
    assert_eq!(finished.code, 1, "{finished:#?}");
    let document = json(&finished);

    let expected_paths: Vec<String> = EXPECTED.iter().map(|(name, _)| fixture(name)).collect();
    let found = verdicts(&document);
    let found_paths: Vec<String> = found.iter().map(|(path, _, _)| path.clone()).collect();
    assert_eq!(found_paths, expected_paths);

    for ((path, status, failures), (name, kinds)) in found.iter().zip(EXPECTED) {
        let expected_status = match kinds.is_empty() {
            true => "pass",
            false => "fail",
        };
        assert_eq!(status, expected_status, "status of {name}: {failures:?}");
        let found_kinds: Vec<&str> = failures.iter().map(|(kind, _)| kind.as_str()).collect();
        assert_eq!(found_kinds, *kinds, "failure kinds of {path}: {failures:?}");
    }
    for (name, text) in EXPECTED_MESSAGES {
        let (_, _, failures) = found
            .iter()
            .find(|(path, _, _)| *path == fixture(name))
            .expect("the fixture is in the report");
        assert!(
            failures.iter().any(|(_, message)| message.contains(text)),
            "no failure of {name} mentions {text:?}: {failures:?}"
        );
    }

    let passed = EXPECTED
        .iter()
        .filter(|(_, kinds)| kinds.is_empty())
        .count();
    assert_eq!(document["totals"]["total"], EXPECTED.len());
    assert_eq!(document["totals"]["passed"], passed);
    assert_eq!(document["totals"]["failed"], EXPECTED.len() - passed);
    assert_eq!(document["totals"]["errors"], 0);
    assert_eq!(document["policy"]["name"], "check-fixtures");
    assert_eq!(document["policy"]["source"], FIXTURE_POLICY);

    let sales = script_entry(&document, "sales_report.py");
    assert_eq!(sales["run"]["stdout"], "total: 300.00\n");
    assert_eq!(
        sales["expectations"],
        "tests/fixtures/check/sales_report.py.check.toml"
    );
    let refused = &script_entry(&document, "egress_caught.js")["run"]["egress"][0];
    assert_eq!(refused["decision"], "denied");
    assert_eq!(refused["url"], "https://exfil.invalid/upload");

    // Every script that ran links to its audit records; an empty one never
    // ran.
    let mut execution_ids = Vec::new();
    for (name, _) in EXPECTED {
        let entry = script_entry(&document, name);
        let id = entry["execution_id"].as_str();
        match entry["run"].is_null() {
            true => assert_eq!(id, None, "{name} did not run"),
            false => assert!(id.is_some_and(|id| !id.is_empty()), "{name}: {entry}"),
        }
        execution_ids.push(id.map(str::to_owned));
    }
    assert_eq!(
        script_entry(&document, "empty.py")["execution_id"],
        Value::Null
    );

    let xml = std::fs::read_to_string(&junit).expect("the JUnit report was written");
    check_junit(&xml, &execution_ids);
}

/// Checks the JUnit document's structure and every test case's verdict and
/// `execution_id`, given in the order of [`EXPECTED`].
fn check_junit(xml: &str, execution_ids: &[Option<String>]) {
    let document = roxmltree::Document::parse(xml)
        .unwrap_or_else(|error| panic!("the JUnit report is not valid XML ({error}):\n{xml}"));
    let root = document.root_element();
    let passed = EXPECTED
        .iter()
        .filter(|(_, kinds)| kinds.is_empty())
        .count();
    let failed = (EXPECTED.len() - passed).to_string();
    let total = EXPECTED.len().to_string();

    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some(total.as_str()));
    assert_eq!(root.attribute("failures"), Some(failed.as_str()));
    assert_eq!(root.attribute("errors"), Some("0"));

    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert_eq!(suites.len(), 1, "one testsuite");
    let suite = suites[0];
    assert_eq!(suite.tag_name().name(), "testsuite");
    assert_eq!(suite.attribute("tests"), Some(total.as_str()));
    assert_eq!(suite.attribute("failures"), Some(failed.as_str()));
    assert_eq!(suite.attribute("errors"), Some("0"));

    let property = |name: &str| {
        suite
            .descendants()
            .find(|n| n.has_tag_name("property") && n.attribute("name") == Some(name))
            .and_then(|n| n.attribute("value"))
    };
    assert_eq!(property("policy"), Some("check-fixtures"));
    assert_eq!(property("policy_source"), Some(FIXTURE_POLICY));

    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), EXPECTED.len());
    for ((case, (name, kinds)), execution_id) in cases.iter().zip(EXPECTED).zip(execution_ids) {
        let path = fixture(name);
        assert_eq!(case.attribute("name"), Some(path.as_str()));
        let property = case
            .children()
            .find(|n| n.has_tag_name("properties"))
            .and_then(|properties| {
                properties
                    .children()
                    .find(|n| n.attribute("name") == Some("moat.execution_id"))
            })
            .and_then(|n| n.attribute("value"));
        assert_eq!(property, execution_id.as_deref(), "{name}");
        assert_eq!(case.attribute("file"), Some(path.as_str()));
        let language = match name.ends_with(".py") {
            true => "python",
            false => "javascript",
        };
        assert_eq!(case.attribute("classname"), Some(language), "{name}");
        let time: f64 = case
            .attribute("time")
            .and_then(|time| time.parse().ok())
            .unwrap_or_else(|| panic!("{name} has no numeric time"));
        assert!(time >= 0.0, "{name}");

        let failures: Vec<_> = case
            .children()
            .filter(|n| n.has_tag_name("failure") || n.has_tag_name("error"))
            .collect();
        if kinds.is_empty() {
            assert!(failures.is_empty(), "{name} passed but has {failures:?}");
            continue;
        }
        assert_eq!(failures.len(), 1, "{name} has one failure element");
        let failure = failures[0];
        assert!(failure.has_tag_name("failure"), "{name}");
        assert_eq!(failure.attribute("type"), Some(kinds[0]), "{name}");
        assert!(
            !failure.attribute("message").unwrap_or("").is_empty(),
            "{name} has a failure message"
        );
        let body = failure.text().unwrap_or("");
        for kind in *kinds {
            assert!(
                body.contains(&format!("{kind}: ")),
                "{name}: {body:?} lacks {kind}"
            );
        }
        if let Some(id) = execution_id {
            assert!(
                body.ends_with(&format!("audit records: moat audit show {id}")),
                "{name}: {body:?}"
            );
        }
    }

    let control = cases
        .iter()
        .find(|case| case.attribute("name") == Some(fixture("control_chars.js").as_str()))
        .expect("control_chars.js is a test case");
    let system_out = control
        .children()
        .find(|n| n.has_tag_name("system-out"))
        .and_then(|n| n.text())
        .expect("control_chars.js has system-out");
    assert_eq!(
        system_out,
        "\\u{1b}[31mred\\u{1b}[0m and a NUL: \\u{0} done\n"
    );
    let system_err = control
        .children()
        .find(|n| n.has_tag_name("system-err"))
        .and_then(|n| n.text())
        .expect("control_chars.js has system-err");
    assert_eq!(system_err, "warning \\u{7} with a bell\n");

    let traceback = cases
        .iter()
        .find(|case| case.attribute("name") == Some(fixture("traceback.py").as_str()))
        .and_then(|case| case.children().find(|n| n.has_tag_name("failure")))
        .and_then(|failure| failure.text())
        .expect("traceback.py has a failure body");
    assert!(
        traceback.contains("File \"traceback.py\", line 2, in ratio"),
        "{traceback}"
    );
}

/// Four jobs on a machine with fewer CPUs slows each run down. The fixtures
/// end far below their 3 s timeout or far past it (`fuel.py` takes about
/// 0.5 s), so wall-clock limits give the same verdicts either way.
#[test]
fn verdicts_do_not_depend_on_jobs() {
    let one = verdicts(&check_fixtures_json("1"));
    let four = verdicts(&check_fixtures_json("4"));
    assert_eq!(one.len(), EXPECTED.len());
    assert_eq!(one, four);
}

#[test]
fn summary_lists_reasons_and_totals() {
    let finished = finish(moat_check().args([
        &fixture("traceback.py"),
        &fixture("hello.py"),
        &fixture("import_refused.py"),
        "--policy",
        FIXTURE_POLICY,
    ]));
    assert_eq!(finished.code, 1, "{finished:#?}");
    let lines: Vec<&str> = finished.stdout.lines().collect();
    assert!(
        lines[0].starts_with("PASS  tests/fixtures/check/hello.py ("),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("FAIL  tests/fixtures/check/import_refused.py ("),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("        import_refused: import of module 'sqlite3' was refused"),
        "{lines:?}"
    );
    assert!(
        lines[3].starts_with("FAIL  tests/fixtures/check/traceback.py ("),
        "{lines:?}"
    );
    assert_eq!(
        lines[4],
        "        exception: uncaught ZeroDivisionError: division by zero (exit code 1, expected 0)"
    );
    assert_eq!(lines[5], "");
    assert!(
        lines[6].starts_with(
            "3 scripts checked under policy \"check-fixtures\" (tests/fixtures/check/policy.toml): \
             1 passed, 2 failed ("
        ),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 7, "{lines:?}");
}

#[test]
fn passing_scripts_exit_zero() {
    let finished = finish(moat_check().args([
        &fixture("hello.py"),
        &fixture("hello.js"),
        &fixture("sales_report.py"),
        &fixture("stdin_sum.py"),
        &fixture("read_grant.py"),
        &fixture("egress_expected.js"),
        &fixture("nested"),
        "--policy",
        FIXTURE_POLICY,
    ]));
    assert_eq!(finished.code, 0, "{finished:#?}");
    assert!(
        finished
            .stdout
            .contains("7 scripts checked under policy \"check-fixtures\""),
        "{}",
        finished.stdout
    );
}

#[test]
fn named_script_uses_directory_manifest() {
    let finished = finish(moat_check().args([
        &fixture("wrong_output_regex.js"),
        "--policy",
        FIXTURE_POLICY,
        "--json",
    ]));
    assert_eq!(finished.code, 1, "{finished:#?}");
    let document = json(&finished);
    assert_eq!(document["scripts"][0]["failures"][0]["kind"], "stdout");
    assert_eq!(
        document["scripts"][0]["expectations"],
        "tests/fixtures/check/moat-check.toml:46"
    );
}

#[test]
fn default_policy_is_ci() {
    let finished = finish(moat_check().args([
        &fixture("egress_caught.js"),
        &fixture("egress_refused.py"),
        &fixture("hello.py"),
        "--json",
    ]));
    assert_eq!(finished.code, 1, "{finished:#?}");
    let document = json(&finished);
    assert_eq!(document["policy"]["name"], "ci");
    assert_eq!(document["policy"]["source"], "built-in");

    let policy_check = finish(moat().args(["policy", "check", "policy/ci.toml"]));
    let sha256 = document["policy"]["sha256"].as_str().expect("sha256");
    assert!(
        policy_check.stdout.contains(sha256),
        "the built-in policy is not the text of policy/ci.toml: {sha256} vs {}",
        policy_check.stdout
    );

    let found = verdicts(&document);
    assert_eq!(found[0].2[0].0, "egress_denied");
    assert!(
        found[0].2[0].1.contains("the policy has no egress rules"),
        "{found:?}"
    );
    // policy/ci.toml leaves urllib out, so the import fails first.
    assert_eq!(found[1].2[0].0, "import_refused");
    assert!(found[1].2[0].1.contains("'urllib.request'"), "{found:?}");
    assert_eq!(found[2].1, "pass");
}

#[test]
fn directory_search_is_sorted_and_skips_hidden() {
    let dir = tempdir();
    let root = dir.path();
    std::fs::create_dir_all(root.join("sub")).expect("create sub");
    std::fs::create_dir_all(root.join(".git")).expect("create .git");
    std::fs::write(root.join("b.mjs"), "console.log('b')\n").expect("write");
    std::fs::write(root.join("a.py"), "print('a')\n").expect("write");
    std::fs::write(root.join("sub/c.js"), "console.log('c')\n").expect("write");
    std::fs::write(root.join(".hook.py"), "raise SystemExit(1)\n").expect("write");
    std::fs::write(root.join(".git/hook.py"), "raise SystemExit(1)\n").expect("write");
    std::fs::write(root.join("notes.txt"), "not a script\n").expect("write");

    let finished = finish(
        moat_check()
            .current_dir(root)
            .args([".", "--json", "--jobs", "3"]),
    );
    assert_eq!(finished.code, 0, "{finished:#?}");
    let paths: Vec<String> = verdicts(&json(&finished))
        .into_iter()
        .map(|(path, _, _)| path)
        .collect();
    assert_eq!(paths, ["a.py", "b.mjs", "sub/c.js"]);
}

/// Runs `moat check` in `dir` and asserts exit code 2 with `expected` in
/// the error message.
fn assert_config_error(dir: &Path, args: &[&str], expected: &str) -> Finished {
    let finished = finish(moat().current_dir(dir).arg("check").args(args));
    assert_eq!(finished.code, 2, "{args:?}: {finished:#?}");
    assert!(
        finished.stderr.contains(expected),
        "{args:?}: stderr lacks {expected:?}: {}",
        finished.stderr
    );
    assert!(finished.stdout.is_empty(), "{args:?}: {finished:#?}");
    finished
}

#[test]
fn manifest_unknown_key_names_line() {
    let dir = tempdir();
    std::fs::write(dir.path().join("a.py"), "print(1)\n").expect("write");
    std::fs::write(
        dir.path().join("moat-check.toml"),
        "[[script]]\npath = \"a.py\"\n\nstdoot = \"1\\n\"\n",
    )
    .expect("write");
    assert_config_error(
        dir.path(),
        &["."],
        "moat-check.toml:4:1: unknown field `stdoot`",
    );
}

#[test]
fn sidecar_unknown_key_names_line() {
    let dir = tempdir();
    std::fs::write(dir.path().join("a.py"), "print(1)\n").expect("write");
    std::fs::write(
        dir.path().join("a.py.check.toml"),
        "exit_code = 0\n[[output]]\npath = \"x\"\ncontent = \"y\"\n",
    )
    .expect("write");
    assert_config_error(
        dir.path(),
        &["a.py"],
        "a.py.check.toml:4:1: unknown field `content`",
    );
}

#[test]
fn manifest_naming_missing_script() {
    let dir = tempdir();
    std::fs::write(dir.path().join("a.py"), "print(1)\n").expect("write");
    std::fs::write(
        dir.path().join("moat-check.toml"),
        "[[script]]\npath = \"a.py\"\n\n[[script]]\npath = \"gone.py\"\n",
    )
    .expect("write");
    assert_config_error(
        dir.path(),
        &["."],
        "moat-check.toml:4: script ./gone.py does not exist",
    );
}

#[test]
fn explicit_manifest_naming_missing_script() {
    let dir = tempdir();
    std::fs::write(dir.path().join("a.py"), "print(1)\n").expect("write");
    std::fs::write(
        dir.path().join("expect.toml"),
        "[[script]]\npath = \"b.py\"\n",
    )
    .expect("write");
    assert_config_error(
        dir.path(),
        &["a.py", "--manifest", "expect.toml"],
        "expect.toml:1: script b.py does not exist",
    );
}

#[test]
fn sidecar_without_script() {
    let dir = tempdir();
    std::fs::write(dir.path().join("a.py"), "print(1)\n").expect("write");
    std::fs::write(dir.path().join("old.py.check.toml"), "exit_code = 0\n").expect("write");
    assert_config_error(
        dir.path(),
        &["."],
        "sidecar ./old.py.check.toml belongs to ./old.py, which does not exist",
    );
}

#[test]
fn expectations_given_twice() {
    let dir = tempdir();
    std::fs::write(dir.path().join("a.py"), "print(1)\n").expect("write");
    std::fs::write(dir.path().join("a.py.check.toml"), "exit_code = 0\n").expect("write");
    std::fs::write(
        dir.path().join("moat-check.toml"),
        "[[script]]\npath = \"a.py\"\n",
    )
    .expect("write");
    assert_config_error(dir.path(), &["a.py"], "are given twice");
}

#[test]
fn directory_without_scripts() {
    let dir = tempdir();
    std::fs::create_dir(dir.path().join(".cache")).expect("create");
    std::fs::write(dir.path().join(".cache/x.py"), "print(1)\n").expect("write");
    std::fs::write(dir.path().join("notes.md"), "# notes\n").expect("write");
    assert_config_error(dir.path(), &["."], "no scripts to check in .");
}

#[test]
fn named_file_of_other_type() {
    let dir = tempdir();
    std::fs::write(dir.path().join("notes.md"), "# notes\n").expect("write");
    assert_config_error(
        dir.path(),
        &["notes.md"],
        "cannot check notes.md: only .py, .js and .mjs scripts can be checked",
    );
}

#[test]
fn missing_path() {
    let dir = tempdir();
    assert_config_error(dir.path(), &["gone.py"], "cannot check gone.py");
}

#[test]
fn bad_jobs_values() {
    let dir = tempdir();
    std::fs::write(dir.path().join("a.py"), "print(1)\n").expect("write");
    assert_config_error(
        dir.path(),
        &["a.py", "--jobs", "0"],
        "invalid value '0' for '--jobs <N>': must be at least 1",
    );
    assert_config_error(dir.path(), &["a.py", "--jobs", "many"], "invalid number");
    assert_config_error(dir.path(), &["a.py", "--jobs"], "a value is required");
    assert_config_error(dir.path(), &[], "required arguments were not provided");
    assert_config_error(dir.path(), &["a.py", "--verbose"], "unexpected argument");
}

#[test]
fn unreadable_or_invalid_policy() {
    let dir = tempdir();
    std::fs::write(dir.path().join("a.py"), "print(1)\n").expect("write");
    assert_config_error(
        dir.path(),
        &["a.py", "--policy", "missing.toml"],
        "failed to read policy file missing.toml",
    );
    std::fs::write(
        dir.path().join("bad.toml"),
        "[limits.default]\ntimeout = 5\nfule = 1\n",
    )
    .expect("write");
    assert_config_error(
        dir.path(),
        &["a.py", "--policy", "bad.toml"],
        "invalid policy file bad.toml",
    );
}

#[test]
fn junit_in_missing_directory() {
    let dir = tempdir();
    std::fs::write(dir.path().join("a.py"), "print(1)\n").expect("write");
    assert_config_error(
        dir.path(),
        &["a.py", "--junit", "reports/junit.xml"],
        "directory reports does not exist",
    );
}

#[test]
fn missing_guest_is_configuration_error() {
    let dir = tempdir();
    std::fs::write(dir.path().join("a.py"), "print(1)\n").expect("write");
    let finished = finish(
        moat()
            .current_dir(dir.path())
            .env("MOAT_GUEST_DIR", dir.path().join("no-guests"))
            .args(["check", "a.py"]),
    );
    assert_eq!(finished.code, 2, "{finished:#?}");
    assert!(
        finished.stderr.contains("no python guest at"),
        "{}",
        finished.stderr
    );
}

#[test]
fn help_names_exit_codes_and_default_policy() {
    let finished = finish(moat().args(["check", "--help"]));
    assert_eq!(finished.code, 0, "{finished:#?}");
    assert!(
        finished.stdout.contains("the text of policy/ci.toml"),
        "{}",
        finished.stdout
    );
    assert!(
        finished.stdout.contains("1  at least one script failed"),
        "{}",
        finished.stdout
    );
    assert!(finished.stdout.contains("125"), "{}", finished.stdout);
}

/// Writes `contents` to `name` under `dir`, creating its directories.
fn write(dir: &Path, name: &str, contents: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create the parent directory");
    }
    std::fs::write(&path, contents).expect("write the test file");
}

#[test]
fn junit_never_overwrites_inputs_or_store() {
    let dir = tempdir();
    let root = dir.path();
    write(root, "jx/a.py", "print(input())\n");
    write(root, "jx/a.py.check.toml", "stdin_file = \"in.txt\"\n");
    write(root, "jx/in.txt", "hello\n");
    write(root, "jx/moat-check.toml", "");
    let policy = std::fs::read_to_string(crate::support::workspace_root().join("policy/ci.toml"))
        .expect("read policy/ci.toml");
    write(root, "ci.toml", &policy);
    let base = ["jx", "--policy", "ci.toml", "--audit-db", "jx/au.db"];

    // A first check creates the store that the refused ones must leave alone.
    let first = finish(moat_check().current_dir(root).args(base));
    assert_eq!(first.code, 0, "{first:#?}");
    let store = std::fs::read(root.join("jx/au.db")).expect("the store exists");
    assert!(store.starts_with(b"SQLite format 3\0"));

    let cases = [
        ("jx/au.db", "the audit store jx/au.db"),
        (
            "jx/au.db-wal",
            "the audit store's write-ahead log jx/au.db-wal",
        ),
        (
            "jx/au.db-shm",
            "the audit store's shared-memory file jx/au.db-shm",
        ),
        (
            "jx/au.db-journal",
            "the audit store's rollback journal jx/au.db-journal",
        ),
        ("jx/a.py", "the script jx/a.py"),
        ("./jx/../jx/a.py", "the script jx/a.py"),
        (
            "jx/a.py.check.toml",
            "the expectations file jx/a.py.check.toml",
        ),
        (
            "jx/moat-check.toml",
            "the expectations file jx/moat-check.toml",
        ),
        ("jx/in.txt", "the input file"),
        ("ci.toml", "the policy file ci.toml"),
    ];
    for (junit, named) in cases {
        let mut args = base.to_vec();
        args.extend(["--junit", junit]);
        let finished = assert_config_error(
            root,
            &args,
            &format!("cannot write the JUnit report to {junit}: it is {named}"),
        );
        assert!(
            finished.stderr.contains("choose another --junit path"),
            "{junit}: {}",
            finished.stderr
        );
    }
    assert_eq!(
        std::fs::read_to_string(root.join("jx/a.py")).expect("read the script"),
        "print(input())\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("jx/in.txt")).expect("read the input"),
        "hello\n"
    );
    let after = std::fs::read(root.join("jx/au.db")).expect("the store is still there");
    assert!(after.starts_with(b"SQLite format 3\0"));
}

#[cfg(unix)]
#[test]
fn junit_link_to_script_is_rejected() {
    let dir = tempdir();
    let root = dir.path();
    write(root, "a.py", "print(1)\n");
    std::os::unix::fs::symlink("a.py", root.join("soft.xml")).expect("symlink");
    std::fs::hard_link(root.join("a.py"), root.join("hard.xml")).expect("hard link");
    for junit in ["soft.xml", "hard.xml"] {
        assert_config_error(
            root,
            &["a.py", "--junit", junit],
            &format!("cannot write the JUnit report to {junit}: it is the script a.py"),
        );
    }
    assert_eq!(
        std::fs::read_to_string(root.join("a.py")).expect("read the script"),
        "print(1)\n"
    );
}

#[test]
fn expectations_read_only_their_directory() {
    let dir = tempdir();
    let root = dir.path();
    write(root, "secret.txt", "FAKE_CI_TOKEN=ghp_fake1234\n");
    write(root, "m2/steal.py", "print(open('env.bin').read())\n");
    let cases = [
        "[[input]]\npath = \"env.bin\"\nsource = \"/proc/self/environ\"\n",
        "[[input]]\npath = \"env.bin\"\nsource = \"../secret.txt\"\n",
        "\n\nstdin_file = \"../../../../../etc/hostname\"\n",
    ];
    for sidecar in cases {
        write(root, "m2/steal.py.check.toml", sidecar);
        let finished = assert_config_error(root, &["m2"], "m2/steal.py.check.toml:3: invalid `");
        assert!(
            finished
                .stderr
                .contains("may read only files in its own directory (m2) and below"),
            "{sidecar}: {}",
            finished.stderr
        );
    }
}

#[test]
fn jobs_above_cpus_warn_and_run() {
    let dir = tempdir();
    write(dir.path(), "a.py", "print(1)\n");
    let finished = finish(
        moat_check()
            .current_dir(dir.path())
            .args(["a.py", "--jobs", "100000"]),
    );
    assert_eq!(finished.code, 0, "{finished:#?}");
    assert!(
        finished
            .stderr
            .contains("moat: warning: --jobs 100000 is more than the"),
        "{}",
        finished.stderr
    );
    assert!(finished.stdout.starts_with("PASS  a.py"), "{finished:#?}");

    let one = finish(
        moat_check()
            .current_dir(dir.path())
            .args(["a.py", "--jobs", "1"]),
    );
    assert_eq!(one.code, 0, "{one:#?}");
    assert!(!one.stderr.contains("warning"), "{}", one.stderr);
}

#[test]
fn telemetry_errors_exit_2() {
    let dir = tempdir();
    write(dir.path(), "a.py", "print(1)\n");
    assert_config_error(dir.path(), &["a.py", "--otlp-endpoint", "foo"], "foo");

    let finished = finish(
        moat()
            .current_dir(dir.path())
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
            .args(["check", "a.py"]),
    );
    assert_eq!(finished.code, 2, "{finished:#?}");
    assert!(finished.stderr.contains("grpc"), "{}", finished.stderr);
}

#[test]
fn named_script_uses_ancestor_manifest() {
    let dir = tempdir();
    let root = dir.path();
    write(root, "m3/sub/b.py", "print('b')\n");
    write(
        root,
        "m3/moat-check.toml",
        "[[script]]\npath = \"sub/b.py\"\nstdout = \"WRONG\\n\"\n",
    );

    for target in ["m3", "m3/sub", "m3/sub/b.py", "./m3/sub/../sub/b.py"] {
        let finished = finish(moat_check().current_dir(root).args([target, "--json"]));
        assert_eq!(finished.code, 1, "{target}: {finished:#?}");
        let document = json(&finished);
        let script = &document["scripts"][0];
        assert_eq!(script["failures"][0]["kind"], "stdout", "{target}");
        assert_eq!(script["expectations"], "m3/moat-check.toml:1", "{target}");
    }

    // A manifest above the current directory is not read.
    let inside = finish(
        moat_check()
            .current_dir(root.join("m3/sub"))
            .args(["b.py", "--json"]),
    );
    assert_eq!(inside.code, 0, "{inside:#?}");
    assert_eq!(json(&inside)["scripts"][0]["expectations"], Value::Null);
}

#[test]
fn invalid_values_name_line() {
    let dir = tempdir();
    write(dir.path(), "a.py", "print(1)\n");
    write(
        dir.path(),
        "a.py.check.toml",
        "stdout = \"1\\n\"\nmax_duration = \"0s\"\n",
    );
    assert_config_error(
        dir.path(),
        &["a.py"],
        "a.py.check.toml:2: invalid `max_duration`: it must be longer than zero",
    );
    write(dir.path(), "a.py.check.toml", "exit_code = -1\n");
    assert_config_error(
        dir.path(),
        &["a.py"],
        "a.py.check.toml:1: invalid `exit_code` -1: an exit status is 0 to 255",
    );
}

#[test]
fn exit_code_is_process_status() {
    let dir = tempdir();
    write(dir.path(), "minus.js", "process.exit(-1)\n");
    write(dir.path(), "minus.js.check.toml", "exit_code = 255\n");
    write(dir.path(), "wrap.js", "process.exit(256)\n");
    let finished = finish(moat_check().current_dir(dir.path()).args([".", "--json"]));
    assert_eq!(finished.code, 0, "{finished:#?}");
    let found = verdicts(&json(&finished));
    assert_eq!(
        found[0],
        ("minus.js".to_owned(), "pass".to_owned(), Vec::new())
    );
    assert_eq!(
        found[1],
        ("wrap.js".to_owned(), "pass".to_owned(), Vec::new())
    );
}

#[test]
fn sidecar_beside_directory() {
    let dir = tempdir();
    write(dir.path(), "a.py", "print(1)\n");
    std::fs::create_dir(dir.path().join("x.py")).expect("create x.py/");
    write(dir.path(), "x.py.check.toml", "exit_code = 0\n");
    assert_config_error(
        dir.path(),
        &["."],
        "sidecar ./x.py.check.toml belongs to ./x.py, which is a directory",
    );
}

#[cfg(unix)]
#[test]
fn symlinked_script_keeps_its_path() {
    let dir = tempdir();
    let root = dir.path();
    write(root, "g/sub/ok.py", "print('ok')\n");
    std::fs::create_dir(root.join("g/link")).expect("create g/link");
    std::os::unix::fs::symlink("../sub/ok.py", root.join("g/link/link.py")).expect("symlink");
    write(root, "g/link/link.py.check.toml", "stdout = \"WRONG\\n\"\n");

    let finished = finish(moat_check().current_dir(root).args(["g", "--json"]));
    assert_eq!(finished.code, 1, "{finished:#?}");
    let document = json(&finished);
    let found = verdicts(&document);
    let statuses: Vec<(&str, &str)> = found
        .iter()
        .map(|(path, status, _)| (path.as_str(), status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [("g/link/link.py", "fail"), ("g/sub/ok.py", "pass")]
    );
    assert_eq!(
        document["scripts"][0]["expectations"],
        "g/link/link.py.check.toml"
    );
    assert_eq!(document["scripts"][1]["expectations"], Value::Null);
}

#[test]
fn closed_stdout_is_quiet() {
    let dir = tempdir();
    let root = dir.path();
    for name in ["a.py", "b.py", "c.py"] {
        write(root, name, "print(1)\n");
    }
    write(root, "d.py", "raise SystemExit(3)\n");
    let mut child = moat_check()
        .current_dir(root)
        .args([".", "--junit", "junit.xml"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start moat");
    // Closing the read end now makes every write to stdout fail with EPIPE,
    // as `moat check | head -0` would.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait for moat");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let xml = std::fs::read_to_string(root.join("junit.xml")).expect("the report was written");
    assert!(xml.contains("tests=\"4\" failures=\"1\""), "{xml}");
}

#[test]
fn execution_id_finds_audit_records() {
    let dir = tempdir();
    write(dir.path(), "a.py", "print(1)\n");
    let finished = finish(moat_check().current_dir(dir.path()).args([
        "a.py",
        "--json",
        "--audit-db",
        "au.db",
    ]));
    assert_eq!(finished.code, 0, "{finished:#?}");
    let document = json(&finished);
    let id = document["scripts"][0]["execution_id"]
        .as_str()
        .expect("an execution_id");

    let shown =
        finish(
            moat()
                .current_dir(dir.path())
                .args(["audit", "show", id, "--audit-db", "au.db"]),
        );
    assert_eq!(shown.code, 0, "{shown:#?}");
    assert!(shown.stdout.contains(id), "{}", shown.stdout);
}
