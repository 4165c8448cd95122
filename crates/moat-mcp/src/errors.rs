//! JSON-RPC errors for requests the server rejects before any code runs.
//!
//! A guest's exception or a limit it hit is a tool result with `isError`;
//! these are for requests that cannot be carried out at all.

use rmcp::ErrorData;
use rmcp::model::ErrorCode;
use serde_json::json;

use crate::sessions::SessionError;
use crate::workspace::WorkspaceError;

/// Error code of a request rejected because the server is at capacity.
/// The range -32000 to -32099 is JSON-RPC's "server error" range.
pub const SERVER_BUSY: ErrorCode = ErrorCode(-32000);

/// Error code of a request rejected because the server is shutting down.
pub const SHUTTING_DOWN: ErrorCode = ErrorCode(-32001);

/// Error code of a request rejected because a quota is used up (MCP itself
/// uses -32002 for "resource not found").
pub const QUOTA_EXCEEDED: ErrorCode = ErrorCode(-32003);

/// A malformed or impossible argument: -32602 with `message`.
pub fn invalid_params(message: impl Into<String>) -> ErrorData {
    ErrorData::invalid_params(message.into(), None)
}

/// The concurrency limit is reached.
pub fn busy(limit: usize) -> ErrorData {
    ErrorData::new(
        SERVER_BUSY,
        format!(
            "server busy: {limit} executions are already running, the server's maximum \
             (max_concurrent_executions); retry when one finishes"
        ),
        Some(json!({ "max_concurrent_executions": limit })),
    )
}

/// Shutdown has started.
pub fn shutting_down() -> ErrorData {
    ErrorData::new(
        SHUTTING_DOWN,
        "the server is shutting down and accepts no new runs",
        None,
    )
}

/// A failure of moat itself, such as a guest that could not be loaded.
pub fn internal(message: impl Into<String>) -> ErrorData {
    ErrorData::internal_error(message.into(), None)
}

impl From<SessionError> for ErrorData {
    fn from(error: SessionError) -> Self {
        match &error {
            SessionError::NotFound(_) => invalid_params(error.to_string()),
            SessionError::LimitReached(limit) => ErrorData::new(
                QUOTA_EXCEEDED,
                error.to_string(),
                Some(json!({ "max_sessions": limit })),
            ),
            SessionError::Setup(_) => internal(error.to_string()),
        }
    }
}

impl From<WorkspaceError> for ErrorData {
    fn from(error: WorkspaceError) -> Self {
        invalid_params(error.to_string())
    }
}
