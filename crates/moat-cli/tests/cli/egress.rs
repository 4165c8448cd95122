//! `moat run --policy` with egress rules, `--resolve` and a secret from the
//! environment, against a real HTTP server on 127.0.0.1.

use std::path::{Path, PathBuf};

use crate::support::{finish, json, moat_python, script, tempdir};

// The server uses only the standard library, so the e2e tests and these
// share one file.
#[allow(dead_code)]
#[path = "../../../../tests/e2e/http_server.rs"]
mod http_server;

use http_server::TestServer;

/// Environment variable that carries the secret, set only on the child.
const SECRET_VARIABLE: &str = "MOAT_CLI_TEST_API_KEY";

/// Secret value; unusual enough that it cannot appear in output by chance.
const SECRET_VALUE: &str = "sk-cli-test-J4w8Nq2Tz6";

/// Writes a policy that allows GET to api.test on `port`, with loopback
/// allowed and the secret `api_key` sent as `Authorization: Bearer ...`.
fn write_policy(dir: &Path, port: u16) -> PathBuf {
    let policy = format!(
        r#"
[[egress]]
name = "api"
scheme = "http"
host = "api.test"
port = {port}
methods = ["GET"]
allow_private_addresses = true
timeout = "10s"

[[secrets]]
name = "api_key"
env = "{SECRET_VARIABLE}"
rule = "api"
header = "Authorization"
format = "Bearer {{value}}"
"#
    );
    let path = dir.join("policy.toml");
    std::fs::write(&path, policy).expect("write the policy");
    path
}

const SCRIPT: &str = r#"
import os
import urllib.error
import urllib.request

print("environment:", dict(os.environ))
with urllib.request.urlopen(BASE + "/echo") as response:
    print(response.status)
    print(response.read().decode())
try:
    urllib.request.urlopen(BASE.replace("api.test", "evil.test") + "/hello")
except urllib.error.URLError as error:
    print("denied:", error.reason)
"#;

#[test]
fn run_with_policy_and_secret() {
    let server = TestServer::start();
    let port = server.port();
    let dir = tempdir();
    let policy = write_policy(dir.path(), port);
    let code = format!("BASE = 'http://api.test:{port}'\n{SCRIPT}");
    let path = script(dir.path(), "egress.py", code);

    let finished = finish(
        moat_python()
            .arg("run")
            .arg("--policy")
            .arg(&policy)
            .arg("--resolve")
            .arg(format!("api.test:{port}:127.0.0.1"))
            .arg(&path)
            .arg("--json")
            .env(SECRET_VARIABLE, SECRET_VALUE),
    );

    assert_eq!(finished.code, 0, "{finished:#?}");
    assert!(
        !finished.stdout.contains(SECRET_VALUE),
        "the report leaks the secret: {}",
        finished.stdout
    );
    assert!(
        !finished.stderr.contains(SECRET_VALUE),
        "stderr leaks the secret: {}",
        finished.stderr
    );
    let report = json(&finished);
    let output = report["stdout"].as_str().expect("stdout is text");
    assert!(
        output.contains("authorization: Bearer [REDACTED:api_key]"),
        "the echoed header is not redacted in place: {output}"
    );
    assert!(
        output.contains("denied: request denied by policy: no egress rule allows host evil.test"),
        "{output}"
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].target, "/echo");
    assert_eq!(
        requests[0].header_values("authorization"),
        [format!("Bearer {SECRET_VALUE}")]
    );

    let events = report["egress"].as_array().expect("egress is an array");
    assert_eq!(events.len(), 2, "{report:#}");
    let allowed = &events[0];
    assert_eq!(allowed["decision"], "allowed");
    assert_eq!(allowed["method"], "GET");
    assert_eq!(allowed["url"], format!("http://api.test:{port}/echo"));
    assert_eq!(allowed["rule"], "api");
    assert_eq!(allowed["status"], 200);
    assert_eq!(allowed["address"], format!("127.0.0.1:{port}"));
    assert_eq!(allowed["secrets_injected"], serde_json::json!(["api_key"]));
    let denied = &events[1];
    assert_eq!(denied["decision"], "denied");
    assert_eq!(denied["url"], format!("http://evil.test:{port}/hello"));
    assert_eq!(denied["rule"], serde_json::Value::Null);
    assert_eq!(
        denied["reason"],
        "request denied by policy: no egress rule allows host evil.test"
    );
}

#[test]
fn missing_secret_variable_fails() {
    let server = TestServer::start();
    let port = server.port();
    let dir = tempdir();
    let policy = write_policy(dir.path(), port);
    let code = format!("BASE = 'http://api.test:{port}'\n{SCRIPT}");
    let path = script(dir.path(), "egress.py", code);

    let finished = finish(
        moat_python()
            .arg("run")
            .arg("--policy")
            .arg(&policy)
            .arg("--resolve")
            .arg(format!("api.test:{port}:127.0.0.1"))
            .arg(&path)
            .env_remove(SECRET_VARIABLE),
    );

    assert_eq!(finished.code, 125, "{finished:#?}");
    assert!(
        finished.stderr.contains(&format!(
            "environment variable {SECRET_VARIABLE} is not set"
        )),
        "{finished:#?}"
    );
    assert_eq!(finished.stdout, "", "{finished:#?}");
    assert_eq!(server.connections(), 0, "{:#?}", server.requests());
}
