//! The typed model of a segment definition.
//!
//! A definition is parsed once (see [`crate::parse_definition`]) into these types, so that the
//! compiler and refresh never look at JSON again: every value already has the type its operator
//! needs (exact decimals, instants resolved in the store's zone, durations). Writing a model
//! back with [`SegmentDefinition::to_json`] gives a document that parses to the same model,
//! which is how definitions are stored.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value as Json, json};

use crate::decimal::Decimal;
use crate::error::{Error, join};
use crate::time::{Duration, format_instant, parse_instant};

mod sequence;

pub use sequence::{MAX_STEPS, MIN_STEPS, SequenceCondition, SequenceStep};

/// One segment: who is in it (`condition`) and when it is recomputed (`refresh`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentDefinition {
    /// The segment's id, `[a-z0-9][a-z0-9_-]{0,63}`, unique in the store: the name other
    /// segments, the API and the CLI use for it.
    pub id: String,
    /// A display name in any language; the id when the document has none.
    pub name: String,
    /// Free text for people; empty when the document has none.
    pub description: String,
    /// When the scheduler recomputes it.
    pub refresh: Refresh,
    /// Who is a member.
    pub condition: Condition,
}

impl SegmentDefinition {
    /// The ids of the segments this one refers to through `{"segment": …}`, each once, in the
    /// order they first appear: what must be evaluated before it, and what may not be removed
    /// while it exists.
    pub fn references(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::new();
        for (_, id) in self.references_with_paths() {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    /// Every `{"segment": …}` of the definition with the JSON path of its id
    /// (`condition.all[1].not.segment`), in document order, for problems.
    pub(crate) fn references_with_paths(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        self.condition.walk("condition", &mut |path, condition| {
            if let Condition::Segment(id) = condition {
                out.push((join(path, "segment"), id.as_str()));
            }
        });
        out
    }

    /// The definition as a JSON document in the language, for storing and showing.
    ///
    /// Canonical rather than as first written: defaults that equal the language's defaults are
    /// left out (`period` all-time, `measure` count, an empty `description`), a single event
    /// type is a string, and instants are RFC 3339 in UTC (already resolved in the store's
    /// zone, so a stored definition keeps its meaning if the zone setting changes later).
    /// [`crate::parse_definition`] of the result gives back an equal definition.
    pub fn to_json(&self) -> Json {
        let mut doc = Map::new();
        doc.insert("id".into(), Json::String(self.id.clone()));
        doc.insert("name".into(), Json::String(self.name.clone()));
        if !self.description.is_empty() {
            doc.insert("description".into(), Json::String(self.description.clone()));
        }
        doc.insert("refresh".into(), Json::String(self.refresh.to_string()));
        doc.insert("condition".into(), self.condition.to_json());
        Json::Object(doc)
    }
}

impl serde::Serialize for SegmentDefinition {
    /// Serialises as [`SegmentDefinition::to_json`], so that a definition can sit inside any
    /// serde-serialised response. (There is no `Deserialize`: reading one needs the store's time
    /// zone and must collect every problem; use [`crate::parse_definition`].)
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// When a segment is recomputed by the scheduler; times are in the store's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Refresh {
    /// Only when asked (`kitle refresh`, the API): the default.
    #[default]
    Manual,
    /// At the start of every hour.
    Hourly,
    /// Every night at 03:00.
    Nightly,
    /// A 5-field cron expression (minute hour day-of-month month day-of-week), kept as written.
    Cron(String),
}

impl Refresh {
    /// The cron expression that schedules this cadence (`hourly` is `0 * * * *`, `nightly`
    /// `0 3 * * *`), so the scheduler has one code path; `None` for manual.
    pub fn cron_expression(&self) -> Option<&str> {
        match self {
            Refresh::Manual => None,
            Refresh::Hourly => Some("0 * * * *"),
            Refresh::Nightly => Some("0 3 * * *"),
            Refresh::Cron(expression) => Some(expression),
        }
    }

    /// The parsed schedule, for finding the next run with croner; `None` for manual.
    pub fn schedule(&self) -> Option<croner::Cron> {
        self.cron_expression()?.parse().ok()
    }
}

/// What a `refresh` may be, for problems.
pub(crate) const REFRESH_ALLOWED: &str = "`manual`, `hourly`, `nightly` (03:00) or a 5-field cron \
     expression `minute hour day-of-month month day-of-week`, e.g. `30 6 * * 1`";

impl FromStr for Refresh {
    type Err = Error;

    /// Reads `manual`, `hourly`, `nightly` or a 5-field cron expression (checked by croner,
    /// the library the scheduler uses, so that what validates also schedules).
    fn from_str(text: &str) -> Result<Refresh, Error> {
        match text {
            "manual" => return Ok(Refresh::Manual),
            "hourly" => return Ok(Refresh::Hourly),
            "nightly" => return Ok(Refresh::Nightly),
            _ => {}
        }
        let fields = text.split_whitespace().count();
        if fields != 5 {
            let reason = format!(
                "not manual, hourly or nightly, and not a cron expression of 5 fields ({fields} given)"
            );
            return Err(Error::syntax(text, REFRESH_ALLOWED, reason));
        }
        match text.parse::<croner::Cron>() {
            Ok(_) => Ok(Refresh::Cron(text.to_string())),
            Err(e) => Err(Error::syntax(
                text,
                REFRESH_ALLOWED,
                format!("not a valid cron expression: {e}"),
            )),
        }
    }
}

impl fmt::Display for Refresh {
    /// As written in a definition.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refresh::Manual => "manual",
            Refresh::Hourly => "hourly",
            Refresh::Nightly => "nightly",
            Refresh::Cron(expression) => expression,
        })
    }
}

