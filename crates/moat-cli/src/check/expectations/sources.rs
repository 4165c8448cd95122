//! Reads the host files that expectations name with `stdin_file` and an
//! input's `source`, confined to the expectations file's directory.

use std::path::{Component, Path, PathBuf};

use toml::Spanned;

use super::Source;

/// Reads the host file that `key` (`stdin_file` or `source`) names, and
/// adds its canonical path to `read`.
///
/// Expectations files sit beside model-written scripts and may be written by
/// the same model, so they get no more of the host than their own directory.
/// The path must be relative and without `..`. Its canonical path, with
/// every symlink resolved, must be a regular file inside the canonical
/// directory of the expectations file.
pub(super) fn read_source(
    source: &Source<'_>,
    key: &str,
    file: &Spanned<String>,
    read: &mut Vec<PathBuf>,
) -> anyhow::Result<Vec<u8>> {
    let named = Path::new(file.get_ref());
    let base = match source.base_dir() {
        dir if dir.as_os_str().is_empty() => Path::new("."),
        dir => dir,
    };
    let error = |problem: String| {
        source.error(
            file.span().start,
            format!(
                "invalid `{key}` {:?}: {problem}; an expectations file may read only files \
                 in its own directory ({}) and below, named by a relative path, so copy the \
                 file there",
                file.get_ref(),
                base.display()
            ),
        )
    };

    let has_prefix = named
        .components()
        .any(|component| matches!(component, Component::Prefix(_)));
    if named.is_absolute() || named.has_root() || has_prefix {
        return Err(error("it is an absolute path".to_owned()));
    }
    if named
        .components()
        .any(|component| component == Component::ParentDir)
    {
        return Err(error("it has a `..` component".to_owned()));
    }

    let path = base.join(named);
    let failed = |error: std::io::Error| {
        source.error(
            file.span().start,
            format!("failed to read {}: {error}", path.display()),
        )
    };
    let canonical_base = std::fs::canonicalize(base).map_err(failed)?;
    let canonical = std::fs::canonicalize(&path).map_err(failed)?;
    if !canonical.starts_with(&canonical_base) {
        return Err(error(format!(
            "it resolves to {}, outside that directory",
            canonical.display()
        )));
    }
    // Checked before opening: opening a FIFO for reading would block.
    let metadata = std::fs::metadata(&canonical).map_err(failed)?;
    if !metadata.is_file() {
        return Err(error("it is not a regular file".to_owned()));
    }
    let bytes = std::fs::read(&canonical).map_err(failed)?;
    read.push(canonical);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::check::expectations::read_sidecar;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write the test file");
        path
    }

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().expect("create a temporary directory")
    }

    #[test]
    fn sources_are_recorded_canonical() {
        let dir = tempdir();
        std::fs::create_dir(dir.path().join("data")).expect("create data");
        write(dir.path(), "data/rows.csv", "a\n");
        write(dir.path(), "in.txt", "1 2\n");
        let path = write(
            dir.path(),
            "x.py.check.toml",
            "stdin_file = \"in.txt\"\n[[input]]\npath = \"rows.csv\"\nsource = \"data/rows.csv\"\n",
        );
        let expectations = read_sidecar(&path).expect("valid sidecar");
        let base = std::fs::canonicalize(dir.path()).expect("canonical tempdir");
        assert_eq!(
            expectations.source_files,
            [base.join("in.txt"), base.join("data/rows.csv")]
        );
    }

    #[test]
    fn sources_outside_directory_are_rejected() {
        let outer = tempdir();
        let secret = write(outer.path(), "secret.txt", "token\n");
        let dir = outer.path().join("scripts");
        std::fs::create_dir(&dir).expect("create scripts");
        write(&dir, "inside.txt", "ok\n");
        let inside_absolute = dir.join("inside.txt");

        let cases = [
            (
                format!("stdin_file = {:?}\n", secret.display().to_string()),
                "it is an absolute path",
            ),
            (
                format!(
                    "[[input]]\npath = \"a\"\nsource = {:?}\n",
                    inside_absolute.display().to_string()
                ),
                "it is an absolute path",
            ),
            (
                "[[input]]\npath = \"a\"\nsource = \"../secret.txt\"\n".to_owned(),
                "it has a `..` component",
            ),
            (
                "stdin_file = \"sub/../inside.txt\"\n".to_owned(),
                "it has a `..` component",
            ),
        ];
        for (text, problem) in cases {
            let path = write(&dir, "x.py.check.toml", &text);
            let error = read_sidecar(&path).expect_err(&text).to_string();
            let line = text.lines().count();
            assert!(
                error.contains(&format!("x.py.check.toml:{line}: invalid `")),
                "{error}"
            );
            assert!(error.contains(problem), "{text}: {error}");
            assert!(
                error.contains("may read only files in its own directory"),
                "{error}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_source_outside_directory_is_rejected() {
        let outer = tempdir();
        let secret = write(outer.path(), "secret.txt", "token\n");
        let dir = outer.path().join("scripts");
        std::fs::create_dir(&dir).expect("create scripts");
        std::os::unix::fs::symlink(&secret, dir.join("link.txt")).expect("symlink");
        let path = write(
            &dir,
            "x.py.check.toml",
            "[[input]]\npath = \"a\"\nsource = \"link.txt\"\n",
        );
        let error = read_sidecar(&path).expect_err("escape").to_string();
        assert!(
            error.contains("x.py.check.toml:3: invalid `source`"),
            "{error}"
        );
        assert!(error.contains("outside that directory"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_source_inside_directory_is_read() {
        let dir = tempdir();
        write(dir.path(), "real.txt", "ok\n");
        std::os::unix::fs::symlink("real.txt", dir.path().join("link.txt")).expect("symlink");
        let path = write(dir.path(), "x.py.check.toml", "stdin_file = \"link.txt\"\n");
        let expectations = read_sidecar(&path).expect("a link inside the directory");
        assert_eq!(expectations.stdin, b"ok\n");
    }

    #[test]
    fn directory_source_is_rejected() {
        let dir = tempdir();
        std::fs::create_dir(dir.path().join("data")).expect("create data");
        let path = write(dir.path(), "x.py.check.toml", "stdin_file = \"data\"\n");
        let error = read_sidecar(&path).expect_err("a directory").to_string();
        assert!(error.contains(":1: invalid `stdin_file`"), "{error}");
        assert!(error.contains("it is not a regular file"), "{error}");
    }
}
