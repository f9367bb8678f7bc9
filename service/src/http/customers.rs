//! `GET /v1/customers/{customer_id}/segments`: every segment a customer is in, from memory.

use axum::Json;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Shared;
use super::extract::ApiPath;
use super::extract::not_modified;
use super::members::{not_modified_response, with_etag};

/// A segment the customer is in.
#[derive(Debug, Serialize, ToSchema)]
pub struct Membership {
    /// The segment.
    pub id: String,
    /// Since when the customer is in it.
    pub since: DateTime<Utc>,
}

/// The customer's segments.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerSegments {
    /// The customer.
    pub customer_id: String,
    /// The segments they are in, by id (empty for an unknown customer).
    pub segments: Vec<Membership>,
}

/// The segments a customer is in, with since when — one answer over one snapshot, so two
/// segments refreshed together are never seen at different versions.
#[utoipa::path(get, path = "/v1/customers/{customer_id}/segments", tag = "members",
    params(("customer_id" = String, Path, description = "Customer id")),
    responses((status = 200, body = CustomerSegments), (status = 304, description = "Not modified")))]
pub async fn segments_of(
    state: Shared,
    ApiPath(customer_id): ApiPath<String>,
    headers: HeaderMap,
) -> Response {
    let snapshot = state.engine.snapshot();
    let etag = snapshot.etag();
    if not_modified(&headers, &etag) {
        return not_modified_response(&etag);
    }
    let segments = snapshot
        .segments_of(&customer_id)
        .into_iter()
        .map(|(id, since)| Membership {
            id: id.to_string(),
            since,
        })
        .collect();
    with_etag(
        Json(CustomerSegments {
            customer_id,
            segments,
        })
        .into_response(),
        &etag,
    )
}
