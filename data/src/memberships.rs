//! Materialised memberships: versioned member lists, change logs, and the manifest that
//! commits them.
//!
//! A refresh writes, for each segment, a new members file and a change-log file under names no
//! other writer uses, and only then replaces the one small manifest object that says which
//! version is current. A refresh that fails or is killed before that last write leaves the
//! previous manifest — and so the previous, complete versions — current; the files it did
//! write are never named by any manifest and are ignored. Nothing here knows what a segment
//! means: members are customer ids with the instant they entered.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMicrosecondType};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::contract::timestamp_type;
use crate::error::{Error, Result};
use crate::layout;
use crate::store::Store;

/// Where the stored definitions are read (kept here too, where callers first found it).
pub use crate::definitions::read_definitions;

/// The analyst tables over memberships (kept here too, where callers first found them).
pub use crate::own_tables::register_tables;

/// One refresh of one segment, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// The version this refresh produced (1 for the first).
    pub version: u64,
    /// The instant the segment was evaluated at.
    pub as_of: DateTime<Utc>,
    /// Members after the refresh.
    pub size: u64,
    /// Customers who entered.
    pub entered: u64,
    /// Customers who exited.
    pub exited: u64,
    /// How long the refresh run took.
    pub duration_ms: u64,
    /// Members file, relative to the store root.
    pub members: String,
    /// Change-log file, relative to the store root.
    pub changes: String,
    /// Whether this version is an erasure's (the previous one without the erased customers,
    /// nothing re-evaluated): its change log holds the erasure's own `exited` entries, the one
    /// trace of an erased id kitle keeps.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub erasure: bool,
}

/// The state of one segment's memberships: every refresh, the last one current.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMemberships {
    /// Refreshes, oldest first; the last is the current version.
    pub history: Vec<RefreshRecord>,
}

impl SegmentMemberships {
    /// The current version, if the segment was ever refreshed.
    pub fn current(&self) -> Option<&RefreshRecord> {
        self.history.last()
    }
}

/// What is current, for every segment. Replaced whole by each commit (see [`crate::commit`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Segment id → its memberships.
    pub segments: BTreeMap<String, SegmentMemberships>,
    /// Segment id → when it was last removed. A refresh that read the manifest before a removal
    /// of one of its segments finds the removal here when it commits and refuses to bring the
    /// segment's memberships back. Kept when the id is defined again (a later refresh compares
    /// the entry it read with the one it finds, so an unchanged entry is no obstacle).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removed: BTreeMap<String, DateTime<Utc>>,
    /// Every erased customer (by the SHA-256 of their id), oldest first: excluded from every
    /// evaluation from then on (see [`crate::erasure`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erasures: Vec<crate::erasure::Erasure>,
}

impl Manifest {
    /// The SHA-256 of every erased customer id.
    pub fn erased_hashes(&self) -> std::collections::BTreeSet<String> {
        self.erasures.iter().map(|e| e.sha256.clone()).collect()
    }
}

/// A member of a segment: the customer and the `as_of` at which they entered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    /// The customer.
    pub customer_id: String,
    /// When they entered (the `as_of` of the refresh that first found them).
    pub since: DateTime<Utc>,
}

/// A new version of one segment, ready to be committed.
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// The segment.
    pub segment: String,
    /// The instant it was evaluated at.
    pub as_of: DateTime<Utc>,
    /// Members, sorted by customer id.
    pub members: Vec<Member>,
    /// Customer ids that entered, sorted.
    pub entered: Vec<String>,
    /// Customer ids that exited, sorted.
    pub exited: Vec<String>,
    /// How long the refresh run took.
    pub duration_ms: u64,
}

/// The schema of members files: `segment_id`, `customer_id`, `since`.
pub fn members_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("segment_id", DataType::Utf8, false),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("since", timestamp_type(), false),
    ]))
}

/// The schema of change logs: `segment_id`, `customer_id`, `change`, `at`.
pub fn changes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("segment_id", DataType::Utf8, false),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("change", DataType::Utf8, false),
        Field::new("at", timestamp_type(), false),
    ]))
}

/// Reads the manifest; an empty one when no refresh ever committed.
pub async fn read_manifest(store: &Store) -> Result<Manifest> {
    match store
        .object_store()
        .get(&store.path(layout::MANIFEST_FILE))
        .await
    {
        Ok(got) => {
            let bytes = got.bytes().await?;
            serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                path: layout::MANIFEST_FILE.into(),
                reason: e.to_string(),
            })
        }
        Err(object_store::Error::NotFound { .. }) => Ok(Manifest::default()),
        Err(e) => Err(e.into()),
    }
}

