//! The HTTP API of `../shared/spec/interfaces.md`, on axum: one handler module per resource,
//! the router with its layers (auth, body limit, metrics, tracing), and the OpenAPI document
//! generated from the handlers' annotations.

pub mod auth;
pub mod bodies;
pub mod changes;
pub mod console;
pub mod customers;
pub mod error;
pub mod extract;
pub mod health;
pub mod members;
pub mod openapi;
pub mod preview;
pub mod refresh;
pub mod schema;
pub mod segments;
pub mod sql;
pub mod tables;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::ServeConfig;
use crate::engine::Engine;
use error::ApiError;

/// What every handler can reach.
pub struct AppState {
    /// The store, definitions and membership index.
    pub engine: Arc<Engine>,
    /// Builds the sessions of `POST /v1/sql` (shared with the PostgreSQL protocol).
    pub analyst: crate::analyst::Analyst,
    /// The service's settings (limits, tokens).
    pub config: ServeConfig,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
}

/// Shared state as handlers take it.
pub type Shared = State<Arc<AppState>>;

#[derive(OpenApi)]
#[openapi(info(
    title = "kitle",
    description = "Customer segments of an online shop: lookups, member lists, change feeds, preview, refresh, analyst SQL, and what a segment builder needs (schema, templates, auth)."
))]
struct ApiDoc;

/// The router with every route and layer, and the OpenAPI document served at `/openapi.json`.
pub fn router(state: Arc<AppState>) -> Router {
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(segments::list))
        .routes(routes!(segments::get, segments::put, segments::delete))
        .routes(routes!(preview::preview))
        .routes(routes!(refresh::refresh_one))
        .routes(routes!(refresh::refresh_all))
        .routes(routes!(members::page))
        .routes(routes!(members::lookup))
        .routes(routes!(customers::segments_of))
        .routes(routes!(customers::erase))
        .routes(routes!(changes::changes))
        .routes(routes!(changes::history))
        .routes(routes!(sql::sql))
        .routes(routes!(schema::schema))
        .routes(routes!(schema::templates))
        .routes(routes!(auth::status))
        .routes(routes!(health::healthz))
        .routes(routes!(health::metrics))
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    openapi::complete(&mut doc, !state.config.tokens.is_empty());
    let document = Arc::new(openapi::with_language(
        serde_json::to_value(&doc).expect("the OpenAPI document serialises"),
    ));
    let limit = state.config.max_body_bytes;
    api.merge(console::routes(&state))
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let document = Arc::clone(&document);
                async move { axum::Json(document.as_ref().clone()) }
            }),
        )
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response()
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "the route does not take this method",
            )
            .into_response()
        })
        .layer(from_fn_with_state(Arc::clone(&state), auth::authorize))
        .layer(DefaultBodyLimit::max(limit))
        .layer(from_fn_with_state(
            Arc::new(RequestMetrics::default()),
            record_request,
        ))
        .with_state(state)
}

/// Histogram handles by route, method and status, so that recording a request's latency costs
/// a read lock and a hash instead of building labels and looking the series up each time.
#[derive(Default)]
pub struct RequestMetrics {
    handles: RwLock<HashMap<(String, Method, u16), metrics::Histogram>>,
}

impl RequestMetrics {
    fn histogram(&self, route: &str, method: &Method, status: u16) -> metrics::Histogram {
        let key = (route.to_string(), method.clone(), status);
        if let Some(h) = self.handles.read().expect("metrics lock").get(&key) {
            return h.clone();
        }
        let h = metrics::histogram!(
            "kitle_http_request_duration_seconds",
            "route" => route.to_string(),
            "method" => method.to_string(),
            "status" => status.to_string()
        );
        self.handles
            .write()
            .expect("metrics lock")
            .insert(key, h.clone());
        h
    }
}

/// Request latency per route, method and status as a Prometheus histogram, and one debug log
/// line per request (`KITLE_LOG=kitle=debug`).
async fn record_request(
    State(metrics): State<Arc<RequestMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let route = route.as_deref().unwrap_or("unmatched");
    let status = response.status().as_u16();
    metrics
        .histogram(route, &method, status)
        .record(elapsed.as_secs_f64());
    tracing::debug!(%method, route, status, micros = elapsed.as_micros() as u64, "request");
    response
}

/// Percent-encodes `text` as one path segment of this API's URLs: every byte but ASCII letters,
/// digits and `-_.~` as `%XX`. Customer ids may hold Turkish letters or slashes, and the
/// `curl` lines `kitle demo` prints (and the tests' requests) must still reach the right route.
pub fn encode_path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
