//! The running service's state, shared by the HTTP handlers and the scheduler: the store, the
//! stored definitions, the in-memory membership index, and the one lock that serialises the
//! writes that touch memberships (refreshes and removals).
//!
//! Nothing here speaks HTTP; the handlers translate its errors into responses.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use kitle_data::contract::ContractTable;
use kitle_data::files::FooterCache;
use kitle_data::memberships::{self, Change, Manifest, Member};
use kitle_data::session::Limits;
use kitle_data::tables::ContractTables;
use kitle_data::{Progress, Store};
use kitle_planner::describe::{describe_columns_of, event_types_of};
use kitle_planner::refresh::{self as planner, RefreshOutcome};
use kitle_planner::{Error as PlannerError, EventTypeCount, SegmentDefinition, StoreDescription};
use serde_json::Value as Json;

use crate::index::Snapshot;

/// A stored definition, parsed.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The parsed definition.
    pub definition: SegmentDefinition,
}

/// Everything a request or a scheduled run needs.
pub struct Engine {
    /// The store.
    pub store: Store,
    /// The store's time zone (instants in definitions, cadences).
    pub tz: Tz,
    /// Footer verdicts, kept for the service's lifetime so files are judged once (shared with
    /// the analyst sessions).
    pub cache: Arc<FooterCache>,
    snapshot: RwLock<Arc<Snapshot>>,
    manifest: RwLock<Arc<Manifest>>,
    definitions: RwLock<Arc<BTreeMap<String, Stored>>>,
    /// Serialises refreshes and removals (both rewrite the manifest).
    write: tokio::sync::Mutex<()>,
    /// Serialises definition writes (read–modify–write of one object).
    define: tokio::sync::Mutex<()>,
    /// Serialises reloads, so that a reload that read an older manifest never swaps in after
    /// one that read a newer manifest.
    reload: tokio::sync::Mutex<()>,
    /// Change logs and old member lists read from the store, by path (files never change once
    /// written), bounded.
    files: Mutex<FileCache>,
    /// Unreadable files already logged (each is logged once, not at every refresh).
    reported: Mutex<std::collections::BTreeSet<String>>,
    /// The event type counts of [`Engine::describe`], with the fingerprint of the event files
    /// they were counted from.
    event_types: Mutex<Option<(u64, Arc<Vec<EventTypeCount>>)>>,
}

/// A small cache of immutable files read from the store.
#[derive(Default)]
struct FileCache {
    changes: HashMap<String, Arc<Vec<Change>>>,
    members: HashMap<String, Arc<Vec<Member>>>,
}

/// How many files of each kind [`FileCache`] keeps before it starts over.
const FILE_CACHE_ENTRIES: usize = 64;

impl Engine {
    /// Opens the service's state: reads the definitions and loads every segment's current
    /// memberships into memory.
    pub async fn open(store: Store, tz: Tz) -> Result<Arc<Self>, PlannerError> {
        let engine = Arc::new(Self {
            store,
            tz,
            cache: Arc::new(FooterCache::new()),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            manifest: RwLock::new(Arc::new(Manifest::default())),
            definitions: RwLock::new(Arc::new(BTreeMap::new())),
            write: tokio::sync::Mutex::new(()),
            define: tokio::sync::Mutex::new(()),
            reload: tokio::sync::Mutex::new(()),
            files: Mutex::new(FileCache::default()),
            reported: Mutex::new(Default::default()),
            event_types: Mutex::new(None),
        });
        engine.reload_definitions().await?;
        engine.reload_memberships().await?;
        Ok(engine)
    }

