//! Policy violations found in one run: a limit that stopped it, a denied
//! egress request, and refused imports or denied file accesses that ended
//! it.
//!
//! Limits and egress denials are recorded by the host, so they are found
//! even when the script catches the error. The guest raises refused imports
//! and file accesses as ordinary exceptions, and the host keeps no record of
//! them, so they are found only when such an exception ends the run. A
//! script can forge one of these exceptions, which only fails that script.

use std::collections::BTreeSet;

use moat_egress::{Decision, EgressEvent};
use moat_runtime::{DirGrant, GuestError, Language, Outcome, RunReport, WORKSPACE_GUEST_PATH};
use serde::{Deserialize, Serialize};

/// Distinct denied egress requests listed one by one. The rest are counted.
const MAX_LISTED_EGRESS_DENIALS: usize = 5;

/// A kind of policy violation, as named in expectations and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// The run passed the policy's wall-clock timeout.
    Timeout,
    /// The run used all of its fuel.
    FuelExhausted,
    /// The run asked for more linear memory than the policy allows.
    MemoryLimit,
    /// The run wrote more to stdout or stderr than the policy allows.
    OutputTruncated,
    /// The egress gate denied an HTTP request.
    EgressDenied,
    /// An import of a module that the policy or the guest does not provide.
    ImportRefused,
    /// A write to a directory that the policy grants read-only.
    ReadOnlyWrite,
    /// An access to a path outside `/workspace` and the policy's grants.
    PathNotGranted,
}

impl ViolationKind {
    /// Returns the kind's name in expectations and reports.
    pub fn name(self) -> &'static str {
        match self {
            ViolationKind::Timeout => "timeout",
            ViolationKind::FuelExhausted => "fuel_exhausted",
            ViolationKind::MemoryLimit => "memory_limit",
            ViolationKind::OutputTruncated => "output_truncated",
            ViolationKind::EgressDenied => "egress_denied",
            ViolationKind::ImportRefused => "import_refused",
            ViolationKind::ReadOnlyWrite => "read_only_write",
            ViolationKind::PathNotGranted => "path_not_granted",
        }
    }
}

/// One violation found in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The kind of violation.
    pub kind: ViolationKind,
    /// Description of what was denied or exceeded, and why.
    pub message: String,
    /// Whether the violation ended the run: a limit, or the uncaught error
    /// that the refusal raised.
    pub ended_run: bool,
}

/// Finds the violations in a finished run. `deadline_is_max_duration` is
/// true when the run's deadline came from the script's `max_duration`,
/// shorter than the policy's timeout, so a timeout is not a violation.
pub fn find_violations(
    language: Language,
    report: &RunReport,
    egress: &[EgressEvent],
    grants: &[DirGrant],
    deadline_is_max_duration: bool,
) -> Vec<Violation> {
    let mut violations = Vec::new();

    if let Some(kind) = limit_kind(report.outcome)
        && !(kind == ViolationKind::Timeout && deadline_is_max_duration)
    {
        let message = report
            .limit_message
            .clone()
            .unwrap_or_else(|| format!("the run was stopped: {}", report.outcome.name()));
        violations.push(Violation {
            kind,
            message,
            ended_run: true,
        });
    }

    let error = match report.outcome {
        Outcome::Error => report.error.as_ref(),
        _ => None,
    };
    violations.extend(egress_violations(egress, error));

    if let Some(error) = error {
        if let Some(violation) = import_violation(language, error) {
            violations.push(violation);
        } else if let Some(violation) = file_violation(error, grants) {
            violations.push(violation);
        }
    }
    violations
}

fn limit_kind(outcome: Outcome) -> Option<ViolationKind> {
    match outcome {
        Outcome::Ok | Outcome::Error => None,
        Outcome::Timeout => Some(ViolationKind::Timeout),
        Outcome::FuelExhausted => Some(ViolationKind::FuelExhausted),
        Outcome::MemoryLimit => Some(ViolationKind::MemoryLimit),
        Outcome::OutputTruncated => Some(ViolationKind::OutputTruncated),
    }
}

