//! `moat check`: runs scripts in fresh sandboxes under one policy and judges
//! each against its expectations, for CI.

mod compare;
mod discover;
mod execute;
mod expectations;
mod junit;
mod junit_path;
mod report;
mod runner;
mod verdict;
mod violations;

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use moat_egress::Gate;
use moat_policy::{LoadedPolicy, Policy, sha256_hex};
use moat_runtime::{DirGrant, FileAccess, Language, Limits, Runtime};

use crate::EngineArgs;
use crate::recording::{WhoArgs, open_store};
use crate::setup::{RequestedLimits, build_gate, load_policy, policy_grants, resolve_limits};

use runner::{Finished, run_all};

/// Every script passed.
pub const EXIT_PASSED: u8 = 0;
/// At least one script failed.
pub const EXIT_FAILED: u8 = 1;
/// Bad arguments, an unusable policy or expectations, no scripts, a missing
/// guest, or moat failing to run a script.
pub const EXIT_CONFIG: u8 = 2;
/// Interrupted by Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// The text of `policy/ci.toml`, built into the binary so that an installed
/// moat has it.
const CI_POLICY: &str = include_str!("../../../policy/ci.toml");

/// Arguments of `moat check`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct CheckArgs {
    /// Scripts (.py, .js, .mjs) and directories to search for them,
    /// recursively, skipping hidden files and directories
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,

    /// Policy that every script runs under [default: the CI policy built
    /// into moat, which is the text of policy/ci.toml]
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,

    /// Scripts to run at once [default: the number of CPUs]; more than the
    /// CPUs makes timeouts and max_duration more likely to fail
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs)]
    jobs: Option<usize>,

    /// Manifest of expectations, with [[script]] entries whose paths are
    /// relative to the manifest; moat-check.toml files are read without it
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,

    /// Also write a JUnit XML report to FILE
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Print one JSON document with every verdict instead of the summary
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    who: WhoArgs,
}

const AFTER_HELP: &str = "\
Each script runs in a fresh sandbox with an empty /workspace. It fails on
any policy violation (a limit, a refused request, import or file access)
and on any expectation it misses: exit code (0 unless given), stdout,
output files, max_duration. Expectations live in SCRIPT.check.toml beside
the script or in a moat-check.toml manifest; see docs/ci.md.

Exit codes:
  0  every script passed
  1  at least one script failed
  2  usage or configuration error: bad arguments or telemetry settings, an
     unreadable policy or expectations file, no scripts, a missing guest,
     or moat failing to run a script
Unlike the other moat commands, which exit with 125 when moat itself
fails, check keeps 2 for every such error, so 1 always means a script
failed.";

fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(jobs) => Ok(jobs),
        Err(_) => Err(format!(
            "invalid number {text:?}: expected a whole number of scripts, such as 4"
        )),
    }
}

/// Returns whether the command line invokes `moat check`, whose argument
/// errors exit with [`EXIT_CONFIG`] rather than moat's usual 125.
pub fn invoked(cli: clap::Command) -> bool {
    cli.ignore_errors(true)
        .try_get_matches()
        .is_ok_and(|matches| matches.subcommand_name() == Some("check"))
}

/// The policy every script of a check runs under, with what each run takes
/// from it.
#[derive(Debug)]
pub struct CheckPolicy {
    /// The policy and its hash.
    pub loaded: LoadedPolicy,
    /// The file it came from, or "built-in" for the embedded CI policy.
    pub source: String,
    /// The policy's default limits.
    pub limits: Limits,
    /// The policy's directory grants.
    pub grants: Vec<DirGrant>,
}

impl CheckPolicy {
    /// Loads the policy at `path`, or the built-in CI policy.
    fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let (loaded, source) = match path {
            Some(path) => (load_policy(Some(path))?, path.display().to_string()),
            None => {
                let policy = Policy::parse(CI_POLICY, Path::new("policy/ci.toml"))
                    .context("the built-in CI policy is invalid")?;
                let loaded = LoadedPolicy {
                    policy,
                    path: None,
                    sha256: sha256_hex(CI_POLICY.as_bytes()),
                    text: CI_POLICY.to_owned(),
                };
                (loaded, "built-in".to_owned())
            }
        };
        let limits = resolve_limits(&loaded, RequestedLimits::default())?;
        limits.validate()?;
        let grants = policy_grants(&loaded.policy);
        Ok(CheckPolicy {
            loaded,
            source,
            limits,
            grants,
        })
    }

    /// Returns the policy's name and source as the summary shows them.
    fn label(&self) -> String {
        let name = self.loaded.policy.name.as_deref().unwrap_or("unnamed");
        match self.loaded.path {
            Some(_) => format!("policy {name:?} ({})", self.source),
            None => format!("policy {name:?} (built in)"),
        }
    }
}

