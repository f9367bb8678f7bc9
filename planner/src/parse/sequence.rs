//! Reading a sequence (funnel) condition: `{"sequence": [step, …], "within", "period"}`, each
//! step `{"event": …, "where": […]}`, every problem at its JSON path
//! (`condition.sequence[1].where[0].op`, `condition.within`).

use serde_json::{Map, Value as Json};

use super::{Parser, SEQUENCE_FIELDS, STEP_FIELDS};
use crate::definition::{MAX_STEPS, MIN_STEPS, Period, SequenceCondition, SequenceStep};
use crate::error::{found, join};
use crate::time::DURATION_ALLOWED;

const STEPS_ALLOWED: &str = "a list of 2 to 10 steps `{\"event\": …, \"where\": […]}`";
const STEP_ALLOWED: &str = "a step `{\"event\": event type or list}` with an optional `where`";

impl Parser {
    /// The sequence condition of `object` (which has the `sequence` key).
    pub(super) fn sequence(
        &mut self,
        object: &Map<String, Json>,
        path: &str,
    ) -> Option<SequenceCondition> {
        self.unknown_fields(object, path, &SEQUENCE_FIELDS);
        let steps = self.steps(&object["sequence"], &join(path, "sequence"));
        let within_path = join(path, "within");
        let within = match object.get("within") {
            None => Some(None),
            Some(Json::String(text)) => self.duration(text, &within_path).map(Some),
            Some(other) => {
                self.wrong_type(&within_path, other, DURATION_ALLOWED);
                None
            }
        };
        let period = match object.get("period") {
            None => Some(Period::AllTime),
            Some(value) => self.period(value, &join(path, "period")),
        };
        Some(SequenceCondition {
            steps: steps?,
            within: within?,
            period: period?,
        })
    }

    /// The steps: 2 to 10 of them, each read (and its problems reported) even when their
    /// number is wrong.
    fn steps(&mut self, value: &Json, path: &str) -> Option<Vec<SequenceStep>> {
        let Json::Array(items) = value else {
            self.wrong_type(path, value, STEPS_ALLOWED);
            return None;
        };
        let counted = (MIN_STEPS..=MAX_STEPS).contains(&items.len());
        if !counted {
            self.problem(
                path,
                found(Some(value)),
                STEPS_ALLOWED,
                format!(
                    "a sequence has {MIN_STEPS} to {MAX_STEPS} steps, not {}",
                    items.len()
                ),
            );
        }
        let steps: Vec<Option<SequenceStep>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.step(item, &format!("{path}[{i}]")))
            .collect();
        let steps: Option<Vec<SequenceStep>> = steps.into_iter().collect();
        steps.filter(|_| counted)
    }

    fn step(&mut self, value: &Json, path: &str) -> Option<SequenceStep> {
        let object = self.object(value, path, STEP_ALLOWED)?;
        self.unknown_fields(object, path, &STEP_FIELDS);
        let events = self.event_types(object.get("event"), &join(path, "event"));
        let filters = match object.get("where") {
            None => Some(Vec::new()),
            Some(value) => self.filters(value, &join(path, "where")),
        };
        Some(SequenceStep {
            events: events?,
            filters: filters?,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono_tz::Tz;
    use serde_json::{Value as Json, json};

    use crate::definition::{Condition, Period, SequenceCondition};
    use crate::parse::parse_definition;

    fn sequence(condition: Json) -> Result<SequenceCondition, Vec<(String, String)>> {
        match parse_definition(&json!({"id": "s", "condition": condition}), Tz::UTC) {
            Ok(def) => match def.condition {
                Condition::Sequence(s) => Ok(s),
                other => panic!("not a sequence: {other:?}"),
            },
            Err(problems) => Err(problems
                .iter()
                .map(|p| (p.path.clone(), p.message.clone()))
                .collect()),
        }
    }

    fn paths(condition: Json) -> Vec<String> {
        let mut paths: Vec<String> = sequence(condition)
            .expect_err("refused")
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        paths.sort();
        paths
    }

    #[test]
    fn the_spec_example_parses_and_round_trips() {
        let doc = json!({"sequence": [
            {"event": "product_viewed",
             "where": [{"property": "category_id", "op": "eq", "value": "ayakkabı"}]},
            {"event": "product_added_to_cart"},
            {"event": ["order_created", "order_delivered"]}],
          "within": "7d",
          "period": {"last": "30d"}});
        let s = sequence(doc.clone()).unwrap();
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.steps[0].filters.len(), 1);
        assert_eq!(s.steps[2].events, ["order_created", "order_delivered"]);
        assert_eq!(s.within.map(|d| d.to_string()), Some("7d".into()));
        assert!(matches!(s.period, Period::Last(_)));
        assert_eq!(s.to_json(), doc);
        // Defaults are left out when written.
        let plain = json!({"sequence": [{"event": "a"}, {"event": "b"}]});
        let s = sequence(plain.clone()).unwrap();
        assert_eq!((s.within, s.period.clone()), (None, Period::AllTime));
        assert_eq!(s.to_json(), plain);
    }

    #[test]
    fn every_problem_is_reported_at_its_path() {
        assert_eq!(
            paths(json!({"sequence": [{"event": "a"}]})),
            ["condition.sequence"]
        );
        let eleven: Vec<Json> = (0..11).map(|i| json!({"event": format!("e{i}")})).collect();
        assert_eq!(paths(json!({"sequence": eleven})), ["condition.sequence"]);
        assert_eq!(
            paths(json!({"sequence": [
                {"event": "a", "period": "all_time"},
                {"where": [{"property": "x", "op": "gt", "value": "soon"}]}],
              "within": "7 days",
              "measure": "count"})),
            [
                "condition.measure",
                "condition.sequence[0].period",
                "condition.sequence[1].event",
                "condition.sequence[1].where[0].value",
                "condition.within",
            ]
        );
        // Steps are read even when there are too few, so all problems show at once.
        assert_eq!(
            paths(json!({"sequence": [{"event": []}]})),
            ["condition.sequence", "condition.sequence[0].event"]
        );
        assert_eq!(
            paths(json!({"sequence": {"event": "a"}, "period": {"last": "x"}})),
            ["condition.period.last", "condition.sequence"]
        );
        let message = &sequence(json!({"sequence": [{"event": "a"}]})).unwrap_err()[0].1;
        assert!(message.contains("2 to 10 steps, not 1"), "{message}");
    }
}
