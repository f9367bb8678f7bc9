//! `kitle sql "QUERY"`: analyst SQL over the store's tables.

use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use kitle_data::Store;
use kitle_data::files::FooterCache;
use kitle_data::tables::ContractTables;

use crate::Context;
use crate::error::CliError;
use crate::output::{TableFormat, write_batches};

/// Runs one read-only query and prints its result in `format`.
pub async fn run(ctx: &Context, query: &str, format: TableFormat) -> Result<(), CliError> {
    let store = Store::open(&ctx.config.store)?;
    let tables = ContractTables::load(&store, &FooterCache::new()).await?;
    crate::warn_report(&tables.report());
    let session = kitle_data::session::new_context(&store);
    tables.register(&session)?;
    kitle_data::memberships::register_tables(&session, &store).await?;

    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let frame = session
        .sql_with_options(query, options)
        .await
        .map_err(|e| classify(e, "SQL"))?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(|e| classify(e, "query"))?;
    let format = if ctx.json { TableFormat::Json } else { format };
    write_batches(&mut std::io::stdout().lock(), format, schema, &batches)
}

/// Parser, planner and schema errors are the caller's (exit 2); the rest are run-time (1).
fn classify(error: DataFusionError, what: &str) -> CliError {
    let root = error.find_root();
    let message = format!("{what} error: {root}");
    match root {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => CliError::input(message),
        _ => CliError::runtime(message),
    }
}
