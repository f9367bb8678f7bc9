//! Opening a store: one root URL turned into an `object_store` and registered with DataFusion.
//!
//! A store is a local folder (`./kitle-data`, `/srv/shop`, `file:///srv/shop`) or a prefix of an
//! S3-compatible bucket (`s3://bucket/prefix`). Everything kitle reads and writes goes through
//! the [`ObjectStore`] built here, so local and S3 stores behave the same; the paths inside it
//! come from [`crate::layout`].

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, Result};
use crate::identity::Identity;

/// S3 connection settings. Each one left `None` falls back to the standard `AWS_*` variables
/// (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`), so the same binary talks to MinIO-style servers on
/// a private endpoint and to the cloud.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Options {
    /// Endpoint URL, e.g. `http://127.0.0.1:9000`; the AWS default when unset.
    pub endpoint: Option<String>,
    /// Region name; `us-east-1` when unset everywhere.
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Session token for temporary credentials.
    pub session_token: Option<String>,
    /// Allow plain `http://` endpoints (local servers).
    pub allow_http: Option<bool>,
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
        Ok(Self {
            object_store: Arc::new(LocalFileSystem::new()),
            base_url: Url::parse("file:///").expect("static URL"),
            root,
            display: absolute.display().to_string(),
            strict,
            identity: None,
        })
    }

    fn open_s3(raw: &str, rest: &str, options: &S3Options, strict: bool) -> Result<Self> {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid(raw, "missing bucket name (s3://bucket/prefix)"));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(v) = &options.endpoint {
            builder = builder.with_endpoint(v);
        }
        if let Some(v) = &options.region {
            builder = builder.with_region(v);
        }
        if let Some(v) = &options.access_key_id {
            builder = builder.with_access_key_id(v);
        }
        if let Some(v) = &options.secret_access_key {
            builder = builder.with_secret_access_key(v);
        }
        if let Some(v) = &options.session_token {
            builder = builder.with_token(v);
        }
        if let Some(v) = options.allow_http {
            builder = builder.with_allow_http(v);
        }
        let s3 = builder.build().map_err(|e| invalid(raw, &e.to_string()))?;
        let base_url =
            Url::parse(&format!("s3://{bucket}/")).map_err(|e| invalid(raw, &e.to_string()))?;
        Ok(Self {
            object_store: Arc::new(s3),
            base_url,
            root: Path::from(prefix.trim_matches('/')),
            display: raw.to_string(),
            strict,
            identity: None,
        })
    }

    /// The object store every read and write goes through.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.object_store
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
            s3: S3Options {
                endpoint: Some("http://127.0.0.1:1".into()),
                region: Some("us-east-1".into()),
                access_key_id: Some("k".into()),
                secret_access_key: Some("s".into()),
                allow_http: Some(true),
                ..S3Options::default()
            },
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
        assert!(open("").is_err());
    }
}
