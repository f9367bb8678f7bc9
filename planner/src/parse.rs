//! JSON → [`SegmentDefinition`], collecting every problem.
//!
//! The document is walked by hand rather than through serde derives: a derive stops at the
//! first error, and the spec wants every problem of a refused definition listed, each with its
//! JSON path, what was found and what is allowed. Each step below reports what is wrong where
//! it is and returns `None`, and the walk goes on with the siblings.
//!
//! What needs the store's schema (does the column exist, does the operator fit its type, do
//! referenced segments exist) is left to [`crate::validate_set`]; everything the document alone
//! decides is checked here.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value as Json};

use crate::decimal::Decimal;
use crate::definition::{
    AttributeCondition, Comparison, Condition, EventCondition, FollowUp, Measure, Op, Period,
    PropertyFilter, REFRESH_ALLOWED, Refresh, SegmentDefinition, Value,
};
use crate::error::{Error, Problem, Problems, found, join, quote};
use crate::time::{DURATION_ALLOWED, Duration, INSTANT_ALLOWED, parse_instant};

mod sequence;

/// The fields of a definition.
pub const DEFINITION_FIELDS: [&str; 5] = ["id", "name", "description", "refresh", "condition"];
/// The keys that name a kind of condition; a condition object has exactly one of them.
pub const CONDITION_KINDS: [&str; 9] = [
    "all",
    "any",
    "not",
    "segment",
    "bucket",
    "sql",
    "attribute",
    "event",
    "sequence",
];
/// The fields of an attribute condition.
pub const ATTRIBUTE_FIELDS: [&str; 4] = ["attribute", "op", "value", "ignore_case"];
/// The fields of an event condition.
pub const EVENT_FIELDS: [&str; 7] = [
    "event",
    "where",
    "period",
    "measure",
    "op",
    "value",
    "not_followed_by",
];
/// The fields of a `where` filter.
pub const FILTER_FIELDS: [&str; 4] = ["property", "op", "value", "ignore_case"];
/// The fields of `not_followed_by`.
pub const FOLLOW_UP_FIELDS: [&str; 3] = ["event", "within", "where"];
/// The fields of a sequence condition.
pub const SEQUENCE_FIELDS: [&str; 3] = ["sequence", "within", "period"];
/// The fields of a sequence's step.
pub const STEP_FIELDS: [&str; 2] = ["event", "where"];
/// The fields of a bucket.
pub const BUCKET_FIELDS: [&str; 3] = ["salt", "from", "to"];
/// The keys of an object period.
pub const PERIOD_KINDS: [&str; 4] = ["last", "before_last", "since", "between"];
/// The measures written as a bare string.
pub const PLAIN_MEASURES: [&str; 4] = ["count", "active_days", "first_time", "last_time"];
/// The measures written as `{"<name>": "<column>"}`.
pub const COLUMN_MEASURES: [&str; 5] = ["sum", "avg", "min", "max", "distinct"];

const ID_ALLOWED: &str = "a segment id `[a-z0-9][a-z0-9_-]{0,63}`";
const PERIOD_ALLOWED: &str = "`\"all_time\"`, `{\"last\": duration}`, `{\"before_last\": duration}`, \
     `{\"since\": instant}` or `{\"between\": [from, to]}`";
const MEASURE_ALLOWED: &str = "`\"count\"`, `\"active_days\"`, `\"first_time\"`, `\"last_time\"`, \
     or `{\"sum\" | \"avg\" | \"min\" | \"max\" | \"distinct\": \"<events column>\"}`";
const EVENTS_ALLOWED: &str = "an event type (string) or a non-empty list of them";
const TEXTS_ALLOWED: &str = "a string or a non-empty list of strings";
const LIST_ALLOWED: &str = "a non-empty list of strings";
const PERCENT_ALLOWED: &str = "a number in (0, 100]";

/// Whether `id` is a valid segment id, `[a-z0-9][a-z0-9_-]{0,63}`: for definitions, and for
/// callers that take ids from elsewhere (a URL path, a command line).
pub fn is_valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && matches!(b[0], b'a'..=b'z' | b'0'..=b'9')
        && b[1..]
            .iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// Reads one definition, resolving instants in the store's time zone `tz`.
///
/// Refuses with every problem found, each located by its JSON path (`condition.all[2].op`,
/// empty for the document itself). Checks everything the document decides alone; what depends
/// on the store (columns, their types, other segments) is [`crate::validate_set`]'s.
pub fn parse_definition(json: &Json, tz: Tz) -> Result<SegmentDefinition, Problems> {
    let mut parser = Parser {
        tz,
        problems: Problems::new(),
    };
    let definition = parser.definition(json);
    match definition {
        Some(definition) if parser.problems.is_empty() => Ok(definition),
        _ => {
            if parser.problems.is_empty() {
                // Every `None` above reports why; this only guards that promise.
                parser.problem("", found(Some(json)), "a definition", "not a definition");
            }
            Err(parser.problems)
        }
    }
}

/// Reads several definitions as one set (`segment put FILE…`): every problem of every one.
///
/// Follows the convention of [`crate::validate_set`]: with more than one document, each path is
/// prefixed with the document's index (`[1].condition.op`); with one, paths are as
/// [`parse_definition`] gives them.
pub fn parse_definitions(docs: &[Json], tz: Tz) -> Result<Vec<SegmentDefinition>, Problems> {
    let mut problems = Problems::new();
    let mut definitions = Vec::with_capacity(docs.len());
    for (i, doc) in docs.iter().enumerate() {
        match parse_definition(doc, tz) {
            Ok(definition) => definitions.push(definition),
            Err(found) if docs.len() > 1 => problems.extend(found.under(&format!("[{i}]"))),
            Err(found) => problems.extend(found),
        }
    }
    problems.into_result(definitions)
}

struct Parser {
    tz: Tz,
    problems: Problems,
}

/// What a `between` range may hold.
#[derive(Clone, Copy, PartialEq)]
enum RangeOf {
    Numbers,
    Instants,
    Either,
}

impl Parser {
    fn problem(
        &mut self,
        path: &str,
        found: impl Into<String>,
        allowed: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.problems
            .push(Problem::new(path, found, allowed, message));
    }

    /// A problem at `path` with `value` as what was found there.
    fn refuse(
        &mut self,
        path: &str,
        value: &Json,
        allowed: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.problem(path, found(Some(value)), allowed, message);
    }

    /// Every item of `items` parsed by `parse` at `path[i]`: all of them, so that every
    /// problem is reported, and `None` when any failed.
    fn each<T>(
        &mut self,
        items: &[Json],
        path: &str,
        mut parse: impl FnMut(&mut Self, &Json, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let parsed: Vec<Option<T>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| parse(self, item, &format!("{path}[{i}]")))
            .collect();
        parsed.into_iter().collect()
    }

    fn syntax(&mut self, path: &str, error: Error) {
        self.problems.extend(error.into_problems(path));
    }

    fn missing(&mut self, path: &str, allowed: impl Into<String>, what: &str) {
        self.problem(path, "nothing", allowed, format!("{what} is required"));
    }

    fn wrong_type(&mut self, path: &str, value: &Json, allowed: impl Into<String>) {
        let message = format!("{} is not allowed here", json_kind(value));
        self.refuse(path, value, allowed, message);
    }

