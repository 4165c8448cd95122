//! Runs one script in a fresh sandbox with a fresh scratch `/workspace`,
//! and turns the run into a verdict.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use moat_audit::{Actor, DirState, Ended, Finished, GrantsState, Recorder, RunInfo};
use moat_egress::Gate;
use moat_runtime::{FileAccess, Runtime, Sandbox};

use super::CheckPolicy;
use super::discover::Script;
use super::expectations::Expectations;
use super::verdict::{Execution, Failure, FailureKind, OutputState, Status, Verdict, judge};
use super::violations::find_violations;

/// Largest output file read for a comparison, in bytes. The policy does not
/// cap what a run writes, so a runaway file must not be read whole.
const MAX_COMPARED_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The recorder and caller of a check's runs, for the audit trail.
#[derive(Debug)]
pub struct CheckAudit {
    /// Writes the records.
    pub recorder: Arc<Recorder>,
    /// The caller the runs are recorded as.
    pub actor: Actor,
}

/// Runs `script` under `policy` and judges it.
///
/// This is the one place where a check executes code. Each call creates a
/// sandbox from the shared `runtime`, a scratch workspace that is deleted
/// when the call returns, and a per-run gate from the shared `gate`. That
/// gate records every request. Failures of moat itself become a verdict with
/// [`Status::Error`], never a panic.
pub async fn execute_one(
    runtime: &Runtime,
    policy: &CheckPolicy,
    gate: &Gate,
    audit: &CheckAudit,
    script: &Script,
) -> Verdict {
    let started = Instant::now();
    let mut verdict = Verdict {
        path: script.display.clone(),
        language: script.language,
        status: Status::Pass,
        failures: Vec::new(),
        expectations: script.expectations.origin.clone(),
        execution: None,
        execution_id: None,
        duration: Default::default(),
    };

    match prepare_code(script) {
        Err(failure) => {
            verdict.status = Status::Fail;
            verdict.failures.push(failure);
        }
        Ok(code) => match run_in_sandbox(
            runtime,
            policy,
            gate,
            audit,
            script,
            &code,
            &mut verdict.execution_id,
        )
        .await
        {
            Ok(execution) => {
                verdict.failures = judge(&script.expectations, &execution);
                if !verdict.failures.is_empty() {
                    verdict.status = Status::Fail;
                }
                verdict.execution = Some(execution);
            }
            Err(error) => {
                verdict.status = Status::Error;
                verdict.failures.push(Failure::new(
                    FailureKind::MoatError,
                    format!("moat failed to run the script: {error:#}"),
                ));
            }
        },
    }
    verdict.duration = started.elapsed();
    verdict
}

/// Decodes the script, without a UTF-8 byte order mark, and rejects one that
/// is empty: a generator that produced nothing should not pass.
fn prepare_code(script: &Script) -> Result<String, Failure> {
    let code = std::str::from_utf8(&script.source).map_err(|error| {
        Failure::new(
            FailureKind::InvalidScript,
            format!(
                "the script is not valid UTF-8 (invalid byte at offset {}): moat runs source \
                 text only",
                error.valid_up_to()
            ),
        )
    })?;
    let code = code.strip_prefix('\u{feff}').unwrap_or(code);
    if code.trim().is_empty() {
        return Err(Failure::new(
            FailureKind::EmptyScript,
            "the script is empty: it has nothing but whitespace",
        ));
    }
    Ok(code.to_owned())
}

