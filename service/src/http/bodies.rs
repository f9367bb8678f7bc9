//! The JSON bodies of the API's requests, and every check made on them before anything touches
//! the store: which instants a preview asks for, the `as_of` of a refresh, the id of a definition
//! being put.
//!
//! Kept free of the rest of the service (no axum state, no DataFusion) so that the fuzz target
//! of the request bodies (`fuzz/fuzz_targets/request_bodies.rs`) compiles this very file and
//! runs the handlers' own checks on random input.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use utoipa::ToSchema;

/// How many instants one preview may evaluate.
pub const MAX_INSTANTS: usize = 60;

/// A body refused before anything ran: the stable code, the message and the structured details
/// of the 400 answer.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyError {
    /// Stable code (`invalid_parameter`, `invalid_definition`, `id_mismatch`).
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// Structured detail (`{path, found, allowed, message}`), may be empty.
    pub details: Vec<Json>,
}

impl BodyError {
    fn parameter(message: String) -> Self {
        Self {
            code: "invalid_parameter",
            message,
            details: Vec::new(),
        }
    }
}

/// What to preview.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// A segment definition in the language (see `SegmentDefinition`).
    #[schema(value_type = Object)]
    pub definition: Json,
    /// One instant (default now) or a list of 1 to 60 (RFC 3339 with an offset, or
    /// `YYYY-MM-DD` in the store's zone).
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    pub as_of: Option<Json>,
    /// How many member ids to return as a sample (default 20, at most 10 000).
    #[serde(default)]
    pub sample: Option<usize>,
}

/// The instants a preview evaluates at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instants {
    /// One instant: the full preview (size, sample, entered, exited).
    One(DateTime<Utc>),
    /// Several: the size at each, in the order given.
    Many(Vec<DateTime<Utc>>),
}

/// The instants of a preview's `as_of`: absent or null is `now`; a string one instant; a list
/// of 1 to [`MAX_INSTANTS`] strings that many. Anything else is refused with the path of what
/// is wrong (`as_of[3]`).
pub fn preview_instants(
    as_of: Option<&Json>,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Instants, BodyError> {
    match as_of {
        None | Some(Json::Null) => Ok(Instants::One(now)),
        Some(Json::Array(list)) => {
            if list.is_empty() || list.len() > MAX_INSTANTS {
                return Err(BodyError::parameter(format!(
                    "as_of: give 1 to {MAX_INSTANTS} instants ({} given)",
                    list.len()
                )));
            }
            list.iter()
                .enumerate()
                .map(|(i, v)| instant(v, &format!("as_of[{i}]"), tz))
                .collect::<Result<Vec<_>, _>>()
                .map(Instants::Many)
        }
        Some(v) => instant(v, "as_of", tz).map(Instants::One),
    }
}

fn instant(value: &Json, path: &str, tz: Tz) -> Result<DateTime<Utc>, BodyError> {
    let text = value.as_str().ok_or_else(|| {
        BodyError::parameter(format!(
            "{path}: an instant is a string (RFC 3339 or YYYY-MM-DD), not {value}"
        ))
    })?;
    kitle_planner::parse_instant(text, tz).map_err(|e| BodyError::parameter(format!("{path}: {e}")))
}

/// Optional body of a refresh.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The instant to evaluate at (RFC 3339 with an offset, or `YYYY-MM-DD` in the store's
    /// zone; default now, to the second).
    pub as_of: Option<String>,
}

