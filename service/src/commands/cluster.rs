//! `kitle scheduler` and `kitle executor`: the nodes of the cluster engine, Ballista 55's
//! scheduler and executor built from their library APIs with what kitle's plans need — the
//! store's object store, the view that leaves unreadable files out and kitle's functions —
//! from [`kitle_data::cluster::nodes`], the one place that lists it.
//!
//! Both read the same configuration as every other command (`kitle.toml`, `KITLE_*`), so the
//! store (a folder every node mounts at the same path, or S3 with the configured endpoint and
//! credentials) and the `[cluster]` timeouts are configured once for the coordinator and the
//! nodes.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_executor::execution_engine::{
    DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor,
};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use kitle_data::Store;
use kitle_data::cluster::nodes;

use crate::Context;
use crate::error::CliError;

/// The scheduler's address when `--listen` is not given.
pub const DEFAULT_SCHEDULER_LISTEN: &str = "127.0.0.1:50050";
/// The executor's address when `--listen` is not given (the next port is kept too).
pub const DEFAULT_EXECUTOR_LISTEN: &str = "127.0.0.1:50051";

/// How tasks reach executors: executors ask the scheduler for work (pull). With Ballista 55's
/// push policy, the tasks of an executor lost mid-job were reset but never offered again, and
/// the job waited forever; pulling executors pick them up at their next poll.
const SCHEDULING: TaskSchedulingPolicy = TaskSchedulingPolicy::PullStaged;

/// How often the scheduler looks for executors that stopped reporting.
const EXPIRY_CHECK_SECONDS: u64 = 1;

/// Arguments of `kitle scheduler`.
#[derive(Debug, clap::Args)]
pub struct SchedulerArgs {
    /// Address to listen on for coordinators and executors (gRPC).
    #[arg(long, default_value = DEFAULT_SCHEDULER_LISTEN)]
    pub listen: String,
    /// Host name that executors and coordinators reach this scheduler by (default: the host of
    /// `--listen`).
    #[arg(long)]
    pub external_host: Option<String>,
}

/// Arguments of `kitle executor`.
#[derive(Debug, clap::Args)]
pub struct ExecutorArgs {
    /// The scheduler: HOST:PORT (or ballista://HOST:PORT).
    #[arg(long)]
    pub scheduler: String,
    /// Address of the executor's Arrow Flight service, which serves task results and shuffle
    /// data to the coordinator and the other executors (the next port is kept for Ballista's
    /// gRPC service, unused: executors ask the scheduler for their tasks).
    #[arg(long, default_value = DEFAULT_EXECUTOR_LISTEN)]
    pub listen: String,
    /// Tasks run at once (default: the machine's cores).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Folder for shuffle and spill files (default: a new folder in the system's temporary
    /// folder).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Host name that the scheduler, the coordinator and other executors reach this executor
    /// by (default: the host of `--listen`).
    #[arg(long)]
    pub external_host: Option<String>,
}

/// `kitle scheduler [--listen ADDR]`: serves until stopped.
pub async fn run_scheduler(ctx: &Context, args: &SchedulerArgs) -> Result<(), CliError> {
    let addr = socket_address("--listen", &args.listen)?;
    let store = Store::open(&ctx.config.store)?;
    let cluster = &ctx.config.cluster;
    let mut config = SchedulerConfig {
        bind_host: addr.ip().to_string(),
        bind_port: addr.port(),
        external_host: args
            .external_host
            .clone()
            .unwrap_or_else(|| host_of(&args.listen)),
        executor_timeout_seconds: cluster.executor_timeout.as_secs(),
        expire_dead_executor_interval_seconds: EXPIRY_CHECK_SECONDS,
        no_executors_grace_period_seconds: cluster.executor_timeout.as_secs(),
        task_max_failures: cluster.task_max_failures,
        stage_max_failures: cluster.task_max_failures,
        scheduling_policy: SCHEDULING,
        ..SchedulerConfig::default()
    }
    .with_override_session_builder(Arc::new(nodes::scheduler_session_builder(store.clone())));
    config.override_physical_codec = Some(nodes::physical_codec());
    let ballista = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| CliError::runtime(format!("cannot start the scheduler: {e}")))?;
    println!(
        "kitle scheduler listening on {addr} for store {}",
        store.display_url()
    );
    start_server(ballista, addr, Arc::new(config))
        .await
        .map_err(|e| CliError::runtime(format!("the scheduler on {addr} stopped: {e}")))
}

