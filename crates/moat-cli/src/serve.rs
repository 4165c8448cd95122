//! `moat serve`: the MCP server over stdio or streamable HTTP.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use moat_mcp::http::HttpOptions;
use moat_mcp::{ServerConfig, ServerState};
use moat_policy::LoadedPolicy;
use moat_runtime::{
    DEFAULT_FUEL, DEFAULT_MEMORY_BYTES, DEFAULT_STDERR_BYTES, DEFAULT_STDOUT_BYTES, DirGrant,
    Limits, Runtime,
};
use tokio_util::sync::CancellationToken;

use crate::EngineArgs;
use crate::recording::{WhoArgs, open_store};
use crate::units::{parse_bytes, parse_count, parse_duration};

/// Time the process waits for blocked threads (such as a pending read of
/// standard input) after the server stopped.
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// Arguments of `moat serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = SERVE_HELP)]
pub struct ServeArgs {
    /// Policy file for every run. With one, limits (defaults and maxima),
    /// sessions, directories, Python modules and network access come from
    /// the policy, and the limit and session flags below are not used
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,

    /// Pin a host name to an address for egress, as curl does:
    /// HOST:PORT:ADDR (repeatable)
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = moat_egress::ResolveOverride::parse)]
    resolve: Vec<moat_egress::ResolveOverride>,

    /// Serve streamable HTTP on ADDR (such as 127.0.0.1:8080, or a port
    /// alone for loopback) instead of stdio; the endpoint is /mcp
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,

    /// File whose first line is the bearer token HTTP clients must send
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,

    /// Bearer token HTTP clients must send (prefer MOAT_TOKEN or
    /// --token-file: a flag is visible to other local users)
    #[arg(long, env = "MOAT_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Serve HTTP without a token; allowed only on a loopback address
    #[arg(long, conflicts_with_all = ["token", "token_file"])]
    no_auth: bool,

    /// Extra Host name accepted over HTTP besides the bound address and
    /// localhost, such as moat.internal or moat.internal:8080 (repeatable)
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,

    /// Default wall-clock limit of a run, such as 30s
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    timeout: Duration,

    /// Highest wall-clock limit a run may ask for
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    timeout_ceiling: Duration,

    /// Default instruction budget of a run
    #[arg(long, value_name = "N", value_parser = parse_count, default_value_t = DEFAULT_FUEL)]
    fuel: u64,

    /// Highest instruction budget a run may ask for
    #[arg(long, value_name = "N", value_parser = parse_count,
          default_value_t = moat_mcp::MAX_RUN_FUEL)]
    fuel_ceiling: u64,

    /// Default linear memory limit of a run, such as 256MiB
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes,
          default_value_t = DEFAULT_MEMORY_BYTES)]
    memory: u64,

    /// Highest memory limit a run may ask for
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes,
          default_value_t = moat_mcp::MAX_RUN_MEMORY_BYTES)]
    memory_ceiling: u64,

    /// Default bytes of stdout kept before a run is stopped
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes,
          default_value_t = DEFAULT_STDOUT_BYTES)]
    max_stdout: u64,

    /// Default bytes of stderr kept before a run is stopped
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes,
          default_value_t = DEFAULT_STDERR_BYTES)]
    max_stderr: u64,

    /// Highest stdout or stderr cap a run may ask for
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes,
          default_value_t = moat_mcp::MAX_RUN_OUTPUT_BYTES)]
    output_ceiling: u64,

    /// Time an unused session stays open, such as 15m
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "15m")]
    session_idle_timeout: Duration,

    /// Time a session stays open in total (at most 24h)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "240m")]
    session_max_lifetime: Duration,

    /// Sessions open at once
    #[arg(long, value_name = "N", default_value_t = moat_mcp::DEFAULT_MAX_SESSIONS)]
    max_sessions: usize,

    /// Runs executing at once across all sessions; more get a busy error
    #[arg(long, value_name = "N", default_value_t = moat_mcp::DEFAULT_MAX_CONCURRENT_EXECUTIONS)]
    max_concurrent: usize,

    /// Largest code argument of a run
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes, default_value = "1MiB")]
    max_code_size: u64,

    /// Largest file a client may write or read, and that a run returns
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes,
          default_value_t = moat_mcp::DEFAULT_MAX_FILE_BYTES)]
    max_file_size: u64,

    /// Largest request message: an HTTP request body, or one line over
    /// stdio; it must hold a file of --max-file-size in base64
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes, default_value = "16MiB")]
    max_request_size: u64,

    /// Grant every sandbox a host directory: HOST:GUEST, or HOST:GUEST:ro
    /// for read-only (repeatable), such as --dir ./data:/data:ro
    #[arg(long = "dir", value_name = "HOST:GUEST[:ro]", value_parser = DirGrant::parse)]
    dirs: Vec<DirGrant>,

    /// Time runs in progress get to finish after SIGINT or SIGTERM before
    /// they are cancelled
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s")]
    shutdown_grace: Duration,

    #[command(flatten)]
    who: WhoArgs,
}

