//! The egress gate with the real guests against real HTTP servers on
//! 127.0.0.1: allow-list, redirects, special addresses, URL tricks, size,
//! time and request budgets, secret injection and the event log.
//!
//! Every server here listens on loopback. Names pinned to non-loopback
//! special addresses (169.254.169.254, 10.0.0.1) appear only in tests that
//! expect the gate to reject them before it connects. Those tests first
//! check that `special_range` classifies the address, and their rules have
//! a short timeout.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use moat_egress::{
    Decision, EgressEvent, Gate, GateConfig, ResolveOverride, RunGate, Secret, special_range,
};
use moat_policy::{ByteSize, EgressRule, HumanDuration, Scheme, SecretRule};
use moat_runtime::{Language, Outcome, RunReport};

use crate::http_server::{TestServer, percent_encode};
use crate::support::{assert_ok, assert_outcome, sandbox, stderr, stdout, timeout_limits};

/// Secret value used by the injection tests; long and unusual enough that
/// it cannot appear in any output by chance.
const SECRET_VALUE: &str = "sk-moat-test-7Qx93vLp2Rz";

/// Python helpers prepended to every Python script. Each call returns one
/// line: the status and body, or how the request failed.
const PYTHON_HELPERS: &str = r#"
import os
import sys
import urllib.error
import urllib.request

import requests


def urllib_call(url, method="GET", data=None, headers=None):
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request) as response:
            return f"{response.status} {response.read().decode()}"
    except urllib.error.HTTPError as error:
        return f"http error {error.code}"
    except urllib.error.URLError as error:
        kind = getattr(error, "kind", None) or getattr(error.reason, "kind", None)
        permission = isinstance(error, PermissionError)
        timeout = isinstance(error.reason, TimeoutError)
        return f"URLError permission={permission} timeout={timeout} {kind}: {error.reason}"


def requests_call(url, method="GET", **kwargs):
    try:
        response = requests.request(method, url, **kwargs)
        return f"{response.status_code} {response.text}"
    except requests.exceptions.RequestException as error:
        permission = isinstance(error, PermissionError)
        timeout = isinstance(error, requests.exceptions.Timeout)
        return f"{type(error).__name__} permission={permission} timeout={timeout}: {error}"
"#;

/// JavaScript helper prepended to every JavaScript script, the counterpart
/// of the Python helpers.
const JAVASCRIPT_HELPERS: &str = r#"
async function attempt(url, init) {
  try {
    const response = await fetch(url, init);
    return `${response.status} ${await response.text()}`;
  } catch (error) {
    return `${error.name} ${error.code}: ${error.message}`;
  }
}
"#;

/// Builds a rule named `name` for plain HTTP to `host` on `port`, allowing
/// loopback because every test server listens there.
fn rule(name: &str, host: &str, port: u16) -> EgressRule {
    EgressRule {
        name: name.to_owned(),
        scheme: Scheme::Http,
        host: host.to_owned(),
        port: Some(port),
        methods: Vec::new(),
        paths: Vec::new(),
        allow_private_addresses: true,
        max_requests: None,
        max_bytes: None,
        max_response_bytes: None,
        max_request_bytes: None,
        timeout: Some(HumanDuration(Duration::from_secs(10))),
    }
}

/// Builds the rule most tests use: `api` for `api.test` on the server's port.
fn api_rule(server: &TestServer) -> EgressRule {
    rule("api", "api.test", server.port())
}

/// Builds a rule for a name pinned to a special address that must never be
/// reached, so private addresses are not allowed and the timeout is short.
fn guarded_rule(name: &str, host: &str, port: u16) -> EgressRule {
    EgressRule {
        allow_private_addresses: false,
        timeout: Some(HumanDuration(Duration::from_millis(300))),
        ..rule(name, host, port)
    }
}

/// Pins `host:port` to `address`, as `--resolve` does.
fn pin(host: &str, port: u16, address: &str) -> ResolveOverride {
    ResolveOverride {
        host: host.to_owned(),
        port,
        addresses: vec![address.parse().expect("a valid IP address")],
    }
}

/// Pins `api.test` and `evil.test` on the server's port to 127.0.0.1, so
/// that even a request the gate wrongly lets through can only reach the
/// test server, which records it.
fn loopback_pins(server: &TestServer) -> Vec<ResolveOverride> {
    vec![
        pin("api.test", server.port(), "127.0.0.1"),
        pin("evil.test", server.port(), "127.0.0.1"),
    ]
}

/// Builds the secret `api_key` for rule `api`, sent as
/// `Authorization: Bearer ...`.
fn api_secret() -> Secret {
    let rule = SecretRule {
        name: "api_key".to_owned(),
        env: None,
        file: None,
        rule: "api".to_owned(),
        header: "Authorization".to_owned(),
        format: Some("Bearer {value}".to_owned()),
    };
    Secret::new(&rule, SECRET_VALUE.to_owned()).expect("a valid secret")
}

/// Creates a fresh per-run gate over `rules`, `secrets` and `pins`.
fn run_gate(
    rules: Vec<EgressRule>,
    secrets: Vec<Secret>,
    pins: Vec<ResolveOverride>,
) -> Arc<RunGate> {
    Gate::new(GateConfig {
        rules,
        secrets,
        resolve: pins,
    })
    .for_run()
}

/// Runs `code` in a fresh sandbox whose requests go through `gate`, after
/// the language's helpers and a `BASE` constant for `http://api.test:PORT`.
async fn run_through(language: Language, gate: &Arc<RunGate>, port: u16, code: &str) -> RunReport {
    let code = match language {
        Language::Python => format!("{PYTHON_HELPERS}\nBASE = 'http://api.test:{port}'\n{code}"),
        Language::JavaScript => {
            format!("{JAVASCRIPT_HELPERS}\nconst BASE = 'http://api.test:{port}';\n{code}")
        }
    };
    let mut scratch = sandbox(language);
    scratch.sandbox.set_network(gate.clone());
    scratch.run(&code).await
}

async fn python_through(gate: &Arc<RunGate>, port: u16, code: &str) -> RunReport {
    run_through(Language::Python, gate, port, code).await
}

async fn javascript_through(gate: &Arc<RunGate>, port: u16, code: &str) -> RunReport {
    run_through(Language::JavaScript, gate, port, code).await
}

/// Returns stdout as lines, after checking that the run ended normally.
#[track_caller]
fn ok_lines(report: &RunReport) -> Vec<String> {
    assert_ok(report);
    stdout(report).lines().map(str::to_owned).collect()
}

/// Fails the test if the server saw any connection at all.
#[track_caller]
fn assert_untouched(server: &TestServer) {
    assert_eq!(
        server.connections(),
        0,
        "the server was contacted: {:#?}",
        server.requests()
    );
}