/// Builds one violation per distinct denied request (URL and reason), in
/// the order they happened. A denial ended the run when the uncaught error
/// carries its reason, as both guests put the gate's reason in the message.
fn egress_violations(egress: &[EgressEvent], error: Option<&GuestError>) -> Vec<Violation> {
    let mut seen = BTreeSet::new();
    let mut distinct = Vec::new();
    for event in egress {
        if event.decision != Decision::Denied {
            continue;
        }
        let reason = event
            .reason
            .as_deref()
            .unwrap_or("denied by the egress gate");
        if seen.insert((event.url.as_str(), reason)) {
            distinct.push((event, reason));
        }
    }

    let mut violations = Vec::new();
    for (event, reason) in distinct.iter().take(MAX_LISTED_EGRESS_DENIALS) {
        let ended_run = error.is_some_and(|error| error.message.contains(reason));
        violations.push(Violation {
            kind: ViolationKind::EgressDenied,
            message: format!("{} {}: {reason}", event.method, event.url),
            ended_run,
        });
    }
    let unlisted = distinct.len().saturating_sub(MAX_LISTED_EGRESS_DENIALS);
    if unlisted > 0 {
        violations.push(Violation {
            kind: ViolationKind::EgressDenied,
            message: format!("{unlisted} more distinct requests were denied"),
            ended_run: false,
        });
    }
    violations
}

/// Recognises the errors the guests raise for a module they refuse: the
/// Python guest's import hook and the JavaScript guest's `require`.
fn import_violation(language: Language, error: &GuestError) -> Option<Violation> {
    let message = match language {
        Language::Python => {
            if error.name != "ModuleNotFoundError" {
                return None;
            }
            let rest = error.message.strip_prefix("module '")?;
            let (module, why) = rest.split_once("' is not ")?;
            let why = if why.starts_with("allowed by the moat policy") {
                "the policy's [python] modules list does not include it"
            } else if why.starts_with("available in the moat sandbox") {
                "it is not baked into the Python guest"
            } else {
                return None;
            };
            format!("import of module '{module}' was refused: {why}")
        }
        Language::JavaScript => {
            let module = error
                .message
                .strip_prefix("Cannot find module '")?
                .strip_suffix('\'')?;
            format!(
                "require('{module}') was refused: the JavaScript guest provides only \
                 fs, fs/promises, util and process"
            )
        }
    };
    Some(Violation {
        kind: ViolationKind::ImportRefused,
        message,
        ended_run: true,
    })
}

/// A filesystem error as the guest reported it.
#[derive(Debug, PartialEq, Eq)]
struct FileError {
    /// The path as the script passed it.
    path: String,
    /// Whether the error is a permission error (EPERM, EACCES or EROFS).
    permission: bool,
}

/// Recognises a filesystem error on a path that the policy does not let the
/// script write (a read-only grant) or reach at all (outside every preopened
/// directory).
fn file_violation(error: &GuestError, grants: &[DirGrant]) -> Option<Violation> {
    let file_error = parse_python_os_error(error).or_else(|| parse_js_fs_error(error))?;
    let path = guest_absolute(&file_error.path);

    if let Some(grant) = grants
        .iter()
        .filter(|grant| grant.read_only)
        .find(|grant| is_within(&path, &grant.guest_path))
    {
        if !file_error.permission {
            return None;
        }
        return Some(Violation {
            kind: ViolationKind::ReadOnlyWrite,
            message: format!(
                "write to {path} was denied: the policy grants {} read-only",
                grant.guest_path
            ),
            ended_run: true,
        });
    }

    let reachable = is_within(&path, WORKSPACE_GUEST_PATH)
        || grants
            .iter()
            .any(|grant| is_within(&path, &grant.guest_path));
    if reachable {
        return None;
    }
    Some(Violation {
        kind: ViolationKind::PathNotGranted,
        message: format!(
            "access to {path} was denied: it is outside {WORKSPACE_GUEST_PATH} and the \
             policy's directory grants"
        ),
        ended_run: true,
    })
}

