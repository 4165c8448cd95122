//! Checks that go beyond the file's syntax: names, hosts, paths, limits and
//! the references between sections.

use std::collections::HashSet;

use crate::model::{EgressRule, Policy};
use crate::{BAKED_PYTHON_MODULES, Problem};

/// Upper bound for the memory limit: a 32-bit guest cannot address more.
const MAX_MEMORY_BYTES: u64 = 4 << 30;

/// Returns every problem found, each with the key path it concerns.
pub(crate) fn check(policy: &Policy) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_limits(policy, &mut problems);
    check_filesystem(policy, &mut problems);

    let mut rule_names = HashSet::new();
    for (index, rule) in policy.egress.iter().enumerate() {
        check_egress_rule(index, rule, &mut rule_names, &mut problems);
    }
    check_python(policy, &mut problems);
    check_secrets(policy, &rule_names, &mut problems);
    check_sessions(policy, &mut problems);
    problems
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

fn check_limits(policy: &Policy, problems: &mut Vec<Problem>) {
    for (section, values) in [
        ("default", &policy.limits.default),
        ("max", &policy.limits.max),
    ] {
        let path = |key: &str| format!("limits.{section}.{key}");
        if values.timeout.is_some_and(|t| t.0.is_zero()) {
            problems.push(problem(
                path("timeout"),
                "must be greater than zero, such as \"30s\"",
            ));
        }
        if values.fuel == Some(0) {
            problems.push(problem(
                path("fuel"),
                "must be greater than zero, such as 10000000000",
            ));
        }
        if let Some(memory) = values.memory {
            if memory.0 == 0 {
                problems.push(problem(
                    path("memory"),
                    "must be greater than zero, such as \"512MiB\"",
                ));
            } else if memory.0 > MAX_MEMORY_BYTES {
                problems.push(problem(
                    path("memory"),
                    "must be at most \"4GiB\": a 32-bit guest cannot address more",
                ));
            }
        }
        if values.stdout.is_some_and(|s| s.0 == 0) {
            problems.push(problem(
                path("stdout"),
                "must be greater than zero, such as \"1MiB\"",
            ));
        }
        if values.stderr.is_some_and(|s| s.0 == 0) {
            problems.push(problem(
                path("stderr"),
                "must be greater than zero, such as \"1MiB\"",
            ));
        }
    }

    let default = &policy.limits.default;
    let max = &policy.limits.max;
    let above = [
        (
            "timeout",
            default.timeout.map(|t| t.0.as_millis()),
            max.timeout.map(|t| t.0.as_millis()),
        ),
        (
            "fuel",
            default.fuel.map(u128::from),
            max.fuel.map(u128::from),
        ),
        (
            "memory",
            default.memory.map(|m| m.0.into()),
            max.memory.map(|m| m.0.into()),
        ),
        (
            "stdout",
            default.stdout.map(|m| m.0.into()),
            max.stdout.map(|m| m.0.into()),
        ),
        (
            "stderr",
            default.stderr.map(|m| m.0.into()),
            max.stderr.map(|m| m.0.into()),
        ),
    ];
    for (key, default, max) in above {
        if let (Some(default), Some(max)) = (default, max)
            && default > max
        {
            problems.push(problem(
                format!("limits.default.{key}"),
                format!("is above limits.max.{key}; lower the default or raise the maximum"),
            ));
        }
    }
}

fn check_filesystem(policy: &Policy, problems: &mut Vec<Problem>) {
    let mut guests: Vec<&str> = vec!["/workspace"];
    for (index, rule) in policy.filesystem.iter().enumerate() {
        let path = |key: &str| format!("filesystem[{index}].{key}");
        if rule.host.trim().is_empty() {
            problems.push(problem(path("host"), "must name a host directory"));
        }
        if let Some(reason) = guest_path_problem(&rule.guest) {
            problems.push(problem(path("guest"), reason));
            continue;
        }
        if let Some(other) = guests.iter().find(|other| nests(other, &rule.guest)) {
            problems.push(problem(
                path("guest"),
                format!(
                    "{:?} overlaps {other:?}, which is already mounted; choose another path",
                    rule.guest
                ),
            ));
        }
        guests.push(&rule.guest);
    }
}

