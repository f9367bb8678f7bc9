//! Incremental refreshes (partial states) against from-scratch evaluation.
//!
//! For each conformance scenario, in UTC and in `Europe/Istanbul`: a chain of refreshes at
//! increasing `as_of` over a copy of the conformance store that grows between them — the first
//! refresh sees only part of the last days and misses a file of an old partition; then new
//! files land in the previous refresh's day, a redelivered copy of some events lands in an old
//! partition in a file of its own, definitions are added; then the late file lands and a
//! definition changes. Every refresh's stored members must equal a from-scratch evaluation at
//! the same `as_of` (`evaluate`, which reads no state), the last one also the scenario's
//! expected members (UTC), a refresh with nothing new reuses every state, and a replay at an
//! earlier `as_of` is exact too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use kitle_data::files::FooterCache;
use kitle_data::session::Limits;
use kitle_data::tables::ContractTables;
use kitle_data::{NoProgress, Store, layout, memberships};
use kitle_planner::refresh::{
    RefreshOutcome, RefreshRun, put_definitions, refresh, stored_definitions,
};
use serde_json::{Value, json};

use crate::support::http::cases;
use crate::support::{Backend, S3Server, conformance_store, copy_tree, local_store};

async fn refresh_at(store: &Store, as_of: DateTime<Utc>, tz: Tz, full: bool) -> RefreshOutcome {
    refresh(RefreshRun {
        store,
        cache: &FooterCache::new(),
        requested: &[],
        as_of,
        tz,
        limits: &Limits::none(),
        progress: &NoProgress,
        full,
    })
    .await
    .unwrap_or_else(|e| panic!("refresh at {as_of}: {e}"))
}

/// The current stored members of every segment.
async fn stored_members(store: &Store) -> BTreeMap<String, Vec<String>> {
    let manifest = memberships::read_manifest(store).await.unwrap();
    let mut out = BTreeMap::new();
    for id in manifest.segments.keys() {
        let members = memberships::current_members(store, &manifest, id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.customer_id)
            .collect();
        out.insert(id.clone(), members);
    }
    out
}

/// Refreshes incrementally at `as_of` and checks every segment against a from-scratch
/// evaluation of the same definitions over the same store.
async fn check_step(store: &Store, as_of: DateTime<Utc>, tz: Tz, what: &str) -> RefreshOutcome {
    let outcome = refresh_at(store, as_of, tz, false).await;
    let definitions = stored_definitions(store, tz).await.unwrap();
    let tables = ContractTables::load(store, &FooterCache::new())
        .await
        .unwrap();
    let want = kitle_planner::evaluate(&tables, &definitions, as_of, tz)
        .await
        .unwrap();
    let got = stored_members(store).await;
    let mut differ = Vec::new();
    for (id, want) in &want {
        let got = got.get(id).cloned().unwrap_or_default();
        if &got != want {
            let missing: Vec<_> = want.iter().filter(|x| !got.contains(x)).collect();
            let extra: Vec<_> = got.iter().filter(|x| !want.contains(x)).collect();
            differ.push(format!("{id}: missing {missing:?}, extra {extra:?}"));
        }
    }
    assert!(
        differ.is_empty(),
        "{what} at {as_of} ({}): incremental differs from scratch:\n{}",
        outcome.states.mode,
        differ.join("\n")
    );
    outcome
}

