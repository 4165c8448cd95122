//! Runs the scripts of a check concurrently and collects their verdicts in
//! script order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use moat_egress::Gate;
use moat_runtime::Runtime;
use tokio::task::JoinSet;

use super::CheckPolicy;
use super::discover::Script;
use super::execute::{CheckAudit, execute_one};
use super::verdict::{Failure, FailureKind, Status, Verdict};

/// The end of a batch of runs.
pub enum Finished {
    /// Every script has a verdict, in the order of the scripts.
    All(Vec<Verdict>, Arc<CheckPolicy>),
    /// Ctrl-C stopped the check.
    Interrupted,
}

/// Runs every script, up to `jobs` at once on a multi-threaded runtime.
/// Calls `on_verdict` for each verdict in script order, as soon as it and
/// every verdict before it are in, so the order never depends on timing.
pub fn run_all(
    runtime: Arc<Runtime>,
    policy: Arc<CheckPolicy>,
    gate: Gate,
    audit: Arc<CheckAudit>,
    scripts: Vec<Script>,
    jobs: usize,
    mut on_verdict: impl FnMut(&Verdict) -> anyhow::Result<()>,
) -> anyhow::Result<Finished> {
    let workers = jobs.min(scripts.len()).max(1);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;

    let scripts: Vec<Arc<Script>> = scripts.into_iter().map(Arc::new).collect();
    let mut verdicts: Vec<Option<Verdict>> = scripts.iter().map(|_| None).collect();
    let mut reported = 0;

    let interrupted: anyhow::Result<bool> = tokio.block_on(async {
        let mut running = JoinSet::new();
        let mut task_index = std::collections::HashMap::new();
        let mut next = 0;
        let interrupt = tokio::signal::ctrl_c();
        tokio::pin!(interrupt);

        loop {
            while next < scripts.len() && running.len() < workers {
                let (runtime, policy, gate, audit, script) = (
                    Arc::clone(&runtime),
                    Arc::clone(&policy),
                    gate.clone(),
                    Arc::clone(&audit),
                    Arc::clone(&scripts[next]),
                );
                let handle = running.spawn(async move {
                    execute_one(&runtime, &policy, &gate, &audit, &script).await
                });
                task_index.insert(handle.id(), next);
                next += 1;
            }
            if running.is_empty() {
                return Ok(false);
            }

            let joined = tokio::select! {
                joined = running.join_next_with_id() => joined,
                _ = &mut interrupt => {
                    running.abort_all();
                    while running.join_next().await.is_some() {}
                    return Ok(true);
                }
            };
            let (index, verdict) = match joined {
                Some(Ok((id, verdict))) => (task_index[&id], verdict),
                Some(Err(error)) => {
                    let index = task_index[&error.id()];
                    (index, panicked(&scripts[index], &error))
                }
                None => continue,
            };
            verdicts[index] = Some(verdict);
            while let Some(Some(verdict)) = verdicts.get(reported) {
                on_verdict(verdict)?;
                reported += 1;
            }
        }
    });
    if interrupted? {
        return Ok(Finished::Interrupted);
    }
    let verdicts = verdicts.into_iter().flatten().collect();
    Ok(Finished::All(verdicts, policy))
}

/// Builds the verdict for a script whose task panicked. A panic is a bug in
/// moat, reported for that script instead of ending the whole check.
fn panicked(script: &Script, error: &tokio::task::JoinError) -> Verdict {
    Verdict {
        path: script.display.clone(),
        language: script.language,
        status: Status::Error,
        failures: vec![Failure::new(
            FailureKind::MoatError,
            format!("moat failed while running the script: {error}"),
        )],
        expectations: script.expectations.origin.clone(),
        execution: None,
        execution_id: None,
        duration: Duration::ZERO,
    }
}
