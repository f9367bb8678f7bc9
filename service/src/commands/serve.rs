//! `kitle serve` (the HTTP API and the scheduler) and `kitle demo` (a demo shop, served).

use std::net::SocketAddr;
use std::sync::Arc;

use kitle_data::Store;
use kitle_data::files::contract_data_present;
use kitle_data::generate::{GenerateOptions, generate};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Context;
use crate::analyst::{Analyst, Limits};
use crate::engine::Engine;
use crate::error::CliError;
use crate::http::{AppState, router};
use crate::progress::TerminalProgress;

/// Latency buckets (seconds) of the request and refresh histograms.
const BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 300.0,
];

fn install_metrics() -> Result<PrometheusHandle, CliError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
        .and_then(|b| b.install_recorder())
        .map_err(|e| CliError::runtime(format!("cannot install the metrics recorder: {e}")))
}

/// Resolves the listen address and refuses a non-loopback one without tokens.
fn listen_address(ctx: &Context, listen: Option<&str>) -> Result<SocketAddr, CliError> {
    let text = listen.unwrap_or(&ctx.config.serve.listen);
    let addr: SocketAddr = text.parse().map_err(|_| {
        CliError::input(format!(
            "--listen {text:?} is not an address with a port, e.g. 127.0.0.1:8080"
        ))
    })?;
    if !addr.ip().is_loopback() && ctx.config.serve.tokens.is_empty() {
        return Err(CliError::input(format!(
            "refusing to listen on {addr} without tokens: configure [[serve.tokens]] in kitle.toml \
             (or KITLE_TOKENS=read:…,admin:…), or listen on 127.0.0.1"
        )));
    }
    Ok(addr)
}

/// Resolves the PostgreSQL listen address (none: not served) and, like the HTTP one, refuses
/// a non-loopback one without tokens.
fn pg_address(ctx: &Context, pg_listen: Option<&str>) -> Result<Option<SocketAddr>, CliError> {
    let Some(text) = pg_listen.or(ctx.config.serve.pg_listen.as_deref()) else {
        return Ok(None);
    };
    let addr: SocketAddr = text.parse().map_err(|_| {
        CliError::input(format!(
            "--pg-listen {text:?} is not an address with a port, e.g. 127.0.0.1:5433"
        ))
    })?;
    if !addr.ip().is_loopback() && ctx.config.serve.tokens.is_empty() {
        return Err(CliError::input(format!(
            "refusing to serve PostgreSQL on {addr} without tokens: configure [[serve.tokens]] \
             (clients log in with a token as the password), or listen on 127.0.0.1"
        )));
    }
    Ok(Some(addr))
}

/// The PostgreSQL listener, when configured: bound, with its TLS loaded.
pub struct PgListener {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Serves `engine` on `listener` until SIGTERM / Ctrl-C, with the scheduler when configured.
/// `ready` is called with the bound address once requests are accepted.
async fn serve_on(
    ctx: &Context,
    engine: Arc<Engine>,
    metrics: PrometheusHandle,
    listener: TcpListener,
    pg: Option<PgListener>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), CliError> {
    // Histogram samples wait in buckets until upkeep folds them in; without a scrape they
    // would pile up, so fold them in regularly.
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let analyst = Analyst::new(
        engine.store.clone(),
        Arc::clone(&engine.cache),
        Limits::of_service(&ctx.config.serve),
    );
    let pg_task = match pg {
        Some(PgListener { listener, tls }) => {
            let addr = listener
                .local_addr()
                .map_err(|e| CliError::runtime(format!("cannot read the bound address: {e}")))?;
            let tokens = &ctx.config.serve.tokens;
            // The PostgreSQL catalogue (`pg_catalog`, which psql's `\d` and BI tools' table
            // lists join with the data) lives in this process's memory and cannot travel to a
            // cluster: the protocol's queries run on the local engine whatever `engine` says.
            let local = Analyst::new(
                engine
                    .store
                    .clone()
                    .with_engine(kitle_data::cluster::Engine::Local),
                Arc::clone(&engine.cache),
                Limits::of_service(&ctx.config.serve),
            );
            let shared = Arc::new(crate::pg::Shared {
                analyst: local,
                keys: (!tokens.is_empty()).then(|| {
                    crate::pg::scram::Keys::derive(
                        tokens.iter().map(|t| (t.token.as_str(), t.scope)),
                    )
                }),
                cancels: Arc::new(pgwire::api::ConnectionManager::new()),
            });
            let secure = if tls.is_some() { " (TLS offered)" } else { "" };
            println!(
                "postgres on postgresql://{addr}/{}{secure}",
                crate::analyst::CATALOG
            );
            tracing::info!(%addr, tls = tls.is_some(), "serving the PostgreSQL protocol");
            Some(tokio::spawn(crate::pg::serve(
                listener,
                shared,
                tls,
                ctx.config.serve.pg_max_connections,
            )))
        }
        None => None,
    };
    let state = Arc::new(AppState {
        engine: Arc::clone(&engine),
        analyst,
        config: ctx.config.serve.clone(),
        metrics,
    });
    let (stop, stopped) = watch::channel(false);
    let scheduler = ctx.config.serve.scheduler.then(|| {
        tokio::spawn(crate::scheduler::run(
            Arc::clone(&engine),
            ctx.config.serve.scheduler_tick,
            ctx.config.refresh_limits(),
            stopped,
        ))
    });
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::runtime(format!("cannot read the bound address: {e}")))?;
    ready(addr);
    tracing::info!(%addr, "serving");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| CliError::runtime(format!("the server failed: {e}")))?;
    // PostgreSQL sessions are closed with the process; no new ones are accepted.
    if let Some(task) = pg_task {
        task.abort();
    }
    let _ = stop.send(true);
    if let Some(task) = scheduler {
        // A refresh in flight is abandoned: its commit is one manifest write, so the store
        // keeps the previous version whole.
        if tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .is_err()
        {
            tracing::warn!("a scheduled refresh was still running at shutdown; it is abandoned");
        }
    }
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, CliError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::runtime(format!("cannot listen on {addr}: {e}")))
}