/// `kitle executor --scheduler ADDR [--listen ADDR] [--concurrency N]`: registers with the
/// scheduler and runs its tasks until stopped.
pub async fn run_executor(ctx: &Context, args: &ExecutorArgs) -> Result<(), CliError> {
    let addr = socket_address("--listen", &args.listen)?;
    let scheduler = args
        .scheduler
        .trim()
        .trim_start_matches(kitle_data::cluster::BALLISTA_SCHEME)
        .trim_end_matches('/');
    let (scheduler_host, scheduler_port) = scheduler
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| {
            CliError::input(format!(
                "--scheduler {:?}: give the scheduler's HOST:PORT",
                args.scheduler
            ))
        })?;
    let grpc_port = addr.port().checked_add(1).ok_or_else(|| {
        CliError::input(format!(
            "--listen {}: the executor also needs the next port for its gRPC service",
            args.listen
        ))
    })?;
    if args.concurrency == Some(0) {
        return Err(CliError::input("--concurrency must be at least 1"));
    }
    let work_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("kitle-executor-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work_dir).map_err(|e| {
        CliError::runtime(format!(
            "cannot create the work folder {}: {e}",
            work_dir.display()
        ))
    })?;
    let store = Store::open(&ctx.config.store)?;
    let cluster = &ctx.config.cluster;
    let mut config = ExecutorProcessConfig {
        bind_host: addr.ip().to_string(),
        external_host: Some(
            args.external_host
                .clone()
                .unwrap_or_else(|| host_of(&args.listen)),
        ),
        port: addr.port(),
        grpc_port,
        scheduler_host,
        scheduler_port,
        scheduler_connect_timeout_seconds: u16::try_from(cluster.connect_timeout.as_secs())
            .unwrap_or(u16::MAX),
        vcores: args.concurrency.unwrap_or(0),
        task_scheduling_policy: SCHEDULING,
        work_dir: Some(work_dir.display().to_string()),
        print_thread_info: false,
        memory_pool_size: cluster.executor_memory_bytes,
        override_runtime_producer: Some(Arc::new(nodes::executor_runtime_producer(
            store.clone(),
            work_dir.clone(),
        ))),
        override_function_registry: Some(Arc::new(nodes::executor_functions())),
        override_physical_codec: Some(nodes::physical_codec()),
        ..ExecutorProcessConfig::default()
    };
    if task_failpoint_armed() {
        config.override_execution_engine = Some(Arc::new(TaskFailpoint));
    }
    println!(
        "kitle executor on {addr} (gRPC on port {grpc_port}) for scheduler {}:{}, store {}",
        config.scheduler_host,
        config.scheduler_port,
        store.display_url()
    );
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| CliError::runtime(format!("the executor on {addr} stopped: {e}")))
}

/// `text` as one socket address (a host name is resolved), or an error naming `flag`.
fn socket_address(flag: &str, text: &str) -> Result<SocketAddr, CliError> {
    text.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| CliError::input(format!("{flag} {text:?}: give HOST:PORT")))
}

/// The host part of `HOST:PORT`.
fn host_of(address: &str) -> String {
    address
        .rsplit_once(':')
        .map_or(address, |(host, _)| host)
        .trim_matches(|c| c == '[' || c == ']')
        .to_string()
}

/// The failpoint of the cluster's kill tests: `KITLE_FAILPOINT=executor.task:N` kills the
/// executor (`SIGKILL`) as it starts its `N`-th task, so that a test stops a node that is
/// provably working, not an idle one.
const TASK_FAILPOINT: &str = "executor.task";

fn task_failpoint_armed() -> bool {
    std::env::var(kitle_data::failpoint::FAILPOINT_VARIABLE)
        .is_ok_and(|v| v.trim().starts_with(TASK_FAILPOINT))
}

/// Ballista's execution engine, reaching [`TASK_FAILPOINT`] at the start of every task.
struct TaskFailpoint;

impl ExecutionEngine for TaskFailpoint {
    fn create_query_stage_exec(
        &self,
        job_id: ballista_core::JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        work_dir: &str,
        config: &datafusion::prelude::SessionConfig,
    ) -> datafusion::error::Result<Arc<dyn QueryStageExecutor>> {
        kitle_data::failpoint::reach(TASK_FAILPOINT);
        DefaultExecutionEngine::new().create_query_stage_exec(
            job_id,
            stage_id,
            task_id,
            global_output_partition_ids,
            plan,
            work_dir,
            config,
        )
    }
}
