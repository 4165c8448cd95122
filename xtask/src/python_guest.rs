//! Builds the Python guest: CPython packaged by componentize-py, with the
//! modules in `guest-runtimes/python/modules.txt` baked into its snapshot.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::util::{file_sha256, run};

/// Python used to create the build tools' virtual environment.
const HOST_PYTHON: &str = "python3";

/// Builds `target/guest-python/python.wasm` unless its inputs are unchanged
/// since the last build, and returns its path.
pub fn build(root: &Path) -> anyhow::Result<PathBuf> {
    let source = root.join("guest-runtimes/python");
    let wit = root.join("guest-runtimes/wit");
    let out_dir = root.join("target/guest-python");
    let output = out_dir.join("python.wasm");
    let stamp = out_dir.join("inputs.sha256");

    let fingerprint = fingerprint(&[
        source.join("app.py"),
        source.join("moat_http.py"),
        source.join("modules.txt"),
        source.join("requirements-build.txt"),
        source.join("requirements-guest.txt"),
        wit.join("moat.wit"),
    ])?;
    if output.is_file()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(fingerprint.as_str())
    {
        return Ok(output);
    }

    let venv = root.join("target/guest-tools/venv");
    let componentize = install_build_tools(&venv, &source.join("requirements-build.txt"))?;

    let site = out_dir.join("site");
    if site.exists() {
        std::fs::remove_dir_all(&site)
            .with_context(|| format!("failed to clear {}", site.display()))?;
    }
    let pip = venv.join("bin/pip");
    run(
        std::process::Command::new(&pip)
            .args([
                "install",
                "--quiet",
                "--no-deps",
                "--require-hashes",
                // Pure-Python wheels for the guest's CPython, never the
                // host's compiled ones: the hashes pin exactly those files.
                "--only-binary=:all:",
                "--implementation",
                "py",
                "--abi",
                "none",
                "--platform",
                "any",
                "--python-version",
                "3.14",
                "--target",
            ])
            .arg(&site)
            .arg("-r")
            .arg(source.join("requirements-guest.txt")),
        "install the packages baked into the Python guest",
    )?;

    println!("building the Python guest with componentize-py (about 20 s)");
    run(
        std::process::Command::new(&componentize)
            .arg("--wit-path")
            .arg(&wit)
            .args(["--world", "interpreter", "componentize", "--python-path"])
            .arg(&source)
            .arg("--python-path")
            .arg(&site)
            .arg("app")
            .arg("--output")
            .arg(&output),
        "build the Python guest with componentize-py",
    )?;

    std::fs::write(&stamp, &fingerprint)
        .with_context(|| format!("failed to write {}", stamp.display()))?;
    Ok(output)
}

/// Creates the virtual environment with the pinned componentize-py, and
/// returns the path of its `componentize-py` program.
fn install_build_tools(venv: &Path, requirements: &Path) -> anyhow::Result<PathBuf> {
    let componentize = venv.join("bin/componentize-py");
    let installed = venv.join("installed-requirements.sha256");
    let wanted = file_sha256(requirements)?;
    if componentize.is_file()
        && std::fs::read_to_string(&installed).ok().as_deref() == Some(wanted.as_str())
    {
        return Ok(componentize);
    }

    if which(HOST_PYTHON).is_none() {
        bail!(
            "{HOST_PYTHON} was not found on PATH: install Python 3.9 or later (on Debian: apt-get install -y python3 python3-venv)"
        );
    }
    println!(
        "creating {} with the pinned componentize-py",
        venv.display()
    );
    run(
        std::process::Command::new(HOST_PYTHON)
            .args(["-m", "venv", "--clear"])
            .arg(venv),
        "create the virtual environment for the guest build tools (on Debian: apt-get install -y python3-venv)",
    )?;
    run(
        std::process::Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--require-hashes", "-r"])
            .arg(requirements),
        "install componentize-py into the virtual environment",
    )?;
    std::fs::write(&installed, wanted)
        .with_context(|| format!("failed to write {}", installed.display()))?;
    Ok(componentize)
}

/// SHA-256 over the contents of `files`, in order.
fn fingerprint(files: &[PathBuf]) -> anyhow::Result<String> {
    let mut combined = String::new();
    for file in files {
        combined.push_str(&file_sha256(file)?);
        combined.push('\n');
    }
    Ok(crate::util::sha256_hex(combined.as_bytes()))
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