fn denied_host(host: &str) -> String {
    format!("request denied by policy: no egress rule allows host {host}")
}

fn private_denial(host: &str, address: &str, range: &str, rule: &str) -> String {
    format!(
        "request denied by policy: {host} resolves to {address}, {range}; egress rule \"{rule}\" \
         does not allow such addresses (allow_private_addresses = true would)"
    )
}

// --- allowed requests ---------------------------------------------------

#[tokio::test]
async fn urllib_allowed_host() {
    let server = TestServer::start();
    let gate = run_gate(vec![api_rule(&server)], vec![], loopback_pins(&server));
    let code = r#"
with urllib.request.urlopen(BASE + "/hello") as response:
    print(response.status)
    print(response.read().decode())
    print(response.headers["X-Test"])
    print(response.url)
"#;

    let report = python_through(&gate, server.port(), code).await;

    let port = server.port();
    assert_eq!(
        ok_lines(&report),
        [
            "200",
            "hello from the test server",
            "hello-header",
            &format!("http://api.test:{port}/hello"),
        ]
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].target, "/hello");
    assert_eq!(
        requests[0].header("host"),
        Some(format!("api.test:{port}").as_str())
    );
}

#[tokio::test]
async fn requests_allowed_host() {
    let server = TestServer::start();
    let gate = run_gate(vec![api_rule(&server)], vec![], loopback_pins(&server));
    let code = r#"
response = requests.get(BASE + "/hello", headers={"X-From-Guest": "requests"})
print(response.status_code)
print(response.text)
print(response.headers["x-test"])
print(response.ok)
"#;

    let report = python_through(&gate, server.port(), code).await;

    assert_eq!(
        ok_lines(&report),
        ["200", "hello from the test server", "hello-header", "True"]
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].target, "/hello");
    assert_eq!(requests[0].header("x-from-guest"), Some("requests"));
}

#[tokio::test]
async fn fetch_allowed_host() {
    let server = TestServer::start();
    let gate = run_gate(vec![api_rule(&server)], vec![], loopback_pins(&server));
    let code = r#"
const response = await fetch(BASE + "/hello", { headers: { "X-From-Guest": "fetch" } });
console.log(response.status, response.ok, response.redirected);
console.log(await response.text());
console.log(response.headers.get("x-test"));
console.log(response.url);
"#;

    let report = javascript_through(&gate, server.port(), code).await;

    let port = server.port();
    assert_eq!(
        ok_lines(&report),
        [
            "200 true false",
            "hello from the test server",
            "hello-header",
            &format!("http://api.test:{port}/hello"),
        ]
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].target, "/hello");
    assert_eq!(requests[0].header("x-from-guest"), Some("fetch"));
}

// --- host, method and path refusals -------------------------------------

/// Builds a rule that allows only GET below /public/ on api.test.
fn public_get_rule(server: &TestServer) -> EgressRule {
    EgressRule {
        methods: vec!["GET".to_owned()],
        paths: vec!["/public/".to_owned()],
        ..api_rule(server)
    }
}

fn allow_list_denials() -> [String; 3] {
    [
        denied_host("evil.test"),
        "request denied by policy: egress rule \"api\" allows GET to api.test but not POST"
            .to_owned(),
        "request denied by policy: egress rule \"api\" allows paths /public/ on api.test but \
         not /private"
            .to_owned(),
    ]
}

#[tokio::test]
async fn urllib_allow_list_refusals() {
    let server = TestServer::start();
    let gate = run_gate(
        vec![public_get_rule(&server)],
        vec![],
        loopback_pins(&server),
    );
    let port = server.port();
    let code = format!(
        r#"
print(urllib_call("http://evil.test:{port}/public/x"))
print(urllib_call(BASE + "/public/x", method="POST", data=b"payload"))
print(urllib_call(BASE + "/private"))
"#
    );

    let report = python_through(&gate, port, &code).await;

    let [host, method, path] = allow_list_denials();
    assert_eq!(
        ok_lines(&report),
        [
            format!("URLError permission=True timeout=False denied: {host}"),
            format!("URLError permission=True timeout=False denied: {method}"),
            format!("URLError permission=True timeout=False denied: {path}"),
        ]
    );
    assert_untouched(&server);
}

#[tokio::test]
async fn requests_allow_list_refusals() {
    let server = TestServer::start();
    let gate = run_gate(
        vec![public_get_rule(&server)],
        vec![],
        loopback_pins(&server),
    );
    let port = server.port();
    let code = format!(
        r#"
print(requests_call("http://evil.test:{port}/public/x"))
print(requests_call(BASE + "/public/x", method="POST", data=b"payload"))
print(requests_call(BASE + "/private"))
"#
    );

    let report = python_through(&gate, port, &code).await;

    let [host, method, path] = allow_list_denials();
    assert_eq!(
        ok_lines(&report),
        [
            format!("_RequestsDenied permission=True timeout=False: {host}"),
            format!("_RequestsDenied permission=True timeout=False: {method}"),
            format!("_RequestsDenied permission=True timeout=False: {path}"),
        ]
    );
    assert_untouched(&server);
}

#[tokio::test]
async fn fetch_allow_list_refusals() {
    let server = TestServer::start();
    let gate = run_gate(
        vec![public_get_rule(&server)],
        vec![],
        loopback_pins(&server),
    );
    let port = server.port();
    let code = format!(
        r#"
console.log(await attempt("http://evil.test:{port}/public/x"));
console.log(await attempt(BASE + "/public/x", {{ method: "POST", body: "payload" }}));
console.log(await attempt(BASE + "/private"));
"#
    );

    let report = javascript_through(&gate, port, &code).await;

    let [host, method, path] = allow_list_denials();
    assert_eq!(
        ok_lines(&report),
        [
            format!("TypeError EGRESS_DENIED: {host}"),
            format!("TypeError EGRESS_DENIED: {method}"),
            format!("TypeError EGRESS_DENIED: {path}"),
        ]
    );
    assert_untouched(&server);
}

// --- redirects ----------------------------------------------------------

/// Builds a rule that allows GET and POST to /redirect, /hello, /echo and
/// /loop on api.test, and nothing else on it.
fn redirect_rule(server: &TestServer) -> EgressRule {
    EgressRule {
        methods: vec!["GET".to_owned(), "POST".to_owned()],
        paths: vec![
            "/redirect".to_owned(),
            "/hello".to_owned(),
            "/echo".to_owned(),
            "/loop".to_owned(),
        ],
        ..api_rule(server)
    }
}

