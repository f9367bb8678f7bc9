"""A real PostgreSQL client (psycopg 3) driven by the integration tests (tests/integration/pg.rs).

Each subcommand connects to `kitle serve --pg-listen` with the DSN given and prints one JSON
document on stdout. Values are written the way `POST /v1/sql` writes them (instants as RFC 3339
in UTC, decimals as numbers, lists as Arrow displays them), so the tests compare the two
front ends' answers as they are.

    query DSN SQL [--binary]        the result of one query: {"columns", "rows"}
    params DSN                      queries with bound parameters
    cursor DSN SQL PAGE             a server-side cursor read PAGE rows at a time
    errors DSN STATEMENT...         each statement's SQLSTATE and message, then SELECT 1 again
    concurrent DSN N SQL...         N connections at once, each running every query
    login DSN                       {"ok": true} or the refusal's SQLSTATE and message
"""

import datetime
import decimal
import json
import sys
import threading

import psycopg


def cell(value):
    """One value as kitle's JSON writes it."""
    if isinstance(value, datetime.datetime):
        value = value.astimezone(datetime.timezone.utc)
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        micros = value.microsecond
        if micros:
            text += f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"
        return text + "Z"
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, list):
        return "[" + ", ".join("" if v is None else str(v) for v in value) + "]"
    return value


def result(cur):
    columns = [d.name for d in cur.description] if cur.description else []
    rows = [[cell(v) for v in row] for row in cur.fetchall()] if cur.description else []
    return {"columns": columns, "rows": rows}


def failure(e):
    return {"sqlstate": getattr(e, "sqlstate", None), "message": str(e).strip()}


def query(dsn, sql, binary=False):
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.cursor(binary=binary) as cur:
            cur.execute(sql)
            return result(cur)


def params(dsn):
    out = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Turkish text both ways, as a parameter and back.
        out["city"] = conn.execute("SELECT %s::text AS city", ["İğdır"]).fetchone()[0]
        out["upper"] = conn.execute("SELECT upper(%s) AS u", ["ışık"]).fetchone()[0]
        # Parameters compared with columns of each kind.
        out["count_by_type"] = conn.execute(
            "SELECT count(*) FROM events WHERE event_type = %s", ["order_created"]
        ).fetchone()[0]
        out["amount_over"] = conn.execute(
            "SELECT count(*) FROM events WHERE amount > %s", [decimal.Decimal("100.00")]
        ).fetchone()[0]
        out["since"] = conn.execute(
            "SELECT count(*) FROM events WHERE ts >= %s",
            [datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)],
        ).fetchone()[0]
        out["limit"] = len(conn.execute("SELECT * FROM events LIMIT %s", [3]).fetchall())
        # The same prepared statement run many times (psycopg prepares after 5 runs).
        out["prepared"] = [
            conn.execute("SELECT %s::bigint + 1", [i]).fetchone()[0] for i in range(8)
        ]
        for binary in (False, True):
            with conn.cursor(binary=binary) as cur:
                cur.execute("SELECT customer_id FROM customers WHERE customer_id = %s", ["c1"])
                out[f"lookup_binary_{binary}"] = cur.fetchall()
    return out


def cursor(dsn, sql, page):
    with psycopg.connect(dsn) as conn:
        pages = 0
        rows = 0
        total = 0
        with conn.cursor(name="kitle_test_cursor") as cur:
            cur.itersize = page
            cur.execute(sql)
            while True:
                batch = cur.fetchmany(page)
                if not batch:
                    break
                pages += 1
                rows += len(batch)
                total += sum(int(r[0]) for r in batch)
        conn.commit()
        # The connection goes on after the cursor.
        after = conn.execute("SELECT 1").fetchone()[0]
    return {"pages": pages, "rows": rows, "sum": total, "after": after}


def errors(dsn, statements):
    out = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            try:
                conn.execute(statement).fetchall()
                entry = {"statement": statement, "sqlstate": None}
            except psycopg.Error as e:
                entry = {"statement": statement, **failure(e)}
            entry["after"] = conn.execute("SELECT 41 + 1").fetchone()[0]
            out.append(entry)
    # In a transaction block an error aborts the block until ROLLBACK, as in PostgreSQL.
    with psycopg.connect(dsn) as conn:
        try:
            conn.execute("SELECT * FROM no_such_table")
        except psycopg.Error:
            pass
        try:
            conn.execute("SELECT 1")
            blocked = None
        except psycopg.Error as e:
            blocked = e.sqlstate
        conn.rollback()
        out.append({"statement": "after rollback", "blocked": blocked,
                    "after": conn.execute("SELECT 42").fetchone()[0]})
    return out


def concurrent(dsn, n, sqls):
    results = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                barrier.wait(timeout=60)
                results[i] = [conn.execute(sql).fetchall()[0][0] for sql in sqls]
        except Exception as e:  # reported, not raised: the test says which failed
            results[i] = {"error": repr(e)}

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def login(dsn):
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            ssl = conn.pgconn.ssl_in_use
            user = conn.execute("SELECT current_user").fetchone()[0]
            return {"ok": True, "ssl": bool(ssl), "user": user}
    except psycopg.Error as e:
        return {"ok": False, **failure(e)}


def main(argv):
    command, dsn, rest = argv[1], argv[2], argv[3:]
    if command == "query":
        out = query(dsn, rest[0], binary="--binary" in rest[1:])
    elif command == "params":
        out = params(dsn)
    elif command == "cursor":
        out = cursor(dsn, rest[0], int(rest[1]))
    elif command == "errors":
        out = errors(dsn, rest)
    elif command == "concurrent":
        out = concurrent(dsn, int(rest[0]), rest[1:])
    elif command == "login":
        out = login(dsn)
    else:
        raise SystemExit(f"unknown command {command}")
    json.dump(out, sys.stdout, ensure_ascii=False, default=str)


if __name__ == "__main__":
    main(sys.argv)
