//! Partial states: per-customer partial aggregates of closed days, kept in kitle's part of the
//! store so that a refresh reads the events of the days that changed instead of all history.
//!
//! What is stored (the planner decides what a state holds; this module knows where it lives
//! and how it is trusted):
//!
//! ```text
//! states/index.json                              the committed index: per day, its entries
//! states/date=YYYY-MM-DD/<nonce>.parquet         one state file: customer_id, __day, partials
//! ```
//!
//! - **Unit.** A state covers one `date=` partition of `events`, the unit the data contract
//!   guarantees copies of an event never cross, so a day's state is deduplicated on its own.
//! - **Fingerprint.** A day's state is valid for the partition's files as they were when it
//!   was computed: [`day_fingerprints`] hashes every readable file of the partition (path, size,
//!   e_tag, last-modified), the identity setting and the erasure list (the planner's keys hold
//!   the types of the columns a state reads). A late file, a rewritten file, an erasure: the
//!   fingerprint changes and the state is recomputed, never trusted.
//! - **Entries.** A day may have several entries with the same fingerprint, each holding some
//!   condition keys (a definition added later backfills only the keys it adds). An entry whose
//!   fingerprint is not the day's current one is dead: the next commit drops it.
//! - **Trust.** The index names files; each file carries its day, fingerprint and keys in its
//!   footer ([`verify`]). A missing file, a footer that disagrees (a foreign or corrupt file)
//!   or an unreadable one is reported as not usable and the caller recomputes the day.
//! - **One write.** State files are written first, under fresh names; the index is committed
//!   last with [`crate::commit::update_json`] (conditional, like the manifest), so a refresh
//!   killed at any moment leaves the previous index, which names only complete files. Garbage
//!   collection keeps the files the index names and collects the others.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use chrono::NaiveDate;
use object_store::{ObjectMeta, ObjectStoreExt};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::contract::ContractTable;
use crate::error::Result;
use crate::layout;
use crate::store::Store;
use crate::tables::ContractTables;

/// Version of what a state holds; part of every fingerprint, so that states written by another
/// version of the planner are recomputed rather than misread.
pub const STATE_FORMAT: u32 = 1;

/// Footer key holding a state file's day.
const DAY_KEY: &str = "kitle.state.day";
/// Footer key holding a state file's fingerprint.
const FINGERPRINT_KEY: &str = "kitle.state.fingerprint";
/// Footer key holding a state file's condition keys, comma-separated.
const KEYS_KEY: &str = "kitle.state.keys";

/// The committed index of partial states.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateIndex {
    /// Per day (`YYYY-MM-DD`), its entries, oldest first.
    #[serde(default)]
    pub days: BTreeMap<String, Vec<StateEntry>>,
}

/// One state file of one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEntry {
    /// Path relative to the store root; empty when the day cannot have a state (`stray`).
    pub file: String,
    /// The day's fingerprint when the state was computed.
    pub fingerprint: String,
    /// The condition keys whose partials the file holds.
    pub keys: Vec<String>,
    /// Rows (customers) in the file.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// The partition holds rows whose `ts` is not on its day (a writer broke the contract):
    /// such a day is always read raw, so that it counts exactly as a from-scratch refresh.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stray: bool,
}