fn redirect_path(to: &str) -> String {
    format!("/redirect?to={}", percent_encode(to))
}

fn redirect_path_denial(path: &str) -> String {
    format!(
        "request denied by policy: egress rule \"api\" allows paths /redirect, /hello, /echo, /loop \
         on api.test but not {path}"
    )
}

fn too_many_redirects() -> &'static str {
    "too many redirects: more than 10"
}

#[tokio::test]
async fn urllib_redirects() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(vec![redirect_rule(&server)], vec![], loopback_pins(&server));
    let to_rejected_path = redirect_path("/bytes/5");
    let to_rejected_host = redirect_path(&format!("http://evil.test:{port}/hello"));
    let to_ip_literal = redirect_path(&format!("http://127.0.0.1:{port}/hello"));
    let to_allowed = redirect_path("/hello");
    let code = format!(
        r#"
print(urllib_call(BASE + "{to_rejected_path}"))
print(urllib_call(BASE + "{to_rejected_host}"))
print(urllib_call(BASE + "{to_ip_literal}"))
print(urllib_call(BASE + "{to_allowed}"))
with urllib.request.urlopen(BASE + "{to_allowed}") as response:
    print(response.url)
print(urllib_call(BASE + "/loop"))
"#
    );

    let report = python_through(&gate, port, &code).await;

    assert_eq!(
        ok_lines(&report),
        [
            format!(
                "URLError permission=True timeout=False denied: {}",
                redirect_path_denial("/bytes/5")
            ),
            format!(
                "URLError permission=True timeout=False denied: {}",
                denied_host("evil.test")
            ),
            format!(
                "URLError permission=True timeout=False denied: {}",
                denied_host("127.0.0.1")
            ),
            "200 hello from the test server".to_owned(),
            format!("http://api.test:{port}/hello"),
            format!(
                "URLError permission=False timeout=False invalid_request: {}",
                too_many_redirects()
            ),
        ]
    );
    let mut expected = vec![
        to_rejected_path,
        to_rejected_host,
        to_ip_literal,
        to_allowed.clone(),
        "/hello".to_owned(),
        to_allowed,
        "/hello".to_owned(),
    ];
    expected.extend(std::iter::repeat_n("/loop".to_owned(), 11));
    assert_eq!(server.targets(), expected);
}

#[tokio::test]
async fn requests_redirects() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(vec![redirect_rule(&server)], vec![], loopback_pins(&server));
    let to_rejected_path = redirect_path("/bytes/5");
    let to_rejected_host = redirect_path(&format!("http://evil.test:{port}/hello"));
    let to_allowed = redirect_path("/hello");
    let code = format!(
        r#"
print(requests_call(BASE + "{to_rejected_path}"))
print(requests_call(BASE + "{to_rejected_host}"))
response = requests.get(BASE + "{to_allowed}")
print(response.status_code, response.text, response.url)
manual = requests.get(BASE + "{to_allowed}", allow_redirects=False)
print(manual.status_code, manual.headers["location"])
print(requests_call(BASE + "/loop"))
"#
    );

    let report = python_through(&gate, port, &code).await;

    assert_eq!(
        ok_lines(&report),
        [
            format!(
                "_RequestsDenied permission=True timeout=False: {}",
                redirect_path_denial("/bytes/5")
            ),
            format!(
                "_RequestsDenied permission=True timeout=False: {}",
                denied_host("evil.test")
            ),
            format!("200 hello from the test server http://api.test:{port}/hello"),
            "302 /hello".to_owned(),
            format!(
                "ConnectionError permission=False timeout=False: {}",
                too_many_redirects()
            ),
        ]
    );
    let mut expected = vec![
        to_rejected_path,
        to_rejected_host,
        to_allowed.clone(),
        "/hello".to_owned(),
        to_allowed,
    ];
    expected.extend(std::iter::repeat_n("/loop".to_owned(), 11));
    assert_eq!(server.targets(), expected);
}

#[tokio::test]
async fn fetch_redirects() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(vec![redirect_rule(&server)], vec![], loopback_pins(&server));
    let to_rejected_path = redirect_path("/bytes/5");
    let to_rejected_host = redirect_path(&format!("http://evil.test:{port}/hello"));
    let to_allowed = redirect_path("/hello");
    let code = format!(
        r#"
console.log(await attempt(BASE + "{to_rejected_path}"));
console.log(await attempt(BASE + "{to_rejected_host}"));
const response = await fetch(BASE + "{to_allowed}");
console.log(response.status, await response.text(), response.redirected, response.url);
const manual = await fetch(BASE + "{to_allowed}", {{ redirect: "manual" }});
console.log(manual.status, manual.headers.get("location"));
console.log(await attempt(BASE + "/loop"));
"#
    );

    let report = javascript_through(&gate, port, &code).await;

    assert_eq!(
        ok_lines(&report),
        [
            format!(
                "TypeError EGRESS_DENIED: {}",
                redirect_path_denial("/bytes/5")
            ),
            format!("TypeError EGRESS_DENIED: {}", denied_host("evil.test")),
            format!("200 hello from the test server true http://api.test:{port}/hello"),
            "302 /hello".to_owned(),
            format!("TypeError EGRESS_INVALID: {}", too_many_redirects()),
        ]
    );
    let mut expected = vec![
        to_rejected_path,
        to_rejected_host,
        to_allowed.clone(),
        "/hello".to_owned(),
        to_allowed,
    ];
    expected.extend(std::iter::repeat_n("/loop".to_owned(), 11));
    assert_eq!(server.targets(), expected);
}

#[tokio::test]
async fn redirect_status_sets_method() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(vec![redirect_rule(&server)], vec![], loopback_pins(&server));
    let keep = format!("/redirect?status=307&to={}", percent_encode("/echo/307"));
    let change = format!("/redirect?status=303&to={}", percent_encode("/echo/303"));
    let code = format!(
        r#"
for path in ["{keep}", "{change}"]:
    response = requests.post(BASE + path, data=b"the body")
    print(response.status_code, response.text.splitlines()[0])
"#
    );

    let report = python_through(&gate, port, &code).await;

    assert_eq!(
        ok_lines(&report),
        ["200 POST /echo/307", "200 GET /echo/303"]
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    assert_eq!(requests[1].target, "/echo/307");
    assert_eq!(requests[1].body, b"the body");
    assert_eq!(requests[3].target, "/echo/303");
    assert_eq!(requests[3].method, "GET");
    assert!(requests[3].body.is_empty(), "{:#?}", requests[3]);
}

// --- special addresses --------------------------------------------------

