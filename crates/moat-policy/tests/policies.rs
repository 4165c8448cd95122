//! Tests of the example policies, malformed policies, explanations and the JSON Schema.

// Snapshots are compared byte for byte, and `MOAT_UPDATE_SNAPSHOTS=1`
// rewrites them instead.

use std::path::{Path, PathBuf};

use moat_policy::{LoadedPolicy, Policy, PolicyError, explain, explain_json};

/// Returns the workspace root, because this crate lives in
/// `<root>/crates/moat-policy`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("moat-policy sits two levels inside the workspace")
        .to_path_buf()
}

fn example(name: &str) -> PathBuf {
    workspace_root().join("policy").join(name)
}

fn load_example(name: &str) -> LoadedPolicy {
    let path = example(name);
    match Policy::load(&path) {
        Ok(loaded) => loaded,
        Err(error) => panic!("{} should be valid: {error}", path.display()),
    }
}

/// Returns the one problem `text` has, as `line N: path: message`.
fn only_problem(text: &str) -> String {
    let error = Policy::parse(text, Path::new("test.toml")).expect_err("policy should be invalid");
    let PolicyError::Invalid { problems, .. } = &error else {
        panic!("expected a validation problem, got: {error}");
    };
    assert_eq!(problems.len(), 1, "expected one problem, got: {error}");
    let located = &problems[0];
    let line = located.line.expect("the problem should have a line");
    format!(
        "line {line}: {}: {}",
        located.problem.path, located.problem.message
    )
}

/// Returns the parser's message for `text`, which must fail to parse.
fn syntax_error(text: &str) -> String {
    let error = Policy::parse(text, Path::new("test.toml")).expect_err("policy should be invalid");
    let PolicyError::Syntax { message, .. } = &error else {
        panic!("expected a syntax error, got: {error}");
    };
    message.clone()
}

/// Asserts a syntax error at `line` whose last line is `message`.
fn assert_syntax_error(text: &str, line: usize, message: &str) {
    let error = syntax_error(text);
    assert!(
        error.starts_with(&format!("TOML parse error at line {line}, ")),
        "expected line {line}: {error}"
    );
    assert_eq!(error.trim_end().lines().last(), Some(message), "{error}");
}

