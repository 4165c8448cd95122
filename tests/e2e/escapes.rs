//! Attempts to reach the host beyond the granted directories, each of which
//! must fail with the asserted error.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;

use moat_runtime::Language;
use tempfile::TempDir;

use crate::support::{
    Scratch, assert_ok, assert_stdout, grant, guest_dir, python, sandbox, sandbox_with,
};

/// Python code that tries to open `path` for reading and prints the outcome.
fn python_open(path: &str) -> String {
    format!(
        "try:\n    print(open({path:?}).read())\nexcept OSError as error:\n    \
         print(type(error).__name__, error.errno)\n"
    )
}

/// JavaScript code that tries to read `path` and prints the outcome.
fn javascript_open(path: &str) -> String {
    format!(
        "try {{ console.log(fs.readFileSync({path:?}, 'utf8')); }} \
         catch (error) {{ console.log(error.code, error.message); }}"
    )
}

/// A host directory holding a secret file, to be pointed at from inside a
/// grant, and a granted directory next to it.
struct HostTree {
    _root: TempDir,
    granted: std::path::PathBuf,
    secret: std::path::PathBuf,
}

fn host_tree() -> HostTree {
    let root = tempfile::tempdir().expect("create a host tree");
    let granted = root.path().join("granted");
    let outside = root.path().join("outside");
    std::fs::create_dir(&granted).expect("create the granted dir");
    std::fs::create_dir(&outside).expect("create the outside dir");
    let secret = outside.join("secret.txt");
    std::fs::write(&secret, "host secret\n").expect("write the secret");
    std::fs::write(granted.join("inside.txt"), "inside\n").expect("write a granted file");
    HostTree {
        _root: root,
        granted,
        secret,
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).expect("create a symlink");
}

/// Creates a sandbox with `tree.granted` at `/data`, which contains symlinks to the
/// secret: absolute, relative, and to its directory.
#[cfg(unix)]
fn sandbox_with_links(language: Language, tree: &HostTree, read_only: bool) -> Scratch {
    let outside = tree.secret.parent().expect("the secret has a parent");
    symlink(&tree.secret, &tree.granted.join("absolute"));
    symlink(
        Path::new("../outside/secret.txt"),
        &tree.granted.join("relative"),
    );
    symlink(outside, &tree.granted.join("dir"));
    sandbox_with(language, vec![grant(&tree.granted, "/data", read_only)])
}

#[tokio::test]
async fn python_dotdot_rejected() {
    for path in [
        "/workspace/../etc/passwd",
        "../etc/passwd",
        "/workspace/../../../etc/passwd",
    ] {
        let report = python(&python_open(path)).await;

        assert_ok(&report);
        assert_stdout(&report, "PermissionError 63\n");
    }
}

#[tokio::test]
async fn python_absolute_path_absent() {
    for path in ["/etc/passwd", "/proc/self/environ", "/root/.ssh/id_rsa"] {
        let report = python(&python_open(path)).await;

        assert_ok(&report);
        assert_stdout(&report, "FileNotFoundError 44\n");
    }
}

#[tokio::test]
async fn python_guest_dir_not_granted() {
    // The directory that contains the guest itself is a real host path.
    let path = guest_dir().join("python.wasm");
    let report = python(&python_open(&path.display().to_string())).await;

    assert_ok(&report);
    assert_stdout(&report, "FileNotFoundError 44\n");
}

#[cfg(unix)]
#[tokio::test]
async fn python_symlink_out_rejected() {
    let tree = host_tree();
    let mut scratch = sandbox_with_links(Language::Python, &tree, true);

    let code = format!(
        "{}{}{}{}",
        python_open("/data/inside.txt"),
        python_open("/data/absolute"),
        python_open("/data/relative"),
        python_open("/data/dir/secret.txt"),
    );
    let report = scratch.run(&code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "inside\n\nPermissionError 63\nPermissionError 63\nPermissionError 63\n",
    );
}

