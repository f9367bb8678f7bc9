//! Sequences (funnels): one more pass over the events, shared by every sequence of the refresh.
//!
//! A sequence is a per-customer computation over ordered events, so it cannot be one more
//! aggregate of the main aggregation (whose rows arrive in no order, and whose partial states
//! DataFusion merges). Instead, one pass reads the events of every sequence's step types (from
//! the earliest first-step period on, only the columns their filters need, ids resolved as the
//! identity setting says), gives each row one bit mask per sequence — bit `k` when the event
//! may serve step `k + 1`, the first step's period folded into bit 0 — and runs kitle's window
//! function `kitle_sequence` (see `kitle_data::functions`) over each customer's rows in time
//! order, partitioned by customer. Its state is a few numbers per step whatever the number of
//! events; no step is a self-join. The function marks the one row that first completes the
//! chain; the pass keeps those rows, one per customer and sequence, and is left-joined to the
//! universe like the other passes.
//!
//! Redelivered copies need no merging here: copies of an event share its `ts` (and content),
//! and two events at one instant are never consecutive steps, so a copy can never complete a
//! chain its original cannot.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::functions_aggregate::expr_fn::min;
use datafusion::logical_expr::{ExprFunctionExt, LogicalPlan, cast, when};
use datafusion::prelude::{Expr, col, lit};

use super::{CID, CompileError, Compiler};
use crate::definition::SequenceCondition;

/// The customer column of the sequence pass.
const SEQUENCE_CID: &str = "__sequence_cid";

/// One registered sequence.
pub(super) struct SequenceSpec {
    pub(super) condition: SequenceCondition,
}

fn mask_column(i: usize) -> String {
    format!("__sequence_{i}_mask")
}

fn row_column(i: usize, step: usize) -> String {
    format!("__sequence_{i}_row_{step}")
}

/// The column holding when sequence `i` was completed (µs; null when it was not).
pub(super) fn done_column(i: usize) -> String {
    format!("__sequence_{i}")
}

/// The column holding when step `step` (1-based) of sequence `i` was first reached, for
/// explanations.
pub(super) fn reached_column(i: usize, step: usize) -> String {
    format!("__sequence_{i}_step_{step}")
}

/// A column of µs as kitle's timestamp type.
pub(super) fn as_instant(expr: Expr) -> Expr {
    cast(
        expr,
        DataType::Timestamp(
            TimeUnit::Microsecond,
            Some(kitle_data::contract::UTC.into()),
        ),
    )
}

impl Compiler<'_> {
    /// Registers (or finds) a sequence; its index.
    pub(super) fn sequence_index(&mut self, s: &SequenceCondition) -> usize {
        let key = format!("{s:?}");
        if let Some(i) = self.sequence_keys.get(&key) {
            return *i;
        }
        let index = self.sequences.len();
        self.sequences.push(SequenceSpec {
            condition: s.clone(),
        });
        self.sequence_keys.insert(key, index);
        index
    }

    /// The condition: the customer completed the chain.
    pub(super) fn sequence(&mut self, s: &SequenceCondition) -> Expr {
        let i = self.sequence_index(s);
        col(done_column(i)).is_not_null()
    }

    /// The pass computing every registered sequence: per customer with a completed chain or
    /// (explaining) a reached step, `__sequence_cid` and one column per sequence (and step).
    /// `None` without sequences.
    pub(super) fn sequences_plan(&self) -> Result<Option<LogicalPlan>, CompileError> {
        if self.sequences.is_empty() {
            return Ok(None);
        }
        let mut types: BTreeSet<String> = BTreeSet::new();
        let mut columns: BTreeSet<String> = BTreeSet::new();
        let mut lower: Option<Option<DateTime<Utc>>> = None;
        for spec in &self.sequences {
            for step in &spec.condition.steps {
                types.extend(step.events.iter().cloned());
                columns.extend(step.filters.iter().map(|f| f.property.clone()));
            }
            let (_, from) = self.period(&spec.condition.period);
            lower = Some(match lower {
                None => from,
                Some(None) => None,
                Some(Some(current)) => from.map(|f| f.min(current)),
            });
        }
        let types: Vec<Expr> = types.into_iter().map(lit).collect();
        let rows = self
            .events_scan(&columns, lower.flatten())?
            .filter(col("event_type").in_list(types, false))?;

        // One mask per sequence: bit k when the row may serve step k + 1.
        let mut projected = vec![col(CID).alias(SEQUENCE_CID), col("ts")];
        let mut any_step: Option<Expr> = None;
        for (i, spec) in self.sequences.iter().enumerate() {
            let mut mask: Option<Expr> = None;
            for (k, step) in spec.condition.steps.iter().enumerate() {
                let mut serves = self.types_and_filters(&step.events, &step.filters)?;
                if k == 0
                    && let (Some(period), _) = self.period(&spec.condition.period)
                {
                    serves = serves.and(period);
                }
                let bit = when(serves, lit(1i64 << k)).otherwise(lit(0i64))?;
                mask = Some(match mask {
                    None => bit,
                    Some(m) => m + bit,
                });
            }
            let mask = mask.ok_or_else(|| CompileError::new("a sequence without steps"))?;
            projected.push(mask.alias(mask_column(i)));
            let has = col(mask_column(i)).not_eq(lit(0i64));
            any_step = Some(match any_step {
                None => has,
                Some(a) => a.or(has),
            });
        }
        let mut plan = rows.project(projected)?;
        if let Some(any) = any_step {
            plan = plan.filter(any)?;
        }

        // Each customer's rows in time order through `kitle_sequence`.
        let function = kitle_data::functions::sequence_function();
        let mut windows = Vec::new();
        let mut outputs: Vec<(String, String)> = Vec::new();
        for (i, spec) in self.sequences.iter().enumerate() {
            let n = spec.condition.steps.len();
            let within = spec.condition.within.as_ref().map_or(-1, |d| {
                d.to_time_delta().num_microseconds().unwrap_or(i64::MAX)
            });
            let reports: Vec<usize> = if self.explain_steps {
                (1..=n).collect()
            } else {
                vec![n]
            };
            for report in reports {
                let name = row_column(i, report);
                let window = function
                    .call(vec![
                        col("ts"),
                        col(mask_column(i)),
                        lit(within),
                        lit(n as i64),
                        lit(report as i64),
                    ])
                    .partition_by(vec![col(SEQUENCE_CID)])
                    .order_by(vec![col("ts").sort(true, false)])
                    .build()?
                    .alias(name.clone());
                windows.push(window);
                let out = if report == n {
                    done_column(i)
                } else {
                    reached_column(i, report)
                };
                outputs.push((name, out));
            }
        }
        let marked = outputs
            .iter()
            .map(|(row, _)| col(row.clone()).is_not_null())
            .reduce(Expr::or)
            .expect("at least one sequence");
        let aggregates: Vec<Expr> = outputs
            .iter()
            .map(|(row, out)| min(col(row.clone())).alias(out.clone()))
            .collect();
        Ok(Some(
            plan.window(windows)?
                .filter(marked)?
                .aggregate(vec![col(SEQUENCE_CID)], aggregates)?
                .build()?,
        ))
    }

    /// The join key of [`Self::sequences_plan`].
    pub(super) fn sequence_key() -> &'static str {
        SEQUENCE_CID
    }
}