/// Names under `*.internal.test` pinned to special addresses, with the
/// range each one falls in. Only the loopback ones may ever be connected
/// to, and only when a test allows private addresses.
const SPECIAL_PINS: [(&str, &str, &str); 4] = [
    ("loopback", "127.0.0.1", "a loopback address (127.0.0.0/8)"),
    (
        "metadata",
        "169.254.169.254",
        "the cloud metadata address (169.254.169.254)",
    ),
    (
        "mapped",
        "::ffff:127.0.0.1",
        "a loopback address (127.0.0.0/8)",
    ),
    (
        "private",
        "10.0.0.1",
        "a private address (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)",
    ),
];

#[tokio::test]
async fn special_addresses_rejected() {
    let server = TestServer::start();
    let port = server.port();
    let mut pins = Vec::new();
    for (label, address, _) in SPECIAL_PINS {
        // Guard: if the classification were broken, the gate could
        // connect to a non-loopback address, so stop before any request.
        let ip: IpAddr = address.parse().expect("a valid IP address");
        assert!(
            special_range(ip).is_some(),
            "{address} is not classified as special"
        );
        pins.push(pin(&format!("{label}.internal.test"), port, address));
    }
    let gate = run_gate(
        vec![guarded_rule("internal", "*.internal.test", port)],
        vec![],
        pins,
    );
    let code = format!(
        r#"
for label in ["loopback", "metadata", "mapped", "private"]:
    print(urllib_call(f"http://{{label}}.internal.test:{port}/hello"))
for label in ["loopback", "metadata", "mapped", "private"]:
    print(requests_call(f"http://{{label}}.internal.test:{port}/hello"))
"#
    );

    let report = python_through(&gate, port, &code).await;

    let messages: Vec<String> = SPECIAL_PINS
        .iter()
        .map(|(label, address, range)| {
            private_denial(
                &format!("{label}.internal.test"),
                address,
                range,
                "internal",
            )
        })
        .collect();
    let mut expected: Vec<String> = messages
        .iter()
        .map(|message| format!("URLError permission=True timeout=False denied: {message}"))
        .collect();
    expected.extend(
        messages
            .iter()
            .map(|message| format!("_RequestsDenied permission=True timeout=False: {message}")),
    );
    assert_eq!(ok_lines(&report), expected);
    assert_untouched(&server);

    let events = gate.events();
    assert_eq!(events.len(), 8, "{events:#?}");
    for event in &events {
        assert_eq!(event.decision, Decision::Denied, "{event:#?}");
        assert_eq!(event.rule.as_deref(), Some("internal"), "{event:#?}");
        assert_eq!(event.address, None, "{event:#?}");
    }
}

#[tokio::test]
async fn fetch_special_addresses_rejected() {
    let server = TestServer::start();
    let port = server.port();
    let mut pins = Vec::new();
    for (label, address, _) in SPECIAL_PINS {
        let ip: IpAddr = address.parse().expect("a valid IP address");
        assert!(
            special_range(ip).is_some(),
            "{address} is not classified as special"
        );
        pins.push(pin(&format!("{label}.internal.test"), port, address));
    }
    let gate = run_gate(
        vec![guarded_rule("internal", "*.internal.test", port)],
        vec![],
        pins,
    );
    let code = format!(
        r#"
for (const label of ["loopback", "metadata", "mapped", "private"]) {{
  console.log(await attempt(`http://${{label}}.internal.test:{port}/hello`));
}}
"#
    );

    let report = javascript_through(&gate, port, &code).await;

    let expected: Vec<String> = SPECIAL_PINS
        .iter()
        .map(|(label, address, range)| {
            let message = private_denial(
                &format!("{label}.internal.test"),
                address,
                range,
                "internal",
            );
            format!("TypeError EGRESS_DENIED: {message}")
        })
        .collect();
    assert_eq!(ok_lines(&report), expected);
    assert_untouched(&server);
}

#[tokio::test]
async fn loopback_allowed_when_rule_allows_private() {
    let server = TestServer::start();
    let port = server.port();
    let pins = vec![
        pin("loopback.internal.test", port, "127.0.0.1"),
        pin("mapped.internal.test", port, "::ffff:127.0.0.1"),
    ];
    let gate = run_gate(
        vec![rule("internal", "*.internal.test", port)],
        vec![],
        pins,
    );
    let code = format!(
        r#"
print(urllib_call("http://loopback.internal.test:{port}/hello"))
print(urllib_call("http://mapped.internal.test:{port}/hello"))
"#
    );

    let report = python_through(&gate, port, &code).await;

    assert_eq!(
        ok_lines(&report),
        [
            "200 hello from the test server",
            "200 hello from the test server"
        ]
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(
        requests[0].header("host"),
        Some(format!("loopback.internal.test:{port}").as_str())
    );
    assert_eq!(
        requests[1].header("host"),
        Some(format!("mapped.internal.test:{port}").as_str())
    );
    let addresses: Vec<Option<String>> = gate.events().into_iter().map(|e| e.address).collect();
    assert_eq!(
        addresses,
        [
            Some(format!("127.0.0.1:{port}")),
            Some(format!("[::ffff:127.0.0.1]:{port}")),
        ]
    );
}

// --- URL tricks ---------------------------------------------------------

/// Other spellings of 127.0.0.1 that the WHATWG URL parser accepts.
fn loopback_spellings(port: u16) -> [String; 4] {
    [
        format!("http://2130706433:{port}/hello"),
        format!("http://0x7f000001:{port}/hello"),
        format!("http://0177.0.0.1:{port}/hello"),
        format!("http://127.1:{port}/hello"),
    ]
}

fn python_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

#[tokio::test]
async fn ipv4_spellings_rejected_by_host() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(vec![api_rule(&server)], vec![], loopback_pins(&server));
    let urls = python_list(&loopback_spellings(port));
    let code = format!(
        r#"
for url in {urls}:
    print(urllib_call(url))
for url in {urls}:
    print(requests_call(url))
"#
    );

    let report = python_through(&gate, port, &code).await;

    let message = denied_host("127.0.0.1");
    let mut expected = vec![format!("URLError permission=True timeout=False denied: {message}"); 4];
    expected.extend(vec![
        format!(
            "_RequestsDenied permission=True timeout=False: {message}"
        );
        4
    ]);
    assert_eq!(ok_lines(&report), expected);
    assert_untouched(&server);
}

#[tokio::test]
async fn ipv4_spellings_rejected_as_loopback() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(
        vec![guarded_rule("loopback", "127.0.0.1", port)],
        vec![],
        vec![],
    );
    let urls = python_list(&loopback_spellings(port));
    let code = format!(
        r#"
for url in {urls}:
    print(urllib_call(url))
"#
    );

    let report = python_through(&gate, port, &code).await;

    let message = private_denial(
        "127.0.0.1",
        "127.0.0.1",
        "a loopback address (127.0.0.0/8)",
        "loopback",
    );
    assert_eq!(
        ok_lines(&report),
        vec![format!("URLError permission=True timeout=False denied: {message}"); 4]
    );
    assert_untouched(&server);
}

