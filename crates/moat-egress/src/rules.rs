//! Matching a parsed request against the policy's egress rules.

use moat_policy::EgressRule;
use url::{Host, Url};

/// Methods a rule allows when it lists none.
const DEFAULT_METHODS: [&str; 2] = ["GET", "HEAD"];

/// The request's facts that rules look at, taken from a parsed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http` or `https`.
    pub scheme: String,
    /// Host in canonical form: lowercase name, dotted IPv4, or IPv6
    /// without brackets.
    pub host: String,
    /// Whether the host is an IP address literal.
    pub host_is_ip: bool,
    /// Port, explicit or the scheme's default.
    pub port: u16,
    /// Normalized path, `..` segments already removed by the URL parser.
    pub path: String,
    /// Upper-case method.
    pub method: String,
}

impl Target {
    /// Extracts the facts from `url`, which must be http or https with a
    /// host.
    pub fn new(url: &Url, method: &str) -> Option<Target> {
        let (host, host_is_ip) = match url.host()? {
            Host::Domain(name) => (name.trim_end_matches('.').to_ascii_lowercase(), false),
            Host::Ipv4(address) => (address.to_string(), true),
            Host::Ipv6(address) => (address.to_string(), true),
        };
        Some(Target {
            scheme: url.scheme().to_owned(),
            host,
            host_is_ip,
            port: url.port_or_known_default()?,
            path: url.path().to_owned(),
            method: method.to_owned(),
        })
    }
}

/// The outcome of matching: the rule that allows the request, or the
/// reason none does.
#[derive(Debug)]
pub enum Verdict<'a> {
    /// The first rule that allows everything about the request.
    Allowed(&'a EgressRule),
    /// No rule allows it. The message names what the closest rule lacks.
    Denied(String),
}

/// Finds the first rule that allows `target`.
pub fn evaluate<'a>(rules: &'a [EgressRule], target: &Target) -> Verdict<'a> {
    if rules.is_empty() {
        return Verdict::Denied(
            "network access is denied: the policy has no egress rules".to_owned(),
        );
    }

    // The most specific reason wins, because a rule that matches the host
    // but not the method is more useful than "no rule for this host".
    let mut best: Option<(u8, String)> = None;
    let mut consider = |rank: u8, reason: String| {
        if best.as_ref().is_none_or(|(best_rank, _)| rank > *best_rank) {
            best = Some((rank, reason));
        }
    };

    for rule in rules {
        if !host_matches(&rule.host, &target.host) {
            continue;
        }
        if rule.scheme.as_str() != target.scheme {
            consider(
                1,
                format!(
                    "egress rule {:?} allows {}://{} but the request uses {}",
                    rule.name,
                    rule.scheme.as_str(),
                    rule.host,
                    target.scheme
                ),
            );
            continue;
        }
        let port = rule.port.unwrap_or(rule.scheme.default_port());
        if port != target.port {
            consider(
                2,
                format!(
                    "egress rule {:?} allows port {port} of {} but the request uses port {}",
                    rule.name, rule.host, target.port
                ),
            );
            continue;
        }
        if !method_allowed(rule, &target.method) {
            consider(
                3,
                format!(
                    "egress rule {:?} allows {} to {} but not {}",
                    rule.name,
                    allowed_methods(rule).join(", "),
                    rule.host,
                    target.method
                ),
            );
            continue;
        }
        if !path_allowed(rule, &target.path) {
            consider(
                4,
                format!(
                    "egress rule {:?} allows paths {} on {} but not {}",
                    rule.name,
                    rule.paths.join(", "),
                    rule.host,
                    target.path
                ),
            );
            continue;
        }
        return Verdict::Allowed(rule);
    }

    let reason = best
        .map(|(_, reason)| reason)
        .unwrap_or_else(|| format!("no egress rule allows host {}", target.host));
    Verdict::Denied(format!("request denied by policy: {reason}"))
}

/// Returns whether a rule's host pattern covers `host`: an exact match, or for
/// `*.example.com` any name ending in `.example.com` (not the bare domain).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(domain) => {
            host.len() > domain.len() + 1
                && host.ends_with(domain)
                && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
        }
        None => match (
            pattern.parse::<std::net::IpAddr>(),
            host.parse::<std::net::IpAddr>(),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => pattern == host,
        },
    }
}

