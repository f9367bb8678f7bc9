//! `GET /v1/customers/{customer_id}/segments`: every segment a customer is in, from memory;
//! `POST /v1/customers/{customer_id}/erase`: forget the customer (KVKK, GDPR).

use axum::Json;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use serde::Deserialize;

use super::Shared;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, OptionalJson, not_modified};
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

/// Optional body of an erasure.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    /// Why (kept in the erasure list with the instant), e.g. `KVKK talebi #1234`.
    pub reason: Option<String>,
}

/// What an erasure did.
#[derive(Debug, Serialize, ToSchema)]
pub struct EraseResponse {
    /// The customer.
    pub customer_id: String,
    /// The segments they left, by id (empty for an unknown or already erased customer).
    pub segments: Vec<String>,
    /// The erasure's instant (the `at` of its `exited` changes).
    pub at: DateTime<Utc>,
    /// Whether the customer was already erased (nothing changed then).
    pub already_erased: bool,
    /// Stored definitions whose text names the customer (left as they are).
    pub definitions_mentioning: Vec<String>,
}

/// Erases a customer: they leave every segment at once (one `exited` change each, at the
/// erasure's instant), every file kitle wrote is rewritten without them, and they stay out of
/// every later evaluation. Erasing an unknown or erased customer changes no membership.
#[utoipa::path(post, path = "/v1/customers/{customer_id}/erase", tag = "members",
    params(("customer_id" = String, Path, description = "Customer id")),
    request_body(content = Option<EraseRequest>, description = "Optional"),
    responses((status = 200, body = EraseResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "identity_mismatch or conflict"),
        (status = 500, body = ErrorBody)))]
pub async fn erase(
    state: Shared,
    ApiPath(customer_id): ApiPath<String>,
    OptionalJson(body): OptionalJson<EraseRequest>,
) -> Result<Json<EraseResponse>, ApiError> {
    if customer_id.is_empty() {
        return Err(ApiError::bad(
            "invalid_parameter",
            "the customer id is empty",
        ));
    }
    let reason = body.and_then(|b| b.reason);
    let outcome = state
        .engine
        .erase(std::slice::from_ref(&customer_id), reason.as_deref())
        .await?;
    let erased = outcome.customers.into_iter().next().unwrap_or_default();
    Ok(Json(EraseResponse {
        customer_id,
        segments: erased.segments,
        at: outcome.at,
        already_erased: erased.already_erased,
        definitions_mentioning: outcome.definitions_mentioning,
    }))
}
