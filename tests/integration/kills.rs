//! Kill -9 everywhere: the real `kitle` binary killed with `SIGKILL` in the middle of a CLI
//! refresh, a `segment put`, a `segment rm` and a `kitle serve` running an HTTP refresh, on a
//! local folder and on the S3 server. A kill lands either at an exact moment
//! (`KITLE_FAILPOINT`, see `kitle_data::failpoint`: after the evaluation, after the n-th
//! members file or change log, just before or after a commit) or after a random delay drawn
//! from the length of an uninterrupted refresh measured in the same run. After every kill:
//!
//! - the manifest and the definitions read; every segment's versions follow one another, each
//!   current members file holds the size its record states, and the current version is exactly
//!   its predecessor's members with its change log applied: one committed version, never a mix;
//! - compared with before the kill, each segment has its old history or that history plus one
//!   version, and a refresh committed all its segments or none;
//! - `kitle gc --delete` (default grace period, an hour) deletes nothing: the killed run's
//!   files are unnamed but young; the same command again (it re-runs the killed one) succeeds;
//! - every few rounds `kitle gc --grace 0s` lists the unnamed files (a dry run: listed again
//!   the same), `--delete` removes exactly those, after which every file of every committed
//!   version still reads and the next refresh succeeds: no committed version named an orphan,
//!   and nothing read one.
//!
//! The suite runs a bounded number of kills per store; `KITLE_KILLS=N` runs N per store (the
//! campaign's command, `scripts/kill-campaign`), `KITLE_KILL_SEED` another draw.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kitle_data::definitions::{Definitions, read_definitions};
use kitle_data::memberships::{ChangeKind, Manifest, read_changes, read_manifest, read_members};
use kitle_data::{Store, StoreConfig};
use serde_json::{Value, json};

use crate::support::{S3Server, Server, kitle, kitle_binary};

/// Kills per store in the test suite (both stores together: 28, every phase at least once).
const SUITE_KILLS_LOCAL: usize = 17;
const SUITE_KILLS_S3: usize = 11;

/// What is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `kitle refresh --as-of T`.
    Refresh,
    /// `kitle segment put extra.json`.
    Put,
    /// `kitle segment rm extra`.
    Remove,
    /// `kitle serve`, answering `POST /v1/refresh`.
    Serve,
}

/// The phases, in the order the rounds go through them. `random` is a kill after a random
/// delay (with two more refreshes running beside it, so commits also race).
const PHASES: &[(Op, &str)] = &[
    (Op::Refresh, "refresh.evaluated"),
    (Op::Refresh, "refresh.members_written"),
    (Op::Put, "definitions.before_commit"),
    (Op::Refresh, "refresh.changes_written"),
    (Op::Remove, "definitions.after_commit"),
    (Op::Refresh, "manifest.before_commit"),
    (Op::Serve, "refresh.members_written"),
    (Op::Refresh, "manifest.after_commit"),
    (Op::Put, "definitions.after_commit"),
    (Op::Refresh, "random"),
    (Op::Remove, "manifest.before_commit"),
    (Op::Serve, "manifest.before_commit"),
    (Op::Remove, "manifest.after_commit"),
    (Op::Serve, "random"),
    (Op::Refresh, "states.written"),
    (Op::Refresh, "index.before_commit"),
];

const SEGMENTS: usize = 3;

/// The segments refreshed beside a randomly killed refresh, one process each.
const BESIDE: [&str; 2] = ["seg-a", "seg-b"];

/// A small deterministic generator (xorshift), so a campaign is reproducible from its seed.
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Per phase: kills, of which the killed run's commit had landed, and runs that ended before
/// their random kill (not counted as kills).
#[derive(Default)]
struct Tally {
    kills: usize,
    committed: usize,
    finished_first: usize,
}

struct Campaign<'a> {
    name: &'a str,
    url: String,
    env: Vec<(&'static str, String)>,
    config: StoreConfig,
    cwd: &'a Path,
    rt: tokio::runtime::Runtime,
    draw: Draw,
    /// An uninterrupted refresh's length, measured at the start.
    refresh_length: Duration,
    tally: BTreeMap<String, Tally>,
    unnamed_deleted: usize,
    retries: u64,
}

/// The `as_of` of a round: every 3 hours over the shop's last 8 days, so members come and go.
fn instant(round: usize) -> String {
    let base: DateTime<Utc> = "2025-11-12T00:00:00Z".parse().unwrap();
    (base + chrono::Duration::hours((round % 64) as i64 * 3)).to_rfc3339()
}

