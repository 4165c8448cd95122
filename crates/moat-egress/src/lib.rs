//! moat's HTTP gate: the one path from a guest to the network.
//!
//! Every request a guest makes through the `http.fetch` import reaches a
//! [`Fetch`] implementation here. The gate checks it against the policy's
//! allow-list, resolves and pins the address, follows and checks redirects,
//! injects secrets and caps sizes and time.

mod types;

pub use types::{Fetch, FetchError, FetchErrorKind, HttpRequest, HttpResponse};
