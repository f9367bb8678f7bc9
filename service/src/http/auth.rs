//! Bearer tokens with `read` and `admin` scopes, and `GET /v1/auth`, which tells a client
//! (the console) whether it needs a token and what the one it holds may do.
//!
//! `read` reaches lookups, member lists, changes, history, preview and SQL; `admin` reaches
//! everything (definitions and refreshes too). `/healthz`, `/metrics` and `/openapi.json` are
//! open, for probes and scrapers, and so are the console's static files (`/`, `/console/…`:
//! no shop data) and `/v1/auth` (it checks the token itself). With no tokens configured every
//! request is allowed — which is why the service then refuses to listen on anything but
//! loopback (see `kitle serve`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::{AppState, Shared};
use crate::config::TokenConfig;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Reads: lookups, members, changes, history, preview, SQL.
    Read,
    /// Everything, including keeping definitions and refreshing.
    Admin,
}

/// The scope a request needs; `None` for the open routes.
fn needed(method: &Method, path: &str) -> Option<Scope> {
    if matches!(path, "/healthz" | "/metrics" | "/openapi.json" | AUTH_PATH)
        || (matches!(*method, Method::GET | Method::HEAD) && super::console::is_console_path(path))
    {
        return None;
    }
    let writes = matches!(*method, Method::PUT | Method::DELETE | Method::PATCH)
        || (*method == Method::POST && path.ends_with("/refresh"));
    Some(if writes { Scope::Admin } else { Scope::Read })
}

/// Checks the bearer token against the configured ones (all compared, so timing does not say
/// which prefix matched).
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let tokens = &state.config.tokens;
    let Some(scope) = needed(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    if tokens.is_empty() {
        return next.run(request).await;
    }
    match granted(tokens, request.headers()) {
        Presented::None => unauthorized("no bearer token: send `Authorization: Bearer <token>`"),
        Presented::Unknown => unauthorized("unknown token"),
        Presented::Known(have) if have < scope => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token has the read scope; the request needs admin",
        )
        .into_response(),
        Presented::Known(_) => next.run(request).await,
    }
}

/// The token a request presents, judged against the configured ones.
enum Presented {
    /// No `Authorization: Bearer` header.
    None,
    /// A token that is not configured.
    Unknown,
    /// A configured token, with the widest scope it is configured with.
    Known(Scope),
}

/// Judges the request's bearer token (all tokens compared, so timing does not say which
/// prefix matched).
fn granted(tokens: &[TokenConfig], headers: &HeaderMap) -> Presented {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(given) = given else {
        return Presented::None;
    };
    let mut granted: Option<Scope> = None;
    for t in tokens {
        if constant_time_eq(t.token.as_bytes(), given.as_bytes()) {
            granted = granted.max(Some(t.scope));
        }
    }
    granted.map_or(Presented::Unknown, Presented::Known)
}

/// The path of [`status`].
pub const AUTH_PATH: &str = "/v1/auth";

/// `GET /v1/auth`: whether the service wants tokens and what the presented one may do.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthStatus {
    /// Whether tokens are configured (then every `/v1` route but this one needs one).
    pub tokens_required: bool,
    /// What the request may do: the presented token's scope; `admin` when no tokens are
    /// configured (everything is allowed, on loopback only); null when tokens are configured
    /// and none was presented.
    pub scope: Option<Scope>,
}

/// Whether a token is needed, and the scope of the one presented (401 for an unknown one).
/// Open: a client asks this before it has a token, to know whether to ask for one.
#[utoipa::path(get, path = "/v1/auth", tag = "auth",
    security((), ("bearer" = [])),
    responses((status = 200, body = AuthStatus),
        (status = 401, description = "The presented token is not configured", body = ErrorBody)))]
pub async fn status(state: Shared, headers: HeaderMap) -> Response {
    let tokens = &state.config.tokens;
    if tokens.is_empty() {
        return Json(AuthStatus {
            tokens_required: false,
            scope: Some(Scope::Admin),
        })
        .into_response();
    }
    match granted(tokens, &headers) {
        Presented::Unknown => unauthorized("unknown token"),
        Presented::None => Json(AuthStatus {
            tokens_required: true,
            scope: None,
        })
        .into_response(),
        Presented::Known(scope) => Json(AuthStatus {
            tokens_required: true,
            scope: Some(scope),
        })
        .into_response(),
    }
}

fn unauthorized(message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_need_admin_and_probes_are_open() {
        assert_eq!(needed(&Method::GET, "/healthz"), None);
        assert_eq!(needed(&Method::GET, "/v1/auth"), None);
        assert_eq!(needed(&Method::GET, "/"), None);
        assert_eq!(needed(&Method::GET, "/console/js/app.js"), None);
        assert_eq!(
            needed(&Method::PUT, "/console/js/app.js"),
            Some(Scope::Admin)
        );
        assert_eq!(needed(&Method::GET, "/v1/segments"), Some(Scope::Read));
        assert_eq!(
            needed(&Method::POST, "/v1/segments/preview"),
            Some(Scope::Read)
        );
        assert_eq!(needed(&Method::POST, "/v1/sql"), Some(Scope::Read));
        assert_eq!(needed(&Method::PUT, "/v1/segments/x"), Some(Scope::Admin));
        assert_eq!(
            needed(&Method::DELETE, "/v1/segments/x"),
            Some(Scope::Admin)
        );
        assert_eq!(
            needed(&Method::POST, "/v1/segments/x/refresh"),
            Some(Scope::Admin)
        );
        assert_eq!(needed(&Method::POST, "/v1/refresh"), Some(Scope::Admin));
    }
}
