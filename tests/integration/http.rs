//! The HTTP service end to end: the real `kitle serve` on a port the OS chose (127.0.0.1 only),
//! a real HTTP client, the conformance store and its expected members.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::support::http::{
    all_pages, call, client, enc, get, ids, json_of, post, put, scenario, serve, store_dir, text_of,
};
use crate::support::{Server, kitle, kitle_ok};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CSV: &str = "text/csv";
const ARROW: &str = "application/vnd.apache.arrow.stream";

/// `request` sent asking for the media type `accept`.
async fn accepting(request: reqwest::RequestBuilder, accept: &str) -> reqwest::Response {
    request.header("accept", accept).send().await.unwrap()
}

/// The record batches of an Arrow IPC stream answer.
async fn arrow_batches(response: reqwest::Response) -> Vec<arrow::record_batch::RecordBatch> {
    let bytes = response.bytes().await.unwrap();
    arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
        .unwrap()
        .map(|batch| batch.unwrap())
        .collect()
}

/// Scenario A through HTTP: put every segment, refresh at its `as_of`, then every read route
/// against the expected members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_from_the_refreshed_memberships() {
    let a = scenario("A");
    let dir = store_dir("[serve]\nscheduler = false\n");
    let s = serve(dir.path(), &[]);
    let c = client();

    // Definitions: 201 created, 200 replaced; the path's id fills an absent one.
    for (i, d) in a["segments"].as_array().unwrap().iter().enumerate() {
        let id = d["id"].as_str().unwrap();
        let mut body = d.clone();
        if i % 2 == 0 {
            body.as_object_mut().unwrap().remove("id");
        }
        let (status, answer) = put(&c, s.url(&format!("/v1/segments/{id}")), &body).await;
        assert_eq!(status, 201, "{id}: {answer}");
    }
    let first = &a["segments"][0];
    let first_id = first["id"].as_str().unwrap();
    let (status, _) = put(&c, s.url(&format!("/v1/segments/{first_id}")), first).await;
    assert_eq!(status, 200);

    // Before the first refresh: listed with no size; lookups say no.
    let (_, list) = get(&c, s.url("/v1/segments")).await;
    assert_eq!(
        list["segments"].as_array().unwrap().len(),
        a["segments"].as_array().unwrap().len()
    );
    assert!(list["segments"][0]["size"].is_null());

    // Refresh everything at the scenario's as_of.
    let as_of = a["as_of"].as_str().unwrap();
    let (status, outcome) = post(&c, s.url("/v1/refresh"), json!({"as_of": as_of})).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["as_of"], as_of);
    let expected: BTreeMap<String, Vec<String>> = a["expected"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), ids(v)))
        .collect();
    for seg in outcome["segments"].as_array().unwrap() {
        let id = seg["id"].as_str().unwrap();
        assert_eq!(seg["size"], expected[id].len(), "{id}");
        assert_eq!(seg["entered"], expected[id].len(), "{id}");
    }

    // List and one definition, with sizes.
    let (_, list) = get(&c, s.url("/v1/segments")).await;
    for seg in list["segments"].as_array().unwrap() {
        let id = seg["id"].as_str().unwrap();
        assert_eq!(seg["size"], expected[id].len());
        assert_eq!(seg["last_as_of"], as_of);
    }
    let (status, one) = get(&c, s.url(&format!("/v1/segments/{first_id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(one["condition"], first["condition"]);
    assert_eq!(one["size"], expected[first_id].len());

    // Member pages in customer_id order, across pages; CSV and Arrow give the same set.
    let (big, members) = expected.iter().max_by_key(|(_, m)| m.len()).unwrap();
    let mut sorted = members.clone();
    sorted.sort();
    assert_eq!(all_pages(&c, &s, big, 7).await, sorted);
    assert_eq!(all_pages(&c, &s, big, 100_000).await, sorted);
    let csv = accepting(c.get(s.url(&format!("/v1/segments/{big}/members"))), CSV).await;
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("customer_id,since"));
    let from_csv: Vec<String> = lines
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect();
    assert_eq!(from_csv, sorted);
    let arrow = accepting(c.get(s.url(&format!("/v1/segments/{big}/members"))), ARROW).await;
    let mut from_arrow = Vec::new();
    for batch in arrow_batches(arrow).await {
        let col = batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        from_arrow.extend(col.iter().map(|v| v.unwrap().to_string()));
    }
    assert_eq!(from_arrow, sorted);

    // Lookups, with ETag and 304; Turkish ids through percent-encoding.
    let turkish = expected
        .iter()
        .find(|(_, m)| m.iter().any(|c| !c.is_ascii()))
        .map(|(seg, m)| {
            (
                seg.clone(),
                m.iter().find(|c| !c.is_ascii()).unwrap().clone(),
            )
        });
    let (tseg, tcust) = turkish.expect("a segment with a Turkish customer id");
    let r = c
        .get(s.url(&format!("/v1/segments/{tseg}/members/{}", enc(&tcust))))
        .send()
        .await
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let (status, lookup) = json_of(r).await;
    assert_eq!(status, 200);
    assert_eq!(lookup, json!({"member": true, "since": as_of}));
    let r = c
        .get(s.url(&format!("/v1/segments/{tseg}/members/{}", enc(&tcust))))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let (_, no) = get(
        &c,
        s.url(&format!("/v1/segments/{tseg}/members/nobody-at-all")),
    )
    .await;
    assert_eq!(no, json!({"member": false, "since": null}));
    let (_, why) = get(
        &c,
        s.url(&format!(
            "/v1/segments/{tseg}/members/nobody-at-all?explain=true"
        )),
    )
    .await;
    assert_eq!(why["in_universe"], false, "{why}");
    assert_eq!(why["conditions"][0]["held"], false, "{why}");

    // A customer's segments are exactly those whose expected members hold them.
    let want: Vec<&str> = expected
        .iter()
        .filter(|(_, m)| m.contains(&tcust))
        .map(|(id, _)| id.as_str())
        .collect();
    let (_, mine) = get(
        &c,
        s.url(&format!("/v1/customers/{}/segments", enc(&tcust))),
    )
    .await;
    assert_eq!(mine["customer_id"], tcust.as_str());
    let got: Vec<&str> = mine["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, want);

    // Changes (the first refresh records everyone as entered) and history.
    let (_, feed) = get(
        &c,
        s.url(&format!("/v1/segments/{big}/changes?limit=10000")),
    )
    .await;
    let entered: Vec<String> = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|ch| {
            assert_eq!(ch["change"], "entered");
            assert_eq!(ch["at"], as_of);
        })
        .map(|ch| ch["customer_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(entered, sorted);
    let (_, again) = get(
        &c,
        s.url(&format!(
            "/v1/segments/{big}/changes?since={}",
            feed["next_cursor"].as_str().unwrap()
        )),
    )
    .await;
    assert_eq!(again["changes"], json!([]));
    let (_, history) = get(&c, s.url(&format!("/v1/segments/{big}/history"))).await;
    assert_eq!(history["refreshes"].as_array().unwrap().len(), 1);
    assert_eq!(history["refreshes"][0]["size"], sorted.len());

    // Explain: the whole condition held exactly for members, and every condition is reported.
    for (seg, members) in expected.iter().take(20) {
        let (_, definition) = get(&c, s.url(&format!("/v1/segments/{seg}"))).await;
        for customer in ["c009", "c004", "c050"] {
            let (status, why) = get(
                &c,
                s.url(&format!(
                    "/v1/segments/{seg}/members/{customer}?explain=true"
                )),
            )
            .await;
            assert_eq!(status, 200, "{why}");
            let is_member = members.iter().any(|m| m == customer);
            assert_eq!(why["member"], is_member, "{seg} {customer}");
            assert_eq!(why["explained_as_of"], as_of);
            assert_eq!(why["in_universe"], true);
            let conditions = why["conditions"].as_array().unwrap();
            assert_eq!(conditions[0]["path"], "condition");
            assert_eq!(conditions[0]["condition"], definition["condition"]);
            assert_eq!(conditions[0]["held"], is_member, "{seg} {customer}: {why}");
            for condition in conditions {
                assert!(condition["explanation"].as_str().unwrap().len() > 5);
                // A second figure only where there is one (percent rank, follow-ups).
                assert_ne!(condition.get("rank_or_follow_ups"), Some(&json!("")));
            }
        }
    }

    // Preview: the stored definition itself enters and exits nobody; a list of instants.
    let (status, p) = post(
        &c,
        s.url("/v1/segments/preview"),
        json!({"definition": expected_definition(&a, big), "as_of": as_of, "sample": 3}),
    )
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["size"], sorted.len());
    assert_eq!(ids(&p["sample"]), sorted[..3.min(sorted.len())].to_vec());
    assert_eq!(
        (p["entered"].clone(), p["exited"].clone()),
        (json!(0), json!(0))
    );
    let mut fresh = expected_definition(&a, big);
    fresh["id"] = json!("not-stored-yet");
    let (_, p) = post(
        &c,
        s.url("/v1/segments/preview"),
        json!({"definition": fresh, "as_of": as_of}),
    )
    .await;
    assert!(p["entered"].is_null() && p["exited"].is_null(), "{p}");
    let (_, sizes) = post(
        &c,
        s.url("/v1/segments/preview"),
        json!({"definition": expected_definition(&a, big), "as_of": ["2025-06-01", as_of]}),
    )
    .await;
    assert_eq!(sizes["sizes"][1]["size"], sorted.len(), "{sizes}");
    assert_eq!(sizes["sizes"][0]["as_of"], "2025-06-01T00:00:00Z");

    // SQL as JSON, CSV and Arrow.
    let query = format!("SELECT count(*) AS n FROM memberships WHERE segment_id = '{big}'");
    let (status, result) = post(&c, s.url("/v1/sql"), json!({"sql": query})).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result, json!({"columns": ["n"], "rows": [[sorted.len()]]}));
    let sql = |text: &str| c.post(s.url("/v1/sql")).json(&json!({ "sql": text }));
    let csv = accepting(sql("SELECT 'İğdır' AS city, 2 AS n"), CSV)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv, "city,n\nİğdır,2\n");
    let arrow = accepting(
        sql("SELECT customer_id FROM customers ORDER BY 1 LIMIT 4"),
        ARROW,
    )
    .await;
    let rows: usize = arrow_batches(arrow)
        .await
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 4);

    // Operations.
    let (status, health) = get(&c, s.url("/healthz")).await;
    assert_eq!(
        (status, health["status"].clone()),
        (StatusCode::OK, json!("ok"))
    );
    let metrics = text_of(&c, s.url("/metrics")).await;
    assert!(
        metrics.contains("kitle_http_request_duration_seconds_bucket")
            && metrics.contains("route=\"/v1/segments/{id}/members/{customer_id}\""),
        "{metrics}"
    );
    assert!(metrics.contains("kitle_refresh_duration_seconds"));
    assert!(metrics.contains("kitle_index_bytes "), "{metrics}");
    // The refreshes' store requests and bytes, counted at the object store.
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    assert!(value("kitle_refresh_store_requests_total{op=\"get\"}") > 0.0);
    assert!(value("kitle_refresh_store_requests_total{op=\"list\"}") > 0.0);
    assert!(value("kitle_refresh_store_bytes_total{direction=\"read\"}") > 0.0);
    assert!(value("kitle_refresh_store_bytes_total{direction=\"written\"}") > 0.0);
    assert!(metrics.contains(&format!("kitle_segment_size{{segment=\"{big}\"}}")));
    let (_, openapi) = get(&c, s.url("/openapi.json")).await;
    for path in [
        "/v1/segments",
        "/v1/segments/{id}",
        "/v1/segments/preview",
        "/v1/segments/{id}/refresh",
        "/v1/refresh",
        "/v1/segments/{id}/members",
        "/v1/segments/{id}/members/{customer_id}",
        "/v1/customers/{customer_id}/segments",
        "/v1/customers/{customer_id}/erase",
        "/v1/segments/{id}/changes",
        "/v1/segments/{id}/history",
        "/v1/sql",
        "/healthz",
        "/metrics",
    ] {
        assert!(openapi["paths"].get(path).is_some(), "{path} missing");
    }

    // Graceful stop on SIGTERM.
    let status = s
        .terminate(Duration::from_secs(20))
        .expect("exits on SIGTERM");
    assert!(status.success(), "{status:?}");
}

