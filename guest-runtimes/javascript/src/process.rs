//! Native `process.exit`, which ends the current run through an error that JavaScript cannot catch.

use std::rc::Rc;

use rquickjs::{Ctx, Exception, Function, Object};

use crate::engine::Shared;

/// Adds `exit(code)` to the native object.
pub fn register<'js>(
    ctx: &Ctx<'js>,
    native: &Object<'js>,
    shared: &Rc<Shared>,
) -> rquickjs::Result<()> {
    let shared = Rc::clone(shared);
    let exit = Function::new(ctx.clone(), move |ctx: Ctx<'js>, code: i32| {
        exit(&ctx, &shared, code)
    })?;
    native.set("exit", exit)?;
    Ok(())
}

/// Records the exit status, then throws an error that QuickJS marks
/// uncatchable: `catch` blocks do not see it and `finally` blocks do not
/// run. Inside an async function the error can only reject that function's
/// promise, so the event loop checks the recorded status after every job
/// and the interrupt handler stops code that keeps running.
fn exit(ctx: &Ctx<'_>, shared: &Shared, code: i32) -> rquickjs::Result<()> {
    if shared.exit_code.get().is_none() {
        shared.exit_code.set(Some(code));
    }
    let marker = Exception::from_message(ctx.clone(), &format!("process.exit({code}) called"))?;
    let marker = marker.into_value();
    // SAFETY: both pointers come from live rquickjs handles on this thread,
    // and `JS_SetUncatchableError` only sets a flag on an Error object.
    unsafe { rquickjs::qjs::JS_SetUncatchableError(ctx.as_raw().as_ptr(), marker.as_raw()) };
    Err(ctx.throw(marker))
}
