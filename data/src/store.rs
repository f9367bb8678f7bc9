//! Opening a store: one root URL turned into an `object_store` and registered with DataFusion.
//!
//! A store is a local folder (`./kitle-data`, `/srv/shop`, `file:///srv/shop`) or a prefix of an
//! S3-compatible bucket (`s3://bucket/prefix`). Everything kitle reads and writes goes through
//! the [`ObjectStore`] built here, so local and S3 stores behave the same; the paths inside it
//! come from [`crate::layout`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::counted::{Counted, IoCounters, StoreIo};
use crate::error::{Error, Result};
use crate::identity::Identity;

/// S3 connection settings: `AmazonS3Builder`'s own configuration keys (`endpoint`,
/// `region`, `access_key_id`, `secret_access_key`, `session_token`, `allow_http`,
/// `conditional_put`, … — any name `AmazonS3ConfigKey` accepts, with or without its `aws_`
/// prefix) and their values, given to the builder as they are. Whatever is not set falls back
/// to the standard `AWS_*` variables, so the same binary talks to MinIO-style servers on a
/// private endpoint and to the cloud.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct S3Options(BTreeMap<String, String>);

impl S3Options {
    /// Sets `key` (a builder configuration key) to `value`.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.insert(key.to_string(), value.into());
        self
    }

    /// The value set for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Every key set, with its value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Checks that every key is one the builder knows (the values are checked when the store
    /// is opened); the error names the key as `s3.<key>`.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for key in self.0.keys() {
            key.parse::<AmazonS3ConfigKey>()
                .map_err(|e| format!("s3.{key}: not an S3 setting ({e})"))?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach a log line.
        let mut map = f.debug_map();
        for (k, v) in &self.0 {
            let secret = k.contains("secret") || k.contains("token") || k.contains("key_base64");
            map.entry(k, &if secret { "…" } else { v.as_str() });
        }
        map.finish()
    }
}

impl<'de> Deserialize<'de> for S3Options {
    /// A table of keys to text, booleans or numbers (`allow_http = true` reads as `"true"`).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            Text(String),
            Flag(bool),
            Whole(i64),
            Real(f64),
        }
        let map = BTreeMap::<String, Scalar>::deserialize(d)?;
        Ok(S3Options(
            map.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Scalar::Text(s) => s,
                        Scalar::Flag(b) => b.to_string(),
                        Scalar::Whole(i) => i.to_string(),
                        Scalar::Real(x) => x.to_string(),
                    };
                    (k, v)
                })
                .collect(),
        ))
    }
}

/// Everything needed to open a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The store's root URL: a path, `file:///…` or `s3://bucket/prefix`.
    pub url: String,
    /// S3 settings, used for `s3://` URLs.
    pub s3: S3Options,
    /// Fail on an unreadable file instead of skipping and reporting it.
    pub strict: bool,
    /// The identity setting this process is configured with (`identity` in `kitle.toml`,
    /// `KITLE_IDENTITY`); `None` follows what the store records (see [`crate::identity`]).
    pub identity: Option<Identity>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_STORE.to_string(),
            s3: S3Options::default(),
            strict: false,
            identity: None,
        }
    }
}

/// The store used when none is configured: a local folder in the working directory.
pub const DEFAULT_STORE: &str = "./kitle-data";

/// An opened store: the object store, the URL DataFusion knows it by, and the root prefix.
#[derive(Debug, Clone)]
pub struct Store {
    object_store: Arc<dyn ObjectStore>,
    /// `file:///` or `s3://bucket/`: what DataFusion's registry maps to `object_store`.
    base_url: Url,
    /// Prefix of the store inside `object_store` (`home/shop/kitle-data`, `prefix`).
    root: Path,
    /// The URL as the user should see it.
    display: String,
    strict: bool,
    identity: Option<Identity>,
    /// The folder of a local store (`None` for S3): commits lock files there.
    local: Option<PathBuf>,
    /// Where queries over this store run (the local engine unless [`Store::with_engine`]).
    engine: crate::cluster::Engine,
    /// The requests and bytes `object_store` served, shared by every clone of this store.
    io: Arc<IoCounters>,
}

