//! Python programs that use the baked standard library, checked by output.

use moat_runtime::Language;

use crate::support::{
    assert_ok, assert_stdout, fixtures_dir, grant, python, sandbox, sandbox_with, stdout,
};

#[tokio::test]
async fn python_hello() {
    let report = python("print('hello from python')").await;

    assert_ok(&report);
    assert_stdout(&report, "hello from python\n");
    assert_eq!(report.result, None);
    assert!(!report.stdout_truncated);
    assert!(
        report.stderr.is_empty(),
        "stderr: {:?}",
        String::from_utf8_lossy(&report.stderr)
    );
}

#[tokio::test]
async fn python_json_round_trip() {
    let code = r#"
import json
data = {"name": "Ada", "tags": ["a", "b"], "ratio": 0.5, "nested": {"ok": True, "none": None}}
text = json.dumps(data, sort_keys=True)
print(text)
print(json.loads(text) == data)
"#;
    let report = python(code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "{\"name\": \"Ada\", \"nested\": {\"none\": null, \"ok\": true}, \"ratio\": 0.5, \
         \"tags\": [\"a\", \"b\"]}\nTrue\n",
    );
}

#[tokio::test]
async fn python_csv_fixture() {
    let mut scratch = sandbox_with(
        Language::Python,
        vec![grant(&fixtures_dir(), "/fixtures", true)],
    );
    let code = r#"
import csv
from decimal import Decimal
with open("/fixtures/prices.csv", newline="", encoding="utf-8") as source:
    rows = list(csv.DictReader(source))
print(len(rows))
print(rows[2]["name"])
print(sum(Decimal(r["unit_price"]) * int(r["quantity"]) for r in rows))
"#;
    let report = scratch.run(code).await;

    assert_ok(&report);
    assert_stdout(&report, "4\nMug, large\n258.97\n");
}

#[tokio::test]
async fn python_sqlite_sum() {
    let code = r#"
import sqlite3
db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, value INTEGER)")
db.executemany("INSERT INTO t (value) VALUES (?)", ((i * 3,) for i in range(50_000)))
db.commit()
print(db.execute("SELECT COUNT(*), SUM(value) FROM t").fetchone())
"#;
    let report = python(code).await;

    // 3 * (0 + 1 + ... + 49,999) = 3 * 49,999 * 50,000 / 2
    assert_ok(&report);
    assert_stdout(&report, "(50000, 3749925000)\n");
}

#[tokio::test]
async fn python_decimal_exact() {
    let code = r#"
from decimal import Decimal, getcontext
print(Decimal("0.1") + Decimal("0.2") == Decimal("0.3"))
print(0.1 + 0.2 == 0.3)
getcontext().prec = 50
print(Decimal(1) / Decimal(7))
"#;
    let report = python(code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "True\nFalse\n0.14285714285714285714285714285714285714285714285714\n",
    );
}

#[tokio::test]
async fn python_zoneinfo_offset() {
    let code = r#"
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
london = ZoneInfo("Europe/London")
summer = datetime(2025, 7, 15, 12, 0, tzinfo=london)
winter = datetime(2025, 1, 15, 12, 0, tzinfo=london)
print(summer.isoformat())
print(winter.utcoffset())
print((summer + timedelta(days=1)).strftime("%Y-%m-%d %Z"))
"#;
    let report = python(code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "2025-07-15T12:00:00+01:00\n0:00:00\n2025-07-16 BST\n",
    );
}

#[tokio::test]
async fn python_re_groups() {
    let code = r#"
import re
text = "order 17 shipped 2025-03-09, order 23 shipped 2025-04-01"
pattern = re.compile(r"order (?P<id>\d+) shipped (?P<date>\d{4}-\d{2}-\d{2})")
print([m.groupdict() for m in pattern.finditer(text)])
print(re.sub(r"(\d+)", lambda m: str(int(m.group(1)) * 2), "a1 b22"))
"#;
    let report = python(code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "[{'id': '17', 'date': '2025-03-09'}, {'id': '23', 'date': '2025-04-01'}]\na2 b44\n",
    );
}

#[tokio::test]
async fn python_statistics() {
    let code = r#"
import statistics
data = [2, 4, 4, 4, 5, 5, 7, 9]
print(statistics.mean(data), statistics.median(data), statistics.mode(data))
print(statistics.pstdev(data))
"#;
    let report = python(code).await;

    assert_ok(&report);
    assert_stdout(&report, "5 4.5 4\n2.0\n");
}

#[tokio::test]
async fn python_asyncio_gather() {
    let code = r#"
import asyncio
order = []
async def job(name, delay):
    await asyncio.sleep(delay)
    order.append(name)
    return name.upper()
async def main():
    return await asyncio.gather(job("slow", 0.05), job("fast", 0.01))
print(asyncio.run(main()))
print(order)
"#;
    let report = python(code).await;

    assert_ok(&report);
    assert_stdout(&report, "['SLOW', 'FAST']\n['fast', 'slow']\n");
}

#[tokio::test]
async fn python_top_level_await() {
    let code = r#"
import asyncio
await asyncio.sleep(0.01)
value = await asyncio.gather(asyncio.sleep(0, "a"), asyncio.sleep(0, "b"))
value
"#;
    let report = python(code).await;

    assert_ok(&report);
    assert_eq!(report.result.as_deref(), Some("['a', 'b']"));
}

#[tokio::test]
async fn python_result_is_repr() {
    let cases = [
        ("1 + 2", Some("3")),
        ("'text'", Some("'text'")),
        (
            "x = {'a': [1, 2.5, None]}\nx",
            Some("{'a': [1, 2.5, None]}"),
        ),
        ("print('no value')", None),
        ("None", None),
        ("y = 5", None),
    ];
    for (code, expected) in cases {
        let report = python(code).await;
        assert_ok(&report);
        assert_eq!(report.result.as_deref(), expected, "code: {code}");
    }
}

#[tokio::test]
async fn python_sandbox_keeps_globals() {
    let mut scratch = sandbox(Language::Python);

    let first = scratch
        .run("import math\ncounter = 40\ndef bump(n):\n    return n + 1")
        .await;
    assert_ok(&first);

    let second = scratch
        .run("counter = bump(counter) + 1\nprint(math.floor(2.7))\ncounter")
        .await;
    assert_ok(&second);
    assert_eq!(second.result.as_deref(), Some("42"));
    assert_eq!(stdout(&second), "2\n");
}

#[tokio::test]
async fn python_workspace_files() {
    let mut scratch = sandbox(Language::Python);
    let code = r#"
import os, pathlib
print(os.getcwd())
pathlib.Path("notes/today.txt").parent.mkdir()
pathlib.Path("notes/today.txt").write_text("written by the guest\n")
print(sorted(os.listdir("/workspace")))
"#;
    let report = scratch.run(code).await;

    assert_ok(&report);
    assert_stdout(&report, "/workspace\n['notes']\n");
    let written = std::fs::read_to_string(scratch.workspace.path().join("notes/today.txt"))
        .expect("the guest's file is on the host");
    assert_eq!(written, "written by the guest\n");
}
