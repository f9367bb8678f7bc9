//! Tests of the generator: reproducibility, coverage of the event types, the contract's types.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, TimeUnit, TimestampMicrosecondType};
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::events::Kind;
use super::*;
use crate::progress::NoProgress;
use crate::store::StoreConfig;

fn options(customers: u64, days: u32, seed: u64) -> GenerateOptions {
    GenerateOptions {
        customers,
        days,
        seed,
        // The period ends a week after Black Friday 2025 (28 November).
        end: NaiveDate::from_ymd_opt(2025, 12, 5).unwrap(),
    }
}

async fn generate_into(dir: &Path, options: &GenerateOptions) -> GenerateSummary {
    let store = Store::open(&StoreConfig {
        url: dir.to_str().unwrap().to_string(),
        ..StoreConfig::default()
    })
    .unwrap();
    generate(&store, options, &NoProgress).await.unwrap()
}

/// Every file under `dir`, by path relative to it, sorted.
fn files(dir: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .replace('\\', "/");
                out.insert(relative, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn read(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let array = b.column_by_name(column).unwrap().as_string::<i32>().clone();
            (0..array.len())
                .map(|i| array.is_valid(i).then(|| array.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn same_options_give_identical_files() {
    let (a, b) = (
        tempfile::TempDir::new().unwrap(),
        tempfile::TempDir::new().unwrap(),
    );
    let opts = options(300, 12, 7);
    let summary_a = generate_into(a.path(), &opts).await;
    let summary_b = generate_into(b.path(), &opts).await;
    assert_eq!(summary_a, summary_b);
    let (files_a, files_b) = (files(a.path()), files(b.path()));
    assert_eq!(
        files_a.keys().collect::<Vec<_>>(),
        files_b.keys().collect::<Vec<_>>()
    );
    assert_eq!(files_a.len() as u64, summary_a.files);
    for (name, path) in &files_a {
        let (x, y) = (
            std::fs::read(path).unwrap(),
            std::fs::read(&files_b[name]).unwrap(),
        );
        assert!(
            x == y,
            "{name} differs between two runs with the same options"
        );
    }
    // Another seed is another shop.
    let c = tempfile::TempDir::new().unwrap();
    generate_into(c.path(), &options(300, 12, 8)).await;
    let other = std::fs::read(c.path().join("customers/part-0000.parquet")).unwrap();
    assert_ne!(
        other,
        std::fs::read(a.path().join("customers/part-0000.parquet")).unwrap()
    );
}

#[tokio::test]
async fn thread_count_does_not_change_the_bytes() {
    let (a, b) = (
        tempfile::TempDir::new().unwrap(),
        tempfile::TempDir::new().unwrap(),
    );
    let opts = options(200, 9, 3);
    let open = |dir: &Path| {
        Store::open(&StoreConfig {
            url: dir.to_str().unwrap().to_string(),
            ..StoreConfig::default()
        })
        .unwrap()
    };
    generate_on(&open(a.path()), &opts, &NoProgress, 1)
        .await
        .unwrap();
    generate_on(&open(b.path()), &opts, &NoProgress, 5)
        .await
        .unwrap();
    let (files_a, files_b) = (files(a.path()), files(b.path()));
    assert_eq!(
        files_a.keys().collect::<Vec<_>>(),
        files_b.keys().collect::<Vec<_>>()
    );
    for (name, path) in &files_a {
        let same = std::fs::read(path).unwrap() == std::fs::read(&files_b[name]).unwrap();
        assert!(same, "{name} depends on the number of threads");
    }
}

/// Records what a run reports.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<(String, u64)>>);

impl Progress for Recorder {
    fn start(&self, phase: &str, total: u64) {
        self.0
            .lock()
            .unwrap()
            .push((format!("start {phase}"), total));
    }
    fn advance(&self, delta: u64) {
        let mut log = self.0.lock().unwrap();
        match log.last_mut() {
            Some((name, n)) if name == "advance" => *n += delta,
            _ => log.push(("advance".into(), delta)),
        }
    }
    fn finish(&self) {
        self.0.lock().unwrap().push(("finish".into(), 0));
    }
}

#[tokio::test]
async fn progress_reports_customers_then_days() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = Store::open(&StoreConfig {
        url: dir.path().to_str().unwrap().to_string(),
        ..StoreConfig::default()
    })
    .unwrap();
    let recorder = Recorder::default();
    generate(&store, &options(100_000, 2, 5), &recorder)
        .await
        .unwrap();
    let log = recorder.0.into_inner().unwrap();
    let expected = [
        ("start generating customers".to_string(), 100_000),
        ("advance".to_string(), 100_000),
        ("finish".to_string(), 0),
        ("start generating events".to_string(), 2),
        ("advance".to_string(), 2),
        ("finish".to_string(), 0),
    ];
    assert_eq!(log, expected);
}

#[tokio::test]
async fn every_event_type_appears_and_days_hold_their_own_events() {
    let dir = tempfile::TempDir::new().unwrap();
    let opts = options(2000, 30, 42);
    let summary = generate_into(dir.path(), &opts).await;
    assert_eq!(
        summary.first_day,
        NaiveDate::from_ymd_opt(2025, 11, 6).unwrap()
    );
    assert_eq!(summary.last_day, opts.end);
    assert_eq!(summary.customers, 2000);
    assert!(
        summary.customer_rows > 2000 + 100 && summary.customer_rows < 2000 + 400,
        "{summary:?}"
    );
    let per_customer_day = summary.events as f64 / (2000.0 * 30.0);
    assert!(
        (0.3..1.2).contains(&per_customer_day),
        "{per_customer_day} events per customer per day"
    );

    let all = files(dir.path());
    let mut types = BTreeSet::new();
    let mut main_ids = BTreeSet::new();
    let mut redelivered = Vec::new();
    let mut per_day = BTreeMap::new();
    for (name, path) in &all {
        let Some(date) = crate::layout::partition_date_of(name) else {
            continue;
        };
        let batches = read(path);
        for batch in &batches {
            let ts = batch
                .column_by_name("ts")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>();
            let start = (date - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() * DAY_US;
            for i in 0..ts.len() {
                assert!(
                    (start..start + DAY_US).contains(&ts.value(i)),
                    "{name}: ts outside its day"
                );
            }
        }
        let ids = strings(&batches, "event_id");
        if name.ends_with("part-0000.parquet") {
            *per_day.entry(date).or_insert(0) += ids.len();
            types.extend(strings(&batches, "event_type").into_iter().flatten());
            for id in ids {
                assert!(main_ids.insert(id.unwrap()), "event ids are unique");
            }
        } else {
            assert!(name.ends_with("part-0001-redelivery.parquet"), "{name}");
            redelivered.extend(ids.into_iter().flatten());
        }
    }
    let expected: BTreeSet<String> = Kind::ALL.iter().map(|k| k.as_str().to_string()).collect();
    let missing: Vec<_> = expected.difference(&types).collect();
    assert!(missing.is_empty(), "missing event types: {missing:?}");
    assert_eq!(per_day.len(), 30);
    assert_eq!(per_day.values().sum::<usize>() as u64, summary.events);
    assert!(!redelivered.is_empty());
    assert!(
        redelivered.iter().all(|id| main_ids.contains(id)),
        "redeliveries repeat existing events"
    );
    // Black Friday is several times an ordinary Friday.
    let bf = per_day[&NaiveDate::from_ymd_opt(2025, 11, 28).unwrap()];
    let friday = per_day[&NaiveDate::from_ymd_opt(2025, 11, 14).unwrap()];
    assert!(bf > 3 * friday, "Black Friday {bf} vs {friday}");
}

#[tokio::test]
async fn files_have_the_contract_types() {
    let dir = tempfile::TempDir::new().unwrap();
    generate_into(dir.path(), &options(500, 3, 1)).await;
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let utf8 = DataType::Utf8;
    let decimal = DataType::Decimal128(18, 2);
    let customers: Vec<(&str, DataType, bool)> = vec![
        ("customer_id", utf8.clone(), false),
        ("email", utf8.clone(), true),
        ("phone", utf8.clone(), true),
        ("email_consent", utf8.clone(), true),
        ("sms_consent", utf8.clone(), true),
        ("consent_updated_at", ts.clone(), true),
        (
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        ("customer_group", utf8.clone(), true),
        ("total_order_amount", decimal.clone(), true),
        ("b2b_status", utf8.clone(), true),
        ("language", utf8.clone(), true),
        ("registered_at", ts.clone(), true),
        ("password_updated_at", ts.clone(), true),
        ("account_status", utf8.clone(), true),
        ("birth_date", DataType::Date32, true),
        ("gender", utf8.clone(), true),
        ("updated_at", ts.clone(), false),
        ("first_name", utf8.clone(), true),
        ("last_name", utf8.clone(), true),
        ("city", utf8.clone(), true),
    ];
    let mut events: Vec<(&str, DataType, bool)> = vec![
        ("event_id", utf8.clone(), false),
        ("customer_id", utf8.clone(), true),
        ("anonymous_id", utf8.clone(), true),
        ("event_type", utf8.clone(), false),
        ("ts", ts.clone(), false),
    ];
    for name in [
        "session_id",
        "product_id",
        "category_id",
        "brand_id",
        "order_id",
    ] {
        events.push((name, utf8.clone(), true));
    }
    events.push(("amount", decimal, true));
    events.push(("quantity", DataType::Int32, true));
    for name in [
        "currency",
        "payment_method",
        "shipping_country",
        "billing_country",
    ] {
        events.push((name, utf8.clone(), true));
    }
    events.push(("rating", DataType::Int8, true));
    for name in ["campaign_id", "checkout_step", "page_id"] {
        events.push((name, utf8.clone(), true));
    }

    let all = files(dir.path());
    assert!(all.contains_key("customers/part-0000.parquet"));
    for (name, path) in &all {
        let file = std::fs::File::open(path).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(
            builder.metadata().file_metadata().created_by(),
            Some(CREATED_BY)
        );
        let expected = if name.starts_with("customers/") {
            &customers
        } else {
            &events
        };
        let fields = builder.schema().fields();
        assert_eq!(fields.len(), expected.len(), "{name}");
        for (field, (column, data_type, nullable)) in fields.iter().zip(expected) {
            assert_eq!(field.name(), column, "{name}");
            assert_eq!(field.data_type(), data_type, "{name}: {column}");
            assert_eq!(field.is_nullable(), *nullable, "{name}: {column}");
        }
    }

    // Real Turkish text, fixed-width ids.
    let profiles = read(&all["customers/part-0000.parquet"]);
    let ids = strings(&profiles, "customer_id");
    assert_eq!(ids.first().cloned().flatten().as_deref(), Some("c0000001"));
    assert_eq!(ids.last().cloned().flatten().as_deref(), Some("c0000500"));
    let names: String = strings(&profiles, "first_name")
        .into_iter()
        .flatten()
        .collect();
    assert!(names.chars().any(|c| "çğıİöşüÇÖŞÜ".contains(c)), "{names}");
}

#[tokio::test]
async fn invalid_options_are_refused() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = Store::open(&StoreConfig {
        url: dir.path().to_str().unwrap().to_string(),
        ..StoreConfig::default()
    })
    .unwrap();
    for (opts, name) in [
        (options(0, 10, 1), "--customers"),
        (options(10, 0, 1), "--days"),
        (options(10, MAX_DAYS + 1, 1), "--days"),
    ] {
        match generate(&store, &opts, &NoProgress).await {
            Err(Error::InvalidArgument { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{opts:?} gave {other:?}"),
        }
    }
    assert!(
        files(dir.path()).is_empty(),
        "nothing is written for refused options"
    );
    assert!(validate(&options(1, MAX_DAYS, 1)).is_ok());
}