    /// The current membership snapshot (cheap: an `Arc` clone).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().expect("snapshot lock"))
    }

    /// The manifest the snapshot was loaded from (history, change logs).
    pub fn manifest(&self) -> Arc<Manifest> {
        Arc::clone(&self.manifest.read().expect("manifest lock"))
    }

    /// The stored definitions by id.
    pub fn definitions(&self) -> Arc<BTreeMap<String, Stored>> {
        Arc::clone(&self.definitions.read().expect("definitions lock"))
    }

    /// Re-reads the definitions and the manifest, picking up what other processes wrote (the
    /// CLI, another replica of the service); unchanged segments cost nothing.
    pub async fn reload(&self) -> Result<(), PlannerError> {
        self.reload_definitions().await?;
        self.reload_memberships().await
    }

    /// Re-reads the stored definitions.
    pub async fn reload_definitions(&self) -> Result<(), PlannerError> {
        let parsed = planner::stored_definitions(&self.store, self.tz).await?;
        let map = parsed
            .into_iter()
            .map(|d| (d.id.clone(), Stored { definition: d }))
            .collect();
        *self.definitions.write().expect("definitions lock") = Arc::new(map);
        Ok(())
    }

    /// Re-reads the manifest and swaps in a snapshot with every segment's current version:
    /// unchanged segments are carried over, changed ones read from the store. Readers see the
    /// old or the new snapshot whole.
    pub async fn reload_memberships(&self) -> Result<(), PlannerError> {
        let _guard = self.reload.lock().await;
        let manifest = memberships::read_manifest(&self.store).await?;
        let current = self.snapshot();
        let mut kept = Vec::new();
        let mut loaded = crate::index::Loader::default();
        for (id, state) in &manifest.segments {
            let Some(record) = state.current() else {
                continue;
            };
            match current.segments.get(id) {
                Some(old) if old.record == *record => kept.push(id.clone()),
                _ => {
                    let members = memberships::read_members(&self.store, &record.members).await?;
                    loaded.add(record.clone(), id.clone(), members);
                }
            }
        }
        // Manifest first, then the snapshot: a reader of both sees a manifest at least as new
        // as the members it is answered from.
        *self.manifest.write().expect("manifest lock") = Arc::new(manifest);
        let changed = !loaded.is_empty() || kept.len() != current.segments.len();
        if changed || current.generation == 0 {
            let next = Arc::new(current.next(loaded, &kept));
            for (id, segment) in &next.segments {
                metrics::gauge!("kitle_segment_size", "segment" => id.clone())
                    .set(segment.len() as f64);
            }
            metrics::gauge!("kitle_index_bytes").set(next.heap_bytes() as f64);
            metrics::gauge!("kitle_index_customers").set(next.interner.len() as f64);
            *self.snapshot.write().expect("snapshot lock") = next;
        }
        Ok(())
    }

    /// Refreshes `ids` (all when empty) at `as_of`, then swaps the new memberships in. One
    /// refresh (or removal) runs at a time; a failed one leaves everything as it was.
    pub async fn refresh(
        &self,
        ids: &[String],
        as_of: DateTime<Utc>,
        trigger: &'static str,
        limits: &Limits,
    ) -> Result<RefreshOutcome, PlannerError> {
        let _guard = self.write.lock().await;
        let started = Instant::now();
        let result = planner::refresh(planner::RefreshRun {
            store: &self.store,
            cache: &self.cache,
            requested: ids,
            as_of,
            tz: self.tz,
            limits,
            progress: &LogProgress,
            full: false,
        })
        .await;
        let elapsed = started.elapsed().as_secs_f64();
        let status = if result.is_ok() { "ok" } else { "failed" };
        metrics::histogram!("kitle_refresh_duration_seconds", "trigger" => trigger, "status" => status)
            .record(elapsed);
        metrics::counter!("kitle_refreshes_total", "trigger" => trigger, "status" => status)
            .increment(1);
        let outcome = result?;
        let states = &outcome.states;
        metrics::counter!("kitle_refreshes_by_mode_total", "mode" => states.mode.clone())
            .increment(1);
        metrics::counter!("kitle_refresh_partitions_total", "state" => "reused")
            .increment(states.partitions_reused);
        metrics::counter!("kitle_refresh_partitions_total", "state" => "recomputed")
            .increment(states.partitions_recomputed);
        metrics::counter!("kitle_refresh_read_bytes_total").increment(states.bytes_read);
        metrics::counter!("kitle_refresh_read_rows_total").increment(states.rows_read);
        let io = &outcome.store_io;
        for (op, n) in [
            ("get", io.gets),
            ("head", io.heads),
            ("list", io.lists),
            ("put", io.puts),
            ("delete", io.deletes),
            ("copy", io.copies),
        ] {
            metrics::counter!("kitle_refresh_store_requests_total", "op" => op).increment(n);
        }
        metrics::counter!("kitle_refresh_store_bytes_total", "direction" => "read")
            .increment(io.bytes_read);
        metrics::counter!("kitle_refresh_store_bytes_total", "direction" => "written")
            .increment(io.bytes_written);
        for s in &outcome.segments {
            metrics::counter!("kitle_refresh_entered_total", "segment" => s.id.clone())
                .increment(s.entered);
            metrics::counter!("kitle_refresh_exited_total", "segment" => s.id.clone())
                .increment(s.exited);
        }
        {
            let mut reported = self.reported.lock().expect("reported lock");
            for file in &outcome.report.skipped_files {
                if reported.insert(file.path.clone()) {
                    tracing::warn!(path = %file.path, reason = %file.reason, "skipped an unreadable file");
                }
            }
            metrics::gauge!("kitle_skipped_files").set(outcome.report.skipped_files.len() as f64);
        }
        if outcome.retries > 0 {
            metrics::counter!("kitle_commit_retries_total").increment(u64::from(outcome.retries));
        }
        tracing::info!(
            trigger,
            segments = outcome.segments.len(),
            retries = outcome.retries,
            as_of = %outcome.as_of,
            seconds = elapsed,
            "refreshed"
        );
        self.reload_memberships().await?;
        Ok(outcome)
    }

    /// Validates and stores `document` as segment `id`; `true` when it was created.
    pub async fn put(&self, document: Json) -> Result<bool, PlannerError> {
        let _guard = self.define.lock().await;
        let outcome =
            planner::put_definitions(&self.store, &self.cache, &[document], self.tz).await?;
        self.reload_definitions().await?;
        Ok(outcome.stored.first().is_some_and(|(_, created)| *created))
    }

    /// Removes segment `id` and its memberships (refused while others refer to it).
    pub async fn remove(&self, id: &str) -> Result<(), PlannerError> {
        let _write = self.write.lock().await;
        let _define = self.define.lock().await;
        planner::remove_definition(&self.store, id, self.tz).await?;
        self.reload_definitions().await?;
        self.reload_memberships().await
    }

    /// Erases `ids` (KVKK, GDPR; see `kitle_data::erasure`), then serves memberships without
    /// them. Runs alone, like a refresh: it writes the manifest.
    pub async fn erase(
        &self,
        ids: &[String],
        reason: Option<&str>,
    ) -> Result<kitle_data::erasure::ErasureOutcome, kitle_data::Error> {
        let _guard = self.write.lock().await;
        let outcome =
            kitle_data::erasure::erase(&self.store, ids, reason, crate::now_to_the_second())
                .await?;
        // Cached files are keyed by name; rewritten ones have new names, but drop the old
        // contents now rather than at the next turnover.
        *self.files.lock().expect("file cache") = FileCache::default();
        tracing::info!(
            customers = ids.len(),
            files_rewritten = outcome.files_rewritten,
            files_removed = outcome.files_removed,
            "erased"
        );
        self.reload_memberships()
            .await
            .map_err(|e| kitle_data::Error::Io {
                context: "loading the memberships after the erasure".into(),
                source: std::io::Error::other(e.to_string()),
            })?;
        Ok(outcome)
    }

    /// The store as a segment builder sees it: columns with their operators, and the event
    /// types present with their counts. The counts need a scan of the events, so they are
    /// kept until the readable event files change (a file lands or is replaced); the scan runs
    /// under `limits`.
    pub async fn describe(&self, limits: &Limits) -> Result<StoreDescription, PlannerError> {
        let tables = ContractTables::load(&self.store, &self.cache).await?;
        let key = tables.files(ContractTable::Events).fingerprint();
        let cached = self
            .event_types
            .lock()
            .expect("event types lock")
            .clone()
            .filter(|(k, _)| *k == key);
        let event_types = match cached {
            Some((_, counted)) => counted,
            None => {
                let counted = Arc::new(event_types_of(&tables, limits).await?);
                *self.event_types.lock().expect("event types lock") =
                    Some((key, Arc::clone(&counted)));
                counted
            }
        };
        let (customers, events) = describe_columns_of(&tables);
        Ok(StoreDescription {
            customers,
            events,
            event_types: event_types.as_ref().clone(),
        })
    }

    /// The change log of one refresh (cached: change logs never change once written).
    pub async fn changes(&self, path: &str) -> Result<Arc<Vec<Change>>, PlannerError> {
        if let Some(c) = self.files.lock().expect("file cache").changes.get(path) {
            return Ok(Arc::clone(c));
        }
        let changes = Arc::new(memberships::read_changes(&self.store, path).await?);
        let mut files = self.files.lock().expect("file cache");
        if files.changes.len() >= FILE_CACHE_ENTRIES {
            files.changes.clear();
        }
        files.changes.insert(path.to_string(), Arc::clone(&changes));
        Ok(changes)
    }

    /// The members of an older version (for cursors that started on it), sorted by id.
    pub async fn old_members(&self, path: &str) -> Result<Arc<Vec<Member>>, PlannerError> {
        if let Some(m) = self.files.lock().expect("file cache").members.get(path) {
            return Ok(Arc::clone(m));
        }
        let mut members = memberships::read_members(&self.store, path).await?;
        members.sort_unstable_by(|a, b| a.customer_id.cmp(&b.customer_id));
        let members = Arc::new(members);
        let mut files = self.files.lock().expect("file cache");
        if files.members.len() >= FILE_CACHE_ENTRIES {
            files.members.clear();
        }
        files.members.insert(path.to_string(), Arc::clone(&members));
        Ok(members)
    }
}

/// Progress of a refresh inside the service: debug log lines (the metrics are recorded by
/// [`Engine::refresh`]).
struct LogProgress;

impl Progress for LogProgress {
    fn start(&self, phase: &str, total: u64) {
        tracing::debug!(phase, total, "refresh phase");
    }
    fn advance(&self, _delta: u64) {}
    fn finish(&self) {}
}
