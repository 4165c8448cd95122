//! Measurements inside this process: fresh sandboxes on a shared runtime,
//! and the cost of fuel metering on CPU-bound code.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use moat_runtime::{
    CacheStatus, FileAccess, Language, Limits, Outcome, RunReport, Runtime, Sandbox,
};
use serde::Serialize;

use crate::stats::Summary;

/// Fuel for the CPU-bound programs: far above what they use, so that only
/// the time differs between a metered and an unmetered run.
const CPU_BOUND_FUEL: u64 = 1_000_000_000_000;

/// Wall-clock limit for the CPU-bound programs, generous for a slow machine.
const CPU_BOUND_TIMEOUT: Duration = Duration::from_secs(120);

/// A program to run in a sandbox and the output that proves it ran.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    pub language: Language,
    pub code: &'static str,
    pub filename: &'static str,
    /// Exact stdout of a correct run, when it is worth checking.
    pub expected_stdout: Option<&'static str>,
}

impl Program {
    /// Builds the smallest program that prints: `print(1)` or
    /// `console.log(1)`.
    pub fn trivial(language: Language) -> Program {
        match language {
            Language::Python => Program {
                language,
                code: "print(1)",
                filename: "bench.py",
                expected_stdout: Some("1\n"),
            },
            Language::JavaScript => Program {
                language,
                code: "console.log(1)",
                filename: "bench.js",
                expected_stdout: Some("1\n"),
            },
        }
    }

    /// Builds a tight loop of two million multiplications and additions, with
    /// no host calls until the final print.
    pub fn cpu_bound(language: Language) -> Program {
        match language {
            Language::Python => Program {
                language,
                code: "print(sum(i * i for i in range(2_000_000)))",
                filename: "loop.py",
                expected_stdout: Some("2666664666667000000\n"),
            },
            // The sum passes 2^53, so the float result is not checked.
            Language::JavaScript => Program {
                language,
                code: "let s = 0; for (let i = 0; i < 2000000; i++) { s += i * i; } console.log(s);",
                filename: "loop.js",
                expected_stdout: None,
            },
        }
    }
}

/// How long a guest took to load before any timing started.
#[derive(Debug, Clone, Serialize)]
pub struct GuestLoad {
    pub language: Language,
    pub fuel_metering: bool,
    /// `hit` when the compiled guest came from the cache, `miss` when it was
    /// compiled.
    pub cache: &'static str,
    pub load_ms: f64,
}

/// Loads (compiles or takes from the cache) and links the guest for
/// `language`, and measures how long that took.
pub fn load_guest(runtime: &Runtime, language: Language) -> anyhow::Result<GuestLoad> {
    let start = Instant::now();
    let info = runtime
        .load(language)
        .with_context(|| format!("failed to load the {language} guest"))?;
    let cache = match info.cache {
        CacheStatus::Hit => "hit",
        CacheStatus::Miss => "miss",
        CacheStatus::Replaced => "replaced",
        CacheStatus::Disabled => "disabled",
    };
    Ok(GuestLoad {
        language,
        fuel_metering: runtime.fuel_metering(),
        cache,
        load_ms: start.elapsed().as_secs_f64() * 1e3,
    })
}

/// Timings of one fresh execution of a trivial program, split by step.
#[derive(Debug, Clone, Serialize)]
pub struct FreshSandbox {
    pub language: Language,
    pub code: &'static str,
    /// `Sandbox::new` plus the first run: from no sandbox to a result.
    pub total: Summary,
    /// `Sandbox::new` alone: a store, a WASI context, the workspace preopen.
    pub setup: Summary,
    /// The first run: instantiation from the pre-linked template plus the
    /// call into the guest.
    pub first_run: Summary,
    /// A second run in the same instance: the call without instantiation.
    /// `first_run` minus this estimates instantiation plus any one-time
    /// setup the guest does inside its first call.
    pub reused_run: Summary,
    /// Dropping the sandbox, which frees its store and linear memory. Not
    /// part of `total`.
    pub teardown: Summary,
}