#[tokio::test]
async fn python_read_only_write_rejected() {
    let tree = host_tree();
    let mut scratch = sandbox_with(Language::Python, vec![grant(&tree.granted, "/data", true)]);
    let code = r#"
import os
attempts = [
    ("create", lambda: open("/data/new.txt", "w")),
    ("overwrite", lambda: open("/data/inside.txt", "w")),
    ("append", lambda: open("/data/inside.txt", "a")),
    ("remove", lambda: os.remove("/data/inside.txt")),
    ("rename", lambda: os.rename("/data/inside.txt", "/data/moved.txt")),
    ("mkdir", lambda: os.mkdir("/data/sub")),
    ("move out", lambda: os.rename("/data/inside.txt", "/workspace/taken.txt")),
    ("hard link out", lambda: os.link("/data/inside.txt", "/workspace/linked.txt")),
    ("truncate", lambda: os.truncate("/data/inside.txt", 0)),
    ("utime", lambda: os.utime("/data/inside.txt", (0, 0))),
    ("via workspace", lambda: open("/workspace/../data/inside.txt", "a")),
]
for name, attempt in attempts:
    try:
        attempt()
        print(name, "succeeded")
    except PermissionError as error:
        print(name, "PermissionError", error.errno)
print(open("/data/inside.txt").read(), end="")
"#;
    let report = scratch.run(code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "create PermissionError 63\noverwrite PermissionError 63\nappend PermissionError 63\n\
         remove PermissionError 63\nrename PermissionError 63\nmkdir PermissionError 63\n\
         move out PermissionError 63\nhard link out PermissionError 63\n\
         truncate PermissionError 63\nutime PermissionError 63\nvia workspace PermissionError 63\n\
         inside\n",
    );
    let names: Vec<_> = std::fs::read_dir(&tree.granted)
        .expect("list the granted dir")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, ["inside.txt"]);
    let inside = std::fs::read_to_string(tree.granted.join("inside.txt")).expect("read back");
    assert_eq!(inside, "inside\n");
    assert!(!scratch.workspace.path().join("taken.txt").exists());
    assert!(!scratch.workspace.path().join("linked.txt").exists());
}

#[cfg(unix)]
#[tokio::test]
async fn python_planted_symlink_rejected() {
    // A link the guest leaves in a kept workspace is followed by whatever
    // host tool reads that directory next, outside the sandbox.
    let mut scratch = sandbox(Language::Python);
    let code = r#"
import os
for target in ["/etc/passwd", "../../../../../etc/passwd", "inside/../../escape"]:
    try:
        os.symlink(target, "/workspace/link")
        print(target, "created")
        os.remove("/workspace/link")
    except OSError as error:
        print(target, type(error).__name__, error.errno)
"#;
    let report = scratch.run(code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "/etc/passwd PermissionError 63\n../../../../../etc/passwd PermissionError 63\n\
         inside/../../escape PermissionError 63\n",
    );
}

#[cfg(unix)]
#[tokio::test]
async fn python_symlink_inside_rejected() {
    // Creating any symlink is refused, even one that stays inside the
    // workspace, because a relative target cannot be checked safely.
    let mut scratch = sandbox(Language::Python);
    let code = r#"
import os
os.mkdir("/workspace/sub")
open("/workspace/sub/file.txt", "w").write("content")
try:
    os.symlink("sub/file.txt", "/workspace/link")
except OSError as error:
    print(type(error).__name__, error.errno)
print(sorted(os.listdir("/workspace")))
"#;
    let report = scratch.run(code).await;

    assert_ok(&report);
    assert_stdout(&report, "PermissionError 63\n['sub']\n");
}

#[tokio::test]
async fn python_socket_rejected() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    listener
        .set_nonblocking(true)
        .expect("make the listener non-blocking");
    let port = listener.local_addr().expect("listener address").port();

    let code = format!(
        r#"
import socket, urllib.request
def connect_raw():
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.connect(("127.0.0.1", {port}))
attempts = [
    ("tcp", connect_raw),
    ("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)),
    ("create_connection", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2)),
    ("getaddrinfo", lambda: socket.getaddrinfo("localhost", {port})),
    ("urlopen", lambda: urllib.request.urlopen("http://127.0.0.1:{port}/", timeout=2)),
]
for name, attempt in attempts:
    try:
        attempt()
        print(name, "succeeded")
    except OSError as error:
        print(name, type(error).__name__, error)
"#
    );
    let report = python(&code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "tcp PermissionError [Errno 2] Permission denied\n\
         udp PermissionError [Errno 2] Permission denied\n\
         create_connection gaierror [Errno -4] Non-recoverable error\n\
         getaddrinfo gaierror [Errno -4] Non-recoverable error\n\
         urlopen _DeniedURLError <urlopen error network access is denied: this sandbox has no \
         egress policy, so no host can be reached>\n",
    );
    match listener.accept() {
        Ok((_, peer)) => panic!("the guest reached the listener from {peer}"),
        Err(error) => assert_eq!(error.kind(), ErrorKind::WouldBlock, "accept: {error}"),
    }
}

