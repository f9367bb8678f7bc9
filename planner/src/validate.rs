//! Checks of definitions against the store: its schemas and its other segments.
//!
//! Parsing ([`crate::parse_definition`]) checks what a document decides alone. What depends on
//! the store is checked here, for a whole set of definitions at once (as `segment put` stores
//! them: all or none): every attribute, property and measured column exists and its Arrow type
//! has the operator and takes the value; every `{"segment": …}` names a segment of the set or
//! of the store; no segment refers to itself, directly or through others.
//!
//! **Path convention.** Problems of a set of more than one definition have their paths
//! prefixed with the definition's index in `defs`: `[1].condition.any[0].segment`, `[0].id`.
//! A set of one definition has paths without prefix (`condition.any[0].segment`), exactly as
//! [`crate::parse_definition`] reports them, so a single document reads the same in both.

use std::collections::{BTreeMap, HashMap};

use arrow_schema::{DataType, Schema};
use chrono_tz::Tz;

use crate::definition::{Condition, Op, PropertyFilter, SegmentDefinition, Value};
use crate::error::{Problem, Problems, join, quote};
use crate::parse::parse_definition;
use crate::time::{DURATION_ALLOWED, INSTANT_ALLOWED, parse_instant};

/// The store's two tables as the planner sees them: for each, the union of the columns of every
/// readable file (the data contract's columns and any extra ones).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSchemas {
    /// The `customers` table: what attribute conditions may name.
    pub customers: Schema,
    /// The `events` table: what `where` properties and measures may name.
    pub events: Schema,
}

/// The families of column types the language distinguishes; each has its own operators.
///
/// Derived from the Arrow type, so that any physical variant the readers produce (views,
/// large offsets, dictionaries, any timestamp unit, any decimal width) behaves like its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    /// Utf8, LargeUtf8, Utf8View (and dictionaries or run-ends of them).
    Text,
    /// Integers, floats and decimals of every width.
    Number,
    /// Timestamps of any unit and zone, Date32, Date64.
    Timestamp,
    /// A list (of any kind) of text.
    TextList,
    /// Boolean.
    Boolean,
    /// Anything else (binary, structs, …): only `is_set` / `is_not_set`.
    Other,
}

impl ColumnKind {
    /// The family of an Arrow type.
    pub fn of(data_type: &DataType) -> ColumnKind {
        match data_type {
            t if kitle_data::contract::is_string(t) => ColumnKind::Text,
            t if kitle_data::contract::is_numeric(t) => ColumnKind::Number,
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => ColumnKind::Timestamp,
            DataType::Boolean => ColumnKind::Boolean,
            DataType::Dictionary(_, values) => ColumnKind::of(values),
            DataType::RunEndEncoded(_, values) => ColumnKind::of(values.data_type()),
            DataType::List(item)
            | DataType::LargeList(item)
            | DataType::ListView(item)
            | DataType::LargeListView(item)
            | DataType::FixedSizeList(item, _)
                if ColumnKind::of(item.data_type()) == ColumnKind::Text =>
            {
                ColumnKind::TextList
            }
            _ => ColumnKind::Other,
        }
    }

    /// The operators a column of this family named `column` has: `is_set`/`is_not_set`, then
    /// those of its type (`domain_in` among the text operators only for `email`).
    pub fn operators(self, column: &str) -> Vec<Op> {
        let own: Vec<Op> = match self {
            ColumnKind::Text => Op::TEXT
                .into_iter()
                .filter(|op| *op != Op::DomainIn || column == "email")
                .collect(),
            ColumnKind::Number => Op::NUMBER.to_vec(),
            ColumnKind::Timestamp => Op::TIMESTAMP.to_vec(),
            ColumnKind::TextList => Op::LIST.to_vec(),
            ColumnKind::Boolean => vec![Op::Eq],
            ColumnKind::Other => Vec::new(),
        };
        Op::PRESENCE.into_iter().chain(own).collect()
    }

    /// The family's name, for problems.
    pub fn name(self) -> &'static str {
        match self {
            ColumnKind::Text => "text",
            ColumnKind::Number => "number",
            ColumnKind::Timestamp => "timestamp",
            ColumnKind::TextList => "list of text",
            ColumnKind::Boolean => "boolean",
            ColumnKind::Other => "other",
        }
    }
}

