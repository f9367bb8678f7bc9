//! Compiling segment definitions into one DataFusion plan per refresh.
//!
//! The shape of the plan is what makes a refresh cheap:
//!
//! 1. every event condition becomes a per-customer aggregate (count, sum, avg, min, max,
//!    distinct, active days, first/last time) whose `FILTER` is the condition's event types,
//!    `where` filters and period; **all** of them, over all segments of the refresh, are
//!    computed in **one** aggregation over `events` grouped by customer — one scan, reading only
//!    the columns and the date partitions that some condition needs. Identical conditions in
//!    different segments are computed once;
//! 2. before that aggregation, copies of a redelivered event are merged (grouped by customer and
//!    `event_id`), so every event counts once;
//! 3. the per-customer table is left-joined to the universe (the customers as of `as_of`), so
//!    customers without events get 0 or "missing" as the spec says;
//! 4. `top_percent`/`bottom_percent` are window functions over that table, and each segment is
//!    a boolean expression over it, `segment` references inlined (cycles were refused by
//!    validation);
//! 5. `not_followed_by` adds a second, date-pruned pass over the events of the customers who
//!    have the first event, and a `sql` condition its own query over the as-of tables.
//!
//! Only DataFusion built-ins and listing-table scans of the store are used, so the same plan
//! can run on any executor that can scan the store.

mod identity;
mod predicate;
mod sequence;
mod values;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::common::{Column, JoinType};
use datafusion::datasource::provider_as_source;
use datafusion::execution::context::SQLOptions;
use datafusion::functions::core::expr_fn::input_file_name;
use datafusion::functions::expr_fn::{
    coalesce, concat, encode, sha256, strpos, substring, to_local_time,
};
use datafusion::functions_aggregate::expr_fn::{count, max, min, sum};
use datafusion::functions_window::expr_fn::percent_rank;
use datafusion::logical_expr::{ExprFunctionExt, LogicalPlan, LogicalPlanBuilder, cast, when};
use datafusion::prelude::{Expr, SessionContext, col, lit, not};
use futures::StreamExt;
use kitle_data::contract::ContractTable;
use kitle_data::layout;
use kitle_data::tables::ContractTables;

use crate::definition::{
    Condition, EventCondition, FollowUp, Measure, Op, Period, PropertyFilter, SegmentDefinition,
    Value,
};
use crate::error::{Context, Error};
use predicate::{Operand, apply};
use values::instant_literal;

/// Why a definition could not be compiled (wrapped into [`Error::Compile`] with its segment),
/// or — when `failure` is set — the store failed while the plan was being built (listing the
/// events' files), which is no fault of the definition's.
#[derive(Debug)]
pub struct CompileError {
    message: String,
    failure: Option<Box<Error>>,
}

impl CompileError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            failure: None,
        }
    }

    /// The planner error this is: [`Error::Compile`] of `segment`, or the store's failure.
    fn into_error(self, segment: &str) -> Error {
        match self.failure {
            Some(failure) => *failure,
            None => Error::Compile {
                segment: segment.to_string(),
                message: self.message,
            },
        }
    }
}

impl From<datafusion::error::DataFusionError> for CompileError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        CompileError::new(e.to_string())
    }
}

/// The plan of one refresh and what its columns mean.
#[derive(Debug)]
pub struct RefreshPlan {
    /// `customer_id`, then one boolean column per segment of [`Self::segments`], in order.
    pub plan: LogicalPlan,
    /// The segments the boolean columns stand for.
    pub segments: Vec<String>,
}

/// Name of the boolean column of the `i`-th target segment.
fn segment_column(i: usize) -> String {
    format!("__segment_{i}")
}

/// Compiles `targets` (ids of `definitions`; every segment they refer to must be among
/// `definitions`) into one plan at `as_of`. `ctx` must have the store installed and, when a
/// `sql` condition is present, the as-of `events` and `customers` registered (see
/// [`ContractTables::register_as_of`]).
pub async fn build_refresh_plan(
    ctx: &SessionContext,
    tables: &ContractTables,
    definitions: &[SegmentDefinition],
    targets: &[String],
    as_of: DateTime<Utc>,
    tz: Tz,
) -> Result<RefreshPlan, Error> {
    plan_segments(ctx, tables, definitions, targets, as_of, tz, true).await
}

/// Checks that `targets` compile, without reading any event data: the plan is built as for a
/// refresh but without searching for redelivered events (validation wants this to be cheap).
pub async fn check_plan(
    ctx: &SessionContext,
    tables: &ContractTables,
    definitions: &[SegmentDefinition],
    targets: &[String],
    as_of: DateTime<Utc>,
    tz: Tz,
) -> Result<(), Error> {
    plan_segments(ctx, tables, definitions, targets, as_of, tz, false)
        .await
        .map(|_| ())
}

async fn plan_segments(
    ctx: &SessionContext,
    tables: &ContractTables,
    definitions: &[SegmentDefinition],
    targets: &[String],
    as_of: DateTime<Utc>,
    tz: Tz,
    search_repeated: bool,
) -> Result<RefreshPlan, Error> {
    let mut compiler = Compiler::new(tables, definitions, as_of, tz);
    let mut outputs = Vec::new();
    for (i, id) in targets.iter().enumerate() {
        let expr = compiler.segment(ctx, id).await?;
        outputs.push(expr.alias(segment_column(i)));
    }
    if search_repeated {
        compiler.find_repeated(ctx).await?;
    }
    let plan = compiler
        .assemble(outputs)
        .map_err(|e| e.into_error(&targets.join(", ")))?;
    Ok(RefreshPlan {
        plan,
        segments: targets.to_vec(),
    })
}

