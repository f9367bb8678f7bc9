//! Erasure (KVKK, GDPR): forgetting a customer in everything kitle wrote, and keeping them out
//! of every later evaluation.
//!
//! kitle never rewrites `customers/` or `events/` (the systems that write them erase there);
//! [`erase`] forgets the customer in everything kitle wrote, in two phases:
//!
//! 1. **The commit** — one manifest write: every segment the customer is a member of gets a
//!    new version that is the previous one without them (nothing is re-evaluated), whose change
//!    log holds one `exited` entry at the erasure's instant, so automations drop them too; and
//!    the id's SHA-256 joins the manifest's erasure list (with the instant and the reason),
//!    marked "not yet rewritten". From then on lookups say "not a member" and every evaluation
//!    excludes the id from its universe ([`crate::tables::ContractTables::universe_plan`]).
//! 2. **The rewrite** — every other file kitle wrote that holds the id is written again without
//!    it: the members files of every version, the earlier change logs (an erased entry keeps
//!    its position as an `erased` placeholder without id, so feed cursors stay valid and
//!    nothing is skipped), and files of killed runs that no manifest names (removed: they were
//!    never committed and never will be). Rewritten files get new names and the manifest is
//!    pointed at them before the old ones are removed, so a reader never finds a named file
//!    missing and caches keyed by file name never serve the old content. Last, the erasure is
//!    marked rewritten.
//!
//! A kill at any point leaves either no erasure (before the commit: only unnamed files, which
//! the next erasure's rewrite removes) or a committed one whose rewrite is pending; any later
//! [`erase`] — of the same ids, of others, of none — finishes pending rewrites, finding the ids
//! of earlier erasures by their hash.
//!
//! What stays is the erasure list, in the manifest: the SHA-256 of each erased id (lower-case
//! hex of its UTF-8 bytes), the instant and the reason; and the erasure versions' own `exited`
//! entries.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::layout;
use crate::memberships::{
    self, Change, ChangeKind, Manifest, Member, RefreshRecord, changes_file_bytes,
    members_file_bytes, put, read_changes, read_manifest, read_members,
};
use crate::store::Store;

/// One erased customer, as the manifest's erasure list records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Erasure {
    /// SHA-256 of the customer id (lower-case hex): the only trace of the id kept.
    pub sha256: String,
    /// When the erasure was committed.
    pub at: DateTime<Utc>,
    /// Why, as the caller gave it (`--reason`, the request's `reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether every other file kitle wrote was rewritten without the id; `false` while that
    /// rewrite is still to be done (a killed erasure), which any later erasure finishes.
    pub rewritten: bool,
}

/// The SHA-256 of a customer id, as the erasure list holds it.
pub fn id_hash(customer_id: &str) -> String {
    let digest = Sha256::digest(customer_id.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// What one customer id's erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErasedCustomer {
    /// The id as given.
    pub customer_id: String,
    /// The segments they left (their current versions held them), sorted.
    pub segments: Vec<String>,
    /// Whether the id was already erased before (nothing changed for it then).
    pub already_erased: bool,
}

/// What [`erase`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureOutcome {
    /// The erasure's instant: the `at` of its `exited` entries.
    pub at: DateTime<Utc>,
    /// Per id given, in order.
    pub customers: Vec<ErasedCustomer>,
    /// Files written again without erased ids (committed files of earlier versions).
    pub files_rewritten: usize,
    /// Files removed: the replaced originals and files of killed runs that held erased ids.
    pub files_removed: usize,
    /// Stored definitions whose text names an erased id (left as they are: changing them
    /// would change what the segment means; the shop's people should look at them).
    pub definitions_mentioning: Vec<String>,
}

