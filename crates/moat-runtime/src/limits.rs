//! Resource limits for one execution, with their defaults and validation.

use std::time::Duration;

use serde::Serialize;

use crate::error::RuntimeError;

/// Default wall-clock time one execution may take, host calls included.
/// Guards against infinite loops and code that sleeps or waits forever.
pub const DEFAULT_TIMEOUT: Duration = moat_policy::BUILTIN_TIMEOUT;

/// Default fuel, in WebAssembly instructions (roughly: wasmtime charges one
/// unit per instruction). Guards against CPU-bound code independently of
/// machine speed, so a verdict is the same on a fast and a slow machine.
/// Ten billion is several seconds of interpreter work.
pub const DEFAULT_FUEL: u64 = moat_policy::BUILTIN_FUEL;

/// Default cap on the guest's linear memory, in bytes. Guards the host's
/// memory against code that allocates without bound.
pub const DEFAULT_MEMORY_BYTES: u64 = moat_policy::BUILTIN_MEMORY_BYTES;

/// Default cap on captured stdout, in bytes. Guards the host and the caller
/// against code that prints without bound.
pub const DEFAULT_STDOUT_BYTES: u64 = moat_policy::BUILTIN_STDOUT_BYTES;

/// Default cap on captured stderr, in bytes.
pub const DEFAULT_STDERR_BYTES: u64 = moat_policy::BUILTIN_STDERR_BYTES;

/// Default cap on the number of elements in a WebAssembly table. Tables hold
/// function references; an interpreter needs a few thousand.
pub const DEFAULT_TABLE_ELEMENTS: u64 = 1_000_000;

/// Upper bound accepted for the memory limit: a 32-bit guest cannot address
/// more than 4 GiB.
pub const MAX_MEMORY_BYTES: u64 = moat_policy::MAX_MEMORY_BYTES;

/// The limits that apply to one execution. Every limit that ends a run is
/// named in the run's outcome.
///
/// TODO: cap the number and total size of files a run writes to its
/// workspace and read-write grants; today only the host's disk bounds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Wall-clock deadline, enforced by epoch interruption while the guest
    /// computes and by a host timer while it waits in a host call.
    #[serde(serialize_with = "serialize_millis", rename = "timeout_ms")]
    pub timeout: Duration,
    /// Instructions the guest may execute.
    pub fuel: u64,
    /// Bytes of linear memory the guest may grow to, across all of its
    /// memories.
    pub memory_bytes: u64,
    /// Bytes of stdout kept; writing past it ends the run.
    pub stdout_bytes: u64,
    /// Bytes of stderr kept; writing past it ends the run.
    pub stderr_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            fuel: DEFAULT_FUEL,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            stdout_bytes: DEFAULT_STDOUT_BYTES,
            stderr_bytes: DEFAULT_STDERR_BYTES,
        }
    }
}

impl Limits {
    /// Checks that every limit is usable: none is zero, and memory fits a
    /// 32-bit guest.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let invalid =
            |name: &'static str, reason: String| RuntimeError::InvalidLimit { name, reason };

        if self.timeout.is_zero() {
            return Err(invalid("timeout", "must be greater than zero".into()));
        }
        if self.fuel == 0 {
            return Err(invalid("fuel", "must be greater than zero".into()));
        }
        if self.memory_bytes == 0 {
            return Err(invalid("memory", "must be greater than zero".into()));
        }
        if self.memory_bytes > MAX_MEMORY_BYTES {
            return Err(invalid(
                "memory",
                format!(
                    "{} bytes is more than a 32-bit guest can address ({MAX_MEMORY_BYTES} bytes)",
                    self.memory_bytes
                ),
            ));
        }
        if self.stdout_bytes == 0 {
            return Err(invalid("stdout", "must be greater than zero".into()));
        }
        if self.stderr_bytes == 0 {
            return Err(invalid("stderr", "must be greater than zero".into()));
        }
        Ok(())
    }
}

fn serialize_millis<S: serde::Serializer>(
    value: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u128(value.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Limits::default().validate().is_ok());
    }

    #[test]
    fn zero_limits_are_rejected() {
        let cases: [(&str, Limits); 5] = [
            (
                "timeout",
                Limits {
                    timeout: Duration::ZERO,
                    ..Limits::default()
                },
            ),
            (
                "fuel",
                Limits {
                    fuel: 0,
                    ..Limits::default()
                },
            ),
            (
                "memory",
                Limits {
                    memory_bytes: 0,
                    ..Limits::default()
                },
            ),
            (
                "stdout",
                Limits {
                    stdout_bytes: 0,
                    ..Limits::default()
                },
            ),
            (
                "stderr",
                Limits {
                    stderr_bytes: 0,
                    ..Limits::default()
                },
            ),
        ];
        for (name, limits) in cases {
            let error = limits.validate().expect_err(name);
            assert_eq!(
                error.to_string(),
                format!("invalid {name} limit: must be greater than zero")
            );
        }
    }

    #[test]
    fn memory_above_4_gib_is_rejected() {
        let limits = Limits {
            memory_bytes: MAX_MEMORY_BYTES + 1,
            ..Limits::default()
        };
        let error = limits.validate().expect_err("memory over 4 GiB");
        assert!(
            error
                .to_string()
                .contains("more than a 32-bit guest can address"),
            "{error}"
        );
    }
}
