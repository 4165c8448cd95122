//! moat's MCP server: tools that run Python and JavaScript in sandboxes,
//! sessions that keep an interpreter alive, workspace files, and the stdio
//! and streamable HTTP transports.
//!
//! [`ServerState`] holds what every connection shares; [`MoatServer`] is the
//! rmcp handler of one connection; [`stdio::serve`] and [`http::serve`]
//! run it on a transport.

mod audit;
mod config;
mod describe;
mod errors;
mod files;
pub mod http;
mod render;
mod run;
mod server;
mod sessions;
mod state;
pub mod stdio;
mod tools;
mod types;
mod workspace;

pub use config::{
    DEFAULT_MAX_CODE_BYTES, DEFAULT_MAX_CONCURRENT_EXECUTIONS, DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_SESSIONS, DEFAULT_RUN_TIMEOUT,
    DEFAULT_SESSION_IDLE_TIMEOUT, DEFAULT_SESSION_MAX_LIFETIME, DEFAULT_SHUTDOWN_GRACE, Identity,
    MAX_RUN_FUEL, MAX_RUN_MEMORY_BYTES, MAX_RUN_OUTPUT_BYTES, MAX_RUN_TIMEOUT, ServerConfig,
};
pub use server::MoatServer;
pub use state::ServerState;