/// A condition: true or false for each customer of the universe, never unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `{"all": [c, …]}`: every condition holds (never empty).
    All(Vec<Condition>),
    /// `{"any": [c, …]}`: some condition holds (never empty).
    Any(Vec<Condition>),
    /// `{"not": c}`: the condition does not hold.
    Not(Box<Condition>),
    /// `{"segment": "id"}`: member of that segment, re-evaluated at the same `as_of`.
    Segment(String),
    /// `{"bucket": …}`: a stable pseudo-random share of customers, for A/B splits: true when
    /// `from <= b < to` with `b` = the first 8 bytes of SHA-256(`salt:customer_id`) as a
    /// big-endian u64, modulo 100.
    Bucket {
        /// Mixed into the hash so that different experiments split differently.
        salt: String,
        /// Lowest bucket included, `0..=to`.
        from: u8,
        /// First bucket excluded, `from..=100`.
        to: u8,
    },
    /// `{"sql": "SELECT customer_id FROM …"}`: members are the query's `customer_id`s; the
    /// escape hatch for what the language cannot say.
    Sql(String),
    /// A condition on a column of `customers`.
    Attribute(AttributeCondition),
    /// A condition on a customer's events.
    Event(EventCondition),
    /// `{"sequence": [step, …], …}`: an ordered chain of events (a funnel).
    Sequence(SequenceCondition),
}

impl Condition {
    /// The key that names this kind of condition in JSON (`all`, `attribute`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::All(_) => "all",
            Condition::Any(_) => "any",
            Condition::Not(_) => "not",
            Condition::Segment(_) => "segment",
            Condition::Bucket { .. } => "bucket",
            Condition::Sql(_) => "sql",
            Condition::Attribute(_) => "attribute",
            Condition::Event(_) => "event",
            Condition::Sequence(_) => "sequence",
        }
    }

    /// Calls `visit` with this condition and each nested one, depth first, each with its JSON
    /// path (`path` being this condition's): the one traversal that validation and reference
    /// collection share, so that their paths agree.
    pub fn walk<'a>(&'a self, path: &str, visit: &mut dyn FnMut(&str, &'a Condition)) {
        visit(path, self);
        match self {
            Condition::All(items) | Condition::Any(items) => {
                let key = self.kind();
                for (i, item) in items.iter().enumerate() {
                    item.walk(&join(path, &format!("{key}[{i}]")), visit);
                }
            }
            Condition::Not(inner) => inner.walk(&join(path, "not"), visit),
            _ => {}
        }
    }

    /// The condition as JSON in the language.
    pub fn to_json(&self) -> Json {
        match self {
            Condition::All(items) => {
                json!({"all": items.iter().map(Condition::to_json).collect::<Vec<_>>()})
            }
            Condition::Any(items) => {
                json!({"any": items.iter().map(Condition::to_json).collect::<Vec<_>>()})
            }
            Condition::Not(inner) => json!({"not": inner.to_json()}),
            Condition::Segment(id) => json!({"segment": id}),
            Condition::Bucket { salt, from, to } => {
                json!({"bucket": {"salt": salt, "from": from, "to": to}})
            }
            Condition::Sql(sql) => json!({"sql": sql}),
            Condition::Attribute(a) => a.to_json(),
            Condition::Event(e) => e.to_json(),
            Condition::Sequence(s) => s.to_json(),
        }
    }
}

