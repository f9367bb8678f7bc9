//! Analyst SQL over the PostgreSQL wire protocol (`kitle serve --pg-listen ADDR`): psql,
//! DBeaver, Metabase, Grafana and pandas (psycopg) connect to the database `kitle` and query
//! the same tables, under the same read-only rules and limits, as `POST /v1/sql` — through
//! the one analyst session builder (`crate::analyst`).
//!
//! The protocol is pgwire's; Arrow results are encoded by arrow-pg, and the PostgreSQL
//! catalogue clients read on connect (`pg_catalog`, `\d`) comes from datafusion-pg-catalog.
//! Everything else is kitle's own, because datafusion-postgres's handler does not fit a
//! service: it authenticates nobody, falls back to plain text when TLS cannot be loaded, runs
//! statements without the read-only rules (and applies unknown `SET`s to the engine), shares
//! one session between all connections, and runs cursors without limits or parameters.
//!
//! - [`auth`]: the database name and the login (SCRAM-SHA-256 with the service's tokens);
//! - [`statement`]: parsing, judging and planning statements, for both protocols;
//! - [`handler`]: running them (queries, cursors, settings, transactions);
//! - [`cursor`]: results as rows, and cursors that page through them;
//! - [`settings`], [`error`], [`scram`], [`tls`].

pub mod auth;
pub mod cursor;
pub mod error;
pub mod handler;
pub mod scram;
pub mod settings;
pub mod statement;
pub mod tls;

use std::sync::Arc;

use pgwire::api::ConnectionManager;
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::{NoopHandler, PgWireServerHandlers};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::analyst::Analyst;

/// The PostgreSQL version kitle reports, for clients that pick their catalogue queries by it.
pub const SERVER_VERSION: &str = "16.6 (kitle)";
/// The same as a number (`server_version_num`).
pub const SERVER_VERSION_NUM: u32 = 160006;

/// What every connection of the listener shares.
pub struct Shared {
    /// Builds each connection's session.
    pub analyst: Analyst,
    /// The tokens' SCRAM keys; `None`: no tokens, anyone on loopback connects.
    pub keys: Option<scram::Keys>,
    /// Connections by their cancel key, for `CancelRequest`s (psql's Ctrl-C).
    pub cancels: Arc<ConnectionManager>,
}

impl Shared {
    /// Counts a login's outcome (`accepted`, `refused`) in `kitle_pg_logins_total`.
    pub fn count_login(&self, outcome: &'static str) {
        metrics::counter!("kitle_pg_logins_total", "outcome" => outcome).increment(1);
    }
}

/// The handlers of one connection (each connection has its own login and session).
pub struct Connection {
    startup: Arc<auth::Startup>,
    queries: Arc<handler::Queries>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Connection {
    /// `admitted` is false when the listener is full: the login is then refused.
    fn new(shared: Arc<Shared>, admitted: bool) -> Self {
        Self {
            startup: Arc::new(auth::Startup::new(Arc::clone(&shared), admitted)),
            cancel: Arc::new(DefaultCancelHandler::new(Arc::clone(&shared.cancels))),
            queries: Arc::new(handler::Queries::new(shared)),
        }
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        Arc::clone(&self.queries)
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        Arc::clone(&self.queries)
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::clone(&self.startup)
    }

    fn copy_handler(&self) -> Arc<impl pgwire::api::copy::CopyHandler> {
        Arc::new(NoopHandler)
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::clone(&self.cancel)
    }
}

/// Counts an open connection in `kitle_pg_connections` while it lives.
struct Open;

impl Open {
    fn new() -> Self {
        metrics::gauge!("kitle_pg_connections").increment(1.0);
        metrics::counter!("kitle_pg_connections_total").increment(1);
        Open
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!("kitle_pg_connections").decrement(1.0);
    }
}

/// Accepts connections on `listener` until the task is dropped (the service stopping).
/// At most `max_connections` are served at once; one more is told so and closed.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "cannot accept a PostgreSQL connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        let slots = Arc::clone(&slots);
        tokio::spawn(async move {
            let _open = Open::new();
            let slot = slots.try_acquire_owned().ok();
            if slot.is_none() {
                tracing::warn!(%peer, "refusing a PostgreSQL connection: pg_max_connections reached");
            }
            let connection = Connection::new(shared, slot.is_some());
            if let Err(e) = pgwire::tokio::process_socket(socket, tls, connection).await {
                tracing::debug!(%peer, error = %e, "PostgreSQL connection ended with an error");
            }
            drop(slot);
        });
    }
}
