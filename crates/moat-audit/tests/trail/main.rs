//! Tests of the audit trail against real SQLite files: tampering caught by
//! verification, filters, export bundles, reports and concurrent appends.

mod concurrency;
mod export;
mod filters;
mod report;
mod support;
mod tamper;
