//! WebAssembly component that runs JavaScript with QuickJS and exports the `run` function of moat's `interpreter` world.

mod console;
mod engine;
mod errors;
mod fs;
mod http;
mod process;
mod text;
mod timers;
mod url;
mod web;

use std::cell::RefCell;

use engine::Engine;
use moat::sandbox::types::GuestError;

wit_bindgen::generate!({ world: "interpreter", path: "../wit" });

thread_local! {
    /// The interpreter of this instance, created by the first `run` call and
    /// kept so globals persist between calls.
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

struct Interpreter;

impl Guest for Interpreter {
    fn run(code: String, options: RunOptions) -> RunOutcome {
        let outcome = ENGINE.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                match Engine::new() {
                    Ok(engine) => *slot = Some(engine),
                    Err(error) => return startup_failure(&error),
                }
            }
            match slot.as_mut() {
                Some(engine) => engine.run(&code, &options.filename),
                None => startup_failure(&"interpreter state missing after start-up"),
            }
        });
        console::flush();
        outcome
    }
}

/// Reports a failure to create the QuickJS runtime as the run's error, so
/// the host receives a result instead of a trap.
fn startup_failure(error: &dyn std::fmt::Display) -> RunOutcome {
    RunOutcome {
        value: None,
        exit_code: None,
        error: Some(GuestError {
            name: "InternalError".to_string(),
            message: format!("failed to start the JavaScript engine: {error}"),
            stack: String::new(),
        }),
    }
}

export!(Interpreter);
