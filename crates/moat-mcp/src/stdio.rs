//! The stdio transport: one MCP connection over standard input and output.

use std::sync::Arc;

use rmcp::ServiceExt;
use rmcp::transport::async_rw::AsyncRwTransport;
use tokio_util::sync::CancellationToken;

use crate::server::MoatServer;
use crate::state::ServerState;

/// An error that stopped the stdio transport.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    /// The client did not complete the MCP handshake.
    #[error("the MCP handshake over stdio failed: {0}")]
    Initialize(String),
    /// The service task failed.
    #[error("the MCP service over stdio failed: {0}")]
    Service(String),
}

/// Serves one client on stdin and stdout until it disconnects or
/// `shutdown` is cancelled, then drains the runs in progress.
pub async fn serve(state: Arc<ServerState>, shutdown: CancellationToken) -> Result<(), StdioError> {
    let expiry = tokio::spawn(Arc::clone(&state).expire_sessions(shutdown.clone()));
    let handler = MoatServer::new(Arc::clone(&state));
    // The service gets its own token, not a child of `shutdown`: cancelling
    // it cancels every request, and runs must first get their grace period.
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    let transport = AsyncRwTransport::new_server(stdin, stdout)
        .with_max_line_length(state.config.max_request_bytes);
    let serving = handler.serve_with_ct(transport, CancellationToken::new());
    let served = tokio::select! {
        served = serving => served,
        // A signal during the handshake is a clean stop, not a failure.
        _ = shutdown.cancelled() => {
            expiry.abort();
            return Ok(());
        }
    };
    let running = match served {
        Ok(running) => running,
        Err(error) => {
            expiry.abort();
            return Err(StdioError::Initialize(error.to_string()));
        }
    };
    tracing::info!("serving MCP over stdio");

    let stop = running.cancellation_token();
    let waiting = running.waiting();
    tokio::pin!(waiting);
    let finished = tokio::select! {
        finished = &mut waiting => Some(finished),
        _ = shutdown.cancelled() => None,
    };
    let result = match finished {
        Some(finished) => {
            tracing::info!(reason = ?finished, "client disconnected");
            state.shut_down(std::time::Duration::ZERO).await;
            finished
        }
        None => {
            tracing::info!("shutting down");
            state.shut_down(state.config.shutdown_grace).await;
            stop.cancel();
            waiting.await
        }
    };
    expiry.abort();
    result
        .map(|_| ())
        .map_err(|error| StdioError::Service(error.to_string()))
}