/// Runs `moat check`. Every error is reported here, with the exit code
/// `moat check` documents.
pub fn run(engine: &EngineArgs, args: CheckArgs) -> ExitCode {
    match check(engine, args) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("moat: error: {error:#}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn check(engine: &EngineArgs, args: CheckArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let cpus = std::thread::available_parallelism().map(NonZeroUsize::get);
    let jobs = match (args.jobs, cpus) {
        (Some(jobs), Ok(cpus)) if jobs > cpus => {
            eprintln!(
                "moat: warning: --jobs {jobs} is more than the {cpus} available CPUs; timeouts \
                 and max_duration measure wall-clock time, so scripts that pass with fewer jobs \
                 may fail them"
            );
            jobs
        }
        (Some(jobs), _) => jobs,
        (None, cpus) => cpus.unwrap_or(1),
    };
    let policy = CheckPolicy::load(args.policy.as_deref())?;
    let gate = check_gate(&policy)?;
    // Fails now on a missing grant directory, instead of once per script.
    FileAccess {
        workspace: std::env::temp_dir(),
        grants: policy.grants.clone(),
    }
    .validate()
    .context("the policy's directory grants cannot be used")?;

    let collected = discover::collect(&args.paths, args.manifest.as_deref())?;
    if let Some(junit) = &args.junit {
        let protected = protected_files(engine, &args, &collected);
        junit_path::check_report_path(junit, &protected)?;
    }
    let scripts = collected.scripts;
    // The store opens before anything runs: no record, no run.
    let recorder =
        moat_audit::Recorder::new(open_store(engine)?, &policy.loaded, Some(gate.clone()))
            .context("the audit trail is unavailable, so nothing was run")?;
    let audit = Arc::new(execute::CheckAudit {
        recorder: Arc::new(recorder),
        actor: args.who.actor(moat_audit::Transport::Check),
    });

    let runtime = Runtime::new(engine.runtime_config()).context("failed to start the runtime")?;
    for language in Language::ALL {
        if scripts.iter().any(|script| script.language == language) {
            runtime.load(language)?;
        }
    }

    let mut stdout = report::QuietPipe::new(std::io::stdout().lock());
    let show_progress = !args.json;
    let outcome = run_all(
        Arc::new(runtime),
        Arc::new(policy),
        gate,
        audit,
        scripts,
        jobs,
        |verdict| match show_progress {
            true => report::write_verdict(&mut stdout, verdict),
            false => Ok(()),
        },
    )?;
    let (verdicts, policy) = match outcome {
        Finished::All(verdicts, policy) => (verdicts, policy),
        Finished::Interrupted => {
            eprintln!("moat: interrupted; no report was written");
            return Ok(EXIT_INTERRUPTED);
        }
    };
    let elapsed = started.elapsed();
    let totals = report::Totals::of(&verdicts);

    if args.json {
        let document = report::JsonDocument {
            policy: report::JsonPolicy {
                name: policy.loaded.policy.name.as_deref(),
                source: &policy.source,
                sha256: &policy.loaded.sha256,
            },
            totals,
            scripts: verdicts.iter().map(report::JsonVerdict::new).collect(),
        };
        serde_json::to_writer_pretty(&mut stdout, &document)
            .context("failed to write the JSON report")?;
        writeln!(stdout).context("failed to write the JSON report")?;
    } else {
        report::write_totals(&mut stdout, totals, &policy.label(), elapsed)?;
    }
    stdout.flush().context("failed to write the summary")?;

    if let Some(path) = &args.junit {
        let info = junit::SuiteInfo {
            policy_name: policy.loaded.policy.name.as_deref(),
            policy_source: &policy.source,
            policy_sha256: &policy.loaded.sha256,
        };
        let xml = junit::render(&verdicts, &info, elapsed);
        std::fs::write(path, xml)
            .with_context(|| format!("failed to write the JUnit report {}", path.display()))?;
    }

    let code = if totals.errors > 0 {
        EXIT_CONFIG
    } else if totals.failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_PASSED
    };
    Ok(code)
}

/// Returns the policy's gate. A policy without egress rules still gets
/// one, with no rules, so that denied requests are recorded like any other.
fn check_gate(policy: &CheckPolicy) -> anyhow::Result<Gate> {
    build_gate(&policy.loaded.policy, &[])
}

/// Returns the files that the JUnit report must not replace: the audit
/// store with its SQLite side files, the policy file, and every script,
/// expectations file and input file of the check.
fn protected_files(
    engine: &EngineArgs,
    args: &CheckArgs,
    collected: &discover::Collected,
) -> Vec<junit_path::Protected> {
    use junit_path::Protected;

    let mut protected = Vec::new();
    // Without a store path, opening the store fails next with its own error.
    if let Ok(store) = engine.audit_db_path() {
        for (suffix, role) in [
            ("-wal", "the audit store's write-ahead log"),
            ("-shm", "the audit store's shared-memory file"),
            ("-journal", "the audit store's rollback journal"),
        ] {
            let mut side = store.clone().into_os_string();
            side.push(suffix);
            protected.push(Protected::new(role, side));
        }
        protected.push(Protected::new("the audit store", store));
    }
    if let Some(policy) = &args.policy {
        protected.push(Protected::new("the policy file", policy));
    }
    for script in &collected.scripts {
        protected.push(Protected::new("the script", &script.path));
    }
    for file in &collected.expectation_files {
        protected.push(Protected::new("the expectations file", file));
    }
    for file in &collected.source_files {
        protected.push(Protected::new("the input file", file));
    }
    protected
}
