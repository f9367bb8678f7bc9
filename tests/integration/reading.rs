//! Reading the data contract: the conformance store (written by pyarrow the way other systems
//! write) read through `events` and `customers`, on a local folder and on a real S3 server.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;

use crate::support::{Backend, S3Server, conformance_store, shared_dir};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, Utc};
use datafusion::physical_plan::displayable;
use datafusion::prelude::SessionContext;
use kitle_data::Store;
use kitle_data::files::FooterCache;
use kitle_data::tables::ContractTables;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn cases() -> serde_json::Value {
    let text = std::fs::read_to_string(shared_dir().join("conformance/cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn open(backend: &Backend<'_>) -> (Store, ContractTables, SessionContext) {
    let store = Store::open(&backend.config()).unwrap();
    let tables = ContractTables::load(&store, &FooterCache::new())
        .await
        .unwrap();
    let ctx = kitle_data::session::new_context(&store);
    tables.register(&ctx).unwrap();
    (store, tables, ctx)
}

async fn query(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

async fn scalar_i64(ctx: &SessionContext, sql: &str) -> i64 {
    let batches = query(ctx, sql).await;
    let column = cast(batches[0].column(0), &DataType::Int64).unwrap();
    column
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0)
}

/// Every check of this module, run against one backend holding a copy of the conformance
/// store.
async fn check_conformance_store(backend: &Backend<'_>) {
    backend.fill_from(&conformance_store()).await;
    let cases = cases();
    let (store, tables, ctx) = open(backend).await;
    let name = backend.name();

    // Broken files: exactly the two the cases name, each with a reason.
    let report = tables.report();
    let skipped: Vec<&str> = report
        .skipped_files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    let expected: Vec<&str> = cases["skipped_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(skipped, expected, "{name}: skipped files");
    assert!(
        report.skipped_files[0]
            .reason
            .contains("not a valid Parquet file"),
        "{:?}",
        report
    );
    assert!(
        report.skipped_files[1].reason.contains("column ts is Utf8"),
        "{:?}",
        report
    );

    // Types are the contract's, whatever the writers used; extra columns are kept.
    let events = ctx.table("events").await.unwrap();
    let schema = events.schema().as_arrow().clone();
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    assert_eq!(schema.field_with_name("ts").unwrap().data_type(), &utc);
    assert_eq!(
        schema.field_with_name("amount").unwrap().data_type(),
        &DataType::Decimal128(18, 2)
    );
    assert_eq!(
        schema.field_with_name("event_id").unwrap().data_type(),
        &DataType::Utf8
    );
    assert_eq!(
        schema.field_with_name("rating").unwrap().data_type(),
        &DataType::Int8
    );
    assert_eq!(
        schema.field_with_name("date").unwrap().data_type(),
        &DataType::Utf8
    );
    assert!(
        schema.field_with_name("coupon_code").is_ok(),
        "{name}: extra event column kept"
    );
    let customers = ctx.table("customers").await.unwrap();
    let cschema = customers.schema().as_arrow().clone();
    assert_eq!(
        cschema.field_with_name("updated_at").unwrap().data_type(),
        &utc
    );
    assert!(
        cschema.field_with_name("loyalty_points").is_ok(),
        "{name}: custom attribute kept"
    );

    // One row per event_id, and exactly the events of the readable files.
    let rows = scalar_i64(&ctx, "SELECT count(*) FROM events").await;
    let distinct = scalar_i64(&ctx, "SELECT count(DISTINCT event_id) FROM events").await;
    assert_eq!(rows, distinct, "{name}: duplicate event ids");
    // `store_events_rows` counts the rows of the readable files, the redelivered copy included.
    let raw = tables
        .files(kitle_data::contract::ContractTable::Events)
        .rows as i64;
    assert_eq!(
        raw,
        cases["store_events_rows"].as_i64().unwrap(),
        "{name}: raw event rows"
    );
    assert!(
        raw > rows,
        "{name}: the store holds a redelivered event ({raw} raw rows, {rows} events)"
    );

    // Timestamps keep their instant whatever the unit and zone: compare with a reference
    // read of the files done here with the parquet crate.
    let reference = reference_events(&backend.local_root());
    let batches = query(&ctx, "SELECT event_id, ts FROM events").await;
    let mut seen = BTreeMap::new();
    for b in &batches {
        let ids = b.column(0).as_string::<i32>();
        let ts = b.column(1).as_primitive::<TimestampMicrosecondType>();
        for i in 0..b.num_rows() {
            seen.insert(ids.value(i).to_string(), ts.value(i));
        }
    }
    assert_eq!(seen, reference, "{name}: event instants");

    // The universe as of each scenario's instant is the customers with a row by then.
    for scenario in cases["scenarios"].as_array().unwrap() {
        let as_of: DateTime<Utc> = scenario["as_of"].as_str().unwrap().parse().unwrap();
        let plan = tables.customers_plan(Some(as_of)).unwrap();
        let batches = ctx
            .execute_logical_plan(plan)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let n: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(
            n as u64,
            scenario["universe_size"].as_u64().unwrap(),
            "{name}: universe at {as_of}"
        );
        let expected = reference_customers(&backend.local_root(), Some(as_of));
        assert_eq!(
            customer_rows(&batches),
            expected,
            "{name}: profiles as of {as_of}"
        );
    }
    // Without an instant: the latest row of every customer.
    let batches = query(&ctx, "SELECT * FROM customers").await;
    assert_eq!(
        customer_rows(&batches),
        reference_customers(&backend.local_root(), None)
    );

    // Partition pruning: a query on the last days opens only their partitions.
    let sql = "SELECT count(*) FROM events WHERE date >= '2025-12-17'";
    let plan = ctx
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let text = displayable(plan.as_ref()).indent(true).to_string();
    let opened: BTreeSet<&str> = text
        .split(|c: char| c == '[' || c == ']' || c == ',' || c.is_whitespace())
        .filter(|s| s.ends_with(".parquet"))
        .collect();
    assert!(!opened.is_empty(), "{name}: plan lists no files:\n{text}");
    for file in &opened {
        let day = file.split("date=").nth(1).unwrap_or_default();
        assert!(
            day >= "2025-12-17",
            "{name}: pruned query opens {file}:\n{text}"
        );
    }
    let recent_files = parquet_files(&backend.local_root().join("events"))
        .into_iter()
        .filter(|p| {
            p.to_string_lossy()
                .split("date=")
                .nth(1)
                .unwrap_or_default()
                >= "2025-12-17"
        })
        .count();
    assert_eq!(
        opened.len(),
        recent_files,
        "{name}: every recent file, nothing else:\n{text}"
    );

    // Strict reading fails on the first broken file, naming it.
    let mut strict = backend.config();
    strict.strict = true;
    let err = ContractTables::load(&Store::open(&strict).unwrap(), &FooterCache::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("events/date=2025-11-03/part-9999-truncated.parquet"),
        "{err}"
    );
    drop(store);
}

/// Every event's instant in microseconds, read straight from the readable files with the
/// parquet crate and arrow's cast (the naive values are UTC).
fn reference_events(root: &Path) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for path in parquet_files(&root.join("events")) {
        let Ok(file) = File::open(&path) else {
            continue;
        };
        let Ok(builder) = ParquetRecordBatchReaderBuilder::try_new(file) else {
            continue;
        };
        if !matches!(
            builder
                .schema()
                .field_with_name("ts")
                .map(|f| f.data_type().clone()),
            Ok(DataType::Timestamp(..))
        ) {
            continue;
        }
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            let ids = cast(batch.column_by_name("event_id").unwrap(), &DataType::Utf8).unwrap();
            let ts = cast(
                batch.column_by_name("ts").unwrap(),
                &DataType::Timestamp(TimeUnit::Microsecond, None),
            )
            .unwrap();
            let ids = ids.as_string::<i32>();
            let ts = ts.as_primitive::<TimestampMicrosecondType>();
            for i in 0..batch.num_rows() {
                if !ids.is_null(i) && !ts.is_null(i) {
                    out.insert(ids.value(i).to_string(), ts.value(i));
                }
            }
        }
    }
    out
}

/// (customer_id → (updated_at, email)) of the profile each customer has as of `as_of`,
/// computed row by row from the files in path order, as the data contract states it.
fn reference_customers(
    root: &Path,
    as_of: Option<DateTime<Utc>>,
) -> BTreeMap<String, (i64, Option<String>)> {
    let limit = as_of.map(|t| t.timestamp_micros()).unwrap_or(i64::MAX);
    let mut best: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
    for path in parquet_files(&root.join("customers")) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            let ids = batch
                .column_by_name("customer_id")
                .unwrap()
                .as_string::<i32>()
                .clone();
            let updated = cast(
                batch.column_by_name("updated_at").unwrap(),
                &DataType::Timestamp(TimeUnit::Microsecond, None),
            )
            .unwrap();
            let updated = updated.as_primitive::<TimestampMicrosecondType>();
            let emails = batch
                .column_by_name("email")
                .map(|c| c.as_string::<i32>().clone());
            for i in 0..batch.num_rows() {
                if ids.is_null(i) || updated.is_null(i) || updated.value(i) > limit {
                    continue;
                }
                let email = emails
                    .as_ref()
                    .and_then(|e| (!e.is_null(i)).then(|| e.value(i).to_string()));
                let candidate = (updated.value(i), email);
                // Later files and later rows win ties: `>=` keeps the last one seen.
                match best.get(ids.value(i)) {
                    Some((t, _)) if *t > candidate.0 => {}
                    _ => {
                        best.insert(ids.value(i).to_string(), candidate);
                    }
                }
            }
        }
    }
    best
}

