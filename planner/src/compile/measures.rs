//! Event conditions: their measures (one aggregate each, or a pass of their own), periods and
//! percent ranks.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::Column;
use datafusion::functions::expr_fn::{coalesce, to_local_time};
use datafusion::functions_aggregate::expr_fn::{count, max, min, sum};
use datafusion::logical_expr::{ExprFunctionExt, cast, when};
use datafusion::prelude::{Expr, col, lit};

use super::predicate::{Operand, apply};
use super::values::instant_literal;
use super::{CID, CompileError, Compiler, TYPE_CODE, filter_columns, measure_column};
use crate::definition::{EventCondition, Measure, Op, Period, PropertyFilter, Value};

/// An aggregate over the merged events, and the per-customer value built from it.
pub(super) struct MeasureSpec {
    /// Aggregate expressions, aliased to their column names.
    pub(super) aggregates: Vec<Expr>,
    /// The measure's value over the joined table (defaults applied).
    pub(super) value: Expr,
    /// The type the language compares it as.
    pub(super) data_type: DataType,
}

impl Compiler<'_> {
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
    pub(super) fn types_and_filters(
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
    pub(super) fn period(&self, period: &Period) -> (Option<Expr>, Option<DateTime<Utc>>) {
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

    pub(super) fn event(&mut self, e: &EventCondition) -> Result<Expr, CompileError> {
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
    pub(super) fn measure(&mut self, e: &EventCondition) -> Result<usize, CompileError> {
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
        let partials = spec.aggregates.len();
        self.measures.push(spec);
        self.measure_keys.insert(key, index);
        let days = self.period_days(&e.period);
        self.measure_days.push(days);
        self.register_stateful(index, &events, e, partials);
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
            .aggregate(
                vec![col(CID)],
                vec![count(lit(1i64)).alias(counted.clone())],
            )?
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
}
