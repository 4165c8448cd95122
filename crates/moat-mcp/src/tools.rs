//! The tools the server offers: names, descriptions written for a model,
//! and input and output schemas generated from the types in `types.rs`.

use rmcp::model::{Tool, ToolAnnotations};
use schemars::JsonSchema;

use crate::types::{
    CreateSessionArgs, FileContent, FileList, FileWritten, ListFilesArgs, NoArgs, ReadFileArgs,
    RunArgs, RunResult, SandboxDescription, SessionArgs, SessionClosed, SessionInfo, SessionList,
    WriteFileArgs,
};

pub const RUN_PYTHON: &str = "run_python";
pub const RUN_JAVASCRIPT: &str = "run_javascript";
pub const CREATE_SESSION: &str = "create_session";
pub const LIST_SESSIONS: &str = "list_sessions";
pub const CLOSE_SESSION: &str = "close_session";
pub const LIST_FILES: &str = "list_files";
pub const READ_FILE: &str = "read_file";
pub const WRITE_FILE: &str = "write_file";
pub const DESCRIBE_SANDBOX: &str = "describe_sandbox";

/// What every run tool says about the sandbox, after its first sentence.
const SANDBOX_RULES: &str = "\
The code runs inside a WebAssembly sandbox with no network, no environment \
variables, no subprocesses or threads, and no host files except a scratch \
directory /workspace (read-write; relative paths resolve there) and any \
directories listed by describe_sandbox. Output is captured: print what you \
want to see. The value of the last expression is returned as `result`. \
Limits (time, instructions, memory, output) stop the run and are named in \
`outcome`; an exception or a limit is returned as a result with isError, \
not as a protocol error. Pass session_id to keep variables and imports \
between calls, like a notebook kernel; without it each call starts a fresh \
interpreter and an empty /workspace, and files the code writes are returned \
in `files` with their content.";

/// Every tool, in the order clients list them.
pub fn all() -> Vec<Tool> {
    vec![
        tool::<RunArgs, RunResult>(
            RUN_PYTHON,
            "Run Python",
            &format!(
                "Run Python 3.14 code (CPython on WASI) and return its stdout, stderr, \
                 result value, exit code and the files it changed. Only standard-library \
                 modules baked into the interpreter can be imported (json, csv, sqlite3, \
                 decimal, statistics, datetime, re, math, collections, pathlib and more; \
                 describe_sandbox lists them); there is no pip, numpy or pandas, and \
                 socket, ssl, subprocess, threading, ctypes, bz2 and lzma do not work. \
                 {SANDBOX_RULES}"
            ),
            annotations(false, false),
        ),
        tool::<RunArgs, RunResult>(
            RUN_JAVASCRIPT,
            "Run JavaScript",
            &format!(
                "Run JavaScript (QuickJS, ES2023) and return its stdout, stderr, result \
                 value, exit code and the files it changed. Available: console, promises \
                 and top-level await, setTimeout/setInterval, TextEncoder/TextDecoder, \
                 process.exit, and a Node-style synchronous fs (require('fs')). Not \
                 available: npm packages, node's net/http/child_process, and the DOM; \
                 fetch exists but every request is denied. {SANDBOX_RULES}"
            ),
            annotations(false, false),
        ),
        tool::<CreateSessionArgs, SessionInfo>(
            CREATE_SESSION,
            "Create session",
            "Start a session: one Python or JavaScript interpreter kept alive with its own \
             /workspace, so variables, functions and imports defined in one run_python or \
             run_javascript call are there in the next. Returns session_id. Sessions close \
             after an idle time and a maximum lifetime (see describe_sandbox), and their \
             number is capped; close them with close_session when done. If a run hits a \
             limit or is cancelled, the session gets a fresh interpreter: its files stay, \
             its variables are lost, and the result says session_restarted.",
            annotations(false, false),
        ),
        tool::<NoArgs, SessionList>(
            LIST_SESSIONS,
            "List sessions",
            "List the open sessions with their language, age, idle time, time left before \
             they expire, and whether a run is in progress.",
            annotations(true, true),
        ),
        tool::<SessionArgs, SessionClosed>(
            CLOSE_SESSION,
            "Close session",
            "Close a session: stop its interpreter (cancelling a run in progress) and \
             delete its /workspace and every file in it.",
            annotations(false, true).destructive(true),
        ),
        tool::<ListFilesArgs, FileList>(
            LIST_FILES,
            "List workspace files",
            "List files and directories in a session's /workspace, recursively, with \
             sizes and a resource URI for each file. Paths are relative to /workspace.",
            annotations(true, true),
        ),
        tool::<ReadFileArgs, FileContent>(
            READ_FILE,
            "Read workspace file",
            "Read a file from a session's /workspace. Text files come back as text, \
             other files as base64 (or ask for an encoding). Files larger than the \
             server's file size limit are rejected; the file is also readable as an MCP \
             resource at the returned uri.",
            annotations(true, true),
        ),
        tool::<WriteFileArgs, FileWritten>(
            WRITE_FILE,
            "Write workspace file",
            "Write a file into a session's /workspace, creating parent directories and \
             replacing an existing file, so the next run can read it. Send binary \
             content as base64 with encoding set to base64. Paths are relative to \
             /workspace; absolute paths and .. are rejected.",
            annotations(false, true).destructive(true),
        ),
        tool::<NoArgs, SandboxDescription>(
            DESCRIBE_SANDBOX,
            "Describe sandbox",
            "Describe what code may do on this server: the languages and their modules, \
             the directories it can see, the default and maximum limits, the session \
             quotas, and network access. Call it before planning work that reads data \
             or runs for long. The same text is the resource moat://sandbox.",
            annotations(true, true),
        ),
    ]
}

fn tool<I: JsonSchema + 'static, O: JsonSchema + 'static>(
    name: &'static str,
    title: &str,
    description: &str,
    annotations: ToolAnnotations,
) -> Tool {
    Tool::new(name, description.to_owned(), rmcp::model::JsonObject::new())
        .with_input_schema::<I>()
        .with_output_schema::<O>()
        .with_title(title)
        .with_annotations(annotations.open_world(false))
}

fn annotations(read_only: bool, idempotent: bool) -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(read_only)
        .idempotent(idempotent)
        .destructive(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_object_schemas() {
        let tools = all();
        assert_eq!(tools.len(), 9);
        for tool in &tools {
            assert_eq!(
                tool.input_schema.get("type").and_then(|t| t.as_str()),
                Some("object"),
                "{} input schema",
                tool.name
            );
            let output = tool.output_schema.as_ref().expect("output schema");
            assert_eq!(
                output.get("type").and_then(|t| t.as_str()),
                Some("object"),
                "{} output schema",
                tool.name
            );
        }
    }

    #[test]
    fn run_schema_requires_only_code() {
        let tools = all();
        let run = tools
            .iter()
            .find(|tool| tool.name == RUN_PYTHON)
            .expect("run_python");
        let required = run.input_schema.get("required").expect("required list");
        assert_eq!(required, &serde_json::json!(["code"]));
    }
}
