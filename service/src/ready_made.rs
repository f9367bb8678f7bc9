//! The ready-made segments of `queries/segments/`, compiled into the binary so that
//! `kitle demo` and `GET /v1/templates` work from the binary alone.

use serde_json::Value as Json;

/// `(file name, JSON text)` of every ready-made segment, by file name.
const READY_MADE: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/ready_made.rs"));

/// The ready-made definitions as JSON documents, in file-name order (= id order). An error
/// names the file that is not JSON (the build embeds whatever `queries/segments/` holds; the
/// integration tests check that every one of them validates).
pub fn documents() -> Result<Vec<Json>, String> {
    READY_MADE
        .iter()
        .map(|(name, text)| {
            serde_json::from_str(text).map_err(|e| format!("ready-made segment {name}: {e}"))
        })
        .collect()
}