/// Evaluates every segment of `definitions` at `as_of` and returns, for each, its members'
/// ids in ascending order. Segments referred to must be among `definitions`.
pub async fn evaluate(
    tables: &ContractTables,
    definitions: &[SegmentDefinition],
    as_of: DateTime<Utc>,
    tz: Tz,
) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let ctx = kitle_data::session::new_context(tables.store());
    tables.register_as_of(&ctx, as_of)?;
    let targets: Vec<String> = definitions.iter().map(|d| d.id.clone()).collect();
    let refresh = build_refresh_plan(&ctx, tables, definitions, &targets, as_of, tz).await?;
    members_of(&ctx, refresh).await
}

/// Runs a refresh plan and collects each segment's members, sorted.
pub async fn members_of(
    ctx: &SessionContext,
    refresh: RefreshPlan,
) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let mut members: Vec<Vec<String>> = vec![Vec::new(); refresh.segments.len()];
    let context = || format!("evaluating {}", refresh.segments.join(", "));
    let mut stream = ctx
        .execute_logical_plan(refresh.plan)
        .await
        .context(context)?
        .execute_stream()
        .await
        .context(context)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.context(context)?;
        let ids = cast_to_utf8(batch.column(0))?;
        let ids = ids.as_string::<i32>();
        for (i, list) in members.iter_mut().enumerate() {
            let flags = batch.column(i + 1).as_boolean();
            for row in 0..batch.num_rows() {
                if flags.is_valid(row) && flags.value(row) && ids.is_valid(row) {
                    list.push(ids.value(row).to_string());
                }
            }
        }
    }
    Ok(refresh
        .segments
        .into_iter()
        .zip(members)
        .map(|(id, mut list)| {
            list.sort_unstable();
            (id, list)
        })
        .collect())
}

/// One condition of a definition as [`build_explain_plan`] lays it out: its JSON path, the
/// condition, and the index `i` of its columns `__held_i` (boolean), `__value_i` (what was
/// measured: the attribute's value, the event measure, the bucket; null when the condition
/// measures nothing itself) and `__extra_i` (the percent rank of a `top_percent` /
/// `bottom_percent`, the number of follow-ups of a `not_followed_by`; else null).
#[derive(Debug, Clone)]
pub struct ExplainedCondition {
    /// JSON path of the condition in the definition (`condition`, `condition.all[1]`, …).
    pub path: String,
    /// The condition.
    pub condition: Condition,
}

/// A plan answering "why is this customer (not) in the segment": one row (none when the
/// customer is not in the universe at `as_of`) with `customer_id`, `__segment_0`, then the
/// columns of each of [`Self::conditions`] in order.
#[derive(Debug)]
pub struct ExplainPlan {
    /// The plan.
    pub plan: LogicalPlan,
    /// Every condition of the definition, depth first.
    pub conditions: Vec<ExplainedCondition>,
}

/// Compiles `target` (one of `definitions`, which hold everything it refers to) into an
/// [`ExplainPlan`] for `customer_id` at `as_of`. Reads only that customer's rows unless some
/// segment of the plan ranks by percent (ranks need everyone).
pub async fn build_explain_plan(
    ctx: &SessionContext,
    tables: &ContractTables,
    definitions: &[SegmentDefinition],
    target: &str,
    customer_id: &str,
    as_of: DateTime<Utc>,
    tz: Tz,
) -> Result<ExplainPlan, Error> {
    let ranks = definitions.iter().any(|d| {
        let mut found = false;
        d.condition.walk("condition", &mut |_, c| {
            if let Condition::Event(e) = c
                && e.comparison
                    .as_ref()
                    .is_some_and(|c| matches!(c.op, Op::TopPercent | Op::BottomPercent))
            {
                found = true;
            }
        });
        found
    });
    let definition = definitions
        .iter()
        .find(|d| d.id == target)
        .ok_or_else(|| Error::NotFound(target.to_string()))?;
    let mut conditions = Vec::new();
    definition.condition.walk("condition", &mut |path, c| {
        conditions.push(ExplainedCondition {
            path: path.to_string(),
            condition: c.clone(),
        });
    });

    let mut compiler = Compiler::new(tables, definitions, as_of, tz);
    compiler.explain_steps = true;
    if !ranks {
        compiler.only = Some(customer_id.to_string());
    }
    let attributed = |segment: &str| {
        let segment = segment.to_string();
        move |e: Failure| match e {
            Failure::Compile(c) => c.into_error(&segment),
            Failure::Other(e) => e,
        }
    };
    let mut outputs = vec![
        compiler
            .segment(ctx, target)
            .await?
            .alias(segment_column(0)),
    ];
    for (i, item) in conditions.iter().enumerate() {
        let held = Box::pin(compiler.condition(ctx, &item.condition))
            .await
            .map_err(attributed(target))?;
        let (value, extra) = compiler
            .measured(&item.condition)
            .map_err(|e| attributed(target)(Failure::Compile(e)))?;
        outputs.push(held.alias(format!("__held_{i}")));
        outputs.push(value.alias(format!("__value_{i}")));
        outputs.push(extra.alias(format!("__extra_{i}")));
    }
    compiler.find_repeated(ctx).await?;
    let plan = compiler
        .assemble(outputs)
        .map_err(|e| e.into_error(target))?;
    let plan = LogicalPlanBuilder::from(plan)
        .filter(col(CID).eq(lit(customer_id.to_string())))
        .and_then(|b| b.build())?;
    Ok(ExplainPlan { plan, conditions })
}