/// `kitle serve [--listen ADDR] [--pg-listen ADDR]`.
pub async fn run_serve(
    ctx: &Context,
    listen: Option<&str>,
    pg_listen: Option<&str>,
) -> Result<(), CliError> {
    let addr = listen_address(ctx, listen)?;
    let pg_addr = pg_address(ctx, pg_listen)?;
    // TLS that cannot be loaded stops the service here, before anything listens.
    let tls = match (&pg_addr, &ctx.config.serve.pg_tls) {
        (Some(_), Some(files)) => Some(crate::pg::tls::acceptor(files)?),
        _ => None,
    };
    let store = ctx.open_store()?;
    refuse_other_identity(&store).await?;
    // The recorder first, so that what loading records (segment sizes, index memory) is kept.
    let metrics = install_metrics()?;
    let engine = Engine::open(store, ctx.config.time_zone).await?;
    let listener = bind(addr).await?;
    let pg = match pg_addr {
        Some(addr) => Some(PgListener {
            listener: bind(addr).await?,
            tls,
        }),
        None => None,
    };
    let console = ctx.config.serve.console;
    serve_on(ctx, engine, metrics, listener, pg, |addr| {
        println!("listening on http://{addr}");
        if console {
            println!("console: http://{addr}/");
        }
    })
    .await
}

/// A service configured with another identity setting than the store records would fail every
/// write it makes (refreshes, definitions, erasures): it refuses to start instead, and says so.
async fn refuse_other_identity(store: &Store) -> Result<(), CliError> {
    let recorded = kitle_data::identity::recorded_identity(store).await?;
    match (store.configured_identity(), recorded) {
        (Some(configured), Some(recorded)) if configured != recorded.identity => {
            Err(kitle_data::Error::IdentityMismatch {
                recorded: recorded.identity.to_string(),
                configured: configured.to_string(),
            }
            .into())
        }
        _ => Ok(()),
    }
}

/// Arguments of `kitle demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Customers of the demo shop (when the store has none yet).
    #[arg(long, default_value_t = 20_000)]
    pub customers: u64,
    /// Days of events of the demo shop.
    #[arg(long, default_value_t = 120)]
    pub days: u32,
}

/// `kitle demo`: a demo shop in the store (unless it has data), the ready-made segments put
/// and refreshed, then served, with a few `curl` lines to try.
pub async fn run_demo(ctx: &Context, args: &DemoArgs) -> Result<(), CliError> {
    let addr = listen_address(ctx, Some(&args.listen))?;
    let store = ctx.open_store()?;
    let listener = bind(addr).await?;
    if contract_data_present(&store).await? {
        eprintln!("using the shop already in {}", store.display_url());
    } else {
        eprintln!(
            "generating a demo shop ({} customers, {} days) into {}",
            args.customers,
            args.days,
            store.display_url()
        );
        let options = GenerateOptions {
            customers: args.customers,
            days: args.days,
            seed: 1,
            end: chrono::Utc::now().date_naive(),
        };
        generate(&store, &options, &TerminalProgress::new()).await?;
    }
    let documents = crate::ready_made::documents().map_err(CliError::runtime)?;
    eprintln!("putting {} ready-made segments", documents.len());
    kitle_planner::refresh::put_definitions(
        &store,
        &kitle_data::files::FooterCache::new(),
        &documents,
        ctx.config.time_zone,
    )
    .await?;
    eprintln!("refreshing them");
    let metrics = install_metrics()?;
    let engine = Engine::open(store, ctx.config.time_zone).await?;
    let outcome = engine
        .refresh(
            &[],
            crate::now_to_the_second(),
            "demo",
            &ctx.config.refresh_limits(),
        )
        .await?;
    crate::warn_report(&outcome.report);
    // A segment and one of its members, for the curl lines.
    let snapshot = engine.snapshot();
    let example = snapshot
        .segments
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .min_by_key(|(_, s)| s.len())
        .map(|(id, _)| {
            let member = snapshot
                .all(id)
                .next()
                .map(|m| m.0.to_string())
                .unwrap_or_default();
            (id.clone(), member)
        });
    let console = ctx.config.serve.console;
    serve_on(ctx, engine, metrics, listener, None, |addr| {
        let base = format!("http://{addr}");
        println!("kitle demo: {} segments refreshed as of {}, serving on {base}", outcome.segments.len(), kitle_planner::format_instant(&outcome.as_of));
        if console {
            println!("console: {base}/  (open it in a browser)");
        }
        println!("try:");
        println!("  curl -s {base}/v1/segments");
        if let Some((segment, member)) = &example {
            let member = crate::http::encode_path_segment(member);
            println!("  curl -s '{base}/v1/segments/{segment}/members?limit=5'");
            println!("  curl -s {base}/v1/segments/{segment}/members/{member}");
            println!("  curl -s '{base}/v1/segments/{segment}/members/{member}?explain=true'");
            println!("  curl -s {base}/v1/customers/{member}/segments");
            println!("  curl -s {base}/v1/segments/{segment}/changes");
        }
        println!(
            "  curl -s {base}/v1/sql -d '{{\"sql\": \"SELECT segment_id, count(*) AS members FROM memberships GROUP BY 1 ORDER BY 2 DESC LIMIT 5\"}}'"
        );
        println!("  curl -s {base}/openapi.json | head -c 300");
        println!("Ctrl-C stops it.");
    })
    .await
}
