//! The store's identity setting through the real binary: recorded by the first write, followed
//! by unconfigured processes, refused to a differently configured one (CLI exit 2, `serve`
//! refuses to start), changed on purpose with `kitle identity set`; the `identities` table; and
//! a sequence explained for a member over HTTP (which steps were reached, when).

use std::path::Path;
use std::time::Duration;

use crate::support::{Server, http, kitle};
use serde_json::{Value, json};

fn run(dir: &Path, args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let out = kitle(args, env, dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(dir: &Path, args: &[&str], env: &[(&str, String)]) -> String {
    let (code, out, err) = run(dir, args, env);
    assert_eq!(code, 0, "kitle {args:?}: {err}");
    out
}

fn json_out(dir: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(dir, args, &[])).unwrap()
}

fn size(dir: &Path, segment: &str) -> u64 {
    let rows = json_out(
        dir,
        &[
            "sql",
            &format!("SELECT size FROM segments WHERE id = '{segment}'"),
            "--format",
            "json",
        ],
    );
    rows[0]["size"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_is_the_stores_setting_and_stitching_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("kitle.toml"),
        "store = \"store\"\n[serve]\nscheduler = false\n",
    )
    .unwrap();
    ok(
        d,
        &[
            "generate",
            "--customers",
            "300",
            "--days",
            "20",
            "--seed",
            "4",
            "--end",
            "2025-12-01",
        ],
        &[],
    );
    let shown = json_out(d, &["--json", "identity", "show"]);
    assert_eq!(
        (shown["identity"].clone(), shown["recorded"].clone()),
        (json!("customer_id"), Value::Null)
    );

    let anonymous = d.join("anonymous-views.json");
    std::fs::write(
        &anonymous,
        json!({"id": "anonymous-views", "condition": {"event": "product_viewed",
               "where": [{"property": "customer_id", "op": "is_not_set"}]}})
        .to_string(),
    )
    .unwrap();
    let funnel = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../queries/segments/funnel-view-cart-order-7d.json")
        .display()
        .to_string();
    let stitched = [("KITLE_IDENTITY", "stitched".to_string())];
    let plain = [("KITLE_IDENTITY", "customer_id".to_string())];
    // The first write records the configured value.
    ok(
        d,
        &["segment", "put", &anonymous.display().to_string(), &funnel],
        &stitched,
    );
    let shown = json_out(d, &["--json", "identity", "show"]);
    assert_eq!(shown["recorded"], json!("stitched"));
    // A process configured otherwise refuses to write, and says how to change it.
    let (code, _, err) = run(d, &["refresh", "--as-of", "2025-12-01T20:00:00Z"], &plain);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("stitched") && err.contains("kitle identity set customer_id"),
        "{err}"
    );
    let (code, _, err) = run(d, &["serve", "--listen", "127.0.0.1:0"], &plain);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("refuses to write"), "{err}");
    // An unconfigured process follows the store.
    ok(d, &["refresh", "--as-of", "2025-12-01T20:00:00Z"], &[]);
    let stitched_views = size(d, "anonymous-views");
    assert!(stitched_views > 20, "{stitched_views}");

    // Each anonymous id has one owner at a time, the latest link's.
    let owners = json_out(
        d,
        &[
            "sql",
            "SELECT count(*) AS ids, count(DISTINCT anonymous_id) AS distinct_ids, \
             min(since) IS NOT NULL AS dated FROM identities",
            "--format",
            "json",
        ],
    );
    assert!(owners[0]["ids"].as_u64().unwrap() > 20, "{owners}");
    assert_eq!(owners[0]["ids"], owners[0]["distinct_ids"]);
    let latest = json_out(
        d,
        &[
            "sql",
            "SELECT count(*) AS wrong FROM identities i JOIN events e \
             ON e.anonymous_id = i.anonymous_id AND e.event_type = 'identified' \
             AND e.customer_id IS NOT NULL AND e.ts > i.since AND e.ts <= now()",
            "--format",
            "json",
        ],
    );
    assert_eq!(latest[0]["wrong"], json!(0));

    // Changed on purpose: the next refresh stops stitching.
    let (code, _, err) = run(d, &["identity", "set", "anonymous"], &[]);
    assert_eq!(code, 2, "{err}");
    let out = ok(d, &["identity", "set", "customer_id"], &stitched);
    assert!(out.contains("was stitched"), "{out}");
    ok(d, &["refresh", "--as-of", "2025-12-01T20:00:00Z"], &[]);
    assert_eq!(size(d, "anonymous-views"), 0);
    ok(d, &["identity", "set", "stitched"], &[]);
    ok(d, &["refresh", "--as-of", "2025-12-01T20:00:00Z"], &[]);
    assert_eq!(size(d, "anonymous-views"), stitched_views);

    // Erasure's bad input.
    let (code, _, err) = run(d, &["erase"], &[]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(d, &["erase", ""], &[]);
    assert_eq!(code, 2, "{err}");

    // A sequence explained: the steps reached and when.
    let s = Server::start(&["serve"], &[], d, None, Duration::from_secs(90));
    let c = http::client();
    let (_, members) = http::get(
        &c,
        s.url("/v1/segments/funnel-view-cart-order-7d/members?limit=1"),
    )
    .await;
    let member = members["members"][0]["customer_id"].as_str().unwrap();
    let (_, explained) = http::get(
        &c,
        s.url(&format!(
            "/v1/segments/funnel-view-cart-order-7d/members/{member}?explain=true"
        )),
    )
    .await;
    let report = &explained["conditions"][0];
    assert_eq!(report["held"], json!(true), "{explained}");
    let steps: Vec<&str> = report["rank_or_follow_ups"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), 3, "{report}");
    assert!(steps[0] < steps[1] && steps[1] < steps[2], "{steps:?}");
    assert_eq!(report["value"], json!(steps[2]));
    let sentence = report["explanation"].as_str().unwrap();
    assert!(sentence.contains("completed at"), "{sentence}");
}
