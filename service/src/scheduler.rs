//! The scheduler of `kitle serve`: refreshes each segment on its `refresh` cadence (`hourly`,
//! `nightly` at 03:00, or a 5-field cron expression, in the store's time zone).
//!
//! Every tick it finds the segments that are due — never refreshed, or a cadence occurrence has
//! passed since the last refresh's `as_of` — and refreshes them **together, in one run** (one
//! scan of the events). Runs never overlap (the engine serialises refreshes, HTTP ones
//! included). A run that fails is logged and counted (`kitle_refreshes_total{status="failed"}`),
//! the previous memberships stay served, and since the segments are still due they are tried
//! again at the next tick — after first retrying them one at a time, so one broken definition
//! does not hold the others back.
//!
//! Each tick also re-reads the stored definitions and the manifest, so definitions put and
//! refreshes committed by other processes (the CLI, another replica) are served too.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::engine::Engine;

/// The segments due at `now`: those with a cadence that were never refreshed, or whose next
/// occurrence after their last `as_of` is not after `now`.
pub fn due_segments(engine: &Engine, now: DateTime<Utc>) -> Vec<String> {
    let definitions = engine.definitions();
    let snapshot = engine.snapshot();
    definitions
        .values()
        .filter_map(|stored| {
            let schedule = stored.definition.refresh.schedule()?;
            let id = &stored.definition.id;
            let due = match snapshot.segments.get(id) {
                None => true,
                Some(current) => {
                    let last = current.record.as_of.with_timezone(&engine.tz);
                    match schedule.find_next_occurrence(&last, false) {
                        Ok(next) => next.with_timezone(&Utc) <= now,
                        Err(e) => {
                            tracing::warn!(segment = %id, error = %e, "no next occurrence");
                            false
                        }
                    }
                }
            };
            due.then(|| id.clone())
        })
        .collect()
}

/// Runs until `stop` turns true.
pub async fn run(engine: Arc<Engine>, tick: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        // Definitions put and refreshes committed by other processes (the CLI, another
        // replica) are picked up first.
        if let Err(e) = engine.reload().await {
            tracing::error!(error = %e, "cannot re-read the store's definitions and manifest");
        }
        let now = crate::now_to_the_second();
        let due = due_segments(&engine, now);
        if !due.is_empty() {
            tracing::info!(segments = ?due, "scheduled refresh");
            if let Err(e) = engine.refresh(&due, now, "schedule").await {
                tracing::error!(error = %e, segments = ?due, "scheduled refresh failed");
                if due.len() > 1 {
                    for id in &due {
                        if *stop.borrow() {
                            return;
                        }
                        if let Err(e) = engine
                            .refresh(std::slice::from_ref(id), now, "schedule")
                            .await
                        {
                            tracing::error!(error = %e, segment = %id, "scheduled refresh failed; retried at the next tick");
                        }
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}