/// The `as_of` of a refresh: the body's, or `now` when there is no body or no `as_of`.
pub fn refresh_as_of(
    body: Option<&RefreshRequest>,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, BodyError> {
    match body.and_then(|b| b.as_of.as_deref()) {
        Some(text) => kitle_planner::parse_instant(text, tz)
            .map_err(|e| BodyError::parameter(format!("as_of: {e}"))),
        None => Ok(now),
    }
}

/// The document of `PUT /v1/segments/{id}`, with its `id` set from the path: refused when it is
/// not an object, or its `id` is given and differs from the path's.
pub fn definition_for_put(path_id: &str, mut document: Json) -> Result<Json, BodyError> {
    let Some(object) = document.as_object_mut() else {
        return Err(BodyError {
            code: "invalid_definition",
            message: "a segment definition is a JSON object".into(),
            details: vec![
                json!({"path": "", "found": short(&document), "allowed": "an object",
                "message": "a segment definition is a JSON object"}),
            ],
        });
    };
    match object.get("id") {
        None => {
            object.insert("id".into(), Json::String(path_id.to_string()));
        }
        Some(Json::String(given)) if given == path_id => {}
        Some(other) => {
            return Err(BodyError {
                code: "id_mismatch",
                message: format!("the body's id {other} differs from the path's {path_id:?}"),
                details: vec![json!({"path": "id", "found": other, "allowed": path_id,
                    "message": "the body's id must be absent or equal to the path's"})],
            });
        }
    }
    Ok(document)
}

fn short(value: &Json) -> String {
    value.to_string().chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_000_000, 0).unwrap()
    }

    #[test]
    fn preview_instants_take_none_one_or_a_bounded_list() {
        let tz = chrono_tz::Europe::Istanbul;
        assert_eq!(preview_instants(None, tz, now()), Ok(Instants::One(now())));
        assert_eq!(
            preview_instants(Some(&Json::Null), tz, now()),
            Ok(Instants::One(now()))
        );
        let day = preview_instants(Some(&json!("2025-11-28")), tz, now()).unwrap();
        assert_eq!(
            day,
            Instants::One("2025-11-27T21:00:00Z".parse().unwrap()),
            "midnight in the store's zone"
        );
        let many = json!(["2025-11-28T09:30:00Z", "2025-11-29"]);
        assert!(matches!(
            preview_instants(Some(&many), tz, now()),
            Ok(Instants::Many(v)) if v.len() == 2
        ));
        let err = preview_instants(Some(&json!(["2025-11-28", 7])), tz, now()).unwrap_err();
        assert!(err.message.starts_with("as_of[1]"), "{err:?}");
        let err = preview_instants(Some(&json!([])), tz, now()).unwrap_err();
        assert!(err.message.contains("1 to 60"), "{err:?}");
        let long = Json::Array(vec![json!("2025-11-28"); 61]);
        assert!(preview_instants(Some(&long), tz, now()).is_err());
        assert!(preview_instants(Some(&json!({"at": 1})), tz, now()).is_err());
    }

    #[test]
    fn put_bodies_get_the_paths_id_or_are_refused() {
        let doc = definition_for_put("vip", json!({"condition": {}})).unwrap();
        assert_eq!(doc["id"], json!("vip"));
        assert!(definition_for_put("vip", json!({"id": "vip"})).is_ok());
        assert_eq!(
            definition_for_put("vip", json!({"id": "other"}))
                .unwrap_err()
                .code,
            "id_mismatch"
        );
        assert_eq!(
            definition_for_put("vip", json!({"id": 7}))
                .unwrap_err()
                .code,
            "id_mismatch"
        );
        assert_eq!(
            definition_for_put("vip", json!([1])).unwrap_err().code,
            "invalid_definition"
        );
    }

    #[test]
    fn refreshes_default_to_now() {
        let tz = chrono_tz::UTC;
        assert_eq!(refresh_as_of(None, tz, now()), Ok(now()));
        let body = RefreshRequest {
            as_of: Some("2025-11-28T12:00:00+03:00".into()),
        };
        assert_eq!(
            refresh_as_of(Some(&body), tz, now()).unwrap(),
            "2025-11-28T09:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let bad = RefreshRequest {
            as_of: Some("yesterday".into()),
        };
        assert_eq!(
            refresh_as_of(Some(&bad), tz, now()).unwrap_err().code,
            "invalid_parameter"
        );
    }
}
