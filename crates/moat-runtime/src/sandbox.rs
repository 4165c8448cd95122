//! One sandbox: a store with its WASI context and an interpreter instance
//! that runs code, one call at a time, under per-run limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_egress::Fetch;
use tracing::Instrument;

use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::engine::{Guest, Runtime};
use crate::error::RuntimeError;
use crate::files::{FileAccess, WORKSPACE_GUEST_PATH};
use crate::language::Language;
use crate::limiter::{MemoryLimitExceeded, MemoryLimiter};
use crate::limits::{DEFAULT_STDERR_BYTES, DEFAULT_STDOUT_BYTES, DEFAULT_TABLE_ELEMENTS, Limits};
use crate::output::{CappedPipe, OutputLimitExceeded};
use crate::report::{GuestError, Outcome, RunReport};

wasmtime::component::bindgen!({
    path: "../../guest-runtimes/wit",
    world: "interpreter",
    imports: { "moat:sandbox/http.fetch": async },
    exports: { default: async },
});

use moat::sandbox::types::{RunOptions as WitRunOptions, RunOutcome as WitRunOutcome};

pub(crate) use moat::sandbox::http as wit_http;

/// The trap raised by the epoch callback once a run's deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the run passed its deadline")]
struct DeadlineExceeded;

/// Per-store state: the WASI context and the limits' bookkeeping.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    deadline: Instant,
    /// Handler of `http.fetch`. `None` denies every request.
    pub(crate) network: Option<Arc<dyn Fetch>>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// An interpreter instance and everything it can see.
///
/// The first [`Sandbox::run`] instantiates the guest; later runs reuse the
/// instance, so globals and imports carry over like notebook cells. A run
/// that traps, times out or hits a limit leaves the instance in an unknown
/// state, so the sandbox refuses further runs after it.
pub struct Sandbox {
    language: Language,
    guest: Guest,
    store: Store<HostState>,
    instance: Option<Interpreter>,
    stdout: CappedPipe,
    stderr: CappedPipe,
    fuel_metering: bool,
    stopped_by: Option<String>,
    allowed_modules: Option<Vec<String>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("language", &self.language)
            .field("stopped_by", &self.stopped_by)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Prepares a sandbox for `language` that sees the directories in
    /// `files` and reads `stdin` as its standard input.
    ///
    /// This opens the host directories in `files` (the only host paths the
    /// runtime opens for a guest) and hands their capabilities to the WASI
    /// context. The guest gets no environment variables, no arguments and
    /// no sockets.
    pub fn new(
        runtime: &Runtime,
        language: Language,
        files: &FileAccess,
        stdin: Vec<u8>,
    ) -> Result<Self, RuntimeError> {
        files.validate()?;
        let guest = runtime.guest(language)?;

        let stdout = CappedPipe::new("stdout", DEFAULT_STDOUT_BYTES);
        let stderr = CappedPipe::new("stderr", DEFAULT_STDERR_BYTES);

        let mut builder = WasiCtxBuilder::new();
        builder
            .stdin(MemoryInputPipe::new(stdin))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);

        preopen(&mut builder, &files.workspace, WORKSPACE_GUEST_PATH, false)?;
        for grant in &files.grants {
            preopen(
                &mut builder,
                &grant.host_path,
                &grant.guest_path,
                grant.read_only,
            )?;
        }

        let state = HostState {
            wasi: builder.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(Limits::default().memory_bytes, DEFAULT_TABLE_ELEMENTS),
            deadline: Instant::now(),
            network: None,
        };
        let mut store = Store::new(runtime.engine(), state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_callback(|context| {
            if Instant::now() >= context.data().deadline {
                return Err(wasmtime::Error::new(DeadlineExceeded));
            }
            Ok(UpdateDeadline::Yield(1))
        });

        Ok(Sandbox {
            language,
            guest,
            store,
            instance: None,
            stdout,
            stderr,
            fuel_metering: runtime.fuel_metering(),
            stopped_by: None,
            allowed_modules: None,
        })
    }

    /// Sends the guest's HTTP requests to `network`, typically the policy's
    /// egress gate. Without it every request is denied.
    pub fn set_network(&mut self, network: Arc<dyn Fetch>) {
        self.store.data_mut().network = Some(network);
    }

