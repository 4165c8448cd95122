//! Text and JSON renderings of audit records for `moat audit`.
//!
//! Records hold model-written code, guest output and names that clients
//! chose, so every text from a record passes through [`printable`] before
//! it reaches a terminal.

use std::fmt::Write;

use moat_audit::{
    Actor, Capture, Captured, EgressAttempt, Event, Execution, FileRef, Found, Listed, StoredEntry,
    Verification,
};
use serde_json::{Value, json};

/// Widest table cell, in characters, before it is cut with "…".
const MAX_CELL_CHARS: usize = 24;

/// Characters of an execution id shown in a table; enough to pass to
/// `moat audit show`.
const ID_CHARS: usize = 12;

/// Record numbers named in one warning before "and N more".
const MAX_NUMBERS_SHOWN: usize = 10;

/// Replaces control characters (terminal escape sequences among them) and
/// bidirectional formatting characters with `\u{..}` escapes. Newlines and
/// tabs are kept when `multiline`.
pub fn printable(text: &str, multiline: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let keep = match c {
            '\n' | '\t' => multiline,
            '\u{200e}' | '\u{200f}' | '\u{061c}' => false,
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => false,
            c => !c.is_control(),
        };
        match keep {
            true => out.push(c),
            false => out.extend(c.escape_unicode()),
        }
    }
    out
}

