//! `kitle identity set customer_id|stitched` and `kitle identity show`: the store's recorded
//! identity setting (whose events are whose; see the segment language's "Identity").

use clap::Subcommand;
use kitle_data::Store;
use kitle_data::identity::{self, Identity};
use serde_json::json;

use crate::Context;
use crate::error::CliError;

/// The identity subcommands.
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Change the store's recorded identity setting on purpose; the next refresh uses it.
    Set {
        /// `customer_id` (an event is its customer_id's) or `stitched` (anonymous events are
        /// the customer's their device was last linked to by an `identified` event).
        value: String,
    },
    /// Show the store's recorded setting and this process's configured one.
    Show,
}

/// Runs one identity subcommand.
pub async fn run(ctx: &Context, command: &IdentityCommand) -> Result<(), CliError> {
    let store = ctx.open_store()?;
    match command {
        IdentityCommand::Set { value } => set(ctx, &store, value).await,
        IdentityCommand::Show => show(ctx, &store).await,
    }
}

fn parse(value: &str) -> Result<Identity, CliError> {
    value.parse::<Identity>().map_err(|_| {
        CliError::input(format!(
            "identity {value:?}: give `customer_id` or `stitched`"
        ))
    })
}

async fn set(ctx: &Context, store: &Store, value: &str) -> Result<(), CliError> {
    let identity = parse(value)?;
    let before = identity::set_identity(store, identity).await?;
    let configured = store.configured_identity();
    if ctx.json {
        println!(
            "{}",
            json!({"identity": identity, "previous": before, "configured": configured})
        );
    } else {
        match before {
            Some(before) if before == identity => {
                println!("identity: {identity} (unchanged)")
            }
            Some(before) => {
                println!("identity: {identity} (was {before}); the next refresh evaluates with it")
            }
            None => println!("identity: {identity} (recorded); the next refresh evaluates with it"),
        }
    }
    if let Some(configured) = configured.filter(|c| *c != identity) {
        eprintln!(
            "note: this process is configured with identity {configured} (identity in \
             kitle.toml or KITLE_IDENTITY); processes configured so now refuse to write to \
             this store"
        );
    }
    Ok(())
}

async fn show(ctx: &Context, store: &Store) -> Result<(), CliError> {
    let recorded = identity::recorded_identity(store).await?;
    let effective = identity::effective_identity(store).await?;
    let configured = store.configured_identity();
    if ctx.json {
        println!(
            "{}",
            json!({
                "identity": effective,
                "recorded": recorded.as_ref().map(|r| r.identity),
                "recorded_at": recorded.as_ref().map(|r| r.recorded_at),
                "configured": configured,
            })
        );
        return Ok(());
    }
    match &recorded {
        Some(r) => println!(
            "identity: {} (recorded in the store at {})",
            r.identity,
            kitle_planner::format_instant(&r.recorded_at)
        ),
        None => println!(
            "identity: {effective} (nothing recorded yet: the store's first write records it)"
        ),
    }
    if let Some(configured) = configured {
        let agrees = recorded.as_ref().is_none_or(|r| r.identity == configured);
        println!(
            "configured: {configured}{}",
            if agrees {
                ""
            } else {
                " (differs: this process refuses to write)"
            }
        );
    }
    Ok(())
}
