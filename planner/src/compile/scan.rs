//! Scans of the raw events, and the merge of redelivered copies before the main aggregation.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::common::{Column, JoinType};
use datafusion::datasource::provider_as_source;
use datafusion::functions::core::expr_fn::input_file_name;
use datafusion::functions_aggregate::expr_fn::{count, max};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{Expr, SessionContext, col, lit};
use kitle_data::contract::ContractTable;
use kitle_data::layout;

use super::values::instant_literal;
use super::{CID, CompileError, Compiler, FILE_COLUMN, TYPE_CODE, cast_to_utf8, columns_of};
use crate::error::{Context, Error};

impl Compiler<'_> {
    /// A scan of the raw events with the rows every pass wants: identified customers, known
    /// ids and types, `ts <= as_of`, and only the date partitions between `lower` and `as_of`.
    pub(super) fn events_scan(
        &self,
        extra: &BTreeSet<String>,
        lower: Option<DateTime<Utc>>,
    ) -> Result<LogicalPlanBuilder, CompileError> {
        self.events_scan_with(extra, lower, false)
    }

    /// [`Self::events_scan`], with the path of each row's file as [`FILE_COLUMN`] when
    /// `with_file` (DataFusion's `input_file_name()`, resolved inside the scan).
    fn events_scan_with(
        &self,
        extra: &BTreeSet<String>,
        lower: Option<DateTime<Utc>>,
        with_file: bool,
    ) -> Result<LogicalPlanBuilder, CompileError> {
        let source = self.tables.events_source()?;
        let mut columns: BTreeSet<String> = [
            "customer_id",
            "event_id",
            "event_type",
            "ts",
            layout::EVENTS_PARTITION_COLUMN,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        columns.extend(extra.iter().cloned());
        self.identity_columns(&mut columns);
        let schema = source.schema();
        let projection: Vec<usize> = columns
            .iter()
            .filter_map(|c| schema.index_of(c).ok())
            .collect();
        let mut filter = self
            .may_have_owner()
            .and(col("event_id").is_not_null())
            .and(col("event_type").is_not_null())
            .and(col("ts").is_not_null())
            .and(col("ts").lt_eq(instant_literal(self.as_of)))
            .and(
                col(layout::EVENTS_PARTITION_COLUMN).lt_eq(lit(self
                    .as_of
                    .date_naive()
                    .format("%Y-%m-%d")
                    .to_string())),
            );
        if let Some(only) = self.only.as_ref().filter(|_| !self.stitched()) {
            filter = filter.and(col(CID).eq(lit(only.clone())));
        }
        if let Some(lower) = lower {
            filter = filter.and(
                col(layout::EVENTS_PARTITION_COLUMN)
                    .gt_eq(lit(lower.date_naive().format("%Y-%m-%d").to_string())),
            );
        }
        let mut scan =
            LogicalPlanBuilder::scan("events", provider_as_source(source), Some(projection))?;
        let mut output: Vec<String> = columns
            .iter()
            .filter(|c| schema.index_of(c).is_ok())
            .cloned()
            .collect();
        if with_file {
            let mut with_path: Vec<Expr> =
                output.iter().map(|c| col(Column::from_name(c))).collect();
            with_path.push(input_file_name().alias(FILE_COLUMN));
            scan = scan.project(with_path)?;
            output.push(FILE_COLUMN.to_string());
        }
        let owned = self.owned(scan.filter(filter)?, &output)?;
        match self.only.as_ref().filter(|_| self.stitched()) {
            Some(only) => Ok(owned.filter(col(CID).eq(lit(only.clone())))?),
            None => Ok(owned),
        }
    }

    /// Finds the event ids that landed more than once. Copies of an event share `ts` and so
    /// its partition, and land in two files: only partitions with several readable files in the
    /// refresh's date range are searched, one at a time, so the search never holds more than
    /// one day's ids in memory.
    pub(super) async fn find_repeated(&mut self, ctx: &SessionContext) -> Result<(), Error> {
        // Reading the events runs here, before the refresh's plan: a failure is the store's or
        // the engine's, never the definition's.
        let context = || "searching the events for redelivered copies".to_string();
        if !self.aggregates_events() {
            return Ok(());
        }
        let lower = self.earliest.flatten();
        let first = lower.map(|l| l.date_naive());
        let last = self.as_of.date_naive();
        let mut files_per_day: BTreeMap<chrono::NaiveDate, usize> = BTreeMap::new();
        for meta in &self.tables.files(ContractTable::Events).readable {
            let day = self
                .tables
                .store()
                .relative(&meta.location)
                .and_then(|r| layout::partition_date_of(&r));
            if let Some(day) = day {
                *files_per_day.entry(day).or_default() += 1;
            }
        }
        let types: Vec<Expr> = self.event_types.iter().map(|t| lit(t.clone())).collect();
        // Days whose rows no measure reads raw (their partials come from states).
        let skipped = self.skipped_days();
        for (day, files) in files_per_day {
            if files < 2 || first.is_some_and(|f| day < f) || day > last || skipped.contains(&day) {
                continue;
            }
            let rows = self
                .events_scan_with(&BTreeSet::new(), lower, true)
                .map_err(|e| e.into_error(""))?
                .filter(
                    col(layout::EVENTS_PARTITION_COLUMN)
                        .eq(lit(day.format("%Y-%m-%d").to_string()))
                        .and(col("event_type").in_list(types.clone(), false)),
                )
                .context(context)?;
            let plan = repeated_plan(rows).context(context)?;
            let batches = ctx
                .execute_logical_plan(plan)
                .await
                .context(context)?
                .collect()
                .await
                .context(context)?;
            self.repeated.extend(repeated_pairs(&batches)?);
        }
        Ok(())
    }

    /// The event rows the measures aggregate, each event once.
    ///
    /// Copies of a redelivered event share customer, id and `ts`. Merging every row by
    /// `(customer, event_id)` would hash the whole scan on two strings; instead the ids that
    /// occur more than once are found first ([`Self::find_repeated`]), rows of other ids pass
    /// straight through (an anti-join against that small list, written into the plan as
    /// values), and only the rows of repeated ids are merged.
    pub(super) fn merged_events(
        &self,
        lower: Option<DateTime<Utc>>,
        types: Vec<Expr>,
    ) -> Result<LogicalPlanBuilder, CompileError> {
        let only_types = col("event_type").in_list(types, false);
        let mut carried: Vec<String> = vec!["event_type".into(), "ts".into()];
        carried.extend(
            self.event_columns
                .iter()
                .filter(|c| !["event_type", "ts", CID, "event_id"].contains(&c.as_str()))
                .cloned(),
        );
        let mut columns = columns_of(&carried);
        // `event_id` is a key of the merge, not a carried value; keep it when a condition
        // reads it.
        if self.event_columns.contains("event_id") {
            columns.push(col("event_id"));
        }
        let rows = || -> Result<LogicalPlanBuilder, CompileError> {
            Ok(self
                .events_scan(&self.event_columns, lower)?
                .filter(only_types.clone())?)
        };
        let mut code = datafusion::logical_expr::case(col("event_type"));
        for (t, c) in &self.type_codes {
            code = code.when(lit(t.clone()), lit(*c));
        }
        let mut with_code: Vec<Expr> = columns
            .iter()
            .map(|c| col(c.schema_name().to_string()))
            .collect();
        with_code.push(code.end()?.alias(TYPE_CODE));
        // Partitions whose rows no measure reads raw are not opened (the filter is on the
        // partition column only, so the listing table prunes them).
        let skipped = self.skipped_days();
        let unskipped = |rows: LogicalPlanBuilder| -> Result<LogicalPlanBuilder, CompileError> {
            if skipped.is_empty() {
                return Ok(rows);
            }
            let days: Vec<Expr> = skipped
                .iter()
                .map(|d| lit(d.format("%Y-%m-%d").to_string()))
                .collect();
            Ok(rows.filter(col(layout::EVENTS_PARTITION_COLUMN).in_list(days, true))?)
        };
        if self.repeated.is_empty() {
            return Ok(unskipped(rows()?)?.project(columns)?.project(with_code)?);
        }
        // One scan: rows of repeated ids are kept only from the file chosen for them.
        let rows = unskipped(
            self.events_scan_with(&self.event_columns, lower, true)?
                .filter(only_types)?,
        )?;
        Ok(Self::keep_chosen_copies(rows, &self.repeated)?
            .project(columns)?
            .project(with_code)?)
    }

    /// Whether some measure is computed by the main aggregation over the merged events.
    pub(super) fn aggregates_events(&self) -> bool {
        self.measures.iter().any(|m| !m.aggregates.is_empty())
    }
}

