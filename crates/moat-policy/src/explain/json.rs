//! The facts of a policy explanation as JSON, for programs such as `moat serve`.

use serde_json::{Value, json};

use crate::defaults::{EffectiveLimits, WORKSPACE_GUEST_PATH};
use crate::model::{CaptureLevel, EgressRule, Policy, SecretRule};
use crate::{BAKED_PYTHON_MODULES, LoadedPolicy};

/// Describes `loaded` as JSON with the facts of [`super::explain`]. Every
/// value is effective: a value the policy leaves unset is moat's built-in
/// one, and `builtin` lists the keys that took it. Durations are in
/// milliseconds and sizes in bytes. Secret values are never read; only
/// their sources appear.
pub fn explain_json(loaded: &LoadedPolicy) -> Value {
    let policy = &loaded.policy;
    json!({
        "name": policy.name,
        "description": policy.description,
        "path": loaded.path.as_ref().map(|path| path.display().to_string()),
        "sha256": loaded.sha256,
        "languages": ["python", "javascript"],
        "limits": limits(policy),
        "filesystem": filesystem(policy),
        "network": network(policy),
        "python": python(policy),
        "secrets": policy.secrets.iter().map(secret).collect::<Vec<_>>(),
        "sessions": sessions(policy),
        "audit": { "capture": capture(policy.audit.capture) },
    })
}

fn limit_values(limits: &EffectiveLimits) -> Value {
    json!({
        "timeout_ms": duration_ms(limits.timeout),
        "fuel": limits.fuel,
        "memory_bytes": limits.memory_bytes,
        "stdout_bytes": limits.stdout_bytes,
        "stderr_bytes": limits.stderr_bytes,
    })
}

fn limits(policy: &Policy) -> Value {
    let section = &policy.limits;
    let mut builtin = Vec::new();
    for (key, is_set) in [
        ("timeout", section.default.timeout.is_some()),
        ("fuel", section.default.fuel.is_some()),
        ("memory", section.default.memory.is_some()),
        ("stdout", section.default.stdout.is_some()),
        ("stderr", section.default.stderr.is_some()),
    ] {
        if !is_set {
            builtin.push(format!("limits.default.{key}"));
        }
    }
    json!({
        "default": limit_values(&section.effective_default()),
        "max": limit_values(&section.effective_max()),
        "builtin": builtin,
    })
}

fn filesystem(policy: &Policy) -> Value {
    let mut mounts = vec![json!({
        "guest": WORKSPACE_GUEST_PATH,
        "host": null,
        "mode": "read-write",
        "scratch": true,
    })];
    for rule in &policy.filesystem {
        mounts.push(json!({
            "guest": rule.guest,
            "host": rule.host,
            "mode": rule.mode.to_string(),
            "scratch": false,
        }));
    }
    Value::Array(mounts)
}

fn network(policy: &Policy) -> Value {
    let rules: Vec<Value> = policy
        .egress
        .iter()
        .map(|rule| egress_rule(policy, rule))
        .collect();
    json!({
        "enabled": !rules.is_empty(),
        "rules": rules,
    })
}

fn egress_rule(policy: &Policy, rule: &EgressRule) -> Value {
    let secrets: Vec<Value> = policy
        .secrets
        .iter()
        .filter(|secret| secret.rule == rule.name)
        .map(|secret| {
            json!({
                "name": secret.name,
                "header": secret.header,
                "format": secret_format(secret),
            })
        })
        .collect();
    let paths: Vec<&str> = match rule.paths.is_empty() {
        true => vec!["/"],
        false => rule.paths.iter().map(String::as_str).collect(),
    };
    json!({
        "name": rule.name,
        "scheme": rule.scheme.as_str(),
        "host": rule.host,
        "wildcard": rule.host.starts_with("*."),
        "port": rule.effective_port(),
        "methods": rule.effective_methods(),
        "path_prefixes": paths,
        "allow_private_addresses": rule.allow_private_addresses,
        "max_requests": rule.max_requests,
        "max_bytes": rule.max_bytes.map(|b| b.0),
        "max_request_bytes": rule.max_request_bytes.map(|b| b.0),
        "max_response_bytes": rule.max_response_bytes.map(|b| b.0),
        "timeout_ms": rule.timeout.map(|t| duration_ms(t.0)),
        "secrets": secrets,
    })
}

fn python(policy: &Policy) -> Value {
    let baked: Vec<&str> = BAKED_PYTHON_MODULES.to_vec();
    match &policy.python.modules {
        None => json!({
            "restricted": false,
            "allowed_modules": baked,
            "baked_modules": baked,
        }),
        Some(modules) => json!({
            "restricted": true,
            "allowed_modules": modules,
            "baked_modules": baked,
        }),
    }
}

fn secret(secret: &SecretRule) -> Value {
    let source = match (&secret.env, &secret.file) {
        (Some(variable), _) => json!({ "env": variable }),
        (None, Some(file)) => json!({ "file": file }),
        (None, None) => Value::Null,
    };
    json!({
        "name": secret.name,
        "source": source,
        "rule": secret.rule,
        "header": secret.header,
        "format": secret_format(secret),
    })
}

fn secret_format(secret: &SecretRule) -> &str {
    secret.format.as_deref().unwrap_or("{value}")
}

fn sessions(policy: &Policy) -> Value {
    let sessions = &policy.sessions;
    json!({
        "idle_timeout_ms": duration_ms(sessions.effective_idle_timeout()),
        "max_lifetime_ms": duration_ms(sessions.effective_max_lifetime()),
        "max_sessions": sessions.effective_max_sessions(),
    })
}

fn capture(level: CaptureLevel) -> &'static str {
    match level {
        CaptureLevel::Full => "full",
        CaptureLevel::Truncated => "truncated",
        CaptureLevel::Hashes => "hashes",
    }
}

/// Milliseconds of `value`, saturating at `u64::MAX`.
fn duration_ms(value: std::time::Duration) -> u64 {
    u64::try_from(value.as_millis()).unwrap_or(u64::MAX)
}
