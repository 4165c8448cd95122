//! The host side of the guest's `http` import: converts between the WIT
//! types and the egress gate's, and denies everything when a sandbox has no
//! network access.

use moat_egress::{FetchError, FetchErrorKind, HttpRequest, HttpResponse};
use wasmtime::component::{HasSelf, Linker};

use crate::sandbox::{HostState, wit_http};

/// The message a guest sees when its sandbox has no network at all.
const NO_NETWORK: &str =
    "network access is denied: this sandbox has no egress policy, so no host can be reached";

/// Adds the `moat:sandbox/http` import to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit_http::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)
}

impl wit_http::Host for HostState {
    async fn fetch(
        &mut self,
        request: wit_http::Request,
    ) -> Result<wit_http::Response, wit_http::HttpError> {
        let Some(network) = self.network.clone() else {
            return Err(to_wit_error(FetchError::new(
                FetchErrorKind::Denied,
                NO_NETWORK,
            )));
        };
        let request = HttpRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
            follow_redirects: request.follow_redirects,
        };
        match network.fetch(request).await {
            Ok(response) => Ok(to_wit_response(response)),
            Err(error) => Err(to_wit_error(error)),
        }
    }
}

fn to_wit_response(response: HttpResponse) -> wit_http::Response {
    wit_http::Response {
        status: response.status,
        reason: response.reason,
        headers: response.headers,
        body: response.body,
        url: response.url,
    }
}

fn to_wit_error(error: FetchError) -> wit_http::HttpError {
    let kind = match error.kind {
        FetchErrorKind::Denied => wit_http::ErrorKind::Denied,
        FetchErrorKind::InvalidRequest => wit_http::ErrorKind::InvalidRequest,
        FetchErrorKind::BudgetExhausted => wit_http::ErrorKind::BudgetExhausted,
        FetchErrorKind::TooLarge => wit_http::ErrorKind::TooLarge,
        FetchErrorKind::Timeout => wit_http::ErrorKind::Timeout,
        FetchErrorKind::ConnectionFailed => wit_http::ErrorKind::ConnectionFailed,
    };
    wit_http::HttpError {
        kind,
        message: error.message,
    }
}
