//! The command line: arguments (clap), the configuration loaded once, one command run, and
//! its failure turned into the exit code the spec gives it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};
use crate::error::CliError;
use crate::output::TableFormat;
use crate::{Context, commands};

/// kitle: dynamic customer segments over an online shop's events and profiles.
#[derive(Debug, Parser)]
#[command(name = "kitle", version, about)]
struct Cli {
    /// Store URL: a local path, file:///… or s3://bucket/prefix (else KITLE_STORE, else the
    /// `store` key of kitle.toml, else ./kitle-data).
    #[arg(long, global = true)]
    store: Option<String>,
    /// Configuration file (default: ./kitle.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Fail on an unreadable file instead of skipping and reporting it.
    #[arg(long, global = true)]
    strict: bool,
    /// Where plans run: `local`, or `ballista://HOST:PORT` for a Ballista cluster's scheduler
    /// (else KITLE_ENGINE, else the `engine` key of kitle.toml, else local).
    #[arg(long, global = true)]
    engine: Option<String>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a realistic synthetic shop (customers and events) into the store.
    Generate(commands::generate::GenerateArgs),
    /// Keep, check, explain and preview segment definitions.
    #[command(subcommand)]
    Segment(commands::segment::SegmentCommand),
    /// Refresh segments (all with none named) at one `as_of` and store the new memberships.
    Refresh {
        /// Segment ids.
        ids: Vec<String>,
        /// Evaluation instant: YYYY-MM-DD or RFC 3339 with an offset (default: now).
        #[arg(long)]
        as_of: Option<String>,
        /// Ignore every partial state: evaluate from the events alone, and write no state.
        #[arg(long)]
        full: bool,
    },
    /// Print the current members of a segment, with `since`.
    Members {
        /// Segment id.
        id: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = TableFormat::Csv)]
        format: TableFormat,
    },
    /// Forget customers (KVKK, GDPR): they leave every segment, every file kitle wrote is
    /// rewritten without them, and they stay out of every later evaluation.
    Erase {
        /// Customer ids.
        ids: Vec<String>,
        /// Why, kept in the erasure list with the instant.
        #[arg(long)]
        reason: Option<String>,
    },
    /// The store's identity setting: whose events are whose (customer_id or stitched).
    #[command(subcommand)]
    Identity(commands::identity::IdentityCommand),
    /// Serve the HTTP API, and refresh segments on their cadence.
    Serve {
        /// Address to listen on (default: `[serve] listen` of kitle.toml, else 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// Also serve analyst SQL over the PostgreSQL protocol on this address (default:
        /// `[serve] pg_listen` of kitle.toml or KITLE_SERVE__PG_LISTEN / KITLE_PG_LISTEN; off
        /// when none is given).
        #[arg(long)]
        pg_listen: Option<String>,
    },
    /// Generate a demo shop (when the store has none), put and refresh the ready-made
    /// segments, and serve them on 127.0.0.1:8080.
    Demo(commands::serve::DemoArgs),
    /// List kitle's data files that no committed version names (left by killed or refused
    /// refreshes and removed segments); remove them with --delete.
    Gc(commands::gc::GcArgs),
    /// Run a Ballista scheduler for kitle's plans (the cluster engine's coordinator of tasks).
    Scheduler(commands::cluster::SchedulerArgs),
    /// Run a Ballista executor for kitle's plans, registered with a scheduler.
    Executor(commands::cluster::ExecutorArgs),
    /// Run analyst SQL over the store's tables.
    Sql {
        /// The query.
        query: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let config = Config::load(&Overrides {
        config_file: cli.config.clone(),
        store: cli.store.clone(),
        strict: cli.strict,
        engine: cli.engine.clone(),
    })?;
    let ctx = Context {
        config,
        json: cli.json,
    };
    match &cli.command {
        Command::Generate(args) => commands::generate::run(&ctx, args).await,
        Command::Sql { query, format } => commands::sql::run(&ctx, query, *format).await,
        Command::Segment(command) => commands::segment::run(&ctx, command).await,
        Command::Identity(command) => commands::identity::run(&ctx, command).await,
        Command::Erase { ids, reason } => commands::erase::run(&ctx, ids, reason.as_deref()).await,
        Command::Refresh { ids, as_of, full } => {
            commands::refresh::run_refresh(&ctx, ids, as_of.as_deref(), *full).await
        }
        Command::Members { id, format } => commands::refresh::run_members(&ctx, id, *format).await,
        Command::Serve { listen, pg_listen } => {
            commands::serve::run_serve(&ctx, listen.as_deref(), pg_listen.as_deref()).await
        }
        Command::Demo(args) => commands::serve::run_demo(&ctx, args).await,
        Command::Gc(args) => commands::gc::run(&ctx, args).await,
        Command::Scheduler(args) => commands::cluster::run_scheduler(&ctx, args).await,
        Command::Executor(args) => commands::cluster::run_executor(&ctx, args).await,
    }
}

/// Commands that run as a service log their requests and refreshes; the others only warn.
fn default_log(cli: &Cli) -> &'static str {
    match cli.command {
        Command::Serve { .. } | Command::Demo(_) => "info,tower_http=warn",
        Command::Scheduler(_) | Command::Executor(_) => "info",
        _ => "warn",
    }
}

/// Runs the command the process's arguments name; the exit code to end with.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KITLE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log(&cli)));
    // KITLE_LOG_FORMAT=json: one JSON object per line, for log collectors.
    if std::env::var("KITLE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.code as u8)
        }
    }
}
