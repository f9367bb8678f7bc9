//! The web console: its routes over HTTP (static files, `/v1/auth`, `/v1/schema`,
//! `/v1/templates`), and the console itself in a real, headless Chromium driven by
//! `tests/console/drive.py` (Playwright) against the real `kitle demo` — a marketer's
//! session, compared step by step with what the HTTP API answers.

mod driver;
mod funnels;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{Server, conformance_store, copy_tree, kitle_binary};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "console-admin-token-0123456789";
const READ: &str = "console-read-token-0123456789";
/// What the driver types as the new segment's name (and so its id, made from the name).
const NAME: &str = "İğdır: favoriye ekleyip sipariş vermeyenler";
const SLUG: &str = "igdir-favoriye-ekleyip-siparis-vermeyenler";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(180))
        .build()
        .unwrap()
}

async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = c.request(method, url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(c: &reqwest::Client, url: String, token: Option<&str>) -> (StatusCode, Value) {
    call(c, reqwest::Method::GET, url, token, None).await
}

async fn post(c: &reqwest::Client, url: String, token: &str, body: Value) -> (StatusCode, Value) {
    call(c, reqwest::Method::POST, url, Some(token), Some(body)).await
}

fn ready_made() -> BTreeMap<String, Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../queries/segments");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let doc: Value = serde_json::from_str(&text).unwrap();
            (doc["id"].as_str().unwrap().to_string(), doc)
        })
        .collect()
}

