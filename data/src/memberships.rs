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

/// What is current, for every segment. Replaced whole by each refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Segment id → its memberships.
    pub segments: BTreeMap<String, SegmentMemberships>,
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
async fn read_batches(
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

/// Writes the new versions' files, then the manifest that makes them current (the commit).
/// `manifest` is the one the versions were computed against. Returns the new manifest.
pub async fn commit(
    store: &Store,
    manifest: &Manifest,
    versions: &[NewVersion],
) -> Result<Manifest> {
    crate::identity::ensure_writable(store).await?;
    let nonce = nonce();
    let mut next = manifest.clone();
    for v in versions {
        let state = next.segments.entry(v.segment.clone()).or_default();
        let version = state.current().map_or(1, |r| r.version + 1);
        let members_path = layout::members_file(&v.segment, version, &nonce);
        let changes_path = layout::changes_file(&v.segment, version, &nonce);
        put(store, &members_path, members_parquet(v)?).await?;
        put(store, &changes_path, changes_parquet(v)?).await?;
        state.history.push(RefreshRecord {
            version,
            as_of: v.as_of,
            size: v.members.len() as u64,
            entered: v.entered.len() as u64,
            exited: v.exited.len() as u64,
            duration_ms: v.duration_ms,
            members: members_path,
            changes: changes_path,
            erasure: false,
        });
    }
    let json = serde_json::to_vec_pretty(&next).expect("the manifest serialises");
    put(store, layout::MANIFEST_FILE, Bytes::from(json)).await?;
    Ok(next)
}

/// A name part no other writer uses (the instant and the process), so that a crashed or
/// concurrent writer never overwrites a file another manifest may name.
pub(crate) fn nonce() -> String {
    format!(
        "{:x}",
        Utc::now().timestamp_nanos_opt().unwrap_or_default() ^ i64::from(std::process::id())
    )
}

/// Forgets a segment's memberships (after its definition was removed). Its files stay, named by
/// no manifest.
pub async fn forget(store: &Store, segment: &str) -> Result<()> {
    crate::identity::ensure_writable(store).await?;
    let mut manifest = read_manifest(store).await?;
    if manifest.segments.remove(segment).is_some() {
        let json = serde_json::to_vec_pretty(&manifest).expect("the manifest serialises");
        put(store, layout::MANIFEST_FILE, Bytes::from(json)).await?;
    }
    Ok(())
}

async fn put(store: &Store, relative: &str, bytes: Bytes) -> Result<()> {
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

fn members_parquet(v: &NewVersion) -> Result<Bytes> {
    let n = v.members.len();
    let segment: StringArray = std::iter::repeat_n(Some(v.segment.as_str()), n).collect();
    let ids: StringArray = v
        .members
        .iter()
        .map(|m| Some(m.customer_id.as_str()))
        .collect();
    let since = TimestampMicrosecondArray::from(
        v.members
            .iter()
            .map(|m| m.since.timestamp_micros())
            .collect::<Vec<_>>(),
    )
    .with_timezone(crate::contract::UTC);
    let batch = RecordBatch::try_new(
        members_schema(),
        vec![Arc::new(segment), Arc::new(ids), Arc::new(since)],
    )?;
    write_parquet(batch)
}

fn changes_parquet(v: &NewVersion) -> Result<Bytes> {
    let n = v.entered.len() + v.exited.len();
    let segment: StringArray = std::iter::repeat_n(Some(v.segment.as_str()), n).collect();
    let ids: StringArray = v
        .entered
        .iter()
        .chain(v.exited.iter())
        .map(|s| Some(s.as_str()))
        .collect();
    let change: StringArray = std::iter::repeat_n(Some("entered"), v.entered.len())
        .chain(std::iter::repeat_n(Some("exited"), v.exited.len()))
        .collect();
    let at = TimestampMicrosecondArray::from(vec![v.as_of.timestamp_micros(); n])
        .with_timezone(crate::contract::UTC);
    let batch = RecordBatch::try_new(
        changes_schema(),
        vec![
            Arc::new(segment),
            Arc::new(ids),
            Arc::new(change),
            Arc::new(at),
        ],
    )?;
    write_parquet(batch)
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

/// Reads the stored definitions (`id` → JSON document); empty when none were stored.
pub async fn read_definitions(store: &Store) -> Result<BTreeMap<String, serde_json::Value>> {
    match store
        .object_store()
        .get(&store.path(layout::DEFINITIONS_FILE))
        .await
    {
        Ok(got) => {
            let bytes = got.bytes().await?;
            serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                path: layout::DEFINITIONS_FILE.into(),
                reason: e.to_string(),
            })
        }
        Err(object_store::Error::NotFound { .. }) => Ok(BTreeMap::new()),
        Err(e) => Err(e.into()),
    }
}

/// Replaces the stored definitions with `definitions`, in one write.
pub async fn write_definitions(
    store: &Store,
    definitions: &BTreeMap<String, serde_json::Value>,
) -> Result<()> {
    crate::identity::ensure_writable(store).await?;
    let json = serde_json::to_vec_pretty(definitions).expect("JSON values serialise");
    put(store, layout::DEFINITIONS_FILE, Bytes::from(json)).await
}

/// Registers the analyst tables over kitle's own objects in `ctx`:
/// `memberships` (`segment_id`, `customer_id`, `since`: current members of every segment),
/// `segment_changes` (`segment_id`, `customer_id`, `change`, `at`: every entry and exit ever
/// recorded) and `segments` (`id`, `name`, `refresh`, `size`, `last_as_of`, `definition`).
/// The first two are listing tables over the files the manifest names, so they read only
/// committed versions.
pub async fn register_tables(
    ctx: &datafusion::prelude::SessionContext,
    store: &Store,
) -> Result<()> {
    let manifest = read_manifest(store).await?;
    let definitions = read_definitions(store).await?;
    let current: Vec<&str> = manifest
        .segments
        .values()
        .filter_map(|s| s.current().map(|r| r.members.as_str()))
        .collect();
    let changes: Vec<&str> = manifest
        .segments
        .values()
        .flat_map(|s| s.history.iter().map(|r| r.changes.as_str()))
        .collect();
    ctx.register_table(
        "memberships",
        files_table(store, &current, members_schema())?,
    )?;
    // Placeholders of erased entries keep their positions in the logs but are no changes.
    let logs = datafusion::logical_expr::LogicalPlanBuilder::scan(
        "segment_changes",
        datafusion::datasource::provider_as_source(files_table(store, &changes, changes_schema())?),
        None,
    )?
    .filter(
        datafusion::prelude::col("change")
            .not_eq(datafusion::prelude::lit(ChangeKind::Erased.as_str())),
    )?
    .build()?;
    ctx.register_table(
        "segment_changes",
        Arc::new(datafusion::datasource::ViewTable::new(logs, None)),
    )?;

    let mut ids = Vec::new();
    let mut names = Vec::new();
    let mut refresh = Vec::new();
    let mut sizes = Vec::new();
    let mut last = Vec::new();
    let mut documents = Vec::new();
    for (id, definition) in &definitions {
        let record = manifest
            .segments
            .get(id)
            .and_then(SegmentMemberships::current);
        ids.push(id.clone());
        names.push(
            definition
                .get("name")
                .and_then(|v| v.as_str())
                .unwrap_or(id)
                .to_string(),
        );
        refresh.push(
            definition
                .get("refresh")
                .and_then(|v| v.as_str())
                .unwrap_or("manual")
                .to_string(),
        );
        sizes.push(record.map(|r| r.size));
        last.push(record.map(|r| r.as_of.timestamp_micros()));
        documents.push(definition.to_string());
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("refresh", DataType::Utf8, false),
        Field::new("size", DataType::UInt64, true),
        Field::new("last_as_of", timestamp_type(), true),
        Field::new("definition", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(names)),
            Arc::new(StringArray::from(refresh)),
            Arc::new(arrow::array::UInt64Array::from(sizes)),
            Arc::new(TimestampMicrosecondArray::from(last).with_timezone(crate::contract::UTC)),
            Arc::new(StringArray::from(documents)),
        ],
    )?;
    let table = datafusion::datasource::MemTable::try_new(schema, vec![vec![batch]])?;
    ctx.register_table("segments", Arc::new(table))?;
    Ok(())
}

/// A table over exactly `files` (paths relative to the store root), or an empty one.
fn files_table(
    store: &Store,
    files: &[&str],
    schema: SchemaRef,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig};
    if files.is_empty() {
        return Ok(Arc::new(datafusion::datasource::MemTable::try_new(
            schema,
            vec![vec![]],
        )?));
    }
    let urls = files
        .iter()
        .map(|f| store.file_url(f))
        .collect::<Result<Vec<_>>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(layout::PARQUET_EXTENSION);
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}