/// Parses CPython's `OSError` text: `[Errno 63] Operation not permitted:
/// '/data/x'`, where the path is a Python string literal.
fn parse_python_os_error(error: &GuestError) -> Option<FileError> {
    if !error.name.ends_with("Error") {
        return None;
    }
    let rest = error.message.strip_prefix("[Errno ")?;
    let (_, rest) = rest.split_once("] ")?;
    let (text, quoted) = rest.split_once(": ")?;
    let path = parse_quoted(quoted)?;
    let permission = error.name == "PermissionError" || text == "Read-only file system";
    Some(FileError { path, permission })
}

/// Parses the JavaScript guest's `fs` error text: `EPERM: operation not
/// permitted, open '/data/x'`.
fn parse_js_fs_error(error: &GuestError) -> Option<FileError> {
    let (code, rest) = error.message.split_once(": ")?;
    let is_code = code.len() > 1
        && code.starts_with('E')
        && code.bytes().all(|byte| byte.is_ascii_uppercase());
    if !is_code {
        return None;
    }
    let start = rest.find(['\'', '"'])?;
    let path = parse_quoted(&rest[start..])?;
    let permission = matches!(code, "EPERM" | "EACCES" | "EROFS");
    Some(FileError { path, permission })
}

/// Reads a quoted string at the start of `text`, in single or double quotes,
/// with backslash escapes of the quote and the backslash.
fn parse_quoted(text: &str) -> Option<String> {
    let mut chars = text.chars();
    let quote = chars.next().filter(|c| *c == '\'' || *c == '"')?;
    let mut value = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?),
            c if c == quote => return Some(value),
            c => value.push(c),
        }
    }
    None
}