/// Compares `actual` with the snapshot at `path`, or rewrites the snapshot
/// when `MOAT_UPDATE_SNAPSHOTS=1`.
fn assert_snapshot(path: &Path, actual: &str) {
    if std::env::var_os("MOAT_UPDATE_SNAPSHOTS").is_some_and(|value| value == "1") {
        std::fs::write(path, actual).expect("failed to write the snapshot");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} is stale; rerun with MOAT_UPDATE_SNAPSHOTS=1 to refresh it.\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// An egress rule that secret tests bind to.
const RULE: &str = "[[egress]]\nname = \"rates\"\nhost = \"api.example.com\"\n\n";

// The examples.

#[test]
fn every_example_policy_is_valid() {
    let mut checked = 0;
    let entries = std::fs::read_dir(workspace_root().join("policy")).expect("policy/ exists");
    for entry in entries {
        let path = entry.expect("readable directory entry").path();
        if path
            .extension()
            .is_some_and(|extension| extension == "toml")
        {
            let loaded = Policy::load(&path)
                .unwrap_or_else(|error| panic!("{} is invalid: {error}", path.display()));
            assert!(
                loaded.missing_host_paths().is_empty(),
                "{} names missing host paths: {:?}",
                path.display(),
                loaded.missing_host_paths()
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "expected at least the three examples");
}

#[test]
fn default_example_matches_builtin() {
    let file = explain_json(&load_example("default.toml"));
    let builtin = explain_json(&LoadedPolicy::builtin());
    for key in [
        "languages",
        "filesystem",
        "network",
        "python",
        "secrets",
        "sessions",
        "audit",
    ] {
        assert_eq!(file[key], builtin[key], "{key}");
    }
    assert_eq!(file["limits"]["default"], builtin["limits"]["default"]);
    assert_eq!(file["limits"]["max"], builtin["limits"]["max"]);
}

#[test]
fn ci_example_is_strict() {
    let facts = explain_json(&load_example("ci.toml"));
    assert_eq!(facts["network"]["enabled"], false);
    assert_eq!(facts["filesystem"].as_array().map(Vec::len), Some(1));
    assert_eq!(facts["python"]["restricted"], true);
    assert_eq!(facts["limits"]["default"], facts["limits"]["max"]);
    assert_eq!(facts["limits"]["default"]["timeout_ms"], 10_000);
}

#[test]
fn analyst_example_grants() {
    let loaded = load_example("analyst.toml");
    let policy = &loaded.policy;

    assert_eq!(policy.filesystem.len(), 1);
    assert_eq!(policy.filesystem[0].guest, "/data");
    assert_eq!(policy.filesystem[0].mode, moat_policy::AccessMode::Ro);
    assert_eq!(
        Path::new(&policy.filesystem[0].host),
        example("data"),
        "a relative host path resolves against the policy's directory"
    );

    let hosts: Vec<&str> = policy
        .egress
        .iter()
        .map(|rule| rule.host.as_str())
        .collect();
    assert_eq!(hosts, ["api.exchangerate.example", "*.statistics.example"]);
    assert_eq!(policy.egress[0].effective_methods(), ["GET"]);
    assert_eq!(policy.egress[1].effective_methods(), ["GET", "POST"]);

    assert_eq!(policy.secrets.len(), 1);
    assert_eq!(policy.secrets[0].rule, "exchange-rates");
    assert_eq!(policy.secrets[0].header, "Authorization");
    assert_eq!(policy.secrets[0].format.as_deref(), Some("Bearer {value}"));
}

#[test]
fn analyst_explanation_snapshot() {
    let loaded = load_example("analyst.toml");
    let root = workspace_root().display().to_string();
    let text = explain(&loaded).replace(&root, "<repo>");
    let snapshot =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/analyst.explain.txt");
    assert_snapshot(&snapshot, &text);
}

#[test]
fn analyst_explanation_hides_secret_value() {
    let loaded = load_example("analyst.toml");
    let text = explain(&loaded);
    let json = explain_json(&loaded).to_string();
    for output in [&text, &json] {
        assert!(output.contains("MOAT_EXCHANGE_RATES_KEY"), "{output}");
    }
    assert!(text.contains("Bearer {value}"), "{text}");
}

#[test]
fn schema_file_is_current() {
    let schema = serde_json::to_string_pretty(&Policy::json_schema()).expect("schema renders");
    assert_snapshot(&example("moat-policy.schema.json"), &format!("{schema}\n"));
}

#[test]
fn schema_rejects_unknown_keys() {
    let schema = Policy::json_schema();
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["properties"]["egress"].is_object());
}

// Top level.

#[test]
fn unknown_top_level_key() {
    assert_syntax_error(
        "name = \"x\"\nnetwork = \"none\"\n",
        2,
        "unknown field `network`, expected one of `name`, `description`, `limits`, \
         `filesystem`, `egress`, `python`, `secrets`, `sessions`, `audit`",
    );
}

#[test]
fn wrong_value_type() {
    assert_syntax_error(
        "name = 5\n",
        1,
        "invalid type: integer `5`, expected a string",
    );
    assert_syntax_error(
        "filesystem = \"data\"\n",
        1,
        "invalid type: string \"data\", expected a sequence",
    );
}

#[test]
fn policy_name_on_one_line() {
    assert_eq!(
        only_problem("name = \"a\\nb\"\n"),
        "line 1: name: must be one line without control characters, such as \"analyst\""
    );
}

// Limits.

#[test]
fn limits_zero_timeout() {
    assert_eq!(
        only_problem("[limits.default]\ntimeout = \"0s\"\n"),
        "line 2: limits.default.timeout: must be greater than zero, such as \"30s\""
    );
}

#[test]
fn limits_memory_above_4_gib() {
    assert_eq!(
        only_problem("[limits.max]\nmemory = \"8GiB\"\n"),
        "line 2: limits.max.memory: \"8GiB\" is too large: a 32-bit guest cannot address \
         more than \"4GiB\""
    );
}

#[test]
fn limits_default_above_max() {
    assert_eq!(
        only_problem("[limits.default]\nfuel = 2000\n[limits.max]\nfuel = 1000\n"),
        "line 2: limits.default.fuel: is above limits.max.fuel; lower the default or raise \
         the maximum"
    );
}

#[test]
fn limits_max_below_builtin_default() {
    assert_eq!(
        only_problem("[limits.max]\nmemory = \"256MiB\"\n"),
        "line 2: limits.max.memory: \"256MiB\" is below moat's built-in default of \"512MiB\", \
         which applies because limits.default.memory is not set; set limits.default.memory \
         to at most \"256MiB\""
    );
}

#[test]
fn limits_unknown_unit() {
    assert_syntax_error(
        "[limits.default]\ntimeout = \"5 days\"\n",
        2,
        "invalid duration \"5 days\": unknown unit \"days\", expected ms, s, m or h",
    );
}

#[test]
fn limits_unknown_key() {
    assert_syntax_error(
        "[limits.default]\ntimeout = \"1s\"\nfuell = 5\n",
        3,
        "unknown field `fuell`, expected one of `timeout`, `fuel`, `memory`, `stdout`, `stderr`",
    );
}

// Filesystem.

#[test]
fn filesystem_relative_guest_path() {
    assert_eq!(
        only_problem("[[filesystem]]\nhost = \"data\"\nguest = \"data\"\n"),
        "line 3: filesystem[0].guest: \"data\" must be absolute, such as \"/data\""
    );
}

#[test]
fn filesystem_guest_inside_workspace() {
    assert_eq!(
        only_problem("[[filesystem]]\nhost = \"data\"\nguest = \"/workspace/data\"\n"),
        "line 3: filesystem[0].guest: \"/workspace/data\" overlaps /workspace, the scratch \
         directory every run gets; choose another path, such as \"/data\""
    );
}

#[test]
fn filesystem_guest_overlaps_earlier_grant() {
    let text = "[[filesystem]]\nhost = \"a\"\nguest = \"/data\"\n\n\
                [[filesystem]]\nhost = \"b\"\nguest = \"/data/b\"\n";
    assert_eq!(
        only_problem(text),
        "line 7: filesystem[1].guest: \"/data/b\" overlaps \"/data\", which an earlier grant \
         mounts; choose another path"
    );
}

#[test]
fn filesystem_guest_dot_segment() {
    assert_eq!(
        only_problem("[[filesystem]]\nhost = \"data\"\nguest = \"/data/../etc\"\n"),
        "line 3: filesystem[0].guest: \"/data/../etc\" must be a normal absolute path without \
         '.', '..', empty parts or a trailing '/'"
    );
}

#[test]
fn filesystem_empty_host() {
    assert_eq!(
        only_problem("[[filesystem]]\nhost = \"\"\nguest = \"/data\"\n"),
        "line 2: filesystem[0].host: must name a host directory, such as \"data\" (relative \
         to the policy file)"
    );
}

#[test]
fn filesystem_unknown_mode() {
    assert_syntax_error(
        "[[filesystem]]\nhost = \"data\"\nguest = \"/data\"\nmode = \"readonly\"\n",
        4,
        "unknown variant `readonly`, expected `ro` or `rw`",
    );
}

#[test]
fn filesystem_missing_guest() {
    assert_syntax_error(
        "[[filesystem]]\nhost = \"data\"\n",
        1,
        "missing field `guest`",
    );
}

// Egress.

fn egress(fields: &str) -> String {
    format!("[[egress]]\nname = \"rates\"\nhost = \"api.example.com\"\n{fields}")
}

#[test]
fn egress_invalid_name() {
    assert_eq!(
        only_problem("[[egress]]\nname = \"exchange rates\"\nhost = \"api.example.com\"\n"),
        "line 2: egress[0].name: \"exchange rates\" is not a valid rule name: use 1 to 64 \
         letters, digits, '-' and '_', such as \"exchange-rates\""
    );
}

#[test]
fn egress_duplicate_name() {
    let text = format!("{RULE}[[egress]]\nname = \"rates\"\nhost = \"b.example.com\"\n");
    assert_eq!(
        only_problem(&text),
        "line 6: egress[1].name: \"rates\" is used by an earlier rule; give each rule a \
         unique name"
    );
}

#[test]
fn egress_host_patterns() {
    let cases = [
        (
            "*",
            "\"*\" may use '*' only as the whole first label, as in \"*.example.com\"; it \
             matches any subdomain",
        ),
        (
            "*.com",
            "\"*.com\" is too broad: a wildcard needs at least two labels after it, as in \
             \"*.example.com\"",
        ),
        (
            "api.*.example.com",
            "\"api.*.example.com\" may use '*' only as the whole first label, as in \
             \"*.example.com\"; it matches any subdomain",
        ),
        (
            "*api.example.com",
            "\"*api.example.com\" may use '*' only as the whole first label, as in \
             \"*.example.com\"; it matches any subdomain",
        ),
        (
            "https://api.example.com",
            "\"https://api.example.com\" is a URL: write the host name alone, such as \
             \"api.example.com\", and set scheme, port and paths in their own keys",
        ),
        (
            "api.example.com:8443",
            "\"api.example.com:8443\" contains a port: write the host name alone and set \
             port = 8443",
        ),
        (
            "API.example.com",
            "\"API.example.com\" must be lowercase: write \"api.example.com\"",
        ),
        (
            "api_example.com",
            "\"api_example.com\" is not a valid host name: use lowercase letters, digits, '-' \
             and dots, such as \"api.example.com\"",
        ),
        (
            "",
            "\"\" is empty: name a host, such as \"api.example.com\"",
        ),
    ];
    for (host, message) in cases {
        let text = format!("[[egress]]\nname = \"rates\"\nhost = {host:?}\n");
        assert_eq!(
            only_problem(&text),
            format!("line 3: egress[0].host: {message}"),
            "host {host:?}"
        );
    }
}

#[test]
fn egress_port_zero() {
    assert_eq!(
        only_problem(&egress("port = 0\n")),
        "line 4: egress[0].port: must be between 1 and 65535; remove the key to use the \
         scheme's port (443 or 80)"
    );
}

#[test]
fn egress_port_too_large() {
    assert_syntax_error(
        &egress("port = 70000\n"),
        4,
        "invalid value: integer `70000`, expected u16",
    );
}

#[test]
fn egress_lowercase_method() {
    assert_eq!(
        only_problem(&egress("methods = [\"GET\", \"post\"]\n")),
        "line 4: egress[0].methods[1]: \"post\" must be upper case, as HTTP methods are \
         case-sensitive: write \"POST\""
    );
}

#[test]
fn egress_connect_method() {
    assert_eq!(
        only_problem(&egress("methods = [\"CONNECT\"]\n")),
        "line 4: egress[0].methods[0]: \"CONNECT\" cannot be allowed: CONNECT opens a tunnel \
         the gate cannot inspect and TRACE echoes injected secrets back; remove it"
    );
}

#[test]
fn egress_method_not_a_token() {
    assert_eq!(
        only_problem(&egress("methods = [\"GET /\"]\n")),
        "line 4: egress[0].methods[0]: \"GET /\" is not an HTTP method: use a name such as \
         \"GET\" or \"POST\""
    );
}

#[test]
fn egress_path_without_slash() {
    assert_eq!(
        only_problem(&egress("paths = [\"v1/\"]\n")),
        "line 4: egress[0].paths[0]: \"v1/\" must start with '/', such as \"/v1/\""
    );
}

#[test]
fn egress_path_dot_segment() {
    assert_eq!(
        only_problem(&egress("paths = [\"/v1/\", \"/v1/../admin\"]\n")),
        "line 4: egress[0].paths[1]: \"/v1/../admin\" must not contain \".\" or \"..\" \
         segments: write the path the server sees, such as \"/v1/\""
    );
}

#[test]
fn egress_path_query() {
    assert_eq!(
        only_problem(&egress("paths = [\"/v1?key=1\"]\n")),
        "line 4: egress[0].paths[0]: \"/v1?key=1\" must not contain '?' or '#': the gate \
         matches the path only, without query or fragment"
    );
}

#[test]
fn egress_zero_request_budget() {
    assert_eq!(
        only_problem(&egress("max_requests = 0\n")),
        "line 4: egress[0].max_requests: must be greater than zero, such as 100; remove the \
         rule to allow no requests"
    );
}

#[test]
fn egress_zero_byte_budgets() {
    for key in ["max_bytes", "max_request_bytes", "max_response_bytes"] {
        assert_eq!(
            only_problem(&egress(&format!("{key} = \"0MiB\"\n"))),
            format!(
                "line 4: egress[0].{key}: must be greater than zero, such as \"10MiB\"; remove \
                 the key for no cap"
            ),
        );
    }
}

#[test]
fn egress_zero_timeout() {
    assert_eq!(
        only_problem(&egress("timeout = 0\n")),
        "line 4: egress[0].timeout: must be greater than zero, such as \"10s\""
    );
}

#[test]
fn egress_unknown_scheme() {
    assert_syntax_error(
        &egress("scheme = \"ftp\"\n"),
        4,
        "unknown variant `ftp`, expected `https` or `http`",
    );
}

#[test]
fn egress_unknown_key() {
    assert_syntax_error(
        &egress("method = [\"GET\"]\n"),
        4,
        "unknown field `method`, expected one of `name`, `scheme`, `host`, `port`, \
         `methods`, `paths`, `allow_private_addresses`, `max_requests`, `max_bytes`, \
         `max_response_bytes`, `max_request_bytes`, `timeout`",
    );
}

// Python.

#[test]
fn python_module_not_baked() {
    assert_eq!(
        only_problem("[python]\nmodules = [\"json\", \"numpy\"]\n"),
        "line 2: python.modules[1]: \"numpy\" is not baked into the Python guest, so it \
         cannot be allowed; `moat policy explain` lists the baked modules"
    );
}

#[test]
fn python_modules_not_a_list() {
    assert_syntax_error(
        "[python]\nmodules = \"json\"\n",
        2,
        "invalid type: string \"json\", expected a sequence",
    );
}

// Secrets.

fn secret(fields: &str) -> String {
    format!("{RULE}[[secrets]]\nname = \"token\"\n{fields}")
}

#[test]
fn secret_without_source() {
    assert_eq!(
        only_problem(&secret("rule = \"rates\"\nheader = \"Authorization\"\n")),
        "line 5: secrets[0]: has no source: set env = \"VARIABLE\" or file = \"path\""
    );
}

#[test]
fn secret_with_two_sources() {
    let text = secret(
        "env = \"TOKEN\"\nfile = \"token.txt\"\nrule = \"rates\"\nheader = \"Authorization\"\n",
    );
    assert_eq!(
        only_problem(&text),
        "line 8: secrets[0].file: is set together with env: a secret has one source, so \
         remove env or file"
    );
}

#[test]
fn secret_invalid_env_name() {
    let text = secret("env = \"MY-TOKEN\"\nrule = \"rates\"\nheader = \"Authorization\"\n");
    assert_eq!(
        only_problem(&text),
        "line 7: secrets[0].env: \"MY-TOKEN\" is not an environment variable name: use \
         letters, digits and '_', such as \"RATES_TOKEN\""
    );
}

#[test]
fn secret_unknown_rule() {
    let text = secret("env = \"TOKEN\"\nrule = \"rate\"\nheader = \"Authorization\"\n");
    assert_eq!(
        only_problem(&text),
        "line 8: secrets[0].rule: \"rate\" is not the name of an egress rule in this policy; \
         use one of: \"rates\""
    );
}

#[test]
fn secret_rule_without_egress() {
    let text =
        "[[secrets]]\nname = \"token\"\nenv = \"TOKEN\"\nrule = \"rates\"\nheader = \"X-Key\"\n";
    assert_eq!(
        only_problem(text),
        "line 4: secrets[0].rule: \"rates\" is not the name of an egress rule in this policy; \
         use one of: none, because the policy has no [[egress]] rules"
    );
}

#[test]
fn secret_bad_header() {
    let text = secret("env = \"TOKEN\"\nrule = \"rates\"\nheader = \"Authorization:\"\n");
    assert_eq!(
        only_problem(&text),
        "line 9: secrets[0].header: \"Authorization:\" is not a valid header name: use \
         letters, digits and '-', such as \"Authorization\""
    );
}

#[test]
fn secret_reserved_header() {
    let text = secret("env = \"TOKEN\"\nrule = \"rates\"\nheader = \"Host\"\n");
    assert_eq!(
        only_problem(&text),
        "line 9: secrets[0].header: \"Host\" is set by the gate itself, so a secret cannot be \
         written into it; use a header such as \"Authorization\""
    );
}

#[test]
fn secret_header_taken() {
    let text = format!(
        "{}\n[[secrets]]\nname = \"other\"\nenv = \"OTHER\"\nrule = \"rates\"\nheader = \"authorization\"\n",
        secret("env = \"TOKEN\"\nrule = \"rates\"\nheader = \"Authorization\"\n")
    );
    assert_eq!(
        only_problem(&text),
        "line 15: secrets[1].header: \"authorization\" on rule \"rates\" is already written by \
         secret \"token\"; bind each header of a rule to one secret"
    );
}

#[test]
fn secret_format_without_placeholder() {
    let text = secret(
        "env = \"TOKEN\"\nrule = \"rates\"\nheader = \"Authorization\"\nformat = \"Bearer\"\n",
    );
    assert_eq!(
        only_problem(&text),
        "line 10: secrets[0].format: must contain \"{value}\" exactly once, such as \
         \"Bearer {value}\""
    );
}

#[test]
fn secret_format_with_line_break() {
    let text = secret(
        "env = \"TOKEN\"\nrule = \"rates\"\nheader = \"Authorization\"\n\
         format = \"Bearer {value}\\r\\nX-Forwarded-For: 10.0.0.1\"\n",
    );
    assert_eq!(
        only_problem(&text),
        "line 10: secrets[0].format: must not contain control characters such as line \
         breaks, which would end the header early"
    );
}

#[test]
fn secret_missing_header() {
    assert_syntax_error(
        &secret("env = \"TOKEN\"\nrule = \"rates\"\n"),
        5,
        "missing field `header`",
    );
}

// Sessions.

#[test]
fn sessions_zero_idle_timeout() {
    assert_eq!(
        only_problem("[sessions]\nidle_timeout = \"0s\"\n"),
        "line 2: sessions.idle_timeout: must be greater than zero, such as \"15m\""
    );
}

#[test]
fn sessions_zero_max_sessions() {
    assert_eq!(
        only_problem("[sessions]\nmax_sessions = 0\n"),
        "line 2: sessions.max_sessions: must be greater than zero, such as 16"
    );
}

#[test]
fn sessions_idle_longer_than_lifetime() {
    assert_eq!(
        only_problem("[sessions]\nidle_timeout = \"2h\"\nmax_lifetime = \"1h\"\n"),
        "line 2: sessions.idle_timeout: \"2h\" is longer than the maximum lifetime of \"1h\", \
         so it never applies; lower idle_timeout or raise max_lifetime"
    );
}

#[test]
fn sessions_negative_count() {
    assert_syntax_error(
        "[sessions]\nmax_sessions = -1\n",
        2,
        "invalid value: integer `-1`, expected u32",
    );
}

// Audit.

#[test]
fn audit_unknown_capture_level() {
    assert_syntax_error(
        "[audit]\ncapture = \"everything\"\n",
        2,
        "unknown variant `everything`, expected one of `full`, `truncated`, `hashes`",
    );
}

// Every problem is reported, not only the first.

#[test]
fn all_problems_reported() {
    let text = "[limits.default]\ntimeout = \"0s\"\n\n[[egress]]\nname = \"a b\"\nhost = \"*\"\nport = 0\n";
    let error = Policy::parse(text, Path::new("test.toml")).expect_err("invalid");
    let PolicyError::Invalid { problems, .. } = &error else {
        panic!("expected validation problems, got: {error}");
    };
    let paths: Vec<(Option<usize>, &str)> = problems
        .iter()
        .map(|located| (located.line, located.problem.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            (Some(2), "limits.default.timeout"),
            (Some(5), "egress[0].name"),
            (Some(6), "egress[0].host"),
            (Some(7), "egress[0].port"),
        ]
    );
}
