//! Plain-English explanation of a policy for its reviewers, and the same facts as JSON.

mod json;

use std::time::Duration;

pub use json::explain_json;

use crate::defaults::WORKSPACE_GUEST_PATH;
use crate::model::{AccessMode, CaptureLevel, EgressRule, Policy, Scheme, SecretRule};
use crate::units::{ByteSize, HumanDuration};
use crate::{BAKED_PYTHON_MODULES, LoadedPolicy};

/// Lines of module lists wrap before this column.
const WRAP_COLUMN: usize = 78;

/// Describes what code may and may not do under `loaded`, section by
/// section, with moat's built-in value wherever the policy sets none.
/// Secret values are never read, so they never appear.
pub fn explain(loaded: &LoadedPolicy) -> String {
    let policy = &loaded.policy;
    let mut out = String::new();

    write_header(&mut out, loaded);
    write_languages(&mut out);
    write_limits(&mut out, policy);
    write_files(&mut out, policy);
    write_network(&mut out, policy);
    write_python(&mut out, policy);
    write_secrets(&mut out, policy);
    write_sessions(&mut out, policy);
    write_audit(&mut out, policy);
    write_forbidden(&mut out, policy);
    out
}

/// Appends `text` and a line break.
fn line(out: &mut String, text: impl AsRef<str>) {
    out.push_str(text.as_ref());
    out.push('\n');
}

fn section(out: &mut String, title: &str) {
    line(out, "");
    line(out, title);
}

fn write_header(out: &mut String, loaded: &LoadedPolicy) {
    let policy = &loaded.policy;
    let title = match (&policy.name, &loaded.path) {
        (Some(name), _) => format!("Policy {name:?}"),
        (None, Some(_)) => "Policy (unnamed)".to_owned(),
        (None, None) => "Built-in policy (no policy file given)".to_owned(),
    };
    line(out, title);
    if let Some(path) = &loaded.path {
        line(out, format!("  File:    {}", path.display()));
    }
    line(out, format!("  SHA-256: {}", loaded.sha256));
    if let Some(description) = &policy.description {
        // Every line is indented, so that a description cannot pass for a
        // section of this explanation.
        line(out, "  Purpose:");
        for paragraph in description.trim().lines() {
            wrap_words(out, "    ", &printable(paragraph));
        }
    }
}

/// Appends `text` wrapped before [`WRAP_COLUMN`], each line starting with
/// `indent`.
fn wrap_words(out: &mut String, indent: &str, text: &str) {
    wrap_hanging(out, indent, indent.len(), text);
}

/// Appends `text` wrapped before [`WRAP_COLUMN`]: the first line starts with
/// `first`, and the others with `indent` spaces. A word longer than a line
/// stays whole.
fn wrap_hanging(out: &mut String, first: &str, indent: usize, text: &str) {
    let mut current = String::from(first);
    let mut start = first.len();
    for word in text.split_whitespace() {
        if current.len() > start && current.len() + 1 + word.len() > WRAP_COLUMN {
            line(out, &current);
            current = " ".repeat(indent);
            start = indent;
        }
        if current.len() > start {
            current.push(' ');
        }
        current.push_str(word);
    }
    line(out, current.trim_end());
}

/// `text` with control characters replaced, so that a policy cannot move
/// the reader's terminal or forge lines.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

fn write_languages(out: &mut String) {
    section(out, "Languages");
    line(
        out,
        "  Python (CPython) and JavaScript (QuickJS) code may run, each in a fresh",
    );
    line(
        out,
        "  WebAssembly instance. Code sees no host environment variables and cannot",
    );
    line(out, "  open sockets, start threads or start processes.");
}

fn write_limits(out: &mut String, policy: &Policy) {
    let limits = &policy.limits;
    let default = limits.effective_default();
    let max = limits.effective_max();

    section(out, "Limits for each run");
    line(
        out,
        format!(
            "  {:<9}{:<36}{}",
            "limit", "default", "maximum a caller may request"
        ),
    );
    let (set, max_set) = (&limits.default, &limits.max);
    let fuel = |value: u64| format!("{} instructions", thousands(value));
    // (limit, set as a default, set as a maximum, default, maximum)
    let rows = [
        (
            "timeout",
            set.timeout.is_some(),
            max_set.timeout.is_some(),
            duration(default.timeout),
            duration(max.timeout),
        ),
        (
            "fuel",
            set.fuel.is_some(),
            max_set.fuel.is_some(),
            fuel(default.fuel),
            fuel(max.fuel),
        ),
        (
            "memory",
            set.memory.is_some(),
            max_set.memory.is_some(),
            bytes(default.memory_bytes),
            bytes(max.memory_bytes),
        ),
        (
            "stdout",
            set.stdout.is_some(),
            max_set.stdout.is_some(),
            bytes(default.stdout_bytes),
            bytes(max.stdout_bytes),
        ),
        (
            "stderr",
            set.stderr.is_some(),
            max_set.stderr.is_some(),
            bytes(default.stderr_bytes),
            bytes(max.stderr_bytes),
        ),
    ];
    for (name, default_is_set, max_is_set, default_text, max_text) in rows {
        let default_text = match default_is_set {
            true => default_text,
            false => format!("{default_text} (built-in)"),
        };
        let max_text = match max_is_set {
            true => max_text,
            false => format!("{max_text} (same as the default)"),
        };
        line(out, format!("  {name:<9}{default_text:<36}{max_text}"));
    }
    line(
        out,
        "  A run that reaches a limit is stopped, and its outcome names the limit.",
    );
}

