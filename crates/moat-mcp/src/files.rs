//! The workspace tools and resources: list, read and write files in a
//! session's `/workspace`, with sizes capped and paths confined to it.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

use crate::errors::{self, invalid_params};
use crate::render;
use crate::run::{decode, encode};
use crate::server::success;
use crate::sessions::{Session, SessionSlot};
use crate::state::ServerState;
use crate::types::{
    Encoding, EntryKind, FileContent, FileList, FileWritten, ListFilesArgs, ReadFileArgs,
    WriteFileArgs,
};
use crate::workspace;

/// URI template of a workspace file resource.
pub const FILE_URI_TEMPLATE: &str = "moat://sessions/{session_id}/files/{path}";

const URI_PREFIX: &str = "moat://sessions/";

/// Lists files in the session's workspace.
pub async fn list(
    state: &Arc<ServerState>,
    args: ListFilesArgs,
    context: &RequestContext<RoleServer>,
) -> Result<FileList, ErrorData> {
    let session = state
        .sessions
        .get(&args.session_id, &crate::audit::actor(state, context))?;
    let relative = workspace::relative_dir(args.path.as_deref())?;
    let _slot = lock(&session, context).await?;

    let dir = workspace::open(&session.files.workspace)?;
    let (mut entries, truncated) = workspace::list(&dir, &relative)?;
    for entry in &mut entries {
        if entry.kind == EntryKind::File {
            entry.uri = Some(file_uri(&session.id, &entry.path));
        }
    }
    session.touch();
    Ok(FileList {
        session_id: session.id.clone(),
        path: relative.to_string_lossy().into_owned(),
        entries,
        truncated,
    })
}

/// Reads one file: text as a text block, anything else as an embedded
/// base64 resource.
pub async fn read(
    state: &Arc<ServerState>,
    args: ReadFileArgs,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, ErrorData> {
    let session = state
        .sessions
        .get(&args.session_id, &crate::audit::actor(state, context))?;
    let relative = workspace::relative_path(&args.path)?;
    let shown = relative.to_string_lossy().into_owned();
    let bytes = {
        let _slot = lock(&session, context).await?;
        let dir = workspace::open(&session.files.workspace)?;
        workspace::read(&dir, &shown, state.config.max_file_bytes)?
    };
    session.touch();

    let size_bytes = bytes.len() as u64;
    let (content, encoding) = match args.encoding {
        None => encode(bytes),
        Some(Encoding::Base64) => (BASE64.encode(&bytes), Encoding::Base64),
        Some(Encoding::Text) => match String::from_utf8(bytes) {
            Ok(text) => (text, Encoding::Text),
            Err(error) => {
                return Err(invalid_params(format!(
                    "file {shown:?} is not valid UTF-8 (invalid byte at offset {}); \
                     read it with encoding base64",
                    error.utf8_error().valid_up_to()
                )));
            }
        },
    };
    let uri = file_uri(&session.id, &shown);
    let file = FileContent {
        session_id: session.id.clone(),
        path: shown,
        size_bytes,
        encoding,
        content,
        uri,
    };

    let mut result = match encoding {
        Encoding::Text => success(&file, file.content.clone()),
        Encoding::Base64 => success(&file, render::file_read(&file)),
    };
    if encoding == Encoding::Base64 {
        let blob = ResourceContents::blob(file.content.clone(), file.uri.clone())
            .with_mime_type(mime_type(&file.path, false));
        result.content.push(ContentBlock::resource(blob));
    }
    Ok(result)
}

/// Writes one file.
pub async fn write(
    state: &Arc<ServerState>,
    args: WriteFileArgs,
    context: &RequestContext<RoleServer>,
) -> Result<FileWritten, ErrorData> {
    let session = state
        .sessions
        .get(&args.session_id, &crate::audit::actor(state, context))?;
    let bytes = decode(&args.path, args.content, args.encoding)?;
    if bytes.len() as u64 > state.config.max_file_bytes {
        return Err(invalid_params(format!(
            "file {:?} is {} bytes, more than the server's limit of {} bytes (max_file_bytes)",
            args.path,
            bytes.len(),
            state.config.max_file_bytes
        )));
    }
    let relative = {
        let _slot = lock(&session, context).await?;
        let dir = workspace::open(&session.files.workspace)?;
        workspace::write(&dir, &args.path, &bytes)?
    };
    session.touch();

    let path = relative.to_string_lossy().into_owned();
    Ok(FileWritten {
        session_id: session.id.clone(),
        uri: file_uri(&session.id, &path),
        path,
        size_bytes: bytes.len() as u64,
    })
}

/// Reads the file resource at `uri`.
pub async fn read_resource(
    state: &Arc<ServerState>,
    uri: &str,
    context: &RequestContext<RoleServer>,
) -> Result<ResourceContents, ErrorData> {
    let (session_id, path) = parse_file_uri(uri).ok_or_else(|| {
        ErrorData::resource_not_found(
            format!("unknown resource {uri:?}: expected moat://sandbox or {FILE_URI_TEMPLATE}"),
            None,
        )
    })?;
    let session = state
        .sessions
        .get(&session_id, &crate::audit::actor(state, context))?;
    let bytes = {
        let _slot = lock(&session, context).await?;
        let dir = workspace::open(&session.files.workspace)?;
        workspace::read(&dir, &path, state.config.max_file_bytes)?
    };
    session.touch();

    let contents = match String::from_utf8(bytes) {
        Ok(text) if crate::run::is_text(&text) => {
            ResourceContents::text(text, uri).with_mime_type(mime_type(&path, true))
        }
        Ok(text) => ResourceContents::blob(BASE64.encode(text.as_bytes()), uri)
            .with_mime_type(mime_type(&path, false)),
        Err(error) => ResourceContents::blob(BASE64.encode(error.as_bytes()), uri)
            .with_mime_type(mime_type(&path, false)),
    };
    Ok(contents)
}

/// Waits for the session's run in progress, if any, to end.
async fn lock<'a>(
    session: &'a Session,
    context: &RequestContext<RoleServer>,
) -> Result<tokio::sync::MutexGuard<'a, SessionSlot>, ErrorData> {
    tokio::select! {
        slot = session.slot.lock() => Ok(slot),
        _ = context.ct.cancelled() => Err(errors::internal("the request was cancelled while waiting for the session")),
    }
}

