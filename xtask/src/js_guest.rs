//! Builds the JavaScript guest component (QuickJS through rquickjs) for wasm32-wasip2 with Debian's clang standing in for a WASI SDK.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const TARGET: &str = "wasm32-wasip2";
const GUEST_DIR: &str = "guest-runtimes/javascript";
const TARGET_DIR: &str = "target/guest-javascript";
const WASI_SDK_DIR: &str = "target/wasi-sdk";
const COMPONENT_NAME: &str = "moat_guest_javascript.wasm";

/// Debian packages that provide the C compiler, archiver, linker and WASI
/// libc headers that rquickjs-sys needs.
const DEBIAN_PACKAGES: [&str; 4] = ["clang-16", "lld-16", "llvm-16", "wasi-libc"];
const INSTALL_COMMAND: &str = "apt-get install -y clang-16 lld-16 llvm-16 wasi-libc";

/// Host files each Debian package provides, checked before building.
const REQUIRED_FILES: [&str; 5] = [
    "/usr/bin/clang-16",
    "/usr/bin/llvm-ar-16",
    "/usr/bin/wasm-ld-16",
    "/usr/include/wasm32-wasi/stdio.h",
    "/usr/lib/wasm32-wasi/libc.a",
];

/// Builds the guest and returns the path of the component.
///
/// Installs the rustup target and the Debian packages when they are missing
/// (the packages only as root with apt-get present), creates the WASI SDK
/// stand-in under `target/wasi-sdk`, then runs cargo in the guest's
/// directory so its `.cargo/config.toml` applies.
pub fn build(workspace_root: &Path) -> Result<PathBuf> {
    ensure_rust_target()?;
    ensure_debian_packages()?;
    let wasi_sdk = workspace_root.join(WASI_SDK_DIR);
    create_wasi_sdk(&wasi_sdk)?;

    let guest_dir = workspace_root.join(GUEST_DIR);
    let target_dir = workspace_root.join(TARGET_DIR);
    let manifest = guest_dir.join("Cargo.toml");
    let status = Command::new(cargo())
        .current_dir(&guest_dir)
        .env("WASI_SDK", &wasi_sdk)
        .args(["build", "--release", "--locked", "--target", TARGET])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .with_context(|| format!("failed to run cargo build for {}", manifest.display()))?;
    if !status.success() {
        bail!("cargo build of {} failed with {status}", manifest.display());
    }

    let component = target_dir.join(TARGET).join("release").join(COMPONENT_NAME);
    if !component.is_file() {
        bail!(
            "cargo build succeeded but {} is missing",
            component.display()
        );
    }
    Ok(component)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

fn ensure_rust_target() -> Result<()> {
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("failed to run rustup target list --installed")?;
    if !output.status.success() {
        bail!(
            "rustup target list --installed failed with {}",
            output.status
        );
    }
    let installed = String::from_utf8_lossy(&output.stdout);
    if installed.lines().any(|line| line.trim() == TARGET) {
        return Ok(());
    }

    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .with_context(|| format!("failed to run rustup target add {TARGET}"))?;
    if !status.success() {
        bail!("rustup target add {TARGET} failed with {status}");
    }
    Ok(())
}

fn ensure_debian_packages() -> Result<()> {
    if REQUIRED_FILES.iter().all(|file| Path::new(file).exists()) {
        return Ok(());
    }

    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false);
    let has_apt = Path::new("/usr/bin/apt-get").exists();
    if !is_root || !has_apt {
        bail!(
            "missing C toolchain for the JavaScript guest ({}); run `{INSTALL_COMMAND}` as root",
            DEBIAN_PACKAGES.join(", ")
        );
    }

    let status = Command::new("apt-get")
        .args(["install", "-y"])
        .args(DEBIAN_PACKAGES)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .with_context(|| format!("failed to run `{INSTALL_COMMAND}`"))?;
    if !status.success() {
        bail!("`{INSTALL_COMMAND}` failed with {status}");
    }
    if let Some(missing) = REQUIRED_FILES.iter().find(|file| !Path::new(file).exists()) {
        bail!("{missing} is still missing after `{INSTALL_COMMAND}`");
    }
    Ok(())
}

/// Creates the directory layout rquickjs-sys 0.14 expects from a WASI SDK:
/// it runs `bin/clang` and `bin/ar` and passes
/// `--sysroot=share/wasi-sysroot`. Existing entries are replaced, so the
/// function is idempotent.
fn create_wasi_sdk(root: &Path) -> Result<()> {
    let bin = root.join("bin");
    let sysroot = root.join("share/wasi-sysroot");
    let sysroot_lib = sysroot.join("lib");
    for dir in [&bin, &sysroot_lib] {
        fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    }

    let clang = bin.join("clang");
    fs::write(&clang, "#!/bin/sh\nexec clang-16 \"$@\"\n")
        .with_context(|| format!("failed to write {}", clang.display()))?;
    fs::set_permissions(&clang, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("failed to make {} executable", clang.display()))?;

    replace_symlink(Path::new("/usr/bin/llvm-ar-16"), &bin.join("ar"))?;
    replace_symlink(Path::new("/usr/bin/wasm-ld-16"), &bin.join("wasm-ld"))?;
    replace_symlink(
        Path::new("/usr/include/wasm32-wasi"),
        &sysroot.join("include"),
    )?;
    // clang looks for libraries under lib/<target triple>; Debian ships one
    // wasi-libc build for both triples.
    replace_symlink(
        Path::new("/usr/lib/wasm32-wasi"),
        &sysroot_lib.join("wasm32-wasip2"),
    )?;
    replace_symlink(
        Path::new("/usr/lib/wasm32-wasi"),
        &sysroot_lib.join("wasm32-wasi"),
    )?;
    Ok(())
}

fn replace_symlink(original: &Path, link: &Path) -> Result<()> {
    if fs::read_link(link).is_ok_and(|current| current == original) {
        return Ok(());
    }
    if fs::symlink_metadata(link).is_ok() {
        fs::remove_file(link).with_context(|| format!("failed to remove {}", link.display()))?;
    }
    symlink(original, link).with_context(|| {
        format!(
            "failed to link {} to {}",
            link.display(),
            original.display()
        )
    })
}
