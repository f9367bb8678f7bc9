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

mod assemble;
mod explain;
mod follow;
mod identity;
mod measures;
mod predicate;
mod scan;
mod sequence;
mod sql;
mod state_merge;
mod states;
mod values;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::Column;
use datafusion::functions::expr_fn::{concat, encode, sha256, strpos, substring};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{Expr, SessionContext, col, lit, not};
use futures::StreamExt;
use kitle_data::contract::ContractTable;
use kitle_data::tables::ContractTables;

use crate::definition::{Condition, PropertyFilter, SegmentDefinition};
use crate::error::{Context, Error};
pub use explain::{ExplainPlan, ExplainedCondition, build_explain_plan};
use follow::FollowSpec;
use measures::MeasureSpec;
use predicate::{Operand, apply};
pub use sql::plan_sql_condition;
pub use states::StateReport;

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
    plan_segments(ctx, tables, definitions, targets, as_of, tz, Mode::Full)
        .await
        .map(|(plan, _)| plan)
}

/// [`build_refresh_plan`] with partial states (see the `states` module): closed days of the
/// measures that merge across days come from the store's states, the missing ones computed
/// (and committed) first, reported by `progress`; returns what the states did too.
pub async fn build_refresh_plan_with_states(
    ctx: &SessionContext,
    tables: &ContractTables,
    definitions: &[SegmentDefinition],
    targets: &[String],
    as_of: DateTime<Utc>,
    tz: Tz,
    progress: &dyn kitle_data::Progress,
) -> Result<(RefreshPlan, StateReport), Error> {
    plan_segments(
        ctx,
        tables,
        definitions,
        targets,
        as_of,
        tz,
        Mode::Incremental(progress),
    )
    .await
}

/// How [`plan_segments`] builds its plan.
enum Mode<'p> {
    /// Only checking that the definitions compile: no event data is read.
    Check,
    /// From the events alone.
    Full,
    /// With partial states, reporting the states' computation to the given progress.
    Incremental(&'p dyn kitle_data::Progress),
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
    plan_segments(ctx, tables, definitions, targets, as_of, tz, Mode::Check)
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
    mode: Mode<'_>,
) -> Result<(RefreshPlan, StateReport), Error> {
    let mut compiler = Compiler::new(tables, definitions, as_of, tz);
    compiler.incremental = matches!(mode, Mode::Incremental(_));
    let mut outputs = Vec::new();
    for (i, id) in targets.iter().enumerate() {
        let expr = compiler.segment(ctx, id).await?;
        outputs.push(expr.alias(segment_column(i)));
    }
    let mut report = StateReport::full();
    if let Mode::Incremental(progress) = mode {
        compiler.prepare_states(progress, &mut report).await?;
    }
    if !matches!(mode, Mode::Check) {
        compiler.find_repeated(ctx).await?;
    }
    let plan = compiler
        .assemble(outputs)
        .map_err(|e| e.into_error(&targets.join(", ")))?;
    Ok((
        RefreshPlan {
            plan,
            segments: targets.to_vec(),
        },
        report,
    ))
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

/// [`evaluate`] with partial states, as an incremental refresh evaluates: the missing states
/// are computed and committed into the store, the others reused. Returns what the states did
/// too. (Tests compare it with [`evaluate`] and with the reference evaluator.)
pub async fn evaluate_with_states(
    tables: &ContractTables,
    definitions: &[SegmentDefinition],
    as_of: DateTime<Utc>,
    tz: Tz,
) -> Result<(BTreeMap<String, Vec<String>>, StateReport), Error> {
    let ctx = kitle_data::session::new_context(tables.store());
    tables.register_as_of(&ctx, as_of)?;
    let targets: Vec<String> = definitions.iter().map(|d| d.id.clone()).collect();
    let (refresh, mut report) = build_refresh_plan_with_states(
        &ctx,
        tables,
        definitions,
        &targets,
        as_of,
        tz,
        &kitle_data::NoProgress,
    )
    .await?;
    let members = members_of_counted(&ctx, refresh, &mut report).await?;
    Ok((members, report))
}

/// Runs a refresh plan and collects each segment's members, sorted.
pub async fn members_of(
    ctx: &SessionContext,
    refresh: RefreshPlan,
) -> Result<BTreeMap<String, Vec<String>>, Error> {
    members_of_counted(ctx, refresh, &mut StateReport::full()).await
}

/// [`members_of`], adding to `report` the bytes and rows the plan's scans read.
pub async fn members_of_counted(
    ctx: &SessionContext,
    refresh: RefreshPlan,
    report: &mut StateReport,
) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let mut members: Vec<Vec<String>> = vec![Vec::new(); refresh.segments.len()];
    let context = || format!("evaluating {}", refresh.segments.join(", "));
    let physical = ctx
        .state()
        .create_physical_plan(&refresh.plan)
        .await
        .context(context)?;
    let mut stream =
        datafusion::physical_plan::execute_stream(Arc::clone(&physical), ctx.task_ctx())
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
    report.count_reads(&physical);
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

fn cast_to_utf8(a: &Arc<dyn Array>) -> Result<Arc<dyn Array>, Error> {
    datafusion::arrow::compute::cast(a, &DataType::Utf8).map_err(|e| Error::Engine {
        context: "reading customer ids of a result".into(),
        source: datafusion::error::DataFusionError::Internal(e.to_string()),
    })
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
    /// Building a plan with partial states (see the `states` module).
    incremental: bool,
    /// The measures whose closed days may come from states.
    statefuls: Vec<states::Stateful>,
    /// The states the plan reads, once chosen.
    state_use: Option<states::StateUse>,
    /// Per measure: the partition days its period may read, `[from, to]` (`from` `None`: no
    /// bound).
    measure_days: Vec<(Option<chrono::NaiveDate>, chrono::NaiveDate)>,
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
            incremental: false,
            statefuls: Vec::new(),
            state_use: None,
            measure_days: Vec::new(),
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
