//! What the integration tests run the real `kitle` binary with. The test target belongs to the
//! `kitle` package, so cargo builds the binary in the same build as the tests and names it in
//! `CARGO_BIN_EXE_kitle`: a test never runs a stale binary. Everything else comes from
//! `kitle-tests` (servers, fixtures, the reference evaluator), re-exported here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) use kitle_tests::*;

/// Runs the real `kitle` binary (the one this build produced) with `args`,
/// extra environment and working directory.
pub(crate) fn kitle(args: &[&str], env: &[(&str, String)], cwd: &Path) -> Output {
    let exe = kitle_binary();
    let mut cmd = Command::new(&exe);
    cmd.args(args).current_dir(cwd).env_remove("KITLE_STORE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
}

/// The `kitle` binary cargo built for this test run.
pub(crate) fn kitle_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kitle"))
}

/// A real `kitle serve` (or `kitle demo`) process on a port the OS chose, stopped on drop.
pub(crate) struct Server {
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
    pub(crate) fn start(
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
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and waits (at most `wait`) for the exit status.
    pub(crate) fn terminate(
        mut self,
        wait: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
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