fn cast_to_utf8(a: &Arc<dyn Array>) -> Result<Arc<dyn Array>, Error> {
    datafusion::arrow::compute::cast(a, &DataType::Utf8).map_err(|e| Error::Engine {
        context: "reading customer ids of a result".into(),
        source: datafusion::error::DataFusionError::Internal(e.to_string()),
    })
}

/// An aggregate over the merged events, and the per-customer value built from it.
struct MeasureSpec {
    /// Aggregate expressions, aliased to their column names.
    aggregates: Vec<Expr>,
    /// The measure's value over the joined table (defaults applied).
    value: Expr,
    /// The type the language compares it as.
    data_type: DataType,
}

/// A `not_followed_by` condition's second pass.
struct FollowSpec {
    plan: LogicalPlan,
    last: String,
    followed: String,
    within: chrono::TimeDelta,
}

struct Compiler<'a> {
    tables: &'a ContractTables,
    definitions: HashMap<&'a str, &'a SegmentDefinition>,
    as_of: DateTime<Utc>,
    tz: Tz,
    customers: SchemaRef,
    events: SchemaRef,
    attributes: BTreeSet<String>,
    event_columns: BTreeSet<String>,
    event_types: BTreeSet<String>,
    type_codes: BTreeMap<String, i32>,
    /// Event ids that occur more than once among the rows the measures read, each with the
    /// file whose copy is kept (the path that sorts last).
    repeated: Vec<(String, String)>,
    /// Lower bound of the events any condition needs: `None` once some condition needs all.
    earliest: Option<Option<DateTime<Utc>>>,
    measures: Vec<MeasureSpec>,
    measure_keys: HashMap<String, usize>,
    percents: Vec<(usize, String)>,
    percent_keys: HashMap<usize, usize>,
    follows: Vec<FollowSpec>,
    /// The passes of `distinct` / `active_days` measures: per customer, the count, with the
    /// name of the plan's customer column.
    distincts: Vec<(LogicalPlan, String)>,
    follow_keys: HashMap<String, usize>,
    sqls: Vec<(LogicalPlan, String)>,
    sql_keys: HashMap<String, usize>,
    compiled: HashMap<String, Expr>,
    sequences: Vec<sequence::SequenceSpec>,
    sequence_keys: HashMap<String, usize>,
    /// Explaining: also compute when each step of a sequence was first reached.
    explain_steps: bool,
    /// When set, only this customer's rows are read (explaining one member; never with
    /// percent ranks, which need the whole universe).
    only: Option<String>,
}

const CID: &str = "customer_id";

/// Column holding the path of the file an event row was read from.
const FILE_COLUMN: &str = "__event_file";

/// Column of the merged event rows holding the event type's integer code.
const TYPE_CODE: &str = "__type_code";

impl<'a> Compiler<'a> {
    fn new(
        tables: &'a ContractTables,
        definitions: &'a [SegmentDefinition],
        as_of: DateTime<Utc>,
        tz: Tz,
    ) -> Self {
        Self {
            tables,
            definitions: definitions.iter().map(|d| (d.id.as_str(), d)).collect(),
            as_of,
            tz,
            customers: tables.schema(ContractTable::Customers),
            events: tables.schema(ContractTable::Events),
            attributes: BTreeSet::new(),
            event_columns: BTreeSet::new(),
            event_types: BTreeSet::new(),
            type_codes: BTreeMap::new(),
            repeated: Vec::new(),
            earliest: None,
            measures: Vec::new(),
            measure_keys: HashMap::new(),
            percents: Vec::new(),
            percent_keys: HashMap::new(),
            follows: Vec::new(),
            distincts: Vec::new(),
            follow_keys: HashMap::new(),
            sqls: Vec::new(),
            sql_keys: HashMap::new(),
            compiled: HashMap::new(),
            sequences: Vec::new(),
            sequence_keys: HashMap::new(),
            explain_steps: false,
            only: None,
        }
    }

    /// The boolean (never null) expression of segment `id` over the joined table.
    async fn segment(&mut self, ctx: &SessionContext, id: &str) -> Result<Expr, Error> {
        if let Some(e) = self.compiled.get(id) {
            return Ok(e.clone());
        }
        let def = *self.definitions.get(id).ok_or_else(|| Error::Compile {
            segment: id.to_string(),
            message: "the segment is not among the definitions of this refresh".into(),
        })?;
        let expr = Box::pin(self.condition(ctx, &def.condition))
            .await
            .map_err(|e| match e {
                Failure::Compile(c) => c.into_error(id),
                Failure::Other(e) => e,
            })?;
        self.compiled.insert(id.to_string(), expr.clone());
        Ok(expr)
    }

    async fn condition(
        &mut self,
        ctx: &SessionContext,
        condition: &Condition,
    ) -> Result<Expr, Failure> {
        Ok(match condition {
            Condition::All(items) | Condition::Any(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for c in items {
                    parts.push(Box::pin(self.condition(ctx, c)).await?);
                }
                let all = matches!(condition, Condition::All(_));
                parts
                    .into_iter()
                    .reduce(|a, b| if all { a.and(b) } else { a.or(b) })
                    .ok_or_else(|| CompileError::new("an empty all/any"))?
            }
            Condition::Not(inner) => not(Box::pin(self.condition(ctx, inner)).await?),
            Condition::Segment(id) => Box::pin(self.segment(ctx, id))
                .await
                .map_err(Failure::Other)?,
            Condition::Bucket { salt, from, to } => {
                let b = bucket(salt);
                b.clone()
                    .gt_eq(lit(i64::from(*from)))
                    .and(b.lt(lit(i64::from(*to))))
            }
            Condition::Sql(query) => self.sql(ctx, query).await?,
            Condition::Attribute(a) => {
                let data_type = self.customer_type(&a.attribute)?;
                self.attributes.insert(a.attribute.clone());
                let operand = Operand {
                    expr: col(Column::from_name(&a.attribute)),
                    data_type: &data_type,
                    name: &a.attribute,
                };
                apply(
                    operand,
                    a.op,
                    a.value.as_ref(),
                    a.ignore_case,
                    self.as_of,
                    self.tz,
                )?
                .is_true()
            }
            Condition::Event(e) => self.event(e)?,
            Condition::Sequence(s) => self.sequence(s),
        })
    }

