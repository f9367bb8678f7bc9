//! `not_followed_by`: the second, date-pruned pass over the events.

use datafusion::common::JoinType;
use datafusion::functions_aggregate::expr_fn::{count, max};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{Expr, col, lit};

use super::values::instant_literal;
use super::{CID, CompileError, Compiler, filter_columns};
use crate::definition::{EventCondition, FollowUp};

/// A `not_followed_by` condition's second pass.
pub(super) struct FollowSpec {
    pub(super) plan: LogicalPlan,
    pub(super) last: String,
    pub(super) followed: String,
    pub(super) within: chrono::TimeDelta,
}

impl Compiler<'_> {
    /// Registers (or finds) the second pass of a `not_followed_by` condition; returns its index.
    pub(super) fn follow(
        &mut self,
        e: &EventCondition,
        follow: &FollowUp,
    ) -> Result<usize, CompileError> {
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

    pub(super) fn not_followed_by(
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
}
