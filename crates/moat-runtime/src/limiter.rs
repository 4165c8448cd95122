//! The store's resource limiter: caps linear memory and tables, and records
//! the peak memory a guest reached.

use wasmtime::ResourceLimiter;

/// The trap raised when a guest asks for more memory than its limit.
#[derive(Debug, thiserror::Error)]
#[error("guest asked for {requested} bytes of linear memory, over its limit of {limit} bytes")]
pub struct MemoryLimitExceeded {
    /// Total bytes across the guest's memories that the growth would need.
    pub requested: u64,
    /// The limit, in bytes.
    pub limit: u64,
}

/// Tracks memory across all of a store's linear memories.
///
/// A growth past the limit traps instead of failing quietly: a failed
/// `memory.grow` inside an interpreter's allocator often aborts the
/// interpreter anyway, and a trap names the cause precisely.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: u64,
    table_elements: u64,
    /// Current size of each linear memory seen so far, by growth order.
    /// Interpreter components have a handful of memories at most.
    memories: Vec<u64>,
    peak: u64,
    exceeded: bool,
}

impl MemoryLimiter {
    /// Creates a limiter that allows `limit` bytes of linear memory in total
    /// and `table_elements` elements in each table.
    pub fn new(limit: u64, table_elements: u64) -> Self {
        MemoryLimiter {
            limit,
            table_elements,
            memories: Vec::new(),
            peak: 0,
            exceeded: false,
        }
    }

    /// Changes the limit for growths that follow. Memory already held is
    /// kept even when it is over the new limit.
    pub fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// Highest total of linear memory the guest has held, in bytes.
    pub fn peak_bytes(&self) -> u64 {
        self.peak
    }

    /// Whether a growth was refused because of the limit.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    fn total(&self) -> u64 {
        self.memories.iter().sum()
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let current = current as u64;
        let desired = desired as u64;

        // wasmtime does not say which memory grows. A memory of size
        // `current` that is not yet known is a new one (current is 0 when a
        // memory is first created); otherwise the growth applies to the first
        // memory of that size, which yields the right total either way.
        let index = match self.memories.iter().position(|&size| size == current) {
            Some(index) if current != 0 => index,
            _ => {
                self.memories.push(current);
                self.memories.len() - 1
            }
        };

        let requested = self.total() - current + desired;
        if requested > self.limit {
            self.exceeded = true;
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                requested,
                limit: self.limit,
            }));
        }

        self.memories[index] = desired;
        self.peak = self.peak.max(requested);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired as u64 <= self.table_elements)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 65536;

    #[test]
    fn tracks_peak_across_memories() {
        let mut limiter = MemoryLimiter::new(10 * PAGE as u64, 100);
        assert!(
            limiter
                .memory_growing(0, 2 * PAGE, None)
                .expect("first memory")
        );
        assert!(
            limiter
                .memory_growing(0, PAGE, None)
                .expect("second memory")
        );
        assert!(
            limiter
                .memory_growing(2 * PAGE, 4 * PAGE, None)
                .expect("growth")
        );
        assert_eq!(limiter.peak_bytes(), 5 * PAGE as u64);
        assert!(!limiter.exceeded());
    }

    #[test]
    fn growth_past_limit_traps() {
        let mut limiter = MemoryLimiter::new(4 * PAGE as u64, 100);
        assert!(limiter.memory_growing(0, 2 * PAGE, None).expect("initial"));
        let error = limiter
            .memory_growing(2 * PAGE, 5 * PAGE, None)
            .expect_err("over the limit");
        assert!(error.is::<MemoryLimitExceeded>(), "{error:?}");
        assert!(limiter.exceeded());
        assert_eq!(limiter.peak_bytes(), 2 * PAGE as u64);
    }
}
