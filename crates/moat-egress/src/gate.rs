//! The gate: checks, resolves, pins, sends, follows redirects and records
//! each guest request.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use moat_policy::EgressRule;
use serde::Serialize;
use tracing::Instrument;
use url::Url;

use crate::address::special_range;
use crate::rules::{Target, Verdict, evaluate};
use crate::secrets::{Secret, redact_bytes, redact_text};
use crate::types::{Fetch, FetchError, FetchErrorKind, HttpRequest, HttpResponse};

/// Requests one run may send under a rule that sets no `max_requests`.
pub const DEFAULT_MAX_REQUESTS: u32 = 100;
/// Bytes one run may move under a rule that sets no `max_bytes`.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// Largest response body under a rule that sets no `max_response_bytes`.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 10 << 20;
/// Largest request body under a rule that sets no `max_request_bytes`.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 10 << 20;
/// Time for one request under a rule that sets no `timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed for one request; each hop is checked like the first.
pub const MAX_REDIRECTS: u32 = 10;

/// Request headers a guest may not set: the gate derives them itself, and
/// letting the guest choose them would allow request smuggling or routing
/// to another virtual host than the one checked.
const FORBIDDEN_HEADERS: [&str; 10] = [
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
];

/// Guest headers dropped when a redirect leads to another origin.
const CROSS_ORIGIN_STRIPPED: [&str; 2] = ["authorization", "cookie"];

/// A name pinned to addresses, as curl's `--resolve HOST:PORT:ADDR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOverride {
    /// Host name, lowercase.
    pub host: String,
    /// Port the pin applies to.
    pub port: u16,
    /// Addresses to use instead of DNS.
    pub addresses: Vec<IpAddr>,
}

impl ResolveOverride {
    /// Parses `HOST:PORT:ADDR[,ADDR...]`; IPv6 addresses may be bracketed.
    pub fn parse(spec: &str) -> Result<ResolveOverride, String> {
        let usage = || {
            format!(
                "invalid --resolve {spec:?}: expected HOST:PORT:ADDR, such as api.example.com:443:127.0.0.1"
            )
        };
        let (host, rest) = spec.split_once(':').ok_or_else(usage)?;
        let (port, addresses) = rest.split_once(':').ok_or_else(usage)?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("invalid --resolve {spec:?}: {port:?} is not a port"))?;
        if host.is_empty() || port == 0 {
            return Err(usage());
        }
        let addresses = addresses
            .split(',')
            .map(|text| {
                let text = text.trim().trim_start_matches('[').trim_end_matches(']');
                text.parse::<IpAddr>().map_err(|_| {
                    format!("invalid --resolve {spec:?}: {text:?} is not an IP address")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ResolveOverride {
            host: host.to_ascii_lowercase(),
            port,
            addresses,
        })
    }
}

/// Everything the gate needs: the rules, the loaded secrets and any pins.
#[derive(Debug, Clone, Default)]
pub struct GateConfig {
    /// Egress rules from the policy, in order.
    pub rules: Vec<EgressRule>,
    /// Secrets with their values.
    pub secrets: Vec<Secret>,
    /// Names pinned to addresses.
    pub resolve: Vec<ResolveOverride>,
}

/// The gate shared by all runs of a process.
#[derive(Debug, Clone)]
pub struct Gate {
    config: Arc<GateConfig>,
}

impl Gate {
    /// Creates a gate for `config`.
    pub fn new(config: GateConfig) -> Self {
        Gate {
            config: Arc::new(config),
        }
    }

    /// Returns whether any rule allows any request.
    pub fn allows_network(&self) -> bool {
        !self.config.rules.is_empty()
    }

    /// Replaces every secret value found in `text` with `[REDACTED:name]`;
    /// `None` when `text` contains no secret value. The audit trail passes
    /// everything it stores through this.
    pub fn redact(&self, text: &str) -> Option<String> {
        let redacted = redact_text(self.config.secrets.as_slice(), text);
        (redacted != text).then_some(redacted)
    }

    /// Creates a gate for one run, with its own budgets and event log.
    pub fn for_run(&self) -> Arc<RunGate> {
        self.new_run(None)
    }

    /// Creates a gate for one run like [`Gate::for_run`], whose `egress`
    /// spans carry `execution_id` in their `execution` field.
    pub fn for_execution(&self, execution_id: &str) -> Arc<RunGate> {
        self.new_run(Some(execution_id.to_owned()))
    }

    fn new_run(&self, execution_id: Option<String>) -> Arc<RunGate> {
        Arc::new(RunGate {
            config: Arc::clone(&self.config),
            usage: Mutex::new(HashMap::new()),
            events: Mutex::new(Vec::new()),
            execution_id,
        })
    }
}

/// Characters of an invalid request's URL and method kept in its record.
const MAX_RECORDED_URL_CHARS: usize = 2048;

/// The decision on one request hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Sent, and a response came back.
    Allowed,
    /// Refused by the policy or a budget before anything was sent.
    Denied,
    /// Allowed but failed: connection, timeout or size.
    Failed,
}

impl Decision {
    /// Lowercase name, as recorded.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Denied => "denied",
            Decision::Failed => "failed",
        }
    }
}

