//! Span export over OTLP/HTTP: `moat run` and `moat serve` against a
//! receiver on 127.0.0.1 that stores every request, checking span names and
//! fields, and that no code, output, URL query or secret reaches an exported
//! span or the debug log.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

use crate::support::{Finished, finish, moat, moat_python, script, tempdir};

/// Text only in the script's source, unusual enough not to appear by chance.
const CODE_MARKER: &str = "code-marker-Zt81Qw";
/// Text the script prints; its source builds it from two halves, so the
/// source alone does not contain it.
const STDOUT_MARKER: &str = "stdout-marker-Kp44Vn";
/// Text in the URL query of the guest's request.
const QUERY_MARKER: &str = "query-marker-Hb27Xe";

/// Environment variable carrying the egress secret, set only on the child.
const SECRET_VARIABLE: &str = "MOAT_TELEMETRY_TEST_TOKEN";
/// The secret's value.
const SECRET_VALUE: &str = "sk-telemetry-test-R5m9Lc3";

/// Maximum time a receiver connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request the receiver reads.
const MAX_REQUEST_BYTES: usize = 16 << 20;

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
struct RecordedRequest {
    method: String,
    target: String,
    /// Headers in the order received, names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RecordedRequest {
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

#[derive(Debug, Default)]
struct ReceiverState {
    requests: Mutex<Vec<RecordedRequest>>,
    connections: AtomicUsize,
    stopping: AtomicBool,
}

/// An HTTP/1.1 server that stores each request and replies 200 with an
/// empty body, one request per connection. It serves as the OTLP receiver,
/// since an empty body is an empty `ExportTraceServiceResponse`, and as the
/// destination of egress. It stops when dropped.
#[derive(Debug)]
struct Receiver {
    address: SocketAddr,
    state: Arc<ReceiverState>,
    acceptor: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Starts a receiver on an ephemeral port of 127.0.0.1.
    fn start() -> Receiver {
        Receiver::bind((Ipv4Addr::LOCALHOST, 0).into()).expect("bind 127.0.0.1:0")
    }

    /// Starts a receiver on `address`, which must be a loopback address.
    fn bind(address: SocketAddr) -> std::io::Result<Receiver> {
        assert!(address.ip().is_loopback(), "{address} is not loopback");
        let listener = TcpListener::bind(address)?;
        let address = listener.local_addr()?;
        let state = Arc::new(ReceiverState::default());
        let acceptor = {
            let state = Arc::clone(&state);
            std::thread::spawn(move || accept_loop(listener, state))
        };
        Ok(Receiver {
            address,
            state,
            acceptor: Some(acceptor),
        })
    }

    /// Returns the base URL to pass to `--otlp-endpoint`.
    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    fn requests(&self) -> Vec<RecordedRequest> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Returns the count of TCP connections accepted, including any that
    /// sent no request.
    fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Returns every request body, concatenated, for searching.
    fn all_bytes(&self) -> Vec<u8> {
        self.requests()
            .into_iter()
            .flat_map(|request| request.body)
            .collect()
    }

