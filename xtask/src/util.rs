//! Small helpers shared by the xtask commands: running programs and hashing
//! files.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// Runs `command`, failing with `step` in the message when it cannot start
/// or exits unsuccessfully.
pub fn run(command: &mut Command, step: &str) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("failed to {step}: could not start {command:?}"))?;
    if !status.success() {
        bail!("failed to {step}: {command:?} exited with {status}");
    }
    Ok(())
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Lowercase hex SHA-256 of the file at `path`.
pub fn file_sha256(path: &Path) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    Ok(sha256_hex(&bytes))
}