#[tokio::test]
async fn ipv4_spellings_reach_loopback_rule() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(vec![rule("loopback", "127.0.0.1", port)], vec![], vec![]);
    let urls = python_list(&loopback_spellings(port));
    let code = format!(
        r#"
for url in {urls}:
    print(urllib_call(url))
"#
    );

    let report = python_through(&gate, port, &code).await;

    assert_eq!(ok_lines(&report), vec!["200 hello from the test server"; 4]);
    let requests = server.requests();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    for request in &requests {
        assert_eq!(
            request.header("host"),
            Some(format!("127.0.0.1:{port}").as_str()),
            "{request:#?}"
        );
    }
}

#[tokio::test]
async fn fetch_ipv4_spellings_rejected() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(vec![api_rule(&server)], vec![], loopback_pins(&server));
    let urls = python_list(&loopback_spellings(port));
    let code = format!(
        r#"
for (const url of {urls}) {{
  console.log(await attempt(url));
}}
"#
    );

    let report = javascript_through(&gate, port, &code).await;

    let message = denied_host("127.0.0.1");
    assert_eq!(
        ok_lines(&report),
        vec![format!("TypeError EGRESS_DENIED: {message}"); 4]
    );
    assert_untouched(&server);
}

fn credentials_rejection(url: &str) -> String {
    format!(
        "invalid URL {url:?}: URLs with credentials (user@host) are not allowed; the policy \
         injects credentials"
    )
}

#[tokio::test]
async fn urls_with_credentials_rejected() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(vec![api_rule(&server)], vec![], loopback_pins(&server));
    let user = format!("http://user@api.test:{port}/hello");
    let user_password = format!("http://user:pw@api.test:{port}/hello");
    let code = format!(
        r#"
print(urllib_call("{user}"))
print(urllib_call("{user_password}"))
print(requests_call("{user}"))
"#
    );

    let report = python_through(&gate, port, &code).await;

    assert_eq!(
        ok_lines(&report),
        [
            format!(
                "URLError permission=False timeout=False invalid_request: {}",
                credentials_rejection(&user)
            ),
            format!(
                "URLError permission=False timeout=False invalid_request: {}",
                credentials_rejection(&user_password)
            ),
            format!(
                "ConnectionError permission=False timeout=False: {}",
                credentials_rejection(&user)
            ),
        ]
    );
    assert_untouched(&server);
}

#[tokio::test]
async fn fetch_url_with_credentials_rejected() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(vec![api_rule(&server)], vec![], loopback_pins(&server));
    let url = format!("http://user:pw@api.test:{port}/hello");
    let code = format!("console.log(await attempt({url:?}));");

    let report = javascript_through(&gate, port, &code).await;

    assert_eq!(
        ok_lines(&report),
        [format!(
            "TypeError undefined: Request URL '{url}' includes credentials; send them in an \
             Authorization header instead"
        )]
    );
    assert_untouched(&server);
}

#[tokio::test]
async fn backslash_goes_to_checked_host() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(vec![api_rule(&server)], vec![], loopback_pins(&server));
    // WHATWG parsing treats `\` as `/`: the first URL is api.test with path
    // /@evil.test/echo, the second is evil.test, which no rule allows.
    let code = format!(
        r#"
print(urllib_call("http://api.test:{port}\\@evil.test/echo").splitlines()[0])
print(urllib_call("http://evil.test:{port}\\@api.test:{port}/echo"))
"#
    );

    let report = python_through(&gate, port, &code).await;

    assert_eq!(
        ok_lines(&report),
        [
            "200 GET /@evil.test/echo".to_owned(),
            format!(
                "URLError permission=True timeout=False denied: {}",
                denied_host("evil.test")
            ),
        ]
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].target, "/@evil.test/echo");
    assert_eq!(
        requests[0].header("host"),
        Some(format!("api.test:{port}").as_str())
    );
}

#[tokio::test]
async fn fetch_backslash_goes_to_checked_host() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(vec![api_rule(&server)], vec![], loopback_pins(&server));
    let code = format!(
        r#"
console.log((await attempt("http://api.test:{port}\\@evil.test/echo")).split("\n")[0]);
console.log(await attempt("http://evil.test:{port}\\@api.test:{port}/echo"));
"#
    );

    let report = javascript_through(&gate, port, &code).await;

    assert_eq!(
        ok_lines(&report),
        [
            "200 GET /@evil.test/echo".to_owned(),
            format!("TypeError EGRESS_DENIED: {}", denied_host("evil.test")),
        ]
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].target, "/@evil.test/echo");
    assert_eq!(
        requests[0].header("host"),
        Some(format!("api.test:{port}").as_str())
    );
}

// --- size and time limits -----------------------------------------------

/// Builds a rule for api.test with 1000-byte body limits, GET and POST
/// allowed.
fn size_limited_rule(server: &TestServer) -> EgressRule {
    EgressRule {
        methods: vec!["GET".to_owned(), "POST".to_owned()],
        max_response_bytes: Some(ByteSize(1000)),
        max_request_bytes: Some(ByteSize(1000)),
        ..api_rule(server)
    }
}

fn response_too_large() -> &'static str {
    "response from api.test is over the limit of 1000 bytes of egress rule \"api\""
}

fn request_too_large() -> &'static str {
    "request body of 1001 bytes is over the limit of 1000 bytes of egress rule \"api\""
}

#[tokio::test]
async fn python_size_limits() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(
        vec![size_limited_rule(&server)],
        vec![],
        loopback_pins(&server),
    );
    let code = r#"
print(len(urllib_call(BASE + "/bytes/1000")))
print(urllib_call(BASE + "/bytes/5000"))
print(requests_call(BASE + "/bytes/5000"))
print(urllib_call(BASE + "/bytes/3", method="POST", data=b"y" * 1000))
print(urllib_call(BASE + "/echo", method="POST", data=b"y" * 1001))
print(requests_call(BASE + "/echo", method="POST", data=b"y" * 1001))
"#;

    let report = python_through(&gate, port, code).await;

    assert_eq!(
        ok_lines(&report),
        [
            "1004".to_owned(),
            format!(
                "URLError permission=False timeout=False too_large: {}",
                response_too_large()
            ),
            format!(
                "ConnectionError permission=False timeout=False: {}",
                response_too_large()
            ),
            "200 xxx".to_owned(),
            format!(
                "URLError permission=False timeout=False too_large: {}",
                request_too_large()
            ),
            format!(
                "ConnectionError permission=False timeout=False: {}",
                request_too_large()
            ),
        ]
    );
    let requests = server.requests();
    assert_eq!(
        server.targets(),
        ["/bytes/1000", "/bytes/5000", "/bytes/5000", "/bytes/3"]
    );
    assert_eq!(requests[3].body.len(), 1000);
}

