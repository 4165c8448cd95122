//! The request, response and error types that cross the gate, and the
//! trait the runtime calls.

use std::fmt;

/// A request as the guest built it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method in upper case, such as `GET`.
    pub method: String,
    /// Absolute URL as the guest wrote it; not yet parsed or checked.
    pub url: String,
    /// Headers in the order given.
    pub headers: Vec<(String, String)>,
    /// Body, if any.
    pub body: Option<Vec<u8>>,
    /// Whether the gate follows redirects, checking each hop.
    pub follow_redirects: bool,
}

/// A response read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Reason phrase; empty when unknown.
    pub reason: String,
    /// Headers in the order received.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// URL after redirects.
    pub url: String,
}

/// The category of a failed request, as the guest sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchErrorKind {
    /// The policy does not allow the request.
    Denied,
    /// The URL, method or a header is malformed.
    InvalidRequest,
    /// The run's request count or byte budget is used up.
    BudgetExhausted,
    /// The request or response passed its size cap.
    TooLarge,
    /// The server did not answer in time.
    Timeout,
    /// DNS, TCP or TLS failed.
    ConnectionFailed,
}

impl FetchErrorKind {
    /// Lowercase name, as recorded.
    pub fn name(self) -> &'static str {
        match self {
            FetchErrorKind::Denied => "denied",
            FetchErrorKind::InvalidRequest => "invalid_request",
            FetchErrorKind::BudgetExhausted => "budget_exhausted",
            FetchErrorKind::TooLarge => "too_large",
            FetchErrorKind::Timeout => "timeout",
            FetchErrorKind::ConnectionFailed => "connection_failed",
        }
    }
}

/// Why the gate returned no response. The message is shown to guest code,
/// so it names the rule or limit involved and never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    /// The category.
    pub kind: FetchErrorKind,
    /// What happened.
    pub message: String,
}

impl FetchError {
    /// Creates an error of `kind` with `message`.
    pub fn new(kind: FetchErrorKind, message: impl fmt::Display) -> Self {
        FetchError {
            kind,
            message: message.to_string(),
        }
    }
}

/// Something that carries out guest HTTP requests: the policy gate, or a
/// gate that denies everything when no policy allows network access.
#[async_trait::async_trait]
pub trait Fetch: Send + Sync + fmt::Debug {
    /// Checks and performs one request.
    async fn fetch(&self, request: HttpRequest) -> Result<HttpResponse, FetchError>;
}
