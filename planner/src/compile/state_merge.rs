//! Recombining partial states with the raw rows: which partitions the main aggregation
//! skips, which raw rows a stateful measure leaves to its states, and the per-customer merge
//! of the raw partials with the state rows (see the `states` module).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::datasource::provider_as_source;
use datafusion::functions_aggregate::expr_fn::{max, min, sum};
use datafusion::logical_expr::{LogicalPlanBuilder, cast, when};
use datafusion::prelude::{Expr, col, lit};
use kitle_data::contract::ContractTable;
use kitle_data::{layout, states};

use super::states::{DAY, Merge, Stateful, date32, day_text};
use super::{CID, CompileError, Compiler};

/// The aggregate function of `aggregate` (a measure's partial, aliased or not).
fn aggregate_of(
    aggregate: &Expr,
) -> Result<&datafusion::logical_expr::expr::AggregateFunction, CompileError> {
    let inner = match aggregate {
        Expr::Alias(a) => a.expr.as_ref(),
        e => e,
    };
    match inner {
        Expr::AggregateFunction(f) => Ok(f),
        _ => Err(CompileError::new(format!(
            "a measure's partial is not an aggregate: {aggregate}"
        ))),
    }
}

/// `aggregate` (an aliased aggregate function) with `filter` as its `FILTER` and named `name`.
pub(super) fn retarget(aggregate: &Expr, filter: Expr, name: &str) -> Result<Expr, CompileError> {
    let mut f = aggregate_of(aggregate)?.clone();
    f.params.filter = Some(Box::new(filter));
    Ok(Expr::AggregateFunction(f).alias(name))
}

/// `aggregate` with `extra` added to its `FILTER`, keeping its name.
pub(super) fn narrowed(aggregate: &Expr, extra: Expr) -> Result<Expr, CompileError> {
    let name = aggregate.schema_name().to_string();
    let filter = match &aggregate_of(aggregate)?.params.filter {
        Some(old) => old.as_ref().clone().and(extra),
        None => extra,
    };
    retarget(aggregate, filter, &name)
}

