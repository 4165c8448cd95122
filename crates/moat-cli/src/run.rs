//! `moat run`: one script, one fresh sandbox, output on the terminal.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use moat_audit::{DirState, Ended, Finished, GrantsState, Recorder, RunInfo, Transport};
use moat_egress::{EgressEvent, ResolveOverride};
use moat_runtime::{DirGrant, FileAccess, Language, Limits, RunReport, Runtime, Sandbox};
use serde::Serialize;
use tracing::Instrument;

use crate::EngineArgs;
use crate::exit;
use crate::recording::{WhoArgs, open_store};
use crate::setup::{RequestedLimits, build_gate, load_policy, policy_grants, resolve_limits};
use crate::units::{parse_bytes, parse_count, parse_duration};

/// Arguments of `moat run`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct RunArgs {
    /// Script to run (.py or .js), or - to read it from standard input
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Language of the script; required with -, otherwise taken from the
    /// file's extension
    #[arg(long, value_name = "LANG")]
    lang: Option<Language>,

    /// Print one JSON object with the whole result instead of the output
    #[arg(long)]
    json: bool,

    /// Policy file that sets limits, directories and network access
    /// [default: the built-in policy: no network, no host directories]
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,

    /// Wall-clock limit, such as 30s or 500ms [default: the policy's, else 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,

    /// Instructions the guest may execute [default: the policy's, else
    /// 10000000000]
    #[arg(long, value_name = "N", value_parser = parse_count)]
    fuel: Option<u64>,

    /// Linear memory limit, such as 256MiB [default: the policy's, else
    /// 512MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    memory: Option<u64>,

    /// Bytes of stdout kept before the run is stopped, such as 64KiB
    /// [default: the policy's, else 1MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    max_stdout: Option<u64>,

    /// Bytes of stderr kept before the run is stopped [default: the
    /// policy's, else 1MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    max_stderr: Option<u64>,

    /// Pin a host name to an address for egress, as curl does:
    /// HOST:PORT:ADDR (repeatable)
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = ResolveOverride::parse)]
    resolve: Vec<ResolveOverride>,

    /// Host directory to use as /workspace instead of a fresh empty one;
    /// files the script writes there stay after the run
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,

    /// Grant a host directory: HOST:GUEST, or HOST:GUEST:ro for read-only
    /// (repeatable), such as --dir ./data:/data:ro
    #[arg(long = "dir", value_name = "HOST:GUEST[:ro]", value_parser = DirGrant::parse)]
    dirs: Vec<DirGrant>,

    #[command(flatten)]
    who: WhoArgs,
}

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0-120  the script's own status (0 ok, 1 uncaught exception or trap, n from exit(n))
  121    output_truncated: stdout or stderr passed its cap
  122    memory_limit: the script asked for more memory than --memory
  123    fuel_exhausted: the script executed more than --fuel instructions
  124    timeout: the script ran longer than --timeout
  125    moat itself failed: bad arguments, unreadable file, missing guest";

/// The JSON form of a run, for `--json`.
#[derive(Serialize)]
struct JsonReport<'a> {
    execution_id: &'a str,
    language: Language,
    file: String,
    guest_hash: String,
    #[serde(flatten)]
    report: &'a RunReport,
    limits: Limits,
    policy_sha256: &'a str,
    egress: Vec<EgressEvent>,
}

