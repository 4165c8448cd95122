//! `moat-bench`: measures fresh-sandbox start-up, `moat run` end to end and
//! the cost of fuel metering and of audit recording, next to reference
//! interpreters, and prints a table or JSON. Build it in release mode, as
//! `cargo xtask bench` does.

mod audit;
mod inprocess;
mod process;
mod report;
mod stats;
mod text;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use moat_runtime::{ComponentCache, FileAccess, Language, Runtime, RuntimeConfig};

use crate::audit::{BenchStore, measure_audit_cost};
use crate::inprocess::{GuestLoad, measure_fresh_sandbox, measure_fuel_cost};
use crate::process::{ProcessCommand, find_node, find_python, measure_process};
use crate::report::{BenchReport, EndToEnd, Reference, Row, Settings};

/// Measure moat's sandbox start-up, end-to-end latency, fuel overhead and
/// audit recording cost.
///
/// A missed target is reported but never changes the exit status. The
/// status is non-zero only when a measurement fails, for example when a
/// guest run does not end `ok`.
#[derive(Debug, Parser)]
#[command(name = "moat-bench", max_term_width = 100)]
struct Args {
    /// Directory holding python.wasm and javascript.wasm
    #[arg(long, env = "MOAT_GUEST_DIR", value_name = "DIR")]
    guest_dir: PathBuf,

    /// Directory for compiled guests [default: a fresh temporary directory,
    /// so the first load of each guest compiles it]
    #[arg(long, env = "MOAT_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// The moat binary timed end to end [default: `moat` beside this binary]
    #[arg(long, value_name = "PATH")]
    moat: Option<PathBuf>,

    /// Timed fresh-sandbox runs for each guest
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,

    /// Untimed runs before the fresh-sandbox and reference measurements
    #[arg(long, value_name = "N", default_value_t = 5)]
    warmup: u32,

    /// Timed runs of each reference interpreter process
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    reference_runs: u32,

    /// Timed runs of the `moat run hello.py` process
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    cli_runs: u32,

    /// Timed runs of the CPU-bound loop with and without fuel metering, each
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    fuel_runs: u32,

    /// Timed fresh-sandbox runs for each guest with audit recording, and as
    /// many without
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    audit_runs: u32,

    /// Directory for the temporary audit stores of the in-process runs and
    /// the `moat run` processes. Put it on the disk to measure, because
    /// fsync costs differ by disk and nothing on tmpfs [default: the parent
    /// of the cache directory]
    #[arg(long, value_name = "DIR")]
    audit_dir: Option<PathBuf>,

    /// Print the results as one JSON object instead of a table
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = executor
        .context("failed to start the tokio runtime")
        .and_then(|executor| executor.block_on(run(&args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("moat-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    // Kept alive until the end: dropping it deletes the temporary cache.
    let temporary_cache = match &args.cache_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().context("failed to create a temporary cache directory")?),
    };
    let cache_dir = match (&args.cache_dir, &temporary_cache) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temporary)) => temporary.path().to_path_buf(),
        (None, None) => unreachable!("a temporary cache exists whenever no directory was given"),
    };
    let workspace = tempfile::tempdir().context("failed to create the sandbox workspace")?;
    let files = FileAccess {
        workspace: workspace.path().to_path_buf(),
        grants: Vec::new(),
    };

    let languages = available_languages(&args.guest_dir);
    let settings = Settings {
        runs: args.runs,
        warmup: args.warmup,
        reference_runs: args.reference_runs,
        cli_runs: args.cli_runs,
        fuel_runs: args.fuel_runs,
        audit_runs: args.audit_runs,
    };
    let mut guest_loads = Vec::new();

    // `moat run` meters fuel too, so this runtime's compiled guests are the
    // cache entries that the end-to-end runs load.
    let metered = new_runtime(&args.guest_dir, &cache_dir, true)?;
    let mut fresh_sandbox = Vec::new();
    for (language, available) in &languages {
        if !available {
            fresh_sandbox.push((*language, Row::Skipped(not_built(*language))));
            continue;
        }
        guest_loads.push(load(&metered, *language)?);
        progress(&format!("timing fresh {language} sandboxes"));
        let fresh =
            measure_fresh_sandbox(&metered, &files, *language, args.warmup, args.runs).await?;
        fresh_sandbox.push((*language, Row::Measured(fresh)));
    }

    let audit_parent = match &args.audit_dir {
        Some(dir) => dir.clone(),
        None => cache_dir.parent().unwrap_or(&cache_dir).to_path_buf(),
    };
    let audit_store = BenchStore::create(&audit_parent)?;
    if audit_store.location.filesystem.as_deref() == Some("tmpfs") {
        progress(&format!(
            "warning: the audit store {} is on tmpfs, where fsync costs nothing; \
             pass --audit-dir on a disk to measure a real store",
            audit_store.location.path.display()
        ));
    }
    progress("timing 4 KiB appends with fdatasync beside the audit store");
    let disk_sync = audit_store.measure_disk_sync(args.warmup, args.audit_runs)?;
    let mut audit_cost = Vec::new();
    for (language, available) in &languages {
        if !available {
            audit_cost.push((*language, Row::Skipped(not_built(*language))));
            continue;
        }
        progress(&format!(
            "timing fresh {language} sandboxes with and without audit recording"
        ));
        let cost = measure_audit_cost(
            &metered,
            &audit_store.recorder,
            *language,
            args.warmup,
            args.audit_runs,
        )
        .await?;
        audit_cost.push((*language, Row::Measured(cost)));
    }

    let references = measure_references(args)?;
    let end_to_end = measure_end_to_end(
        args,
        &cache_dir,
        &audit_store.end_to_end_store(),
        workspace.path(),
    )?;

    let unmetered = new_runtime(&args.guest_dir, &cache_dir, false)?;
    let mut fuel_cost = Vec::new();
    for (language, available) in &languages {
        if !available {
            fuel_cost.push((*language, Row::Skipped(not_built(*language))));
            continue;
        }
        guest_loads.push(load(&unmetered, *language)?);
        progress(&format!(
            "timing the {language} CPU-bound loop with and without fuel"
        ));
        let cost =
            measure_fuel_cost(&metered, &unmetered, &files, *language, args.fuel_runs).await?;
        fuel_cost.push((*language, Row::Measured(cost)));
    }

    let mut report = BenchReport {
        cpus: std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1),
        guest_dir: args.guest_dir.clone(),
        cache_dir,
        settings,
        guest_loads,
        fresh_sandbox,
        audit_store: audit_store.location.clone(),
        disk_sync,
        audit_cost,
        references,
        end_to_end,
        fuel_cost,
        targets: Vec::new(),
    };
    report.judge_targets();

    if args.json {
        let json =
            serde_json::to_string_pretty(&report).context("failed to encode the report as JSON")?;
        println!("{json}");
    } else {
        print!("{}", report.render_text());
    }
    Ok(())
}

