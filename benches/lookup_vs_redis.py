#!/usr/bin/env python3
"""Membership lookups: the kitle HTTP service against Redis SISMEMBER on the same data.

    python3 benches/lookup_vs_redis.py --customers 200000 --days 30 \\
        --store /tmp/kitle-bench-lookup --duration 60 --connections 16

1. makes sure the store holds a refreshed shop: `kitle generate` when it has no customers,
   `kitle segment put queries/segments/*.json` when it has no segments, `kitle refresh` when a
   segment was never refreshed;
2. reads every segment's members (`kitle members ID --format csv`) and the customers, and draws
   --lookups keys (`segment_id<TAB>customer_id`), about half members and half non-members;
3. starts `redis-server` on a free port of 127.0.0.1 (no persistence), loads every segment as
   the set `seg:{id}` with `redis-cli --pipe`, checks SCARD against the segment's size;
4. starts `kitle serve` on a free port, waits for GET /healthz, checks a sample of lookups on
   both servers against the expected answers;
5. runs `bench-lookup` (benches/src/lookup.rs, a closed-loop generator in a separate process,
   one keep-alive connection per thread) against kitle, then against Redis, with the same keys,
   connections and duration; optionally `wrk` on one fixed member URL as a cross-check;
6. prints both results, the throughput ratio kitle/Redis, the latencies, the errors, and checks
   that both servers found members in the proportion the keys hold.

Only the standard library. Needs `redis-server` and `redis-cli` (apt-get install -y
redis-server), the kitle binary (cargo build --release -p kitle) and bench-lookup
(cargo build --release -p kitle-benches --bin bench-lookup); `wrk` is optional.
"""

import argparse
import csv
import glob
import io
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Failure(Exception):
    """A step failed; the message says which and why."""


# --------------------------------------------------------------------------------------------
# kitle CLI
# --------------------------------------------------------------------------------------------


def kitle(binary, store, *args):
    argv = [binary, "--store", store, *args]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise Failure(f"`{' '.join(argv)}` failed ({r.returncode}):\n"
                      f"{r.stderr.decode(errors='replace')[-4000:]}")
    return r


def read_csv(data, column):
    rows = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
    if rows.fieldnames is None or column not in rows.fieldnames:
        raise Failure(f"CSV without a {column!r} column: {data[:200]!r}")
    return [row[column] for row in rows]


def segments(binary, store):
    r = kitle(binary, store, "--json", "segment", "list")
    doc = json.loads(r.stdout)
    return doc["segments"] if isinstance(doc, dict) else doc


def prepare_store(binary, store, customers, days, seg_dir):
    if not glob.glob(os.path.join(store, "customers", "*.parquet")):
        t0 = time.perf_counter()
        kitle(binary, store, "generate", "--customers", str(customers), "--days", str(days))
        print(f"generated        {customers} customers, {days} days in "
              f"{time.perf_counter() - t0:.1f} s")
    segs = segments(binary, store)
    if not segs:
        files = sorted(glob.glob(os.path.join(seg_dir, "*.json")))
        if not files:
            raise Failure(f"no segment definitions in {seg_dir}")
        kitle(binary, store, "segment", "put", *files)
        print(f"stored           {len(files)} segment definitions from {seg_dir}")
        segs = segments(binary, store)
    if any(s.get("last_as_of") is None for s in segs):
        t0 = time.perf_counter()
        kitle(binary, store, "refresh")
        print(f"refreshed        {len(segs)} segments in {time.perf_counter() - t0:.1f} s")
        segs = segments(binary, store)
    return segs


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


def usable(customer_id):
    return customer_id and not any(c in customer_id for c in "\t\r\n")


