//! moat's HTTP gate: the one path from a guest to the network.
//!
//! Every request a guest makes through the `http.fetch` import reaches a
//! [`Fetch`] implementation here. The gate checks it against the policy's
//! allow-list, resolves and pins the address, follows and checks redirects,
//! injects secrets and caps sizes and time.

mod address;
mod gate;
mod rules;
mod secrets;
mod types;

pub use address::special_range;
pub use gate::{
    DEFAULT_MAX_BYTES, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_REQUESTS, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_REQUEST_TIMEOUT, Decision, EgressEvent, Gate, GateConfig, MAX_REDIRECTS,
    ResolveOverride, RunGate,
};
pub use rules::host_matches;
pub use secrets::{Secret, SecretError};
pub use types::{Fetch, FetchError, FetchErrorKind, HttpRequest, HttpResponse};
