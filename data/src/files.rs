//! Finding the readable files of a contract table, and reporting the others.
//!
//! Before a table is read, every file under its folder is checked from its Parquet footer
//! alone: it must be valid Parquet, have every not-null column of its table, and have each
//! contract column in a type that can be read as the contract says. Files that fail are
//! skipped and reported by path with the reason (or, in strict mode, fail the read). Footers
//! are cached by path, size and modification so that a long-running process checks each file
//! once. The union of the readable files' extra columns becomes part of the table's schema.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arrow::datatypes::{DataType, Field};
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore};
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::metadata::ParquetMetaDataReader;
use serde::Serialize;

use crate::contract::{ContractTable, normalise_extra_type};
use crate::error::{Error, Result};
use crate::layout;
use crate::store::Store;

/// How many footers are read at once (object stores reward concurrency).
const FOOTER_CONCURRENCY: usize = 16;

/// A file that was left out of a table, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedFile {
    /// Path relative to the store root.
    pub path: String,
    /// Why it cannot be read as the contract says.
    pub reason: String,
}

/// Rows of one file that have a null in a not-null column and are therefore dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NullRows {
    /// Path relative to the store root.
    pub path: String,
    /// The not-null column.
    pub column: String,
    /// How many rows have a null there (from the file's statistics).
    pub rows: u64,
}

/// The outcome of checking every file of one table.
#[derive(Debug, Clone)]
pub struct TableFiles {
    /// Which table.
    pub table: ContractTable,
    /// The readable files, sorted by path.
    pub readable: Vec<ObjectMeta>,
    /// The files left out, sorted by path.
    pub skipped: Vec<SkippedFile>,
    /// Extra (non-contract) columns of the readable files, normalised, in order of first
    /// appearance by path.
    pub extra_columns: Vec<Field>,
    /// Rows that will be dropped for nulls in not-null columns.
    pub null_rows: Vec<NullRows>,
    /// Total rows in the readable files (duplicates and null rows included).
    pub rows: u64,
}

impl TableFiles {
    /// A digest of which readable files the table has, in which versions (path, size, e-tag,
    /// modification): equal digests within one process mean the same data, so what was
    /// computed from the files can be kept until a file lands or changes.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for meta in &self.readable {
            meta.location.as_ref().hash(&mut hasher);
            version_of(meta).hash(&mut hasher);
        }
        hasher.finish()
    }
}

/// What one footer said about a file.
#[derive(Debug, Clone)]
enum Verdict {
    Readable {
        /// (name, physical type) of every top-level column that is not in the contract.
        extras: Vec<(String, DataType)>,
        /// (not-null column, null count) where the count is positive.
        nulls: Vec<(String, u64)>,
        rows: u64,
    },
    Unreadable(String),
}

/// What identifies one version of an object: size, e-tag and modification time (µs).
type ObjectVersion = (u64, Option<String>, i64);

fn version_of(meta: &ObjectMeta) -> ObjectVersion {
    (
        meta.size,
        meta.e_tag.clone(),
        meta.last_modified.timestamp_micros(),
    )
}

/// Cache of footer verdicts, keyed by path and invalidated when the object changes. Shared by
/// every read of a store in one process.
#[derive(Debug, Default)]
pub struct FooterCache {
    entries: Mutex<HashMap<String, (ObjectVersion, Verdict)>>,
}

impl FooterCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, meta: &ObjectMeta) -> Option<Verdict> {
        let entries = self.entries.lock().ok()?;
        let (version, verdict) = entries.get(meta.location.as_ref())?;
        (*version == version_of(meta)).then(|| verdict.clone())
    }

    /// The verdict on `meta`, a file of `table`: the cached one for this version of the file,
    /// else its footer's, which is then cached.
    async fn verdict(
        &self,
        object_store: &dyn ObjectStore,
        meta: &ObjectMeta,
        table: ContractTable,
    ) -> Verdict {
        if let Some(verdict) = self.get(meta) {
            return verdict;
        }
        let verdict = check_footer(object_store, meta, table).await;
        self.put(meta, &verdict);
        verdict
    }

    fn put(&self, meta: &ObjectMeta, verdict: &Verdict) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                meta.location.to_string(),
                (version_of(meta), verdict.clone()),
            );
        }
    }
}

