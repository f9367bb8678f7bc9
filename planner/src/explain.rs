//! Explaining one customer's membership: for every condition of a definition, whether it held
//! for that customer at an `as_of` and what was measured — the answer to a marketer's "why is
//! this customer (not) in my VIP segment?".
//!
//! The definition is compiled as for a refresh (so the answer is what a refresh computes), with
//! one extra output per condition, and run for that one customer.

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use kitle_data::json::json_value as json_of;
use serde::Serialize;
use serde_json::Value as Json;

use crate::compile::build_explain_plan;
use crate::definition::{Condition, Measure, Op, Period, SegmentDefinition};
use crate::error::Error;
use crate::time::format_instant;

/// One condition of the definition, as it was for the customer.
#[derive(Debug, Clone, Serialize)]
pub struct ConditionReport {
    /// JSON path of the condition in the definition (`condition`, `condition.all[1]`, …).
    pub path: String,
    /// The condition as written in the language.
    pub condition: Json,
    /// Whether it held.
    pub held: bool,
    /// What was measured: the attribute's value, the event measure (with its default: 0 or
    /// null), the bucket; for `not_followed_by` the time of the latest first event; null for
    /// conditions that measure nothing themselves (`all`, `any`, `not`, `segment`, `sql`).
    pub value: Json,
    /// For `top_percent`/`bottom_percent`, the customer's percent rank (0 = lowest, 1 =
    /// highest); for `not_followed_by`, how many follow-ups came within the window.
    #[serde(skip_serializing_if = "Json::is_null")]
    pub rank_or_follow_ups: Json,
    /// The same, in a sentence: `order_created count in last 30d = 1; needs gte 2`.
    pub explanation: String,
}

/// Why a customer is or is not a member of a segment at `as_of`.
#[derive(Debug, Clone, Serialize)]
pub struct MemberExplanation {
    /// The instant the definition was evaluated at.
    pub as_of: DateTime<Utc>,
    /// Whether the customer is in the universe (has a profile row as of `as_of`); when not,
    /// every condition is reported as not holding.
    pub in_universe: bool,
    /// Whether the definition holds for the customer.
    pub member: bool,
    /// Every condition, depth first.
    pub conditions: Vec<ConditionReport>,
}

/// Evaluates `definition` (one of `definitions`, which must hold every segment it refers to)
/// for `customer_id` at `as_of`, condition by condition.
pub async fn explain_member(
    tables: &kitle_data::tables::ContractTables,
    definitions: &[SegmentDefinition],
    definition: &SegmentDefinition,
    customer_id: &str,
    as_of: DateTime<Utc>,
    tz: Tz,
    limits: &kitle_data::session::Limits,
) -> Result<MemberExplanation, Error> {
    let ctx = kitle_data::session::context_with(tables.store(), limits);
    tables.register_as_of(&ctx, as_of)?;
    let plan = build_explain_plan(
        &ctx,
        tables,
        definitions,
        &definition.id,
        customer_id,
        as_of,
        tz,
    )
    .await?;
    let batches: Vec<RecordBatch> = ctx.execute_logical_plan(plan.plan).await?.collect().await?;
    let row = batches.iter().find(|b| b.num_rows() > 0);
    let cell = |name: &str| -> Json {
        match row {
            Some(batch) => batch
                .column_by_name(name)
                .map(|a| json_of(a.as_ref(), 0))
                .unwrap_or(Json::Null),
            None => Json::Null,
        }
    };
    let member = cell("__segment_0") == Json::Bool(true);
    let conditions = plan
        .conditions
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let held = cell(&format!("__held_{i}")) == Json::Bool(true);
            let value = cell(&format!("__value_{i}"));
            let extra = cell(&format!("__extra_{i}"));
            ConditionReport {
                path: c.path.clone(),
                condition: c.condition.to_json(),
                held,
                explanation: sentence(&c.condition, held, &value, &extra),
                value,
                rank_or_follow_ups: extra,
            }
        })
        .collect();
    Ok(MemberExplanation {
        as_of,
        in_universe: row.is_some(),
        member,
        conditions,
    })
}

fn period_text(period: &Period) -> String {
    match period {
        Period::AllTime => "all time".into(),
        Period::Last(d) => format!("in last {d}"),
        Period::BeforeLast(d) => format!("before last {d}"),
        Period::Since(t) => format!("since {}", format_instant(t)),
        Period::Between(a, b) => format!("between {} and {}", format_instant(a), format_instant(b)),
    }
}

fn measure_text(measure: &Measure) -> String {
    match measure {
        Measure::Sum(c) | Measure::Avg(c) | Measure::Min(c) | Measure::Max(c) => {
            format!("{}({c})", measure.name())
        }
        Measure::Distinct(c) => format!("distinct({c})"),
        other => other.name().to_string(),
    }
}

fn value_text(value: &Json) -> String {
    match value {
        Json::Null => "missing".into(),
        Json::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// The condition, the customer's value and what was needed, in a sentence.
fn sentence(condition: &Condition, held: bool, value: &Json, extra: &Json) -> String {
    let verdict = if held { "holds" } else { "does not hold" };
    match condition {
        Condition::All(items) => format!("all of {} conditions: {verdict}", items.len()),
        Condition::Any(items) => format!("any of {} conditions: {verdict}", items.len()),
        Condition::Not(_) => format!("not (the condition below): {verdict}"),
        Condition::Segment(id) => format!("member of segment {id:?}: {verdict}"),
        Condition::Sql(_) => format!("returned by the sql query: {verdict}"),
        Condition::Bucket { salt, from, to } => format!(
            "bucket of {salt:?} = {}; needs {from} <= bucket < {to}",
            value_text(value)
        ),
        Condition::Attribute(a) => {
            let needs = match &a.value {
                Some(v) => format!("{} {}", a.op, v.to_json()),
                None => a.op.to_string(),
            };
            let case = if a.ignore_case {
                " (ignoring case)"
            } else {
                ""
            };
            format!(
                "{} = {}; needs {needs}{case}",
                a.attribute,
                value_text(value)
            )
        }
        Condition::Event(e) => {
            let events = e.events.join("|");
            let period = period_text(&e.period);
            let filters: String = e
                .filters
                .iter()
                .map(|f| {
                    let value = f.value.as_ref().map(|v| format!(" {}", v.to_json()));
                    format!(
                        " where {} {}{}",
                        f.property,
                        f.op,
                        value.unwrap_or_default()
                    )
                })
                .collect();
            if let Some(follow) = &e.not_followed_by {
                return format!(
                    "latest {events}{filters} {period} at {}, followed by {} {} time(s) within {}; \
                     needs one at least {} before as_of and none followed",
                    value_text(value),
                    follow.events.join("|"),
                    value_text(extra),
                    follow.within,
                    follow.within
                );
            }
            let mut text = format!(
                "{events}{filters} {} {period} = {}",
                measure_text(&e.measure),
                value_text(value)
            );
            if let Some(c) = e.effective_comparison() {
                if matches!(c.op, Op::TopPercent | Op::BottomPercent) {
                    text.push_str(&format!(", percent rank {}", value_text(extra)));
                }
                text.push_str(&format!("; needs {} {}", c.op, c.value.to_json()));
            }
            text
        }
    }
}
