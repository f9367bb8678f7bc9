//! Analyst SQL over the PostgreSQL protocol end to end: the real `kitle serve --pg-listen
//! 127.0.0.1:0`, real clients — Debian's `psql` and Python's psycopg 3 (`tests/fixtures/pg_client.py`),
//! both installed by `scripts/test` — and the same queries over `POST /v1/sql` to compare with.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Server, fixture, http, kitle_binary, kitle_ok};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);
const READ_TOKEN: &str = "read-token-for-the-pg-tests";
const ADMIN_TOKEN: &str = "admin-token-for-the-pg-tests";

/// A served store: the conformance store with scenario A's segments refreshed (so
/// `memberships`, `segment_changes` and `segments` have rows), and `config` in kitle.toml.
fn store_dir(config: &str) -> tempfile::TempDir {
    let dir = http::store_dir(config);
    let a = http::scenario("A");
    let mut files = Vec::new();
    for (i, segment) in a["segments"].as_array().unwrap().iter().enumerate() {
        let file = dir.path().join(format!("segment-{i}.json"));
        std::fs::write(&file, segment.to_string()).unwrap();
        files.push(file.display().to_string());
    }
    let mut put = vec!["segment", "put"];
    put.extend(files.iter().map(String::as_str));
    kitle_ok(&put, &[], dir.path());
    kitle_ok(
        &["refresh", "--as-of", a["as_of"].as_str().unwrap()],
        &[],
        dir.path(),
    );
    dir
}

/// `kitle serve` with the PostgreSQL listener on a port the OS chose.
struct Pg {
    server: Server,
    port: u16,
}

fn serve(dir: &Path) -> Pg {
    let server = Server::start(
        &["serve", "--pg-listen", "127.0.0.1:0"],
        &[],
        dir,
        None,
        WAIT,
    );
    let line = server
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("postgres on postgresql://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no PostgreSQL address in {:?}", server.banner))
        .to_string();
    let port = line.split('/').next().unwrap().parse().unwrap();
    Pg { server, port }
}

impl Pg {
    fn dsn(&self, user: &str, password: Option<&str>, sslmode: &str) -> String {
        let mut dsn = format!(
            "host=127.0.0.1 port={} dbname=kitle user={user} sslmode={sslmode} connect_timeout=20",
            self.port
        );
        if let Some(p) = password {
            dsn.push_str(&format!(" password={p}"));
        }
        dsn
    }
}

/// Runs `psql` on `dsn` with `args`, never prompting for a password.
fn psql(dsn: &str, args: &[&str]) -> Output {
    Command::new("psql")
        .arg(dsn)
        .args([
            "-X",
            "-w",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            "VERBOSITY=verbose",
        ])
        .args(args)
        .env("LANG", "C.UTF-8")
        .env_remove("PGPASSWORD")
        .output()
        .expect("psql runs (scripts/test installs postgresql-client)")
}

fn psql_ok(dsn: &str, args: &[&str]) -> String {
    let out = psql(dsn, args);
    assert!(
        out.status.success(),
        "psql {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn client_script() -> PathBuf {
    fixture("pg_client.py")
}

/// Runs the psycopg driver and reads its JSON answer.
fn py(args: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg(client_script())
        .args(args)
        .env("PYTHONIOENCODING", "utf-8")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "pg_client.py {:?}: {}",
        &args[..1],
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "pg_client.py printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

async fn http_sql(server: &Server, sql: &str) -> Value {
    let r = reqwest::Client::new()
        .post(server.url("/v1/sql"))
        .bearer_auth(READ_TOKEN)
        .json(&json!({"sql": sql}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{sql}");
    r.json().await.unwrap()
}

/// Every number as a float: a numeric reaches Python as a `Decimal` whatever its Arrow type
/// (an unsigned count, a decimal), and JSON tells 13 from 13.0, which says nothing of the value.
fn same_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.into_iter().map(same_numbers).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, same_numbers(v))).collect())
        }
        other => other,
    }
}

fn sqlstate(entries: &Value, statement: &str) -> String {
    let entry = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["statement"] == statement)
        .unwrap_or_else(|| panic!("{statement} missing from {entries}"));
    assert_eq!(
        entry["after"], 42,
        "the connection goes on after {statement}"
    );
    entry["sqlstate"].as_str().unwrap_or("none").to_string()
}