    /// What `condition` measured (and a second figure), as expressions over the joined table,
    /// for explaining a member. Called after the condition itself was compiled, so the
    /// measures, ranks and follow-up passes it needs are already registered (and are found
    /// again by their keys).
    fn measured(&mut self, condition: &Condition) -> Result<(Expr, Expr), CompileError> {
        let none = || lit(datafusion::common::ScalarValue::Null);
        Ok(match condition {
            Condition::Attribute(a) => (col(Column::from_name(&a.attribute)), none()),
            Condition::Bucket { salt, .. } => (bucket(salt), none()),
            Condition::Sequence(s) => {
                let i = self.sequence_index(s);
                let n = s.steps.len();
                let steps: Vec<Expr> = (1..=n)
                    .map(|k| {
                        sequence::as_instant(col(if k == n {
                            sequence::done_column(i)
                        } else {
                            sequence::reached_column(i, k)
                        }))
                    })
                    .collect();
                (
                    sequence::as_instant(col(sequence::done_column(i))),
                    datafusion::functions_nested::expr_fn::make_array(steps),
                )
            }
            Condition::Event(e) => match &e.not_followed_by {
                Some(follow) => {
                    let index = self.follow(e, follow)?;
                    let spec = &self.follows[index];
                    (
                        col(spec.last.clone()),
                        coalesce(vec![col(spec.followed.clone()), lit(0i64)]),
                    )
                }
                None => {
                    let index = self.measure(e)?;
                    let rank = match self.percent_keys.get(&index) {
                        Some(i) => col(self.percents[*i].1.clone()),
                        None => none(),
                    };
                    (col(measure_column(index)), rank)
                }
            },
            _ => (none(), none()),
        })
    }

    fn customer_type(&self, name: &str) -> Result<DataType, CompileError> {
        self.customers
            .field_with_name(name)
            .map(|f| f.data_type().clone())
            .map_err(|_| CompileError::new(format!("customers has no column {name}")))
    }

    fn event_type_of(&self, name: &str) -> Result<DataType, CompileError> {
        self.events
            .field_with_name(name)
            .map(|f| f.data_type().clone())
            .map_err(|_| CompileError::new(format!("events has no column {name}")))
    }

    /// `event_type IN (…) AND where… AND period`, over event rows.
    fn matcher(
        &mut self,
        events: &[String],
        filters: &[PropertyFilter],
        period: &Period,
    ) -> Result<Expr, CompileError> {
        self.event_types.extend(events.iter().cloned());
        // Over the merged rows, the type is compared as a small integer code (computed once
        // per row) rather than as text in every aggregate's filter.
        let codes: Vec<Expr> = events.iter().map(|t| lit(self.type_code(t))).collect();
        let mut expr = col(TYPE_CODE).in_list(codes, false);
        if !filters.is_empty() {
            expr = expr.and(self.types_and_filters(&[], filters)?);
        }
        let read: Vec<String> = filters.iter().map(|f| self.stored(&f.property)).collect();
        self.event_columns.extend(read);
        let (condition, lower) = self.period(period);
        if let Some(c) = condition {
            expr = expr.and(c);
        }
        self.earliest = Some(match self.earliest {
            None => lower,
            Some(None) => None,
            Some(Some(current)) => lower.map(|l| l.min(current)),
        });
        Ok(expr)
    }

    /// `event_type IN (events)` and every `where` filter, over event rows.
    fn types_and_filters(
        &self,
        events: &[String],
        filters: &[PropertyFilter],
    ) -> Result<Expr, CompileError> {
        let types: Vec<Expr> = events.iter().map(|t| lit(t.clone())).collect();
        let mut expr = if types.is_empty() {
            lit(true)
        } else {
            col("event_type").in_list(types, false)
        };
        for f in filters {
            let data_type = self.event_type_of(&f.property)?;
            let operand = Operand {
                expr: col(Column::from_name(self.stored(&f.property))),
                data_type: &data_type,
                name: &f.property,
            };
            expr = expr.and(
                apply(
                    operand,
                    f.op,
                    f.value.as_ref(),
                    f.ignore_case,
                    self.as_of,
                    self.tz,
                )?
                .is_true(),
            );
        }
        Ok(expr)
    }

    /// The integer code of an event type in the merged rows' [`TYPE_CODE`] column.
    fn type_code(&mut self, event_type: &str) -> i32 {
        let next = self.type_codes.len() as i32;
        *self
            .type_codes
            .entry(event_type.to_string())
            .or_insert(next)
    }

    /// The period as a condition on `ts` (beyond `ts <= as_of`, which every scan has), and the
    /// earliest instant it admits (`None`: no bound).
    fn period(&self, period: &Period) -> (Option<Expr>, Option<DateTime<Utc>>) {
        let ts = || col("ts");
        match period {
            Period::AllTime => (None, None),
            Period::Last(d) => {
                let from = self.as_of - d.to_time_delta();
                (Some(ts().gt(instant_literal(from))), Some(from))
            }
            Period::BeforeLast(d) => (
                Some(ts().lt_eq(instant_literal(self.as_of - d.to_time_delta()))),
                None,
            ),
            Period::Since(t) => (Some(ts().gt_eq(instant_literal(*t))), Some(*t)),
            Period::Between(from, to) => (
                Some(
                    ts().gt_eq(instant_literal(*from))
                        .and(ts().lt(instant_literal(*to))),
                ),
                Some(*from),
            ),
        }
    }

