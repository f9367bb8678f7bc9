//! Sequences (funnels): `{"sequence": [step, …], "within": d, "period": p}`.
//!
//! "Viewed a shoe, then added to cart, then ordered, within 7 days": true when the customer
//! has events `e1 … en`, `ei` matching step `i`, with strictly increasing timestamps (two
//! events at the same instant cannot be consecutive steps), `e1` in the period and
//! `ts(en) - ts(e1) <= within`.

use serde_json::{Map, Value as Json};

use super::{Period, PropertyFilter, events_json, filters_json};
use crate::time::Duration;

/// Fewest steps a sequence may have.
pub const MIN_STEPS: usize = 2;

/// Most steps a sequence may have.
pub const MAX_STEPS: usize = 10;

/// A sequence condition: an ordered chain of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceCondition {
    /// The steps, in order (2 to 10).
    pub steps: Vec<SequenceStep>,
    /// The longest time from the first step's event to the last's; `None`: no limit.
    pub within: Option<Duration>,
    /// Where the **first** step's event must lie; later steps only need `ts <= as_of`.
    pub period: Period,
}

/// One step of a sequence: which events may serve it (the meaning of an event condition's
/// `event` and `where`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceStep {
    /// The `event_type`s that may serve this step (at least one).
    pub events: Vec<String>,
    /// Filters the event must pass, all of them (possibly none).
    pub filters: Vec<PropertyFilter>,
}

impl SequenceCondition {
    /// The condition as JSON in the language (defaults left out).
    pub fn to_json(&self) -> Json {
        let mut doc = Map::new();
        doc.insert(
            "sequence".into(),
            Json::Array(self.steps.iter().map(SequenceStep::to_json).collect()),
        );
        if let Some(within) = &self.within {
            doc.insert("within".into(), Json::String(within.to_string()));
        }
        if self.period != Period::AllTime {
            doc.insert("period".into(), self.period.to_json());
        }
        Json::Object(doc)
    }
}

impl SequenceStep {
    /// The step as JSON in the language.
    pub fn to_json(&self) -> Json {
        let mut doc = Map::new();
        doc.insert("event".into(), events_json(&self.events));
        if !self.filters.is_empty() {
            doc.insert("where".into(), filters_json(&self.filters));
        }
        Json::Object(doc)
    }
}
