//! Measurements of whole processes: reference interpreters and the `moat`
//! binary, each started once per run.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::stats::Summary;

/// A program started as a process for each timed run.
#[derive(Debug, Clone)]
pub struct ProcessCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Exact stdout of a correct run.
    pub expected_stdout: &'static str,
}

impl ProcessCommand {
    /// `python3 -c 'print(1)'` with the interpreter at `python`.
    pub fn python_reference(python: PathBuf) -> ProcessCommand {
        ProcessCommand {
            program: python,
            args: vec!["-c".into(), "print(1)".into()],
            expected_stdout: "1\n",
        }
    }

    /// `node -e 'console.log(1)'` with the interpreter at `node`.
    pub fn node_reference(node: PathBuf) -> ProcessCommand {
        ProcessCommand {
            program: node,
            args: vec!["-e".into(), "console.log(1)".into()],
            expected_stdout: "1\n",
        }
    }

    /// `moat run SCRIPT` with explicit guest and cache directories, so the
    /// run uses the same compiled guest as the rest of the benchmark, and an
    /// explicit audit store, so the runs stay out of the user's own trail.
    pub fn moat_run(
        moat: &Path,
        guest_dir: &Path,
        cache_dir: &Path,
        audit_db: &Path,
        script: &Path,
    ) -> ProcessCommand {
        ProcessCommand {
            program: moat.to_path_buf(),
            args: vec![
                "--guest-dir".into(),
                guest_dir.into(),
                "--cache-dir".into(),
                cache_dir.into(),
                "--audit-db".into(),
                audit_db.into(),
                "run".into(),
                script.into(),
            ],
            expected_stdout: "1\n",
        }
    }
}

/// Finds the real executable behind `python3` on `PATH`. Version managers
/// such as pyenv put a shell-script shim first on `PATH`; timing the shim
/// would add its own start-up to every reference run.
pub fn find_python() -> Option<PathBuf> {
    ask_for_executable("python3", &["-c", "import sys; print(sys.executable)"])
}

/// Finds the executable behind `node` on `PATH`, for the same reason as
/// [`find_python`].
pub fn find_node() -> Option<PathBuf> {
    ask_for_executable("node", &["-p", "process.execPath"])
}

/// Runs `program` with `args`, which must print the interpreter's own path,
/// and returns that path; `None` when the program is not installed or fails.
fn ask_for_executable(program: &str, args: &[&str]) -> Option<PathBuf> {
    let output = Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let path = String::from_utf8(output.stdout).ok()?;
    let path = PathBuf::from(path.trim());
    path.is_file().then_some(path)
}

/// Measures the wall-clock time from starting `command` as a process to its
/// exit with all of its output read, over `runs` runs after `warmup` untimed
/// ones. Every run must exit successfully and print the expected stdout.
pub fn measure_process(
    command: &ProcessCommand,
    warmup: u32,
    runs: u32,
) -> anyhow::Result<Summary> {
    let mut timings = Vec::new();
    for iteration in 0..warmup + runs {
        let elapsed = time_one_process(command)?;
        if iteration >= warmup {
            timings.push(elapsed);
        }
    }
    Summary::of(&timings).context("no timed runs: the run count must be at least 1")
}

fn time_one_process(command: &ProcessCommand) -> anyhow::Result<Duration> {
    let mut process = Command::new(&command.program);
    process.args(&command.args).stdin(Stdio::null());

    let start = Instant::now();
    let output = process
        .output()
        .with_context(|| format!("failed to start {}", display(command)))?;
    let elapsed = start.elapsed();

    if !output.status.success() {
        bail!(
            "{} exited with {}\nstderr: {}",
            display(command),
            output.status,
            String::from_utf8_lossy(&output.stderr),
        );
    }
    if output.stdout != command.expected_stdout.as_bytes() {
        bail!(
            "{} printed {:?}, expected {:?}",
            display(command),
            String::from_utf8_lossy(&output.stdout),
            command.expected_stdout,
        );
    }
    Ok(elapsed)
}

/// Formats the command line for messages.
pub fn display(command: &ProcessCommand) -> String {
    let mut line = command.program.display().to_string();
    for arg in &command.args {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}
