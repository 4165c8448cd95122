//! Native output functions behind `console` and `process.stdout`, writing to the WASI stdout and stderr streams.

use std::io::Write;

use rquickjs::{Ctx, Function, Object};

const STDOUT: i32 = 1;
const STDERR: i32 = 2;

/// Adds `write(fd, text)` to the native object. The text already contains its
/// trailing newline, so each console call is one write.
pub fn register<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    native.set("write", Function::new(ctx.clone(), write)?)?;
    Ok(())
}

fn write(ctx: Ctx<'_>, fd: i32, text: String) -> rquickjs::Result<()> {
    let result = match fd {
        STDOUT => std::io::stdout().write_all(text.as_bytes()),
        STDERR => std::io::stderr().write_all(text.as_bytes()),
        other => {
            return Err(rquickjs::Exception::throw_range(
                &ctx,
                &format!("invalid output stream {other}"),
            ));
        }
    };
    // A failed write is not the code's error, because the host closes or
    // caps the streams. Node also drops writes to a closed pipe.
    let _ = result;
    Ok(())
}

/// Flushes both streams so output reaches the host before `run` returns.
pub fn flush() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}
