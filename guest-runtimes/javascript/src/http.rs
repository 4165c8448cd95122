//! Native `httpFetch` behind the `fetch` global: sends one request through the host's `moat:sandbox/http` import.

use rquickjs::{Ctx, Function, Object, TypedArray};

use crate::moat::sandbox::http::{self, ErrorKind, HttpError, Request, Response};
use crate::text::copy_bytes;

/// Adds `httpFetch(method, url, headers, body, followRedirects)` to the
/// native object. `headers` is a flat list `[name, value, name, value, …]`
/// and `body` a `Uint8Array` or `null`.
///
/// The call blocks until the host returns. It returns `{ status,
/// statusText, headers, body, url }`, with `headers` flat as above and
/// `body` a `Uint8Array`. When the host reports an `http-error`, it returns
/// `{ kind, message }` instead, which `js/fetch.js` turns into a rejection.
pub fn register<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    native.set("httpFetch", Function::new(ctx.clone(), http_fetch)?)?;
    Ok(())
}

fn http_fetch<'js>(
    ctx: Ctx<'js>,
    method: String,
    url: String,
    headers: Vec<String>,
    body: Option<TypedArray<'js, u8>>,
    follow_redirects: bool,
) -> rquickjs::Result<Object<'js>> {
    let headers = headers
        .chunks(2)
        .filter_map(|pair| match pair {
            [name, value] => Some((name.clone(), value.clone())),
            _ => None,
        })
        .collect();
    let request = Request {
        method,
        url,
        headers,
        body: body.as_ref().map(copy_bytes),
        follow_redirects,
    };
    match http::fetch(&request) {
        Ok(response) => response_object(&ctx, response),
        Err(error) => error_object(&ctx, error),
    }
}

fn response_object<'js>(ctx: &Ctx<'js>, response: Response) -> rquickjs::Result<Object<'js>> {
    let mut headers = Vec::with_capacity(response.headers.len() * 2);
    for (name, value) in response.headers {
        headers.push(name);
        headers.push(value);
    }
    let object = Object::new(ctx.clone())?;
    object.set("status", response.status)?;
    object.set("statusText", response.reason)?;
    object.set("headers", headers)?;
    object.set("body", TypedArray::new(ctx.clone(), response.body)?)?;
    object.set("url", response.url)?;
    Ok(object)
}

fn error_object<'js>(ctx: &Ctx<'js>, error: HttpError) -> rquickjs::Result<Object<'js>> {
    let kind = match error.kind {
        ErrorKind::Denied => "denied",
        ErrorKind::InvalidRequest => "invalid-request",
        ErrorKind::BudgetExhausted => "budget-exhausted",
        ErrorKind::TooLarge => "too-large",
        ErrorKind::Timeout => "timeout",
        ErrorKind::ConnectionFailed => "connection-failed",
    };
    let object = Object::new(ctx.clone())?;
    object.set("kind", kind)?;
    object.set("message", error.message)?;
    Ok(object)
}
