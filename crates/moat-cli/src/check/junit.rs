//! The JUnit XML report of a check, in the shape that GitHub Actions
//! reporters, GitLab and Jenkins read: `testsuites`, one `testsuite`, a
//! `testcase` per script with `failure` or `error`, and the script's output
//! in `system-out` and `system-err`. A script that ran has its audit
//! `execution_id` as the test case's `moat.execution_id` property, and a
//! failure's body ends with the `moat audit show` command that prints the
//! run's records, because many CI pages show the body but not properties.
//!
//! The document is small and fixed in shape, so it is written by hand. The
//! escaping is the part that matters: XML 1.0 cannot carry most control
//! characters even as character references, and script output may hold any
//! of them, so they are written as visible `\u{..}` text instead.

use std::fmt::Write as _;
use std::time::Duration;

use super::report::Totals;
use super::verdict::{Status, Verdict};

/// Bytes of each output stream kept per test case. CI pages render the
/// whole file, and the full output is in `--json`.
pub const OUTPUT_CAP_BYTES: usize = 64 * 1024;

/// Facts about the policy, written as the suite's properties.
#[derive(Debug)]
pub struct SuiteInfo<'a> {
    /// The policy's `name`; a policy without one is written as "unnamed",
    /// as the summary shows it.
    pub policy_name: Option<&'a str>,
    /// The policy file, or "built-in".
    pub policy_source: &'a str,
    /// SHA-256 of the policy text.
    pub policy_sha256: &'a str,
}

