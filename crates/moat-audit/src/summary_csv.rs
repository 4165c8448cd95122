//! `summary.csv` of an evidence bundle: one row per execution, and one per
//! damaged record.

use crate::filter::{DAMAGED, UNFINISHED};
use crate::query::Listed;
use crate::record::{Capture, Event};

const CSV_HEADER: [&str; 31] = [
    "record_seq",
    "time",
    "execution_id",
    "session_id",
    "started_at",
    "principal",
    "tenant",
    "transport",
    "client_name",
    "client_version",
    "model",
    "language",
    "policy_name",
    "policy_sha256",
    "code_sha256",
    "capture",
    "outcome",
    "exit_code",
    "duration_ms",
    "fuel_used",
    "peak_memory_bytes",
    "stdout_bytes",
    "stderr_bytes",
    "files_in",
    "files_out",
    "egress_attempts",
    "egress_allowed",
    "egress_denied",
    "egress_failed",
    "egress_hosts",
    "record_hash",
];

/// Renders one CSV row per execution in `selected`, and returns it with
/// the number of executions and of unfinished ones. A damaged record gets
/// a row with only its number, the outcome `damaged` and its hash, and is
/// not counted as an execution.
pub(crate) fn summary_csv(selected: &[Listed]) -> (String, usize, usize) {
    let mut csv = String::new();
    push_row(&mut csv, CSV_HEADER.iter().map(|name| Cell::Plain(name)));
    let mut executions = 0;
    let mut unfinished = 0;
    for listed in selected {
        let entry = &listed.entry;
        let time = entry.record().map(|body| body.time.as_str()).unwrap_or("");
        let row = match entry.event() {
            None => {
                let mut row: Vec<Cell<'_>> = vec![Cell::Owned(entry.seq.to_string())];
                for name in &CSV_HEADER[1..CSV_HEADER.len() - 1] {
                    row.push(Cell::Plain(match *name {
                        "outcome" => DAMAGED,
                        _ => "",
                    }));
                }
                row.push(Cell::Text(&entry.hash));
                push_row(&mut csv, row.into_iter());
                continue;
            }
            Some(Event::Execution(execution)) => {
                let actor = &execution.actor;
                let count = |decision: &str| {
                    execution
                        .egress
                        .iter()
                        .filter(|attempt| attempt.decision == decision)
                        .count()
                        .to_string()
                };
                let mut hosts: Vec<&str> =
                    execution.egress.iter().map(|a| a.host.as_str()).collect();
                hosts.sort_unstable();
                hosts.dedup();
                vec![
                    Cell::Owned(entry.seq.to_string()),
                    Cell::Text(time),
                    Cell::Text(&execution.execution_id),
                    Cell::Text(execution.session_id.as_deref().unwrap_or("")),
                    Cell::Text(&execution.started_at),
                    Cell::Text(actor.principal.as_deref().unwrap_or("")),
                    Cell::Text(actor.tenant.as_deref().unwrap_or("")),
                    Cell::Plain(actor.transport.map(|t| t.name()).unwrap_or("")),
                    Cell::Text(actor.client.as_ref().map(|c| c.name.as_str()).unwrap_or("")),
                    Cell::Text(
                        actor
                            .client
                            .as_ref()
                            .map(|c| c.version.as_str())
                            .unwrap_or(""),
                    ),
                    Cell::Text(actor.model.as_deref().unwrap_or("")),
                    Cell::Text(&execution.language),
                    Cell::Text(execution.policy.name.as_deref().unwrap_or("")),
                    Cell::Text(&execution.policy.sha256),
                    Cell::Text(&execution.code.sha256),
                    Cell::Plain(capture_name(execution.capture)),
                    Cell::Text(&execution.outcome),
                    Cell::Owned(
                        execution
                            .exit_code
                            .map(|c| c.to_string())
                            .unwrap_or_default(),
                    ),
                    Cell::Owned(format!("{:.3}", execution.duration_ms)),
                    Cell::Owned(execution.fuel_used.to_string()),
                    Cell::Owned(execution.peak_memory_bytes.to_string()),
                    Cell::Owned(execution.stdout.bytes.to_string()),
                    Cell::Owned(execution.stderr.bytes.to_string()),
                    Cell::Owned(execution.files_in.len().to_string()),
                    Cell::Owned(execution.files_out.len().to_string()),
                    Cell::Owned(execution.egress.len().to_string()),
                    Cell::Owned(count("allowed")),
                    Cell::Owned(count("denied")),
                    Cell::Owned(count("failed")),
                    Cell::Owned(hosts.join(" ")),
                    Cell::Text(&entry.hash),
                ]
            }
            Some(Event::ExecutionStarted(start)) if listed.unfinished => {
                unfinished += 1;
                let actor = &start.actor;
                vec![
                    Cell::Owned(entry.seq.to_string()),
                    Cell::Text(time),
                    Cell::Text(&start.execution_id),
                    Cell::Text(start.session_id.as_deref().unwrap_or("")),
                    Cell::Text(time),
                    Cell::Text(actor.principal.as_deref().unwrap_or("")),
                    Cell::Text(actor.tenant.as_deref().unwrap_or("")),
                    Cell::Plain(actor.transport.map(|t| t.name()).unwrap_or("")),
                    Cell::Text(actor.client.as_ref().map(|c| c.name.as_str()).unwrap_or("")),
                    Cell::Text(
                        actor
                            .client
                            .as_ref()
                            .map(|c| c.version.as_str())
                            .unwrap_or(""),
                    ),
                    Cell::Text(actor.model.as_deref().unwrap_or("")),
                    Cell::Text(&start.language),
                    Cell::Text(start.policy.name.as_deref().unwrap_or("")),
                    Cell::Text(&start.policy.sha256),
                    Cell::Text(&start.code_sha256),
                    Cell::Plain(""),
                    Cell::Plain(UNFINISHED),
                    Cell::Plain(""),
                    Cell::Plain(""),
                    Cell::Plain(""),
                    Cell::Plain(""),
                    Cell::Plain(""),
                    Cell::Plain(""),
                    Cell::Plain(""),
                    Cell::Plain(""),
                    Cell::Plain(""),
                    Cell::Plain(""),
                    Cell::Plain(""),
                    Cell::Plain(""),
                    Cell::Plain(""),
                    Cell::Text(&entry.hash),
                ]
            }
            _ => continue,
        };
        executions += 1;
        push_row(&mut csv, row.into_iter());
    }
    (csv, executions, unfinished)
}

