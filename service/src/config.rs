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
}

/// The validated configuration every command runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// How to open the store.
    pub store: StoreConfig,
    /// The store's time zone.
    pub time_zone: chrono_tz::Tz,
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
        Ok(Self {
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
