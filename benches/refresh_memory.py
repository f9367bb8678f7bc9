#!/usr/bin/env python3
"""Memory of a refresh under `refresh_memory_limit_mb`.

    python3 benches/refresh_memory.py --customers 100000 --days 30 \\
        --store /tmp/kitle-memory --kitle ~/.cache/kitle-target/debug/kitle --limits 0,512,128,32,8

1. generates the shop with `kitle generate` (unless the store already has one) and stores the
   ready-made segments (`kitle segment put queries/segments/*.json`);
2. runs `kitle refresh --as-of T --json` as a child process once per limit (0: no limit, the
   default), with `KITLE_REFRESH_MEMORY_LIMIT_MB`, and records its exit code, peak resident
   memory (getrusage of the child) and wall time; a refresh that fails must say which key to
   change; one that succeeds must give the same sizes as the unlimited run;
3. prints one line per limit, and the slack (peak RSS minus the limit) of the runs that stayed
   within their pool.

Only the standard library. Each refresh runs in a fresh Python child so that `ru_maxrss` is the
refresh's own peak.
"""

import argparse
import glob
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MEASURE = r"""
import json, resource, subprocess, sys, time
started = time.time()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"exit": p.returncode, "peak_mib": peak, "seconds": time.time() - started,
                  "stdout": p.stdout, "stderr": p.stderr}))
"""


def run(kitle, store, args, env=None):
    out = subprocess.run([kitle, "--store", store, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"kitle {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--store", default="/tmp/kitle-memory")
    parser.add_argument("--kitle", default=os.path.expanduser("~/.cache/kitle-target/debug/kitle"))
    parser.add_argument("--limits", default="0,512,128,32,8", help="MiB; 0 is no limit")
    parser.add_argument("--as-of", default="2025-11-30T12:00:00Z")
    a = parser.parse_args()

    if not os.path.exists(os.path.join(a.store, "customers")):
        run(a.kitle, a.store, ["generate", "--customers", str(a.customers), "--days", str(a.days),
                               "--end", a.as_of[:10]])
    segments = sorted(glob.glob(os.path.join(REPO, "queries/segments/*.json")))
    run(a.kitle, a.store, ["segment", "put", *segments])

    baseline = None
    rows = []
    for limit in [int(x) for x in a.limits.split(",")]:
        env = dict(os.environ)
        if limit > 0:
            env["KITLE_REFRESH_MEMORY_LIMIT_MB"] = str(limit)
        else:
            env["KITLE_REFRESH_MEMORY_LIMIT_MB"] = str(1 << 20)  # 1 TiB: no effective pool
        child = subprocess.run([sys.executable, "-c", MEASURE, a.kitle, "--store", a.store, "--json",
                                "refresh", "--as-of", a.as_of], capture_output=True, text=True, env=env)
        m = json.loads(child.stdout)
        if m["exit"] == 0:
            sizes = {s["id"]: s["size"] for s in json.loads(m["stdout"])["segments"]}
            if baseline is None:
                baseline = sizes
            same = sizes == baseline
            outcome = "ok" + ("" if same else " BUT DIFFERENT SIZES")
        else:
            last = m["stderr"].strip().splitlines()[-1] if m["stderr"].strip() else ""
            names_key = "refresh_memory_limit_mb" in m["stderr"]
            outcome = f"failed (exit {m['exit']}, names the key: {names_key}): {last[:160]}"
        rows.append((limit, m["peak_mib"], m["seconds"], outcome))
        print(f"limit {limit if limit else 'none':>6} MiB  peak RSS {m['peak_mib']:7.0f} MiB  "
              f"{m['seconds']:6.1f} s  {outcome}", flush=True)
    within = [(l, p) for l, p, _, o in rows if l > 0 and o.startswith("ok")]
    for limit, peak in within:
        print(f"slack at {limit} MiB: peak RSS − limit = {peak - limit:.0f} MiB")


if __name__ == "__main__":
    main()