/// Lists each language with whether its guest component exists in
/// `guest_dir`.
fn available_languages(guest_dir: &Path) -> Vec<(Language, bool)> {
    Language::ALL
        .into_iter()
        .map(|language| {
            (
                language,
                guest_dir.join(language.component_file()).is_file(),
            )
        })
        .collect()
}

fn new_runtime(guest_dir: &Path, cache_dir: &Path, fuel_metering: bool) -> anyhow::Result<Runtime> {
    let config = RuntimeConfig {
        guest_dir: guest_dir.to_path_buf(),
        cache: Some(ComponentCache::new(cache_dir)),
        fuel_metering,
    };
    Runtime::new(config).context("failed to create the moat runtime")
}

fn load(runtime: &Runtime, language: Language) -> anyhow::Result<GuestLoad> {
    let metering = match runtime.fuel_metering() {
        true => "with fuel metering",
        false => "without fuel metering",
    };
    progress(&format!("loading the {language} guest {metering}"));
    inprocess::load_guest(runtime, language)
}

/// Times `python3 -c 'print(1)'` and `node -e 'console.log(1)'` as
/// processes, where they are installed.
fn measure_references(args: &Args) -> anyhow::Result<Vec<Reference>> {
    let candidates = [
        (
            "python3 -c 'print(1)'",
            Language::Python,
            find_python(),
            ProcessCommand::python_reference as fn(_) -> _,
        ),
        (
            "node -e 'console.log(1)'",
            Language::JavaScript,
            find_node(),
            ProcessCommand::node_reference,
        ),
    ];
    let mut references = Vec::new();
    for (command, language, executable, make_command) in candidates {
        let timing = match &executable {
            Some(path) => {
                progress(&format!("timing {command}"));
                let summary = measure_process(
                    &make_command(path.clone()),
                    args.warmup,
                    args.reference_runs,
                )?;
                Row::Measured(summary)
            }
            None => Row::Skipped("not installed".into()),
        };
        references.push(Reference {
            command,
            language,
            executable,
            timing,
        });
    }
    Ok(references)
}

/// Times `moat run hello.py` as a process after one untimed run, with the
/// compiled Python guest already in `cache_dir` and its records going to
/// `audit_db`.
fn measure_end_to_end(
    args: &Args,
    cache_dir: &Path,
    audit_db: &Path,
    scratch: &Path,
) -> anyhow::Result<Row<EndToEnd>> {
    if !args
        .guest_dir
        .join(Language::Python.component_file())
        .is_file()
    {
        return Ok(Row::Skipped(not_built(Language::Python)));
    }
    let moat = match &args.moat {
        Some(path) => path.clone(),
        None => default_moat_path()?,
    };
    if !moat.is_file() {
        return Ok(Row::Skipped(format!(
            "moat binary not found at {}",
            moat.display()
        )));
    }

    let script = scratch.join("hello.py");
    std::fs::write(&script, "print(1)\n")
        .with_context(|| format!("failed to write {}", script.display()))?;
    let command = ProcessCommand::moat_run(&moat, &args.guest_dir, cache_dir, audit_db, &script);

    progress("timing moat run hello.py");
    let timing = measure_process(&command, 1, args.cli_runs)?;
    Ok(Row::Measured(EndToEnd {
        command: process::display(&command),
        timing,
    }))
}

/// `moat` beside this binary, as cargo places both in `target/release`.
fn default_moat_path() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("failed to find the moat-bench executable")?;
    let dir = exe
        .parent()
        .context("the moat-bench executable has no parent directory")?;
    Ok(dir.join(format!("moat{}", std::env::consts::EXE_SUFFIX)))
}

fn not_built(language: Language) -> String {
    format!("{language} guest not built")
}

/// Reports progress on stderr, so that stdout holds only the results.
fn progress(message: &str) {
    eprintln!("moat-bench: {message}");
}