/// Checks `defs` as one set against the store: its schemas and the definitions already in it.
///
/// `existing` is what the store holds; a definition of `defs` with the id of an existing one
/// replaces it (for references and cycles). Refuses with every problem, paths following the
/// module's convention (prefixed with `[i]` when `defs` has more than one definition). Also
/// re-checks each definition's own rules (as [`parse_definition`] would), so that definitions
/// built in code are held to the same language as parsed ones.
pub fn validate_set(
    defs: &[SegmentDefinition],
    existing: &[SegmentDefinition],
    schemas: &StoreSchemas,
) -> Result<(), Problems> {
    let mut problems = Problems::new();
    let prefix = |i: usize| set_prefix(defs, i);

    for (i, def) in defs.iter().enumerate() {
        // A definition read back from its own JSON must be valid; instants are written in UTC,
        // so the zone used to re-read them does not matter.
        if let Err(own) = parse_definition(&def.to_json(), Tz::UTC) {
            problems.extend(own.under(&prefix(i)));
        }
        problems.extend(check_columns(def, schemas).under(&prefix(i)));
    }

    problems.extend(duplicate_ids(defs, &prefix));

    // The segments as they will be once the set is stored.
    let mut segments: BTreeMap<&str, &SegmentDefinition> =
        existing.iter().map(|d| (d.id.as_str(), d)).collect();
    for def in defs {
        segments.insert(&def.id, def);
    }
    problems.extend(missing_references(defs, &segments, &prefix, |id| {
        format!("no segment `{id}` in the store or in this set")
    }));
    problems.extend(cycles(defs, &segments, &prefix));
    // The re-read above and the column checks may see the same fault of a definition built in
    // code (an empty `sql`, say): report it once.
    let mut unique = Problems::new();
    for problem in problems {
        if !unique.iter().any(|p| *p == problem) {
            unique.push(problem);
        }
    }
    unique.into_result(())
}

/// The ids of `defs` in an order where every segment comes after the segments it refers to:
/// the order in which refresh evaluates them. Among independent segments the order of `defs`
/// is kept, so the result is deterministic.
///
/// `defs` must hold every segment referred to; a reference outside it, a repeated id or a
/// cycle is refused (paths as in [`validate_set`]).
pub fn dependency_order(defs: &[SegmentDefinition]) -> Result<Vec<String>, Problems> {
    let mut problems = Problems::new();
    let prefix = |i: usize| set_prefix(defs, i);
    problems.extend(duplicate_ids(defs, &prefix));
    let segments: BTreeMap<&str, &SegmentDefinition> =
        defs.iter().map(|d| (d.id.as_str(), d)).collect();
    problems.extend(missing_references(defs, &segments, &prefix, |id| {
        format!("`{id}` is referred to but not among the definitions ordered")
    }));
    problems.extend(cycles(defs, &segments, &prefix));
    if !problems.is_empty() {
        return Err(problems);
    }

    // Depth-first post-order: a segment is emitted once everything it refers to is.
    let mut done: HashMap<&str, bool> = HashMap::new(); // false: in progress, true: emitted
    let mut order = Vec::with_capacity(defs.len());
    for def in defs {
        if done.contains_key(def.id.as_str()) {
            continue;
        }
        let mut stack: Vec<(&str, Vec<&str>, usize)> = vec![(&def.id, def.references(), 0)];
        done.insert(&def.id, false);
        while let Some((id, refs, next)) = stack.last_mut() {
            if let Some(&child) = refs.get(*next) {
                *next += 1;
                if !done.contains_key(child)
                    && let Some(child_def) = segments.get(child)
                {
                    done.insert(child, false);
                    stack.push((child, child_def.references(), 0));
                }
            } else {
                let id = *id;
                done.insert(id, true);
                order.push(id.to_string());
                stack.pop();
            }
        }
    }
    Ok(order)
}

/// Two definitions of one set with the same id: the later one is refused.
/// What the paths of the `i`-th definition of `defs` start with: `[i]` in a set of several,
/// nothing for a lone definition.
fn set_prefix(defs: &[SegmentDefinition], i: usize) -> String {
    if defs.len() > 1 {
        format!("[{i}]")
    } else {
        String::new()
    }
}

/// A problem at every reference of `defs` to a segment that `segments` does not hold, with
/// the message `missing` gives for the id.
fn missing_references(
    defs: &[SegmentDefinition],
    segments: &BTreeMap<&str, &SegmentDefinition>,
    prefix: &dyn Fn(usize) -> String,
    missing: impl Fn(&str) -> String,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, def) in defs.iter().enumerate() {
        for (path, id) in def.references_with_paths() {
            if !segments.contains_key(id) {
                problems.push(Problem::new(
                    join(&prefix(i), &path),
                    quote(id),
                    known_ids(segments.keys().copied()),
                    missing(id),
                ));
            }
        }
    }
    problems
}

fn duplicate_ids(defs: &[SegmentDefinition], prefix: &dyn Fn(usize) -> String) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, def) in defs.iter().enumerate() {
        if let Some(first) = defs[..i].iter().position(|d| d.id == def.id) {
            problems.push(Problem::new(
                join(&prefix(i), "id"),
                quote(&def.id),
                "an id no other definition of the set has",
                format!("the id `{}` is also that of definition [{first}]", def.id),
            ));
        }
    }
    problems
}

