//! Literals of the language as DataFusion expressions, keeping the spec's exactness.
//!
//! Numbers are compared by their exact decimal value: against integer and decimal operands a
//! number becomes a `Decimal128` literal (DataFusion widens both sides to a common decimal
//! type, exactly); against float operands (a float column, `avg`) the comparison is rewritten
//! into one against the two doubles that bracket the value, which is exact too.

use std::str::FromStr;

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use datafusion::common::ScalarValue;
use datafusion::prelude::{Expr, lit};

use crate::decimal::Decimal;
use crate::definition::Op;

/// A number literal that DataFusion compares exactly with integers and decimals.
pub(super) fn decimal_literal(d: &Decimal) -> Expr {
    let scale = d.scale();
    let digits = d
        .mantissa()
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |x| x + 1) as u8;
    let precision = digits.max(scale + 1).clamp(1, 38);
    lit(ScalarValue::Decimal128(
        Some(d.mantissa()),
        precision,
        scale as i8,
    ))
}

/// A timestamp literal of kitle's type (UTC microseconds).
pub(super) fn instant_literal(t: DateTime<Utc>) -> Expr {
    kitle_data::tables::timestamp_literal(t)
}

/// A `Date32` literal.
pub(super) fn date_literal(d: NaiveDate) -> Expr {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    lit(ScalarValue::Date32(Some((d - epoch).num_days() as i32)))
}

/// The doubles bracketing an exact decimal: `lo` the greatest double `<= v`, `hi` the least
/// double `>= v` (equal when `v` is a double).
pub(super) fn f64_bracket(v: &Decimal) -> (f64, f64) {
    let exact = BigDecimal::new(v.mantissa().into(), i64::from(v.scale()));
    let nearest = v.to_f64();
    match compare_f64(nearest, &exact) {
        std::cmp::Ordering::Equal => (nearest, nearest),
        std::cmp::Ordering::Less => (nearest, nearest.next_up()),
        std::cmp::Ordering::Greater => (nearest.next_down(), nearest),
    }
}

/// Compares a double with an exact decimal, exactly (Rust prints a double's exact expansion
/// when asked for enough digits).
fn compare_f64(x: f64, v: &BigDecimal) -> std::cmp::Ordering {
    let text = format!("{x:.1100}");
    let x = BigDecimal::from_str(&text).expect("a formatted double parses");
    x.cmp(v)
}

/// `operand op v` for a float operand, exact in the decimal `v`; `None` for operators that
/// are not comparisons.
pub(super) fn float_comparison(operand: Expr, op: Op, v: &Decimal) -> Option<Expr> {
    let (lo, hi) = f64_bracket(v);
    let exact = lo == hi;
    Some(match op {
        Op::Gt if exact => operand.gt(lit(lo)),
        Op::Gt => operand.gt_eq(lit(hi)),
        Op::Gte => operand.gt_eq(lit(hi)),
        Op::Lt if exact => operand.lt(lit(hi)),
        Op::Lt => operand.lt_eq(lit(lo)),
        Op::Lte => operand.lt_eq(lit(lo)),
        Op::Eq if exact => operand.eq(lit(lo)),
        Op::Eq => lit(false),
        Op::Neq if exact => operand.clone().is_not_null().and(operand.not_eq(lit(lo))),
        Op::Neq => operand.is_not_null(),
        _ => return None,
    })
}

/// The day `D` such that midnight of `D` in `tz` is at or before `t` and midnight of the next
/// day is after it; and whether `t` is exactly that midnight.
pub(super) fn day_of(t: DateTime<Utc>, tz: Tz) -> (NaiveDate, bool) {
    let day = t.with_timezone(&tz).date_naive();
    (day, crate::time::midnight(day, tz) == t)
}

/// `date_column op t` where a date stands for midnight of its day in `tz`: rewritten into a
/// comparison of dates, exact because midnight is increasing in the day.
pub(super) fn date_comparison(column: Expr, op: Op, t: DateTime<Utc>, tz: Tz) -> Option<Expr> {
    let (day, at_midnight) = day_of(t, tz);
    let d = date_literal(day);
    Some(match op {
        Op::Gt => column.gt(d),
        Op::Gte if at_midnight => column.gt_eq(d),
        Op::Gte => column.gt(d),
        Op::Lt if at_midnight => column.lt(d),
        Op::Lt => column.lt_eq(d),
        Op::Lte => column.lt_eq(d),
        Op::Eq if at_midnight => column.eq(d),
        Op::Eq => lit(false),
        Op::Neq if at_midnight => column.clone().is_not_null().and(column.not_eq(d)),
        Op::Neq => column.is_not_null(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_are_exact() {
        let v = Decimal::from_str("37.535").unwrap();
        let (lo, hi) = f64_bracket(&v);
        assert!(lo < hi);
        assert_eq!(lo.next_up(), hi);
        let v = Decimal::from_str("4.5").unwrap();
        assert_eq!(f64_bracket(&v), (4.5, 4.5));
        let v = Decimal::from_str("0.1").unwrap();
        let (lo, hi) = f64_bracket(&v);
        assert!(lo < hi && (lo == 0.1 || hi == 0.1));
    }

    #[test]
    fn days_in_a_zone() {
        let t: DateTime<Utc> = "2025-11-27T21:00:00Z".parse().unwrap();
        let (d, m) = day_of(t, chrono_tz::Europe::Istanbul);
        assert_eq!(d, NaiveDate::from_ymd_opt(2025, 11, 28).unwrap());
        assert!(m);
        let (d, m) = day_of(t, chrono_tz::UTC);
        assert_eq!(d, NaiveDate::from_ymd_opt(2025, 11, 27).unwrap());
        assert!(!m);
    }
}
