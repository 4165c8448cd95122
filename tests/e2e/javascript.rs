//! JavaScript programs on the QuickJS guest, checked by output and result.

use moat_runtime::{Language, Outcome};

use crate::support::{assert_ok, assert_outcome, assert_stdout, javascript, sandbox, stderr};

#[tokio::test]
async fn javascript_hello() {
    let report = javascript("console.log('hello from javascript')").await;

    assert_ok(&report);
    assert_stdout(&report, "hello from javascript\n");
    assert!(report.stderr.is_empty(), "stderr: {}", stderr(&report));
}

#[tokio::test]
async fn javascript_json_round_trip() {
    let code = r#"
const data = { name: "Ada", tags: ["a", "b"], ratio: 0.5, nested: { ok: true, none: null } };
const text = JSON.stringify(data);
console.log(text);
const back = JSON.parse(text);
console.log(back.nested.ok === true, back.tags.length, JSON.stringify(back) === text);
"#;
    let report = javascript(code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "{\"name\":\"Ada\",\"tags\":[\"a\",\"b\"],\"ratio\":0.5,\"nested\":{\"ok\":true,\"none\":null}}\n\
         true 2 true\n",
    );
}

#[tokio::test]
async fn javascript_classes() {
    let code = r#"
class Shape {
  #id;
  static count = 0;
  constructor(id) { this.#id = id; Shape.count++; }
  get id() { return this.#id; }
  area() { return 0; }
  describe() { return `${this.constructor.name} ${this.id} area=${this.area()}`; }
}
class Rect extends Shape {
  constructor(id, w, h) { super(id); this.w = w; this.h = h; }
  area() { return this.w * this.h; }
}
console.log(new Rect("r1", 3, 4).describe());
console.log(new Shape("s1").describe(), Shape.count);
"#;
    let report = javascript(code).await;

    assert_ok(&report);
    assert_stdout(&report, "Rect r1 area=12\nShape s1 area=0 2\n");
}

#[tokio::test]
async fn javascript_regex() {
    let code = r#"
const text = "order 17 shipped 2025-03-09, order 23 shipped 2025-04-01";
const pattern = /order (?<id>\d+) shipped (?<date>\d{4}-\d{2}-\d{2})/g;
for (const match of text.matchAll(pattern)) console.log(match.groups.id, match.groups.date);
console.log("a1 b22".replace(/\d+/g, (digits) => String(Number(digits) * 2)));
console.log(/^\p{Lu}/u.test("Élan"));
"#;
    let report = javascript(code).await;

    assert_ok(&report);
    assert_stdout(&report, "17 2025-03-09\n23 2025-04-01\na2 b44\ntrue\n");
}

#[tokio::test]
async fn javascript_async_timers() {
    let code = r#"
const order = [];
const wait = (ms, name) => new Promise((resolve) => setTimeout(() => { order.push(name); resolve(name); }, ms));
async function main() {
  const results = await Promise.all([wait(50, "slow"), wait(10, "fast")]);
  console.log(results.join(","), order.join(","));
}
main();
"#;
    let report = javascript(code).await;

    assert_ok(&report);
    assert_stdout(&report, "slow,fast fast,slow\n");
}

#[tokio::test]
async fn javascript_top_level_await() {
    let code = r#"
const value = await new Promise((resolve) => setTimeout(() => resolve(41), 5));
value + 1
"#;
    let report = javascript(code).await;

    assert_ok(&report);
    assert_eq!(report.result.as_deref(), Some("42"));
}

#[tokio::test]
async fn javascript_final_expression() {
    let cases = [
        ("1 + 2", Some("3")),
        ("'text'", Some("'text'")),
        ("[1, 2, 3]", Some("[ 1, 2, 3 ]")),
        ("({ a: 1 })", Some("{ a: 1 }")),
        ("console.log('no value')", None),
        ("undefined", None),
    ];
    for (code, expected) in cases {
        let report = javascript(code).await;
        assert_ok(&report);
        assert_eq!(report.result.as_deref(), expected, "code: {code}");
    }
}

#[tokio::test]
async fn javascript_console_streams() {
    let report = javascript("console.log('out', 1);\nconsole.error('err', 2);").await;

    assert_ok(&report);
    assert_stdout(&report, "out 1\n");
    assert_eq!(stderr(&report), "err 2\n");
}

#[tokio::test]
async fn javascript_uncaught_error() {
    let code = "function inner() {\n  throw new TypeError('bad value 7');\n}\nfunction outer() { inner(); }\nouter();\n";
    let report = javascript(code).await;

    assert_outcome(&report, Outcome::Error);
    assert_eq!(report.exit_code, Some(1));
    let error = report.error.as_ref().expect("an uncaught error");
    assert_eq!(error.name, "TypeError");
    assert_eq!(error.message, "bad value 7");
    assert!(
        error.stack.starts_with("TypeError: bad value 7\n"),
        "stack: {}",
        error.stack
    );
    assert!(error.stack.contains("inner"), "stack: {}", error.stack);
    assert!(error.stack.contains("outer"), "stack: {}", error.stack);
    assert!(error.stack.contains("main.js"), "stack: {}", error.stack);
}

#[tokio::test]
async fn javascript_unhandled_rejection() {
    let report = javascript("Promise.reject(new RangeError('nope'));").await;

    assert_outcome(&report, Outcome::Error);
    let error = report.error.as_ref().expect("an unhandled rejection");
    assert_eq!(error.name, "RangeError");
    assert_eq!(error.message, "nope");
}

#[tokio::test]
async fn javascript_throw_non_error() {
    let report = javascript("throw 42;").await;

    assert_outcome(&report, Outcome::Error);
    let error = report.error.as_ref().expect("a thrown value");
    assert_eq!(error.message, "42");
}

#[tokio::test]
async fn javascript_text_codecs() {
    let code = r#"
const bytes = new TextEncoder().encode("héllo €");
console.log(bytes.length, Array.from(bytes).join(","));
console.log(new TextDecoder().decode(bytes));
try {
  new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff]));
  console.log("decoded");
} catch (error) {
  console.log(error.name);
}
"#;
    let report = javascript(code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "10 104,195,169,108,108,111,32,226,130,172\nhéllo €\nTypeError\n",
    );
}

