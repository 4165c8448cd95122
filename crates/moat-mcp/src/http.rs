//! The streamable HTTP transport: rmcp's service behind a guard that
//! checks `Host` and `Origin` against DNS rebinding and requires a bearer
//! token.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use crate::server::MoatServer;
use crate::state::ServerState;

/// Path the MCP endpoint is served at.
pub const MCP_PATH: &str = "/mcp";

/// Time open connections get to close after shutdown, before the server
/// stops waiting for them.
const CONNECTION_DRAIN: Duration = Duration::from_secs(3);

/// Options of the HTTP transport.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Bearer token every request must carry; `None` only on loopback.
    pub token: Option<String>,
    /// Extra `Host` names accepted besides the bound address and the
    /// loopback names, for a server reached under a DNS name.
    pub allowed_hosts: Vec<String>,
}

/// An error that keeps the HTTP transport from starting.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A non-loopback address without a token.
    #[error(
        "refusing to listen on {0} without a bearer token: it is reachable from other \
         machines; pass --token-file or set MOAT_TOKEN, or bind 127.0.0.1"
    )]
    TokenRequired(SocketAddr),
    /// The token is empty or has characters a header cannot carry.
    #[error("invalid bearer token: {0}")]
    InvalidToken(&'static str),
    /// Binding failed.
    #[error("failed to listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// The request checks, shared by every request.
#[derive(Debug)]
struct Guard {
    token: Option<String>,
    /// Accepted `Host` values, lowercase, each with its port.
    hosts: Vec<String>,
}

impl HttpOptions {
    /// Checks that the options are safe to serve with.
    pub fn validate(&self) -> Result<(), HttpError> {
        match &self.token {
            None if !self.bind.ip().is_loopback() => Err(HttpError::TokenRequired(self.bind)),
            Some(token) if token.is_empty() => Err(HttpError::InvalidToken("it is empty")),
            Some(token) if token.len() < 16 => Err(HttpError::InvalidToken(
                "it is shorter than 16 characters; use a random one, such as the output of \
                 `openssl rand -hex 32`",
            )),
            Some(token) if !token.bytes().all(|b| b.is_ascii_graphic()) => Err(
                HttpError::InvalidToken("it must be printable ASCII without spaces"),
            ),
            _ => Ok(()),
        }
    }
}

/// Serves MCP over streamable HTTP on `listener` until `shutdown` is
/// cancelled, then drains runs and connections.
pub async fn serve(
    state: Arc<ServerState>,
    options: HttpOptions,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    options.validate()?;
    let local = listener.local_addr().map_err(|source| HttpError::Bind {
        addr: options.bind,
        source,
    })?;

    let rmcp_stop = CancellationToken::new();
    // Host and Origin are checked by `guard`, which has the bound port, so
    // rmcp's own host list is turned off and the two cannot disagree.
    let config = StreamableHttpServerConfig::default()
        .with_max_request_body_bytes(state.config.max_request_bytes)
        .disable_allowed_hosts()
        .with_cancellation_token(rmcp_stop.clone());
    let handler_state = Arc::clone(&state);
    let service = StreamableHttpService::new(
        move || Ok(MoatServer::new(Arc::clone(&handler_state))),
        Arc::new(LocalSessionManager::default()),
        config,
    );

    let guard = Arc::new(Guard {
        token: options.token.clone(),
        hosts: accepted_hosts(local, &options.allowed_hosts),
    });
    let router = Router::new()
        .nest_service(MCP_PATH, service)
        .layer(middleware::from_fn_with_state(guard, check_request));

    tracing::info!(addr = %local, path = MCP_PATH, auth = options.token.is_some(), "serving MCP over HTTP");
    let expiry = tokio::spawn(Arc::clone(&state).expire_sessions(shutdown.clone()));

    let drained = {
        let state = Arc::clone(&state);
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            tracing::info!("shutting down");
            state.shut_down(state.config.shutdown_grace).await;
            rmcp_stop.cancel();
        }
    };
    let server = axum::serve(listener, router).with_graceful_shutdown(drained);
    let served = tokio::select! {
        served = server => served,
        _ = async {
            shutdown.cancelled().await;
            // Bounded by the grace period, the cancellation wait and the
            // connection drain; long-lived SSE streams must not hold the
            // process open.
            tokio::time::sleep(state.config.shutdown_grace + Duration::from_secs(5) + CONNECTION_DRAIN).await;
        } => {
            tracing::warn!("connections still open after shutdown; closing them");
            Ok(())
        }
    };
    expiry.abort();
    served.map_err(HttpError::Serve)
}

