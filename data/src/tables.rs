//! The contract's tables as DataFusion plans: `events` (one row per `event_id`) and
//! `customers` (the latest row per `customer_id`, optionally as of an instant).
//!
//! Both are ordinary listing-table scans of the store's Parquet files with a fixed, normalised
//! schema ([`crate::contract`]), so that DataFusion casts each file's columns (timestamps of
//! any unit or zone to UTC microseconds, any string type to `Utf8`, numbers to the contract's
//! types) and fills missing optional columns with nulls. Unreadable files are hidden from the
//! listing by [`crate::readable::ReadableOnly`] after being reported. Everything is built from
//! DataFusion built-ins, so the same plans can run on any executor that can scan the store.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::Int64Type;
use datafusion::catalog::TableProvider;
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig};
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::functions::core::expr_fn::{file_row_index, input_file_name};
use datafusion::functions_aggregate::expr_fn::{count, first_value};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{ExprFunctionExt, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{Expr, SessionContext, col, lit};
use serde::Serialize;

use crate::contract::{ContractTable, UTC};
use crate::error::Result;
use crate::files::{FooterCache, NullRows, SkippedFile, TableFiles, check_table_files};
use crate::layout;
use crate::readable::ReadableOnly;
use crate::store::Store;

/// What reading the store left out: unreadable files and rows with nulls in not-null columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReadReport {
    /// Files skipped, with the reason, sorted by path.
    pub skipped_files: Vec<SkippedFile>,
    /// Rows dropped for a null in a not-null column, per file and column.
    pub null_rows: Vec<NullRows>,
}

impl ReadReport {
    /// Whether nothing was left out.
    pub fn is_clean(&self) -> bool {
        self.skipped_files.is_empty() && self.null_rows.is_empty()
    }
}

/// The contract's tables of one store, as checked at one moment.
///
/// Build it with [`ContractTables::load`] (which checks every file's footer), then either
/// [`ContractTables::register`] the `events` and `customers` views for SQL, or ask for the
/// plans directly (the segment engine does, with its `as_of`).
#[derive(Debug, Clone)]
pub struct ContractTables {
    store: Store,
    customers: Arc<TableFiles>,
    events: Arc<TableFiles>,
}

/// Hidden columns used to order profile rows of the same `updated_at`.
const FILE_COLUMN: &str = "__kitle_file";
const ROW_COLUMN: &str = "__kitle_row";
const RANK_COLUMN: &str = "__kitle_rank";

impl ContractTables {
    /// Checks every file of `customers/` and `events/`. In strict mode an unreadable file is
    /// an error naming it; otherwise it is left out and listed in [`Self::report`].
    pub async fn load(store: &Store, cache: &FooterCache) -> Result<Self> {
        let customers = check_table_files(store, ContractTable::Customers, cache).await?;
        let events = check_table_files(store, ContractTable::Events, cache).await?;
        Ok(Self {
            store: store.clone(),
            customers: Arc::new(customers),
            events: Arc::new(events),
        })
    }

    /// The store these tables read.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The normalised schema of one table: the contract's columns, then the extra columns of
    /// its readable files (for `events`, without the partition column).
    pub fn schema(&self, table: ContractTable) -> datafusion::arrow::datatypes::SchemaRef {
        table.schema(&self.files(table).extra_columns)
    }

    /// The checked files of one table.
    pub fn files(&self, table: ContractTable) -> &TableFiles {
        match table {
            ContractTable::Customers => &self.customers,
            ContractTable::Events => &self.events,
        }
    }

    /// Files left out and rows that will be dropped, over both tables.
    pub fn report(&self) -> ReadReport {
        let mut report = ReadReport::default();
        for files in [&self.customers, &self.events] {
            report.skipped_files.extend(files.skipped.iter().cloned());
            report.null_rows.extend(files.null_rows.iter().cloned());
        }
        report.skipped_files.sort_by(|a, b| a.path.cmp(&b.path));
        report
    }

    /// Registers the store with `ctx`'s runtime, showing DataFusion only the readable files,
    /// and registers the `events` and `customers` tables (latest profiles, every event once).
    pub fn register(&self, ctx: &SessionContext) -> Result<()> {
        self.install_store(ctx);
        ctx.register_table(
            "events",
            Arc::new(ViewTable::new(self.events_plan(None)?, None)),
        )?;
        ctx.register_table(
            "customers",
            Arc::new(ViewTable::new(self.customers_plan(None)?, None)),
        )?;
        Ok(())
    }

