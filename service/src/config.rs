//! kitle's configuration in one typed place: read from `kitle.toml`, then from `KITLE_*`
//! variables, then from flags, and validated once at start.
//!
//! - Every key and its default lives in a section struct with a `Default` impl ([`FileConfig`]
//!   for the top-level keys, [`ServeFile`] for `[serve]`; `[s3]` takes `AmazonS3Builder`'s
//!   own configuration keys, see [`kitle_data::S3Options`]). Unknown keys are refused, so a
//!   typo is not silently ignored.
//! - Every key can be set from the environment as `KITLE_<SECTION>__<KEY>`
//!   (`KITLE_SERVE__SQL_TIMEOUT_SECONDS=10`, `KITLE_S3__ENDPOINT=…`) or `KITLE_<KEY>` for a
//!   top-level key (`KITLE_STORE`, `KITLE_REFRESH_MEMORY_LIMIT_MB`); the older short names
//!   stay as aliases (`KITLE_LISTEN` for `serve.listen`, `KITLE_CONSOLE_DIR` for
//!   `serve.console_dir`, `KITLE_TOKENS` adding
//!   `read:…,admin:…` tokens). A value is read as the type its key's default has.
//! - [`Config::load`] checks everything once and names the key (and where it came from) in
//!   every error; what the commands get is the validated [`Config`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kitle_data::{S3Options, StoreConfig};
use serde::{Deserialize, Serialize};

use crate::error::CliError;

mod cluster;
pub use cluster::{ClusterConfig, ClusterFile};

/// The configuration file looked for in the working directory when `--config` is not given.
pub const CONFIG_FILE: &str = "kitle.toml";

/// The top-level keys of `kitle.toml`, with their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Store URL (`./kitle-data`, `file:///…`, `s3://bucket/prefix`).
    pub store: String,
    /// Fail on unreadable files instead of skipping and reporting them.
    pub strict: bool,
    /// The store's IANA time zone.
    pub time_zone: String,
    /// Memory one refresh's plan may use, in MiB (a DataFusion memory pool; operators spill
    /// to disk beyond it where they can). Applies to `kitle refresh`, scheduled and HTTP
    /// refreshes. Default: half of the machine's (or the cgroup's) memory.
    pub refresh_memory_limit_mb: usize,
    /// Whose events are whose: `customer_id` or `stitched`, recorded in the store by its first
    /// write (a process configured otherwise refuses to write); empty (the default): follow
    /// what the store records.
    pub identity: String,
    /// How long `kitle gc` leaves unnamed files alone, in seconds (a refresh writes its files
    /// before the commit that names them: this must exceed the longest refresh).
    pub gc_grace_seconds: u64,
    /// S3 connection settings: `AmazonS3Builder` configuration keys (each falls back to the
    /// `AWS_*` variables).
    pub s3: S3Options,
    /// Where plans run: `local` (this process, the default) or `ballista://HOST:PORT` (a
    /// Ballista cluster's scheduler; see `docs/cluster.md`).
    pub engine: String,
    /// Cluster engine settings (coordinator and nodes).
    pub cluster: ClusterFile,
    /// `kitle serve` settings.
    pub serve: ServeFile,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            store: kitle_data::store::DEFAULT_STORE.to_string(),
            strict: false,
            time_zone: "UTC".to_string(),
            refresh_memory_limit_mb: kitle_data::session::default_refresh_memory_mb(),
            identity: String::new(),
            gc_grace_seconds: kitle_data::layout::DEFAULT_GC_GRACE_SECONDS,
            s3: S3Options::default(),
            engine: "local".to_string(),
            cluster: ClusterFile::default(),
            serve: ServeFile::default(),
        }
    }
}

/// A bearer token and what it may do.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The secret, as sent in `Authorization: Bearer …`.
    pub token: String,
    /// `read` or `admin`.
    pub scope: crate::http::auth::Scope,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret itself, so that a logged configuration leaks nothing.
        f.debug_struct("TokenConfig")
            .field("token", &"…")
            .field("scope", &self.scope)
            .finish()
    }
}