/// The record batches of one of kitle's own (small) Parquet files, read whole.
pub(crate) async fn read_batches(
    store: &Store,
    relative: &str,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let bytes = store
        .object_store()
        .get(&store.path(relative))
        .await?
        .bytes()
        .await?;
    Ok(ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?)
}

/// Reads one members file (a path relative to the store root, as the manifest names it).
pub async fn read_members(store: &Store, relative: &str) -> Result<Vec<Member>> {
    let mut members = Vec::new();
    for batch in read_batches(store, relative).await? {
        let batch = batch?;
        let ids = batch.column(1).as_string::<i32>();
        let since = batch.column(2).as_primitive::<TimestampMicrosecondType>();
        for i in 0..batch.num_rows() {
            let at =
                DateTime::from_timestamp_micros(since.value(i)).ok_or_else(|| Error::Corrupt {
                    path: relative.into(),
                    reason: "a `since` out of range".into(),
                })?;
            members.push(Member {
                customer_id: ids.value(i).to_string(),
                since: at,
            });
        }
    }
    Ok(members)
}

/// Whether a customer entered or exited a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Became a member.
    Entered,
    /// Stopped being a member.
    Exited,
    /// The entry at this position was erased (its customer was forgotten): it keeps its place
    /// so that feed cursors stay valid, and is never shown.
    Erased,
}

impl ChangeKind {
    /// The value of the `change` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Entered => "entered",
            ChangeKind::Exited => "exited",
            ChangeKind::Erased => "erased",
        }
    }
}

/// One entry of a change log: who, which way, at which refresh's `as_of`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The customer.
    pub customer_id: String,
    /// Entered or exited.
    pub change: ChangeKind,
    /// The `as_of` of the refresh that recorded it.
    pub at: DateTime<Utc>,
}

/// Reads one change-log file (a path relative to the store root, as the manifest names it),
/// in its stored order: the entries (by customer id), then the exits (by customer id). The
/// order is fixed once written, so a position in it is a stable cursor.
pub async fn read_changes(store: &Store, relative: &str) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    for batch in read_batches(store, relative).await? {
        let batch = batch?;
        let ids = batch.column(1).as_string::<i32>();
        let kinds = batch.column(2).as_string::<i32>();
        let at = batch.column(3).as_primitive::<TimestampMicrosecondType>();
        for i in 0..batch.num_rows() {
            let corrupt = |reason: &str| Error::Corrupt {
                path: relative.into(),
                reason: reason.into(),
            };
            let change = match kinds.value(i) {
                "entered" => ChangeKind::Entered,
                "exited" => ChangeKind::Exited,
                "erased" => ChangeKind::Erased,
                _ => {
                    return Err(corrupt(
                        "a change that is neither `entered`, `exited` nor `erased`",
                    ));
                }
            };
            changes.push(Change {
                customer_id: ids.value(i).to_string(),
                change,
                at: DateTime::from_timestamp_micros(at.value(i))
                    .ok_or_else(|| corrupt("an `at` out of range"))?,
            });
        }
    }
    Ok(changes)
}

/// The current members of `segment`; empty when it was never refreshed.
pub async fn current_members(
    store: &Store,
    manifest: &Manifest,
    segment: &str,
) -> Result<Vec<Member>> {
    match manifest
        .segments
        .get(segment)
        .and_then(SegmentMemberships::current)
    {
        Some(record) => read_members(store, &record.members).await,
        None => Ok(Vec::new()),
    }
}

/// The new version of `segment` whose members are `evaluated` (customer ids, sorted, each
/// once) at `as_of`, against its previous members: who entered, who exited, and since when
/// each member has been in (carried over while they stay; `as_of` for those who enter).
pub fn diff(
    segment: &str,
    as_of: DateTime<Utc>,
    evaluated: &[String],
    previous: &[Member],
    duration_ms: u64,
) -> NewVersion {
    let before: BTreeMap<&str, DateTime<Utc>> = previous
        .iter()
        .map(|m| (m.customer_id.as_str(), m.since))
        .collect();
    let now: std::collections::BTreeSet<&str> = evaluated.iter().map(String::as_str).collect();
    NewVersion {
        segment: segment.to_string(),
        as_of,
        members: evaluated
            .iter()
            .map(|c| Member {
                customer_id: c.clone(),
                since: before.get(c.as_str()).copied().unwrap_or(as_of),
            })
            .collect(),
        entered: evaluated
            .iter()
            .filter(|c| !before.contains_key(c.as_str()))
            .cloned()
            .collect(),
        exited: before
            .keys()
            .filter(|c| !now.contains(*c))
            .map(|c| c.to_string())
            .collect(),
        duration_ms,
    }
}