/// Builds the resource URI of `path` in session `session_id`.
pub fn file_uri(session_id: &str, path: &str) -> String {
    let mut uri = format!("{URI_PREFIX}{session_id}/files/");
    for byte in path.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte);
        if keep {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// Parses a file URI into the session id and the decoded path.
fn parse_file_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix(URI_PREFIX)?;
    let (session_id, encoded) = rest.split_once("/files/")?;
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut input = encoded.bytes();
    while let Some(byte) = input.next() {
        if byte != b'%' {
            bytes.push(byte);
            continue;
        }
        let high = char::from(input.next()?).to_digit(16)?;
        let low = char::from(input.next()?).to_digit(16)?;
        bytes.push((high * 16 + low) as u8);
    }
    Some((session_id.to_owned(), String::from_utf8(bytes).ok()?))
}

/// Picks a MIME type from the file's extension; `text` is true when the
/// content is valid UTF-8.
fn mime_type(path: &str, text: bool) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let known = match extension.as_deref() {
        Some("json") => Some("application/json"),
        Some("csv") => Some("text/csv"),
        Some("html" | "htm") => Some("text/html"),
        Some("md") => Some("text/markdown"),
        Some("py") => Some("text/x-python"),
        Some("js" | "mjs") => Some("text/javascript"),
        Some("xml") => Some("application/xml"),
        Some("png") => Some("image/png"),
        Some("jpg" | "jpeg") => Some("image/jpeg"),
        Some("gif") => Some("image/gif"),
        Some("svg") => Some("image/svg+xml"),
        Some("pdf") => Some("application/pdf"),
        Some("zip") => Some("application/zip"),
        Some("gz") => Some("application/gzip"),
        Some("sqlite" | "db") => Some("application/vnd.sqlite3"),
        _ => None,
    };
    match (known, text) {
        (Some(mime), _) => mime,
        (None, true) => "text/plain",
        (None, false) => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uri_round_trip() {
        let uri = file_uri("s-1", "out dir/naïve.csv");
        assert_eq!(uri, "moat://sessions/s-1/files/out%20dir/na%C3%AFve.csv");
        assert_eq!(
            parse_file_uri(&uri),
            Some(("s-1".to_owned(), "out dir/naïve.csv".to_owned()))
        );
    }

    #[test]
    fn malformed_file_uris_are_rejected() {
        assert_eq!(parse_file_uri("moat://sessions/s-1/other/x"), None);
        assert_eq!(parse_file_uri("moat://sessions/s-1/files/%zz"), None);
        assert_eq!(parse_file_uri("file:///etc/passwd"), None);
    }
}
