//! The ready-made segments of `queries/segments/` on a generated shop: every file parses, the
//! set validates against the shop's schemas, every segment has members (without being the
//! whole universe), no two segments have the same members, the tiers and life-cycle stages
//! that must not overlap do not, and the engine agrees with the reference evaluator.
//!
//! Run with `--nocapture` to see the table of segment sizes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::generated_shop;
use crate::support::reference::reference_members;
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use kitle_data::contract::ContractTable;
use kitle_data::generate::GenerateOptions;
use kitle_data::tables::ContractTables;
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
    ("rfm-champions", "rfm-loyal"),
    ("rfm-champions", "rfm-at-risk"),
    ("rfm-champions", "rfm-hibernating"),
    ("rfm-loyal", "rfm-at-risk"),
    ("rfm-loyal", "rfm-hibernating"),
    ("rfm-at-risk", "rfm-hibernating"),
    ("rfm-new", "rfm-at-risk"),
    ("rfm-new", "rfm-hibernating"),
    ("never-purchased", "rfm-hibernating"),
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
    let (_dir, store, tables) = generated_shop(&GenerateOptions {
        customers: 3000,
        days: 120,
        seed: 42,
        end: NaiveDate::from_ymd_opt(2025, 12, 15).unwrap(),
    })
    .await;

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

/// The RFM groups' rules, computed by DuckDB straight from their descriptions over the same
/// Parquet files: events once per `event_id` with `ts <= as_of`, the universe as of `as_of`,
/// quintile scores by `percent_rank()` with `top_percent v` as `p >= 1 - v/100` in doubles.
const RFM_DUCKDB: &str = r#"
import json, sys, duckdb
store, as_of = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
# No progress bar on stdout (DuckDB draws one for a query past 2 s, e.g. on a busy machine).
con.execute("SET enable_progress_bar = false")
rows = con.execute(f"""
WITH raw AS (
  SELECT event_id, customer_id, event_type, ts, amount, currency
  FROM read_parquet('{store}/events/*/*.parquet', hive_partitioning = true, union_by_name = true)
  WHERE ts <= TIMESTAMPTZ '{as_of}' AND event_id IS NOT NULL AND event_type IS NOT NULL),
ev AS (
  SELECT event_id, any_value(customer_id) AS customer_id, any_value(event_type) AS event_type,
         any_value(ts) AS ts, any_value(amount) AS amount, any_value(currency) AS currency
  FROM raw GROUP BY event_id),
u AS (
  SELECT DISTINCT customer_id
  FROM read_parquet('{store}/customers/*.parquet', union_by_name = true)
  WHERE updated_at <= TIMESTAMPTZ '{as_of}' AND customer_id IS NOT NULL),
o AS (
  SELECT customer_id, count(*) AS n, max(ts) AS last, min(ts) AS first,
         sum(CASE WHEN currency = 'TRY' THEN amount END) AS m
  FROM ev WHERE event_type = 'order_created' GROUP BY customer_id),
s AS (
  SELECT u.customer_id, coalesce(o.n, 0) AS n, o.last, o.first, coalesce(o.m, 0) AS m
  FROM u LEFT JOIN o USING (customer_id)),
p AS (
  SELECT customer_id,
    percent_rank() OVER (ORDER BY n) AS pf,
    percent_rank() OVER (ORDER BY m) AS pm,
    CASE WHEN last IS NOT NULL THEN percent_rank() OVER (PARTITION BY last IS NULL ORDER BY last) END AS pr,
    CASE WHEN first IS NOT NULL THEN percent_rank() OVER (PARTITION BY first IS NULL ORDER BY first) END AS pfirst
  FROM s),
scored AS (
  SELECT customer_id, pfirst,
    CASE WHEN pr IS NULL THEN 1 WHEN pr >= 1 - 20/100.0 THEN 5 WHEN pr >= 1 - 40/100.0 THEN 4
         WHEN pr >= 1 - 60/100.0 THEN 3 WHEN pr >= 1 - 80/100.0 THEN 2 ELSE 1 END AS r,
    CASE WHEN pf >= 1 - 20/100.0 THEN 5 WHEN pf >= 1 - 40/100.0 THEN 4
         WHEN pf >= 1 - 60/100.0 THEN 3 WHEN pf >= 1 - 80/100.0 THEN 2 ELSE 1 END AS f,
    CASE WHEN pm >= 1 - 20/100.0 THEN 5 WHEN pm >= 1 - 40/100.0 THEN 4
         WHEN pm >= 1 - 60/100.0 THEN 3 WHEN pm >= 1 - 80/100.0 THEN 2 ELSE 1 END AS mm
  FROM p)
SELECT customer_id, r, f, mm, coalesce(pfirst >= 1 - 20/100.0, false) FROM scored
""").fetchall()
groups = {"rfm-champions": [], "rfm-loyal": [], "rfm-at-risk": [], "rfm-hibernating": [], "rfm-new": []}
for cid, r, f, m, new_first in rows:
    if r == 5 and f >= 4 and m >= 4: groups["rfm-champions"].append(cid)
    if r in (3, 4) and f >= 4 and m >= 4: groups["rfm-loyal"].append(cid)
    if r == 2 and f >= 4 and m >= 4: groups["rfm-at-risk"].append(cid)
    if r == 1 and f >= 2: groups["rfm-hibernating"].append(cid)
    if r == 5 and new_first: groups["rfm-new"].append(cid)
print(json.dumps({k: sorted(v) for k, v in groups.items()}))
"#;

#[tokio::test]
async fn rfm_groups_equal_their_stated_rules_computed_by_duckdb() {
    let (dir, _store, tables) = generated_shop(&GenerateOptions {
        customers: 4000,
        days: 150,
        seed: 9,
        end: NaiveDate::from_ymd_opt(2025, 12, 15).unwrap(),
    })
    .await;
    let definitions: Vec<SegmentDefinition> = ready_made_documents()
        .into_iter()
        .filter(|(stem, _)| stem.starts_with("rfm-"))
        .map(|(_, json)| kitle_planner::parse_definition(&json, chrono_tz::UTC).unwrap())
        .collect();
    let as_of = "2025-12-14T18:30:00Z";
    let members = kitle_planner::evaluate(
        &tables,
        &definitions,
        as_of.parse().unwrap(),
        chrono_tz::UTC,
    )
    .await
    .unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", RFM_DUCKDB, &dir.path().display().to_string(), as_of])
        .output()
        .expect("python3 runs (scripts/test installs duckdb)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: BTreeMap<String, Vec<String>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(expected.len(), 5);
    for (segment, want) in &expected {
        let got = &members[segment];
        assert!(!want.is_empty(), "{segment} is empty");
        let missing: Vec<_> = want.iter().filter(|id| !got.contains(id)).collect();
        let extra: Vec<_> = got.iter().filter(|id| !want.contains(id)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{segment}: DuckDB's rule and kitle differ: missing {missing:?}, extra {extra:?}"
        );
    }
}