def draw_keys(members, customers, n, seed):
    """n lookups (segment, customer, expected answer): about half members, half not."""
    rng = random.Random(seed)
    with_members = sorted(s for s, m in members.items() if m)
    all_segments = sorted(members)
    member_lists = {s: sorted(members[s]) for s in with_members}
    keys = []
    for i in range(n):
        if i % 2 == 0 and with_members:
            s = rng.choice(with_members)
            keys.append((s, rng.choice(member_lists[s]), True))
            continue
        s = rng.choice(all_segments)
        for _ in range(100):
            c = rng.choice(customers)
            if c not in members[s]:
                keys.append((s, c, False))
                break
        else:  # a segment holding (almost) every customer: a member lookup instead
            keys.append((s, rng.choice(member_lists[s]), True))
    rng.shuffle(keys)
    return keys


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc, name, timeout=30):
    """SIGTERM, then wait; returns the exit code (raises when it does not exit)."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise Failure(f"{name} did not exit within {timeout} s of SIGTERM (killed)")


def tail(path, n=3000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def resp(*parts):
    out = [f"*{len(parts)}\r\n".encode()]
    for p in parts:
        b = p.encode("utf-8") if isinstance(p, str) else p
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def redis_cli(port, *args):
    r = subprocess.run(["redis-cli", "-p", str(port), *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise Failure(f"redis-cli {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode("utf-8", errors="replace").strip()


def start_redis(work):
    for tool in ("redis-server", "redis-cli"):
        if not shutil.which(tool):
            raise Failure(f"{tool} not found (install it: apt-get install -y redis-server)")
    port = free_port()
    log = os.path.join(work, "redis.log")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", work, "--logfile", log],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise Failure(f"redis-server exited ({proc.returncode}):\n{tail(log)}")
        r = subprocess.run(["redis-cli", "-p", str(port), "PING"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
        if r.stdout.strip() == b"PONG":
            return proc, port
        if time.monotonic() > deadline:
            stop(proc, "redis-server")
            raise Failure(f"redis-server on port {port} did not answer PING in 30 s")
        time.sleep(0.1)


def load_redis(port, members, sizes):
    chunks = [resp("FLUSHALL")]
    for s in sorted(members):
        ids = sorted(members[s])
        for i in range(0, len(ids), 1000):
            chunks.append(resp("SADD", f"seg:{s}", *ids[i:i + 1000]))
    data = b"".join(chunks)
    r = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0 or "errors: 0," not in out:
        raise Failure(f"redis-cli --pipe failed ({r.returncode}): {out}"
                      f"{r.stderr.decode(errors='replace')}")
    for s in sorted(members):
        card = int(redis_cli(port, "SCARD", f"seg:{s}").replace("(integer) ", ""))
        if card != sizes[s] or card != len(members[s]):
            raise Failure(f"Redis SCARD seg:{s} = {card}, the segment holds {sizes[s]} "
                          f"({len(members[s])} read)")
    return len(data)


def http_get(url, token=None, timeout=5):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def start_kitle(binary, store, work, token):
    port = free_port()
    out_path, err_path = os.path.join(work, "serve.out"), os.path.join(work, "serve.err")
    # The scheduler off: segments with a cadence would otherwise be refreshed (a full scan)
    # while the load runs, and the memberships would drift from those loaded into Redis.
    config = os.path.join(work, "kitle.toml")
    with open(config, "w") as f:
        f.write("[serve]\nscheduler = false\n")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([binary, "--store", store, "--config", config, "serve",
                                 "--listen", f"127.0.0.1:{port}"], stdout=out, stderr=err)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise Failure(f"kitle serve exited ({proc.returncode}) before answering:\n"
                          f"{tail(out_path)}{tail(err_path)}")
        try:
            status, _ = http_get(f"{base}/healthz", token, timeout=2)
            if status == 200:
                break
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            stop(proc, "kitle serve")
            raise Failure(f"kitle serve did not answer GET /healthz with 200 in 60 s:\n"
                          f"{tail(out_path)}{tail(err_path)}")
        time.sleep(0.2)
    line = next((ln for ln in tail(out_path).splitlines() if "listening on" in ln), None)
    return proc, port, base, line


def member_url(base, segment, customer):
    def q(s):
        return urllib.parse.quote(s, safe="-_.~")

    return f"{base}/v1/segments/{q(segment)}/members/{q(customer)}"


def check_sample(keys, kitle_base, redis_port, token, n=50):
    """The first n keys on both servers against the expected answers."""
    problems = []
    for s, c, expected in keys[:n]:
        status, body = http_get(member_url(kitle_base, s, c), token)
        if status != 200:
            problems.append(f"  kitle {s} {c!r}: HTTP {status} {body[:200]!r}")
        else:
            doc = json.loads(body)
            if doc.get("member") is not expected:
                problems.append(f"  kitle {s} {c!r}: {body[:200]!r}, expected member={expected}")
            elif expected and not doc.get("since"):
                problems.append(f"  kitle {s} {c!r}: a member without since: {body[:200]!r}")
        got = redis_cli(redis_port, "SISMEMBER", f"seg:{s}", c).replace("(integer) ", "")
        if got != ("1" if expected else "0"):
            problems.append(f"  redis {s} {c!r}: {got}, expected {int(expected)}")
    if problems:
        raise Failure("the servers do not give the expected answers:\n" + "\n".join(problems))


# --------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------


def run_bench(bench, protocol, addr, keys_path, args, work):
    argv = [bench, "--protocol", protocol, "--addr", addr, "--keys", keys_path,
            "--connections", str(args.connections), "--duration", str(args.duration),
            "--warmup", str(args.warmup), "--seed", str(args.seed)]
    if protocol == "http" and args.token:
        argv += ["--token", args.token]
    err_path = os.path.join(work, f"bench-{protocol}.err")
    with open(err_path, "wb") as err:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=err)
    lines = r.stdout.decode(errors="replace").strip().splitlines()
    if r.returncode != 0 or not lines:
        raise Failure(f"bench-lookup --protocol {protocol} failed ({r.returncode}):\n"
                      f"{r.stdout.decode(errors='replace')}{tail(err_path)}")
    return json.loads(lines[-1])


def run_wrk(url, args):
    threads = max(1, min(2, args.connections))
    argv = ["wrk", f"-t{threads}", f"-c{args.connections}", f"-d{int(math.ceil(args.duration))}s",
            "--latency"]
    if args.token:
        argv += ["-H", f"Authorization: Bearer {args.token}"]
    r = subprocess.run(argv + [url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = r.stdout.decode(errors="replace")
    res = {"url": url, "exit": r.returncode, "output": text}
    for line in text.splitlines():
        f = line.split()
        if line.startswith("Requests/sec:"):
            res["rps"] = float(f[1])
        elif f[:1] == ["Latency"] and len(f) >= 2 and "avg" not in res:
            res["avg"] = f[1]
            res["max"] = f[3] if len(f) > 3 else None
        elif f[:1] in (["50%"], ["99%"]):
            res[f"p{f[0][:-1]}"] = f[1]
        elif "Non-2xx or 3xx responses" in line:
            res["non_2xx"] = int(f[-1])
        elif line.strip().startswith("Socket errors"):
            res["socket_errors"] = line.strip()
    return res


def proportion_check(results, expected_fraction):
    """Whether both servers found members in the proportion the keys hold."""
    lines, ok = [], True
    for name, r in results.items():
        n = r["requests"]
        frac = r["members_found"] / n if n else float("nan")
        # the workers draw keys pseudo-randomly: allow for sampling noise
        tol = 0.01 + 4 * math.sqrt(expected_fraction * (1 - expected_fraction) / max(n, 1))
        good = n > 0 and abs(frac - expected_fraction) <= tol
        ok &= good
        lines.append(f"{name:<6} members_found {r['members_found']} of {n} = {frac:.4f} "
                     f"(keys hold {expected_fraction:.4f}, ±{tol:.4f}) {'ok' if good else 'DIFFERS'}")
    return ok, lines


# --------------------------------------------------------------------------------------------


def benchmark(args):
    binary = os.path.expanduser(args.kitle)
    if not os.path.exists(binary):
        raise Failure(f"no kitle binary at {binary} (build it: cargo build --release -p kitle)")
    bench = os.path.expanduser(args.bench_lookup)
    if not os.path.exists(bench):
        raise Failure(f"no bench-lookup binary at {bench} (build it: cargo build --release "
                      f"-p kitle-benches --bin bench-lookup)")
    store = os.path.abspath(args.store)
    seg_dir = args.segments
    if not os.path.isdir(seg_dir) and os.path.isdir(os.path.join(REPO, seg_dir)):
        seg_dir = os.path.join(REPO, seg_dir)
    print(f"kitle            {binary}")
    print(f"bench-lookup     {bench}")
    print(f"store            {store}")
    print(f"machine          {os.cpu_count()} cores")

    segs = prepare_store(binary, store, args.customers, args.days, seg_dir)
    sizes = {s["id"]: s["size"] for s in segs}
    members = {}
    for s in sorted(sizes):
        r = kitle(binary, store, "members", s, "--format", "csv")
        members[s] = set(read_csv(r.stdout, "customer_id"))
        if len(members[s]) != sizes[s]:
            raise Failure(f"segment {s}: `kitle members` gave {len(members[s])} ids, "
                          f"`segment list` says {sizes[s]}")
    r = kitle(binary, store, "sql", "SELECT customer_id FROM customers", "--format", "csv")
    customers = sorted({c for c in read_csv(r.stdout, "customer_id") if usable(c)})
    if not customers:
        raise Failure("the store holds no customers")
    skipped = {s: {c for c in m if not usable(c)} for s, m in members.items()}
    for s, bad in skipped.items():
        if bad:
            print(f"note             {s}: {len(bad)} ids with a tab or line break left out of "
                  f"the keys")
    total = sum(sizes.values())
    print(f"data             {len(customers)} customers, {len(sizes)} segments, "
          f"{total} memberships")

    work = tempfile.mkdtemp(prefix="kitle-bench-lookup-")
    print(f"work folder      {work} (keys, server logs; removed after a clean run)")
    keys = draw_keys({s: m - skipped[s] for s, m in members.items()}, customers, args.lookups,
                     args.seed)
    keys_path = os.path.join(work, "keys.tsv")
    with open(keys_path, "w", encoding="utf-8", newline="\n") as f:
        for s, c, _ in keys:
            f.write(f"{s}\t{c}\n")
    expected_fraction = sum(e for _, _, e in keys) / len(keys)
    print(f"keys             {len(keys)} lookups in {keys_path} "
          f"({expected_fraction:.1%} members)")

    redis = kitle_proc = None
    result = {"settings": {"customers": len(customers), "segments": len(sizes),
                           "memberships": total, "lookups": len(keys),
                           "connections": args.connections, "duration_s": args.duration,
                           "warmup_s": args.warmup, "cores": os.cpu_count(),
                           "member_fraction": expected_fraction}}
    try:
        redis, redis_port = start_redis(work)
        t0 = time.perf_counter()
        loaded = load_redis(redis_port, members, sizes)
        print(f"redis            127.0.0.1:{redis_port}, {total} members loaded "
              f"({loaded / 1e6:.1f} MB of RESP) in {time.perf_counter() - t0:.1f} s, "
              f"SCARD checked")
        kitle_proc, kitle_port, base, line = start_kitle(binary, store, work, args.token)
        print(f"kitle serve      {base} ({line.strip() if line else 'no `listening on` line'})")
        check_sample(keys, base, redis_port, args.token)
        print("sample           50 lookups give the expected answers on both servers")

        print(f"load             {args.connections} connections, {args.duration} s "
              f"(+{args.warmup} s warm-up) each")
        k = run_bench(bench, "http", f"127.0.0.1:{kitle_port}", keys_path, args, work)
        print(json.dumps(k))
        wrk = None
        if not args.no_wrk and shutil.which("wrk"):
            s, c, _ = next(x for x in keys if x[2])
            wrk = run_wrk(member_url(base, s, c), args)
            print(f"wrk (one member URL): {wrk.get('rps', '?')} requests/s, p50 "
                  f"{wrk.get('p50', '?')}, p99 {wrk.get('p99', '?')}, non-2xx "
                  f"{wrk.get('non_2xx', 0)}{', ' + wrk['socket_errors'] if 'socket_errors' in wrk else ''}")
        elif not args.no_wrk:
            print("wrk              not installed, cross-check skipped (apt-get install -y wrk)")
        code = stop(kitle_proc, "kitle serve")
        kitle_proc = None
        if code not in (0, -signal.SIGTERM):
            raise Failure(f"kitle serve exited with {code} after SIGTERM:\n"
                          f"{tail(os.path.join(work, 'serve.err'))}")
        rd = run_bench(bench, "redis", f"127.0.0.1:{redis_port}", keys_path, args, work)
        print(json.dumps(rd))
        stop(redis, "redis-server")
        redis = None
    finally:
        for proc, name in ((kitle_proc, "kitle serve"), (redis, "redis-server")):
            if proc is not None:
                try:
                    stop(proc, name)
                except Failure as e:
                    print(e, file=sys.stderr)

    ratio = k["rps"] / rd["rps"] if rd["rps"] else float("nan")
    ok, prop_lines = proportion_check({"kitle": k, "redis": rd}, expected_fraction)
    print()
    print(f"{'':<8} {'requests/s':>12} {'p50 µs':>8} {'p90 µs':>8} {'p99 µs':>8} "
          f"{'p99.9 µs':>9} {'max µs':>8} {'errors':>7}")
    for name, r in (("kitle", k), ("redis", rd)):
        print(f"{name:<8} {r['rps']:>12,.0f} {r['p50_us']:>8} {r['p90_us']:>8} {r['p99_us']:>8} "
              f"{r['p999_us']:>9} {r['max_us']:>8} {r['errors']:>7}")
    print()
    print(f"throughput ratio kitle/redis  {ratio:.3f}")
    print(f"goal p99 < 2 ms               {'met' if k['p99_us'] < 2000 else 'NOT met'} "
          f"(kitle p99 {k['p99_us'] / 1000:.2f} ms)")
    print(f"goal >= 0.5x Redis            {'met' if ratio >= 0.5 else 'NOT met'} "
          f"({ratio:.2f}x)")
    for line in prop_lines:
        print(line)
    result.update({"kitle": k, "redis": rd, "ratio_kitle_redis": ratio, "wrk": wrk,
                   "members_agree": ok,
                   "goal": {"p99_under_2ms": k["p99_us"] < 2000, "half_of_redis": ratio >= 0.5}})
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
        print(f"written          {args.out}")
    failed = []
    if not ok:
        failed.append("the servers' members_found do not match the keys' proportion")
    if k["errors"] or rd["errors"]:
        failed.append(f"errors under load: kitle {k['errors']}, redis {rd['errors']}")
    if failed:
        print("VERIFICATION FAILED: " + "; ".join(failed))
        return 1
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/kitle-target")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default="/tmp/kitle-bench-lookup",
                    help="store folder; generated, defined and refreshed when it lacks data")
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--duration", type=float, default=60, help="measured seconds per server")
    ap.add_argument("--warmup", type=float, default=2, help="unmeasured seconds first")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--lookups", type=int, default=200_000, help="how many keys to draw")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--token", help="bearer token for the kitle service, when it wants one")
    ap.add_argument("--kitle", default=os.path.join(target, "release", "kitle"),
                    help="the kitle binary (default $CARGO_TARGET_DIR/release/kitle)")
    ap.add_argument("--bench-lookup", default=os.path.join(target, "release", "bench-lookup"),
                    help="the load generator (default $CARGO_TARGET_DIR/release/bench-lookup)")
    ap.add_argument("--segments", default="queries/segments", help="folder of definitions")
    ap.add_argument("--no-wrk", action="store_true", help="skip the wrk cross-check")
    ap.add_argument("--out", help="write all results as JSON to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (keys, logs)")
    args = ap.parse_args()
    if args.connections < 1 or args.duration <= 0 or args.lookups < 1:
        ap.error("--connections, --duration and --lookups must be positive")
    try:
        return benchmark(args)
    except Failure as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
