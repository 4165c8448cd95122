//! The wasmtime engine behind moat: loads and caches the interpreter guests
//! and runs code in sandboxes under resource limits.
//!
//! A [`Runtime`] holds the engine and the compiled guests; it is created once
//! per process. A [`Sandbox`] is one interpreter instance with its own store,
//! WASI context and directories; [`Sandbox::run`] runs one piece of code in
//! it and returns a [`RunReport`].

mod cache;
mod engine;
mod error;
mod files;
mod http;
mod language;
mod limiter;
mod limits;
mod output;
mod report;
mod sandbox;

pub use cache::{CacheStatus, ComponentCache};
pub use engine::{EPOCH_TICK, GuestInfo, Runtime, RuntimeConfig};
pub use error::RuntimeError;
pub use files::{DirGrant, FileAccess, WORKSPACE_GUEST_PATH};
pub use language::{Language, UnknownLanguage};
pub use limits::{
    DEFAULT_FUEL, DEFAULT_MEMORY_BYTES, DEFAULT_STDERR_BYTES, DEFAULT_STDOUT_BYTES,
    DEFAULT_TIMEOUT, Limits, MAX_MEMORY_BYTES,
};
pub use report::{GuestError, Outcome, RunReport};
pub use sandbox::Sandbox;
