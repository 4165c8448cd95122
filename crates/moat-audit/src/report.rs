//! The HTML report: one self-contained page (inline CSS, no scripts, no
//! external resources) that shows a selection to a compliance analyst.
//!
//! Every value taken from a record is HTML-escaped, because records hold
//! model-written code, guest output and client-supplied names. Control
//! characters and bidirectional formatting characters are shown as visible
//! `\u{..}` escapes, so that the code on the page reads in the order it
//! ran. Attributes hold only values moat generates (record numbers, fixed
//! class names).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::error::AuditError;
use crate::export::{Gathered, gather};
use crate::filter::{DAMAGED, Filter, UNFINISHED};
use crate::query::{Listed, StoredEntry};
use crate::record::{Actor, Captured, EgressAttempt, Event, Execution, FileRef};
use crate::store::{AuditStore, now_rfc3339};
use crate::summary_csv::capture_name;
use crate::verify::Verification;

use self::escape_html as esc;

/// Runs listed in the "slowest runs" table.
const SLOWEST_SHOWN: usize = 10;

/// Record links listed per denied-egress row before "and N more".
const LINKS_PER_ROW: usize = 5;

/// A rendered report and the facts it shows.
#[derive(Debug, Clone)]
pub struct Report {
    /// The page.
    pub html: String,
    /// The whole chain, checked in the same read transaction.
    pub verification: Verification,
    /// Records shown in detail.
    pub records: usize,
}

/// Renders the report of `filter`'s selection, with the chain verified in
/// the same read transaction.
pub fn report(store: &AuditStore, filter: &Filter) -> Result<Report, AuditError> {
    let gathered = gather(store, filter)?;
    let html = render(
        &gathered,
        filter,
        &store.path().display().to_string(),
        &now_rfc3339(),
    );
    Ok(Report {
        html,
        records: gathered.records.len(),
        verification: gathered.verification,
    })
}

/// Escapes text for HTML element content. Markup characters become
/// entities. Control characters other than newline and tab (NUL, ESC, CR,
/// C1 controls) and bidirectional formatting characters become a marked
/// `\u{..}` escape, as `moat audit show` prints them, because a browser
/// would hide them or reorder the text around them.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '\n' | '\t' => escaped.push(c),
            c if is_hidden_character(c) => {
                escaped.push_str("<span class=\"ctl\">");
                escaped.extend(c.escape_unicode());
                escaped.push_str("</span>");
            }
            c => escaped.push(c),
        }
    }
    escaped
}