/// `{"attribute": "<customers column>", "op": …, "value": …}`: a test of the customer's latest
/// profile row as of `as_of`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeCondition {
    /// The column of `customers` (contract or custom); checked against the schema by
    /// [`crate::validate_set`], since parsing does not know the store.
    pub attribute: String,
    /// The operator.
    pub op: Op,
    /// The operand; `None` exactly for `is_set` / `is_not_set`.
    pub value: Option<Value>,
    /// Compare lower-cased (Unicode default, as `str::to_lowercase`); text operators only.
    pub ignore_case: bool,
}

impl AttributeCondition {
    fn to_json(&self) -> Json {
        test_json(
            "attribute",
            &self.attribute,
            self.op,
            self.value.as_ref(),
            self.ignore_case,
        )
    }
}

/// One entry of an event condition's `where`: a test of an event column, with the attribute
/// operators. A property missing from some files is null there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyFilter {
    /// The column of `events` (contract column or extra property).
    pub property: String,
    /// The operator.
    pub op: Op,
    /// The operand; `None` exactly for `is_set` / `is_not_set`.
    pub value: Option<Value>,
    /// Compare lower-cased; text operators only.
    pub ignore_case: bool,
}

impl PropertyFilter {
    fn to_json(&self) -> Json {
        test_json(
            "property",
            &self.property,
            self.op,
            self.value.as_ref(),
            self.ignore_case,
        )
    }
}

/// `{"<key>": "<column>", "op": …, "value": …, "ignore_case": true}`: an attribute condition or
/// a property filter (the two differ only in the key naming the column).
fn test_json(key: &str, column: &str, op: Op, value: Option<&Value>, ignore_case: bool) -> Json {
    let mut doc = Map::new();
    doc.insert(key.into(), Json::String(column.into()));
    doc.insert("op".into(), Json::String(op.as_str().into()));
    if let Some(value) = value {
        doc.insert("value".into(), value.to_json());
    }
    if ignore_case {
        doc.insert("ignore_case".into(), Json::Bool(true));
    }
    Json::Object(doc)
}

/// A condition on the customer's events: which events (`events`, `filters`, `period`), what is
/// measured over them, and how that measure is compared — or, with `not_followed_by`, whether
/// the latest one went without a follow-up (cart abandonment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCondition {
    /// The `event_type`s counted (at least one). Never validated: an unknown type matches
    /// nothing.
    pub events: Vec<String>,
    /// The `where` filters, all of which must hold (possibly none).
    pub filters: Vec<PropertyFilter>,
    /// Which events by time.
    pub period: Period,
    /// What is computed over the matching events.
    pub measure: Measure,
    /// How the measure is compared. `None` when the document has neither `op` nor `value`:
    /// with `not_followed_by` there is no comparison, and without it the measure is `count`
    /// and the comparison is `gte 1` (see [`EventCondition::effective_comparison`]).
    pub comparison: Option<Comparison>,
    /// The follow-up whose absence makes the condition true; excludes a comparison.
    pub not_followed_by: Option<FollowUp>,
}

impl EventCondition {
    /// The comparison to evaluate, with the language's default filled in: `count gte 1` when
    /// the document gave neither `op` nor `value`; `None` with `not_followed_by`.
    pub fn effective_comparison(&self) -> Option<Comparison> {
        match (&self.comparison, &self.not_followed_by) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(Comparison {
                op: Op::Gte,
                value: Value::Number(Decimal::from(1)),
            }),
        }
    }

    fn to_json(&self) -> Json {
        let mut doc = Map::new();
        doc.insert("event".into(), events_json(&self.events));
        if !self.filters.is_empty() {
            doc.insert("where".into(), filters_json(&self.filters));
        }
        if self.period != Period::AllTime {
            doc.insert("period".into(), self.period.to_json());
        }
        if self.measure != Measure::Count {
            doc.insert("measure".into(), self.measure.to_json());
        }
        if let Some(c) = &self.comparison {
            doc.insert("op".into(), Json::String(c.op.as_str().into()));
            doc.insert("value".into(), c.value.to_json());
        }
        if let Some(f) = &self.not_followed_by {
            let mut follow = Map::new();
            follow.insert("event".into(), events_json(&f.events));
            follow.insert("within".into(), Json::String(f.within.to_string()));
            if !f.filters.is_empty() {
                follow.insert("where".into(), filters_json(&f.filters));
            }
            doc.insert("not_followed_by".into(), Json::Object(follow));
        }
        Json::Object(doc)
    }
}

