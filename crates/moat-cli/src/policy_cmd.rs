//! `moat policy`: check a policy file, explain it, print its JSON Schema.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use moat_policy::{LoadedPolicy, Policy};

/// Arguments of `moat policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate a policy file; print every problem with its line, and exit
    /// 125 if there is any
    Check {
        /// Policy file (TOML)
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },

    /// Say in plain words what code may and may not do under a policy
    Explain {
        /// Policy file (TOML); without it, the built-in policy is explained
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,

        /// Print the same facts as one JSON object
        #[arg(long)]
        json: bool,
    },

    /// Print the JSON Schema of policy files, for editors
    Schema,
}

/// Runs one `moat policy` command. An invalid policy is an error, which
/// `main` prints and turns into exit code 125.
pub fn run(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PolicyCommand::Check { file } => check(&file),
        PolicyCommand::Explain { file, json } => explain(file.as_deref(), json),
        PolicyCommand::Schema => schema(),
    }
}

fn check(file: &Path) -> anyhow::Result<ExitCode> {
    let loaded = Policy::load(file)?;
    for warning in loaded.missing_host_paths() {
        eprintln!("moat: warning: {}: {}", warning.path, warning.message);
    }
    println!(
        "policy {} is valid (sha256 {})",
        file.display(),
        loaded.sha256
    );
    Ok(ExitCode::SUCCESS)
}

fn explain(file: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let loaded = match file {
        Some(file) => Policy::load(file)?,
        None => LoadedPolicy::builtin(),
    };
    let mut stdout = std::io::stdout().lock();
    if json {
        let value = moat_policy::explain_json(&loaded);
        serde_json::to_writer_pretty(&mut stdout, &value)
            .context("failed to write the explanation")?;
        writeln!(stdout).context("failed to write the explanation")?;
    } else {
        stdout
            .write_all(moat_policy::explain(&loaded).as_bytes())
            .context("failed to write the explanation")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the schema exactly as `policy/moat-policy.schema.json` stores it:
/// pretty JSON and a final newline.
fn schema() -> anyhow::Result<ExitCode> {
    let text = serde_json::to_string_pretty(&Policy::json_schema())
        .context("failed to render the JSON Schema")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}").context("failed to write the JSON Schema")?;
    Ok(ExitCode::SUCCESS)
}
