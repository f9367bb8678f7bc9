//! `kitle generate`: writes a synthetic Turkish online shop into the store.

use std::time::Instant;

use chrono::NaiveDate;
use kitle_data::files::{contract_data_present, remove_contract_data};
use kitle_data::generate::{GenerateOptions, generate};
use serde_json::json;

use crate::Context;
use crate::error::CliError;
use crate::progress::TerminalProgress;

/// Arguments of `kitle generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Number of customers.
    #[arg(long)]
    pub customers: u64,
    /// Number of days of events, ending with `--end`.
    #[arg(long)]
    pub days: u32,
    /// Random seed: the same arguments give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Last day of events (YYYY-MM-DD, UTC); today when not given.
    #[arg(long)]
    pub end: Option<NaiveDate>,
    /// Replace the `customers/` and `events/` already in the store.
    #[arg(long)]
    pub overwrite: bool,
}

/// Generates the shop and prints what was written.
pub async fn run(ctx: &Context, args: &GenerateArgs) -> Result<(), CliError> {
    let store = ctx.open_store()?;
    if contract_data_present(&store).await? {
        if !args.overwrite {
            return Err(CliError::input(format!(
                "the store {} already holds customers/ or events/; pass --overwrite to replace them",
                store.display_url()
            )));
        }
        remove_contract_data(&store).await?;
    }
    let options = GenerateOptions {
        customers: args.customers,
        days: args.days,
        seed: args.seed,
        end: args.end.unwrap_or_else(|| chrono::Utc::now().date_naive()),
    };
    let started = Instant::now();
    let summary = generate(&store, &options, &TerminalProgress::new()).await?;
    let seconds = started.elapsed().as_secs_f64();
    if ctx.json {
        println!(
            "{}",
            json!({
                "store": store.display_url(),
                "customers": summary.customers,
                "customer_rows": summary.customer_rows,
                "events": summary.events,
                "files": summary.files,
                "bytes": summary.bytes,
                "first_day": summary.first_day.to_string(),
                "last_day": summary.last_day.to_string(),
                "seconds": seconds,
            })
        );
    } else {
        println!(
            "wrote {} customers ({} profile rows) and {} events ({} to {}) in {} files, {:.1} MB, to {} in {:.1} s ({:.0} events/s)",
            summary.customers,
            summary.customer_rows,
            summary.events,
            summary.first_day,
            summary.last_day,
            summary.files,
            summary.bytes as f64 / 1e6,
            store.display_url(),
            seconds,
            summary.events as f64 / seconds.max(1e-9),
        );
    }
    Ok(())
}
