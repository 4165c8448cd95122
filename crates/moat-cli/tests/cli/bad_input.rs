//! Invalid input to `moat run`: each exits with 125, prints nothing on
//! stdout, and names the problem on stderr.

use crate::support::{Finished, finish, finish_with_stdin, moat, script, tempdir};

/// Fails the test unless `finished` is a moat error with exactly `message`.
#[track_caller]
fn assert_moat_error(finished: &Finished, message: &str) {
    assert_eq!(finished.code, 125, "{finished:#?}");
    assert_eq!(finished.stdout, "", "{finished:#?}");
    assert_eq!(finished.stderr, format!("moat: error: {message}\n"));
}

/// Fails the test unless `finished` is a command-line error from the
/// argument parser that contains each of `parts`.
#[track_caller]
fn assert_usage_error(finished: &Finished, parts: &[&str]) {
    assert_eq!(finished.code, 125, "{finished:#?}");
    assert_eq!(finished.stdout, "", "{finished:#?}");
    assert!(finished.stderr.starts_with("error: "), "{finished:#?}");
    for part in parts {
        assert!(
            finished.stderr.contains(part),
            "missing {part:?}: {}",
            finished.stderr
        );
    }
}

#[test]
fn bad_input_missing_file() {
    let dir = tempdir();
    let path = dir.path().join("absent.py");

    let finished = finish(moat().arg("run").arg(&path));

    assert_moat_error(
        &finished,
        &format!(
            "failed to read script {}: No such file or directory (os error 2)",
            path.display()
        ),
    );
}

#[test]
fn bad_input_unknown_extension() {
    let dir = tempdir();
    let path = script(dir.path(), "script.rb", "puts 1\n");

    let finished = finish(moat().arg("run").arg(&path));

    assert_moat_error(
        &finished,
        &format!(
            "cannot tell the language of {}: the extension \"rb\" is not .py or .js; \
             pass --lang python or --lang javascript",
            path.display()
        ),
    );
}

#[test]
fn bad_input_no_extension() {
    let dir = tempdir();
    let path = script(dir.path(), "script", "print(1)\n");

    let finished = finish(moat().arg("run").arg(&path));

    assert_moat_error(
        &finished,
        &format!(
            "cannot tell the language of {}: the extension \"\" is not .py or .js; \
             pass --lang python or --lang javascript",
            path.display()
        ),
    );
}

#[test]
fn bad_input_not_utf8() {
    let dir = tempdir();
    let path = script(dir.path(), "latin1.py", b"print('caf\xe9')\n");

    let finished = finish(moat().arg("run").arg(&path));

    assert_moat_error(
        &finished,
        &format!(
            "script {} is not valid UTF-8 (invalid byte at offset 10): moat runs source text only",
            path.display()
        ),
    );
}

#[test]
fn bad_input_zero_timeout() {
    let dir = tempdir();
    let path = script(dir.path(), "ok.py", "print(1)\n");

    let finished = finish(moat().arg("run").arg(&path).args(["--timeout", "0"]));

    assert_moat_error(
        &finished,
        "invalid timeout limit: must be greater than zero",
    );
}

#[test]
fn bad_input_zero_fuel() {
    let dir = tempdir();
    let path = script(dir.path(), "ok.py", "print(1)\n");

    let finished = finish(moat().arg("run").arg(&path).args(["--fuel", "0"]));

    assert_moat_error(&finished, "invalid fuel limit: must be greater than zero");
}

#[test]
fn bad_input_memory_unit() {
    let dir = tempdir();
    let path = script(dir.path(), "ok.py", "print(1)\n");

    let finished = finish(moat().arg("run").arg(&path).args(["--memory", "12parsecs"]));

    assert_usage_error(
        &finished,
        &[
            "invalid value '12parsecs' for '--memory <SIZE>'",
            "invalid size \"12parsecs\": unknown unit \"parsecs\", \
             expected B, KiB, MiB, GiB, KB, MB or GB",
        ],
    );
}

#[test]
fn bad_input_timeout_unit() {
    let dir = tempdir();
    let path = script(dir.path(), "ok.py", "print(1)\n");

    let finished = finish(moat().arg("run").arg(&path).args(["--timeout", "5d"]));

    assert_usage_error(
        &finished,
        &[
            "invalid value '5d' for '--timeout <DURATION>'",
            "unknown unit \"d\"",
        ],
    );
}

#[test]
fn bad_input_dir_missing() {
    let dir = tempdir();
    let path = script(dir.path(), "ok.py", "print(1)\n");
    let absent = dir.path().join("no-such-dir");
    let grant = format!("{}:/data", absent.display());

    let finished = finish(moat().arg("run").arg(&path).args(["--dir", &grant]));

    assert_moat_error(
        &finished,
        &format!(
            "failed to open host directory {} for the guest: No such file or directory (os error 2)",
            absent.display()
        ),
    );
}

#[test]
fn bad_input_dir_without_guest_path() {
    let dir = tempdir();
    let path = script(dir.path(), "ok.py", "print(1)\n");
    let host = dir.path().display().to_string();

    let finished = finish(moat().arg("run").arg(&path).args(["--dir", &host]));

    assert_usage_error(
        &finished,
        &[
            "for '--dir <HOST:GUEST[:ro]>'",
            &format!(
                "invalid directory grant {host:?}: expected HOST:GUEST or HOST:GUEST:ro, \
                 such as ./data:/data:ro"
            ),
        ],
    );
}

#[test]
fn bad_input_dir_relative_guest_path() {
    let dir = tempdir();
    let path = script(dir.path(), "ok.py", "print(1)\n");
    let grant = format!("{}:data", dir.path().display());

    let finished = finish(moat().arg("run").arg(&path).args(["--dir", &grant]));

    assert_moat_error(
        &finished,
        &format!(
            "invalid guest path \"data\" for host directory {}: must be absolute, such as /data",
            dir.path().display()
        ),
    );
}

#[test]
fn bad_input_dir_over_workspace() {
    let dir = tempdir();
    let path = script(dir.path(), "ok.py", "print(1)\n");
    let grant = format!("{}:/workspace/data", dir.path().display());

    let finished = finish(moat().arg("run").arg(&path).args(["--dir", &grant]));

    assert_moat_error(
        &finished,
        &format!(
            "invalid guest path \"/workspace/data\" for host directory {}: \
             overlaps /workspace, which is already mounted; choose another guest path",
            dir.path().display()
        ),
    );
}

#[test]
fn bad_input_stdin_without_lang() {
    let finished = finish_with_stdin(moat().args(["run", "-"]), b"print(1)\n");

    assert_moat_error(
        &finished,
        "reading the script from standard input needs --lang python or --lang javascript",
    );
}

#[test]
fn bad_input_unknown_lang() {
    let finished = finish_with_stdin(moat().args(["run", "-", "--lang", "ruby"]), b"puts 1\n");

    assert_usage_error(
        &finished,
        &[
            "invalid value 'ruby' for '--lang <LANG>'",
            "unknown language \"ruby\": expected python (py) or javascript (js)",
        ],
    );
}
