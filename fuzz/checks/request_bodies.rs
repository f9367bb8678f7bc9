//! What the `request_bodies` fuzz target checks for one input, kept in its own file so that
//! the test suite replays the corpus through the very same code (the integration test
//! `fuzz_replay` includes this file).
//!
//! The first byte picks a route, the rest is its JSON body, and the service's own body types
//! and checks (`service/src/http/bodies.rs`) run on it, then the definition it carries is
//! parsed and validated as the handler would: no panic, a refusal is a 400 with a stable code,
//! and a preview never asks for more instants than allowed.

use serde_json::Value;

use super::bodies::{
    Instants, MAX_INSTANTS, PreviewRequest, RefreshRequest, definition_for_put, preview_instants,
    refresh_as_of,
};
use super::definition;

/// Checks one input; panics on a violated property.
pub(super) fn check(data: &[u8], schemas: &kitle_planner::StoreSchemas) {
    let Some((route, body)) = data.split_first() else {
        return;
    };
    let tz = chrono_tz::Europe::Istanbul;
    let now = chrono::DateTime::from_timestamp(1_764_000_000, 0).expect("a valid instant");
    let codes = ["invalid_parameter", "invalid_definition", "id_mismatch"];
    match route % 3 {
        0 => {
            // POST /v1/segments/preview
            let Ok(request) = serde_json::from_slice::<PreviewRequest>(body) else {
                return;
            };
            match preview_instants(request.as_of.as_ref(), tz, now) {
                Ok(Instants::Many(list)) => assert!((1..=MAX_INSTANTS).contains(&list.len())),
                Ok(Instants::One(_)) => {}
                Err(e) => assert!(codes.contains(&e.code), "{e:?}"),
            }
            definition::check(request.definition.to_string().as_bytes(), schemas);
        }
        1 => {
            // POST /v1/refresh, POST /v1/segments/{id}/refresh: an empty body is none.
            let parsed = if body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                match serde_json::from_slice::<RefreshRequest>(body) {
                    Ok(b) => Some(b),
                    Err(_) => return,
                }
            };
            if let Err(e) = refresh_as_of(parsed.as_ref(), tz, now) {
                assert_eq!(e.code, "invalid_parameter", "{e:?}");
            }
        }
        _ => {
            // PUT /v1/segments/{id}, with the id the fuzzer gave.
            let Ok(document) = serde_json::from_slice::<Value>(body) else {
                return;
            };
            let id = document
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("fuzzed")
                .to_string();
            match definition_for_put(&id, document) {
                Ok(doc) => {
                    assert_eq!(doc["id"], Value::String(id));
                    definition::check(doc.to_string().as_bytes(), schemas);
                }
                Err(e) => assert!(codes.contains(&e.code), "{e:?}"),
            }
        }
    }
}
