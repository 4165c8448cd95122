//! The QuickJS runtime of one instance: start-up, evaluation of each cell and the event loop that drives promises and timers.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use rquickjs::context::EvalOptions;
use rquickjs::promise::PromiseState;
use rquickjs::{Context, Ctx, Function, Object, Persistent, Promise, Runtime, Value};

use crate::errors::{self, Formatter};
use crate::moat::sandbox::types::GuestError;
use crate::timers::Timers;
use crate::{RunOutcome, console, fs, http, process, text, timers, url, web};

/// Maximum bytes of the shadow stack (the C stack in linear memory) that
/// QuickJS may use below the frame that starts a cell or a job. Past it,
/// QuickJS throws a catchable `RangeError: Maximum call stack size
/// exceeded`. The linker gives the guest a larger stack (see
/// `.cargo/config.toml`), so the remainder is left for the Rust and C frames
/// that run beneath a cell and for building the error.
const MAX_JS_STACK_SIZE: usize = 1024 * 1024;

/// File name shown in stack frames of the start-up scripts.
const PRELUDE_FILENAME: &str = "node:internal";

/// State shared by the Rust functions that JavaScript calls and the loop.
#[derive(Default)]
pub struct Shared {
    /// Status passed to `process.exit`, set until the current run ends.
    pub exit_code: Cell<Option<i32>>,
    /// Pending `setTimeout` and `setInterval` callbacks.
    pub timers: RefCell<Timers>,
    /// Rejected promises that have no handler yet, with their reasons.
    rejections: RefCell<Vec<(Persistent<Value<'static>>, Persistent<Value<'static>>)>>,
}

/// A QuickJS runtime and context that live as long as the instance.
pub struct Engine {
    runtime: Runtime,
    context: Context,
    shared: Rc<Shared>,
    formatter: Formatter,
}

