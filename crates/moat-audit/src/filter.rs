//! Filters of `list`, `export` and `report`: which records a search
//! selects, judged by each record's body alone.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SubsecRound, TimeDelta, Utc};
use serde::Serialize;

use crate::error::AuditError;
use crate::record::{EntryBody, Event};

/// The format of stored times, which sort as text in time order.
pub(crate) const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// The pseudo-outcome of an execution whose `execution_started` record has
/// no `execution` record: it is still running, or moat stopped (a crash,
/// `kill -9`, power loss) before it could record the end.
pub const UNFINISHED: &str = "unfinished";

/// The status of a record whose body is not a valid record: not JSON, or
/// JSON without the fields of a record.
pub const DAMAGED: &str = "damaged";

/// Every value `--outcome` accepts: the outcomes an `execution` record can
/// have, then [`UNFINISHED`] and [`DAMAGED`].
pub const OUTCOMES: [&str; 10] = [
    "ok",
    "error",
    "timeout",
    "fuel_exhausted",
    "memory_limit",
    "output_truncated",
    "cancelled",
    "failed",
    UNFINISHED,
    DAMAGED,
];

/// The conditions of a search. Every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// Earliest record time, inclusive, in the stored format.
    #[serde(rename = "from_inclusive", skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Time at which the range ends, exclusive, in the stored format.
    #[serde(rename = "to_exclusive", skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The actor's principal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The actor's tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The MCP client's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The model identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// "python" or "javascript".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// One of [`OUTCOMES`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// A host the execution attempted to reach, allowed or not, in the form
    /// records store hosts (see [`Filter::set_egress_host`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress_host: Option<String>,
    /// The MCP session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The kinds of records selected.
    pub kind: Kind,
}

/// Record kinds that a search selects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One record per execution: the `execution` record of each finished
    /// run, and the `execution_started` record of each unfinished one.
    #[default]
    Execution,
    /// Session records: created, closed and expired.
    Session,
    /// Every record, `execution_started` records of finished runs included.
    All,
}

impl FromStr for Kind {
    type Err = AuditError;

    fn from_str(text: &str) -> Result<Kind, AuditError> {
        match text {
            "execution" => Ok(Kind::Execution),
            "session" => Ok(Kind::Session),
            "all" => Ok(Kind::All),
            other => Err(AuditError::Invalid(format!(
                "invalid record kind {other:?}: expected execution, session or all"
            ))),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Execution => "execution",
            Kind::Session => "session",
            Kind::All => "all",
        })
    }
}

impl Filter {
    /// Sets the start of the time range from a date (`2026-03-01`, the
    /// start of that UTC day) or an RFC 3339 time.
    pub fn set_from(&mut self, text: &str) -> Result<(), AuditError> {
        self.from = Some(format_time(parse_bound(text, "--from", false)?));
        self.check_range()
    }

    /// Sets the end of the time range from a date (`2026-03-31`, up to the
    /// end of that UTC day) or an RFC 3339 time, which is included.
    pub fn set_to(&mut self, text: &str) -> Result<(), AuditError> {
        self.to = Some(format_time(parse_bound(text, "--to", true)?));
        self.check_range()
    }

    /// Sets the outcome, which must be one of [`OUTCOMES`].
    pub fn set_outcome(&mut self, outcome: &str) -> Result<(), AuditError> {
        if !OUTCOMES.contains(&outcome) {
            return Err(AuditError::Invalid(format!(
                "invalid outcome {outcome:?}: expected one of {}",
                OUTCOMES.join(", ")
            )));
        }
        self.outcome = Some(outcome.to_owned());
        Ok(())
    }

    /// Sets the egress host, normalized the way records store hosts. That
    /// is the host of `http://HOST/` as the URL parser writes it: IDNA
    /// names in ASCII, IPv6 addresses in brackets and compressed, IPv4 in
    /// dotted decimal. It is lower case, without a trailing dot. A bare
    /// IPv6 address such as `::1` is accepted.
    pub fn set_egress_host(&mut self, host: &str) -> Result<(), AuditError> {
        self.egress_host = Some(normalize_host(host)?);
        Ok(())
    }

    /// Checks whether the filter sets a condition on the content of a
    /// record: anything but the record kind and the outcome `damaged`.
    fn has_content_conditions(&self) -> bool {
        let fields = [
            &self.from,
            &self.to,
            &self.principal,
            &self.tenant,
            &self.client,
            &self.model,
            &self.language,
            &self.egress_host,
            &self.session_id,
        ];
        fields.iter().any(|field| field.is_some())
            || self.outcome.as_deref().is_some_and(|o| o != DAMAGED)
    }

