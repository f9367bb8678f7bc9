//! kitle's configuration: one struct, read from `kitle.toml`, then `KITLE_*` variables, then
//! flags, and validated once at start.

use std::path::{Path, PathBuf};

use kitle_data::{S3Options, StoreConfig};
use serde::Deserialize;

use crate::error::CliError;

/// The configuration file looked for in the working directory when `--config` is not given.
pub const CONFIG_FILE: &str = "kitle.toml";

/// The contents of `kitle.toml`. Unknown keys are refused, so a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Store URL (`./kitle-data`, `file:///…`, `s3://bucket/prefix`).
    pub store: Option<String>,
    /// Fail on unreadable files instead of skipping and reporting them.
    pub strict: Option<bool>,
    /// The store's IANA time zone.
    pub time_zone: Option<String>,
    /// S3 connection settings (each falls back to the `AWS_*` variables).
    pub s3: S3Options,
    /// `kitle serve` settings.
    pub serve: ServeFile,
}

/// A bearer token and what it may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The secret, as sent in `Authorization: Bearer …`.
    pub token: String,
    /// `read` or `admin`.
    pub scope: crate::http::auth::Scope,
}

/// The `[serve]` section of `kitle.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeFile {
    /// Address to listen on (default 127.0.0.1:8080).
    pub listen: Option<String>,
    /// Bearer tokens; without any the service listens only on loopback.
    pub tokens: Vec<TokenConfig>,
    /// Largest request body, in bytes (default 1 MiB).
    pub max_body_bytes: Option<usize>,
    /// Memory one SQL query may use, in MiB (default 1024).
    pub sql_memory_limit_mb: Option<usize>,
    /// Time one SQL query may run, in seconds (default 30).
    pub sql_timeout_seconds: Option<u64>,
    /// Rows one SQL answer may hold (default 100 000).
    pub sql_max_rows: Option<usize>,
    /// Run the scheduler (default true).
    pub scheduler: Option<bool>,
    /// How often the scheduler looks for due segments, in seconds (default 30); a failed run
    /// is retried at the next look.
    pub scheduler_tick_seconds: Option<u64>,
    /// Address of the PostgreSQL protocol listener (off when absent).
    pub pg_listen: Option<String>,
    /// PEM certificate chain offered to PostgreSQL clients that ask for TLS.
    pub pg_tls_cert: Option<PathBuf>,
    /// PEM private key of `pg_tls_cert`.
    pub pg_tls_key: Option<PathBuf>,
    /// PostgreSQL connections served at once (default 100); more are refused.
    pub pg_max_connections: Option<usize>,
}

/// Where the PostgreSQL listener's TLS certificate and key are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The validated `kitle serve` settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: String,
    /// Bearer tokens (empty: no authentication, loopback only).
    pub tokens: Vec<TokenConfig>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Memory one SQL query may use, in MiB.
    pub sql_memory_limit_mb: usize,
    /// Time one SQL query may run.
    pub sql_timeout: std::time::Duration,
    /// Rows one SQL answer may hold.
    pub sql_max_rows: usize,
    /// Whether the scheduler runs.
    pub scheduler: bool,
    /// How often the scheduler looks for due segments.
    pub scheduler_tick: std::time::Duration,
    /// Address of the PostgreSQL protocol listener; `None`: not served.
    pub pg_listen: Option<String>,
    /// TLS for the PostgreSQL listener; `None`: plain connections only.
    pub pg_tls: Option<TlsFiles>,
    /// PostgreSQL connections served at once.
    pub pg_max_connections: usize,
}

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The validated configuration every command runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// How to open the store.
    pub store: StoreConfig,
    /// The store's time zone.
    pub time_zone: chrono_tz::Tz,
    /// `kitle serve` settings.
    pub serve: ServeConfig,
}

/// Values given on the command line, which win over everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--store URL`.
    pub store: Option<String>,
    /// `--strict`.
    pub strict: bool,
}

