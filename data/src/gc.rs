//! Garbage collection of kitle's part of the store: the data files no committed object names.
//!
//! A refresh writes its members files and change logs first and commits the manifest that
//! names them last. A refresh killed or refused in between, a commit re-applied after another
//! writer's (its first files were computed against an older version), and a removed segment
//! all leave files that no manifest names. Readers only ever open what a committed object
//! names, so such files are never read — but they cost storage. [`collect`] finds them and,
//! when asked, deletes them.
//!
//! What is kept, always:
//!
//! - every file a committed JSON object of kitle's names ([`layout::is_committed_object`]: the
//!   manifest with every version of its history, the definitions, any later kind of committed
//!   state). The objects are read generically — every string value that is the path of a
//!   listed file counts — so a later kind of state that names its files by their paths
//!   relative to the store root is protected without this module learning its format;
//! - the committed objects themselves, the commit lock files, anything that is not one of
//!   kitle's data files ([`layout::is_collectable`]), and everything other systems write
//!   (`customers/`, `events/`);
//! - unnamed files younger than the grace period: they may belong to a refresh still running,
//!   whose commit has not happened yet.
//!
//! On a local folder it also finds writes that never finished (`NAME#N`, which the object
//! store renames to `NAME` when a write completes; a process killed mid-write leaves them, and
//! the object store's listing hides them) under kitle's folders, and treats them the same way.
//!
//! The order makes that safe: first the listing, then the committed objects are read. A file
//! the listing saw was written before the objects were read, so either they name it or it was
//! not committed when they were read; only such a file older than the grace period is deleted.
//! A refresh that takes longer than the grace period between writing its first file and its
//! commit could lose files, so the grace period must exceed the longest refresh (the default
//! is an hour, [`layout::DEFAULT_GC_GRACE_SECONDS`]).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::layout;
use crate::store::Store;

/// One data file no committed object names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unnamed {
    /// Path relative to the store root.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was last written.
    pub last_modified: DateTime<Utc>,
    /// A write that never finished on a local folder (`NAME#N`, see
    /// [`layout::is_staged_write`]), which the object store's listing does not show.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub staged: bool,
}

/// What a collection found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Collection {
    /// kitle's data files the listing found.
    pub examined: usize,
    /// Of those, how many a committed object names (kept).
    pub named: usize,
    /// Unnamed files older than the grace period: removed when `delete` was asked, listed
    /// otherwise.
    pub unnamed: Vec<Unnamed>,
    /// Unnamed files younger than the grace period (kept: a running refresh may commit them).
    pub young: Vec<Unnamed>,
    /// Whether the unnamed files were deleted (`false` for a dry run).
    pub deleted: bool,
    /// The grace period, in seconds.
    pub grace_seconds: u64,
}

impl Collection {
    /// Bytes held by the unnamed files older than the grace period.
    pub fn unnamed_bytes(&self) -> u64 {
        self.unnamed.iter().map(|f| f.size).sum()
    }
}