/// Lists and checks every file of `table`. In strict mode the first unreadable file is an
/// error naming it; otherwise it is skipped and listed in [`TableFiles::skipped`].
pub async fn check_table_files(
    store: &Store,
    table: ContractTable,
    cache: &FooterCache,
) -> Result<TableFiles> {
    let dir = match table {
        ContractTable::Customers => layout::CUSTOMERS_DIR,
        ContractTable::Events => layout::EVENTS_DIR,
    };
    let mut listed: Vec<ObjectMeta> = store
        .object_store()
        .list(Some(&store.path(dir)))
        .try_collect()
        .await?;
    listed.sort_by(|a, b| a.location.cmp(&b.location));

    let mut skipped = Vec::new();
    let mut candidates = Vec::new();
    for meta in listed {
        let Some(relative) = store.relative(&meta.location) else {
            continue;
        };
        match path_problem(table, &relative) {
            PathVerdict::Data => candidates.push((relative, meta)),
            PathVerdict::NotData => {}
            PathVerdict::Skipped(reason) => skipped.push(SkippedFile {
                path: relative,
                reason,
            }),
        }
    }

    let verdicts: Vec<(String, ObjectMeta, Verdict)> = futures::stream::iter(candidates)
        .map(|(relative, meta)| async move {
            let verdict = cache
                .verdict(store.object_store().as_ref(), &meta, table)
                .await;
            (relative, meta, verdict)
        })
        .buffered(FOOTER_CONCURRENCY)
        .collect()
        .await;

    let mut readable = Vec::new();
    let mut extras: Vec<(String, DataType)> = Vec::new();
    let mut null_rows = Vec::new();
    let mut rows = 0;
    for (relative, meta, verdict) in verdicts {
        match verdict {
            Verdict::Unreadable(reason) => skipped.push(SkippedFile {
                path: relative,
                reason,
            }),
            Verdict::Readable {
                extras: file_extras,
                nulls,
                rows: file_rows,
            } => {
                for (name, physical) in file_extras {
                    merge_extra(&mut extras, table, name, &physical);
                }
                null_rows.extend(nulls.into_iter().map(|(column, n)| NullRows {
                    path: relative.clone(),
                    column,
                    rows: n,
                }));
                rows += file_rows;
                readable.push(meta);
            }
        }
    }
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    if store.strict()
        && let Some(first) = skipped.first()
    {
        return Err(Error::UnreadableFile {
            path: first.path.clone(),
            reason: first.reason.clone(),
        });
    }
    Ok(TableFiles {
        table,
        readable,
        skipped,
        extra_columns: extras
            .into_iter()
            .map(|(name, t)| Field::new(name, t, true))
            .collect(),
        null_rows,
        rows,
    })
}

/// What a file's path alone says about it.
enum PathVerdict {
    /// A data file of the table, to be judged by its footer.
    Data,
    /// Not data at all (hidden files, writer markers): left out silently.
    NotData,
    /// Not where the table's files belong, or not Parquet: left out and reported.
    Skipped(String),
}

/// Judges a file of `table` by its path relative to the store root.
fn path_problem(table: ContractTable, relative: &str) -> PathVerdict {
    let file_name = relative.rsplit('/').next().unwrap_or_default();
    if relative
        .split('/')
        .any(|part| part.starts_with('.') || part.starts_with('_'))
    {
        // Hidden files and writer markers (`_SUCCESS`, `.crc`) are not data.
        return PathVerdict::NotData;
    }
    if !file_name.ends_with(layout::PARQUET_EXTENSION) {
        return PathVerdict::Skipped("not a .parquet file".into());
    }
    match table {
        ContractTable::Events if layout::partition_date_of(relative).is_none() => {
            PathVerdict::Skipped(format!(
                "not inside an {}/{}=YYYY-MM-DD/ partition",
                layout::EVENTS_DIR,
                layout::EVENTS_PARTITION_COLUMN
            ))
        }
        ContractTable::Customers if relative.matches('/').count() != 1 => {
            PathVerdict::Skipped(format!("not directly inside {}/", layout::CUSTOMERS_DIR))
        }
        _ => PathVerdict::Data,
    }
}

/// Whether `meta`, a file of `table` at `relative` (its path from the store's root), is one
/// that [`check_table_files`] would count readable: the same path rules and the same footer
/// verdict (cached in `cache`), one file at a time. For processes that list the store
/// themselves (a cluster's scheduler), so that they leave out exactly the files the
/// coordinator leaves out.
pub async fn is_readable(
    object_store: &dyn ObjectStore,
    table: ContractTable,
    relative: &str,
    meta: &ObjectMeta,
    cache: &FooterCache,
) -> bool {
    if !matches!(path_problem(table, relative), PathVerdict::Data) {
        return false;
    }
    matches!(
        cache.verdict(object_store, meta, table).await,
        Verdict::Readable { .. }
    )
}

/// Adds an extra column seen in one file to the table's extras: the first file (by path) to
/// have it sets its type; a later file with a different normalised type turns it into text,
/// which every type can be read as.
fn merge_extra(
    extras: &mut Vec<(String, DataType)>,
    table: ContractTable,
    name: String,
    physical: &DataType,
) {
    if table == ContractTable::Events && name == layout::EVENTS_PARTITION_COLUMN {
        // The partition column is derived from the path; a data column of the same name
        // would shadow it.
        return;
    }
    let Some(normalised) = normalise_extra_type(physical) else {
        return;
    };
    match extras.iter_mut().find(|(n, _)| *n == name) {
        Some((_, existing)) if *existing != normalised => *existing = DataType::Utf8,
        Some(_) => {}
        None => extras.push((name, normalised)),
    }
}

