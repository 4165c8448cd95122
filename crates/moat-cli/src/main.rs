//! The `moat` command: runs model-written Python and JavaScript inside a
//! WebAssembly sandbox.

mod audit_cmd;
mod check;
mod exit;
mod policy_cmd;
mod recording;
mod run;
mod serve;
mod setup;
mod telemetry;
mod units;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use moat_runtime::{ComponentCache, RuntimeConfig};

/// Run model-written Python and JavaScript in a WebAssembly sandbox.
#[derive(Debug, Parser)]
#[command(name = "moat", version, about, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    engine: EngineArgs,

    #[command(flatten)]
    telemetry: telemetry::TelemetryArgs,

    #[command(subcommand)]
    command: Command,
}

/// Where moat finds its guests and keeps compiled ones.
#[derive(Debug, clap::Args)]
struct EngineArgs {
    /// Directory holding python.wasm and javascript.wasm [default: `guests`
    /// beside the moat binary, or `target/guests` in a source checkout]
    #[arg(long, global = true, env = "MOAT_GUEST_DIR", value_name = "DIR")]
    guest_dir: Option<PathBuf>,

    /// Directory for compiled guests [default: the platform cache directory,
    /// such as ~/.cache/moat/compiled]
    #[arg(long, global = true, env = "MOAT_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Compile the guests on every start instead of caching them
    #[arg(long, global = true)]
    no_cache: bool,

    /// Audit store (a SQLite file) that records every execution [default:
    /// the platform data directory, such as ~/.local/share/moat/audit.db]
    #[arg(long, global = true, env = "MOAT_AUDIT_DB", value_name = "FILE")]
    audit_db: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one script in a fresh sandbox and print its output
    Run(run::RunArgs),
    /// Serve MCP over stdio, or streamable HTTP with --http
    Serve(serve::ServeArgs),
    /// Check a policy file, explain it, or print its JSON Schema
    Policy(policy_cmd::PolicyArgs),
    /// List, show, verify, export and report the audit trail
    Audit(audit_cmd::AuditArgs),
    /// Run scripts under a policy and check each against its expectations, for CI
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            if !error.use_stderr() {
                return ExitCode::SUCCESS;
            }
            // `moat check` keeps 1 for failed scripts and 2 for every usage
            // or configuration error, as CI systems expect.
            return match check::invoked(<Cli as clap::CommandFactory>::command()) {
                true => ExitCode::from(check::EXIT_CONFIG),
                false => ExitCode::from(exit::MOAT_ERROR),
            };
        }
    };

    let telemetry = match telemetry::init(&cli.telemetry) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("moat: error: {error:#}");
            return match cli.command {
                Command::Check(_) => ExitCode::from(check::EXIT_CONFIG),
                _ => ExitCode::from(exit::MOAT_ERROR),
            };
        }
    };

    let result = match cli.command {
        Command::Run(args) => run::run(&cli.engine, args),
        Command::Serve(args) => serve::run(&cli.engine, args),
        Command::Policy(args) => policy_cmd::run(args),
        Command::Audit(args) => audit_cmd::run(&cli.engine, args),
        Command::Check(args) => Ok(check::run(&cli.engine, args)),
    };
    // Sends queued spans before the process exits.
    telemetry.shutdown();
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("moat: error: {error:#}");
            ExitCode::from(exit::MOAT_ERROR)
        }
    }
}

impl EngineArgs {
    /// The runtime configuration these flags describe.
    fn runtime_config(&self) -> RuntimeConfig {
        let guest_dir = self.guest_dir.clone().unwrap_or_else(default_guest_dir);
        let cache = match self.no_cache {
            true => None,
            false => self
                .cache_dir
                .clone()
                .or_else(|| dirs::cache_dir().map(|dir| dir.join("moat").join("compiled")))
                .map(ComponentCache::new),
        };
        RuntimeConfig {
            guest_dir,
            cache,
            fuel_metering: true,
        }
    }

    /// Returns the audit store's file: `--audit-db`, else `moat/audit.db` in the
    /// platform data directory.
    fn audit_db_path(&self) -> anyhow::Result<PathBuf> {
        match &self.audit_db {
            Some(path) => Ok(path.clone()),
            None => dirs::data_dir()
                .map(|dir| dir.join("moat").join("audit.db"))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "this platform has no data directory for the audit store; pass --audit-db FILE"
                    )
                }),
        }
    }
}

/// `guests` beside the binary when it exists (an installed moat), else
/// `../guests` (the binary in `target/debug` of a source checkout).
fn default_guest_dir() -> PathBuf {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .unwrap_or_default();
    let beside = exe_dir.join("guests");
    if beside.is_dir() {
        return beside;
    }
    exe_dir.join("..").join("guests")
}
