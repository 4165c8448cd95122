//! `cargo xtask bench`: builds moat-bench and the moat binary in release
//! mode and runs the benchmark against the guests in `target/guests`.
//!
//! The measuring happens in the `moat-bench` binary, so that xtask never
//! links wasmtime and stays quick to compile.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cargo;
use crate::util::run as run_command;

/// Options of `cargo xtask bench`, passed on to moat-bench. An option left
/// out takes moat-bench's default.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Timed fresh-sandbox runs for each guest [moat-bench default: 200]
    #[arg(long, value_name = "N")]
    runs: Option<u32>,

    /// Untimed runs before the fresh-sandbox and reference measurements
    /// [moat-bench default: 5]
    #[arg(long, value_name = "N")]
    warmup: Option<u32>,

    /// Timed runs of each reference interpreter process [moat-bench
    /// default: 30]
    #[arg(long, value_name = "N")]
    reference_runs: Option<u32>,

    /// Timed runs of the `moat run hello.py` process [moat-bench default:
    /// 20]
    #[arg(long, value_name = "N")]
    cli_runs: Option<u32>,

    /// Timed runs of the CPU-bound loop with and without fuel metering, each
    /// [moat-bench default: 10]
    #[arg(long, value_name = "N")]
    fuel_runs: Option<u32>,

    /// Timed fresh-sandbox runs for each guest with audit recording, and as
    /// many without [moat-bench default: 100]
    #[arg(long, value_name = "N")]
    audit_runs: Option<u32>,

    /// Directory in which moat-bench creates its temporary audit stores
    /// [default: target, on the checkout's disk rather than a /tmp that may
    /// be tmpfs, where fsync costs nothing]
    #[arg(long, value_name = "DIR")]
    audit_dir: Option<PathBuf>,

    /// Print the results as one JSON object instead of a table
    #[arg(long)]
    json: bool,
}

/// Builds moat-bench and moat in release mode, then runs moat-bench on the
/// guests in `target/guests` with its output going straight to the terminal.
/// Fails when the build fails or a measurement fails, never for a missed
/// target.
pub fn run(root: &Path, args: &BenchArgs) -> anyhow::Result<()> {
    run_command(
        cargo()
            .args([
                "build",
                "--release",
                "--package",
                "moat-bench",
                "--package",
                "moat-cli",
            ])
            .current_dir(root),
        "build moat-bench and moat in release mode",
    )?;

    // NOTE: assumes the default target directory. With CARGO_TARGET_DIR set,
    // cargo puts the binaries elsewhere and this path does not exist.
    let release = root.join("target/release");
    let audit_dir = match &args.audit_dir {
        Some(dir) => dir.clone(),
        None => root.join("target"),
    };
    let mut bench =
        Command::new(release.join(format!("moat-bench{}", std::env::consts::EXE_SUFFIX)));
    bench
        .arg("--guest-dir")
        .arg(root.join("target/guests"))
        .arg("--moat")
        .arg(release.join(format!("moat{}", std::env::consts::EXE_SUFFIX)))
        .arg("--audit-dir")
        .arg(audit_dir)
        .args(forwarded_options(args))
        .current_dir(root);
    run_command(&mut bench, "run the benchmark")
}

/// Converts the options given to `cargo xtask bench` into moat-bench flags.
fn forwarded_options(args: &BenchArgs) -> Vec<OsString> {
    let counts = [
        ("--runs", args.runs),
        ("--warmup", args.warmup),
        ("--reference-runs", args.reference_runs),
        ("--cli-runs", args.cli_runs),
        ("--fuel-runs", args.fuel_runs),
        ("--audit-runs", args.audit_runs),
    ];
    let mut options = Vec::new();
    for (flag, value) in counts {
        if let Some(value) = value {
            options.push(flag.into());
            options.push(value.to_string().into());
        }
    }
    if args.json {
        options.push("--json".into());
    }
    options
}