/// What [`commit`] committed.
#[derive(Debug, Clone)]
pub struct Commit {
    /// The manifest now stored.
    pub manifest: Manifest,
    /// Per new version, in the order given: the segment and its record in the manifest.
    pub records: Vec<(String, RefreshRecord)>,
    /// How many times the manifest was read again because another writer committed first.
    pub retries: u32,
}

/// Writes the new versions' files, then commits the manifest that makes them current, through
/// [`crate::commit::update_json`]. `base` is the manifest the versions were computed against,
/// read **before** the definitions that were evaluated.
///
/// When another writer committed meanwhile, the versions are applied again to what it
/// committed: a segment nobody else touched keeps its computed version; a segment another
/// refresh committed meanwhile is diffed again against that newer version (the evaluation
/// itself holds, it depends only on `as_of` and the definition), so its change log stays the
/// exact difference from its predecessor; a segment removed meanwhile (its removal recorded
/// after `base` was read) makes the commit fail with [`Error::Conflict`] and nothing is
/// committed, because committing it would bring back memberships of a removed segment.
pub async fn commit(store: &Store, base: &Manifest, versions: &[NewVersion]) -> Result<Commit> {
    crate::failpoint::reach("refresh.evaluated");
    crate::identity::ensure_writable(store).await?;
    let nonce = nonce();
    // Files already written, by segment: the version they were computed against, how many
    // erasures the manifest listed then, and their record.
    type Written = BTreeMap<String, (Option<u64>, usize, RefreshRecord)>;
    let written: std::sync::Mutex<Written> = Default::default();
    let written = &written;
    // The records of the last application of the change: the one that was committed.
    let last: std::sync::Mutex<Vec<(String, RefreshRecord)>> = Default::default();
    let last = &last;
    let nonce = nonce.as_str();
    let base_erased = base.erased_hashes();
    let base_erased = &base_erased;
    let committed = crate::commit::update_json(store, layout::MANIFEST_FILE, |mut next: Manifest| async move {
        // Customers erased after `base` was read (so possibly evaluated before their erasure):
        // never brought back (see `crate::erasure`).
        let erased_meanwhile: std::collections::BTreeSet<String> =
            next.erased_hashes().difference(base_erased).cloned().collect();
        let erasures = next.erasures.len();
        let mut records = Vec::with_capacity(versions.len());
        for v in versions {
            if next.removed.get(&v.segment) != base.removed.get(&v.segment) {
                return Err(Error::Conflict {
                    path: layout::MANIFEST_FILE.into(),
                    reason: format!(
                        "segment {} was removed while it was being refreshed; nothing was committed",
                        v.segment
                    ),
                });
            }
            let current = next.segments.get(&v.segment).and_then(SegmentMemberships::current).cloned();
            let against = current.as_ref().map(|r| r.version);
            let cached = written.lock().expect("written lock").get(&v.segment).cloned();
            let record = match cached {
                Some((at, seen, record)) if at == against && seen == erasures => record,
                stale => {
                    // Files of an attempt that lost its race: named by no manifest, ever.
                    if let Some((_, _, old)) = stale {
                        remove_uncommitted(store, &old).await;
                    }
                    let kept = without_erased(v, &erased_meanwhile);
                    let v = kept.as_ref().unwrap_or(v);
                    let based = base.segments.get(&v.segment).and_then(SegmentMemberships::current);
                    let fresh;
                    let version = if based.map(|r| r.version) == against {
                        v
                    } else {
                        // Another refresh (or an erasure) committed this segment meanwhile:
                        // diff again.
                        let previous = match &current {
                            Some(r) => read_members(store, &r.members).await?,
                            None => Vec::new(),
                        };
                        let ids: Vec<String> = v.members.iter().map(|m| m.customer_id.clone()).collect();
                        fresh = diff(&v.segment, v.as_of, &ids, &previous, v.duration_ms);
                        &fresh
                    };
                    let record = write_version(store, version, against.map_or(1, |n| n + 1), nonce).await?;
                    written
                        .lock()
                        .expect("written lock")
                        .insert(v.segment.clone(), (against, erasures, record.clone()));
                    record
                }
            };
            next.segments
                .entry(v.segment.clone())
                .or_default()
                .history
                .push(record.clone());
            records.push((v.segment.clone(), record));
        }
        *last.lock().expect("records lock") = records;
        Ok(next)
    })
    .await?;
    let records = std::mem::take(&mut *last.lock().expect("records lock"));
    Ok(Commit {
        manifest: committed.value,
        records,
        retries: committed.retries,
    })
}