/// The `[serve]` section of `kitle.toml`, with its defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeFile {
    /// Address to listen on.
    pub listen: String,
    /// Bearer tokens; without any the service listens only on loopback.
    pub tokens: Vec<TokenConfig>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Memory one SQL query may use, in MiB.
    pub sql_memory_limit_mb: usize,
    /// Time one SQL query may run, in seconds.
    pub sql_timeout_seconds: u64,
    /// Rows one SQL answer may hold (rows returned to the client, never rows inside a plan).
    pub sql_max_rows: usize,
    /// Memory one preview or member explanation may use, in MiB (per instant's plan).
    pub preview_memory_limit_mb: usize,
    /// Time one preview (all its instants together) or member explanation may run, in seconds.
    pub preview_timeout_seconds: u64,
    /// Time one HTTP-triggered refresh may run, in seconds.
    pub refresh_timeout_seconds: u64,
    /// Run the scheduler.
    pub scheduler: bool,
    /// How often the scheduler looks for due segments, in seconds; a failed run is retried at
    /// the next look.
    pub scheduler_tick_seconds: u64,
    /// Serve the web console at `/`.
    pub console: bool,
    /// Serve the console's files from this folder, read at each request, instead of the copy
    /// built into the binary (for working on the console without rebuilding); empty: the
    /// copy built in.
    pub console_dir: String,
    /// Address of the PostgreSQL protocol listener (analyst SQL for psql, BI tools, pandas);
    /// empty: not served.
    pub pg_listen: String,
    /// PEM certificate chain offered to PostgreSQL clients that ask for TLS; empty: no TLS.
    pub pg_tls_cert: String,
    /// PEM private key of `pg_tls_cert` (both or neither).
    pub pg_tls_key: String,
    /// PostgreSQL connections served at once; more are refused (SQLSTATE 53300).
    pub pg_max_connections: usize,
}

/// Where the PostgreSQL listener's TLS certificate and key are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Default for ServeFile {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_string(),
            tokens: Vec::new(),
            max_body_bytes: 1 << 20,
            sql_memory_limit_mb: 1024,
            sql_timeout_seconds: 30,
            sql_max_rows: 100_000,
            preview_memory_limit_mb: 1024,
            preview_timeout_seconds: 120,
            refresh_timeout_seconds: 900,
            scheduler: true,
            scheduler_tick_seconds: 30,
            console: true,
            console_dir: String::new(),
            pg_listen: String::new(),
            pg_tls_cert: String::new(),
            pg_tls_key: String::new(),
            pg_max_connections: 100,
        }
    }
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
    pub sql_timeout: Duration,
    /// Rows one SQL answer may hold.
    pub sql_max_rows: usize,
    /// Memory one preview or explanation may use, in MiB.
    pub preview_memory_limit_mb: usize,
    /// Time one preview or explanation may run.
    pub preview_timeout: Duration,
    /// Time one HTTP-triggered refresh may run.
    pub refresh_timeout: Duration,
    /// Memory one refresh may use, in MiB (the top-level `refresh_memory_limit_mb`).
    pub refresh_memory_limit_mb: usize,
    /// Whether the scheduler runs.
    pub scheduler: bool,
    /// How often the scheduler looks for due segments.
    pub scheduler_tick: Duration,
    /// Whether `/` serves the web console.
    pub console: bool,
    /// Where the console's files are read from at each request; `None`: the copy built in.
    pub console_dir: Option<PathBuf>,
    /// Address of the PostgreSQL protocol listener; `None`: not served.
    pub pg_listen: Option<String>,
    /// TLS for the PostgreSQL listener; `None`: plain connections only.
    pub pg_tls: Option<TlsFiles>,
    /// PostgreSQL connections served at once.
    pub pg_max_connections: usize,
}

impl ServeConfig {
    /// The limits of a preview or a member explanation (read scope: any caller's definition).
    pub fn preview_limits(&self) -> kitle_data::session::Limits {
        kitle_data::session::Limits::none()
            .with_memory_mb(self.preview_memory_limit_mb, "preview_memory_limit_mb")
            .with_time(self.preview_timeout, "preview_timeout_seconds")
    }

    /// The limits of a refresh asked for over HTTP.
    pub fn http_refresh_limits(&self) -> kitle_data::session::Limits {
        kitle_data::session::Limits::none()
            .with_memory_mb(self.refresh_memory_limit_mb, "refresh_memory_limit_mb")
            .with_time(self.refresh_timeout, "refresh_timeout_seconds")
    }
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
    /// Memory one refresh may use, in MiB.
    pub refresh_memory_limit_mb: usize,
    /// How long `kitle gc` leaves unnamed files alone.
    pub gc_grace: Duration,
    /// Where plans run.
    pub engine: kitle_data::cluster::Engine,
    /// Cluster engine settings.
    pub cluster: ClusterConfig,
    /// `kitle serve` settings.
    pub serve: ServeConfig,
}