/// Every contract type through psql and psycopg (text and binary), parameters, catalogues,
/// a 100 000-row cursor past the row cap, refused statements, 50 connections at once — the
/// answers equal `/v1/sql`'s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_get_the_answers_of_the_http_api() {
    let dir = store_dir("[serve]\nscheduler = false\nsql_max_rows = 1000\n");
    let pg = serve(dir.path());
    let dsn = pg.dsn("analyst", None, "disable");

    // The same rows, in the same order, over both front ends: every type of the contract.
    for sql in [
        "SELECT customer_id, email, tags, total_order_amount, registered_at, birth_date, \
         customer_group, email_consent FROM customers ORDER BY customer_id",
        "SELECT event_id, customer_id, event_type, ts, amount, quantity, rating, date \
         FROM events ORDER BY event_id LIMIT 300",
        "SELECT segment_id, customer_id, since FROM memberships ORDER BY 1, 2",
        "SELECT segment_id, change, count(*) AS n FROM segment_changes GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT id, name, refresh, size, last_as_of FROM segments ORDER BY id",
        "SELECT 'İğdır' AS city, upper('ışık') AS shout, CAST('2025-11-28' AS DATE) AS day",
    ] {
        let http = http_sql(&pg.server, sql).await;
        assert!(!http["rows"].as_array().unwrap().is_empty(), "{sql}");
        let http = same_numbers(http);
        for binary in [false, true] {
            let mut args = vec!["query", dsn.as_str(), sql];
            if binary {
                args.push("--binary");
            }
            assert_eq!(same_numbers(py(&args)), http, "{sql} (binary: {binary})");
        }
    }

    // psql: a count, the table list, a table's columns.
    let count = http_sql(&pg.server, "SELECT count(*) AS n FROM events").await;
    let n = psql_ok(&dsn, &["-A", "-t", "-c", "SELECT count(*) FROM events"]);
    assert_eq!(n.trim(), count["rows"][0][0].to_string());
    let tables = psql_ok(&dsn, &["-c", "\\dt"]);
    for table in [
        "events",
        "customers",
        "memberships",
        "segment_changes",
        "segments",
    ] {
        assert!(tables.contains(table), "\\dt lists {table}: {tables}");
    }
    let columns = psql_ok(&dsn, &["-c", "\\d events"]);
    for column in ["event_id", "event_type", "ts", "amount", "payment_method"] {
        assert!(
            columns.contains(column),
            "\\d events shows {column}: {columns}"
        );
    }
    assert!(columns.contains("timestamp"), "{columns}");
    let city = psql_ok(&dsn, &["-A", "-t", "-c", "SELECT 'İğdır' AS city"]);
    assert_eq!(city.trim(), "İğdır");

    // Bound parameters of each kind.
    let p = py(&["params", &dsn]);
    assert_eq!(p["city"], "İğdır");
    assert_eq!(p["upper"], "IŞIK");
    let expect = |sql: &'static str| {
        let server = &pg.server;
        async move { http_sql(server, sql).await["rows"][0][0].clone() }
    };
    assert_eq!(
        p["count_by_type"],
        expect("SELECT count(*) FROM events WHERE event_type = 'order_created'").await
    );
    assert_eq!(
        p["amount_over"],
        expect("SELECT count(*) FROM events WHERE amount > 100").await
    );
    assert_eq!(
        p["since"],
        expect("SELECT count(*) FROM events WHERE ts >= TIMESTAMP '2025-01-01T00:00:00Z'").await
    );
    assert_eq!(p["limit"], 3);
    assert_eq!(p["prepared"], json!([1, 2, 3, 4, 5, 6, 7, 8]));
    assert_eq!(p["lookup_binary_false"], p["lookup_binary_true"]);

    // A plain result is capped (sql_max_rows = 1000); a cursor streams 100 000 rows in pages.
    let big = "SELECT value FROM generate_series(1, 100000)";
    let out = psql(&dsn, &["-c", big]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("54000") && stderr.contains("sql_max_rows"),
        "{stderr}"
    );
    let c = py(&["cursor", &dsn, big, "5000"]);
    assert_eq!(
        c,
        json!({"pages": 20, "rows": 100000, "sum": 5000050000u64, "after": 1})
    );

    // Refused statements and wrong queries: a SQLSTATE each, and the connection goes on.
    let statements = [
        "CREATE TABLE t AS SELECT 1",
        "INSERT INTO memberships VALUES ('a', 'b', now())",
        "DROP TABLE events",
        "COPY events FROM '/tmp/events.csv'",
        "SET datafusion.execution.batch_size = 1",
        "SET work_mem = '1GB'",
        "SELECT nope FROM events",
        "SELECT * FROM nowhere",
        "SELEC 1",
        "SELECT 1 / 0",
    ];
    let mut args = vec!["errors", dsn.as_str()];
    args.extend(statements);
    let e = py(&args);
    for (statement, code) in statements.iter().zip([
        "25006", "25006", "25006", "25006", "42501", "42704", "42703", "42P01", "42601", "22012",
    ]) {
        assert_eq!(sqlstate(&e, statement), code, "{statement}: {e}");
    }
    let last = e.as_array().unwrap().last().unwrap();
    assert_eq!(last["blocked"], "25P02", "{last}");
    assert_eq!(last["after"], 42);

    // 50 connections at once, each running its queries.
    let queries = [
        "SELECT count(*) FROM events WHERE event_type = 'order_created'",
        "SELECT count(DISTINCT customer_id) FROM customers",
        "SELECT count(*) FROM memberships",
    ];
    let mut expected = Vec::new();
    for q in queries {
        expected.push(http_sql(&pg.server, q).await["rows"][0][0].clone());
    }
    let mut args = vec!["concurrent", dsn.as_str(), "50"];
    args.extend(queries);
    let all = py(&args);
    assert_eq!(all.as_array().unwrap().len(), 50);
    for answer in all.as_array().unwrap() {
        assert_eq!(answer, &Value::from(expected.clone()), "{all}");
    }

    // Metrics: connections, statements by outcome, latency.
    let metrics = reqwest::get(pg.server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "kitle_pg_connections ",
        "kitle_pg_connections_total",
        "kitle_pg_logins_total{outcome=\"accepted\"}",
        "kitle_sql_queries_total{protocol=\"postgres\",outcome=\"ok\"}",
        "kitle_sql_queries_total{protocol=\"postgres\",outcome=\"refused\"}",
        "kitle_sql_queries_total{protocol=\"postgres\",outcome=\"resource_limit\"}",
        "kitle_sql_query_duration_seconds_bucket{protocol=\"postgres\"",
        "kitle_sql_queries_total{protocol=\"http\",outcome=\"ok\"}",
    ] {
        assert!(metrics.contains(needle), "/metrics has {needle}");
    }
}

