//! A real Ballista cluster of this build's `kitle` binary on 127.0.0.1: one `kitle scheduler`
//! and executors (`kitle executor`), on ports the OS handed out, over the S3-compatible test
//! server. Stopped (SIGKILL) when dropped.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{S3Server, kitle_binary};

/// A free loopback port (bound and released: the OS does not hand it out again at once).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two free consecutive ports (an executor takes PORT and keeps PORT + 1 for its gRPC service).
fn free_port_pair() -> u16 {
    loop {
        let port = free_port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// The environment every node and coordinator of a test cluster runs with: the S3 server's
/// settings, a store inside its bucket, and short cluster timeouts (a lost executor is noticed
/// in seconds, not minutes).
pub(crate) fn cluster_env(s3: &S3Server, prefix: &str) -> Vec<(&'static str, String)> {
    let mut env = s3.env();
    env.push((
        "KITLE_STORE",
        format!("s3://{}/{prefix}", kitle_tests::S3_BUCKET),
    ));
    env.push(("KITLE_CLUSTER__EXECUTOR_TIMEOUT_SECONDS", "10".into()));
    env.push(("KITLE_CLUSTER__CONNECT_TIMEOUT_SECONDS", "5".into()));
    env.push(("KITLE_CLUSTER__EXECUTOR_MEMORY_MB", "1024".into()));
    env
}

/// One node process.
pub(crate) struct Node {
    child: Child,
}

impl Node {
    fn start(args: &[String], env: &[(&str, String)], log: &Path) -> Node {
        let out = std::fs::File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = Command::new(kitle_binary());
        cmd.args(args)
            .env_remove("KITLE_STORE")
            .env_remove("KITLE_FAILPOINT")
            .env("KITLE_LOG", "info")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (k, v) in env {
            cmd.env(k, v);
        }
        Node {
            child: cmd.spawn().expect("kitle starts"),
        }
    }

    /// Whether the process has ended, and how.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scheduler and its executors.
pub(crate) struct Cluster {
    /// `ballista://127.0.0.1:PORT`.
    pub(crate) engine: String,
    /// The scheduler first, then the executors in the order started.
    pub(crate) nodes: Vec<Node>,
    /// The nodes' logs.
    pub(crate) logs: tempfile::TempDir,
}

impl Cluster {
    /// Starts a scheduler and one executor per entry of `executors` (each entry: extra
    /// environment of that executor, e.g. an armed failpoint), each running one task at a
    /// time, and waits until every executor has registered with the scheduler.
    pub(crate) fn start(env: &[(&str, String)], executors: &[Vec<(&str, String)>]) -> Cluster {
        let logs = tempfile::tempdir().unwrap();
        let port = free_port();
        let scheduler = format!("127.0.0.1:{port}");
        let mut nodes = vec![Node::start(
            &["scheduler".into(), "--listen".into(), scheduler.clone()],
            env,
            &logs.path().join("scheduler.log"),
        )];
        wait_for_port(port, &logs.path().join("scheduler.log"));
        for (i, extra) in executors.iter().enumerate() {
            let flight = free_port_pair();
            let mut all: Vec<(&str, String)> = env.to_vec();
            all.extend(extra.iter().cloned());
            let log = logs.path().join(format!("executor-{}.log", i + 1));
            let work = logs.path().join(format!("work-{}", i + 1));
            nodes.push(Node::start(
                &[
                    "executor".into(),
                    "--scheduler".into(),
                    scheduler.clone(),
                    "--listen".into(),
                    format!("127.0.0.1:{flight}"),
                    "--concurrency".into(),
                    "1".into(),
                    "--work-dir".into(),
                    work.display().to_string(),
                ],
                &all,
                &log,
            ));
            wait_for_port(flight, &log);
        }
        let cluster = Cluster {
            engine: format!("ballista://{scheduler}"),
            nodes,
            logs,
        };
        for i in 1..=executors.len() {
            cluster.wait_polling(i);
        }
        cluster
    }

    /// The text of a node's log (`scheduler`, `executor-1`).
    pub(crate) fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Waits until executor `i` has started asking the scheduler for work (its first poll
    /// registers it; executors pull their tasks).
    fn wait_polling(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let name = format!("executor-{i}");
        while !self.log(&name).contains("Starting poll work loop") {
            assert!(
                Instant::now() < deadline,
                "executor {i} never polled its scheduler:\n{}",
                self.log(&name)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Waits until something accepts connections on `port` (the process's log in the failure).
fn wait_for_port(port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on port {port}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
