//! What the HTTP tests share: a served copy of the conformance store, a client, and requests
//! that answer their status with the JSON body (or the error code) in one call.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::{Server, conformance_store, copy_tree, shared_dir};

/// How long `kitle serve` may take to start listening.
pub(crate) const WAIT: Duration = Duration::from_secs(90);

/// The conformance cases (`conformance/cases.json` of the shared folder).
pub(crate) fn cases() -> Value {
    let text = std::fs::read_to_string(shared_dir().join("conformance/cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The conformance scenario called `name`.
pub(crate) fn scenario(name: &str) -> Value {
    cases()["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
        .clone()
}

/// A copy of the conformance store in a temporary folder with a `kitle.toml` (scheduler off
/// unless `config` says otherwise).
pub(crate) fn store_dir(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&conformance_store(), &dir.path().join("store"));
    std::fs::write(
        dir.path().join("kitle.toml"),
        format!("store = \"store\"\n{config}"),
    )
    .unwrap();
    dir
}

/// `kitle serve` in `dir`, with `env`.
pub(crate) fn serve(dir: &Path, env: &[(&str, String)]) -> Server {
    Server::start(&["serve"], env, dir, None, WAIT)
}

/// An HTTP client whose requests give up after two minutes (a hung service fails the test).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// The status of `response` and its body as JSON (as a JSON string when it is not JSON).
pub(crate) async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// `GET url`: status and body.
pub(crate) async fn get(c: &reqwest::Client, url: String) -> (StatusCode, Value) {
    json_of(c.get(url).send().await.unwrap()).await
}

/// `POST url` with the JSON `body`: status and body.
pub(crate) async fn post(c: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    json_of(c.post(url).json(&body).send().await.unwrap()).await
}

/// `PUT url` with the JSON `body`: status and body.
pub(crate) async fn put(c: &reqwest::Client, url: String, body: &Value) -> (StatusCode, Value) {
    json_of(c.put(url).json(body).send().await.unwrap()).await
}

/// The text of `GET url` (the Prometheus metrics, say), whatever its status.
pub(crate) async fn text_of(c: &reqwest::Client, url: String) -> String {
    c.get(url).send().await.unwrap().text().await.unwrap()
}

/// The strings of a JSON array.
pub(crate) fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// `id` as one path segment of a URL (the service's own encoding).
pub(crate) fn enc(id: &str) -> String {
    kitle::http::encode_path_segment(id)
}

/// Every member of `segment`, following cursors with pages of `limit`.
pub(crate) async fn all_pages(
    c: &reqwest::Client,
    s: &Server,
    segment: &str,
    limit: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut url = s.url(&format!("/v1/segments/{segment}/members?limit={limit}"));
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = get(c, url).await;
        assert_eq!(status, 200, "{page}");
        let members = page["members"].as_array().unwrap();
        assert!(members.len() <= limit);
        out.extend(
            members
                .iter()
                .map(|m| m["customer_id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return out,
        }
    }
    panic!("the listing of {segment} does not end");
}

/// The status of `response`, its error code (empty when it has none) and its JSON body.
pub(crate) async fn code(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let code = body["error"]["code"].as_str().unwrap_or("").to_string();
    (status, code, body)
}

/// Sends `request` and answers as [`code`] does.
pub(crate) async fn call(request: reqwest::RequestBuilder) -> (u16, String, Value) {
    code(request.send().await.unwrap()).await
}

/// The whole feed of `segment` from `since` on, in pages of `limit`, read with `token`:
/// (customer, change, at) of each change, and the cursor before each page (with the number of
/// changes before it).
pub(crate) async fn feed(
    c: &reqwest::Client,
    s: &Server,
    token: &str,
    segment: &str,
    since: Option<&str>,
    limit: usize,
) -> (Vec<(String, String, String)>, Vec<(usize, String)>) {
    let mut changes = Vec::new();
    let mut cursors = Vec::new();
    let mut cursor = since.map(str::to_string);
    for _ in 0..10_000 {
        let mut url = s.url(&format!("/v1/segments/{segment}/changes?limit={limit}"));
        if let Some(c) = &cursor {
            url.push_str(&format!("&since={c}"));
            cursors.push((changes.len(), c.clone()));
        }
        let (status, page) = json_of(c.get(url).bearer_auth(token).send().await.unwrap()).await;
        assert_eq!(status, 200, "{page}");
        let items = page["changes"].as_array().unwrap();
        assert!(items.len() <= limit);
        for item in items {
            changes.push((
                item["customer_id"].as_str().unwrap().to_string(),
                item["change"].as_str().unwrap().to_string(),
                item["at"].as_str().unwrap().to_string(),
            ));
        }
        let next = page["next_cursor"].as_str().unwrap().to_string();
        if items.is_empty() {
            return (changes, cursors);
        }
        cursor = Some(next);
    }
    panic!("the feed of {segment} does not end");
}