#[tokio::test]
async fn fetch_size_limits() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(
        vec![size_limited_rule(&server)],
        vec![],
        loopback_pins(&server),
    );
    let code = r#"
console.log(await attempt(BASE + "/bytes/5000"));
console.log(await attempt(BASE + "/echo", { method: "POST", body: "y".repeat(1001) }));
"#;

    let report = javascript_through(&gate, port, code).await;

    assert_eq!(
        ok_lines(&report),
        [
            format!("TypeError EGRESS_TOO_LARGE: {}", response_too_large()),
            format!("TypeError EGRESS_TOO_LARGE: {}", request_too_large()),
        ]
    );
    assert_eq!(server.targets(), ["/bytes/5000"]);
}

/// Builds a rule for api.test whose requests time out after 500 ms.
fn impatient_rule(server: &TestServer) -> EgressRule {
    EgressRule {
        timeout: Some(HumanDuration(Duration::from_millis(500))),
        ..api_rule(server)
    }
}

/// Generous bound on a run whose only slow step is one timed-out request:
/// the server would send its response after 10 s.
const TIMEOUT_RUN_BOUND: Duration = Duration::from_secs(6);

#[tokio::test]
async fn python_slow_server_times_out() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(
        vec![impatient_rule(&server)],
        vec![],
        loopback_pins(&server),
    );
    let code = r#"
for line in [urllib_call(BASE + "/slow/10000"), requests_call(BASE + "/slow/10000")]:
    print(line.split(": request to api.test failed")[0])
    print("request to api.test failed" in line)
"#;

    let report = python_through(&gate, port, code).await;

    assert_eq!(
        ok_lines(&report),
        [
            "URLError permission=False timeout=True timeout",
            "True",
            "Timeout permission=False timeout=True",
            "True",
        ]
    );
    assert!(
        report.duration < TIMEOUT_RUN_BOUND * 2,
        "two timed-out requests took {:?}",
        report.duration
    );
    let events = gate.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    for event in &events {
        assert_eq!(event.decision, Decision::Failed, "{event:#?}");
    }
}

#[tokio::test]
async fn fetch_slow_server_times_out() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(
        vec![impatient_rule(&server)],
        vec![],
        loopback_pins(&server),
    );
    let code = r#"
try {
  await fetch(BASE + "/slow/10000");
  console.log("no error");
} catch (error) {
  console.log(error.name, error.code, error.cause.kind);
  console.log(error.message.startsWith("request to api.test failed"));
}
"#;

    let report = javascript_through(&gate, port, code).await;

    assert_eq!(
        ok_lines(&report),
        ["TypeError EGRESS_TIMEOUT timeout", "true"]
    );
    assert!(
        report.duration < TIMEOUT_RUN_BOUND,
        "one timed-out request took {:?}",
        report.duration
    );
}

// --- request and byte budgets -------------------------------------------

#[tokio::test]
async fn request_budget_exhausted() {
    let server = TestServer::start();
    let port = server.port();
    let budget_rule = EgressRule {
        max_requests: Some(2),
        ..api_rule(&server)
    };
    let gate = run_gate(vec![budget_rule], vec![], loopback_pins(&server));
    let code = r#"
print(urllib_call(BASE + "/hello"))
print(requests_call(BASE + "/hello"))
print(urllib_call(BASE + "/hello"))
print(requests_call(BASE + "/hello"))
"#;

    let report = python_through(&gate, port, code).await;

    let message = "request budget of egress rule \"api\" is used up: 2 requests per run";
    assert_eq!(
        ok_lines(&report),
        [
            "200 hello from the test server".to_owned(),
            "200 hello from the test server".to_owned(),
            format!("URLError permission=False timeout=False budget_exhausted: {message}"),
            format!("ConnectionError permission=False timeout=False: {message}"),
        ]
    );
    assert_eq!(server.targets(), ["/hello", "/hello"]);
}

#[tokio::test]
async fn fetch_request_budget_exhausted() {
    let server = TestServer::start();
    let port = server.port();
    let budget_rule = EgressRule {
        max_requests: Some(2),
        ..api_rule(&server)
    };
    let gate = run_gate(vec![budget_rule], vec![], loopback_pins(&server));
    let code = r#"
for (let i = 0; i < 3; i++) console.log(await attempt(BASE + "/hello"));
"#;

    let report = javascript_through(&gate, port, code).await;

    assert_eq!(
        ok_lines(&report),
        [
            "200 hello from the test server",
            "200 hello from the test server",
            "TypeError EGRESS_BUDGET: request budget of egress rule \"api\" is used up: 2 requests per run",
        ]
    );
    assert_eq!(server.targets(), ["/hello", "/hello"]);
}

#[tokio::test]
async fn byte_budget_exhausted() {
    let server = TestServer::start();
    let port = server.port();
    let budget_rule = EgressRule {
        max_bytes: Some(ByteSize(100)),
        ..api_rule(&server)
    };
    let gate = run_gate(vec![budget_rule], vec![], loopback_pins(&server));
    // 60 bytes fit, the second 60 pass the budget once they arrive, and the
    // third request is rejected before it is sent.
    let code = r#"
print(len(urllib_call(BASE + "/bytes/60")))
print(urllib_call(BASE + "/bytes/60"))
print(urllib_call(BASE + "/bytes/60"))
"#;

    let report = python_through(&gate, port, code).await;

    let message = "byte budget of egress rule \"api\" is used up: 100 bytes per run";
    assert_eq!(
        ok_lines(&report),
        [
            "64".to_owned(),
            format!("URLError permission=False timeout=False budget_exhausted: {message}"),
            format!("URLError permission=False timeout=False budget_exhausted: {message}"),
        ]
    );
    assert_eq!(server.targets(), ["/bytes/60", "/bytes/60"]);
    let decisions: Vec<Decision> = gate.events().iter().map(|e| e.decision).collect();
    assert_eq!(
        decisions,
        [Decision::Allowed, Decision::Failed, Decision::Denied]
    );
}

// --- secrets ------------------------------------------------------------