/// Measures a fresh execution of `print(1)` or `console.log(1)`: a new
/// sandbox (new store and instance) on `runtime` for every run, timed as
/// `Sandbox::new`, the first run, a second run in the same instance, and the
/// drop. The first `warmup` executions are not timed.
pub async fn measure_fresh_sandbox(
    runtime: &Runtime,
    files: &FileAccess,
    language: Language,
    warmup: u32,
    runs: u32,
) -> anyhow::Result<FreshSandbox> {
    let program = Program::trivial(language);
    let limits = Limits::default();

    let mut setup = Vec::new();
    let mut first_run = Vec::new();
    let mut reused_run = Vec::new();
    let mut teardown = Vec::new();
    let mut total = Vec::new();

    for iteration in 0..warmup + runs {
        let start = Instant::now();
        let mut sandbox = Sandbox::new(runtime, language, files, Vec::new())
            .with_context(|| format!("failed to create a {language} sandbox"))?;
        let created = Instant::now();
        let report = sandbox.run(program.code, program.filename, &limits).await;
        let first_done = Instant::now();
        check_report(&program, report)?;

        let reused_start = Instant::now();
        let report = sandbox.run(program.code, program.filename, &limits).await;
        let reused_done = Instant::now();
        check_report(&program, report)?;

        let drop_start = Instant::now();
        drop(sandbox);
        let dropped = Instant::now();

        if iteration >= warmup {
            setup.push(created - start);
            first_run.push(first_done - created);
            total.push(first_done - start);
            reused_run.push(reused_done - reused_start);
            teardown.push(dropped - drop_start);
        }
    }

    Ok(FreshSandbox {
        language,
        code: program.code,
        total: summarise(&total)?,
        setup: summarise(&setup)?,
        first_run: summarise(&first_run)?,
        reused_run: summarise(&reused_run)?,
        teardown: summarise(&teardown)?,
    })
}

/// Run times of a CPU-bound program with and without fuel metering.
#[derive(Debug, Clone, Serialize)]
pub struct FuelCost {
    pub language: Language,
    pub code: &'static str,
    /// Runs on a runtime that counts fuel and checks epochs.
    pub fuel: Summary,
    /// Runs on a runtime that only checks epochs.
    pub epoch_only: Summary,
    /// Median with fuel divided by median without.
    pub ratio: f64,
}

/// Measures the cost of fuel metering: the CPU-bound program for `language`
/// in a fresh sandbox on `metered` (fuel and epochs) and on `unmetered`
/// (epochs only), alternating between the two so that drift in machine load
/// affects both alike. Times `Sandbox::run` only; one untimed run on each
/// runtime comes first.
pub async fn measure_fuel_cost(
    metered: &Runtime,
    unmetered: &Runtime,
    files: &FileAccess,
    language: Language,
    runs: u32,
) -> anyhow::Result<FuelCost> {
    let program = Program::cpu_bound(language);
    let limits = Limits {
        fuel: CPU_BOUND_FUEL,
        timeout: CPU_BOUND_TIMEOUT,
        ..Limits::default()
    };

    let mut fuel = Vec::new();
    let mut epoch_only = Vec::new();
    for iteration in 0..=runs {
        let with_fuel = time_one_run(metered, files, &program, &limits).await?;
        let without_fuel = time_one_run(unmetered, files, &program, &limits).await?;
        if iteration > 0 {
            fuel.push(with_fuel);
            epoch_only.push(without_fuel);
        }
    }

    let fuel = summarise(&fuel)?;
    let epoch_only = summarise(&epoch_only)?;
    Ok(FuelCost {
        language,
        code: program.code,
        fuel,
        epoch_only,
        ratio: fuel.median_ms / epoch_only.median_ms,
    })
}

/// Runs `program` once in a fresh sandbox and returns how long
/// `Sandbox::run` took.
async fn time_one_run(
    runtime: &Runtime,
    files: &FileAccess,
    program: &Program,
    limits: &Limits,
) -> anyhow::Result<Duration> {
    let mut sandbox = Sandbox::new(runtime, program.language, files, Vec::new())
        .with_context(|| format!("failed to create a {} sandbox", program.language))?;
    let start = Instant::now();
    let report = sandbox.run(program.code, program.filename, limits).await;
    let elapsed = start.elapsed();
    check_report(program, report)?;
    Ok(elapsed)
}

/// Fails unless the run ended `ok` with the expected stdout, so that a
/// broken guest never yields a fast but meaningless timing.
pub fn check_report(
    program: &Program,
    report: Result<RunReport, moat_runtime::RuntimeError>,
) -> anyhow::Result<()> {
    let report = report.with_context(|| {
        format!(
            "failed to run {:?} in the {} guest",
            program.code, program.language
        )
    })?;
    if report.outcome != Outcome::Ok {
        let detail = report
            .error
            .as_ref()
            .map(|error| format!("{}: {}", error.name, error.message))
            .or(report.limit_message.clone())
            .unwrap_or_default();
        bail!(
            "running {:?} in the {} guest ended with outcome {} instead of ok: {detail}\nstderr: {}",
            program.code,
            program.language,
            report.outcome.name(),
            String::from_utf8_lossy(&report.stderr),
        );
    }
    if let Some(expected) = program.expected_stdout
        && report.stdout != expected.as_bytes()
    {
        bail!(
            "running {:?} in the {} guest printed {:?}, expected {expected:?}",
            program.code,
            program.language,
            String::from_utf8_lossy(&report.stdout),
        );
    }
    Ok(())
}

pub fn summarise(timings: &[Duration]) -> anyhow::Result<Summary> {
    Summary::of(timings).context("no timed runs: the run count must be at least 1")
}
