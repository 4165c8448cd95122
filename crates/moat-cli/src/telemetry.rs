//! Logs and span export: the stderr log that `MOAT_LOG` filters and, when
//! an endpoint is configured, OpenTelemetry export of moat's spans over
//! OTLP/HTTP.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Key, KeyValue};
use opentelemetry_otlp::{Protocol, RetryPolicy, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};
use url::Url;

/// Maximum wait at exit for queued spans to reach the collector. `moat run`
/// and `moat check` end right after their work, so an unreachable collector
/// may delay their exit by this much and no more.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Variable holding the stderr log's filter, in `EnvFilter` syntax.
const LOG_ENV: &str = "MOAT_LOG";
/// Filter of the stderr log when `MOAT_LOG` is unset or invalid.
const DEFAULT_LOG: &str = "warn";

/// Standard OpenTelemetry variables for the traces endpoint. The first is a
/// full URL used as is, and the second a base URL that gets `/v1/traces`.
const TRACES_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Standard variables selecting the OTLP protocol. moat sends only
/// `http/protobuf`.
const PROTOCOL_ENVS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
];
/// Path of the traces service on an OTLP/HTTP collector.
const TRACES_PATH: &str = "/v1/traces";

/// Retries of one failed export. A few short retries ride out a collector
/// restart, and the total of about 0.4 s stays well inside
/// [`SHUTDOWN_TIMEOUT`] when the collector is down.
fn retry_policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_retries(2)
        .with_initial_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_millis(400))
        .with_max_jitter(Duration::from_millis(50))
}

/// Telemetry flags, accepted by every subcommand.
#[derive(Debug, clap::Args)]
pub struct TelemetryArgs {
    /// Export spans over OTLP/HTTP to the OpenTelemetry collector at this
    /// base URL, such as http://localhost:4318. moat appends /v1/traces, and
    /// an empty value turns export off [default:
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT,
    /// else no export]
    #[arg(long, global = true, value_name = "URL")]
    otlp_endpoint: Option<String>,
}

/// The installed logging, with the span exporter when one was configured.
/// Call [`Telemetry::shutdown`] before the process exits, or drop it, so
/// that queued spans are sent.
#[derive(Debug)]
#[must_use = "dropping Telemetry shuts span export down"]
pub struct Telemetry {
    export: Option<Export>,
}

/// A running span exporter.
#[derive(Debug)]
struct Export {
    provider: SdkTracerProvider,
    endpoint: String,
    /// Whether a warning about export went to stderr. Later failures are not
    /// reported, so a collector that stays down cannot flood the log.
    warned: Arc<AtomicBool>,
}

/// Installs the global `tracing` subscriber: the stderr log and, when
/// `--otlp-endpoint` or an `OTEL_EXPORTER_OTLP_*ENDPOINT` variable names a
/// collector, the OTLP exporter. Without an endpoint no exporter, thread or
/// connection is created.
pub fn init(args: &TelemetryArgs) -> anyhow::Result<Telemetry> {
    let endpoint = resolve_endpoint(
        args.otlp_endpoint.as_deref(),
        std::env::var(TRACES_ENDPOINT_ENV).ok().as_deref(),
        std::env::var(ENDPOINT_ENV).ok().as_deref(),
    )?;
    let export = match endpoint {
        Some(endpoint) => Some(start_export(&endpoint)?),
        None => None,
    };

    let log_directives = std::env::var(LOG_ENV).ok();
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(stderr_filter(log_directives.as_deref()));
    let otlp_layer = export.as_ref().map(|export| {
        tracing_opentelemetry::layer()
            .with_tracer(export.provider.tracer("moat"))
            .with_filter(filter_fn(is_exported))
    });
    tracing_subscriber::registry()
        .with(stderr_layer)
        .with(otlp_layer)
        .try_init()
        .context("failed to install the tracing subscriber")?;

    Ok(Telemetry { export })
}

impl Telemetry {
    /// Sends the spans still queued and stops the exporter, waiting at most
    /// [`SHUTDOWN_TIMEOUT`]. Does nothing when export is off.
    pub fn shutdown(mut self) {
        if let Some(export) = self.export.take() {
            export.shutdown();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(export) = self.export.take() {
            export.shutdown();
        }
    }
}

impl Export {
    fn shutdown(self) {
        // The SDK reports a timed-out shutdown inside a generic error, so any
        // error here means some spans may not have been sent.
        if let Err(error) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            warn_once(&self.warned, &self.endpoint, &error.to_string());
        }
    }
}

/// A traces endpoint, and the flag or variable that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    url: Url,
    source: &'static str,
}

