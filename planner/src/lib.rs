//! kitle's segment language: the typed definitions, reading them from JSON and checking them
//! against the store.
//!
//! This is the contract of `shared/spec/segment-language.md` in types. The flow is:
//!
//! 1. [`parse_definition`] reads a JSON document into a [`SegmentDefinition`], with instants
//!    resolved in the store's time zone and numbers kept as exact [`Decimal`]s, refusing it
//!    with *every* [`Problem`] the document has (each with its JSON path, what was found and
//!    what is allowed);
//! 2. [`validate_set`] checks a set of definitions against the store's [`StoreSchemas`] and the
//!    segments already stored (columns, operators by Arrow type, references, cycles);
//! 3. [`SegmentDefinition::to_json`] writes a definition back for storage; parsing the result
//!    gives an equal definition;
//! 4. [`dependency_order`] orders segments so that each comes after those it refers to, for
//!    refresh.
//!
//! With the default `engine` feature, [`compile`] turns definitions into DataFusion plans and
//! [`refresh`] refreshes, previews and explains them over a store; without it the crate is the
//! language alone (no DataFusion), which is what the fuzz targets build. Nothing here knows
//! HTTP, the command line or file paths.

#![warn(missing_docs)]

#[cfg(feature = "engine")]
pub mod compile;
pub mod decimal;
pub mod definition;
pub mod describe;
pub mod error;
#[cfg(feature = "engine")]
pub mod explain;
pub mod parse;
#[cfg(feature = "engine")]
pub mod refresh;
pub mod time;
pub mod validate;

#[cfg(feature = "engine")]
pub use compile::{RefreshPlan, build_refresh_plan, evaluate};
pub use decimal::Decimal;
pub use definition::{
    AttributeCondition, Comparison, Condition, EventCondition, FollowUp, Measure, Op, Period,
    PropertyFilter, Refresh, SegmentDefinition, Value,
};
pub use describe::{ColumnDescription, EventTypeCount, StoreDescription};
pub use error::{Error, Problem, Problems};
#[cfg(feature = "engine")]
pub use explain::{ConditionReport, MemberExplanation};
pub use parse::{is_valid_id, parse_definition, parse_definitions};
pub use time::{Duration, DurationUnit, format_instant, parse_instant};
pub use validate::{ColumnKind, StoreSchemas, dependency_order, validate_set};

#[cfg(all(test, feature = "engine"))]
mod test_support;