/// One request hop, for the run's report and the audit trail. Secrets
/// are redacted from the URL.
#[derive(Debug, Clone, Serialize)]
pub struct EgressEvent {
    /// When the hop started, in milliseconds since the Unix epoch.
    pub started_at_ms: u128,
    /// Method sent.
    pub method: String,
    /// URL of this hop.
    pub url: String,
    /// 0 for the guest's request, then 1, 2... for redirects.
    pub hop: u32,
    /// The rule that allowed it, if one did.
    pub rule: Option<String>,
    /// The decision.
    pub decision: Decision,
    /// The reason it was denied or failed.
    pub reason: Option<String>,
    /// The address connected to.
    pub address: Option<String>,
    /// Response status.
    pub status: Option<u16>,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Names of the secrets injected (never their values).
    pub secrets_injected: Vec<String>,
    /// Time the hop took, in milliseconds.
    pub duration_ms: u128,
}

#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    requests: u32,
    bytes: u64,
}

/// The gate of one run: the shared rules plus this run's budgets and events.
#[derive(Debug)]
pub struct RunGate {
    config: Arc<GateConfig>,
    usage: Mutex<HashMap<String, Usage>>,
    events: Mutex<Vec<EgressEvent>>,
    /// Execution the run belongs to, recorded on each `egress` span.
    execution_id: Option<String>,
}

impl RunGate {
    /// Returns the hops recorded so far, in order.
    pub fn events(&self) -> Vec<EgressEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Returns the execution id given to [`Gate::for_execution`].
    pub fn execution_id(&self) -> Option<&str> {
        self.execution_id.as_deref()
    }