/// Erases `ids` (see the module documentation) at `at`, with an optional `reason`; finishes
/// the rewrite of any earlier erasure left pending. Erasing an unknown or already erased id
/// changes no membership.
pub async fn erase(
    store: &Store,
    ids: &[String],
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> Result<ErasureOutcome> {
    if let Some(empty) = ids.iter().find(|id| id.is_empty()) {
        return Err(Error::InvalidArgument {
            name: "customer_id",
            reason: format!("{empty:?}: a customer id is not empty"),
        });
    }
    crate::identity::ensure_writable(store).await?;
    let mut unique: Vec<&String> = Vec::new();
    for id in ids {
        if !unique.contains(&id) {
            unique.push(id);
        }
    }

    // Phase 1: the commit.
    let nonce = memberships::nonce();
    let left: BTreeMap<String, (Vec<String>, bool)> = commit_manifest(store, |mut manifest| {
        let unique = unique.clone();
        let nonce = nonce.clone();
        async move {
            let already = manifest.erased_hashes();
            let fresh: BTreeSet<&str> = unique
                .iter()
                .filter(|id| !already.contains(&id_hash(id)))
                .map(|id| id.as_str())
                .collect();
            let mut left: BTreeMap<String, (Vec<String>, bool)> = unique
                .iter()
                .map(|id| ((*id).clone(), (Vec::new(), !fresh.contains(id.as_str()))))
                .collect();
            let segments: Vec<String> = manifest.segments.keys().cloned().collect();
            for segment in segments {
                let state = manifest.segments.get_mut(&segment).expect("listed");
                let Some(current) = state.current().cloned() else {
                    continue;
                };
                let members = read_members(store, &current.members).await?;
                let (gone, kept): (Vec<Member>, Vec<Member>) = members
                    .into_iter()
                    .partition(|m| fresh.contains(m.customer_id.as_str()));
                if gone.is_empty() {
                    continue;
                }
                let version = current.version + 1;
                let members_path = layout::members_file(&segment, version, &nonce);
                let changes_path = layout::changes_file(&segment, version, &nonce);
                let exits: Vec<Change> = gone
                    .iter()
                    .map(|m| Change {
                        customer_id: m.customer_id.clone(),
                        change: ChangeKind::Exited,
                        at,
                    })
                    .collect();
                put(store, &members_path, members_file_bytes(&segment, &kept)?).await?;
                put(store, &changes_path, changes_file_bytes(&segment, &exits)?).await?;
                state.history.push(RefreshRecord {
                    version,
                    as_of: at,
                    size: kept.len() as u64,
                    entered: 0,
                    exited: gone.len() as u64,
                    duration_ms: 0,
                    members: members_path,
                    changes: changes_path,
                    erasure: true,
                });
                for m in gone {
                    if let Some(entry) = left.get_mut(&m.customer_id) {
                        entry.0.push(segment.clone());
                    }
                }
            }
            for id in &fresh {
                manifest.erasures.push(Erasure {
                    sha256: id_hash(id),
                    at,
                    reason: reason.map(str::to_string),
                    rewritten: false,
                });
            }
            Ok((manifest, left))
        }
    })
    .await?;

    // Partial states hold per-customer figures of the erased ids: forgotten whole (a
    // refresh recomputes what it needs; the fingerprint names the erasure list anyway).
    crate::states::forget(store).await?;

    // Phase 2: the rewrite (of this erasure and of any left pending).
    let known: BTreeSet<String> = unique.iter().map(|id| (*id).clone()).collect();
    let (files_rewritten, files_removed) = finish_rewrites(store, &known).await?;

    let definitions = memberships::read_definitions(store).await?;
    let definitions_mentioning = definitions
        .iter()
        .filter(|(_, doc)| names_any(doc, &known))
        .map(|(id, _)| id.clone())
        .collect();
    Ok(ErasureOutcome {
        at,
        customers: unique
            .iter()
            .map(|id| {
                let (segments, already_erased) = left.get(*id).cloned().unwrap_or_default();
                ErasedCustomer {
                    customer_id: (*id).clone(),
                    segments,
                    already_erased,
                }
            })
            .collect(),
        files_rewritten,
        files_removed,
        definitions_mentioning,
    })
}

/// Whether a JSON document has a string holding one of `ids`.
fn names_any(doc: &serde_json::Value, ids: &BTreeSet<String>) -> bool {
    match doc {
        serde_json::Value::String(text) => ids.iter().any(|id| text.contains(id.as_str())),
        serde_json::Value::Array(items) => items.iter().any(|i| names_any(i, ids)),
        serde_json::Value::Object(fields) => fields.values().any(|v| names_any(v, ids)),
        _ => false,
    }
}

/// Phase 2: rewrites every file that holds an id of a pending erasure (those of `known`, and
/// the others found by their hash), removes unnamed files holding them, and marks the
/// erasures rewritten. Returns (files rewritten, files removed).
async fn finish_rewrites(store: &Store, known: &BTreeSet<String>) -> Result<(usize, usize)> {
    let manifest = read_manifest(store).await?;
    let pending: BTreeSet<String> = manifest
        .erasures
        .iter()
        .filter(|e| !e.rewritten)
        .map(|e| e.sha256.clone())
        .collect();
    if pending.is_empty() {
        return Ok((0, 0));
    }
    let known: BTreeSet<&str> = known
        .iter()
        .filter(|id| pending.contains(&id_hash(id)))
        .map(String::as_str)
        .collect();
    // Ids of earlier erasures are not known here: find them by hashing what files hold.
    let by_hash = known.len() < pending.len();
    let erased = |id: &str| known.contains(id) || (by_hash && pending.contains(&id_hash(id)));

    // Committed files: written again under new names.
    let nonce = memberships::nonce();
    let mut replaced: BTreeMap<String, String> = BTreeMap::new();
    for (segment, state) in &manifest.segments {
        for record in &state.history {
            let members = read_members(store, &record.members).await?;
            if members.iter().any(|m| erased(&m.customer_id)) {
                let kept: Vec<Member> = members
                    .into_iter()
                    .filter(|m| !erased(&m.customer_id))
                    .collect();
                let path = layout::members_file(segment, record.version, &nonce);
                put(store, &path, members_file_bytes(segment, &kept)?).await?;
                replaced.insert(record.members.clone(), path);
            }
            if record.erasure {
                continue; // the erasure's own `exited` entries: the trace that stays
            }
            let mut changes = read_changes(store, &record.changes).await?;
            let mut touched = false;
            for change in &mut changes {
                if change.change != ChangeKind::Erased && erased(&change.customer_id) {
                    change.customer_id.clear();
                    change.change = ChangeKind::Erased;
                    touched = true;
                }
            }
            if touched {
                let path = layout::changes_file(segment, record.version, &nonce);
                put(store, &path, changes_file_bytes(segment, &changes)?).await?;
                replaced.insert(record.changes.clone(), path);
            }
        }
    }
    let files_rewritten = replaced.len();
    let manifest = if replaced.is_empty() {
        manifest
    } else {
        let replaced = &replaced;
        commit_manifest(store, |mut manifest| async move {
            for state in manifest.segments.values_mut() {
                for record in &mut state.history {
                    if let Some(path) = replaced.get(&record.members) {
                        record.members = path.clone();
                    }
                    if let Some(path) = replaced.get(&record.changes) {
                        record.changes = path.clone();
                    }
                }
            }
            Ok((manifest.clone(), manifest))
        })
        .await?
    };

    // Files no manifest names (the replaced originals, files of killed runs) that hold an
    // erased id: removed. They were never committed, and a commit based on a manifest from
    // before the erasure can no longer succeed.
    let named: BTreeSet<&str> = manifest
        .segments
        .values()
        .flat_map(|s| s.history.iter())
        .flat_map(|r| [r.members.as_str(), r.changes.as_str()])
        .collect();
    let mut files_removed = 0;
    for dir in [layout::MEMBERSHIPS_DIR, layout::CHANGES_DIR] {
        let listed: Vec<object_store::ObjectMeta> = store
            .object_store()
            .list(Some(&store.path(dir)))
            .try_collect()
            .await?;
        for meta in listed {
            let Some(relative) = store.relative(&meta.location) else {
                continue;
            };
            if named.contains(relative.as_str()) || !relative.ends_with(layout::PARQUET_EXTENSION) {
                continue;
            }
            let holds = replaced.contains_key(&relative)
                || customer_ids(store, &relative)
                    .await
                    .map(|ids| ids.iter().any(|id| erased(id)))
                    // A file kitle cannot read back is not one of its own complete files;
                    // it may hold anything: remove it.
                    .unwrap_or(true);
            if holds {
                store.object_store().delete(&meta.location).await?;
                files_removed += 1;
            }
        }
    }

    // A write killed midway on a local folder leaves object_store's staging file beside its
    // target (`….parquet#N`), which listings never show: it may hold anything, so it goes too.
    if let Some(root) = store.local_root() {
        for dir in [layout::MEMBERSHIPS_DIR, layout::CHANGES_DIR] {
            files_removed += remove_staging_files(&root.join(dir))?;
        }
    }

    commit_manifest(store, |mut manifest| {
        let pending = &pending;
        async move {
            for erasure in &mut manifest.erasures {
                if pending.contains(&erasure.sha256) {
                    erasure.rewritten = true;
                }
            }
            Ok((manifest, ()))
        }
    })
    .await?;
    Ok((files_rewritten, files_removed))
}

/// Removes the staging files of killed writes (`NAME.parquet#N`, what `object_store` writes
/// before renaming to `NAME.parquet`) under `dir` of a local store; how many.
fn remove_staging_files(dir: &std::path::Path) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            removed += remove_staging_files(&path)?;
            continue;
        }
        if is_staging_file(&entry.file_name().to_string_lossy()) {
            std::fs::remove_file(&path).map_err(|e| Error::Io {
                context: format!("removing the staging file {}", path.display()),
                source: e,
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether `name` is `object_store`'s staging name for a Parquet file (`NAME.parquet#N`).
fn is_staging_file(name: &str) -> bool {
    name.rsplit_once('#').is_some_and(|(base, n)| {
        base.ends_with(layout::PARQUET_EXTENSION)
            && !n.is_empty()
            && n.chars().all(|c| c.is_ascii_digit())
    })
}

/// The `customer_id` values of one of kitle's own Parquet files.
async fn customer_ids(store: &Store, relative: &str) -> Result<Vec<String>> {
    let reader = crate::memberships::read_batches(store, relative).await?;
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch?;
        if let Some(column) = batch.column_by_name("customer_id") {
            let column = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8)?;
            let column = arrow::array::AsArray::as_string::<i32>(&column);
            ids.extend(column.iter().flatten().map(str::to_string));
        }
    }
    Ok(ids)
}

/// Replaces the manifest with what `change` makes of the current one, conditionally (through
/// [`crate::commit::update_json`]: when another writer committed first, `change` is applied
/// again to what it committed); returns the value the committed application of `change` gave.
async fn commit_manifest<T, F, Fut>(store: &Store, mut change: F) -> Result<T>
where
    F: FnMut(Manifest) -> Fut,
    Fut: std::future::Future<Output = Result<(Manifest, T)>>,
{
    let value: std::sync::Mutex<Option<T>> = std::sync::Mutex::new(None);
    let value_ref = &value;
    crate::commit::update_json(store, layout::MANIFEST_FILE, |current: Manifest| {
        let applied = change(current);
        async move {
            let (next, v) = applied.await?;
            *value_ref.lock().expect("commit value") = Some(v);
            Ok::<_, Error>(next)
        }
    })
    .await?;
    let committed = value.lock().expect("commit value").take();
    Ok(committed.expect("a committed change gave its value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_files_of_killed_writes_are_recognised() {
        assert!(is_staging_file("v0000000006-18ed7dbbcba3a4bb.parquet#1"));
        assert!(is_staging_file("v1.parquet#12"));
        assert!(!is_staging_file("v1.parquet"));
        assert!(!is_staging_file("v1.json#1"));
        assert!(!is_staging_file("v1.parquet#"));
        assert!(!is_staging_file("v1.parquet#x"));
    }

    #[test]
    fn hashes_are_lower_case_hex_of_the_utf8_bytes() {
        assert_eq!(
            id_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(id_hash("müşteri-ğ1").len(), 64);
    }
}
