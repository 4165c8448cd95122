//! Checks of the egress rules and of the secrets injected into them.

use std::collections::{HashMap, HashSet};

use super::{problem, valid_name};
use crate::Problem;
use crate::model::{EgressRule, Policy};

/// Headers that frame the request or the connection. The gate sets them
/// itself, so a secret injected into one could smuggle a second request or
/// send the first to another host.
const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Methods no rule may allow: CONNECT opens a tunnel the gate cannot
/// inspect, and TRACE echoes the request back, injected secrets included.
const FORBIDDEN_METHODS: &[&str] = &["CONNECT", "TRACE"];

/// Checks one egress rule and records its name in `names`.
pub(super) fn check_egress_rule(
    index: usize,
    rule: &EgressRule,
    names: &mut HashSet<String>,
    problems: &mut Vec<Problem>,
) {
    let path = |key: &str| format!("egress[{index}].{key}");

    if !valid_name(&rule.name) {
        problems.push(problem(
            path("name"),
            format!(
                "{:?} is not a valid rule name: use 1 to 64 letters, digits, '-' and '_', \
                 such as \"exchange-rates\"",
                rule.name
            ),
        ));
    } else if !names.insert(rule.name.clone()) {
        problems.push(problem(
            path("name"),
            format!(
                "{:?} is used by an earlier rule; give each rule a unique name",
                rule.name
            ),
        ));
    }

    if let Some(reason) = host_pattern_problem(&rule.host) {
        problems.push(problem(path("host"), format!("{:?} {reason}", rule.host)));
    }
    if rule.port == Some(0) {
        problems.push(problem(
            path("port"),
            "must be between 1 and 65535; remove the key to use the scheme's port (443 or 80)",
        ));
    }
    check_methods(index, rule, problems);
    for (path_index, prefix) in rule.paths.iter().enumerate() {
        if let Some(reason) = path_prefix_problem(prefix) {
            problems.push(problem(
                format!("egress[{index}].paths[{path_index}]"),
                format!("{prefix:?} {reason}"),
            ));
        }
    }
    check_budgets(index, rule, problems);
}

fn check_methods(index: usize, rule: &EgressRule, problems: &mut Vec<Problem>) {
    let mut seen = HashSet::new();
    for (method_index, method) in rule.methods.iter().enumerate() {
        let path = format!("egress[{index}].methods[{method_index}]");
        let is_token = !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphabetic());
        if !is_token {
            problems.push(problem(
                path,
                format!("{method:?} is not an HTTP method: use a name such as \"GET\" or \"POST\""),
            ));
        } else if method.bytes().any(|b| b.is_ascii_lowercase()) {
            problems.push(problem(
                path,
                format!(
                    "{method:?} must be upper case, as HTTP methods are case-sensitive: write {:?}",
                    method.to_ascii_uppercase()
                ),
            ));
        } else if FORBIDDEN_METHODS.contains(&method.as_str()) {
            problems.push(problem(
                path,
                format!(
                    "{method:?} cannot be allowed: CONNECT opens a tunnel the gate cannot inspect \
                     and TRACE echoes injected secrets back; remove it"
                ),
            ));
        } else if !seen.insert(method.as_str()) {
            problems.push(problem(
                path,
                format!("{method:?} is listed twice; remove the repeat"),
            ));
        }
    }
}

fn check_budgets(index: usize, rule: &EgressRule, problems: &mut Vec<Problem>) {
    let path = |key: &str| format!("egress[{index}].{key}");
    if rule.max_requests == Some(0) {
        problems.push(problem(
            path("max_requests"),
            "must be greater than zero, such as 100; remove the rule to allow no requests",
        ));
    }
    for (key, value) in [
        ("max_bytes", rule.max_bytes),
        ("max_response_bytes", rule.max_response_bytes),
        ("max_request_bytes", rule.max_request_bytes),
    ] {
        if value.is_some_and(|v| v.0 == 0) {
            problems.push(problem(
                path(key),
                "must be greater than zero, such as \"10MiB\"; remove the key for no cap",
            ));
        }
    }
    if rule.timeout.is_some_and(|t| t.0.is_zero()) {
        problems.push(problem(
            path("timeout"),
            "must be greater than zero, such as \"10s\"",
        ));
    }
}