fn events_json(events: &[String]) -> Json {
    match events {
        [one] => Json::String(one.clone()),
        many => Json::Array(many.iter().cloned().map(Json::String).collect()),
    }
}

fn filters_json(filters: &[PropertyFilter]) -> Json {
    Json::Array(filters.iter().map(PropertyFilter::to_json).collect())
}

/// An event condition's `op` and `value` together, which the language gives both or neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// A number operator (or `top_percent`/`bottom_percent`) for numeric measures, a timestamp
    /// operator for `first_time`/`last_time`.
    pub op: Op,
    /// The operand, typed for the measure: a number, a percent, an instant, a duration or a
    /// range of them.
    pub value: Value,
}

/// `not_followed_by`: the kind of event whose absence after the latest matching event makes
/// the condition true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// The follow-up's `event_type`s (at least one).
    pub events: Vec<String>,
    /// How long after the matching event the follow-up may come.
    pub within: Duration,
    /// The follow-up's own `where` filters (possibly none).
    pub filters: Vec<PropertyFilter>,
}

/// Which events an event condition counts, by time; all bounded above by `as_of`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Period {
    /// `"all_time"` (the default): `ts <= as_of`.
    AllTime,
    /// `{"last": d}`: `as_of - d < ts <= as_of`.
    Last(Duration),
    /// `{"before_last": d}`: `ts <= as_of - d`.
    BeforeLast(Duration),
    /// `{"since": t}`: `t <= ts <= as_of`.
    Since(DateTime<Utc>),
    /// `{"between": [from, to]}`: `from <= ts < to` (end excluded, unlike the `between`
    /// operator), and `ts <= as_of`; `from <= to`.
    Between(DateTime<Utc>, DateTime<Utc>),
}

impl Period {
    /// The period as JSON in the language.
    pub fn to_json(&self) -> Json {
        match self {
            Period::AllTime => json!("all_time"),
            Period::Last(d) => json!({"last": d.to_string()}),
            Period::BeforeLast(d) => json!({"before_last": d.to_string()}),
            Period::Since(t) => json!({"since": format_instant(t)}),
            Period::Between(from, to) => {
                json!({"between": [format_instant(from), format_instant(to)]})
            }
        }
    }
}

/// What an event condition computes per customer over the matching events.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Measure {
    /// Number of matching events (0 with none): the default.
    Count,
    /// Sum of a numeric column, nulls skipped (0 with none).
    Sum(String),
    /// Average of a numeric column, nulls skipped (missing with none).
    Avg(String),
    /// Minimum of a numeric column (missing with none).
    Min(String),
    /// Maximum of a numeric column (missing with none).
    Max(String),
    /// Number of distinct non-null values of any column (0 with none).
    Distinct(String),
    /// Number of distinct calendar days, in the store's zone, with a matching event.
    ActiveDays,
    /// Timestamp of the first matching event (missing with none).
    FirstTime,
    /// Timestamp of the last matching event (missing with none).
    LastTime,
}

impl Measure {
    /// The measure's name in the language (`count`, `sum`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Measure::Count => "count",
            Measure::Sum(_) => "sum",
            Measure::Avg(_) => "avg",
            Measure::Min(_) => "min",
            Measure::Max(_) => "max",
            Measure::Distinct(_) => "distinct",
            Measure::ActiveDays => "active_days",
            Measure::FirstTime => "first_time",
            Measure::LastTime => "last_time",
        }
    }

    /// The event column measured, for those measures that have one.
    pub fn column(&self) -> Option<&str> {
        match self {
            Measure::Sum(c) | Measure::Avg(c) | Measure::Min(c) | Measure::Max(c) => Some(c),
            Measure::Distinct(c) => Some(c),
            _ => None,
        }
    }

    /// Whether the measure is a timestamp (`first_time`, `last_time`) rather than a number:
    /// it decides which operators and values the comparison takes.
    pub fn is_instant(&self) -> bool {
        matches!(self, Measure::FirstTime | Measure::LastTime)
    }

    /// Whether the measured column must be numeric (`sum`, `avg`, `min`, `max`).
    pub fn needs_numeric_column(&self) -> bool {
        matches!(
            self,
            Measure::Sum(_) | Measure::Avg(_) | Measure::Min(_) | Measure::Max(_)
        )
    }

    /// Whether a customer without a matching value has no measure at all (and so fails every
    /// comparison and is outside a percent ranking) rather than a zero.
    pub fn is_missing_without_events(&self) -> bool {
        matches!(
            self,
            Measure::Avg(_)
                | Measure::Min(_)
                | Measure::Max(_)
                | Measure::FirstTime
                | Measure::LastTime
        )
    }

    /// The measure as JSON in the language.
    pub fn to_json(&self) -> Json {
        match self.column() {
            Some(column) => json!({ self.name(): column }),
            None => json!(self.name()),
        }
    }
}

