//! Native UTF-8 encoding and decoding behind `TextEncoder`, `TextDecoder` and `fs`.

use rquickjs::{Ctx, Function, Object, TypedArray};

/// Adds `utf8Encode(string)` and `utf8Decode(bytes, fatal, ignoreBOM)` to
/// the native object.
pub fn register<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    native.set("utf8Encode", Function::new(ctx.clone(), utf8_encode)?)?;
    native.set("utf8Decode", Function::new(ctx.clone(), utf8_decode)?)?;
    Ok(())
}

fn utf8_encode<'js>(ctx: Ctx<'js>, text: String) -> rquickjs::Result<TypedArray<'js, u8>> {
    TypedArray::new(ctx, text.into_bytes())
}

fn utf8_decode<'js>(
    ctx: Ctx<'js>,
    bytes: TypedArray<'js, u8>,
    fatal: bool,
    ignore_bom: bool,
) -> rquickjs::Result<String> {
    let bytes = copy_bytes(&bytes);
    let mut slice = bytes.as_slice();
    if !ignore_bom {
        slice = slice.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(slice);
    }
    if fatal {
        return match std::str::from_utf8(slice) {
            Ok(text) => Ok(text.to_string()),
            Err(_) => Err(rquickjs::Exception::throw_type(
                &ctx,
                "The encoded data was not valid for encoding utf-8",
            )),
        };
    }
    Ok(String::from_utf8_lossy(slice).into_owned())
}

/// Copies the bytes a `Uint8Array` views. A detached array reads as empty.
pub fn copy_bytes(array: &TypedArray<'_, u8>) -> Vec<u8> {
    match array.as_raw() {
        // SAFETY: `as_raw` returns the array's current backing store, and no
        // JavaScript runs (so nothing can detach or resize it) while the
        // bytes are copied.
        Some(raw) => unsafe { raw.as_ref().to_vec() },
        None => Vec::new(),
    }
}
