//! Partial states: how a refresh reuses per-day, per-customer partial aggregates of closed days
//! instead of re-reading their events (where they are kept: `kitle_data::states`).
//!
//! A measure is *stateful* when its aggregate merges exactly across days — `count` and `sum`
//! add, `min`/`max`/`first_time`/`last_time` take the extreme, `avg` is a sum and a count — its
//! `where` filters do not depend on `as_of` (`within_last`, `older_than` stay raw), the store's
//! identity is `customer_id` (stitching can move old anonymous events to a customer when a link
//! lands today), and one member is not being explained. Such a measure is split by day:
//!
//! - its **inner days** are the closed UTC days (`date=` partitions before `as_of`'s day) that
//!   its period covers whole ([`Compiler::inner_days`]): their partials come from states;
//! - its **edge days** (the day of `as_of`, the day a `last` window starts in, the day of a
//!   `since`/`between` bound, and any day whose partition holds rows of another day) are read
//!   raw by the one main aggregation, whose `FILTER` for the measure excludes the inner days.
//!
//! A state is keyed by what it computes without its period ([`Stateful::key`]: event types,
//! `where` filters, measure, zone), so `last 7d` and `last 30d` of the same events share one.
//! [`Compiler::prepare_states`] finds, for every inner day, the live entries of the index that
//! hold the needed keys (verified against their footers), computes the missing ones from that
//! one partition (deduplicated on its own: copies of an event share `ts`, so never cross
//! partitions), writes them and commits the index — before the refresh's plan runs. The plan
//! then unions the raw partial rows with the state rows and merges them per customer
//! ([`Compiler::merge_states`]); everything downstream (defaults, comparisons, ranks) is the
//! same as from scratch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::functions::core::expr_fn::input_file_name;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{ExprFunctionExt, LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{Expr, SessionContext, col, lit};
use futures::StreamExt;
use kitle_data::contract::ContractTable;
use kitle_data::states::{self, StateEntry, StateIndex};
use kitle_data::{Progress, layout};
use serde::Serialize;

use super::state_merge::retarget;
use super::{CID, CompileError, Compiler, FILE_COLUMN};
use crate::definition::{EventCondition, Measure, Op, Period, PropertyFilter};
use crate::error::{Context, Error};

/// Column of the merged partial rows holding the day of a state row (null on raw rows).
pub(super) const DAY: &str = "__day";

/// Column of a state plan counting rows whose `ts` is not on the partition's day.
const STRAY: &str = "__stray";

/// A day with more live entries than this is recomputed whole into one entry.
const MAX_ENTRIES_PER_DAY: usize = 3;

/// How one partial column merges across days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Merge {
    Sum,
    Min,
    Max,
}

/// A stateful measure: its key, what it reads, and the days its states cover.
#[derive(Debug, Clone)]
pub(super) struct Stateful {
    /// The measure's index among the compiler's measures.
    pub(super) index: usize,
    /// What the state computes, as a short hash (shared by measures that differ by period).
    pub(super) key: String,
    pub(super) events: Vec<String>,
    pub(super) filters: Vec<PropertyFilter>,
    /// Raw columns the partials read besides the scan's own.
    pub(super) columns: BTreeSet<String>,
    /// `[from, to)`: the closed days the period covers whole (`from` `None`: no bound).
    pub(super) inner: (Option<NaiveDate>, NaiveDate),
    /// Per partial column (the measure's aggregates in order): its suffix and merge.
    pub(super) parts: Vec<(String, Merge)>,
}

impl Stateful {
    pub(super) fn covers(&self, day: NaiveDate) -> bool {
        self.inner.0.is_none_or(|from| day >= from) && day < self.inner.1
    }

    pub(super) fn state_column(&self, part: usize) -> String {
        format!("s_{}{}", self.key, self.parts[part].0)
    }
}

/// The states a refresh's plan reads, chosen by [`Compiler::prepare_states`].
#[derive(Debug, Clone, Default)]
pub(super) struct StateUse {
    /// State files (paths relative to the store root), one per (day, key) at most.
    pub(super) files: Vec<String>,
    /// Days whose partition holds rows of other days: read raw by every measure.
    pub(super) strays: BTreeSet<NaiveDate>,
}

