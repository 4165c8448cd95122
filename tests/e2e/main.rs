//! End-to-end tests of the moat runtime against the real Python and
//! JavaScript guests.
//!
//! The guests come from `MOAT_GUEST_DIR` (set by `cargo xtask test`), or
//! from `target/guests`; build them with `cargo xtask guests`. A missing
//! guest fails the tests that need it. Compiled guests are cached in
//! `MOAT_CACHE_DIR`, or `target/moat-cache`, across test processes.

mod cache;
mod egress;
mod escapes;
mod http_server;
mod javascript;
mod limits;
mod python_errors;
mod python_stdlib;
mod support;
mod traps;