/// Definitions with every measure that merges across days, over every kind of period; the
/// `changed` variant differs in a period and in a `where` value.
fn extra_definitions(as_of: DateTime<Utc>, changed: bool) -> Vec<Value> {
    let day = |d: i64| (as_of - TimeDelta::days(d)).format("%Y-%m-%d").to_string();
    let window = if changed { "45d" } else { "30d" };
    let category = if changed {
        "cat-giyim"
    } else {
        "cat-elektronik"
    };
    let event = |id: &str, condition: Value| json!({"id": id, "name": id, "refresh": "hourly", "condition": condition});
    vec![
        event(
            "inc-orders-all-time",
            json!({"event": "order_created", "op": "gte", "value": 2}),
        ),
        event(
            "inc-spend-window",
            json!({"event": "order_created", "period": {"last": window},
                   "measure": {"sum": "amount"}, "op": "gte", "value": 500}),
        ),
        event(
            "inc-cart-avg-since",
            json!({"event": "product_added_to_cart", "period": {"since": day(40)},
                   "measure": {"avg": "amount"}, "op": "gt", "value": 300}),
        ),
        event(
            "inc-cheap-views-between",
            json!({"event": "product_viewed", "period": {"between": [day(60), day(3)]},
                   "measure": {"min": "amount"}, "op": "lt", "value": 100}),
        ),
        event(
            "inc-big-order-before",
            json!({"event": ["order_created", "order_delivered"], "period": {"before_last": "7d"},
                   "measure": {"max": "amount"}, "op": "gt", "value": 1000}),
        ),
        event(
            "inc-first-view",
            json!({"event": "product_viewed", "measure": "first_time", "op": "lt",
                   "value": day(20)}),
        ),
        event(
            "inc-recent-category",
            json!({"event": ["product_viewed", "category_viewed"],
                   "where": [{"property": "category_id", "op": "eq", "value": category}],
                   "period": {"last": "14d"}, "measure": "last_time", "op": "within_last",
                   "value": "10d"}),
        ),
        event(
            "inc-top-spenders",
            json!({"event": "order_created", "period": {"last": "90d"},
                   "measure": {"sum": "amount"}, "op": "top_percent", "value": 20}),
        ),
    ]
}

/// The event files of the store, by partition day, sorted.
fn event_files(root: &Path) -> BTreeMap<chrono::NaiveDate, Vec<PathBuf>> {
    let mut out: BTreeMap<chrono::NaiveDate, Vec<PathBuf>> = BTreeMap::new();
    for dir in std::fs::read_dir(root.join(layout::EVENTS_DIR)).unwrap() {
        let dir = dir.unwrap().path();
        let Some(day) = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("date="))
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        else {
            continue;
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|f| f.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        files.sort();
        out.entry(day).or_default().extend(files);
    }
    out
}

/// Moves `file` (inside `root`) to the same relative place under `aside`, or back.
fn move_between(from_root: &Path, to_root: &Path, file: &Path) {
    let relative = file.strip_prefix(from_root).unwrap();
    let target = to_root.join(relative);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::rename(file, target).unwrap();
}

/// Writes the first rows of `source` again, as a redelivery would, into a new file of the same
/// partition.
fn redeliver_some(source: &Path) {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = std::fs::File::open(source).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    let first = &batches[0];
    let some = first.slice(0, first.num_rows().div_ceil(2).max(1));
    let target = source.with_file_name("zz-redelivered.parquet");
    let out = std::fs::File::create(target).unwrap();
    let mut writer = ArrowWriter::try_new(out, Arc::clone(&some.schema()), None).unwrap();
    writer.write(&some).unwrap();
    writer.close().unwrap();
}

