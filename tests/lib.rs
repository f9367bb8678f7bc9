//! Support for kitle's integration tests: real servers and real files, no stubs.
//!
//! - [`S3Server`] starts moto's S3-compatible server on a free loopback port, and stops it
//!   when dropped.
//! - [`Backend`] is a store to run the same check against: a local folder or a prefix in that
//!   server's bucket.
//! - The integration test itself (declared by the `kitle` package, so that cargo builds the
//!   binary of this very build for it) runs the real `kitle` binary: see its `support` module.
//! - [`reference`](mod@reference) is an independent evaluator of the segment language (plain Rust over rows),
//!   the oracle the engine is compared with; [`arbitrary`] generates random valid definitions
//!   for that comparison.

pub mod arbitrary;
pub mod reference;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kitle_data::{S3Options, StoreConfig};

/// Access key of the test S3 server.
pub const S3_ACCESS_KEY: &str = "kitle-test";
/// Secret key of the test S3 server.
pub const S3_SECRET_KEY: &str = "kitle-test-secret";
/// The bucket every S3 test uses (a folder under the server's root).
pub const S3_BUCKET: &str = "kitle";

/// The shared folder beside the repository (`../shared`), which holds the conformance store.
pub fn shared_dir() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [here.join("../../shared"), here.join("../shared")];
    candidates
        .iter()
        .find(|p| p.join("conformance").exists())
        .cloned()
        .unwrap_or_else(|| panic!("../shared/conformance not found beside {}", here.display()))
}

/// The conformance store (read-only: copy it before use).
pub fn conformance_store() -> PathBuf {
    shared_dir().join("conformance/store")
}

/// Copies a folder tree (files only), making the copies writable.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let mut perms = std::fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).unwrap();
        }
    }
}

/// A running S3-compatible server on 127.0.0.1 — moto's (from the PyPI package `moto[server]`,
/// which the README's test command installs), started by `tests/fixtures/moto_serialised.py` —
/// killed when dropped.
///
/// Why moto and not `s3s-fs`: kitle's commits rely on conditional writes (`If-Match` with the
/// ETag read, `If-None-Match: *`), which AWS S3 honours atomically. `s3s-fs` 0.14.1 checks the
/// headers but not atomically with the write (two racing writers from one version can both
/// succeed). Plain `moto_server` has the same race between its check and its store (its
/// handlers run on many threads: two winners from one version were seen under load); the
/// fixture runs moto's application one request at a time, so of two racing writers exactly one
/// wins (see the integration test `commits::the_s3_server_refuses_stale_conditional_writes`).
/// moto keeps objects in memory: a store is filled through the S3 API ([`Backend::fill_from`]).
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl S3Server {
    /// Starts the server, waits until it accepts connections and creates the bucket
    /// [`S3_BUCKET`].
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/moto_serialised.py");
        let child = Command::new("python3")
            .arg(&script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {} ({e}); install moto with `python3 -m pip install 'moto[server]'` or run the README's test command", script.display())
            });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                Instant::now() < deadline,
                "moto (python3 {}) did not start listening on port {port}; is `moto[server]` installed?",
                script.display()
            );
            if let Ok(status) = raw_put(port, &format!("/{S3_BUCKET}")) {
                assert!(
                    status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200"),
                    "creating the bucket: {status}"
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// S3 options that reach this server.
    pub fn options(&self) -> S3Options {
        S3Options::default()
            .with("endpoint", self.endpoint.clone())
            .with("region", "us-east-1")
            .with("access_key_id", S3_ACCESS_KEY)
            .with("secret_access_key", S3_SECRET_KEY)
            .with("allow_http", "true")
    }

    /// The same settings as `AWS_*` environment variables, for the `kitle` binary.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }
}

impl S3Server {
    /// The requests the server has answered so far, by kind (`get`, `head`, `list`, `put`,
    /// `post`, `delete`), and `bytes_read`, the object data its `GET`s returned (counted by
    /// `tests/fixtures/moto_serialised.py`).
    pub fn requests(&self) -> serde_json::Value {
        use std::io::{Read, Write};
        let port = self.endpoint.rsplit(':').next().unwrap();
        let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET /__kitle/requests HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
    }
}

/// An unsigned `PUT path` with an empty body (moto accepts it: creating a bucket); the status
/// line of the answer.
fn raw_put(port: u16, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer.lines().next().unwrap_or_default().to_string())
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A store to run a check against.
pub enum Backend<'a> {
    /// A local folder.
    Local(tempfile::TempDir),
    /// A prefix inside the test server's bucket, with a local copy of what it was filled with
    /// (for the reference computations, which read plain files).
    S3 {
        /// The server.
        server: &'a S3Server,
        /// The prefix, unique per test.
        prefix: String,
        /// The local copy.
        mirror: tempfile::TempDir,
    },
}

impl<'a> Backend<'a> {
    /// A prefix of `server`'s bucket.
    pub fn s3(server: &'a S3Server, prefix: &str) -> Self {
        Backend::S3 {
            server,
            prefix: prefix.to_string(),
            mirror: tempfile::tempdir().unwrap(),
        }
    }

    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Local(_) => "local",
            Backend::S3 { .. } => "s3",
        }
    }

    /// The configuration that opens this store.
    pub fn config(&self) -> StoreConfig {
        match self {
            Backend::Local(dir) => StoreConfig {
                url: dir.path().display().to_string(),
                ..StoreConfig::default()
            },
            Backend::S3 { server, prefix, .. } => StoreConfig {
                url: format!("s3://{S3_BUCKET}/{prefix}"),
                s3: server.options(),
                ..StoreConfig::default()
            },
        }
    }

    /// A local folder holding the same files as the store (the store itself when local).
    pub fn local_root(&self) -> PathBuf {
        match self {
            Backend::Local(dir) => dir.path().to_path_buf(),
            Backend::S3 { mirror, .. } => mirror.path().to_path_buf(),
        }
    }

    /// Fills the store with a copy of `from`: plain files for a local folder; for S3, objects
    /// uploaded through the S3 API (and a local copy, see [`Self::local_root`]).
    pub async fn fill_from(&self, from: &Path) {
        copy_tree(from, &self.local_root());
        if let Backend::S3 { mirror, .. } = self {
            let store = kitle_data::Store::open(&self.config()).unwrap();
            upload_tree(&store, mirror.path(), mirror.path()).await;
        }
    }
}

/// Uploads every file under `dir` to `store`, at its path relative to `root`.
async fn upload_tree(store: &kitle_data::Store, root: &Path, dir: &Path) {
    use object_store::ObjectStoreExt;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            Box::pin(upload_tree(store, root, &path)).await;
        } else {
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            let bytes = std::fs::read(&path).unwrap();
            store
                .object_store()
                .put(&store.path(&relative), bytes.into())
                .await
                .unwrap();
        }
    }
}

/// A file of `tests/fixtures/` (scripts that write other tools' Parquet files).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}