/// Returns the absolute guest path of `path`. Relative paths resolve
/// against `/workspace`, the guest's working directory. `.` and `..` are
/// resolved lexically, because no symlink can lead out of a preopened
/// directory and the guest cannot create symlinks.
fn guest_absolute(path: &str) -> String {
    let joined = match path.starts_with('/') {
        true => path.to_owned(),
        false => format!("{WORKSPACE_GUEST_PATH}/{path}"),
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Returns whether guest path `path` is `dir` or inside it.
fn is_within(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(name: &str, message: &str) -> GuestError {
        GuestError {
            name: name.to_owned(),
            message: message.to_owned(),
            stack: String::new(),
        }
    }

    fn data_grant(read_only: bool) -> Vec<DirGrant> {
        vec![DirGrant {
            host_path: "/srv/data".into(),
            guest_path: "/data".to_owned(),
            read_only,
        }]
    }

    #[test]
    fn python_policy_import_is_refused() {
        let found = import_violation(
            Language::Python,
            &error(
                "ModuleNotFoundError",
                "module 'sqlite3' is not allowed by the moat policy (allowed: json)",
            ),
        )
        .expect("a violation");
        assert_eq!(found.kind, ViolationKind::ImportRefused);
        assert!(found.message.contains("'sqlite3'"), "{}", found.message);
    }

    #[test]
    fn python_missing_module_is_refused() {
        let found = import_violation(
            Language::Python,
            &error(
                "ModuleNotFoundError",
                "module 'numpy' is not available in the moat sandbox: only modules baked ...",
            ),
        )
        .expect("a violation");
        assert!(found.message.contains("not baked"), "{}", found.message);
    }

    #[test]
    fn ordinary_module_error_is_not_refusal() {
        let found = import_violation(
            Language::Python,
            &error("ModuleNotFoundError", "No module named 'helpers'"),
        );
        assert_eq!(found, None);
    }

    #[test]
    fn javascript_require_is_refused() {
        let found = import_violation(
            Language::JavaScript,
            &error("Error", "Cannot find module 'child_process'"),
        )
        .expect("a violation");
        assert!(found.message.contains("child_process"), "{}", found.message);
    }

    #[test]
    fn python_write_to_read_only_grant() {
        let found = file_violation(
            &error(
                "PermissionError",
                "[Errno 63] Operation not permitted: '/data/out.txt'",
            ),
            &data_grant(true),
        )
        .expect("a violation");
        assert_eq!(found.kind, ViolationKind::ReadOnlyWrite);
        assert!(found.message.contains("/data/out.txt"), "{}", found.message);
    }

    #[test]
    fn javascript_write_to_read_only_grant() {
        let found = file_violation(
            &error(
                "Error",
                "EPERM: operation not permitted, open '/data/out.txt'",
            ),
            &data_grant(true),
        )
        .expect("a violation");
        assert_eq!(found.kind, ViolationKind::ReadOnlyWrite);
    }

    #[test]
    fn missing_file_in_read_only_grant_is_not_violation() {
        let found = file_violation(
            &error(
                "FileNotFoundError",
                "[Errno 44] No such file or directory: '/data/nope.csv'",
            ),
            &data_grant(true),
        );
        assert_eq!(found, None);
    }

    #[test]
    fn write_to_read_write_grant_is_not_violation() {
        let found = file_violation(
            &error(
                "PermissionError",
                "[Errno 63] Operation not permitted: '/data/out.txt'",
            ),
            &data_grant(false),
        );
        assert_eq!(found, None);
    }

    #[test]
    fn path_outside_preopens_is_not_granted() {
        let found = file_violation(
            &error(
                "FileNotFoundError",
                "[Errno 44] No such file or directory: '/etc/passwd'",
            ),
            &[],
        )
        .expect("a violation");
        assert_eq!(found.kind, ViolationKind::PathNotGranted);
        assert!(found.message.contains("/etc/passwd"), "{}", found.message);
    }

    #[test]
    fn relative_escape_is_not_granted() {
        let found = file_violation(
            &error(
                "PermissionError",
                "[Errno 63] Operation not permitted: '../x'",
            ),
            &[],
        )
        .expect("a violation");
        assert_eq!(found.kind, ViolationKind::PathNotGranted);
        assert!(found.message.contains("access to /x "), "{}", found.message);
    }

    #[test]
    fn missing_workspace_file_is_not_violation() {
        let found = file_violation(
            &error(
                "FileNotFoundError",
                "[Errno 44] No such file or directory: 'input.csv'",
            ),
            &[],
        );
        assert_eq!(found, None);
    }

    fn denied(url: &str) -> EgressEvent {
        EgressEvent {
            started_at_ms: 0,
            method: "GET".to_owned(),
            url: url.to_owned(),
            hop: 0,
            rule: None,
            decision: Decision::Denied,
            reason: Some("network access is denied: the policy has no egress rules".to_owned()),
            address: None,
            status: None,
            bytes_sent: 0,
            bytes_received: 0,
            secrets_injected: Vec::new(),
            duration_ms: 0,
        }
    }

    #[test]
    fn repeated_denials_are_listed_once() {
        let events: Vec<EgressEvent> = (0..3).map(|_| denied("http://a.invalid/")).collect();
        let found = egress_violations(&events, None);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            "GET http://a.invalid/: network access is denied: the policy has no egress rules"
        );
        assert!(!found[0].ended_run);
    }

    #[test]
    fn many_denials_are_counted() {
        let events: Vec<EgressEvent> = (0..8)
            .map(|n| denied(&format!("http://host{n}.invalid/")))
            .collect();
        let found = egress_violations(&events, None);
        assert_eq!(found.len(), MAX_LISTED_EGRESS_DENIALS + 1);
        assert_eq!(found[5].message, "3 more distinct requests were denied");
    }

    #[test]
    fn uncaught_denial_ended_run() {
        let events = [denied("http://a.invalid/")];
        let uncaught = error(
            "TypeError",
            "network access is denied: the policy has no egress rules",
        );
        let found = egress_violations(&events, Some(&uncaught));
        assert!(found[0].ended_run);
    }

    #[test]
    fn quoted_path_with_escapes() {
        assert_eq!(parse_quoted(r#""it's""#), Some("it's".to_owned()));
        assert_eq!(parse_quoted(r"'a\'b'"), Some("a'b".to_owned()));
        assert_eq!(parse_quoted("'open"), None);
    }

    #[test]
    fn guest_paths_resolve_lexically() {
        assert_eq!(guest_absolute("out.txt"), "/workspace/out.txt");
        assert_eq!(guest_absolute("/workspace/../etc/x"), "/etc/x");
        assert_eq!(guest_absolute("./a/./b"), "/workspace/a/b");
        assert!(is_within("/data", "/data"));
        assert!(is_within("/data/x", "/data/"));
        assert!(!is_within("/database", "/data"));
    }
}
