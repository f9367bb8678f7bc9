//! `POST /v1/segments/{id}/refresh` and `POST /v1/refresh`: refresh now, answering when done.
//! Refreshes run one at a time (a scheduled one included); the new memberships are served as
//! soon as this answers.

use axum::Json;
use axum::extract::Path;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Shared;
use super::error::{ApiError, ErrorBody};
use super::extract::OptionalJson;

/// Optional body of a refresh.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The instant to evaluate at (RFC 3339 or `YYYY-MM-DD`; default now, to the second).
    pub as_of: Option<String>,
}

/// What one segment's refresh did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshedSegment {
    /// The segment.
    pub id: String,
    /// Members after.
    pub size: u64,
    /// Customers who entered.
    pub entered: u64,
    /// Customers who exited.
    pub exited: u64,
    /// Duration of the whole run (segments are evaluated together).
    pub duration_ms: u64,
}

/// What a refresh did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshResponse {
    /// The instant evaluated at.
    pub as_of: DateTime<Utc>,
    /// Per segment.
    pub segments: Vec<RefreshedSegment>,
}

async fn run(
    state: &Shared,
    ids: Vec<String>,
    body: Option<RefreshRequest>,
) -> Result<Json<RefreshResponse>, ApiError> {
    let engine = &state.engine;
    let as_of = match body.and_then(|b| b.as_of) {
        Some(text) => kitle_planner::parse_instant(&text, engine.tz)
            .map_err(|e| ApiError::bad("invalid_parameter", format!("as_of: {e}")))?,
        None => crate::now_to_the_second(),
    };
    let outcome = engine.refresh(&ids, as_of, "http").await?;
    Ok(Json(RefreshResponse {
        as_of: outcome.as_of,
        segments: outcome
            .segments
            .into_iter()
            .map(|s| RefreshedSegment {
                id: s.id,
                size: s.size,
                entered: s.entered,
                exited: s.exited,
                duration_ms: s.duration_ms,
            })
            .collect(),
    }))
}

/// Refreshes one segment (and, in the same plan, those it refers to).
#[utoipa::path(post, path = "/v1/segments/{id}/refresh", tag = "refresh",
    params(("id" = String, Path, description = "Segment id")),
    request_body(content = Option<RefreshRequest>, description = "Optional"),
    responses((status = 200, body = RefreshResponse), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn refresh_one(
    state: Shared,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RefreshRequest>,
) -> Result<Json<RefreshResponse>, ApiError> {
    if !state.engine.definitions().contains_key(&id) {
        return Err(ApiError::segment_not_found(&id));
    }
    run(&state, vec![id], body).await
}

/// Refreshes every stored segment in one run.
#[utoipa::path(post, path = "/v1/refresh", tag = "refresh",
    request_body(content = Option<RefreshRequest>, description = "Optional"),
    responses((status = 200, body = RefreshResponse), (status = 400, body = ErrorBody)))]
pub async fn refresh_all(
    state: Shared,
    OptionalJson(body): OptionalJson<RefreshRequest>,
) -> Result<Json<RefreshResponse>, ApiError> {
    run(&state, Vec::new(), body).await
}