/// The console's files, `/v1/auth`, `/v1/schema` and `/v1/templates` on the conformance
/// store (which has a custom customer column and an extra event property).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_files_auth_schema_and_templates_over_http() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&conformance_store(), &dir.path().join("store"));
    std::fs::write(
        dir.path().join("kitle.toml"),
        "store = \"store\"\n[serve]\nscheduler = false\n",
    )
    .unwrap();
    let env = [("KITLE_TOKENS", format!("read:{READ},admin:{ADMIN}"))];
    let s = Server::start(&["serve"], &env, dir.path(), None, Duration::from_secs(90));
    let c = client();

    // The page and its modules need no token; each carries an entity tag that revalidates.
    let page = c.get(s.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/console/js/app.js"), "{html}");
    let module = c.get(s.url("/console/js/app.js")).send().await.unwrap();
    assert_eq!(module.status(), 200);
    assert!(
        module.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let etag = module.headers()["etag"].to_str().unwrap().to_string();
    let again = c
        .get(s.url("/console/js/app.js"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let licence = c.get(s.url("/console/vendor/uplot/LICENSE")).send().await;
    assert!(licence.unwrap().text().await.unwrap().contains("MIT"));
    let (status, missing) = get(&c, s.url("/console/nothing.js"), None).await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "not_found");
    // An encoded `../` reaches the handler as a path that would leave the folder: refused.
    let (status, _) = get(&c, s.url("/console/..%2FCargo.toml"), None).await;
    assert_eq!(status, 404);

    // Whether a token is needed, and the scope of the presented one.
    let (status, auth) = get(&c, s.url("/v1/auth"), None).await;
    assert_eq!(status, 200);
    assert_eq!(auth, json!({"tokens_required": true, "scope": null}));
    let (_, auth) = get(&c, s.url("/v1/auth"), Some(READ)).await;
    assert_eq!(auth, json!({"tokens_required": true, "scope": "read"}));
    let (_, auth) = get(&c, s.url("/v1/auth"), Some(ADMIN)).await;
    assert_eq!(auth, json!({"tokens_required": true, "scope": "admin"}));
    let (status, auth) = get(&c, s.url("/v1/auth"), Some("an-unknown-token-0000")).await;
    assert_eq!(status, 401);
    assert_eq!(auth["error"]["code"], "unauthorized");
    let (status, _) = get(&c, s.url("/v1/schema"), None).await;
    assert_eq!(status, 401);

    // The schema: contract columns and extra ones, with their families and operators.
    let (status, schema) = get(&c, s.url("/v1/schema"), Some(READ)).await;
    assert_eq!(status, 200, "{schema}");
    let column = |table: &str, name: &str| -> Value {
        schema[table]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{table}.{name} missing: {schema}"))
            .clone()
    };
    assert_eq!(column("customers", "email")["type"], "text");
    assert!(
        column("customers", "email")["operators"]
            .as_array()
            .unwrap()
            .contains(&json!("domain_in"))
    );
    assert_eq!(column("customers", "tags")["type"], "text_list");
    assert_eq!(
        column("customers", "tags")["operators"],
        json!(["is_set", "is_not_set", "has_any", "has_all", "has_none"])
    );
    assert_eq!(column("customers", "registered_at")["type"], "timestamp");
    assert_eq!(column("customers", "loyalty_points")["type"], "number");
    assert_eq!(column("events", "amount")["type"], "number");
    assert_eq!(column("events", "coupon_code")["type"], "text");
    assert!(
        !column("events", "coupon_code")["operators"]
            .as_array()
            .unwrap()
            .contains(&json!("domain_in"))
    );
    // The event type counts agree with analyst SQL over the same store.
    let (status, sql) = post(
        &c,
        s.url("/v1/sql"),
        READ,
        json!({"sql": "SELECT event_type, count(*) AS n FROM events GROUP BY event_type"}),
    )
    .await;
    assert_eq!(status, 200, "{sql}");
    let expected: BTreeMap<String, u64> = sql["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_u64().unwrap()))
        .collect();
    let counted: BTreeMap<String, u64> = schema["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["event_type"].as_str().unwrap().to_string(),
                t["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counted, expected);
    let counts: Vec<u64> = schema["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["count"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");

    // The templates are the ready-made files, as shipped.
    let (status, templates) = get(&c, s.url("/v1/templates"), Some(READ)).await;
    assert_eq!(status, 200);
    let served: BTreeMap<String, Value> = templates["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap().to_string(), t.clone()))
        .collect();
    assert_eq!(served, ready_made());

    // All three are in the OpenAPI document.
    let (_, openapi) = get(&c, s.url("/openapi.json"), None).await;
    for route in ["/v1/auth", "/v1/schema", "/v1/templates"] {
        assert!(openapi["paths"][route]["get"].is_object(), "{route}");
    }
}

/// Where the browser test leaves its screenshots and report.
/// The builder's live preview in a driver report `shown` (its instant, size and sample of 12)
/// equals `POST /v1/segments/preview` of `definition` at the same instant, and is not empty.
async fn assert_live_preview_is_the_apis(
    c: &reqwest::Client,
    s: &Server,
    definition: &Value,
    shown: &Value,
) {
    let (_, preview) = post(
        c,
        s.url("/v1/segments/preview"),
        READ,
        json!({"definition": definition, "as_of": shown["preview_as_of"], "sample": 12}),
    )
    .await;
    assert_eq!(shown["preview_size"], preview["size"], "{preview}");
    assert!(preview["size"].as_u64().unwrap() > 0, "{preview}");
    assert_eq!(shown["sample"], preview["sample"]);
}

fn artefacts() -> PathBuf {
    let dir = std::env::var_os("KITLE_TEST_ARTEFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| kitle_binary().parent().unwrap().join("test-artefacts"))
        .join("console");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A marketer's session in a real browser on `kitle demo`, with tokens: sign in, the list,
/// a ready-made segment as a start, a segment built in the builder (validation at its row,
/// live preview), saved, refreshed, its history and members and CSV, a refused delete, a
/// customer's explanation, SQL, a 3-step sequence (funnel) built and the ready-made funnels
/// opened as sequence rows, a funnel member's steps, a customer erased from their page — and
/// a read token that sees no admin buttons. Every figure the pages showed is compared with
/// the API's answer (those before the erasure while the driver waits, see `driver`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_builds_saves_and_explains_a_segment_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kitle.toml"),
        "[serve]\nscheduler = false\n",
    )
    .unwrap();
    let env = [("KITLE_TOKENS", format!("read:{READ},admin:{ADMIN}"))];
    let s = Server::start(
        &["demo", "--customers", "800", "--days", "60"],
        &env,
        dir.path(),
        Some("Ctrl-C"),
        Duration::from_secs(300),
    );
    let console_line = format!("console: {}/", s.base);
    assert!(
        s.banner.iter().any(|l| l.starts_with(&console_line)),
        "kitle demo prints the console's URL: {:?}",
        s.banner
    );
    let c = client();
    let (_, list) = get(&c, s.url("/v1/segments"), Some(READ)).await;

    let out = artefacts();
    let started = Instant::now();
    let mut drive = driver::Drive::start(&s.base, &out, Duration::from_secs(480));
    let r = drive.paused();

    // Signing in.
    assert_eq!(
        r["unknown_token_error"],
        "The service does not know this token."
    );
    assert_eq!(r["admin_scope"], "admin");

    // The list: every stored segment (the ready-made ones) with the API's size.
    let api_sizes: BTreeMap<String, Value> = list["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s["size"].clone()))
        .collect();
    let shown: BTreeMap<String, String> = r["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["id"].as_str().unwrap().to_string(),
                row["size_text"].as_str().unwrap().replace(',', ""),
            )
        })
        .collect();
    assert_eq!(
        shown.keys().collect::<BTreeSet<_>>(),
        ready_made().keys().collect::<BTreeSet<_>>()
    );
    for (id, size) in &api_sizes {
        assert_eq!(
            shown[id],
            size.as_u64().unwrap().to_string(),
            "size of {id}"
        );
    }
    for row in r["list"].as_array().unwrap() {
        assert_eq!(row["refreshes"], 1, "{row}");
        assert_eq!(row["sparkline_canvases"], 1, "{row}");
    }
    let templates: BTreeSet<String> = strings(&r["templates"]).into_iter().collect();
    assert_eq!(
        templates,
        ready_made().keys().cloned().collect::<BTreeSet<_>>()
    );
    let sepet: BTreeSet<String> = strings(&r["search_sepet"]).into_iter().collect();
    let expected_sepet: BTreeSet<String> = list["segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"].as_str().unwrap().to_lowercase().contains("sepet"))
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!expected_sepet.is_empty());
    assert_eq!(sepet, expected_sepet, "searching SEPET");

    // A ready-made segment as a start: its definition, under a free id, previewed.
    let tb = &r["template_builder"];
    let template = &ready_made()["blog-readers"];
    assert_eq!(tb["id"], "blog-readers-2");
    assert_eq!(tb["name"], template["name"]);
    assert_eq!(tb["json"]["condition"], template["condition"]);
    let mut as_template = tb["json"].clone();
    as_template["id"] = json!("blog-readers");
    let (_, preview) = post(
        &c,
        s.url("/v1/segments/preview"),
        READ,
        json!({"definition": as_template, "as_of": tb["preview_as_of"]}),
    )
    .await;
    assert_eq!(tb["preview_size"], preview["size"]);

    // The builder: a validation problem shown at its row, with the API's message.
    let expected = json!({
        "id": SLUG,
        "name": NAME,
        "refresh": "nightly",
        "condition": {"all": [
            {"attribute": "email_consent", "op": "eq", "value": "granted"},
            {"attribute": "tags", "op": "has_none", "value": ["Kara Liste"]},
            {"event": "product_added_to_favorites", "period": {"last": "30d"}, "op": "gte", "value": 1},
            {"event": "order_created", "op": "eq", "value": 0},
        ]},
    });
    assert_eq!(r["chips"], json!(["Kara Liste"]));
    let (status, refused) = post(
        &c,
        s.url("/v1/segments/preview"),
        READ,
        json!({"definition": r["invalid_json"]}),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let api_problems = refused["error"]["details"].as_array().unwrap();
    assert_eq!(api_problems.len(), 1, "{refused}");
    assert_eq!(api_problems[0]["path"], "condition.all[2].period.last");
    let shown_problems = r["problems"].as_array().unwrap();
    assert_eq!(shown_problems.len(), 1, "{shown_problems:?}");
    assert_eq!(shown_problems[0]["path"], api_problems[0]["path"]);
    assert_eq!(shown_problems[0]["message"], api_problems[0]["message"]);
    assert_eq!(shown_problems[0]["row"], "condition.all[2]");
    assert_eq!(r["problem_row_marked"], true);
    assert_eq!(r["problems_after_fix"], 0);

    // The definition the builder made, field by field, and the one it sent.
    let b = &r["builder"];
    for field in ["id", "name", "refresh"] {
        assert_eq!(b["json"][field], expected[field], "{field}");
    }
    let made = b["json"]["condition"]["all"].as_array().unwrap();
    let wanted = expected["condition"]["all"].as_array().unwrap();
    assert_eq!(made.len(), wanted.len(), "{}", b["json"]);
    for (i, (m, w)) in made.iter().zip(wanted).enumerate() {
        assert_eq!(m, w, "condition.all[{i}]");
    }
    assert_eq!(b["json"], expected);
    assert_eq!(r["put"]["body"], expected);
    assert!(r["put"]["url"].as_str().unwrap().ends_with(SLUG));

    // Its live preview is the API's for that document at the same instant.
    assert_live_preview_is_the_apis(&c, &s, &expected, b).await;
    // (The API now compares with the refresh the driver made later; when the builder
    // previewed, the segment was new and the console said so.)
    assert!(b["preview_diff"].as_str().unwrap().contains("new segment"));
    let weekly = b["weekly"].as_array().unwrap();
    assert_eq!(weekly.len(), 12);
    let instants: Vec<Value> = weekly.iter().map(|w| w["as_of"].clone()).collect();
    let (_, sizes) = post(
        &c,
        s.url("/v1/segments/preview"),
        READ,
        json!({"definition": expected, "as_of": instants}),
    )
    .await;
    let api_weekly: Vec<Value> = sizes["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| json!({"as_of": x["as_of"], "size": x["size"]}))
        .collect();
    assert_eq!(weekly, &api_weekly);
    let words = b["sentences"].as_str().unwrap();
    assert!(words.contains("“Kara Liste”"), "{words}");
    assert!(words.contains("in the last 30 days"), "{words}");
    assert!(words.contains("“Added to favourites”"), "{words}");

    // Saved: the store holds exactly that definition.
    let (status, stored) = get(&c, s.url(&format!("/v1/segments/{SLUG}")), Some(READ)).await;
    assert_eq!(status, 200);
    let mut stored_definition = stored.clone();
    let object = stored_definition.as_object_mut().unwrap();
    object.remove("size");
    object.remove("last_as_of");
    assert_eq!(stored_definition, expected);
    assert!(r["saved_notice"].as_str().unwrap().contains("Saved"));

    // Refreshed from its page: the history, size and members the API has.
    let page = &r["segment_page"];
    assert_eq!(
        r["admin_buttons"],
        json!({"refresh-now": 1, "delete-segment": 1, "edit-segment": 1, "export-csv": 1})
    );
    let (_, history) = get(
        &c,
        s.url(&format!("/v1/segments/{SLUG}/history")),
        Some(READ),
    )
    .await;
    let refreshes = history["refreshes"].as_array().unwrap();
    assert_eq!(refreshes.len(), 1);
    let api_history: Vec<Value> = refreshes
        .iter()
        .map(|h| json!({"as_of": h["as_of"], "size": h["size"], "entered": h["entered"], "exited": h["exited"]}))
        .collect();
    assert_eq!(page["history"], json!(api_history));
    assert_eq!(page["chart_canvases"], 1);
    assert_eq!(page["size"], refreshes[0]["size"].to_string());
    assert!(page["notice"].as_str().unwrap().contains("Refreshed"));
    assert_eq!(page["json"], expected);
    assert_eq!(
        page["sentences"], b["sentences"],
        "the same sentences on both pages"
    );
    let size = refreshes[0]["size"].as_u64().unwrap() as usize;
    let limit = page["page_size"].as_u64().unwrap() as usize;
    assert!(limit > 0);
    let pages = page["member_pages"].as_array().unwrap();
    let mut cursor: Option<String> = None;
    for (i, shown) in pages.iter().enumerate() {
        let mut url = s.url(&format!("/v1/segments/{SLUG}/members?limit={limit}"));
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (_, api_page) = get(&c, url, Some(READ)).await;
        let ids: Vec<Value> = api_page["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["customer_id"].clone())
            .collect();
        assert_eq!(shown, &json!(ids), "members page {}", i + 1);
        cursor = api_page["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(pages.len(), size.div_ceil(limit).clamp(1, 3));
    let csv = strings(&r["csv"]);
    assert_eq!(csv[0], "customer_id,since");
    assert_eq!(csv.len(), size + 1);
    assert_eq!(
        csv[1].split(',').next().unwrap(),
        pages[0][0].as_str().unwrap()
    );

    // Editing it: the preview says who would enter and exit against its members, as the API.
    let edit = &r["edit"];
    assert_eq!(
        edit["json"]["condition"]["all"][2]["period"],
        json!({"last": "60d"})
    );
    assert_eq!(edit["save_label"], "Save changes");
    assert_eq!(edit["id_editable"], false);
    let (_, preview) = post(
        &c,
        s.url("/v1/segments/preview"),
        READ,
        json!({"definition": edit["json"], "as_of": edit["as_of"]}),
    )
    .await;
    for field in ["size", "entered", "exited"] {
        assert_eq!(edit[field], preview[field], "{field}: {preview}");
    }
    let (_, unchanged) = get(&c, s.url(&format!("/v1/segments/{SLUG}")), Some(READ)).await;
    assert_eq!(
        unchanged["condition"], expected["condition"],
        "an unsaved edit changes nothing"
    );

    // Delete refused while others refer to the segment, naming them.
    let (status, refusal) = call(
        &c,
        reqwest::Method::DELETE,
        s.url("/v1/segments/rfm-platinum"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 409);
    let users: BTreeSet<String> = refusal["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["referenced_by"].as_str().unwrap().to_string())
        .collect();
    let linked: BTreeSet<String> = strings(&r["delete_refused"]["links"]).into_iter().collect();
    assert_eq!(linked, users);
    assert!(
        r["delete_refused"]["text"]
            .as_str()
            .unwrap()
            .contains(refusal["error"]["message"].as_str().unwrap())
    );
    let (status, _) = get(&c, s.url("/v1/segments/rfm-platinum"), Some(READ)).await;
    assert_eq!(status, 200, "still stored");

    // Searching with Turkish capitals finds the new segment.
    assert_eq!(r["search_igdir"], json!([SLUG]));

    // A customer: their segments and the explanation, condition by condition.
    let who = &r["customer"];
    let member = who["id"].as_str().unwrap();
    let (_, theirs) = get(
        &c,
        s.url(&format!("/v1/customers/{member}/segments")),
        Some(READ),
    )
    .await;
    let api_segments: Vec<Value> = theirs["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(who["segments"], json!(api_segments));
    assert!(api_segments.contains(&json!(SLUG)));
    let (_, explained) = get(
        &c,
        s.url(&format!(
            "/v1/segments/{SLUG}/members/{member}?explain=true"
        )),
        Some(READ),
    )
    .await;
    assert_eq!(who["member"], "true");
    let api_conditions: Vec<Value> = explained["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| json!({"path": c["path"], "held": c["held"], "explanation": c["explanation"]}))
        .collect();
    assert_eq!(api_conditions.len(), 5, "{explained}");
    assert_eq!(who["conditions"], json!(api_conditions));

    // SQL: the table is the API's answer.
    let (_, sql) = post(
        &c,
        s.url("/v1/sql"),
        READ,
        json!({"sql": r["sql"]["query"]}),
    )
    .await;
    assert_eq!(r["sql"]["columns"], sql["columns"]);
    assert_eq!(r["sql"]["rows"], sql["rows"]);

    // Sequences in the builder and on the customer page; then the erasure, checked after it.
    funnels::before_the_erasure(&c, &s, &r).await;
    let r = drive.resume();
    eprintln!(
        "console driver: {:.1} s (browser {} s); screenshots in {}",
        started.elapsed().as_secs_f64(),
        r["seconds"],
        out.display()
    );
    funnels::after_the_erasure(&c, &s, &r).await;

    // A read token: the same pages, no admin buttons (no erase button either).
    let read = &r["read"];
    assert_eq!(read["scope"], "read");
    assert_eq!(
        read["buttons"],
        json!({"refresh-now": 0, "delete-segment": 0, "edit-segment": 0, "export-csv": 1})
    );
    assert_eq!(
        read["members_shown"].as_u64().unwrap() as usize,
        size.min(limit)
    );
    assert_eq!(read["save_button"], 0);
    assert_eq!(read["read_only_note"], 1);
    assert_eq!(read["erase_button"], 0);

    // Every control of every page has a label, every button a name.
    for (name, unlabelled) in r["unlabelled"].as_object().unwrap() {
        assert_eq!(
            unlabelled,
            &json!([]),
            "unlabelled controls on the {name} page"
        );
    }
    assert!(r["unlabelled"].as_object().unwrap().len() >= 7);

    // No script errors on any page.
    assert_eq!(r["admin_errors"], json!([]));
    assert_eq!(read["errors"], json!([]));
    for name in [
        "segments",
        "builder",
        "builder-problem",
        "segment",
        "customer",
        "sql",
        "segment-read",
        "builder-sequence",
        "builder-sequence-problem",
        "customer-sequence",
        "customer-erase",
    ] {
        assert!(out.join(format!("{name}.png")).exists(), "{name}.png");
    }
}
