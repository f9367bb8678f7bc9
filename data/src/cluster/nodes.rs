//! What a cluster's nodes must know to run kitle's plans — the one place `kitle scheduler` and
//! `kitle executor` take it from, as the coordinator takes its sessions from
//! [`crate::session`]:
//!
//! - the store's object store, registered under the store's URL (`file:///` for a folder that
//!   every node mounts at the same path, `s3://bucket/` with the configuration's endpoint,
//!   region, credentials and `allow_http`);
//! - on the scheduler, which lists the files of every scan, the view that leaves unreadable
//!   files out ([`crate::readable::ReadableOnly::checked`]): the same path rules and footer
//!   verdicts as the coordinator's check, so a broken file that the local engine skips is
//!   skipped on the cluster too. Executors read only the files the scheduler's plan names.
//!   Both serve every store inside the configured one's object store (any prefix of its
//!   bucket, any folder of the local file system), so one cluster serves several shops;
//! - every function a kitle session knows ([`executor_functions`]: DataFusion's as this build
//!   has them, Ballista's, and kitle's own from [`crate::functions`]), which plans name and
//!   both kinds of node must resolve (the scheduler plans with them, executors run them).

use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::execution::FunctionRegistry;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::files::FooterCache;
use crate::readable::ReadableOnly;
use crate::store::Store;

/// The scheduler's sessions: Ballista's defaults, the store behind the checked view, and
/// kitle's functions. Footer verdicts are kept for the scheduler's lifetime, so each version
/// of a file is judged once.
pub fn scheduler_session_builder(
    store: Store,
) -> impl Fn(SessionConfig) -> datafusion::error::Result<SessionState> + Send + Sync + 'static {
    let cache = Arc::new(FooterCache::new());
    let functions = executor_functions();
    move |config: SessionConfig| {
        // Ballista's adaptive planner plans stages with a rule list of its own, without the
        // session's physical rules; the static planner keeps them, and kitle's plans need
        // `PortableScanRule` (see `crate::cluster::portable`).
        let mut config = config;
        config.options_mut().set(
            ballista_core::config::BALLISTA_ADAPTIVE_PLANNER_ENABLED,
            "false",
        )?;
        let state = ballista_core::utils::default_session_builder(config)?;
        let runtime = RuntimeEnvBuilder::new().build_arc()?;
        runtime.register_object_store(
            store.base_url(),
            Arc::new(ReadableOnly::checked(
                Arc::clone(store.object_store()),
                Arc::clone(&cache),
            )),
        );
        let mut state = SessionStateBuilder::new_from_existing(state)
            .with_runtime_env(runtime)
            .with_physical_optimizer_rule(Arc::new(crate::cluster::portable::PortableScanRule))
            .build();
        for function in functions.scalar_functions.values() {
            FunctionRegistry::register_udf(&mut state, Arc::clone(function))?;
        }
        for function in functions.aggregate_functions.values() {
            FunctionRegistry::register_udaf(&mut state, Arc::clone(function))?;
        }
        for function in functions.window_functions.values() {
            FunctionRegistry::register_udwf(&mut state, Arc::clone(function))?;
        }
        Ok(state)
    }
}

/// The executors' runtime for every task: the store's object store, and spill files under
/// `work_dir` (Ballista's default runtime would put them in the system's temporary folder).
pub fn executor_runtime_producer(
    store: Store,
    work_dir: PathBuf,
) -> impl Fn(&SessionConfig) -> datafusion::error::Result<Arc<RuntimeEnv>> + Send + Sync + 'static
{
    move |_config: &SessionConfig| {
        let runtime = RuntimeEnvBuilder::new()
            .with_temp_file_path(work_dir.clone())
            .build_arc()?;
        runtime.register_object_store(store.base_url(), Arc::clone(store.object_store()));
        Ok(runtime)
    }
}

/// The physical codec of the scheduler and the executors: Ballista's, and the scans that carry
/// row positions ([`crate::cluster::portable`]).
pub fn physical_codec() -> Arc<dyn datafusion_proto::physical_plan::PhysicalExtensionCodec> {
    Arc::new(crate::cluster::portable::KitleCodec::default())
}

/// The functions executors resolve plans' calls with: every function a kitle session knows —
/// DataFusion's defaults as this build has them (the nested and array functions included,
/// which Ballista's own default list lacks), Ballista's, and kitle's, registered by
/// [`crate::functions::register`] as on every session of the coordinator.
pub fn executor_functions() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    let ctx = SessionContext::new_with_state(SessionStateBuilder::new().with_default_features().build());
    crate::functions::register(&ctx);
    let state = ctx.state();
    for (name, function) in state.scalar_functions() {
        registry
            .scalar_functions
            .entry(name.clone())
            .or_insert_with(|| Arc::clone(function));
    }
    for (name, function) in state.aggregate_functions() {
        registry
            .aggregate_functions
            .entry(name.clone())
            .or_insert_with(|| Arc::clone(function));
    }
    for (name, function) in state.window_functions() {
        registry
            .window_functions
            .entry(name.clone())
            .or_insert_with(|| Arc::clone(function));
    }
    registry
}