    /// Stores the hop's event and copies its outcome onto the hop's span.
    fn record(&self, hop: &Hop<'_>, event: EgressEvent) {
        hop.span.record("decision", event.decision.name());
        if let Some(rule) = &event.rule {
            hop.span.record("rule", rule.as_str());
        }
        if let Some(status) = event.status {
            hop.span.record("status", status);
        }
        hop.span.record("bytes_sent", event.bytes_sent);
        hop.span.record("bytes_received", event.bytes_received);
        tracing::debug!(parent: &hop.span, "egress hop finished");
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    /// Records a request refused as invalid before its first hop, and
    /// returns the error for the guest. The URL is kept as the guest wrote
    /// it, cut to [`MAX_RECORDED_URL_CHARS`], with secret values redacted.
    fn refuse_invalid(&self, method: &str, url: &str, reason: String) -> FetchError {
        let shown: String = url.chars().take(MAX_RECORDED_URL_CHARS).collect();
        let method: String = method.chars().take(MAX_RECORDED_URL_CHARS).collect();
        let event = EgressEvent {
            started_at_ms: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
            method,
            url: redact_text(self.config.secrets.as_slice(), &shown),
            hop: 0,
            rule: None,
            decision: Decision::Denied,
            reason: Some(redact_text(self.config.secrets.as_slice(), &reason)),
            address: None,
            status: None,
            bytes_sent: 0,
            bytes_received: 0,
            secrets_injected: Vec::new(),
            duration_ms: 0,
        };
        tracing::debug!(
            execution = self.execution_id.as_deref(),
            "egress request invalid"
        );
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
        FetchError::new(FetchErrorKind::InvalidRequest, reason)
    }

    /// Records a refused hop and returns the error for the guest.
    fn deny(
        &self,
        hop: &Hop<'_>,
        rule: Option<&str>,
        kind: FetchErrorKind,
        reason: String,
    ) -> FetchError {
        hop.span.record("error", kind.name());
        self.record(hop, hop.event(rule, Decision::Denied, Some(reason.clone())));
        FetchError::new(kind, reason)
    }

    fn fail(
        &self,
        hop: &Hop<'_>,
        rule: &str,
        address: Option<SocketAddr>,
        error: FetchError,
    ) -> FetchError {
        let mut event = hop.event(Some(rule), Decision::Failed, Some(error.message.clone()));
        event.address = address.map(|a| a.to_string());
        hop.span.record("error", error.kind.name());
        self.record(hop, event);
        error
    }

    /// Reserves one request and `bytes` of the rule's budget.
    fn reserve(&self, rule: &EgressRule, bytes: u64) -> Result<(), String> {
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        let used = usage.entry(rule.name.clone()).or_default();
        let max_requests = rule.max_requests.unwrap_or(DEFAULT_MAX_REQUESTS);
        if used.requests >= max_requests {
            return Err(format!(
                "request budget of egress rule {:?} is used up: {max_requests} requests per run",
                rule.name
            ));
        }
        let max_bytes = rule.max_bytes.map(|b| b.0).unwrap_or(DEFAULT_MAX_BYTES);
        if used.bytes.saturating_add(bytes) > max_bytes {
            return Err(format!(
                "byte budget of egress rule {:?} is used up: {max_bytes} bytes per run",
                rule.name
            ));
        }
        used.requests += 1;
        used.bytes += bytes;
        Ok(())
    }

    /// Adds `bytes` to the rule's byte count, failing when it passes the
    /// budget.
    fn charge(&self, rule: &EgressRule, bytes: u64) -> Result<(), String> {
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        let used = usage.entry(rule.name.clone()).or_default();
        used.bytes = used.bytes.saturating_add(bytes);
        let max_bytes = rule.max_bytes.map(|b| b.0).unwrap_or(DEFAULT_MAX_BYTES);
        if used.bytes > max_bytes {
            return Err(format!(
                "byte budget of egress rule {:?} is used up: {max_bytes} bytes per run",
                rule.name
            ));
        }
        Ok(())
    }

    async fn resolve(&self, target: &Target) -> Result<Vec<IpAddr>, String> {
        if target.host_is_ip {
            let address: IpAddr = target
                .host
                .parse()
                .map_err(|_| format!("{} is not a valid IP address", target.host))?;
            return Ok(vec![address]);
        }
        if let Some(pin) = self
            .config
            .resolve
            .iter()
            .find(|pin| pin.host == target.host && pin.port == target.port)
        {
            return Ok(pin.addresses.clone());
        }
        let found = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|error| format!("failed to resolve {}: {error}", target.host))?;
        let addresses: Vec<IpAddr> = found.map(|address| address.ip()).collect();
        if addresses.is_empty() {
            return Err(format!("failed to resolve {}: no addresses", target.host));
        }
        Ok(addresses)
    }

    /// Sends one hop to an already checked rule and address.
    async fn send(
        &self,
        hop: &Hop<'_>,
        target: &Target,
        rule: &EgressRule,
        addresses: &[SocketAddr],
        headers: &[(String, String)],
    ) -> Result<(reqwest::Response, SocketAddr), FetchError> {
        let timeout = rule.timeout.map(|t| t.0).unwrap_or(DEFAULT_REQUEST_TIMEOUT);
        let connection_error = |error: reqwest::Error| {
            let kind = match error.is_timeout() {
                true => FetchErrorKind::Timeout,
                false => FetchErrorKind::ConnectionFailed,
            };
            FetchError::new(
                kind,
                format!("request to {} failed: {}", target.host, error_chain(&error)),
            )
        };

        // Pinning the checked addresses means reqwest performs no lookup of
        // its own, so DNS cannot return a different address the second time.
        // reqwest looks up the URL's host exactly as spelled, so the pin also
        // covers that spelling. Otherwise a form the rules normalize, such as
        // a trailing dot, would miss the pin and trigger a fresh DNS lookup.
        let url_host = hop.url.host_str().unwrap_or(&target.host).to_owned();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .resolve_to_addrs(&target.host, addresses)
            .resolve_to_addrs(&url_host, addresses)
            .build()
            .map_err(|error| {
                FetchError::new(
                    FetchErrorKind::ConnectionFailed,
                    format!("failed to create the HTTP client: {error}"),
                )
            })?;

        let method = reqwest::Method::from_bytes(hop.method.as_bytes()).map_err(|_| {
            FetchError::new(
                FetchErrorKind::InvalidRequest,
                format!("invalid method {:?}", hop.method),
            )
        })?;
        let mut builder = client.request(method, hop.url.clone());
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = hop.body {
            builder = builder.body(body.to_vec());
        }
        let request = builder.build().map_err(|error| {
            FetchError::new(
                FetchErrorKind::InvalidRequest,
                format!("invalid request: {}", error_chain(&error)),
            )
        })?;

        let response = client.execute(request).await.map_err(connection_error)?;
        let address = response.remote_addr().unwrap_or(addresses[0]);
        Ok((response, address))
    }
}

