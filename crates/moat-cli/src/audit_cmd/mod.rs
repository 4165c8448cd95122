//! `moat audit`: list, show, verify, export and report the audit trail.
//!
//! Every command opens the store read-only and never creates it. `verify`
//! exits 1 when the chain or the store is broken, and so do `export` and
//! `report`, which still write their output, so that a script notices. `list`
//! and `show` exit 1 when they come across signs of tampering: a damaged
//! record, indexed columns that disagree with a body, or schema objects that
//! moat does not create.

mod print;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use clap::builder::PossibleValuesParser;
use moat_audit::{AuditStore, ExpectedHead, Filter, Kind, Listing, Order, Verification};

use crate::EngineArgs;

use self::print::numbers_phrase;

/// Exit code when the chain or the store is broken, or `list` or `show`
/// found signs of tampering.
const BROKEN_CHAIN: u8 = 1;

/// The CI policy that `moat check` runs under without `--policy`, so that
/// an export marks it as built in.
const CI_POLICY: &str = include_str!("../../../../policy/ci.toml");

/// Records `list` shows when `--limit` is not given.
const DEFAULT_LIST_LIMIT: usize = 100;

/// Arguments of `moat audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// List recorded executions, newest first (sessions or every record with
    /// --kind)
    List {
        #[command(flatten)]
        filter: FilterArgs,

        /// Print at most N records; 0 prints them all
        #[arg(long, value_name = "N", default_value_t = DEFAULT_LIST_LIMIT)]
        limit: usize,

        /// Print the oldest records first
        #[arg(long)]
        oldest_first: bool,

        /// Print a JSON array of the records, each with its stored body
        #[arg(long)]
        json: bool,
    },

    /// Show an execution's records, or one record, in full
    Show {
        /// A record number (17 or seq:17), an execution id, or a unique
        /// prefix of one (at least 4 characters)
        #[arg(value_name = "ID")]
        id: String,

        /// Print the records as JSON, each with its stored body
        #[arg(long)]
        json: bool,
    },

    /// Check the whole hash chain; exit 1 and name the first failing
    /// record when it is broken
    Verify {
        /// A head recorded earlier (from an export's manifest.json, say),
        /// as SEQ:HASH or HASH. The chain must still contain it, so deleted
        /// newest records and a rewritten chain are detected
        #[arg(long, value_name = "[SEQ:]HASH")]
        expect_head: Option<String>,

        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },

    /// Write an evidence bundle of the selected records to a new directory
    Export {
        #[command(flatten)]
        filter: FilterArgs,

        /// Directory to create, with missing parents; it must not exist or
        /// must be empty
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },

    /// Write a self-contained HTML report of the selected records
    Report {
        #[command(flatten)]
        filter: FilterArgs,

        /// HTML file to write, with missing parent directories; an existing
        /// file is replaced
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// The filter flags of `list`, `export` and `report`.
#[derive(Debug, Clone, clap::Args)]
struct FilterArgs {
    /// Start of the time range: a date such as 2026-03-01 (from the start
    /// of that UTC day) or an RFC 3339 time
    #[arg(long, value_name = "TIME")]
    from: Option<String>,

    /// End of the time range, included: a date such as 2026-03-31 (to the
    /// end of that UTC day) or an RFC 3339 time
    #[arg(long, value_name = "TIME")]
    to: Option<String>,

    /// Only records of this principal
    #[arg(long, value_name = "NAME")]
    principal: Option<String>,

    /// Only records of this tenant
    #[arg(long, value_name = "NAME")]
    tenant: Option<String>,

    /// Only records of this MCP client name
    #[arg(long, value_name = "NAME")]
    client: Option<String>,

    /// Only records of this model identifier
    #[arg(long, value_name = "ID")]
    model: Option<String>,

    /// Only records of this language
    #[arg(long, value_parser = ["python", "javascript"])]
    language: Option<String>,

    /// Only executions with this outcome, or unfinished ones (started, with
    /// no end record), or damaged records (a body that is not a valid
    /// record)
    #[arg(long, value_name = "OUTCOME", value_parser = PossibleValuesParser::new(moat_audit::OUTCOMES))]
    outcome: Option<String>,

    /// Only executions that attempted to reach this host (allowed or not),
    /// given as a name in Unicode or ASCII or as an IP address
    #[arg(long, value_name = "HOST")]
    egress_host: Option<String>,

    /// Only records of this MCP session
    #[arg(long, value_name = "ID")]
    session: Option<String>,

    /// Records to select: execution (one per execution, unfinished ones
    /// included), session (session events) or all (every record)
    #[arg(long, default_value = "execution", value_parser = ["execution", "session", "all"])]
    kind: String,
}

impl FilterArgs {
    fn to_filter(&self) -> anyhow::Result<Filter> {
        let mut filter = Filter {
            principal: self.principal.clone(),
            tenant: self.tenant.clone(),
            client: self.client.clone(),
            model: self.model.clone(),
            language: self.language.clone(),
            session_id: self.session.clone(),
            kind: self.kind.parse::<Kind>()?,
            ..Filter::default()
        };
        if let Some(from) = &self.from {
            filter.set_from(from)?;
        }
        if let Some(to) = &self.to {
            filter.set_to(to)?;
        }
        if let Some(outcome) = &self.outcome {
            filter.set_outcome(outcome)?;
        }
        if let Some(host) = &self.egress_host {
            filter.set_egress_host(host)?;
        }
        Ok(filter)
    }
}

/// Runs one `moat audit` command. Arguments are checked before the store
/// is opened.
pub fn run(engine: &EngineArgs, args: AuditArgs) -> anyhow::Result<ExitCode> {
    let open = || -> anyhow::Result<AuditStore> {
        Ok(AuditStore::open_read_only(&engine.audit_db_path()?)?)
    };
    match args.command {
        AuditCommand::List {
            filter,
            limit,
            oldest_first,
            json,
        } => {
            let filter = filter.to_filter()?;
            let order = match oldest_first {
                true => Order::OldestFirst,
                false => Order::NewestFirst,
            };
            let limit = (limit > 0).then_some(limit);
            list(&open()?, &filter, order, limit, json)
        }
        AuditCommand::Show { id, json } => show(&open()?, &id, json),
        AuditCommand::Verify { expect_head, json } => {
            let expected = expect_head
                .as_deref()
                .map(str::parse::<ExpectedHead>)
                .transpose()?;
            verify(&open()?, expected.as_ref(), json)
        }
        AuditCommand::Export { filter, out } => {
            let filter = filter.to_filter()?;
            export(&open()?, &filter, &out)
        }
        AuditCommand::Report { filter, out } => {
            let filter = filter.to_filter()?;
            report(&open()?, &filter, &out)
        }
    }
}

fn list(
    store: &AuditStore,
    filter: &Filter,
    order: Order,
    limit: Option<usize>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let listing = store.list(filter, order, limit)?;
    let mut tampered = warn_schema(store);
    tampered |= warn_listing(&listing);

    let mut stdout = std::io::stdout().lock();
    if json {
        let value = print::listing_json(&listing.entries);
        serde_json::to_writer_pretty(&mut stdout, &value).context("failed to write the list")?;
        writeln!(stdout).context("failed to write the list")?;
    } else {
        stdout
            .write_all(print::listing_table(&listing.entries).as_bytes())
            .context("failed to write the list")?;
    }
    if let Some(limit) = limit
        && listing.entries.len() == limit
    {
        let shown = match limit {
            1 => "the first record".to_owned(),
            _ => format!("the first {limit} records"),
        };
        eprintln!("moat: showing {shown}; pass --limit 0 to see every one");
    }
    tampered |= listing
        .entries
        .iter()
        .any(|listed| listed.entry.record().is_none());
    Ok(tampered_exit(tampered))
}

/// Prints a warning for each schema object of the store that moat does
/// not create, and returns whether there was one.
fn warn_schema(store: &AuditStore) -> bool {
    for problem in store.schema_problems() {
        eprintln!(
            "moat: warning: {}; run moat audit verify",
            print::printable(&problem.message, false)
        );
    }
    !store.schema_problems().is_empty()
}

/// Prints the warnings of a search, and returns whether there was one.
fn warn_listing(listing: &Listing) -> bool {
    let mut warned = false;
    if !listing.index_mismatches.is_empty() {
        eprintln!(
            "moat: warning: the indexed columns of {} disagree with the body, so they were edited; records were selected by their bodies; run moat audit verify",
            numbers_phrase(&listing.index_mismatches)
        );
        warned = true;
    }
    if !listing.damaged_left_out.is_empty() {
        eprintln!(
            "moat: warning: left out {}, which the filter cannot be checked against because the body is damaged; list damaged records with --outcome damaged",
            numbers_phrase(&listing.damaged_left_out)
        );
        warned = true;
    }
    if !listing.invalid_seqs.is_empty() {
        let numbers: Vec<String> = listing.invalid_seqs.iter().map(i64::to_string).collect();
        eprintln!(
            "moat: warning: the store has rows with invalid record numbers ({}), which no search selects; run moat audit verify",
            numbers.join(", ")
        );
        warned = true;
    }
    warned
}

fn tampered_exit(tampered: bool) -> ExitCode {
    match tampered {
        true => ExitCode::from(BROKEN_CHAIN),
        false => ExitCode::SUCCESS,
    }
}

fn show(store: &AuditStore, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let found = store.find(id)?;
    let mut tampered = warn_schema(store);
    let mut stdout = std::io::stdout().lock();
    if json {
        let value = print::found_json(&found);
        serde_json::to_writer_pretty(&mut stdout, &value).context("failed to write the record")?;
        writeln!(stdout).context("failed to write the record")?;
    } else {
        stdout
            .write_all(print::found_text(&found).as_bytes())
            .context("failed to write the record")?;
    }
    tampered |= found
        .entries
        .iter()
        .any(|entry| entry.record().is_none() || !entry.hash_matches());
    Ok(tampered_exit(tampered))
}

fn verify(
    store: &AuditStore,
    expected: Option<&ExpectedHead>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let verification = store.verify(expected)?;
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut stdout, &verification)
            .context("failed to write the result")?;
        writeln!(stdout).context("failed to write the result")?;
    } else {
        stdout
            .write_all(print::verification_text(&verification).as_bytes())
            .context("failed to write the result")?;
    }
    Ok(chain_exit(&verification))
}