    /// Decodes the spans of every request, in order of arrival.
    fn spans(&self) -> Vec<ExportedSpan> {
        let mut spans = Vec::new();
        for request in self.requests() {
            let export = ExportTraceServiceRequest::decode(request.body.as_slice())
                .expect("the body is an ExportTraceServiceRequest");
            for resource_spans in export.resource_spans {
                let resource = resource_spans
                    .resource
                    .map(|resource| attributes(&resource.attributes))
                    .unwrap_or_default();
                for scope_spans in resource_spans.scope_spans {
                    for span in scope_spans.spans {
                        spans.push(ExportedSpan {
                            name: span.name.clone(),
                            attributes: attributes(&span.attributes),
                            resource: resource.clone(),
                            trace_id: span.trace_id,
                            span_id: span.span_id,
                            parent_span_id: span.parent_span_id,
                        });
                    }
                }
            }
        }
        spans
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        // Wakes the blocked accept so that the loop reads the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: TcpListener, state: Arc<ReceiverState>) {
    for stream in listener.incoming() {
        if state.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            continue;
        };
        state.connections.fetch_add(1, Ordering::SeqCst);
        let state = Arc::clone(&state);
        std::thread::spawn(move || {
            // A client that hangs up early is not an error of the receiver.
            let _ = serve(stream, &state);
        });
    }
}

fn serve(mut stream: TcpStream, state: &ReceiverState) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);

    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();

    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length.min(MAX_REQUEST_BYTES)];
    reader.read_exact(&mut body)?;

    state
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(RecordedRequest {
            method,
            target,
            headers,
            body,
        });
    stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\
          Content-Length: 0\r\nConnection: close\r\n\r\n",
    )?;
    stream.flush()
}

/// One span as the receiver decoded it, attribute values as text.
#[derive(Debug, Clone)]
struct ExportedSpan {
    name: String,
    attributes: BTreeMap<String, String>,
    resource: BTreeMap<String, String>,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
}

impl ExportedSpan {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|pair| {
            let value = match pair.value.as_ref().and_then(|value| value.value.as_ref()) {
                Some(Value::StringValue(text)) => text.clone(),
                Some(Value::IntValue(number)) => number.to_string(),
                Some(Value::BoolValue(flag)) => flag.to_string(),
                Some(Value::DoubleValue(number)) => number.to_string(),
                other => format!("{other:?}"),
            };
            (pair.key.clone(), value)
        })
        .collect()
}

/// Returns the only span named `name`, failing the test when there are
/// none or several.
fn only_span<'a>(spans: &'a [ExportedSpan], name: &str) -> &'a ExportedSpan {
    let found: Vec<&ExportedSpan> = spans.iter().filter(|span| span.name == name).collect();
    assert_eq!(found.len(), 1, "expected one {name} span: {spans:#?}");
    found[0]
}

fn contains_bytes(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Prepares `moat` for the Python guest with every `OTEL_*` variable of
/// this process removed, so that only the test's own settings apply and no
/// run exports to a collector outside the test.
fn moat_without_otel() -> Command {
    let mut command = moat_python();
    remove_otel_variables(&mut command);
    command
}

fn remove_otel_variables(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OTEL_") {
            command.env_remove(name);
        }
    }
}

/// Writes a script that contains [`CODE_MARKER`] and prints [`STDOUT_MARKER`].
fn marker_script(dir: &Path) -> PathBuf {
    let (first, second) = STDOUT_MARKER.split_at(7);
    let code = format!("note = {CODE_MARKER:?}\nprint({first:?} + {second:?})\n");
    script(dir, "markers.py", code)
}

fn assert_no_export_warning(finished: &Finished) {
    assert!(
        !finished.stderr.contains("failed to export spans"),
        "export failed: {}",
        finished.stderr
    );
}

