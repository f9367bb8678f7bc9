//! `GET /healthz` (liveness) and `GET /metrics` (Prometheus text format).

use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::Shared;

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` while the service answers.
    pub status: &'static str,
    /// Segments with memberships in memory.
    pub segments_loaded: usize,
}

/// Answers while the service runs.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, body = Health)))]
pub async fn healthz(state: Shared) -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok",
        segments_loaded: state.engine.snapshot().segments.len(),
    })
}

/// Request latency histograms per route, refresh durations and sizes, segment sizes.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(state: Shared) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