    /// Registers `events` and `customers` as they were at `as_of`: events with `ts <= as_of`,
    /// and for each customer the latest row with `updated_at <= as_of`. This is what a `sql`
    /// condition of a segment sees.
    pub fn register_as_of(&self, ctx: &SessionContext, as_of: DateTime<Utc>) -> Result<()> {
        self.install_store(ctx);
        ctx.register_table(
            "events",
            Arc::new(ViewTable::new(self.events_plan(Some(as_of))?, None)),
        )?;
        ctx.register_table(
            "customers",
            Arc::new(ViewTable::new(self.customers_plan(Some(as_of))?, None)),
        )?;
        Ok(())
    }

    /// Makes `ctx` list only the readable files of the contract folders of this store.
    pub fn install_store(&self, ctx: &SessionContext) {
        let allowed: HashSet<_> = self
            .customers
            .readable
            .iter()
            .chain(self.events.readable.iter())
            .map(|m| m.location.clone())
            .collect();
        let guarded = vec![
            self.store.path(layout::CUSTOMERS_DIR),
            self.store.path(layout::EVENTS_DIR),
        ];
        let view = ReadableOnly::new(Arc::clone(self.store.object_store()), guarded, allowed);
        ctx.runtime_env()
            .register_object_store(self.store.base_url(), Arc::new(view));
    }

    /// The raw listing table of `events`: every row of every readable file, duplicates and
    /// rows with nulls included, with the partition column `date`. The segment engine builds
    /// its own de-duplicating aggregation on it; others want [`Self::events_plan`].
    pub fn events_source(&self) -> Result<Arc<dyn TableProvider>> {
        let schema = ContractTable::Events.schema(&self.events.extra_columns);
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(layout::PARQUET_EXTENSION)
            .with_table_partition_cols(vec![(
                layout::EVENTS_PARTITION_COLUMN.to_string(),
                DataType::Utf8,
            )]);
        let config = ListingTableConfig::new(self.store.table_url(layout::EVENTS_DIR)?)
            .with_listing_options(options)
            .with_schema(schema);
        Ok(Arc::new(ListingTable::try_new(config)?))
    }

    /// The raw listing table of `customers`: every profile row of every readable file.
    pub fn customers_source(&self) -> Result<Arc<dyn TableProvider>> {
        let schema = ContractTable::Customers.schema(&self.customers.extra_columns);
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(layout::PARQUET_EXTENSION);
        let config = ListingTableConfig::new(self.store.table_url(layout::CUSTOMERS_DIR)?)
            .with_listing_options(options)
            .with_schema(schema);
        Ok(Arc::new(ListingTable::try_new(config)?))
    }

    /// The `events` table: rows with a null `event_id`, `event_type` or `ts` dropped, one row
    /// per `event_id` (copies of a redelivered event share `ts` and so their partition), and,
    /// with `as_of`, only events with `ts <= as_of` (older partitions only are opened).
    pub fn events_plan(&self, as_of: Option<DateTime<Utc>>) -> Result<LogicalPlan> {
        let source = self.events_source()?;
        let schema = source.schema();
        let mut builder = LogicalPlanBuilder::scan("events", provider_as_source(source), None)?
            .filter(required_not_null(ContractTable::Events))?;
        if let Some(as_of) = as_of {
            builder = builder.filter(events_until(as_of))?;
        }
        let keys = [layout::EVENTS_PARTITION_COLUMN, "event_id"];
        let aggregates: Vec<Expr> = schema
            .fields()
            .iter()
            .filter(|f| !keys.contains(&f.name().as_str()))
            .map(|f| first_value(col(Column::from_name(f.name())), vec![]).alias(f.name()))
            .collect();
        let group: Vec<Expr> = keys.iter().map(|k| col(Column::from_name(*k))).collect();
        let columns: Vec<Expr> = schema
            .fields()
            .iter()
            .map(|f| col(Column::from_name(f.name())))
            .collect();
        let plan = builder
            .aggregate(group, aggregates)?
            .project(columns)?
            .build()?;
        Ok(plan)
    }