/// Checks every secret: its name, its one source, the rule it is bound to,
/// and the header it is written into.
pub(super) fn check_secrets(
    policy: &Policy,
    rule_names: &HashSet<String>,
    problems: &mut Vec<Problem>,
) {
    let mut names = HashSet::new();
    // (rule, lowercase header) -> name of the first secret written there.
    let mut targets: HashMap<(&str, String), &str> = HashMap::new();

    for (index, secret) in policy.secrets.iter().enumerate() {
        let path = |key: &str| format!("secrets[{index}].{key}");

        if !valid_name(&secret.name) {
            problems.push(problem(
                path("name"),
                format!(
                    "{:?} is not a valid secret name: use 1 to 64 letters, digits, '-' and '_', \
                     such as \"rates-token\"",
                    secret.name
                ),
            ));
        } else if !names.insert(secret.name.as_str()) {
            problems.push(problem(
                path("name"),
                format!(
                    "{:?} is used by an earlier secret; give each secret a unique name",
                    secret.name
                ),
            ));
        }

        match (&secret.env, &secret.file) {
            // The key that is missing has no line, so the problem points at
            // the secret's table.
            (None, None) => problems.push(problem(
                format!("secrets[{index}]"),
                "has no source: set env = \"VARIABLE\" or file = \"path\"",
            )),
            (Some(_), Some(_)) => problems.push(problem(
                path("file"),
                "is set together with env: a secret has one source, so remove env or file",
            )),
            (Some(variable), None) => {
                let valid = !variable.is_empty()
                    && variable
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !valid {
                    problems.push(problem(
                        path("env"),
                        format!(
                            "{variable:?} is not an environment variable name: use letters, \
                             digits and '_', such as \"RATES_TOKEN\""
                        ),
                    ));
                }
            }
            (None, Some(file)) => {
                if file.trim().is_empty() || file.chars().any(char::is_control) {
                    problems.push(problem(
                        path("file"),
                        format!("{file:?} is not a file path: name the file that holds the value"),
                    ));
                }
            }
        }

        if !rule_names.contains(&secret.rule) {
            problems.push(problem(
                path("rule"),
                format!(
                    "{:?} is not the name of an egress rule in this policy; use one of: {}",
                    secret.rule,
                    rule_list(policy)
                ),
            ));
        }

        if let Some(reason) = header_problem(&secret.header) {
            problems.push(problem(
                path("header"),
                format!("{:?} {reason}", secret.header),
            ));
        } else {
            let key = (secret.rule.as_str(), secret.header.to_ascii_lowercase());
            if let Some(first) = targets.get(&key) {
                problems.push(problem(
                    path("header"),
                    format!(
                        "{:?} on rule {:?} is already written by secret {first:?}; \
                         bind each header of a rule to one secret",
                        secret.header, secret.rule
                    ),
                ));
            } else {
                targets.insert(key, &secret.name);
            }
        }

        if let Some(format) = &secret.format {
            if format.matches("{value}").count() != 1 {
                problems.push(problem(
                    path("format"),
                    "must contain \"{value}\" exactly once, such as \"Bearer {value}\"",
                ));
            } else if format.chars().any(char::is_control) {
                problems.push(problem(
                    path("format"),
                    "must not contain control characters such as line breaks, \
                     which would end the header early",
                ));
            }
        }
    }
}

/// Lists the names of the policy's egress rules, quoted, for messages.
fn rule_list(policy: &Policy) -> String {
    if policy.egress.is_empty() {
        return "none, because the policy has no [[egress]] rules".into();
    }
    let names: Vec<String> = policy
        .egress
        .iter()
        .map(|rule| format!("{:?}", rule.name))
        .collect();
    names.join(", ")
}