fn write_files(out: &mut String, policy: &Policy) {
    section(out, "Files");
    line(
        out,
        format!(
            "  {WORKSPACE_GUEST_PATH}: read-write scratch directory, empty when a run or session starts"
        ),
    );
    for rule in &policy.filesystem {
        line(
            out,
            format!(
                "  {}: {} host directory {}",
                rule.guest,
                rule.mode,
                printable(&rule.host)
            ),
        );
    }
    line(
        out,
        "  No other host file or directory is visible to the code.",
    );
}

fn write_network(out: &mut String, policy: &Policy) {
    section(out, "Network");
    if policy.egress.is_empty() {
        line(
            out,
            "  None. The policy has no egress rules, so every HTTP request is refused.",
        );
        return;
    }
    line(
        out,
        "  Code may send HTTP requests through moat's HTTP gate only where a rule",
    );
    line(out, "  below allows them. Every other request is refused.");
    for rule in &policy.egress {
        write_rule(out, policy, rule);
    }
}

fn write_rule(out: &mut String, policy: &Policy, rule: &EgressRule) {
    let field = |out: &mut String, label: &str, value: String| {
        let first = format!("    {:<19}", format!("{label}:"));
        let indent = first.len();
        wrap_hanging(out, &first, indent, &value);
    };

    line(out, "");
    line(
        out,
        format!(
            "  Rule {:?}: {}://{}:{}",
            rule.name,
            rule.scheme.as_str(),
            rule.host,
            rule.effective_port()
        ),
    );
    if let Some(domain) = rule.host.strip_prefix("*.") {
        field(
            out,
            "hosts",
            format!("any subdomain of {domain}, but not {domain} itself"),
        );
    }
    let methods = rule.effective_methods().join(", ");
    let methods = match rule.methods.is_empty() {
        true => format!("{methods} (the default)"),
        false => methods,
    };
    field(out, "methods", methods);
    let paths = match rule.paths.is_empty() {
        true => "any".to_owned(),
        false => format!("starting with {}", rule.paths.join(" or ")),
    };
    field(out, "paths", paths);

    let no_cap = || "no cap set by this policy".to_owned();
    field(
        out,
        "requests per run",
        rule.max_requests
            .map_or_else(no_cap, |n| format!("at most {}", thousands(n.into()))),
    );
    field(
        out,
        "bytes per run",
        rule.max_bytes.map_or_else(no_cap, |b| {
            format!("at most {} sent and received", bytes(b.0))
        }),
    );
    field(
        out,
        "request body",
        rule.max_request_bytes
            .map_or_else(no_cap, |b| format!("at most {}", bytes(b.0))),
    );
    field(
        out,
        "response body",
        rule.max_response_bytes
            .map_or_else(no_cap, |b| format!("at most {}", bytes(b.0))),
    );
    field(
        out,
        "time per request",
        rule.timeout
            .map_or_else(no_cap, |t| format!("at most {}", duration(t.0))),
    );
    let private = match rule.allow_private_addresses {
        true => "allowed (the host may resolve to loopback, private or link-local addresses)",
        false => "refused (the host must resolve to a public address)",
    };
    field(out, "private addresses", private.to_owned());

    let secrets: Vec<&SecretRule> = policy
        .secrets
        .iter()
        .filter(|secret| secret.rule == rule.name)
        .collect();
    if secrets.is_empty() {
        field(out, "secrets", "none".to_owned());
    }
    for secret in secrets {
        let mut text = format!(
            "{:?}, in header {} as {:?}",
            secret.name,
            secret.header,
            secret_format(secret)
        );
        if rule.scheme == Scheme::Http {
            text.push_str(" (over plain http, so unencrypted on the network)");
        }
        field(out, "secret", text);
    }
}

fn secret_format(secret: &SecretRule) -> &str {
    secret.format.as_deref().unwrap_or("{value}")
}

fn write_python(out: &mut String, policy: &Policy) {
    section(out, "Python modules");
    match &policy.python.modules {
        None => {
            line(
                out,
                format!(
                    "  Code may import any of the {} modules baked into the Python guest:",
                    BAKED_PYTHON_MODULES.len()
                ),
            );
            wrap_list(out, BAKED_PYTHON_MODULES.iter().copied());
        }
        Some(modules) if modules.is_empty() => {
            line(out, "  Code may import no module at all.");
        }
        Some(modules) => {
            line(
                out,
                format!(
                    "  Code may import only these {} of the {} baked modules:",
                    modules.len(),
                    BAKED_PYTHON_MODULES.len()
                ),
            );
            wrap_list(out, modules.iter().map(String::as_str));
            line(
                out,
                "  Importing any other module by name is refused. This is a name filter inside",
            );
            line(
                out,
                "  the interpreter, not a security boundary: modules reachable through an allowed",
            );
            line(
                out,
                "  one stay usable. Modules not baked into the guest cannot be used at all.",
            );
        }
    }
    line(
        out,
        "  Packages not baked into the guest, such as numpy, do not exist and cannot",
    );
    line(out, "  be installed.");
}

