//! Checks that go beyond the file's syntax: names, hosts, paths, limits and
//! the references between sections.

use std::collections::HashSet;

mod network;

use crate::defaults::{EffectiveLimits, MAX_MEMORY_BYTES, WORKSPACE_GUEST_PATH};
use crate::model::Policy;
use crate::units::{ByteSize, HumanDuration};
use crate::{BAKED_PYTHON_MODULES, Problem};

/// Returns every problem found, each with the key path it concerns.
pub(crate) fn check(policy: &Policy) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_name(policy, &mut problems);
    check_limits(policy, &mut problems);
    check_filesystem(policy, &mut problems);

    let mut rule_names = HashSet::new();
    for (index, rule) in policy.egress.iter().enumerate() {
        network::check_egress_rule(index, rule, &mut rule_names, &mut problems);
    }
    check_python(policy, &mut problems);
    network::check_secrets(policy, &rule_names, &mut problems);
    check_sessions(policy, &mut problems);
    problems
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

fn check_name(policy: &Policy, problems: &mut Vec<Problem>) {
    let Some(name) = &policy.name else {
        return;
    };
    if name.trim().is_empty() {
        problems.push(problem(
            "name",
            "must not be empty: name the policy, such as \"analyst\", or remove the key",
        ));
    } else if name.chars().any(char::is_control) {
        problems.push(problem(
            "name",
            "must be one line without control characters, such as \"analyst\"",
        ));
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
                    format!(
                        "{} is too large: a 32-bit guest cannot address more than \"4GiB\"",
                        quoted(memory)
                    ),
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

    check_builtin_default_above_max(policy, problems);
}

/// Reports a maximum below the built-in default that applies because the
/// policy sets no default of its own: every run would start above its
/// maximum.
fn check_builtin_default_above_max(policy: &Policy, problems: &mut Vec<Problem>) {
    let default = &policy.limits.default;
    let max = &policy.limits.max;
    let builtin = EffectiveLimits::BUILTIN;
    let mut report = |key: &str, max_text: String, builtin_text: String| {
        problems.push(problem(
            format!("limits.max.{key}"),
            format!(
                "{max_text} is below moat's built-in default of {builtin_text}, which applies \
                 because limits.default.{key} is not set; set limits.default.{key} to at most \
                 {max_text}"
            ),
        ));
    };

    if default.timeout.is_none()
        && let Some(value) = max.timeout
        && value.0 < builtin.timeout
    {
        report(
            "timeout",
            quoted(value),
            quoted(HumanDuration(builtin.timeout)),
        );
    }
    if default.fuel.is_none()
        && let Some(value) = max.fuel
        && value < builtin.fuel
    {
        report("fuel", value.to_string(), builtin.fuel.to_string());
    }
    for (key, set_default, value, builtin_bytes) in [
        ("memory", default.memory, max.memory, builtin.memory_bytes),
        ("stdout", default.stdout, max.stdout, builtin.stdout_bytes),
        ("stderr", default.stderr, max.stderr, builtin.stderr_bytes),
    ] {
        if set_default.is_none()
            && let Some(value) = value
            && value.0 < builtin_bytes
        {
            report(key, quoted(value), quoted(ByteSize(builtin_bytes)));
        }
    }
}

/// `value` as a TOML string, the way a policy file writes sizes and
/// durations.
fn quoted(value: impl std::fmt::Display) -> String {
    format!("{:?}", value.to_string())
}

fn check_filesystem(policy: &Policy, problems: &mut Vec<Problem>) {
    let mut guests: Vec<&str> = vec![WORKSPACE_GUEST_PATH];
    for (index, rule) in policy.filesystem.iter().enumerate() {
        let path = |key: &str| format!("filesystem[{index}].{key}");
        if rule.host.trim().is_empty() {
            problems.push(problem(
                path("host"),
                "must name a host directory, such as \"data\" (relative to the policy file)",
            ));
        } else if rule.host.chars().any(char::is_control) {
            problems.push(problem(
                path("host"),
                format!("{:?} must not contain control characters", rule.host),
            ));
        }

        if let Some(reason) = guest_path_problem(&rule.guest) {
            problems.push(problem(path("guest"), reason));
            continue;
        }
        if let Some(other) = guests.iter().find(|other| nests(other, &rule.guest)) {
            let message = match *other == WORKSPACE_GUEST_PATH {
                true => format!(
                    "{:?} overlaps {WORKSPACE_GUEST_PATH}, the scratch directory every run gets; \
                     choose another path, such as \"/data\"",
                    rule.guest
                ),
                false => format!(
                    "{:?} overlaps {other:?}, which an earlier grant mounts; choose another path",
                    rule.guest
                ),
            };
            problems.push(problem(path("guest"), message));
        }
        guests.push(&rule.guest);
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
            "must be greater than zero, such as 16",
        ));
    }

    let idle = sessions.effective_idle_timeout();
    let lifetime = sessions.effective_max_lifetime();
    if sessions.idle_timeout.is_some() && !idle.is_zero() && !lifetime.is_zero() && idle > lifetime
    {
        problems.push(problem(
            "sessions.idle_timeout",
            format!(
                "{} is longer than the maximum lifetime of {}, so it never applies; \
                 lower idle_timeout or raise max_lifetime",
                quoted(HumanDuration(idle)),
                quoted(HumanDuration(lifetime))
            ),
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
    if path.contains('\\') || path.chars().any(char::is_control) {
        return Some(format!(
            "{path:?} must not contain backslashes or control characters"
        ));
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
