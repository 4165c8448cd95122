//! The policy file's structure: what a guest may do, section by section.
//!
//! Every struct rejects unknown keys, so a misspelt key is an error with its
//! line instead of a silently ignored setting.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::{ByteSize, HumanDuration};

/// A whole policy file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Short name shown in explanations and audit records, such as
    /// "analyst".
    #[serde(default)]
    pub name: Option<String>,
    /// What the policy is for, in a sentence or two.
    #[serde(default)]
    pub description: Option<String>,
    /// Resource limits: defaults for each run and maxima a caller may
    /// request.
    #[serde(default)]
    pub limits: LimitsSection,
    /// Host directories the guest sees, besides its scratch /workspace.
    #[serde(default)]
    pub filesystem: Vec<DirRule>,
    /// Network destinations the guest may reach through the HTTP gate.
    /// Empty: no network at all.
    #[serde(default)]
    pub egress: Vec<EgressRule>,
    /// Python-specific settings.
    #[serde(default)]
    pub python: PythonSection,
    /// Secrets the gate injects into allowed requests; guest code never
    /// sees their values.
    #[serde(default)]
    pub secrets: Vec<SecretRule>,
    /// Interactive sessions kept by `moat serve`.
    #[serde(default)]
    pub sessions: SessionsSection,
    /// What the audit trail keeps of each run.
    #[serde(default)]
    pub audit: AuditSection,
}

/// Limits for one run. A missing value takes moat's built-in default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitValues {
    /// Wall-clock time, host calls included.
    pub timeout: Option<HumanDuration>,
    /// WebAssembly instructions.
    pub fuel: Option<u64>,
    /// Linear memory.
    pub memory: Option<ByteSize>,
    /// Captured standard output.
    pub stdout: Option<ByteSize>,
    /// Captured standard error.
    pub stderr: Option<ByteSize>,
}

/// Default limits and the maxima a caller may raise them to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Limits applied when the caller asks for none.
    #[serde(default)]
    pub default: LimitValues,
    /// Highest limits a caller may request; a missing maximum equals the
    /// default.
    #[serde(default)]
    pub max: LimitValues,
}

/// Whether a grant may be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccessMode {
    /// Read only.
    #[default]
    Ro,
    /// Read and write.
    Rw,
}

/// One host directory shown to the guest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirRule {
    /// Directory on the host. A relative path is relative to the policy
    /// file's directory.
    pub host: String,
    /// Absolute path where the guest sees it, such as "/data".
    pub guest: String,
    /// "ro" (the default) or "rw".
    #[serde(default)]
    pub mode: AccessMode,
}

/// URL scheme an egress rule allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// TLS; the default.
    #[default]
    Https,
    /// Plain text; only sensible for hosts on a trusted network.
    Http,
}

impl Scheme {
    /// The scheme's name as URLs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }

    /// The port a URL of this scheme uses when it names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http => 80,
        }
    }
}

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EgressRule {
    /// Name shown in refusals and audit records, such as "exchange-rates".
    pub name: String,
    /// "https" (the default) or "http".
    #[serde(default)]
    pub scheme: Scheme,
    /// Exact host name, or "*.example.com" for any subdomain of
    /// example.com (not example.com itself). An IP address literal is
    /// allowed too.
    pub host: String,
    /// Port; defaults to the scheme's (443 or 80).
    pub port: Option<u16>,
    /// Allowed methods; defaults to GET and HEAD.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Allowed path prefixes, each starting with "/"; defaults to every
    /// path.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Allow this host to resolve to loopback, private, link-local or other
    /// special addresses. Off by default, which protects internal services
    /// and cloud metadata endpoints from server-side request forgery.
    #[serde(default)]
    pub allow_private_addresses: bool,
    /// Requests one run may send under this rule.
    pub max_requests: Option<u32>,
    /// Bytes one run may send and receive under this rule, counting request
    /// and response bodies (headers are capped by the HTTP client).
    pub max_bytes: Option<ByteSize>,
    /// Largest response body accepted.
    pub max_response_bytes: Option<ByteSize>,
    /// Largest request body accepted.
    pub max_request_bytes: Option<ByteSize>,
    /// Time allowed for one request, connection included.
    pub timeout: Option<HumanDuration>,
}

/// Python-specific settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PythonSection {
    /// Modules guest code may import by name: a subset of those baked into
    /// the Python guest. Missing: every baked module.
    pub modules: Option<Vec<String>>,
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRule {
    /// Name used in explanations and audit records.
    pub name: String,
    /// Environment variable of the moat process that holds the value.
    pub env: Option<String>,
    /// File that holds the value (trailing newline removed). A relative
    /// path is relative to the policy file's directory.
    pub file: Option<String>,
    /// Name of the egress rule whose requests carry the secret.
    pub rule: String,
    /// Header that carries it, such as "Authorization".
    pub header: String,
    /// Header value with `{value}` where the secret goes; defaults to
    /// "{value}". For example "Bearer {value}".
    pub format: Option<String>,
}

/// Session settings for `moat serve`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionsSection {
    /// A session unused this long is closed.
    pub idle_timeout: Option<HumanDuration>,
    /// A session is closed this long after it was created.
    pub max_lifetime: Option<HumanDuration>,
    /// Sessions open at once.
    pub max_sessions: Option<u32>,
}

/// How much of each run the audit trail keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CaptureLevel {
    /// Code, inputs and outputs in full.
    #[default]
    Full,
    /// Code, inputs and outputs cut to a fixed size.
    Truncated,
    /// Only SHA-256 hashes of code, inputs and outputs.
    Hashes,
}

/// Audit settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// "full" (the default), "truncated" or "hashes".
    #[serde(default)]
    pub capture: CaptureLevel,
}