/// Appends `items` separated by commas, wrapped and indented.
fn wrap_list<'a>(out: &mut String, items: impl Iterator<Item = &'a str>) {
    let items: Vec<&str> = items.collect();
    wrap_words(out, "    ", &items.join(", "));
}

fn write_secrets(out: &mut String, policy: &Policy) {
    section(out, "Secrets");
    if policy.secrets.is_empty() {
        line(out, "  None. No credential is added to any request.");
        return;
    }
    line(
        out,
        "  The HTTP gate writes each secret into requests that its rule allows.",
    );
    line(
        out,
        "  Guest code never receives the values from moat, and an exact copy echoed in a",
    );
    line(
        out,
        "  response is redacted. A server that echoes a value in another form (encoded,",
    );
    line(
        out,
        "  split) would reveal it: bind secrets only to servers you trust.",
    );
    for secret in &policy.secrets {
        let source = match (&secret.env, &secret.file) {
            (Some(variable), _) => format!("environment variable {variable} of the moat process"),
            (None, Some(file)) => format!("file {file}"),
            (None, None) => "no source".to_owned(),
        };
        line(out, format!("  {:?}", secret.name));
        wrap_hanging(out, "    source: ", 12, &source);
        let sent = format!(
            "in header {} as {:?} on rule {:?}",
            secret.header,
            secret_format(secret),
            secret.rule
        );
        wrap_hanging(out, "    sent:   ", 12, &sent);
    }
}

fn write_sessions(out: &mut String, policy: &Policy) {
    let sessions = &policy.sessions;
    let mark = |is_set: bool, text: String| match is_set {
        true => text,
        false => format!("{text} (built-in)"),
    };

    section(out, "Sessions (moat serve)");
    line(
        out,
        "  A session keeps one interpreter across calls, so variables and imports",
    );
    line(out, "  carry over until it closes.");
    line(
        out,
        format!(
            "  idle timeout:  {}",
            mark(
                sessions.idle_timeout.is_some(),
                duration(sessions.effective_idle_timeout())
            )
        ),
    );
    line(
        out,
        format!(
            "  max lifetime:  {}",
            mark(
                sessions.max_lifetime.is_some(),
                duration(sessions.effective_max_lifetime())
            )
        ),
    );
    line(
        out,
        format!(
            "  max sessions:  {} open at once",
            mark(
                sessions.max_sessions.is_some(),
                sessions.effective_max_sessions().to_string()
            )
        ),
    );
}

fn write_audit(out: &mut String, policy: &Policy) {
    section(out, "Audit");
    let text = match policy.audit.capture {
        CaptureLevel::Full => "full. Each run's code, inputs and outputs are kept in full.",
        CaptureLevel::Truncated => {
            "truncated. Each run's code, inputs and outputs are kept up to a fixed size."
        }
        CaptureLevel::Hashes => {
            "hashes. Only SHA-256 hashes of each run's code, inputs and outputs are kept."
        }
    };
    wrap_hanging(out, "  Capture level: ", 4, text);
}

fn write_forbidden(out: &mut String, policy: &Policy) {
    section(out, "Code may NOT");
    line(
        out,
        "  - read or write host files outside the directories under Files",
    );
    if policy
        .filesystem
        .iter()
        .any(|rule| rule.mode == AccessMode::Ro)
    {
        line(out, "  - change anything in a read-only directory");
    }
    match policy.egress.is_empty() {
        true => line(out, "  - reach the network in any way"),
        false => line(
            out,
            "  - reach any host, port, method or path that no rule under Network allows",
        ),
    }
    line(
        out,
        "  - read host environment variables or the values of secrets",
    );
    if policy.python.modules.is_some() {
        line(
            out,
            "  - import a Python module outside the list above by name",
        );
    }
    line(out, "  - run past the limits above");
}

fn duration(value: Duration) -> String {
    HumanDuration(value).to_string()
}

fn bytes(value: u64) -> String {
    ByteSize(value).to_string()
}

/// `value` with commas between groups of three digits.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_000_000_000), "10,000,000,000");
    }

    #[test]
    fn builtin_policy_has_no_network() {
        let text = explain(&LoadedPolicy::builtin());
        assert!(text.contains("Built-in policy"), "{text}");
        assert!(
            text.contains("  None. The policy has no egress rules"),
            "{text}"
        );
        assert!(text.contains("timeout  30s (built-in)"), "{text}");
        assert!(text.contains("reach the network in any way"), "{text}");
    }

    #[test]
    fn description_cannot_forge_sections() {
        let mut loaded = LoadedPolicy::builtin();
        loaded.policy.description = Some("first\nNetwork\n  everything\u{1b}[2J".into());
        let text = explain(&loaded);
        assert!(text.contains("\n    Network\n"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }
}
