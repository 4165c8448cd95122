//! Short text renderings of tool results, sent as the text content beside
//! `structuredContent` for clients that show only text.

use std::fmt::Write as _;

use crate::types::{
    Change, FileContent, FileList, FileWritten, RunOutcome, RunResult, SessionClosed, SessionInfo,
    SessionList,
};

/// Bytes of stdout or stderr shown in the text; the full output is in the
/// structured content.
const TEXT_OUTPUT_BYTES: usize = 16 * 1024;

/// Renders a run's result: a status line, then output, error and files.
pub fn run(result: &RunResult) -> String {
    let mut text = String::new();
    let _ = write!(
        text,
        "{} in {:.1} ms",
        result.outcome.name(),
        result.duration_ms
    );
    if let Some(code) = result.exit_code
        && code != 0
    {
        let _ = write!(text, ", exit code {code}");
    }
    if let Some(id) = &result.session_id {
        let _ = write!(text, ", session {id}");
    }
    text.push('\n');

    if let Some(message) = &result.limit_message {
        let _ = writeln!(text, "stopped: {message}");
    }
    if result.session_restarted {
        let _ = writeln!(
            text,
            "The session's interpreter was restarted: files in /workspace are kept, \
             variables and imports are lost."
        );
    }
    section(&mut text, "stdout", &result.stdout, result.stdout_truncated);
    section(&mut text, "stderr", &result.stderr, result.stderr_truncated);
    if let Some(error) = &result.error {
        let body = match error.stack.is_empty() {
            true => format!("{}: {}", error.name, error.message),
            false => error.stack.clone(),
        };
        section(&mut text, "error", &body, false);
    }
    if let Some(value) = &result.result {
        section(&mut text, "result", value, false);
    }
    if !result.files.is_empty() {
        let _ = writeln!(text, "files:");
        for file in &result.files {
            let change = match file.change {
                Change::Created => "created",
                Change::Modified => "modified",
                Change::Deleted => "deleted",
            };
            let _ = writeln!(
                text,
                "  {change} /workspace/{} ({} bytes)",
                file.path, file.size_bytes
            );
        }
    }
    if result.outcome == RunOutcome::Cancelled && result.session_id.is_none() {
        let _ = writeln!(text, "The run was cancelled before it finished.");
    }
    text
}

fn section(text: &mut String, name: &str, body: &str, truncated: bool) {
    if body.is_empty() {
        return;
    }
    let _ = writeln!(text, "{name}:");
    let shown = cut(body, TEXT_OUTPUT_BYTES);
    text.push_str(shown);
    if !shown.ends_with('\n') {
        text.push('\n');
    }
    if shown.len() < body.len() {
        let _ = writeln!(
            text,
            "[{} more bytes of {name} in structuredContent.{name}]",
            body.len() - shown.len()
        );
    }
    if truncated {
        let _ = writeln!(text, "[{name} passed its cap and was cut]");
    }
}

/// Returns the longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Renders one session.
pub fn session(info: &SessionInfo) -> String {
    format!(
        "session {} ({}): {} runs, idle {} s, closes in {} s if unused{}",
        info.session_id,
        info.language.name(),
        info.runs,
        info.idle_seconds,
        info.expires_in_seconds,
        if info.busy { ", running now" } else { "" }
    )
}

/// Renders the session list.
pub fn sessions(list: &SessionList) -> String {
    if list.sessions.is_empty() {
        return format!("no open sessions (at most {})", list.max_sessions);
    }
    let mut text = format!(
        "{} of at most {} sessions open:\n",
        list.sessions.len(),
        list.max_sessions
    );
    for info in &list.sessions {
        let _ = writeln!(text, "  {}", session(info));
    }
    text
}

/// Renders a closed session.
pub fn closed(result: &SessionClosed) -> String {
    match result.cancelled_run {
        true => format!(
            "closed session {}; its run in progress was cancelled",
            result.session_id
        ),
        false => format!("closed session {}", result.session_id),
    }
}

/// Renders a workspace listing.
pub fn files(list: &FileList) -> String {
    let root = match list.path.is_empty() {
        true => "/workspace".to_owned(),
        false => format!("/workspace/{}", list.path),
    };
    if list.entries.is_empty() {
        return format!("{root} is empty");
    }
    let mut text = format!("{root}:\n");
    for entry in &list.entries {
        let _ = match entry.kind {
            crate::types::EntryKind::File => {
                writeln!(text, "  {} ({} bytes)", entry.path, entry.size_bytes)
            }
            crate::types::EntryKind::Directory => writeln!(text, "  {}/", entry.path),
            crate::types::EntryKind::Symlink => writeln!(text, "  {} (symlink)", entry.path),
        };
    }
    if list.truncated {
        let _ = writeln!(text, "[listing cut at {} entries]", list.entries.len());
    }
    text
}

/// Renders a file that was read, when its content is not sent as text.
pub fn file_read(file: &FileContent) -> String {
    format!(
        "/workspace/{} ({} bytes, base64 in structuredContent.content; resource {})",
        file.path, file.size_bytes, file.uri
    )
}

/// Renders a written file.
pub fn file_written(file: &FileWritten) -> String {
    format!("wrote /workspace/{} ({} bytes)", file.path, file.size_bytes)
}
