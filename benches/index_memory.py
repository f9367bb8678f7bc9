#!/usr/bin/env python3
"""Memory of the service's membership index: N customers × 100 segments.

    python3 benches/index_memory.py --customers 1000000 --days 30 --store /tmp/kitle-bench-index

1. generates a shop into --store when it has no customers (`kitle generate`);
2. puts 100 segments: the 33 ready-made ones three times (ids suffixed -1, -2, -3) and one that
   holds every customer (the densest case);
3. refreshes them all in one run (`kitle refresh`), timing it;
4. starts `kitle serve`, waits until it answers, and reads the index's own estimate
   (`kitle_index_bytes`, `kitle_index_customers` in /metrics) and the process's resident memory
   (VmRSS, VmHWM from /proc), before and after 10 000 lookups;
5. prints one JSON document (and writes it to --out when given).

The claim it checks: 1M customers × 100 segments fit well under 1 GiB.
Only the standard library; the kitle binary: cargo build --release -p kitle.
"""

import argparse
import glob
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(binary, store, *args):
    r = subprocess.run([binary, "--store", store, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"kitle {' '.join(args)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r.stdout


def suffixed(node, copy):
    """The condition with every segment reference pointing at the same copy."""
    if isinstance(node, dict):
        return {k: (f"{v}-{copy}" if k == "segment" and isinstance(v, str) else suffixed(v, copy))
                for k, v in node.items()}
    if isinstance(node, list):
        return [suffixed(v, copy) for v in node]
    return node


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def metric(text, name):
    m = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default="/tmp/kitle-bench-index")
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--kitle", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/kitle-target")),
        "release", "kitle"))
    p.add_argument("--out")
    args = p.parse_args()
    kitle = args.kitle
    if not os.path.exists(kitle):
        sys.exit(f"{kitle} is missing: cargo build --release -p kitle")
    os.makedirs(args.store, exist_ok=True)

    if not os.path.isdir(os.path.join(args.store, "customers")):
        t = time.time()
        run(kitle, args.store, "generate", "--customers", str(args.customers), "--days",
            str(args.days))
        print(f"generated in {time.time() - t:.1f} s", file=sys.stderr)

    with tempfile.TemporaryDirectory() as work:
        files = []
        for path in sorted(glob.glob(os.path.join(REPO, "queries", "segments", "*.json"))):
            doc = json.load(open(path))
            for copy in (1, 2, 3):
                d = dict(doc, id=f"{doc['id']}-{copy}", refresh="manual",
                         condition=suffixed(doc["condition"], copy))
                out = os.path.join(work, f"{d['id']}.json")
                json.dump(d, open(out, "w"), ensure_ascii=False)
                files.append(out)
        everyone = os.path.join(work, "everyone.json")
        json.dump({"id": "everyone", "condition": {"attribute": "customer_id", "op": "is_set"}},
                  open(everyone, "w"))
        files.append(everyone)
        run(kitle, args.store, "segment", "put", *files)
    segments = json.loads(run(kitle, args.store, "--json", "segment", "list"))["segments"]
    t = time.time()
    run(kitle, args.store, "refresh")
    refresh_s = time.time() - t
    segments = json.loads(run(kitle, args.store, "--json", "segment", "list"))["segments"]
    memberships = sum(s["size"] or 0 for s in segments)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    t = time.time()
    server = subprocess.Popen([kitle, "--store", args.store, "serve", "--listen",
                               f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True,
                              env=dict(os.environ, KITLE_LOG="warn"))
    try:
        server.stdout.readline()  # "listening on …": the index is loaded
        load_s = time.time() - t
        metrics = urllib.request.urlopen(base + "/metrics").read().decode()
        rss_loaded = proc_kib(server.pid, "VmRSS")
        customers = [l.split(",")[0] for l in run(
            kitle, args.store, "members", "everyone", "--format", "csv").splitlines()[1:]]
        rng = random.Random(1)
        ids = [s["id"] for s in segments]
        for _ in range(10_000):
            c = urllib.parse.quote(rng.choice(customers), safe="")
            urllib.request.urlopen(f"{base}/v1/customers/{c}/segments").read()
        result = {
            "customers": args.customers,
            "segments": len(ids),
            "memberships": memberships,
            "refresh_s": round(refresh_s, 1),
            "serve_load_s": round(load_s, 1),
            "index_bytes": metric(metrics, "kitle_index_bytes"),
            "index_customers": metric(metrics, "kitle_index_customers"),
            "rss_loaded_mib": round(rss_loaded / 1024, 1),
            "rss_after_lookups_mib": round(proc_kib(server.pid, "VmRSS") / 1024, 1),
            "peak_rss_mib": round(proc_kib(server.pid, "VmHWM") / 1024, 1),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps(result, indent=2))
    if args.out:
        json.dump(result, open(args.out, "w"), indent=2)


if __name__ == "__main__":
    main()
