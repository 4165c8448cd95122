//! Deferred evaluation of the web-platform preludes (`URL`, `fetch`, `AbortController` and their kin) until code first uses one of their globals.

use std::cell::RefCell;
use std::rc::Rc;

use rquickjs::{Ctx, Function, Object, Persistent};

use crate::engine::eval_prelude;

/// Names of the globals that `js/lazy.js` defines as accessors which
/// evaluate the web preludes on first use.
const WEB_GLOBALS: [&str; 8] = [
    "URL",
    "URLSearchParams",
    "AbortController",
    "AbortSignal",
    "Headers",
    "Request",
    "Response",
    "fetch",
];

/// Defines the web globals as accessors that evaluate `js/url.js`,
/// `js/abort.js` and `js/fetch.js` when code first reads one of them.
/// Evaluated at start-up, those files raised the fuel that
/// `console.log('x')` needs from about 24 million to 51 million
/// instructions, measured with `moat run --fuel`.
pub fn install<'js>(
    ctx: &Ctx<'js>,
    native: &Object<'js>,
    util: &Object<'js>,
) -> rquickjs::Result<()> {
    let native = Persistent::save(ctx, native.clone());
    let util = Persistent::save(ctx, util.clone());
    let loaded: Rc<RefCell<Option<Persistent<Object<'static>>>>> = Rc::default();

    let load = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>| -> rquickjs::Result<Object<'js>> {
            if let Some(web) = loaded.borrow().as_ref() {
                return web.clone().restore(&ctx);
            }
            let native = native.clone().restore(&ctx)?;
            let util = util.clone().restore(&ctx)?;
            let web = evaluate_preludes(&ctx, &native, &util)?;
            *loaded.borrow_mut() = Some(Persistent::save(&ctx, web.clone()));
            Ok(web)
        },
    )?;

    let define_lazy: Function = eval_prelude(ctx, include_str!("js/lazy.js"))?;
    define_lazy.call::<_, ()>((load, WEB_GLOBALS.to_vec()))
}

/// Runs the three preludes in order. Each adds its classes to the returned
/// object, which the later ones read.
fn evaluate_preludes<'js>(
    ctx: &Ctx<'js>,
    native: &Object<'js>,
    util: &Object<'js>,
) -> rquickjs::Result<Object<'js>> {
    let web = Object::new(ctx.clone())?;
    let install_url: Function = eval_prelude(ctx, include_str!("js/url.js"))?;
    install_url.call::<_, ()>((native.clone(), util.clone(), web.clone()))?;
    let install_abort: Function = eval_prelude(ctx, include_str!("js/abort.js"))?;
    install_abort.call::<_, ()>((util.clone(), web.clone()))?;
    let install_fetch: Function = eval_prelude(ctx, include_str!("js/fetch.js"))?;
    install_fetch.call::<_, ()>((native.clone(), util.clone(), web.clone()))?;
    Ok(web)
}
