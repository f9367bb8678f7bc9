//! The `kitle` binary end to end: `generate` writes a shop, `sql` reads it back, on a local
//! folder and on a real S3 server; bad input exits 2 with a clear message.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::{S3Server, kitle, kitle_ok};
use kitle_data::Store;
use kitle_data::contract::ContractTable;
use kitle_data::files::FooterCache;
use kitle_data::tables::ContractTables;

use kitle_data::contract::EVENT_TYPES;

const GENERATE: &[&str] = &[
    "generate",
    "--customers",
    "600",
    "--days",
    "30",
    "--seed",
    "7",
    "--end",
    "2025-11-30",
];

/// The CSV answer of `kitle sql QUERY --store STORE`.
fn sql_csv(query: &str, store: &str, cwd: &Path) -> String {
    kitle_ok(
        &["sql", query, "--format", "csv", "--store", store],
        &[],
        cwd,
    )
}

fn event_counts(csv: &str) -> BTreeMap<String, u64> {
    csv.lines()
        .skip(1)
        .map(|line| {
            let (t, n) = line.split_once(',').unwrap();
            (t.to_string(), n.parse().unwrap())
        })
        .collect()
}

const COUNT_BY_TYPE: &str = "SELECT event_type, count(*) AS n FROM events GROUP BY 1 ORDER BY 1";

fn files_of(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[tokio::test]
async fn generate_then_sql_on_a_local_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("shop");
    let store_arg = store.display().to_string();
    let mut args: Vec<&str> = GENERATE.to_vec();
    args.extend(["--store", &store_arg]);
    kitle_ok(&args, &[], dir.path());

    // Same arguments, same bytes.
    let again = dir.path().join("again");
    let again_arg = again.display().to_string();
    let mut args2: Vec<&str> = GENERATE.to_vec();
    args2.extend(["--store", &again_arg]);
    kitle_ok(&args2, &[], dir.path());
    let (a, b) = (files_of(&store), files_of(&again));
    assert!(
        a.len() > 30,
        "one file per day and the customers: {:?}",
        a.keys()
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(
            bytes == &b[path],
            "{path} differs between two runs with the same arguments"
        );
    }

    // A second generate into a full store is refused, not mixed in.
    let out = kitle(&args, &[], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--overwrite"));

    // Every event type of the contract is there.
    let csv = sql_csv(COUNT_BY_TYPE, &store_arg, dir.path());
    let counts = event_counts(&csv);
    for t in EVENT_TYPES {
        assert!(
            counts.get(*t).copied().unwrap_or(0) > 0,
            "no {t} events in:\n{csv}"
        );
    }

    // KITLE_STORE and kitle.toml name the store as well as --store does.
    let via_env = kitle_ok(
        &["sql", COUNT_BY_TYPE, "--format", "csv"],
        &[("KITLE_STORE", store_arg.clone())],
        dir.path(),
    );
    assert_eq!(via_env, csv);
    std::fs::write(
        dir.path().join("kitle.toml"),
        format!("store = {store_arg:?}\n"),
    )
    .unwrap();
    let via_file = kitle_ok(&["sql", COUNT_BY_TYPE, "--format", "csv"], &[], dir.path());
    assert_eq!(via_file, csv);

    // Contract properties of the generated shop, through the library.
    let opened = Store::open(&kitle_data::StoreConfig {
        url: store_arg.clone(),
        ..Default::default()
    })
    .unwrap();
    let tables = ContractTables::load(&opened, &FooterCache::new())
        .await
        .unwrap();
    assert!(tables.report().is_clean(), "{:?}", tables.report());
    let ctx = kitle_data::session::new_context(&opened);
    tables.register(&ctx).unwrap();
    let total: u64 = counts.values().sum();
    let raw = tables.files(ContractTable::Events).rows;
    assert!(
        raw > total,
        "the generator redelivers some events ({raw} raw rows, {total} events)"
    );
    let dupes = sql_csv(
        "SELECT count(*) - count(DISTINCT event_id) AS d FROM events",
        &store_arg,
        dir.path(),
    );
    assert_eq!(dupes.lines().nth(1), Some("0"));
    let customers = sql_csv(
        "SELECT count(*), count(DISTINCT customer_id) FROM customers",
        &store_arg,
        dir.path(),
    );
    assert_eq!(customers.lines().nth(1), Some("600,600"), "{customers}");
    // Profiles updated during the period: as of its first day, fewer customers have their
    // latest row from the updates file than now.
    let early: chrono::DateTime<chrono::Utc> = "2025-11-01T00:00:00Z".parse().unwrap();
    let plan_now = tables.customers_plan(None).unwrap();
    let plan_early = tables.customers_plan(Some(early)).unwrap();
    let latest_now = ctx
        .execute_logical_plan(plan_now)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let latest_early = ctx
        .execute_logical_plan(plan_early)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let max_updated = |batches: &[arrow::array::RecordBatch]| {
        batches
            .iter()
            .filter_map(|b| {
                arrow::compute::max(
                    b.column_by_name("updated_at")
                        .unwrap()
                        .as_any()
                        .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
                        .unwrap(),
                )
            })
            .max()
            .unwrap()
    };
    assert!(max_updated(&latest_early) <= early.timestamp_micros());
    assert!(
        max_updated(&latest_now) > early.timestamp_micros(),
        "some profiles change during the period"
    );

    // JSON output is one document.
    let json = kitle_ok(
        &[
            "sql",
            "SELECT 1 AS one, 'İğdır' AS city",
            "--json",
            "--store",
            &store_arg,
        ],
        &[],
        dir.path(),
    );
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, serde_json::json!([{"one": 1, "city": "İğdır"}]));
}

