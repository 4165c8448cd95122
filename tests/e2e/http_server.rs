//! A small HTTP/1.1 server on 127.0.0.1 for the egress tests. It records
//! every request it receives and sends a response chosen by path, one
//! request per connection.
//!
//! It uses only the standard library and threads, so that the CLI tests can
//! include this file too, and so that it keeps serving while a
//! current-thread tokio runtime is busy inside a guest.
//!
//! Routes:
//! - `/hello`: 200 with a fixed body and an `X-Test` header.
//! - `/echo...` and `.../echo`: 200 whose body lists the request line,
//!   each header as `name: value` and then the body. The `X-Echo-Headers`
//!   response header repeats the headers as `name=value` pairs joined by
//!   `; `.
//! - `/redirect?status=N&to=URL`: status N (302 without it) with `Location`
//!   set to the percent-decoded URL.
//! - `/loop`: 302 to `/loop`, forever.
//! - `/bytes/N`: 200 with N bytes of `x`.
//! - `/slow/MS`: 200 after MS milliseconds, or when the server stops.
//! - anything else: 404.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Maximum time a connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Maximum size of a request head or body that the server reads, so a runaway client
/// cannot fill memory.
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Method from the request line.
    pub method: String,
    /// Request target: path and query.
    pub target: String,
    /// Headers in the order received, names as sent.
    pub headers: Vec<(String, String)>,
    /// Body bytes, read by `Content-Length`.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// Returns every value of header `name`, compared without case.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// Returns the only value of header `name`, or `None` when it is absent;
    /// a repeated header fails the test.
    pub fn header(&self, name: &str) -> Option<&str> {
        let values = self.header_values(name);
        assert!(
            values.len() <= 1,
            "header {name} arrived {} times: {self:#?}",
            values.len()
        );
        values.first().copied()
    }
}

#[derive(Debug, Default)]
struct State {
    requests: Mutex<Vec<RecordedRequest>>,
    connections: AtomicUsize,
    stopping: AtomicBool,
}

/// A running server, stopped when dropped.
#[derive(Debug)]
pub struct TestServer {
    address: SocketAddr,
    state: Arc<State>,
    acceptor: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on an ephemeral port of 127.0.0.1.
    pub fn start() -> TestServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("read the server's address");
        let state = Arc::new(State::default());
        let acceptor = {
            let state = Arc::clone(&state);
            std::thread::spawn(move || accept_loop(listener, state))
        };
        TestServer {
            address,
            state,
            acceptor: Some(acceptor),
        }
    }

    /// Returns the port the server listens on.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Returns the requests received so far, in order of arrival.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Returns the request targets received so far, in order of arrival.
    pub fn targets(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .map(|request| request.target)
            .collect()
    }

    /// Returns the count of TCP connections accepted so far, including any
    /// that sent no request.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        // Wakes the blocked accept so that the loop reads the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: TcpListener, state: Arc<State>) {
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
            // A client that hangs up early is not an error of the server.
            let _ = serve(stream, &state);
        });
    }
}

fn serve(stream: TcpStream, state: &State) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(request) = read_request(&mut reader)? else {
        return Ok(());
    };
    state
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request.clone());

    let reply = route(&request, state);
    write_reply(stream, &reply)
}

/// Reads one request, or `None` when the connection closes before a
/// request line.
fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<RecordedRequest>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();

    let mut headers = Vec::new();
    let mut head_bytes = line.len();
    loop {
        let mut line = String::new();
        let read = reader.read_line(&mut line)?;
        head_bytes += read;
        if read == 0 || line == "\r\n" || line == "\n" || head_bytes > MAX_REQUEST_BYTES {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }

    let length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_REQUEST_BYTES);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;

    Ok(Some(RecordedRequest {
        method,
        target,
        headers,
        body,
    }))
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

fn route(request: &RecordedRequest, state: &State) -> Reply {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target.as_str(), ""));

    if path == "/hello" {
        return Reply::new(200, "hello from the test server").header("X-Test", "hello-header");
    }
    if path.starts_with("/echo") || path.ends_with("/echo") {
        return echo(request);
    }
    if path == "/redirect" {
        let status = query_value(query, "status")
            .and_then(|status| status.parse().ok())
            .unwrap_or(302);
        let location = query_value(query, "to").unwrap_or_else(|| "/hello".to_owned());
        return Reply::new(status, "").header("Location", &location);
    }
    if path == "/loop" {
        return Reply::new(302, "").header("Location", "/loop");
    }
    if let Some(count) = path.strip_prefix("/bytes/") {
        let count: usize = count.parse().unwrap_or(0);
        return Reply::new(200, vec![b'x'; count]);
    }
    if let Some(millis) = path.strip_prefix("/slow/") {
        let millis: u64 = millis.parse().unwrap_or(0);
        let until = Instant::now() + Duration::from_millis(millis);
        while Instant::now() < until && !state.stopping.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        return Reply::new(200, "slow");
    }
    Reply::new(404, "not found")
}

fn echo(request: &RecordedRequest) -> Reply {
    let mut body = format!("{} {}\n", request.method, request.target);
    for (name, value) in &request.headers {
        body.push_str(&format!("{name}: {value}\n"));
    }
    body.push('\n');
    let mut body = body.into_bytes();
    body.extend_from_slice(&request.body);

    let pairs: Vec<String> = request
        .headers
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    Reply::new(200, body).header("X-Echo-Headers", &pairs.join("; "))
}

fn write_reply(mut stream: TcpStream, reply: &Reply) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} Test\r\n", reply.status);
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        reply.body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(&reply.body)?;
    stream.flush()
}

/// Returns the percent-decoded value of `key` in a query string.
fn query_value(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == key)
        .map(|(_, value)| percent_decode(value))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Percent-encodes `text` for use as a query value.
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}