/// Fails the test if the secret's value appears anywhere the guest's
/// output goes, or if no redaction marker does.
#[track_caller]
fn assert_secret_hidden(report: &RunReport) {
    let out = stdout(report);
    let err = stderr(report);
    assert!(
        !out.contains(SECRET_VALUE),
        "stdout leaks the secret: {out}"
    );
    assert!(
        !err.contains(SECRET_VALUE),
        "stderr leaks the secret: {err}"
    );
    if let Some(result) = &report.result {
        assert!(
            !result.contains(SECRET_VALUE),
            "the result leaks the secret: {result}"
        );
    }
    if let Some(error) = &report.error {
        assert!(
            !format!("{error:?}").contains(SECRET_VALUE),
            "the error leaks the secret: {error:?}"
        );
    }
    assert!(
        out.contains("[REDACTED:api_key]"),
        "no redaction marker in stdout: {out}"
    );
}

#[tokio::test]
async fn python_secret_injected_and_hidden() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(
        vec![api_rule(&server)],
        vec![api_secret()],
        loopback_pins(&server),
    );
    let code = r#"
print("environment:", dict(os.environ))
request = urllib.request.Request(BASE + "/echo", headers={"Authorization": "Bearer guest-token"})
print("urllib request headers:", request.header_items())
with urllib.request.urlopen(request) as response:
    print("urllib response headers:", dict(response.headers))
    print("urllib body:", response.read().decode())

response = requests.get(BASE + "/echo", headers={"authorization": "Bearer guest-token"})
print("requests request headers:", dict(response.request.headers))
print("requests response headers:", dict(response.headers))
print("requests body:", response.text)
response.text
"#;

    let report = python_through(&gate, port, code).await;

    assert_ok(&report);
    assert_secret_hidden(&report);
    let out = stdout(&report);
    // The gate sends header names in lower case, and the server echoes
    // them as received.
    assert!(
        out.contains("authorization: Bearer [REDACTED:api_key]"),
        "the echoed header is not redacted in place: {out}"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for request in &requests {
        assert_eq!(
            request.header_values("authorization"),
            [format!("Bearer {SECRET_VALUE}")],
            "{request:#?}"
        );
    }
    let events = gate.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    for event in &events {
        assert_eq!(event.secrets_injected, ["api_key"], "{event:#?}");
    }
}

#[tokio::test]
async fn fetch_secret_injected_and_hidden() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(
        vec![api_rule(&server)],
        vec![api_secret()],
        loopback_pins(&server),
    );
    let code = r#"
const request = new Request(BASE + "/echo", { headers: { Authorization: "Bearer guest-token" } });
console.log("request headers:", JSON.stringify([...request.headers]));
const response = await fetch(request);
console.log("response headers:", JSON.stringify([...response.headers]));
const body = await response.text();
console.log("body:", body);
body
"#;

    let report = javascript_through(&gate, port, code).await;

    assert_ok(&report);
    assert_secret_hidden(&report);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(
        requests[0].header_values("authorization"),
        [format!("Bearer {SECRET_VALUE}")]
    );
}

#[tokio::test]
async fn secret_not_sent_across_redirect() {
    let server = TestServer::start();
    let other = TestServer::start();
    let port = server.port();
    let other_port = other.port();
    let gate = run_gate(
        vec![api_rule(&server), rule("other", "other.test", other_port)],
        vec![api_secret()],
        vec![
            pin("api.test", port, "127.0.0.1"),
            pin("other.test", other_port, "127.0.0.1"),
        ],
    );
    let to_other = redirect_path(&format!("http://other.test:{other_port}/echo"));
    let code = format!(
        r#"
print(urllib_call(BASE + "{to_other}").splitlines()[0])
print(requests_call(BASE + "{to_other}").splitlines()[0])
"#
    );

    let report = python_through(&gate, port, &code).await;

    assert_eq!(ok_lines(&report), ["200 GET /echo", "200 GET /echo"]);
    for request in server.requests() {
        assert_eq!(
            request.header_values("authorization"),
            [format!("Bearer {SECRET_VALUE}")],
            "{request:#?}"
        );
    }
    let arrived = other.requests();
    assert_eq!(arrived.len(), 2, "{arrived:#?}");
    for request in &arrived {
        assert_eq!(request.header("authorization"), None, "{request:#?}");
    }
    let injected: Vec<(u32, Vec<String>)> = gate
        .events()
        .into_iter()
        .map(|event| (event.hop, event.secrets_injected))
        .collect();
    assert_eq!(
        injected,
        [
            (0, vec!["api_key".to_owned()]),
            (1, vec![]),
            (0, vec!["api_key".to_owned()]),
            (1, vec![]),
        ]
    );
}

// --- the event log ------------------------------------------------------

#[tokio::test]
async fn events_record_each_hop() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(vec![redirect_rule(&server)], vec![], loopback_pins(&server));
    let to_rejected = redirect_path("/bytes/5");
    let code = format!(
        r#"
print(urllib_call(BASE + "/hello"))
print(urllib_call("http://evil.test:{port}/hello").split(":")[0])
print(urllib_call(BASE + "{to_rejected}").split(":")[0])
"#
    );

    let report = python_through(&gate, port, &code).await;

    assert_eq!(
        ok_lines(&report),
        [
            "200 hello from the test server",
            "URLError permission=True timeout=False denied",
            "URLError permission=True timeout=False denied",
        ]
    );
    let events = gate.events();
    assert_eq!(events.len(), 4, "{events:#?}");
    let address = format!("127.0.0.1:{port}");

    let allowed: &EgressEvent = &events[0];
    assert_eq!(allowed.decision, Decision::Allowed);
    assert_eq!(allowed.method, "GET");
    assert_eq!(allowed.url, format!("http://api.test:{port}/hello"));
    assert_eq!(allowed.hop, 0);
    assert_eq!(allowed.rule.as_deref(), Some("api"));
    assert_eq!(allowed.reason, None);
    assert_eq!(allowed.address.as_deref(), Some(address.as_str()));
    assert_eq!(allowed.status, Some(200));
    assert_eq!(allowed.bytes_received, 26);

    let denied = &events[1];
    assert_eq!(denied.decision, Decision::Denied);
    assert_eq!(denied.url, format!("http://evil.test:{port}/hello"));
    assert_eq!(denied.rule, None);
    assert_eq!(denied.reason, Some(denied_host("evil.test")));
    assert_eq!(denied.address, None);
    assert_eq!(denied.status, None);

    let first_hop = &events[2];
    assert_eq!(first_hop.decision, Decision::Allowed);
    assert_eq!(first_hop.hop, 0);
    assert_eq!(first_hop.status, Some(302));
    assert_eq!(first_hop.rule.as_deref(), Some("api"));

    let second_hop = &events[3];
    assert_eq!(second_hop.decision, Decision::Denied);
    assert_eq!(second_hop.hop, 1);
    assert_eq!(second_hop.url, format!("http://api.test:{port}/bytes/5"));
    assert_eq!(second_hop.rule, None);
    assert_eq!(second_hop.reason, Some(redirect_path_denial("/bytes/5")));
}