fn allowed_methods(rule: &EgressRule) -> Vec<String> {
    match rule.methods.is_empty() {
        true => DEFAULT_METHODS.iter().map(|m| (*m).to_owned()).collect(),
        false => rule.methods.clone(),
    }
}

fn method_allowed(rule: &EgressRule, method: &str) -> bool {
    allowed_methods(rule)
        .iter()
        .any(|allowed| allowed == method)
}

/// Returns whether `path` falls under one of the rule's prefixes. A prefix
/// ending in `/` matches anything below it. Any other prefix matches itself
/// and paths that continue with `/`, so `/v1` matches `/v1/x` but not `/v10`.
fn path_allowed(rule: &EgressRule, path: &str) -> bool {
    if rule.paths.is_empty() {
        return true;
    }
    rule.paths.iter().any(|prefix| {
        if prefix.ends_with('/') {
            return path.starts_with(prefix.as_str());
        }
        path == prefix
            || path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_policy::Scheme;

    fn rule(name: &str, host: &str) -> EgressRule {
        EgressRule {
            name: name.into(),
            scheme: Scheme::Https,
            host: host.into(),
            port: None,
            methods: vec![],
            paths: vec![],
            allow_private_addresses: false,
            max_requests: None,
            max_bytes: None,
            max_response_bytes: None,
            max_request_bytes: None,
            timeout: None,
        }
    }

    fn target(url: &str, method: &str) -> Target {
        Target::new(&Url::parse(url).expect("valid url"), method).expect("has a host")
    }

    #[test]
    fn wildcard_hosts() {
        assert!(host_matches("*.example.com", "api.example.com"));
        assert!(host_matches("*.example.com", "a.b.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "badexample.com"));
        assert!(!host_matches("*.example.com", "example.com.evil.net"));
    }

    #[test]
    fn exact_host_and_ip() {
        assert!(host_matches("api.example.com", "api.example.com"));
        assert!(!host_matches("api.example.com", "api.example.com.evil.net"));
        assert!(host_matches("::1", "::1"));
        assert!(host_matches("[::1]", "::1"));
    }

    #[test]
    fn denial_names_closest_rule() {
        let mut rates = rule("rates", "api.example.com");
        rates.paths = vec!["/v1/".into()];
        let rules = vec![rates];

        let Verdict::Denied(reason) =
            evaluate(&rules, &target("https://api.example.com/v1/x", "POST"))
        else {
            panic!("POST should be denied");
        };
        assert_eq!(
            reason,
            "request denied by policy: egress rule \"rates\" allows GET, HEAD to api.example.com but not POST"
        );

        let Verdict::Denied(reason) =
            evaluate(&rules, &target("https://api.example.com/admin", "GET"))
        else {
            panic!("path should be denied");
        };
        assert_eq!(
            reason,
            "request denied by policy: egress rule \"rates\" allows paths /v1/ on api.example.com but not /admin"
        );

        let Verdict::Denied(reason) = evaluate(&rules, &target("https://evil.example.net/", "GET"))
        else {
            panic!("host should be denied");
        };
        assert_eq!(
            reason,
            "request denied by policy: no egress rule allows host evil.example.net"
        );

        assert!(matches!(
            evaluate(&rules, &target("https://api.example.com/v1/rates", "GET")),
            Verdict::Allowed(_)
        ));
    }

    #[test]
    fn dot_dot_is_normalized_before_matching() {
        let mut rates = rule("rates", "api.example.com");
        rates.paths = vec!["/v1/".into()];
        let rules = vec![rates];
        for url in [
            "https://api.example.com/v1/../admin",
            "https://api.example.com/v1/%2e%2e/admin",
        ] {
            assert!(
                matches!(evaluate(&rules, &target(url, "GET")), Verdict::Denied(_)),
                "{url}"
            );
        }
    }

    #[test]
    fn path_prefix_is_segment_aware() {
        let mut rates = rule("rates", "api.example.com");
        rates.paths = vec!["/v1".into()];
        let rules = vec![rates];
        assert!(matches!(
            evaluate(&rules, &target("https://api.example.com/v1/x", "GET")),
            Verdict::Allowed(_)
        ));
        assert!(matches!(
            evaluate(&rules, &target("https://api.example.com/v10", "GET")),
            Verdict::Denied(_)
        ));
    }

    #[test]
    fn ipv4_forms_are_canonical() {
        for url in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
        ] {
            assert_eq!(target(url, "GET").host, "127.0.0.1", "{url}");
        }
    }
}
