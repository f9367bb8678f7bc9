//! Support for kitle's integration tests: real servers and real files, no stubs.
//!
//! - [`S3Server`] starts the `s3s-fs` S3-compatible server on a free loopback port, with its
//!   own root folder, and stops it when dropped.
//! - [`Backend`] is a store to run the same check against: a local folder or a prefix in that
//!   server's bucket.
//! - [`kitle`] runs the real `kitle` binary.
//! - [`reference`] is an independent evaluator of the segment language (plain Rust over rows),
//!   the oracle the engine is compared with; [`arbitrary`] generates random valid definitions
//!   for that comparison.

pub mod arbitrary;
pub mod reference;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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

/// A running `s3s-fs` server on 127.0.0.1, killed when dropped.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The server's root folder: each subfolder is a bucket.
    pub root: tempfile::TempDir,
}

impl S3Server {
    /// Starts the server (the `s3s-fs` binary must be on PATH: the README's test command
    /// installs it) and waits until it accepts connections.
    pub fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(S3_BUCKET)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start s3s-fs ({e}); install it with `cargo install s3s-fs@0.14.1 --features binary` or run the README's test command")
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not start listening on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            root,
        }
    }

    /// S3 options that reach this server.
    pub fn options(&self) -> S3Options {
        S3Options {
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some(S3_ACCESS_KEY.into()),
            secret_access_key: Some(S3_SECRET_KEY.into()),
            session_token: None,
            allow_http: Some(true),
        }
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
    /// A prefix inside the test server's bucket.
    S3 {
        /// The server.
        server: &'a S3Server,
        /// The prefix, unique per test.
        prefix: String,
    },
}

impl Backend<'_> {
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
            Backend::S3 { server, prefix } => StoreConfig {
                url: format!("s3://{S3_BUCKET}/{prefix}"),
                s3: server.options(),
                ..StoreConfig::default()
            },
        }
    }

    /// Where the store's objects lie on the local disk (s3s-fs keeps objects as files).
    pub fn local_root(&self) -> PathBuf {
        match self {
            Backend::Local(dir) => dir.path().to_path_buf(),
            Backend::S3 { server, prefix } => server.root.path().join(S3_BUCKET).join(prefix),
        }
    }

    /// Fills the store with a copy of `from` (written as plain files; for S3, into the
    /// server's folder, which it serves as objects).
    pub fn fill_from(&self, from: &Path) {
        copy_tree(from, &self.local_root());
    }
}

/// Runs the real `kitle` binary (built next to the test binary by `cargo build`) with `args`,
/// extra environment and working directory.
pub fn kitle(args: &[&str], env: &[(&str, String)], cwd: &Path) -> Output {
    let exe = kitle_binary();
    let mut cmd = Command::new(&exe);
    cmd.args(args).current_dir(cwd).env_remove("KITLE_STORE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
}

/// The path of the `kitle` binary in the target folder the tests were built into.
pub fn kitle_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("kitle");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build --workspace --bins`, as the README's test command does)",
        bin.display()
    );
    bin
}

/// A real `kitle serve` (or `kitle demo`) process on a port the OS chose, stopped on drop.
pub struct Server {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// What it printed on stdout before and including the `listening on` line.
    pub banner: Vec<String>,
}

impl Server {
    /// Starts `kitle ARGS` in `cwd` (with `--listen 127.0.0.1:0` appended) and waits, at most
    /// `wait`, until it prints the address it listens on (`http://…` in a stdout line), then
    /// keeps reading its stdout until a line starting with `until` (or none when `None`).
    pub fn start(
        args: &[&str],
        env: &[(&str, String)],
        cwd: &Path,
        until: Option<&str>,
        wait: std::time::Duration,
    ) -> Server {
        use std::io::BufRead;
        let mut cmd = Command::new(kitle_binary());
        cmd.args(args)
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(cwd)
            .env_remove("KITLE_STORE")
            .env("KITLE_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("kitle starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + wait;
        let mut banner = Vec::new();
        let mut base = None;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    panic!("kitle {args:?} printed no address within {wait:?}: {banner:?}");
                }
            };
            if base.is_none()
                && let Some(at) = line.find("http://")
            {
                let url: String = line[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != ',')
                    .collect();
                base = Some(url);
            }
            let done = match until {
                None => base.is_some(),
                Some(prefix) => line.starts_with(prefix),
            };
            banner.push(line);
            if done && base.is_some() {
                break;
            }
        }
        Server {
            child,
            base: base.unwrap(),
            banner,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and waits (at most `wait`) for the exit status.
    pub fn terminate(mut self, wait: std::time::Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        // The shell's builtin `kill`, so no procps package is needed.
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -TERM {pid}")])
            .status();
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