#[test]
fn run_exports_spans_without_payload() {
    let receiver = Receiver::start();
    let dir = tempdir();
    let path = marker_script(dir.path());

    let finished = finish(
        moat_without_otel()
            .args(["run", "--otlp-endpoint", &receiver.endpoint()])
            .arg(&path)
            .env("MOAT_LOG", "debug"),
    );

    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_eq!(finished.stdout, format!("{STDOUT_MARKER}\n"));
    assert_no_export_warning(&finished);

    let requests = receiver.requests();
    assert!(!requests.is_empty(), "no export arrived: {finished:#?}");
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.target, "/v1/traces");
        assert_eq!(
            request.header_values("content-type"),
            ["application/x-protobuf"]
        );
    }

    let spans = receiver.spans();
    let run = only_span(&spans, "sandbox_run");
    assert_eq!(run.attribute("language"), Some("python"));
    assert_eq!(run.attribute("filename"), Some("markers.py"));
    assert_eq!(run.attribute("outcome"), Some("ok"));
    assert!(run.attribute("duration_ms").is_some(), "{run:#?}");
    assert!(run.attribute("fuel_used").is_some(), "{run:#?}");
    assert_eq!(run.trace_id.len(), 16, "{run:#?}");
    assert_eq!(run.span_id.len(), 8, "{run:#?}");
    assert_eq!(
        run.resource.get("service.name").map(String::as_str),
        Some("moat")
    );
    assert_eq!(
        run.resource.get("service.version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );

    let exported = receiver.all_bytes();
    for marker in [CODE_MARKER, STDOUT_MARKER] {
        assert!(
            !contains_bytes(&exported, marker),
            "{marker} was exported: {spans:#?}"
        );
        assert!(
            !finished.stderr.contains(marker),
            "{marker} is in the debug log: {}",
            finished.stderr
        );
    }
}

/// Writes a policy that allows GET to api.test on `port`, loopback
/// included, and sends the secret as `Authorization: Bearer ...`.
fn write_egress_policy(dir: &Path, port: u16) -> PathBuf {
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

#[test]
fn egress_span_without_secret() {
    let receiver = Receiver::start();
    let server = Receiver::start();
    let port = server.address.port();
    let dir = tempdir();
    let policy = write_egress_policy(dir.path(), port);
    let code = format!(
        r#"
import urllib.error
import urllib.request

with urllib.request.urlopen("http://api.test:{port}/echo?q={QUERY_MARKER}") as response:
    print(response.status)
    print(response.read().decode())
try:
    urllib.request.urlopen("http://evil.test:{port}/hello")
except urllib.error.URLError as error:
    print("denied:", error.reason)
"#
    );
    let path = script(dir.path(), "egress.py", code);

    let finished = finish(
        moat_without_otel()
            .args(["run", "--otlp-endpoint", &receiver.endpoint()])
            .arg("--policy")
            .arg(&policy)
            .arg("--resolve")
            .arg(format!("api.test:{port}:127.0.0.1"))
            .arg(&path)
            .env(SECRET_VARIABLE, SECRET_VALUE)
            .env("MOAT_LOG", "debug"),
    );

    assert_eq!(finished.code, 0, "{finished:#?}");
    assert!(
        finished.stdout.starts_with("200\n"),
        "the allowed request failed: {finished:#?}"
    );
    assert_no_export_warning(&finished);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].target, format!("/echo?q={QUERY_MARKER}"));
    assert_eq!(
        requests[0].header_values("authorization"),
        [format!("Bearer {SECRET_VALUE}")],
        "the secret was not injected, so this test would prove nothing"
    );

    let spans = receiver.spans();
    let run = only_span(&spans, "sandbox_run");
    let egress: Vec<&ExportedSpan> = spans.iter().filter(|span| span.name == "egress").collect();
    assert_eq!(egress.len(), 2, "{spans:#?}");

    let allowed = egress
        .iter()
        .find(|span| span.attribute("host") == Some("api.test"))
        .expect("an egress span for api.test");
    assert_eq!(allowed.attribute("decision"), Some("allowed"));
    assert_eq!(allowed.attribute("rule"), Some("api"));
    assert_eq!(allowed.attribute("method"), Some("GET"));
    assert_eq!(allowed.attribute("scheme"), Some("http"));
    assert_eq!(allowed.attribute("port"), Some(port.to_string().as_str()));
    assert_eq!(allowed.attribute("hop"), Some("0"));
    assert_eq!(allowed.attribute("status"), Some("200"));
    assert_eq!(allowed.attribute("bytes_sent"), Some("0"));
    assert!(
        allowed.attribute("bytes_received").is_some(),
        "{allowed:#?}"
    );
    assert_eq!(allowed.attribute("error"), None);
    assert_eq!(allowed.trace_id, run.trace_id, "egress is in another trace");
    assert_eq!(
        allowed.parent_span_id, run.span_id,
        "egress is not a child of sandbox_run"
    );

    let denied = egress
        .iter()
        .find(|span| span.attribute("host") == Some("evil.test"))
        .expect("an egress span for evil.test");
    assert_eq!(denied.attribute("decision"), Some("denied"));
    assert_eq!(denied.attribute("error"), Some("denied"));
    assert_eq!(denied.attribute("rule"), None);
    assert_eq!(denied.attribute("status"), None);

    let exported = receiver.all_bytes();
    for text in [SECRET_VALUE, QUERY_MARKER, "/echo"] {
        assert!(
            !contains_bytes(&exported, text),
            "{text} was exported: {spans:#?}"
        );
    }
    for text in [SECRET_VALUE, QUERY_MARKER] {
        assert!(
            !finished.stderr.contains(text),
            "{text} is in the debug log: {}",
            finished.stderr
        );
    }
}