/// The parts of a request hop needed for records.
struct Hop<'a> {
    /// The hop's `egress` span, which its outcome is recorded on.
    span: tracing::Span,
    url: &'a Url,
    method: &'a str,
    body: Option<&'a [u8]>,
    number: u32,
    started: Instant,
    started_at: SystemTime,
    secrets: &'a [Secret],
}

impl Hop<'_> {
    fn event(&self, rule: Option<&str>, decision: Decision, reason: Option<String>) -> EgressEvent {
        EgressEvent {
            started_at_ms: self
                .started_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
            method: self.method.to_owned(),
            url: redact_text(self.secrets, self.url.as_str()),
            hop: self.number,
            rule: rule.map(str::to_owned),
            decision,
            reason,
            address: None,
            status: None,
            bytes_sent: 0,
            bytes_received: 0,
            secrets_injected: Vec::new(),
            duration_ms: self.started.elapsed().as_millis(),
        }
    }
}

#[async_trait::async_trait]
impl Fetch for RunGate {
    async fn fetch(&self, request: HttpRequest) -> Result<HttpResponse, FetchError> {
        let secrets = self.config.secrets.as_slice();
        let invalid = |message: String| FetchError::new(FetchErrorKind::InvalidRequest, message);
        // A request refused before its first hop is recorded too: the
        // audit trail lists every request the guest tried.
        let refuse = |message: String| self.refuse_invalid(&request.method, &request.url, message);

        let mut url = parse_url(&request.url).map_err(refuse)?;
        let mut method = request.method.trim().to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(is_token_byte) {
            return Err(refuse(format!("invalid method {:?}", request.method)));
        }
        let mut guest_headers = clean_headers(&request.headers).map_err(refuse)?;
        let mut body = request.body;

        for number in 0..=MAX_REDIRECTS {
            let span = self.hop_span(&url, &method, number);
            let hop = Hop {
                span: span.clone(),
                url: &url,
                method: &method,
                body: body.as_deref(),
                number,
                started: Instant::now(),
                started_at: SystemTime::now(),
                secrets,
            };
            let response = self
                .fetch_hop(&hop, &guest_headers)
                .instrument(span)
                .await?;

            let location = response
                .headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("location"));
            let is_redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308);
            let (true, true, Some((_, location))) =
                (request.follow_redirects, is_redirect, location)
            else {
                return Ok(response);
            };

            let next = url.join(location).map_err(|error| {
                invalid(format!("invalid redirect location {location:?}: {error}"))
            })?;
            let next = parse_url(next.as_str()).map_err(invalid)?;
            if response.status == 303 || (matches!(response.status, 301 | 302) && method == "POST")
            {
                method = "GET".to_owned();
                body = None;
            }
            // Credentials the guest set for one origin must not reach
            // another, as browsers and HTTP libraries do when they follow a
            // redirect themselves. Policy secrets are chosen per hop anyway.
            if next.origin() != url.origin() {
                guest_headers.retain(|(name, _)| {
                    !CROSS_ORIGIN_STRIPPED.contains(&name.to_ascii_lowercase().as_str())
                });
            }
            url = next;
        }
        Err(FetchError::new(
            FetchErrorKind::InvalidRequest,
            format!("too many redirects: more than {MAX_REDIRECTS}"),
        ))
    }
}

impl RunGate {
    /// Creates the `egress` span of one hop. It names the destination by
    /// scheme, host and port only: the path and query may carry guest data
    /// or tokens, and headers and bodies are never recorded.
    fn hop_span(&self, url: &Url, method: &str, number: u32) -> tracing::Span {
        let span = tracing::info_span!(
            "egress",
            execution = tracing::field::Empty,
            method,
            scheme = url.scheme(),
            host = url.host_str().unwrap_or(""),
            port = url.port_or_known_default(),
            hop = number,
            decision = tracing::field::Empty,
            rule = tracing::field::Empty,
            error = tracing::field::Empty,
            status = tracing::field::Empty,
            bytes_sent = tracing::field::Empty,
            bytes_received = tracing::field::Empty,
        );
        if let Some(id) = &self.execution_id {
            span.record("execution", id.as_str());
        }
        span
    }