    /// The `customers` table: for each `customer_id`, the row with the greatest `updated_at`
    /// (at or before `as_of` when given), whole; on a tie the row of the file whose path sorts
    /// last, and within a file the last row.
    pub fn customers_plan(&self, as_of: Option<DateTime<Utc>>) -> Result<LogicalPlan> {
        let source = self.customers_source()?;
        let schema = source.schema();
        let columns: Vec<Expr> = schema
            .fields()
            .iter()
            .map(|f| col(Column::from_name(f.name())))
            .collect();
        let mut with_position = columns.clone();
        with_position.push(input_file_name().alias(FILE_COLUMN));
        with_position.push(file_row_index().alias(ROW_COLUMN));
        let mut builder = LogicalPlanBuilder::scan("customers", provider_as_source(source), None)?
            .project(with_position)?
            .filter(required_not_null(ContractTable::Customers))?;
        if let Some(as_of) = as_of {
            builder = builder.filter(col("updated_at").lt_eq(timestamp_literal(as_of)))?;
        }
        let rank = row_number()
            .partition_by(vec![col("customer_id")])
            .order_by(vec![
                col("updated_at").sort(false, true),
                col(FILE_COLUMN).sort(false, true),
                col(ROW_COLUMN).sort(false, true),
            ])
            .build()?
            .alias(RANK_COLUMN);
        let plan = builder
            .window(vec![rank])?
            .filter(col(RANK_COLUMN).eq(lit(1u64)))?
            .project(columns)?
            .build()?;
        Ok(plan)
    }
}

impl ContractTables {
    /// How many events of each `event_type` the store holds (each `event_id` once), most
    /// frequent first, for builders that offer the event types present. Reads only the
    /// `event_id`, `event_type`, `ts` and partition columns of the readable event files.
    ///
    /// The scan runs under `limits` (a read token may ask for it through `GET /v1/schema`).
    pub async fn event_type_counts(
        &self,
        limits: &crate::session::Limits,
    ) -> Result<Vec<(String, u64)>> {
        const WHAT: &str = "counting the event types";
        let limits = limits.start(WHAT);
        limits.run(WHAT, self.count_event_types(&limits)).await
    }

    async fn count_event_types(
        &self,
        limits: &crate::session::Limits,
    ) -> Result<Vec<(String, u64)>> {
        let ctx = crate::session::context_with(&self.store, limits);
        self.install_store(&ctx);
        let source = self.events_source()?;
        let keys = [layout::EVENTS_PARTITION_COLUMN, "event_id"];
        let plan = LogicalPlanBuilder::scan("events", provider_as_source(source), None)?
            .filter(required_not_null(ContractTable::Events))?
            .aggregate(
                keys.iter().map(|k| col(Column::from_name(*k))),
                vec![first_value(col("event_type"), vec![]).alias("event_type")],
            )?
            .aggregate(vec![col("event_type")], vec![count(lit(1)).alias("events")])?
            .sort(vec![
                col("events").sort(false, true),
                col("event_type").sort(true, true),
            ])?
            .build()?;
        let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
        let mut counts = Vec::new();
        for batch in &batches {
            let types = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
            let types = types.as_string::<i32>();
            let numbers = batch.column(1).as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                if types.is_valid(row) {
                    counts.push((types.value(row).to_string(), numbers.value(row) as u64));
                }
            }
        }
        Ok(counts)
    }
}

/// `ts <= as_of`, plus the same bound on the partition column so that later partitions are
/// never opened.
fn events_until(as_of: DateTime<Utc>) -> Expr {
    let last_day = as_of.date_naive().format("%Y-%m-%d").to_string();
    col(layout::EVENTS_PARTITION_COLUMN)
        .lt_eq(lit(last_day))
        .and(col("ts").lt_eq(timestamp_literal(as_of)))
}

/// A literal of kitle's timestamp type.
pub fn timestamp_literal(t: DateTime<Utc>) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(t.timestamp_micros()),
        Some(UTC.into()),
    ))
}

fn required_not_null(table: ContractTable) -> Expr {
    table
        .columns()
        .iter()
        .filter(|c| c.required)
        .map(|c| col(Column::from_name(c.name)).is_not_null())
        .reduce(Expr::and)
        .expect("every table has a required column")
}
