//! The browser session's sequences (funnels) and erasure, compared with the HTTP API: a 3-step
//! sequence built in the builder (its problems at their step, its preview, the saved
//! definition), the ready-made funnels opened as sequence rows and saved unchanged, a funnel
//! member's steps on the customer page, and a customer erased from their page.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{READ, assert_live_preview_is_the_apis, get, post, ready_made, strings};
use crate::support::Server;
use crate::support::http::feed;

/// What the driver types as the sequence segment's name, and the id made from it.
const SEQUENCE_NAME: &str = "Ayakkabı hunisi: bakıp sepete ekleyip sipariş verenler";
const SEQUENCE_SLUG: &str = "ayakkabi-hunisi-bakip-sepete-ekleyip-siparis-verenler";
const FUNNEL: &str = "funnel-view-cart-order-7d";

/// The `(path, message)` of each problem in a list of them (the API's `details`, or what the
/// driver read off the builder).
fn paths_and_messages(problems: &Value) -> Vec<(String, String)> {
    problems
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().into(),
                p["message"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// The stored definition of `id`, without the figures the API adds.
async fn stored(c: &reqwest::Client, s: &Server, id: &str) -> Value {
    let (status, mut doc) = get(c, s.url(&format!("/v1/segments/{id}")), Some(READ)).await;
    assert_eq!(status, 200, "{id}: {doc}");
    let object = doc.as_object_mut().unwrap();
    object.remove("size");
    object.remove("last_as_of");
    doc
}

/// Everything the driver showed of sequences before its pause.
pub(super) async fn before_the_erasure(c: &reqwest::Client, s: &Server, r: &Value) {
    let q = &r["sequence"];
    let expected = json!({
        "id": SEQUENCE_SLUG,
        "name": SEQUENCE_NAME,
        "refresh": "manual",
        "condition": {"all": [{
            "sequence": [
                {"event": "product_viewed", "where": [{"property": "category_id", "op": "eq", "value": "cat-ayakkabı"}]},
                {"event": "product_added_to_cart"},
                {"event": "order_created"},
            ],
            "within": "7d",
            "period": {"last": "30d"},
        }]},
    });
    // The row: a sequence of two steps to start with, moved, added to and removed from.
    assert_eq!(q["kind"], "sequence");
    assert_eq!(q["steps_at_start"], 2);
    assert_eq!(q["remove_disabled_at_2"], true);
    assert_eq!(
        q["after_move_down"],
        json!(["product_viewed", "order_created", "product_added_to_cart"])
    );
    assert_eq!(
        q["after_move_up"],
        json!(["product_viewed", "product_added_to_cart", "order_created"])
    );
    assert_eq!(q["steps_after_add"], 4);
    assert_eq!(q["steps_after_remove"], 3);

    // The API's problems, each shown at its place: the step's filter, the `within` line.
    let (status, refused) = post(
        c,
        s.url("/v1/segments/preview"),
        READ,
        json!({"definition": q["invalid_json"]}),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let api = paths_and_messages(&refused["error"]["details"]);
    let shown = paths_and_messages(&q["problems"]);
    assert_eq!(
        shown.iter().collect::<BTreeSet<_>>(),
        api.iter().collect::<BTreeSet<_>>()
    );
    let at = |path: &str| -> Value {
        q["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["path"] == path)
            .unwrap_or_else(|| panic!("no problem at {path}: {}", q["problems"]))
            .clone()
    };
    let filter = at("condition.all[0].sequence[1].where[0].value");
    assert_eq!(filter["row"], "condition.all[0]");
    assert_eq!(filter["step"], 1);
    assert_eq!(filter["place"], "condition.all[0].sequence[1].where[0]");
    let within = at("condition.all[0].within");
    assert_eq!(within["row"], "condition.all[0]");
    assert_eq!(within["step"], Value::Null);
    assert_eq!(within["place"], "condition.all[0].within");
    assert_eq!(q["problems_after_fix"], 0);

    // The definition made, sent and stored; its preview is the API's for it.
    assert_eq!(q["json"], expected);
    assert_eq!(q["put"]["body"], expected);
    assert_eq!(stored(c, s, SEQUENCE_SLUG).await, expected);
    assert_live_preview_is_the_apis(c, s, &expected, q).await;
    let words = q["sentences"].as_str().unwrap();
    assert!(
        words.contains(
            "In this order: “Viewed a product” where Category is “cat-ayakkabı”, then “Added to \
             cart”, then “Placed an order”, all within 7 days, the first in the last 30 days"
        ),
        "{words}"
    );

    // The ready-made funnels: sequence rows (no JSON row), saved unchanged under a free id.
    for (template, steps, said) in [
        (
            FUNNEL,
            3,
            "then “Added to cart”, then “Placed an order”, all within 7 days, the first in the last 30 days",
        ),
        (
            "shoe-cart-no-order-7d",
            2,
            "“Viewed a product” where Category is “cat-ayakkabı”, then “Added to cart”, all within 1 hour",
        ),
    ] {
        let f = &r["funnels"][template];
        let copy = format!("{template}-2");
        let kinds = strings(&f["kinds"]);
        assert!(
            kinds.contains(&"sequence".to_string()),
            "{template}: {kinds:?}"
        );
        assert!(
            !kinds.contains(&"json".to_string()),
            "{template}: {kinds:?}"
        );
        assert_eq!(f["steps"], steps, "{template}");
        let mut want = ready_made()[template].clone();
        want["id"] = json!(copy);
        assert_eq!(f["id"], want["id"]);
        assert_eq!(f["json"], want, "{template} as the builder shows it");
        assert_eq!(f["put"]["body"], want, "{template} as saved");
        assert_eq!(stored(c, s, &copy).await, want, "{template} as stored");
        let words = f["sentences"].as_str().unwrap();
        assert!(words.contains(said), "{template}: {words}");
    }

    // A funnel member's explanation, and a customer's who never ordered: every step with the
    // instant the API says it was reached (or not), and when the sequence was completed.
    let member = explained_steps(c, s, &r["funnel_explain"]).await;
    assert_eq!(member["member"], true, "{member}");
    let other = explained_steps(c, s, &r["funnel_explain_other"]).await;
    assert_eq!(other["member"], false, "{other}");
    assert!(other["conditions"][0]["value"].is_null(), "{other}");
}

/// Compares the customer page's explanation of the funnel (`shown`) with the API's; answers
/// the API's.
async fn explained_steps(c: &reqwest::Client, s: &Server, shown: &Value) -> Value {
    let customer = shown["id"].as_str().unwrap();
    let (_, explained) = get(
        c,
        s.url(&format!(
            "/v1/segments/{FUNNEL}/members/{customer}?explain=true"
        )),
        Some(READ),
    )
    .await;
    assert_eq!(
        shown["member"],
        explained["member"].to_string(),
        "{explained}"
    );
    let api = explained["conditions"].as_array().unwrap();
    let listed = shown["conditions"].as_array().unwrap();
    assert_eq!(listed.len(), api.len(), "{explained}");
    let mut sequences = 0;
    for (shown, api) in listed.iter().zip(api) {
        assert_eq!(shown["path"], api["path"]);
        assert_eq!(shown["held"], api["held"]);
        let Some(steps) = api["condition"]["sequence"].as_array() else {
            continue;
        };
        sequences += 1;
        let reached = api["rank_or_follow_ups"].as_array().unwrap();
        assert_eq!(reached.len(), steps.len());
        let rows = shown["steps"].as_array().unwrap();
        assert_eq!(rows.len(), steps.len(), "{shown}");
        for (i, (step, at)) in rows.iter().zip(reached).enumerate() {
            assert_eq!(step["at"], *at, "{customer}: step {}", i + 1);
            assert_eq!(step["reached"], !at.is_null(), "{customer}: step {}", i + 1);
            let text = step["text"].as_str().unwrap();
            assert!(text.contains(&format!("Step {}", i + 1)), "{text}");
            assert!(
                text.contains(if at.is_null() {
                    "not reached"
                } else {
                    "first reached"
                }),
                "{text}"
            );
        }
        assert_eq!(shown["completed"], api["value"], "{customer}");
    }
    assert_eq!(sequences, 1, "{explained}");
    explained
}

/// The erasure from the customer page, checked over HTTP: the customer is in no segment, and
/// the feed of every segment they left has their `exited` entry (and nothing else of them).
pub(super) async fn after_the_erasure(c: &reqwest::Client, s: &Server, r: &Value) {
    let e = &r["erase"];
    let who = e["id"].as_str().unwrap();
    assert_eq!(e["button"], 1);
    assert_eq!(e["submit_disabled_on_mismatch"], true);
    assert_eq!(e["submit_enabled_on_match"], true);
    let before: BTreeSet<String> = strings(&e["before"]).into_iter().collect();
    let left = strings(&e["outcome_segments"]);
    assert!(left.contains(&FUNNEL.to_string()), "{e}");
    assert_eq!(left.iter().cloned().collect::<BTreeSet<_>>(), before);
    assert_eq!(strings(&e["outcome_links"]), left);
    assert!(
        e["outcome_text"]
            .as_str()
            .unwrap()
            .contains(&format!("Erased {who}"))
    );
    assert_eq!(e["after_rows"], 0);
    assert_eq!(e["after_heading"], "In no segment");

    let (_, theirs) = get(
        c,
        s.url(&format!("/v1/customers/{who}/segments")),
        Some(READ),
    )
    .await;
    assert_eq!(theirs["segments"], json!([]), "{theirs}");
    let (_, lookup) = get(
        c,
        s.url(&format!("/v1/segments/{FUNNEL}/members/{who}")),
        Some(READ),
    )
    .await;
    assert_eq!(lookup["member"], false);
    // Their only traces in the changes: one `exited` per segment left.
    let (status, sql) = post(
        c,
        s.url("/v1/sql"),
        READ,
        json!({"sql": format!("SELECT segment_id, change FROM segment_changes WHERE customer_id = '{who}' ORDER BY segment_id")}),
    )
    .await;
    assert_eq!(status, 200, "{sql}");
    let mut sorted = left.clone();
    sorted.sort();
    let rows: Vec<Value> = sorted.iter().map(|s| json!([s, "exited"])).collect();
    assert_eq!(sql["rows"], json!(rows));
    for segment in &left {
        let (changes, _) = feed(c, s, READ, segment, None, 10_000).await;
        let theirs: Vec<&str> = changes
            .iter()
            .filter(|(customer, _, _)| customer == who)
            .map(|(_, change, _)| change.as_str())
            .collect();
        assert_eq!(theirs, ["exited"], "{segment}'s feed");
    }
}
