//! The scheduler of `kitle serve`: refreshes each segment on its `refresh` cadence (`hourly`,
//! `nightly` at 03:00, or a 5-field cron expression, in the store's time zone).
//!
//! Every tick it finds the segments that are due — never refreshed, or a cadence occurrence has
//! passed since the last refresh's `as_of` — and refreshes them **together, in one run** (one
//! scan of the events). Runs never overlap (the engine serialises refreshes, HTTP ones
//! included). A run that fails is logged and counted (`kitle_refreshes_total{status="failed"}`)
//! and the previous memberships stay served; its segments are retried one at a time right away,
//! so one broken definition does not hold the others back, and a segment that still fails is
//! tried again at a later tick, waiting longer after each failure in a row ([`backoff`]: one
//! tick, doubling, at most an hour).
//!
//! Each tick also re-reads the stored definitions and the manifest, so definitions put and
//! refreshes committed by other processes (the CLI, another replica) are served too.

use std::collections::HashMap;
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

/// How long a segment whose scheduled refresh failed `failures` times in a row waits before
/// the next try: one tick after the first failure, doubling after each further one, at most an
/// hour (or one tick, when ticks are longer). A broken definition on a large shop so costs a full
/// evaluation an hour, not one a tick.
pub fn backoff(failures: u32, tick: Duration) -> Duration {
    let cap = Duration::from_secs(3600).max(tick);
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    tick.saturating_mul(factor).min(cap)
}

/// Segments whose last scheduled refresh failed: how many times in a row, and not before when.
#[derive(Default)]
struct Failures(HashMap<String, (u32, DateTime<Utc>)>);

impl Failures {
    fn waiting(&self, id: &str, now: DateTime<Utc>) -> bool {
        self.0.get(id).is_some_and(|(_, next)| *next > now)
    }

    fn failed(&mut self, id: &str, now: DateTime<Utc>, tick: Duration) {
        let entry = self.0.entry(id.to_string()).or_insert((0, now));
        entry.0 += 1;
        let wait = chrono::Duration::from_std(backoff(entry.0, tick)).unwrap_or_default();
        entry.1 = now + wait;
        metrics::gauge!("kitle_schedule_failing_segments").set(self.0.len() as f64);
    }

    fn succeeded(&mut self, id: &str) {
        if self.0.remove(id).is_some() {
            metrics::gauge!("kitle_schedule_failing_segments").set(self.0.len() as f64);
        }
    }
}

/// Runs until `stop` turns true.
pub async fn run(
    engine: Arc<Engine>,
    tick: Duration,
    limits: kitle_data::session::Limits,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures = Failures::default();
    loop {
        // Definitions put and refreshes committed by other processes (the CLI, another
        // replica) are picked up first.
        if let Err(e) = engine.reload().await {
            tracing::error!(error = %e, "cannot re-read the store's definitions and manifest");
        }
        let now = crate::now_to_the_second();
        let due: Vec<String> = due_segments(&engine, now)
            .into_iter()
            .filter(|id| !failures.waiting(id, now))
            .collect();
        if !due.is_empty() {
            tracing::info!(segments = ?due, "scheduled refresh");
            match engine.refresh(&due, now, "schedule", &limits).await {
                Ok(_) => due.iter().for_each(|id| failures.succeeded(id)),
                Err(e) if due.len() == 1 => {
                    tracing::error!(error = %e, segment = %due[0], "scheduled refresh failed");
                    failures.failed(&due[0], now, tick);
                }
                Err(e) => {
                    tracing::error!(error = %e, segments = ?due, "scheduled refresh failed; trying each alone");
                    for id in &due {
                        if *stop.borrow() {
                            return;
                        }
                        match engine
                            .refresh(std::slice::from_ref(id), now, "schedule", &limits)
                            .await
                        {
                            Ok(_) => failures.succeeded(id),
                            Err(e) => {
                                tracing::error!(error = %e, segment = %id, "scheduled refresh failed");
                                failures.failed(id, now, tick);
                            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_segments_wait_longer_each_time_up_to_an_hour() {
        let tick = Duration::from_secs(30);
        assert_eq!(backoff(1, tick), tick);
        assert_eq!(backoff(2, tick), Duration::from_secs(60));
        assert_eq!(backoff(3, tick), Duration::from_secs(120));
        assert_eq!(backoff(10, tick), Duration::from_secs(3600));
        assert_eq!(backoff(u32::MAX, tick), Duration::from_secs(3600));
        let long = Duration::from_secs(7200);
        assert_eq!(backoff(5, long), long);

        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut f = Failures::default();
        assert!(!f.waiting("x", now));
        f.failed("x", now, tick);
        assert!(f.waiting("x", now));
        assert!(!f.waiting("x", now + chrono::Duration::seconds(30)));
        f.failed("x", now, tick);
        assert!(f.waiting("x", now + chrono::Duration::seconds(59)));
        f.succeeded("x");
        assert!(!f.waiting("x", now));
    }
}