/// The memory and time limits stop a query with an error; the connection stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_stop_queries_and_the_connection_goes_on() {
    let dir =
        store_dir("[serve]\nscheduler = false\nsql_memory_limit_mb = 4\nsql_timeout_seconds = 2\n");
    let pg = serve(dir.path());
    let dsn = pg.dsn("analyst", None, "disable");
    let memory = "SELECT count(*) FROM generate_series(1, 3000000) a JOIN generate_series(1, 3000000) b ON a.value = b.value";
    let time = "SELECT count(*) FROM generate_series(1, 200000) a, generate_series(1, 200000) b WHERE a.value + b.value = 7";
    let e = py(&["errors", &dsn, memory, time]);
    assert_eq!(sqlstate(&e, memory), "53200", "{e}");
    assert_eq!(sqlstate(&e, time), "57014", "{e}");
    // A client may lower the limit for its session, not raise it.
    let lowered = py(&[
        "errors",
        &format!("{dsn} options='-c statement_timeout=300'"),
        time,
    ]);
    assert_eq!(sqlstate(&lowered, time), "57014", "{lowered}");
}

/// Tokens are the passwords (SCRAM-SHA-256), TLS is offered from the configured certificate,
/// and a TLS setting that cannot be loaded stops the service with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_passwords_and_tls_is_offered() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = store_dir(&format!(
        "[serve]\nscheduler = false\npg_tls_cert = \"cert.pem\"\npg_tls_key = \"key.pem\"\n\
         [[serve.tokens]]\ntoken = \"{READ_TOKEN}\"\nscope = \"read\"\n\
         [[serve.tokens]]\ntoken = \"{ADMIN_TOKEN}\"\nscope = \"admin\"\n"
    ));
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let pg = serve(dir.path());

    // No password, a wrong one, the wrong database: refused with PostgreSQL's codes.
    let out = psql(&pg.dsn("analyst", None, "disable"), &["-c", "SELECT 1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("password"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wrong = py(&[
        "login",
        &pg.dsn("analyst", Some("not-a-token-at-all"), "disable"),
    ]);
    // libpq keeps a failed login's SQLSTATE (28P01, 3D000) to itself: the message says it.
    assert_eq!(wrong["ok"], false);
    let said = wrong["message"].as_str().unwrap();
    assert!(
        said.contains("password authentication failed for user \"analyst\""),
        "{wrong}"
    );
    let other_db = py(&[
        "login",
        &pg.dsn("analyst", Some(READ_TOKEN), "disable")
            .replace("dbname=kitle", "dbname=shop"),
    ]);
    assert_eq!(other_db["ok"], false);
    let said = other_db["message"].as_str().unwrap();
    assert!(
        said.contains("database \"shop\" does not exist"),
        "{other_db}"
    );

    // A read token is enough, over plain TCP (SCRAM never sends it) and over TLS.
    for (token, sslmode, ssl) in [
        (READ_TOKEN, "disable", false),
        (READ_TOKEN, "require", true),
        (ADMIN_TOKEN, "require", true),
    ] {
        let ok = py(&["login", &pg.dsn("ayşe", Some(token), sslmode)]);
        assert_eq!(
            ok,
            json!({"ok": true, "ssl": ssl, "user": "ayşe"}),
            "{sslmode}"
        );
    }
    let dsn = pg.dsn("analyst", Some(READ_TOKEN), "require");
    let info = psql_ok(&dsn, &["-c", "\\conninfo"]);
    assert!(info.contains("SSL"), "{info}");
    let n = psql_ok(&dsn, &["-A", "-t", "-c", "SELECT count(*) FROM customers"]);
    assert!(n.trim().parse::<u64>().unwrap() > 0);
    drop(pg);

    // Settings that cannot be loaded: the service stops with the reason, exit code 2.
    let broken = [
        (
            "pg_tls_cert = \"missing.pem\"\npg_tls_key = \"key.pem\"\n",
            "missing.pem",
        ),
        (
            "pg_tls_cert = \"key.pem\"\npg_tls_key = \"key.pem\"\n",
            "pg_tls_cert",
        ),
        (
            "pg_tls_cert = \"cert.pem\"\npg_tls_key = \"cert.pem\"\n",
            "pg_tls_key",
        ),
        ("pg_tls_cert = \"cert.pem\"\n", "go together"),
    ];
    let other = rcgen::generate_simple_self_signed(vec!["other".into()]).unwrap();
    std::fs::write(
        dir.path().join("other-key.pem"),
        other.signing_key.serialize_pem(),
    )
    .unwrap();
    let mismatched = (
        "pg_tls_cert = \"cert.pem\"\npg_tls_key = \"other-key.pem\"\n",
        "pg_tls_key",
    );
    for (config, needle) in broken.into_iter().chain([mismatched]) {
        std::fs::write(
            dir.path().join("kitle.toml"),
            format!("store = \"store\"\n[serve]\nscheduler = false\n{config}"),
        )
        .unwrap();
        let (code, stderr) = exits(dir.path(), &["serve", "--pg-listen", "127.0.0.1:0"]);
        assert_eq!(code, Some(2), "{config}: {stderr}");
        assert!(stderr.contains(needle), "{config}: {stderr}");
    }
    // Without tokens, only loopback.
    std::fs::write(
        dir.path().join("kitle.toml"),
        "store = \"store\"\n[serve]\nscheduler = false\n",
    )
    .unwrap();
    let (code, stderr) = exits(dir.path(), &["serve", "--pg-listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("without tokens"), "{stderr}");
}

/// Runs `kitle ARGS` that must exit by itself (within a minute): its exit code and stderr.
fn exits(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(kitle_binary())
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("KITLE_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.code(), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kitle {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