/// Lists the `Host` values accepted: the bound address, the loopback names when
/// bound to loopback or all interfaces, and the extra names, each with the
/// port.
fn accepted_hosts(local: SocketAddr, extra: &[String]) -> Vec<String> {
    let port = local.port();
    let mut names: Vec<String> = Vec::new();
    let ip = local.ip();
    names.push(match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    });
    if ip.is_loopback() || ip.is_unspecified() {
        names.extend(["localhost", "127.0.0.1", "[::1]"].map(String::from));
    }
    names.extend(extra.iter().map(|name| name.to_ascii_lowercase()));

    let mut hosts = Vec::new();
    for name in names {
        if name.contains(':') && !name.starts_with('[') {
            // Already host:port.
            hosts.push(name);
        } else {
            hosts.push(format!("{name}:{port}"));
            if port == 80 {
                hosts.push(name);
            }
        }
    }
    hosts
}

/// Rejects a request with a foreign `Host` or `Origin` (403) or without
/// the bearer token (401), before rmcp handles it.
async fn check_request(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let headers = request.headers();

    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_ascii_lowercase);
    let host_ok = host
        .as_deref()
        .is_some_and(|host| guard.hosts.iter().any(|allowed| allowed == host));
    if !host_ok {
        tracing::warn!(
            host = host.as_deref().unwrap_or("(none)"),
            "rejected a request with a foreign Host header"
        );
        return reject(
            StatusCode::FORBIDDEN,
            "forbidden: the Host header does not name this server (DNS rebinding protection)",
        );
    }

    if let Some(origin) = headers.get(header::ORIGIN)
        && !origin_allowed(origin, &guard.hosts)
    {
        tracing::warn!(origin = ?origin, "rejected a request with a foreign Origin header");
        return reject(
            StatusCode::FORBIDDEN,
            "forbidden: requests from this Origin are not allowed",
        );
    }

    if let Some(token) = &guard.token
        && !bearer_matches(headers, token)
    {
        tracing::warn!("rejected a request without a valid bearer token");
        let mut response = reject(
            StatusCode::UNAUTHORIZED,
            "unauthorized: send the server's token as `Authorization: Bearer TOKEN`",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"moat\""),
        );
        return response;
    }

    next.run(request).await
}

/// Checks that `origin` is `http://` or `https://` and an accepted host.
/// `Origin: null` (sandboxed frames, file pages) is rejected.
fn origin_allowed(origin: &HeaderValue, hosts: &[String]) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.to_ascii_lowercase();
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    match authority {
        Some(authority) => hosts.iter().any(|allowed| allowed == authority),
        None => false,
    }
}

/// Compares the request's bearer token with `token` in constant time.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let Some((scheme, presented)) = value.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    presented.trim().as_bytes().ct_eq(token.as_bytes()).into()
}

fn reject(status: StatusCode, message: &'static str) -> Response {
    (status, Body::from(message)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8123))
    }

    #[test]
    fn loopback_hosts_carry_the_port() {
        let hosts = accepted_hosts(loopback(), &[]);
        assert!(hosts.contains(&"localhost:8123".to_owned()));
        assert!(hosts.contains(&"127.0.0.1:8123".to_owned()));
        assert!(hosts.contains(&"[::1]:8123".to_owned()));
        assert!(!hosts.contains(&"localhost".to_owned()));
    }

    #[test]
    fn origins_must_name_an_accepted_host() {
        let hosts = accepted_hosts(loopback(), &[]);
        let allowed =
            |origin: &'static str| origin_allowed(&HeaderValue::from_static(origin), &hosts);
        assert!(allowed("http://localhost:8123"));
        assert!(allowed("http://127.0.0.1:8123"));
        assert!(!allowed("http://localhost:9999"));
        assert!(!allowed("https://evil.example"));
        assert!(!allowed("http://localhost:8123.evil.example"));
        assert!(!allowed("null"));
    }

    #[test]
    fn bearer_token_must_match_exactly() {
        let token = "0123456789abcdef-token";
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            bearer_matches(&headers, token)
        };
        assert!(with("Bearer 0123456789abcdef-token"));
        assert!(with("bearer 0123456789abcdef-token"));
        assert!(!with("Bearer 0123456789abcdef-toke"));
        assert!(!with("Basic 0123456789abcdef-token"));
        assert!(!bearer_matches(&HeaderMap::new(), token));
    }

    #[test]
    fn public_bind_needs_a_token() {
        let options = HttpOptions {
            bind: SocketAddr::from(([0, 0, 0, 0], 8123)),
            token: None,
            allowed_hosts: Vec::new(),
        };
        assert!(matches!(
            options.validate(),
            Err(HttpError::TokenRequired(_))
        ));
    }
}
