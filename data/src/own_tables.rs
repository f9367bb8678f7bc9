//! The analyst tables over kitle's own objects: `memberships`, `segment_changes` and
//! `segments`, for `kitle sql`, `/v1/sql` and anything else that lets analysts query what the
//! engine committed. They read only what the manifest names, so only committed versions.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::contract::timestamp_type;
use crate::definitions::read_definitions;
use crate::error::Result;
use crate::layout;
use crate::memberships::{SegmentMemberships, changes_schema, members_schema, read_manifest};
use crate::store::Store;

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
    ctx.register_table(
        "segment_changes",
        files_table(store, &changes, changes_schema())?,
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
