//! kitle's own SQL functions, and the one place that registers them.
//!
//! Every session kitle runs a query in — refreshes, previews, explanations, analyst SQL, and
//! the executors of a cluster engine — must know these functions by name, because plans name
//! them. [`register`] is that place: [`crate::session`] calls it for every context it builds,
//! and an engine that builds its own sessions (a Ballista executor) registers
//! [`window_functions`] on them the same way.
//!
//! # `kitle_sequence`: ordered steps (funnels)
//!
//! ```sql
//! kitle_sequence(ts, mask, within_us, steps, report)
//!     OVER (PARTITION BY customer ORDER BY ts)
//! ```
//!
//! Over one customer's events in time order, finds the first moment a chain `e1 … e_report`
//! exists with `ei` matching step `i`, `ts(e1) < ts(e2) < …` (two events at the same instant
//! cannot be consecutive steps) and `ts(e_report) - ts(e1) <= within_us` (no limit when
//! `within_us` is negative). `mask` says which steps an event matches: bit `i - 1` for step
//! `i` (the caller folds the first step's period into bit 0). The function is non-null on one
//! row only: the row whose event first completes such a chain of the first `report` steps,
//! where it is that event's `ts` in microseconds (`Int64`); `report = steps` asks whether the
//! whole sequence was completed, smaller values which steps were reached and when.
//!
//! It is a window function rather than an aggregate because its answer depends on the order
//! of the events: DataFusion computes aggregates in two phases and merges partial states of
//! arbitrary subsets of a group's rows, which an order-dependent automaton cannot do exactly
//! with a bounded state. A window partitioned by customer and ordered by `ts` is DataFusion's
//! contract (under every physical plan and executor) that all of one customer's rows reach one
//! evaluator, in order; the evaluator then keeps a state of `O(steps)` per customer, whatever
//! the number of events, and the plan streams (the window needs bounded memory).
//!
//! The algorithm, for `within = w`: keep, for each `k`, the **latest** start of a valid chain of
//! the first `k` steps whose last event is strictly before the current instant. A later start
//! dominates an earlier one (every continuation valid for the earlier start is valid for the
//! later one, since only `ts(last) - ts(start) <= w` and the last event's time matter), so one
//! number per step suffices. Events are taken in groups of equal `ts`: every event of a group
//! extends only the chains that ended before the group, and the group's extensions become
//! visible to the next group, so equal instants are never consecutive steps and one event never
//! serves two steps of a chain.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{
    ExpressionArgs, PartitionEvaluatorArgs, WindowUDFFieldArgs,
};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_plan::PhysicalExpr;
use datafusion::prelude::SessionContext;

/// The name plans call the sequence function by.
pub const SEQUENCE_FUNCTION: &str = "kitle_sequence";

/// Most steps a sequence may have (the bits of its `mask`).
pub const MAX_SEQUENCE_STEPS: usize = 62;

/// Every window function of kitle, for engines that build their own sessions.
pub fn window_functions() -> Vec<Arc<WindowUDF>> {
    vec![sequence_function()]
}

/// Registers every kitle function in `ctx`: the one place sessions learn them.
pub fn register(ctx: &SessionContext) {
    for function in window_functions() {
        ctx.register_udwf(function.as_ref().clone());
    }
}

/// The `kitle_sequence` window function (see the module's documentation).
pub fn sequence_function() -> Arc<WindowUDF> {
    Arc::new(WindowUDF::from(Sequence::new()))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Sequence {
    signature: Signature,
}

impl Sequence {
    fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl WindowUDFImpl for Sequence {
    fn name(&self) -> &str {
        SEQUENCE_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 5 {
            return plan_err!(
                "{SEQUENCE_FUNCTION}(ts, mask, within_us, steps, report) takes 5 arguments, not {}",
                arg_types.len()
            );
        }
        let ts = match &arg_types[0] {
            DataType::Timestamp(_, zone) => {
                DataType::Timestamp(TimeUnit::Microsecond, zone.clone())
            }
            other => {
                return plan_err!("{SEQUENCE_FUNCTION}: ts must be a timestamp, not {other}");
            }
        };
        Ok(vec![
            ts,
            DataType::Int64,
            DataType::Int64,
            DataType::Int64,
            DataType::Int64,
        ])
    }

    /// Only `ts` and `mask` are evaluated per batch; the three constants are read once.
    fn expressions(&self, expr_args: ExpressionArgs) -> Vec<Arc<dyn PhysicalExpr>> {
        expr_args.input_exprs().iter().take(2).cloned().collect()
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        let exprs = args.input_exprs();
        if exprs.len() != 5 {
            return plan_err!("{SEQUENCE_FUNCTION} takes 5 arguments, not {}", exprs.len());
        }
        let within = constant(&exprs[2], "within_us")?;
        let steps = constant(&exprs[3], "steps")?;
        let report = constant(&exprs[4], "report")?;
        if !(2..=MAX_SEQUENCE_STEPS as i64).contains(&steps) {
            return plan_err!(
                "{SEQUENCE_FUNCTION}: steps must be from 2 to {MAX_SEQUENCE_STEPS}, not {steps}"
            );
        }
        if !(1..=steps).contains(&report) {
            return plan_err!(
                "{SEQUENCE_FUNCTION}: report must be from 1 to steps ({steps}), not {report}"
            );
        }
        Ok(Box::new(SequenceEvaluator::new(
            steps as usize,
            (within >= 0).then_some(within),
            report as usize,
        )))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Int64,
            true,
        )))
    }
}