fn check_egress_rule(
    index: usize,
    rule: &EgressRule,
    names: &mut HashSet<String>,
    problems: &mut Vec<Problem>,
) {
    let path = |key: &str| format!("egress[{index}].{key}");

    if !valid_name(&rule.name) {
        problems.push(problem(
            path("name"),
            format!("{:?} is not a valid rule name: use letters, digits, '-' and '_', such as \"exchange-rates\"", rule.name),
        ));
    } else if !names.insert(rule.name.clone()) {
        problems.push(problem(
            path("name"),
            format!(
                "{:?} is used by an earlier rule; names must be unique",
                rule.name
            ),
        ));
    }

    if let Some(reason) = host_pattern_problem(&rule.host) {
        problems.push(problem(path("host"), format!("{:?} {reason}", rule.host)));
    }
    if rule.port == Some(0) {
        problems.push(problem(path("port"), "must be between 1 and 65535"));
    }
    for (method_index, method) in rule.methods.iter().enumerate() {
        let valid = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
        if !valid {
            problems.push(problem(
                format!("egress[{index}].methods[{method_index}]"),
                format!("{method:?} is not a method: write it in upper case, such as \"GET\""),
            ));
        }
    }
    for (path_index, prefix) in rule.paths.iter().enumerate() {
        let bad = !prefix.starts_with('/')
            || prefix.contains("..")
            || prefix.contains('?')
            || prefix.contains('#')
            || prefix.contains('\\');
        if bad {
            problems.push(problem(
                format!("egress[{index}].paths[{path_index}]"),
                format!("{prefix:?} is not a path prefix: it must start with '/' and contain no '..', '?', '#' or '\\\\'"),
            ));
        }
    }
    if rule.max_requests == Some(0) {
        problems.push(problem(
            path("max_requests"),
            "must be greater than zero; remove the rule to allow no requests",
        ));
    }
    for (key, value) in [
        ("max_bytes", rule.max_bytes),
        ("max_response_bytes", rule.max_response_bytes),
        ("max_request_bytes", rule.max_request_bytes),
    ] {
        if value.is_some_and(|v| v.0 == 0) {
            problems.push(problem(path(key), "must be greater than zero"));
        }
    }
    if rule.timeout.is_some_and(|t| t.0.is_zero()) {
        problems.push(problem(
            path("timeout"),
            "must be greater than zero, such as \"10s\"",
        ));
    }
}

fn check_python(policy: &Policy, problems: &mut Vec<Problem>) {
    let Some(modules) = &policy.python.modules else {
        return;
    };
    let baked: HashSet<&str> = BAKED_PYTHON_MODULES
        .iter()
        .map(|name| name.split('.').next().unwrap_or(name))
        .collect();
    for (index, module) in modules.iter().enumerate() {
        let top = module.split('.').next().unwrap_or(module);
        if !baked.contains(top) {
            problems.push(problem(
                format!("python.modules[{index}]"),
                format!(
                    "{module:?} is not baked into the Python guest, so it cannot be allowed; \
                     `moat policy explain` lists the baked modules"
                ),
            ));
        }
    }
}

