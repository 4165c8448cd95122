//! The MCP server handler: routes tool calls and resource reads, and sends
//! a run's output as logging notifications when the client asks for them.

// Logging is deprecated by the MCP draft that rmcp 3.11 tracks (SEP-2577),
// but clients on earlier protocol versions still use it.
#![allow(deprecated)]

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use moat_audit::SessionEventKind;
use moat_runtime::Language;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, LoggingLevel,
    LoggingMessageNotificationParam, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
    ServerCapabilities, ServerConfig, SetLevelRequestParams, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::describe::{self, SANDBOX_URI};
use crate::errors::invalid_params;
use crate::files;
use crate::render;
use crate::state::ServerState;
use crate::tools;
use crate::types::{
    CreateSessionArgs, ListFilesArgs, NoArgs, ReadFileArgs, RunArgs, RunOutcome, RunResult,
    SessionArgs, SessionClosed, SessionList, WriteFileArgs,
};

/// Lines of stdout and stderr sent as logging notifications after a run;
/// the rest are only in the result.
const MAX_LOG_LINES: usize = 1000;

/// Instructions sent to the client at initialization.
const INSTRUCTIONS: &str = "\
moat runs Python and JavaScript in a WebAssembly sandbox with no network and \
no host files except /workspace and the directories describe_sandbox lists. \
Use run_python or run_javascript for one-off code, create_session to keep \
variables between calls, and describe_sandbox to see the modules and limits.";

/// The handler for one MCP connection. Clones share the server state; the
/// logging level belongs to the connection.
#[derive(Debug, Clone)]
pub struct MoatServer {
    state: Arc<ServerState>,
    log_level: Arc<Mutex<Option<LoggingLevel>>>,
    tools: Arc<Vec<Tool>>,
}

impl MoatServer {
    /// A handler for a new connection to the server behind `state`.
    pub fn new(state: Arc<ServerState>) -> Self {
        MoatServer {
            state,
            log_level: Arc::new(Mutex::new(None)),
            tools: Arc::new(tools::all()),
        }
    }

    async fn dispatch(
        &self,
        name: &str,
        arguments: serde_json::Value,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let state = &self.state;
        match name {
            tools::RUN_PYTHON | tools::RUN_JAVASCRIPT => {
                let language = match name {
                    tools::RUN_PYTHON => Language::Python,
                    _ => Language::JavaScript,
                };
                let args: RunArgs = parse(name, arguments)?;
                let result = crate::run::run(state, language, args, context).await?;
                self.log_output(&result, context).await;
                Ok(run_result(&result))
            }
            tools::CREATE_SESSION => {
                let args: CreateSessionArgs = parse(name, arguments)?;
                let language = Language::from(args.language);
                if let Some(error) = state.guest_error(language) {
                    return Err(crate::errors::internal(format!(
                        "{} is not available on this server: {error}",
                        language.name()
                    )));
                }
                let actor = crate::audit::actor(state, context);
                let session = state.sessions.create(
                    &state.runtime,
                    language,
                    &state.config.grants,
                    actor.clone(),
                )?;
                tracing::info!(session = %session.id, language = language.name(), "session created");
                let recorded = crate::audit::session(
                    state,
                    SessionEventKind::Created,
                    &session.id,
                    &actor,
                    language,
                    None,
                )
                .await;
                if let Err(error) = recorded {
                    // Fail closed: a session the trail does not know of
                    // must not run anything.
                    let _ = state.sessions.close(&session.id, &actor);
                    return Err(crate::errors::internal(format!(
                        "the audit trail cannot be written, so no session was created: {error}"
                    )));
                }
                let info = state.sessions.info(&session, Instant::now());
                Ok(success(&info, render::session(&info)))
            }
            tools::LIST_SESSIONS => {
                let _: NoArgs = parse(name, arguments)?;
                let list = SessionList {
                    sessions: state
                        .sessions
                        .list(Instant::now(), &crate::audit::actor(state, context)),
                    max_sessions: state.sessions.max_sessions() as u64,
                };
                Ok(success(&list, render::sessions(&list)))
            }
            tools::CLOSE_SESSION => {
                let args: SessionArgs = parse(name, arguments)?;
                let caller = crate::audit::actor(state, context);
                let session = state.sessions.close(&args.session_id, &caller)?;
                tracing::info!(session = %session.id, "session closed");
                let _ = crate::audit::session(
                    state,
                    SessionEventKind::Closed,
                    &session.id,
                    &caller,
                    session.language,
                    Some("the client closed it"),
                )
                .await;
                let closed = SessionClosed {
                    session_id: session.id.clone(),
                    cancelled_run: session.is_busy(),
                };
                Ok(success(&closed, render::closed(&closed)))
            }
            tools::LIST_FILES => {
                let args: ListFilesArgs = parse(name, arguments)?;
                let list = files::list(state, args, context).await?;
                Ok(success(&list, render::files(&list)))
            }
            tools::READ_FILE => {
                let args: ReadFileArgs = parse(name, arguments)?;
                files::read(state, args, context).await
            }
            tools::WRITE_FILE => {
                let args: WriteFileArgs = parse(name, arguments)?;
                let written = files::write(state, args, context).await?;
                Ok(success(&written, render::file_written(&written)))
            }
            tools::DESCRIBE_SANDBOX => {
                let _: NoArgs = parse(name, arguments)?;
                let description = describe::describe(state);
                Ok(success(&description, description.text.clone()))
            }
            other => Err(invalid_params(format!(
                "unknown tool {other:?}: call tools/list for the tools this server offers"
            ))),
        }
    }

