#!/usr/bin/env python3
"""Refresh benchmark: kitle against DuckDB over the same Parquet files.

    python3 benches/refresh_vs_duckdb.py --customers 1000000 --days 90 \\
        --store /tmp/kitle-bench --kitle ~/.cache/kitle-target/release/kitle

1. generates the shop with `kitle generate` (unless --skip-generate) and counts its events;
2. stores the ready-made segments and the bench's own (`queries/segments`, `benches/segments`:
   `distinct` and `active_days` measures) and times `kitle refresh --full --as-of T --json`
   with no partial state present, as a child process (wall time, peak RSS);
3. translates the same definitions into DuckDB SQL with the semantics of
   ../shared/spec/segment-language.md and ../shared/spec/data-contract.md (events once per
   event_id, customers as of as_of, ts <= as_of, the universe) and runs them over the same
   Parquet files in a child Python process each: (a) one query per segment, (b) one combined
   query (one aggregation over events with FILTER aggregates, one boolean column per segment);
4. checks that both DuckDB variants give exactly kitle's stored memberships, segment by segment;
5. prints the figures;
6. (unless --skip-incremental) the incremental figures: a refresh at `<end>T11:00:00Z` that
   computes every partial state, one with nothing new; an hour of events (1/24 of a day, fresh
   ids) lands in a new file of today's partition, and at 12:00 the segments whose cadence is
   `hourly` are refreshed (what `kitle serve` runs at that hour: the hourly figure), then every
   segment; the next day's first hour lands in a new partition (today now closed) and every
   segment is refreshed at 01:00. Each is compared with `kitle refresh --full` at the same
   instant, members equal, with the states' report (mode, days reused and computed, MB and
   rows read) and the store requests. The landed files are removed afterwards.
7. with --s3, the same incremental steps over moto (an S3-compatible server on 127.0.0.1,
   filled with the store): kitle's counts of requests and bytes beside the server's.
8. with --duckdb-store DIR, everything above runs on a copy of the store rewritten by DuckDB
   (one zstd file per partition): another writer's row groups, encodings and statistics.

Only the standard library, `duckdb` and `pyarrow`. Developer check of the translator:
`--conformance ../shared/conformance/cases.json` runs every scenario against a copy of the
conformance store and compares with `expected` (and with kitle when --kitle exists).
"""

import argparse
import datetime as dt
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
CONTRACT_DECIMALS = {"amount", "total_order_amount"}

