//! The analyst tables over kitle's own objects: `memberships`, `segment_changes` and
//! `segments`, for `kitle sql`, `/v1/sql` and anything else that lets analysts query what the
//! engine committed. They read only what the manifest names, so only committed versions.

use std::sync::Arc;

use datafusion::common::ScalarValue;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::contract::timestamp_type;
use crate::definitions::read_definitions;
use crate::error::Result;
use crate::layout;
use crate::memberships::{
    ChangeKind, SegmentMemberships, changes_schema, members_schema, read_manifest,
};
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
    ctx.register_table(
        "segments",
        values_table(
            Arc::clone(&schema),
            ids.into_iter()
                .zip(names)
                .zip(refresh)
                .zip(sizes)
                .zip(last)
                .zip(documents)
                .map(|(((((id, name), refresh), size), last), document)| {
                    vec![
                        ScalarValue::from(id),
                        ScalarValue::from(name),
                        ScalarValue::from(refresh),
                        ScalarValue::UInt64(size),
                        ScalarValue::TimestampMicrosecond(
                            last,
                            Some(crate::contract::UTC.into()),
                        ),
                        ScalarValue::from(document),
                    ]
                })
                .collect(),
        )?,
    )?;
    Ok(())
}

/// A table of the given rows as a view over a `VALUES` plan (an empty table when there are
/// none): unlike an in-memory table, a plan that reads it can be sent to a cluster engine.
fn values_table(
    schema: SchemaRef,
    rows: Vec<Vec<ScalarValue>>,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    if rows.is_empty() {
        return Ok(Arc::new(datafusion::datasource::empty::EmptyTable::new(
            schema,
        )));
    }
    let rows: Vec<Vec<datafusion::prelude::Expr>> = rows
        .into_iter()
        .map(|row| row.into_iter().map(datafusion::prelude::lit).collect())
        .collect();
    let columns: Vec<datafusion::prelude::Expr> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            datafusion::prelude::col(format!("column{}", i + 1)).alias(field.name())
        })
        .collect();
    let plan = datafusion::logical_expr::LogicalPlanBuilder::values(rows)?
        .project(columns)?
        .build()?;
    Ok(Arc::new(datafusion::datasource::ViewTable::new(plan, None)))
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
        return Ok(Arc::new(datafusion::datasource::empty::EmptyTable::new(
            schema,
        )));
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