/// Checks whether `c` is a control character or changes the direction of
/// the text around it (the marks and embeddings, overrides and isolates of
/// Unicode's bidirectional algorithm).
fn is_hidden_character(c: char) -> bool {
    matches!(
        c,
        '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    ) || c.is_control()
}

const STYLE: &str = "
body { font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1d232a;
       max-width: 72rem; margin: 0 auto; padding: 1.5rem; }
h1 { margin-bottom: 0.2rem; }
h2 { border-bottom: 2px solid #d0d7de; padding-bottom: 0.2rem; margin-top: 2.5rem; }
h3 { margin-bottom: 0.4rem; }
h4 { margin: 1rem 0 0.3rem; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.5rem; text-align: left;
         vertical-align: top; }
th { background: #f3f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { width: 12rem; }
code, pre { font: 13px/1.4 ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: 0.5rem; margin: 0.3rem 0;
      white-space: pre-wrap; overflow-wrap: anywhere; max-height: 30rem; overflow: auto; }
.meta { color: #57606a; }
.status { padding: 0.6rem 0.8rem; border-radius: 4px; margin: 0.8rem 0; font-weight: 600; }
.valid { background: #dafbe1; border: 1px solid #4ac26b; }
.broken { background: #ffebe9; border: 1px solid #ff8182; }
.ok { color: #1a7f37; font-weight: 600; }
.bad { color: #cf222e; font-weight: 600; }
.note { color: #57606a; font-style: italic; margin: 0.2rem 0; }
.bar { background: #54aeff; height: 0.8rem; min-width: 1px; }
.record { border-top: 1px solid #d0d7de; margin-top: 1.5rem; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8rem; }
.card { border: 1px solid #d0d7de; border-radius: 4px; padding: 0.4rem 0.8rem; min-width: 8rem; }
.card b { display: block; font-size: 1.5rem; }
nav a { margin-right: 1rem; }
.ctl { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 2px; }
";

/// Builds the page from records already read and verified.
pub(crate) fn render(
    gathered: &Gathered,
    filter: &Filter,
    store_path: &str,
    generated: &str,
) -> String {
    let mut page = String::new();
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str("<title>moat audit report</title>\n<style>");
    page.push_str(STYLE);
    page.push_str("</style>\n</head>\n<body id=\"top\">\n");

    header(&mut page, gathered, filter, store_path, generated);
    summary(&mut page, gathered);
    per_day(&mut page, &gathered.selected);
    denied_egress(&mut page, &gathered.selected);
    slowest(&mut page, &gathered.selected);
    failing(&mut page, &gathered.selected);
    records(&mut page, gathered);
    damaged(&mut page, gathered);

    page.push_str("</body>\n</html>\n");
    page
}

fn header(page: &mut String, gathered: &Gathered, filter: &Filter, store: &str, generated: &str) {
    let chain = &gathered.verification;
    let _ = write!(
        page,
        "<h1>moat audit report</h1>\n<p class=\"meta\">Generated {} by moat {} from the audit store <code>{}</code>.</p>\n",
        esc(generated),
        env!("CARGO_PKG_VERSION"),
        esc(store)
    );
    let head = chain
        .head
        .as_ref()
        .map(|head| {
            format!(
                "record {} with hash <code>{}</code>",
                head.seq,
                esc(&head.hash)
            )
        })
        .unwrap_or_else(|| "none (the store is empty)".to_owned());
    match &chain.first_failure {
        None => {
            let _ = writeln!(
                page,
                "<div class=\"status valid\">Hash chain verified: all {} records link, from record 1 to the newest. Newest record: {head}.</div>",
                chain.records
            );
        }
        Some(failure) => {
            let _ = writeln!(
                page,
                "<div class=\"status broken\">Hash chain broken: {}. Records 1 to {} verified; records from there on cannot be trusted. Newest record: {head}.</div>",
                esc(&failure.message),
                chain.verified
            );
        }
    }
    if !chain.store_failures.is_empty() {
        page.push_str(
            "<div class=\"status broken\">The store fails verification outside the chain:<ul>\n",
        );
        for failure in &chain.store_failures {
            let _ = writeln!(page, "<li>{}</li>", esc(&failure.message));
        }
        page.push_str("</ul></div>\n");
    }
    if !gathered.index_mismatches.is_empty() {
        let _ = writeln!(
            page,
            "<p class=\"note\">Indexed columns that disagree with the body, so they were edited: {}. This report selected records by their bodies.</p>",
            esc(&numbers_phrase(&gathered.index_mismatches))
        );
    }

    page.push_str("<table class=\"kv\">\n");
    let range = |value: &Option<String>| value.clone().unwrap_or_else(|| "(open)".to_owned());
    kv(
        page,
        "Time range from (inclusive)",
        &esc(&range(&filter.from)),
    );
    kv(page, "Time range to (exclusive)", &esc(&range(&filter.to)));
    kv(page, "Records", &esc(&filter.kind.to_string()));
    let fields = [
        ("Principal", &filter.principal),
        ("Tenant", &filter.tenant),
        ("Client", &filter.client),
        ("Model", &filter.model),
        ("Language", &filter.language),
        ("Outcome", &filter.outcome),
        ("Egress host", &filter.egress_host),
        ("Session", &filter.session_id),
    ];
    for (label, value) in fields {
        if let Some(value) = value {
            kv(page, label, &esc(value));
        }
    }
    page.push_str("</table>\n");
    page.push_str(
        "<nav><a href=\"#summary\">Summary</a><a href=\"#per-day\">Per day</a><a href=\"#denied-egress\">Denied egress</a><a href=\"#slowest\">Slowest runs</a><a href=\"#failing\">Failing runs</a><a href=\"#records\">Records</a><a href=\"#damaged\">Damaged records</a></nav>\n",
    );
}

fn kv(page: &mut String, label: &str, html: &str) {
    let _ = writeln!(page, "<tr><th>{label}</th><td>{html}</td></tr>");
}

/// Returns the executions of a selection: finished ones and unfinished
/// starts.
fn executions(selected: &[Listed]) -> impl Iterator<Item = &Listed> {
    selected.iter().filter(|listed| match listed.entry.event() {
        Some(Event::Execution(_)) => true,
        Some(Event::ExecutionStarted(_)) => listed.unfinished,
        _ => false,
    })
}

fn is_failing(listed: &Listed) -> bool {
    listed.status() != "ok"
}

fn summary(page: &mut String, gathered: &Gathered) {
    let selected = &gathered.selected;
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut egress: BTreeMap<&str, usize> = BTreeMap::new();
    let mut total = 0;
    for listed in executions(selected) {
        total += 1;
        *outcomes.entry(listed.status()).or_default() += 1;
        if let Some(execution) = listed.entry.execution() {
            for attempt in &execution.egress {
                *egress.entry(attempt.decision.as_str()).or_default() += 1;
            }
        }
    }
    let sessions = selected
        .iter()
        .filter(|listed| {
            listed
                .entry
                .event()
                .is_some_and(|event| event.execution_id().is_none())
        })
        .count();
    let damaged = selected
        .iter()
        .filter(|listed| listed.entry.record().is_none())
        .count();
    let unfinished = outcomes.get(UNFINISHED).copied().unwrap_or(0);
    let failing = executions(selected).filter(|l| is_failing(l)).count();

    page.push_str("<h2 id=\"summary\">Summary</h2>\n<div class=\"cards\">\n");
    let cards = [
        ("executions", total),
        ("did not end ok", failing),
        ("unfinished", unfinished),
        (
            "egress allowed",
            egress.get("allowed").copied().unwrap_or(0),
        ),
        ("egress denied", egress.get("denied").copied().unwrap_or(0)),
        ("egress failed", egress.get("failed").copied().unwrap_or(0)),
        ("session records", sessions),
        ("damaged records", damaged),
    ];
    for (label, count) in cards {
        let _ = writeln!(page, "<div class=\"card\"><b>{count}</b>{label}</div>");
    }
    page.push_str("</div>\n");
    if outcomes.is_empty() {
        page.push_str("<p class=\"note\">No executions in this selection.</p>\n");
        return;
    }
    page.push_str("<h3>Outcomes</h3>\n<table>\n<tr><th>Outcome</th><th>Executions</th></tr>\n");
    for (outcome, count) in &outcomes {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"num\">{count}</td></tr>",
            outcome_html(outcome)
        );
    }
    page.push_str("</table>\n");
    if unfinished > 0 {
        page.push_str("<p class=\"note\">An unfinished execution has a start record and no end record: it was still running when the report was made, or moat stopped (a crash, a kill) before it could record the end.</p>\n");
    }
}

fn outcome_html(outcome: &str) -> String {
    let class = match outcome {
        "ok" => "ok",
        _ => "bad",
    };
    format!("<span class=\"{class}\">{}</span>", esc(outcome))
}

fn per_day(page: &mut String, selected: &[Listed]) {
    page.push_str("<h2 id=\"per-day\">Executions per day (UTC)</h2>\n");
    let mut days: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for listed in executions(selected) {
        let Some(body) = listed.entry.record() else {
            continue;
        };
        let time = &body.time;
        let day = time.get(..10).unwrap_or(time);
        let counts = days.entry(day).or_default();
        counts.0 += 1;
        if is_failing(listed) {
            counts.1 += 1;
        }
    }
    if days.is_empty() {
        page.push_str("<p class=\"note\">No executions in this selection.</p>\n");
        return;
    }
    let max = days
        .values()
        .map(|(total, _)| *total)
        .max()
        .unwrap_or(1)
        .max(1);
    page.push_str("<table>\n<tr><th>Day</th><th>Executions</th><th>Not ok</th><th style=\"width:20rem\"></th></tr>\n");
    for (day, (total, failing)) in &days {
        let width = total * 100 / max;
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"num\">{total}</td><td class=\"num\">{failing}</td><td><div class=\"bar\" style=\"width:{width}%\"></div></td></tr>",
            esc(day)
        );
    }
    page.push_str("</table>\n");
}

fn record_link(seq: u64) -> String {
    format!("<a href=\"#record-{seq}\">record {seq}</a>")
}

fn denied_egress(page: &mut String, selected: &[Listed]) {
    page.push_str("<h2 id=\"denied-egress\">Denied and failed egress</h2>\n");
    let mut rows: BTreeMap<(&str, &str, &str), (usize, Vec<u64>)> = BTreeMap::new();
    for listed in executions(selected) {
        let Some(execution) = listed.entry.execution() else {
            continue;
        };
        for attempt in &execution.egress {
            if attempt.decision == "allowed" {
                continue;
            }
            let key = (
                attempt.host.as_str(),
                attempt.decision.as_str(),
                attempt.reason.as_deref().unwrap_or(""),
            );
            let row = rows.entry(key).or_default();
            row.0 += 1;
            if row.1.last() != Some(&listed.entry.seq) {
                row.1.push(listed.entry.seq);
            }
        }
    }
    if rows.is_empty() {
        page.push_str("<p class=\"note\">No request was denied or failed.</p>\n");
        return;
    }
    page.push_str("<table>\n<tr><th>Host</th><th>Decision</th><th>Reason</th><th>Attempts</th><th>Runs</th></tr>\n");
    for ((host, decision, reason), (count, seqs)) in &rows {
        let mut links: Vec<String> = seqs
            .iter()
            .take(LINKS_PER_ROW)
            .map(|seq| record_link(*seq))
            .collect();
        if seqs.len() > LINKS_PER_ROW {
            links.push(format!("and {} more", seqs.len() - LINKS_PER_ROW));
        }
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{count}</td><td>{}</td></tr>",
            esc(host),
            esc(decision),
            esc(reason),
            links.join(", ")
        );
    }
    page.push_str("</table>\n");
}

fn run_row(page: &mut String, listed: &Listed, detail: &str) {
    let entry = &listed.entry;
    let (language, duration) = match entry.event() {
        Some(Event::Execution(execution)) => (
            execution.language.as_str(),
            format_duration(execution.duration_ms),
        ),
        Some(Event::ExecutionStarted(start)) => (start.language.as_str(), String::new()),
        _ => ("", String::new()),
    };
    let time = entry.record().map(|body| body.time.as_str()).unwrap_or("");
    let _ = writeln!(
        page,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
        record_link(entry.seq),
        esc(time),
        esc(language),
        outcome_html(listed.status()),
        esc(&duration),
        esc(detail)
    );
}

fn slowest(page: &mut String, selected: &[Listed]) {
    let _ = writeln!(
        page,
        "<h2 id=\"slowest\">Slowest runs (at most {SLOWEST_SHOWN})</h2>"
    );
    let mut finished: Vec<(&Listed, &Execution)> = executions(selected)
        .filter_map(|listed| listed.entry.execution().map(|e| (listed, e)))
        .collect();
    if finished.is_empty() {
        page.push_str("<p class=\"note\">No finished executions in this selection.</p>\n");
        return;
    }
    finished.sort_by(|a, b| b.1.duration_ms.total_cmp(&a.1.duration_ms));
    page.push_str("<table>\n<tr><th>Record</th><th>Time</th><th>Language</th><th>Outcome</th><th>Duration</th><th>Principal</th></tr>\n");
    for (listed, execution) in finished.into_iter().take(SLOWEST_SHOWN) {
        run_row(
            page,
            listed,
            execution.actor.principal.as_deref().unwrap_or(""),
        );
    }
    page.push_str("</table>\n");
}

fn failing(page: &mut String, selected: &[Listed]) {
    page.push_str("<h2 id=\"failing\">Failing runs</h2>\n");
    let failing: Vec<&Listed> = executions(selected).filter(|l| is_failing(l)).collect();
    if failing.is_empty() {
        page.push_str("<p class=\"note\">Every execution in this selection ended ok.</p>\n");
        return;
    }
    page.push_str("<table>\n<tr><th>Record</th><th>Time</th><th>Language</th><th>Outcome</th><th>Duration</th><th>Why</th></tr>\n");
    for listed in failing {
        let why = match listed.entry.execution() {
            Some(execution) => failure_reason(execution),
            None => "no end record".to_owned(),
        };
        run_row(page, listed, &why);
    }
    page.push_str("</table>\n");
}

/// Returns a one-line reason for a run that did not end ok.
fn failure_reason(execution: &Execution) -> String {
    if let Some(message) = &execution.limit_message {
        return message.clone();
    }
    if let Some(error) = &execution.error {
        let message = error.message.text.as_deref().unwrap_or("");
        let first_line = message.lines().next().unwrap_or("");
        return format!("{}: {first_line}", error.name);
    }
    match execution.exit_code {
        Some(code) => format!("exit code {code}"),
        None => String::new(),
    }
}

fn records(page: &mut String, gathered: &Gathered) {
    page.push_str("<h2 id=\"records\">Records</h2>\n");
    if gathered
        .records
        .iter()
        .all(|entry| entry.record().is_none())
    {
        page.push_str("<p class=\"note\">No valid records in this selection.</p>\n");
        return;
    }
    let unfinished: BTreeMap<u64, bool> = gathered
        .selected
        .iter()
        .map(|listed| (listed.entry.seq, listed.unfinished))
        .collect();
    // Where each execution's records are, to link its start and its end.
    let mut by_execution: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for entry in &gathered.records {
        if let Some(id) = entry.event().and_then(|event| event.execution_id()) {
            by_execution.entry(id).or_default().push(entry.seq);
        }
    }

    for entry in &gathered.records {
        let seq = entry.seq;
        let Some(body) = entry.record() else {
            continue;
        };
        let event = &body.event;
        let title = match event {
            Event::Execution(execution) => format!(
                "execution {} · {} · {}",
                esc(&execution.execution_id),
                esc(&execution.language),
                outcome_html(&execution.outcome)
            ),
            Event::ExecutionStarted(start) => {
                let status = match unfinished.get(&seq) {
                    Some(true) => outcome_html(UNFINISHED),
                    _ => "start".to_owned(),
                };
                format!(
                    "execution {} · {} · {status}",
                    esc(&start.execution_id),
                    esc(&start.language)
                )
            }
            other => format!(
                "{} · {}",
                esc(other.kind()),
                esc(other.session_id().unwrap_or(""))
            ),
        };
        let _ = write!(
            page,
            "<section class=\"record\" id=\"record-{seq}\">\n<h3>Record {seq} · {title}</h3>\n<table class=\"kv\">\n"
        );
        kv(page, "Recorded at", &esc(&body.time));
        kv(page, "Kind", &esc(event.kind()));
        let sibling_links: Vec<String> = event
            .execution_id()
            .and_then(|id| by_execution.get(id))
            .map(|seqs| {
                seqs.iter()
                    .filter(|other| **other != seq)
                    .map(|other| record_link(*other))
                    .collect()
            })
            .unwrap_or_default();
        if !sibling_links.is_empty() {
            kv(page, "Same execution", &sibling_links.join(", "));
        }
        actor_rows(page, event.actor());
        match event {
            Event::Execution(execution) => execution_rows(page, execution),
            Event::ExecutionStarted(start) => {
                if let Some(session) = &start.session_id {
                    kv(page, "Session", &esc(session));
                }
                kv(
                    page,
                    "Policy",
                    &policy_html(start.policy.name.as_deref(), &start.policy.sha256),
                );
                kv(page, "Guest (BLAKE3)", &code(&start.guest_hash));
                kv(page, "Code (SHA-256)", &code(&start.code_sha256));
            }
            Event::SessionCreated(session)
            | Event::SessionClosed(session)
            | Event::SessionExpired(session) => {
                kv(page, "Session", &esc(&session.session_id));
                kv(page, "Language", &esc(&session.language));
                if let Some(reason) = &session.reason {
                    kv(page, "Reason", &esc(reason));
                }
            }
        }
        let hash_note = match entry.hash_matches() {
            true => "",
            false => " <span class=\"bad\">does not match the body</span>",
        };
        kv(
            page,
            "Record hash",
            &format!("{}{hash_note}", code(&entry.hash)),
        );
        kv(page, "Previous hash", &code(&body.prev_hash));
        page.push_str("</table>\n");

        match event {
            Event::Execution(execution) => execution_texts(page, execution),
            Event::ExecutionStarted(_) if unfinished.get(&seq) == Some(&true) => {
                page.push_str("<p class=\"note\">No end record: the run was still going when the report was made, or moat stopped before it could record the end. The code itself is in the end record only; its SHA-256 is above.</p>\n");
            }
            _ => {}
        }
        page.push_str("<p><a href=\"#top\">Back to top</a></p>\n</section>\n");
    }
}

/// Shows the damaged records of the selection with their stored bodies.
fn damaged(page: &mut String, gathered: &Gathered) {
    page.push_str("<h2 id=\"damaged\">Damaged records</h2>\n");
    if !gathered.damaged_left_out.is_empty() {
        let _ = writeln!(
            page,
            "<p class=\"note\">Left out as damaged: {}. The filter has conditions on the content of records, and a damaged record's content cannot be read.</p>",
            esc(&numbers_phrase(&gathered.damaged_left_out))
        );
    }
    let damaged: Vec<&StoredEntry> = gathered
        .records
        .iter()
        .filter(|entry| entry.record().is_none())
        .collect();
    if damaged.is_empty() {
        page.push_str("<p class=\"note\">No record in this selection is damaged.</p>\n");
        return;
    }
    page.push_str("<p class=\"note\">The body of each record below is not a valid audit record, so none of its fields can be shown. The stored body is shown as it is, and its hash can still be checked.</p>\n");
    for entry in damaged {
        let seq = entry.seq;
        let _ = write!(
            page,
            "<section class=\"record\" id=\"record-{seq}\">\n<h3>Record {seq} · {}</h3>\n<table class=\"kv\">\n",
            outcome_html(DAMAGED)
        );
        kv(page, "Problem", &esc(entry.damage().unwrap_or("")));
        let hash_note = match entry.hash_matches() {
            true => " (matches the stored body)",
            false => " <span class=\"bad\">does not match the stored body</span>",
        };
        kv(
            page,
            "Record hash",
            &format!("{}{hash_note}", code(&entry.hash)),
        );
        page.push_str("</table>\n<h4>Stored body</h4>\n");
        let body = match entry.body_text() {
            Some(text) => esc(text),
            None => {
                let hex: String = entry
                    .body_bytes
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!("(not UTF-8; in hex) {hex}")
            }
        };
        let _ = writeln!(page, "<pre>{body}</pre>");
        page.push_str("<p><a href=\"#top\">Back to top</a></p>\n</section>\n");
    }
}

/// Names records by number: "record 6", "records 6 and 9", "records 6, 7
/// and 9", with the verb's number left to the caller.
pub(crate) fn numbers_phrase(numbers: &[u64]) -> String {
    let texts: Vec<String> = numbers.iter().map(u64::to_string).collect();
    match texts.as_slice() {
        [] => "no records".to_owned(),
        [one] => format!("record {one}"),
        [rest @ .., last] => format!("records {} and {last}", rest.join(", ")),
    }
}

fn code(text: &str) -> String {
    format!("<code>{}</code>", esc(text))
}

fn policy_html(name: Option<&str>, sha256: &str) -> String {
    match name {
        Some(name) => format!("{} ({})", esc(name), code(sha256)),
        None => code(sha256),
    }
}

fn actor_rows(page: &mut String, actor: &Actor) {
    let or_dash = |value: Option<&str>| esc(value.unwrap_or("-"));
    kv(page, "Principal", &or_dash(actor.principal.as_deref()));
    kv(page, "Tenant", &or_dash(actor.tenant.as_deref()));
    kv(
        page,
        "Transport",
        &or_dash(actor.transport.map(|t| t.name())),
    );
    let client = actor
        .client
        .as_ref()
        .map(|client| format!("{} {}", client.name, client.version));
    kv(page, "Client", &or_dash(client.as_deref()));
    kv(page, "Model", &or_dash(actor.model.as_deref()));
}

fn execution_rows(page: &mut String, execution: &Execution) {
    if let Some(session) = &execution.session_id {
        kv(page, "Session", &esc(session));
    }
    kv(page, "Started at", &esc(&execution.started_at));
    kv(
        page,
        "Policy",
        &policy_html(execution.policy.name.as_deref(), &execution.policy.sha256),
    );
    kv(page, "Guest (BLAKE3)", &code(&execution.guest_hash));
    kv(page, "Capture level", capture_name(execution.capture));

    kv(page, "Outcome", &outcome_html(&execution.outcome));
    if let Some(code) = execution.exit_code {
        kv(page, "Exit code", &code.to_string());
    }
    if let Some(message) = &execution.limit_message {
        kv(page, "Limit or cancellation", &esc(message));
    }

    kv(
        page,
        "Duration",
        &esc(&format_duration(execution.duration_ms)),
    );
    kv(page, "Fuel used", &execution.fuel_used.to_string());
    kv(
        page,
        "Peak memory",
        &format_bytes(execution.peak_memory_bytes),
    );

    let limits = &execution.limits;
    kv(
        page,
        "Limits",
        &format!(
            "timeout {} ms, fuel {}, memory {}, stdout {}, stderr {}",
            limits.timeout_ms,
            limits.fuel,
            format_bytes(limits.memory_bytes),
            format_bytes(limits.stdout_bytes),
            format_bytes(limits.stderr_bytes)
        ),
    );
}

fn execution_texts(page: &mut String, execution: &Execution) {
    captured(page, "Code", Some(&execution.code));
    if execution.stdin.is_some() {
        captured(page, "Standard input", execution.stdin.as_ref());
    }
    captured(page, "Standard output", Some(&execution.stdout));
    captured(page, "Standard error", Some(&execution.stderr));
    if execution.result.is_some() {
        captured(page, "Result", execution.result.as_ref());
    }
    if let Some(error) = &execution.error {
        let _ = writeln!(page, "<h4>Error: {}</h4>", esc(&error.name));
        captured(page, "Message", Some(&error.message));
        captured(page, "Stack", Some(&error.stack));
    }
    egress_table(page, &execution.egress);
    files_table(page, "Files given", &execution.files_in);
    files_table(page, "Files changed", &execution.files_out);
}

fn captured(page: &mut String, label: &str, text: Option<&Captured>) {
    let _ = writeln!(page, "<h4>{label}</h4>");
    let Some(text) = text else {
        return;
    };
    let digest = format!("{} bytes, SHA-256 {}", text.bytes, code(&text.sha256));
    match &text.text {
        None => {
            let _ = writeln!(
                page,
                "<p class=\"note\">Content not kept (capture level: hashes). {digest}.</p>"
            );
        }
        Some(content) => {
            if text.truncated {
                let _ = writeln!(
                    page,
                    "<p class=\"note\">Cut to the first {} bytes of {}. {digest}.</p>",
                    content.len(),
                    text.bytes
                );
            }
            if text.redacted {
                page.push_str(
                    "<p class=\"note\">Secret values were replaced by [REDACTED:name].</p>\n",
                );
            }
            if content.is_empty() && text.bytes == 0 {
                page.push_str("<p class=\"note\">Empty.</p>\n");
            } else {
                let _ = writeln!(page, "<pre>{}</pre>", esc(content));
            }
        }
    }
}

fn egress_table(page: &mut String, egress: &[EgressAttempt]) {
    page.push_str("<h4>Egress</h4>\n");
    if egress.is_empty() {
        page.push_str("<p class=\"note\">No HTTP requests.</p>\n");
        return;
    }
    page.push_str("<table>\n<tr><th>Time</th><th>Hop</th><th>Request</th><th>Decision</th><th>Rule or reason</th><th>Address</th><th>Status</th><th>Sent</th><th>Received</th><th>Secrets</th><th>Duration</th></tr>\n");
    for attempt in egress {
        let class = match attempt.decision.as_str() {
            "allowed" => "ok",
            _ => "bad",
        };
        let why = attempt
            .rule
            .as_deref()
            .or(attempt.reason.as_deref())
            .unwrap_or("");
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"num\">{}</td><td>{} {}</td><td><span class=\"{class}\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{} ms</td></tr>",
            esc(&attempt.time),
            attempt.hop,
            esc(&attempt.method),
            esc(&attempt.url),
            esc(&attempt.decision),
            esc(why),
            esc(attempt.address.as_deref().unwrap_or("")),
            attempt.status.map(|s| s.to_string()).unwrap_or_default(),
            format_bytes(attempt.bytes_sent),
            format_bytes(attempt.bytes_received),
            esc(&attempt.secrets_injected.join(", ")),
            attempt.duration_ms
        );
    }
    page.push_str("</table>\n");
}

fn files_table(page: &mut String, label: &str, files: &[FileRef]) {
    if files.is_empty() {
        return;
    }
    let _ = writeln!(page, "<h4>{label}</h4>");
    page.push_str("<table>\n<tr><th>Path</th><th>Change</th><th>Size</th><th>SHA-256</th></tr>\n");
    for file in files {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&file.path),
            esc(&file.change),
            format_bytes(file.size),
            file.sha256.as_deref().map(code).unwrap_or_default()
        );
    }
    page.push_str("</table>\n");
}

/// Milliseconds as "12.3 ms" or "4.56 s".
pub(crate) fn format_duration(ms: f64) -> String {
    match ms >= 1000.0 {
        true => format!("{:.2} s", ms / 1000.0),
        false => format!("{ms:.1} ms"),
    }
}

/// Bytes in binary units: "512 B", "1.5 KiB", "2.0 MiB".
pub(crate) fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape_html("<script>alert('x&y')</script>\""),
            "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt;&quot;"
        );
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(format_duration(12.34), "12.3 ms");
        assert_eq!(format_duration(4560.0), "4.56 s");
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(64 * 1024 * 1024), "64.0 MiB");
    }
}