    /// The level the client asked for: in the request's metadata, or
    /// earlier through `logging/setLevel`.
    fn effective_log_level(&self, context: &RequestContext<RoleServer>) -> Option<LoggingLevel> {
        context.meta.log_level().or_else(|| {
            *self
                .log_level
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        })
    }

    /// Sends the run's stdout and stderr lines as `info` logging
    /// notifications when the client asked for `info` or `debug`.
    ///
    /// TODO: lines are sent when the run ends, not as they are written,
    /// because the runtime captures output without a way to observe it
    /// during the run.
    async fn log_output(&self, result: &RunResult, context: &RequestContext<RoleServer>) {
        let wanted = matches!(
            self.effective_log_level(context),
            Some(LoggingLevel::Debug | LoggingLevel::Info)
        );
        if !wanted {
            return;
        }
        let mut lines: Vec<(&'static str, String)> = Vec::new();
        for (logger, text) in [("stdout", &result.stdout), ("stderr", &result.stderr)] {
            let room = MAX_LOG_LINES - lines.len();
            for line in text.lines().take(room) {
                lines.push((logger, line.to_owned()));
            }
        }
        for (logger, line) in lines {
            let param =
                LoggingMessageNotificationParam::new(LoggingLevel::Info, serde_json::json!(line))
                    .with_logger(logger);
            if let Err(error) = context.peer.notify_logging_message(param).await {
                tracing::debug!(%error, "failed to send a logging notification");
                return;
            }
        }
    }
}

impl ServerHandler for MoatServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_resources()
            .enable_tools()
            .build();
        let mut implementation = Implementation::new("moat", env!("CARGO_PKG_VERSION"));
        implementation.title = Some("moat: sandboxed Python and JavaScript".into());
        ServerConfig::new(capabilities)
            .with_server_info(implementation)
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|tool| tool.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        // The tool name comes from the client: only a known name is logged.
        let tool = self
            .tools
            .iter()
            .find(|tool| tool.name == request.name)
            .map_or("unknown", |tool| tool.name.as_ref());
        let span = tracing::info_span!(
            "request",
            request = %request_id(&context.id),
            method = "tools/call",
            tool,
            transport = self.state.config.identity.transport.name(),
        );
        let result = self
            .dispatch(&request.name, arguments, &context)
            .instrument(span)
            .await?;
        Ok(CallToolResponse::from(result))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self
            .log_level
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(request.level);
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let sandbox = Resource::new(SANDBOX_URI, "sandbox")
            .with_title("What code may do in this sandbox")
            .with_description(
                "Languages, modules, directories, limits and network access under the \
                 running configuration; the same text describe_sandbox returns.",
            )
            .with_mime_type("text/plain");
        Ok(ListResourcesResult::with_all_items(vec![sandbox]))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let template = ResourceTemplate::new(files::FILE_URI_TEMPLATE, "workspace file")
            .with_title("A file in a session's /workspace")
            .with_description(
                "The file at {path} (relative to /workspace, percent-encoded) in session \
                 {session_id}; text files as text, other files as base64 blobs.",
            );
        Ok(ListResourceTemplatesResult::with_all_items(vec![template]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri == SANDBOX_URI {
            let text = describe::describe(&self.state).text;
            let contents = ResourceContents::text(text, SANDBOX_URI).with_mime_type("text/plain");
            return Ok(ReadResourceResult::new(vec![contents]).into());
        }
        let contents = files::read_resource(&self.state, &request.uri, &context).await?;
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

/// Parses a tool's arguments, naming the tool and the problem on failure.
fn parse<T: DeserializeOwned>(tool: &str, arguments: serde_json::Value) -> Result<T, ErrorData> {
    serde_json::from_value(arguments).map_err(|error| {
        invalid_params(format!(
            "invalid arguments for {tool}: {error}; see the tool's inputSchema"
        ))
    })
}

/// A successful result: `value` as structured content, `text` beside it.
pub fn success<T: Serialize>(value: &T, text: String) -> CallToolResult {
    with_structure(value, text, false)
}

fn with_structure<T: Serialize>(value: &T, text: String, is_error: bool) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    // Serializing these plain structs cannot fail; a failure would leave
    // the text alone, which every client can still show.
    match serde_json::to_value(value) {
        Ok(structured) => result.structured_content = Some(structured),
        Err(error) => tracing::error!(%error, "failed to serialize a tool result"),
    }
    result.is_error = Some(is_error);
    result
}

/// A run's result, marked as an error unless the code ran to a normal end.
fn run_result(result: &RunResult) -> CallToolResult {
    let failed = result.outcome != RunOutcome::Ok;
    with_structure(result, render::run(result), failed)
}

/// A JSON-RPC request id as logs show it.
fn request_id(id: &rmcp::model::RequestId) -> String {
    match id {
        rmcp::model::RequestId::Number(number) => number.to_string(),
        rmcp::model::RequestId::String(text) => {
            text.chars().filter(|c| !c.is_control()).take(64).collect()
        }
    }
}