impl Store {
    /// Opens the store a configuration names. Nothing is read or created yet: a local folder
    /// that does not exist is an empty store until something is written into it.
    pub fn open(config: &StoreConfig) -> Result<Self> {
        let raw = config.url.trim();
        if raw.is_empty() {
            return Err(invalid(raw, "the URL is empty"));
        }
        if let Some(rest) = raw.strip_prefix("s3://") {
            return Self::open_s3(raw, rest, &config.s3, config.strict)
                .map(|s| s.with_identity(config.identity));
        }
        let local = if let Some(rest) = raw.strip_prefix("file://") {
            let url = Url::parse(raw).map_err(|e| invalid(raw, &e.to_string()))?;
            if !rest.starts_with('/') {
                return Err(invalid(
                    raw,
                    "a file:// URL needs an absolute path (file:///…)",
                ));
            }
            url.to_file_path()
                .map_err(|()| invalid(raw, "not a local file path"))?
        } else if raw.contains("://") {
            let scheme = raw.split("://").next().unwrap_or_default();
            return Err(invalid(
                raw,
                &format!(
                    "unsupported scheme {scheme:?}: use a local path, file:///… or s3://bucket/prefix"
                ),
            ));
        } else {
            PathBuf::from(raw)
        };
        Self::open_local(raw, local, config.strict).map(|s| s.with_identity(config.identity))
    }

    fn with_identity(mut self, identity: Option<Identity>) -> Self {
        self.identity = identity;
        self
    }

    fn open_local(raw: &str, path: PathBuf, strict: bool) -> Result<Self> {
        let absolute = std::path::absolute(&path).map_err(|e| Error::Io {
            context: format!("resolving store path {}", path.display()),
            source: e,
        })?;
        // Resolve symbolic links where the folder exists, so that paths DataFusion lists match
        // the paths we form.
        let absolute = absolute.canonicalize().unwrap_or(absolute);
        let root = Path::from_absolute_path(&absolute).map_err(|e| invalid(raw, &e.to_string()))?;
        let io = Arc::new(IoCounters::default());
        let counted = Counted::new(Arc::new(LocalFileSystem::new()), Arc::clone(&io), true);
        Ok(Self {
            object_store: Arc::new(counted),
            base_url: Url::parse("file:///").expect("static URL"),
            root,
            display: absolute.display().to_string(),
            strict,
            identity: None,
            local: Some(absolute),
            engine: crate::cluster::Engine::Local,
            io,
        })
    }

