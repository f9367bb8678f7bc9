//! `kitle sql "QUERY"`: analyst SQL over the store's tables, through the same session builder
//! and read-only rules as `POST /v1/sql` and the PostgreSQL protocol, without limits (it runs
//! on the analyst's own machine).

use std::sync::Arc;

use futures::StreamExt;
use kitle_data::files::FooterCache;

use crate::Context;
use crate::analyst::{Analyst, AnalystError, Limits};
use crate::error::CliError;
use crate::output::{TableFormat, write_batches};

/// Runs one read-only query and prints its result in `format`.
pub async fn run(ctx: &Context, query: &str, format: TableFormat) -> Result<(), CliError> {
    let store = ctx.open_store()?;
    let analyst = Analyst::new(store, Arc::new(FooterCache::new()), Limits::default());
    let session = analyst
        .session("cli")
        .await
        .map_err(|e| CliError::runtime(e.to_string()))?;
    crate::warn_report(session.report());
    // Refused statements, parser and planner errors are the caller's (exit 2); the rest fail
    // at run time (1).
    let mut rows = session.query(query, false).await.map_err(|e| match e {
        e if e.is_callers() => CliError::input(format!("SQL error: {e}")),
        e => CliError::runtime(format!("query error: {e}")),
    })?;
    let schema = rows.schema();
    let mut batches = Vec::new();
    while let Some(batch) = rows.next().await {
        batches
            .push(batch.map_err(|e: AnalystError| CliError::runtime(format!("query error: {e}")))?);
    }
    let format = if ctx.json { TableFormat::Json } else { format };
    write_batches(&mut std::io::stdout().lock(), format, schema, &batches)
}