impl Config {
    /// The limits of every refresh (memory; a refresh from the command line or the scheduler
    /// has no time limit).
    pub fn refresh_limits(&self) -> kitle_data::session::Limits {
        kitle_data::session::Limits::none()
            .with_memory_mb(self.refresh_memory_limit_mb, "refresh_memory_limit_mb")
    }
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
    /// `--engine local|ballista://HOST:PORT`.
    pub engine: Option<String>,
}

/// Variables with a `KITLE_` prefix that are not configuration keys (read elsewhere).
const NOT_KEYS: &[&str] = &["KITLE_LOG", "KITLE_LOG_FORMAT"];

/// Older short names and the key each stands for.
const ALIASES: &[(&str, &str, &str)] = &[
    ("KITLE_LISTEN", "serve", "listen"),
    ("KITLE_CONSOLE_DIR", "serve", "console_dir"),
    ("KITLE_PG_LISTEN", "serve", "pg_listen"),
];

impl Config {
    /// Reads `kitle.toml` (or the file `--config` names, which must then exist), then the
    /// `KITLE_*` variables of the process, then the flags.
    pub fn load(overrides: &Overrides) -> Result<Self, CliError> {
        let file = match &overrides.config_file {
            Some(path) => Some(path.clone()),
            None if Path::new(CONFIG_FILE).exists() => Some(PathBuf::from(CONFIG_FILE)),
            None => None,
        };
        let text = match &file {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                CliError::input(format!("cannot read config file {}: {e}", path.display()))
            })?),
            None => None,
        };
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, v)| k.starts_with("KITLE_") && !v.is_empty())
            .collect();
        let origin = file
            .as_ref()
            .map_or_else(|| "defaults".to_string(), |p| p.display().to_string());
        Self::from_sources(text.as_deref(), &origin, &env, overrides)
    }

    /// [`Self::load`] from given sources: the file's text (and its name for messages), the
    /// `KITLE_*` variables, the flags.
    pub fn from_sources(
        file: Option<&str>,
        origin: &str,
        env: &[(String, String)],
        overrides: &Overrides,
    ) -> Result<Self, CliError> {
        let mut tree: toml::Table = match file {
            Some(text) => toml::from_str(text)
                .map_err(|e| CliError::input(format!("invalid config file {origin}: {e}")))?,
            None => toml::Table::new(),
        };
        let defaults = toml::Table::try_from(FileConfig::default())
            .expect("the default configuration serialises");
        let mut from_env: BTreeMap<String, String> = BTreeMap::new();
        let mut tokens_env = Vec::new();
        for (name, value) in env {
            if NOT_KEYS.contains(&name.as_str()) {
                continue;
            }
            if name == "KITLE_TOKENS" || name == "KITLE_SERVE__TOKENS" {
                tokens_env.push((name.clone(), value.clone()));
                continue;
            }
            let Some((section, key)) = key_of(name, &defaults) else {
                continue;
            };
            if let Some(s) = &section {
                check_known(name, s, &key, &defaults)?;
            }
            let expected = match &section {
                Some(s) => defaults
                    .get(s)
                    .and_then(|t| t.as_table())
                    .and_then(|t| t.get(&key)),
                None => defaults.get(&key),
            };
            let shown = match &section {
                Some(s) => format!("{s}.{key}"),
                None => key.clone(),
            };
            let parsed = typed(value, expected)
                .map_err(|why| CliError::input(format!("{name}: {shown} {why}")))?;
            let table = match &section {
                Some(s) => tree
                    .entry(s.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| {
                        CliError::input(format!("{origin}: `{s}` must be a section ([{s}])"))
                    })?,
                None => &mut tree,
            };
            table.insert(key, parsed);
            from_env.insert(shown, name.clone());
        }
        let raw: FileConfig =
            serde_path_to_error::deserialize(toml::Value::Table(tree)).map_err(|e| {
                let key = e.path().to_string();
                let source = from_env
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| origin.to_string());
                CliError::input(format!(
                    "invalid configuration: {key} (from {source}): {}",
                    e.inner()
                ))
            })?;
        raw.validate(&tokens_env, overrides)
    }
}