fn expected_definition(scenario: &Value, id: &str) -> Value {
    scenario["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap()
        .clone()
}

/// Bad input gets a JSON error with a stable code and a 4xx status, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_stable_error_codes() {
    let b = scenario("B");
    let dir = store_dir(
        "[serve]\nscheduler = false\nmax_body_bytes = 65536\nsql_memory_limit_mb = 4\nsql_timeout_seconds = 2\n",
    );
    let s = serve(dir.path(), &[]);
    let c = client();
    let segments = b["segments"].as_array().unwrap();
    for d in segments {
        let (status, _) = put(
            &c,
            s.url(&format!("/v1/segments/{}", d["id"].as_str().unwrap())),
            d,
        )
        .await;
        assert_eq!(status, 201);
    }
    let put_segment =
        |id: &str, body: Value| c.put(s.url(&format!("/v1/segments/{id}"))).json(&body);

    // An invalid definition: 400 with every problem and its JSON path.
    let (status, code_, body) = call(put_segment(
        "broken",
        json!({"condition": {"all": [{"event": "order_created", "period": {"last": "3 weeks"}},
                {"event": "order_created", "op": "gtee", "value": 1}]}}),
    ))
    .await;
    assert_eq!(
        (status, code_.as_str()),
        (400, "invalid_definition"),
        "{body}"
    );
    let paths: BTreeSet<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains("condition.all[0].period.last"), "{body}");
    assert!(paths.contains("condition.all[1].op"), "{body}");
    // Checked against the store's schema too.
    let (status, code_, body) = call(put_segment(
        "broken",
        json!({"condition": {"attribute": "no_such_column", "op": "eq", "value": 1}}),
    ))
    .await;
    assert_eq!(
        (status, code_.as_str()),
        (400, "invalid_definition"),
        "{body}"
    );
    assert_eq!(
        body["error"]["details"][0]["path"], "condition.attribute",
        "{body}"
    );

    // The body's id differs from the path's.
    let (status, code_, _) = call(put_segment(
        "one",
        json!({"id": "two", "condition": {"segment": "consent-granted"}}),
    ))
    .await;
    assert_eq!((status, code_.as_str()), (400, "id_mismatch"));

    // Not JSON; too large.
    let (status, code_, _) = call(c.put(s.url("/v1/segments/x")).body("{not json")).await;
    assert_eq!((status, code_.as_str()), (400, "invalid_json"));
    let huge = json!({"condition": {"sql": format!("SELECT customer_id FROM customers WHERE '{}' <> ''", "x".repeat(70_000))}});
    let (status, code_, _) = call(put_segment("huge", huge)).await;
    assert_eq!((status, code_.as_str()), (413, "payload_too_large"));

    // Unknown segment; unknown route.
    let (status, code_, _) = call(c.get(s.url("/v1/segments/nope"))).await;
    assert_eq!((status, code_.as_str()), (404, "segment_not_found"));
    let (status, code_, _) = call(c.get(s.url("/v1/segments/nope/members/c1"))).await;
    assert_eq!((status, code_.as_str()), (404, "segment_not_found"));
    let (status, code_, _) = call(c.get(s.url("/v2/nothing"))).await;
    assert_eq!((status, code_.as_str()), (404, "not_found"));

    // A segment others refer to cannot be removed; removal of a free one works.
    let r = put_segment(
        "refers",
        json!({"condition": {"segment": "consent-granted"}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let (status, code_, body) = call(c.delete(s.url("/v1/segments/consent-granted"))).await;
    assert_eq!((status, code_.as_str()), (409, "segment_in_use"));
    assert_eq!(body["error"]["details"][0]["referenced_by"], "refers");
    let r = c.delete(s.url("/v1/segments/refers")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = c.delete(s.url("/v1/segments/refers")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // SQL that writes or changes settings is refused; a bad query is the caller's error.
    for statement in [
        "CREATE TABLE t AS SELECT 1",
        "INSERT INTO memberships VALUES ('a', 'b', now())",
        "SET datafusion.execution.batch_size = 1",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
    ] {
        let (status, code_, body) =
            call(c.post(s.url("/v1/sql")).json(&json!({"sql": statement}))).await;
        assert_eq!(status, 400, "{statement}: {body}");
        assert!(
            ["sql_refused", "sql_error"].contains(&code_.as_str()),
            "{statement}: {body}"
        );
    }
    let (status, code_, _) = call(
        c.post(s.url("/v1/sql"))
            .json(&json!({"sql": "SELECT nope FROM nowhere"})),
    )
    .await;
    assert_eq!((status, code_.as_str()), (400, "sql_error"));

    // Queries beyond the configured memory and time limits are stopped.
    let (status, code_, body) = call(c.post(s.url("/v1/sql"))
            .json(&json!({"sql": "SELECT count(*) FROM generate_series(1, 3000000) a JOIN generate_series(1, 3000000) b ON a.value = b.value"}))).await;
    assert_eq!(
        (status, code_.as_str()),
        (400, "sql_resource_limit"),
        "{body}"
    );
    // 4·10¹⁰ pairs: hours without the limit, so the answer's code is the proof that the limit
    // stopped it (no wall-clock bound here: one poll of the nested-loop join is seconds of work
    // on a loaded machine, and that is when the deadline is looked at).
    let (status, code_, body) = call(c.post(s.url("/v1/sql"))
            .json(&json!({"sql": "SELECT count(*) FROM generate_series(1, 200000) a, generate_series(1, 200000) b WHERE a.value + b.value = 7"}))).await;
    assert_eq!((status, code_.as_str()), (400, "sql_time_limit"), "{body}");

    // Bad cursors and instants.
    let (status, code_, _) =
        call(c.get(s.url("/v1/segments/consent-granted/members?cursor=zz"))).await;
    assert_eq!((status, code_.as_str()), (400, "invalid_cursor"));
    let (status, code_, _) =
        call(c.get(s.url("/v1/segments/consent-granted/changes?since=99-0"))).await;
    assert_eq!((status, code_.as_str()), (400, "invalid_cursor"));
    let (status, code_, _) = call(
        c.post(s.url("/v1/refresh"))
            .json(&json!({"as_of": "yesterday"})),
    )
    .await;
    assert_eq!((status, code_.as_str()), (400, "invalid_parameter"));

    // Nothing was stored by the refused requests.
    let (_, list) = get(&c, s.url("/v1/segments")).await;
    let stored: BTreeSet<&str> = list["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let wanted: BTreeSet<&str> = segments.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(stored, wanted);
}

/// Tokens: no token → 401, read token → reads but 403 on writes, admin → everything; open
/// probes; without tokens the service refuses to listen beyond loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_grant_read_and_admin_scopes() {
    let read = "read-token-0123456789";
    let admin = "admin-token-0123456789";
    let dir = store_dir(&format!(
        "[serve]\nscheduler = false\n[[serve.tokens]]\ntoken = \"{read}\"\nscope = \"read\"\n\
         [[serve.tokens]]\ntoken = \"{admin}\"\nscope = \"admin\"\n"
    ));
    let s = serve(dir.path(), &[]);
    let c = client();
    let definition =
        json!({"condition": {"attribute": "email_consent", "op": "eq", "value": "granted"}});
    let (status, code_, _) = call(c.get(s.url("/v1/segments"))).await;
    assert_eq!((status, code_.as_str()), (401, "unauthorized"));
    let (status, code_, _) = call(
        c.get(s.url("/v1/segments"))
            .bearer_auth("wrong-token-0123456789"),
    )
    .await;
    assert_eq!((status, code_.as_str()), (401, "unauthorized"));
    let (status, code_, _) = call(
        c.put(s.url("/v1/segments/granted"))
            .bearer_auth(read)
            .json(&definition),
    )
    .await;
    assert_eq!((status, code_.as_str()), (403, "forbidden"));
    let r = c
        .put(s.url("/v1/segments/granted"))
        .bearer_auth(admin)
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (status, code_, _) = call(
        c.post(s.url("/v1/segments/granted/refresh"))
            .bearer_auth(read),
    )
    .await;
    assert_eq!((status, code_.as_str()), (403, "forbidden"));
    let r = c
        .post(s.url("/v1/segments/granted/refresh"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for path in [
        "/v1/segments",
        "/v1/segments/granted/members",
        "/v1/segments/granted/members/c009",
        "/v1/customers/c009/segments",
        "/v1/segments/granted/changes",
        "/v1/segments/granted/history",
    ] {
        let r = c.get(s.url(path)).bearer_auth(read).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = c
        .post(s.url("/v1/sql"))
        .bearer_auth(read)
        .json(&json!({"sql": "SELECT 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for open in ["/healthz", "/metrics", "/openapi.json"] {
        assert_eq!(c.get(s.url(open)).send().await.unwrap().status(), 200);
    }

    // Without tokens, no listening on a non-loopback address.
    let bare = store_dir("");
    let out = kitle(&["serve", "--listen", "0.0.0.0:0"], &[], bare.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("without tokens"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Several refreshes at different instants; a consumer polling the feed with small pages and
/// always the last cursor gets exactly the entries and exits between consecutive versions,
/// each once. A member listing started before a refresh finishes on its first version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_feed_delivers_every_change_exactly_once() {
    let dir = store_dir("[serve]\nscheduler = false\n");
    let s = serve(dir.path(), &[]);
    let c = client();
    let id = "ordered-recently";
    let (status, _) = put(&c, s.url(&format!("/v1/segments/{id}")), &json!({"condition": {"event": "order_created", "op": "gte", "value": 1, "period": {"last": "21d"}}})).await;
    assert_eq!(status, 201);

    let instants = [
        "2025-10-20T00:00:00Z",
        "2025-11-05T00:00:00Z",
        "2025-11-15T00:00:00Z",
        "2025-11-29T00:00:00Z",
        "2025-12-01T12:00:00Z",
        "2025-12-20T00:00:00Z",
        "2026-01-10T00:00:00Z",
    ];
    let mut previous: BTreeSet<String> = BTreeSet::new();
    let mut expected: Vec<(String, String, String)> = Vec::new();
    let mut received: Vec<(String, String, String)> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut stale_cursor: Option<(String, Vec<String>)> = None;
    let mut changed = 0;
    for (round, at) in instants.iter().enumerate() {
        // A listing started on this version, continued after the next refresh.
        if round == 3 {
            let (_, page) = get(&c, s.url(&format!("/v1/segments/{id}/members?limit=2"))).await;
            if let Some(next) = page["next_cursor"].as_str() {
                stale_cursor = Some((next.to_string(), previous.iter().cloned().collect()));
            }
        }
        let (status, outcome) = post(
            &c,
            s.url(&format!("/v1/segments/{id}/refresh")),
            json!({"as_of": at}),
        )
        .await;
        assert_eq!(status, 200, "{outcome}");
        let now: BTreeSet<String> = all_pages(&c, &s, id, 1000).await.into_iter().collect();
        let mut round_changes: Vec<(String, String, String)> = now
            .difference(&previous)
            .map(|c| (c.clone(), "entered".to_string(), at.to_string()))
            .collect();
        round_changes.extend(
            previous
                .difference(&now)
                .map(|c| (c.clone(), "exited".to_string(), at.to_string())),
        );
        if !round_changes.is_empty() {
            changed += 1;
        }
        assert_eq!(
            outcome["segments"][0]["entered"],
            now.difference(&previous).count()
        );
        assert_eq!(
            outcome["segments"][0]["exited"],
            previous.difference(&now).count()
        );
        expected.extend(round_changes);
        previous = now;

        // Poll until an empty page, three changes at a time.
        for _ in 0..10_000 {
            let mut url = s.url(&format!("/v1/segments/{id}/changes?limit=3"));
            if let Some(cur) = &cursor {
                url.push_str(&format!("&since={cur}"));
            }
            let (status, page) = get(&c, url).await;
            assert_eq!(status, 200, "{page}");
            cursor = Some(
                page["next_cursor"]
                    .as_str()
                    .expect("always set")
                    .to_string(),
            );
            let items = page["changes"].as_array().unwrap();
            if items.is_empty() {
                break;
            }
            received.extend(items.iter().map(|ch| {
                (
                    ch["customer_id"].as_str().unwrap().to_string(),
                    ch["change"].as_str().unwrap().to_string(),
                    ch["at"].as_str().unwrap().to_string(),
                )
            }));
        }
    }
    assert!(changed >= 4, "the instants should change the membership");
    let mut e = expected.clone();
    let mut r = received.clone();
    e.sort();
    r.sort();
    assert_eq!(r, e, "every change exactly once");
    assert_eq!(received.len(), expected.len());
    let (_, history) = get(&c, s.url(&format!("/v1/segments/{id}/history"))).await;
    let refreshes = history["refreshes"].as_array().unwrap();
    assert_eq!(refreshes.len(), instants.len());
    assert_eq!(refreshes[0]["as_of"], *instants.last().unwrap());

    // The listing started on version 3 finishes on version 3's members.
    let (cursor, version_three) = stale_cursor.expect("version 3 has more than 2 members");
    let mut rest = Vec::new();
    let mut next = Some(cursor);
    while let Some(cur) = next {
        let (status, page) = get(
            &c,
            s.url(&format!("/v1/segments/{id}/members?limit=2&cursor={cur}")),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        rest.extend(
            page["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["customer_id"].as_str().unwrap().to_string()),
        );
        next = page["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(rest, version_three[2..].to_vec());
}

/// Two segments with the same definition are refreshed together, back and forth between
/// instants where their membership differs, while readers ask for customers' segments: no
/// answer ever has one of the pair without the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_during_refreshes_see_whole_versions() {
    let dir = store_dir("[serve]\nscheduler = false\n");
    let s = serve(dir.path(), &[]);
    let c = client();
    let condition =
        json!({"event": "order_created", "op": "gte", "value": 1, "period": {"last": "14d"}});
    for id in ["twin-a", "twin-b"] {
        let (status, _) = put(
            &c,
            s.url(&format!("/v1/segments/{id}")),
            &json!({"condition": condition}),
        )
        .await;
        assert_eq!(status, 201);
    }
    let customers: Vec<String> = {
        let (_, result) = post(
            &c,
            s.url("/v1/sql"),
            json!({"sql": "SELECT DISTINCT customer_id FROM events WHERE event_type = 'order_created' ORDER BY 1"}),
        )
        .await;
        result["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[0].as_str().unwrap().to_string())
            .collect()
    };
    assert!(customers.len() > 5);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for worker in 0..3 {
        let c = c.clone();
        let base = s.base.clone();
        let customers = customers.clone();
        let stop = std::sync::Arc::clone(&stop);
        readers.push(tokio::spawn(async move {
            let (mut answers, mut with_pair, mut etags) = (0u64, 0u64, BTreeSet::new());
            let mut i = worker;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let customer = &customers[i % customers.len()];
                i += 1;
                let r = c
                    .get(format!("{base}/v1/customers/{}/segments", enc(customer)))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                etags.insert(r.headers()["etag"].to_str().unwrap().to_string());
                let body: Value = r.json().await.unwrap();
                let ids: BTreeSet<&str> = body["segments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["id"].as_str().unwrap())
                    .collect();
                assert_eq!(
                    ids.contains("twin-a"),
                    ids.contains("twin-b"),
                    "{customer}: {body}"
                );
                answers += 1;
                with_pair += u64::from(ids.contains("twin-a"));
            }
            (answers, with_pair, etags)
        }));
    }
    let instants = [
        "2025-11-15T00:00:00Z",
        "2025-12-01T12:00:00Z",
        "2026-01-10T00:00:00Z",
    ];
    let mut sizes = BTreeSet::new();
    for round in 0..9 {
        let (status, outcome) = post(
            &c,
            s.url("/v1/refresh"),
            json!({"as_of": instants[round % instants.len()]}),
        )
        .await;
        assert_eq!(status, 200, "{outcome}");
        sizes.insert(outcome["segments"][0]["size"].as_u64().unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    let mut total_with_pair = 0;
    let mut versions = BTreeSet::new();
    for r in readers {
        let (answers, with_pair, etags) = r.await.unwrap();
        total += answers;
        total_with_pair += with_pair;
        versions.extend(etags);
    }
    // Both states were seen: answers holding the pair and answers holding neither, so the
    // check above compared real versions, not only empty answers.
    assert!(
        total_with_pair > 0 && total_with_pair < total,
        "{total_with_pair} of {total} answers held the twin segments"
    );
    assert!(
        sizes.len() >= 2,
        "the instants should give different sizes: {sizes:?}"
    );
    assert!(total > 50, "readers answered only {total} times");
    assert!(
        versions.len() >= 3,
        "readers should have seen several versions: {versions:?}"
    );
}

/// A refresh that fails at run time answers 500 and leaves the previous memberships served
/// and the history untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_keeps_the_previous_memberships_served() {
    let dir = store_dir("[serve]\nscheduler = false\n");
    let s = serve(dir.path(), &[]);
    let c = client();
    let id = "granted";
    let good = json!({"condition": {"attribute": "email_consent", "op": "eq", "value": "granted"}});
    let (status, _) = put(&c, s.url(&format!("/v1/segments/{id}")), &good).await;
    assert_eq!(status, 201);
    let (status, _) = post(&c, s.url(&format!("/v1/segments/{id}/refresh")), json!({})).await;
    assert_eq!(status, 200);
    let before = all_pages(&c, &s, id, 1000).await;
    assert!(!before.is_empty());
    // Plans, but fails while running: customer ids are not numbers.
    let failing = json!({"condition": {"sql": "SELECT customer_id FROM customers WHERE CAST(customer_id AS INT) > 0"}});
    let (status, _) = put(&c, s.url(&format!("/v1/segments/{id}")), &failing).await;
    assert_eq!(status, 200);
    let (status, code_, body) = call(c.post(s.url(&format!("/v1/segments/{id}/refresh")))).await;
    assert_eq!(
        (status, code_.as_str()),
        (500, "execution_failed"),
        "{body}"
    );
    assert_eq!(all_pages(&c, &s, id, 1000).await, before);
    let (_, history) = get(&c, s.url(&format!("/v1/segments/{id}/history"))).await;
    assert_eq!(history["refreshes"].as_array().unwrap().len(), 1);
    let metrics = text_of(&c, s.url("/metrics")).await;
    assert!(
        metrics.contains("kitle_refreshes_total{trigger=\"http\",status=\"failed\"} 1"),
        "{metrics}"
    );
}

/// A segment with a cadence is refreshed by the scheduler without being asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_refreshes_segments_that_are_due() {
    // An hourly segment comes due again at the top of every hour, so a test that crossed one
    // would see a second scheduled refresh: start at least three minutes before the next hour.
    let into_hour = chrono::Utc::now().timestamp().rem_euclid(3600);
    if into_hour > 3600 - 180 {
        tokio::time::sleep(Duration::from_secs((3600 - into_hour + 2).unsigned_abs())).await;
    }
    let dir = store_dir("[serve]\nscheduler_tick_seconds = 1\n");
    let granted = json!({"attribute": "email_consent", "op": "eq", "value": "granted"});
    // Plans, but fails while running: customer ids are not numbers.
    let broken =
        json!({"sql": "SELECT customer_id FROM customers WHERE CAST(customer_id AS INT) > 0"});
    let put = |id: &str, refresh: &str, condition: &Value| {
        let file = dir.path().join(format!("{id}.json"));
        std::fs::write(
            &file,
            json!({"id": id, "refresh": refresh, "condition": condition}).to_string(),
        )
        .unwrap();
        kitle_ok(&["segment", "put", file.to_str().unwrap()], &[], dir.path());
    };
    put("hourly-one", "hourly", &granted);
    put("manual-one", "manual", &granted);
    put("broken-hourly", "hourly", &broken);
    let s = serve(dir.path(), &[]);
    let c = client();
    let mut refreshed = false;
    for _ in 0..120 {
        let (_, history) = get(&c, s.url("/v1/segments/hourly-one/history")).await;
        if !history["refreshes"].as_array().unwrap().is_empty() {
            refreshed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(refreshed, "the hourly segment was not refreshed");
    let (_, manual) = get(&c, s.url("/v1/segments/manual-one/history")).await;
    assert_eq!(
        manual["refreshes"],
        json!([]),
        "a manual segment waits to be asked"
    );
    // Refreshed once, not again at every tick: the next hourly occurrence is still ahead.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, history) = get(&c, s.url("/v1/segments/hourly-one/history")).await;
    assert_eq!(history["refreshes"].as_array().unwrap().len(), 1);
    // The broken segment did not hold the other back; it failed, is counted, and is retried
    // with growing waits (1 s, 2 s, … here), not at every tick.
    let (_, broken) = get(&c, s.url("/v1/segments/broken-hourly/history")).await;
    assert_eq!(broken["refreshes"], json!([]));
    let metrics = text_of(&c, s.url("/metrics")).await;
    assert!(
        metrics.contains("kitle_refreshes_total{trigger=\"schedule\",status=\"ok\"} 1"),
        "{metrics}"
    );
    let failed: f64 = metrics
        .lines()
        .find(|l| l.starts_with("kitle_refreshes_total{trigger=\"schedule\",status=\"failed\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("failed scheduled refreshes are counted");
    // The joint run and the broken segment alone at the first tick, then a few retries: the
    // backoff keeps it well under one per tick.
    assert!((2.0..=5.0).contains(&failed), "{failed} failed runs");
    assert!(
        metrics.contains("kitle_schedule_failing_segments 1"),
        "{metrics}"
    );

    // A refresh by another process (the CLI) is picked up at a tick.
    kitle_ok(&["refresh", "manual-one"], &[], dir.path());
    let mut seen = false;
    for _ in 0..60 {
        let (_, manual) = get(&c, s.url("/v1/segments/manual-one/history")).await;
        if manual["refreshes"].as_array().unwrap().len() == 1 {
            let (_, page) = get(&c, s.url("/v1/segments/manual-one/members")).await;
            assert!(!page["members"].as_array().unwrap().is_empty());
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(seen, "the CLI's refresh was not picked up");
}

/// `kitle demo` on an empty folder: a shop, the ready-made segments, served — and the `curl`
/// lines it prints answer 200 with JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_the_ready_made_segments_and_its_curl_lines_work() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &["demo", "--customers", "1500", "--days", "60"],
        &[],
        dir.path(),
        Some("Ctrl-C"),
        Duration::from_secs(300),
    );
    assert!(dir.path().join("kitle-data/customers").exists());
    let c = client();
    let (_, list) = get(&c, s.url("/v1/segments")).await;
    let ready_made = std::fs::read_dir(shared_queries()).unwrap().count();
    assert_eq!(list["segments"].as_array().unwrap().len(), ready_made);
    let lines: Vec<&String> = s
        .banner
        .iter()
        .filter(|l| l.trim_start().starts_with("curl"))
        .collect();
    assert!(lines.len() >= 7, "{:?}", s.banner);
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let url = words
            .iter()
            .find(|w| w.trim_matches('\'').starts_with("http://"))
            .unwrap()
            .trim_matches('\'');
        let response = if let Some(at) = line.find(" -d '") {
            let body = &line[at + 5..line.rfind('\'').unwrap()];
            c.post(url).body(body.to_string()).send().await.unwrap()
        } else {
            c.get(url).send().await.unwrap()
        };
        assert_eq!(response.status(), 200, "{line}");
        let text = response.text().await.unwrap();
        assert!(
            serde_json::from_str::<Value>(&text).is_ok(),
            "{line}: {text}"
        );
    }
}

fn shared_queries() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../queries/segments")
}
