//! What the `definition` fuzz target checks for one input, kept in its own file so that the
//! test suite replays the corpus through the very same code (the integration test
//! `fuzz_replay` includes this file).
//!
//! For any bytes: no panic. For bytes that are JSON: parsing a definition (or a set) either
//! refuses it with at least one problem, each with a message, or gives a definition that
//! writes back to JSON which parses to the same definition; validation against a fixed store
//! schema (the contract's columns plus a custom attribute and an event property) and the
//! dependency order never panic. For other text: the small parsers (instants, durations,
//! decimals, cron cadences) never panic.

use std::str::FromStr;

use arrow_schema::{DataType, Field};
use kitle_data::contract::ContractTable;
use kitle_planner::{
    Decimal, Duration, SegmentDefinition, StoreSchemas, dependency_order, parse_definition,
    parse_definitions, parse_instant, validate_set,
};
use serde_json::Value;

/// The store schema definitions are validated against: the contract's tables, with the
/// conformance store's custom attribute and event property.
pub(super) fn schemas() -> StoreSchemas {
    StoreSchemas {
        customers: ContractTable::Customers
            .schema(&[Field::new("loyalty_points", DataType::Int64, true)])
            .as_ref()
            .clone(),
        events: ContractTable::Events
            .schema(&[Field::new("coupon_code", DataType::Utf8, true)])
            .as_ref()
            .clone(),
    }
}

/// Checks one input (see the module's documentation); panics on a violated property.
pub(super) fn check(data: &[u8], schemas: &StoreSchemas) {
    let tz = chrono_tz::Europe::Istanbul;
    let Ok(document) = serde_json::from_slice::<Value>(data) else {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = parse_instant(text, tz);
            let _ = Duration::from_str(text);
            let _ = Decimal::from_str(text);
            let _ = kitle_planner::Refresh::from_str(text);
        }
        return;
    };
    match &document {
        Value::Array(items) => match parse_definitions(items, tz) {
            Ok(defs) => {
                let _ = validate_set(&defs, &[], schemas);
                let _ = dependency_order(&defs);
                for d in &defs {
                    round_trip(d);
                }
            }
            Err(problems) => refused(&problems),
        },
        _ => match parse_definition(&document, tz) {
            Ok(def) => {
                round_trip(&def);
                let _ = validate_set(std::slice::from_ref(&def), &[], schemas);
                let _ = dependency_order(std::slice::from_ref(&def));
            }
            Err(problems) => refused(&problems),
        },
    }
}

fn round_trip(def: &SegmentDefinition) {
    let written = def.to_json();
    let again = parse_definition(&written, chrono_tz::UTC)
        .unwrap_or_else(|p| panic!("{written} does not parse back: {p}"));
    assert_eq!(&again, def, "{written} parses back to another definition");
}

fn refused(problems: &kitle_planner::Problems) {
    assert!(!problems.is_empty(), "a refusal without a problem");
    for p in problems {
        assert!(!p.message.is_empty(), "a problem without a message: {p:?}");
    }
}