/// Bytes fetched from the end of a file in the first request: most footers fit, so most
/// files cost one round trip.
const FOOTER_GUESS: u64 = 64 * 1024;

/// Reads one footer and judges the file against the contract.
async fn check_footer(
    object_store: &dyn ObjectStore,
    meta: &ObjectMeta,
    table: ContractTable,
) -> Verdict {
    match read_footer(object_store, meta).await {
        Ok(metadata) => judge(&metadata, table),
        Err(reason) => Verdict::Unreadable(format!("not a valid Parquet file: {reason}")),
    }
}

/// Fetches and decodes a Parquet footer (`… metadata | length | "PAR1"`) with ranged reads.
pub(crate) async fn read_footer(
    object_store: &dyn ObjectStore,
    meta: &ObjectMeta,
) -> std::result::Result<ArrowReaderMetadata, String> {
    let size = meta.size;
    if size < 12 {
        return Err(format!("{size} bytes is too short for a Parquet file"));
    }
    let start = size.saturating_sub(FOOTER_GUESS);
    let mut tail = object_store
        .get_range(&meta.location, start..size)
        .await
        .map_err(|e| e.to_string())?;
    let n = tail.len();
    if &tail[n - 4..] != b"PAR1" {
        return Err("the file does not end with the Parquet magic bytes".into());
    }
    let footer_len = u64::from(u32::from_le_bytes(
        tail[n - 8..n - 4].try_into().expect("4 bytes"),
    ));
    if footer_len + 8 > size - 4 {
        return Err(format!(
            "footer length {footer_len} exceeds the file size {size}"
        ));
    }
    let metadata_start = size - 8 - footer_len;
    if metadata_start < start {
        tail = object_store
            .get_range(&meta.location, metadata_start..size)
            .await
            .map_err(|e| e.to_string())?;
    }
    let n = tail.len();
    let metadata_bytes = &tail[n - 8 - footer_len as usize..n - 8];
    let metadata =
        ParquetMetaDataReader::decode_metadata(metadata_bytes).map_err(|e| e.to_string())?;
    ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::new())
        .map_err(|e| e.to_string())
}

fn judge(metadata: &ArrowReaderMetadata, table: ContractTable) -> Verdict {
    let schema = metadata.schema();
    for column in table.columns() {
        match schema.field_with_name(column.name) {
            Ok(field) if !column.kind.accepts(field.data_type()) => {
                return Verdict::Unreadable(format!(
                    "column {} is {}, which cannot be read as {}",
                    column.name,
                    field.data_type(),
                    column.kind.data_type()
                ));
            }
            Ok(_) => {}
            Err(_) if column.required => {
                return Verdict::Unreadable(format!("lacks the not-null column {}", column.name));
            }
            Err(_) => {}
        }
    }
    let extras = schema
        .fields()
        .iter()
        .filter(|f| table.column(f.name()).is_none())
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();

    let parquet = metadata.metadata();
    let descr = parquet.file_metadata().schema_descr();
    let mut nulls: BTreeMap<String, u64> = BTreeMap::new();
    for (index, leaf) in descr.columns().iter().enumerate() {
        let parts = leaf.path().parts();
        let [name] = parts else { continue };
        if !table.column(name).is_some_and(|c| c.required) {
            continue;
        }
        let count: u64 = parquet
            .row_groups()
            .iter()
            .filter_map(|rg| {
                rg.column(index)
                    .statistics()
                    .and_then(|s| s.null_count_opt())
            })
            .sum();
        if count > 0 {
            *nulls.entry(name.clone()).or_default() += count;
        }
    }
    Verdict::Readable {
        extras,
        nulls: nulls.into_iter().collect(),
        rows: u64::try_from(parquet.file_metadata().num_rows()).unwrap_or(0),
    }
}

/// The readable files of both tables, shared cheaply between a session and its reports.
pub type SharedTableFiles = Arc<TableFiles>;

/// Whether the store already holds any object under `customers/` or `events/`.
pub async fn contract_data_present(store: &Store) -> Result<bool> {
    for dir in [layout::CUSTOMERS_DIR, layout::EVENTS_DIR] {
        let mut listing = store.object_store().list(Some(&store.path(dir)));
        if let Some(first) = listing.next().await {
            first?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Deletes every object under `customers/` and `events/` (used by `generate --overwrite`
/// only: the engine never rewrites other systems' data). Returns how many were deleted.
pub async fn remove_contract_data(store: &Store) -> Result<u64> {
    let mut deleted = 0;
    for dir in [layout::CUSTOMERS_DIR, layout::EVENTS_DIR] {
        let locations = store
            .object_store()
            .list(Some(&store.path(dir)))
            .map_ok(|meta| meta.location)
            .boxed();
        let mut results = store.object_store().delete_stream(locations);
        while let Some(result) = results.next().await {
            result?;
            deleted += 1;
        }
    }
    Ok(deleted)
}
