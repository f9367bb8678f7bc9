//! Putting the pieces of a refresh together into one plan.

use datafusion::common::{Column, JoinType};
use datafusion::functions_window::expr_fn::percent_rank;
use datafusion::logical_expr::{ExprFunctionExt, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{Expr, col, lit, not};

use super::state_merge::narrowed;
use super::{CID, CompileError, Compiler, measure_column};

impl Compiler<'_> {
    /// Puts the pieces together: merged events → one aggregation → joined to the universe →
    /// measures with defaults → percent ranks → the segments' columns.
    pub(super) fn assemble(&self, outputs: Vec<Expr>) -> Result<LogicalPlan, CompileError> {
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
            // A stateful measure's raw partials leave out the days its states cover.
            let mut aggregates: Vec<Expr> = Vec::new();
            for (i, m) in self.measures.iter().enumerate() {
                for aggregate in &m.aggregates {
                    aggregates.push(match self.stateful_of(i) {
                        Some(s) => narrowed(aggregate, not(self.read_from_states(s)))?,
                        None => aggregate.clone(),
                    });
                }
            }
            let mut output: Vec<Expr> = vec![col(CID).alias("__events_cid")];
            output.extend(self.measures.iter().flat_map(|m| {
                m.aggregates
                    .iter()
                    .map(|a| col(a.schema_name().to_string()))
            }));
            let per_customer = self
                .merge_states(rows.aggregate(vec![col(CID)], aggregates)?)?
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