async fn chain(scenario: &Value, tz: Tz) {
    let name = scenario["name"].as_str().unwrap();
    let what = format!("scenario {name} in {}", tz.name());
    let dir = tempfile::tempdir().unwrap();
    let aside = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_tree(&conformance_store(), root);
    let store = local_store(root);
    let end: DateTime<Utc> = scenario["as_of"].as_str().unwrap().parse().unwrap();
    let (a1, a2) = (end - TimeDelta::hours(36), end - TimeDelta::hours(12));

    // Withheld at first: every file from a1's day on, but the first of that day; one file of
    // an old partition (it lands late).
    let files = event_files(root);
    let mut later: Vec<PathBuf> = Vec::new();
    let mut late: Option<PathBuf> = None;
    for (day, day_files) in &files {
        if *day >= a1.date_naive() {
            let keep = usize::from(*day == a1.date_naive());
            later.extend(day_files.iter().skip(keep).cloned());
        } else if late.is_none() && *day < (a1 - TimeDelta::days(10)).date_naive() {
            late = day_files.first().cloned();
        }
    }
    for f in later.iter().chain(late.iter()) {
        move_between(root, aside.path(), f);
    }
    // The scenario's segments and half of the extra ones first; the other half midway.
    let mut documents = scenario["segments"].as_array().unwrap().clone();
    let extras = extra_definitions(end, false);
    documents.extend(extras[..4].iter().cloned());
    put_definitions(&store, &FooterCache::new(), &documents, tz)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let first = check_step(&store, a1, tz, &what).await;
    assert_eq!(first.states.mode, "incremental", "{what}: states are used");

    // New files of a1's day and of the next, a redelivered copy in an old partition, and
    // definitions added.
    let pending: Vec<PathBuf> = later
        .iter()
        .map(|f| aside.path().join(f.strip_prefix(root).unwrap()))
        .collect();
    for (original, held) in later.iter().zip(&pending) {
        let day = files
            .iter()
            .find(|(_, fs)| fs.contains(original))
            .map(|(d, _)| *d)
            .unwrap();
        if day <= a2.date_naive() {
            move_between(aside.path(), root, held);
        }
    }
    let old = files
        .iter()
        .filter(|(day, _)| **day < (a1 - TimeDelta::days(3)).date_naive())
        .find_map(|(_, fs)| fs.iter().find(|f| f.exists()).cloned())
        .unwrap();
    redeliver_some(&old);
    put_definitions(&store, &FooterCache::new(), &extras[4..], tz)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    // The added definitions' keys are computed for every closed day; the rest is reused.
    check_step(&store, a2, tz, &what).await;

    // Everything else lands (the late file too), and a definition changes.
    for held in &pending {
        if held.exists() {
            move_between(aside.path(), root, held);
        }
    }
    if let Some(late) = &late {
        move_between(
            aside.path(),
            root,
            &aside.path().join(late.strip_prefix(root).unwrap()),
        );
    }
    put_definitions(
        &store,
        &FooterCache::new(),
        &extra_definitions(end, true),
        tz,
    )
    .await
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    check_step(&store, end, tz, &what).await;
    if tz == chrono_tz::UTC {
        let expected: BTreeMap<String, Vec<String>> =
            serde_json::from_value(scenario["expected"].clone()).unwrap();
        let got = stored_members(&store).await;
        for (id, want) in &expected {
            assert_eq!(got.get(id), Some(want), "{what}: {id} as the case expects");
        }
    }

    // Nothing new: every state is reused, none computed.
    let again = check_step(&store, end, tz, &what).await;
    assert_eq!(
        again.states.partitions_recomputed, 0,
        "{what}: {:?}",
        again.states
    );
    assert!(again.states.partitions_reused > 0, "{what}");

    // A replay at an earlier instant, and a full refresh, agree with from scratch.
    check_step(&store, a2, tz, &format!("{what}, replayed")).await;
    let full = refresh_at(&store, end, tz, true).await;
    assert_eq!(full.states.mode, "full");
    assert_eq!(full.states.partitions_reused, 0);
    // The states stand in for the closed days' events: the incremental plan reads fewer rows.
    assert!(
        again.states.rows_read < full.states.rows_read,
        "{what}: incremental read {} rows, full {}",
        again.states.rows_read,
        full.states.rows_read
    );
}

/// Every conformance scenario through the chain of incremental refreshes, in UTC.
#[tokio::test]
async fn incremental_refreshes_match_from_scratch_in_utc() {
    let cases = cases();
    for scenario in cases["scenarios"].as_array().unwrap() {
        chain(scenario, chrono_tz::UTC).await;
    }
}

/// The same chain in `Europe/Istanbul` (local days, local instants in definitions).
#[tokio::test]
async fn incremental_refreshes_match_from_scratch_in_istanbul() {
    let cases = cases();
    for scenario in cases["scenarios"].as_array().unwrap() {
        chain(scenario, chrono_tz::Europe::Istanbul).await;
    }
}