    fn unknown_fields(&mut self, object: &Map<String, Json>, path: &str, known: &[&str]) {
        for (key, value) in object {
            if !known.contains(&key.as_str()) {
                self.refuse(
                    &join(path, key),
                    value,
                    known.join(", "),
                    format!("unknown field `{key}`"),
                );
            }
        }
    }

    fn object<'a>(
        &mut self,
        value: &'a Json,
        path: &str,
        allowed: &str,
    ) -> Option<&'a Map<String, Json>> {
        match value {
            Json::Object(object) => Some(object),
            other => {
                self.wrong_type(path, other, allowed);
                None
            }
        }
    }

    /// A required non-empty string naming something (a column, a salt).
    fn name(
        &mut self,
        value: Option<&Json>,
        path: &str,
        allowed: &str,
        what: &str,
    ) -> Option<String> {
        match value {
            None => {
                self.missing(path, allowed, what);
                None
            }
            Some(Json::String(text)) if !text.is_empty() => Some(text.clone()),
            Some(Json::String(_)) => {
                self.problem(path, "\"\"", allowed, format!("{what} is empty"));
                None
            }
            Some(other) => {
                self.wrong_type(path, other, allowed);
                None
            }
        }
    }

    fn definition(&mut self, json: &Json) -> Option<SegmentDefinition> {
        let object = self.object(
            json,
            "",
            "a JSON object with `id` and `condition` (and optionally `name`, `description`, `refresh`)",
        )?;
        self.unknown_fields(object, "", &DEFINITION_FIELDS);
        let id = match object.get("id") {
            None => {
                self.missing("id", ID_ALLOWED, "`id`");
                None
            }
            Some(value) => self.segment_id(value, "id"),
        };
        let name = self.optional_text(object.get("name"), "name");
        let description = self.optional_text(object.get("description"), "description");
        let refresh = match object.get("refresh") {
            None => Some(Refresh::Manual),
            Some(Json::String(text)) => match text.parse::<Refresh>() {
                Ok(refresh) => Some(refresh),
                Err(e) => {
                    self.syntax("refresh", e);
                    None
                }
            },
            Some(other) => {
                self.wrong_type("refresh", other, REFRESH_ALLOWED);
                None
            }
        };
        let condition = match object.get("condition") {
            None => {
                self.missing("condition", "a condition object", "`condition`");
                None
            }
            Some(value) => self.condition(value, "condition"),
        };
        let id = id?;
        Some(SegmentDefinition {
            name: name?.unwrap_or_else(|| id.clone()),
            description: description?.unwrap_or_default(),
            refresh: refresh?,
            condition: condition?,
            id,
        })
    }

    /// `Some(None)` when absent, `Some(Some(text))` for a string, `None` (reported) otherwise.
    fn optional_text(&mut self, value: Option<&Json>, path: &str) -> Option<Option<String>> {
        match value {
            None => Some(None),
            Some(Json::String(text)) => Some(Some(text.clone())),
            Some(other) => {
                self.wrong_type(path, other, "a string (free text, any language)");
                None
            }
        }
    }

    fn segment_id(&mut self, value: &Json, path: &str) -> Option<String> {
        match value {
            Json::String(id) if is_valid_id(id) => Some(id.clone()),
            Json::String(id) => {
                self.problem(path, quote(id), ID_ALLOWED, "not a valid segment id");
                None
            }
            other => {
                self.wrong_type(path, other, ID_ALLOWED);
                None
            }
        }
    }

    fn condition(&mut self, value: &Json, path: &str) -> Option<Condition> {
        let kinds_allowed = format!(
            "an object with exactly one of: {}",
            CONDITION_KINDS.join(", ")
        );
        let object = self.object(value, path, &kinds_allowed)?;
        let kinds: Vec<&str> = CONDITION_KINDS
            .into_iter()
            .filter(|kind| object.contains_key(*kind))
            .collect();
        let kind = match kinds.as_slice() {
            [kind] => *kind,
            [] => {
                self.refuse(
                    path,
                    value,
                    kinds_allowed,
                    "not a condition: it has none of the condition kinds",
                );
                return None;
            }
            several => {
                let names = several.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>();
                self.refuse(
                    path,
                    value,
                    kinds_allowed,
                    format!(
                        "a condition has one kind; this one has {}",
                        names.join(" and ")
                    ),
                );
                return None;
            }
        };
        let inner = &object[kind];
        let inner_path = join(path, kind);
        match kind {
            "all" | "any" => {
                self.unknown_fields(object, path, &[kind]);
                let items = self.conditions(inner, &inner_path)?;
                Some(if kind == "all" {
                    Condition::All(items)
                } else {
                    Condition::Any(items)
                })
            }
            "not" => {
                self.unknown_fields(object, path, &["not"]);
                Some(Condition::Not(Box::new(
                    self.condition(inner, &inner_path)?,
                )))
            }
            "segment" => {
                self.unknown_fields(object, path, &["segment"]);
                Some(Condition::Segment(self.segment_id(inner, &inner_path)?))
            }
            "bucket" => {
                self.unknown_fields(object, path, &["bucket"]);
                self.bucket(inner, &inner_path)
            }
            "sql" => {
                self.unknown_fields(object, path, &["sql"]);
                let allowed = "a non-empty SQL query returning a `customer_id` column";
                match inner {
                    Json::String(sql) if !sql.trim().is_empty() => {
                        Some(Condition::Sql(sql.clone()))
                    }
                    Json::String(sql) => {
                        self.problem(&inner_path, quote(sql), allowed, "the SQL query is empty");
                        None
                    }
                    other => {
                        self.wrong_type(&inner_path, other, allowed);
                        None
                    }
                }
            }
            "attribute" => self.attribute(object, path).map(Condition::Attribute),
            "sequence" => self.sequence(object, path).map(Condition::Sequence),
            _ => self.event(object, path).map(Condition::Event),
        }
    }

    /// The items of `all` / `any`: a non-empty list of conditions.
    fn conditions(&mut self, value: &Json, path: &str) -> Option<Vec<Condition>> {
        let allowed = "a non-empty list of conditions";
        let Json::Array(items) = value else {
            self.wrong_type(path, value, allowed);
            return None;
        };
        if items.is_empty() {
            self.problem(path, "[]", allowed, "an empty list of conditions");
            return None;
        }
        self.each(items, path, Self::condition)
    }

    fn bucket(&mut self, value: &Json, path: &str) -> Option<Condition> {
        let object = self.object(
            value,
            path,
            "an object `{\"salt\": string, \"from\": integer, \"to\": integer}`",
        )?;
        self.unknown_fields(object, path, &BUCKET_FIELDS);
        let salt = match object.get("salt") {
            None => {
                self.missing(&join(path, "salt"), "a string", "`salt`");
                None
            }
            Some(Json::String(salt)) => Some(salt.clone()),
            Some(other) => {
                self.wrong_type(&join(path, "salt"), other, "a string");
                None
            }
        };
        let from = self.bucket_bound(object.get("from"), &join(path, "from"));
        let to = self.bucket_bound(object.get("to"), &join(path, "to"));
        let (from, to) = (from?, to?);
        if from > to {
            self.refuse(
                path,
                value,
                "integers with 0 <= from <= to <= 100",
                "`from` is greater than `to`",
            );
            return None;
        }
        Some(Condition::Bucket {
            salt: salt?,
            from,
            to,
        })
    }

    fn bucket_bound(&mut self, value: Option<&Json>, path: &str) -> Option<u8> {
        let allowed = "an integer from 0 to 100 (0 <= from <= to <= 100)";
        let Some(value) = value else {
            self.missing(path, allowed, "the bound");
            return None;
        };
        let Json::Number(number) = value else {
            self.wrong_type(path, value, allowed);
            return None;
        };
        let bound = Decimal::from_json(number)
            .ok()
            .and_then(|d| d.to_integer())
            .and_then(|i| u8::try_from(i).ok())
            .filter(|b| *b <= 100);
        if bound.is_none() {
            self.refuse(path, value, allowed, "not an integer from 0 to 100");
        }
        bound
    }

    fn attribute(&mut self, object: &Map<String, Json>, path: &str) -> Option<AttributeCondition> {
        self.unknown_fields(object, path, &ATTRIBUTE_FIELDS);
        let attribute = self.name(
            object.get("attribute"),
            &join(path, "attribute"),
            "the name of a column of `customers`",
            "the attribute",
        );
        let (op, value, ignore_case) = self.test(object, path)?;
        Some(AttributeCondition {
            attribute: attribute?,
            op,
            value,
            ignore_case,
        })
    }

    /// `op`, `value` and `ignore_case` of an attribute condition or a `where` filter: what the
    /// operator and the JSON alone decide (the column's type is checked by validation).
    fn test(
        &mut self,
        object: &Map<String, Json>,
        path: &str,
    ) -> Option<(Op, Option<Value>, bool)> {
        let op_path = join(path, "op");
        let column_ops: Vec<Op> = Op::ALL
            .into_iter()
            .filter(|op| !Op::PERCENT.contains(op))
            .collect();
        let op = match object.get("op") {
            None => {
                self.missing(&op_path, Op::list(&column_ops), "`op`");
                None
            }
            Some(Json::String(name)) => match name.parse::<Op>() {
                Ok(op) if Op::PERCENT.contains(&op) => {
                    self.problem(
                        &op_path,
                        quote(name),
                        Op::list(&column_ops),
                        format!("`{op}` ranks event measures only, not columns"),
                    );
                    None
                }
                Ok(op) => Some(op),
                Err(_) => {
                    self.problem(
                        &op_path,
                        quote(name),
                        Op::list(&column_ops),
                        "unknown operator",
                    );
                    None
                }
            },
            Some(other) => {
                self.wrong_type(&op_path, other, Op::list(&column_ops));
                None
            }
        };
        let ignore_case_path = join(path, "ignore_case");
        let ignore_case = match object.get("ignore_case") {
            None => Some(false),
            Some(Json::Bool(b)) => Some(*b),
            Some(other) => {
                self.wrong_type(&ignore_case_path, other, "true or false");
                None
            }
        };
        let op = op?;
        if ignore_case == Some(true) && !op.is_text() {
            self.problem(
                &ignore_case_path,
                "true",
                format!("only with the text operators: {}", Op::list(&Op::TEXT)),
                format!("`ignore_case` does not apply to `{op}`"),
            );
        }
        let value = self.column_value(op, object.get("value"), &join(path, "value"))?;
        Some((op, value, ignore_case?))
    }

    /// The `value` for `op` on a column whose type is not known yet. `Some(None)` when the
    /// operator takes none (and none is given).
    fn column_value(&mut self, op: Op, value: Option<&Json>, path: &str) -> Option<Option<Value>> {
        if !op.takes_value() {
            if let Some(value) = value {
                self.refuse(path, value, "nothing", format!("`{op}` takes no `value`"));
                return None;
            }
            return Some(None);
        }
        let allowed = match op {
            Op::Eq | Op::Neq => {
                "a string or non-empty list of strings (text), a number, an instant (timestamps) \
                 or a boolean"
            }
            Op::HasAny | Op::HasAll | Op::HasNone => LIST_ALLOWED,
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => "a number, or an instant for timestamp columns",
            Op::Between => "`[lo, hi]` of two numbers or two instants with lo <= hi",
            Op::WithinLast | Op::OlderThan => DURATION_ALLOWED,
            _ => TEXTS_ALLOWED,
        };
        let Some(value) = value else {
            self.missing(path, allowed, &format!("a `value` for `{op}`"));
            return None;
        };
        let parsed = match (op, value) {
            (Op::Eq | Op::Neq, Json::Number(n)) => self.number(n, path).map(Value::Number),
            (Op::Eq | Op::Neq, Json::Bool(b)) => Some(Value::Bool(*b)),
            (
                Op::Eq
                | Op::Neq
                | Op::In
                | Op::NotIn
                | Op::Contains
                | Op::NotContains
                | Op::StartsWith
                | Op::EndsWith
                | Op::DomainIn,
                Json::String(text),
            ) => Some(Value::Text(text.clone())),
            (
                Op::Eq
                | Op::Neq
                | Op::In
                | Op::NotIn
                | Op::Contains
                | Op::NotContains
                | Op::StartsWith
                | Op::EndsWith
                | Op::DomainIn
                | Op::HasAny
                | Op::HasAll
                | Op::HasNone,
                Json::Array(items),
            ) => self.text_list(items, path),
            (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Json::Number(n)) => {
                self.number(n, path).map(Value::Number)
            }
            (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Json::String(text)) => {
                match parse_instant(text, self.tz) {
                    Ok(at) => Some(Value::Instant(at)),
                    // The column's type is not known yet: a string can only be an instant
                    // here, but the writer may have meant a number (`"abc"` on `amount`).
                    Err(e) => {
                        for mut problem in e.into_problems(path) {
                            problem.allowed = allowed.to_string();
                            problem.message = format!(
                                "`{op}` compares with a number, or with an instant on a timestamp \
                                 column, and this string is not an instant: {}",
                                problem.message
                            );
                            self.problems.push(problem);
                        }
                        None
                    }
                }
            }
            (Op::Between, _) => self.range(value, path, RangeOf::Either),
            (Op::WithinLast | Op::OlderThan, Json::String(text)) => {
                self.duration(text, path).map(Value::Duration)
            }
            _ => {
                self.wrong_type(path, value, allowed);
                None
            }
        };
        parsed.map(Some)
    }

    /// The `value` of an event condition's comparison, typed for its measure.
    fn measure_value(
        &mut self,
        op: Op,
        measure: &Measure,
        value: &Json,
        path: &str,
    ) -> Option<Value> {
        let instant = measure.is_instant();
        let allowed = match op {
            Op::Between if instant => "`[lo, hi]` of two instants with lo <= hi",
            Op::Between => "`[lo, hi]` of two numbers with lo <= hi",
            Op::WithinLast | Op::OlderThan => DURATION_ALLOWED,
            Op::TopPercent | Op::BottomPercent => PERCENT_ALLOWED,
            _ if instant => INSTANT_ALLOWED,
            _ => "a number",
        };
        match (op, value) {
            (Op::Between, _) => {
                let of = if instant {
                    RangeOf::Instants
                } else {
                    RangeOf::Numbers
                };
                self.range(value, path, of)
            }
            (Op::TopPercent | Op::BottomPercent, Json::Number(n)) => {
                let percent = self.number(n, path)?;
                let hundred = Decimal::from(100);
                if percent <= Decimal::ZERO || percent > hundred {
                    self.refuse(path, value, allowed, "the percent is outside (0, 100]");
                    return None;
                }
                Some(Value::Number(percent))
            }
            (Op::WithinLast | Op::OlderThan, Json::String(text)) => {
                self.duration(text, path).map(Value::Duration)
            }
            (Op::Eq | Op::Neq | Op::Gt | Op::Gte | Op::Lt | Op::Lte, Json::String(text))
                if instant =>
            {
                self.instant(text, path).map(Value::Instant)
            }
            (Op::Eq | Op::Neq | Op::Gt | Op::Gte | Op::Lt | Op::Lte, Json::Number(n))
                if !instant =>
            {
                self.number(n, path).map(Value::Number)
            }
            _ => {
                self.wrong_type(path, value, allowed);
                None
            }
        }
    }

    fn number(&mut self, number: &serde_json::Number, path: &str) -> Option<Decimal> {
        match Decimal::from_json(number) {
            Ok(d) => Some(d),
            Err(e) => {
                self.syntax(path, e);
                None
            }
        }
    }

    fn instant(&mut self, text: &str, path: &str) -> Option<DateTime<Utc>> {
        match parse_instant(text, self.tz) {
            Ok(at) => Some(at),
            Err(e) => {
                self.syntax(path, e);
                None
            }
        }
    }

    fn duration(&mut self, text: &str, path: &str) -> Option<Duration> {
        match text.parse::<Duration>() {
            Ok(d) => Some(d),
            Err(e) => {
                self.syntax(path, e);
                None
            }
        }
    }

    fn text_list(&mut self, items: &[Json], path: &str) -> Option<Value> {
        if items.is_empty() {
            self.problem(path, "[]", LIST_ALLOWED, "an empty list");
            return None;
        }
        let mut texts = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match item {
                Json::String(text) => texts.push(text.clone()),
                other => {
                    self.wrong_type(&format!("{path}[{i}]"), other, "a string");
                    ok = false;
                }
            }
        }
        ok.then_some(Value::TextList(texts))
    }

    /// `[lo, hi]` with `lo <= hi`, of numbers or of instants.
    fn range(&mut self, value: &Json, path: &str, of: RangeOf) -> Option<Value> {
        let allowed = match of {
            RangeOf::Numbers => "`[lo, hi]` of two numbers with lo <= hi",
            RangeOf::Instants => "`[lo, hi]` of two instants with lo <= hi",
            RangeOf::Either => "`[lo, hi]` of two numbers or two instants with lo <= hi",
        };
        let Json::Array(items) = value else {
            self.wrong_type(path, value, allowed);
            return None;
        };
        let [lo, hi] = items.as_slice() else {
            self.refuse(
                path,
                value,
                allowed,
                format!("a range has 2 ends, not {}", items.len()),
            );
            return None;
        };
        let (lo_path, hi_path) = (format!("{path}[0]"), format!("{path}[1]"));
        let range = match (lo, hi) {
            (Json::Number(lo), Json::Number(hi)) if of != RangeOf::Instants => {
                let (lo, hi) = (self.number(lo, &lo_path), self.number(hi, &hi_path));
                let (lo, hi) = (lo?, hi?);
                (lo <= hi).then_some(Value::NumberRange(lo, hi))
            }
            (Json::String(lo), Json::String(hi)) if of != RangeOf::Numbers => {
                let (lo, hi) = (self.instant(lo, &lo_path), self.instant(hi, &hi_path));
                let (lo, hi) = (lo?, hi?);
                (lo <= hi).then_some(Value::InstantRange(lo, hi))
            }
            _ => {
                self.refuse(
                    path,
                    value,
                    allowed,
                    format!("a range of {} and {}", json_kind(lo), json_kind(hi)),
                );
                return None;
            }
        };
        if range.is_none() {
            self.refuse(
                path,
                value,
                allowed,
                "the range's low end is above its high end",
            );
        }
        range
    }

    fn event(&mut self, object: &Map<String, Json>, path: &str) -> Option<EventCondition> {
        self.unknown_fields(object, path, &EVENT_FIELDS);
        let events = self.event_types(object.get("event"), &join(path, "event"));
        let filters = match object.get("where") {
            None => Some(Vec::new()),
            Some(value) => self.filters(value, &join(path, "where")),
        };
        let period = match object.get("period") {
            None => Some(Period::AllTime),
            Some(value) => self.period(value, &join(path, "period")),
        };
        let measure = match object.get("measure") {
            None => Some(Measure::Count),
            Some(value) => self.measure(value, &join(path, "measure")),
        };
        let (comparison, not_followed_by) = match object.get("not_followed_by") {
            Some(value) => {
                for key in ["measure", "op", "value"] {
                    if let Some(given) = object.get(key) {
                        self.problem(
                            &join(path, key),
                            found(Some(given)),
                            "nothing: `measure`, `op` and `value` are refused with `not_followed_by`",
                            format!("`{key}` cannot go with `not_followed_by`"),
                        );
                    }
                }
                let follow_up = self.follow_up(value, &join(path, "not_followed_by"));
                (Some(None), follow_up.map(Some))
            }
            None => {
                let comparison = match &measure {
                    Some(measure) => self.comparison(object, path, measure),
                    None => None,
                };
                (comparison, Some(None))
            }
        };
        Some(EventCondition {
            events: events?,
            filters: filters?,
            period: period?,
            measure: measure?,
            comparison: comparison?,
            not_followed_by: not_followed_by?,
        })
    }

    /// `op` and `value` of an event condition without `not_followed_by`: both, or neither with
    /// the `count` measure (meaning `gte 1`). `Some(None)` for that default.
    fn comparison(
        &mut self,
        object: &Map<String, Json>,
        path: &str,
        measure: &Measure,
    ) -> Option<Option<Comparison>> {
        let ops: Vec<Op> = if measure.is_instant() {
            Op::TIMESTAMP.iter().chain(&Op::PERCENT).copied().collect()
        } else {
            Op::NUMBER.iter().chain(&Op::PERCENT).copied().collect()
        };
        let ops_allowed = format!("for the `{}` measure: {}", measure.name(), Op::list(&ops));
        let (op_path, value_path) = (join(path, "op"), join(path, "value"));
        let op = match object.get("op") {
            None => None,
            Some(Json::String(name)) => match name.parse::<Op>() {
                Ok(op) if ops.contains(&op) => Some(op),
                Ok(op) => {
                    self.problem(
                        &op_path,
                        quote(name),
                        ops_allowed.clone(),
                        format!("`{op}` does not apply to the `{}` measure", measure.name()),
                    );
                    return None;
                }
                Err(_) => {
                    self.problem(
                        &op_path,
                        quote(name),
                        ops_allowed.clone(),
                        "unknown operator",
                    );
                    return None;
                }
            },
            Some(other) => {
                self.wrong_type(&op_path, other, ops_allowed.clone());
                return None;
            }
        };
        match (op, object.get("value")) {
            (None, None) if *measure == Measure::Count => Some(None),
            (None, None) => {
                let why = format!(
                    "`op` and `value` are required with the `{}` measure (only `count` may leave \
                     both out, meaning gte 1)",
                    measure.name()
                );
                self.problem(&op_path, "nothing", ops_allowed, why.clone());
                self.problem(&value_path, "nothing", "a value for the operator", why);
                None
            }
            (None, Some(_)) => {
                self.problem(
                    &op_path,
                    "nothing",
                    ops_allowed,
                    "`value` is given without `op`: both or neither",
                );
                None
            }
            (Some(op), None) => {
                self.problem(
                    &value_path,
                    "nothing",
                    "a value for the operator",
                    format!("`op` `{op}` is given without `value`: both or neither"),
                );
                None
            }
            (Some(op), Some(value)) => {
                let value = self.measure_value(op, measure, value, &value_path)?;
                Some(Some(Comparison { op, value }))
            }
        }
    }

    fn event_types(&mut self, value: Option<&Json>, path: &str) -> Option<Vec<String>> {
        match value {
            None => {
                self.missing(path, EVENTS_ALLOWED, "`event`");
                None
            }
            Some(Json::String(event)) => Some(vec![event.clone()]),
            Some(Json::Array(items)) => match self.text_list(items, path)? {
                Value::TextList(events) => Some(events),
                _ => None,
            },
            Some(other) => {
                self.wrong_type(path, other, EVENTS_ALLOWED);
                None
            }
        }
    }

    fn filters(&mut self, value: &Json, path: &str) -> Option<Vec<PropertyFilter>> {
        let Json::Array(items) = value else {
            self.wrong_type(
                path,
                value,
                "a list of filters `{\"property\", \"op\", \"value\"}`",
            );
            return None;
        };
        self.each(items, path, Self::filter)
    }

    fn filter(&mut self, value: &Json, path: &str) -> Option<PropertyFilter> {
        let object = self.object(value, path, "a filter `{\"property\", \"op\", \"value\"}`")?;
        self.unknown_fields(object, path, &FILTER_FIELDS);
        let property = self.name(
            object.get("property"),
            &join(path, "property"),
            "the name of a column of `events`",
            "`property`",
        );
        let (op, value, ignore_case) = self.test(object, path)?;
        Some(PropertyFilter {
            property: property?,
            op,
            value,
            ignore_case,
        })
    }

    fn period(&mut self, value: &Json, path: &str) -> Option<Period> {
        match value {
            Json::String(text) if text == "all_time" => Some(Period::AllTime),
            Json::Object(object) => {
                self.unknown_fields(object, path, &PERIOD_KINDS);
                let kinds: Vec<&str> = PERIOD_KINDS
                    .into_iter()
                    .filter(|k| object.contains_key(*k))
                    .collect();
                let [kind] = kinds.as_slice() else {
                    self.refuse(path, value, PERIOD_ALLOWED, "a period has exactly one kind");
                    return None;
                };
                let inner = &object[*kind];
                let inner_path = join(path, kind);
                match (*kind, inner) {
                    ("last" | "before_last", Json::String(text)) => {
                        let d = self.duration(text, &inner_path)?;
                        Some(if *kind == "last" {
                            Period::Last(d)
                        } else {
                            Period::BeforeLast(d)
                        })
                    }
                    ("last" | "before_last", other) => {
                        self.wrong_type(&inner_path, other, DURATION_ALLOWED);
                        None
                    }
                    ("since", Json::String(text)) => {
                        self.instant(text, &inner_path).map(Period::Since)
                    }
                    ("since", other) => {
                        self.wrong_type(&inner_path, other, INSTANT_ALLOWED);
                        None
                    }
                    _ => match self.range(inner, &inner_path, RangeOf::Instants)? {
                        Value::InstantRange(from, to) => Some(Period::Between(from, to)),
                        _ => None,
                    },
                }
            }
            other => {
                self.wrong_type(path, other, PERIOD_ALLOWED);
                None
            }
        }
    }

    fn measure(&mut self, value: &Json, path: &str) -> Option<Measure> {
        match value {
            Json::String(name) => match name.as_str() {
                "count" => Some(Measure::Count),
                "active_days" => Some(Measure::ActiveDays),
                "first_time" => Some(Measure::FirstTime),
                "last_time" => Some(Measure::LastTime),
                other if COLUMN_MEASURES.contains(&other) => {
                    self.problem(
                        path,
                        quote(name),
                        MEASURE_ALLOWED,
                        format!("`{other}` needs a column: `{{\"{other}\": \"amount\"}}`"),
                    );
                    None
                }
                _ => {
                    self.problem(path, quote(name), MEASURE_ALLOWED, "unknown measure");
                    None
                }
            },
            Json::Object(object) => {
                self.unknown_fields(object, path, &COLUMN_MEASURES);
                let kinds: Vec<&str> = COLUMN_MEASURES
                    .into_iter()
                    .filter(|k| object.contains_key(*k))
                    .collect();
                let [kind] = kinds.as_slice() else {
                    self.refuse(
                        path,
                        value,
                        MEASURE_ALLOWED,
                        "a measure has exactly one kind",
                    );
                    return None;
                };
                let column = self.name(
                    object.get(*kind),
                    &join(path, kind),
                    "the name of a column of `events`",
                    "the measured column",
                )?;
                Some(match *kind {
                    "sum" => Measure::Sum(column),
                    "avg" => Measure::Avg(column),
                    "min" => Measure::Min(column),
                    "max" => Measure::Max(column),
                    _ => Measure::Distinct(column),
                })
            }
            other => {
                self.wrong_type(path, other, MEASURE_ALLOWED);
                None
            }
        }
    }

    fn follow_up(&mut self, value: &Json, path: &str) -> Option<FollowUp> {
        let object = self.object(
            value,
            path,
            "an object `{\"event\": …, \"within\": duration}` with an optional `where`",
        )?;
        self.unknown_fields(object, path, &FOLLOW_UP_FIELDS);
        let events = self.event_types(object.get("event"), &join(path, "event"));
        let within_path = join(path, "within");
        let within = match object.get("within") {
            None => {
                self.missing(&within_path, DURATION_ALLOWED, "`within`");
                None
            }
            Some(Json::String(text)) => self.duration(text, &within_path),
            Some(other) => {
                self.wrong_type(&within_path, other, DURATION_ALLOWED);
                None
            }
        };
        let filters = match object.get("where") {
            None => Some(Vec::new()),
            Some(value) => self.filters(value, &join(path, "where")),
        };
        Some(FollowUp {
            events: events?,
            within: within?,
            filters: filters?,
        })
    }
}

