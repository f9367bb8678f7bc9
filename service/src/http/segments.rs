//! `GET /v1/segments`, `GET|PUT|DELETE /v1/segments/{id}`: the stored definitions.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value as Json_, json};
use utoipa::ToSchema;

use super::Shared;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiJson;

/// One segment in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentSummary {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its refresh cadence (`manual`, `hourly`, `nightly` or a cron expression).
    pub refresh: String,
    /// Members at the last refresh; null before the first.
    pub size: Option<u64>,
    /// The `as_of` of the last refresh; null before the first.
    pub last_as_of: Option<DateTime<Utc>>,
}

/// `GET /v1/segments`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentList {
    /// Every stored segment, by id.
    pub segments: Vec<SegmentSummary>,
}

/// Every stored segment with its size and last refresh.
#[utoipa::path(get, path = "/v1/segments", tag = "segments",
    responses((status = 200, body = SegmentList)))]
pub async fn list(state: Shared) -> Json<SegmentList> {
    let definitions = state.engine.definitions();
    let snapshot = state.engine.snapshot();
    let segments = definitions
        .values()
        .map(|s| {
            let current = snapshot.segments.get(&s.definition.id);
            SegmentSummary {
                id: s.definition.id.clone(),
                name: s.definition.name.clone(),
                refresh: s.definition.refresh.to_string(),
                size: current.map(|c| c.len()),
                last_as_of: current.map(|c| c.record.as_of),
            }
        })
        .collect();
    Json(SegmentList { segments })
}

/// The stored definition with `size` and `last_as_of` added.
#[utoipa::path(get, path = "/v1/segments/{id}", tag = "segments",
    params(("id" = String, Path, description = "Segment id")),
    responses((status = 200, description = "The definition, with `size` and `last_as_of`", body = Object),
        (status = 404, body = ErrorBody)))]
pub async fn get(state: Shared, Path(id): Path<String>) -> Result<Json<Json_>, ApiError> {
    let definitions = state.engine.definitions();
    let stored = definitions
        .get(&id)
        .ok_or_else(|| ApiError::segment_not_found(&id))?;
    let current = state.engine.snapshot().segments.get(&id).cloned();
    let mut document = stored.definition.to_json();
    if let Some(object) = document.as_object_mut() {
        object.insert("size".into(), json!(current.as_ref().map(|c| c.len())));
        object.insert(
            "last_as_of".into(),
            json!(current.as_ref().map(|c| c.record.as_of)),
        );
    }
    Ok(Json(document))
}

/// Keeps a definition: 201 when created, 200 when replaced, 400 with every problem (each with
/// its JSON path) when refused. The body's `id` may be absent or equal to the path's.
#[utoipa::path(put, path = "/v1/segments/{id}", tag = "segments",
    params(("id" = String, Path, description = "Segment id")),
    request_body(content = Object, description = "A segment definition in the language"),
    responses((status = 201, description = "Created; the stored definition", body = Object),
        (status = 200, description = "Replaced; the stored definition", body = Object),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn put(
    state: Shared,
    Path(id): Path<String>,
    ApiJson(mut document): ApiJson<Json_>,
) -> Result<Response, ApiError> {
    let Some(object) = document.as_object_mut() else {
        return Err(ApiError::bad(
            "invalid_definition",
            "a segment definition is a JSON object",
        )
        .with_details(vec![json!({"path": "", "found": short(&document), "allowed": "an object", "message": "a segment definition is a JSON object"})]));
    };
    match object.get("id") {
        None => {
            object.insert("id".into(), Json_::String(id.clone()));
        }
        Some(Json_::String(given)) if *given == id => {}
        Some(other) => {
            return Err(ApiError::bad(
                "id_mismatch",
                format!("the body's id {other} differs from the path's {id:?}"),
            )
            .with_details(vec![json!({"path": "id", "found": other, "allowed": id, "message": "the body's id must be absent or equal to the path's"})]));
        }
    }
    let created = state.engine.put(document).await?;
    let stored = state
        .engine
        .definitions()
        .get(&id)
        .map(|s| s.definition.to_json())
        .unwrap_or(Json_::Null);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(stored)).into_response())
}

fn short(value: &Json_) -> String {
    let text = value.to_string();
    text.chars().take(80).collect()
}

/// Removes a definition and its memberships: 204; 404 when unknown; 409 while other segments
/// refer to it (they are listed in `details`).
#[utoipa::path(delete, path = "/v1/segments/{id}", tag = "segments",
    params(("id" = String, Path, description = "Segment id")),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn delete(state: Shared, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.engine.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
