#!/usr/bin/env python3
"""Cluster overhead benchmark: one refresh on the local engine, on one scheduler + 1 executor,
and on one scheduler + 2 executors, over the same store in the same run.

    python3 benches/cluster_overhead.py --kitle ~/.cache/kitle-target/release/kitle \\
        --store /tmp/kitle-cluster-bench --customers 200000 --days 60

1. generates the shop with `kitle generate` (unless --skip-generate) and stores the ready-made
   segments (`kitle segment put queries/segments/*.json`);
2. refreshes every segment at --as-of with `kitle refresh --json`:
   - `local`: the embedded engine (both cores);
   - `1 executor`: `kitle scheduler` + one `kitle executor --concurrency 1` pinned to core 0
     with `taskset`, the refresh run with `--engine ballista://…`;
   - `2 executors`: the same with a second executor pinned to core 1;
   a warm-up refresh on the local engine comes first (unless --no-warmup), so every timed run
   reads a warm page cache;
3. checks that every run stored the same members (a digest of the sorted
   (segment_id, customer_id) pairs read with `kitle sql`);
4. prints wall time, the coordinator's peak RSS and each node's peak RSS, and each cluster run's
   time as a ratio of the local run's (the cluster's overhead on this machine).

Only the standard library. Linux: peak RSS is read from /proc/PID/status (VmHWM) for the nodes
and from wait4's rusage for the coordinator; `taskset` comes from util-linux.
"""

import argparse
import glob
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port(pair=False):
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not pair:
            return port
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def wait_port(port, what, log, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not listen on port {port}; its log:\n{open(log).read()}")


def peak_rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def timed(cmd, env):
    """Runs cmd; (wall seconds, peak RSS MiB, stdout)."""
    start = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - start
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err}")
    return wall, usage.ru_maxrss / 1024, out


def members_digest(args, env):
    out = subprocess.run(
        [args.kitle, "sql", "--format", "csv",
         "SELECT segment_id, customer_id FROM memberships ORDER BY segment_id, customer_id"],
        env=env, check=True, capture_output=True, text=True).stdout
    return hashlib.sha256(out.encode()).hexdigest()[:16], out.count("\n") - 1


class Cluster:
    def __init__(self, args, env, cores, logs):
        self.nodes = []
        port = free_port()
        self.engine = f"ballista://127.0.0.1:{port}"
        log = os.path.join(logs, "scheduler.log")
        self.start([args.kitle, "scheduler", "--listen", f"127.0.0.1:{port}"], env, log, "scheduler")
        wait_port(port, "the scheduler", log)
        for i, core in enumerate(cores):
            flight = free_port(pair=True)
            log = os.path.join(logs, f"executor-{i + 1}.log")
            cmd = ["taskset", "-c", str(core), args.kitle, "executor",
                   "--scheduler", f"127.0.0.1:{port}", "--listen", f"127.0.0.1:{flight}",
                   "--concurrency", "1", "--work-dir", os.path.join(logs, f"work-{i + 1}")]
            self.start(cmd, env, log, f"executor {i + 1} (core {core})")
            wait_port(flight, f"executor {i + 1}", log)
        # Give the executors a heartbeat to register.
        time.sleep(2)

    def start(self, cmd, env, log, name):
        out = open(log, "w")
        self.nodes.append((name, subprocess.Popen(cmd, env=env, stdout=out, stderr=out)))

    def peaks(self):
        return {name: peak_rss_mib(p.pid) for name, p in self.nodes}

    def stop(self):
        for _, p in self.nodes:
            p.kill()
            p.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kitle", required=True, help="the kitle binary (a release build)")
    parser.add_argument("--store", required=True, help="a local folder for the shop")
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--end", default="2026-03-31")
    parser.add_argument("--as-of", default="2026-03-31T18:00:00Z")
    parser.add_argument("--skip-generate", action="store_true")
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip the warm-up refresh (the page cache already holds the store)")
    args = parser.parse_args()

    env = dict(os.environ, KITLE_STORE=args.store, KITLE_LOG="warn")
    env.pop("KITLE_ENGINE", None)
    if not args.skip_generate:
        subprocess.run([args.kitle, "generate", "--customers", str(args.customers), "--days",
                        str(args.days), "--end", args.end, "--overwrite"], env=env, check=True)
        files = sorted(glob.glob(os.path.join(REPO, "queries/segments/*.json")))
        subprocess.run([args.kitle, "segment", "put", *files], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    events = sum(os.path.getsize(f) for f in glob.glob(os.path.join(args.store, "events/**/*.parquet"), recursive=True))
    print(f"store {args.store}: {events / 2**20:.0f} MiB of event files")

    refresh = [args.kitle, "refresh", "--as-of", args.as_of, "--json"]
    if not args.no_warmup:
        timed(refresh, env)  # warm-up: the page cache holds the store afterwards
    results = []
    wall, rss, out = timed(refresh, env)
    results.append(("local", wall, rss, {}, members_digest(args, env)))
    for cores in ([0], [0, 1]):
        with tempfile.TemporaryDirectory() as logs:
            cluster = Cluster(args, env, cores, logs)
            try:
                wall, rss, out = timed(refresh + ["--engine", cluster.engine], env)
                assert json.loads(out)["engine"] == cluster.engine, out
                peaks = cluster.peaks()
            finally:
                cluster.stop()
        name = f"{len(cores)} executor" + ("s" if len(cores) > 1 else "")
        results.append((name, wall, rss, peaks, members_digest(args, env)))

    base = results[0][1]
    digests = {r[4] for r in results}
    print(f"\n{'engine':<12} {'wall s':>8} {'× local':>8} {'coordinator MiB':>16}  nodes' peak RSS MiB")
    for name, wall, rss, peaks, (digest, rows) in results:
        nodes = ", ".join(f"{n}: {v:.0f}" for n, v in peaks.items() if v is not None)
        print(f"{name:<12} {wall:>8.2f} {wall / base:>8.2f} {rss:>16.0f}  {nodes}")
    if len(digests) != 1:
        sys.exit(f"the runs stored different members: {sorted(digests)}")
    print(f"\nevery run stored the same {results[0][4][1]} memberships (digest {results[0][4][0]})")


if __name__ == "__main__":
    main()
