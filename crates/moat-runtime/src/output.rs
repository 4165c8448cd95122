//! Capped in-memory pipes that capture a guest's stdout and stderr.
//!
//! A pipe keeps bytes up to its cap. A write that would pass the cap stores
//! the part that fits, marks the pipe truncated and traps the guest with
//! [`OutputLimitExceeded`], so output without bound ends the run instead of
//! filling the host's memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Upper bound of the write the pipe offers the guest at once.
///
/// The offer is the room left under the cap plus one byte, so that a write
/// the cap cannot hold reaches the pipe and ends the run. It must not be
/// smaller: CPython's `sys.stdout` in the guest is a text wrapper directly
/// over an unbuffered file, which drops the rest of a write that the stream
/// accepts only in part.
const MAX_WRITE_PERMIT_BYTES: usize = 1 << 30;

/// The trap raised when a guest writes past its output cap.
#[derive(Debug, thiserror::Error)]
#[error("{stream} passed its limit of {limit} bytes")]
pub struct OutputLimitExceeded {
    /// `stdout` or `stderr`.
    pub stream: &'static str,
    /// The cap, in bytes.
    pub limit: u64,
}

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

/// One captured output stream. Clones share the same buffer and cap, so the
/// host keeps a handle while the WASI context owns another.
#[derive(Debug, Clone)]
pub struct CappedPipe {
    name: &'static str,
    limit: Arc<AtomicU64>,
    captured: Arc<Mutex<Captured>>,
}

impl CappedPipe {
    /// Creates an empty pipe named `name` (for messages) that keeps at most
    /// `limit` bytes.
    pub fn new(name: &'static str, limit: u64) -> Self {
        CappedPipe {
            name,
            limit: Arc::new(AtomicU64::new(limit)),
            captured: Arc::default(),
        }
    }

    /// Changes the cap, for this handle and every clone, for the writes
    /// that follow.
    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Removes and returns what was captured so far, and whether a write was
    /// cut off, leaving the pipe empty for the next run.
    pub fn take(&self) -> (Vec<u8>, bool) {
        let mut captured = self.captured.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = std::mem::take(&mut *captured);
        (taken.bytes, taken.truncated)
    }

    /// Bytes the guest may write in one call: the room left, plus one.
    fn permit(&self) -> usize {
        let captured = self.captured.lock().unwrap_or_else(PoisonError::into_inner);
        let limit = usize::try_from(self.limit()).unwrap_or(usize::MAX);
        limit
            .saturating_sub(captured.bytes.len())
            .saturating_add(1)
            .min(MAX_WRITE_PERMIT_BYTES)
    }

    fn append(&self, bytes: &[u8]) -> StreamResult<()> {
        let mut captured = self.captured.lock().unwrap_or_else(PoisonError::into_inner);
        let limit = usize::try_from(self.limit()).unwrap_or(usize::MAX);
        let room = limit.saturating_sub(captured.bytes.len());

        if bytes.len() <= room {
            captured.bytes.extend_from_slice(bytes);
            return Ok(());
        }

        captured.bytes.extend_from_slice(&bytes[..room]);
        captured.truncated = true;
        Err(StreamError::Trap(wasmtime::Error::new(
            OutputLimitExceeded {
                stream: self.name,
                limit: self.limit(),
            },
        )))
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(AsyncCappedPipe(self.clone()))
    }
}

#[async_trait::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(self.permit())
    }
}

/// The same pipe for the WASIp3-style asynchronous writer interface, which
/// reports a write past the cap as an I/O error.
struct AsyncCappedPipe(CappedPipe);

impl tokio::io::AsyncWrite for AsyncCappedPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let result = match self.0.append(buf) {
            Ok(()) => Ok(buf.len()),
            Err(_) => Err(std::io::Error::other(OutputLimitExceeded {
                stream: self.0.name,
                limit: self.0.limit(),
            })),
        };
        std::task::Poll::Ready(result)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_bytes_within_limit() {
        let pipe = CappedPipe::new("stdout", 10);
        pipe.append(b"hello").expect("fits");
        assert_eq!(pipe.take(), (b"hello".to_vec(), false));
    }

    #[test]
    fn write_past_limit_keeps_prefix_and_traps() {
        let pipe = CappedPipe::new("stdout", 4);
        let error = pipe.append(b"abcdef").expect_err("past the cap");
        let StreamError::Trap(trap) = error else {
            panic!("expected a trap, got {error:?}");
        };
        assert_eq!(trap.to_string(), "stdout passed its limit of 4 bytes");
        assert_eq!(pipe.take(), (b"abcd".to_vec(), true));
    }

    #[test]
    fn set_limit_applies_to_clones() {
        let pipe = CappedPipe::new("stdout", 100);
        let clone = pipe.clone();
        pipe.set_limit(2);
        assert!(clone.append(b"abc").is_err());
        assert_eq!(pipe.take(), (b"ab".to_vec(), true));
    }

    #[test]
    fn take_resets_pipe() {
        let pipe = CappedPipe::new("stderr", 4);
        let _ = pipe.append(b"abcdef");
        let _ = pipe.take();
        pipe.append(b"ab").expect("room again after take");
        assert_eq!(pipe.take(), (b"ab".to_vec(), false));
    }
}
