//! `POST /v1/segments/preview`: a definition evaluated without storing anything — its size, a
//! sample, and how many would enter and exit against the current members of the segment with
//! that id; or, given a list of instants, the size it would have had at each.

use std::collections::BTreeSet;

use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value as Json_;
use utoipa::ToSchema;

use super::Shared;
use super::bodies::{Instants, PreviewRequest, preview_instants};
use super::error::{ApiError, ErrorBody};
use super::extract::ApiJson;

/// Sample size when `sample` is not given; at most [`MAX_PAGE`](super::members::MAX_PAGE).
const DEFAULT_SAMPLE: usize = 20;

/// A preview at one instant.
#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    /// The instant evaluated at.
    pub as_of: DateTime<Utc>,
    /// Members.
    pub size: u64,
    /// The first members by id.
    pub sample: Vec<String>,
    /// Customers who would enter, against the current members of the segment with this id;
    /// null when it has none (not stored or never refreshed).
    pub entered: Option<u64>,
    /// Customers who would exit, likewise.
    pub exited: Option<u64>,
}

/// The size at one of several instants.
#[derive(Debug, Serialize, ToSchema)]
pub struct SizeAt {
    /// The instant.
    pub as_of: DateTime<Utc>,
    /// Members the definition would have had.
    pub size: u64,
}

/// A preview at several instants.
#[derive(Debug, Serialize, ToSchema)]
pub struct Sizes {
    /// In the order given.
    pub sizes: Vec<SizeAt>,
}

/// Evaluates a definition without storing it.
#[utoipa::path(post, path = "/v1/segments/preview", tag = "segments",
    request_body = PreviewRequest,
    responses((status = 200, description = "`Preview` for one instant, `Sizes` for a list", body = Preview),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn preview(
    state: Shared,
    ApiJson(request): ApiJson<PreviewRequest>,
) -> Result<Json<Json_>, ApiError> {
    let engine = &state.engine;
    // The body's own checks first: they cost nothing.
    let instants = preview_instants(
        request.as_of.as_ref(),
        engine.tz,
        crate::now_to_the_second(),
    )?;
    let definitions = kitle_planner::refresh::check_definitions(
        &engine.store,
        &engine.cache,
        &[request.definition],
        engine.tz,
    )
    .await?;
    let definition = definitions
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::bad("invalid_definition", "no definition was given"))?;
    let limits = state.config.preview_limits();
    match instants {
        Instants::Many(instants) => {
            let sizes = kitle_planner::refresh::preview_at(
                &engine.store,
                &engine.cache,
                &definition,
                &instants,
                engine.tz,
                &limits,
            )
            .await?
            .into_iter()
            .zip(&instants)
            .map(|(members, as_of)| SizeAt {
                as_of: *as_of,
                size: members.len() as u64,
            })
            .collect();
            Ok(Json(
                serde_json::to_value(Sizes { sizes }).unwrap_or_default(),
            ))
        }
        Instants::One(as_of) => {
            let members = kitle_planner::refresh::preview_at(
                &engine.store,
                &engine.cache,
                &definition,
                &[as_of],
                engine.tz,
                &limits,
            )
            .await?
            .pop()
            .unwrap_or_default();
            let snapshot = engine.snapshot();
            let id = definition.id.as_str();
            let (entered, exited) = if snapshot.segments.contains_key(id) {
                let now: BTreeSet<&str> = members.iter().map(String::as_str).collect();
                let entered = members
                    .iter()
                    .filter(|c| snapshot.lookup(id, c).is_none())
                    .count() as u64;
                let exited = snapshot.all(id).filter(|(c, _)| !now.contains(c)).count() as u64;
                (Some(entered), Some(exited))
            } else {
                (None, None)
            };
            let sample_size = request
                .sample
                .unwrap_or(DEFAULT_SAMPLE)
                .min(super::members::MAX_PAGE);
            let body = Preview {
                as_of,
                size: members.len() as u64,
                sample: members.iter().take(sample_size).cloned().collect(),
                entered,
                exited,
            };
            Ok(Json(serde_json::to_value(body).unwrap_or_default()))
        }
    }
}
