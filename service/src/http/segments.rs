//! `GET /v1/segments`, `GET|PUT|DELETE /v1/segments/{id}`: the stored definitions.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value as Json_, json};
use utoipa::ToSchema;

use super::Shared;
use super::bodies::definition_for_put;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiJson;
use super::extract::ApiPath;

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
pub async fn get(state: Shared, ApiPath(id): ApiPath<String>) -> Result<Json<Json_>, ApiError> {
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
    ApiPath(id): ApiPath<String>,
    ApiJson(document): ApiJson<Json_>,
) -> Result<Response, ApiError> {
    let document = definition_for_put(&id, document)?;
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

/// Removes a definition and its memberships: 204; 404 when unknown; 409 while other segments
/// refer to it (they are listed in `details`).
#[utoipa::path(delete, path = "/v1/segments/{id}", tag = "segments",
    params(("id" = String, Path, description = "Segment id")),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn delete(state: Shared, ApiPath(id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    state.engine.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