const SERVE_HELP: &str = "\
Transports:
  moat serve                               MCP over stdin/stdout, for a client that starts moat
  MOAT_TOKEN=... moat serve --http 8080    streamable HTTP on http://127.0.0.1:8080/mcp
  moat serve --http 127.0.0.1:8080 --no-auth
HTTP requests must carry `Authorization: Bearer TOKEN` unless --no-auth is given, which
only a loopback address accepts. A foreign Host or Origin header gets 403.";

pub fn run(engine: &EngineArgs, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (config, policy) = server_config(&args)?;
    // The store opens before the server accepts a request: no record, no run.
    let recorder = moat_audit::Recorder::new(open_store(engine)?, &policy, config.network.clone())
        .context("the audit trail is unavailable, so the server did not start")?;
    let recorder = Arc::new(recorder);
    let http = match &args.http {
        Some(addr) => Some(http_options(addr, &args)?),
        None => None,
    };

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("moat-serve")
        .build()
        .context("failed to start the async runtime")?;

    let result = tokio.block_on(async {
        let runtime = Runtime::new(engine.runtime_config())?;
        let runtime = Arc::new(runtime);
        // Loading compiles or reads both guests: seconds on a cold cache.
        let state =
            tokio::task::spawn_blocking(move || ServerState::new(runtime, config, recorder))
                .await
                .context("failed to load the guests")?;
        let state = Arc::new(state);

        let shutdown = CancellationToken::new();
        tokio::spawn(forward_signals(shutdown.clone()));

        match http {
            None => moat_mcp::stdio::serve(state, shutdown).await?,
            Some(options) => {
                let listener = tokio::net::TcpListener::bind(options.bind)
                    .await
                    .with_context(|| format!("failed to listen on {}", options.bind))?;
                let local = listener
                    .local_addr()
                    .context("failed to read the bound address")?;
                eprintln!(
                    "moat: serving MCP on http://{local}{}",
                    moat_mcp::http::MCP_PATH
                );
                moat_mcp::http::serve(state, options, listener, shutdown).await?;
            }
        }
        anyhow::Ok(())
    });
    tokio.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Builds the server configuration from the flags and the policy, and
/// returns the policy in force (the built-in one without `--policy`).
fn server_config(args: &ServeArgs) -> anyhow::Result<(ServerConfig, LoadedPolicy)> {
    let transport = match args.http {
        Some(_) => moat_audit::Transport::Http,
        None => moat_audit::Transport::Stdio,
    };
    let config = ServerConfig {
        default_limits: Limits {
            timeout: args.timeout,
            fuel: args.fuel,
            memory_bytes: args.memory,
            stdout_bytes: args.max_stdout,
            stderr_bytes: args.max_stderr,
        },
        max_limits: Limits {
            timeout: args.timeout_ceiling,
            fuel: args.fuel_ceiling,
            memory_bytes: args.memory_ceiling,
            stdout_bytes: args.output_ceiling,
            stderr_bytes: args.output_ceiling,
        },
        session_idle_timeout: args.session_idle_timeout,
        session_max_lifetime: args.session_max_lifetime,
        max_sessions: args.max_sessions,
        max_concurrent_executions: args.max_concurrent,
        max_code_bytes: usize::try_from(args.max_code_size).unwrap_or(usize::MAX),
        max_file_bytes: args.max_file_size,
        max_request_bytes: usize::try_from(args.max_request_size).unwrap_or(usize::MAX),
        grants: args.dirs.clone(),
        shutdown_grace: args.shutdown_grace,
        network: None,
        network_rules: Vec::new(),
        allowed_modules: None,
        identity: args.who.identity(transport),
    };
    let (config, loaded) = match &args.policy {
        Some(path) => apply_policy(config, path, &args.resolve)?,
        None => {
            let builtin = LoadedPolicy::builtin();
            // A gate without rules refuses every request and records it.
            let gate = crate::setup::build_gate(&builtin.policy, &args.resolve)?;
            let config = ServerConfig {
                network: Some(gate),
                ..config
            };
            (config, builtin)
        }
    };
    if let Err(problem) = config.validate() {
        bail!("{problem}");
    }
    Ok((config, loaded))
}

/// Replaces the flag-derived limits, sessions and network settings with the
/// policy's, and adds its directory grants to those of `--dir`.
fn apply_policy(
    mut config: ServerConfig,
    path: &std::path::Path,
    resolve: &[moat_egress::ResolveOverride],
) -> anyhow::Result<(ServerConfig, LoadedPolicy)> {
    let loaded = crate::setup::load_policy(Some(path))?;
    let policy = &loaded.policy;

    let (defaults, maxima) = crate::setup::policy_limits(policy);
    config.default_limits = defaults;
    config.max_limits = maxima;
    config.session_idle_timeout = policy.sessions.effective_idle_timeout();
    config.session_max_lifetime = policy.sessions.effective_max_lifetime();
    config.max_sessions = policy.sessions.effective_max_sessions() as usize;

    let mut grants = crate::setup::policy_grants(policy);
    grants.append(&mut config.grants);
    config.grants = grants;

    config.network = Some(crate::setup::build_gate(policy, resolve)?);
    config.network_rules = policy
        .egress
        .iter()
        .map(|rule| {
            format!(
                "{} {}://{}:{}{}",
                rule.effective_methods().join("/"),
                rule.scheme.as_str(),
                rule.host,
                rule.effective_port(),
                match rule.paths.is_empty() {
                    true => String::new(),
                    false => format!(" under {}", rule.paths.join(", ")),
                }
            )
        })
        .collect();
    config.allowed_modules = policy.python.modules.clone();
    Ok((config, loaded))
}

/// Builds the HTTP options from the flags, with the token from the flag,
/// the environment or the file.
fn http_options(addr: &str, args: &ServeArgs) -> anyhow::Result<HttpOptions> {
    let bind = parse_bind(addr)?;
    let token = match (&args.token, &args.token_file) {
        (Some(token), _) => Some(token.trim().to_owned()),
        (None, Some(path)) => Some(read_token(path)?),
        (None, None) => None,
    };
    match (&token, args.no_auth) {
        (None, false) => bail!(
            "the HTTP transport needs a bearer token: pass --token-file FILE or set MOAT_TOKEN, \
             or pass --no-auth to serve a loopback address without one"
        ),
        (None, true) if !bind.ip().is_loopback() => bail!(
            "--no-auth is allowed only on a loopback address, and {bind} is reachable from \
             other machines: use a token, or bind 127.0.0.1"
        ),
        _ => {}
    }
    let options = HttpOptions {
        bind,
        token,
        allowed_hosts: args.allowed_hosts.clone(),
    };
    options.validate()?;
    Ok(options)
}

/// Parses `ADDR`: an IP address with a port, `localhost:PORT`, or a port
/// alone, which binds 127.0.0.1.
fn parse_bind(addr: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(port) = addr.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Some(port) = addr.strip_prefix("localhost:")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    addr.parse().map_err(|_| {
        anyhow::anyhow!(
            "invalid --http address {addr:?}: expected IP:PORT, localhost:PORT or a port, \
             such as 127.0.0.1:8080"
        )
    })
}

/// Reads the first line of a token file.
fn read_token(path: &PathBuf) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        bail!(
            "the token file {} is empty: write the token on its first line",
            path.display()
        );
    }
    Ok(token)
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn forward_signals(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = match signal(SignalKind::terminate()) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "failed to listen for SIGTERM; only SIGINT stops the server");
                let _ = tokio::signal::ctrl_c().await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
            _ = terminate.recv() => tracing::info!("received SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("received Ctrl-C");
    }
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_defaults_to_loopback() {
        assert_eq!(
            parse_bind("8080").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 8080)))
        );
        assert_eq!(
            parse_bind("localhost:9000").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 9000)))
        );
        assert_eq!(
            parse_bind("[::1]:9000").ok(),
            Some("[::1]:9000".parse().expect("valid"))
        );
        assert!(parse_bind("example.com:80").is_err());
    }

    #[test]
    fn flag_defaults_match_the_server_constants() {
        let durations = [
            ("30s", moat_mcp::DEFAULT_RUN_TIMEOUT),
            ("5m", moat_mcp::MAX_RUN_TIMEOUT),
            ("15m", moat_mcp::DEFAULT_SESSION_IDLE_TIMEOUT),
            ("240m", moat_mcp::DEFAULT_SESSION_MAX_LIFETIME),
            ("2s", moat_mcp::DEFAULT_SHUTDOWN_GRACE),
        ];
        for (text, constant) in durations {
            assert_eq!(parse_duration(text), Ok(constant), "{text}");
        }
        assert_eq!(
            parse_bytes("1MiB"),
            Ok(moat_mcp::DEFAULT_MAX_CODE_BYTES as u64)
        );
    }
}