/// What the partial states did in one refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StateReport {
    /// `incremental` when some measure's closed days came from states, else `full`.
    pub mode: String,
    /// Days whose states were reused as they were.
    pub partitions_reused: u64,
    /// Days whose states were computed from their events in this refresh.
    pub partitions_recomputed: u64,
    /// Bytes of the event and state files the refresh's plans read (DataFusion's Parquet
    /// `bytes_scanned`, summed over every scan of every plan; 0 when the plans ran on a
    /// cluster, whose metrics do not come back).
    pub bytes_read: u64,
    /// Rows the refresh's scans produced (after partition pruning and row-group statistics).
    pub rows_read: u64,
}

impl StateReport {
    /// The report of a refresh that used no state.
    pub fn full() -> Self {
        Self {
            mode: "full".into(),
            ..Self::default()
        }
    }

    /// Adds what the scans of `plan` (once run) read.
    pub fn count_reads(&mut self, plan: &Arc<dyn ExecutionPlan>) {
        let (bytes, rows) = scanned(plan);
        self.bytes_read += bytes;
        self.rows_read += rows;
    }
}

/// Bytes scanned and rows produced by the data source scans of `plan`.
fn scanned(plan: &Arc<dyn ExecutionPlan>) -> (u64, u64) {
    let mut bytes = 0u64;
    let mut rows = 0u64;
    if plan.children().is_empty()
        && let Some(metrics) = plan.metrics()
    {
        let aggregated = metrics.aggregate_by_name();
        bytes += aggregated
            .sum_by_name("bytes_scanned")
            .map(|m| m.as_usize() as u64)
            .unwrap_or(0);
        rows += aggregated.output_rows().unwrap_or(0) as u64;
    }
    for child in plan.children() {
        let (b, r) = scanned(child);
        bytes += b;
        rows += r;
    }
    (bytes, rows)
}

/// Days since 1970-01-01, Arrow's `Date32`.
pub(super) fn date32(day: NaiveDate) -> ScalarValue {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
    ScalarValue::Date32(Some((day - epoch).num_days() as i32))
}

