//! Tests of the audit trail against real SQLite files: tampering caught by
//! verification, filters, export bundles, reports and concurrent appends.

mod concurrency;
mod damaged;
mod export;
mod filters;
mod open;
mod outputs;
mod report;
mod support;
mod tamper;
