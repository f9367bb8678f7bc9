//! `GET /v1/segments/{id}/members` (pages with a cursor, or the whole set as CSV / Arrow) and
//! `GET /v1/segments/{id}/members/{customer_id}` (a lookup, optionally explained).
//!
//! Both answer from the in-memory index. A page cursor names the membership version its first
//! page came from; when a refresh has replaced that version since, the following pages are
//! read from that version's (immutable) members file, so a listing never mixes versions.

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Shared;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery};
use super::extract::{TableFormat, not_modified, table_format};
use super::tables::members_body;
use crate::index::{SegmentIndex, Snapshot};

/// Page size when `limit` is not given.
pub const DEFAULT_PAGE: usize = 1000;
/// The largest page; larger `limit`s are cut to it.
pub const MAX_PAGE: usize = 10_000;

/// A member with the instant they entered.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberItem {
    /// The customer.
    pub customer_id: String,
    /// The `as_of` of the refresh that first found them (in this stay).
    pub since: DateTime<Utc>,
}

/// One page of members.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberPage {
    /// Members ordered by `customer_id`.
    pub members: Vec<MemberItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Query of a member listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size (default 1000, at most 10 000).
    pub limit: Option<usize>,
}

/// A cursor: the version (number and `as_of`, so a re-created segment's version 1 is not
/// mistaken for the old one's) and the last customer id returned.
struct Cursor {
    version: u64,
    as_of_micros: i64,
    after: String,
}

impl Cursor {
    fn encode(&self) -> String {
        let hex: String = self
            .after
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{}-{}-{hex}", self.version, self.as_of_micros)
    }

    fn decode(text: &str) -> Option<Cursor> {
        let mut parts = text.splitn(3, '-');
        let version = parts.next()?.parse().ok()?;
        let as_of_micros = parts.next()?.parse().ok()?;
        let hex = parts.next()?;
        if hex.len() % 2 != 0 {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Cursor {
            version,
            as_of_micros,
            after: String::from_utf8(bytes).ok()?,
        })
    }
}

/// The current snapshot and, from it, the segment's version (`None` before its first refresh);
/// 404 for a segment that is not stored. One read, so what is answered comes from one snapshot.
fn current(
    state: &Shared,
    id: &str,
) -> Result<(Arc<Snapshot>, Option<Arc<SegmentIndex>>), ApiError> {
    if !state.engine.definitions().contains_key(id) {
        return Err(ApiError::segment_not_found(id));
    }
    let snapshot = state.engine.snapshot();
    let segment = snapshot.segments.get(id).cloned();
    Ok((snapshot, segment))
}