/// Picks the traces endpoint: the flag, else the traces variable as is,
/// else the general variable with `/v1/traces` appended, as the
/// OpenTelemetry specification defines them. Empty variables count as
/// unset, and an empty flag turns export off. `Ok(None)` means no export.
fn resolve_endpoint(
    flag: Option<&str>,
    traces_env: Option<&str>,
    general_env: Option<&str>,
) -> anyhow::Result<Option<Endpoint>> {
    if let Some(value) = flag {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let source = "--otlp-endpoint";
        let url = parse_endpoint(value, source)?;
        // A full traces URL is accepted too, since it is easy to paste one.
        let url = match url.path().trim_end_matches('/').ends_with(TRACES_PATH) {
            true => url,
            false => with_traces_path(url),
        };
        return Ok(Some(Endpoint { url, source }));
    }
    if let Some(value) = traces_env.map(str::trim).filter(|v| !v.is_empty()) {
        let url = parse_endpoint(value, TRACES_ENDPOINT_ENV)?;
        return Ok(Some(Endpoint {
            url,
            source: TRACES_ENDPOINT_ENV,
        }));
    }
    if let Some(value) = general_env.map(str::trim).filter(|v| !v.is_empty()) {
        let url = with_traces_path(parse_endpoint(value, ENDPOINT_ENV)?);
        return Ok(Some(Endpoint {
            url,
            source: ENDPOINT_ENV,
        }));
    }
    Ok(None)
}

fn parse_endpoint(value: &str, source: &str) -> anyhow::Result<Url> {
    let example = "such as http://localhost:4318";
    let url = Url::parse(value).map_err(|error| {
        anyhow!("invalid OTLP endpoint {value:?} from {source}: {error}; expected a URL {example}")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!(
            "invalid OTLP endpoint {value:?} from {source}: the scheme must be http or https, \
             {example}"
        );
    }
    // The URL parser reads `http:///v1/traces` as the host `v1`, so the
    // host must follow `//` in the text as written.
    let written_host = value
        .split_once("://")
        .map(|(_, rest)| rest)
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with(['/', '\\']));
    if url.host().is_none() || !written_host {
        bail!(
            "invalid OTLP endpoint {value:?} from {source}: it has no host; expected a URL {example}"
        );
    }
    Ok(url)
}

fn with_traces_path(mut url: Url) -> Url {
    let path = format!("{}{TRACES_PATH}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// Formats the endpoint for warnings, without the user name, password and
/// query, which may carry credentials.
fn display_endpoint(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.to_string()
}

/// Rejects an OTLP protocol variable set to anything but `http/protobuf`,
/// because spans sent in the wrong protocol are silently lost.
fn check_protocol() -> anyhow::Result<()> {
    for name in PROTOCOL_ENVS {
        let Ok(value) = std::env::var(name) else {
            continue;
        };
        let value = value.trim();
        if !value.is_empty() && value != "http/protobuf" {
            bail!(
                "{name}={value:?} is not supported: moat exports spans over http/protobuf only; \
                 unset {name} or set it to http/protobuf, and point the endpoint at the \
                 collector's OTLP/HTTP port (4318 by default)"
            );
        }
    }
    Ok(())
}

/// Builds the OTLP exporter and the tracer provider that batches spans for
/// it on a background thread.
fn start_export(endpoint: &Endpoint) -> anyhow::Result<Export> {
    check_protocol()?;
    let shown = display_endpoint(&endpoint.url);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint.url.as_str())
        .with_protocol(Protocol::HttpBinary)
        .with_retry_policy(retry_policy())
        .build()
        .with_context(|| {
            format!(
                "failed to set up OTLP span export to {shown} (from {})",
                endpoint.source
            )
        })?;

    let warned = Arc::new(AtomicBool::new(false));
    let exporter = ReportingExporter {
        inner: exporter,
        endpoint: shown.clone(),
        warned: Arc::clone(&warned),
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build();
    Ok(Export {
        provider,
        endpoint: shown,
        warned,
    })
}

/// Builds the resource every span carries: `service.name` "moat" unless
/// `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` names the service,
/// and `service.version`.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&Key::new("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let mut builder = Resource::builder();
    if !named {
        builder = builder.with_service_name("moat");
    }
    builder
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Spans and span events that leave the process: moat's own, at info level
/// and above. Other crates' spans stay out because their fields are not
/// reviewed, and rmcp's debug events, for one, contain whole MCP requests.
fn is_exported(metadata: &Metadata<'_>) -> bool {
    is_moat_target(metadata.target()) && *metadata.level() <= Level::INFO
}

/// Returns whether `target` is in one of moat's crates: the `moat` binary
/// or a `moat_*` library.
fn is_moat_target(target: &str) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    krate == "moat" || krate.starts_with("moat_")
}

/// Builds the stderr log's filter from the `MOAT_LOG` directives, or `warn`.
/// rmcp is kept at info and above unless `MOAT_LOG` names it, because its
/// debug and trace events print whole MCP messages, code and output included.
fn stderr_filter(
    directives: Option<&str>,
) -> impl tracing_subscriber::layer::Filter<Registry> + use<> {
    let directives = directives.map(str::trim).filter(|d| !d.is_empty());
    let env_filter = directives
        .and_then(|d| EnvFilter::try_new(d).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_LOG));
    let rmcp_named = directives.is_some_and(names_rmcp);
    env_filter.and(filter_fn(move |metadata| {
        rmcp_named || !metadata.target().starts_with("rmcp") || *metadata.level() <= Level::INFO
    }))
}