pub fn run(engine: &EngineArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    let (code, language, filename) = read_script(&args.file, args.lang)?;
    let policy = load_policy(args.policy.as_deref())?;
    let requested = RequestedLimits {
        timeout: args.timeout,
        fuel: args.fuel,
        memory_bytes: args.memory,
        stdout_bytes: args.max_stdout,
        stderr_bytes: args.max_stderr,
    };
    let limits = resolve_limits(&policy, requested)?;
    limits.validate()?;
    let gate = build_gate(&policy.policy, &args.resolve)?;
    // The store opens before anything runs: no record, no run.
    let recorder = Recorder::new(open_store(engine)?, &policy, Some(gate.clone()))
        .context("the audit trail is unavailable, so nothing was run")?;

    // The scratch directory lives until this function returns.
    let scratch;
    let workspace = match &args.workspace {
        Some(dir) => dir.clone(),
        None => {
            scratch = tempfile::Builder::new()
                .prefix("moat-workspace-")
                .tempdir()
                .context("failed to create a scratch workspace directory")?;
            scratch.path().to_path_buf()
        }
    };
    let mut grants = policy_grants(&policy.policy);
    grants.extend(args.dirs.iter().cloned());
    let before = DirState::scan(&workspace);
    let files_in = before.inputs(&workspace);
    let grants_before = GrantsState::scan(&grants);
    let files = FileAccess {
        workspace: workspace.clone(),
        grants,
    };

    let runtime_config = engine.runtime_config();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;

    let execution_id = moat_audit::new_execution_id();
    let span = tracing::info_span!(
        "execution",
        execution = %execution_id,
        language = language.name(),
        filename = %filename,
    );
    let report = tokio.block_on(
        async {
            let runtime = Runtime::new(runtime_config)?;
            let mut sandbox = Sandbox::new(&runtime, language, &files, Vec::new())?;
            if let Some(modules) = &policy.policy.python.modules {
                sandbox.set_allowed_modules(modules.clone());
            }
            let run_gate = gate.for_execution(&execution_id);
            sandbox.set_network(run_gate.clone());
            let info = RunInfo {
                execution_id: execution_id.clone(),
                session_id: None,
                actor: args.who.actor(Transport::Cli),
                language,
                guest_hash: sandbox.guest_hash(),
                started_at: moat_audit::now_rfc3339(),
            };
            // TODO: append the start record while the guest instantiates,
            // so its fsync overlaps; recording adds about 2 ms, over the
            // 1 ms target (docs/benchmarks.md).
            recorder
                .start(&info, &code)
                .context("the audit trail cannot be written, so the script was not run")?;
            let result = sandbox.run(&code, &filename, &limits).await;
            let egress = run_gate.events();
            let mut files_out = before.changes(&DirState::scan(&workspace), &workspace);
            files_out.extend(grants_before.changes());
            let failure = result.as_ref().err().map(|error| format!("{error:#}"));
            let ended = match (&result, &failure) {
                (Ok(report), _) => Ended::Report(report),
                (Err(_), message) => Ended::Failed {
                    message: message.as_deref().unwrap_or_default(),
                },
            };
            recorder
            .finish(
                &info,
                Finished {
                    code: &code,
                    stdin: None,
                    files_in: &files_in,
                    files_out: &files_out,
                    ended,
                    limits: &limits,
                    egress: &egress,
                },
            )
            .context(
                "the script ran, but its audit record cannot be written, so its output is withheld",
            )?;
            anyhow::Ok((result?, info, egress))
        }
        .instrument(span),
    );
    let (report, info, egress) = report?;

    if args.json {
        let json = JsonReport {
            execution_id: &info.execution_id,
            language,
            file: args.file.display().to_string(),
            guest_hash: info.guest_hash.clone(),
            report: &report,
            limits,
            policy_sha256: &policy.sha256,
            egress,
        };
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, &json)
            .context("failed to write the JSON report")?;
        writeln!(stdout).context("failed to write the JSON report")?;
    } else {
        print_plain(&report)?;
    }
    Ok(ExitCode::from(exit::for_report(&report)))
}

/// Reads the script and works out its language and display name.
fn read_script(path: &Path, lang: Option<Language>) -> anyhow::Result<(String, Language, String)> {
    let from_stdin = path.as_os_str() == "-";
    let language = match (lang, from_stdin) {
        (Some(language), _) => language,
        (None, true) => {
            bail!("reading the script from standard input needs --lang python or --lang javascript")
        }
        (None, false) => {
            let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            match Language::from_extension(extension) {
                Some(language) => language,
                None => bail!(
                    "cannot tell the language of {}: the extension {:?} is not .py or .js; \
                     pass --lang python or --lang javascript",
                    path.display(),
                    extension
                ),
            }
        }
    };

    let mut bytes = Vec::new();
    if from_stdin {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("failed to read the script from standard input")?;
    } else {
        bytes = std::fs::read(path)
            .with_context(|| format!("failed to read script {}", path.display()))?;
    }
    let code = String::from_utf8(bytes).map_err(|error| {
        anyhow::anyhow!(
            "script {} is not valid UTF-8 (invalid byte at offset {}): moat runs source text only",
            path.display(),
            error.utf8_error().valid_up_to()
        )
    })?;

    // A UTF-8 byte order mark is not source text; CPython skips it too.
    let code = match code.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => code,
    };

    let filename = match from_stdin {
        true => "<stdin>".to_owned(),
        false => path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
    };
    Ok((code, language, filename))
}

/// Prints the guest's output as a script's own output would appear, then
/// the traceback or the limit that ended it.
fn print_plain(report: &RunReport) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&report.stdout)
        .context("failed to write the script's stdout")?;
    stdout
        .flush()
        .context("failed to write the script's stdout")?;

    let mut stderr = std::io::stderr().lock();
    stderr
        .write_all(&report.stderr)
        .context("failed to write the script's stderr")?;
    if let Some(error) = &report.error {
        let text = match error.stack.is_empty() {
            true => format!("{}: {}\n", error.name, error.message),
            false => error.stack.clone(),
        };
        stderr
            .write_all(text.as_bytes())
            .context("failed to write the script's error")?;
        if !text.ends_with('\n') {
            writeln!(stderr).context("failed to write the script's error")?;
        }
    }
    if let Some(message) = &report.limit_message {
        writeln!(stderr, "moat: {}: {message}", report.outcome.name())
            .context("failed to write the limit message")?;
    }
    Ok(())
}