/// Every operator of the language. Which ones a condition may use depends on the column's type
/// or the measure; that is checked when parsing (what the value alone decides) and when
/// validating against the store's schema (what the column's type decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `eq`: equal (text, number, timestamp, boolean); a list of texts means any of them.
    Eq,
    /// `neq`: set and not equal (to any listed text).
    Neq,
    /// `in`: text equal to one of the listed.
    In,
    /// `not_in`: set text equal to none of the listed.
    NotIn,
    /// `contains`: text contains (one of) the value(s).
    Contains,
    /// `not_contains`: set text contains none of the values.
    NotContains,
    /// `starts_with`: text starts with (one of) the value(s).
    StartsWith,
    /// `ends_with`: text ends with (one of) the value(s).
    EndsWith,
    /// `domain_in`: the e-mail's domain is (under) a listed one; `email` only.
    DomainIn,
    /// `gt`: greater than a number or instant.
    Gt,
    /// `gte`: greater than or equal.
    Gte,
    /// `lt`: less than.
    Lt,
    /// `lte`: less than or equal.
    Lte,
    /// `between`: `lo <= x <= hi`, both ends included.
    Between,
    /// `within_last`: `as_of - d < t <= as_of`.
    WithinLast,
    /// `older_than`: `t <= as_of - d`.
    OlderThan,
    /// `is_set`: not null (a list: at least one element); takes no value.
    IsSet,
    /// `is_not_set`: null (a list: empty or null); takes no value.
    IsNotSet,
    /// `has_any`: a list of texts holds at least one of the values.
    HasAny,
    /// `has_all`: a list of texts holds every value.
    HasAll,
    /// `has_none`: a list of texts holds none of the values.
    HasNone,
    /// `top_percent`: among the highest `v` % of a numeric measure or of `first_time` /
    /// `last_time` (later ranks higher).
    TopPercent,
    /// `bottom_percent`: among the lowest `v` % of the same.
    BottomPercent,
}

impl Op {
    /// Every operator, in the order the spec introduces them.
    pub const ALL: [Op; 23] = [
        Op::Eq,
        Op::Neq,
        Op::In,
        Op::NotIn,
        Op::Contains,
        Op::NotContains,
        Op::StartsWith,
        Op::EndsWith,
        Op::DomainIn,
        Op::Gt,
        Op::Gte,
        Op::Lt,
        Op::Lte,
        Op::Between,
        Op::WithinLast,
        Op::OlderThan,
        Op::IsSet,
        Op::IsNotSet,
        Op::HasAny,
        Op::HasAll,
        Op::HasNone,
        Op::TopPercent,
        Op::BottomPercent,
    ];

    /// The operators of text columns (`domain_in` only on `email`); `ignore_case` goes with
    /// these only.
    pub const TEXT: [Op; 9] = [
        Op::Eq,
        Op::Neq,
        Op::In,
        Op::NotIn,
        Op::Contains,
        Op::NotContains,
        Op::StartsWith,
        Op::EndsWith,
        Op::DomainIn,
    ];

    /// The operators of number and decimal columns and of numeric measures.
    pub const NUMBER: [Op; 7] = [
        Op::Eq,
        Op::Neq,
        Op::Gt,
        Op::Gte,
        Op::Lt,
        Op::Lte,
        Op::Between,
    ];

    /// The operators of timestamp and date columns and of `first_time`/`last_time`.
    pub const TIMESTAMP: [Op; 9] = [
        Op::Eq,
        Op::Neq,
        Op::Gt,
        Op::Gte,
        Op::Lt,
        Op::Lte,
        Op::Between,
        Op::WithinLast,
        Op::OlderThan,
    ];