/// Returns whether any directive of a `MOAT_LOG` value targets rmcp.
fn names_rmcp(directives: &str) -> bool {
    directives
        .split(',')
        .any(|directive| directive.trim().starts_with("rmcp"))
}

/// Writes the one export warning of this process, unless one was written.
fn warn_once(warned: &AtomicBool, endpoint: &str, error: &str) {
    if !warned.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            %endpoint,
            %error,
            "failed to export spans over OTLP; spans may be lost and further failures are not reported"
        );
    }
}

/// The OTLP exporter, reporting its first failure on stderr.
#[derive(Debug)]
struct ReportingExporter {
    inner: opentelemetry_otlp::SpanExporter,
    endpoint: String,
    warned: Arc<AtomicBool>,
}

impl SpanExporter for ReportingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        if let Err(error) = &result {
            warn_once(&self.warned, &self.endpoint, &error.to_string());
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(flag: Option<&str>, traces: Option<&str>, general: Option<&str>) -> Option<String> {
        resolve_endpoint(flag, traces, general)
            .expect("valid endpoint")
            .map(|endpoint| format!("{} {}", endpoint.source, endpoint.url))
    }

    #[test]
    fn nothing_configured_means_no_export() {
        assert_eq!(resolved(None, None, None), None);
        assert_eq!(resolved(None, Some(""), Some("  ")), None);
    }

    #[test]
    fn flag_appends_traces_path() {
        assert_eq!(
            resolved(Some("http://127.0.0.1:4318"), None, None).as_deref(),
            Some("--otlp-endpoint http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(
            resolved(Some("https://collector.example/otlp/"), None, None).as_deref(),
            Some("--otlp-endpoint https://collector.example/otlp/v1/traces")
        );
    }

    #[test]
    fn endpoint_without_written_host_is_rejected() {
        for value in ["http:///v1/traces", "https:/collector.example"] {
            let error = parse_endpoint(value, "--otlp-endpoint").expect_err(value);
            assert!(
                error.to_string().contains("has no host"),
                "{value}: {error}"
            );
        }
    }

    #[test]
    fn flag_keeps_full_traces_url() {
        assert_eq!(
            resolved(Some("http://127.0.0.1:4318/v1/traces"), None, None).as_deref(),
            Some("--otlp-endpoint http://127.0.0.1:4318/v1/traces")
        );
    }

    #[test]
    fn flag_wins_over_variables() {
        assert_eq!(
            resolved(
                Some("http://127.0.0.1:1"),
                Some("http://127.0.0.1:2/t"),
                Some("http://127.0.0.1:3")
            )
            .as_deref(),
            Some("--otlp-endpoint http://127.0.0.1:1/v1/traces")
        );
    }

    #[test]
    fn empty_flag_turns_export_off() {
        assert_eq!(resolved(Some(""), Some("http://127.0.0.1:2/t"), None), None);
    }

    #[test]
    fn traces_variable_used_as_is() {
        assert_eq!(
            resolved(
                None,
                Some("http://127.0.0.1:2/custom"),
                Some("http://127.0.0.1:3")
            )
            .as_deref(),
            Some("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT http://127.0.0.1:2/custom")
        );
    }

    #[test]
    fn general_variable_gets_traces_path() {
        assert_eq!(
            resolved(None, None, Some("http://127.0.0.1:3/base")).as_deref(),
            Some("OTEL_EXPORTER_OTLP_ENDPOINT http://127.0.0.1:3/base/v1/traces")
        );
    }

    #[test]
    fn malformed_endpoint_names_value_and_source() {
        let error = resolve_endpoint(Some("not a url"), None, None).expect_err("malformed");
        assert_eq!(
            error.to_string(),
            "invalid OTLP endpoint \"not a url\" from --otlp-endpoint: relative URL without a \
             base; expected a URL such as http://localhost:4318"
        );

        let error = resolve_endpoint(None, None, Some("localhost:4318")).expect_err("no scheme");
        assert_eq!(
            error.to_string(),
            "invalid OTLP endpoint \"localhost:4318\" from OTEL_EXPORTER_OTLP_ENDPOINT: the \
             scheme must be http or https, such as http://localhost:4318"
        );
    }

    #[test]
    fn warnings_hide_credentials_in_endpoint() {
        let url = Url::parse("https://user:token@collector.example/v1/traces?key=secret")
            .expect("valid URL");
        assert_eq!(
            display_endpoint(&url),
            "https://collector.example/v1/traces"
        );
    }

    #[test]
    fn moat_targets_recognized() {
        assert!(is_moat_target("moat"));
        assert!(is_moat_target("moat::run"));
        assert!(is_moat_target("moat_egress::gate"));
        assert!(!is_moat_target("moatx::run"));
        assert!(!is_moat_target("rmcp::service"));
        assert!(!is_moat_target("reqwest::connect"));
    }

    #[test]
    fn rmcp_named_only_by_its_directives() {
        assert!(names_rmcp("debug,rmcp=trace"));
        assert!(names_rmcp("rmcp::service=debug"));
        assert!(!names_rmcp("debug"));
        assert!(!names_rmcp("moat_mcp=debug"));
    }
}
