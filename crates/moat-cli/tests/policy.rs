//! Tests of `moat policy check`, `explain` and `schema`, which need no guests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Exit code of a failure of moat itself, an invalid policy included.
const MOAT_ERROR: i32 = 125;

/// Returns the workspace root, because this crate lives in
/// `<root>/crates/moat-cli`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("moat-cli sits two levels inside the workspace")
        .to_path_buf()
}

#[derive(Debug)]
struct Finished {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `moat ARGS` from the workspace root and waits for it.
fn moat(args: &[&str]) -> Finished {
    moat_with(args, |_| {})
}

fn moat_with(args: &[&str], configure: impl FnOnce(&mut Command)) -> Finished {
    let mut command = Command::new(env!("CARGO_BIN_EXE_moat"));
    command
        .args(args)
        .env_remove("MOAT_LOG")
        .current_dir(workspace_root());
    configure(&mut command);
    let output = command.output().expect("failed to start moat");
    Finished {
        code: output.status.code().expect("moat exited without a code"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Writes `text` as `policy.toml` in a new temporary directory.
fn policy_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("failed to create a temporary directory");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, text).expect("failed to write the policy");
    (dir, path)
}

fn text(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

#[test]
fn check_valid_examples() {
    for name in ["default.toml", "ci.toml", "analyst.toml"] {
        let relative = format!("policy/{name}");
        let finished = moat(&["policy", "check", &relative]);
        assert_eq!(finished.code, 0, "{finished:#?}");

        let bytes = std::fs::read(workspace_root().join(&relative)).expect("example exists");
        let expected = format!(
            "policy {relative} is valid (sha256 {})\n",
            moat_policy::sha256_hex(&bytes)
        );
        assert_eq!(finished.stdout, expected);
        assert_eq!(finished.stderr, "", "{name} should check without warnings");
    }
}

#[test]
fn check_lists_every_problem() {
    let (_dir, path) = policy_file(
        "[limits.default]\ntimeout = \"0s\"\n\n[[egress]]\nname = \"rates\"\nhost = \"*.com\"\nmethods = [\"get\"]\n",
    );
    let finished = moat(&["policy", "check", text(&path)]);
    assert_eq!(finished.code, MOAT_ERROR, "{finished:#?}");
    assert_eq!(finished.stdout, "");
    assert!(
        finished.stderr.starts_with(&format!(
            "moat: error: invalid policy file {}:\n",
            path.display()
        )),
        "{}",
        finished.stderr
    );
    for expected in [
        "  line 2: limits.default.timeout: must be greater than zero, such as \"30s\"\n",
        "  line 6: egress[0].host: \"*.com\" is too broad",
        "  line 7: egress[0].methods[0]: \"get\" must be upper case",
    ] {
        assert!(finished.stderr.contains(expected), "{}", finished.stderr);
    }
}

#[test]
fn check_syntax_error_names_line() {
    let (_dir, path) = policy_file("name = \"x\"\n\n[audit]\ncapture = \"all\"\n");
    let finished = moat(&["policy", "check", text(&path)]);
    assert_eq!(finished.code, MOAT_ERROR, "{finished:#?}");
    assert!(
        finished
            .stderr
            .contains("TOML parse error at line 4, column 11"),
        "{}",
        finished.stderr
    );
    assert!(
        finished
            .stderr
            .contains("unknown variant `all`, expected one of `full`, `truncated`, `hashes`"),
        "{}",
        finished.stderr
    );
}

#[test]
fn check_missing_file() {
    let finished = moat(&["policy", "check", "policy/no-such-policy.toml"]);
    assert_eq!(finished.code, MOAT_ERROR, "{finished:#?}");
    assert!(
        finished
            .stderr
            .starts_with("moat: error: failed to read policy file policy/no-such-policy.toml: "),
        "{}",
        finished.stderr
    );
}

#[test]
fn check_warns_about_missing_grant() {
    let (_dir, path) =
        policy_file("[[filesystem]]\nhost = \"absent\"\nguest = \"/data\"\nmode = \"ro\"\n");
    let finished = moat(&["policy", "check", text(&path)]);
    assert_eq!(finished.code, 0, "{finished:#?}");
    assert!(finished.stdout.contains("is valid"), "{}", finished.stdout);
    assert!(
        finished
            .stderr
            .starts_with("moat: warning: filesystem[0].host: directory "),
        "{}",
        finished.stderr
    );
    assert!(
        finished.stderr.contains("create it or fix the path"),
        "{}",
        finished.stderr
    );
}

#[test]
fn explain_analyst() {
    let finished = moat_with(&["policy", "explain", "policy/analyst.toml"], |command| {
        command.env("MOAT_EXCHANGE_RATES_KEY", "key-value-that-must-not-appear");
    });
    assert_eq!(finished.code, 0, "{finished:#?}");
    for expected in [
        "Policy \"analyst\"\n",
        "  /data: read-only host directory ",
        "  Rule \"exchange-rates\": https://api.exchangerate.example:443\n",
        "    methods:           GET\n",
        "    paths:             starting with /v1/\n",
        "  Rule \"statistics\": https://*.statistics.example:443\n",
        "    source: environment variable MOAT_EXCHANGE_RATES_KEY of the moat process\n",
        "\"Bearer {value}\"",
        "Code may NOT\n",
    ] {
        assert!(finished.stdout.contains(expected), "{}", finished.stdout);
    }
    assert!(
        !finished.stdout.contains("key-value-that-must-not-appear"),
        "{}",
        finished.stdout
    );
}

#[test]
fn explain_json() {
    let finished = moat_with(
        &["policy", "explain", "policy/analyst.toml", "--json"],
        |command| {
            command.env("MOAT_EXCHANGE_RATES_KEY", "key-value-that-must-not-appear");
        },
    );
    assert_eq!(finished.code, 0, "{finished:#?}");
    assert!(!finished.stdout.contains("key-value-that-must-not-appear"));

    let facts: serde_json::Value =
        serde_json::from_str(&finished.stdout).expect("explain --json prints JSON");
    assert_eq!(facts["name"], "analyst");
    assert_eq!(facts["network"]["enabled"], true);
    assert_eq!(
        facts["network"]["rules"][0]["methods"],
        serde_json::json!(["GET"])
    );
    assert_eq!(
        facts["network"]["rules"][0]["secrets"][0]["header"],
        "Authorization"
    );
    assert_eq!(facts["network"]["rules"][1]["wildcard"], true);
    assert_eq!(facts["limits"]["default"]["timeout_ms"], 60_000);
    assert_eq!(facts["audit"]["capture"], "full");
}

#[test]
fn explain_without_file_is_builtin() {
    let finished = moat(&["policy", "explain"]);
    assert_eq!(finished.code, 0, "{finished:#?}");
    assert!(
        finished
            .stdout
            .starts_with("Built-in policy (no policy file given)\n"),
        "{}",
        finished.stdout
    );
    assert!(
        finished
            .stdout
            .contains("  timeout  30s (built-in)                      30s (same as the default)\n"),
        "{}",
        finished.stdout
    );
    assert!(
        finished
            .stdout
            .contains("  - reach the network in any way\n"),
        "{}",
        finished.stdout
    );
}

#[test]
fn explain_invalid_policy() {
    let (_dir, path) = policy_file("[[egress]]\nname = \"x\"\nhost = \"*\"\n");
    let finished = moat(&["policy", "explain", text(&path)]);
    assert_eq!(finished.code, MOAT_ERROR, "{finished:#?}");
    assert_eq!(finished.stdout, "");
    assert!(
        finished
            .stderr
            .contains("  line 3: egress[0].host: \"*\" may use '*' only"),
        "{}",
        finished.stderr
    );
}

#[test]
fn schema_matches_committed_file() {
    let finished = moat(&["policy", "schema"]);
    assert_eq!(finished.code, 0, "{finished:#?}");
    let committed =
        std::fs::read_to_string(workspace_root().join("policy/moat-policy.schema.json"))
            .expect("policy/moat-policy.schema.json exists");
    assert!(
        finished.stdout == committed,
        "policy/moat-policy.schema.json is stale: run `moat policy schema > \
         policy/moat-policy.schema.json`"
    );
}

#[test]
fn policy_without_subcommand() {
    let finished = moat(&["policy"]);
    assert_eq!(finished.code, MOAT_ERROR, "{finished:#?}");
    for subcommand in ["check", "explain", "schema"] {
        assert!(finished.stderr.contains(subcommand), "{}", finished.stderr);
    }
}
