//! `moat run` on scripts that finish on their own: output, `--json`,
//! standard input, exit statuses and directories.

use crate::support::{
    finish, finish_with_stdin, json, moat_javascript, moat_python, script, tempdir,
};

#[test]
fn run_python_hello() {
    let dir = tempdir();
    let hello = script(dir.path(), "hello.py", "print('hello, moat')\n");

    let finished = finish(moat_python().arg("run").arg(&hello));

    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_eq!(finished.stdout, "hello, moat\n");
    assert_eq!(finished.stderr, "");
}

#[test]
fn run_python_with_byte_order_mark() {
    // Editors on Windows often save UTF-8 with a BOM; CPython accepts it.
    let dir = tempdir();
    let hello = script(dir.path(), "bom.py", "\u{feff}print('bom ok')\n");

    let finished = finish(moat_python().arg("run").arg(&hello));

    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_eq!(finished.stdout, "bom ok\n");
}

#[test]
fn run_javascript_hello() {
    let dir = tempdir();
    let hello = script(dir.path(), "hello.js", "console.log('hello, moat');\n");

    let finished = finish(moat_javascript().arg("run").arg(&hello));

    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_eq!(finished.stdout, "hello, moat\n");
    assert_eq!(finished.stderr, "");
}

#[test]
fn run_json_report() {
    let dir = tempdir();
    let path = script(
        dir.path(),
        "report.py",
        "import sys\nprint('out')\nprint('err', file=sys.stderr)\n6 * 7\n",
    );

    let finished = finish(moat_python().arg("run").arg("--json").arg(&path));

    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_eq!(finished.stderr, "");
    let report = json(&finished);
    let object = report.as_object().expect("the report is a JSON object");
    for key in [
        "stdout",
        "stderr",
        "result",
        "exit_code",
        "outcome",
        "duration_us",
        "fuel_used",
        "peak_memory_bytes",
        "stdout_truncated",
        "stderr_truncated",
    ] {
        assert!(object.contains_key(key), "missing key {key}: {report:#}");
    }
    assert_eq!(report["stdout"], "out\n");
    assert_eq!(report["stderr"], "err\n");
    assert_eq!(report["result"], "42");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["outcome"], "ok");
    assert_eq!(report["stdout_truncated"], false);
    assert_eq!(report["stderr_truncated"], false);
    assert!(report["duration_us"].is_u64(), "{report:#}");
    assert!(
        report["fuel_used"].as_u64().is_some_and(|fuel| fuel > 0),
        "{report:#}"
    );
    assert!(
        report["peak_memory_bytes"]
            .as_u64()
            .is_some_and(|bytes| bytes > 0),
        "{report:#}"
    );
}

#[test]
fn run_json_error() {
    let dir = tempdir();
    let path = script(dir.path(), "fails.py", "raise KeyError('missing')\n");

    let finished = finish(moat_python().arg("run").arg("--json").arg(&path));

    assert_eq!(finished.code, 1, "{finished:#?}");
    let report = json(&finished);
    assert_eq!(report["outcome"], "error");
    assert_eq!(report["exit_code"], 1);
    assert_eq!(report["error"]["name"], "KeyError");
    assert_eq!(report["error"]["message"], "'missing'");
}

#[test]
fn run_stdin_python() {
    let finished = finish_with_stdin(
        moat_python().args(["run", "-", "--lang", "python"]),
        b"print(6 * 7)\n",
    );

    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_eq!(finished.stdout, "42\n");
}

#[test]
fn run_stdin_javascript() {
    let finished = finish_with_stdin(
        moat_javascript().args(["run", "-", "--lang", "js"]),
        b"console.log(6 * 7)\n",
    );

    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_eq!(finished.stdout, "42\n");
}

#[test]
fn run_exception_exit_one() {
    let dir = tempdir();
    let path = script(
        dir.path(),
        "boom.py",
        "def go():\n    raise ValueError('boom')\ngo()\n",
    );

    let finished = finish(moat_python().arg("run").arg(&path));

    assert_eq!(finished.code, 1, "{finished:#?}");
    assert_eq!(finished.stdout, "");
    assert!(
        finished
            .stderr
            .starts_with("Traceback (most recent call last):\n"),
        "{finished:#?}"
    );
    assert!(
        finished.stderr.contains("File \"boom.py\", line 3"),
        "{finished:#?}"
    );
    assert!(
        finished.stderr.ends_with("ValueError: boom\n"),
        "{finished:#?}"
    );
}

#[test]
fn run_sys_exit_status() {
    let dir = tempdir();
    let path = script(dir.path(), "exit.py", "import sys\nsys.exit(7)\n");

    let finished = finish(moat_python().arg("run").arg(&path));

    assert_eq!(finished.code, 7, "{finished:#?}");
    assert_eq!(finished.stderr, "");
}

#[test]
fn run_process_exit_status() {
    let dir = tempdir();
    let path = script(dir.path(), "exit.js", "process.exit(9);\n");

    let finished = finish(moat_javascript().arg("run").arg(&path));

    assert_eq!(finished.code, 9, "{finished:#?}");
}

#[test]
fn run_dir_grant_read_only() {
    let dir = tempdir();
    let data = tempdir();
    std::fs::write(data.path().join("in.txt"), "granted text\n").expect("write a data file");
    let code = "print(open('/data/in.txt').read(), end='')\n\
                try:\n    open('/data/out.txt', 'w')\nexcept PermissionError:\n    print('read-only')\n";
    let path = script(dir.path(), "grant.py", code);
    let grant = format!("{}:/data:ro", data.path().display());

    let finished = finish(moat_python().arg("run").arg(&path).args(["--dir", &grant]));

    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_eq!(finished.stdout, "granted text\nread-only\n");
    assert!(!data.path().join("out.txt").exists());
}

#[test]
fn run_environment_hidden() {
    let dir = tempdir();
    let path = script(dir.path(), "env.py", "import os\nprint(dict(os.environ))\n");

    let finished = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .env("MOAT_TEST_CANARY", "canary-value-8731"),
    );

    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_eq!(finished.stdout, "{}\n");
}

#[test]
fn run_workspace_keeps_files() {
    let dir = tempdir();
    let workspace = tempdir();
    let path = script(
        dir.path(),
        "write.py",
        "open('result.txt', 'w').write('kept')\n",
    );

    let finished = finish(
        moat_python()
            .arg("run")
            .arg(&path)
            .arg("--workspace")
            .arg(workspace.path()),
    );

    assert_eq!(finished.code, 0, "{finished:#?}");
    let kept = std::fs::read_to_string(workspace.path().join("result.txt")).expect("read back");
    assert_eq!(kept, "kept");
}
