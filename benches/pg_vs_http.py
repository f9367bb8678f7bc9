#!/usr/bin/env python3
"""Large results three ways: psycopg over the PostgreSQL protocol, `POST /v1/sql` as Arrow, and
`kitle sql`, in the same run, on the same store.

    python3 benches/pg_vs_http.py --customers 1000000 --days 90 --store /tmp/kitle-bench-1m

1. makes sure the store holds a refreshed shop (`kitle generate`, `kitle segment put
   queries/segments/*.json`, `kitle refresh`, each only when missing);
2. starts `kitle serve --pg-listen` on free ports of 127.0.0.1 with limits that let the whole
   `memberships` table through (`sql_max_rows` large, a long time limit, a large memory pool);
3. for each query — the whole `memberships` table, and an aggregate over `events` — and each
   way, --rounds times: the time to the first row, the total time and rows per second:
   - psycopg, a server-side cursor (`DECLARE`/`FETCH`, --page rows a page), text and binary;
   - psycopg, a plain `execute` + `fetchall` (the result in one piece, under the row cap);
   - `POST /v1/sql` with `Accept: application/vnd.apache.arrow.stream`, read with pyarrow;
   - `kitle sql QUERY --format csv` (a new process that opens the store each time);
4. prints the median of each, and checks that every way returned the same number of rows.

Needs the release binary (`cargo build --release -p kitle`), Python's psycopg 3 and pyarrow.
"""

import argparse
import glob
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import psycopg
import pyarrow.ipc

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

QUERIES = {
    "memberships (whole table)": "SELECT segment_id, customer_id, since FROM memberships",
    "events aggregate": "SELECT event_type, date, count(*) AS n, sum(amount) AS revenue, "
                        "count(DISTINCT customer_id) AS customers FROM events GROUP BY 1, 2",
    # The same without the distinct count, whose per-group hash sets dominate the one above
    # (the engine's time, equal over every way), so that the ways' own costs show.
    "events aggregate, no DISTINCT": "SELECT event_type, date, count(*) AS n, "
                                     "sum(amount) AS revenue FROM events GROUP BY 1, 2",
}


def kitle(binary, store, *args):
    r = subprocess.run([binary, "--store", store, *args], capture_output=True)
    if r.returncode != 0:
        sys.exit(f"kitle {' '.join(args)} failed: {r.stderr.decode(errors='replace')[-3000:]}")
    return r


def prepare(binary, store, customers, days):
    if not glob.glob(os.path.join(store, "customers", "*.parquet")):
        t0 = time.perf_counter()
        kitle(binary, store, "generate", "--customers", str(customers), "--days", str(days))
        print(f"generated   {customers} customers, {days} days in {time.perf_counter() - t0:.0f} s")
    segs = json.loads(kitle(binary, store, "--json", "segment", "list").stdout)
    segs = segs["segments"] if isinstance(segs, dict) else segs
    if not segs:
        kitle(binary, store, "segment", "put",
              *sorted(glob.glob(os.path.join(REPO, "queries", "segments", "*.json"))))
        segs = json.loads(kitle(binary, store, "--json", "segment", "list").stdout)
        segs = segs["segments"] if isinstance(segs, dict) else segs
    if any(s.get("last_as_of") is None for s in segs):
        t0 = time.perf_counter()
        kitle(binary, store, "refresh")
        print(f"refreshed   {len(segs)} segments in {time.perf_counter() - t0:.0f} s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(binary, store, work):
    config = os.path.join(work, "kitle.toml")
    with open(config, "w") as f:
        f.write("[serve]\nscheduler = false\nsql_max_rows = 1000000000\n"
                "sql_timeout_seconds = 3600\nsql_memory_limit_mb = 8192\n")
    http, pg = free_port(), free_port()
    proc = subprocess.Popen(
        [binary, "--store", store, "--config", config, "serve", "--listen", f"127.0.0.1:{http}",
         "--pg-listen", f"127.0.0.1:{pg}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "KITLE_LOG": "error"})
    for line in proc.stdout:
        if line.startswith(b"listening on http://"):
            break
    else:
        sys.exit("kitle serve did not start")
    return proc, f"http://127.0.0.1:{http}", f"host=127.0.0.1 port={pg} dbname=kitle user=bench"


def psycopg_cursor(dsn, sql, page, binary):
    t0 = time.perf_counter()
    first = None
    rows = 0
    with psycopg.connect(dsn) as conn:
        with conn.cursor(name="bench", binary=binary) as cur:
            cur.execute(sql)
            while True:
                batch = cur.fetchmany(page)
                if first is None:
                    first = time.perf_counter() - t0
                if not batch:
                    break
                rows += len(batch)
        conn.commit()
    return first, time.perf_counter() - t0, rows


def psycopg_plain(dsn, sql, binary):
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.cursor(binary=binary) as cur:
            cur.execute(sql)
            first = time.perf_counter() - t0
            rows = len(cur.fetchall())
    return first, time.perf_counter() - t0, rows


def http_arrow(base, sql):
    t0 = time.perf_counter()
    request = urllib.request.Request(
        base + "/v1/sql", data=json.dumps({"sql": sql}).encode(),
        headers={"content-type": "application/json",
                 "accept": "application/vnd.apache.arrow.stream"})
    with urllib.request.urlopen(request, timeout=3600) as response:
        reader = pyarrow.ipc.open_stream(response)
        first = None
        rows = 0
        for batch in reader:
            if first is None:
                first = time.perf_counter() - t0
            rows += batch.num_rows
    return first or time.perf_counter() - t0, time.perf_counter() - t0, rows


def cli(binary, store, sql):
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary, "--store", store, "sql", sql, "--format", "csv"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdout.readline()  # header
    first = None
    rows = 0
    for _ in proc.stdout:
        if first is None:
            first = time.perf_counter() - t0
        rows += 1
    proc.wait()
    return first or time.perf_counter() - t0, time.perf_counter() - t0, rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--store", default="/tmp/kitle-bench-1m")
    p.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "release", "kitle"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--page", type=int, default=50_000)
    p.add_argument("--only", action="append", default=[],
                   help="run only the queries whose name contains this text (repeatable)")
    args = p.parse_args()
    prepare(args.binary, args.store, args.customers, args.days)
    with tempfile.TemporaryDirectory() as work:
        proc, base, dsn = serve(args.binary, args.store, work)
        try:
            ways = {
                "psycopg cursor, text": lambda q: psycopg_cursor(dsn, q, args.page, False),
                "psycopg cursor, binary": lambda q: psycopg_cursor(dsn, q, args.page, True),
                "psycopg plain, binary": lambda q: psycopg_plain(dsn, q, True),
                "/v1/sql Arrow": lambda q: http_arrow(base, q),
                "kitle sql (csv)": lambda q: cli(args.binary, args.store, q),
            }
            for name, sql in QUERIES.items():
                if args.only and not any(o in name for o in args.only):
                    continue
                print(f"\n{name}: {sql}")
                print(f"{'way':26} {'rows':>10} {'first row s':>12} {'total s':>9} {'rows/s':>12}")
                counts = set()
                for way, run in ways.items():
                    runs = [run(sql) for _ in range(args.rounds)]
                    first = statistics.median(r[0] for r in runs)
                    total = statistics.median(r[1] for r in runs)
                    rows = runs[0][2]
                    counts.update(r[2] for r in runs)
                    print(f"{way:26} {rows:>10} {first:>12.3f} {total:>9.3f} {rows / total:>12,.0f}")
                if len(counts) != 1:
                    sys.exit(f"the ways disagree on the number of rows: {counts}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


if __name__ == "__main__":
    main()