    /// Checks whether a damaged record is selected. Its body cannot be
    /// read, so no condition on its content can match it: it is selected
    /// only when the filter has none, whatever the kind.
    pub fn selects_damaged(&self) -> bool {
        !self.has_content_conditions()
    }

    fn check_range(&self) -> Result<(), AuditError> {
        let (Some(from), Some(to)) = (&self.from, &self.to) else {
            return Ok(());
        };
        if from < to {
            return Ok(());
        }
        // `to` is exclusive; the last time the range includes is one
        // microsecond before it.
        let last = NaiveDateTime::parse_from_str(to, TIME_FORMAT)
            .map(|to| format_time(to.and_utc() - TimeDelta::microseconds(1)))
            .unwrap_or_else(|_| to.clone());
        Err(AuditError::Invalid(format!(
            "the time range is empty: --from starts at {from}, after {last}, the last time that --to includes"
        )))
    }

    /// Checks whether `body` matches every field, judged by the body alone.
    /// `unfinished` is true for an `execution_started` record that has no
    /// `execution` record.
    pub fn matches(&self, body: &EntryBody, unfinished: bool) -> bool {
        let event = &body.event;
        let kind_matches = match (self.kind, event) {
            (Kind::All, _) => true,
            (Kind::Execution, Event::Execution(_)) => true,
            (Kind::Execution, Event::ExecutionStarted(_)) => unfinished,
            (Kind::Execution, _) => false,
            (Kind::Session, event) => event.execution_id().is_none(),
        };
        if !kind_matches {
            return false;
        }
        if let Some(from) = &self.from
            && body.time.as_str() < from.as_str()
        {
            return false;
        }
        if let Some(to) = &self.to
            && body.time.as_str() >= to.as_str()
        {
            return false;
        }

        let actor = event.actor();
        let client = actor.client.as_ref().map(|client| client.name.as_str());
        let fields = [
            (&self.principal, actor.principal.as_deref()),
            (&self.tenant, actor.tenant.as_deref()),
            (&self.client, client),
            (&self.model, actor.model.as_deref()),
            (&self.language, Some(event_language(event))),
            (&self.session_id, event.session_id()),
        ];
        for (wanted, actual) in fields {
            if let Some(wanted) = wanted
                && actual != Some(wanted.as_str())
            {
                return false;
            }
        }

        if let Some(outcome) = &self.outcome {
            let actual = match event {
                Event::Execution(execution) => Some(execution.outcome.as_str()),
                Event::ExecutionStarted(_) if unfinished => Some(UNFINISHED),
                _ => None,
            };
            if actual != Some(outcome.as_str()) {
                return false;
            }
        }
        if let Some(host) = &self.egress_host {
            let reached = match event {
                Event::Execution(execution) => execution.egress.iter().any(|a| &a.host == host),
                _ => false,
            };
            if !reached {
                return false;
            }
        }
        true
    }
}

/// Returns the language an event names.
pub(crate) fn event_language(event: &Event) -> &str {
    match event {
        Event::ExecutionStarted(start) => &start.language,
        Event::Execution(execution) => &execution.language,
        Event::SessionCreated(session)
        | Event::SessionClosed(session)
        | Event::SessionExpired(session) => &session.language,
    }
}

/// Writes `host` as the recorder stores the host of a request's URL.
fn normalize_host(host: &str) -> Result<String, AuditError> {
    let invalid = |why: &str| {
        AuditError::Invalid(format!(
            "invalid egress host {host:?}: {why}; give a host name or an IP address, such as api.example.com or ::1"
        ))
    };
    let trimmed = host.trim();
    if trimmed.is_empty() {
        return Err(invalid("it is empty"));
    }
    // A bare IPv6 address has colons, which a URL reads as a port.
    let authority = match trimmed.contains(':') && !trimmed.starts_with('[') {
        true => format!("[{trimmed}]"),
        false => trimmed.to_owned(),
    };
    let url = url::Url::parse(&format!("http://{authority}/"))
        .map_err(|error| invalid(&error.to_string()))?;
    let plain_host = url.port().is_none()
        && url.path() == "/"
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    let Some(normalized) = url.host_str().filter(|_| plain_host) else {
        return Err(invalid("it is not a host alone"));
    };
    Ok(normalized
        .to_ascii_lowercase()
        .trim_end_matches('.')
        .to_owned())
}

/// Example values, for the messages of invalid times.
const TIME_FORMS: &str = "a date such as 2026-03-01 or an RFC 3339 time with seconds and a UTC offset, such as 2026-03-01T09:30:00Z or 2026-03-01T11:30:00+02:00";

