//! `GET /v1/schema` and `GET /v1/templates`: what a segment builder (the console, or a
//! shop's own tool) needs to offer only valid choices — the store's columns with their
//! operators, the event types present, and the ready-made segments to start from.

use axum::Json;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value as Json_;
use utoipa::ToSchema;

use super::Shared;
use super::error::{ApiError, ErrorBody};

/// A column of `customers` or `events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchemaColumn {
    /// The column's name, as conditions name it.
    pub name: String,
    /// The segment language's type family: `text`, `number`, `timestamp`, `text_list`,
    /// `boolean` or `other`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The Arrow type the store's files are read as, e.g. `Decimal128(18, 2)`.
    pub arrow_type: String,
    /// The operators a condition on this column may use (`is_set`, `is_not_set`, then those of
    /// its type; `domain_in` only on `email`).
    pub operators: Vec<String>,
}

/// An event type present in the store.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchemaEventType {
    /// The `event_type`.
    pub event_type: String,
    /// How many events of it the store holds (each `event_id` once).
    pub count: u64,
}

/// `GET /v1/schema`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreSchema {
    /// Columns of `customers` (attribute conditions): the contract's, then custom ones.
    pub customers: Vec<SchemaColumn>,
    /// Columns of `events` (`where` filters, measured columns): the contract's, then extra
    /// properties.
    pub events: Vec<SchemaColumn>,
    /// Event types present, most frequent first.
    pub event_types: Vec<SchemaEventType>,
}

fn columns(list: Vec<kitle_planner::ColumnDescription>) -> Vec<SchemaColumn> {
    list.into_iter()
        .map(|c| SchemaColumn {
            name: c.name,
            kind: c.kind.to_string(),
            arrow_type: c.arrow_type,
            operators: c.operators.into_iter().map(str::to_string).collect(),
        })
        .collect()
}

/// The columns of both tables with their type families and operators, and the event types
/// present with their counts.
#[utoipa::path(get, path = "/v1/schema", tag = "schema",
    responses((status = 200, body = StoreSchema),
        (status = 400, description = "Counting the event types ran past the preview limits (`limit_exceeded`, naming the key)", body = ErrorBody),
        (status = 500, body = ErrorBody)))]
pub async fn schema(state: Shared) -> Result<Json<StoreSchema>, ApiError> {
    // A read token may ask for this: the first count (a scan of the events) runs under the
    // preview limits.
    let described = state
        .engine
        .describe(&state.config.preview_limits())
        .await?;
    Ok(Json(StoreSchema {
        customers: columns(described.customers),
        events: columns(described.events),
        event_types: described
            .event_types
            .into_iter()
            .map(|t| SchemaEventType {
                event_type: t.event_type,
                count: t.count,
            })
            .collect(),
    }))
}

/// `GET /v1/templates`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Templates {
    /// The ready-made definitions, by id, exactly as kitle ships them in `queries/segments/`.
    #[schema(value_type = Vec<Object>)]
    pub templates: Vec<Json_>,
}

/// The ready-made segments kitle ships ("Hazır Segmentler"), to start a definition from.
#[utoipa::path(get, path = "/v1/templates", tag = "schema",
    responses((status = 200, body = Templates), (status = 500, body = ErrorBody)))]
pub async fn templates() -> Result<Json<Templates>, ApiError> {
    let templates = crate::ready_made::documents()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    Ok(Json(Templates { templates }))
}
