//! Tests of the `moat` binary, run as a child process against the real
//! guests.
//!
//! The guests come from `MOAT_GUEST_DIR` (set by `cargo xtask test`), or
//! from `target/guests`; build them with `cargo xtask guests`. Compiled
//! guests are cached in `MOAT_CACHE_DIR`, or `target/moat-cache`.

mod audit;
mod bad_input;
mod check;
mod demo;
mod egress;
mod exit_codes;
mod recording;
mod run;
mod support;
mod telemetry;