#[test]
fn serve_exports_execution_span() {
    let receiver = Receiver::start();
    let dir = tempdir();
    let mut child = moat_without_otel()
        .args(["serve", "--otlp-endpoint", &receiver.endpoint()])
        .env("MOAT_LOG", "debug")
        .env("MOAT_AUDIT_DB", dir.path().join("audit.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start moat serve");

    // The debug log is read on its own thread so that a full pipe cannot
    // stall the server.
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let (first, second) = STDOUT_MARKER.split_at(7);
    let code = format!("note = {CODE_MARKER:?}\nprint({first:?} + {second:?})\n");
    let messages = [
        serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "telemetry-test", "version": "1"},
            },
        }),
        serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        serde_json::json!({
            "jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "run_python", "arguments": {"code": code}},
        }),
    ];
    let mut stdin = child.stdin.take().expect("piped stdin");
    for message in &messages {
        writeln!(stdin, "{message}").expect("write to moat serve");
    }
    stdin.flush().expect("write to moat serve");

    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut result = None;
    for line in stdout.lines() {
        let line = line.expect("read moat serve's stdout");
        let message: serde_json::Value = serde_json::from_str(&line).expect("a JSON-RPC message");
        if message["id"] == 2 {
            result = Some(message);
            break;
        }
    }
    // Closing stdin ends the server, which flushes its spans as it exits.
    drop(stdin);
    let status = child.wait().expect("wait for moat serve");
    let stderr = stderr_reader.join().expect("read moat serve's stderr");

    assert!(status.success(), "moat serve failed: {stderr}");
    let result = result.expect("a response to tools/call");
    assert!(
        result.to_string().contains(STDOUT_MARKER),
        "the run did not print the marker: {result}"
    );
    assert!(
        !stderr.contains("failed to export spans"),
        "export failed: {stderr}"
    );

    let spans = receiver.spans();
    let execution = only_span(&spans, "execution");
    let execution_id = execution.attribute("execution").expect("an execution id");
    assert_eq!(execution_id.len(), 32, "{execution:#?}");
    assert!(
        execution_id.bytes().all(|byte| byte.is_ascii_hexdigit()),
        "{execution:#?}"
    );
    assert_eq!(execution.attribute("session"), Some("none"));
    assert_eq!(execution.attribute("language"), Some("python"));
    let run = only_span(&spans, "sandbox_run");
    assert_eq!(
        run.trace_id, execution.trace_id,
        "sandbox_run is in another trace"
    );
    assert_eq!(
        run.parent_span_id, execution.span_id,
        "sandbox_run is not a child of execution"
    );
    let request = only_span(&spans, "request");
    assert_eq!(request.attribute("tool"), Some("run_python"));
    assert_eq!(request.attribute("method"), Some("tools/call"));
    assert_eq!(request.attribute("transport"), Some("stdio"));
    assert_eq!(
        execution.parent_span_id, request.span_id,
        "execution is not a child of request"
    );

    // rmcp's debug events would print the request, code included, and the
    // response, output included.
    let exported = receiver.all_bytes();
    for marker in [CODE_MARKER, STDOUT_MARKER] {
        assert!(
            !contains_bytes(&exported, marker),
            "{marker} was exported: {spans:#?}"
        );
        assert!(
            !stderr.contains(marker),
            "{marker} is in the debug log: {stderr}"
        );
    }
}

