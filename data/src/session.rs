//! The DataFusion sessions every kitle query runs in, and the limits they run under.
//!
//! One place sets the options that the contract's reading depends on, so that the CLI, the
//! engine and the tests all read the store the same way; and one place ([`context_with`])
//! builds the sessions of work that must stay bounded — analyst SQL, previews and explanations
//! that a read token may ask for, refreshes — with a DataFusion memory pool
//! ([`Limits::memory_bytes`]) and a time limit taken from the configuration: started once per
//! piece of work ([`Limits::start`]), obeyed by every operator of the session's plans (see
//! [`crate::deadline`]) and around the whole work ([`Limits::run`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::deadline::{Deadline, DeadlineRule};
use crate::error::Error;
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

/// How much one piece of work (an analyst query, a preview, a refresh) may use, and the
/// configuration keys that set it, so that a refusal names the key to change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory the plan's operators may hold, in bytes (a DataFusion memory pool: operators that
    /// can spill to disk do so beyond it, the others fail with a resources-exhausted error);
    /// `None` for no pool.
    pub memory_bytes: Option<usize>,
    /// The configuration key of [`Self::memory_bytes`] (e.g. `refresh_memory_limit_mb`).
    pub memory_key: &'static str,
    /// How long the work may run; `None` for no limit.
    pub time: Option<Duration>,
    /// The configuration key of [`Self::time`] (e.g. `preview_timeout_seconds`).
    pub time_key: &'static str,
    /// When the work that [`Self::start`]ed must end: set from [`Self::time`] when the work
    /// starts, so that all the sessions of one piece of work (a preview at 60 instants) share
    /// one deadline.
    pub deadline: Option<(std::time::Instant, String)>,
}

impl Limits {
    /// No limits: for work whose size the operator chose (tests, benchmarks, the generator).
    pub fn none() -> Self {
        Self::default()
    }

    /// A memory limit of `mb` MiB, set by the configuration key `key`.
    pub fn with_memory_mb(mut self, mb: usize, key: &'static str) -> Self {
        self.memory_bytes = Some(mb.saturating_mul(1 << 20));
        self.memory_key = key;
        self
    }

    /// A time limit, set by the configuration key `key`.
    pub fn with_time(mut self, time: Duration, key: &'static str) -> Self {
        self.time = Some(time);
        self.time_key = key;
        self
    }

    /// These limits with the time limit's clock started now, for `what` (`the preview`): the
    /// sessions built from the result stop their plans at that deadline.
    pub fn start(&self, what: &str) -> Self {
        let mut started = self.clone();
        if started.deadline.is_none() {
            started.deadline = self
                .time
                .map(|t| (std::time::Instant::now() + t, what.to_string()));
        }
        started
    }

    /// Runs `work` under the time limit (from [`Self::start`], or from now): when it runs
    /// longer it is dropped, and [`Error::TimeLimit`] names the limit and its key. Plans of
    /// sessions built from started limits also stop by themselves at the deadline, even when
    /// an operator never yields (see [`crate::deadline`]).
    pub async fn run<T, E, F>(&self, what: &str, work: F) -> Result<T, E>
    where
        E: From<Error>,
        F: Future<Output = Result<T, E>>,
    {
        let Some(limit) = self.time else {
            return work.await;
        };
        let at = match &self.deadline {
            Some((at, _)) => *at,
            None => std::time::Instant::now() + limit,
        };
        match tokio::time::timeout_at(at.into(), work).await {
            Ok(result) => result,
            Err(_) => Err(Error::TimeLimit {
                what: what.to_string(),
                seconds: limit.as_secs_f64(),
                key: self.time_key,
            }
            .into()),
        }
    }
}

/// A new session with `store`'s object store registered, so that scans of the store's URLs
/// go through `object_store`. No memory pool: for work that is not bounded by configuration.
pub fn new_context(store: &Store) -> SessionContext {
    context_with(store, &Limits::none())
}

/// A new session with `store`'s object store registered, the memory pool of `limits`, and —
/// when `limits` were [started](Limits::start) — every operator of its plans stopping at their
/// deadline. Every bounded session is built here.
pub fn context_with(store: &Store, limits: &Limits) -> SessionContext {
    context_with_config(store, session_config(), limits)
}

