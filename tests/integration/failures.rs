//! Whose fault a failure is, and the limits every plan run for a request obeys: the real
//! `kitle serve` and the real CLI on copies of the conformance store.
//!
//! - a `sql` condition that does not plan is refused at its own path, with the query found;
//! - a store failure while a refresh runs (a Parquet page that does not decode, found while
//!   searching for redelivered events) is the service's: HTTP 500 `store_error`, exit 1 — never
//!   the caller's 400 / exit 2;
//! - a preview runs under `preview_timeout_seconds`, however expensive its `sql` condition;
//! - a refresh under a `refresh_memory_limit_mb` below what it needs spills or fails, naming
//!   the key;
//! - entity tags come from the stored versions: a restart does not make an old tag match a new
//!   answer.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::http::{call, client, enc, get, put, serve, store_dir};
use crate::support::{kitle, kitle_ok};

/// A definition whose `sql` condition (the second of an `all`) does not plan, another that
/// writes, another that returns no `customer_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_problems_are_reported_at_the_sql_path_with_the_query() {
    let dir = store_dir("[serve]\nscheduler = false\n");
    let s = serve(dir.path(), &[]);
    let c = client();
    let granted = json!({"attribute": "email_consent", "op": "eq", "value": "granted"});
    for (sql, says) in [
        ("SELECT customer_id FROM no_such_table", "no_such_table"),
        ("INSERT INTO customers VALUES ('x')", "not plan"),
        ("SELECT email FROM customers", "no customer_id column"),
    ] {
        let body = json!({"condition": {"all": [granted, {"sql": sql}]}});
        let (status, code_, answer) = call(c.put(s.url("/v1/segments/bad-sql")).json(&body)).await;
        assert_eq!(
            (status, code_.as_str()),
            (400, "invalid_definition"),
            "{answer}"
        );
        let problem = &answer["error"]["details"][0];
        assert_eq!(problem["path"], json!("condition.all[1].sql"), "{answer}");
        assert_eq!(
            problem["found"],
            json!(Value::String(sql.into()).to_string()),
            "{answer}"
        );
        assert!(
            problem["message"].as_str().unwrap().contains(says),
            "{sql}: {answer}"
        );
    }
    // The same check from the command line, with the set's index in front of the path.
    let file = dir.path().join("two.json");
    std::fs::write(
        &file,
        json!([{"id": "fine", "condition": granted},
               {"id": "bad", "condition": {"any": [{"sql": "SELECT nothing FROM customers"}]}}])
        .to_string(),
    )
    .unwrap();
    let out = kitle(
        &["segment", "validate", file.to_str().unwrap()],
        &[],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("[1].condition.any[0].sql"), "{stderr}");
}

/// Overwrites every page of `file` (everything between the leading magic bytes and the footer)
/// with garbage, leaving the footer intact: the file passes the footer check and fails when its
/// pages are read.
fn corrupt_pages(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let n = bytes.len();
    let footer = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    for b in &mut bytes[4..n - 8 - footer] {
        *b = 0xff;
    }
    std::fs::write(file, bytes).unwrap();
}

/// The conformance store's redelivered event lies in the two files of 2025-11-29; a refresh
/// reads that closed day on its own before its plan runs (to compute its partial state, after
/// searching it for repeated ids). With the partition's main file unreadable past its footer,
/// that read fails: the store's failure, reported as such, naming what was being done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_while_refreshing_is_the_services_not_the_callers() {
    let dir = store_dir("[serve]\nscheduler = false\n");
    let file = dir
        .path()
        .join("store/events/date=2025-11-29/part-0000.parquet");
    corrupt_pages(&file);
    let s = serve(dir.path(), &[]);
    let c = client();
    let viewed = json!({"condition": {"event": "product_viewed", "op": "gte", "value": 1}});
    let (status, answer) = put(&c, s.url("/v1/segments/viewers"), &viewed).await;
    assert_eq!(status, 201, "the definition itself is fine: {answer}");
    let (status, code_, body) = call(
        c.post(s.url("/v1/segments/viewers/refresh"))
            .json(&json!({"as_of": "2025-12-01T12:00:00Z"})),
    )
    .await;
    assert_eq!((status, code_.as_str()), (500, "store_error"), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("computing the partial states of 2025-11-29"),
        "says what was being done: {message}"
    );

    let out = kitle(
        &["refresh", "viewers", "--as-of", "2025-12-01T12:00:00Z"],
        &[],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a run-time failure: {stderr}");
}

