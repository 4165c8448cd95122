//! Errors of the host runtime, as opposed to errors of guest code.
//!
//! Guest failures (an exception, a trap, a limit) are not errors here: they
//! end a run with an [`Outcome`](crate::Outcome) in its report. These errors
//! mean moat itself could not set up or carry out the execution.

use std::path::PathBuf;

/// Why the runtime could not carry out a request.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A limit has a value that cannot work, such as zero.
    #[error("invalid {name} limit: {reason}")]
    InvalidLimit {
        /// The limit's name, as the command line spells it.
        name: &'static str,
        /// What is wrong with the value.
        reason: String,
    },

    /// A directory grant names a guest path that is not usable.
    #[error("invalid guest path {guest_path:?} for host directory {host_path}: {reason}")]
    InvalidGrant {
        /// Host side of the grant.
        host_path: PathBuf,
        /// Guest side of the grant.
        guest_path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A host directory to preopen could not be opened.
    #[error("failed to open host directory {path} for the guest")]
    OpenDirectory {
        /// The host directory.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },

    /// A guest component file could not be read.
    #[error("failed to read guest component {path}")]
    ReadGuest {
        /// The component file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },

    /// No guest component was found for a language.
    #[error(
        "no {language} guest at {path}: build the guests with `cargo xtask guests` \
         or point --guest-dir (MOAT_GUEST_DIR) at a directory that holds {file}"
    )]
    GuestMissing {
        /// The language whose guest is missing.
        language: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// The file name expected there.
        file: &'static str,
    },

    /// Compiling, instantiating or linking a guest failed.
    #[error("failed to {step}: {source:#}")]
    Wasmtime {
        /// The step that failed, such as "compile the python guest".
        step: String,
        /// The error wasmtime reported.
        source: wasmtime::Error,
    },

    /// A sandbox whose instance trapped or was interrupted cannot run more
    /// code, because its state may be inconsistent.
    #[error(
        "this sandbox cannot run more code: its instance was stopped by an earlier \
         {reason}; start a new sandbox"
    )]
    SandboxPoisoned {
        /// What stopped the instance.
        reason: String,
    },
}

impl RuntimeError {
    pub(crate) fn wasmtime(step: impl Into<String>, source: wasmtime::Error) -> Self {
        RuntimeError::Wasmtime {
            step: step.into(),
            source,
        }
    }
}