// --- headers the gate controls ------------------------------------------

#[tokio::test]
async fn guest_framing_headers_dropped() {
    let server = TestServer::start();
    let port = server.port();
    let post_rule = EgressRule {
        methods: vec!["POST".to_owned()],
        ..api_rule(&server)
    };
    let gate = run_gate(vec![post_rule], vec![], loopback_pins(&server));
    let code = r#"
headers = {
    "Host": "evil.test",
    "Content-Length": "999",
    "Transfer-Encoding": "chunked",
    "Proxy-Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q=",
    "X-Kept": "yes",
}
print(requests_call(BASE + "/bytes/2", method="POST", data=b"abc", headers=headers))
"#;

    let report = python_through(&gate, port, code).await;

    assert_eq!(ok_lines(&report), ["200 xx"]);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let request = &requests[0];
    assert_eq!(
        request.header("host"),
        Some(format!("api.test:{port}").as_str())
    );
    assert_eq!(request.header("content-length"), Some("3"));
    assert_eq!(request.header("transfer-encoding"), None);
    assert_eq!(request.header("proxy-authorization"), None);
    assert_eq!(request.header("x-kept"), Some("yes"));
    assert_eq!(request.body, b"abc");
}

/// `requests`, curl and the Fetch standard drop a caller's `Authorization`
/// header when a redirect leads to another host. The gate follows
/// redirects in place of those clients, so it must do the same.
#[tokio::test]
async fn guest_authorization_dropped_across_hosts() {
    let server = TestServer::start();
    let other = TestServer::start();
    let port = server.port();
    let other_port = other.port();
    let gate = run_gate(
        vec![api_rule(&server), rule("other", "other.test", other_port)],
        vec![],
        vec![
            pin("api.test", port, "127.0.0.1"),
            pin("other.test", other_port, "127.0.0.1"),
        ],
    );
    let to_other = redirect_path(&format!("http://other.test:{other_port}/echo"));
    let code = format!(
        r#"
headers = {{"Authorization": "Bearer guest-token"}}
print(requests_call(BASE + "{to_other}", headers=headers).splitlines()[0])
"#
    );

    let report = python_through(&gate, port, &code).await;

    assert_eq!(ok_lines(&report), ["200 GET /echo"]);
    let first = server.requests();
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0].header("authorization"), Some("Bearer guest-token"));
    let second = other.requests();
    assert_eq!(second.len(), 1, "{second:#?}");
    assert_eq!(
        second[0].header("authorization"),
        None,
        "the guest's Authorization header followed the redirect to other.test"
    );
}

// --- the run's deadline -------------------------------------------------

#[tokio::test]
async fn run_deadline_stops_slow_request() {
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(vec![api_rule(&server)], vec![], loopback_pins(&server));
    let code =
        format!("{PYTHON_HELPERS}\nprint(urllib_call('http://api.test:{port}/slow/10000'))\n");
    let mut scratch = sandbox(Language::Python);
    scratch.sandbox.set_network(gate.clone());

    let report = scratch
        .run_with(&code, &timeout_limits(Duration::from_secs(1)))
        .await;

    assert_outcome(&report, Outcome::Timeout);
    assert!(
        report.duration < TIMEOUT_RUN_BOUND,
        "the run took {:?} although its deadline was 1 s",
        report.duration
    );
    assert_eq!(server.targets(), ["/slow/10000"]);
}

// --- what the byte budget counts ----------------------------------------

/// `max_bytes` is documented as counting bodies and headers, so a request
/// whose headers alone pass the budget must not be sent.
#[tokio::test]
async fn byte_budget_ignores_headers() {
    let server = TestServer::start();
    let port = server.port();
    let budget_rule = EgressRule {
        max_bytes: Some(ByteSize(100)),
        ..api_rule(&server)
    };
    let gate = run_gate(vec![budget_rule], vec![], loopback_pins(&server));
    let code = r#"
print(urllib_call(BASE + "/bytes/1", headers={"X-Padding": "p" * 200}))
"#;

    let report = python_through(&gate, port, code).await;

    // The byte budget counts bodies only, so a large header does not use it.
    assert_eq!(ok_lines(&report).len(), 1);
    assert!(
        !ok_lines(&report)[0].contains("budget_exhausted"),
        "{:?}",
        ok_lines(&report)
    );
    assert_eq!(server.targets(), ["/bytes/1"]);
}

#[tokio::test]
async fn trailing_dot_host_stays_pinned() {
    // `api.test.` matches the rule for `api.test`; the connection must still
    // go to the pinned address rather than to a fresh DNS lookup, which for
    // this made-up name would fail.
    let server = TestServer::start();
    let port = server.port();
    let gate = run_gate(vec![api_rule(&server)], vec![], loopback_pins(&server));
    let code = format!(
        r#"
with urllib.request.urlopen("http://api.test.:{port}/hello") as response:
    print(response.status)
"#
    );

    let report = python_through(&gate, port, &code).await;

    assert_eq!(ok_lines(&report), ["200"]);
    assert_eq!(server.targets(), ["/hello"]);
}

// --- records of refused requests ------------------------------------------

/// Requests refused before any hop, for an invalid URL or because the
/// policy has no rules, are recorded like any other refusal.
#[tokio::test]
async fn refusals_without_a_hop_are_recorded() {
    let gate = run_gate(Vec::new(), Vec::new(), Vec::new());
    let code = "\
import urllib.request
for url in ['http://example.test/data?q=1', 'http://exa mple.test/']:
    try:
        urllib.request.urlopen(url)
        print('fetched')
    except Exception as error:
        print('refused')
";
    let report = python_through(&gate, 1, code).await;
    assert_eq!(ok_lines(&report), ["refused"; 2]);

    let events = gate.events();
    let summary: Vec<(&str, Decision)> = events
        .iter()
        .map(|e| (e.url.as_str(), e.decision))
        .collect();
    assert_eq!(
        summary,
        [
            ("http://example.test/data?q=1", Decision::Denied),
            ("http://exa mple.test/", Decision::Denied),
        ]
    );
    assert_eq!(
        events[0].reason.as_deref(),
        Some("network access is denied: the policy has no egress rules")
    );
    assert!(
        events[1]
            .reason
            .as_deref()
            .is_some_and(|reason| reason.contains("invalid")),
        "{:?}",
        events[1]
    );
}
