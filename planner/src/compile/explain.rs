//! Explaining one customer's membership: every condition's verdict and what it measured.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use datafusion::common::Column;
use datafusion::functions::expr_fn::coalesce;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{Expr, SessionContext, col, lit};
use kitle_data::tables::ContractTables;

use super::{
    CID, CompileError, Compiler, Failure, bucket, measure_column, segment_column, sequence,
};
use crate::definition::{Condition, Op, SegmentDefinition};
use crate::error::Error;

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

impl Compiler<'_> {
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
}