impl Config {
    /// Reads `kitle.toml` (or the file `--config` names, which must then exist), then the
    /// `KITLE_STORE`, `KITLE_STRICT` and `KITLE_TIME_ZONE` variables, then the flags.
    pub fn load(overrides: &Overrides) -> Result<Self, CliError> {
        let file = match &overrides.config_file {
            Some(path) => read_file(path)?,
            None if Path::new(CONFIG_FILE).exists() => read_file(Path::new(CONFIG_FILE))?,
            None => FileConfig::default(),
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());

        let url = overrides
            .store
            .clone()
            .or_else(|| env("KITLE_STORE"))
            .or(file.store)
            .unwrap_or_else(|| kitle_data::store::DEFAULT_STORE.to_string());
        let strict = if overrides.strict {
            true
        } else if let Some(v) = env("KITLE_STRICT") {
            parse_bool("KITLE_STRICT", &v)?
        } else {
            file.strict.unwrap_or(false)
        };
        let zone_name = env("KITLE_TIME_ZONE")
            .or(file.time_zone)
            .unwrap_or_else(|| "UTC".to_string());
        let time_zone = zone_name.parse::<chrono_tz::Tz>().map_err(|_| {
            CliError::input(format!(
                "time_zone {zone_name:?} is not an IANA time zone name (e.g. Europe/Istanbul)"
            ))
        })?;
        let mut tokens = file.serve.tokens.clone();
        if let Some(list) = env("KITLE_TOKENS") {
            for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let (scope, token) = item.split_once(':').ok_or_else(|| {
                    CliError::input("KITLE_TOKENS: give `scope:token` pairs separated by commas")
                })?;
                let scope = match scope {
                    "read" => crate::http::auth::Scope::Read,
                    "admin" => crate::http::auth::Scope::Admin,
                    other => {
                        return Err(CliError::input(format!(
                            "KITLE_TOKENS: scope {other:?} is neither read nor admin"
                        )));
                    }
                };
                tokens.push(TokenConfig {
                    token: token.to_string(),
                    scope,
                });
            }
        }
        if tokens.iter().any(|t| t.token.len() < 16) {
            return Err(CliError::input(
                "a bearer token must have at least 16 characters",
            ));
        }
        let pg_tls = match (file.serve.pg_tls_cert, file.serve.pg_tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => {
                return Err(CliError::input(
                    "[serve] pg_tls_cert and pg_tls_key go together: give both, or neither",
                ));
            }
        };
        let serve = ServeConfig {
            listen: env("KITLE_LISTEN")
                .or(file.serve.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            tokens,
            max_body_bytes: file.serve.max_body_bytes.unwrap_or(1 << 20),
            sql_memory_limit_mb: file.serve.sql_memory_limit_mb.unwrap_or(1024),
            sql_timeout: std::time::Duration::from_secs(
                file.serve.sql_timeout_seconds.unwrap_or(30),
            ),
            sql_max_rows: file.serve.sql_max_rows.unwrap_or(100_000),
            scheduler: file.serve.scheduler.unwrap_or(true),
            scheduler_tick: std::time::Duration::from_secs(
                file.serve.scheduler_tick_seconds.unwrap_or(30).max(1),
            ),
            pg_listen: env("KITLE_PG_LISTEN").or(file.serve.pg_listen),
            pg_tls,
            pg_max_connections: file.serve.pg_max_connections.unwrap_or(100).max(1),
        };
        Ok(Self {
            serve,
            store: StoreConfig {
                url,
                s3: file.s3,
                strict,
            },
            time_zone,
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::input(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text)
        .map_err(|e| CliError::input(format!("invalid config file {}: {e}", path.display())))
}

fn parse_bool(name: &str, value: &str) -> Result<bool, CliError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(CliError::input(format!(
            "{name}={value:?} is not a boolean"
        ))),
    }
}