/// The promise the event loop waits on before it records the cell's value.
enum Awaited {
    /// The promise QuickJS returns for a script evaluated with top-level
    /// `await`, which resolves to `{ value }`.
    Cell(Persistent<Promise<'static>>),
    /// A promise that was the cell's completion value.
    Completion(Persistent<Promise<'static>>),
}

/// Reason the event loop ended, before the outcome is assembled.
enum Stop {
    /// No work is left.
    Idle,
    /// `process.exit` was called.
    Exit(i32),
    /// An exception or rejection escaped.
    Error(GuestError),
}

impl Engine {
    /// Creates the runtime and context and installs the Node-like globals.
    pub fn new() -> Result<Self, String> {
        let runtime =
            Runtime::new().map_err(|error| format!("failed to create runtime: {error}"))?;
        runtime.set_max_stack_size(MAX_JS_STACK_SIZE);
        let context = Context::full(&runtime)
            .map_err(|error| format!("failed to create context: {error}"))?;
        let shared = Rc::new(Shared::default());

        let tracker_state = Rc::clone(&shared);
        runtime.set_host_promise_rejection_tracker(Some(Box::new(
            move |ctx, promise, reason, is_handled| {
                track_rejection(&tracker_state, &ctx, promise, reason, is_handled);
            },
        )));

        // Stops code that keeps running after `process.exit` inside an async
        // function, where the exit error only rejects the function's promise.
        let interrupt_state = Rc::clone(&shared);
        runtime.set_interrupt_handler(Some(Box::new(move || {
            interrupt_state.exit_code.get().is_some()
        })));

        let formatter = context.with(|ctx| {
            install_globals(&ctx, &shared)
                .map_err(|error| format!("failed to install globals: {}", describe(&ctx, error)))
        })?;

        Ok(Engine {
            runtime,
            context,
            shared,
            formatter,
        })
    }

    /// Evaluates `code` as a global script with top-level `await`, then runs
    /// jobs and timers until none are left or the code exits or fails.
    pub fn run(&mut self, code: &str, filename: &str) -> RunOutcome {
        self.shared.exit_code.set(None);
        self.shared.timers.borrow_mut().clear();
        self.shared.rejections.borrow_mut().clear();

        let mut outcome = RunOutcome {
            value: None,
            exit_code: None,
            error: None,
        };

        let mut main = match self.evaluate(code, filename) {
            Ok(promise) => Some(Awaited::Cell(promise)),
            Err(stop) => {
                self.finish(&mut outcome, stop);
                return outcome;
            }
        };

        let stop = loop {
            if let Err(stop) = self.drain_jobs() {
                break stop;
            }

            if let Some(awaited) = main.take() {
                match self.settle_main(awaited, &mut outcome) {
                    Ok(next) => main = next,
                    Err(stop) => break stop,
                }
            }
            if let Some(stop) = self.take_rejection() {
                break stop;
            }
            if self.runtime.is_job_pending() {
                continue;
            }

            let next_due = self.shared.timers.borrow().next_due();
            match next_due {
                Some(due) => {
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    if let Err(stop) = self.fire_due_timer() {
                        break stop;
                    }
                }
                None if main.is_some() => {
                    break Stop::Error(GuestError {
                        name: "Error".to_string(),
                        message: "top-level await never settled: no jobs or timers are left \
                                  that could resolve it"
                            .to_string(),
                        stack: String::new(),
                    });
                }
                None => break Stop::Idle,
            }
        };
        self.finish(&mut outcome, stop);
        outcome
    }

    fn evaluate(&self, code: &str, filename: &str) -> Result<Persistent<Promise<'static>>, Stop> {
        self.context.with(|ctx| {
            let mut options = EvalOptions::default();
            options.strict = false;
            options.promise = true;
            options.filename = Some(filename.to_string());

            match ctx.eval_with_options::<Promise, _>(code, options) {
                Ok(promise) => {
                    mark_handled(&promise);
                    Ok(Persistent::save(&ctx, promise))
                }
                Err(error) => Err(self.stop_for(&ctx, error)),
            }
        })
    }

    /// Runs queued promise jobs until the queue is empty.
    fn drain_jobs(&self) -> Result<(), Stop> {
        loop {
            match self.runtime.execute_pending_job() {
                Ok(true) => {
                    if let Some(code) = self.shared.exit_code.get() {
                        return Err(Stop::Exit(code));
                    }
                }
                Ok(false) => return Ok(()),
                Err(job) => {
                    // The job left its exception pending on the context it ran in.
                    return Err(job.0.with(|ctx| {
                        let thrown = ctx.catch();
                        self.stop_for_value(&ctx, thrown)
                    }));
                }
            }
        }
    }

    /// Checks the promise of the evaluated cell. Returns the promise to keep
    /// waiting on, if any, and records the display value once it resolves.
    fn settle_main(
        &self,
        awaited: Awaited,
        outcome: &mut RunOutcome,
    ) -> Result<Option<Awaited>, Stop> {
        let (promise, from_cell) = match awaited {
            Awaited::Cell(promise) => (promise, true),
            Awaited::Completion(promise) => (promise, false),
        };
        self.context.with(|ctx| {
            let promise = promise
                .restore(&ctx)
                .map_err(|error| self.stop_for(&ctx, error))?;
            match promise.state() {
                PromiseState::Pending => {
                    let promise = Persistent::save(&ctx, promise);
                    Ok(Some(if from_cell {
                        Awaited::Cell(promise)
                    } else {
                        Awaited::Completion(promise)
                    }))
                }
                PromiseState::Rejected => {
                    let reason = match promise.result::<Value>() {
                        Some(Err(_)) => ctx.catch(),
                        _ => Value::new_undefined(ctx.clone()),
                    };
                    Err(self.stop_for_value(&ctx, reason))
                }
                PromiseState::Resolved => {
                    let value = match promise.result::<Value>() {
                        Some(Ok(value)) => value,
                        Some(Err(error)) => return Err(self.stop_for(&ctx, error)),
                        None => Value::new_undefined(ctx.clone()),
                    };
                    let completion = if from_cell {
                        completion_value(&promise, value)
                    } else {
                        value
                    };
                    if let Some(inner) = completion.as_promise() {
                        // A cell that ends in a promise shows what it resolves to.
                        mark_handled(inner);
                        let inner = Persistent::save(&ctx, inner.clone());
                        return Ok(Some(Awaited::Completion(inner)));
                    }
                    if !completion.is_undefined() {
                        outcome.value = Some(self.formatter.inspect(&ctx, completion));
                    }
                    Ok(None)
                }
            }
        })
    }

    /// Returns the first rejection that still has no handler after the job
    /// queue drained, as Node does before it exits on one.
    fn take_rejection(&self) -> Option<Stop> {
        let (_, reason) = {
            let mut rejections = self.shared.rejections.borrow_mut();
            if rejections.is_empty() {
                return None;
            }
            rejections.remove(0)
        };
        Some(self.context.with(|ctx| match reason.restore(&ctx) {
            Ok(reason) => self.stop_for_value(&ctx, reason),
            Err(error) => self.stop_for(&ctx, error),
        }))
    }

    fn fire_due_timer(&self) -> Result<(), Stop> {
        let callback = self.shared.timers.borrow_mut().take_due(Instant::now());
        let Some(callback) = callback else {
            return Ok(());
        };
        self.context.with(|ctx| {
            let result = callback
                .restore(&ctx)
                .and_then(|function| function.call::<_, ()>(()));
            match result {
                Ok(()) => Ok(()),
                Err(error) => Err(self.stop_for(&ctx, error)),
            }
        })?;
        match self.shared.exit_code.get() {
            Some(code) => Err(Stop::Exit(code)),
            None => Ok(()),
        }
    }

    /// Turns an rquickjs error into the reason the loop stops. An exit
    /// request wins over the error that carried it.
    fn stop_for(&self, ctx: &Ctx<'_>, error: rquickjs::Error) -> Stop {
        if let Some(code) = self.shared.exit_code.get() {
            return Stop::Exit(code);
        }
        if error.is_exception() {
            let thrown = ctx.catch();
            return Stop::Error(self.formatter.guest_error(ctx, thrown));
        }
        Stop::Error(errors::internal_error(&error))
    }

    fn stop_for_value<'js>(&self, ctx: &Ctx<'js>, thrown: Value<'js>) -> Stop {
        match self.shared.exit_code.get() {
            Some(code) => Stop::Exit(code),
            None => Stop::Error(self.formatter.guest_error(ctx, thrown)),
        }
    }