/// The section and key a `KITLE_*` variable names, if it names one: `KITLE_SERVE__LISTEN` is
/// `serve.listen`, `KITLE_STORE` is the top-level `store`; other single names are not ours
/// (tools of the shop may use the prefix too). A section name that kitle does not have is no
/// key either, but a key of a known section that does not exist is kept (and refused by the
/// strict reading, with its name).
fn key_of(name: &str, defaults: &toml::Table) -> Option<(Option<String>, String)> {
    if let Some((_, section, key)) = ALIASES.iter().find(|(alias, _, _)| *alias == name) {
        return Some((Some(section.to_string()), key.to_string()));
    }
    let rest = name.strip_prefix("KITLE_")?.to_ascii_lowercase();
    match rest.split_once("__") {
        Some((section, key)) => Some((Some(section.to_string()), key.to_string())),
        None => {
            let top_level = defaults.get(&rest).is_some_and(|v| !v.is_table());
            top_level.then_some((None, rest))
        }
    }
}

/// Refuses a variable naming a section kitle does not have, or a key its section does not
/// have (`[s3]` takes any of the builder's keys: checked with the others at validation).
fn check_known(
    name: &str,
    section: &str,
    key: &str,
    defaults: &toml::Table,
) -> Result<(), CliError> {
    let sections: Vec<&str> = defaults
        .iter()
        .filter(|(_, v)| v.is_table())
        .map(|(k, _)| k.as_str())
        .collect();
    let Some(table) = defaults.get(section).and_then(|v| v.as_table()) else {
        return Err(CliError::input(format!(
            "{name}: kitle has no configuration section [{section}] (it has: {})",
            sections.join(", ")
        )));
    };
    if section != "s3" && !table.contains_key(key) {
        let keys: Vec<&str> = table.keys().map(String::as_str).collect();
        return Err(CliError::input(format!(
            "{name}: [{section}] has no key {key} (its keys: {})",
            keys.join(", ")
        )));
    }
    Ok(())
}

/// `value` (from an environment variable) as the TOML type of `expected` (the key's default);
/// text when the key has no default to go by.
fn typed(value: &str, expected: Option<&toml::Value>) -> Result<toml::Value, String> {
    Ok(match expected {
        Some(toml::Value::Integer(_)) => toml::Value::Integer(
            value
                .trim()
                .parse()
                .map_err(|_| format!("wants a whole number, not {value:?}"))?,
        ),
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(parse_bool(value)?),
        Some(toml::Value::Float(_)) => toml::Value::Float(
            value
                .trim()
                .parse()
                .map_err(|_| format!("wants a number, not {value:?}"))?,
        ),
        Some(toml::Value::Array(_) | toml::Value::Table(_)) => {
            return Err("cannot be set from the environment".into());
        }
        _ => toml::Value::String(value.to_string()),
    })
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("wants true or false, not {value:?}")),
    }
}

/// Tokens of `KITLE_TOKENS` (`read:…,admin:…`).
fn parse_tokens(name: &str, list: &str) -> Result<Vec<TokenConfig>, CliError> {
    let mut tokens = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (scope, token) = item.split_once(':').ok_or_else(|| {
            CliError::input(format!(
                "{name}: give `scope:token` pairs separated by commas"
            ))
        })?;
        let scope = match scope {
            "read" => crate::http::auth::Scope::Read,
            "admin" => crate::http::auth::Scope::Admin,
            other => {
                return Err(CliError::input(format!(
                    "{name}: scope {other:?} is neither read nor admin"
                )));
            }
        };
        tokens.push(TokenConfig {
            token: token.to_string(),
            scope,
        });
    }
    Ok(tokens)
}

/// `name` must be at least 1: a limit of 0 would refuse everything.
fn positive(name: &str, value: u64) -> Result<(), CliError> {
    if value == 0 {
        return Err(CliError::input(format!(
            "invalid configuration: {name} must be at least 1"
        )));
    }
    Ok(())
}

