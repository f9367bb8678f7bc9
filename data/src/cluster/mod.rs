//! The engine plans run on: the embedded DataFusion engine of this process (the default), or
//! an Apache DataFusion Ballista cluster (`engine = "ballista://HOST:PORT"`).
//!
//! kitle's plans are built the same way for both: listing tables over the store's Parquet
//! files, views, `Values` and kitle's registered functions, all of which Ballista serialises
//! with DataFusion's own codecs. What differs is where they run:
//!
//! - **The coordinator** (the CLI, the service) builds its sessions in [`crate::session`]; with
//!   a cluster engine they are upgraded here (`Engine::upgrade`) so that every physical plan
//!   becomes one `DistributedQueryExec` submitted to the scheduler, whose failures come back
//!   as [`crate::Error::Cluster`] naming the cluster ([`errors`]). The coordinator still reads
//!   the manifest, writes memberships and commits: the cluster only computes.
//! - **The nodes** (`kitle scheduler`, `kitle executor`) are built from [`nodes`]: the one place
//!   that gives them the store's object store, the view that leaves unreadable files out, and
//!   kitle's functions, so that a plan that runs locally runs on the cluster unchanged.

pub mod errors;
pub mod nodes;
pub mod portable;

use std::fmt;
use std::str::FromStr;

use datafusion::execution::SessionState;

use crate::error::{Error, Result};

/// The scheme of a cluster engine's address.
pub const BALLISTA_SCHEME: &str = "ballista://";

/// The port a Ballista scheduler listens on when the address names none.
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// Where kitle's plans run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Engine {
    /// DataFusion, embedded in this process.
    #[default]
    Local,
    /// A Ballista cluster, reached through its scheduler.
    Ballista {
        /// The scheduler's host name or address.
        host: String,
        /// The scheduler's gRPC port.
        port: u16,
        /// How long to wait for the scheduler's connection, in seconds.
        connect_timeout_seconds: u64,
        /// How long one job may run on the cluster when the work has no time limit of its
        /// own, in seconds.
        job_timeout_seconds: u64,
    },
}

/// How long a cluster job may run unless configured otherwise (an hour).
pub const DEFAULT_JOB_TIMEOUT_SECONDS: u64 = 3600;

/// The configuration key of the job timeout, named in its error.
pub const JOB_TIMEOUT_KEY: &str = "cluster.job_timeout_seconds";

/// How long a coordinator waits for the scheduler's connection unless configured otherwise.
pub const DEFAULT_CONNECT_TIMEOUT_SECONDS: u64 = 10;

impl Engine {
    /// Whether plans run in this process.
    pub fn is_local(&self) -> bool {
        matches!(self, Engine::Local)
    }

    /// This engine, waiting at most `seconds` for the scheduler's connection (no effect on the
    /// local engine).
    pub fn with_connect_timeout(mut self, seconds: u64) -> Self {
        if let Engine::Ballista {
            connect_timeout_seconds,
            ..
        } = &mut self
        {
            *connect_timeout_seconds = seconds.max(1);
        }
        self
    }

    /// This engine, giving up on a job after `seconds` when the work has no time limit of its
    /// own (no effect on the local engine): a safety net for a cluster that stops making
    /// progress without failing the job.
    pub fn with_job_timeout(mut self, seconds: u64) -> Self {
        if let Engine::Ballista {
            job_timeout_seconds,
            ..
        } = &mut self
        {
            *job_timeout_seconds = seconds.max(1);
        }
        self
    }

    /// The scheduler's URL for Ballista's client (`http://HOST:PORT`); `None` for the local
    /// engine.
    pub fn scheduler_url(&self) -> Option<String> {
        match self {
            Engine::Local => None,
            Engine::Ballista { host, port, .. } => Some(format!("http://{host}:{port}")),
        }
    }

