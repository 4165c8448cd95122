//! Turns a policy file and command-line overrides into what the runtime
//! needs: limits, directory grants and the egress gate.

use std::path::Path;

use anyhow::{Context, bail};
use moat_egress::{Gate, GateConfig, ResolveOverride, Secret};
use moat_policy::{AccessMode, LimitValues, LoadedPolicy, Policy};
use moat_runtime::{DirGrant, Limits};

/// Loads the policy at `path`, or the built-in default without one.
pub fn load_policy(path: Option<&Path>) -> anyhow::Result<LoadedPolicy> {
    match path {
        Some(path) => Ok(Policy::load(path)?),
        None => Ok(LoadedPolicy::builtin()),
    }
}

/// Limits with each value taken from `values` where set, else `base`.
fn overlay(base: Limits, values: &LimitValues) -> Limits {
    Limits {
        timeout: values.timeout.map(|t| t.0).unwrap_or(base.timeout),
        fuel: values.fuel.unwrap_or(base.fuel),
        memory_bytes: values.memory.map(|m| m.0).unwrap_or(base.memory_bytes),
        stdout_bytes: values.stdout.map(|s| s.0).unwrap_or(base.stdout_bytes),
        stderr_bytes: values.stderr.map(|s| s.0).unwrap_or(base.stderr_bytes),
    }
}

/// The policy's default limits and its maxima. A maximum the policy does
/// not set equals the default, so a caller cannot raise that limit.
pub fn policy_limits(policy: &Policy) -> (Limits, Limits) {
    let defaults = overlay(Limits::default(), &policy.limits.default);
    let maxima = overlay(defaults, &policy.limits.max);
    (defaults, maxima)
}

/// Limits requested on the command line, each optional.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestedLimits {
    pub timeout: Option<std::time::Duration>,
    pub fuel: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub stdout_bytes: Option<u64>,
    pub stderr_bytes: Option<u64>,
}

/// The limits for a run: requested values where given, else the policy's
/// defaults; a requested value above the policy's maximum is an error when
/// a policy file (or an embedded policy such as `moat check`'s) is in force.
pub fn resolve_limits(policy: &LoadedPolicy, requested: RequestedLimits) -> anyhow::Result<Limits> {
    let (defaults, maxima) = policy_limits(&policy.policy);
    let enforce_maxima = policy.path.is_some() || !policy.text.is_empty();

    let pick = |name: &str,
                requested: Option<u64>,
                default: u64,
                max: u64,
                show: &dyn Fn(u64) -> String| {
        let Some(value) = requested else {
            return Ok(default);
        };
        if enforce_maxima && value > max {
            bail!(
                "--{name} {} is above the policy's maximum of {} (limits.max); lower it or raise the maximum in the policy",
                show(value),
                show(max)
            );
        }
        Ok(value)
    };
    let millis = |ms: u64| format!("{ms}ms");
    let bytes = |b: u64| format!("{b} bytes");
    let count = |n: u64| n.to_string();

    let timeout_ms = pick(
        "timeout",
        requested.timeout.map(|t| t.as_millis() as u64),
        defaults.timeout.as_millis() as u64,
        maxima.timeout.as_millis() as u64,
        &millis,
    )?;
    let limits = Limits {
        timeout: std::time::Duration::from_millis(timeout_ms),
        fuel: pick("fuel", requested.fuel, defaults.fuel, maxima.fuel, &count)?,
        memory_bytes: pick(
            "memory",
            requested.memory_bytes,
            defaults.memory_bytes,
            maxima.memory_bytes,
            &bytes,
        )?,
        stdout_bytes: pick(
            "max-stdout",
            requested.stdout_bytes,
            defaults.stdout_bytes,
            maxima.stdout_bytes,
            &bytes,
        )?,
        stderr_bytes: pick(
            "max-stderr",
            requested.stderr_bytes,
            defaults.stderr_bytes,
            maxima.stderr_bytes,
            &bytes,
        )?,
    };
    Ok(limits)
}

/// The policy's directory grants, in the runtime's form.
pub fn policy_grants(policy: &Policy) -> Vec<DirGrant> {
    policy
        .filesystem
        .iter()
        .map(|rule| DirGrant {
            host_path: rule.host.clone().into(),
            guest_path: rule.guest.clone(),
            read_only: rule.mode == AccessMode::Ro,
        })
        .collect()
}

/// Builds the egress gate from the policy's rules and secrets, loading each
/// secret's value now so a missing one fails before any code runs. A
/// policy without rules still gets a gate, which refuses every request and
/// records it for the audit trail.
pub fn build_gate(policy: &Policy, resolve: &[ResolveOverride]) -> anyhow::Result<Gate> {
    let mut secrets = Vec::new();
    for rule in &policy.secrets {
        secrets.push(Secret::load(rule).context("failed to load the policy's secrets")?);
    }
    Ok(Gate::new(GateConfig {
        rules: policy.egress.clone(),
        secrets,
        resolve: resolve.to_vec(),
    }))
}
