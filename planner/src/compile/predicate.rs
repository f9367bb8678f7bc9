//! Operators of attribute conditions and `where` filters as DataFusion expressions.
//!
//! Each function returns an expression that may be null where SQL would say "unknown"; the
//! caller turns it into true-or-false with `IS TRUE`, which gives the spec's logic: a
//! comparison against a missing value is false, and the negated operators (`neq`, `not_in`,
//! `not_contains`, `has_none`, `is_not_set`) are written so that they mean "is set and not …"
//! (or, for lists, that a null list is an empty one).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use datafusion::arrow::datatypes::DataType;
use datafusion::functions::expr_fn::{ends_with, lower, split_part, starts_with, strpos};
use datafusion::functions_nested::expr_fn::{
    array_has_all, array_has_any, cardinality, make_array,
};
use datafusion::prelude::{Expr, lit, not};

use super::CompileError;
use super::values::{date_comparison, decimal_literal, float_comparison, instant_literal};
use crate::definition::{Op, Value};
use crate::validate::ColumnKind;

/// The column and operand of one comparison.
pub(super) struct Operand<'a> {
    /// The column (or measure) expression.
    pub expr: Expr,
    /// Its Arrow type.
    pub data_type: &'a DataType,
    /// Its name, for messages and for `domain_in` (only on `email`).
    pub name: &'a str,
}

/// `operand op value`, as an expression that is true, false or null.
pub(super) fn apply(
    operand: Operand<'_>,
    op: Op,
    value: Option<&Value>,
    ignore_case: bool,
    as_of: DateTime<Utc>,
    tz: Tz,
) -> Result<Expr, CompileError> {
    let Operand {
        expr: column,
        data_type,
        name,
    } = operand;
    match op {
        Op::IsSet => return Ok(is_set(column, data_type)),
        Op::IsNotSet => return Ok(not(is_set(column, data_type).is_true())),
        _ => {}
    }
    let value = value
        .ok_or_else(|| CompileError::new(format!("{} on {name} needs a value", op.as_str())))?;
    let unsupported = || {
        CompileError::new(format!(
            "operator {} with {} is not defined on {name} ({data_type})",
            op.as_str(),
            value.describe()
        ))
    };
    match ColumnKind::of(data_type) {
        ColumnKind::Text => text(column, op, value, ignore_case).ok_or_else(unsupported),
        ColumnKind::Number => number(column, data_type, op, value).ok_or_else(unsupported),
        ColumnKind::Timestamp => {
            let is_date = matches!(data_type, DataType::Date32 | DataType::Date64);
            timestamp(column, is_date, op, value, as_of, tz).ok_or_else(unsupported)
        }
        ColumnKind::TextList => list(column, op, value).ok_or_else(unsupported),
        ColumnKind::Boolean => match (op, value) {
            (Op::Eq, Value::Bool(b)) => Ok(column.eq(lit(*b))),
            _ => Err(unsupported()),
        },
        ColumnKind::Other => Err(unsupported()),
    }
}

fn is_set(column: Expr, data_type: &DataType) -> Expr {
    match ColumnKind::of(data_type) {
        ColumnKind::TextList => cardinality(column).gt(lit(0u64)),
        _ => column.is_not_null(),
    }
}

fn any_of(parts: Vec<Expr>) -> Option<Expr> {
    parts.into_iter().map(|e| e.is_true()).reduce(Expr::or)
}