    /// `state` made to run its plans on this engine: unchanged for the local engine (which the
    /// caller gives its own physical rules); for a
    /// cluster, Ballista's query planner (every plan is submitted to the scheduler), wrapped so
    /// that the cluster's failures name it ([`errors`]) and bounded work keeps its `deadline`.
    pub(crate) fn upgrade(
        &self,
        state: SessionState,
        deadline: Option<crate::deadline::DeadlineRule>,
    ) -> SessionState {
        let (
            Some(url),
            Engine::Ballista {
                connect_timeout_seconds,
                job_timeout_seconds,
                ..
            },
        ) = (self.scheduler_url(), self)
        else {
            return state;
        };
        let deadline = deadline.or_else(|| {
            let limit = std::time::Duration::from_secs(*job_timeout_seconds);
            Some(crate::deadline::DeadlineRule(crate::deadline::Deadline {
                at: std::time::Instant::now() + limit,
                limit,
                what: "the cluster job".to_string(),
                key: JOB_TIMEOUT_KEY,
            }))
        });
        use ballista_core::extension::SessionStateExt;
        let mut state = state
            .upgrade_for_ballista(url)
            .expect("upgrading a session for Ballista only rebuilds it");
        state
            .config_mut()
            .options_mut()
            .set(
                ballista_core::config::BALLISTA_CLIENT_GRPC_CONNECT_TIMEOUT_SECONDS,
                &connect_timeout_seconds.to_string(),
            )
            .expect("Ballista's configuration has its connect timeout");
        let planner = errors::ClusterPlanner {
            inner: std::sync::Arc::clone(state.query_planner()),
            engine: self.to_string(),
            deadline,
        };
        datafusion::execution::SessionStateBuilder::new_from_existing(state)
            .with_query_planner(std::sync::Arc::new(planner))
            .build()
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Engine::Local => f.write_str("local"),
            Engine::Ballista { host, port, .. } => write!(f, "{BALLISTA_SCHEME}{host}:{port}"),
        }
    }
}

impl FromStr for Engine {
    type Err = Error;

    /// `local` (or empty), or `ballista://HOST[:PORT]` (port 50050 when left out).
    fn from_str(text: &str) -> Result<Engine> {
        let text = text.trim();
        let invalid = |reason: String| Error::InvalidArgument {
            name: "engine",
            reason,
        };
        if text.is_empty() || text == "local" {
            return Ok(Engine::Local);
        }
        let Some(address) = text.strip_prefix(BALLISTA_SCHEME) else {
            return Err(invalid(format!(
                "{text:?} is neither `local` nor `ballista://HOST:PORT`"
            )));
        };
        let address = address.trim_end_matches('/');
        if address.contains('/') || address.contains('@') || address.contains('?') {
            return Err(invalid(format!(
                "{text:?}: a cluster engine is `ballista://HOST:PORT`, with no path, user or query"
            )));
        }
        let (host, port) = match address.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || address.starts_with('[') => {
                let port = port.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                    invalid(format!("{text:?}: the port {port:?} is not a number from 1 to 65535"))
                })?;
                (host, port)
            }
            _ => (address, DEFAULT_SCHEDULER_PORT),
        };
        if host.is_empty() {
            return Err(invalid(format!("{text:?} names no scheduler host")));
        }
        Ok(Engine::Ballista {
            host: host.to_string(),
            port,
            connect_timeout_seconds: DEFAULT_CONNECT_TIMEOUT_SECONDS,
            job_timeout_seconds: DEFAULT_JOB_TIMEOUT_SECONDS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_are_read_and_written_back() {
        assert_eq!("".parse::<Engine>().unwrap(), Engine::Local);
        assert_eq!("local".parse::<Engine>().unwrap(), Engine::Local);
        let cluster: Engine = "ballista://10.0.0.5:50123".parse().unwrap();
        assert_eq!(
            cluster,
            Engine::Ballista {
                host: "10.0.0.5".into(),
                port: 50123,
                connect_timeout_seconds: DEFAULT_CONNECT_TIMEOUT_SECONDS,
                job_timeout_seconds: DEFAULT_JOB_TIMEOUT_SECONDS,
            }
        );
        assert_eq!(cluster.to_string(), "ballista://10.0.0.5:50123");
        assert_eq!(
            cluster.scheduler_url().as_deref(),
            Some("http://10.0.0.5:50123")
        );
        let default_port: Engine = "ballista://scheduler".parse().unwrap();
        assert_eq!(default_port.to_string(), "ballista://scheduler:50050");
    }

    #[test]
    fn bad_engines_say_what_is_wrong() {
        for (text, says) in [
            ("spark://x:1", "neither `local` nor"),
            ("ballista://:50050", "no scheduler host"),
            ("ballista://h:port", "not a number"),
            ("ballista://h:0", "not a number"),
            ("ballista://h:1/path", "no path"),
        ] {
            let err = text.parse::<Engine>().unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
            assert!(err.contains("engine"), "{text}: {err}");
        }
    }
}