#[test]
fn traces_variable_enables_export() {
    let receiver = Receiver::start();
    let dir = tempdir();
    let path = marker_script(dir.path());

    let finished = finish(moat_without_otel().arg("run").arg(&path).env(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        format!("{}/custom/traces", receiver.endpoint()),
    ));

    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_no_export_warning(&finished);
    let requests = receiver.requests();
    assert!(!requests.is_empty(), "no export arrived: {finished:#?}");
    assert_eq!(requests[0].target, "/custom/traces");
    only_span(&receiver.spans(), "sandbox_run");
}

#[test]
fn no_endpoint_no_connection() {
    let dir = tempdir();
    let path = marker_script(dir.path());

    // The exporter's built-in default is localhost:4318. When that port is
    // free, listen there to prove that moat does not fall back to it.
    let default_port = Receiver::bind((Ipv4Addr::LOCALHOST, 4318).into()).ok();
    let finished = finish(moat_without_otel().arg("run").arg(&path));
    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_eq!(finished.stdout, format!("{STDOUT_MARKER}\n"));
    if let Some(default_port) = &default_port {
        assert_eq!(default_port.connections(), 0, "moat connected to 4318");
    }

    // An empty flag turns off an endpoint set in the environment.
    let receiver = Receiver::start();
    let finished = finish(
        moat_without_otel()
            .args(["run", "--otlp-endpoint", ""])
            .arg(&path)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
    );
    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_eq!(
        receiver.connections(),
        0,
        "moat exported with an empty flag"
    );
}

#[test]
fn unreachable_endpoint_keeps_result() {
    // A port that was just bound and released has no listener.
    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0");
    let dir = tempdir();
    let path = script(
        dir.path(),
        "exits.py",
        "import sys\nprint('before exit')\nsys.exit(3)\n",
    );

    let baseline = finish(moat_without_otel().arg("run").arg(&path));
    let finished = finish(
        moat_without_otel()
            .args(["run", "--otlp-endpoint", &format!("http://{closed}")])
            .arg(&path),
    );

    assert_eq!(baseline.code, 3, "{baseline:#?}");
    assert_eq!(finished.code, baseline.code, "{finished:#?}");
    assert_eq!(finished.stdout, baseline.stdout);
    assert_eq!(
        finished
            .stderr
            .matches("failed to export spans over OTLP")
            .count(),
        1,
        "expected one export warning: {}",
        finished.stderr
    );
}

#[test]
fn malformed_endpoint_is_startup_error() {
    let mut command = moat();
    remove_otel_variables(&mut command);
    let finished = finish(command.args(["run", "--otlp-endpoint", "localhost:4318", "missing.py"]));

    assert_eq!(finished.code, 125, "{finished:#?}");
    assert_eq!(
        finished.stderr,
        "moat: error: invalid OTLP endpoint \"localhost:4318\" from --otlp-endpoint: the \
         scheme must be http or https, such as http://localhost:4318\n"
    );
}

#[test]
fn unsupported_protocol_is_startup_error() {
    let mut command = moat();
    remove_otel_variables(&mut command);
    let finished = finish(
        command
            .args(["run", "--otlp-endpoint", "http://127.0.0.1:9", "missing.py"])
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    );

    assert_eq!(finished.code, 125, "{finished:#?}");
    assert!(
        finished
            .stderr
            .starts_with("moat: error: OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\" is not supported"),
        "{}",
        finished.stderr
    );
}