    fn event(&mut self, e: &EventCondition) -> Result<Expr, CompileError> {
        if let Some(follow) = &e.not_followed_by {
            return self.not_followed_by(e, follow);
        }
        let index = self.measure(e)?;
        let value = col(measure_column(index));
        let comparison = e
            .effective_comparison()
            .ok_or_else(|| CompileError::new("an event condition without a comparison"))?;
        match comparison.op {
            Op::TopPercent | Op::BottomPercent => {
                let Value::Number(v) = &comparison.value else {
                    return Err(CompileError::new("a percent needs a number"));
                };
                let rank = self.percent(index);
                // Both sides in IEEE 754 doubles, exactly as the spec writes them.
                let share = v.to_f64() / 100.0;
                let p = col(rank);
                let test = if comparison.op == Op::TopPercent {
                    p.gt_eq(lit(1.0 - share))
                } else {
                    p.lt_eq(lit(share))
                };
                Ok(value.is_not_null().and(test.is_true()))
            }
            op => {
                let data_type = self.measures[index].data_type.clone();
                let operand = Operand {
                    expr: value,
                    data_type: &data_type,
                    name: e.measure.name(),
                };
                Ok(apply(
                    operand,
                    op,
                    Some(&comparison.value),
                    false,
                    self.as_of,
                    self.tz,
                )?
                .is_true())
            }
        }
    }