/// [`context_with`] with `config` instead of [`session_config`]: for sessions that add their own
/// settings to it (analyst SQL names its catalog `kitle` and adds the PostgreSQL catalogue).
pub fn context_with_config(
    store: &Store,
    config: SessionConfig,
    limits: &Limits,
) -> SessionContext {
    let mut builder = RuntimeEnvBuilder::new();
    if let Some(bytes) = limits.memory_bytes {
        builder = builder.with_memory_limit(bytes, 1.0);
    }
    let runtime = builder
        .build_arc()
        .expect("a runtime with the default disk manager builds");
    runtime.register_object_store(store.base_url(), Arc::clone(store.object_store()));
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features();
    let deadline = match (limits.time, &limits.deadline) {
        (Some(limit), Some((at, what))) => Some(DeadlineRule(Deadline {
            at: *at,
            limit,
            what: what.clone(),
            key: limits.time_key,
        })),
        _ => None,
    };
    // On a cluster the plan Ballista's planner returns is not optimised here: the deadline
    // wraps it inside the cluster's planner instead (see `crate::cluster::errors`).
    let state = if store.engine().is_local() {
        match deadline {
            Some(rule) => state.with_physical_optimizer_rule(Arc::new(rule)).build(),
            None => state.build(),
        }
    } else {
        store.engine().upgrade(state.build(), deadline)
    };
    with_functions(SessionContext::new_with_state(state))
}

/// `ctx` with kitle's own functions registered ([`crate::functions::register`]): every
/// session kitle builds goes through [`context_with`], so this is the one place (an engine of
/// another kind, such as a cluster's executors, registers the same list from there).
fn with_functions(ctx: SessionContext) -> SessionContext {
    crate::functions::register(&ctx);
    ctx
}

/// [`new_context`] with a memory limit for query execution (operators that cannot spill fail
/// with a resources-exhausted error beyond it): for analyst SQL served to many users.
pub fn new_limited_context(store: &Store, memory_limit: usize) -> SessionContext {
    context_with(
        store,
        &Limits {
            memory_bytes: Some(memory_limit),
            memory_key: "sql_memory_limit_mb",
            ..Limits::none()
        },
    )
}

/// A default for `refresh_memory_limit_mb`: half of the memory this process may use (the
/// machine's, or the cgroup's limit when lower), at least 256 MiB; 4 GiB when neither can be
/// read.
pub fn default_refresh_memory_mb() -> usize {
    let total = machine_memory_bytes();
    match total {
        Some(bytes) => ((bytes / 2) >> 20).max(256) as usize,
        None => 4096,
    }
}

/// The memory available to this process in bytes: the smaller of `MemTotal` and the cgroup
/// (v2, then v1) limit, when they can be read (Linux).
fn machine_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb * 1024)
        });
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok());
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_refresh_memory_is_a_share_of_the_machine() {
        let mb = default_refresh_memory_mb();
        assert!(mb >= 256, "{mb}");
        if let Some(total) = machine_memory_bytes() {
            assert!(
                (mb as u64) << 20 <= total.max(512 << 20),
                "{mb} MiB of {total} bytes"
            );
        }
    }

    /// A plan that never yields — an aggregation over a cross join of 9·10⁸ rows — stops at the
    /// deadline by itself, with the error naming the key.
    #[tokio::test]
    async fn plans_of_started_sessions_stop_at_their_deadline() {
        let (_dir, store) = crate::test_store::temp_store();
        let limits = Limits::none()
            .with_time(Duration::from_millis(300), "preview_timeout_seconds")
            .start("the preview");
        let ctx = context_with(&store, &limits);
        let started = std::time::Instant::now();
        let query = "SELECT count(*) FROM generate_series(1, 30000) a, generate_series(1, 30000) b WHERE a.value + b.value > 7";
        let err = ctx.sql(query).await.unwrap().collect().await.unwrap_err();
        assert!(err.to_string().contains("preview_timeout_seconds"), "{err}");
        assert_eq!(crate::classify(&err), crate::Blame::Limit);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn work_past_its_time_limit_is_stopped_and_names_the_key() {
        let limits = Limits::none().with_time(Duration::from_millis(20), "preview_timeout_seconds");
        let slow = limits
            .run("the preview", async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok::<_, Error>(())
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(slow.contains("preview_timeout_seconds"), "{slow}");
        let quick = limits.run("the preview", async { Ok::<_, Error>(7) }).await;
        assert_eq!(quick.unwrap(), 7);
    }
}