impl StateIndex {
    /// The live entries of `day` (those with the day's current `fingerprint`).
    pub fn live(&self, day: NaiveDate, fingerprint: &str) -> Vec<&StateEntry> {
        self.days
            .get(&day_name(day))
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e.fingerprint == fingerprint)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `YYYY-MM-DD`.
fn day_name(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// The fingerprint of every partition of `events` with a readable file: what a state computed
/// from it depends on besides the definitions.
pub fn day_fingerprints(tables: &ContractTables) -> BTreeMap<NaiveDate, String> {
    let mut files: BTreeMap<NaiveDate, Vec<&ObjectMeta>> = BTreeMap::new();
    for meta in &tables.files(ContractTable::Events).readable {
        let day = tables
            .store()
            .relative(&meta.location)
            .and_then(|r| layout::partition_date_of(&r));
        if let Some(day) = day {
            files.entry(day).or_default().push(meta);
        }
    }
    // Not the events' schema: a column that appears in another day's files changes nothing
    // here, and the planner's keys hold the types of the columns a state reads.
    let mut common = Sha256::new();
    common.update(format!("format {STATE_FORMAT}\n").as_bytes());
    common.update(format!("identity {:?}\n", tables.identity()).as_bytes());
    for erased in tables.erased() {
        common.update(format!("erased {erased}\n").as_bytes());
    }
    files
        .into_iter()
        .map(|(day, mut metas)| {
            metas.sort_by(|a, b| a.location.cmp(&b.location));
            let mut hash = common.clone();
            for m in metas {
                hash.update(
                    format!(
                        "file {} {} {} {}\n",
                        m.location,
                        m.size,
                        m.e_tag.as_deref().unwrap_or("-"),
                        m.last_modified.timestamp_micros()
                    )
                    .as_bytes(),
                );
            }
            (day, hex(&hash.finalize()))
        })
        .collect()
}

/// A short, stable name for `text` (the first 8 bytes of its SHA-256, in hex): the key of a
/// condition's states, so that the planner's description of what a state computes names its
/// columns.
pub fn short_hash(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes())[..8])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The committed index (empty when none was committed yet). A corrupt index is an error
/// naming it (the caller may fall back to a full refresh, or erase the states).
pub async fn read_index(store: &Store) -> Result<StateIndex> {
    match store
        .object_store()
        .get(&store.path(layout::STATES_INDEX))
        .await
    {
        Ok(got) => {
            let bytes = got.bytes().await?;
            serde_json::from_slice(&bytes).map_err(|e| crate::error::Error::Corrupt {
                path: layout::STATES_INDEX.into(),
                reason: e.to_string(),
            })
        }
        Err(object_store::Error::NotFound { .. }) => Ok(StateIndex::default()),
        Err(e) => Err(e.into()),
    }
}

/// Whether `entry` can be trusted for `day`: the file exists and its footer names the same
/// day, fingerprint and keys. Anything else (missing, foreign, corrupt) is `false`.
pub async fn verify(store: &Store, day: NaiveDate, entry: &StateEntry) -> bool {
    if entry.stray || entry.file.is_empty() {
        return false;
    }
    let object_store = store.object_store();
    let Ok(meta) = object_store.head(&store.path(&entry.file)).await else {
        return false;
    };
    if meta.size != entry.bytes {
        return false;
    }
    let Ok(footer) = crate::files::read_footer(object_store.as_ref(), &meta).await else {
        return false;
    };
    let kv: BTreeMap<&str, &str> = footer
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .filter_map(|k| k.value.as_deref().map(|v| (k.key.as_str(), v)))
                .collect()
        })
        .unwrap_or_default();
    kv.get(DAY_KEY) == Some(&day_name(day).as_str())
        && kv.get(FINGERPRINT_KEY) == Some(&entry.fingerprint.as_str())
        && kv.get(KEYS_KEY) == Some(&entry.keys.join(",").as_str())
}

/// Writes one state file of `day` (its rows in `batches`, all of one schema) under a fresh
/// name and returns its entry, to be committed with [`commit`].
pub async fn write(
    store: &Store,
    day: NaiveDate,
    fingerprint: &str,
    keys: &[String],
    batches: &[RecordBatch],
) -> Result<StateEntry> {
    let Some(first) = batches.first() else {
        return Err(crate::error::Error::InvalidArgument {
            name: "batches",
            reason: "a state file needs its schema (at least one batch)".into(),
        });
    };
    let metadata = vec![
        KeyValue::new(DAY_KEY.to_string(), day_name(day)),
        KeyValue::new(FINGERPRINT_KEY.to_string(), fingerprint.to_string()),
        KeyValue::new(KEYS_KEY.to_string(), keys.join(",")),
    ];
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by("kitle".into())
        .set_key_value_metadata(Some(metadata))
        .build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, first.schema(), Some(props))?;
    let mut rows = 0u64;
    for batch in batches {
        rows += batch.num_rows() as u64;
        writer.write(batch)?;
    }
    writer.close()?;
    let bytes = buffer.len() as u64;
    let file = layout::state_file(day, &crate::memberships::nonce());
    crate::memberships::put(store, &file, Bytes::from(buffer)).await?;
    crate::failpoint::reach("states.written");
    Ok(StateEntry {
        file,
        fingerprint: fingerprint.to_string(),
        keys: keys.to_vec(),
        rows,
        bytes,
        stray: false,
    })
}