/// `v` without the customers whose id hashes are in `erased`; `None` when none of them is in it.
fn without_erased(
    v: &NewVersion,
    erased: &std::collections::BTreeSet<String>,
) -> Option<NewVersion> {
    if erased.is_empty() {
        return None;
    }
    let gone = |id: &String| erased.contains(&crate::erasure::id_hash(id));
    let touched = v.members.iter().any(|m| gone(&m.customer_id)) || v.exited.iter().any(gone);
    touched.then(|| NewVersion {
        segment: v.segment.clone(),
        as_of: v.as_of,
        members: v
            .members
            .iter()
            .filter(|m| !gone(&m.customer_id))
            .cloned()
            .collect(),
        entered: v.entered.iter().filter(|c| !gone(c)).cloned().collect(),
        exited: v.exited.iter().filter(|c| !gone(c)).cloned().collect(),
        duration_ms: v.duration_ms,
    })
}

/// Removes the files of a version that was written but never committed (best effort: a file
/// left behind is named by no manifest, and an erasure removes it if it holds an erased id).
async fn remove_uncommitted(store: &Store, record: &RefreshRecord) {
    for file in [&record.members, &record.changes] {
        if let Err(e) = store.object_store().delete(&store.path(file)).await {
            tracing::warn!(file = file.as_str(), error = %e, "cannot remove an uncommitted file");
        }
    }
}

/// Writes the members file and change log of `v` as version `version`; its manifest record.
async fn write_version(
    store: &Store,
    v: &NewVersion,
    version: u64,
    nonce: &str,
) -> Result<RefreshRecord> {
    let members_path = layout::members_file(&v.segment, version, nonce);
    let changes_path = layout::changes_file(&v.segment, version, nonce);
    put(
        store,
        &members_path,
        members_file_bytes(&v.segment, &v.members)?,
    )
    .await?;
    crate::failpoint::reach("refresh.members_written");
    put(
        store,
        &changes_path,
        changes_file_bytes(&v.segment, &change_log(v))?,
    )
    .await?;
    crate::failpoint::reach("refresh.changes_written");
    Ok(RefreshRecord {
        version,
        as_of: v.as_of,
        size: v.members.len() as u64,
        entered: v.entered.len() as u64,
        exited: v.exited.len() as u64,
        duration_ms: v.duration_ms,
        members: members_path,
        changes: changes_path,
        erasure: false,
    })
}

/// A name part no other writer uses (the time in nanoseconds and the process id), so that a
/// crashed or concurrent writer never overwrites a file another manifest may name.
pub(crate) fn nonce() -> String {
    format!(
        "{:x}",
        Utc::now().timestamp_nanos_opt().unwrap_or_default() ^ i64::from(std::process::id())
    )
}

/// Forgets a segment's memberships (after its definition was removed) and records the removal,
/// so that a refresh of it that was already running cannot commit it back (see [`commit`]).
/// Its files stay, named by no manifest.
pub async fn forget(store: &Store, segment: &str) -> Result<()> {
    crate::identity::ensure_writable(store).await?;
    let at = Utc::now();
    crate::commit::update_json(
        store,
        layout::MANIFEST_FILE,
        |mut manifest: Manifest| async move {
            manifest.segments.remove(segment);
            manifest.removed.insert(segment.to_string(), at);
            Ok::<_, Error>(manifest)
        },
    )
    .await?;
    Ok(())
}

/// Writes `bytes` at `relative` (a path under the store root), unconditionally.
pub(crate) async fn put(store: &Store, relative: &str, bytes: Bytes) -> Result<()> {
    store
        .object_store()
        .put(&store.path(relative), PutPayload::from_bytes(bytes))
        .await?;
    Ok(())
}

fn write_parquet(batch: RecordBatch) -> Result<Bytes> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by("kitle".into())
        .build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(Bytes::from(buffer))
}

/// The change log a new version writes: its entries, then its exits, all at its `as_of`.
fn change_log(v: &NewVersion) -> Vec<Change> {
    let entry = |customer_id: &String, change| Change {
        customer_id: customer_id.clone(),
        change,
        at: v.as_of,
    };
    v.entered
        .iter()
        .map(|c| entry(c, ChangeKind::Entered))
        .chain(v.exited.iter().map(|c| entry(c, ChangeKind::Exited)))
        .collect()
}

