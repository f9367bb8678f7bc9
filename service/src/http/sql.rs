//! `POST /v1/sql`: read-only analyst SQL over the store's tables (events, customers,
//! memberships, segment_changes, segments), under the configured memory and time limits and
//! the row cap — through the one analyst session builder shared with `kitle sql` and the
//! PostgreSQL protocol (`crate::analyst`).

use axum::http::HeaderMap;
use axum::response::Response;
use futures::StreamExt;
use serde::Deserialize;
use utoipa::ToSchema;

use super::Shared;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, table_format};
use super::tables::batches_body;

/// A query.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One read-only statement (no DDL, DML, COPY or SET).
    pub sql: String,
}

/// Runs one read-only query; the result as `{"columns", "rows"}`, CSV or Arrow (by `Accept`).
#[utoipa::path(post, path = "/v1/sql", tag = "sql", request_body = SqlRequest,
    responses((status = 200, description = "`{\"columns\": [name…], \"rows\": [[value…]…]}`, or text/csv, or application/vnd.apache.arrow.stream", body = Object),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn sql(
    state: Shared,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SqlRequest>,
) -> Result<Response, ApiError> {
    let session = state.analyst.query_session("http").await?;
    let mut rows = session.query(&request.sql, true).await?;
    let schema = rows.schema();
    let mut batches = Vec::new();
    while let Some(batch) = rows.next().await {
        batches.push(batch?);
    }
    batches_body(schema, &batches, table_format(&headers))
}