    /// Registers (or finds) the aggregate of an event condition's measure; returns its index.
    fn measure(&mut self, e: &EventCondition) -> Result<usize, CompileError> {
        let mut events = e.events.clone();
        events.sort();
        events.dedup();
        let key = format!(
            "{:?}|{:?}|{:?}|{:?}",
            events, e.filters, e.period, e.measure
        );
        if let Some(i) = self.measure_keys.get(&key) {
            return Ok(*i);
        }
        let index = self.measures.len();
        // Distinct values are counted by their own pass (see `distinct_pass`): they add
        // nothing to the main aggregation, nor widen its scan.
        let matcher = if matches!(e.measure, Measure::Distinct(_) | Measure::ActiveDays) {
            lit(true)
        } else {
            self.matcher(&events, &e.filters, &e.period)?
        };
        let a = |suffix: &str| format!("__agg_{index}{suffix}");
        let zero_if_missing = |name: String| coalesce(vec![col(name), lit(0i64)]);
        let spec = match &e.measure {
            Measure::Count => MeasureSpec {
                aggregates: vec![count(lit(1i64)).filter(matcher).build()?.alias(a(""))],
                value: zero_if_missing(a("")),
                data_type: DataType::Int64,
            },
            Measure::Sum(c) => {
                let t = self.event_type_of(c)?;
                self.event_columns.insert(self.stored(c));
                MeasureSpec {
                    aggregates: vec![
                        sum(col(Column::from_name(self.stored(c))))
                            .filter(matcher)
                            .build()?
                            .alias(a("")),
                    ],
                    value: zero_if_missing(a("")),
                    data_type: t,
                }
            }
            Measure::Min(c) | Measure::Max(c) => {
                let t = self.event_type_of(c)?;
                self.event_columns.insert(self.stored(c));
                let column = col(Column::from_name(self.stored(c)));
                let agg = if matches!(e.measure, Measure::Min(_)) {
                    min(column)
                } else {
                    max(column)
                };
                MeasureSpec {
                    aggregates: vec![agg.filter(matcher).build()?.alias(a(""))],
                    value: col(a("")),
                    data_type: t,
                }
            }
            Measure::Avg(c) => {
                let t = self.event_type_of(c)?;
                self.event_columns.insert(self.stored(c));
                let column = col(Column::from_name(self.stored(c)));
                // The double nearest to the exact sum over the count: sum the unscaled
                // integers exactly, then divide once.
                let (numerator, scale) = match t {
                    DataType::Decimal128(_, s) | DataType::Decimal256(_, s) if s >= 0 => (
                        cast(column.clone() * lit(10i64.pow(s as u32)), DataType::Int64),
                        s as u32,
                    ),
                    DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                        (cast(column.clone(), DataType::Float64), 0)
                    }
                    _ => (cast(column.clone(), DataType::Int64), 0),
                };
                let n = a("_n");
                let s = a("_s");
                let divisor =
                    cast(col(n.clone()), DataType::Float64) * lit(10f64.powi(scale as i32));
                MeasureSpec {
                    aggregates: vec![
                        sum(numerator)
                            .filter(matcher.clone())
                            .build()?
                            .alias(s.clone()),
                        count(column).filter(matcher).build()?.alias(n.clone()),
                    ],
                    value: when(
                        col(n).gt(lit(0i64)),
                        cast(col(s), DataType::Float64) / divisor,
                    )
                    .end()?,
                    data_type: DataType::Float64,
                }
            }
            Measure::Distinct(c) => {
                self.event_type_of(c)?;
                let value = col(Column::from_name(self.stored(c)));
                let mut read = filter_columns(&e.filters);
                read.insert(c.clone());
                self.distinct_pass(index, &events, e, value, read)?
            }
            Measure::ActiveDays => {
                let value = self.local_day(col("ts"));
                let read = filter_columns(&e.filters);
                self.distinct_pass(index, &events, e, value, read)?
            }
            Measure::FirstTime | Measure::LastTime => {
                let agg = if e.measure == Measure::FirstTime {
                    min(col("ts"))
                } else {
                    max(col("ts"))
                };
                MeasureSpec {
                    aggregates: vec![agg.filter(matcher).build()?.alias(a(""))],
                    value: col(a("")),
                    data_type: kitle_data::contract::timestamp_type(),
                }
            }
        };
        self.measures.push(spec);
        self.measure_keys.insert(key, index);
        Ok(index)
    }

    /// The calendar day of `ts` in the store's zone.
    fn local_day(&self, ts: Expr) -> Expr {
        if self.tz == Tz::UTC {
            return cast(ts, DataType::Date32);
        }
        let zoned = cast(
            ts,
            DataType::Timestamp(TimeUnit::Microsecond, Some(self.tz.name().into())),
        );
        cast(to_local_time(vec![zoned]), DataType::Date32)
    }

    /// A `distinct` or `active_days` measure (`index`): its own pass over the events that
    /// deduplicates `(customer, value)` pairs first and then counts them per customer.
    ///
    /// A per-customer distinct accumulator keeps one hash set per customer (a million sets,
    /// gigabytes); a grouping by the pair is one compact hash table that can spill, and the
    /// count over it is a plain one. Redelivered copies need no merging here: a copy carries
    /// the same value, so it never adds a distinct one. `read` are the raw columns the filters
    /// and the value need.
    fn distinct_pass(
        &mut self,
        index: usize,
        events: &[String],
        e: &EventCondition,
        value: Expr,
        read: BTreeSet<String>,
    ) -> Result<MeasureSpec, CompileError> {
        let mut matcher = self.types_and_filters(events, &e.filters)?;
        let (period, lower) = self.period(&e.period);
        if let Some(period) = period {
            matcher = matcher.and(period);
        }
        let cid = format!("__distinct_{index}_cid");
        let pair = format!("__distinct_{index}_value");
        let counted = format!("__agg_{index}");
        let plan = self
            .events_scan(&read, lower)?
            .filter(matcher)?
            .project(vec![col(CID), value.alias(pair.clone())])?
            .filter(col(pair.clone()).is_not_null())?
            .aggregate(vec![col(CID), col(pair)], Vec::<Expr>::new())?
            .aggregate(vec![col(CID)], vec![count(lit(1i64)).alias(counted.clone())])?
            .project(vec![col(CID).alias(cid.clone()), col(counted.clone())])?
            .build()?;
        self.distincts.push((plan, cid));
        Ok(MeasureSpec {
            aggregates: Vec::new(),
            value: coalesce(vec![col(counted), lit(0i64)]),
            data_type: DataType::Int64,
        })
    }

    /// The percent-rank column of measure `index` (computed once per measure).
    fn percent(&mut self, index: usize) -> String {
        if let Some(i) = self.percent_keys.get(&index) {
            return self.percents[*i].1.clone();
        }
        let name = format!("__rank_{index}");
        self.percent_keys.insert(index, self.percents.len());
        self.percents.push((index, name.clone()));
        name
    }

    /// Registers (or finds) the second pass of a `not_followed_by` condition; returns its index.
    fn follow(&mut self, e: &EventCondition, follow: &FollowUp) -> Result<usize, CompileError> {
        let mut events = e.events.clone();
        events.sort();
        let key = format!("{:?}|{:?}|{:?}|{:?}", events, e.filters, e.period, follow);
        if let Some(i) = self.follow_keys.get(&key) {
            return Ok(*i);
        }
        let index = self.follows.len();
        let spec = self.follow_plan(index, &events, e, follow)?;
        self.follows.push(spec);
        self.follow_keys.insert(key, index);
        Ok(index)
    }

    fn not_followed_by(
        &mut self,
        e: &EventCondition,
        follow: &FollowUp,
    ) -> Result<Expr, CompileError> {
        let index = self.follow(e, follow)?;
        let spec = &self.follows[index];
        let deadline = instant_literal(self.as_of - spec.within);
        Ok(col(spec.last.clone())
            .lt_eq(deadline)
            .is_true()
            .and(col(spec.followed.clone()).eq(lit(0i64)).is_true()))
    }

    /// Per customer with a first event: the latest one (`last`) and how many follow-ups came
    /// within the window after it (`followed`).
    fn follow_plan(
        &mut self,
        index: usize,
        events: &[String],
        e: &EventCondition,
        follow: &FollowUp,
    ) -> Result<FollowSpec, CompileError> {
        let within = follow.within.to_time_delta();
        // The first events, latest per customer.
        let mut first_matcher = self.types_and_filters(events, &e.filters)?;
        let (period, lower) = self.period(&e.period);
        if let Some(period) = period {
            first_matcher = first_matcher.and(period);
        }
        let first_columns = filter_columns(&e.filters);
        let last = format!("__follow_{index}_last");
        let cid = format!("__follow_{index}_cid");
        let firsts = self
            .events_scan(&first_columns, lower)?
            .filter(first_matcher)?
            .aggregate(vec![col(CID)], vec![max(col("ts")).alias(last.clone())])?
            .project(vec![col(CID).alias(cid.clone()), col(last.clone())])?
            .build()?;
        // The follow-ups, from the first possible first event on.
        let follow_matcher = self.types_and_filters(&follow.events, &follow.filters)?;
        let fts = format!("__follow_{index}_ts");
        let fcid = format!("__follow_{index}_fcid");
        let follow_ups = self
            .events_scan(&filter_columns(&follow.filters), lower)?
            .filter(follow_matcher)?
            .project(vec![
                col(CID).alias(fcid.clone()),
                col("ts").alias(fts.clone()),
            ])?
            .build()?;
        let followed = format!("__follow_{index}_n");
        let window = col(fts.clone())
            .gt(col(last.clone()))
            .and(col(fts.clone()).lt_eq(
                col(last.clone())
                    + lit(datafusion::common::ScalarValue::new_interval_mdn(
                        0,
                        0,
                        within.num_nanoseconds().unwrap_or(i64::MAX),
                    )),
            ));
        let plan = LogicalPlanBuilder::from(firsts)
            .join(
                follow_ups,
                JoinType::Left,
                (vec![cid.clone()], vec![fcid]),
                Some(window),
            )?
            .aggregate(
                vec![col(cid.clone()), col(last.clone())],
                vec![count(col(fts)).alias(followed.clone())],
            )?
            .build()?;
        Ok(FollowSpec {
            plan,
            last,
            followed,
            within,
        })
    }

    async fn sql(&mut self, ctx: &SessionContext, query: &str) -> Result<Expr, Failure> {
        if let Some(i) = self.sql_keys.get(query) {
            return Ok(col(self.sqls[*i].1.clone()).is_true());
        }
        let index = self.sqls.len();
        let frame = plan_sql_condition(ctx, query)
            .await
            .map_err(CompileError::new)?;
        let flag = format!("__sql_{index}");
        let qcid = format!("__sql_{index}_cid");
        let plan = LogicalPlanBuilder::from(frame.into_unoptimized_plan())
            .project(vec![cast(col(CID), DataType::Utf8).alias(qcid.clone())])
            .map_err(CompileError::from)?
            .filter(col(qcid.clone()).is_not_null())
            .map_err(CompileError::from)?
            .distinct()
            .map_err(CompileError::from)?
            .project(vec![col(qcid), lit(true).alias(flag.clone())])
            .map_err(CompileError::from)?
            .build()
            .map_err(CompileError::from)?;
        self.sqls.push((plan, flag.clone()));
        self.sql_keys.insert(query.to_string(), index);
        Ok(col(flag).is_true())
    }

    /// A scan of the raw events with the rows every pass wants: identified customers, known
    /// ids and types, `ts <= as_of`, and only the date partitions between `lower` and `as_of`.
    fn events_scan(
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
    async fn find_repeated(&mut self, ctx: &SessionContext) -> Result<(), Error> {
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
        for (day, files) in files_per_day {
            if files < 2 || first.is_some_and(|f| day < f) || day > last {
                continue;
            }
            let plan = self
                .events_scan_with(&BTreeSet::new(), lower, true)
                .map_err(|e| e.into_error(""))?
                .filter(
                    col(layout::EVENTS_PARTITION_COLUMN)
                        .eq(lit(day.format("%Y-%m-%d").to_string()))
                        .and(col("event_type").in_list(types.clone(), false)),
                )?
                .aggregate(
                    vec![col("event_id")],
                    vec![
                        count(lit(1i64)).alias("__copies"),
                        max(col(FILE_COLUMN)).alias("__keep"),
                    ],
                )?
                .filter(col("__copies").gt(lit(1i64)))?
                .project(vec![col("event_id"), col("__keep")])
                .and_then(|b| b.build())
                .context(context)?;
            let batches = ctx
                .execute_logical_plan(plan)
                .await
                .context(context)?
                .collect()
                .await
                .context(context)?;
            for batch in batches {
                let (ids, keep) = (
                    cast_to_utf8(batch.column(0))?,
                    cast_to_utf8(batch.column(1))?,
                );
                let (ids, keep) = (ids.as_string::<i32>(), keep.as_string::<i32>());
                for i in 0..ids.len() {
                    if ids.is_valid(i) && keep.is_valid(i) {
                        self.repeated
                            .push((ids.value(i).to_string(), keep.value(i).to_string()));
                    }
                }
            }
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
    fn merged_events(
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
        if self.repeated.is_empty() {
            return Ok(rows()?.project(columns)?.project(with_code)?);
        }
        // One scan: rows of repeated ids are kept only from the file chosen for them.
        let repeated = LogicalPlanBuilder::values(
            self.repeated
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
        Ok(self
            .events_scan_with(&self.event_columns, lower, true)?
            .filter(only_types)?
            .join(
                repeated,
                JoinType::Left,
                (vec!["event_id"], vec!["__repeated_id"]),
                None,
            )?
            .filter(kept)?
            .project(columns)?
            .project(with_code)?)
    }

    /// Whether some measure is computed by the main aggregation over the merged events.
    fn aggregates_events(&self) -> bool {
        self.measures.iter().any(|m| !m.aggregates.is_empty())
    }

    /// Puts the pieces together: merged events → one aggregation → joined to the universe →
    /// measures with defaults → percent ranks → the segments' columns.
    fn assemble(&self, outputs: Vec<Expr>) -> Result<LogicalPlan, CompileError> {
        // The universe, with the attributes some condition reads.
        let mut attributes: Vec<Expr> = vec![col(CID)];
        attributes.extend(
            self.attributes
                .iter()
                .filter(|a| *a != CID)
                .map(|a| col(Column::from_name(a))),
        );
        let mut plan = LogicalPlanBuilder::from(self.tables.universe_plan(Some(self.as_of))?);
        if let Some(only) = &self.only {
            plan = plan.filter(col(CID).eq(lit(only.clone())))?;
        }
        let mut plan = plan.project(attributes)?;

        // The narrow per-customer results first (follow-ups, sql conditions), the wide one of
        // all measures last, so that it is moved through one join only.
        for (i, follow) in self.follows.iter().enumerate() {
            let cid = format!("__follow_{i}_cid");
            plan = plan.join(
                follow.plan.clone(),
                JoinType::Left,
                (vec![CID.to_string()], vec![cid]),
                None,
            )?;
        }
        if let Some(sequences) = self.sequences_plan()? {
            plan = plan.join(
                sequences,
                JoinType::Left,
                (vec![CID], vec![Self::sequence_key()]),
                None,
            )?;
        }
        for (sql, flag) in &self.sqls {
            let qcid = format!("{flag}_cid");
            plan = plan.join(
                sql.clone(),
                JoinType::Left,
                (vec![CID.to_string()], vec![qcid]),
                None,
            )?;
        }

        for (distinct, cid) in &self.distincts {
            plan = plan.join(
                distinct.clone(),
                JoinType::Left,
                (vec![CID.to_string()], vec![cid.clone()]),
                None,
            )?;
        }
        if self.aggregates_events() {
            let lower = self.earliest.flatten();
            let types: Vec<Expr> = self.event_types.iter().map(|t| lit(t.clone())).collect();
            let rows = self.merged_events(lower, types)?;
            let aggregates: Vec<Expr> = self
                .measures
                .iter()
                .flat_map(|m| m.aggregates.clone())
                .collect();
            let mut output: Vec<Expr> = vec![col(CID).alias("__events_cid")];
            output.extend(self.measures.iter().flat_map(|m| {
                m.aggregates
                    .iter()
                    .map(|a| col(a.schema_name().to_string()))
            }));
            let per_customer = rows
                .aggregate(vec![col(CID)], aggregates)?
                .project(output)?
                .build()?;
            plan = plan.join(
                per_customer,
                JoinType::Left,
                (vec![CID], vec!["__events_cid"]),
                None,
            )?;
        }

        // Measures with their defaults, next to everything else.
        let mut columns: Vec<Expr> = plan.schema().columns().into_iter().map(col).collect();
        columns.extend(
            self.measures
                .iter()
                .enumerate()
                .map(|(i, m)| m.value.clone().alias(measure_column(i))),
        );
        plan = plan.project(columns)?;

        // One window per ranked measure: each has its own order.
        for (index, name) in &self.percents {
            let m = col(measure_column(*index));
            let rank = percent_rank()
                .partition_by(vec![m.clone().is_null()])
                .order_by(vec![m.sort(true, true)])
                .build()?
                .alias(name.clone());
            plan = plan.window(vec![rank])?;
        }
        let mut projection = vec![col(CID)];
        projection.extend(outputs);
        Ok(plan.project(projection)?.build()?)
    }
}

fn measure_column(i: usize) -> String {
    format!("__measure_{i}")
}

/// `customer_id` and `carried`, as column expressions.
fn columns_of(carried: &[String]) -> Vec<Expr> {
    let mut columns: Vec<Expr> = vec![col(CID)];
    columns.extend(carried.iter().map(|c| col(Column::from_name(c))));
    columns
}

fn filter_columns(filters: &[PropertyFilter]) -> BTreeSet<String> {
    filters.iter().map(|f| f.property.clone()).collect()
}

/// `b` of the bucket condition: the first 8 bytes of SHA-256(`salt:customer_id`) as a
/// big-endian u64, modulo 100 — computed from the hex digits with built-ins only:
/// `Σ digit_k × (16^(15-k) mod 100)`, modulo 100.
fn bucket(salt: &str) -> Expr {
    let hex = encode(
        sha256(concat(vec![lit(format!("{salt}:")), col(CID)])),
        lit("hex"),
    );
    let mut total: Option<Expr> = None;
    let mut weight: i64 = 1;
    let mut weights = [0i64; 16];
    for k in (0..16).rev() {
        weights[k] = weight;
        weight = weight * 16 % 100;
    }
    for (k, w) in weights.iter().enumerate() {
        let digit = strpos(
            lit("0123456789abcdef"),
            substring(hex.clone(), lit(k as i64 + 1), lit(1i64)),
        ) - lit(1i64);
        let term = digit * lit(*w);
        total = Some(match total {
            None => term,
            Some(t) => t + term,
        });
    }
    total.expect("16 digits") % lit(100i64)
}

/// Plans the query of a `sql` condition in `ctx` (where the as-of `events`, `customers` and
/// `identities` are registered): refused when it does not plan, is not read-only, or returns
/// no `customer_id` column — the spec's rule, checked here only, for validation and for the
/// compiler alike. The refusal is a sentence for the problem's message.
pub async fn plan_sql_condition(
    ctx: &SessionContext,
    query: &str,
) -> Result<datafusion::dataframe::DataFrame, String> {
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let frame = ctx
        .sql_with_options(query, options)
        .await
        .map_err(|e| format!("the sql condition does not plan: {}", e.find_root()))?;
    if frame.schema().field_with_unqualified_name(CID).is_err() {
        let columns: Vec<String> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        return Err(format!(
            "the sql condition returns no customer_id column (it returns {})",
            if columns.is_empty() {
                "no columns".to_string()
            } else {
                columns.join(", ")
            }
        ));
    }
    Ok(frame)
}

/// A failure while compiling a condition: the definition's (to be attached to its segment) or
/// one already attributed to another segment.
enum Failure {
    Compile(CompileError),
    Other(Error),
}

impl From<CompileError> for Failure {
    fn from(e: CompileError) -> Self {
        Failure::Compile(e)
    }
}

impl From<datafusion::error::DataFusionError> for Failure {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Failure::Compile(e.into())
    }
}

impl From<kitle_data::Error> for CompileError {
    fn from(e: kitle_data::Error) -> Self {
        Self {
            message: e.to_string(),
            failure: Some(Box::new(e.into())),
        }
    }
}
