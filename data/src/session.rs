//! The DataFusion session every kitle query runs in.
//!
//! One place sets the options that the contract's reading depends on, so that the CLI, the
//! engine and the tests all read the store the same way.

use std::sync::Arc;

use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::store::Store;

/// The session configuration kitle uses.
///
/// Parquet strings are read as `Utf8` (the contract's type, not DataFusion's default
/// `Utf8View`), so that a file's columns need no cast to the table's schema; the information
/// schema is on so analysts can `SHOW TABLES`.
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new().with_information_schema(true);
    let options = config.options_mut();
    options.execution.parquet.schema_force_view_types = false;
    options.execution.parquet.pushdown_filters = true;
    options.execution.parquet.reorder_filters = true;
    options.sql_parser.enable_ident_normalization = true;
    config
}

/// A new session with `store`'s object store registered, so that scans of the store's URLs
/// go through `object_store`.
pub fn new_context(store: &Store) -> SessionContext {
    let runtime = RuntimeEnvBuilder::new()
        .build_arc()
        .expect("default runtime builds");
    runtime.register_object_store(store.base_url(), Arc::clone(store.object_store()));
    SessionContext::new_with_config_rt(session_config(), runtime)
}

/// A session with `config` and, when given, a memory limit for query execution (operators
/// that cannot spill fail with a resources-exhausted error beyond it): for analyst SQL served
/// to many users, whose sessions add their own settings (a catalog name, the PostgreSQL
/// catalogue) to [`session_config`].
pub fn new_context_with(
    store: &Store,
    config: SessionConfig,
    memory_limit: Option<usize>,
) -> SessionContext {
    let mut builder = RuntimeEnvBuilder::new();
    if let Some(limit) = memory_limit {
        builder = builder.with_memory_limit(limit, 1.0);
    }
    let runtime = builder
        .build_arc()
        .expect("runtime with a memory pool builds");
    runtime.register_object_store(store.base_url(), Arc::clone(store.object_store()));
    SessionContext::new_with_config_rt(config, runtime)
}