fn killed(status: &ExitStatus) -> bool {
    status.signal() == Some(9)
}

impl Campaign<'_> {
    fn args(&self, args: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec!["--json".into(), "--store".into(), self.url.clone()];
        v.extend(args.iter().map(|a| a.to_string()));
        v
    }

    /// Runs `kitle ARGS` to its end (with `extra` environment); its status and stdout.
    fn run(&self, args: &[&str], extra: &[(&'static str, String)]) -> (ExitStatus, String, String) {
        let args = self.args(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut env = self.env.clone();
        env.extend(extra.iter().cloned());
        let out = kitle(&args, &env, self.cwd);
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `kitle ARGS`, which must succeed; its JSON answer.
    fn ok(&self, args: &[&str]) -> Value {
        let (status, stdout, stderr) = self.run(args, &[]);
        assert!(
            status.success(),
            "{}: kitle {args:?} failed ({status}):\n{stderr}",
            self.name
        );
        serde_json::from_str(stdout.trim()).unwrap_or(Value::Null)
    }

    fn store(&self) -> Store {
        Store::open(&self.config).unwrap()
    }

    /// Forgets every partial state (the next refresh computes them).
    fn forget_states(&self) {
        let store = self.store();
        self.rt
            .block_on(kitle_data::states::forget(&store))
            .unwrap();
    }

    /// The partial states are usable: the index reads, and every file it names is complete and
    /// is the one it names (a killed run's files are never named).
    fn check_states(&self, when: &str) {
        let store = self.store();
        self.rt.block_on(async {
            let index = kitle_data::states::read_index(&store)
                .await
                .unwrap_or_else(|e| panic!("{when}: the states' index: {e}"));
            for (day, entries) in &index.days {
                let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
                for entry in entries.iter().filter(|e| !e.stray) {
                    assert!(
                        kitle_data::states::verify(&store, day, entry).await,
                        "{when}: the index names {} which does not verify",
                        entry.file
                    );
                }
            }
        });
    }

    fn state(&self) -> (Manifest, Definitions) {
        let store = self.store();
        self.rt.block_on(async {
            (
                read_manifest(&store).await.unwrap(),
                read_definitions(&store).await.unwrap(),
            )
        })
    }

    /// Every segment of `manifest` is one committed version: versions 1…n, the current
    /// members file holds the stated size, and it is its predecessor with its change log
    /// applied. With `deep`, every file of every version is read too.
    fn check_consistent(&self, manifest: &Manifest, deep: bool, when: &str) {
        let store = self.store();
        self.rt.block_on(async {
            for (segment, memberships) in &manifest.segments {
                let history = &memberships.history;
                let versions: Vec<u64> = history.iter().map(|r| r.version).collect();
                assert_eq!(
                    versions,
                    (1..=history.len() as u64).collect::<Vec<_>>(),
                    "{when}: {segment}'s versions"
                );
                let checked = if deep {
                    history.len()
                } else {
                    2.min(history.len())
                };
                for k in history.len() - checked..history.len() {
                    let record = &history[k];
                    let members = read_members(&store, &record.members)
                        .await
                        .unwrap_or_else(|e| {
                            panic!(
                                "{when}: {segment} v{}: members unreadable: {e}",
                                record.version
                            )
                        });
                    assert_eq!(
                        members.len() as u64,
                        record.size,
                        "{when}: {segment} v{}",
                        record.version
                    );
                    let changes = read_changes(&store, &record.changes)
                        .await
                        .unwrap_or_else(|e| {
                            panic!(
                                "{when}: {segment} v{}: change log unreadable: {e}",
                                record.version
                            )
                        });
                    let entered: BTreeSet<&str> = changes
                        .iter()
                        .filter(|c| c.change == ChangeKind::Entered)
                        .map(|c| c.customer_id.as_str())
                        .collect();
                    let exited: BTreeSet<&str> = changes
                        .iter()
                        .filter(|c| c.change == ChangeKind::Exited)
                        .map(|c| c.customer_id.as_str())
                        .collect();
                    assert_eq!(
                        (entered.len() as u64, exited.len() as u64),
                        (record.entered, record.exited),
                        "{when}: {segment} v{}: the change log and its record disagree",
                        record.version
                    );
                    let previous: BTreeSet<String> = if k == 0 {
                        BTreeSet::new()
                    } else {
                        read_members(&store, &history[k - 1].members)
                            .await
                            .unwrap()
                            .into_iter()
                            .map(|m| m.customer_id)
                            .collect()
                    };
                    let expected: BTreeSet<&str> = previous
                        .iter()
                        .map(String::as_str)
                        .filter(|c| !exited.contains(c))
                        .chain(entered.iter().copied())
                        .collect();
                    let now: BTreeSet<&str> =
                        members.iter().map(|m| m.customer_id.as_str()).collect();
                    assert_eq!(
                        now,
                        expected,
                        "{when}: {segment} v{} is not v{} with its change log applied",
                        record.version,
                        record.version - 1
                    );
                }
            }
        });
    }

    /// After a kill: each segment kept its history or gained exactly one version; a refresh
    /// gained it for all its segments or for none. `true` when the killed run's commit landed.
    /// `beside` are the segments other refreshes committed meanwhile (each may gain two
    /// versions, and is left out of the all-or-none check).
    fn check_against(
        &self,
        op: Op,
        before: &Manifest,
        after: &Manifest,
        beside: &[&str],
        when: &str,
    ) -> bool {
        let mut gained = BTreeSet::new();
        for (segment, now) in &after.segments {
            let old = before
                .segments
                .get(segment)
                .map_or(&[][..], |m| &m.history[..]);
            let new = &now.history;
            let most = if beside.contains(&segment.as_str()) {
                2
            } else {
                1
            };
            assert!(
                new.len() >= old.len() && new.len() <= old.len() + most,
                "{when}: {segment} went from {} to {} versions",
                old.len(),
                new.len()
            );
            assert_eq!(
                &new[..old.len()],
                old,
                "{when}: {segment}'s history was rewritten"
            );
            if new.len() > old.len() && !beside.contains(&segment.as_str()) {
                gained.insert(segment.clone());
            }
        }
        match op {
            Op::Refresh | Op::Serve => {
                let refreshed: BTreeSet<String> = before
                    .segments
                    .keys()
                    .filter(|s| !beside.contains(&s.as_str()))
                    .cloned()
                    .collect();
                assert!(
                    gained.is_empty() || refreshed.is_subset(&gained),
                    "{when}: one refresh committed {gained:?} of {refreshed:?}"
                );
                !gained.is_empty()
            }
            Op::Put | Op::Remove => {
                assert!(
                    gained.is_empty(),
                    "{when}: a put or rm added versions: {gained:?}"
                );
                false
            }
        }
    }

    /// `kitle gc --delete` with the default grace period (an hour) after a kill: the killed
    /// run's files are young, so nothing is deleted; how many young unnamed files there are.
    fn gc_young(&self, when: &str) -> usize {
        let found = self.ok(&["gc", "--delete"]);
        assert_eq!(
            found["unnamed"].as_array().map(Vec::len),
            Some(0),
            "{when}: gc found old unnamed files right after a kill: {found}"
        );
        found["young"].as_array().map_or(0, Vec::len)
    }

    /// `kitle gc --grace 0s` lists the unnamed files and deletes nothing (listed again the
    /// same); `--delete` then removes exactly those, after which every committed file of every
    /// version reads and a last dry run finds nothing.
    fn gc_delete(&mut self, when: &str) {
        let names = |found: &Value| -> Vec<String> {
            found["unnamed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["path"].as_str().unwrap().to_string())
                .collect()
        };
        let dry = self.ok(&["gc", "--grace", "0s"]);
        assert_eq!(dry["deleted"], json!(false), "{when}: {dry}");
        let listed = names(&dry);
        assert_eq!(
            names(&self.ok(&["gc", "--grace", "0s"])),
            listed,
            "{when}: a dry run deleted"
        );
        let found = self.ok(&["gc", "--delete", "--grace", "0s"]);
        assert_eq!(found["deleted"], json!(true), "{when}: {found}");
        assert_eq!(names(&found), listed, "{when}");
        self.unnamed_deleted += listed.len();
        let (manifest, _) = self.state();
        self.check_consistent(&manifest, true, &format!("{when}, after gc --delete"));
        let again = self.ok(&["gc", "--grace", "0s"]);
        assert!(names(&again).is_empty(), "{when}: {again}");
    }

    /// Makes `extra` defined (for a removal) or not (for a put) before a round.
    fn prepare_extra(&self, defined: bool) {
        let (_, definitions) = self.state();
        if definitions.contains_key("extra") != defined {
            if defined {
                // Refreshed too, so that a removal has memberships to forget.
                self.ok(&["segment", "put", "extra.json"]);
                self.ok(&["refresh", "extra", "--as-of", &instant(0)]);
            } else {
                self.ok(&["segment", "rm", "extra"]);
            }
        }
    }

    /// Kills a run at `point` (or, for `random`, after a random delay); whether it was killed.
    fn killed_run(&mut self, op: Op, point: &str, round: usize) -> bool {
        let at = instant(round);
        let failpoint = |nth: u64| vec![("KITLE_FAILPOINT", format!("{point}:{nth}"))];
        match op {
            Op::Refresh | Op::Serve if point == "random" => self.random_kill(op, &at),
            Op::Refresh => {
                let nth = if point.ends_with("_written") {
                    1 + self.draw.below(SEGMENTS as u64)
                } else {
                    1
                };
                let (status, _, stderr) = self.run(&["refresh", "--as-of", &at], &failpoint(nth));
                assert!(
                    killed(&status),
                    "{}: the refresh at {point}:{nth} was not killed ({status}):\n{stderr}",
                    self.name
                );
                true
            }
            Op::Put => {
                let (status, _, stderr) =
                    self.run(&["segment", "put", "extra.json"], &failpoint(1));
                assert!(
                    killed(&status),
                    "{}: the put at {point} was not killed ({status}):\n{stderr}",
                    self.name
                );
                true
            }
            Op::Remove => {
                let (status, _, stderr) = self.run(&["segment", "rm", "extra"], &failpoint(1));
                assert!(
                    killed(&status),
                    "{}: the rm at {point} was not killed ({status}):\n{stderr}",
                    self.name
                );
                true
            }
            Op::Serve => {
                let nth = if point.ends_with("_written") {
                    1 + self.draw.below(SEGMENTS as u64)
                } else {
                    1
                };
                let mut server = self.serve(&failpoint(nth));
                let answered = post_refresh(&server.base, &at);
                assert!(
                    !answered,
                    "{}: serve answered a refresh it was to be killed in",
                    self.name
                );
                let status = server
                    .wait_exit(Duration::from_secs(120))
                    .unwrap_or_else(|| {
                        panic!("{}: serve at {point}:{nth} was not killed", self.name)
                    });
                assert!(
                    killed(&status),
                    "{}: serve at {point}:{nth} ended with {status}",
                    self.name
                );
                true
            }
        }
    }

    fn serve(&self, extra: &[(&'static str, String)]) -> Server {
        let mut env = self.env.clone();
        env.extend(extra.iter().cloned());
        env.push(("KITLE_SERVE__SCHEDULER", "false".into()));
        Server::start(
            &["--store", &self.url, "serve"],
            &env,
            self.cwd,
            None,
            Duration::from_secs(90),
        )
    }

    /// A refresh (CLI, or `serve` answering `POST /v1/refresh`) killed after a random delay
    /// drawn from an uninterrupted refresh's length, while two more CLI refreshes, of one
    /// segment each ([`BESIDE`]), run beside it: they must succeed, re-applying their commit
    /// when another landed first. Whether the first was killed before it ended.
    fn random_kill(&mut self, op: Op, at: &str) -> bool {
        let beside_command = |segment: &str| {
            let mut beside = Command::new(kitle_binary());
            beside
                .args(self.args(&["refresh", segment, "--as-of", at]))
                .current_dir(self.cwd)
                .env_remove("KITLE_STORE")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            for (k, v) in &self.env {
                beside.env(k, v);
            }
            beside
        };
        let mut beside: Vec<Command> = BESIDE.iter().map(|s| beside_command(s)).collect();
        // Up to a quarter past an uninterrupted refresh's length, so that some kills land at
        // the commit or after it (those that find the run ended are not counted as kills).
        let span = self.refresh_length.as_micros() as u64 * 5 / 4;
        let delay = Duration::from_micros(self.draw.below(span + 1));
        match op {
            Op::Serve => {
                let server = self.serve(&[]);
                let beside: Vec<_> = beside.iter_mut().map(|b| b.spawn().unwrap()).collect();
                let client = {
                    let base = server.base.clone();
                    let at = at.to_string();
                    std::thread::spawn(move || post_refresh(&base, &at))
                };
                std::thread::sleep(delay);
                drop(server); // SIGKILL
                let answered = client.join().unwrap_or(false);
                beside.into_iter().for_each(|b| self.finish_beside(b));
                !answered
            }
            _ => {
                let args = self.args(&["refresh", "--as-of", at]);
                let mut cmd = Command::new(kitle_binary());
                cmd.args(&args)
                    .current_dir(self.cwd)
                    .env_remove("KITLE_STORE")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                for (k, v) in &self.env {
                    cmd.env(k, v);
                }
                let mut child = cmd.spawn().unwrap();
                let beside: Vec<_> = beside.iter_mut().map(|b| b.spawn().unwrap()).collect();
                std::thread::sleep(delay);
                let ended = child.try_wait().unwrap().is_some();
                let _ = child.kill();
                let status = child.wait().unwrap();
                beside.into_iter().for_each(|b| self.finish_beside(b));
                !ended && killed(&status)
            }
        }
    }

    fn finish_beside(&mut self, beside: std::process::Child) {
        let out = beside.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}: the refresh beside the killed one failed ({}):\n{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        self.retries += answer["retries"].as_u64().unwrap_or(0);
    }

    /// Runs the killed command again, which must succeed.
    fn recover(&mut self, op: Op, round: usize) {
        match op {
            Op::Refresh | Op::Serve => {
                let answer = self.ok(&["refresh", "--as-of", &instant(round)]);
                self.retries += answer["retries"].as_u64().unwrap_or(0);
            }
            Op::Put => {
                self.ok(&["segment", "put", "extra.json"]);
            }
            Op::Remove => {
                let (manifest, definitions) = self.state();
                if definitions.contains_key("extra") || manifest.segments.contains_key("extra") {
                    // Killed before the removal was complete: removing again finishes it.
                    self.ok(&["segment", "rm", "extra"]);
                } else {
                    // Killed after it: removing again finds nothing to remove (exit 2).
                    let (status, _, stderr) = self.run(&["segment", "rm", "extra"], &[]);
                    assert_eq!(status.code(), Some(2), "{}: {stderr}", self.name);
                    assert!(
                        stderr.contains("no segment extra"),
                        "{}: {stderr}",
                        self.name
                    );
                }
                let (manifest, definitions) = self.state();
                assert!(
                    !definitions.contains_key("extra") && !manifest.segments.contains_key("extra"),
                    "{}: rm did not finish",
                    self.name
                );
            }
        }
    }
}

/// Sends `POST /v1/refresh` with `as_of` and reads until the server answers or dies (it is
/// killed while it works); whether the refresh answered 200 first.
fn post_refresh(base: &str, at: &str) -> bool {
    let address = base.trim_start_matches("http://");
    let body = json!({ "as_of": at }).to_string();
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return false;
    };
    let _ = write!(
        stream,
        "POST /v1/refresh HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
    // Keep the connection open until the server answers or dies.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut sink);
    sink.starts_with(b"HTTP/1.1 200")
}

fn kills_per_store(default: usize) -> usize {
    std::env::var("KITLE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn campaign(
    name: &str,
    url: String,
    env: Vec<(&'static str, String)>,
    config: StoreConfig,
    kills: usize,
    offset: usize,
) {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(cwd.join("kitle.toml"), "[serve]\nscheduler = false\n").unwrap();
    let seed = std::env::var("KITLE_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_u64 + offset as u64);
    let mut c = Campaign {
        name,
        url,
        env,
        config,
        cwd,
        rt: tokio::runtime::Runtime::new().unwrap(),
        draw: Draw(seed | 1),
        refresh_length: Duration::ZERO,
        tally: BTreeMap::new(),
        unnamed_deleted: 0,
        retries: 0,
    };
    c.ok(&[
        "generate",
        "--customers",
        "150",
        "--days",
        "10",
        "--end",
        "2025-11-20",
    ]);
    let definitions = json!([
        {"id": "seg-a", "condition": {"event": "product_viewed", "op": "gte", "value": 1, "period": {"last": "1d"}}},
        {"id": "seg-b", "condition": {"attribute": "email_consent", "op": "eq", "value": "granted"}},
        {"id": "seg-c", "condition": {"all": [{"segment": "seg-a"}, {"event": "order_completed", "op": "gte", "value": 1, "period": {"last": "7d"}}]}},
    ]);
    std::fs::write(cwd.join("base.json"), definitions.to_string()).unwrap();
    std::fs::write(
        cwd.join("extra.json"),
        json!({"id": "extra", "name": "Ek grup: İstanbul şubesi", "condition": {"attribute": "email_consent", "op": "eq", "value": "denied"}}).to_string(),
    )
    .unwrap();
    c.ok(&["segment", "put", "base.json"]);
    let started = Instant::now();
    c.ok(&["refresh", "--as-of", &instant(0)]);
    c.refresh_length = started.elapsed();

    let mut done = 0;
    let mut round = 0;
    while done < kills {
        round += 1;
        let (op, point) = PHASES[(offset + round) % PHASES.len()];
        match op {
            Op::Put => c.prepare_extra(false),
            Op::Remove => c.prepare_extra(true),
            _ => {}
        }
        if point.starts_with("states.") || point.starts_with("index.") {
            // So that the refresh computes (and commits) partial states.
            c.forget_states();
        }
        let phase = format!("{op:?} at {point}").to_lowercase();
        let when = format!("{name} round {round} ({phase})");
        let (before, _) = c.state();
        let was_killed = c.killed_run(op, point, round);
        let (after, definitions) = c.state();
        c.check_consistent(&after, false, &when);
        c.check_states(&when);
        let beside: &[&str] = if point == "random" { &BESIDE } else { &[] };
        let committed = c.check_against(op, &before, &after, beside, &when);
        match (op, point) {
            (Op::Put, "definitions.before_commit") => {
                assert!(!definitions.contains_key("extra"), "{when}")
            }
            (Op::Put, "definitions.after_commit") => {
                assert!(definitions.contains_key("extra"), "{when}")
            }
            (Op::Remove, "definitions.after_commit") => {
                assert!(
                    !definitions.contains_key("extra") && after.segments.contains_key("extra"),
                    "{when}: killed between the two commits of a removal"
                )
            }
            (Op::Remove, "manifest.before_commit") => {
                assert!(after.segments.contains_key("extra"), "{when}")
            }
            (Op::Remove, "manifest.after_commit") => {
                assert!(!after.segments.contains_key("extra"), "{when}")
            }
            (Op::Refresh | Op::Serve, p) if p != "random" => {
                assert_eq!(
                    committed,
                    p == "manifest.after_commit",
                    "{when}: commit landed: {committed}"
                )
            }
            _ => {}
        }
        let young = c.gc_young(&when);
        if was_killed && point.ends_with("_written") {
            assert!(
                young > 0,
                "{when}: the killed run's files are not among the unnamed ones"
            );
        }
        c.recover(op, round);
        let (recovered, _) = c.state();
        c.check_consistent(&recovered, false, &format!("{when}, recovered"));
        let tally = c.tally.entry(phase).or_default();
        if was_killed {
            done += 1;
            tally.kills += 1;
            tally.committed += usize::from(committed);
        } else {
            tally.finished_first += 1;
        }
        if round % 5 == 0 {
            c.gc_delete(&when);
        }
    }
    c.gc_delete(&format!("{name}: at the end"));
    c.ok(&["refresh", "--as-of", &instant(round + 1)]);
    let (manifest, _) = c.state();
    c.check_consistent(&manifest, true, &format!("{name}: the end"));
    eprintln!(
        "kill -9 campaign on {name}: {done} kills in {round} rounds, {} commits re-applied after a conflict, {} unnamed files deleted by gc, nothing lost",
        c.retries, c.unnamed_deleted
    );
    eprintln!("| store | phase | kills | killed run had committed | ended before its kill |");
    for (phase, t) in &c.tally {
        eprintln!(
            "| {name} | {phase} | {} | {} | {} |",
            t.kills, t.committed, t.finished_first
        );
    }
}

#[test]
fn killed_writers_leave_one_committed_version_on_a_local_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("store").display().to_string();
    let config = StoreConfig {
        url: url.clone(),
        ..StoreConfig::default()
    };
    campaign(
        "local",
        url,
        Vec::new(),
        config,
        kills_per_store(SUITE_KILLS_LOCAL),
        0,
    );
}

#[test]
fn killed_writers_leave_one_committed_version_on_s3() {
    let server = S3Server::start();
    let url = format!("s3://{}/kills", kitle_tests::S3_BUCKET);
    let config = StoreConfig {
        url: url.clone(),
        s3: server.options(),
        ..StoreConfig::default()
    };
    campaign(
        "s3",
        url,
        server.env(),
        config,
        kills_per_store(SUITE_KILLS_S3),
        7,
    );
}