    /// The operators of list-of-text columns.
    pub const LIST: [Op; 3] = [Op::HasAny, Op::HasAll, Op::HasNone];

    /// The operators every column has; they take no value.
    pub const PRESENCE: [Op; 2] = [Op::IsSet, Op::IsNotSet];

    /// The ranking operators, for event measures only: numeric ones and `first_time` /
    /// `last_time`.
    pub const PERCENT: [Op; 2] = [Op::TopPercent, Op::BottomPercent];

    /// The operator's name in the language.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Neq => "neq",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::Contains => "contains",
            Op::NotContains => "not_contains",
            Op::StartsWith => "starts_with",
            Op::EndsWith => "ends_with",
            Op::DomainIn => "domain_in",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Between => "between",
            Op::WithinLast => "within_last",
            Op::OlderThan => "older_than",
            Op::IsSet => "is_set",
            Op::IsNotSet => "is_not_set",
            Op::HasAny => "has_any",
            Op::HasAll => "has_all",
            Op::HasNone => "has_none",
            Op::TopPercent => "top_percent",
            Op::BottomPercent => "bottom_percent",
        }
    }

    /// Whether the operator takes a `value` (all but `is_set` / `is_not_set`).
    pub fn takes_value(self) -> bool {
        !Op::PRESENCE.contains(&self)
    }

    /// Whether this is a text operator, the only ones `ignore_case` may go with.
    pub fn is_text(self) -> bool {
        Op::TEXT.contains(&self)
    }

    /// The names of `ops`, comma-separated, for the `allowed` of a problem.
    pub fn list(ops: &[Op]) -> String {
        ops.iter()
            .map(|op| op.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl FromStr for Op {
    type Err = Error;

    fn from_str(text: &str) -> Result<Op, Error> {
        Op::ALL
            .into_iter()
            .find(|op| op.as_str() == text)
            .ok_or_else(|| Error::syntax(text, Op::list(&Op::ALL), "not an operator"))
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operand of an operator, already in the type the operator needs.
///
/// Parsing decides the variant from the operator and the JSON alone; the one case it cannot
/// decide is a string given to `eq`/`neq`, which is text on a text column and an instant on a
/// timestamp or date column. That stays [`Value::Text`], validation checks it is an instant
/// where the column needs one, and [`Value::instant_in`] reads it in the store's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A JSON string: text to compare, or (with `eq`/`neq` on a timestamp column) an instant.
    Text(String),
    /// A non-empty JSON list of strings: "any of these" for text operators, the set for
    /// `has_any`/`has_all`/`has_none`.
    TextList(Vec<String>),
    /// A JSON number, exactly.
    Number(Decimal),
    /// A JSON boolean, for `eq` on a boolean column.
    Bool(bool),
    /// An instant, resolved in the store's zone, for ordering operators on timestamps.
    Instant(DateTime<Utc>),
    /// A duration, for `within_last` / `older_than`.
    Duration(Duration),
    /// `between` on numbers: `[lo, hi]` with `lo <= hi`.
    NumberRange(Decimal, Decimal),
    /// `between` on timestamps: `[lo, hi]` with `lo <= hi`.
    InstantRange(DateTime<Utc>, DateTime<Utc>),
}

impl Value {
    /// The operand as JSON in the language.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Text(text) => Json::String(text.clone()),
            Value::TextList(items) => {
                Json::Array(items.iter().cloned().map(Json::String).collect())
            }
            Value::Number(n) => Json::Number(n.to_json()),
            Value::Bool(b) => Json::Bool(*b),
            Value::Instant(t) => Json::String(format_instant(t)),
            Value::Duration(d) => Json::String(d.to_string()),
            Value::NumberRange(lo, hi) => {
                Json::Array(vec![Json::Number(lo.to_json()), Json::Number(hi.to_json())])
            }
            Value::InstantRange(lo, hi) => json!([format_instant(lo), format_instant(hi)]),
        }
    }

    /// The texts of a text operand: one for [`Value::Text`], all for [`Value::TextList`] —
    /// "a list value means any of these", so a compiler can treat both alike.
    pub fn texts(&self) -> Option<Vec<&str>> {
        match self {
            Value::Text(text) => Some(vec![text.as_str()]),
            Value::TextList(items) => Some(items.iter().map(String::as_str).collect()),
            _ => None,
        }
    }

    /// The operand as an instant: an [`Value::Instant`] as is, a [`Value::Text`] read as an
    /// instant in the store's zone `tz` (the `eq`/`neq` case on timestamp columns, which
    /// validation has checked); `None` for anything else.
    pub fn instant_in(&self, tz: Tz) -> Option<DateTime<Utc>> {
        match self {
            Value::Instant(t) => Some(*t),
            Value::Text(text) => parse_instant(text, tz).ok(),
            _ => None,
        }
    }

    /// A few words naming what kind of operand this is, for problems.
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Text(_) => "a string",
            Value::TextList(_) => "a list of strings",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Instant(_) => "an instant",
            Value::Duration(_) => "a duration",
            Value::NumberRange(..) => "a range of numbers",
            Value::InstantRange(..) => "a range of instants",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_definition;
    use crate::test_support::conformance_scenarios;
    use serde_json::json;

    fn parse(doc: Json, tz: Tz) -> SegmentDefinition {
        parse_definition(&doc, tz).unwrap_or_else(|p| panic!("{doc}: {p}"))
    }

    #[test]
    fn conformance_definitions_round_trip() {
        for tz in [Tz::UTC, Tz::Europe__Istanbul] {
            for (scenario, docs) in conformance_scenarios() {
                for doc in docs {
                    let def = parse(doc.clone(), tz);
                    let again = parse(def.to_json(), tz);
                    assert_eq!(again, def, "scenario {scenario}: {doc}");
                    // Writing is stable: the written form of the re-read definition is the same.
                    assert_eq!(again.to_json(), def.to_json());
                }
            }
        }
    }

    #[test]
    fn every_construct_round_trips() {
        let doc = json!({
            "id": "everything_1",
            "name": "Favorisine ürün ekleyip satın almayanlar",
            "description": "İyi müşteriler: Toptancı",
            "refresh": "30 6 * * 1-5",
            "condition": {"all": [
                {"not": {"segment": "other"}},
                {"bucket": {"salt": "kış-2025", "from": 10, "to": 20}},
                {"sql": "SELECT customer_id FROM customers"},
                {"attribute": "customer_group", "op": "eq", "value": "İ", "ignore_case": true},
                {"attribute": "tags", "op": "has_all", "value": ["VIP", "Kara Liste"]},
                {"attribute": "total_order_amount", "op": "between", "value": [37.535, 1e2]},
                {"attribute": "registered_at", "op": "between",
                 "value": ["2025-01-01", "2025-11-28T12:30:00.5+03:00"]},
                {"attribute": "birth_date", "op": "eq", "value": "1990-05-01"},
                {"attribute": "password_updated_at", "op": "older_than", "value": "24h"},
                {"attribute": "email", "op": "is_set"},
                {"any": [
                    {"event": ["order_created", "order_delivered"],
                     "where": [{"property": "currency", "op": "in", "value": ["TRY", "EUR"],
                                "ignore_case": true},
                               {"property": "quantity", "op": "gte", "value": -2.5}],
                     "period": {"between": ["2025-11-28", "2025-12-02T00:00:00Z"]},
                     "measure": {"max": "amount"}, "op": "top_percent", "value": 12.5},
                    {"event": "order_created", "period": {"since": "2025-01-01"},
                     "measure": "first_time", "op": "between",
                     "value": ["2025-01-01", "2025-02-01T00:00:00.000001Z"]},
                    {"event": "product_viewed", "measure": "active_days",
                     "period": {"before_last": "2w"}, "op": "neq", "value": 0},
                    {"event": "product_viewed", "measure": {"distinct": "product_id"},
                     "op": "gt", "value": 3},
                    {"event": "order_created"},
                    {"event": "product_added_to_cart", "period": {"last": "90m"},
                     "not_followed_by": {"event": ["order_created"], "within": "2h",
                                         "where": [{"property": "payment_method",
                                                    "op": "eq", "value": "credit_card"}]}}
                ]}
            ]}
        });
        for tz in [Tz::UTC, Tz::Europe__Istanbul, Tz::America__Santiago] {
            let def = parse(doc.clone(), tz);
            assert_eq!(parse(def.to_json(), tz), def);
            // Instants are written resolved, so any zone reads the stored form the same way.
            assert_eq!(parse(def.to_json(), Tz::Asia__Tokyo), def);
        }
        let def = parse(doc, Tz::UTC);
        assert_eq!(
            def.to_json()["name"],
            "Favorisine ürün ekleyip satın almayanlar"
        );
        assert_eq!(def.to_json()["refresh"], "30 6 * * 1-5");
        assert_eq!(
            def.to_json()["condition"]["all"][3],
            json!({"attribute": "customer_group", "op": "eq", "value": "İ", "ignore_case": true})
        );
        assert_eq!(
            def.to_json()["condition"]["all"][10]["any"][1]["value"],
            json!(["2025-01-01T00:00:00Z", "2025-02-01T00:00:00.000001Z"])
        );
    }

    #[test]
    fn defaults_are_filled_and_written_canonically() {
        let def = parse(
            json!({"id": "buyers", "condition": {"event": "order_created"}}),
            Tz::UTC,
        );
        assert_eq!(def.name, "buyers");
        assert_eq!(def.description, "");
        assert_eq!(def.refresh, Refresh::Manual);
        let Condition::Event(event) = &def.condition else {
            panic!("an event condition")
        };
        assert_eq!(event.period, Period::AllTime);
        assert_eq!(event.measure, Measure::Count);
        assert_eq!(event.comparison, None);
        assert_eq!(
            event.effective_comparison(),
            Some(Comparison {
                op: Op::Gte,
                value: Value::Number(Decimal::new(1, 0).unwrap())
            })
        );
        assert_eq!(
            def.to_json(),
            json!({"id": "buyers", "name": "buyers", "refresh": "manual",
                   "condition": {"event": "order_created"}})
        );
    }

    #[test]
    fn references_are_listed_once_in_order() {
        let def = parse(
            json!({"id": "x", "condition": {"all": [
                {"segment": "b"},
                {"not": {"segment": "a"}},
                {"any": [{"segment": "b"}, {"attribute": "email", "op": "is_set"}]}
            ]}}),
            Tz::UTC,
        );
        assert_eq!(def.references(), vec!["b", "a"]);
        let paths: Vec<String> = def
            .references_with_paths()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(
            paths,
            [
                "condition.all[0].segment",
                "condition.all[1].not.segment",
                "condition.all[2].any[0].segment"
            ]
        );
    }

    #[test]
    fn refresh_cadences_and_their_schedules() {
        assert_eq!("manual".parse::<Refresh>().unwrap(), Refresh::Manual);
        assert_eq!(
            "hourly".parse::<Refresh>().unwrap().cron_expression(),
            Some("0 * * * *")
        );
        assert_eq!(
            "nightly".parse::<Refresh>().unwrap().cron_expression(),
            Some("0 3 * * *")
        );
        assert!(Refresh::Manual.schedule().is_none());
        assert!(Refresh::Nightly.schedule().is_some());
        let cron: Refresh = "*/15 8-18 * * mon-fri".parse().unwrap();
        assert_eq!(cron, Refresh::Cron("*/15 8-18 * * mon-fri".into()));
        assert!(cron.schedule().is_some());
        for bad in [
            "weekly",
            "",
            "0 3 * *",
            "0 0 3 * * *",
            "61 * * * *",
            "@daily",
            "0 25 * * *",
            "Hourly",
        ] {
            assert!(bad.parse::<Refresh>().is_err(), "{bad}");
        }
    }

    #[test]
    fn operators_read_and_write_their_names() {
        for op in Op::ALL {
            assert_eq!(op.as_str().parse::<Op>().unwrap(), op);
            assert_eq!(op.to_string(), op.as_str());
        }
        assert!("equals".parse::<Op>().is_err());
        assert!(!Op::IsSet.takes_value() && Op::Between.takes_value());
        assert!(Op::DomainIn.is_text() && !Op::HasAny.is_text());
    }

    #[test]
    fn serialize_is_to_json() {
        let def = parse(
            json!({"id": "t", "condition": {"attribute": "customer_group", "op": "eq",
                                            "value": "Toptancı"}}),
            Tz::UTC,
        );
        assert_eq!(serde_json::to_value(&def).unwrap(), def.to_json());
        assert!(serde_json::to_string(&def).unwrap().contains("Toptancı"));
    }

    #[test]
    fn text_values_read_as_instants_in_the_store_zone() {
        let text = Value::Text("2025-11-28".into());
        assert_eq!(
            text.instant_in(Tz::Europe__Istanbul)
                .map(|t| format_instant(&t)),
            Some("2025-11-27T21:00:00Z".to_string())
        );
        assert_eq!(Value::Text("soon".into()).instant_in(Tz::UTC), None);
        assert_eq!(
            Value::TextList(vec!["a".into(), "b".into()]).texts(),
            Some(vec!["a", "b"])
        );
    }
}
