//! The cluster engine's keys: `engine` (top level) and the `[cluster]` section, read by the
//! coordinator (`kitle refresh`, `kitle serve`, … with a cluster engine) and by the nodes
//! (`kitle scheduler`, `kitle executor`), so that one `kitle.toml` configures them all.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// How often an executor whose task slots are all busy still reports to its scheduler:
/// Ballista 55's executors ask for work — which is also their report — every 50 ms to 1 s when
/// idle, and at least every 5 s when busy.
const BUSY_REPORT_SECONDS: u64 = 5;

/// The `[cluster]` section of `kitle.toml`, with its defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterFile {
    /// How long the coordinator waits for the scheduler to accept a connection, in seconds,
    /// before the run fails naming the cluster.
    pub connect_timeout_seconds: u64,
    /// How long one cluster job may run when the work has no time limit of its own (a refresh
    /// from the command line or the scheduler), in seconds; past it the run fails naming the
    /// cluster. A safety net for a cluster that stops making progress.
    pub job_timeout_seconds: u64,
    /// How long the scheduler waits for an executor's report before it counts the executor
    /// lost and runs its tasks again elsewhere, in seconds.
    pub executor_timeout_seconds: u64,
    /// How often one task may fail (an executor lost while running it included) before its
    /// job fails.
    pub task_max_failures: u64,
    /// Memory one executor may use for its tasks, in MiB (a DataFusion memory pool shared by
    /// its task slots; operators spill to disk beyond it where they can); 0: 80% of the
    /// machine's (or the cgroup's) memory, Ballista's default.
    pub executor_memory_mb: u64,
}

impl Default for ClusterFile {
    fn default() -> Self {
        Self {
            connect_timeout_seconds: 10,
            job_timeout_seconds: kitle_data::cluster::DEFAULT_JOB_TIMEOUT_SECONDS,
            executor_timeout_seconds: 30,
            task_max_failures: 4,
            executor_memory_mb: 0,
        }
    }
}

/// The validated `[cluster]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// How long the coordinator waits for the scheduler's connection.
    pub connect_timeout: Duration,
    /// How long one job may run when the work has no limit of its own.
    pub job_timeout: Duration,
    /// After how long without a report an executor is lost.
    pub executor_timeout: Duration,
    /// How often a task may fail before its job fails.
    pub task_max_failures: usize,
    /// An executor's memory pool, in bytes; `None`: Ballista's default share of the machine.
    pub executor_memory_bytes: Option<u64>,
}

impl ClusterFile {
    /// Checks the section once, naming the key that is refused.
    pub(super) fn validate(self) -> Result<ClusterConfig, CliError> {
        for (name, value) in [
            (
                "cluster.connect_timeout_seconds",
                self.connect_timeout_seconds,
            ),
            ("cluster.job_timeout_seconds", self.job_timeout_seconds),
            (
                "cluster.executor_timeout_seconds",
                self.executor_timeout_seconds,
            ),
            ("cluster.task_max_failures", self.task_max_failures),
        ] {
            super::positive(name, value)?;
        }
        if self.executor_timeout_seconds <= BUSY_REPORT_SECONDS {
            return Err(CliError::input(format!(
                "invalid configuration: cluster.executor_timeout_seconds ({}) must be longer than \
                 {BUSY_REPORT_SECONDS} s, the time between two reports of an executor whose task \
                 slots are all busy, or working executors would be counted lost",
                self.executor_timeout_seconds
            )));
        }
        Ok(ClusterConfig {
            connect_timeout: Duration::from_secs(self.connect_timeout_seconds),
            job_timeout: Duration::from_secs(self.job_timeout_seconds),
            executor_timeout: Duration::from_secs(self.executor_timeout_seconds),
            task_max_failures: self.task_max_failures as usize,
            executor_memory_bytes: (self.executor_memory_mb > 0)
                .then(|| self.executor_memory_mb.saturating_mul(1 << 20)),
        })
    }
}

/// The top-level `engine` key (or `--engine`) as an engine, naming where it came from when it
/// is refused.
pub(super) fn engine_of(text: &str) -> Result<kitle_data::cluster::Engine, CliError> {
    text.parse().map_err(|e: kitle_data::Error| {
        CliError::input(format!(
            "invalid configuration: {e} (engine in kitle.toml, KITLE_ENGINE or --engine)"
        ))
    })
}