/// Renders the JUnit XML document for `verdicts`.
pub fn render(verdicts: &[Verdict], info: &SuiteInfo<'_>, elapsed: Duration) -> String {
    let totals = Totals::of(verdicts);
    let mut xml = String::new();
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");

    let counts = format!(
        "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{}\"",
        totals.total,
        totals.failed,
        totals.errors,
        seconds(elapsed)
    );
    let _ = writeln!(xml, "<testsuites name=\"moat check\" {counts}>");
    let _ = writeln!(xml, "  <testsuite name=\"moat check\" {counts}>");
    xml.push_str("    <properties>\n");
    let mut property = |name: &str, value: &str| {
        let _ = writeln!(
            xml,
            "      <property name=\"{}\" value=\"{}\"/>",
            escape_attribute(name),
            escape_attribute(value)
        );
    };
    property("policy", info.policy_name.unwrap_or("unnamed"));
    property("policy_source", info.policy_source);
    property("policy_sha256", info.policy_sha256);
    xml.push_str("    </properties>\n");

    for verdict in verdicts {
        write_testcase(&mut xml, verdict);
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

fn write_testcase(xml: &mut String, verdict: &Verdict) {
    let path = escape_attribute(&verdict.path);
    let _ = write!(
        xml,
        "    <testcase name=\"{path}\" classname=\"{}\" file=\"{path}\" time=\"{}\"",
        verdict.language.name(),
        seconds(verdict.duration)
    );
    let execution = verdict.execution.as_ref();
    let has_output =
        execution.is_some_and(|e| !e.report.stdout.is_empty() || !e.report.stderr.is_empty());
    if verdict.status == Status::Pass && !has_output && verdict.execution_id.is_none() {
        xml.push_str("/>\n");
        return;
    }
    xml.push_str(">\n");

    if let Some(id) = &verdict.execution_id {
        let _ = writeln!(
            xml,
            "      <properties>\n        <property name=\"moat.execution_id\" value=\"{}\"/>\n      </properties>",
            escape_attribute(id)
        );
    }

    if let Some(first) = verdict.failures.first() {
        let element = match verdict.status {
            Status::Error => "error",
            _ => "failure",
        };
        let mut body = String::new();
        for failure in &verdict.failures {
            let _ = writeln!(body, "{}: {}", failure.kind.name(), failure.message);
        }
        if let Some(error) = execution.and_then(|e| e.report.error.as_ref()) {
            body.push('\n');
            body.push_str(&error.stack);
        }
        if let Some(id) = &verdict.execution_id {
            body.truncate(body.trim_end().len());
            let _ = write!(body, "\n\naudit records: moat audit show {id}");
        }
        let _ = writeln!(
            xml,
            "      <{element} type=\"{}\" message=\"{}\">{}</{element}>",
            first.kind.name(),
            escape_attribute(&first.message),
            escape_text(body.trim_end())
        );
    }

    if let Some(execution) = execution {
        for (element, bytes) in [
            ("system-out", &execution.report.stdout),
            ("system-err", &execution.report.stderr),
        ] {
            if bytes.is_empty() {
                continue;
            }
            let _ = writeln!(
                xml,
                "      <{element}>{}</{element}>",
                escape_text(&capped_text(bytes, OUTPUT_CAP_BYTES))
            );
        }
    }
    xml.push_str("    </testcase>\n");
}

/// Seconds with millisecond precision, as JUnit's `time` attribute has it.
fn seconds(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64())
}

/// Decodes the output as text and cuts it to `cap` bytes at a character
/// boundary, with a note saying how much was left out.
fn capped_text(bytes: &[u8], cap: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= cap {
        return text.into_owned();
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[moat: output cut to its first {end} bytes of {}; --json has all of it]",
        &text[..end],
        text.len()
    )
}

/// Escapes text content. Carriage returns are written as references so
/// that a parser does not turn them into line feeds.
fn escape_text(text: &str) -> String {
    escape(text, false)
}

/// Escapes an attribute value, keeping tabs and line breaks, which a parser
/// would otherwise turn into spaces.
fn escape_attribute(text: &str) -> String {
    escape(text, true)
}

fn escape(text: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            '\n' | '\t' => out.push(c),
            c if is_forbidden_in_xml(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Returns whether XML 1.0 forbids `c` anywhere in a document, even as a
/// character reference: the C0 controls other than tab, line feed and
/// carriage return, and U+FFFE and U+FFFF. A Rust `char` is never a
/// surrogate.
fn is_forbidden_in_xml(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::verdict::{Failure, FailureKind};
    use moat_runtime::Language;

    fn verdict(path: &str, status: Status, failures: Vec<Failure>) -> Verdict {
        Verdict {
            path: path.to_owned(),
            language: Language::Python,
            status,
            failures,
            expectations: None,
            execution: None,
            execution_id: None,
            duration: Duration::from_millis(1500),
        }
    }

    fn info() -> SuiteInfo<'static> {
        SuiteInfo {
            policy_name: Some("ci"),
            policy_source: "built-in",
            policy_sha256: "abc",
        }
    }

    #[test]
    fn moat_failure_is_error_element() {
        let failure = Failure::new(
            FailureKind::MoatError,
            "moat failed to run the script: disk full",
        );
        let xml = render(
            &[verdict("a.py", Status::Error, vec![failure])],
            &info(),
            Duration::from_secs(2),
        );
        assert!(
            xml.contains("tests=\"1\" failures=\"0\" errors=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<error type=\"moat_error\" message=\"moat failed to run the script: disk full\">"
            ),
            "{xml}"
        );
    }

    #[test]
    fn passing_case_without_output_is_empty() {
        let xml = render(
            &[verdict("a.py", Status::Pass, Vec::new())],
            &info(),
            Duration::ZERO,
        );
        assert!(
            xml.contains(
                "<testcase name=\"a.py\" classname=\"python\" file=\"a.py\" time=\"1.500\"/>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<property name=\"policy\" value=\"ci\"/>"),
            "{xml}"
        );
    }

    #[test]
    fn unnamed_policy_is_a_property() {
        let info = SuiteInfo {
            policy_name: None,
            ..info()
        };
        let xml = render(&[], &info, Duration::ZERO);
        assert!(
            xml.contains("<property name=\"policy\" value=\"unnamed\"/>"),
            "{xml}"
        );
    }

    #[test]
    fn recorded_case_has_execution_id() {
        let mut passed = verdict("a.py", Status::Pass, Vec::new());
        passed.execution_id = Some("0195-a".to_owned());
        let mut failed = verdict(
            "b.py",
            Status::Fail,
            vec![Failure::new(
                FailureKind::ExitCode,
                "exit code 2, expected 0",
            )],
        );
        failed.execution_id = Some("0195-b".to_owned());
        let xml = render(&[passed, failed], &info(), Duration::ZERO);

        let document = roxmltree::Document::parse(&xml).expect("valid XML");
        let ids: Vec<_> = document
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .map(|case| {
                case.descendants()
                    .find(|n| n.attribute("name") == Some("moat.execution_id"))
                    .and_then(|n| n.attribute("value"))
            })
            .collect();
        assert_eq!(ids, [Some("0195-a"), Some("0195-b")]);

        let body = document
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .and_then(|n| n.text())
            .expect("a failure body");
        assert_eq!(
            body,
            "exit_code: exit code 2, expected 0\n\naudit records: moat audit show 0195-b"
        );
    }

    #[test]
    fn text_escapes_markup_and_controls() {
        assert_eq!(
            escape_text("a<b>&c\u{1b}[0m\r\n\u{0}\u{ffff}"),
            "a&lt;b&gt;&amp;c\\u{1b}[0m&#13;\n\\u{0}\\u{ffff}"
        );
    }

    #[test]
    fn attribute_escapes_quotes_and_breaks() {
        assert_eq!(
            escape_attribute("say \"hi\"\n\tnow"),
            "say &quot;hi&quot;&#10;&#9;now"
        );
    }

    #[test]
    fn cap_cuts_at_char_boundary() {
        let text = capped_text("ééé".as_bytes(), 3);
        assert!(text.starts_with("é\n[moat: output cut"), "{text}");
        assert!(text.contains("first 2 bytes of 6"), "{text}");
    }

    #[test]
    fn short_output_is_kept() {
        assert_eq!(capped_text(b"ok\n", 10), "ok\n");
    }
}