    /// Narrows the Python modules that code may import by name to
    /// `modules` (top-level names, a subset of those baked into the guest).
    /// The guest enforces this in the interpreter's import machinery, which
    /// is a convenience for policy, not a security boundary: code cannot
    /// import anything that was not baked into the guest in any case.
    pub fn set_allowed_modules(&mut self, modules: Vec<String>) {
        self.allowed_modules = Some(modules);
    }

    /// Returns the sandbox's language.
    pub fn language(&self) -> Language {
        self.language
    }

    /// BLAKE3 hash of the guest component, in hex.
    pub fn guest_hash(&self) -> String {
        self.guest.hash.to_hex().to_string()
    }

    /// Returns whether an earlier run stopped the instance, so no more code can run.
    pub fn is_stopped(&self) -> bool {
        self.stopped_by.is_some()
    }

    /// Runs `code`, shown in tracebacks as `filename`, under `limits`.
    ///
    /// Guest failures are reported in the [`RunReport`], never as `Err`:
    /// `Err` means the limits were invalid or the sandbox was already
    /// stopped. Dropping the returned future cancels the run and stops the
    /// sandbox.
    pub async fn run(
        &mut self,
        code: &str,
        filename: &str,
        limits: &Limits,
    ) -> Result<RunReport, RuntimeError> {
        limits.validate()?;
        if let Some(reason) = &self.stopped_by {
            return Err(RuntimeError::SandboxPoisoned {
                reason: reason.clone(),
            });
        }
        // Until this run finishes cleanly, a dropped future leaves the
        // instance mid-call.
        self.stopped_by = Some("cancelled run".into());

        self.stdout.set_limit(limits.stdout_bytes);
        self.stderr.set_limit(limits.stderr_bytes);
        let _ = self.stdout.take();
        let _ = self.stderr.take();
        self.store.data_mut().limiter.set_limit(limits.memory_bytes);
        if self.fuel_metering {
            self.store
                .set_fuel(limits.fuel)
                .map_err(|error| RuntimeError::wasmtime("set the run's fuel", error))?;
        }

        // Guest calls into the host, such as egress, run inside this span.
        // It names the file but never records the code or its output.
        let span = tracing::info_span!(
            "sandbox_run",
            language = self.language.name(),
            filename,
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
            fuel_used = tracing::field::Empty,
            peak_memory_bytes = tracing::field::Empty,
        );

        let start = Instant::now();
        let deadline = start + limits.timeout;
        self.store.data_mut().deadline = deadline;
        self.store.set_epoch_deadline(1);

        let result = tokio::time::timeout_at(deadline.into(), self.call(code, filename))
            .instrument(span.clone())
            .await;
        let duration = start.elapsed();

        let fuel_used = match self.fuel_metering {
            true => limits
                .fuel
                .saturating_sub(self.store.get_fuel().unwrap_or(0)),
            false => 0,
        };
        let (stdout, stdout_truncated) = self.stdout.take();
        let (stderr, stderr_truncated) = self.stderr.take();

        let mut report = RunReport {
            outcome: Outcome::Ok,
            exit_code: Some(0),
            result: None,
            error: None,
            limit_message: None,
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            duration,
            fuel_used,
            peak_memory_bytes: self.store.data().limiter.peak_bytes(),
        };

        match result {
            Ok(Ok(outcome)) => {
                self.stopped_by = None;
                apply_guest_outcome(&mut report, outcome);
            }
            Ok(Err(error)) => {
                let ending = classify_trap(&error, self.store.data().limiter.exceeded(), limits);
                self.stopped_by = Some(ending.reason.clone());
                ending.apply(&mut report);
            }
            Err(_elapsed) => {
                let ending = Ending::timeout(limits.timeout);
                self.stopped_by = Some(ending.reason.clone());
                ending.apply(&mut report);
            }
        }
        span.record("outcome", report.outcome.name());
        span.record("duration_ms", report.duration.as_millis() as u64);
        span.record("fuel_used", report.fuel_used);
        span.record("peak_memory_bytes", report.peak_memory_bytes);
        Ok(report)
    }

    async fn call(&mut self, code: &str, filename: &str) -> wasmtime::Result<WitRunOutcome> {
        if self.instance.is_none() {
            let instance = self.guest.pre.instantiate_async(&mut self.store).await?;
            self.instance = Some(instance);
        }
        let Some(instance) = &self.instance else {
            unreachable!("the instance was created above");
        };
        let options = WitRunOptions {
            filename: filename.to_owned(),
            allowed_modules: self.allowed_modules.clone(),
        };
        instance.call_run(&mut self.store, code, &options).await
    }
}

