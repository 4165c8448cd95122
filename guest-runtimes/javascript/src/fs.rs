//! Native file functions behind the `fs` global, reaching only the directories the host preopens through WASI.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rquickjs::{Ctx, Exception, Function, Object, TypedArray};

use crate::text::copy_bytes;

/// Directory that relative paths resolve against. The host always preopens
/// it, and `process.cwd()` returns it.
const WORKING_DIRECTORY: &str = "/workspace";

/// Adds the `fs*` functions to the native object.
pub fn register<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    native.set("fsRead", Function::new(ctx.clone(), read)?)?;
    native.set("fsReadText", Function::new(ctx.clone(), read_text)?)?;
    native.set("fsWrite", Function::new(ctx.clone(), write)?)?;
    native.set("fsExists", Function::new(ctx.clone(), exists)?)?;
    native.set("fsReadDir", Function::new(ctx.clone(), read_dir)?)?;
    native.set("fsMkdir", Function::new(ctx.clone(), mkdir)?)?;
    native.set("fsStat", Function::new(ctx.clone(), stat)?)?;
    native.set("fsUnlink", Function::new(ctx.clone(), unlink)?)?;
    native.set("fsRm", Function::new(ctx.clone(), rm)?)?;
    native.set("fsRename", Function::new(ctx.clone(), rename)?)?;
    Ok(())
}

/// Resolves `path` against `/workspace` unless it is absolute. WASI libc
/// maps the result onto the preopen with the longest matching prefix, and
/// the host rejects `..` that would leave it.
fn resolve(path: &str) -> PathBuf {
    if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        Path::new(WORKING_DIRECTORY).join(path)
    }
}

fn read<'js>(ctx: Ctx<'js>, path: String) -> rquickjs::Result<TypedArray<'js, u8>> {
    let bytes = fs::read(resolve(&path)).map_err(|error| throw(&ctx, &error, "open", &path))?;
    TypedArray::new(ctx, bytes)
}

fn read_text(ctx: Ctx<'_>, path: String) -> rquickjs::Result<String> {
    let bytes = fs::read(resolve(&path)).map_err(|error| throw(&ctx, &error, "open", &path))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn write<'js>(
    ctx: Ctx<'js>,
    path: String,
    data: TypedArray<'js, u8>,
    append: bool,
) -> rquickjs::Result<()> {
    let bytes = copy_bytes(&data);
    let mut options = fs::OpenOptions::new();
    if append {
        options.append(true).create(true);
    } else {
        options.write(true).create(true).truncate(true);
    }
    options
        .open(resolve(&path))
        .and_then(|mut file| file.write_all(&bytes))
        .map_err(|error| throw(&ctx, &error, "open", &path))
}

fn exists(path: String) -> bool {
    fs::metadata(resolve(&path)).is_ok()
}

fn read_dir(ctx: Ctx<'_>, path: String) -> rquickjs::Result<Vec<String>> {
    let entries =
        fs::read_dir(resolve(&path)).map_err(|error| throw(&ctx, &error, "scandir", &path))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| throw(&ctx, &error, "scandir", &path))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    // WASI returns entries in directory order; sorting makes output stable.
    names.sort();
    Ok(names)
}

fn mkdir(ctx: Ctx<'_>, path: String, recursive: bool) -> rquickjs::Result<()> {
    let target = resolve(&path);
    let result = if recursive {
        fs::create_dir_all(&target)
    } else {
        fs::create_dir(&target)
    };
    result.map_err(|error| throw(&ctx, &error, "mkdir", &path))
}

/// Returns `{ kind, size, mode, atimeMs, mtimeMs, birthtimeMs }`, which
/// `js/globals.js` wraps in a `Stats` object.
fn stat<'js>(ctx: Ctx<'js>, path: String, follow_links: bool) -> rquickjs::Result<Object<'js>> {
    let target = resolve(&path);
    let metadata = if follow_links {
        fs::metadata(&target)
    } else {
        fs::symlink_metadata(&target)
    };
    let syscall = if follow_links { "stat" } else { "lstat" };
    let metadata = metadata.map_err(|error| throw(&ctx, &error, syscall, &path))?;

    let file_type = metadata.file_type();
    let (kind, mode) = if file_type.is_dir() {
        ("directory", 0o040_755)
    } else if file_type.is_symlink() {
        ("symlink", 0o120_777)
    } else {
        ("file", 0o100_644)
    };
    let stats = Object::new(ctx.clone())?;
    stats.set("kind", kind)?;
    stats.set("size", metadata.len() as f64)?;
    // NOTE: WASI 0.2 reports no permission bits, so `mode` is the usual
    // default for the entry's type, not the file's real mode.
    stats.set("mode", mode)?;
    stats.set("atimeMs", millis(metadata.accessed()))?;
    stats.set("mtimeMs", millis(metadata.modified()))?;
    stats.set("birthtimeMs", millis(metadata.created()))?;
    Ok(stats)
}

