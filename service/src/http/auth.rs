//! Bearer tokens with `read` and `admin` scopes.
//!
//! `read` reaches lookups, member lists, changes, history, preview and SQL; `admin` reaches
//! everything (definitions and refreshes too). `/healthz`, `/metrics` and `/openapi.json` are
//! open, for probes and scrapers. With no tokens configured every request is allowed — which
//! is why the service then refuses to listen on anything but loopback (see `kitle serve`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Reads: lookups, members, changes, history, preview, SQL.
    Read,
    /// Everything, including keeping definitions and refreshing.
    Admin,
}

/// The scope a request needs; `None` for the open routes.
fn needed(method: &Method, path: &str) -> Option<Scope> {
    if matches!(path, "/healthz" | "/metrics" | "/openapi.json") {
        return None;
    }
    let writes = matches!(*method, Method::PUT | Method::DELETE | Method::PATCH)
        || (*method == Method::POST && (path.ends_with("/refresh") || path.ends_with("/erase")));
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
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(given) = given else {
        return unauthorized("no bearer token: send `Authorization: Bearer <token>`");
    };
    let mut granted: Option<Scope> = None;
    for t in tokens {
        if constant_time_eq(t.token.as_bytes(), given.as_bytes()) {
            granted = granted.max(Some(t.scope));
        }
    }
    match granted {
        None => unauthorized("unknown token"),
        Some(have) if have < scope => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token has the read scope; the request needs admin",
        )
        .into_response(),
        Some(_) => next.run(request).await,
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
        assert_eq!(
            needed(&Method::POST, "/v1/customers/c1/erase"),
            Some(Scope::Admin)
        );
    }
}