impl FileConfig {
    /// Checks every key once (naming it when refused) and applies the flags.
    fn validate(
        self,
        tokens_env: &[(String, String)],
        overrides: &Overrides,
    ) -> Result<Config, CliError> {
        let time_zone = self.time_zone.parse::<chrono_tz::Tz>().map_err(|_| {
            CliError::input(format!(
                "invalid configuration: time_zone {:?} is not an IANA time zone name (e.g. Europe/Istanbul)",
                self.time_zone
            ))
        })?;
        self.s3
            .validate()
            .map_err(|e| CliError::input(format!("invalid configuration: {e}")))?;
        let identity = match self.identity.as_str() {
            "" => None,
            text => Some(
                text.parse::<kitle_data::identity::Identity>()
                    .map_err(|_| {
                        CliError::input(format!(
                            "invalid configuration: identity {text:?} is neither `customer_id` nor \
                     `stitched` (identity in kitle.toml, KITLE_IDENTITY)"
                        ))
                    })?,
            ),
        };
        let serve = self.serve;
        positive(
            "refresh_memory_limit_mb",
            self.refresh_memory_limit_mb as u64,
        )?;
        for (name, value) in [
            ("serve.max_body_bytes", serve.max_body_bytes as u64),
            (
                "serve.sql_memory_limit_mb",
                serve.sql_memory_limit_mb as u64,
            ),
            ("serve.sql_timeout_seconds", serve.sql_timeout_seconds),
            ("serve.sql_max_rows", serve.sql_max_rows as u64),
            (
                "serve.preview_memory_limit_mb",
                serve.preview_memory_limit_mb as u64,
            ),
            (
                "serve.preview_timeout_seconds",
                serve.preview_timeout_seconds,
            ),
            (
                "serve.refresh_timeout_seconds",
                serve.refresh_timeout_seconds,
            ),
            ("serve.scheduler_tick_seconds", serve.scheduler_tick_seconds),
            ("serve.pg_max_connections", serve.pg_max_connections as u64),
        ] {
            positive(name, value)?;
        }
        let mut tokens = serve.tokens;
        for (name, list) in tokens_env {
            tokens.extend(parse_tokens(name, list)?);
        }
        if tokens.iter().any(|t| t.token.len() < 16) {
            return Err(CliError::input(
                "invalid configuration: serve.tokens: a bearer token must have at least 16 characters",
            ));
        }
        let pg_tls = match (serve.pg_tls_cert.is_empty(), serve.pg_tls_key.is_empty()) {
            (false, false) => Some(TlsFiles {
                cert: PathBuf::from(&serve.pg_tls_cert),
                key: PathBuf::from(&serve.pg_tls_key),
            }),
            (true, true) => None,
            _ => {
                return Err(CliError::input(
                    "invalid configuration: serve.pg_tls_cert and serve.pg_tls_key go together: \
                     give both, or neither",
                ));
            }
        };
        let engine = cluster::engine_of(overrides.engine.as_deref().unwrap_or(&self.engine))?;
        let cluster = self.cluster.validate()?;
        Ok(Config {
            engine,
            cluster,
            store: StoreConfig {
                url: overrides.store.clone().unwrap_or(self.store),
                s3: self.s3,
                strict: overrides.strict || self.strict,
                identity,
            },
            time_zone,
            refresh_memory_limit_mb: self.refresh_memory_limit_mb,
            gc_grace: Duration::from_secs(self.gc_grace_seconds),
            serve: ServeConfig {
                listen: serve.listen,
                tokens,
                max_body_bytes: serve.max_body_bytes,
                sql_memory_limit_mb: serve.sql_memory_limit_mb,
                sql_timeout: Duration::from_secs(serve.sql_timeout_seconds),
                sql_max_rows: serve.sql_max_rows,
                preview_memory_limit_mb: serve.preview_memory_limit_mb,
                preview_timeout: Duration::from_secs(serve.preview_timeout_seconds),
                refresh_timeout: Duration::from_secs(serve.refresh_timeout_seconds),
                refresh_memory_limit_mb: self.refresh_memory_limit_mb,
                scheduler: serve.scheduler,
                scheduler_tick: Duration::from_secs(serve.scheduler_tick_seconds),
                console: serve.console,
                console_dir: (!serve.console_dir.is_empty())
                    .then(|| PathBuf::from(&serve.console_dir)),
                pg_listen: (!serve.pg_listen.is_empty()).then_some(serve.pg_listen),
                pg_tls,
                pg_max_connections: serve.pg_max_connections,
            },
        })
    }
}

#[cfg(test)]
mod tests;