/// Finds kitle's data files that no committed object names and that are older than `grace`
/// (measured from `now`), and deletes them when `delete` is set (otherwise a dry run that only
/// lists them). See the module documentation for what is always kept.
pub async fn collect(
    store: &Store,
    grace: Duration,
    now: DateTime<Utc>,
    delete: bool,
) -> Result<Collection> {
    // 1. The listing of kitle's part of the store (every top-level folder but the contract's).
    let root = store.path("");
    let top = store
        .object_store()
        .list_with_delimiter(Some(&root))
        .await?;
    let mut files = Vec::new();
    for dir in top.common_prefixes {
        let Some(relative) = store.relative(&dir) else {
            continue;
        };
        if !layout::is_own(&relative) {
            continue;
        }
        let mut listing = store.object_store().list(Some(&dir));
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if let Some(path) = store.relative(&meta.location) {
                files.push((path, meta));
            }
        }
    }
    let staged = match store.local_root() {
        Some(root) => staged_writes(root.to_path_buf()).await?,
        None => Vec::new(),
    };
    // 2. Then what the committed objects name.
    let mut named_paths = BTreeSet::new();
    for (path, _) in files.iter().filter(|(p, _)| layout::is_committed_object(p)) {
        let bytes = match store.object_store().get(&store.path(path)).await {
            Ok(got) => got.bytes().await?,
            // Replaced by a rename or removed since the listing: the next run reads it again.
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                path: path.clone(),
                reason: format!("{e} (garbage collection reads every committed object, and stops rather than guess what this one names)"),
            })?;
        strings_of(&value, &mut named_paths);
    }

    let grace_chrono = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let mut collection = Collection {
        grace_seconds: grace.as_secs(),
        deleted: delete,
        ..Collection::default()
    };
    for (path, meta) in files {
        if !layout::is_collectable(&path) {
            continue;
        }
        collection.examined += 1;
        if named_paths.contains(&path) {
            collection.named += 1;
            continue;
        }
        let file = Unnamed {
            path,
            size: meta.size,
            last_modified: meta.last_modified,
            staged: false,
        };
        if now.signed_duration_since(meta.last_modified) < grace_chrono {
            collection.young.push(file);
        } else {
            collection.unnamed.push(file);
        }
    }
    for file in staged {
        collection.examined += 1;
        if now.signed_duration_since(file.last_modified) < grace_chrono {
            collection.young.push(file);
        } else {
            collection.unnamed.push(file);
        }
    }
    if delete && let Some(root) = store.local_root() {
        for file in collection.unnamed.iter().filter(|f| f.staged) {
            let path = root.join(&file.path);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Io {
                        context: format!("removing {}", path.display()),
                        source,
                    });
                }
            }
        }
    }
    if delete && collection.unnamed.iter().any(|f| !f.staged) {
        let locations = futures::stream::iter(
            collection
                .unnamed
                .iter()
                .filter(|f| !f.staged)
                .map(|f| Ok(store.path(&f.path)))
                .collect::<Vec<_>>(),
        )
        .boxed();
        let mut results = store.object_store().delete_stream(locations);
        while let Some(result) = results.try_next().await.transpose() {
            match result {
                // Removed by another collection meanwhile: gone either way.
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(collection)
}

/// The unfinished writes (`NAME#N`) under kitle's folders of the local store at `root`.
async fn staged_writes(root: std::path::PathBuf) -> Result<Vec<Unnamed>> {
    tokio::task::spawn_blocking(move || {
        let io = |path: &std::path::Path, source| Error::Io {
            context: format!("listing {}", path.display()),
            source,
        };
        let mut found = Vec::new();
        let mut stack = Vec::new();
        let entries = match std::fs::read_dir(&root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(io(&root, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io(&root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() && layout::is_own(&name) {
                stack.push(entry.path());
            }
        }
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
                let entry = entry.map_err(|e| io(&dir, e))?;
                let path = entry.path();
                let meta = entry.metadata().map_err(|e| io(&path, e))?;
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                if !layout::is_staged_write(&name) {
                    continue;
                }
                let Ok(relative) = path.strip_prefix(&root) else {
                    continue;
                };
                let parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                found.push(Unnamed {
                    path: parts.join("/"),
                    size: meta.len(),
                    last_modified: meta
                        .modified()
                        .map(DateTime::<Utc>::from)
                        .unwrap_or_else(|_| Utc::now()),
                    staged: true,
                });
            }
        }
        Ok(found)
    })
    .await
    .map_err(|e| Error::Io {
        context: "listing unfinished writes".into(),
        source: std::io::Error::other(e),
    })?
}

/// Every string value inside `value` (object keys too: a state may key its files by path).
fn strings_of(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::String(s) => {
            out.insert(s.clone());
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings_of(v, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone());
                strings_of(v, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memberships::{self, diff, read_manifest};
    use crate::test_store::temp_store;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_000_000 + seconds, 0).unwrap()
    }

    /// Committed versions (all of the history) are kept; a file no manifest names is listed,
    /// kept while young, and deleted only when asked; events are never touched.
    #[tokio::test]
    async fn only_old_unnamed_files_of_kitles_part_go() {
        let (dir, store) = temp_store();
        let base = read_manifest(&store).await.unwrap();
        let v1 = diff("s", at(1), &["a".into()], &[], 1);
        let first = memberships::commit(&store, &base, &[v1]).await.unwrap();
        let v2 = diff("s", at(2), &["b".into()], &[], 1);
        memberships::commit(&store, &first.manifest, &[v2])
            .await
            .unwrap();
        // Files of a refresh that never committed, and an event file (not kitle's).
        let orphan = layout::members_file("s", 3, "dead");
        let event = "events/date=2025-11-28/part-0.parquet";
        for p in [orphan.as_str(), event] {
            store
                .object_store()
                .put(&store.path(p), b"x".to_vec().into())
                .await
                .unwrap();
        }
        // A write killed half-way on a local folder (hidden from the object store's listing).
        let staged = format!("{}#7", layout::MANIFEST_FILE);
        std::fs::write(dir.path().join(&staged), b"{").unwrap();
        let now = Utc::now();
        // Within the grace period: kept, listed as young.
        let young = collect(&store, Duration::from_secs(3600), now, true)
            .await
            .unwrap();
        assert_eq!(young.examined, 6);
        assert_eq!(
            young.named, 4,
            "two versions, each a members file and a change log"
        );
        assert!(young.unnamed.is_empty());
        assert_eq!(young.young.len(), 2);
        assert!(dir.path().join(&orphan).exists());
        assert!(dir.path().join(&staged).exists());
        // A dry run past the grace period lists it and deletes nothing.
        let dry = collect(
            &store,
            Duration::ZERO,
            now + chrono::Duration::seconds(1),
            false,
        )
        .await
        .unwrap();
        let listed: Vec<&str> = dry.unnamed.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(listed, [orphan.as_str(), staged.as_str()]);
        assert!(dry.unnamed[1].staged);
        assert!(dir.path().join(&orphan).exists());
        // Asked to delete: gone; everything committed and the event file stay.
        let done = collect(
            &store,
            Duration::ZERO,
            now + chrono::Duration::seconds(1),
            true,
        )
        .await
        .unwrap();
        assert_eq!(done.unnamed.len(), 2);
        assert!(!dir.path().join(&orphan).exists());
        assert!(!dir.path().join(&staged).exists());
        assert!(dir.path().join(layout::MANIFEST_FILE).exists());
        assert!(dir.path().join(event).exists());
        let manifest = read_manifest(&store).await.unwrap();
        for record in &manifest.segments["s"].history {
            memberships::read_members(&store, &record.members)
                .await
                .unwrap();
            memberships::read_changes(&store, &record.changes)
                .await
                .unwrap();
        }
        let again = collect(&store, Duration::ZERO, Utc::now(), true)
            .await
            .unwrap();
        assert!(again.unnamed.is_empty());
    }
}