/// A state file that is corrupt, foreign or missing is detected and recomputed, never
/// trusted: the refresh is still exact.
#[tokio::test]
async fn broken_state_files_are_recomputed() {
    let cases = cases();
    let scenario = &cases["scenarios"][0];
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&conformance_store(), dir.path());
    let store = local_store(dir.path());
    let end: DateTime<Utc> = scenario["as_of"].as_str().unwrap().parse().unwrap();
    put_definitions(
        &store,
        &FooterCache::new(),
        &extra_definitions(end, false),
        chrono_tz::UTC,
    )
    .await
    .unwrap();
    let first = check_step(&store, end, chrono_tz::UTC, "first").await;
    assert!(first.states.partitions_recomputed > 0);
    let index = kitle_data::states::read_index(&store).await.unwrap();
    let entries: Vec<_> = index.days.values().flatten().collect();
    assert!(entries.len() >= 3, "{entries:?}");
    // One corrupt (same size), one swapped with another day's (foreign), one deleted.
    let path = |e: &kitle_data::states::StateEntry| dir.path().join(&e.file);
    let size = std::fs::metadata(path(entries[0])).unwrap().len() as usize;
    std::fs::write(path(entries[0]), vec![b'x'; size]).unwrap();
    std::fs::copy(path(entries[2]), path(entries[1])).unwrap();
    std::fs::remove_file(path(entries[2])).unwrap();
    let second = check_step(&store, end, chrono_tz::UTC, "after breaking states").await;
    assert!(
        second.states.partitions_recomputed >= 3,
        "{:?}",
        second.states
    );
    // And what was recomputed is trusted again.
    let third = check_step(&store, end, chrono_tz::UTC, "after recomputing").await;
    assert_eq!(third.states.partitions_recomputed, 0, "{:?}", third.states);
}