/// The value of a constant argument.
fn constant(expr: &Arc<dyn PhysicalExpr>, name: &str) -> Result<i64> {
    let value = expr.downcast_ref::<Literal>().map(|l| l.value().clone());
    match value {
        Some(ScalarValue::Int64(Some(v))) => Ok(v),
        Some(other) => match other.cast_to(&DataType::Int64) {
            Ok(ScalarValue::Int64(Some(v))) => Ok(v),
            _ => plan_err!("{SEQUENCE_FUNCTION}: {name} must be an integer constant"),
        },
        None => plan_err!("{SEQUENCE_FUNCTION}: {name} must be a constant"),
    }
}

/// One customer's chain state: `O(steps)`, whatever the number of events.
#[derive(Debug)]
pub struct SequenceEvaluator {
    steps: usize,
    within: Option<i64>,
    report: usize,
    /// `best[k]`: the latest start of a valid chain of steps `0..=k` ending before `group`.
    best: Vec<Option<i64>>,
    /// The same for chains ending at `group` (visible from the next instant on).
    pending: Vec<Option<i64>>,
    /// The instant of the events being taken.
    group: Option<i64>,
    /// Whether the chain of `report` steps was completed (the output was given).
    done: bool,
}

impl SequenceEvaluator {
    /// An evaluator for a sequence of `steps` steps, at most `within` µs from first to last
    /// (`None`: no limit), reporting the completion of the first `report` steps.
    pub fn new(steps: usize, within: Option<i64>, report: usize) -> Self {
        Self {
            steps,
            within,
            report,
            best: vec![None; steps],
            pending: vec![None; steps],
            group: None,
            done: false,
        }
    }

    /// Takes the next event (`ts` not before the previous one's) matching the steps of `mask`;
    /// `Some(ts)` when it is the event that first completes the reported chain.
    pub fn take(&mut self, ts: i64, mask: i64) -> Result<Option<i64>> {
        match self.group {
            Some(group) if ts < group => {
                return exec_err!(
                    "{SEQUENCE_FUNCTION} needs its rows ordered by ts (OVER (… ORDER BY ts))"
                );
            }
            Some(group) if ts == group => {}
            _ => {
                for (best, pending) in self.best.iter_mut().zip(self.pending.iter_mut()) {
                    *best = (*best).max(pending.take());
                }
                self.group = Some(ts);
            }
        }
        if self.done || mask == 0 {
            return Ok(None);
        }
        for k in 1..self.steps {
            if mask >> k & 1 == 1
                && let Some(start) = self.best[k - 1]
                && self.within.is_none_or(|w| ts - start <= w)
            {
                self.pending[k] = self.pending[k].max(Some(start));
            }
        }
        if mask & 1 == 1 {
            self.pending[0] = self.pending[0].max(Some(ts));
        }
        if self.pending[self.report - 1].is_some() {
            self.done = true;
            return Ok(Some(ts));
        }
        Ok(None)
    }

    fn row(&mut self, values: &[ArrayRef], row: usize) -> Result<Option<i64>> {
        let (ts, mask) = columns(values)?;
        if ts.is_null(row) || mask.is_null(row) {
            return Ok(None);
        }
        self.take(ts.value(row), mask.value(row))
    }
}

type Columns<'a> = (
    &'a arrow::array::PrimitiveArray<TimestampMicrosecondType>,
    &'a arrow::array::PrimitiveArray<Int64Type>,
);

fn columns(values: &[ArrayRef]) -> Result<Columns<'_>> {
    let (Some(ts), Some(mask)) = (values.first(), values.get(1)) else {
        return exec_err!("{SEQUENCE_FUNCTION}: ts and mask are missing");
    };
    match (ts.data_type(), mask.data_type()) {
        (DataType::Timestamp(TimeUnit::Microsecond, _), DataType::Int64) => Ok((
            ts.as_primitive::<TimestampMicrosecondType>(),
            mask.as_primitive::<Int64Type>(),
        )),
        (t, m) => exec_err!("{SEQUENCE_FUNCTION}: ts is {t} and mask {m}"),
    }
}