fn check_secrets(policy: &Policy, rule_names: &HashSet<String>, problems: &mut Vec<Problem>) {
    let mut names = HashSet::new();
    for (index, secret) in policy.secrets.iter().enumerate() {
        let path = |key: &str| format!("secrets[{index}].{key}");
        if !valid_name(&secret.name) {
            problems.push(problem(
                path("name"),
                format!(
                    "{:?} is not a valid secret name: use letters, digits, '-' and '_'",
                    secret.name
                ),
            ));
        } else if !names.insert(secret.name.clone()) {
            problems.push(problem(
                path("name"),
                format!("{:?} is used by an earlier secret", secret.name),
            ));
        }
        match (&secret.env, &secret.file) {
            (None, None) => problems.push(problem(
                path("env"),
                "a secret needs a source: set env = \"VARIABLE\" or file = \"path\"",
            )),
            (Some(_), Some(_)) => problems.push(problem(path("file"), "set env or file, not both")),
            _ => {}
        }
        if !rule_names.contains(&secret.rule) {
            problems.push(problem(
                path("rule"),
                format!(
                    "{:?} is not the name of an egress rule in this policy",
                    secret.rule
                ),
            ));
        }
        let header_valid = !secret.header.is_empty()
            && secret
                .header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !header_valid {
            problems.push(problem(
                path("header"),
                format!("{:?} is not a valid header name", secret.header),
            ));
        }
        if let Some(format) = &secret.format
            && format.matches("{value}").count() != 1
        {
            problems.push(problem(
                path("format"),
                "must contain \"{value}\" exactly once, such as \"Bearer {value}\"",
            ));
        }
    }
}

fn check_sessions(policy: &Policy, problems: &mut Vec<Problem>) {
    let sessions = &policy.sessions;
    if sessions.idle_timeout.is_some_and(|t| t.0.is_zero()) {
        problems.push(problem(
            "sessions.idle_timeout",
            "must be greater than zero, such as \"15m\"",
        ));
    }
    if sessions.max_lifetime.is_some_and(|t| t.0.is_zero()) {
        problems.push(problem(
            "sessions.max_lifetime",
            "must be greater than zero, such as \"4h\"",
        ));
    }
    if sessions.max_sessions == Some(0) {
        problems.push(problem(
            "sessions.max_sessions",
            "must be greater than zero",
        ));
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What is wrong with an egress host pattern, if anything.
fn host_pattern_problem(host: &str) -> Option<String> {
    if host.is_empty() {
        return Some("is empty: name a host, such as \"api.example.com\"".into());
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    if let Some(inner) = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(_) => None,
            Err(_) => Some("is not a valid IPv6 address".into()),
        };
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.contains('*') {
        return Some("may use '*' only as a whole first label, as in \"*.example.com\"".into());
    }
    if host.starts_with("*.") && !name.contains('.') {
        return Some(
            "is too broad: a wildcard needs at least two labels after it, as in \"*.example.com\""
                .into(),
        );
    }
    let labels_valid = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_valid || name.len() > 253 {
        return Some(
            "is not a valid host name: use lowercase letters, digits, '-' and dots".into(),
        );
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("must be lowercase".into());
    }
    None
}

fn guest_path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some(format!("{path:?} must be absolute, such as \"/data\""));
    }
    if path == "/" {
        return Some(
            "\"/\" cannot be mounted: choose a directory below it, such as \"/data\"".into(),
        );
    }
    if path.ends_with('/')
        || path[1..]
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Some(format!(
            "{path:?} must be a normal absolute path without '.', '..', empty parts or a trailing '/'"
        ));
    }
    if path.contains('\\') || path.contains('\0') {
        return Some(format!("{path:?} must not contain backslashes or NUL"));
    }
    None
}

fn nests(a: &str, b: &str) -> bool {
    let inside = |outer: &str, inner: &str| {
        inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    inside(a, b) || inside(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        for good in [
            "api.example.com",
            "*.example.com",
            "127.0.0.1",
            "::1",
            "[::1]",
            "localhost",
        ] {
            assert_eq!(host_pattern_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "*",
            "*.com",
            "a*.example.com",
            "api.*.com",
            "exa mple.com",
            "-a.com",
            "API.example.com",
        ] {
            assert!(
                host_pattern_problem(bad).is_some(),
                "{bad} should be rejected"
            );
        }
    }
}