pub(super) fn day_text(day: NaiveDate) -> Expr {
    lit(day.format("%Y-%m-%d").to_string())
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

/// The first day starting at or after `t`.
fn ceil_day(t: DateTime<Utc>) -> NaiveDate {
    let day = t.date_naive();
    if midnight(day) == t {
        day
    } else {
        day.succ_opt().unwrap_or(day)
    }
}

impl Compiler<'_> {
    /// `[from, to)`: the closed days (before `as_of`'s) whose every instant `period` admits;
    /// `None` when there is none.
    pub(super) fn inner_days(&self, period: &Period) -> Option<(Option<NaiveDate>, NaiveDate)> {
        let today = self.as_of.date_naive();
        let (from, to) = match period {
            Period::AllTime => (None, today),
            // `ts > as_of - d`: the day after the window's start is the first whole one.
            Period::Last(d) => (
                (self.as_of - d.to_time_delta()).date_naive().succ_opt(),
                today,
            ),
            // `ts <= as_of - d`: days ending by the cut.
            Period::BeforeLast(d) => (None, (self.as_of - d.to_time_delta()).date_naive()),
            Period::Since(t) => (Some(ceil_day(*t)), today),
            // `from <= ts < to`.
            Period::Between(f, t) => (Some(ceil_day(*f)), t.date_naive().min(today)),
        };
        match from {
            Some(from) if from >= to => None,
            _ => Some((from, to)),
        }
    }

    /// The partition days `period` may read rows of, `[from, to]` (`from` `None`: no bound).
    pub(super) fn period_days(&self, period: &Period) -> (Option<NaiveDate>, NaiveDate) {
        let (_, lower) = self.period(period);
        let today = self.as_of.date_naive();
        let to = match period {
            Period::BeforeLast(d) => (self.as_of - d.to_time_delta()).date_naive(),
            Period::Between(_, t) => t.date_naive().min(today),
            _ => today,
        };
        (lower.map(|l| l.date_naive()), to)
    }

    /// Registers measure `index` (of `e`, whose partials are `aggregates`) as stateful when
    /// states are on and the measure merges exactly across days.
    pub(super) fn register_stateful(
        &mut self,
        index: usize,
        events: &[String],
        e: &EventCondition,
        aggregates: usize,
    ) {
        if !self.incremental || self.only.is_some() || self.stitched() {
            return;
        }
        let relative = e
            .filters
            .iter()
            .any(|f| matches!(f.op, Op::WithinLast | Op::OlderThan));
        let parts: Vec<(String, Merge)> = match &e.measure {
            Measure::Count | Measure::Sum(_) => vec![(String::new(), Merge::Sum)],
            Measure::Avg(_) => vec![("_s".into(), Merge::Sum), ("_n".into(), Merge::Sum)],
            Measure::Min(_) | Measure::FirstTime => vec![(String::new(), Merge::Min)],
            Measure::Max(_) | Measure::LastTime => vec![(String::new(), Merge::Max)],
            Measure::Distinct(_) | Measure::ActiveDays => return,
        };
        let Some(inner) = self.inner_days(&e.period) else {
            return;
        };
        if relative || parts.len() != aggregates {
            return;
        }
        let mut columns: BTreeSet<String> = e.filters.iter().map(|f| f.property.clone()).collect();
        if let Measure::Sum(c) | Measure::Avg(c) | Measure::Min(c) | Measure::Max(c) = &e.measure {
            columns.insert(c.clone());
        }
        // The key holds the types the partials read (the events' schema is the union of
        // every file's: a column's type may change when files land).
        let types: Vec<String> = columns
            .iter()
            .chain(std::iter::once(&"ts".to_string()))
            .map(|c| format!("{c}:{:?}", self.event_type_of(c).ok()))
            .collect();
        let key = states::short_hash(&format!(
            "v{}|{events:?}|{:?}|{:?}|{}|{types:?}",
            states::STATE_FORMAT,
            e.filters,
            e.measure,
            self.tz.name()
        ));
        self.statefuls.push(Stateful {
            index,
            key,
            events: events.to_vec(),
            filters: e.filters.clone(),
            columns,
            inner,
            parts,
        });
    }

    /// The stateful registration of measure `index`, when its states are in use.
    pub(super) fn stateful_of(&self, index: usize) -> Option<&Stateful> {
        self.state_use.as_ref()?;
        self.statefuls.iter().find(|s| s.index == index)
    }

    /// Chooses, computes and commits the states the plan will read (see the module
    /// documentation); returns what it did. Runs before the plan is assembled.
    pub(super) async fn prepare_states(
        &mut self,
        progress: &dyn Progress,
        report: &mut StateReport,
    ) -> Result<(), Error> {
        if self.statefuls.is_empty() {
            return Ok(());
        }
        let store = self.tables.store().clone();
        let index = match states::read_index(&store).await {
            Ok(index) => index,
            Err(e) => {
                tracing::warn!(error = %e, "the partial states' index is unreadable; refreshing without states");
                return Ok(());
            }
        };
        let fingerprints = states::day_fingerprints(self.tables);
        // Per day: the keys some measure needs from it.
        let mut needed: BTreeMap<NaiveDate, BTreeSet<String>> = BTreeMap::new();
        for day in fingerprints.keys() {
            for s in self.statefuls.iter().filter(|s| s.covers(*day)) {
                needed.entry(*day).or_default().insert(s.key.clone());
            }
        }
        let mut chosen = StateUse::default();
        let mut work: Vec<(NaiveDate, Vec<String>, bool)> = Vec::new();
        for (day, keys) in &needed {
            let fingerprint = &fingerprints[day];
            let (files, missing, replace) = self
                .usable_entries(&store, &index, *day, fingerprint, keys)
                .await;
            if missing.is_empty() {
                report.partitions_reused += 1;
            } else {
                work.push((*day, missing, replace));
            }
            if files.is_none() {
                chosen.strays.insert(*day);
            }
            chosen.files.extend(files.unwrap_or_default());
        }
        let mut added: BTreeMap<NaiveDate, Vec<StateEntry>> = BTreeMap::new();
        let mut replaced = Vec::new();
        if !work.is_empty() {
            progress.start("computing states", work.len() as u64);
        }
        // A day's state is one partition's small plan: it runs in this process whatever the
        // engine. (On a cluster, a refresh whose executor was killed during these many small
        // jobs once gave one extra member; a cache kept for weeks is not left to a cluster's
        // task recovery.)
        let local_store = store
            .clone()
            .with_engine(kitle_data::cluster::Engine::Local);
        let local = kitle_data::session::new_context(&local_store);
        self.tables.install_store(&local);
        for (day, keys, replace) in work {
            let fingerprint = &fingerprints[&day];
            let entry = self
                .compute_state(&local, &store, day, fingerprint, &keys, report)
                .await?;
            if entry.stray {
                chosen.strays.insert(day);
            } else {
                chosen.files.push(entry.file.clone());
            }
            if replace {
                replaced.push(day);
            }
            added.entry(day).or_default().push(entry);
            report.partitions_recomputed += 1;
            progress.advance(1);
        }
        if !added.is_empty() || !replaced.is_empty() {
            progress.finish();
            // A cache: a failed commit costs the next refresh the recomputation, not this
            // refresh its result (the files just written are read by name).
            if let Err(e) = states::commit(&store, &added, &replaced, &fingerprints).await {
                tracing::warn!(error = %e, "the partial states could not be committed");
            }
        }
        chosen.files.sort();
        chosen.files.dedup();
        report.mode = "incremental".into();
        self.state_use = Some(chosen);
        // The raw partials tell inner days by their partition.
        self.event_columns
            .insert(layout::EVENTS_PARTITION_COLUMN.to_string());
        Ok(())
    }

    /// For one day: the files of its live, verified entries that hold `keys` (`None` when the
    /// day is stray), the keys still missing, and whether the day is recomputed whole.
    async fn usable_entries(
        &self,
        store: &kitle_data::Store,
        index: &StateIndex,
        day: NaiveDate,
        fingerprint: &str,
        keys: &BTreeSet<String>,
    ) -> (Option<Vec<String>>, Vec<String>, bool) {
        let live = index.live(day, fingerprint);
        if live.iter().any(|e| e.stray) {
            return (None, Vec::new(), false);
        }
        let all = || keys.iter().cloned().collect::<Vec<_>>();
        if live.len() > MAX_ENTRIES_PER_DAY {
            return (Some(Vec::new()), all(), true);
        }
        let mut verified: Vec<&StateEntry> = Vec::new();
        for entry in &live {
            if states::verify(store, day, entry).await {
                verified.push(entry);
            }
        }
        // Two entries holding one key (two refreshes raced): one would count twice.
        let mut seen = BTreeSet::new();
        for entry in &verified {
            for key in &entry.keys {
                if !seen.insert(key.clone()) {
                    return (Some(Vec::new()), all(), true);
                }
            }
        }
        let files = verified
            .iter()
            .filter(|e| e.keys.iter().any(|k| keys.contains(k)))
            .map(|e| e.file.clone())
            .collect();
        let missing = keys
            .iter()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        (Some(files), missing, false)
    }

    /// The raw rows of partition `day` of `types` (no `as_of` bound: the day is closed, and a
    /// row of a later instant makes the day stray), with [`FILE_COLUMN`] when `with_file`.
    fn day_scan(
        &self,
        day: NaiveDate,
        types: &BTreeSet<String>,
        extra: &BTreeSet<String>,
        with_file: bool,
    ) -> Result<LogicalPlanBuilder, CompileError> {
        let source = self.tables.events_source()?;
        let schema = source.schema();
        let mut columns: BTreeSet<String> = [
            CID,
            "event_id",
            "event_type",
            "ts",
            layout::EVENTS_PARTITION_COLUMN,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        columns.extend(extra.iter().cloned());
        let projection: Vec<usize> = columns
            .iter()
            .filter_map(|c| schema.index_of(c).ok())
            .collect();
        let types: Vec<Expr> = types.iter().map(|t| lit(t.clone())).collect();
        let mut filter = col(CID)
            .is_not_null()
            .and(col("event_id").is_not_null())
            .and(col("ts").is_not_null())
            .and(col("event_type").in_list(types, false))
            .and(col(layout::EVENTS_PARTITION_COLUMN).eq(day_text(day)));
        // Erased customers never reach the store again, not even as partials.
        if let Some(kept) = self.tables.not_erased(col(CID)) {
            filter = filter.and(kept);
        }
        let mut scan =
            LogicalPlanBuilder::scan("events", provider_as_source(source), Some(projection))?;
        if with_file {
            let mut with_path: Vec<Expr> = columns
                .iter()
                .filter(|c| schema.index_of(c).is_ok())
                .map(|c| col(Column::from_name(c)))
                .collect();
            with_path.push(input_file_name().alias(FILE_COLUMN));
            scan = scan.project(with_path)?;
        }
        Ok(scan.filter(filter)?)
    }

    /// Computes the state of `keys` for `day` from its partition, writes it, and returns its
    /// entry (a stray entry when the partition holds rows of other days).
    async fn compute_state(
        &self,
        ctx: &SessionContext,
        store: &kitle_data::Store,
        day: NaiveDate,
        fingerprint: &str,
        keys: &[String],
        report: &mut StateReport,
    ) -> Result<StateEntry, Error> {
        let context = || format!("computing the partial states of {day}");
        let mut specs: Vec<&Stateful> = Vec::new();
        for key in keys {
            if let Some(s) = self.statefuls.iter().find(|s| &s.key == key) {
                specs.push(s);
            }
        }
        let types: BTreeSet<String> = specs.iter().flat_map(|s| s.events.clone()).collect();
        let columns: BTreeSet<String> = specs.iter().flat_map(|s| s.columns.clone()).collect();
        let attributed = |e: CompileError| e.into_error("");

        // Copies of an event share `ts`, so the day is deduplicated on its own.
        let files = self
            .tables
            .files(ContractTable::Events)
            .readable
            .iter()
            .filter(|m| {
                self.tables
                    .store()
                    .relative(&m.location)
                    .and_then(|r| layout::partition_date_of(&r))
                    == Some(day)
            })
            .count();
        let mut repeated = Vec::new();
        if files > 1 {
            let rows = self
                .day_scan(day, &types, &BTreeSet::new(), true)
                .map_err(attributed)?;
            let plan = super::scan::repeated_plan(rows).context(context)?;
            let batches = run(ctx, plan, report).await.context(context)?;
            repeated = super::scan::repeated_pairs(&batches)?;
        }
        let rows = self
            .day_scan(day, &types, &columns, !repeated.is_empty())
            .map_err(attributed)?;
        let rows = Self::keep_chosen_copies(rows, &repeated).map_err(attributed)?;

        let mut aggregates = Vec::new();
        let mut output = vec![col(CID), lit(date32(day)).alias(DAY)];
        for s in &specs {
            let matcher = self
                .types_and_filters(&s.events, &s.filters)
                .map_err(attributed)?;
            let partials = &self.measures[s.index].aggregates;
            for (part, aggregate) in partials.iter().enumerate() {
                let name = s.state_column(part);
                aggregates.push(retarget(aggregate, matcher.clone(), &name).map_err(attributed)?);
                output.push(col(name));
            }
        }
        let (start, end) = (midnight(day), midnight(day.succ_opt().unwrap_or(day)));
        let off_day = col("ts")
            .lt(super::values::instant_literal(start))
            .or(col("ts").gt_eq(super::values::instant_literal(end)));
        aggregates.push(count(lit(1i64)).filter(off_day).build()?.alias(STRAY));
        output.push(col(STRAY));
        let plan = rows
            .aggregate(vec![col(CID)], aggregates)?
            .project(output)?
            .build()?;
        let schema: Arc<datafusion::arrow::datatypes::Schema> =
            Arc::new(plan.schema().as_arrow().clone());
        let batches = run(ctx, plan, report).await.context(context)?;
        let stray_index = schema.fields().len() - 1;
        let strays: i64 = batches
            .iter()
            .map(|b| {
                let c = b.column(stray_index).as_primitive::<Int64Type>();
                c.iter().flatten().sum::<i64>()
            })
            .sum();
        if strays > 0 {
            return Ok(states::stray_entry(fingerprint));
        }
        let keep: Vec<usize> = (0..stray_index).collect();
        let mut written: Vec<RecordBatch> = Vec::new();
        for batch in &batches {
            written.push(batch.project(&keep).map_err(|e| Error::Engine {
                context: context(),
                source: e.into(),
            })?);
        }
        if written.is_empty() {
            let empty =
                RecordBatch::new_empty(schema)
                    .project(&keep)
                    .map_err(|e| Error::Engine {
                        context: context(),
                        source: e.into(),
                    })?;
            written.push(empty);
        }
        let mut sorted_keys = keys.to_vec();
        sorted_keys.sort();
        Ok(states::write(store, day, fingerprint, &sorted_keys, &written).await?)
    }
}

/// Runs `plan` to completion, counting what its scans read into `report`.
async fn run(
    ctx: &SessionContext,
    plan: LogicalPlan,
    report: &mut StateReport,
) -> datafusion::error::Result<Vec<RecordBatch>> {
    let physical = ctx.state().create_physical_plan(&plan).await?;
    let mut stream =
        datafusion::physical_plan::execute_stream(Arc::clone(&physical), ctx.task_ctx())?;
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        batches.push(batch?);
    }
    report.count_reads(&physical);
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_start_at_or_after_an_instant() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        assert_eq!(ceil_day(midnight(day)), day);
        assert_eq!(
            ceil_day(midnight(day) + chrono::TimeDelta::microseconds(1)),
            day.succ_opt().unwrap()
        );
    }
}