/// "a string", "a number", … for messages about a JSON value of the wrong type.
fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::conformance_scenarios;
    use serde_json::json;

    fn parse_ok(doc: Json, tz: Tz) -> SegmentDefinition {
        parse_definition(&doc, tz).unwrap_or_else(|p| panic!("{doc}: {p}"))
    }

    fn paths(doc: &Json) -> Vec<String> {
        match parse_definition(doc, Tz::UTC) {
            Ok(_) => Vec::new(),
            Err(problems) => {
                let mut paths: Vec<String> = problems.iter().map(|p| p.path.clone()).collect();
                paths.sort();
                paths
            }
        }
    }

    /// A definition around `condition`.
    fn with(condition: Json) -> Json {
        json!({"id": "s", "condition": condition})
    }

    fn condition_of(doc: Json, tz: Tz) -> Condition {
        parse_ok(with(doc), tz).condition
    }

    fn attribute_value(doc: Json, tz: Tz) -> Value {
        match condition_of(doc, tz) {
            Condition::Attribute(a) => a.value.expect("a value"),
            other => panic!("not an attribute condition: {other:?}"),
        }
    }

    #[test]
    fn every_conformance_definition_parses() {
        let mut count = 0;
        for (scenario, docs) in conformance_scenarios() {
            for doc in docs {
                for tz in [Tz::UTC, Tz::Europe__Istanbul] {
                    if let Err(problems) = parse_definition(&doc, tz) {
                        panic!("scenario {scenario}: {doc}\n{problems}");
                    }
                }
                count += 1;
            }
        }
        assert!(count >= 60, "only {count} conformance definitions");
    }

    #[test]
    fn bad_definitions_are_refused_where_they_are_wrong() {
        let attr = |op: &str, value: Json| json!({"attribute": "email", "op": op, "value": value});
        let cases: Vec<(Json, Vec<&str>)> = vec![
            (json!({}), vec!["condition", "id"]),
            (json!([]), vec![""]),
            (json!("segment"), vec![""]),
            (
                json!({"id": "Bad Id", "condition": {"segment": "x"}}),
                vec!["id"],
            ),
            (
                json!({"id": "-leading", "condition": {"segment": "x"}}),
                vec!["id"],
            ),
            (
                json!({"id": "a".repeat(65), "condition": {"segment": "x"}}),
                vec!["id"],
            ),
            (json!({"id": 7, "condition": {"segment": "x"}}), vec!["id"]),
            (
                json!({"id": "a", "condition": {"segment": "x"}, "colour": "red"}),
                vec!["colour"],
            ),
            (
                json!({"id": "a", "name": 5, "condition": {"segment": "x"}}),
                vec!["name"],
            ),
            (
                json!({"id": "a", "description": null, "condition": {"segment": "x"}}),
                vec!["description"],
            ),
            (
                json!({"id": "a", "refresh": "weekly", "condition": {"segment": "x"}}),
                vec!["refresh"],
            ),
            (
                json!({"id": "a", "refresh": "0 3 * *", "condition": {"segment": "x"}}),
                vec!["refresh"],
            ),
            (
                json!({"id": "a", "refresh": "0 0 3 * * *", "condition": {"segment": "x"}}),
                vec!["refresh"],
            ),
            (
                json!({"id": "a", "refresh": "61 * * * *", "condition": {"segment": "x"}}),
                vec!["refresh"],
            ),
            (
                json!({"id": "a", "refresh": 3, "condition": {"segment": "x"}}),
                vec!["refresh"],
            ),
            (with(json!("all")), vec!["condition"]),
            (
                with(json!({"atribute": "email", "op": "is_set"})),
                vec!["condition"],
            ),
            (
                with(json!({"attribute": "email", "event": "x", "op": "is_set"})),
                vec!["condition"],
            ),
            (with(json!({"all": []})), vec!["condition.all"]),
            (
                with(json!({"any": {"segment": "x"}})),
                vec!["condition.any"],
            ),
            (
                with(json!({"all": [{"segment": "x"}], "any": [{"segment": "y"}]})),
                vec!["condition"],
            ),
            (
                with(json!({"not": {"segment": "x"}, "note": "why"})),
                vec!["condition.note"],
            ),
            (
                with(json!({"segment": "Not An Id"})),
                vec!["condition.segment"],
            ),
            (with(json!({"sql": "  "})), vec!["condition.sql"]),
            (with(json!({"sql": 1})), vec!["condition.sql"]),
            (
                with(json!({"bucket": {"salt": "s", "from": 70, "to": 60}})),
                vec!["condition.bucket"],
            ),
            (
                with(json!({"bucket": {"salt": "s", "from": 0, "to": 101}})),
                vec!["condition.bucket.to"],
            ),
            (
                with(json!({"bucket": {"salt": "s", "from": -1, "to": 10}})),
                vec!["condition.bucket.from"],
            ),
            (
                with(json!({"bucket": {"salt": "s", "from": 1.5, "to": 10}})),
                vec!["condition.bucket.from"],
            ),
            (
                with(json!({"bucket": {"from": 0, "to": 10}})),
                vec!["condition.bucket.salt"],
            ),
            (
                with(json!({"bucket": {"salt": "s", "from": 0, "to": 10, "seed": 1}})),
                vec!["condition.bucket.seed"],
            ),
            (
                with(json!({"attribute": "email", "op": "equals", "value": "x"})),
                vec!["condition.op"],
            ),
            (
                with(json!({"attribute": "email", "value": "x"})),
                vec!["condition.op"],
            ),
            (
                with(json!({"attribute": "email", "op": "is_set", "value": true})),
                vec!["condition.value"],
            ),
            (
                with(json!({"attribute": "email", "op": "is_not_set", "value": null})),
                vec!["condition.value"],
            ),
            (
                with(json!({"attribute": "email", "op": "eq"})),
                vec!["condition.value"],
            ),
            (with(attr("eq", json!(null))), vec!["condition.value"]),
            (with(attr("eq", json!({"x": 1}))), vec!["condition.value"]),
            (with(attr("in", json!([]))), vec!["condition.value"]),
            (
                with(attr("in", json!([1, "a", 2]))),
                vec!["condition.value[0]", "condition.value[2]"],
            ),
            (with(attr("contains", json!(5))), vec!["condition.value"]),
            (with(attr("has_any", json!("VIP"))), vec!["condition.value"]),
            (
                with(attr("between", json!([5, 1]))),
                vec!["condition.value"],
            ),
            (with(attr("between", json!([1]))), vec!["condition.value"]),
            (
                with(attr("between", json!([1, 2, 3]))),
                vec!["condition.value"],
            ),
            (
                with(attr("between", json!([1, "2025-01-01"]))),
                vec!["condition.value"],
            ),
            (
                with(attr("between", json!(["2025-02-01", "2025-01-01"]))),
                vec!["condition.value"],
            ),
            (
                with(attr("between", json!(["2025-01-01", "tomorrow"]))),
                vec!["condition.value[1]"],
            ),
            (with(attr("gt", json!(true))), vec!["condition.value"]),
            (
                with(attr("gt", json!("2025-11-28T12:30:00.1234567+03:00"))),
                vec!["condition.value"],
            ),
            (
                with(attr("gt", json!("2025-11-28T09:30:00"))),
                vec!["condition.value"],
            ),
            (
                with(attr("within_last", json!("30 days"))),
                vec!["condition.value"],
            ),
            (with(attr("older_than", json!(30))), vec!["condition.value"]),
            (with(attr("top_percent", json!(10))), vec!["condition.op"]),
            (
                with(json!({"attribute": "email", "op": "gt", "value": 1, "ignore_case": true})),
                vec!["condition.ignore_case"],
            ),
            (
                with(
                    json!({"attribute": "tags", "op": "has_any", "value": ["a"], "ignore_case": true}),
                ),
                vec!["condition.ignore_case"],
            ),
            (
                with(json!({"attribute": "email", "op": "eq", "value": "a", "ignore_case": "yes"})),
                vec!["condition.ignore_case"],
            ),
            (
                with(json!({"attribute": "", "op": "is_set"})),
                vec!["condition.attribute"],
            ),
            (
                with(json!({"attribute": "email", "op": "is_set", "where": []})),
                vec!["condition.where"],
            ),
            (with(json!({"event": []})), vec!["condition.event"]),
            (with(json!({"event": ["a", 1]})), vec!["condition.event[1]"]),
            (
                with(json!({"event": "x", "op": "gte"})),
                vec!["condition.value"],
            ),
            (
                with(json!({"event": "x", "value": 1})),
                vec!["condition.op"],
            ),
            (
                with(json!({"event": "x", "measure": {"sum": "amount"}})),
                vec!["condition.op", "condition.value"],
            ),
            (
                with(json!({"event": "x", "op": "gte", "value": "1"})),
                vec!["condition.value"],
            ),
            (
                with(json!({"event": "x", "op": "in", "value": ["a"]})),
                vec!["condition.op"],
            ),
            (
                with(json!({"event": "x", "op": "within_last", "value": "30d"})),
                vec!["condition.op"],
            ),
            (
                with(json!({"event": "x", "op": "is_set"})),
                vec!["condition.op"],
            ),
            (
                with(json!({"event": "x", "op": "top_percent", "value": 0})),
                vec!["condition.value"],
            ),
            (
                with(json!({"event": "x", "op": "top_percent", "value": 100.5})),
                vec!["condition.value"],
            ),
            (
                with(json!({"event": "x", "op": "bottom_percent", "value": -3})),
                vec!["condition.value"],
            ),
            (
                // first_time / last_time rank too (later ranks higher), by a percent.
                with(
                    json!({"event": "x", "measure": "first_time", "op": "top_percent", "value": 0}),
                ),
                vec!["condition.value"],
            ),
            (
                with(
                    json!({"event": "x", "measure": "last_time", "op": "bottom_percent",
                            "value": "2025-01-01"}),
                ),
                vec!["condition.value"],
            ),
            (
                with(json!({"event": "x", "measure": "last_time", "op": "gt", "value": 10})),
                vec!["condition.value"],
            ),
            (
                with(
                    json!({"event": "x", "measure": "first_time", "op": "between", "value": [1, 2]}),
                ),
                vec!["condition.value"],
            ),
            (
                with(json!({"event": "x", "measure": "sum", "op": "gt", "value": 1})),
                vec!["condition.measure"],
            ),
            (
                with(json!({"event": "x", "measure": "median", "op": "gt", "value": 1})),
                vec!["condition.measure"],
            ),
            (
                with(
                    json!({"event": "x", "measure": {"median": "amount"}, "op": "gt", "value": 1}),
                ),
                vec!["condition.measure", "condition.measure.median"],
            ),
            (
                with(
                    json!({"event": "x", "measure": {"sum": "amount", "avg": "amount"}, "op": "gt", "value": 1}),
                ),
                vec!["condition.measure"],
            ),
            (
                with(json!({"event": "x", "measure": {"sum": ""}, "op": "gt", "value": 1})),
                vec!["condition.measure.sum"],
            ),
            (
                with(json!({"event": "x", "period": "yesterday"})),
                vec!["condition.period"],
            ),
            (
                with(json!({"event": "x", "period": {"last": "30"}})),
                vec!["condition.period.last"],
            ),
            (
                with(json!({"event": "x", "period": {"last": "0d"}})),
                vec!["condition.period.last"],
            ),
            (
                with(json!({"event": "x", "period": {"since": "2025-13-01"}})),
                vec!["condition.period.since"],
            ),
            (
                with(json!({"event": "x", "period": {"last": "30d", "since": "2025-01-01"}})),
                vec!["condition.period"],
            ),
            (
                with(json!({"event": "x", "period": {"between": ["2025-12-02", "2025-11-28"]}})),
                vec!["condition.period.between"],
            ),
            (
                with(json!({"event": "x", "period": {"between": [1, 2]}})),
                vec!["condition.period.between"],
            ),
            (
                with(json!({"event": "x", "period": {"lately": "3d"}})),
                vec!["condition.period", "condition.period.lately"],
            ),
            (
                with(json!({"event": "x", "where": {"property": "currency"}})),
                vec!["condition.where"],
            ),
            (
                with(
                    json!({"event": "x", "where": [{"property": "currency", "op": "eq", "valu": "TRY"}]}),
                ),
                vec!["condition.where[0].valu", "condition.where[0].value"],
            ),
            (
                with(json!({"event": "x", "where": [{"op": "is_set"}]})),
                vec!["condition.where[0].property"],
            ),
            (
                with(json!({"event": "x", "ignore_case": true})),
                vec!["condition.ignore_case"],
            ),
            (
                with(
                    json!({"event": "x", "measure": "count", "op": "gte", "value": 1,
                         "not_followed_by": {"event": "y", "within": "24h"}}),
                ),
                vec!["condition.measure", "condition.op", "condition.value"],
            ),
            (
                with(json!({"event": "x", "not_followed_by": {"event": "y"}})),
                vec!["condition.not_followed_by.within"],
            ),
            (
                with(json!({"event": "x", "not_followed_by": {"within": "1h", "after": 1}})),
                vec![
                    "condition.not_followed_by.after",
                    "condition.not_followed_by.event",
                ],
            ),
            (
                with(json!({"event": "x", "not_followed_by": {"event": "y", "within": "1y"}})),
                vec!["condition.not_followed_by.within"],
            ),
            (
                with(json!({"event": "x", "not_followed_by": "order_created"})),
                vec!["condition.not_followed_by"],
            ),
        ];
        let mut failures = Vec::new();
        for (doc, expected) in &cases {
            let mut expected: Vec<String> = expected.iter().map(|p| p.to_string()).collect();
            expected.sort();
            let got = paths(doc);
            if got != expected {
                failures.push(format!(
                    "{doc}\n  expected {expected:?}\n  got      {got:?}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn several_problems_are_reported_at_once() {
        let doc = json!({
            "id": "Bad",
            "colour": 1,
            "refresh": "weekly",
            "condition": {"all": [
                {"attribute": "email", "op": "equals", "value": "x"},
                {"event": "order_created", "op": "gte"},
                {"bucket": {"salt": "s", "from": 0, "to": 101}},
                {"any": []},
                {"attribute": "registered_at", "op": "gt", "value": "2025-11-28T09:30:00"}
            ]}
        });
        let problems = parse_definition(&doc, Tz::UTC).unwrap_err();
        let mut got: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        got.sort();
        assert_eq!(
            got,
            [
                "colour",
                "condition.all[0].op",
                "condition.all[1].value",
                "condition.all[2].bucket.to",
                "condition.all[3].any",
                "condition.all[4].value",
                "id",
                "refresh",
            ]
        );
        let colour = problems.iter().find(|p| p.path == "colour").unwrap();
        assert_eq!(colour.allowed, "id, name, description, refresh, condition");
        assert_eq!(colour.found, "1");
        let op = problems
            .iter()
            .find(|p| p.path == "condition.all[0].op")
            .unwrap();
        assert_eq!(op.found, "\"equals\"");
        assert!(op.allowed.contains("starts_with"), "{}", op.allowed);
        let missing = problems
            .iter()
            .find(|p| p.path == "condition.all[1].value")
            .unwrap();
        assert_eq!(missing.found, "nothing");
        let offset = problems
            .iter()
            .find(|p| p.path == "condition.all[4].value")
            .unwrap();
        assert!(offset.message.contains("no offset"), "{}", offset.message);
    }

    #[test]
    fn several_documents_are_prefixed_with_their_index() {
        let good = json!({"id": "a", "condition": {"segment": "b"}});
        let bad = json!({"id": "b", "condition": {"any": [{"segment": "Nope"}]}});
        let problems = parse_definitions(&[good.clone(), bad.clone()], Tz::UTC).unwrap_err();
        let got: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(got, ["[1].condition.any[0].segment"]);
        let alone = parse_definitions(std::slice::from_ref(&bad), Tz::UTC).unwrap_err();
        assert_eq!(alone.as_slice()[0].path, "condition.any[0].segment");
        assert_eq!(parse_definitions(&[good], Tz::UTC).unwrap().len(), 1);
    }

    #[test]
    fn comparison_values_are_exact_decimals() {
        let number = |value: Json| match attribute_value(
            json!({"attribute": "total_order_amount", "op": "gt", "value": value}),
            Tz::UTC,
        ) {
            Value::Number(d) => (d.mantissa(), d.scale()),
            other => panic!("{other:?}"),
        };
        assert_eq!(number(json!(37.535)), (37535, 3));
        assert_eq!(number(json!(4.5)), (45, 1));
        assert_eq!(number(serde_json::from_str("1e2").unwrap()), (100, 0));
        assert_eq!(number(serde_json::from_str("4.50").unwrap()), (45, 1));
        assert_eq!(number(json!(-0.001)), (-1, 3));

        let rating = condition_of(
            json!({"event": "product_reviewed", "measure": {"avg": "rating"}, "op": "gte",
                   "value": 4.5}),
            Tz::UTC,
        );
        let Condition::Event(EventCondition {
            comparison:
                Some(Comparison {
                    value: Value::Number(d),
                    ..
                }),
            ..
        }) = rating
        else {
            panic!("an event comparison")
        };
        assert!(Decimal::new(5, 0).unwrap() >= d && Decimal::new(4, 0).unwrap() < d);

        assert_eq!(
            attribute_value(
                json!({"attribute": "total_order_amount", "op": "between", "value": [37.535, 1e2]}),
                Tz::UTC
            ),
            Value::NumberRange(
                Decimal::new(37535, 3).unwrap(),
                Decimal::new(100, 0).unwrap()
            )
        );
    }

    #[test]
    fn instants_resolve_in_the_store_zone() {
        let utc = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc)
        };
        let istanbul = Tz::Europe__Istanbul;
        let gt = |value: &str, tz| {
            attribute_value(
                json!({"attribute": "registered_at", "op": "gt", "value": value}),
                tz,
            )
        };
        assert_eq!(
            gt("2025-11-28", istanbul),
            Value::Instant(utc("2025-11-27T21:00:00Z"))
        );
        assert_eq!(
            gt("2025-11-28", Tz::UTC),
            Value::Instant(utc("2025-11-28T00:00:00Z"))
        );
        assert_eq!(
            gt("2025-11-28T12:30:00.5+03:00", istanbul),
            Value::Instant(utc("2025-11-28T09:30:00.5Z"))
        );
        let refused = |value: &str| {
            let doc = with(json!({"attribute": "registered_at", "op": "gt", "value": value}));
            parse_definition(&doc, istanbul).unwrap_err().into_vec()
        };
        let seven = refused("2025-11-28T12:30:00.1234567+03:00");
        assert_eq!(seven.len(), 1);
        assert_eq!(seven[0].path, "condition.value");
        assert_eq!(seven[0].found, "\"2025-11-28T12:30:00.1234567+03:00\"");
        assert!(
            seven[0].message.contains("at most 6"),
            "{}",
            seven[0].message
        );
        let naive = refused("2025-11-28T09:30:00");
        assert_eq!(naive[0].path, "condition.value");

        let period = condition_of(
            json!({"event": "order_created", "period": {"between": ["2025-11-28", "2025-12-01"]}}),
            istanbul,
        );
        let Condition::Event(event) = period else {
            panic!("an event condition")
        };
        assert_eq!(
            event.period,
            Period::Between(utc("2025-11-27T21:00:00Z"), utc("2025-11-30T21:00:00Z"))
        );
        // A string for `eq` stays text until the column's type is known.
        assert_eq!(
            attribute_value(
                json!({"attribute": "birth_date", "op": "eq", "value": "1990-05-01"}),
                istanbul
            ),
            Value::Text("1990-05-01".into())
        );
    }

    #[test]
    fn turkish_text_is_kept_as_written() {
        let def = parse_ok(
            json!({"id": "toptanci", "name": "Toptancı müşteriler", "description": "İstanbul'dakiler",
            "condition": {"all": [
                {"attribute": "customer_group", "op": "eq", "value": "Toptancı"},
                {"attribute": "customer_group", "op": "in", "value": ["İ", "ı", "TOPTANCı"],
                 "ignore_case": true}
            ]}}),
            Tz::UTC,
        );
        assert_eq!(def.name, "Toptancı müşteriler");
        assert_eq!(def.description, "İstanbul'dakiler");
        let Condition::All(items) = &def.condition else {
            panic!("all")
        };
        let Condition::Attribute(first) = &items[0] else {
            panic!("attribute")
        };
        assert_eq!(first.value, Some(Value::Text("Toptancı".into())));
        let Condition::Attribute(second) = &items[1] else {
            panic!("attribute")
        };
        assert!(second.ignore_case);
        // Kept as written: lower-casing is the evaluator's business, not the parser's.
        assert_eq!(
            second.value,
            Some(Value::TextList(vec![
                "İ".into(),
                "ı".into(),
                "TOPTANCı".into()
            ]))
        );
        assert_eq!(parse_ok(def.to_json(), Tz::UTC), def);
    }

    #[test]
    fn ids_follow_the_pattern() {
        for id in [
            "a",
            "0",
            "favorited-not-purchased",
            "ab_c-9",
            &"a".repeat(64),
        ] {
            assert!(is_valid_id(id), "{id}");
        }
        for id in ["", "-a", "_a", "A", "a b", "ağ", "a.b", &"a".repeat(65)] {
            assert!(!is_valid_id(id), "{id}");
        }
    }

    #[test]
    fn a_string_compared_as_a_number_is_told_both_ways() {
        let doc = with(json!({"attribute": "total_order_amount", "op": "gte", "value": "abc"}));
        let problems = parse_definition(&doc, Tz::UTC).expect_err("refused");
        let problem = problems.iter().next().expect("one problem");
        assert_eq!(problem.path, "condition.value");
        assert!(problem.allowed.contains("a number"), "{problem:?}");
        assert!(
            problem.message.contains("`gte` compares with a number"),
            "{problem:?}"
        );
        // A date that is no date still says which part is wrong.
        let doc = with(json!({"attribute": "registered_at", "op": "lt", "value": "2025-13-01"}));
        let problems = parse_definition(&doc, Tz::UTC).expect_err("refused");
        let problem = problems.iter().next().expect("one problem");
        assert!(problem.message.contains("not a valid date"), "{problem:?}");
    }
}
