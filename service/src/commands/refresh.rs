//! `kitle refresh [ID…] [--as-of T]` and `kitle members ID`.

use std::sync::Arc;

use kitle_data::files::FooterCache;
use kitle_data::memberships;
use kitle_planner::refresh::{RefreshRun, refresh};

use crate::Context;
use crate::commands::segment::as_of;
use crate::error::CliError;
use crate::output::{TableFormat, write_batches};
use crate::progress::TerminalProgress;

/// Refreshes the named segments (all with none named) and prints each one's figures.
pub async fn run_refresh(
    ctx: &Context,
    ids: &[String],
    at: Option<&str>,
    full: bool,
) -> Result<(), CliError> {
    let store = ctx.open_store()?;
    // The command's requests, its identity check included (the refresh counts its own).
    let io_at_start = store.io();
    let at = as_of(ctx, at)?;
    // Refuse before evaluating anything when this process disagrees with the store's identity
    // setting (the commit would refuse anyway, after the whole evaluation): the caller's to fix.
    kitle_data::identity::ensure_writable(&store).await?;
    let mut outcome = refresh(RefreshRun {
        store: &store,
        cache: &FooterCache::new(),
        requested: ids,
        as_of: at,
        tz: ctx.config.time_zone,
        limits: &ctx.config.refresh_limits(),
        progress: &TerminalProgress::new(),
        full,
    })
    .await?;
    outcome.store_io = store.io().since(&io_at_start);
    crate::warn_report(&outcome.report);
    if ctx.json {
        println!("{}", serde_json::to_string(&outcome).unwrap_or_default());
    } else {
        println!(
            "refreshed {} segments as of {}",
            outcome.segments.len(),
            kitle_planner::format_instant(&outcome.as_of)
        );
        println!(
            "{:<36} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "segment", "version", "size", "entered", "exited", "ms"
        );
        for s in &outcome.segments {
            println!(
                "{:<36} {:>7} {:>9} {:>9} {:>9} {:>9}",
                s.id, s.version, s.size, s.entered, s.exited, s.duration_ms
            );
        }
        let states = &outcome.states;
        println!(
            "{} refresh: {} days of partial states reused, {} computed; read {:.1} MB, {} rows",
            states.mode,
            states.partitions_reused,
            states.partitions_recomputed,
            states.bytes_read as f64 / 1e6,
            states.rows_read
        );
        let io = &outcome.store_io;
        println!(
            "store: {} requests ({} GET, {} HEAD, {} LIST, {} PUT, {} DELETE, {} COPY), {:.1} MB fetched, {:.1} MB written",
            io.requests,
            io.gets,
            io.heads,
            io.lists,
            io.puts,
            io.deletes,
            io.copies,
            io.bytes_read as f64 / 1e6,
            io.bytes_written as f64 / 1e6
        );
        if outcome.retries > 0 {
            eprintln!(
                "note: the commit was applied again {} times because other writers committed first",
                outcome.retries
            );
        }
    }
    Ok(())
}

/// Prints the current members of a segment with `since`.
pub async fn run_members(ctx: &Context, id: &str, format: TableFormat) -> Result<(), CliError> {
    let store = ctx.open_store()?;
    let definitions = memberships::read_definitions(&store).await?;
    if !definitions.contains_key(id) {
        return Err(CliError::input(format!("no segment {id} is stored")));
    }
    let manifest = memberships::read_manifest(&store).await?;
    let Some(record) = manifest.segments.get(id).and_then(|s| s.current()) else {
        return Err(CliError::input(format!(
            "segment {id} was never refreshed: run `kitle refresh {id}`"
        )));
    };
    let session = kitle_data::session::new_context(&store);
    memberships::register_tables(&session, &store).await?;
    let frame = session
        .sql(&format!(
            "SELECT customer_id, since FROM memberships WHERE segment_id = '{}' ORDER BY customer_id",
            id.replace('\'', "''")
        ))
        .await?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    eprintln!(
        "{id}: {rows} members as of {}",
        kitle_planner::format_instant(&record.as_of)
    );
    let format = if ctx.json { TableFormat::Json } else { format };
    write_batches(&mut std::io::stdout().lock(), format, schema, &batches)
}
