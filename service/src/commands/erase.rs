//! `kitle erase CUSTOMER_ID… [--reason TEXT]`: erasure (KVKK, GDPR), see `kitle_data::erasure`.

use crate::Context;
use crate::error::CliError;

/// Erases `ids` and prints the segments each one left.
pub async fn run(ctx: &Context, ids: &[String], reason: Option<&str>) -> Result<(), CliError> {
    if ids.is_empty() {
        return Err(CliError::input("give at least one customer id to erase"));
    }
    let store = ctx.open_store()?;
    let outcome =
        kitle_data::erasure::erase(&store, ids, reason, crate::now_to_the_second()).await?;
    if ctx.json {
        println!("{}", serde_json::to_string(&outcome).unwrap_or_default());
    } else {
        println!("erased at {}", kitle_planner::format_instant(&outcome.at));
        for c in &outcome.customers {
            let left = if c.segments.is_empty() {
                "no segment".to_string()
            } else {
                c.segments.join(", ")
            };
            let already = if c.already_erased {
                " (already erased)"
            } else {
                ""
            };
            println!("{}{already}: left {left}", c.customer_id);
        }
        println!(
            "{} files rewritten without them, {} removed",
            outcome.files_rewritten, outcome.files_removed
        );
    }
    if !outcome.definitions_mentioning.is_empty() {
        eprintln!(
            "warning: these stored definitions name an erased id and were left as they are: {}",
            outcome.definitions_mentioning.join(", ")
        );
    }
    Ok(())
}