    fn finish(&self, outcome: &mut RunOutcome, stop: Stop) {
        match stop {
            Stop::Idle => {}
            Stop::Exit(code) => outcome.exit_code = Some(code),
            Stop::Error(error) => outcome.error = Some(error),
        }
        // Callbacks left by a cell that exited or failed must not fire in
        // the next cell.
        self.shared.timers.borrow_mut().clear();
        self.shared.rejections.borrow_mut().clear();
    }
}

/// Returns the completion value of a cell. With top-level `await`, QuickJS
/// resolves the cell's promise to an object whose `value` property contains it.
fn completion_value<'js>(promise: &Promise<'js>, resolved: Value<'js>) -> Value<'js> {
    match resolved
        .as_object()
        .map(|object| object.get::<_, Value>("value"))
    {
        Some(Ok(value)) => value,
        _ => Value::new_undefined(promise.ctx().clone()),
    }
}

/// Attaches an empty rejection handler so the loop, not the rejection
/// tracker, reports the failure of a promise it waits on.
fn mark_handled(promise: &Promise<'_>) {
    let ctx = promise.ctx().clone();
    let Ok(then) = promise.then() else {
        return;
    };
    let Ok(ignore) = Function::new(ctx.clone(), || {}) else {
        return;
    };
    let undefined = Value::new_undefined(ctx);
    // A failure here only means the rejection is also reported by the
    // tracker, which yields the same error.
    let _ = then.call::<_, Value>((rquickjs::function::This(promise.clone()), undefined, ignore));
}

fn track_rejection<'js>(
    shared: &Shared,
    ctx: &Ctx<'js>,
    promise: Value<'js>,
    reason: Value<'js>,
    is_handled: bool,
) {
    let mut rejections = shared.rejections.borrow_mut();
    if is_handled {
        rejections.retain(|(saved, _)| match saved.clone().restore(ctx) {
            Ok(saved) => saved != promise,
            Err(_) => false,
        });
    } else {
        rejections.push((
            Persistent::save(ctx, promise),
            Persistent::save(ctx, reason),
        ));
    }
}

/// Registers the native functions and runs the JavaScript start-up scripts.
fn install_globals(ctx: &Ctx<'_>, shared: &Rc<Shared>) -> rquickjs::Result<Formatter> {
    let native = Object::new(ctx.clone())?;
    console::register(ctx, &native)?;
    text::register(ctx, &native)?;
    fs::register(ctx, &native)?;
    url::register(ctx, &native)?;
    http::register(ctx, &native)?;
    timers::register(ctx, &native, shared)?;
    process::register(ctx, &native, shared)?;
    native.set("promiseState", Function::new(ctx.clone(), promise_state)?)?;

    let make_util: Function = eval_prelude(ctx, include_str!("js/inspect.js"))?;
    let util: Object = make_util.call((native.clone(),))?;
    let install: Function = eval_prelude(ctx, include_str!("js/globals.js"))?;
    install.call::<_, ()>((native.clone(), util.clone()))?;
    web::install(ctx, &native, &util)?;

    Formatter::new(ctx, &util)
}

pub(crate) fn eval_prelude<'js>(ctx: &Ctx<'js>, source: &str) -> rquickjs::Result<Function<'js>> {
    let mut options = EvalOptions::default();
    options.strict = false;
    options.filename = Some(PRELUDE_FILENAME.to_string());
    ctx.eval_with_options(source, options)
}

/// Returns `[state, result]` for a promise, so `inspect` can show it the
/// way Node does.
fn promise_state<'js>(ctx: Ctx<'js>, promise: Promise<'js>) -> rquickjs::Result<Vec<Value<'js>>> {
    let name = match promise.state() {
        PromiseState::Pending => "pending",
        PromiseState::Resolved => "fulfilled",
        PromiseState::Rejected => "rejected",
    };
    let result = match promise.result::<Value>() {
        None => Value::new_undefined(ctx.clone()),
        Some(Ok(value)) => value,
        // `result` throws the reason of a rejected promise, so take it back.
        Some(Err(_)) => ctx.catch(),
    };
    let name = rquickjs::String::from_str(ctx, name)?.into_value();
    Ok(vec![name, result])
}

/// Renders an rquickjs error, taking the pending exception when there is one.
fn describe(ctx: &Ctx<'_>, error: rquickjs::Error) -> String {
    if error.is_exception() {
        let thrown = ctx.catch();
        let message = thrown
            .as_object()
            .and_then(|object| object.get::<_, String>("message").ok());
        return message.unwrap_or_else(|| format!("{thrown:?}"));
    }
    error.to_string()
}