fn text(column: Expr, op: Op, value: &Value, ignore_case: bool) -> Option<Expr> {
    let texts = value.texts()?;
    let (column, texts): (Expr, Vec<String>) = if ignore_case {
        (
            lower(column),
            texts.iter().map(|t| t.to_lowercase()).collect(),
        )
    } else {
        (column, texts.iter().map(|t| t.to_string()).collect())
    };
    let each = |f: &dyn Fn(Expr, String) -> Expr| {
        any_of(texts.iter().map(|t| f(column.clone(), t.clone())).collect())
    };
    let set_and_not = |e: Option<Expr>| e.map(|e| column.clone().is_not_null().and(not(e)));
    Some(match op {
        Op::Eq | Op::In => each(&|c, t| c.eq(lit(t)))?,
        Op::Neq | Op::NotIn => set_and_not(each(&|c, t| c.eq(lit(t))))?,
        Op::Contains => each(&|c, t| strpos(c, lit(t)).gt(lit(0i64)))?,
        Op::NotContains => set_and_not(each(&|c, t| strpos(c, lit(t)).gt(lit(0i64))))?,
        Op::StartsWith => each(&|c, t| starts_with(c, lit(t)))?,
        Op::EndsWith => each(&|c, t| ends_with(c, lit(t)))?,
        Op::DomainIn => {
            // The part after the last `@`, lower-cased; an address without `@` matches nothing.
            let domain = lower(split_part(column.clone(), lit("@"), lit(-1i64)));
            let has_at = strpos(column.clone(), lit("@")).gt(lit(0i64));
            let matches = any_of(
                texts
                    .iter()
                    .map(|d| {
                        let d = d.to_lowercase();
                        domain
                            .clone()
                            .eq(lit(d.clone()))
                            .or(ends_with(domain.clone(), lit(format!(".{d}"))))
                    })
                    .collect(),
            )?;
            has_at.and(matches)
        }
        _ => return None,
    })
}

fn number(column: Expr, data_type: &DataType, op: Op, value: &Value) -> Option<Expr> {
    let float = matches!(
        data_type,
        DataType::Float16 | DataType::Float32 | DataType::Float64
    );
    let compare = |op: Op, v| {
        if float {
            float_comparison(column.clone(), op, v)
        } else {
            ordered(column.clone(), op, decimal_literal(v))
        }
    };
    match (op, value) {
        (Op::Between, Value::NumberRange(lo, hi)) => {
            Some(compare(Op::Gte, lo)?.and(compare(Op::Lte, hi)?))
        }
        (_, Value::Number(v)) => compare(op, v),
        _ => None,
    }
}

fn timestamp(
    column: Expr,
    is_date: bool,
    op: Op,
    value: &Value,
    as_of: DateTime<Utc>,
    tz: Tz,
) -> Option<Expr> {
    let compare = |op: Op, t: DateTime<Utc>| -> Option<Expr> {
        if is_date {
            return date_comparison(column.clone(), op, t, tz);
        }
        ordered(column.clone(), op, instant_literal(t))
    };
    match (op, value) {
        (Op::WithinLast, Value::Duration(d)) => {
            Some(compare(Op::Gt, as_of - d.to_time_delta())?.and(compare(Op::Lte, as_of)?))
        }
        (Op::OlderThan, Value::Duration(d)) => compare(Op::Lte, as_of - d.to_time_delta()),
        (Op::Between, Value::InstantRange(lo, hi)) => {
            Some(compare(Op::Gte, *lo)?.and(compare(Op::Lte, *hi)?))
        }
        (Op::Eq | Op::Neq | Op::Gt | Op::Gte | Op::Lt | Op::Lte, v) => {
            compare(op, v.instant_in(tz)?)
        }
        _ => None,
    }
}

/// `column op literal` for the ordering operators (`neq` meaning "is set and not equal").
fn ordered(column: Expr, op: Op, literal: Expr) -> Option<Expr> {
    Some(match op {
        Op::Eq => column.eq(literal),
        Op::Neq => column.clone().is_not_null().and(column.not_eq(literal)),
        Op::Gt => column.gt(literal),
        Op::Gte => column.gt_eq(literal),
        Op::Lt => column.lt(literal),
        Op::Lte => column.lt_eq(literal),
        _ => return None,
    })
}

fn list(column: Expr, op: Op, value: &Value) -> Option<Expr> {
    let texts = value.texts()?;
    let items = make_array(texts.iter().map(|t| lit(t.to_string())).collect());
    Some(match op {
        Op::HasAny => array_has_any(column, items),
        Op::HasAll => array_has_all(column, items),
        // A null list is an empty list, which has none of anything.
        Op::HasNone => not(array_has_any(column, items).is_true()),
        _ => return None,
    })
}