/// Runs the script and returns what the verdict needs. Sets `recorded` to the
/// run's `execution_id` once its first audit record is written, so that a
/// run that fails after that still links to its records.
async fn run_in_sandbox(
    runtime: &Runtime,
    policy: &CheckPolicy,
    gate: &Gate,
    audit: &CheckAudit,
    script: &Script,
    code: &str,
    recorded: &mut Option<String>,
) -> anyhow::Result<Execution> {
    let expectations: &Expectations = &script.expectations;

    // `TempDir` deletes the directory when dropped, on every return path.
    let scratch = tempfile::Builder::new()
        .prefix("moat-check-")
        .tempdir()
        .context("failed to create a scratch workspace directory")?;
    place_inputs(scratch.path(), expectations)?;

    let mut limits = policy.limits;
    let mut deadline_is_max_duration = false;
    if let Some(max) = expectations.max_duration
        && max < limits.timeout
    {
        limits.timeout = max;
        deadline_is_max_duration = true;
    }

    let files = FileAccess {
        workspace: scratch.path().to_path_buf(),
        grants: policy.grants.clone(),
    };
    let mut sandbox = Sandbox::new(runtime, script.language, &files, expectations.stdin.clone())?;
    if let Some(modules) = &policy.loaded.policy.python.modules {
        sandbox.set_allowed_modules(modules.clone());
    }
    let info = RunInfo {
        execution_id: moat_audit::new_execution_id(),
        session_id: None,
        actor: audit.actor.clone(),
        language: script.language,
        guest_hash: sandbox.guest_hash(),
        started_at: moat_audit::now_rfc3339(),
    };
    let run_gate = gate.for_execution(&info.execution_id);
    sandbox.set_network(Arc::clone(&run_gate) as _);

    let filename = script
        .path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| script.display.clone());
    let before = DirState::scan(scratch.path());
    let grants_before = GrantsState::scan(&policy.grants);
    record_start(audit, &info, code)
        .await
        .context("the audit trail cannot be written, so the script was not run")?;
    *recorded = Some(info.execution_id.clone());
    let result = sandbox.run(code, &filename, &limits).await;
    let egress = run_gate.events();

    let files_in: Vec<_> = expectations
        .inputs
        .iter()
        .map(|input| moat_audit::input_file(&input.path, &input.contents))
        .collect();
    let mut files_out = before.changes(&DirState::scan(scratch.path()), scratch.path());
    files_out.extend(grants_before.changes());
    let failure = result.as_ref().err().map(|error| format!("{error:#}"));
    let ended = match (&result, &failure) {
        (Ok(report), _) => Ended::Report(report),
        (Err(_), message) => Ended::Failed {
            message: message.as_deref().unwrap_or_default(),
        },
    };
    let record = audit.recorder.execution(
        &info,
        Finished {
            code,
            stdin: (!expectations.stdin.is_empty()).then_some(expectations.stdin.as_slice()),
            files_in: &files_in,
            files_out: &files_out,
            ended,
            limits: &limits,
            egress: &egress,
        },
    );
    record_end(audit, record).await.context(
        "the script ran, but its audit record cannot be written, so its verdict is withheld",
    )?;
    let report = result?;

    let outputs = expectations
        .outputs
        .iter()
        .map(|output| {
            let state = read_output(scratch.path(), &output.path);
            (output.path.clone(), state)
        })
        .collect();
    let violations = find_violations(
        script.language,
        &report,
        &egress,
        &policy.grants,
        deadline_is_max_duration,
    );
    Ok(Execution {
        report,
        egress,
        limits,
        guest_hash: sandbox.guest_hash(),
        violations,
        outputs,
        deadline_is_max_duration,
    })
}

/// Writes a run's first record on the blocking pool: SQLite waits for the
/// disk.
async fn record_start(audit: &CheckAudit, info: &RunInfo, code: &str) -> anyhow::Result<()> {
    let recorder = Arc::clone(&audit.recorder);
    let (info, code) = (info.clone(), code.to_owned());
    tokio::task::spawn_blocking(move || recorder.start(&info, &code))
        .await
        .context("the audit writer stopped")??;
    Ok(())
}

/// Writes a run's execution record on the blocking pool.
async fn record_end(audit: &CheckAudit, record: moat_audit::Execution) -> anyhow::Result<()> {
    let recorder = Arc::clone(&audit.recorder);
    tokio::task::spawn_blocking(move || recorder.append_execution(record))
        .await
        .context("the audit writer stopped")??;
    Ok(())
}

/// Writes the expected input files into the scratch workspace.
fn place_inputs(workspace: &Path, expectations: &Expectations) -> anyhow::Result<()> {
    for input in &expectations.inputs {
        let path = workspace.join(&input.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| {
                format!("failed to create the directory of input {}", input.path)
            })?;
        }
        std::fs::write(&path, &input.contents)
            .with_context(|| format!("failed to place input file {}", input.path))?;
    }
    Ok(())
}

/// Reads an output file from the scratch workspace without following a
/// symlink, up to [`MAX_COMPARED_FILE_BYTES`].
fn read_output(workspace: &Path, relative: &str) -> OutputState {
    let path = workspace.join(relative);
    let metadata = match std::fs::symlink_metadata(&path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return OutputState::Missing,
        Err(error) => return OutputState::Unreadable(error.to_string()),
    };
    if !metadata.is_file() {
        return OutputState::NotAFile;
    }
    if metadata.len() > MAX_COMPARED_FILE_BYTES {
        return OutputState::TooLarge(metadata.len());
    }
    let mut contents = Vec::new();
    let read = std::fs::File::open(&path).and_then(|file| {
        file.take(MAX_COMPARED_FILE_BYTES + 1)
            .read_to_end(&mut contents)
    });
    match read {
        Ok(_) if contents.len() as u64 > MAX_COMPARED_FILE_BYTES => {
            OutputState::TooLarge(contents.len() as u64)
        }
        Ok(_) => OutputState::Contents(contents),
        Err(error) => OutputState::Unreadable(error.to_string()),
    }
}