    async fn fetch_hop(
        &self,
        hop: &Hop<'_>,
        guest_headers: &[(String, String)],
    ) -> Result<HttpResponse, FetchError> {
        let Some(target) = Target::new(hop.url, hop.method) else {
            return Err(FetchError::new(
                FetchErrorKind::InvalidRequest,
                format!("URL {} has no host", hop.url),
            ));
        };

        let rule = match evaluate(&self.config.rules, &target) {
            Verdict::Allowed(rule) => rule,
            Verdict::Denied(reason) => {
                return Err(self.deny(hop, None, FetchErrorKind::Denied, reason));
            }
        };

        let body_len = hop.body.map(|b| b.len() as u64).unwrap_or(0);
        let max_request = rule
            .max_request_bytes
            .map(|b| b.0)
            .unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
        if body_len > max_request {
            let reason = format!(
                "request body of {body_len} bytes is over the limit of {max_request} bytes of egress rule {:?}",
                rule.name
            );
            return Err(self.deny(hop, Some(&rule.name), FetchErrorKind::TooLarge, reason));
        }
        if let Err(reason) = self.reserve(rule, body_len) {
            return Err(self.deny(
                hop,
                Some(&rule.name),
                FetchErrorKind::BudgetExhausted,
                reason,
            ));
        }

        let resolved = match self.resolve(&target).await {
            Ok(resolved) => resolved,
            Err(reason) => {
                let error = FetchError::new(FetchErrorKind::ConnectionFailed, reason);
                return Err(self.fail(hop, &rule.name, None, error));
            }
        };
        // Only addresses that pass the check are handed to the client, so a
        // name that resolves to both a public and a private address can
        // only reach the public one.
        let mut permitted = Vec::new();
        let mut refused = None;
        for address in &resolved {
            match special_range(*address) {
                Some(range) if !rule.allow_private_addresses => {
                    refused.get_or_insert((*address, range));
                }
                _ => permitted.push(SocketAddr::new(*address, target.port)),
            }
        }
        if let (true, Some((address, range))) = (permitted.is_empty(), refused) {
            let reason = format!(
                "request denied by policy: {} resolves to {address}, {range}; egress rule {:?} \
                 does not allow such addresses (allow_private_addresses = true would)",
                target.host, rule.name
            );
            return Err(self.deny(hop, Some(&rule.name), FetchErrorKind::Denied, reason));
        }

        let mut headers: Vec<(String, String)> = guest_headers
            .iter()
            .filter(|(name, _)| {
                !self
                    .config
                    .secrets
                    .iter()
                    .any(|s| s.rule == rule.name && s.header.eq_ignore_ascii_case(name))
            })
            .cloned()
            .collect();
        let mut injected = Vec::new();
        for secret in self.config.secrets.iter().filter(|s| s.rule == rule.name) {
            headers.push((secret.header.clone(), secret.header_value()));
            injected.push(secret.name.clone());
        }

        let (response, address) = match self.send(hop, &target, rule, &permitted, &headers).await {
            Ok(sent) => sent,
            Err(error) => {
                return Err(self.fail(hop, &rule.name, permitted.first().copied(), error));
            }
        };

        let status = response.status();
        let mut response_headers = Vec::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes());
            response_headers.push((
                name.as_str().to_owned(),
                redact_text(self.config.secrets.as_slice(), &value),
            ));
        }
        let final_url = response.url().clone();

        let max_response = rule
            .max_response_bytes
            .map(|b| b.0)
            .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
        let mut body = Vec::new();
        let mut response = response;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() as u64 + chunk.len() as u64 > max_response {
                        let error = FetchError::new(
                            FetchErrorKind::TooLarge,
                            format!(
                                "response from {} is over the limit of {max_response} bytes of egress rule {:?}",
                                target.host, rule.name
                            ),
                        );
                        return Err(self.fail(hop, &rule.name, Some(address), error));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => {
                    let kind = match error.is_timeout() {
                        true => FetchErrorKind::Timeout,
                        false => FetchErrorKind::ConnectionFailed,
                    };
                    let error = FetchError::new(
                        kind,
                        format!(
                            "reading the response from {} failed: {}",
                            target.host,
                            error_chain(&error)
                        ),
                    );
                    return Err(self.fail(hop, &rule.name, Some(address), error));
                }
            }
        }
        if let Err(reason) = self.charge(rule, body.len() as u64 + header_bytes(&response_headers))
        {
            let error = FetchError::new(FetchErrorKind::BudgetExhausted, reason);
            return Err(self.fail(hop, &rule.name, Some(address), error));
        }
        // A redacted body changes length; a stale Content-Length would both
        // mislead the guest's HTTP library and reveal the secret's length.
        if redact_bytes(self.config.secrets.as_slice(), &mut body) {
            for (name, value) in &mut response_headers {
                if name.eq_ignore_ascii_case("content-length") {
                    *value = body.len().to_string();
                }
            }
        }

        let mut event = hop.event(Some(&rule.name), Decision::Allowed, None);
        event.address = Some(address.to_string());
        event.status = Some(status.as_u16());
        event.bytes_sent = body_len;
        event.bytes_received = body.len() as u64;
        event.secrets_injected = injected;
        self.record(hop, event);

        Ok(HttpResponse {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_owned(),
            headers: response_headers,
            body,
            url: redact_text(self.config.secrets.as_slice(), final_url.as_str()),
        })
    }
}

