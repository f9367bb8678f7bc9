//! `POST /v1/segments/{id}/refresh` and `POST /v1/refresh`: refresh now, answering when done.
//! Refreshes run one at a time (a scheduled one included); the new memberships are served as
//! soon as this answers.

use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Shared;
use super::bodies::{RefreshRequest, refresh_as_of};
use super::error::{ApiError, ErrorBody};
use super::extract::ApiPath;
use super::extract::OptionalJson;

/// What one segment's refresh did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshedSegment {
    /// The segment.
    pub id: String,
    /// The version this refresh committed.
    pub version: u64,
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
    let as_of = refresh_as_of(body.as_ref(), engine.tz, crate::now_to_the_second())?;
    let outcome = engine
        .refresh(&ids, as_of, "http", &state.config.http_refresh_limits())
        .await?;
    Ok(Json(RefreshResponse {
        as_of: outcome.as_of,
        segments: outcome
            .segments
            .into_iter()
            .map(|s| RefreshedSegment {
                id: s.id,
                version: s.version,
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
    ApiPath(id): ApiPath<String>,
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