/// The table of the state files `files` (paths relative to the store root, as the index names
/// them), read with `schema`: a listing table over exactly these files, so that files no
/// committed index names (a crashed refresh's) are never read, and a plan that reads it can
/// run on a cluster like any other listing table. Columns of `schema` a file lacks (the keys
/// of another entry of its day) read as nulls.
pub fn source(
    store: &Store,
    files: &[String],
    schema: arrow::datatypes::SchemaRef,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::{
        ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
    };
    let urls = files
        .iter()
        .map(|f| {
            let path = store.path(f);
            ListingTableUrl::parse(format!("{}{}", store.base_url(), path.as_ref()))
        })
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(layout::PARQUET_EXTENSION);
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// The entry recording that `day` cannot have a state (its partition holds rows of other days).
pub fn stray_entry(fingerprint: &str) -> StateEntry {
    StateEntry {
        file: String::new(),
        fingerprint: fingerprint.to_string(),
        keys: Vec::new(),
        rows: 0,
        bytes: 0,
        stray: true,
    }
}

/// Commits `added` (day → new entries, written by [`write()`]) into the index, conditionally.
/// Entries of a day whose fingerprint is not `current[day]` are dropped, and so are days no
/// longer among `current` (their partition is gone); `replace` days lose their other entries.
pub async fn commit(
    store: &Store,
    added: &BTreeMap<NaiveDate, Vec<StateEntry>>,
    replace: &[NaiveDate],
    current: &BTreeMap<NaiveDate, String>,
) -> Result<StateIndex> {
    let added = Arc::new(added.clone());
    let replace: Arc<Vec<String>> = Arc::new(replace.iter().map(|d| day_name(*d)).collect());
    let current: Arc<BTreeMap<String, String>> = Arc::new(
        current
            .iter()
            .map(|(d, f)| (day_name(*d), f.clone()))
            .collect(),
    );
    let committed =
        crate::commit::update_json(store, layout::STATES_INDEX, |mut index: StateIndex| {
            let (added, replace, current) = (
                Arc::clone(&added),
                Arc::clone(&replace),
                Arc::clone(&current),
            );
            async move {
                index.days.retain(|day, entries| {
                    let Some(fingerprint) = current.get(day) else {
                        return false;
                    };
                    entries.retain(|e| &e.fingerprint == fingerprint);
                    if replace.contains(day) {
                        entries.clear();
                    }
                    !entries.is_empty()
                });
                for (day, entries) in added.iter() {
                    let name = day_name(*day);
                    if current.get(&name) != entries.first().map(|e| &e.fingerprint) {
                        continue;
                    }
                    index
                        .days
                        .entry(name)
                        .or_default()
                        .extend(entries.iter().cloned());
                }
                Ok::<_, crate::error::Error>(index)
            }
        })
        .await?;
    Ok(committed.value)
}

/// Forgets every state: commits an empty index, then deletes every state file. Erasure calls
/// it, because states hold per-customer figures; a refresh recomputes what it needs.
pub async fn forget(store: &Store) -> Result<u64> {
    crate::commit::update_json(store, layout::STATES_INDEX, |_: StateIndex| async {
        Ok::<_, crate::error::Error>(StateIndex::default())
    })
    .await?;
    let prefix = store.path(layout::STATES_DIR);
    let listed: Vec<ObjectMeta> = {
        use futures::TryStreamExt;
        store
            .object_store()
            .list(Some(&prefix))
            .try_collect()
            .await?
    };
    let mut deleted = 0;
    for meta in listed {
        let is_state = store
            .relative(&meta.location)
            .is_some_and(|r| r.ends_with(layout::PARQUET_EXTENSION));
        if is_state {
            match store.object_store().delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_store::temp_store;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Utf8, true),
            Field::new("s_k", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["Ayşe", "İlker"])),
                Arc::new(Int64Array::from(vec![3, 1])),
            ],
        )
        .unwrap()
    }

    #[tokio::test]
    async fn written_states_are_trusted_only_for_their_day_fingerprint_and_keys() {
        let (_dir, store) = temp_store();
        let keys = vec!["k".to_string()];
        let entry = write(&store, day(1), "fp1", &keys, &[batch()])
            .await
            .unwrap();
        assert_eq!(entry.rows, 2);
        assert!(verify(&store, day(1), &entry).await);
        // Another day, another fingerprint, other keys: not this file.
        assert!(!verify(&store, day(2), &entry).await);
        let mut other = entry.clone();
        other.fingerprint = "fp2".into();
        assert!(!verify(&store, day(1), &other).await);
        other = entry.clone();
        other.keys = vec!["k".into(), "j".into()];
        assert!(!verify(&store, day(1), &other).await);
        // A corrupt file (same size, wrong bytes) and a missing one.
        let path = store.path(&entry.file);
        let garbage = vec![b'x'; entry.bytes as usize];
        store
            .object_store()
            .put(&path, garbage.into())
            .await
            .unwrap();
        assert!(!verify(&store, day(1), &entry).await);
        store.object_store().delete(&path).await.unwrap();
        assert!(!verify(&store, day(1), &entry).await);
        assert!(!verify(&store, day(1), &stray_entry("fp1")).await);
    }

    #[tokio::test]
    async fn commits_keep_live_entries_and_drop_dead_ones() {
        let (_dir, store) = temp_store();
        assert_eq!(read_index(&store).await.unwrap(), StateIndex::default());
        let keys = vec!["k".to_string()];
        let a = write(&store, day(1), "fp1", &keys, &[batch()])
            .await
            .unwrap();
        let b = write(&store, day(2), "fp2", &keys, &[batch()])
            .await
            .unwrap();
        let current: BTreeMap<NaiveDate, String> =
            [(day(1), "fp1".to_string()), (day(2), "fp2".to_string())].into();
        let added: BTreeMap<NaiveDate, Vec<StateEntry>> =
            [(day(1), vec![a.clone()]), (day(2), vec![b.clone()])].into();
        let index = commit(&store, &added, &[], &current).await.unwrap();
        assert_eq!(index, read_index(&store).await.unwrap());
        assert_eq!(index.live(day(1), "fp1"), vec![&a]);
        // Day 2's files changed (a late file): its entry is dropped by the next commit, and
        // an entry computed for a fingerprint that is no longer current is not added.
        let current: BTreeMap<NaiveDate, String> =
            [(day(1), "fp1".to_string()), (day(2), "fp3".to_string())].into();
        let index = commit(&store, &added, &[], &current).await.unwrap();
        assert!(index.live(day(2), "fp2").is_empty());
        assert!(!index.days.contains_key("2026-11-02"));
        assert_eq!(index.live(day(1), "fp1").len(), 2);
        // Replacing a day keeps only what is added now.
        let index = commit(&store, &[(day(1), vec![a.clone()])].into(), &[day(1)], &current)
            .await
            .unwrap();
        assert_eq!(index.live(day(1), "fp1"), vec![&a]);
        // Forgetting empties the index and deletes every state file.
        assert_eq!(forget(&store).await.unwrap(), 2);
        assert_eq!(read_index(&store).await.unwrap(), StateIndex::default());
        assert!(!verify(&store, day(1), &a).await);
    }
}
