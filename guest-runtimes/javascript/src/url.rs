//! Native WHATWG URL parsing, URL setters and `application/x-www-form-urlencoded` coding behind the `URL` and `URLSearchParams` globals.

use rquickjs::{Ctx, Function, Object, Value};
use url::{Url, quirks};

/// Adds `urlParse`, `urlSet`, `formParse` and `formSerialize` to the native
/// object.
///
/// `urlParse` and `urlSet` return the URL's components as an array in the
/// order `js/url.js` reads them (href, origin, protocol, username,
/// password, host, hostname, port, pathname, search, hash), or a string
/// with the reason the input is not a valid URL.
pub fn register<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    native.set("urlParse", Function::new(ctx.clone(), url_parse)?)?;
    native.set("urlSet", Function::new(ctx.clone(), url_set)?)?;
    native.set("formParse", Function::new(ctx.clone(), form_parse)?)?;
    native.set("formSerialize", Function::new(ctx.clone(), form_serialize)?)?;
    Ok(())
}

/// Parses `input`, resolved against `base` when one is given.
///
/// NOTE: url 2.5.9 departs from the URL standard in a few rare cases, which
/// its `tests/expected_failures.txt` lists. They are some `file:` hosts and
/// paths, spaces at the end of an opaque path, and `///x` against a special
/// base, which it rejects with "empty host".
fn url_parse<'js>(
    ctx: Ctx<'js>,
    input: String,
    base: Option<String>,
) -> rquickjs::Result<Value<'js>> {
    let parsed = match base {
        Some(base) => match Url::parse(&base) {
            Ok(base) => Url::options().base_url(Some(&base)).parse(&input),
            Err(error) => return reason(&ctx, &format!("invalid base URL: {error}")),
        },
        None => Url::parse(&input),
    };
    match parsed {
        Ok(url) => components(&ctx, &url),
        Err(error) => reason(&ctx, &error.to_string()),
    }
}

/// Applies the URL standard's setter `name` to the URL serialized as
/// `href`. Setters other than `href` ignore a value they cannot apply, as
/// the standard requires, so only `href` returns a reason.
fn url_set<'js>(
    ctx: Ctx<'js>,
    href: String,
    name: String,
    value: String,
) -> rquickjs::Result<Value<'js>> {
    let mut url = match Url::parse(&href) {
        Ok(url) => url,
        Err(error) => return reason(&ctx, &error.to_string()),
    };
    match name.as_str() {
        "href" => {
            if let Err(error) = quirks::set_href(&mut url, &value) {
                return reason(&ctx, &error.to_string());
            }
        }
        // The standard's other setters report failure by leaving the URL
        // unchanged, which is what ignoring `Err(())` does.
        "protocol" => {
            let _ = quirks::set_protocol(&mut url, &value);
        }
        "username" => {
            let _ = quirks::set_username(&mut url, &value);
        }
        "password" => {
            let _ = quirks::set_password(&mut url, &value);
        }
        "host" => {
            let _ = quirks::set_host(&mut url, &value);
        }
        "hostname" => {
            let _ = quirks::set_hostname(&mut url, &value);
        }
        "port" => {
            let _ = quirks::set_port(&mut url, &value);
        }
        "pathname" => quirks::set_pathname(&mut url, &value),
        "search" => quirks::set_search(&mut url, &value),
        "hash" => quirks::set_hash(&mut url, &value),
        other => {
            return Err(rquickjs::Exception::throw_type(
                &ctx,
                &format!("unknown URL component {other:?}"),
            ));
        }
    }
    components(&ctx, &url)
}

fn components<'js>(ctx: &Ctx<'js>, url: &Url) -> rquickjs::Result<Value<'js>> {
    let parts = [
        quirks::href(url).to_string(),
        quirks::origin(url),
        quirks::protocol(url).to_string(),
        quirks::username(url).to_string(),
        quirks::password(url).to_string(),
        quirks::host(url).to_string(),
        quirks::hostname(url).to_string(),
        quirks::port(url).to_string(),
        quirks::pathname(url).to_string(),
        quirks::search(url).to_string(),
        quirks::hash(url).to_string(),
    ];
    let array = rquickjs::Array::new(ctx.clone())?;
    for (index, part) in parts.into_iter().enumerate() {
        array.set(index, part)?;
    }
    Ok(array.into_value())
}

fn reason<'js>(ctx: &Ctx<'js>, text: &str) -> rquickjs::Result<Value<'js>> {
    Ok(rquickjs::String::from_str(ctx.clone(), text)?.into_value())
}

/// Parses a query string into a flat list `[name, value, name, value, …]`.
/// Invalid percent-encoded UTF-8 becomes U+FFFD, as the standard requires.
fn form_parse(query: String) -> Vec<String> {
    let mut flat = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        flat.push(name.into_owned());
        flat.push(value.into_owned());
    }
    flat
}

/// Serializes a flat list `[name, value, …]` as a query string, with `+`
/// for spaces.
fn form_serialize(flat: Vec<String>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for pair in flat.chunks(2) {
        if let [name, value] = pair {
            serializer.append_pair(name, value);
        }
    }
    serializer.finish()
}