/// Current members ordered by `customer_id`, a page at a time; with `Accept: text/csv` or
/// `application/vnd.apache.arrow.stream`, the whole set streamed.
#[utoipa::path(get, path = "/v1/segments/{id}/members", tag = "members",
    params(("id" = String, Path, description = "Segment id"), PageQuery),
    responses((status = 200, body = MemberPage,
            description = "A page; or the whole set as text/csv or application/vnd.apache.arrow.stream"),
        (status = 304, description = "Not modified"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn page(
    state: Shared,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (snapshot, segment) = current(&state, &id)?;
    let format = table_format(&headers);
    if format != TableFormat::Json {
        return Ok(members_body(snapshot, id, format));
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let cursor = match &query.cursor {
        None => None,
        Some(text) => Some(Cursor::decode(text).ok_or_else(|| {
            ApiError::bad("invalid_cursor", "the cursor is not one this service gave")
        })?),
    };
    let Some(segment) = segment else {
        // Never refreshed: no members yet.
        return Ok(Json(MemberPage {
            members: Vec::new(),
            next_cursor: None,
        })
        .into_response());
    };
    let record = &segment.record;
    let next = |last: Option<&str>, version: u64, as_of_micros: i64| {
        last.map(|after| {
            Cursor {
                version,
                as_of_micros,
                after: after.to_string(),
            }
            .encode()
        })
    };
    match cursor {
        Some(c)
            if c.version != record.version || c.as_of_micros != record.as_of.timestamp_micros() =>
        {
            // The listing started on an older version: finish it from that version's file.
            let manifest = state.engine.manifest();
            let old = manifest
                .segments
                .get(&id)
                .and_then(|s| {
                    s.history.iter().find(|r| {
                        r.version == c.version && r.as_of.timestamp_micros() == c.as_of_micros
                    })
                })
                .ok_or_else(|| {
                    ApiError::bad(
                        "invalid_cursor",
                        "the cursor's membership version is no longer kept; start the listing again",
                    )
                })?
                .clone();
            let members = state.engine.old_members(&old.members).await?;
            let start = members.partition_point(|m| m.customer_id.as_str() <= c.after.as_str());
            let slice = &members[start..(start + limit).min(members.len())];
            let more = start + slice.len() < members.len();
            let items: Vec<MemberItem> = slice
                .iter()
                .map(|m| MemberItem {
                    customer_id: m.customer_id.clone(),
                    since: m.since,
                })
                .collect();
            let last = if more {
                items.last().map(|m| m.customer_id.as_str())
            } else {
                None
            };
            let next_cursor = next(last, c.version, c.as_of_micros);
            Ok(Json(MemberPage {
                members: items,
                next_cursor,
            })
            .into_response())
        }
        c => {
            let etag = segment.etag();
            if c.is_none() && not_modified(&headers, &etag) {
                return Ok(not_modified_response(&etag));
            }
            let (items, more) = snapshot.page(&id, c.as_ref().map(|c| c.after.as_str()), limit);
            let last = if more {
                items.last().map(|m| m.0)
            } else {
                None
            };
            let next_cursor = next(last, record.version, record.as_of.timestamp_micros());
            let body = MemberPage {
                members: items
                    .into_iter()
                    .map(|(customer_id, since)| MemberItem {
                        customer_id: customer_id.to_string(),
                        since,
                    })
                    .collect(),
                next_cursor,
            };
            Ok(with_etag(Json(body).into_response(), &etag))
        }
    }
}

/// Query of a lookup.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// Also say, for every condition, whether it held at the last refresh and what was
    /// measured.
    #[serde(default)]
    pub explain: bool,
}

/// A lookup's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Lookup {
    /// Whether the customer is a member (an unknown customer is not).
    pub member: bool,
    /// Since when; null when not a member.
    pub since: Option<DateTime<Utc>>,
    /// With `explain=true`: the instant the conditions were evaluated at (the last refresh's
    /// `as_of`, or now before the first refresh).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained_as_of: Option<DateTime<Utc>>,
    /// With `explain=true`: whether the customer had a profile as of that instant (a
    /// customer outside the universe is in no segment, and every condition reads as false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_universe: Option<bool>,
    /// With `explain=true`: each condition of the definition, depth first.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub conditions: Option<Vec<kitle_planner::ConditionReport>>,
}

/// Whether a customer is a member, since when — and with `explain=true`, why.
#[utoipa::path(get, path = "/v1/segments/{id}/members/{customer_id}", tag = "members",
    params(("id" = String, Path, description = "Segment id"),
        ("customer_id" = String, Path, description = "Customer id"), LookupQuery),
    responses((status = 200, body = Lookup), (status = 304, description = "Not modified"),
        (status = 404, body = ErrorBody)))]
pub async fn lookup(
    state: Shared,
    ApiPath((id, customer_id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<LookupQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (snapshot, segment) = current(&state, &id)?;
    let since = snapshot.lookup(&id, &customer_id);
    if !query.explain {
        let etag = segment
            .as_ref()
            .map(|s| s.etag())
            .unwrap_or_else(|| "\"0\"".into());
        if not_modified(&headers, &etag) {
            return Ok(not_modified_response(&etag));
        }
        let body = Lookup {
            member: since.is_some(),
            since,
            explained_as_of: None,
            in_universe: None,
            conditions: None,
        };
        return Ok(with_etag(Json(body).into_response(), &etag));
    }
    let as_of = segment
        .as_ref()
        .map(|s| s.record.as_of)
        .unwrap_or_else(crate::now_to_the_second);
    let engine = &state.engine;
    let explanation = kitle_planner::refresh::explain_stored_member(
        &engine.store,
        &engine.cache,
        &id,
        &customer_id,
        as_of,
        engine.tz,
        &state.config.preview_limits(),
    )
    .await?;
    Ok(Json(Lookup {
        member: since.is_some(),
        since,
        explained_as_of: Some(explanation.as_of),
        in_universe: Some(explanation.in_universe),
        conditions: Some(explanation.conditions),
    })
    .into_response())
}

/// Adds the `ETag` header.
pub fn with_etag(mut response: Response, etag: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// A `304 Not Modified` carrying the tag.
pub fn not_modified_response(etag: &str) -> Response {
    with_etag(StatusCode::NOT_MODIFIED.into_response(), etag)
}
