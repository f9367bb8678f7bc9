//! Errors as HTTP answers: `{"error": {"code", "message", "details"}}` with a stable
//! snake_case code and a 4xx status for the caller's mistakes, 5xx only for the service's own.
//! Every mapping from the engine's errors to codes lives here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kitle_data::Blame;
use serde::Serialize;
use serde_json::{Value as Json_, json};
use utoipa::ToSchema;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `invalid_definition`.
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// Structured detail: the validation problems with their JSON paths, the segments that
    /// refer to one being removed, …
    pub details: Vec<Json_>,
}

/// The body of every error answer (for the OpenAPI document).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code: `invalid_definition`, `invalid_json`, `invalid_parameter`,
    /// `invalid_cursor`, `id_mismatch`, `cannot_plan`, `sql_refused`, `sql_error`,
    /// `sql_time_limit`, `sql_resource_limit`, `unauthorized`, `forbidden`,
    /// `segment_not_found`, `not_found`, `method_not_allowed`, `segment_in_use`,
    /// `payload_too_large`, `store_error`, `execution_failed`, `internal`.
    pub code: String,
    /// For people.
    pub message: String,
    /// Structured detail (may be empty).
    #[schema(value_type = Vec<Object>)]
    pub details: Vec<Json_>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// A 400 for a bad query parameter or body field.
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 for a segment that is not stored.
    pub fn segment_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "segment_not_found",
            format!("no segment {id} is stored"),
        )
    }

    /// With details.
    pub fn with_details(mut self, details: Vec<Json_>) -> Self {
        self.details = details;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "details": self.details,
        }});
        (self.status, Json(body)).into_response()
    }
}

impl ApiError {
    /// The answer for a failure blamed on `blame` (see [`kitle_data::Blame`]) that is not
    /// one of the planner's own refusals: 400 for the caller's input, 400 for a configured
    /// limit (the request asked for more than the service allows; the message names the key),
    /// 409 for a conflicting writer, 500 for the store, the engine, and a definition that fails
    /// on the data while it runs.
    pub fn blamed(blame: Blame, message: String) -> Self {
        match blame {
            Blame::Input => Self::bad("invalid_parameter", message),
            Blame::Limit => Self::bad("limit_exceeded", message),
            Blame::Conflict => Self::new(StatusCode::CONFLICT, "conflict", message),
            Blame::Store => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "store_error", message),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "execution_failed",
                message,
            ),
        }
    }
}

impl From<kitle_planner::Error> for ApiError {
    fn from(e: kitle_planner::Error) -> Self {
        use kitle_planner::Error as E;
        let message = e.to_string();
        match e {
            E::Refused(problems) => Self::bad("invalid_definition", message).with_details(
                problems
                    .iter()
                    .map(|p| serde_json::to_value(p).unwrap_or_default())
                    .collect(),
            ),
            E::Syntax { .. } => Self::bad("invalid_parameter", message),
            E::Compile { .. } => Self::bad("cannot_plan", message),
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "segment_not_found", message),
            E::InUse { referenced_by, .. } => {
                Self::new(StatusCode::CONFLICT, "segment_in_use", message).with_details(
                    referenced_by
                        .into_iter()
                        .map(|id| json!({"referenced_by": id}))
                        .collect(),
                )
            }
            E::Store {
                source: kitle_data::Error::IdentityMismatch { .. },
                ..
            } => Self::new(StatusCode::CONFLICT, "identity_mismatch", message),
            other => Self::blamed(other.blame(), message),
        }
    }
}

impl From<kitle_data::Error> for ApiError {
    fn from(e: kitle_data::Error) -> Self {
        if let kitle_data::Error::IdentityMismatch { .. } = e {
            return Self::new(StatusCode::CONFLICT, "identity_mismatch", e.to_string());
        }
        Self::blamed(e.blame(), e.to_string())
    }
}

impl From<super::bodies::BodyError> for ApiError {
    fn from(e: super::bodies::BodyError) -> Self {
        Self::bad(e.code, e.message).with_details(e.details)
    }
}

impl From<crate::analyst::AnalystError> for ApiError {
    /// The caller's SQL and the limits it ran into are 400s with a code saying which; the
    /// store's and the engine's failures are 500s.
    fn from(e: crate::analyst::AnalystError) -> Self {
        use crate::analyst::AnalystError as E;
        let message = e.to_string();
        match e {
            E::Refused(_) => Self::bad("sql_refused", message),
            E::Query { .. } => Self::bad("sql_error", message),
            E::TimeLimit(_) => Self::bad("sql_time_limit", message),
            E::MemoryLimit(_) | E::RowLimit(_) => Self::bad("sql_resource_limit", message),
            E::Store(_) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "store_error", message),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "execution_failed",
                message,
            ),
        }
    }
}