fn preopen(
    builder: &mut WasiCtxBuilder,
    host_path: &std::path::Path,
    guest_path: &str,
    read_only: bool,
) -> Result<(), RuntimeError> {
    let perms = match read_only {
        true => FsPerms::ReadOnly,
        false => FsPerms::ReadWrite,
    };
    builder
        .preopened_dir(host_path, guest_path, perms)
        .map_err(|error| RuntimeError::OpenDirectory {
            path: host_path.to_path_buf(),
            source: std::io::Error::other(format!("{error:#}")),
        })?;
    Ok(())
}

/// Copies what the guest itself reported into the run's report.
fn apply_guest_outcome(report: &mut RunReport, outcome: WitRunOutcome) {
    report.result = outcome.value;
    if let Some(error) = outcome.error {
        report.outcome = Outcome::Error;
        report.exit_code = Some(1);
        report.error = Some(GuestError {
            name: error.name,
            message: error.message,
            stack: error.stack,
        });
        return;
    }
    if let Some(code) = outcome.exit_code {
        report.exit_code = Some(code);
        if code != 0 {
            report.outcome = Outcome::Error;
        }
    }
}

/// The ending of a run that did not return normally.
struct Ending {
    outcome: Outcome,
    exit_code: Option<i32>,
    error: Option<GuestError>,
    limit_message: Option<String>,
    /// Short reason kept to explain why the sandbox cannot run again.
    reason: String,
}

impl Ending {
    fn timeout(timeout: Duration) -> Self {
        Ending {
            outcome: Outcome::Timeout,
            exit_code: None,
            error: None,
            limit_message: Some(format!(
                "the run timed out after {}",
                format_duration(timeout)
            )),
            reason: "timeout".into(),
        }
    }

    fn limit(outcome: Outcome, message: String) -> Self {
        Ending {
            outcome,
            exit_code: None,
            error: None,
            limit_message: Some(message),
            reason: outcome.name().replace('_', " "),
        }
    }

    fn apply(self, report: &mut RunReport) {
        report.outcome = self.outcome;
        report.exit_code = self.exit_code;
        report.error = self.error;
        report.limit_message = self.limit_message;
    }
}

/// Names the cause of an error returned by a call into the guest.
fn classify_trap(error: &wasmtime::Error, memory_exceeded: bool, limits: &Limits) -> Ending {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        let outcome = if exit.0 == 0 {
            Outcome::Ok
        } else {
            Outcome::Error
        };
        return Ending {
            outcome,
            exit_code: Some(exit.0),
            error: None,
            limit_message: None,
            reason: "exit".into(),
        };
    }
    if let Some(exceeded) = find_in_chain::<MemoryLimitExceeded>(error) {
        return Ending::limit(Outcome::MemoryLimit, exceeded.to_string());
    }
    if memory_exceeded {
        let message = format!(
            "the guest passed its memory limit of {} bytes",
            limits.memory_bytes
        );
        return Ending::limit(Outcome::MemoryLimit, message);
    }
    if let Some(exceeded) = find_in_chain::<OutputLimitExceeded>(error) {
        return Ending::limit(Outcome::OutputTruncated, exceeded.to_string());
    }
    if find_in_chain::<DeadlineExceeded>(error).is_some() {
        return Ending::timeout(limits.timeout);
    }
    if error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        let message = format!(
            "the run used all of its fuel ({} instructions)",
            limits.fuel
        );
        return Ending::limit(Outcome::FuelExhausted, message);
    }

    let message = match error.downcast_ref::<Trap>() {
        Some(trap) => format!("the guest trapped: {trap}"),
        None => format!("the guest trapped: {}", error.root_cause()),
    };
    // The WebAssembly frames show where the guest was. The host's own Rust
    // backtrace, which anyhow may also capture, is no use to a caller.
    let stack = match error.downcast_ref::<wasmtime::WasmBacktrace>() {
        Some(backtrace) => format!("{message}\n{backtrace}"),
        None => message.clone(),
    };
    Ending {
        outcome: Outcome::Error,
        exit_code: None,
        error: Some(GuestError {
            name: "Trap".into(),
            message,
            stack,
        }),
        limit_message: None,
        reason: "trap".into(),
    }
}

fn find_in_chain<E: std::error::Error + 'static>(error: &wasmtime::Error) -> Option<&E> {
    error.chain().find_map(|cause| cause.downcast_ref::<E>())
}

fn format_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}