/// Every cycle of references through at least one definition of `defs`, each reported once, at
/// the reference (in the earliest definition of `defs` on the cycle) that starts it, with the
/// cycle's ids as what was found: `a -> b -> a`.
fn cycles(
    defs: &[SegmentDefinition],
    segments: &BTreeMap<&str, &SegmentDefinition>,
    prefix: &dyn Fn(usize) -> String,
) -> Vec<Problem> {
    let index_in_set: HashMap<&str, usize> = defs
        .iter()
        .enumerate()
        .rev() // the first of duplicated ids wins
        .map(|(i, d)| (d.id.as_str(), i))
        .collect();
    let references = |id: &str| -> Vec<&str> {
        segments.get(id).map_or_else(Vec::new, |d| {
            d.references()
                .into_iter()
                .filter(|r| segments.contains_key(r))
                .collect()
        })
    };

    // Iterative depth-first search: a reference to a segment still on the stack closes a cycle.
    let mut on_stack_or_done: HashMap<&str, bool> = HashMap::new(); // false: on the stack
    let mut found: Vec<Vec<&str>> = Vec::new();
    for def in defs {
        if on_stack_or_done.contains_key(def.id.as_str()) {
            continue;
        }
        let mut stack: Vec<(&str, Vec<&str>, usize)> = vec![(&def.id, references(&def.id), 0)];
        on_stack_or_done.insert(&def.id, false);
        while let Some((id, refs, next)) = stack.last_mut() {
            let Some(&child) = refs.get(*next) else {
                let id = *id;
                on_stack_or_done.insert(id, true);
                stack.pop();
                continue;
            };
            *next += 1;
            match on_stack_or_done.get(child) {
                None => {
                    on_stack_or_done.insert(child, false);
                    let child_refs = references(child);
                    stack.push((child, child_refs, 0));
                }
                Some(false) => {
                    let start = stack.iter().position(|(id, ..)| *id == child).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[start..].iter().map(|(id, ..)| *id).collect();
                    cycle.push(child);
                    found.push(cycle);
                }
                Some(true) => {}
            }
        }
    }

    let mut problems = Vec::new();
    for cycle in found {
        // `cycle` is `[a, b, …, a]`; report it at its earliest member that is in `defs`.
        let members = &cycle[..cycle.len() - 1];
        let Some((at, i)) = members
            .iter()
            .enumerate()
            .filter_map(|(k, id)| index_in_set.get(id).map(|i| (k, *i)))
            .min_by_key(|(_, i)| *i)
        else {
            continue; // only among stored segments: not this set's doing
        };
        let rotated: Vec<&str> = members[at..]
            .iter()
            .chain(&members[..at])
            .chain(std::iter::once(&members[at]))
            .copied()
            .collect();
        let next = rotated[1];
        let path = defs[i]
            .references_with_paths()
            .into_iter()
            .find(|(_, id)| *id == next)
            .map_or_else(|| "condition".to_string(), |(path, _)| path);
        problems.push(Problem::new(
            join(&prefix(i), &path),
            rotated.join(" -> "),
            "references without a cycle",
            format!(
                "`{}` refers to itself through a cycle of segment references",
                rotated[0]
            ),
        ));
    }
    problems
}

/// The known ids for the `allowed` of an unknown-segment problem (the first 50).
fn known_ids<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    let ids: Vec<&str> = ids.collect();
    if ids.is_empty() {
        return "the id of a segment of the store or of this set (there is none)".to_string();
    }
    let shown = ids.iter().take(50).copied().collect::<Vec<_>>().join(", ");
    if ids.len() > 50 {
        format!("{shown}, … ({} more)", ids.len() - 50)
    } else {
        shown
    }
}