pub(crate) fn capture_name(capture: Capture) -> &'static str {
    match capture {
        Capture::Full => "full",
        Capture::Truncated => "truncated",
        Capture::Hashes => "hashes",
    }
}

/// One CSV cell.
enum Cell<'a> {
    /// A value moat generated (a header, a number, an enum name).
    Plain(&'a str),
    /// A generated value that was formatted.
    Owned(String),
    /// A value from a record, which may come from a hostile client.
    Text(&'a str),
}

/// Appends one RFC 4180 row, ended by CRLF. A field is quoted when it contains
/// a comma, a quote, a line break or edge spaces, with quotes doubled. A
/// record value that a spreadsheet would run as a formula (a leading `=`,
/// `+`, `-`, `@`, tab or carriage return) gets a leading `'`.
fn push_row<'a>(csv: &mut String, cells: impl Iterator<Item = Cell<'a>>) {
    for (index, cell) in cells.enumerate() {
        if index > 0 {
            csv.push(',');
        }
        let guarded;
        let value: &str = match &cell {
            Cell::Plain(value) => value,
            Cell::Owned(value) => value,
            Cell::Text(value) if value.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
                guarded = format!("'{value}");
                &guarded
            }
            Cell::Text(value) => value,
        };
        let needs_quotes = value.contains([',', '"', '\r', '\n'])
            || value.starts_with(' ')
            || value.ends_with(' ');
        if needs_quotes {
            csv.push('"');
            csv.push_str(&value.replace('"', "\"\""));
            csv.push('"');
        } else {
            csv.push_str(value);
        }
    }
    csv.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_guards() {
        let mut csv = String::new();
        push_row(
            &mut csv,
            [
                Cell::Plain("a"),
                Cell::Text("x,\"y\"\nz"),
                Cell::Text("=1+1"),
                Cell::Owned("-3".to_owned()),
                Cell::Text(" padded"),
            ]
            .into_iter(),
        );
        assert_eq!(csv, "a,\"x,\"\"y\"\"\nz\",'=1+1,-3,\" padded\"\r\n");
    }
}