/// The plan finding, among `rows` (with `event_id` and [`FILE_COLUMN`]), the event ids that
/// occur more than once, each with the file whose copy is kept (the path that sorts last).
pub(super) fn repeated_plan(rows: LogicalPlanBuilder) -> datafusion::error::Result<LogicalPlan> {
    rows.aggregate(
        vec![col("event_id")],
        vec![
            count(lit(1i64)).alias("__copies"),
            max(col(FILE_COLUMN)).alias("__keep"),
        ],
    )?
    .filter(col("__copies").gt(lit(1i64)))?
    .project(vec![col("event_id"), col("__keep")])?
    .build()
}

/// The `(event_id, kept file)` pairs of a [`repeated_plan`]'s result.
pub(super) fn repeated_pairs(
    batches: &[datafusion::arrow::array::RecordBatch],
) -> Result<Vec<(String, String)>, Error> {
    let mut pairs = Vec::new();
    for batch in batches {
        let (ids, keep) = (
            cast_to_utf8(batch.column(0))?,
            cast_to_utf8(batch.column(1))?,
        );
        let (ids, keep) = (ids.as_string::<i32>(), keep.as_string::<i32>());
        for i in 0..ids.len() {
            if ids.is_valid(i) && keep.is_valid(i) {
                pairs.push((ids.value(i).to_string(), keep.value(i).to_string()));
            }
        }
    }
    Ok(pairs)
}

impl Compiler<'_> {
    /// The rows of `rows` (with [`FILE_COLUMN`] when `repeated` is not empty) with each
    /// repeated event id kept only from the file chosen for it, [`FILE_COLUMN`] dropped.
    pub(super) fn keep_chosen_copies(
        rows: LogicalPlanBuilder,
        repeated: &[(String, String)],
    ) -> Result<LogicalPlanBuilder, CompileError> {
        if repeated.is_empty() {
            return Ok(rows);
        }
        let columns: Vec<Expr> = rows
            .schema()
            .columns()
            .into_iter()
            .filter(|c| c.name != FILE_COLUMN)
            .map(col)
            .collect();
        let repeated = LogicalPlanBuilder::values(
            repeated
                .iter()
                .map(|(id, file)| vec![lit(id.clone()), lit(file.clone())])
                .collect(),
        )?
        .project(vec![
            col("column1").alias("__repeated_id"),
            col("column2").alias("__keep_file"),
        ])?
        .build()?;
        let kept = col("__repeated_id")
            .is_null()
            .or(col(FILE_COLUMN).eq(col("__keep_file")));
        Ok(rows
            .join(
                repeated,
                JoinType::Left,
                (vec!["event_id"], vec!["__repeated_id"]),
                None,
            )?
            .filter(kept)?
            .project(columns)?)
    }
}