# --------------------------------------------------------------------------------------------
# Instants, durations, literals
# --------------------------------------------------------------------------------------------

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RFC3339_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})$"
)
DURATION_RE = re.compile(r"^([1-9][0-9]{0,5})([mhdw])$")
DURATION_US = {"m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000, "w": 604_800_000_000}


def zone(name):
    if name == "UTC":
        return UTC
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def instant_us(text, tz_name):
    """An instant of the language (a bare date is midnight in the store's zone) in µs."""
    if DATE_RE.match(text):
        d = dt.date.fromisoformat(text)
        local = dt.datetime(d.year, d.month, d.day, tzinfo=zone(tz_name))
        return (local.astimezone(UTC) - EPOCH) // dt.timedelta(microseconds=1)
    m = RFC3339_RE.match(text)
    if not m:
        raise ValueError(f"not an instant: {text!r}")
    date, hh, mm, ss, frac, off = m.groups()
    frac = (frac or "").ljust(6, "0")
    off = "+00:00" if off == "Z" else off
    t = dt.datetime.fromisoformat(f"{date}T{hh}:{mm}:{ss}.{frac}{off}")
    return (t - EPOCH) // dt.timedelta(microseconds=1)


def duration_us(text):
    m = DURATION_RE.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return int(m.group(1)) * DURATION_US[m.group(2)]


def utc_text(us):
    return (EPOCH + dt.timedelta(microseconds=us)).strftime("%Y-%m-%d %H:%M:%S.%f")


def ts_lit(us):
    return f"TIMESTAMPTZ '{utc_text(us)}+00'"


def date_lit(us):
    return f"DATE '{(EPOCH + dt.timedelta(microseconds=us)).date().isoformat()}'"


def str_lit(s):
    return "'" + s.replace("'", "''") + "'"


def ident(name):
    return '"' + name.replace('"', '""') + '"'


def num_lit(v):
    """An exact numeric literal: DuckDB reads `37.535` as DECIMAL(5,3), compared exactly."""
    if isinstance(v, bool):
        raise ValueError("a boolean is no number")
    if isinstance(v, int):
        return str(v) if abs(v) < 10**38 else f"CAST('{v}' AS DOUBLE)"
    if isinstance(v, float):
        v = Decimal(repr(v))
    text = format(v, "f")
    digits = len(text.replace("-", "").replace(".", "").lstrip("0"))
    if digits > 38:
        return f"CAST('{text}' AS DOUBLE)"
    return text


def unicode_lower(s):
    # Python's str.lower is Unicode's default full lower-casing, as Rust's to_lowercase.
    return s.lower()


def lower_col(c):
    # DuckDB's lower() uses the simple mapping (İ -> i); the language uses the full one (i̇).
    return f"lower(replace({c}, 'İ', 'i̇'))"


# --------------------------------------------------------------------------------------------
# The translator
# --------------------------------------------------------------------------------------------


def kind_of(duck_type):
    t = duck_type.upper()
    if t.endswith("[]"):
        return "list"
    if t.startswith("TIMESTAMP") or t == "DATE":
        return "time"
    if t in ("VARCHAR", "TEXT", "STRING") or t.startswith("VARCHAR"):
        return "text"
    if t == "BOOLEAN":
        return "bool"
    return "number"


def norm_expr(name, duck_type, tz, keep_dates=False):
    """The column as the contract reads it: instants as TIMESTAMPTZ (µs, ns truncated), a date
    as midnight of its day in the store's zone, contract decimals as DECIMAL(18,2)."""
    c = ident(name)
    t = duck_type.upper()
    if t == "TIMESTAMP WITH TIME ZONE":
        return c
    if t == "TIMESTAMP_NS":
        return f"CAST(make_timestamp(epoch_ns({c}) // 1000) AS TIMESTAMPTZ)"
    if t.startswith("TIMESTAMP"):
        return f"CAST(CAST({c} AS TIMESTAMP) AS TIMESTAMPTZ)"
    if t == "DATE" and not keep_dates:
        return f"timezone({str_lit(tz)}, CAST({c} AS TIMESTAMP))"
    if name in CONTRACT_DECIMALS and t != "DECIMAL(18,2)":
        return f"CAST({c} AS DECIMAL(18,2))"
    return c


def source(files, hive=False, extra=""):
    if isinstance(files, str):
        arg = str_lit(files)
    else:
        arg = "[" + ", ".join(str_lit(f) for f in files) + "]"
    opts = "union_by_name=true"
    if hive:
        opts = "hive_partitioning=true, " + opts
    return f"read_parquet({arg}, {opts}{extra})"


class Translator:
    """Compiles a set of segment definitions into DuckDB SQL with the language's semantics."""

    def __init__(self, defs, as_of_us, tz, cust_schema, ev_schema, cust_files, ev_files):
        self.defs = defs
        self.as_of = as_of_us
        self.tz = tz
        self.cust_schema = cust_schema  # name -> duckdb type
        self.ev_schema = ev_schema
        self.cust_files = cust_files
        self.ev_files = ev_files

    # ---- one query ----------------------------------------------------------------------

    def compile(self, ids, combined):
        self.aggs = {}  # key -> (name, sql)
        self.ranks = {}  # key -> (name, measure sql, nullable)
        self.nfbs = {}  # key -> (name, sql of the CTE)
        self.sqls = {}  # key -> (name, sql of the CTE)
        self.seqs = {}  # key -> (name, sql of the CTE)
        self.cust_cols = set()
        self.ev_cols = set()
        self.types = set()
        self.bounds = []  # (lower µs or None, upper µs or None) per event filter
        exprs = [(i, self.cond(self.defs[i]["condition"], (i,))) for i in ids]

        ctes = []
        if self.sqls:
            ctes += self.sql_tables()
        ctes.append(("k_cust", self.universe()))
        if self.aggs:
            ctes.append(("k_raw", self.raw_scan()))
            cols = ["customer_id", "event_id"] + [
                f"any_value({ident(c)}) AS {ident(c)}"
                for c in ["event_type", "ts"] + sorted(self.ev_cols - {"event_type", "ts"})
            ]
            ctes.append(
                ("k_ev", f"SELECT {', '.join(cols)} FROM k_raw GROUP BY customer_id, event_id")
            )
            aggs = ", ".join(f"{sql} AS {name}" for name, sql in self.aggs.values())
            ctes.append(("k_agg", f"SELECT customer_id, {aggs} FROM k_ev GROUP BY customer_id"))
        for name, sql in self.nfbs.values():
            ctes.append((name, sql))
        for name, sql in self.sqls.values():
            ctes.append((name, sql))
        for name, sql in self.seqs.values():
            ctes.append((name, sql))

        base = ["c.*"]
        base += [f"a.{name}" for name, _ in self.aggs.values()]
        base += [
            f"c.customer_id IN (SELECT customer_id FROM {name}) AS {name}_hit"
            for name, _ in list(self.nfbs.values()) + list(self.sqls.values())
            + list(self.seqs.values())
        ]
        join = " LEFT JOIN k_agg a ON a.customer_id = c.customer_id" if self.aggs else ""
        ctes.append(("k_base", f"SELECT {', '.join(base)} FROM k_cust c{join}"))
        if self.ranks:
            wins = []
            for name, m, nullable in self.ranks.values():
                part = f"PARTITION BY ({m}) IS NULL " if nullable else ""
                w = f"percent_rank() OVER ({part}ORDER BY {m})"
                wins.append(f"CASE WHEN ({m}) IS NOT NULL THEN {w} END AS {name}" if nullable else f"{w} AS {name}")
            ctes.append(("k_final", f"SELECT *, {', '.join(wins)} FROM k_base"))
        else:
            ctes.append(("k_final", "SELECT * FROM k_base"))

        with_ = "WITH " + ",\n".join(f"{n} AS (\n  {s}\n)" for n, s in ctes)
        if combined:
            cols = ", ".join(f"{e} AS {ident(i)}" for i, e in exprs)
            return f"{with_}\nSELECT customer_id, {cols} FROM k_final"
        assert len(exprs) == 1
        return f"{with_}\nSELECT customer_id FROM k_final WHERE {exprs[0][1]}"

    def universe(self):
        cols = ["customer_id"] + [
            f"{norm_expr(c, self.cust_schema[c], self.tz)} AS {ident(c)}"
            for c in sorted(self.cust_cols - {"customer_id"})
        ]
        upd = norm_expr("updated_at", self.cust_schema["updated_at"], self.tz)
        return (
            f"SELECT {', '.join(cols)} FROM "
            f"{source(self.cust_files, extra=', filename=true, file_row_number=true')}\n"
            f"  WHERE customer_id IS NOT NULL AND {upd} IS NOT NULL AND {upd} <= {ts_lit(self.as_of)}\n"
            f"  QUALIFY row_number() OVER (PARTITION BY customer_id "
            f"ORDER BY {upd} DESC, filename DESC, file_row_number DESC) = 1"
        )

    def ev_col(self, name):
        return norm_expr(name, self.ev_schema[name], self.tz)

    def scan_filter(self, types, lower, upper, ts_expr):
        """Row filters of a scan: not-null contract columns, types, as_of, date partitions."""
        f = [
            "customer_id IS NOT NULL",
            "event_id IS NOT NULL",
            "event_type IS NOT NULL",
            "ts IS NOT NULL",
            f"event_type IN ({', '.join(str_lit(t) for t in sorted(types))})",
            f"{ts_expr} <= {ts_lit(self.as_of)}",
            f"date <= {date_lit(self.as_of)}",
        ]
        if lower is not None:
            f.append(f"{ts_expr} >= {ts_lit(lower)}")
            f.append(f"date >= {date_lit(lower)}")
        if upper is not None and upper < self.as_of:
            f.append(f"date <= {date_lit(upper)}")
        return " AND ".join(f)

    def raw_scan(self):
        cols = ["customer_id", "event_id", "event_type"] + [
            f"{self.ev_col(c)} AS {ident(c)}"
            for c in ["ts"] + sorted(self.ev_cols - {"event_type", "ts", "customer_id", "event_id"})
        ]
        lows = [b[0] for b in self.bounds]
        ups = [b[1] for b in self.bounds]
        lower = None if any(x is None for x in lows) else min(lows)
        upper = None if any(x is None for x in ups) else max(ups)
        where = self.scan_filter(self.types, lower, upper, self.ev_col("ts"))
        return f"SELECT {', '.join(cols)} FROM {source(self.ev_files, hive=True)}\n  WHERE {where}"

    def sql_tables(self):
        """`events` and `customers` as a `sql` condition sees them."""
        cust = ", ".join(
            f"{norm_expr(c, t, self.tz, keep_dates=True)} AS {ident(c)}"
            for c, t in self.cust_schema.items()
        )
        upd = norm_expr("updated_at", self.cust_schema["updated_at"], self.tz)
        customers = (
            f"SELECT {cust} FROM {source(self.cust_files, extra=', filename=true, file_row_number=true')}\n"
            f"  WHERE customer_id IS NOT NULL AND {upd} IS NOT NULL AND {upd} <= {ts_lit(self.as_of)}\n"
            f"  QUALIFY row_number() OVER (PARTITION BY customer_id "
            f"ORDER BY {upd} DESC, filename DESC, file_row_number DESC) = 1"
        )
        ev = ", ".join(
            f"{norm_expr(c, t, self.tz, keep_dates=True)} AS {ident(c)}"
            for c, t in self.ev_schema.items()
            if c != "date"
        )
        ts = self.ev_col("ts")
        events = (
            f"SELECT {ev}, strftime(date, '%Y-%m-%d') AS date FROM {source(self.ev_files, hive=True)}\n"
            f"  WHERE event_id IS NOT NULL AND event_type IS NOT NULL AND ts IS NOT NULL "
            f"AND {ts} <= {ts_lit(self.as_of)}\n"
            f"  QUALIFY row_number() OVER (PARTITION BY event_id) = 1"
        )
        return [("customers", customers), ("events", events)]

    # ---- conditions ---------------------------------------------------------------------

    def cond(self, c, path):
        if "all" in c:
            return "(" + " AND ".join(self.cond(x, path) for x in c["all"]) + ")"
        if "any" in c:
            return "(" + " OR ".join(self.cond(x, path) for x in c["any"]) + ")"
        if "not" in c:
            return f"(NOT {self.cond(c['not'], path)})"
        if "segment" in c:
            ref = c["segment"]
            if ref in path:
                raise ValueError(f"cycle through {ref}")
            return self.cond(self.defs[ref]["condition"], path + (ref,))
        if "bucket" in c:
            b = c["bucket"]
            h = (
                f"(CAST('0x' || substr(sha256({str_lit(b['salt'] + ':')} || customer_id), 1, 16) "
                f"AS UBIGINT) % 100)"
            )
            return f"({h} >= {int(b['from'])} AND {h} < {int(b['to'])})"
        if "sql" in c:
            key = c["sql"]
            if key not in self.sqls:
                name = f"k_sql{len(self.sqls)}"
                self.sqls[key] = (name, f"SELECT customer_id FROM ({c['sql']}) WHERE customer_id IS NOT NULL")
            return f"{self.sqls[key][0]}_hit"
        if "attribute" in c:
            col = c["attribute"]
            self.cust_cols.add(col)
            kind = kind_of(self.cust_schema[col])
            return self.leaf(ident(col), kind, c["op"], c.get("value"), c.get("ignore_case", False))
        if "event" in c:
            return self.event(c)
        if "sequence" in c:
            return self.sequence(c)
        raise ValueError(f"unknown condition {c}")

    def sequence(self, c):
        """A sequence as window passes over its own scan: `st_k`, on a row serving step k, is the
        latest start of a chain of the first k steps ending at that row (the latest `st_(k-1)`
        of a row strictly earlier, `RANGE … 1 MICROSECOND PRECEDING`, within `within` of it)."""
        key = json.dumps(c, sort_keys=True)
        if key in self.seqs:
            return f"{self.seqs[key][0]}_hit"
        name = f"k_sq{len(self.seqs)}"
        steps = c["sequence"]
        within = duration_us(c["within"]) if "within" in c else None
        ts = self.ev_col("ts")
        types, cols, serves = set(), {"customer_id": "customer_id", "ts": f"{ts} AS ts",
                                      "event_type": "event_type"}, []
        for k, step in enumerate(steps):
            ev = step["event"] if isinstance(step["event"], list) else [step["event"]]
            types.update(ev)
            parts = [f"event_type IN ({', '.join(str_lit(t) for t in ev)})"]
            for w in step.get("where") or []:
                col = w["property"]
                cols[col] = f"{self.ev_col(col)} AS {ident(col)}"
                kind = kind_of(self.ev_schema[col])
                parts.append(self.leaf(ident(col), kind, w["op"], w.get("value"), w.get("ignore_case", False)))
            serves.append(" AND ".join(parts))
        period = c.get("period")
        lower = None
        if period in (None, "all_time"):
            pass
        elif "last" in period:
            lower = self.as_of - duration_us(period["last"])
            serves[0] += f" AND ts > {ts_lit(lower)}"
        elif "before_last" in period:
            serves[0] += f" AND ts <= {ts_lit(self.as_of - duration_us(period['before_last']))}"
        elif "since" in period:
            lower = instant_us(period["since"], self.tz)
            serves[0] += f" AND ts >= {ts_lit(lower)}"
        elif "between" in period:
            lower = instant_us(period["between"][0], self.tz)
            upper = instant_us(period["between"][1], self.tz)
            serves[0] += f" AND ts >= {ts_lit(lower)} AND ts < {ts_lit(upper)}"
        scan = (
            f"SELECT {', '.join(cols.values())} FROM {source(self.ev_files, hive=True)} "
            f"WHERE {self.scan_filter(types, lower, None, ts)}"
        )
        flags = ", ".join(f"coalesce({e}, false) AS s{k}" for k, e in enumerate(serves))
        sql = f"SELECT customer_id, ts, {flags}, CASE WHEN coalesce({serves[0]}, false) THEN ts END AS st0 FROM ({scan}) r"
        for k in range(1, len(steps)):
            prev = (
                f"max(st{k - 1}) OVER (PARTITION BY customer_id ORDER BY ts "
                f"RANGE BETWEEN UNBOUNDED PRECEDING AND INTERVAL 1 MICROSECOND PRECEDING)"
            )
            ok = f"p{k} IS NOT NULL" + (f" AND ts - p{k} <= to_microseconds({within})" if within is not None else "")
            sql = (
                f"SELECT *, CASE WHEN s{k} AND {ok} THEN p{k} END AS st{k} FROM "
                f"(SELECT *, {prev} AS p{k} FROM ({sql}) q{k}) w{k}"
            )
        last = len(steps) - 1
        self.seqs[key] = (name, f"SELECT DISTINCT customer_id FROM ({sql}) z WHERE st{last} IS NOT NULL")
        return f"{name}_hit"

    def leaf(self, col, kind, op, value, ignore_case=False):
        """An attribute/property operator: true or false, never null."""
        if op == "is_set":
            e = f"len({col}) > 0" if kind == "list" else f"{col} IS NOT NULL"
            return f"coalesce({e}, false)"
        if op == "is_not_set":
            e = f"len({col}) > 0" if kind == "list" else f"{col} IS NOT NULL"
            return f"(NOT coalesce({e}, false))"
        if kind == "list":
            lst = "[" + ", ".join(str_lit(v) for v in value) + "]"
            if op == "has_any":
                return f"coalesce(list_has_any({col}, {lst}), false)"
            if op == "has_all":
                return f"coalesce(list_has_all({col}, {lst}), false)"
            if op == "has_none":
                return f"(NOT coalesce(list_has_any({col}, {lst}), false))"
            raise ValueError(f"list op {op}")
        if kind == "text":
            vals = value if isinstance(value, list) else [value]
            if op == "domain_in":
                dom = f"(CASE WHEN strpos({col}, '@') > 0 THEN {lower_col(f'string_split({col}, {chr(39)}@{chr(39)})[-1]')} END)"
                parts = []
                for v in vals:
                    v = unicode_lower(v)
                    parts.append(f"{dom} = {str_lit(v)} OR ends_with({dom}, {str_lit('.' + v)})")
                return f"coalesce(({' OR '.join(parts)}), false)"
            c = col
            if ignore_case:
                c = lower_col(col)
                vals = [unicode_lower(v) for v in vals]
            lits = [str_lit(v) for v in vals]
            pos = {
                "eq": lambda: f"{c} IN ({', '.join(lits)})",
                "neq": lambda: f"{c} IN ({', '.join(lits)})",
                "in": lambda: f"{c} IN ({', '.join(lits)})",
                "not_in": lambda: f"{c} IN ({', '.join(lits)})",
                "contains": lambda: " OR ".join(f"contains({c}, {l})" for l in lits),
                "not_contains": lambda: " OR ".join(f"contains({c}, {l})" for l in lits),
                "starts_with": lambda: " OR ".join(f"starts_with({c}, {l})" for l in lits),
                "ends_with": lambda: " OR ".join(f"ends_with({c}, {l})" for l in lits),
            }[op]()
            if op in ("neq", "not_in", "not_contains"):
                return f"coalesce(NOT ({pos}), false)"
            return f"coalesce(({pos}), false)"
        if kind == "bool":
            return f"coalesce({col} = {'true' if value else 'false'}, false)"
        return f"coalesce({self.compare(col, kind, op, value)}, false)"

    def compare(self, m, kind, op, value):
        """`m op value` for numbers or instants (may be null; callers coalesce)."""
        if kind == "time":
            if op == "within_last":
                d = duration_us(value)
                return f"({m} > {ts_lit(self.as_of - d)} AND {m} <= {ts_lit(self.as_of)})"
            if op == "older_than":
                return f"({m} <= {ts_lit(self.as_of - duration_us(value))})"
            lit = lambda v: ts_lit(instant_us(v, self.tz))  # noqa: E731
        else:
            lit = num_lit
        if op == "between":
            return f"({m} >= {lit(value[0])} AND {m} <= {lit(value[1])})"
        sym = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        return f"({m} {sym} {lit(value)})"

    def event_filter(self, types, where, period):
        """The FILTER of an event condition, over k_ev's columns; notes its date bounds."""
        types = types if isinstance(types, list) else [types]
        self.types.update(types)
        parts = [f"event_type IN ({', '.join(str_lit(t) for t in types)})"]
        for w in where or []:
            col = w["property"]
            self.ev_cols.add(col)
            kind = kind_of(self.ev_schema[col])
            parts.append(self.leaf(ident(col), kind, w["op"], w.get("value"), w.get("ignore_case", False)))
        lower = upper = None
        if period in (None, "all_time"):
            pass
        elif "last" in period:
            lower = self.as_of - duration_us(period["last"])
            parts.append(f"ts > {ts_lit(lower)}")
        elif "before_last" in period:
            upper = self.as_of - duration_us(period["before_last"])
            parts.append(f"ts <= {ts_lit(upper)}")
        elif "since" in period:
            lower = instant_us(period["since"], self.tz)
            parts.append(f"ts >= {ts_lit(lower)}")
        elif "between" in period:
            lower = instant_us(period["between"][0], self.tz)
            upper = instant_us(period["between"][1], self.tz)
            parts.append(f"ts >= {ts_lit(lower)} AND ts < {ts_lit(upper)}")
        else:
            raise ValueError(f"period {period}")
        return " AND ".join(parts), lower, upper

    def agg(self, sql):
        if sql not in self.aggs:
            self.aggs[sql] = (f"k_a{len(self.aggs)}", sql)
        return self.aggs[sql][0]

    def event(self, c):
        filt, lower, upper = self.event_filter(c["event"], c.get("where"), c.get("period"))
        self.bounds.append((lower, upper))
        self.ev_cols.add("ts")
        if "not_followed_by" in c:
            return self.not_followed_by(c, filt, lower)
        measure = c.get("measure", "count")
        op = c.get("op", "gte")
        value = c.get("value", 1)
        F = f"FILTER (WHERE {filt})"
        nullable = False
        kind = "number"
        avg = None
        if measure == "count":
            m = f"coalesce({self.agg(f'count(*) {F}')}, 0)"
        elif measure == "active_days":
            day = "CAST(ts AS DATE)" if self.tz == "UTC" else f"CAST(timezone({str_lit(self.tz)}, ts) AS DATE)"
            m = f"coalesce({self.agg(f'count(DISTINCT {day}) {F}')}, 0)"
        elif measure in ("first_time", "last_time"):
            fn = "min" if measure == "first_time" else "max"
            m = self.agg(f"{fn}(ts) {F}")
            nullable, kind = True, "time"
        else:
            (fn, col), = measure.items()
            self.ev_cols.add(col)
            q = ident(col)
            if fn == "sum":
                m = f"coalesce({self.agg(f'sum({q}) {F}')}, 0)"
            elif fn == "distinct":
                m = f"coalesce({self.agg(f'count(DISTINCT {q}) {F}')}, 0)"
            elif fn in ("min", "max"):
                m = self.agg(f"{fn}({q}) {F}")
                nullable = True
            elif fn == "avg":
                s = self.agg(f"sum({q}) {F}")
                n = self.agg(f"count({q}) {F}")
                avg = (s, n)
                # for ranking only: exact comparisons below use s and n
                m = f"(CASE WHEN {n} > 0 THEN CAST({s} AS DOUBLE) / {n} END)"
                nullable = True
            else:
                raise ValueError(f"measure {measure}")
        if op in ("top_percent", "bottom_percent"):
            key = m
            if key not in self.ranks:
                self.ranks[key] = (f"k_r{len(self.ranks)}", m, nullable)
            r = self.ranks[key][0]
            x = float(value) / 100.0
            if op == "top_percent":
                return f"coalesce({r} >= CAST('{repr(1.0 - x)}' AS DOUBLE), false)"
            return f"coalesce({r} <= CAST('{repr(x)}' AS DOUBLE), false)"
        if avg is not None:
            s, n = avg
            if op == "between":
                e = f"({s} >= {num_lit(value[0])} * {n} AND {s} <= {num_lit(value[1])} * {n})"
            else:
                sym = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
                e = f"({s} {sym} {num_lit(value)} * {n})"
            return f"coalesce({n} > 0 AND {e}, false)"
        return f"coalesce({self.compare(m, kind, op, value)}, false)"

    def not_followed_by(self, c, filt, lower):
        nf = c["not_followed_by"]
        last = self.agg(f"max(ts) FILTER (WHERE {filt})")
        within = duration_us(nf["within"])
        key = json.dumps([last, nf], sort_keys=True)
        if key not in self.nfbs:
            name = f"k_nf{len(self.nfbs)}"
            types = nf["event"] if isinstance(nf["event"], list) else [nf["event"]]
            ts = self.ev_col("ts")
            cols = {"customer_id": "customer_id", "ts": f"{ts} AS ts"}
            conds = []
            for w in nf.get("where") or []:
                col = w["property"]
                cols[col] = f"{self.ev_col(col)} AS {ident(col)}"
                kind = kind_of(self.ev_schema[col])
                conds.append(self.leaf(ident(col), kind, w["op"], w.get("value"), w.get("ignore_case", False)))
            scan = (
                f"SELECT {', '.join(cols.values())} FROM {source(self.ev_files, hive=True)} "
                f"WHERE {self.scan_filter(types, lower, None, ts)}"
            )
            wf = (" AND " + " AND ".join(conds)) if conds else ""
            sql = (
                f"SELECT DISTINCT a.customer_id FROM k_agg a JOIN ({scan}) f "
                f"ON f.customer_id = a.customer_id AND f.ts > a.{last} "
                f"AND f.ts <= a.{last} + to_microseconds({within})\n"
                f"  WHERE a.{last} IS NOT NULL{wf}"
            )
            self.nfbs[key] = (name, sql)
        name = self.nfbs[key][0]
        return (
            f"(coalesce({last} + to_microseconds({within}) <= {ts_lit(self.as_of)}, false) "
            f"AND NOT {name}_hit)"
        )


def duck_connect(threads=None):
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def arrow_table(con, sql):
    rel = con.sql(sql)
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
    return fetch()


def describe(con, sql):
    return {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {sql}").fetchall()}


def build_queries(defs, as_of_us, tz, cust_files, ev_files):
    """(per-segment queries, combined query) for all of defs."""
    con = duck_connect()
    cust_schema = describe(con, source(cust_files))
    ev_schema = describe(con, source(ev_files, hive=True))
    con.close()
    tr = Translator(defs, as_of_us, tz, cust_schema, ev_schema, cust_files, ev_files)
    ids = sorted(defs)
    per = {i: tr.compile([i], combined=False) for i in ids}
    combined = tr.compile(ids, combined=True)
    return per, combined, tr


# --------------------------------------------------------------------------------------------
# The DuckDB child process
# --------------------------------------------------------------------------------------------


def vm_hwm_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def worker(job_path):
    with open(job_path) as f:
        job = json.load(f)
    import pyarrow as pa
    import pyarrow.parquet as pq

    con = duck_connect(job.get("threads"))
    baseline = vm_hwm_mb()
    times = {}
    members = {}
    started = time.perf_counter()
    if job["mode"] == "per_segment":
        for sid, sql in job["queries"].items():
            t0 = time.perf_counter()
            table = arrow_table(con, sql)
            times[sid] = time.perf_counter() - t0
            members[sid] = table.column(0)
        total = sum(times.values())
    else:
        t0 = time.perf_counter()
        table = arrow_table(con, job["combined"])
        total = time.perf_counter() - t0
    wall = time.perf_counter() - started
    peak = vm_hwm_mb()
    if job["mode"] != "per_segment":
        import pyarrow.compute as pc

        for sid in job["ids"]:
            members[sid] = pc.filter(table.column(0), table.column(sid))
    parts = [
        pa.table({"segment_id": pa.array([sid] * len(ids), pa.string()),
                  "customer_id": ids.cast(pa.string())})
        for sid, ids in members.items()
    ]
    pq.write_table(pa.concat_tables(parts), job["out"])
    print(json.dumps({"seconds": total, "wall": wall, "times": times, "baseline_mb": baseline,
                      "peak_mb_after_queries": peak, "threads": con.execute(
                          "SELECT current_setting('threads')").fetchone()[0]}))


# --------------------------------------------------------------------------------------------
# Children with measured peak memory
# --------------------------------------------------------------------------------------------


def mem_available_mb():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_measured(argv, stdout_path, stderr_path=None, guard_mb=0, env=None):
    """Runs argv; returns (exit code, wall seconds, peak RSS in MiB from wait4, note).

    With guard_mb, the child is killed when the machine's available memory falls below it,
    so that a runaway child cannot bring the OOM killer down on other processes."""
    import threading

    note = {}
    with open(stdout_path, "wb") as out, open(stderr_path or os.devnull, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=err,
                             env=None if env is None else {**os.environ, **env})
        done = threading.Event()

        def watch():
            while not done.wait(0.25):
                avail = mem_available_mb()
                if guard_mb and avail is not None and avail < guard_mb:
                    note["guard"] = (time.perf_counter() - t0, avail)
                    try:
                        os.kill(p.pid, 9)
                    except ProcessLookupError:
                        pass
                    return

        w = threading.Thread(target=watch, daemon=True)
        w.start()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        w.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, wall, usage.ru_maxrss / 1024, note


def kitle(binary, store, *args):
    argv = [binary, *args, "--store", store]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit(f"`{' '.join(argv)}` failed ({r.returncode}):\n{r.stderr.decode(errors='replace')}")
    return r


def kitle_memberships(binary, store):
    import io

    import pyarrow.parquet as pq

    r = kitle(binary, store, "sql", "SELECT segment_id, customer_id FROM memberships", "--format", "parquet")
    t = pq.read_table(io.BytesIO(r.stdout))
    out = {}
    for s, c in zip(t.column("segment_id").to_pylist(), t.column("customer_id").to_pylist()):
        out.setdefault(s, set()).add(c)
    return out


def read_members(path):
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    out = {}
    for s, c in zip(t.column("segment_id").to_pylist(), t.column("customer_id").to_pylist()):
        out.setdefault(s, set()).add(c)
    return out


def diff(name_a, a, name_b, b, ids):
    """Lines describing every difference; empty when equal."""
    lines = []
    for sid in ids:
        x, y = a.get(sid, set()), b.get(sid, set())
        if x != y:
            only_a, only_b = sorted(x - y), sorted(y - x)
            lines.append(
                f"  {sid}: {name_a} {len(x)}, {name_b} {len(y)}; only {name_a}: {len(only_a)} "
                f"{only_a[:5]}; only {name_b}: {len(only_b)} {only_b[:5]}"
            )
    return lines


def run_duckdb(mode, ids, per, combined, workdir, threads, guard_mb):
    job = {
        "mode": mode,
        "ids": ids,
        "queries": per if mode == "per_segment" else None,
        "combined": combined if mode == "combined" else None,
        "out": os.path.join(workdir, f"duckdb-{mode}.parquet"),
        "threads": threads,
    }
    job_path = os.path.join(workdir, f"duckdb-{mode}.json")
    with open(job_path, "w") as f:
        json.dump(job, f)
    out_path = os.path.join(workdir, f"duckdb-{mode}.out")
    err_path = os.path.join(workdir, f"duckdb-{mode}.err")
    code, wall, peak, note = run_measured(
        [sys.executable, os.path.abspath(__file__), "--worker", job_path], out_path, err_path,
        guard_mb,
    )
    if note.get("guard"):
        sys.exit(f"DuckDB ({mode}) stopped by the memory guard after {note['guard'][0]:.0f} s "
                 f"at {peak:.0f} MB")
    if code != 0:
        with open(err_path) as f:
            sys.exit(f"DuckDB ({mode}) failed ({code}):\n{f.read()}")
    with open(out_path) as f:
        res = json.loads(f.read().strip().splitlines()[-1])
    res["peak_mb"] = peak
    res["process_wall"] = wall
    res["members"] = read_members(job["out"])
    return res


def load_defs(paths):
    defs = {}
    for p in paths:
        with open(p, encoding="utf-8") as f:
            d = json.load(f, parse_float=Decimal)
        for one in d if isinstance(d, list) else [d]:
            defs[one["id"]] = one
    return defs


# --------------------------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------------------------


def warm(store):
    """Reads every Parquet file once so that whichever engine runs first is not penalised."""
    total = 0
    for p in glob.glob(os.path.join(store, "customers", "*.parquet")) + glob.glob(
        os.path.join(store, "events", "*", "*.parquet")
    ):
        with open(p, "rb") as f:
            while chunk := f.read(1 << 24):
                total += len(chunk)
    return total


def rewrite_with_duckdb(store, target):
    """Writes a copy of `store`'s contract tables into `target` with DuckDB (`COPY … TO` with
    `PARTITION_BY (date)`, zstd): one file per `date=` partition with DuckDB's own row groups,
    encodings and statistics, and the customers in one file: a store written by another tool,
    as the issue asks the full refresh to be measured on too. kitle's own folders are not
    copied (a fresh store: no memberships, no states)."""
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(os.path.join(target, "customers"))
    con = duck_connect(2)
    con.execute(f"""
        COPY (SELECT * FROM read_parquet('{os.path.join(store, "customers", "*.parquet")}'))
        TO '{os.path.join(target, "customers", "customers.parquet")}'
        (FORMAT parquet, COMPRESSION zstd)""")
    con.execute(f"""
        COPY (SELECT * FROM read_parquet('{os.path.join(store, "events", "*", "*.parquet")}',
                                         hive_partitioning = true))
        TO '{os.path.join(target, "events")}'
        (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date))""")
    if os.path.isdir(os.path.join(store, "settings")):
        shutil.copytree(os.path.join(store, "settings"), os.path.join(target, "settings"))
    return target


def benchmark(args):
    binary = os.path.expanduser(args.kitle)
    if not os.path.exists(binary):
        sys.exit(f"no kitle binary at {binary} (build it: cargo build --release -p kitle)")
    store = os.path.abspath(args.store)
    as_of = args.as_of or f"{args.end}T23:59:59Z"
    as_of_us = instant_us(as_of, args.time_zone)
    seg_dirs = args.segments or ["queries/segments", "benches/segments"]
    seg_files = []
    for seg_dir in seg_dirs:
        if not os.path.isdir(seg_dir) and os.path.isdir(os.path.join(REPO, seg_dir)):
            seg_dir = os.path.join(REPO, seg_dir)
        found = sorted(glob.glob(os.path.join(seg_dir, "*.json")))
        if not found:
            sys.exit(f"no segment definitions in {seg_dir}")
        seg_files += found
    seg_dir = ", ".join(seg_dirs)
    defs = load_defs(seg_files)
    ids = sorted(defs)
    args.seg_files = seg_files

    print(f"kitle            {binary}")
    print(f"store            {store}")
    print(f"machine          {os.cpu_count()} cores, {mem_gib():.0f} GiB memory")
    if not args.skip_generate:
        t0 = time.perf_counter()
        kitle(binary, store, "generate", "--customers", str(args.customers), "--days", str(args.days),
              "--seed", "1", "--end", args.end, "--overwrite")
        print(f"generated        {args.customers} customers, {args.days} days to {args.end} "
              f"in {time.perf_counter() - t0:.1f} s")
    if args.duckdb_store:
        t0 = time.perf_counter()
        # In a child process: DuckDB's memory would otherwise count in the peak RSS of every
        # measured child forked from this one.
        target = os.path.abspath(args.duckdb_store)
        subprocess.run([sys.executable, "-c",
                        "import sys; sys.path.insert(0, sys.argv[1]); import refresh_vs_duckdb as b; "
                        "b.rewrite_with_duckdb(sys.argv[2], sys.argv[3])",
                        os.path.dirname(os.path.abspath(__file__)), store, target], check=True)
        store = target
        print(f"DuckDB-written   {store}: every partition rewritten by DuckDB (one zstd file "
              f"each) in {time.perf_counter() - t0:.1f} s; the figures below are over it")
    r = kitle(binary, store, "sql", "SELECT count(*) AS n FROM events", "--format", "csv")
    events = int(r.stdout.decode().strip().splitlines()[-1])
    r = kitle(binary, store, "sql", "SELECT count(*) AS n FROM customers", "--format", "csv")
    customers = int(r.stdout.decode().strip().splitlines()[-1])
    print(f"data             {customers} customers, {events} events (once per event_id)")
    print(f"as_of            {as_of}")
    print(f"segments         {len(ids)} from {seg_dir}")
    kitle(binary, store, "segment", "put", *seg_files)
    print(f"warmed           {warm(store) / 1e6:.0f} MB of Parquet read once into the page cache")

    work = tempfile.mkdtemp(prefix="kitle-bench-")
    # kitle refresh --full, with no state present: the from-scratch figure
    shutil.rmtree(os.path.join(store, "states"), ignore_errors=True)
    out_path, err_path = os.path.join(work, "refresh.json"), os.path.join(work, "refresh.err")
    code, k_secs, k_peak, note = run_measured(
        [binary, "refresh", "--full", "--as-of", as_of, "--json", "--store", store], out_path,
        err_path, args.memory_guard,
    )
    k_failed = None
    if note.get("guard"):
        k_failed = (f"stopped by the memory guard after {note['guard'][0]:.0f} s: the machine had "
                    f"{note['guard'][1]:.0f} MB left, kitle held {k_peak:.0f} MB")
    elif code != 0:
        with open(err_path, errors="replace") as f:
            k_failed = f"exit code {code} after {k_secs:.0f} s, peak RSS {k_peak:.0f} MB; stderr: {f.read()[-2000:]}"
    if k_failed:
        print(f"kitle refresh    FAILED: {k_failed}")
        sizes, k_members = {}, None
    else:
        with open(out_path) as f:
            outcome = json.load(f)
        sizes = {s["id"]: s["size"] for s in outcome.get("segments", [])}
        print(f"kitle refresh    {k_secs:.2f} s, peak RSS {k_peak:.0f} MB")
        k_members = kitle_memberships(binary, store)

    # DuckDB
    ev_glob = os.path.join(store, "events", "*", "*.parquet")
    cust_glob = os.path.join(store, "customers", "*.parquet")
    per, combined, _ = build_queries(defs, as_of_us, args.time_zone, cust_glob, ev_glob)
    with open(os.path.join(work, "duckdb-queries.sql"), "w") as f:
        for i in ids:
            f.write(f"-- {i}\n{per[i]};\n\n")
        f.write(f"-- combined\n{combined};\n")
    print(f"DuckDB SQL       {os.path.join(work, 'duckdb-queries.sql')}")
    d_per = run_duckdb("per_segment", ids, per, combined, work, args.duckdb_threads,
                       args.memory_guard)
    print(f"DuckDB per seg.  {d_per['seconds']:.2f} s, peak RSS {d_per['peak_mb']:.0f} MB "
          f"(threads {d_per['threads']})")
    d_comb = run_duckdb("combined", ids, per, combined, work, args.duckdb_threads,
                        args.memory_guard)
    print(f"DuckDB combined  {d_comb['seconds']:.2f} s, peak RSS {d_comb['peak_mb']:.0f} MB")

    # verification
    problems = []
    if k_members is not None:
        problems += diff("kitle", k_members, "duckdb-per-segment", d_per["members"], ids)
        problems += diff("kitle", k_members, "duckdb-combined", d_comb["members"], ids)
        for sid in ids:
            if sid in sizes and sizes[sid] != len(k_members.get(sid, ())):
                problems.append(f"  {sid}: refresh reported size {sizes[sid]}, memberships hold "
                                f"{len(k_members.get(sid, ()))}")
    else:
        problems += diff("duckdb-per-segment", d_per["members"], "duckdb-combined",
                         d_comb["members"], ids)
    reference = k_members if k_members is not None else d_per["members"]

    print()
    print(f"{'segment':<32} {'kitle':>9} {'duckdb':>9} {'per-seg s':>10}")
    for sid in ids:
        same = (reference.get(sid, set()) == d_per["members"].get(sid, set())
                == d_comb["members"].get(sid, set()))
        k_size = len(k_members.get(sid, ())) if k_members is not None else "-"
        print(f"{sid:<32} {k_size:>9} {len(d_per['members'].get(sid, ())):>9} "
              f"{d_per['times'][sid]:>10.2f}{'' if same else '  DIFFERS'}")
    print()
    rows = [
        ("kitle refresh (all segments, one plan)", k_secs, k_peak),
        ("DuckDB, one query per segment (sum)", d_per["seconds"], d_per["peak_mb"]),
        ("DuckDB, one combined query", d_comb["seconds"], d_comb["peak_mb"]),
    ]
    print(f"{'':<40} {'seconds':>8} {'events/s':>12} {'peak MB':>8} {'÷ kitle s':>10}")
    for i, (name, secs, peak) in enumerate(rows):
        if k_failed and i == 0:
            print(f"{name:<40} {'failed':>8} {'-':>12} {peak:>8.0f} {'-':>10}  ({k_failed.split(';')[0]})")
            continue
        ratio = "-" if k_failed else f"{secs / k_secs:.2f}"
        print(f"{name:<40} {secs:>8.2f} {events / secs:>12,.0f} {peak:>8.0f} {ratio:>10}")
    print()
    print(f"events/s = {events} events / seconds; peak MB = peak RSS of the process (MiB); "
          f"DuckDB baseline RSS before any query {d_comb['baseline_mb']:.0f} MB")
    if problems:
        print(f"VERIFICATION FAILED: {len(problems)} differences")
        print("\n".join(problems))
        return 1
    if k_failed:
        print(f"kitle failed; the two DuckDB variants agree on all {len(ids)} segments")
        return 1
    print(f"verified: both DuckDB variants give exactly kitle's members for all {len(ids)} segments")
    if not args.skip_incremental:
        hourly_ids = [i for i in ids if defs[i].get("refresh") == "hourly"]
        if incremental(args, binary, store, as_of, ids, hourly_ids, work, k_secs,
                       d_comb["seconds"]):
            return 1
        if args.s3 and s3_figures(args, binary, store, ids, hourly_ids, work):
            return 1
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def timed_refresh(binary, store, work, name, as_of, guard_mb, full=False, ids=(), env=None):
    """Runs one `kitle refresh` (of `ids`, all segments when empty) and returns (seconds,
    peak MB, its JSON outcome)."""
    out_path, err_path = os.path.join(work, f"{name}.json"), os.path.join(work, f"{name}.err")
    argv = [binary, "refresh", "--as-of", as_of, "--json", "--store", store, *ids]
    if full:
        argv.insert(2, "--full")
    code, secs, peak, _ = run_measured(argv, out_path, err_path, guard_mb, env)
    if code != 0:
        with open(err_path, errors="replace") as f:
            sys.exit(f"{name}: exit code {code}: {f.read()[-2000:]}")
    with open(out_path) as f:
        return secs, peak, json.load(f)


def land_events(store, source_day, target_day, start_us, hours, fraction, tag):
    """Writes a new file into `target_day`'s partition: `fraction` of `source_day`'s events,
    shifted to lie in the `hours` after `start_us` (epoch microseconds), with fresh event ids:
    what another system would land in an hour (or a night)."""
    con = duck_connect(2)
    src = os.path.join(store, "events", f"date={source_day}", "*.parquet")
    out_dir = os.path.join(store, "events", f"date={target_day}")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, f"landed-{tag}.parquet")
    span_us = int(hours * 3600 * 1e6)
    con.execute(f"""
        COPY (
          SELECT * REPLACE (
            event_id || '-{tag}' AS event_id,
            make_timestamptz({start_us} + 1 + (hash(event_id) % {span_us - 1})::BIGINT) AS ts)
          FROM read_parquet('{src}') USING SAMPLE {fraction * 100:.4f} PERCENT (bernoulli, 7)
        ) TO '{out}' (FORMAT parquet, COMPRESSION zstd)""")
    n = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    return out, n


def incremental(args, binary, store, as_of, ids, hourly_ids, work, full_secs, duck_secs):
    """The incremental figures: a refresh that computes every state (no state present), one
    with nothing new, then an hour of events lands in today's partition (at a mid-day
    instant): the segments whose cadence is hourly are refreshed (what `kitle serve` runs at
    that hour), then every segment; then a night lands (a new day's partition) and every
    segment is refreshed. Each is compared with `--full` at the same instant, whose members must
    be the same. Returns true when some result differs."""
    import datetime as dt

    end = dt.date.fromisoformat(args.end)
    prev = end - dt.timedelta(days=1)
    noon = dt.datetime.combine(end, dt.time(12), tzinfo=dt.timezone.utc)
    mid = (noon - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    hour = noon.strftime("%Y-%m-%dT%H:%M:%SZ")
    shutil.rmtree(os.path.join(store, "states"), ignore_errors=True)
    print()
    print("incremental refresh (partial states)")
    print(f"hourly segments  {len(hourly_ids)}: {', '.join(hourly_ids)}")
    rows = []
    problems = []

    def step(name, label, at, full=False, only=()):
        secs, peak, out = timed_refresh(binary, store, work, name, at, args.memory_guard,
                                        full=full, ids=only)
        rows.append((label, at, secs, peak, out))
        return secs

    def compare(at, only, incremental_members):
        full_members = kitle_memberships(binary, store)
        return diff("incremental", incremental_members, "full", full_members, only)

    step("backfill", "computing every state", mid)
    step("unchanged", "nothing new", mid)
    # An hour lands: events of 11:00-12:00 in today's partition (the partition already holds
    # the whole day, later than `mid`, so only the new file's rows are new to the window).
    landed, n = land_events(store, prev.isoformat(), end.isoformat(),
                            int((noon - dt.timedelta(hours=1)).timestamp() * 1e6), 1, 1 / 24,
                            "hour")
    landed_files = [landed]
    print(f"landed           {n} events in {os.path.relpath(landed, store)}")
    hourly = step("hourly-segments", f"an hour later, {len(hourly_ids)} hourly segments", hour,
                  only=hourly_ids)
    members = kitle_memberships(binary, store)
    h_full = step("hourly-segments-full", "  --full at the same instant", hour, full=True,
                  only=hourly_ids)
    problems += compare(hour, hourly_ids, members)
    # Five minutes land (1/288 of a day): the stretch goal, segments every few minutes.
    five = noon + dt.timedelta(minutes=5)
    landed, n = land_events(store, prev.isoformat(), end.isoformat(),
                            int(noon.timestamp() * 1e6), 5 / 60, 1 / 288, "five")
    landed_files.append(landed)
    print(f"landed           {n} events in {os.path.relpath(landed, store)}")
    at = five.strftime("%Y-%m-%dT%H:%M:%SZ")
    five_secs = step("five-minutes", f"5 minutes later, {len(hourly_ids)} hourly segments", at,
                     only=hourly_ids)
    members = kitle_memberships(binary, store)
    step("five-minutes-full", "  --full at the same instant", at, full=True, only=hourly_ids)
    problems += compare(at, hourly_ids, members)
    step("hourly", "5 minutes later, every segment", at)
    every_row = len(rows) - 1
    members = kitle_memberships(binary, store)
    f_secs = step("hourly-full", "  --full at the same instant", at, full=True)
    problems += compare(at, ids, members)
    # A night: the next day's first hour lands in a new partition; today is closed.
    tomorrow = end + dt.timedelta(days=1)
    night = dt.datetime.combine(tomorrow, dt.time(1), tzinfo=dt.timezone.utc)
    landed, n = land_events(store, prev.isoformat(), tomorrow.isoformat(),
                            int((night - dt.timedelta(hours=1)).timestamp() * 1e6), 1, 1 / 24,
                            "night")
    landed_files.append(landed)
    print(f"landed           {n} events in {os.path.relpath(landed, store)}")
    at = night.strftime("%Y-%m-%dT%H:%M:%SZ")
    night_hourly = step("nightly-hourly", f"the next night, {len(hourly_ids)} hourly segments",
                        at, only=hourly_ids)
    members = kitle_memberships(binary, store)
    step("nightly-hourly-full", "  --full at the same instant", at, full=True, only=hourly_ids)
    problems += compare(at, hourly_ids, members)
    step("nightly", "the next night, every segment", at)
    members = kitle_memberships(binary, store)
    step("nightly-full", "  --full at the same instant", at, full=True)
    problems += compare(at, ids, members)
    print(f"{'':<36} {'as_of':<21} {'seconds':>8} {'peak MB':>8} {'mode':<12} {'reused':>7} "
          f"{'computed':>8} {'MB read':>8} {'rows read':>11} {'requests':>9}")
    for name, at, secs, peak, out in rows:
        st = out.get("states", {})
        io = out.get("store_io", {})
        print(f"{name:<36} {at:<21} {secs:>8.2f} {peak:>8.0f} {st.get('mode', '-'):<12} "
              f"{st.get('partitions_reused', 0):>7} {st.get('partitions_recomputed', 0):>8} "
              f"{st.get('bytes_read', 0) / 1e6:>8.1f} {st.get('rows_read', 0):>11,} "
              f"{io.get('requests', 0):>9,}")
    goal = max(3.0, f_secs / 10)
    print(f"hourly segments {hourly:.2f} s (--full of them {h_full:.2f} s); goal <= max(3 s, "
          f"full / 10) = {goal:.2f} s with full = {f_secs:.2f} s: "
          f"{'met' if hourly <= goal else 'NOT met'}")
    print(f"hourly segments after the night {night_hourly:.2f} s; 5 minutes later "
          f"{five_secs:.2f} s (stretch: about 1 s)")
    print(f"every segment ÷ full (same instant) {rows[every_row][2] / f_secs:.3f}; "
          f"full ÷ DuckDB combined {full_secs / duck_secs:.2f}")
    # The store goes back to what the generator wrote (the states are a cache).
    for path in landed_files:
        os.remove(path)
    shutil.rmtree(os.path.join(store, "events", f"date={tomorrow.isoformat()}"),
                  ignore_errors=True)
    if problems:
        print(f"INCREMENTAL VERIFICATION FAILED: {len(problems)} differences")
        print("\n".join(problems))
        return True
    print("verified: every incremental refresh gives exactly the members of --full")
    return False


def s3_figures(args, binary, store, ids, hourly_ids, work):
    """The hourly refresh over an S3-compatible server: moto (tests/fixtures/moto_serialised.py,
    one request at a time, counting what it answers) on 127.0.0.1 is filled with the store's
    contract tables; then the same steps as locally (every state computed, nothing new, an
    hour lands, the hourly segments, every segment). Per step: the requests and bytes kitle's
    object store counted (`store_io` of `--json`) beside the server's own counts. moto is a
    Python server: its seconds say little, its counts are the figures."""
    import datetime as dt
    import socket
    import urllib.request

    import boto3

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "tests", "fixtures", "moto_serialised.py"),
         "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ENDPOINT": endpoint, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_ALLOW_HTTP": "true"}
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
        for _ in range(100):
            try:
                s3.create_bucket(Bucket="bench")
                break
            except Exception:
                time.sleep(0.2)
        else:
            sys.exit("moto did not start")

        def upload(path):
            key = "shop/" + os.path.relpath(path, store)
            s3.upload_file(path, "bench", key)

        t0 = time.perf_counter()
        files = [p for folder in ("customers", "events", "settings")
                 for p in glob.glob(os.path.join(store, folder, "**", "*"), recursive=True)
                 if os.path.isfile(p)]
        for path in files:
            upload(path)
        print()
        print(f"S3 (moto on {endpoint}): uploaded {len(files)} files in "
              f"{time.perf_counter() - t0:.0f} s")
        url = "s3://bench/shop"
        subprocess.run([binary, "segment", "put", *args.seg_files, "--store", url],
                       env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL)

        def counts():
            with urllib.request.urlopen(f"{endpoint}/__kitle/requests") as r:
                return json.load(r)

        end = dt.date.fromisoformat(args.end)
        prev = end - dt.timedelta(days=1)
        noon = dt.datetime.combine(end, dt.time(12), tzinfo=dt.timezone.utc)
        mid = (noon - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        hour = noon.strftime("%Y-%m-%dT%H:%M:%SZ")
        rows = []

        def step(name, label, at, only=()):
            before = counts()
            secs, _, out = timed_refresh(binary, url, work, "s3-" + name, at, args.memory_guard,
                                         ids=only, env=env)
            after = counts()
            seen = {k: after[k] - before[k] for k in after}
            rows.append((label, secs, out.get("store_io", {}), seen, out.get("states", {})))

        step("backfill", "computing every state", mid)
        step("unchanged", "nothing new", mid)
        landed, n = land_events(store, prev.isoformat(), end.isoformat(),
                                int((noon - dt.timedelta(hours=1)).timestamp() * 1e6), 1,
                                1 / 24, "s3-hour")
        upload(landed)
        os.remove(landed)
        print(f"landed           {n} events in one new object of today's partition")
        step("hourly-segments", f"an hour later, {len(hourly_ids)} hourly segments", hour,
             only=hourly_ids)
        step("hourly", "an hour later, every segment", hour)
        print(f"{'':<36} {'seconds':>8} {'requests':>9} {'GET':>7} {'HEAD':>5} {'LIST':>5} "
              f"{'PUT':>5} {'MB fetched':>10} {'MB written':>10} {'server req':>10} "
              f"{'server MB':>9} {'mode':<12}")
        mismatch = False
        for label, secs, io, seen, st in rows:
            server_req = sum(seen[k] for k in ("get", "head", "list", "put", "post", "delete"))
            print(f"{label:<36} {secs:>8.2f} {io.get('requests', 0):>9,} {io.get('gets', 0):>7,} "
                  f"{io.get('heads', 0):>5} {io.get('lists', 0):>5} {io.get('puts', 0):>5} "
                  f"{io.get('bytes_read', 0) / 1e6:>10.1f} {io.get('bytes_written', 0) / 1e6:>10.1f} "
                  f"{server_req:>10,} {seen['bytes_read'] / 1e6:>9.1f} {st.get('mode', '-'):<12}")
            ours = (io.get("gets"), io.get("heads"), io.get("lists"), io.get("puts"),
                    io.get("bytes_read"))
            theirs = (seen["get"], seen["head"], seen["list"], seen["put"], seen["bytes_read"])
            if ours != theirs:
                mismatch = True
                print(f"  (GET, HEAD, LIST, PUT, bytes): kitle {ours}, server {theirs}")
        print("kitle's counts " + ("DIFFER from" if mismatch else "match") +
              " the server's (GET, HEAD, LIST, PUT, bytes)")
        return mismatch
    finally:
        server.kill()
        server.wait()


def mem_gib():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return 0


# --------------------------------------------------------------------------------------------
# Conformance check of the translator
# --------------------------------------------------------------------------------------------


def conformance(args):
    cases_path = os.path.abspath(args.conformance)
    with open(cases_path, encoding="utf-8") as f:
        text = f.read()
    cases = json.loads(text, parse_float=Decimal)
    plain = json.loads(text)  # floats print back as written, for the files given to kitle
    src = os.path.join(os.path.dirname(cases_path), "store")
    skipped = set(cases.get("skipped_files", []))
    binary = os.path.expanduser(args.kitle) if args.kitle else None
    failures = 0
    for sc, sc_plain in zip(cases["scenarios"], plain["scenarios"]):
        tmp = tempfile.mkdtemp(prefix="kitle-conf-")
        store = os.path.join(tmp, "store")
        shutil.copytree(src, store, copy_function=shutil.copyfile)
        for root, dirs, _ in os.walk(store):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        ev = sorted(
            p for p in glob.glob(os.path.join(store, "events", "*", "*.parquet"))
            if os.path.relpath(p, store) not in skipped
        )
        cu = sorted(
            p for p in glob.glob(os.path.join(store, "customers", "*.parquet"))
            if os.path.relpath(p, store) not in skipped
        )
        defs = {d["id"]: d for d in sc["segments"]}
        ids = sorted(defs)
        as_of_us = instant_us(sc["as_of"], "UTC")
        per, combined, tr = build_queries(defs, as_of_us, "UTC", cu, ev)
        con = duck_connect()
        d_per = {i: set(r[0] for r in con.execute(per[i]).fetchall()) for i in ids}
        t = arrow_table(con, combined)
        d_comb = {}
        cid = t.column("customer_id").to_pylist()
        for i in ids:
            d_comb[i] = {c for c, b in zip(cid, t.column(i).to_pylist()) if b}
        tr.cust_cols = set()
        universe = con.execute(f"SELECT count(*) FROM ({tr.universe()})").fetchone()[0]
        expected = {i: set(v) for i, v in sc["expected"].items()}
        lines = diff("expected", expected, "duckdb-per-segment", d_per, ids)
        lines += diff("expected", expected, "duckdb-combined", d_comb, ids)
        if universe != sc.get("universe_size", universe):
            lines.append(f"  universe: expected {sc['universe_size']}, duckdb {universe}")
        if binary and os.path.exists(binary):
            files = []
            for d in sc_plain["segments"]:
                p = os.path.join(tmp, f"{d['id']}.json")
                with open(p, "w", encoding="utf-8") as f:
                    json.dump(d, f, ensure_ascii=False)
                files.append(p)
            kitle(binary, store, "segment", "put", *files)
            kitle(binary, store, "refresh", "--as-of", sc["as_of"])
            k = kitle_memberships(binary, store)
            lines += diff("expected", expected, "kitle", k, ids)
        print(f"scenario {sc['name']} (as_of {sc['as_of']}, {len(ids)} segments): "
              f"{'OK' if not lines else 'DIFFERENCES'}")
        for line in lines:
            print(line)
        failures += len(lines)
        if args.keep:
            with open(os.path.join(tmp, "duckdb-queries.sql"), "w") as f:
                for i in ids:
                    f.write(f"-- {i}\n{per[i]};\n\n")
                f.write(f"-- combined\n{combined};\n")
            print(f"  kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


# --------------------------------------------------------------------------------------------


def main():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/kitle-target")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--end", default="2025-12-15", help="last day of events (default 2025-12-15)")
    ap.add_argument("--store", help="store folder (required for the benchmark; generated into "
                    "with --overwrite unless --skip-generate)")
    ap.add_argument("--kitle", default=os.path.join(target, "release", "kitle"),
                    help="the kitle binary (default $CARGO_TARGET_DIR/release/kitle)")
    ap.add_argument("--as-of", help="evaluation instant (default <end>T23:59:59Z)")
    ap.add_argument("--segments", action="append",
                    help="folder of definitions, repeatable (default: queries/segments and "
                         "benches/segments, whose distinct and active_days segments the "
                         "ready-made ones lack)")
    ap.add_argument("--skip-generate", action="store_true", help="use the store as it is")
    ap.add_argument("--duckdb-store", metavar="DIR",
                    help="rewrite the store into DIR with DuckDB (one zstd file per partition, "
                         "DuckDB's row groups and encodings) and run every figure over DIR")
    ap.add_argument("--time-zone", default=os.environ.get("KITLE_TIME_ZONE", "UTC"),
                    help="the store's time zone, as kitle is configured (default UTC)")
    ap.add_argument("--duckdb-threads", type=int, help="DuckDB threads (default: DuckDB's own)")
    ap.add_argument("--memory-guard", type=int, default=1024, metavar="MB",
                    help="kill a measured child when the machine has less than MB available "
                         "(default 1024; 0: off)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (SQL, outputs)")
    ap.add_argument("--s3", action="store_true",
                    help="after the incremental figures, the hourly refresh's requests and bytes "
                         "over an S3-compatible server (moto, tests/fixtures/moto_serialised.py)")
    ap.add_argument("--skip-incremental", action="store_true",
                    help="only the full refresh against DuckDB (no hourly and nightly figures)")
    ap.add_argument("--conformance", metavar="CASES_JSON",
                    help="check the translator against the conformance cases instead")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker)
        return 0
    if args.conformance:
        return conformance(args)
    if not args.store:
        ap.error("--store DIR is required")
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