fn customer_rows(batches: &[RecordBatch]) -> BTreeMap<String, (i64, Option<String>)> {
    let mut out = BTreeMap::new();
    for b in batches {
        let ids = b.column_by_name("customer_id").unwrap().as_string::<i32>();
        let updated = b
            .column_by_name("updated_at")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        let emails = b.column_by_name("email").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            let email = (!emails.is_null(i)).then(|| emails.value(i).to_string());
            assert!(
                out.insert(ids.value(i).to_string(), (updated.value(i), email))
                    .is_none(),
                "two rows for one customer"
            );
        }
    }
    out
}

fn parquet_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn conformance_store_reads_from_a_local_folder() {
    check_conformance_store(&Backend::Local(tempfile::tempdir().unwrap())).await;
}

#[tokio::test]
async fn conformance_store_reads_from_s3() {
    let server = S3Server::start();
    check_conformance_store(&Backend::s3(&server, "shop/conformance")).await;
}

#[tokio::test]
async fn an_empty_store_has_empty_tables() {
    let dir = tempfile::tempdir().unwrap();
    let (_, tables, ctx) = open(&Backend::Local(dir)).await;
    assert!(tables.report().is_clean());
    assert_eq!(scalar_i64(&ctx, "SELECT count(*) FROM events").await, 0);
    assert_eq!(scalar_i64(&ctx, "SELECT count(*) FROM customers").await, 0);
}