fn chain_exit(verification: &Verification) -> ExitCode {
    tampered_exit(!verification.valid)
}

fn export(store: &AuditStore, filter: &Filter, out: &Path) -> anyhow::Result<ExitCode> {
    let summary = moat_audit::export(store, filter, out, &[CI_POLICY])?;
    let damaged = match summary.damaged.len() {
        0 => String::new(),
        count => format!("; {count} damaged"),
    };
    println!(
        "exported {} records ({} executions, {} of them unfinished; {} session records{damaged}) to {}",
        summary.records,
        summary.executions,
        summary.unfinished,
        summary.session_records,
        out.display()
    );
    print!("{}", print::chain_line(&summary.verification));
    println!("manifest.json SHA-256: {}", summary.manifest_sha256);
    if !summary.missing_policies.is_empty() {
        eprintln!(
            "moat: warning: the store does not keep the text of policies {}, so the bundle lacks them",
            summary.missing_policies.join(", ")
        );
    }
    for policy in &summary.policies {
        if !policy.text_matches_sha256 {
            eprintln!(
                "moat: warning: the kept text of policy {} does not hash to it, so the policies table was edited; {} holds the edited text",
                policy.sha256, policy.file
            );
        }
    }
    warn_listing(&Listing {
        index_mismatches: summary.index_mismatches.clone(),
        damaged_left_out: summary.damaged_left_out.clone(),
        ..Listing::default()
    });
    if !summary.selection.all_link {
        eprintln!(
            "moat: warning: some exported records do not verify; see verification.json in the bundle"
        );
    }
    Ok(chain_exit(&summary.verification))
}

fn report(store: &AuditStore, filter: &Filter, out: &Path) -> anyhow::Result<ExitCode> {
    // Rejects an output path over the store before reading it.
    moat_audit::check_output(store, out)?;
    let report = moat_audit::report(store, filter)?;
    moat_audit::write_output(store, out, report.html.as_bytes())?;
    println!(
        "wrote the report of {} records to {}",
        report.records,
        out.display()
    );
    print!("{}", print::chain_line(&report.verification));
    Ok(chain_exit(&report.verification))
}
