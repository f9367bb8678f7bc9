//! What handlers take from requests, with the service's own error answers: JSON bodies (any
//! content type, bounded size), the wanted table format from `Accept`, and entity tags.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body. Unlike `axum::Json` it does not insist on a `Content-Type` (curl users forget
/// it), and its failures are the service's JSON errors: `payload_too_large` (413) beyond the
/// configured body limit, `invalid_json` (400) with the line and column otherwise.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        parse(&body(req, state).await?).map(ApiJson)
    }
}

/// An optional JSON body: an empty body, or `null`, is `None`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        // `null` is no body too.
        parse::<Option<T>>(&bytes).map(OptionalJson)
    }
}

/// The request body, bounded by the configured limit.
async fn body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than the configured limit (max_body_bytes)",
            )
        } else {
            ApiError::bad("invalid_json", format!("cannot read the body: {e}"))
        }
    })
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad("invalid_json", format!("the body is not valid JSON: {e}")))
}

/// A query string, parsed like `axum::extract::Query` but refused with the service's JSON
/// error (`invalid_parameter`, 400, naming the parameter) instead of a plain-text answer.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(pairs)
            .map(ApiQuery)
            .map_err(|e| {
                let name = e.path().to_string();
                let message = if name == "." || name.is_empty() {
                    format!("the query string is refused: {}", e.inner())
                } else {
                    format!("query parameter {name}: {}", e.inner())
                };
                ApiError::bad("invalid_parameter", message)
            })
    }
}

/// A path's parameters, parsed like `axum::extract::Path` but refused with the service's JSON
/// error (`invalid_parameter`, 400) — an id that is not valid percent-encoded UTF-8, say.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::bad("invalid_parameter", format!("the path is refused: {e}")))
    }
}

/// How a table is to be returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// `application/json` (the default).
    Json,
    /// `text/csv`.
    Csv,
    /// `application/vnd.apache.arrow.stream`.
    Arrow,
}

/// The Arrow IPC stream media type.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// The format the `Accept` header asks for (JSON unless CSV or Arrow is named).
pub fn table_format(headers: &HeaderMap) -> TableFormat {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains(ARROW_STREAM) {
        TableFormat::Arrow
    } else if accept.contains("text/csv") {
        TableFormat::Csv
    } else {
        TableFormat::Json
    }
}

/// Whether the request's `If-None-Match` matches `etag` (or is `*`).
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}
