//! `kitle`, the library behind the `kitle` binary: the command line ([`cli`]), the typed
//! configuration ([`config`]), the HTTP API ([`http`]) over the service's state ([`engine`])
//! and in-memory membership index ([`index`]), the scheduler ([`scheduler`]) and the
//! ready-made segments built in ([`ready_made`]).
//!
//! The binary's `main.rs` only installs the allocator and calls [`cli::main`]; everything is
//! here so that configuration and handlers have unit tests.

pub mod analyst;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod http;
pub mod index;
pub mod output;
pub mod pg;
pub mod progress;
pub mod ready_made;
pub mod scheduler;

#[cfg(test)]
#[path = "../build_support.rs"]
mod build_support;

use crate::config::Config;

/// What every command runs with.
pub struct Context {
    /// The validated configuration.
    pub config: Config,
    /// `--json` was given.
    pub json: bool,
}

impl Context {
    /// Opens the configured store, with its queries run on the configured engine.
    pub fn open_store(&self) -> Result<kitle_data::Store, error::CliError> {
        let store = kitle_data::Store::open(&self.config.store)?;
        let engine = self
            .config
            .engine
            .clone()
            .with_connect_timeout(self.config.cluster.connect_timeout.as_secs())
            .with_job_timeout(self.config.cluster.job_timeout.as_secs());
        Ok(store.with_engine(engine))
    }
}

/// Prints what reading the store left out, as warnings on stderr.
pub fn warn_report(report: &kitle_data::tables::ReadReport) {
    for file in &report.skipped_files {
        eprintln!("warning: skipped {}: {}", file.path, file.reason);
    }
    for nulls in &report.null_rows {
        eprintln!(
            "warning: {} rows of {} have no {} and are dropped",
            nulls.rows, nulls.path, nulls.column
        );
    }
}

/// Now, truncated to the second: the default `as_of` of a refresh (the spec's rule).
pub fn now_to_the_second() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
}