/// The column problems of one definition (paths without prefix).
fn check_columns(def: &SegmentDefinition, schemas: &StoreSchemas) -> Problems {
    let mut problems = Problems::new();
    def.condition
        .walk("condition", &mut |path, condition| match condition {
            Condition::Attribute(a) => check_test(
                Test {
                    table: "customers",
                    schema: &schemas.customers,
                    key: "attribute",
                    column: &a.attribute,
                    op: a.op,
                    value: a.value.as_ref(),
                    ignore_case: a.ignore_case,
                },
                path,
                &mut problems,
            ),
            Condition::Event(e) => {
                let filters = e
                    .filters
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (join(path, &format!("where[{i}]")), f));
                let follow_filters = e.not_followed_by.iter().flat_map(|follow| {
                    follow
                        .filters
                        .iter()
                        .enumerate()
                        .map(|(i, f)| (join(path, &format!("not_followed_by.where[{i}]")), f))
                });
                for (filter_path, f) in filters.chain(follow_filters) {
                    check_test(filter_test(f, schemas), &filter_path, &mut problems);
                }
                if let Some(column) = e.measure.column() {
                    let measure_path = join(path, &format!("measure.{}", e.measure.name()));
                    match schemas.events.field_with_name(column) {
                        Err(_) => problems.push(unknown_column(
                            &measure_path,
                            column,
                            "events",
                            &schemas.events,
                        )),
                        Ok(field) => {
                            let kind = ColumnKind::of(field.data_type());
                            if e.measure.needs_numeric_column() && kind != ColumnKind::Number {
                                problems.push(Problem::new(
                                    measure_path,
                                    quote(column),
                                    format!(
                                        "a numeric column of `events`: {}",
                                        columns_of(&schemas.events, ColumnKind::Number)
                                    ),
                                    format!(
                                        "`{}` needs a numeric column; `{column}` is {} ({})",
                                        e.measure.name(),
                                        kind.name(),
                                        field.data_type()
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            Condition::Sequence(sequence) => {
                for (i, step) in sequence.steps.iter().enumerate() {
                    for (j, f) in step.filters.iter().enumerate() {
                        check_test(
                            filter_test(f, schemas),
                            &join(path, &format!("sequence[{i}].where[{j}]")),
                            &mut problems,
                        );
                    }
                }
            }
            // A `sql` condition is planned by the compiler's check (it needs DataFusion):
            // `crate::compile::plan_sql_condition`, called for each one at its path when a
            // definition is checked against the store.
            _ => {}
        });
    problems
}

/// One attribute condition or `where` filter, with the table it tests.
struct Test<'a> {
    table: &'static str,
    schema: &'a Schema,
    /// `attribute` or `property`: the field that names the column.
    key: &'static str,
    column: &'a str,
    op: Op,
    value: Option<&'a Value>,
    ignore_case: bool,
}

/// The test a property filter makes of a column of `events`.
fn filter_test<'a>(f: &'a PropertyFilter, schemas: &'a StoreSchemas) -> Test<'a> {
    Test {
        table: "events",
        schema: &schemas.events,
        key: "property",
        column: &f.property,
        op: f.op,
        value: f.value.as_ref(),
        ignore_case: f.ignore_case,
    }
}

/// The column exists, its type has the operator, and the value is of the type it compares
/// with; `ignore_case` only on text operators of text columns.
fn check_test(test: Test<'_>, path: &str, problems: &mut Problems) {
    let Ok(field) = test.schema.field_with_name(test.column) else {
        problems.push(unknown_column(
            &join(path, test.key),
            test.column,
            test.table,
            test.schema,
        ));
        return;
    };
    let kind = ColumnKind::of(field.data_type());
    let ops = kind.operators(test.column);
    let op = test.op;
    if !ops.contains(&op) {
        let extra = if op == Op::DomainIn && kind == ColumnKind::Text {
            " (`domain_in` is for the `email` column only)"
        } else {
            ""
        };
        problems.push(Problem::new(
            join(path, "op"),
            quote(op.as_str()),
            format!(
                "for the {} column `{}` ({}): {}",
                kind.name(),
                test.column,
                field.data_type(),
                Op::list(&ops)
            ),
            format!(
                "`{op}` is not an operator of {} columns{extra}",
                kind.name()
            ),
        ));
        return;
    }
    if test.ignore_case && !(kind == ColumnKind::Text && op.is_text()) {
        problems.push(Problem::new(
            join(path, "ignore_case"),
            "true",
            "only with the text operators of text columns",
            format!(
                "`ignore_case` does not apply to `{op}` on the {} column `{}`",
                kind.name(),
                test.column
            ),
        ));
    }
    let Some(value) = test.value else {
        return; // is_set / is_not_set: parsing made sure no value is given
    };
    let value_path = join(path, "value");
    let fits = match (kind, value) {
        (ColumnKind::Text, Value::Text(_) | Value::TextList(_)) => true,
        (ColumnKind::Number, Value::Number(_) | Value::NumberRange(..)) => true,
        (
            ColumnKind::Timestamp,
            Value::Instant(_) | Value::InstantRange(..) | Value::Duration(_),
        ) => true,
        (ColumnKind::Timestamp, Value::Text(text)) => {
            // `eq` / `neq` with a string: it must be an instant here. Validity does not depend
            // on the zone (every date has a first instant), so UTC checks it.
            if let Err(e) = parse_instant(text, Tz::UTC) {
                problems.extend(e.into_problems(&value_path));
            }
            true
        }
        (ColumnKind::TextList, Value::TextList(_)) => true,
        (ColumnKind::Boolean, Value::Bool(_)) => true,
        _ => false,
    };
    if !fits {
        let allowed = match (kind, op) {
            (ColumnKind::Text, _) => "a string or a non-empty list of strings",
            (ColumnKind::Number, Op::Between) => "`[lo, hi]` of two numbers with lo <= hi",
            (ColumnKind::Number, _) => "a number",
            (ColumnKind::Timestamp, Op::Between) => "`[lo, hi]` of two instants with lo <= hi",
            (ColumnKind::Timestamp, Op::WithinLast | Op::OlderThan) => DURATION_ALLOWED,
            (ColumnKind::Timestamp, _) => INSTANT_ALLOWED,
            (ColumnKind::TextList, _) => "a non-empty list of strings",
            (ColumnKind::Boolean, _) => "true or false",
            (ColumnKind::Other, _) => "nothing",
        };
        problems.push(Problem::new(
            value_path,
            crate::error::found(Some(&value.to_json())),
            allowed,
            format!(
                "`{op}` on the {} column `{}` does not take {}",
                kind.name(),
                test.column,
                value.describe()
            ),
        ));
    }
}

fn unknown_column(path: &str, column: &str, table: &str, schema: &Schema) -> Problem {
    let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    Problem::new(
        path,
        quote(column),
        format!("a column of `{table}`: {}", columns.join(", ")),
        format!("`{column}` is no column of `{table}`"),
    )
}

fn columns_of(schema: &Schema, kind: ColumnKind) -> String {
    schema
        .fields()
        .iter()
        .filter(|f| ColumnKind::of(f.data_type()) == kind)
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_definition;
    use crate::test_support::{conformance_scenarios, contract_schemas};
    use arrow_schema::Field;
    use serde_json::{Value as Json, json};

    fn def(doc: Json) -> SegmentDefinition {
        parse_definition(&doc, Tz::UTC).unwrap_or_else(|p| panic!("{doc}: {p}"))
    }

    fn with(condition: Json) -> SegmentDefinition {
        def(json!({"id": "s", "condition": condition}))
    }

    fn problems_of(defs: &[SegmentDefinition], existing: &[SegmentDefinition]) -> Vec<Problem> {
        match validate_set(defs, existing, &contract_schemas()) {
            Ok(()) => Vec::new(),
            Err(problems) => problems.into_vec(),
        }
    }

    fn paths(defs: &[SegmentDefinition], existing: &[SegmentDefinition]) -> Vec<String> {
        let mut paths: Vec<String> = problems_of(defs, existing)
            .into_iter()
            .map(|p| p.path)
            .collect();
        paths.sort();
        paths
    }

    #[test]
    fn every_conformance_scenario_validates() {
        let schemas = contract_schemas();
        for (scenario, docs) in conformance_scenarios() {
            let defs: Vec<SegmentDefinition> = docs
                .iter()
                .map(|doc| parse_definition(doc, Tz::UTC).unwrap())
                .collect();
            if let Err(problems) = validate_set(&defs, &[], &schemas) {
                panic!("scenario {scenario}:\n{problems}");
            }
            // One at a time, with the others already stored: the same verdict.
            for (i, one) in defs.iter().enumerate() {
                let others: Vec<SegmentDefinition> = defs
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, d)| d.clone())
                    .collect();
                if let Err(problems) = validate_set(std::slice::from_ref(one), &others, &schemas) {
                    panic!("scenario {scenario}, {}:\n{problems}", one.id);
                }
            }
        }
    }

    #[test]
    fn column_problems_name_the_column_and_what_is_allowed() {
        let cases: Vec<(Json, Vec<&str>)> = vec![
            (
                json!({"attribute": "loyalty", "op": "gte", "value": 1}),
                vec!["condition.attribute"],
            ),
            (
                json!({"attribute": "Email", "op": "is_set"}),
                vec!["condition.attribute"],
            ),
            (
                json!({"attribute": "email", "op": "gt", "value": 1}),
                vec!["condition.op"],
            ),
            (
                json!({"attribute": "email", "op": "has_any", "value": ["a"]}),
                vec!["condition.op"],
            ),
            (
                json!({"attribute": "email", "op": "eq", "value": 5}),
                vec!["condition.value"],
            ),
            (
                json!({"attribute": "email", "op": "eq", "value": true}),
                vec!["condition.value"],
            ),
            (
                json!({"attribute": "customer_group", "op": "domain_in", "value": ["x.tr"]}),
                vec!["condition.op"],
            ),
            (
                json!({"attribute": "total_order_amount", "op": "eq", "value": "abc"}),
                vec!["condition.value"],
            ),
            (
                json!({"attribute": "total_order_amount", "op": "contains", "value": "1"}),
                vec!["condition.op"],
            ),
            (
                json!({"attribute": "total_order_amount", "op": "gt", "value": "2025-01-01"}),
                vec!["condition.value"],
            ),
            (
                json!({"attribute": "total_order_amount", "op": "between", "value": ["2025-01-01", "2025-02-01"]}),
                vec!["condition.value"],
            ),
            (
                json!({"attribute": "total_order_amount", "op": "within_last", "value": "3d"}),
                vec!["condition.op"],
            ),
            (
                json!({"attribute": "total_order_amount", "op": "eq", "value": 5, "ignore_case": true}),
                vec!["condition.ignore_case"],
            ),
            (
                json!({"attribute": "registered_at", "op": "eq", "value": "yesterday"}),
                vec!["condition.value"],
            ),
            (
                json!({"attribute": "registered_at", "op": "eq", "value": ["2025-01-01"]}),
                vec!["condition.value"],
            ),
            (
                json!({"attribute": "registered_at", "op": "gt", "value": 5}),
                vec!["condition.value"],
            ),
            (
                json!({"attribute": "registered_at", "op": "between", "value": [1, 2]}),
                vec!["condition.value"],
            ),
            (
                json!({"attribute": "registered_at", "op": "eq", "value": "2025-01-01", "ignore_case": true}),
                vec!["condition.ignore_case"],
            ),
            (
                json!({"attribute": "birth_date", "op": "starts_with", "value": "1990"}),
                vec!["condition.op"],
            ),
            (
                json!({"attribute": "tags", "op": "eq", "value": "VIP"}),
                vec!["condition.op"],
            ),
            (
                json!({"attribute": "loyalty_points", "op": "eq", "value": true}),
                vec!["condition.value"],
            ),
            (
                json!({"event": "x", "where": [{"property": "paymentmethod", "op": "eq", "value": "cash"}]}),
                vec!["condition.where[0].property"],
            ),
            (
                json!({"event": "x", "where": [{"property": "currency", "op": "eq", "value": "TRY"},
                                            {"property": "amount", "op": "starts_with", "value": "1"}]}),
                vec!["condition.where[1].op"],
            ),
            (
                json!({"event": "x", "where": [{"property": "coupon_code", "op": "domain_in", "value": "a.tr"}]}),
                vec!["condition.where[0].op"],
            ),
            (
                json!({"event": "x", "where": [{"property": "email", "op": "is_set"}]}),
                vec!["condition.where[0].property"],
            ),
            (
                json!({"event": "x", "measure": {"sum": "payment_method"}, "op": "gt", "value": 1}),
                vec!["condition.measure.sum"],
            ),
            (
                json!({"event": "x", "measure": {"avg": "ts"}, "op": "gt", "value": 1}),
                vec!["condition.measure.avg"],
            ),
            (
                json!({"event": "x", "measure": {"max": "nope"}, "op": "gt", "value": 1}),
                vec!["condition.measure.max"],
            ),
            (
                json!({"event": "x", "measure": {"distinct": "nope"}, "op": "gt", "value": 1}),
                vec!["condition.measure.distinct"],
            ),
            (
                json!({"event": "x", "not_followed_by": {"event": "y", "within": "1h",
                                                      "where": [{"property": "nope", "op": "is_set"}]}}),
                vec!["condition.not_followed_by.where[0].property"],
            ),
            (
                json!({"any": [{"attribute": "email", "op": "is_set"},
                            {"not": {"attribute": "nope", "op": "is_set"}}]}),
                vec!["condition.any[1].not.attribute"],
            ),
            (json!({"segment": "nowhere"}), vec!["condition.segment"]),
        ];
        let mut failures = Vec::new();
        for (condition, expected) in &cases {
            let got = paths(&[with(condition.clone())], &[]);
            if got != *expected {
                failures.push(format!(
                    "{condition}\n  expected {expected:?}\n  got      {got:?}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));

        // Fine: distinct of any column, min of a small integer, domain_in on email, eq on a date.
        for ok in [
            json!({"event": "x", "measure": {"distinct": "payment_method"}, "op": "gt", "value": 1}),
            json!({"event": "x", "measure": {"min": "rating"}, "op": "lte", "value": 2}),
            json!({"attribute": "email", "op": "domain_in", "value": "edu.tr", "ignore_case": true}),
            json!({"attribute": "birth_date", "op": "eq", "value": "1990-05-01"}),
            json!({"attribute": "tags", "op": "is_not_set"}),
            json!({"event": "x", "where": [{"property": "ts", "op": "within_last", "value": "1h"}]}),
        ] {
            assert_eq!(
                paths(&[with(ok.clone())], &[]),
                Vec::<String>::new(),
                "{ok}"
            );
        }
    }

    #[test]
    fn unknown_column_lists_the_known_ones() {
        let problems = problems_of(
            &[with(
                json!({"attribute": "loyalty", "op": "gte", "value": 1}),
            )],
            &[],
        );
        assert_eq!(problems.len(), 1);
        let p = &problems[0];
        assert_eq!(p.found, "\"loyalty\"");
        assert!(
            p.allowed
                .starts_with("a column of `customers`: customer_id, email,"),
            "{}",
            p.allowed
        );
        assert!(p.allowed.contains("loyalty_points"), "{}", p.allowed);

        let op = &problems_of(
            &[with(json!({"attribute": "email", "op": "gt", "value": 1}))],
            &[],
        )[0];
        assert_eq!(op.found, "\"gt\"");
        assert!(op.allowed.contains("domain_in"), "{}", op.allowed);
        assert!(op.allowed.contains("Utf8"), "{}", op.allowed);
    }

    #[test]
    fn operators_follow_the_arrow_type() {
        let view = DataType::Utf8View;
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let large_list = DataType::LargeList(std::sync::Arc::new(Field::new(
            "item",
            DataType::LargeUtf8,
            true,
        )));
        let int_list = DataType::List(std::sync::Arc::new(Field::new(
            "item",
            DataType::Int64,
            true,
        )));
        let cases = [
            (view, ColumnKind::Text),
            (dictionary, ColumnKind::Text),
            (DataType::LargeUtf8, ColumnKind::Text),
            (DataType::Float32, ColumnKind::Number),
            (DataType::UInt8, ColumnKind::Number),
            (DataType::Decimal256(40, 4), ColumnKind::Number),
            (DataType::Date64, ColumnKind::Timestamp),
            (
                DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, None),
                ColumnKind::Timestamp,
            ),
            (large_list, ColumnKind::TextList),
            (int_list, ColumnKind::Other),
            (DataType::Boolean, ColumnKind::Boolean),
            (DataType::Binary, ColumnKind::Other),
        ];
        for (data_type, kind) in cases {
            assert_eq!(ColumnKind::of(&data_type), kind, "{data_type}");
        }
        assert!(ColumnKind::Text.operators("email").contains(&Op::DomainIn));
        assert!(
            !ColumnKind::Text
                .operators("customer_group")
                .contains(&Op::DomainIn)
        );
        assert_eq!(
            ColumnKind::Other.operators("blob"),
            vec![Op::IsSet, Op::IsNotSet]
        );

        // A store with a boolean custom attribute and a view-typed text column.
        let mut schemas = contract_schemas();
        let mut fields: Vec<Field> = schemas
            .customers
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new("is_vip", DataType::Boolean, true));
        fields.push(Field::new("nickname", DataType::Utf8View, true));
        schemas.customers = Schema::new(fields);
        let check = |condition: Json| -> Vec<String> {
            match validate_set(&[with(condition)], &[], &schemas) {
                Ok(()) => Vec::new(),
                Err(p) => p.into_iter().map(|p| p.path).collect(),
            }
        };
        assert!(check(json!({"attribute": "is_vip", "op": "eq", "value": true})).is_empty());
        assert!(check(json!({"attribute": "is_vip", "op": "is_set"})).is_empty());
        assert_eq!(
            check(json!({"attribute": "is_vip", "op": "eq", "value": "true"})),
            ["condition.value"]
        );
        assert_eq!(
            check(json!({"attribute": "is_vip", "op": "neq", "value": true})),
            ["condition.op"]
        );
        assert!(
            check(json!({"attribute": "nickname", "op": "starts_with", "value": "İ", "ignore_case": true}))
                .is_empty()
        );
    }

    #[test]
    fn references_must_name_a_segment_of_the_set_or_the_store() {
        let a = def(json!({"id": "a", "condition": {"attribute": "email", "op": "is_set"}}));
        let b = def(json!({"id": "b", "condition": {"any": [{"segment": "c"}, {"segment": "a"}]}}));
        let problems = problems_of(&[a.clone(), b.clone()], &[]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "[1].condition.any[0].segment");
        assert_eq!(problems[0].found, "\"c\"");
        assert_eq!(problems[0].allowed, "a, b");
        // Alone, b's paths carry no prefix; `a` may be in the store instead of the set.
        assert_eq!(
            paths(std::slice::from_ref(&b), std::slice::from_ref(&a)),
            ["condition.any[0].segment"]
        );
        let c = def(json!({"id": "c", "condition": {"sql": "SELECT customer_id FROM customers"}}));
        assert!(problems_of(std::slice::from_ref(&b), &[a.clone(), c.clone()]).is_empty());
        assert!(problems_of(&[c, b], &[a]).is_empty());
    }

    #[test]
    fn cycles_are_refused_with_their_path_of_ids() {
        let a = def(
            json!({"id": "a", "condition": {"all": [{"attribute": "email", "op": "is_set"},
                                                            {"segment": "b"}]}}),
        );
        let b = def(json!({"id": "b", "condition": {"not": {"segment": "a"}}}));
        let problems = problems_of(&[a.clone(), b.clone()], &[]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "[0].condition.all[1].segment");
        assert_eq!(problems[0].found, "a -> b -> a");

        // Reported at the earliest definition of the set on the cycle.
        let problems = problems_of(&[b.clone(), a.clone()], &[]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "[0].condition.not.segment");
        assert_eq!(problems[0].found, "b -> a -> b");

        // Through a stored segment: replacing `a` closes a cycle with the stored `b`.
        let problems = problems_of(std::slice::from_ref(&a), std::slice::from_ref(&b));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "condition.all[1].segment");
        assert_eq!(problems[0].found, "a -> b -> a");

        // Replacing a stored segment can also remove a cycle's reason to exist.
        let stored_a = def(json!({"id": "a", "condition": {"attribute": "email", "op": "is_set"}}));
        assert!(problems_of(std::slice::from_ref(&b), &[stored_a]).is_empty());

        let selfish = def(json!({"id": "me", "condition": {"any": [{"segment": "me"}]}}));
        let problems = problems_of(&[selfish], &[]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "condition.any[0].segment");
        assert_eq!(problems[0].found, "me -> me");

        // A longer cycle, and a segment beside it that only refers into it.
        let x = def(json!({"id": "x", "condition": {"segment": "y"}}));
        let y = def(json!({"id": "y", "condition": {"segment": "z"}}));
        let z = def(json!({"id": "z", "condition": {"segment": "x"}}));
        let w = def(json!({"id": "w", "condition": {"segment": "x"}}));
        let problems = problems_of(&[w, y, z, x], &[]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "[1].condition.segment");
        assert_eq!(problems[0].found, "y -> z -> x -> y");
    }

    #[test]
    fn repeated_ids_in_a_set_are_refused() {
        let one = with(json!({"attribute": "email", "op": "is_set"}));
        let problems = problems_of(&[one.clone(), one], &[]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "[1].id");
    }

    #[test]
    fn problems_of_several_definitions_carry_their_index() {
        let ok = def(json!({"id": "ok", "condition": {"attribute": "email", "op": "is_set"}}));
        let bad = def(json!({"id": "bad", "condition": {"any": [
            {"segment": "missing"},
            {"attribute": "nope", "op": "is_set"},
            {"event": "x", "measure": {"sum": "currency"}, "op": "gt", "value": 1}
        ]}}));
        assert_eq!(
            paths(&[ok, bad], &[]),
            [
                "[1].condition.any[0].segment",
                "[1].condition.any[1].attribute",
                "[1].condition.any[2].measure.sum",
            ]
        );
    }

    #[test]
    fn definitions_built_in_code_obey_the_language_too() {
        let mut built = with(json!({"all": [{"attribute": "email", "op": "is_set"}]}));
        built.condition = Condition::All(vec![]);
        built.id = "Not Valid".into();
        assert_eq!(paths(&[built], &[]), ["condition.all", "id"]);
        let mut bucket = with(json!({"bucket": {"salt": "s", "from": 0, "to": 50}}));
        bucket.condition = Condition::Bucket {
            salt: "s".into(),
            from: 60,
            to: 50,
        };
        assert_eq!(paths(&[bucket], &[]), ["condition.bucket"]);
        let mut sql = with(json!({"sql": "SELECT customer_id FROM customers"}));
        sql.condition = Condition::Sql(" ".into());
        assert_eq!(paths(&[sql], &[]), ["condition.sql"]);
    }

    #[test]
    fn dependency_order_puts_references_first() {
        let (_, docs) = conformance_scenarios().into_iter().next().unwrap();
        let defs: Vec<SegmentDefinition> = docs
            .iter()
            .map(|d| parse_definition(d, Tz::UTC).unwrap())
            .collect();
        let order = dependency_order(&defs).unwrap();
        assert_eq!(order.len(), defs.len());
        let at = |id: &str| order.iter().position(|o| o == id).unwrap();
        assert!(at("vip-not-blacklisted") < at("vip-not-lapsed"));
        assert!(at("lapsed") < at("vip-not-lapsed"));
        // Independent segments keep their order.
        assert_eq!(&order[..2], ["consent-granted", "consent-reachable"]);

        let top = def(
            json!({"id": "top", "condition": {"all": [{"segment": "mid"}, {"segment": "low"}]}}),
        );
        let mid = def(json!({"id": "mid", "condition": {"segment": "low"}}));
        let low = def(json!({"id": "low", "condition": {"attribute": "email", "op": "is_set"}}));
        assert_eq!(
            dependency_order(&[top.clone(), mid.clone(), low.clone()]).unwrap(),
            ["low", "mid", "top"]
        );
        assert_eq!(dependency_order(&[]).unwrap(), Vec::<String>::new());

        let missing = dependency_order(&[top.clone(), mid.clone()])
            .unwrap_err()
            .into_vec();
        let missing_paths: Vec<&str> = missing.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            missing_paths,
            ["[0].condition.all[1].segment", "[1].condition.segment"]
        );

        let back = def(json!({"id": "low", "condition": {"segment": "top"}}));
        let cycle = dependency_order(&[top, mid, back]).unwrap_err().into_vec();
        assert_eq!(cycle.len(), 1, "{cycle:?}");
        assert_eq!(cycle[0].path, "[0].condition.all[0].segment");
        assert_eq!(cycle[0].found, "top -> mid -> low -> top");
    }
}
