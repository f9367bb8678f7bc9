//! The Playwright driver (`tests/console/drive.py`) as a child process: started with
//! `--pause-before-erase`, it writes its report so far and waits before it erases a customer,
//! so that the test compares every figure shown before the erasure with the API while the
//! store still holds that customer; then it is resumed and finishes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{ADMIN, READ};

/// The driver, running.
pub(super) struct Drive {
    child: Child,
    out: PathBuf,
    limit: Duration,
    deadline: Instant,
}

impl Drive {
    /// Starts the driver on `base`, writing into `out`, for at most `limit` in all.
    pub(super) fn start(base: &str, out: &Path, limit: Duration) -> Drive {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/console/drive.py");
        let child = Command::new("python3")
            .arg(&script)
            .args(["--base", base, "--admin-token", ADMIN, "--read-token", READ])
            .arg("--out")
            .arg(out)
            .arg("--pause-before-erase")
            .stdin(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        Drive {
            child,
            out: out.to_path_buf(),
            limit,
            deadline: Instant::now() + limit,
        }
    }

    fn report(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.out.join("report.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn past_deadline(&mut self) {
        if Instant::now() > self.deadline {
            let _ = self.child.kill();
            panic!("the console driver ran longer than {:?}", self.limit);
        }
    }

    /// Waits until the driver paused before the erasure, and answers its report so far.
    pub(super) fn paused(&mut self) -> Value {
        loop {
            if let Some(report) = self.report().filter(|r| r["paused"] == true) {
                return report;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                let report = self.report();
                panic!(
                    "the console driver ended ({status}) before its pause, at {}; screenshots \
                     in {} (is Playwright installed? The README's test command installs it \
                     with Debian's chromium)",
                    report.map_or(Value::Null, |r| r["failure"].clone()),
                    self.out.display()
                );
            }
            self.past_deadline();
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Lets the paused driver go on, waits for it to finish and answers its whole report.
    pub(super) fn resume(&mut self) -> Value {
        let mut stdin = self.child.stdin.take().expect("paused once");
        writeln!(stdin, "go").unwrap();
        drop(stdin);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            self.past_deadline();
            std::thread::sleep(Duration::from_millis(100));
        };
        let report = self
            .report()
            .unwrap_or_else(|| panic!("the console driver wrote no report ({status})"));
        assert!(
            status.success() && report["failure"].is_null() && report["paused"] == false,
            "the console driver failed at {}; screenshots in {}",
            report["failure"],
            self.out.display()
        );
        report
    }
}

impl Drop for Drive {
    /// A test that fails while the driver waits must not leave a browser behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