#[tokio::test]
async fn python_environment_empty() {
    assert!(
        std::env::var_os("PATH").is_some(),
        "the host has a PATH to hide"
    );
    let report = python("import os\nprint(dict(os.environ))\nprint(os.getenv('PATH'))").await;

    assert_ok(&report);
    assert_stdout(&report, "{}\nNone\n");
}

#[tokio::test]
async fn python_only_granted_dirs() {
    let tree = host_tree();
    let mut scratch = sandbox_with(Language::Python, vec![grant(&tree.granted, "/data", true)]);
    let code = r#"
import os
for path in ["/workspace", "/data", "/", "/etc", "/tmp", "/home", "/usr", "/proc", "/dev"]:
    print(path, os.path.exists(path))
"#;
    let report = scratch.run(code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "/workspace True\n/data True\n/ False\n/etc False\n/tmp False\n/home False\n\
         /usr False\n/proc False\n/dev False\n",
    );
}

#[tokio::test]
async fn javascript_dotdot_rejected() {
    for path in ["/workspace/../etc/passwd", "../etc/passwd"] {
        let report = crate::support::javascript(&javascript_open(path)).await;

        assert_ok(&report);
        assert_stdout(
            &report,
            &format!("EPERM EPERM: operation not permitted, open '{path}'\n"),
        );
    }
}

#[tokio::test]
async fn javascript_absolute_path_absent() {
    let report = crate::support::javascript(&javascript_open("/etc/passwd")).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "ENOENT ENOENT: no such file or directory, open '/etc/passwd'\n",
    );
}

#[cfg(unix)]
#[tokio::test]
async fn javascript_symlink_out_rejected() {
    let tree = host_tree();
    let mut scratch = sandbox_with_links(Language::JavaScript, &tree, true);
    let code = ["/data/absolute", "/data/relative", "/data/dir/secret.txt"]
        .map(javascript_open)
        .join("\n");

    let report = scratch.run(&code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "EPERM EPERM: operation not permitted, open '/data/absolute'\n\
         EPERM EPERM: operation not permitted, open '/data/relative'\n\
         EPERM EPERM: operation not permitted, open '/data/dir/secret.txt'\n",
    );
}

#[tokio::test]
async fn javascript_read_only_write_rejected() {
    let tree = host_tree();
    let mut scratch = sandbox_with(
        Language::JavaScript,
        vec![grant(&tree.granted, "/data", true)],
    );
    let code = r#"
for (const [name, attempt] of [
  ["create", () => fs.writeFileSync("/data/new.txt", "x")],
  ["overwrite", () => fs.writeFileSync("/data/inside.txt", "x")],
  ["append", () => fs.appendFileSync("/data/inside.txt", "x")],
  ["remove", () => fs.unlinkSync("/data/inside.txt")],
  ["mkdir", () => fs.mkdirSync("/data/sub")],
]) {
  try {
    attempt();
    console.log(name, "succeeded");
  } catch (error) {
    console.log(name, error.code);
  }
}
"#;
    let report = scratch.run(code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "create EPERM\noverwrite EPERM\nappend EPERM\nremove EPERM\nmkdir EPERM\n",
    );
    let inside = std::fs::read_to_string(tree.granted.join("inside.txt")).expect("read back");
    assert_eq!(inside, "inside\n");
    assert!(!tree.granted.join("new.txt").exists());
}

#[tokio::test]
async fn javascript_environment_empty() {
    let report = crate::support::javascript("console.log(JSON.stringify(process.env))").await;

    assert_ok(&report);
    assert_stdout(&report, "{}\n");
}

#[tokio::test]
async fn javascript_only_granted_dirs() {
    let tree = host_tree();
    let mut scratch = sandbox_with(
        Language::JavaScript,
        vec![grant(&tree.granted, "/data", true)],
    );
    let code = r#"
for (const path of ["/workspace", "/data", "/", "/etc", "/tmp", "/proc"]) {
  console.log(path, fs.existsSync(path));
}
"#;
    let report = scratch.run(code).await;

    assert_ok(&report);
    assert_stdout(
        &report,
        "/workspace true\n/data true\n/ false\n/etc false\n/tmp false\n/proc false\n",
    );
}

#[tokio::test]
async fn workspace_is_per_sandbox() {
    let mut first = sandbox(Language::Python);
    let mut second = sandbox(Language::Python);

    assert_ok(
        &first
            .run("open('/workspace/mine.txt', 'w').write('first')")
            .await,
    );
    let report = second
        .run("import os\nprint(os.listdir('/workspace'))")
        .await;

    assert_ok(&report);
    assert_stdout(&report, "[]\n");
}
