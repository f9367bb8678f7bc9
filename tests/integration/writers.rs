//! Files written by other tools — Spark-style pyarrow (INT96, dictionaries, `_SUCCESS`),
//! DuckDB, and pyarrow with other types and zones — read the same through `events` and
//! `customers`. The files are written here by the real tools (Python `pyarrow` and `duckdb`,
//! which the README's test command installs).

use std::collections::BTreeMap;
use std::process::Command;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Decimal128Type, Int32Type, TimestampMicrosecondType};
use kitle_data::Store;
use kitle_data::files::FooterCache;
use kitle_data::tables::ContractTables;

#[tokio::test]
async fn files_from_spark_duckdb_and_pyarrow_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let script = crate::support::fixture("write_foreign.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dir.path())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "write_foreign.py failed (pyarrow and duckdb installed?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let store = Store::open(&kitle_data::StoreConfig {
        url: dir.path().display().to_string(),
        ..Default::default()
    })
    .unwrap();
    let tables = ContractTables::load(&store, &FooterCache::new())
        .await
        .unwrap();
    assert!(
        tables.report().skipped_files.is_empty(),
        "markers and hidden files are not data: {:?}",
        tables.report()
    );
    let ctx = kitle_data::session::new_context(&store);
    tables.register(&ctx).unwrap();

    let batches = ctx
        .sql("SELECT event_id, ts, amount, quantity FROM events")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut got = BTreeMap::new();
    for b in &batches {
        let ids = b.column(0).as_string::<i32>();
        let ts = b.column(1).as_primitive::<TimestampMicrosecondType>();
        let amount = b.column(2).as_primitive::<Decimal128Type>();
        let quantity = b.column(3).as_primitive::<Int32Type>();
        for i in 0..b.num_rows() {
            got.insert(
                ids.value(i).to_string(),
                serde_json::json!([
                    ts.value(i),
                    amount.is_valid(i).then(|| amount.value(i) as i64),
                    quantity.is_valid(i).then(|| quantity.value(i)),
                ]),
            );
        }
    }
    let want: BTreeMap<String, serde_json::Value> =
        serde_json::from_value(expected["events"].clone()).unwrap();
    assert_eq!(got, want);

    let batches = ctx
        .sql("SELECT customer_id, email FROM customers")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut customers = BTreeMap::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            customers.insert(
                b.column(0).as_string::<i32>().value(i).to_string(),
                serde_json::json!(b.column(1).as_string::<i32>().value(i)),
            );
        }
    }
    let want: BTreeMap<String, serde_json::Value> =
        serde_json::from_value(expected["customers"].clone()).unwrap();
    assert_eq!(customers, want);
}
