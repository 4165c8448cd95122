//! Conversion of thrown JavaScript values and completion values into the display strings and `guest-error` records the host receives.

use rquickjs::{Ctx, Function, Object, Persistent, Value};

use crate::moat::sandbox::types::GuestError;

/// Name reported for a thrown value that is not an `Error`, such as
/// `throw 42`. Node prints these as `Uncaught 42`.
const NON_ERROR_NAME: &str = "Uncaught";

/// The `inspect` and `errorStack` functions of `js/inspect.js`, kept from
/// start-up so later changes to globals cannot alter what the host receives.
pub struct Formatter {
    inspect: Persistent<Function<'static>>,
    error_stack: Persistent<Function<'static>>,
}

impl Formatter {
    /// Takes the formatting functions from the object `js/inspect.js` returns.
    pub fn new<'js>(ctx: &Ctx<'js>, util: &Object<'js>) -> rquickjs::Result<Self> {
        let inspect: Function = util.get("inspect")?;
        let error_stack: Function = util.get("errorStack")?;
        Ok(Formatter {
            inspect: Persistent::save(ctx, inspect),
            error_stack: Persistent::save(ctx, error_stack),
        })
    }

    /// Formats a value the way Node's `util.inspect` does: `'abc'` for
    /// strings, `42`, `[ 1, 2, 3 ]`, `{ a: 1 }`, `Map(1) { 'a' => 1 }`.
    /// Strings are quoted so that `'42'` and `42` stay distinguishable, as
    /// in the Node REPL.
    pub fn inspect<'js>(&self, ctx: &Ctx<'js>, value: Value<'js>) -> String {
        let result = self
            .inspect
            .clone()
            .restore(ctx)
            .and_then(|inspect| inspect.call::<_, String>((value.clone(),)));
        match result {
            Ok(text) => text,
            Err(error) => {
                if error.is_exception() {
                    // A throwing getter or proxy trap must not replace the value.
                    let _ = ctx.catch();
                }
                fallback_display(&value)
            }
        }
    }

    /// Builds the `guest-error` for a value that escaped the code. The stack
    /// starts with `Name: message`, followed by QuickJS's frames, like a
    /// stack Node prints for an uncaught error.
    pub fn guest_error<'js>(&self, ctx: &Ctx<'js>, thrown: Value<'js>) -> GuestError {
        let Some(object) = thrown.as_object().filter(|object| is_error(object)) else {
            let shown = self.inspect(ctx, thrown);
            return GuestError {
                name: NON_ERROR_NAME.to_string(),
                stack: format!("{NON_ERROR_NAME} {shown}"),
                message: shown,
            };
        };

        let name = string_property(ctx, object, "name").unwrap_or_else(|| "Error".to_string());
        let message = string_property(ctx, object, "message").unwrap_or_default();
        let stack = self
            .error_stack
            .clone()
            .restore(ctx)
            .and_then(|error_stack| error_stack.call::<_, String>((thrown.clone(),)));
        let stack = match stack {
            Ok(stack) => stack,
            Err(error) => {
                if error.is_exception() {
                    let _ = ctx.catch();
                }
                format!("{name}: {message}")
            }
        };
        GuestError {
            name,
            message,
            stack,
        }
    }
}

/// Reports a failure inside the Rust bindings (not thrown by the code) as
/// an `InternalError`.
pub fn internal_error(error: &rquickjs::Error) -> GuestError {
    GuestError {
        name: "InternalError".to_string(),
        message: error.to_string(),
        stack: String::new(),
    }
}

/// Checks the object's class, so subclasses of `Error` count and a
/// replaced global `Error` does not matter.
fn is_error(object: &Object<'_>) -> bool {
    rquickjs::Exception::from_object(object.clone()).is_some()
}

/// Reads a property as a string, treating a throwing getter as missing.
fn string_property<'js>(ctx: &Ctx<'js>, object: &Object<'js>, key: &str) -> Option<String> {
    match object.get::<_, rquickjs::Coerced<String>>(key) {
        Ok(value) => Some(value.0),
        Err(error) => {
            if error.is_exception() {
                let _ = ctx.catch();
            }
            None
        }
    }
}

fn fallback_display(value: &Value<'_>) -> String {
    match value.type_of() {
        rquickjs::Type::Undefined => "undefined".to_string(),
        other => format!("[{}]", other.as_str()),
    }
}