    fn open_s3(raw: &str, rest: &str, options: &S3Options, strict: bool) -> Result<Self> {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid(raw, "missing bucket name (s3://bucket/prefix)"));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (key, value) in options.iter() {
            let key: AmazonS3ConfigKey = key
                .parse()
                .map_err(|e| invalid(raw, &format!("s3.{key}: {e}")))?;
            builder = builder.with_config(key, value);
        }
        let s3 = builder.build().map_err(|e| invalid(raw, &e.to_string()))?;
        let base_url =
            Url::parse(&format!("s3://{bucket}/")).map_err(|e| invalid(raw, &e.to_string()))?;
        let io = Arc::new(IoCounters::default());
        let counted = Counted::new(Arc::new(s3), Arc::clone(&io), false);
        Ok(Self {
            object_store: Arc::new(counted),
            base_url,
            root: Path::from(prefix.trim_matches('/')),
            display: raw.to_string(),
            strict,
            identity: None,
            local: None,
            engine: crate::cluster::Engine::Local,
            io,
        })
    }

    /// The store with its queries run on `engine`: every session [`crate::session`] builds for
    /// it then runs its plans there. Reads and writes of kitle's own objects (manifest,
    /// memberships) stay in this process whatever the engine.
    pub fn with_engine(mut self, engine: crate::cluster::Engine) -> Self {
        self.engine = engine;
        self
    }

    /// Where queries over this store run.
    pub fn engine(&self) -> &crate::cluster::Engine {
        &self.engine
    }

    /// The requests and bytes this process's clones of the store have served so far (take two
    /// snapshots and [`StoreIo::since`] for what happened between them).
    pub fn io(&self) -> StoreIo {
        self.io.snapshot()
    }

    /// The object store every read and write goes through.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.object_store
    }

    /// The folder of a local store, `None` for an S3 store. Commits use it for the OS file
    /// locks that stand in for S3's conditional writes (see [`crate::commit`]).
    pub fn local_root(&self) -> Option<&std::path::Path> {
        self.local.as_deref()
    }

    /// The store's URL as the user should see it.
    pub fn display_url(&self) -> &str {
        &self.display
    }

    /// Whether unreadable files are fatal rather than skipped and reported.
    pub fn strict(&self) -> bool {
        self.strict
    }

    /// The identity setting this process is configured with; `None` when it follows the
    /// store's recorded setting (see [`crate::identity`]).
    pub fn configured_identity(&self) -> Option<Identity> {
        self.identity
    }

    /// The URL under which DataFusion's object-store registry knows this store.
    pub fn object_store_url(&self) -> ObjectStoreUrl {
        ObjectStoreUrl::parse(self.base_url.as_str()).expect("scheme and authority only")
    }

    /// The URL prefix (`file:///` or `s3://bucket/`) that [`Self::object_store_url`] names.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The object path of `relative` (slash-separated, relative to the store root).
    pub fn path(&self, relative: &str) -> Path {
        let mut path = self.root.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            path = path.join(part);
        }
        path
    }

    /// The path of `location` relative to the store root; `None` when it lies outside it.
    pub fn relative(&self, location: &Path) -> Option<String> {
        let parts: Vec<_> = location
            .prefix_match(&self.root)?
            .map(|p| p.as_ref().to_string())
            .collect();
        Some(parts.join("/"))
    }

    /// The URL of one object of the store (`relative` like `memberships/x/v1.parquet`).
    pub fn file_url(&self, relative: &str) -> Result<ListingTableUrl> {
        let path = self.path(relative);
        let url = format!("{}{}", self.base_url, path.as_ref());
        ListingTableUrl::parse(&url).map_err(Error::from)
    }

    /// The listing URL of a folder of the store (`relative` like `events`), with a trailing
    /// slash so DataFusion lists it as a directory.
    pub fn table_url(&self, relative: &str) -> Result<ListingTableUrl> {
        let path = self.path(relative);
        let url = format!("{}{}/", self.base_url, path.as_ref());
        ListingTableUrl::parse(&url).map_err(Error::from)
    }
}

fn invalid(url: &str, reason: &str) -> Error {
    Error::InvalidStoreUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(url: &str) -> Result<Store> {
        Store::open(&StoreConfig {
            url: url.to_string(),
            ..StoreConfig::default()
        })
    }

    #[test]
    fn local_paths_and_file_urls_name_the_same_root() {
        let dir = std::env::temp_dir();
        let a = open(dir.to_str().unwrap()).unwrap();
        let b = open(&format!("file://{}", dir.canonicalize().unwrap().display())).unwrap();
        assert_eq!(a.path("events"), b.path("events"));
        assert_eq!(a.object_store_url().as_str(), "file:///");
        let url = a.table_url("events").unwrap();
        assert!(url.as_str().ends_with("/events/"), "{url}");
        assert_eq!(
            a.relative(&a.path("events/date=2025-01-01/x.parquet"))
                .unwrap(),
            "events/date=2025-01-01/x.parquet"
        );
    }

    #[test]
    fn s3_urls_split_bucket_and_prefix() {
        let s = Store::open(&StoreConfig {
            url: "s3://shop/tenants/a".into(),
            s3: S3Options::default()
                .with("endpoint", "http://127.0.0.1:1")
                .with("region", "us-east-1")
                .with("access_key_id", "k")
                .with("secret_access_key", "s")
                .with("allow_http", "true"),
            strict: false,
            identity: None,
        })
        .unwrap();
        assert_eq!(s.object_store_url().as_str(), "s3://shop/");
        assert_eq!(s.path("customers").as_ref(), "tenants/a/customers");
        assert_eq!(
            s.table_url("events").unwrap().as_str(),
            "s3://shop/tenants/a/events/"
        );
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        let err = open("gs://bucket").unwrap_err().to_string();
        assert!(err.contains("unsupported scheme \"gs\""), "{err}");
        let err = open("s3:///prefix").unwrap_err().to_string();
        assert!(err.contains("missing bucket"), "{err}");
        let err = Store::open(&StoreConfig {
            url: "s3://b/p".into(),
            s3: S3Options::default().with("endpiont", "x"),
            ..StoreConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("s3.endpiont"), "{err}");
        assert!(open("").is_err());
    }
}