/// A preview whose `sql` condition is a three-way cross join of `events` (4 k rows: 6·10¹⁰
/// combinations) is stopped at `preview_timeout_seconds`, with an answer naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_stops_at_its_time_limit() {
    let dir = store_dir("[serve]\nscheduler = false\npreview_timeout_seconds = 2\n");
    let s = serve(dir.path(), &[]);
    let c = client();
    let cross = "SELECT e1.customer_id FROM events e1, events e2, events e3 WHERE e1.event_id <> e3.event_id";
    let started = Instant::now();
    let (status, code_, body) = call(
        c.post(s.url("/v1/segments/preview"))
            .json(&json!({"definition": {"id": "cross", "condition": {"sql": cross}}})),
    )
    .await;
    let took = started.elapsed();
    assert_eq!((status, code_.as_str()), (400, "limit_exceeded"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("preview_timeout_seconds"),
        "{body}"
    );
    // Stopped, not finished: far from the minutes the join would take.
    assert!(took < Duration::from_secs(60), "answered after {took:?}");
    // The service is still free for other work.
    let (status, _) = get(&c, s.url("/v1/segments")).await;
    assert_eq!(status, 200);
}

/// A refresh of a generated shop with 1 MiB of memory: DataFusion either spills (and then the
/// members are those of an unlimited refresh) or fails, and then exit 1 names the key.
#[test]
fn a_refresh_under_a_memory_limit_spills_or_fails_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let ok = |args: &[&str], env: &[(&str, String)]| kitle_ok(args, env, cwd);
    ok(
        &[
            "generate",
            "--customers",
            "3000",
            "--days",
            "20",
            "--end",
            "2025-11-30",
        ],
        &[],
    );
    let file = cwd.join("heavy.json");
    std::fs::write(
        &file,
        json!({"id": "heavy", "condition": {"event": ["product_viewed", "product_added_to_cart"],
            "measure": {"distinct": "product_id"}, "op": "gte", "value": 2}})
        .to_string(),
    )
    .unwrap();
    ok(&["segment", "put", file.to_str().unwrap()], &[]);
    let at = ["--as-of", "2025-11-30T12:00:00Z"];
    let limited = kitle(
        &["refresh", "heavy", at[0], at[1]],
        &[("KITLE_REFRESH_MEMORY_LIMIT_MB", "1".into())],
        cwd,
    );
    let stderr = String::from_utf8_lossy(&limited.stderr).to_string();
    if limited.status.success() {
        let spilled = ok(&["members", "heavy", "--format", "csv"], &[]);
        ok(&["refresh", "heavy", at[0], at[1]], &[]);
        let unlimited = ok(&["members", "heavy", "--format", "csv"], &[]);
        let ids = |csv: &str| -> Vec<String> {
            csv.lines()
                .map(|l| l.split(',').next().unwrap().to_string())
                .collect()
        };
        assert_eq!(ids(&spilled), ids(&unlimited));
    } else {
        assert_eq!(limited.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("refresh_memory_limit_mb"), "{stderr}");
    }
}

/// Customer lookups' entity tag after a restart and a refresh by the CLI that changed the
/// customer's segments: the old tag no longer matches. Without changes, a restarted service
/// answers the same tag (it is derived from the stored versions, not counted per process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_tags_survive_restarts_and_change_with_the_versions() {
    let dir = store_dir("[serve]\nscheduler = false\n");
    let file = dir.path().join("recent.json");
    std::fs::write(
        &file,
        json!({"id": "recent-buyers", "condition": {"event": "order_created", "op": "gte", "value": 1, "period": {"last": "14d"}}})
            .to_string(),
    )
    .unwrap();
    let run = |args: &[&str]| {
        kitle_ok(args, &[], dir.path());
    };
    run(&["segment", "put", file.to_str().unwrap()]);
    run(&["refresh", "--as-of", "2025-11-20T00:00:00Z"]);
    let c = client();
    let (customer, first) = {
        let s = serve(dir.path(), &[]);
        let (_, page) = get(&c, s.url("/v1/segments/recent-buyers/members?limit=1")).await;
        let customer = page["members"][0]["customer_id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = c
            .get(s.url(&format!("/v1/customers/{}/segments", enc(&customer))))
            .send()
            .await
            .unwrap();
        (customer, r.headers()["etag"].to_str().unwrap().to_string())
    };
    let lookup = |base: String| {
        let c = c.clone();
        let tag = first.clone();
        let customer = customer.clone();
        async move {
            c.get(format!("{base}/v1/customers/{}/segments", enc(&customer)))
                .header("if-none-match", tag)
                .send()
                .await
                .unwrap()
        }
    };
    {
        let s = serve(dir.path(), &[]);
        let r = lookup(s.base.clone()).await;
        assert_eq!(
            r.status(),
            304,
            "same versions, same tag, also after a restart"
        );
    }
    // Far later: nobody bought in the last 14 days, so the customer left the segment.
    run(&["refresh", "--as-of", "2026-06-01T00:00:00Z"]);
    let s = serve(dir.path(), &[]);
    let r = lookup(s.base.clone()).await;
    assert_eq!(r.status(), 200, "the old tag must not match the new answer");
    assert_ne!(r.headers()["etag"].to_str().unwrap(), first);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["segments"], json!([]), "{body}");
}