impl Compiler<'_> {
    /// Over the raw event rows (with the partition column): whether a row's day is one whose
    /// partials of `s` come from states.
    pub(super) fn read_from_states(&self, s: &Stateful) -> Expr {
        let date = || col(layout::EVENTS_PARTITION_COLUMN);
        let mut expr = date().lt(day_text(s.inner.1));
        if let Some(from) = s.inner.0 {
            expr = expr.and(date().gt_eq(day_text(from)));
        }
        let strays = self.strays_within(s);
        if !strays.is_empty() {
            expr = expr.and(date().in_list(strays.into_iter().map(day_text).collect(), true));
        }
        expr
    }

    fn strays_within(&self, s: &Stateful) -> Vec<NaiveDate> {
        self.state_use
            .as_ref()
            .map(|u| u.strays.iter().filter(|d| s.covers(**d)).copied().collect())
            .unwrap_or_default()
    }

    /// The partitions the main aggregation need not read: for every measure it computes, the
    /// day is outside the measure's period or its partials come from states.
    pub(super) fn skipped_days(&self) -> Vec<NaiveDate> {
        let Some(used) = &self.state_use else {
            return Vec::new();
        };
        let mut days: BTreeSet<NaiveDate> = BTreeSet::new();
        for meta in &self.tables.files(ContractTable::Events).readable {
            if let Some(day) = self
                .tables
                .store()
                .relative(&meta.location)
                .and_then(|r| layout::partition_date_of(&r))
            {
                days.insert(day);
            }
        }
        days.into_iter()
            .filter(|day| !used.strays.contains(day))
            .filter(|day| {
                self.measures
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| !m.aggregates.is_empty())
                    .all(|(i, _)| {
                        let (from, to) = self.measure_days[i];
                        let outside = from.is_some_and(|f| *day < f) || *day > to;
                        outside || self.stateful_of(i).is_some_and(|s| s.covers(*day))
                    })
            })
            .collect()
    }

    /// `per_customer` (the raw partial rows: `customer_id` and every measure's partials)
    /// merged with the state rows, per customer; the same columns.
    pub(super) fn merge_states(
        &self,
        per_customer: LogicalPlanBuilder,
    ) -> Result<LogicalPlanBuilder, CompileError> {
        let Some(used) = self.state_use.as_ref().filter(|u| !u.files.is_empty()) else {
            return Ok(per_customer);
        };
        let raw_schema = Arc::clone(per_customer.schema());
        let type_of = |name: &str| -> Result<DataType, CompileError> {
            Ok(raw_schema
                .field_with_unqualified_name(name)
                .map_err(CompileError::from)?
                .data_type()
                .clone())
        };
        let null_of = |t: &DataType| -> Result<Expr, CompileError> {
            Ok(lit(ScalarValue::try_from(t).map_err(CompileError::from)?))
        };
        // Partial columns: (name, type) of the raw rows, and the state columns in use.
        let partials: Vec<(String, DataType)> = self
            .measures
            .iter()
            .flat_map(|m| m.aggregates.iter().map(|a| a.schema_name().to_string()))
            .map(|name| type_of(&name).map(|t| (name, t)))
            .collect::<Result<_, _>>()?;
        let mut state_columns: BTreeMap<String, DataType> = BTreeMap::new();
        for s in &self.statefuls {
            for part in 0..s.parts.len() {
                let raw = format!("__agg_{}{}", s.index, s.parts[part].0);
                state_columns.insert(s.state_column(part), type_of(&raw)?);
            }
        }
        let mut fields = vec![
            datafusion::arrow::datatypes::Field::new(CID, type_of(CID)?, true),
            datafusion::arrow::datatypes::Field::new(DAY, DataType::Date32, true),
        ];
        for (name, t) in &state_columns {
            fields.push(datafusion::arrow::datatypes::Field::new(
                name,
                t.clone(),
                true,
            ));
        }
        let source = states::source(
            self.tables.store(),
            &used.files,
            Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
        )?;
        let mut raw_side = vec![col(CID), null_of(&DataType::Date32)?.alias(DAY)];
        let mut state_side = vec![col(CID), col(DAY)];
        for (name, t) in &partials {
            raw_side.push(col(name.clone()));
            state_side.push(null_of(t)?.alias(name.clone()));
        }
        for (name, t) in &state_columns {
            raw_side.push(null_of(t)?.alias(name.clone()));
            state_side.push(cast(col(name.clone()), t.clone()).alias(name.clone()));
        }
        let state_rows = LogicalPlanBuilder::scan("states", provider_as_source(source), None)?
            .project(state_side)?
            .build()?;
        let unioned = per_customer.project(raw_side)?.union(state_rows)?;

        let mut merged = Vec::new();
        let mut typed = vec![col(CID)];
        for (i, m) in self.measures.iter().enumerate() {
            let stateful = self.stateful_of(i);
            for (part, aggregate) in m.aggregates.iter().enumerate() {
                let name = aggregate.schema_name().to_string();
                let t = type_of(&name)?;
                let (value, merge) = match stateful {
                    Some(s) => {
                        let day = || col(DAY);
                        let mut inside = day().lt(lit(date32(s.inner.1)));
                        if let Some(from) = s.inner.0 {
                            inside = inside.and(day().gt_eq(lit(date32(from))));
                        }
                        let value = when(day().is_null(), col(name.clone()))
                            .when(inside, col(s.state_column(part)))
                            .end()?;
                        (value, s.parts[part].1)
                    }
                    None => (col(name.clone()), Merge::Max),
                };
                let merged_value = match merge {
                    Merge::Sum => sum(value),
                    Merge::Min => min(value),
                    Merge::Max => max(value),
                };
                let merged_name = format!("__merged{name}");
                merged.push(merged_value.alias(merged_name.clone()));
                typed.push(cast(col(merged_name), t).alias(name));
            }
        }
        Ok(LogicalPlanBuilder::from(unioned.build()?)
            .aggregate(vec![col(CID)], merged)?
            .project(typed)?)
    }
}