/// The files each `DataSourceExec` of `plan` reads, by table folder (`events`, `states`, …).
fn scanned_files(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> Vec<String> {
    use datafusion::datasource::physical_plan::FileScanConfig;
    use datafusion::datasource::source::DataSourceExec;
    let mut out = Vec::new();
    if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
        && let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>()
    {
        for group in &config.file_groups {
            for file in group.files() {
                out.push(file.object_meta.location.to_string());
            }
        }
    }
    for child in plan.children() {
        out.extend(scanned_files(child));
    }
    out
}

/// The properties the compiler's module documentation claims, on real plans: one scan of
/// `events` for every measure of every segment, reading only the columns the conditions need
/// and the partitions their periods reach; with states, only the partitions some measure
/// still reads raw, the closed days coming from the state files.
#[tokio::test]
async fn plans_scan_events_once_with_only_the_needed_columns_and_partitions() {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::LogicalPlan;
    let cases = cases();
    let end: DateTime<Utc> = cases["scenarios"][0]["as_of"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&conformance_store(), dir.path());
    let store = local_store(dir.path());
    let tz = chrono_tz::UTC;
    let documents = vec![
        json!({"id": "viewers", "condition": {"event": "product_viewed", "period": {"last": "7d"},
               "op": "gte", "value": 2}}),
        json!({"id": "spenders", "condition": {"all": [
            {"event": "order_created", "period": {"last": "30d"}, "measure": {"sum": "amount"},
             "op": "gte", "value": 100},
            {"attribute": "email_consent", "op": "eq", "value": "granted"}]}}),
    ];
    put_definitions(&store, &FooterCache::new(), &documents, tz)
        .await
        .unwrap();
    let definitions = stored_definitions(&store, tz).await.unwrap();
    let targets: Vec<String> = definitions.iter().map(|d| d.id.clone()).collect();

    let plan_of = |with_states: bool| {
        let (store, definitions, targets) = (&store, &definitions, &targets);
        async move {
            let tables = ContractTables::load(store, &FooterCache::new())
                .await
                .unwrap();
            let ctx = kitle_data::session::new_context(store);
            tables.register_as_of(&ctx, end).unwrap();
            let plan = if with_states {
                kitle_planner::compile::build_refresh_plan_with_states(
                    &ctx,
                    &tables,
                    definitions,
                    targets,
                    end,
                    tz,
                    &NoProgress,
                )
                .await
                .unwrap()
                .0
            } else {
                kitle_planner::build_refresh_plan(&ctx, &tables, definitions, targets, end, tz)
                    .await
                    .unwrap()
            };
            let optimized = ctx.state().optimize(&plan.plan).unwrap();
            let physical = ctx.state().create_physical_plan(&plan.plan).await.unwrap();
            (optimized, physical)
        }
    };
    let scans = |plan: &LogicalPlan| {
        let mut scans = Vec::new();
        plan.apply(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                let columns: BTreeSet<String> = scan
                    .projected_schema
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                let filters: Vec<String> = scan.filters.iter().map(|f| f.to_string()).collect();
                scans.push((scan.table_name.to_string(), columns, filters));
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        scans
    };
    let in_partitions = |files: &[String], table: &str| -> BTreeSet<String> {
        files
            .iter()
            .filter(|f| f.contains(&format!("/{table}/")))
            .filter_map(|f| {
                f.split('/')
                    .find(|p| p.starts_with("date="))
                    .map(String::from)
            })
            .collect()
    };

    // From scratch: one scan of events, its columns, its partitions (the last 30 days).
    let (optimized, physical) = plan_of(false).await;
    let all = scans(&optimized);
    let events: Vec<_> = all.iter().filter(|(t, _, _)| t == "events").collect();
    assert_eq!(events.len(), 1, "one scan of events: {all:?}");
    let wanted: BTreeSet<String> = [
        "customer_id",
        "event_id",
        "event_type",
        "ts",
        "amount",
        "date",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert!(
        events[0].1.is_subset(&wanted) && events[0].1.contains("amount"),
        "only the needed columns: {:?}",
        events[0].1
    );
    let files = scanned_files(&physical);
    let days = in_partitions(&files, "events");
    let first = format!("date={}", (end - TimeDelta::days(30)).format("%Y-%m-%d"));
    assert!(
        !days.is_empty() && days.iter().all(|d| *d >= first),
        "only the partitions of the last 30 days: {days:?}"
    );
    let full_days = days.len();

    // With states (computed by this first incremental plan, then reused): the closed days
    // come from state files; only the day of `as_of` and the window's first day are raw.
    plan_of(true).await;
    let (optimized, physical) = plan_of(true).await;
    let all = scans(&optimized);
    assert_eq!(
        all.iter().filter(|(t, _, _)| t == "events").count(),
        1,
        "{all:?}"
    );
    assert_eq!(
        all.iter().filter(|(t, _, _)| t == "states").count(),
        1,
        "{all:?}"
    );
    let files = scanned_files(&physical);
    let raw = in_partitions(&files, "events");
    let allowed: BTreeSet<String> = [end, end - TimeDelta::days(7), end - TimeDelta::days(30)]
        .iter()
        .map(|t| format!("date={}", t.format("%Y-%m-%d")))
        .collect();
    assert!(
        raw.is_subset(&allowed),
        "only edge days are read raw: {raw:?} (allowed {allowed:?})"
    );
    let state_files = files.iter().filter(|f| f.contains("/states/")).count();
    assert!(
        state_files + 3 >= full_days && state_files > 0,
        "{state_files} state files for {full_days} days"
    );
}

/// What `store_io` reports is what the S3 server answered: for a refresh that computes every
/// state and one that reuses them, the requests of each kind and the object bytes fetched
/// match the server's own counts exactly (`tests/fixtures/moto_serialised.py` counts them).
#[tokio::test]
async fn store_io_counts_the_requests_the_s3_server_answers() {
    let server = S3Server::start();
    let backend = Backend::s3(&server, "shop/io");
    backend.fill_from(&conformance_store()).await;
    let store = Store::open(&backend.config()).unwrap();
    let end: DateTime<Utc> = cases()["scenarios"][0]["as_of"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    put_definitions(
        &store,
        &FooterCache::new(),
        &extra_definitions(end, false),
        chrono_tz::UTC,
    )
    .await
    .unwrap();
    for (what, full) in [
        ("computing states", false),
        ("reusing them", false),
        ("--full", true),
    ] {
        let before = server.requests();
        let outcome = refresh_at(&store, end, chrono_tz::UTC, full).await;
        let after = server.requests();
        let seen = |kind: &str| after[kind].as_u64().unwrap() - before[kind].as_u64().unwrap();
        let io = outcome.store_io;
        let counted = (
            io.gets,
            io.heads,
            io.lists,
            io.puts,
            io.deletes,
            io.bytes_read,
        );
        let answered = (
            seen("get"),
            seen("head"),
            seen("list"),
            seen("put"),
            seen("delete") + seen("post"),
            seen("bytes_read"),
        );
        assert_eq!(
            counted, answered,
            "{what}: (GET, HEAD, LIST, PUT, DELETE, bytes) counted by kitle vs the server: {io:?}"
        );
        assert!(
            io.gets > 0 && io.lists > 0 && io.puts > 0 && io.bytes_read > 0,
            "{what}: {io:?}"
        );
        assert_eq!(
            io.requests,
            io.gets + io.heads + io.lists + io.puts + io.deletes + io.copies
        );
        if what == "reusing them" {
            assert_eq!(outcome.states.partitions_recomputed, 0, "{what}");
        }
    }
}