/// Returns one line of `text`, cut to `max` characters.
fn cell(text: &str, max: usize) -> String {
    let line = printable(text, false);
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Shortens a stored time to seconds: "2026-03-01 09:30:00".
fn short_time(time: &str) -> String {
    match time.get(..19) {
        Some(prefix) => prefix.replacen('T', " ", 1),
        None => time.to_owned(),
    }
}

fn format_duration(ms: f64) -> String {
    match ms >= 1000.0 {
        true => format!("{:.2} s", ms / 1000.0),
        false => format!("{ms:.1} ms"),
    }
}

fn format_bytes(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// Summarizes egress attempts: "3 (1 denied, 1 failed)".
fn egress_summary(egress: &[EgressAttempt]) -> String {
    if egress.is_empty() {
        return String::new();
    }
    let denied = egress.iter().filter(|a| a.decision == "denied").count();
    let failed = egress.iter().filter(|a| a.decision == "failed").count();
    let mut parts = Vec::new();
    if denied > 0 {
        parts.push(format!("{denied} denied"));
    }
    if failed > 0 {
        parts.push(format!("{failed} failed"));
    }
    match parts.is_empty() {
        true => egress.len().to_string(),
        false => format!("{} ({})", egress.len(), parts.join(", ")),
    }
}

/// Renders a listing as an aligned table, or a line saying none matched.
pub fn listing_table(entries: &[Listed]) -> String {
    if entries.is_empty() {
        return "no records match\n".to_owned();
    }
    let header = [
        "SEQ",
        "TIME (UTC)",
        "ID",
        "LANGUAGE",
        "STATUS",
        "DURATION",
        "PRINCIPAL",
        "CLIENT",
        "MODEL",
        "EGRESS",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for listed in entries {
        rows.push(listing_row(listed));
    }

    let mut widths = vec![0; header.len()];
    for row in &rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    let mut table = String::new();
    for row in &rows {
        let mut line = String::new();
        for (index, (value, width)) in row.iter().zip(&widths).enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            // Numbers align right: the record number and the duration.
            let _ = match index {
                0 | 5 => write!(line, "{value:>width$}"),
                _ => write!(line, "{value:<width$}"),
            };
        }
        table.push_str(line.trim_end());
        table.push('\n');
    }
    table
}

fn listing_row(listed: &Listed) -> Vec<String> {
    let entry = &listed.entry;
    let Some(body) = entry.record() else {
        let mut row = vec![String::new(); 10];
        row[0] = entry.seq.to_string();
        row[1] = "-".to_owned();
        row[2] = "-".to_owned();
        row[4] = listed.status().to_owned();
        return row;
    };
    let event = &body.event;
    let actor = event.actor();
    let (id, language, duration, egress) = match event {
        Event::Execution(execution) => (
            execution.execution_id.as_str(),
            execution.language.as_str(),
            format_duration(execution.duration_ms),
            egress_summary(&execution.egress),
        ),
        Event::ExecutionStarted(start) => (
            start.execution_id.as_str(),
            start.language.as_str(),
            String::new(),
            String::new(),
        ),
        Event::SessionCreated(session)
        | Event::SessionClosed(session)
        | Event::SessionExpired(session) => (
            session.session_id.as_str(),
            session.language.as_str(),
            String::new(),
            String::new(),
        ),
    };
    let client = actor.client.as_ref().map(|client| client.name.as_str());
    vec![
        entry.seq.to_string(),
        cell(&short_time(&body.time), MAX_CELL_CHARS),
        cell(id, ID_CHARS),
        cell(language, MAX_CELL_CHARS),
        cell(listed.status(), MAX_CELL_CHARS),
        duration,
        cell(actor.principal.as_deref().unwrap_or("-"), MAX_CELL_CHARS),
        cell(client.unwrap_or("-"), MAX_CELL_CHARS),
        cell(actor.model.as_deref().unwrap_or("-"), MAX_CELL_CHARS),
        egress,
    ]
}

/// Adds a record's body to `object`: the record under "record", or for a
/// damaged record `"record": null`, why under "damaged", and the stored
/// body under "body" (or "body_hex" when it is not UTF-8).
fn add_body(object: &mut serde_json::Map<String, Value>, entry: &StoredEntry) {
    let Some(damage) = entry.damage() else {
        // A valid record's body is JSON, so it parses again.
        let record = entry
            .body_text()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(Value::Null);
        object.insert("record".into(), record);
        return;
    };
    object.insert("record".into(), Value::Null);
    object.insert("damaged".into(), Value::from(damage));
    match entry.body_text() {
        Some(text) => object.insert("body".into(), Value::from(text)),
        None => object.insert("body_hex".into(), Value::from(hex(&entry.body_bytes))),
    };
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Renders a listing as a JSON array: each record's number, hash, status
/// and stored body.
pub fn listing_json(entries: &[Listed]) -> Value {
    let mut values = Vec::with_capacity(entries.len());
    for listed in entries {
        let mut object = serde_json::Map::new();
        object.insert("seq".into(), Value::from(listed.entry.seq));
        object.insert("hash".into(), Value::from(listed.entry.hash.as_str()));
        object.insert("status".into(), Value::from(listed.status()));
        object.insert("unfinished".into(), Value::from(listed.unfinished));
        add_body(&mut object, &listed.entry);
        values.push(Value::Object(object));
    }
    Value::Array(values)
}

/// Renders found records as JSON, with whether each body matches its hash.
pub fn found_json(found: &Found) -> Value {
    let mut records = Vec::with_capacity(found.entries.len());
    for entry in &found.entries {
        let mut object = serde_json::Map::new();
        object.insert("seq".into(), Value::from(entry.seq));
        object.insert("hash".into(), Value::from(entry.hash.as_str()));
        object.insert("hash_matches".into(), Value::from(entry.hash_matches()));
        add_body(&mut object, entry);
        records.push(Value::Object(object));
    }
    json!({
        "execution_id": found.execution_id,
        "records": records,
    })
}

/// Appends one "label  value" line, with the value made printable.
fn field(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "  {label:<12}{}", printable(value, false));
}

/// Renders found records in full, one block each.
pub fn found_text(found: &Found) -> String {
    let mut out = String::new();
    if found.entries.is_empty() {
        out.push_str("no records\n");
    }
    for (index, entry) in found.entries.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        entry_text(&mut out, entry);
    }
    out
}

fn entry_text(out: &mut String, entry: &StoredEntry) {
    let hash_note = match entry.hash_matches() {
        true => "matches the body",
        false => "DOES NOT match the body; run moat audit verify",
    };
    let Some(body) = entry.record() else {
        let _ = writeln!(out, "record {} · {}", entry.seq, moat_audit::DAMAGED);
        field(out, "hash", &format!("{} ({hash_note})", entry.hash));
        field(
            out,
            "problem",
            &format!(
                "the body is not a valid record: {}",
                entry.damage().unwrap_or("")
            ),
        );
        let body = match entry.body_text() {
            Some(text) => text.to_owned(),
            None => format!("(not UTF-8; in hex) {}", hex(&entry.body_bytes)),
        };
        out.push_str("\n  stored body:\n");
        for line in printable(&body, true).lines() {
            let _ = writeln!(out, "    {line}");
        }
        return;
    };
    let event = &body.event;
    let _ = writeln!(
        out,
        "record {} · {} · {}",
        entry.seq,
        event.kind(),
        printable(&body.time, false)
    );
    field(out, "hash", &format!("{} ({hash_note})", entry.hash));
    field(out, "prev_hash", &body.prev_hash);
    actor_fields(out, event.actor());

    match event {
        Event::Execution(execution) => execution_text(out, execution),
        Event::ExecutionStarted(start) => {
            field(out, "execution", &start.execution_id);
            field(out, "session", start.session_id.as_deref().unwrap_or("-"));
            field(out, "language", &start.language);
            field(
                out,
                "policy",
                &policy(start.policy.name.as_deref(), &start.policy.sha256),
            );
            field(out, "guest", &format!("BLAKE3 {}", start.guest_hash));
            field(out, "code", &format!("SHA-256 {}", start.code_sha256));
        }
        Event::SessionCreated(session)
        | Event::SessionClosed(session)
        | Event::SessionExpired(session) => {
            field(out, "session", &session.session_id);
            field(out, "language", &session.language);
            if let Some(reason) = &session.reason {
                field(out, "reason", reason);
            }
        }
    }
}

fn policy(name: Option<&str>, sha256: &str) -> String {
    match name {
        Some(name) => format!("{name} (SHA-256 {sha256})"),
        None => format!("SHA-256 {sha256}"),
    }
}

fn actor_fields(out: &mut String, actor: &Actor) {
    field(out, "principal", actor.principal.as_deref().unwrap_or("-"));
    field(out, "tenant", actor.tenant.as_deref().unwrap_or("-"));
    field(
        out,
        "transport",
        actor.transport.map(|t| t.name()).unwrap_or("-"),
    );
    let client = actor
        .client
        .as_ref()
        .map(|client| format!("{} {}", client.name, client.version));
    field(out, "client", client.as_deref().unwrap_or("-"));
    field(out, "model", actor.model.as_deref().unwrap_or("-"));
}

fn execution_text(out: &mut String, execution: &Execution) {
    field(out, "execution", &execution.execution_id);
    field(
        out,
        "session",
        execution.session_id.as_deref().unwrap_or("-"),
    );
    field(out, "language", &execution.language);
    field(
        out,
        "policy",
        &policy(execution.policy.name.as_deref(), &execution.policy.sha256),
    );
    field(out, "guest", &format!("BLAKE3 {}", execution.guest_hash));
    field(out, "started at", &execution.started_at);

    let outcome = match execution.exit_code {
        Some(code) => format!("{} (exit code {code})", execution.outcome),
        None => execution.outcome.clone(),
    };
    field(out, "outcome", &outcome);
    if let Some(message) = &execution.limit_message {
        field(out, "limit", message);
    }
    field(
        out,
        "resources",
        &format!(
            "{}, fuel {}, peak memory {}",
            format_duration(execution.duration_ms),
            execution.fuel_used,
            format_bytes(execution.peak_memory_bytes)
        ),
    );
    let limits = &execution.limits;
    field(
        out,
        "limits",
        &format!(
            "timeout {} ms, fuel {}, memory {}, stdout {}, stderr {}",
            limits.timeout_ms,
            limits.fuel,
            format_bytes(limits.memory_bytes),
            format_bytes(limits.stdout_bytes),
            format_bytes(limits.stderr_bytes)
        ),
    );
    let capture = match execution.capture {
        Capture::Full => "full",
        Capture::Truncated => "truncated",
        Capture::Hashes => "hashes",
    };
    field(out, "capture", capture);

    captured_text(out, "code", Some(&execution.code));
    if execution.stdin.is_some() {
        captured_text(out, "stdin", execution.stdin.as_ref());
    }
    captured_text(out, "stdout", Some(&execution.stdout));
    captured_text(out, "stderr", Some(&execution.stderr));
    if execution.result.is_some() {
        captured_text(out, "result", execution.result.as_ref());
    }
    if let Some(error) = &execution.error {
        captured_text(
            out,
            &format!("error {}", printable(&error.name, false)),
            Some(&error.message),
        );
        captured_text(out, "stack", Some(&error.stack));
    }

    if !execution.egress.is_empty() {
        out.push_str("\n  egress:\n");
        for attempt in &execution.egress {
            egress_line(out, attempt);
        }
    }
    files_text(out, "files given", &execution.files_in);
    files_text(out, "files changed", &execution.files_out);
}

fn egress_line(out: &mut String, attempt: &EgressAttempt) {
    let mut line = format!(
        "hop {} {} {} {}",
        attempt.hop, attempt.method, attempt.url, attempt.decision
    );
    if let Some(rule) = &attempt.rule {
        let _ = write!(line, " by {rule}");
    }
    if let Some(reason) = &attempt.reason {
        let _ = write!(line, ": {reason}");
    }
    if let Some(status) = attempt.status {
        let _ = write!(line, ", status {status}");
    }
    let _ = write!(
        line,
        ", {} sent, {} received, {} ms",
        format_bytes(attempt.bytes_sent),
        format_bytes(attempt.bytes_received),
        attempt.duration_ms
    );
    if !attempt.secrets_injected.is_empty() {
        let _ = write!(line, ", secrets {}", attempt.secrets_injected.join(", "));
    }
    let _ = writeln!(out, "    {}", printable(&line, false));
}

fn files_text(out: &mut String, label: &str, files: &[FileRef]) {
    if files.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n  {label}:");
    for file in files {
        let hash = file.sha256.as_deref().unwrap_or("-");
        let line = format!(
            "{} {} {} SHA-256 {hash}",
            file.change,
            file.path,
            format_bytes(file.size)
        );
        let _ = writeln!(out, "    {}", printable(&line, false));
    }
}

/// Appends a captured text, indented, with its size and hash.
fn captured_text(out: &mut String, label: &str, text: Option<&Captured>) {
    let Some(text) = text else {
        return;
    };
    let _ = write!(
        out,
        "\n  {label} ({}, SHA-256 {})",
        format_bytes(text.bytes),
        text.sha256
    );
    let Some(content) = &text.text else {
        out.push_str(": not kept at capture level hashes\n");
        return;
    };
    let mut notes = Vec::new();
    if text.truncated {
        notes.push("cut at the capture limit");
    }
    if text.redacted {
        notes.push("secrets redacted");
    }
    if !notes.is_empty() {
        let _ = write!(out, " [{}]", notes.join(", "));
    }
    if content.is_empty() {
        out.push_str(": empty\n");
        return;
    }
    out.push_str(":\n");
    for line in printable(content, true).lines() {
        let _ = writeln!(out, "    {line}");
    }
}

/// Renders the result of `verify`.
pub fn verification_text(verification: &Verification) -> String {
    let mut out = String::new();
    match &verification.first_failure {
        None => match &verification.head {
            Some(head) => {
                let _ = writeln!(
                    out,
                    "audit chain valid: {} records, from record 1 to the newest",
                    verification.records
                );
                let _ = writeln!(out, "head: {head}");
            }
            None => out.push_str("audit chain valid: the store has no records\n"),
        },
        Some(failure) => {
            let _ = writeln!(out, "audit chain broken: {}", failure.message);
            let _ = match verification.verified {
                0 => writeln!(
                    out,
                    "no record verifies; the store holds {} records",
                    verification.records
                ),
                verified => writeln!(
                    out,
                    "records 1 to {verified} verify; the store holds {} records",
                    verification.records
                ),
            };
        }
    }
    if let Some(expected) = &verification.expected_head
        && verification.first_failure.is_none()
    {
        let _ = writeln!(out, "the chain contains the expected head {expected}");
    }
    for failure in &verification.store_failures {
        let _ = writeln!(out, "audit store broken: {}", failure.message);
    }
    printable(&out, true)
}

/// Renders the chain's state in one line, for `export` and `report`.
pub fn chain_line(verification: &Verification) -> String {
    let line = match (&verification.first_failure, &verification.head) {
        (Some(failure), _) => format!("chain: broken: {}", failure.message),
        (None, Some(head)) => format!(
            "chain: valid, {} records, head {head}",
            verification.records
        ),
        (None, None) => "chain: valid, the store has no records".to_owned(),
    };
    let mut text = format!("{}\n", printable(&line, false));
    for failure in &verification.store_failures {
        let line = format!("store: broken: {}", failure.message);
        text.push_str(&printable(&line, false));
        text.push('\n');
    }
    text
}

/// Names records by number, "record 6" or "records 6, 7 and 9", cut after
/// [`MAX_NUMBERS_SHOWN`] numbers.
pub fn numbers_phrase(numbers: &[u64]) -> String {
    let mut texts: Vec<String> = numbers
        .iter()
        .take(MAX_NUMBERS_SHOWN)
        .map(u64::to_string)
        .collect();
    if numbers.len() > MAX_NUMBERS_SHOWN {
        texts.push(format!("{} more", numbers.len() - MAX_NUMBERS_SHOWN));
    }
    match texts.as_slice() {
        [] => "no records".to_owned(),
        [one] => format!("record {one}"),
        [rest @ .., last] => format!("records {} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_terminal_controls() {
        assert_eq!(
            printable("a\u{1b}[2Jb\rc\n", false),
            "a\\u{1b}[2Jb\\u{d}c\\u{a}"
        );
        assert_eq!(printable("line\n\tnext", true), "line\n\tnext");
        assert_eq!(printable("abc\u{202e}cba", true), "abc\\u{202e}cba");
    }

    #[test]
    fn numbers_phrase_agrees_in_number() {
        assert_eq!(numbers_phrase(&[6]), "record 6");
        assert_eq!(numbers_phrase(&[6, 7]), "records 6 and 7");
        assert_eq!(numbers_phrase(&[6, 7, 9]), "records 6, 7 and 9");
        let many: Vec<u64> = (1..=12).collect();
        assert_eq!(
            numbers_phrase(&many),
            "records 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more"
        );
    }

    #[test]
    fn cell_cuts_long_values() {
        assert_eq!(cell("abcdef", 4), "abc…");
        assert_eq!(cell("abcd", 4), "abcd");
    }

    #[test]
    fn egress_summary_counts_decisions() {
        let attempt = |decision: &str| EgressAttempt {
            time: String::new(),
            method: "GET".into(),
            url: String::new(),
            host: String::new(),
            hop: 0,
            decision: decision.into(),
            rule: None,
            reason: None,
            address: None,
            status: None,
            bytes_sent: 0,
            bytes_received: 0,
            secrets_injected: Vec::new(),
            duration_ms: 0,
        };
        let attempts = [attempt("allowed"), attempt("denied"), attempt("failed")];
        assert_eq!(egress_summary(&attempts), "3 (1 denied, 1 failed)");
        assert_eq!(egress_summary(&attempts[..1]), "1");
        assert_eq!(egress_summary(&[]), "");
    }
}