/// Describes what is wrong with a header name that carries a secret, if anything.
fn header_problem(header: &str) -> Option<String> {
    let is_token = !header.is_empty()
        && header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !is_token {
        return Some(
            "is not a valid header name: use letters, digits and '-', such as \"Authorization\""
                .into(),
        );
    }
    if RESERVED_HEADERS.contains(&header.to_ascii_lowercase().as_str()) {
        return Some(
            "is set by the gate itself, so a secret cannot be written into it; \
             use a header such as \"Authorization\""
                .into(),
        );
    }
    None
}

/// Describes what is wrong with an egress path prefix, if anything.
fn path_prefix_problem(prefix: &str) -> Option<&'static str> {
    if !prefix.starts_with('/') {
        return Some("must start with '/', such as \"/v1/\"");
    }
    if prefix
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Some(
            "must not contain \".\" or \"..\" segments: write the path the server sees, such as \"/v1/\"",
        );
    }
    if prefix.contains('?') || prefix.contains('#') {
        return Some(
            "must not contain '?' or '#': the gate matches the path only, without query or fragment",
        );
    }
    if prefix.contains('\\') || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain backslashes, spaces or control characters");
    }
    None
}

/// Describes what is wrong with an egress host pattern, if anything.
fn host_pattern_problem(host: &str) -> Option<String> {
    if host.is_empty() {
        return Some("is empty: name a host, such as \"api.example.com\"".into());
    }
    if host.contains("://") {
        return Some(
            "is a URL: write the host name alone, such as \"api.example.com\", \
             and set scheme, port and paths in their own keys"
                .into(),
        );
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
    if host.contains('/') {
        return Some("contains a path: put path prefixes in paths, such as [\"/v1/\"]".into());
    }
    if is_numeric_ipv4_form(host) {
        // URLs read such a host as an IPv4 address and rewrite it to dotted
        // decimal, so the rule would never match the host as written.
        return Some(
            "is an IPv4 address in a numeric form that URLs rewrite (such as 2130706433, \
             0x7f.1 or 127.1): write the address as four decimal numbers, such as \
             \"127.0.0.1\""
                .into(),
        );
    }
    if host.contains(':') {
        return Some("contains a port: write the host name alone and set port = 8443".into());
    }

    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.contains('*') {
        return Some(
            "may use '*' only as the whole first label, as in \"*.example.com\"; \
             it matches any subdomain"
                .into(),
        );
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
            "is not a valid host name: use lowercase letters, digits, '-' and dots, \
             such as \"api.example.com\""
                .into(),
        );
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some(format!(
            "must be lowercase: write {:?}",
            host.to_ascii_lowercase()
        ));
    }
    None
}

/// Whether `host` is one of the IPv4 spellings that the URL standard
/// accepts besides plain dotted decimal: its last label is a number, in
/// decimal, octal (leading 0) or hexadecimal (`0x`).
fn is_numeric_ipv4_form(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or(host);
    let numeric = match last.strip_prefix("0x").or_else(|| last.strip_prefix("0X")) {
        Some(hex) => hex.chars().all(|c| c.is_ascii_hexdigit()),
        None => !last.is_empty() && last.chars().all(|c| c.is_ascii_digit()),
    };
    numeric && host.parse::<std::net::Ipv4Addr>().is_err()
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
            "*.*.example.com",
            "exa mple.com",
            "-a.com",
            "API.example.com",
            "api.example.com.",
            "https://api.example.com",
            "api.example.com:443",
            "api.example.com/v1",
            "2130706433",
            "0x7f000001",
            "127.1",
            "0x7f.0.0.1",
            "127.0.0.01",
            "example.0x10",
        ] {
            assert!(
                host_pattern_problem(bad).is_some(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn path_prefixes() {
        for good in ["/", "/v1/", "/v1", "/a..b/"] {
            assert_eq!(path_prefix_problem(good), None, "{good}");
        }
        for bad in [
            "v1/",
            "/v1/../admin",
            "/v1/./x",
            "/v1/..",
            "/v1?x=1",
            "/v1#x",
            "/a\\b",
            "/a b",
        ] {
            assert!(
                path_prefix_problem(bad).is_some(),
                "{bad} should be rejected"
            );
        }
    }
}