/// A members file of `segment` holding `members` (sorted by customer id).
pub(crate) fn members_file_bytes(segment: &str, members: &[Member]) -> Result<Bytes> {
    let n = members.len();
    let segments: StringArray = std::iter::repeat_n(Some(segment), n).collect();
    let ids: StringArray = members
        .iter()
        .map(|m| Some(m.customer_id.as_str()))
        .collect();
    let since = TimestampMicrosecondArray::from(
        members
            .iter()
            .map(|m| m.since.timestamp_micros())
            .collect::<Vec<_>>(),
    )
    .with_timezone(crate::contract::UTC);
    let batch = RecordBatch::try_new(
        members_schema(),
        vec![Arc::new(segments), Arc::new(ids), Arc::new(since)],
    )?;
    write_parquet(batch)
}

/// A change log of `segment` holding `changes` in this order; an erased position is written
/// with an empty `customer_id` and `change` = `erased`.
pub(crate) fn changes_file_bytes(segment: &str, changes: &[Change]) -> Result<Bytes> {
    let n = changes.len();
    let segments: StringArray = std::iter::repeat_n(Some(segment), n).collect();
    let ids: StringArray = changes
        .iter()
        .map(|c| {
            Some(match c.change {
                ChangeKind::Erased => "",
                _ => c.customer_id.as_str(),
            })
        })
        .collect();
    let kinds: StringArray = changes.iter().map(|c| Some(c.change.as_str())).collect();
    let at = TimestampMicrosecondArray::from(
        changes
            .iter()
            .map(|c| c.at.timestamp_micros())
            .collect::<Vec<_>>(),
    )
    .with_timezone(crate::contract::UTC);
    let batch = RecordBatch::try_new(
        changes_schema(),
        vec![
            Arc::new(segments),
            Arc::new(ids),
            Arc::new(kinds),
            Arc::new(at),
        ],
    )?;
    write_parquet(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_store::temp_store;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_000_000 + seconds, 0).unwrap()
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_diff_carries_since_over_and_lists_entries_and_exits() {
        let previous = vec![
            Member {
                customer_id: "a".into(),
                since: at(0),
            },
            Member {
                customer_id: "b".into(),
                since: at(0),
            },
        ];
        let v = diff("s", at(10), &ids(&["b", "ç"]), &previous, 5);
        assert_eq!(v.entered, ids(&["ç"]));
        assert_eq!(v.exited, ids(&["a"]));
        assert_eq!(v.members[0].since, at(0));
        assert_eq!(v.members[1].since, at(10));
    }

    /// Two refreshes computed against the same manifest: the second to commit is applied on
    /// top of the first (another segment: kept as computed; the same segment: diffed again
    /// against the version the first committed), and a segment removed meanwhile is refused.
    #[tokio::test]
    async fn commits_apply_again_on_top_of_what_others_committed() {
        let (_dir, store) = temp_store();
        let base = read_manifest(&store).await.unwrap();
        let x1 = diff("x", at(1), &ids(&["a", "b"]), &[], 1);
        let y1 = diff("y", at(1), &ids(&["a"]), &[], 1);
        commit(&store, &base, &[x1]).await.unwrap();
        // Computed against `base`, committed after x: x stays.
        let done = commit(&store, &base, &[y1]).await.unwrap();
        assert_eq!(done.manifest.segments.len(), 2);
        // Another refresh of x from `base` (it saw no version): diffed against version 1.
        let x2 = diff("x", at(2), &ids(&["b", "c"]), &[], 1);
        let done = commit(&store, &base, &[x2]).await.unwrap();
        let record = &done.records[0].1;
        assert_eq!((record.version, record.entered, record.exited), (2, 1, 1));
        let changes = read_changes(&store, &record.changes).await.unwrap();
        let entered: Vec<&str> = changes
            .iter()
            .filter(|c| c.change == ChangeKind::Entered)
            .map(|c| c.customer_id.as_str())
            .collect();
        assert_eq!(entered, ["c"]);
        let members = read_members(&store, &record.members).await.unwrap();
        assert_eq!(members[0].since, at(1), "b stayed since the first version");

        // y is removed while a refresh computed against an earlier manifest runs.
        let before = read_manifest(&store).await.unwrap();
        forget(&store, "y").await.unwrap();
        let y2 = diff("y", at(3), &ids(&["a"]), &[], 1);
        let refused = commit(&store, &before, std::slice::from_ref(&y2))
            .await
            .unwrap_err();
        assert!(matches!(refused, Error::Conflict { .. }), "{refused}");
        assert!(
            !read_manifest(&store)
                .await
                .unwrap()
                .segments
                .contains_key("y")
        );
        // A refresh that started after the removal (y defined again) commits it afresh.
        let after = read_manifest(&store).await.unwrap();
        let done = commit(&store, &after, &[y2]).await.unwrap();
        assert_eq!(done.records[0].1.version, 1);
    }
}