impl PartitionEvaluator for SequenceEvaluator {
    fn is_causal(&self) -> bool {
        true
    }

    fn supports_bounded_execution(&self) -> bool {
        true
    }

    fn evaluate(&mut self, values: &[ArrayRef], range: &Range<usize>) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(self.row(values, range.start)?))
    }

    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let out: Int64Array = (0..num_rows)
            .map(|row| self.row(values, row))
            .collect::<Result<_>>()?;
        Ok(Arc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    /// Runs an evaluator over `(ts, mask)` rows; the completion instant.
    fn run(steps: usize, within: Option<i64>, report: usize, rows: &[(i64, i64)]) -> Option<i64> {
        let mut e = SequenceEvaluator::new(steps, within, report);
        let mut out = None;
        for (ts, mask) in rows {
            if let Some(t) = e.take(*ts, *mask).unwrap() {
                assert!(out.is_none(), "completed twice");
                out = Some(t);
            }
        }
        out
    }

    #[test]
    fn the_latest_start_wins_with_within() {
        // Views at 10:00 and 12:00, cart at 12:30, within 1h: the 12:00 view starts the chain.
        let rows = [(10 * H, 0b01), (12 * H, 0b01), (12 * H + H / 2, 0b10)];
        assert_eq!(run(2, Some(H), 2, &rows), Some(12 * H + H / 2));
        assert_eq!(run(2, Some(H / 4), 2, &rows), None);
        assert_eq!(run(2, None, 2, &rows), Some(12 * H + H / 2));
    }

    #[test]
    fn equal_instants_are_not_consecutive_steps() {
        assert_eq!(run(2, None, 2, &[(5, 0b01), (5, 0b10)]), None);
        assert_eq!(run(2, None, 2, &[(5, 0b10), (5, 0b01)]), None);
        assert_eq!(run(2, None, 2, &[(5, 0b01), (5, 0b10), (6, 0b10)]), Some(6));
        // One event matching both steps serves one of them.
        assert_eq!(run(2, None, 2, &[(5, 0b11)]), None);
        assert_eq!(run(2, None, 2, &[(5, 0b11), (7, 0b11)]), Some(7));
        assert_eq!(
            run(3, None, 3, &[(1, 0b111), (2, 0b111), (3, 0b111)]),
            Some(3)
        );
        assert_eq!(run(3, None, 3, &[(1, 0b111), (2, 0b111), (2, 0b111)]), None);
    }

    #[test]
    fn within_bounds_first_to_last_inclusively() {
        let rows = [(0, 0b001), (10, 0b010), (20, 0b100)];
        assert_eq!(run(3, Some(20), 3, &rows), Some(20));
        assert_eq!(run(3, Some(19), 3, &rows), None);
        // Reports of partial chains: step 1 at 0, step 2 at 10.
        assert_eq!(run(3, Some(19), 1, &rows), Some(0));
        assert_eq!(run(3, Some(19), 2, &rows), Some(10));
    }

    #[test]
    fn out_of_order_rows_are_refused() {
        let mut e = SequenceEvaluator::new(2, None, 2);
        e.take(5, 1).unwrap();
        assert!(e.take(4, 2).is_err());
    }

    /// Every chain of indices, checked against the definition directly.
    fn brute_force(steps: usize, within: Option<i64>, rows: &[(i64, i64)]) -> bool {
        fn extend(
            rows: &[(i64, i64)],
            steps: usize,
            within: Option<i64>,
            chain: &mut Vec<usize>,
        ) -> bool {
            let k = chain.len();
            if k == steps {
                let (first, last) = (rows[chain[0]].0, rows[chain[k - 1]].0);
                return within.is_none_or(|w| last - first <= w);
            }
            for (i, (ts, mask)) in rows.iter().enumerate() {
                let after = chain.last().is_none_or(|&j| rows[j].0 < *ts);
                if after && mask >> k & 1 == 1 {
                    chain.push(i);
                    if extend(rows, steps, within, chain) {
                        return true;
                    }
                    chain.pop();
                }
            }
            false
        }
        extend(rows, steps, within, &mut Vec::new())
    }

    #[test]
    fn agrees_with_brute_force_on_small_inputs() {
        // A small deterministic generator: instants 0..6 (many ties), masks of 3 steps.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for _ in 0..4000 {
            let steps = 2 + next(3) as usize;
            let within = match next(3) {
                0 => None,
                _ => Some(next(5) as i64),
            };
            let mut rows: Vec<(i64, i64)> = (0..next(7))
                .map(|_| (next(6) as i64, next(1 << steps) as i64))
                .collect();
            rows.sort_by_key(|r| r.0);
            let got = run(steps, within, steps, &rows).is_some();
            assert_eq!(
                got,
                brute_force(steps, within, &rows),
                "steps {steps}, within {within:?}, rows {rows:?}"
            );
        }
    }
}