fn millis(time: io::Result<SystemTime>) -> f64 {
    match time
        .ok()
        .and_then(|time| time.duration_since(SystemTime::UNIX_EPOCH).ok())
    {
        Some(elapsed) => elapsed.as_secs_f64() * 1000.0,
        None => 0.0,
    }
}

fn unlink(ctx: Ctx<'_>, path: String) -> rquickjs::Result<()> {
    fs::remove_file(resolve(&path)).map_err(|error| throw(&ctx, &error, "unlink", &path))
}

/// Removes a file or directory for `rmSync` (`directory_only` false) and
/// `rmdirSync` (`directory_only` true).
fn rm(
    ctx: Ctx<'_>,
    path: String,
    recursive: bool,
    force: bool,
    directory_only: bool,
) -> rquickjs::Result<()> {
    let target = resolve(&path);
    let syscall = if directory_only { "rmdir" } else { "rm" };
    let metadata = match fs::symlink_metadata(&target) {
        Ok(metadata) => metadata,
        Err(error) if force && error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(throw(&ctx, &error, syscall, &path)),
    };

    let result = if metadata.is_dir() {
        if recursive {
            fs::remove_dir_all(&target)
        } else if directory_only {
            fs::remove_dir(&target)
        } else {
            Err(io::Error::from(io::ErrorKind::IsADirectory))
        }
    } else if directory_only {
        Err(io::Error::from(io::ErrorKind::NotADirectory))
    } else {
        fs::remove_file(&target)
    };
    result.map_err(|error| throw(&ctx, &error, syscall, &path))
}

fn rename(ctx: Ctx<'_>, from: String, to: String) -> rquickjs::Result<()> {
    fs::rename(resolve(&from), resolve(&to)).map_err(|error| {
        let description = format!("{from}' -> '{to}");
        throw(&ctx, &error, "rename", &description)
    })
}

/// Node's name, errno (Linux numbering, as Node reports it) and description
/// for an I/O error.
fn node_code(error: &io::Error) -> (&'static str, i32, &'static str) {
    // WASI libc errno values, which Rust std reports as raw OS errors here.
    const WASI_EACCES: i32 = 2;
    const WASI_EPERM: i32 = 63;
    const WASI_ENOTCAPABLE: i32 = 76;
    match error.raw_os_error() {
        Some(WASI_EPERM) => return ("EPERM", -1, "operation not permitted"),
        Some(WASI_EACCES) | Some(WASI_ENOTCAPABLE) => return ("EACCES", -13, "permission denied"),
        _ => {}
    }
    use io::ErrorKind::*;
    match error.kind() {
        NotFound => ("ENOENT", -2, "no such file or directory"),
        PermissionDenied => ("EACCES", -13, "permission denied"),
        AlreadyExists => ("EEXIST", -17, "file already exists"),
        IsADirectory => ("EISDIR", -21, "illegal operation on a directory"),
        NotADirectory => ("ENOTDIR", -20, "not a directory"),
        DirectoryNotEmpty => ("ENOTEMPTY", -39, "directory not empty"),
        ReadOnlyFilesystem => ("EROFS", -30, "read-only file system"),
        InvalidInput | InvalidFilename => ("EINVAL", -22, "invalid argument"),
        StorageFull => ("ENOSPC", -28, "no space left on device"),
        CrossesDevices => ("EXDEV", -18, "cross-device link not permitted"),
        _ => ("EIO", -5, "i/o error"),
    }
}

/// Throws a Node-style file error, for example `ENOENT: no such file or
/// directory, open 'notes.txt'` with `code`, `errno`, `syscall` and `path`.
fn throw(ctx: &Ctx<'_>, error: &io::Error, syscall: &str, path: &str) -> rquickjs::Error {
    let (code, errno, description) = node_code(error);
    let message = format!("{code}: {description}, {syscall} '{path}'");
    let built = Exception::from_message(ctx.clone(), &message).and_then(|exception| {
        exception.set("code", code)?;
        exception.set("errno", errno)?;
        exception.set("syscall", syscall)?;
        exception.set("path", path)?;
        Ok(exception)
    });
    match built {
        Ok(exception) => ctx.throw(exception.into_value()),
        Err(error) => error,
    }
}
