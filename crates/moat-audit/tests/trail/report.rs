//! The HTML report: an anchor for every record, and hostile record values
//! shown as text.

use moat_audit::{AuditStore, Filter, Kind, report};

use crate::support::{Run, raw, record_run, store_path, tempdir};

/// Writes 1-2 a run whose output and code try to inject markup, 3-4 a
/// failing run that was denied egress, 5 an unfinished run.
fn hostile_store(dir: &std::path::Path) -> AuditStore {
    let store = AuditStore::open(&store_path(dir)).expect("open the store");
    let mut injected = Run::new("inject");
    injected.stdout = "<script>alert(1)</script>\n".into();
    injected.code = "print('</pre><img src=x onerror=alert(2)>')\n".into();
    injected.principal = Some("<b>mallory</b>".into());
    record_run(&store, &injected, true);
    let mut failing = Run::new("fails");
    failing.outcome = "error".into();
    failing.egress = vec![(
        "evil.example".into(),
        "denied".into(),
        Some("host \"evil.example\" <not allowed>".into()),
    )];
    record_run(&store, &failing, true);
    record_run(&store, &Run::new("hangs"), false);
    store
}

#[test]
fn report_escapes_record_values() {
    let dir = tempdir();
    let store = hostile_store(dir.path());

    let html = report(&store, &Filter::default()).expect("report").html;

    assert!(!html.contains("<script"), "the page must hold no script");
    assert!(
        !html.contains("<img"),
        "record markup must not become markup"
    );
    assert!(!html.contains("<b>mallory"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;/pre&gt;&lt;img src=x onerror=alert(2)&gt;"));
    assert!(html.contains("&lt;b&gt;mallory&lt;/b&gt;"));
    assert!(html.contains("host &quot;evil.example&quot; &lt;not allowed&gt;"));
}

#[test]
fn report_anchors_every_record() {
    let dir = tempdir();
    let store = hostile_store(dir.path());

    let html = report(&store, &Filter::default()).expect("report").html;

    for seq in 1..=5 {
        assert!(
            html.contains(&format!("<section class=\"record\" id=\"record-{seq}\">")),
            "no section for record {seq}"
        );
    }
    // The failing run and the unfinished one are linked from the failing
    // runs table; the denied request links to its run.
    assert!(html.contains("<a href=\"#record-4\">record 4</a>"));
    assert!(html.contains("<a href=\"#record-5\">record 5</a>"));
    assert!(html.contains("Hash chain verified: all 5 records link"));
    assert!(html.contains("<td>evil.example</td><td>denied</td>"));
}

#[test]
fn report_is_self_contained() {
    let dir = tempdir();
    let store = hostile_store(dir.path());

    let html = report(
        &store,
        &Filter {
            kind: Kind::All,
            ..Filter::default()
        },
    )
    .expect("report")
    .html;

    assert!(html.starts_with("<!DOCTYPE html>"));
    for loader in ["<link", "<script", "<img", "<iframe", "url(", "@import"] {
        assert!(!html.contains(loader), "the page loads nothing: {loader}");
    }
}

#[test]
fn report_shows_broken_chain() {
    let dir = tempdir();
    let path = store_path(dir.path());
    drop(hostile_store(dir.path()));
    raw(&path)
        .execute("DELETE FROM entries WHERE seq = 3", [])
        .expect("delete");
    let store = AuditStore::open_read_only(&path).expect("open");

    let html = report(&store, &Filter::default()).expect("report").html;

    assert!(
        html.contains(
            "Hash chain broken: records jump from 2 to 4: record 3 is missing. Records 1 to 2 verified"
        ),
        "{html}"
    );
}

#[test]
fn report_shows_hidden_characters() {
    let dir = tempdir();
    let store = AuditStore::open(&store_path(dir.path())).expect("open the store");
    let mut run = Run::new("trojan");
    // An override that makes a comment read as code, an isolate, and
    // NUL, ESC and CR, which a browser hides or a terminal runs.
    run.code =
        "access = 'user' # \u{202e} \u{2066}admin\u{2069} \u{2066}\nx = '\0\u{1b}[2J\r'\n".into();
    run.stdout = "line\r\n\u{202d}out".into();
    record_run(&store, &run, true);

    let html = report(&store, &Filter::default()).expect("report").html;

    for hidden in [
        '\u{202e}', '\u{202d}', '\u{2066}', '\u{2069}', '\0', '\u{1b}', '\r',
    ] {
        assert!(
            !html.contains(hidden),
            "{:?} is written raw",
            hidden.escape_unicode().to_string()
        );
    }
    assert!(html.contains(
        "access = &#39;user&#39; # <span class=\"ctl\">\\u{202e}</span> <span class=\"ctl\">\\u{2066}</span>admin<span class=\"ctl\">\\u{2069}</span>"
    ));
    assert!(html.contains(
        "x = &#39;<span class=\"ctl\">\\u{0}</span><span class=\"ctl\">\\u{1b}</span>[2J<span class=\"ctl\">\\u{d}</span>&#39;"
    ));
    assert!(html.contains(
        "line<span class=\"ctl\">\\u{d}</span>\n<span class=\"ctl\">\\u{202d}</span>out"
    ));
}
