//! The description of the sandbox under the running configuration, as
//! structured data and as prose for the `describe_sandbox` tool and the
//! `moat://sandbox` resource.

use std::fmt::Write as _;

use moat_runtime::Language;

use crate::state::ServerState;
use crate::types::{AppliedLimits, GrantInfo, LanguageInfo, LanguageName, SandboxDescription};

/// URI of the resource that holds the description.
pub const SANDBOX_URI: &str = "moat://sandbox";

/// The Python guest's module allow-list: the modules its snapshot imports
/// at build time, one a line, `#` starting a comment.
const PYTHON_MODULES: &str = include_str!("../../../guest-runtimes/python/modules.txt");

/// Globals and built-in modules of the JavaScript guest.
const JAVASCRIPT_GLOBALS: &[&str] = &[
    "console",
    "setTimeout",
    "setInterval",
    "setImmediate",
    "clearTimeout",
    "clearInterval",
    "TextEncoder",
    "TextDecoder",
    "structuredClone",
    "process.exit",
    "fs (synchronous, Node-style)",
    "require('fs' | 'fs/promises' | 'util' | 'process')",
];

/// Top-level Python modules in the allow-list, sorted and deduplicated.
pub fn python_modules() -> Vec<String> {
    let mut modules: Vec<String> = PYTHON_MODULES
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(|line| line.split('.').next().unwrap_or(line).to_owned())
        .collect();
    modules.sort();
    modules.dedup();
    modules
}

/// Describes what code may do under `state`'s configuration.
pub fn describe(state: &ServerState) -> SandboxDescription {
    let config = &state.config;
    let languages: Vec<LanguageInfo> = Language::ALL
        .iter()
        .map(|&language| language_info(state, language))
        .collect();
    let grants: Vec<GrantInfo> = config
        .grants
        .iter()
        .map(|grant| GrantInfo {
            guest_path: grant.guest_path.clone(),
            read_only: grant.read_only,
        })
        .collect();

    let mut description = SandboxDescription {
        text: String::new(),
        languages,
        grants,
        default_limits: AppliedLimits::from(&config.default_limits),
        max_limits: AppliedLimits::from(&config.max_limits),
        network: match config.network_rules.is_empty() {
            true => "none".into(),
            false => format!("allow-list: {}", config.network_rules.join("; ")),
        },
        max_sessions: config.max_sessions as u64,
        session_idle_timeout_seconds: config.session_idle_timeout.as_secs(),
        session_max_lifetime_seconds: config.session_max_lifetime.as_secs(),
        max_concurrent_runs: config.max_concurrent_executions as u64,
        max_code_bytes: config.max_code_bytes as u64,
        max_file_bytes: config.max_file_bytes,
    };
    description.text = prose(&description);
    description
}

fn language_info(state: &ServerState, language: Language) -> LanguageInfo {
    let (tool, modules, missing) = match language {
        Language::Python => (
            "run_python",
            python_modules(),
            "pip and third-party packages other than requests (numpy, pandas), and modules that \
             need threads, subprocesses, sockets or native libraries: threading, \
             multiprocessing, subprocess, socket, ssl, ctypes, bz2, lzma",
        ),
        Language::JavaScript => (
            "run_javascript",
            JAVASCRIPT_GLOBALS.iter().map(|g| (*g).to_owned()).collect(),
            "npm packages, ES module imports of packages, XMLHttpRequest, node's net, \
             http, child_process and worker_threads, and the DOM; fetch reaches only the \
             destinations the network allow-list names",
        ),
    };
    LanguageInfo {
        language: LanguageName::from(language),
        tool: tool.into(),
        available: state.guest_error(language).is_none(),
        modules,
        missing: missing.into(),
    }
}

fn prose(description: &SandboxDescription) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "moat runs Python and JavaScript inside a WebAssembly sandbox.\n"
    );

    for language in &description.languages {
        let name = match language.language {
            LanguageName::Python => "Python 3.14 (CPython)",
            LanguageName::Javascript => "JavaScript (QuickJS, ES2023)",
        };
        let state = match language.available {
            true => "",
            false => " [unavailable on this server: its interpreter failed to load]",
        };
        let label = match language.language {
            LanguageName::Python => "importable modules",
            LanguageName::Javascript => "globals",
        };
        let _ = writeln!(text, "{name}, tool {}{state}", language.tool);
        let _ = writeln!(text, "  {label}: {}", language.modules.join(", "));
        let _ = writeln!(text, "  not available: {}\n", language.missing);
    }

    let _ = writeln!(text, "Files:");
    let _ = writeln!(
        text,
        "  /workspace (read-write): a scratch directory, empty for a one-off run, kept \
         for the life of a session; relative paths resolve here"
    );
    for grant in &description.grants {
        let mode = match grant.read_only {
            true => "read-only",
            false => "read-write",
        };
        let _ = writeln!(text, "  {} ({mode}): a host directory", grant.guest_path);
    }
    let _ = writeln!(
        text,
        "  nothing else of the host filesystem exists for the code\n"
    );

    if description.network == "none" {
        let _ = writeln!(
            text,
            "Network: none. Sockets and DNS do not exist, and HTTP requests (Python's \
             urllib and requests, JavaScript's fetch) fail with a denial.\n"
        );
    } else {
        let _ = writeln!(
            text,
            "Network: HTTP only, through Python's urllib and requests or JavaScript's fetch, \
             to these destinations ({}). Every other request fails with a denial that names \
             the rule; sockets and DNS do not exist.\n",
            description.network.trim_start_matches("allow-list: ")
        );
    }

    let defaults = &description.default_limits;
    let maxima = &description.max_limits;
    let _ = writeln!(
        text,
        "Limits per run (default, and the maximum a run may ask for through `limits`):"
    );
    let _ = writeln!(
        text,
        "  timeout_ms: {} (max {}), outcome timeout",
        defaults.timeout_ms, maxima.timeout_ms
    );
    let _ = writeln!(
        text,
        "  fuel (instructions): {} (max {}), outcome fuel_exhausted",
        defaults.fuel, maxima.fuel
    );
    let _ = writeln!(
        text,
        "  memory_bytes: {} (max {}), outcome memory_limit",
        defaults.memory_bytes, maxima.memory_bytes
    );
    let _ = writeln!(
        text,
        "  stdout_bytes: {} (max {}), stderr_bytes: {} (max {}), outcome output_truncated\n",
        defaults.stdout_bytes, maxima.stdout_bytes, defaults.stderr_bytes, maxima.stderr_bytes
    );

    let _ = writeln!(
        text,
        "Sessions: at most {} open; one closes after {} s unused or {} s in total. \
         A run that hits a limit or is cancelled restarts its session's interpreter: \
         files stay, variables are lost.",
        description.max_sessions,
        description.session_idle_timeout_seconds,
        description.session_max_lifetime_seconds
    );
    let _ = writeln!(
        text,
        "Server: at most {} runs at once (more get a busy error); code up to {} bytes; \
         files up to {} bytes each.",
        description.max_concurrent_runs, description.max_code_bytes, description.max_file_bytes
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_modules_include_the_basics() {
        let modules = python_modules();
        for expected in ["json", "csv", "sqlite3", "xml"] {
            assert!(
                modules.iter().any(|m| m == expected),
                "{expected} missing from {modules:?}"
            );
        }
        assert!(!modules.iter().any(|m| m.contains('.')));
    }
}
