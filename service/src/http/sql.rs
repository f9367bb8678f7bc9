//! `POST /v1/sql`: read-only analyst SQL over the store's tables (events, customers,
//! memberships, segment_changes, segments), under the configured memory and time limits.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use futures::StreamExt;
use kitle_data::tables::ContractTables;
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

fn refused(error: DataFusionError) -> ApiError {
    let root = error.find_root();
    let message = format!("{root}");
    // The session's deadline stopped the plan from the inside (see `kitle_data::deadline`).
    if kitle_data::classify(&error) == kitle_data::Blame::Limit
        && !matches!(root, DataFusionError::ResourcesExhausted(_))
    {
        return ApiError::bad("sql_time_limit", error.to_string());
    }
    match root {
        DataFusionError::Plan(m) if m.contains("not supported") || m.contains("DDL") || m.contains("DML") || m.contains("Statement") => {
            ApiError::bad("sql_refused", format!("only read-only queries are allowed: {message}"))
        }
        DataFusionError::ResourcesExhausted(_) => ApiError::bad(
            "sql_resource_limit",
            format!("the query needs more memory than the configured limit (sql_memory_limit_mb): {message}"),
        ),
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_)
        // Failures of the query's own arithmetic and casts (division by zero, a bad cast).
        | DataFusionError::ArrowError(..)
        | DataFusionError::Execution(_) => ApiError::bad("sql_error", message),
        _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "execution_failed", message),
    }
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
    let engine = &state.engine;
    let limits = &state.config;
    let tables = ContractTables::load(&engine.store, &engine.cache).await?;
    let session = kitle_data::session::context_with(
        &engine.store,
        &kitle_data::session::Limits::none()
            .with_memory_mb(limits.sql_memory_limit_mb, "sql_memory_limit_mb")
            .with_time(limits.sql_timeout, "sql_timeout_seconds")
            .start("the query"),
    );
    tables.register(&session)?;
    kitle_data::memberships::register_tables(&session, &engine.store).await?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let max_rows = limits.sql_max_rows;
    let run = async {
        let frame = session
            .sql_with_options(&request.sql, options)
            .await
            .map_err(refused)?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let mut stream = frame.execute_stream().await.map_err(refused)?;
        let mut batches = Vec::new();
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(refused)?;
            rows += batch.num_rows();
            if rows > max_rows {
                return Err(ApiError::bad(
                    "sql_resource_limit",
                    format!(
                        "the result has more than {max_rows} rows (sql_max_rows); add a LIMIT or aggregate"
                    ),
                ));
            }
            batches.push(batch);
        }
        Ok((schema, batches))
    };
    let (schema, batches) = tokio::time::timeout(limits.sql_timeout, run)
        .await
        .map_err(|_| {
            ApiError::bad(
                "sql_time_limit",
                format!(
                    "the query ran longer than the configured limit of {} s (sql_timeout_seconds)",
                    limits.sql_timeout.as_secs()
                ),
            )
        })??;
    batches_body(schema, &batches, table_format(&headers))
}
