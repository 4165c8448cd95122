//! moat's task runner: builds the guests, runs the demo, the tests and the
//! benchmarks. Invoked as `cargo xtask COMMAND`.

mod bench;
mod js_guest;
mod mcp_tests;
mod python_guest;
mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::util::{file_sha256, run};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Build, demo, test and bench moat")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build both guest components into target/guests and print their hashes
    Guests,
    /// Build what is missing and run the bundled example
    Demo,
    /// Build the guests and run the whole test suite against them
    Test,
    /// Check formatting and lints, then run the whole test suite
    Ci,
    /// Measure fresh-sandbox start-up and fuel overhead (release build)
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = workspace_root()?;
    match cli.command {
        Task::Guests => {
            build_guests(&root)?;
        }
        Task::Demo => demo(&root)?,
        Task::Test => test(&root)?,
        Task::Ci => {
            run(
                cargo().args(["fmt", "--all", "--check"]).current_dir(&root),
                "check formatting",
            )?;
            run(
                cargo()
                    .args([
                        "clippy",
                        "--workspace",
                        "--all-targets",
                        "--",
                        "-D",
                        "warnings",
                    ])
                    .current_dir(&root),
                "run clippy",
            )?;
            test(&root)?;
        }
        Task::Bench(args) => {
            build_guests(&root)?;
            bench::run(&root, &args)?;
        }
    }
    Ok(())
}

/// One built guest, as recorded in `target/guests/manifest.json`.
#[derive(Debug, Serialize)]
struct GuestRecord {
    language: &'static str,
    path: PathBuf,
    bytes: u64,
    sha256: String,
}

/// Builds both guests into `target/guests` and writes the manifest.
fn build_guests(root: &Path) -> anyhow::Result<PathBuf> {
    let guest_dir = root.join("target/guests");
    std::fs::create_dir_all(&guest_dir)
        .with_context(|| format!("failed to create {}", guest_dir.display()))?;

    let python = python_guest::build(root)?;
    let javascript = js_guest::build(root)?;

    let mut records = Vec::new();
    for (language, built) in [("python", python), ("javascript", javascript)] {
        let installed = guest_dir.join(format!("{language}.wasm"));
        std::fs::copy(&built, &installed).with_context(|| {
            format!(
                "failed to copy {} to {}",
                built.display(),
                installed.display()
            )
        })?;
        let bytes = std::fs::metadata(&installed)
            .with_context(|| format!("failed to read {}", installed.display()))?
            .len();
        let sha256 = file_sha256(&installed)?;
        println!(
            "{language:<10} {}  {:>6.2} MB  sha256 {sha256}",
            installed.display(),
            bytes as f64 / 1e6
        );
        records.push(GuestRecord {
            language,
            path: installed,
            bytes,
            sha256,
        });
    }

    let manifest = guest_dir.join("manifest.json");
    let json =
        serde_json::to_string_pretty(&records).context("failed to encode the guest manifest")?;
    std::fs::write(&manifest, json + "\n")
        .with_context(|| format!("failed to write {}", manifest.display()))?;
    Ok(guest_dir)
}

/// Runs the bundled example: a CSV of transactions, granted read-only and
/// summarised with csv, statistics and sqlite3.
fn demo(root: &Path) -> anyhow::Result<()> {
    let guest_dir = build_guests(root)?;
    let example = root.join("examples/transactions");
    let grant = format!("{}:/data:ro", example.join("data").display());
    println!(
        "\n$ moat run examples/transactions/summarise.py --dir examples/transactions/data:/data:ro\n"
    );
    run(
        cargo()
            .args(["run", "--quiet", "--package", "moat-cli", "--", "run"])
            .arg(example.join("summarise.py"))
            .args(["--dir", &grant])
            .env("MOAT_GUEST_DIR", &guest_dir)
            .current_dir(root),
        "run the example",
    )?;
    // The run above is in the audit trail, in the platform data directory.
    println!("\n$ moat audit list --limit 1\n");
    run(
        cargo()
            .args(["run", "--quiet", "--package", "moat-cli", "--"])
            .args(["audit", "list", "--limit", "1"])
            .current_dir(root),
        "list the example's audit record",
    )
}

/// Builds the guests and runs every test of the workspace against them.
fn test(root: &Path) -> anyhow::Result<()> {
    let guest_dir = build_guests(root)?;
    run(
        cargo()
            .args(["test", "--workspace", "--locked"])
            .env("MOAT_GUEST_DIR", &guest_dir)
            .env("MOAT_CACHE_DIR", root.join("target/moat-cache"))
            .current_dir(root),
        "run the tests",
    )?;
    // MCP client tests with the official Python SDK against `moat serve`.
    mcp_tests::run(root, &guest_dir)
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn workspace_root() -> anyhow::Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .context("xtask's manifest directory has no parent")
}
