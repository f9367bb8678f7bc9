//! Erasure end to end: the real `kitle erase` and `POST /v1/customers/{id}/erase` on a
//! generated shop refreshed several times. After an erasure no file under the store's
//! kitle-owned folders holds the id (every Parquet value and every other file's bytes are
//! read, files of killed runs included) apart from the erasure's own `exited` entries, the
//! feed gave one `exited` per segment, a consumer polling with an old cursor continues
//! correctly, later evaluations at any `as_of` leave the customer out, and an erasure killed
//! with SIGKILL at any moment happened entirely or not at all and is finished by a rerun.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::http::{feed, json_of};
use crate::support::{Server, kitle};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use reqwest::StatusCode;
use serde_json::{Value, json};

const READ: &str = "read-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";
const WAIT: Duration = Duration::from_secs(90);

/// A shop of `customers` customers with the ready-made segments put and refreshed at several
/// instants, in `dir/store`, with a `kitle.toml` holding a read and an admin token.
fn refreshed_shop(dir: &Path, customers: u32, refreshes: &[&str]) {
    std::fs::write(
        dir.join("kitle.toml"),
        format!(
            "store = \"store\"\n[serve]\nscheduler = false\n\
             [[serve.tokens]]\ntoken = \"{READ}\"\nscope = \"read\"\n\
             [[serve.tokens]]\ntoken = \"{ADMIN}\"\nscope = \"admin\"\n"
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = kitle(args, &[], dir);
        assert!(
            out.status.success(),
            "kitle {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    run(&[
        "generate",
        "--customers",
        &customers.to_string(),
        "--days",
        "30",
        "--seed",
        "3",
        "--end",
        "2025-12-01",
    ]);
    let segments = Path::new(env!("CARGO_MANIFEST_DIR")).join("../queries/segments");
    let mut put = vec!["segment".to_string(), "put".to_string()];
    let mut files: Vec<PathBuf> = std::fs::read_dir(&segments)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    put.extend(files.iter().map(|p| p.display().to_string()));
    run(&put.iter().map(String::as_str).collect::<Vec<_>>());
    for at in refreshes {
        run(&["refresh", "--as-of", at]);
    }
}

fn sql(dir: &Path, query: &str) -> Vec<Value> {
    let out = kitle(&["sql", query, "--format", "json"], &[], dir);
    assert!(
        out.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The customer who is a member of the most segments (ties: the smallest id), with those
/// segments.
fn busiest_member(dir: &Path) -> (String, BTreeSet<String>) {
    let rows = sql(
        dir,
        "SELECT customer_id, count(*) AS n FROM memberships GROUP BY customer_id \
         ORDER BY n DESC, customer_id LIMIT 1",
    );
    let id = rows[0]["customer_id"].as_str().unwrap().to_string();
    (id.clone(), segments_of(dir, &id))
}

fn segments_of(dir: &Path, id: &str) -> BTreeSet<String> {
    sql(
        dir,
        &format!("SELECT segment_id FROM memberships WHERE customer_id = '{id}'"),
    )
    .iter()
    .map(|r| r["segment_id"].as_str().unwrap().to_string())
    .collect()
}

fn manifest(store: &Path) -> Value {
    let text = std::fs::read_to_string(store.join("memberships/manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file under `root`, relative paths.
fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    out.sort();
    out
}

/// Every value of every column of a Parquet file, as text, with its row and column.
fn parquet_values(path: &Path) -> Vec<(usize, String, String)> {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .build()
        .unwrap();
    let mut out = Vec::new();
    let mut offset = 0;
    for batch in reader {
        let batch = batch.unwrap();
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let text = datafusion::arrow::compute::cast(column, &DataType::Utf8).unwrap();
            let text = text.as_string::<i32>();
            for row in 0..text.len() {
                if text.is_valid(row) {
                    out.push((
                        offset + row,
                        field.name().clone(),
                        text.value(row).to_string(),
                    ));
                }
            }
        }
        offset += batch.num_rows();
    }
    out
}

/// Every place under the store's kitle-owned folders (all but `customers/` and `events/`)
/// that refers to `id` — a Parquet value equal to it or to another encoding of it (its
/// SHA-256 stays only in the manifest's erasure list), any other file's bytes holding it —
/// except the `exited` entries of the erasure versions' change logs, which are listed apart.
fn references(store: &Path, id: &str) -> (Vec<String>, usize) {
    let manifest = manifest(store);
    let erasure_logs: BTreeSet<String> = manifest["segments"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|s| s["history"].as_array().unwrap().iter())
        .filter(|r| r["erasure"] == json!(true))
        .map(|r| r["changes"].as_str().unwrap().to_string())
        .collect();
    let hash = sha256_hex(id);
    let mut found = Vec::new();
    let mut traces = 0;
    for relative in files_under(store) {
        if relative.starts_with("customers/") || relative.starts_with("events/") {
            continue;
        }
        let path = store.join(&relative);
        if relative.ends_with(".parquet") {
            let values = parquet_values(&path);
            let rows: BTreeMap<usize, Vec<(String, String)>> =
                values.iter().fold(BTreeMap::new(), |mut m, (row, c, v)| {
                    m.entry(*row).or_default().push((c.clone(), v.clone()));
                    m
                });
            for (row, cells) in rows {
                let refers = cells
                    .iter()
                    .any(|(_, v)| v == id || v.contains(id) || *v == hash);
                if !refers {
                    continue;
                }
                let exit = cells.iter().any(|(c, v)| c == "change" && v == "exited");
                if erasure_logs.contains(&relative) && exit {
                    traces += 1;
                } else {
                    found.push(format!("{relative} row {row}: {cells:?}"));
                }
            }
        } else {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            if text.contains(id) {
                found.push(format!("{relative}: holds the id"));
            }
            if text.contains(&hash) && relative != "memberships/manifest.json" {
                found.push(format!("{relative}: holds the id's hash"));
            }
        }
    }
    (found, traces)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

async fn call(request: reqwest::RequestBuilder, token: &str) -> (StatusCode, Value) {
    json_of(request.bearer_auth(token).send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_forgets_a_customer_in_every_file_and_keeps_them_out() {
    let dir = tempfile::tempdir().unwrap();
    let refreshes = [
        "2025-11-15T12:00:00Z",
        "2025-11-24T12:00:00Z",
        "2025-12-01T20:00:00Z",
    ];
    refreshed_shop(dir.path(), 400, &refreshes);
    let store = dir.path().join("store");
    let (x, left) = busiest_member(dir.path());
    assert!(left.len() >= 3, "{x} is in {left:?} only");
    // Files of a killed run, which no manifest names: copies of the committed files.
    let m = manifest(&store);
    let segment = left.iter().next().unwrap().clone();
    let record = m["segments"][&segment]["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    for (key, name) in [("members", "memberships"), ("changes", "changes")] {
        let from = store.join(record[key].as_str().unwrap());
        let to = store.join(format!("{name}/{segment}/v9999999999-killed.parquet"));
        std::fs::copy(from, to).unwrap();
    }
    assert!(!references(&store, &x).0.is_empty());

    let s = Server::start(&["serve"], &[], dir.path(), None, WAIT);
    let c = client();
    // A consumer's feed before the erasure, and a cursor from the middle of it.
    let (before, cursors) = feed(&c, &s, READ, &segment, None, 7).await;
    assert!(before.iter().any(|(id, ..)| *id == x));
    let (position, old_cursor) = cursors[cursors.len() / 2].clone();

    // The route needs the admin scope.
    let url = s.url(&format!("/v1/customers/{x}/erase"));
    let (status, body) = call(c.post(&url).json(&json!({"reason": "KVKK"})), READ).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        segments_of(dir.path(), &x),
        left,
        "a refused erasure changed nothing"
    );
    let (status, body) = call(c.post(&url).json(&json!({"reason": "KVKK talebi"})), ADMIN).await;
    assert_eq!(status, 200, "{body}");
    let said: BTreeSet<String> = body["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(said, left);
    assert_eq!(body["already_erased"], json!(false));
    let at = body["at"].as_str().unwrap().to_string();

    // Lookups say "not a member" at once.
    let (_, mine) = call(c.get(s.url(&format!("/v1/customers/{x}/segments"))), READ).await;
    assert_eq!(mine["segments"], json!([]), "{mine}");
    let (_, lookup) = call(
        c.get(s.url(&format!("/v1/segments/{segment}/members/{x}"))),
        READ,
    )
    .await;
    assert_eq!(lookup["member"], json!(false));

    // The feed: the old consumer continues with every surviving change once, then one exit.
    let expected: Vec<(String, String, String)> = before[position..]
        .iter()
        .filter(|(id, ..)| *id != x)
        .cloned()
        .chain(std::iter::once((
            x.clone(),
            "exited".to_string(),
            at.clone(),
        )))
        .collect();
    let (after, _) = feed(&c, &s, READ, &segment, Some(&old_cursor), 7).await;
    assert_eq!(after, expected);
    let (whole, _) = feed(&c, &s, READ, &segment, None, 1000).await;
    let mine: Vec<_> = whole.iter().filter(|(id, ..)| *id == x).collect();
    assert_eq!(mine, [&(x.clone(), "exited".to_string(), at.clone())]);
    // One exit per segment left, at the erasure's instant, in the history too.
    for id in &left {
        let (_, history) = call(c.get(s.url(&format!("/v1/segments/{id}/history"))), READ).await;
        let newest = &history["refreshes"][0];
        assert_eq!(
            (newest["as_of"].as_str(), newest["exited"].as_u64()),
            (Some(at.as_str()), Some(1))
        );
    }

    // No file refers to the id but the erasure's own exits; the erasure list has its hash.
    let (found, traces) = references(&store, &x);
    assert!(
        found.is_empty(),
        "files still refer to {x}:\n{}",
        found.join("\n")
    );
    assert_eq!(traces, left.len());
    let erasures = manifest(&store)["erasures"].clone();
    assert_eq!(erasures[0]["sha256"], json!(sha256_hex(&x)));
    assert_eq!(erasures[0]["reason"], json!("KVKK talebi"));
    assert_eq!(erasures[0]["rewritten"], json!(true));

    // Later evaluations leave them out, at any as_of: a refresh back in time, analysts'
    // customers, an explanation.
    let (status, body) = call(
        c.post(s.url("/v1/refresh"))
            .json(&json!({"as_of": refreshes[0]})),
        ADMIN,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(segments_of(dir.path(), &x).is_empty());
    assert!(
        sql(
            dir.path(),
            &format!("SELECT * FROM customers WHERE customer_id = '{x}'")
        )
        .is_empty()
    );
    let (_, explained) = call(
        c.get(s.url(&format!("/v1/segments/{segment}/members/{x}?explain=true"))),
        READ,
    )
    .await;
    assert_eq!(explained["in_universe"], json!(false), "{explained}");
    let (status, preview) = call(
        c.post(s.url("/v1/segments/preview")).json(&json!({
            "definition": {"id": "only-them", "condition":
                {"attribute": "customer_id", "op": "eq", "value": x}},
            "as_of": refreshes[1]})),
        READ,
    )
    .await;
    assert_eq!(
        (status, preview["size"].clone()),
        (StatusCode::OK, json!(0)),
        "{preview}"
    );
    let (found, _) = references(&store, &x);
    assert!(
        found.is_empty(),
        "a later refresh wrote {x} again:\n{}",
        found.join("\n")
    );

    // Erasing again changes nothing.
    let (status, body) = call(c.post(&url), ADMIN).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["segments"].clone(), body["already_erased"].clone()),
        (json!([]), json!(true))
    );
    assert_eq!(manifest(&store)["erasures"].as_array().unwrap().len(), 1);
}

/// A write killed midway on a local folder leaves `object_store`'s staging file
/// (`….parquet#N`), which no listing shows; an erasure removes it with the rest, so no byte of
/// the erased id stays behind.
#[test]
fn an_erasure_removes_the_staging_files_of_killed_writes() {
    let dir = tempfile::tempdir().unwrap();
    refreshed_shop(
        dir.path(),
        120,
        &["2025-11-20T12:00:00Z", "2025-12-01T12:00:00Z"],
    );
    let (x, _) = busiest_member(dir.path());
    let store = dir.path().join("store");
    let segment_dir = std::fs::read_dir(store.join("changes"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let staging = segment_dir.join("v0000000099-0000000000000000.parquet#1");
    std::fs::write(&staging, format!("half a change log: {x},entered")).unwrap();
    let out = kitle(&["erase", &x], &[], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!staging.exists(), "{} is still there", staging.display());
    let (found, _) = references(&store, &x);
    assert!(
        found.is_empty(),
        "files refer to {x}:\n{}",
        found.join("\n")
    );
}

/// `kitle erase` killed with SIGKILL after a growing delay, on fresh copies of one store:
/// every time, either nothing happened (the customer is still in their segments, no erasure
/// recorded) or the erasure is committed (in no current version, hash recorded); a rerun then
/// finishes it and no file refers to the id.
#[test]
fn a_killed_erasure_is_all_or_nothing_and_a_rerun_finishes_it() {
    let template = tempfile::tempdir().unwrap();
    let refreshes = [
        "2025-11-10T12:00:00Z",
        "2025-11-15T12:00:00Z",
        "2025-11-20T12:00:00Z",
        "2025-11-25T12:00:00Z",
        "2025-12-01T12:00:00Z",
    ];
    refreshed_shop(template.path(), 300, &refreshes);
    let (x, left) = busiest_member(template.path());
    let mut outcomes = BTreeMap::new();
    let mut delay_ms = 0u64;
    loop {
        let dir = tempfile::tempdir().unwrap();
        crate::support::copy_tree(template.path(), dir.path());
        let store = dir.path().join("store");
        let finished =
            crate::support::kill_after(&["erase", &x], dir.path(), Duration::from_millis(delay_ms));

        let recorded = manifest(&store)["erasures"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["sha256"] == json!(sha256_hex(&x))));
        let now = segments_of(dir.path(), &x);
        if recorded {
            assert!(now.is_empty(), "after {delay_ms} ms: erased yet in {now:?}");
        } else {
            assert_eq!(
                now, left,
                "after {delay_ms} ms: not erased yet memberships changed"
            );
        }
        let state = match (finished, recorded) {
            (true, _) => "finished",
            (false, true) => "killed after the commit",
            (false, false) => "killed before the commit",
        };
        *outcomes.entry(state).or_insert(0) += 1;

        let out = kitle(&["erase", &x], &[], dir.path());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (found, traces) = references(&store, &x);
        assert!(
            found.is_empty(),
            "after a kill at {delay_ms} ms and a rerun, files refer to {x}:\n{}",
            found.join("\n")
        );
        assert_eq!(traces, left.len());
        assert!(segments_of(dir.path(), &x).is_empty());
        let erasures = manifest(&store)["erasures"].clone();
        assert_eq!(erasures.as_array().unwrap().len(), 1);
        assert_eq!(erasures[0]["rewritten"], json!(true));
        if finished || delay_ms > 20_000 {
            break;
        }
        delay_ms = if delay_ms == 0 { 20 } else { delay_ms * 2 };
    }
    println!("kills of `kitle erase`: {outcomes:?}");
    assert!(
        outcomes.len() >= 2,
        "every kill landed in one state: {outcomes:?}"
    );
}