#[test]
fn bad_sql_and_bad_arguments_exit_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().display().to_string();
    for (query, needle) in [
        ("SELEC 1", "SQL error"),
        ("SELECT * FROM no_such_table", "no_such_table"),
        ("SELECT no_such_column FROM events", "no_such_column"),
        ("CREATE TABLE t AS SELECT 1", "SQL error"),
    ] {
        let out = kitle(&["sql", query, "--store", &store], &[], dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{query}: {stderr}");
        assert!(stderr.contains(needle), "{query}: {stderr}");
    }
    let out = kitle(
        &["sql", "SELECT 1", "--store", "gs://bucket/x"],
        &[],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported scheme"));
    let out = kitle(
        &[
            "generate",
            "--customers",
            "0",
            "--days",
            "3",
            "--store",
            &store,
        ],
        &[],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--customers"));
}

#[tokio::test]
async fn generate_then_sql_on_s3() {
    let server = S3Server::start();
    let env = server.env();
    let dir = tempfile::tempdir().unwrap();
    let url = "s3://kitle/tenants/demo";
    let mut args: Vec<&str> = GENERATE.to_vec();
    args.extend(["--store", url]);
    kitle_ok(&args, &env, dir.path());
    let csv = kitle_ok(
        &["sql", COUNT_BY_TYPE, "--format", "csv", "--store", url],
        &env,
        dir.path(),
    );
    let counts = event_counts(&csv);
    for t in EVENT_TYPES {
        assert!(
            counts.get(*t).copied().unwrap_or(0) > 0,
            "no {t} events on S3:\n{csv}"
        );
    }
    // The objects landed in the server's bucket under the prefix.
    let opened = Store::open(&kitle_data::StoreConfig {
        url: url.into(),
        s3: server.options(),
        ..Default::default()
    })
    .unwrap();
    for folder in ["customers", "events"] {
        let listed = futures::StreamExt::collect::<Vec<_>>(
            opened.object_store().list(Some(&opened.path(folder))),
        )
        .await;
        assert!(!listed.is_empty(), "nothing under {url}/{folder}");
    }

    // The same arguments on a local store give the same counts.
    let local = dir.path().join("local").display().to_string();
    let mut args: Vec<&str> = GENERATE.to_vec();
    args.extend(["--store", &local]);
    kitle_ok(&args, &[], dir.path());
    let local_csv = sql_csv(COUNT_BY_TYPE, &local, dir.path());
    assert_eq!(csv, local_csv);
}
