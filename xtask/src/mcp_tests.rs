//! The MCP client tests: the official MCP Python SDK, installed into a
//! virtual environment from hash-pinned requirements, drives `moat serve`
//! over stdio and streamable HTTP through pytest.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::util::run as run_command;

/// Where the test client's virtual environment lives, under the workspace.
const VENV_DIR: &str = "target/mcp-test-venv";

/// Creates the virtual environment if missing, installs the pinned client,
/// builds `moat` and runs pytest on `tests/mcp` against the guests in
/// `guest_dir`.
pub fn run(root: &Path, guest_dir: &Path) -> anyhow::Result<()> {
    let venv = root.join(VENV_DIR);
    let python = venv.join("bin").join("python");
    if !python.exists() {
        run_command(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "create the MCP test virtual environment (needs python3 with the venv module; \
             on Debian: apt-get install python3-venv)",
        )?;
    }

    let requirements = root.join("tests/mcp/requirements.txt");
    run_command(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--require-hashes", "-r"])
            .arg(&requirements),
        "install the MCP Python SDK and pytest from tests/mcp/requirements.txt",
    )?;

    run_command(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--locked", "-p", "moat-cli"])
            .current_dir(root),
        "build moat for the MCP tests",
    )?;
    let moat = root.join("target/debug/moat");
    if !moat.exists() {
        bail!(
            "the moat binary is missing at {} after the build",
            moat.display()
        );
    }

    let status = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(root.join("tests/mcp"))
        .env("MOAT_BIN", &moat)
        .env("MOAT_GUEST_DIR", guest_dir)
        .env("MOAT_CACHE_DIR", root.join("target/moat-cache"))
        .current_dir(root)
        .status()
        .context("failed to start pytest for the MCP tests")?;
    // pytest exits with 5 when it collected no tests, which must fail too.
    if !status.success() {
        bail!("the MCP client tests failed: pytest exited with {status}");
    }
    Ok(())
}