#[tokio::test]
async fn javascript_fs_workspace() {
    let mut scratch = sandbox(Language::JavaScript);
    let code = r#"
fs.mkdirSync("/workspace/notes/deep", { recursive: true });
fs.writeFileSync("/workspace/notes/today.txt", "written by the guest\n");
fs.appendFileSync("notes/today.txt", "second line\n");
console.log(fs.readFileSync("notes/today.txt", "utf8").split("\n").length);
console.log(JSON.stringify(fs.readdirSync("/workspace/notes")));
console.log(fs.existsSync("/workspace/notes/today.txt"), fs.statSync("notes").isDirectory());
const node = require("node:fs");
console.log(node === fs, process.cwd());
"#;
    let report = scratch.run(code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "3\n[\"deep\",\"today.txt\"]\ntrue true\ntrue /workspace\n",
    );
    let written = std::fs::read_to_string(scratch.workspace.path().join("notes/today.txt"))
        .expect("the guest's file is on the host");
    assert_eq!(written, "written by the guest\nsecond line\n");
}

#[tokio::test]
async fn javascript_fs_missing_file() {
    let code = r#"
try {
  fs.readFileSync("absent.txt", "utf8");
} catch (error) {
  console.log(error.code, error.syscall, error.message);
}
"#;
    let report = javascript(code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "ENOENT open ENOENT: no such file or directory, open 'absent.txt'\n",
    );
}

#[tokio::test]
async fn javascript_process_exit() {
    let report =
        javascript("console.log('before');\nprocess.exit(3);\nconsole.log('after');").await;

    assert_outcome(&report, Outcome::Error);
    assert_eq!(report.exit_code, Some(3));
    assert!(report.error.is_none(), "report: {report:#?}");
    assert_stdout(&report, "before\n");
}

#[tokio::test]
async fn javascript_process_exit_zero() {
    let report = javascript("process.exit(0);").await;

    assert_ok(&report);
}

#[tokio::test]
async fn javascript_sandbox_keeps_globals() {
    let mut scratch = sandbox(Language::JavaScript);

    let first = scratch
        .run("var counter = 40;\nfunction bump(n) { return n + 1; }")
        .await;
    assert_ok(&first);

    let second = scratch.run("counter = bump(counter) + 1;\ncounter").await;
    assert_ok(&second);
    assert_eq!(second.result.as_deref(), Some("42"));
}

#[tokio::test]
async fn javascript_stack_overflow_catchable() {
    let code = r#"
function down(n) { return down(n + 1) + 1; }
try { down(0); } catch (error) { console.log(error.name); }
"#;
    let report = javascript(code).await;

    assert_ok(&report);
    assert_stdout(&report, "RangeError\n");
}

#[tokio::test]
async fn javascript_keeps_lexical_globals() {
    let mut scratch = sandbox(Language::JavaScript);

    let first = scratch
        .run("let base = 40;\nconst step = 1;\nclass Counter { next(n) { return n + step; } }")
        .await;
    assert_ok(&first);

    let second = scratch.run("new Counter().next(base) + step").await;
    assert_ok(&second);
    assert_eq!(second.result.as_deref(), Some("42"));
}

#[tokio::test]
async fn javascript_usable_after_error() {
    let mut scratch = sandbox(Language::JavaScript);

    let failed = scratch
        .run("globalThis.kept = 'yes';\nnull.property;")
        .await;
    assert_outcome(&failed, Outcome::Error);
    assert_eq!(
        failed.error.as_ref().map(|error| error.name.as_str()),
        Some("TypeError")
    );

    let exited = scratch.run("process.exit(2);").await;
    assert_eq!(exited.exit_code, Some(2));

    let report = scratch.run("kept").await;
    assert_ok(&report);
    assert_eq!(report.result.as_deref(), Some("'yes'"));
}