/// Parses a guest URL: absolute, http or https, with a host and without
/// credentials.
fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|error| format!("invalid URL {text:?}: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "invalid URL {text:?}: only http and https are supported"
        ));
    }
    if url.host().is_none() {
        return Err(format!("invalid URL {text:?}: it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "invalid URL {text:?}: URLs with credentials (user@host) are not allowed; the policy injects credentials"
        ));
    }
    Ok(url)
}

/// Checks header names and values and drops those the gate sets itself.
fn clean_headers(headers: &[(String, String)]) -> Result<Vec<(String, String)>, String> {
    let mut cleaned = Vec::new();
    for (name, value) in headers {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(format!("invalid header name {name:?}"));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(format!(
                "invalid value for header {name:?}: it contains a line break or NUL"
            ));
        }
        let lower = name.to_ascii_lowercase();
        if FORBIDDEN_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
            continue;
        }
        cleaned.push((name.clone(), value.clone()));
    }
    Ok(cleaned)
}

/// Bytes the headers take on the wire: name, `: `, value and CRLF each.
fn header_bytes(headers: &[(String, String)]) -> u64 {
    headers
        .iter()
        .map(|(name, value)| (name.len() + value.len() + 4) as u64)
        .sum()
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_override_parses() {
        let pin = ResolveOverride::parse("API.example.com:8443:127.0.0.1,[::1]").expect("valid");
        assert_eq!(pin.host, "api.example.com");
        assert_eq!(pin.port, 8443);
        assert_eq!(
            pin.addresses,
            vec![
                "127.0.0.1".parse::<IpAddr>().expect("v4"),
                "::1".parse().expect("v6")
            ]
        );
    }

    #[test]
    fn resolve_override_rejects_garbage() {
        for bad in [
            "host",
            "host:port:1.2.3.4",
            "host:80:nope",
            ":80:1.2.3.4",
            "host:0:1.2.3.4",
        ] {
            assert!(ResolveOverride::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_with_credentials_rejected() {
        let error = parse_url("http://user:pw@example.com/").expect_err("credentials");
        assert!(error.contains("credentials"), "{error}");
    }

    #[test]
    fn non_http_schemes_rejected() {
        for url in ["file:///etc/passwd", "ftp://example.com/", "gopher://x/"] {
            assert!(parse_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn backslash_is_a_path_separator() {
        // WHATWG parsing treats `\` as `/` in http URLs, so the host checked
        // is the host connected to.
        let url = parse_url("http://allowed.example\\@evil.example/").expect("parses");
        assert_eq!(url.host_str(), Some("allowed.example"));
    }

    #[test]
    fn forbidden_headers_dropped() {
        let headers = vec![
            ("Host".to_owned(), "evil.example".to_owned()),
            ("X-Ok".to_owned(), "1".to_owned()),
            ("Proxy-Foo".to_owned(), "1".to_owned()),
        ];
        let cleaned = clean_headers(&headers).expect("valid");
        assert_eq!(cleaned, vec![("X-Ok".to_owned(), "1".to_owned())]);
    }

    #[test]
    fn header_injection_rejected() {
        let headers = vec![("X-A".to_owned(), "1\r\nX-B: 2".to_owned())];
        assert!(clean_headers(&headers).is_err());
    }
}