/// Parses a time-range bound. A date is the start of that UTC day, or for
/// an end bound the start of the next day. An RFC 3339 end bound is moved
/// one microsecond later, so that a record stamped at exactly that time is
/// included.
fn parse_bound(text: &str, flag: &str, end: bool) -> Result<DateTime<Utc>, AuditError> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = date.and_time(NaiveTime::MIN).and_utc();
        return Ok(match end {
            true => day + TimeDelta::days(1),
            false => day,
        });
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        let time = time.with_timezone(&Utc).trunc_subsecs(6);
        return Ok(match end {
            true => time + TimeDelta::microseconds(1),
            false => time,
        });
    }
    let message = match looks_like_date(text) {
        true => format!("invalid date {text:?} for {flag}: no such day; expected {TIME_FORMS}"),
        false => format!("invalid time {text:?} for {flag}: expected {TIME_FORMS}"),
    };
    Err(AuditError::Invalid(message))
}

/// Checks whether `text` has the shape of a date (`NNNN-NN-NN`), so that a
/// parse failure means a day that does not exist, such as 2026-02-30.
fn looks_like_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            4 | 7 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        })
}

fn format_time(time: DateTime<Utc>) -> String {
    time.format(TIME_FORMAT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_bounds_cover_whole_day() {
        let mut filter = Filter::default();
        filter.set_from("2026-03-01").expect("from");
        filter.set_to("2026-03-01").expect("to");
        assert_eq!(filter.from.as_deref(), Some("2026-03-01T00:00:00.000000Z"));
        assert_eq!(filter.to.as_deref(), Some("2026-03-02T00:00:00.000000Z"));
    }

    #[test]
    fn rfc3339_bounds_convert_to_utc() {
        let mut filter = Filter::default();
        filter.set_from("2026-03-01T10:00:00+02:00").expect("from");
        filter.set_to("2026-03-01T09:00:00.5Z").expect("to");
        assert_eq!(filter.from.as_deref(), Some("2026-03-01T08:00:00.000000Z"));
        assert_eq!(filter.to.as_deref(), Some("2026-03-01T09:00:00.500001Z"));
    }

    #[test]
    fn same_instant_is_not_empty() {
        let mut filter = Filter::default();
        filter.set_from("2026-03-01T09:00:00Z").expect("from");
        filter.set_to("2026-03-01T09:00:00Z").expect("to");
    }

    #[test]
    fn empty_range_names_last_included_time() {
        let mut filter = Filter::default();
        filter.set_from("2026-12-05").expect("from");
        let error = filter.set_to("2026-12-04").expect_err("empty range");
        assert_eq!(
            error.to_string(),
            "the time range is empty: --from starts at 2026-12-05T00:00:00.000000Z, after 2026-12-04T23:59:59.999999Z, the last time that --to includes"
        );
    }

    #[test]
    fn invalid_time_names_flag() {
        let mut filter = Filter::default();
        let error = filter.set_from("yesterday").expect_err("invalid");
        assert_eq!(
            error.to_string(),
            format!("invalid time \"yesterday\" for --from: expected {TIME_FORMS}")
        );
    }

    #[test]
    fn nonexistent_day_is_invalid_date() {
        let mut filter = Filter::default();
        let error = filter.set_to("2026-02-30").expect_err("invalid");
        assert_eq!(
            error.to_string(),
            format!("invalid date \"2026-02-30\" for --to: no such day; expected {TIME_FORMS}")
        );
    }

    #[test]
    fn unknown_outcome_rejected() {
        let mut filter = Filter::default();
        let error = filter.set_outcome("bogus").expect_err("invalid");
        assert_eq!(
            error.to_string(),
            "invalid outcome \"bogus\": expected one of ok, error, timeout, fuel_exhausted, memory_limit, output_truncated, cancelled, failed, unfinished, damaged"
        );
        filter.set_outcome("timeout").expect("valid");
        assert_eq!(filter.outcome.as_deref(), Some("timeout"));
    }

    #[test]
    fn egress_host_normalized_as_stored() {
        let cases = [
            ("API.Example.COM.", "api.example.com"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("BÜCHER.example", "xn--bcher-kva.example"),
            ("::1", "[::1]"),
            ("[::1]", "[::1]"),
            ("0:0:0:0:0:0:0:1", "[::1]"),
            ("127.0.0.1", "127.0.0.1"),
        ];
        for (given, stored) in cases {
            let mut filter = Filter::default();
            filter.set_egress_host(given).expect(given);
            assert_eq!(filter.egress_host.as_deref(), Some(stored), "{given}");
        }
    }

    #[test]
    fn egress_host_rejects_more_than_host() {
        for given in [
            "",
            "example.com:8080",
            "example.com/path",
            "user@example.com",
        ] {
            let mut filter = Filter::default();
            let error = filter.set_egress_host(given).expect_err(given);
            assert!(
                error.to_string().starts_with("invalid egress host "),
                "{error}"
            );
        }
    }
}
