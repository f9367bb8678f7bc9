//! `GET /v1/segments/{id}/changes` (the feed automations poll) and
//! `GET /v1/segments/{id}/history`.
//!
//! A change cursor is a position in the sequence of change logs: `{version}-{offset}` means
//! "from entry `offset` of the change log of refresh `version` on". Change logs never change
//! once written and each refresh appends the next one, so a consumer that always passes the
//! `next_cursor` it was given sees every change exactly once.

use axum::Json;
use chrono::{DateTime, Utc};
use kitle_data::memberships::ChangeKind;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Shared;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery};
use super::members::{DEFAULT_PAGE, MAX_PAGE};

/// One entry or exit.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeItem {
    /// The customer.
    pub customer_id: String,
    /// `entered` or `exited`.
    #[schema(value_type = String)]
    pub change: ChangeKind,
    /// The `as_of` of the refresh that recorded it.
    pub at: DateTime<Utc>,
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePage {
    /// Changes after the cursor, oldest refresh first.
    pub changes: Vec<ChangeItem>,
    /// Always set: poll again with it. An empty page means nothing new yet.
    pub next_cursor: String,
}

/// Query of the feed.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// The last `next_cursor` (absent: from the first refresh on).
    pub since: Option<String>,
    /// Page size (default 1000, at most 10 000).
    pub limit: Option<usize>,
}

fn parse_cursor(text: &str) -> Option<(u64, usize)> {
    let (version, offset) = text.split_once('-')?;
    Some((version.parse().ok()?, offset.parse().ok()?))
}

/// Entries and exits recorded after the cursor.
#[utoipa::path(get, path = "/v1/segments/{id}/changes", tag = "changes",
    params(("id" = String, Path, description = "Segment id"), ChangesQuery),
    responses((status = 200, body = ChangePage), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn changes(
    state: Shared,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ChangesQuery>,
) -> Result<Json<ChangePage>, ApiError> {
    if !state.engine.definitions().contains_key(&id) {
        return Err(ApiError::segment_not_found(&id));
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let (mut version, mut offset) = match &query.since {
        None => (1, 0),
        Some(text) => parse_cursor(text).ok_or_else(|| {
            ApiError::bad("invalid_cursor", "the cursor is not one this service gave")
        })?,
    };
    let manifest = state.engine.manifest();
    let history = manifest
        .segments
        .get(&id)
        .map(|s| s.history.as_slice())
        .unwrap_or_default();
    let latest = history.last().map_or(0, |r| r.version);
    if version > latest + 1 || version == 0 {
        return Err(ApiError::bad(
            "invalid_cursor",
            format!(
                "the cursor points after version {version} but the segment's latest is {latest} \
                 (was it removed and created again?); start again without `since`"
            ),
        ));
    }
    let mut items = Vec::new();
    let from = version;
    for record in history.iter().filter(|r| r.version >= from) {
        if items.len() == limit {
            break;
        }
        if record.version > version {
            version = record.version;
            offset = 0;
        }
        let log = state.engine.changes(&record.changes).await?;
        let take = (limit - items.len()).min(log.len().saturating_sub(offset));
        items.extend(
            log[offset.min(log.len())..offset.min(log.len()) + take]
                .iter()
                .map(|c| ChangeItem {
                    customer_id: c.customer_id.clone(),
                    change: c.change,
                    at: c.at,
                }),
        );
        offset += take;
        if offset >= log.len() {
            // This log is consumed: the next position is the start of the next one.
            version = record.version + 1;
            offset = 0;
        }
    }
    Ok(Json(ChangePage {
        changes: items,
        next_cursor: format!("{version}-{offset}"),
    }))
}

/// One refresh of a segment.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    /// The version it produced.
    pub version: u64,
    /// The instant it evaluated at.
    pub as_of: DateTime<Utc>,
    /// Members after it.
    pub size: u64,
    /// Customers who entered.
    pub entered: u64,
    /// Customers who exited.
    pub exited: u64,
    /// How long the refresh run took.
    pub duration_ms: u64,
}

/// A segment's refreshes.
#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    /// Newest first.
    pub refreshes: Vec<HistoryItem>,
}

/// Size, entries and exits of every refresh, newest first.
#[utoipa::path(get, path = "/v1/segments/{id}/history", tag = "changes",
    params(("id" = String, Path, description = "Segment id")),
    responses((status = 200, body = History), (status = 404, body = ErrorBody)))]
pub async fn history(
    state: Shared,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<History>, ApiError> {
    if !state.engine.definitions().contains_key(&id) {
        return Err(ApiError::segment_not_found(&id));
    }
    let manifest = state.engine.manifest();
    let refreshes = manifest
        .segments
        .get(&id)
        .map(|s| {
            s.history
                .iter()
                .rev()
                .map(|r| HistoryItem {
                    version: r.version,
                    as_of: r.as_of,
                    size: r.size,
                    entered: r.entered,
                    exited: r.exited,
                    duration_ms: r.duration_ms,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(History { refreshes }))
}
