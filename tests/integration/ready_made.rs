//! The ready-made segments of `queries/segments/` on a generated shop: every file parses, the
//! set validates against the shop's schemas, every segment has members (without being the
//! whole universe), no two segments have the same members, the tiers and life-cycle stages
//! that must not overlap do not, and the engine agrees with the reference evaluator.
//!
//! Run with `--nocapture` to see the table of segment sizes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::reference::reference_members;
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use kitle_data::contract::ContractTable;
use kitle_data::files::FooterCache;
use kitle_data::generate::GenerateOptions;
use kitle_data::tables::ContractTables;
use kitle_data::{Store, StoreConfig};
use kitle_planner::{SegmentDefinition, StoreSchemas};

/// How many ready-made segments there must be at least.
const AT_LEAST: usize = 24;

/// Segments whose meaning may be the whole universe (none of the ready-made ones).
const MAY_BE_EVERYONE: &[&str] = &[];

/// Spending in lira (what the RFM tiers rank): a helper evaluated with the ready-made set.
const BUYERS: &str = "test-lira-buyers";

/// Pairs of segments that must have no member in common.
const DISJOINT: &[(&str, &str)] = &[
    ("rfm-platinum", "rfm-gold"),
    ("rfm-platinum", "rfm-silver"),
    ("rfm-gold", "rfm-silver"),
    ("lifecycle-active", "lifecycle-at-risk"),
    ("lifecycle-active", "lifecycle-lost"),
    ("lifecycle-at-risk", "lifecycle-lost"),
    ("lifecycle-at-risk", "lapsed-90d"),
    ("never-purchased", "lapsed-90d"),
    ("never-purchased", "lifecycle-active"),
    ("newsletter-ab-a", "newsletter-ab-b"),
];

/// Pairs `(a, b)` where every member of `a` must be a member of `b`.
const SUBSETS: &[(&str, &str)] = &[
    ("lifecycle-lost", "lapsed-90d"),
    ("five-star-fans", "happy-reviewers"),
    ("new-accounts-no-order", "lifecycle-new"),
];

fn segments_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../queries/segments")
}

/// Every `queries/segments/*.json`, sorted by file name: (file stem, document).
fn ready_made_documents() -> Vec<(String, serde_json::Value)> {
    let dir = segments_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, json)
        })
        .collect()
}

/// Customers in the universe at `as_of` (the latest profile row with `updated_at <= as_of`).
async fn universe_size(tables: &ContractTables, as_of: DateTime<Utc>) -> usize {
    let ctx = kitle_data::session::new_context(tables.store());
    tables.register_as_of(&ctx, as_of).unwrap();
    let batches = ctx
        .sql("SELECT count(DISTINCT customer_id) AS n FROM customers")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    batches[0].column(0).as_primitive::<Int64Type>().value(0) as usize
}

#[tokio::test]
async fn every_ready_made_segment_is_valid_and_non_empty_on_a_generated_shop() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig {
        url: dir.path().display().to_string(),
        ..StoreConfig::default()
    })
    .unwrap();
    let options = GenerateOptions {
        customers: 3000,
        days: 120,
        seed: 42,
        end: NaiveDate::from_ymd_opt(2025, 12, 15).unwrap(),
    };
    kitle_data::generate::generate(&store, &options, &kitle_data::NoProgress)
        .await
        .unwrap();
    let tables = ContractTables::load(&store, &FooterCache::new())
        .await
        .unwrap();

    // Every file parses, and is named after its id.
    let documents = ready_made_documents();
    assert!(
        documents.len() >= AT_LEAST,
        "{} ready-made segments in {}, want at least {AT_LEAST}",
        documents.len(),
        segments_dir().display()
    );
    let mut definitions: Vec<SegmentDefinition> = Vec::new();
    for (stem, json) in &documents {
        let def = kitle_planner::parse_definition(json, chrono_tz::UTC)
            .unwrap_or_else(|problems| panic!("{stem}.json is refused:\n{problems}"));
        assert_eq!(&def.id, stem, "{stem}.json holds segment `{}`", def.id);
        definitions.push(def);
    }

    // The set validates against the generated shop's columns.
    let schemas = StoreSchemas {
        customers: tables.schema(ContractTable::Customers).as_ref().clone(),
        events: tables.schema(ContractTable::Events).as_ref().clone(),
    };
    if let Err(problems) = kitle_planner::validate_set(&definitions, &[], &schemas) {
        panic!("the ready-made segments are refused:\n{problems}");
    }

    let as_of: DateTime<Utc> = "2025-12-15T20:00:00Z".parse().unwrap();
    let mut evaluated = definitions.clone();
    evaluated.push(
        kitle_planner::parse_definition(
            &serde_json::json!({
                "id": BUYERS,
                "condition": {
                    "event": "order_created",
                    "where": [{"property": "currency", "op": "eq", "value": "TRY"}],
                    "measure": {"sum": "amount"},
                    "op": "gt", "value": 0
                }
            }),
            chrono_tz::UTC,
        )
        .unwrap(),
    );
    let members = kitle_planner::evaluate(&tables, &evaluated, as_of, chrono_tz::UTC)
        .await
        .unwrap_or_else(|e| panic!("evaluating the ready-made segments: {e}"));
    let universe = universe_size(&tables, as_of).await;

    println!("\nready-made segments at {as_of} ({universe} customers in the universe):\n");
    println!("{:<32} {:>7} {:>7}", "segment", "members", "share");
    for def in &definitions {
        let size = members[&def.id].len();
        println!(
            "{:<32} {:>7} {:>6.1}%",
            def.id,
            size,
            100.0 * size as f64 / universe as f64
        );
    }
    println!();

    let mut problems = Vec::new();
    let mut by_members: BTreeMap<&[String], &str> = BTreeMap::new();
    for def in &definitions {
        let got = &members[&def.id];
        if got.is_empty() {
            problems.push(format!("{} is empty", def.id));
        } else if got.len() >= universe && !MAY_BE_EVERYONE.contains(&def.id.as_str()) {
            problems.push(format!("{} is the whole universe", def.id));
        }
        if let Some(other) = by_members.insert(got.as_slice(), &def.id) {
            problems.push(format!("{} and {other} have the same members", def.id));
        }
    }
    let set = |id: &str| -> BTreeSet<&String> { members[id].iter().collect() };
    for (a, b) in DISJOINT {
        let both: Vec<_> = set(a).intersection(&set(b)).copied().collect();
        if !both.is_empty() {
            problems.push(format!(
                "{a} and {b} share {} members: {both:?}",
                both.len()
            ));
        }
    }
    for (a, b) in SUBSETS {
        let outside: Vec<_> = set(a).difference(&set(b)).copied().collect();
        if !outside.is_empty() {
            problems.push(format!(
                "{} of {a} are not in {b}: {outside:?}",
                outside.len()
            ));
        }
    }

    // The engine agrees with the reference evaluator, written from the spec alone.
    let reference = reference_members(&store, &definitions, as_of, chrono_tz::UTC).await;
    for def in &definitions {
        let (got, want) = (&members[&def.id], &reference[&def.id]);
        if got != want {
            let missing: Vec<_> = want.iter().filter(|id| !got.contains(id)).collect();
            let extra: Vec<_> = got.iter().filter(|id| !want.contains(id)).collect();
            problems.push(format!(
                "{}: the engine differs from the reference: missing {missing:?}, extra {extra:?}",
                def.id
            ));
        }
    }

    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
