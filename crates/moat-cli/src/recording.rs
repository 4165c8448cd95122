//! The audit trail as `moat run` and `moat check` use it: who is running,
//! and the store they record to.

use std::sync::Arc;

use anyhow::Context;
use moat_audit::{Actor, AuditStore, Transport};

use crate::EngineArgs;

/// The caller a command-line run is recorded as.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WhoArgs {
    /// Principal recorded in the audit trail [default: the local user name]
    #[arg(long, env = "MOAT_PRINCIPAL", value_name = "NAME")]
    principal: Option<String>,

    /// Tenant recorded in the audit trail
    #[arg(long, env = "MOAT_TENANT", value_name = "NAME")]
    tenant: Option<String>,

    /// Identifier of the model that wrote the code, recorded in the audit
    /// trail, such as claude-sonnet-4-5
    #[arg(long, env = "MOAT_MODEL", value_name = "ID")]
    model: Option<String>,
}

impl WhoArgs {
    /// Returns the actor of runs started from this command line.
    pub fn actor(&self, transport: Transport) -> Actor {
        Actor {
            principal: named(&self.principal).or_else(local_user),
            tenant: named(&self.tenant),
            transport: Some(transport),
            client: None,
            model: named(&self.model),
        }
    }
}

/// Returns a name given on the command line without surrounding blanks,
/// or `None` when it is empty, as for an unset name.
fn named(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

impl WhoArgs {
    /// The server's identity for the audit trail: over stdio every request
    /// comes from the local user; over HTTP the principal comes from each
    /// request's header, with `--principal` as the fallback.
    pub fn identity(&self, transport: Transport) -> moat_mcp::Identity {
        let principal = match transport {
            Transport::Http => named(&self.principal),
            _ => named(&self.principal).or_else(local_user),
        };
        moat_mcp::Identity {
            transport,
            principal,
            tenant: named(&self.tenant),
            model: named(&self.model),
        }
    }
}

/// Returns the account running moat, as the operating system names it.
pub fn local_user() -> Option<String> {
    whoami::username().ok().filter(|name| !name.is_empty())
}

/// Opens the audit store, creating it when needed. Runs must not start
/// when this fails.
pub fn open_store(engine: &EngineArgs) -> anyhow::Result<Arc<AuditStore>> {
    let path = engine.audit_db_path()?;
    let store =
        AuditStore::open(&path).context("the audit trail is unavailable, so nothing was run")?;
    Ok(Arc::new(store))
}
