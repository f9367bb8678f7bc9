//! The cluster engine end to end: a real `kitle scheduler` and two `kitle executor` processes
//! on 127.0.0.1 over the real S3-compatible server, with kitle's plans sent to them.
//!
//! - every conformance case, refreshed through the cluster (members equal to the expected
//!   ones, the two broken files of the store left out by the scheduler as by the local
//!   engine);
//! - a generated shop's ready-made segments refreshed by `kitle refresh --engine …` and by the
//!   local engine: every member and every change equal, and analyst SQL over the results
//!   (`kitle sql --engine …`, the `segments` and `memberships` tables) equal too;
//! - `kitle serve --engine …`: previews and `/v1/sql` equal to a local service's;
//! - an executor killed by its failpoint as it starts a task of a refresh: the refresh either
//!   completes through Ballista's retry with the right members, or fails naming the cluster
//!   with the previous memberships kept;
//! - a scheduler that cannot be reached: the refresh fails with exit 1 naming the cluster,
//!   and the service answers 5xx;
//! - and without a cluster: the plans of every ready-made segment survive Ballista's codecs
//!   unchanged, logical (coordinator → scheduler) and physical (scheduler → executor).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::segments::refresh_scenario;
use crate::support::cluster::{Cluster, cluster_env, free_port};
use crate::support::http::{cases, client, post};
use crate::support::{Backend, S3Server, Server, conformance_store, kitle, kitle_ok};
use chrono::{DateTime, Utc};
use kitle_data::Store;
use kitle_data::cluster::Engine;
use serde_json::{Value, json};

/// The ready-made segment files.
fn ready_made_files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../queries/segments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files.iter().map(|p| p.display().to_string()).collect()
}

/// `env` with the store at `prefix` of the test bucket.
fn at(env: &[(&'static str, String)], prefix: &str) -> Vec<(&'static str, String)> {
    let mut env: Vec<_> = env
        .iter()
        .filter(|(k, _)| *k != "KITLE_STORE")
        .cloned()
        .collect();
    env.push((
        "KITLE_STORE",
        format!("s3://{}/{prefix}", kitle_tests::S3_BUCKET),
    ));
    env
}

/// Every stored segment's current members with `since`, as CSV sorted by segment and customer
/// (read with the local engine), after checking that at least 20 segments are stored.
fn all_members(env: &[(&str, String)], cwd: &Path) -> String {
    let list: Value = serde_json::from_str(&kitle_ok(&["segment", "list", "--json"], env, cwd))
        .expect("segment list --json is JSON");
    assert!(list["segments"].as_array().unwrap().len() >= 20, "{list}");
    kitle_ok(
        &[
            "sql",
            "SELECT segment_id, customer_id, since FROM memberships ORDER BY segment_id, customer_id",
            "--format",
            "csv",
            "--engine",
            "local",
        ],
        env,
        cwd,
    )
}

/// Generates a shop into the store `env` names (`customers`, `days`, `seed`; ending
/// 2026-03-31: the generator gives the same bytes for the same arguments) and stores the
/// segments of `files`.
fn generate_shop(
    env: &[(&str, String)],
    cwd: &Path,
    customers: &str,
    days: &str,
    seed: &str,
    files: &[String],
) {
    kitle_ok(
        &[
            "generate",
            "--customers",
            customers,
            "--days",
            days,
            "--seed",
            seed,
            "--end",
            "2026-03-31",
        ],
        env,
        cwd,
    );
    let mut put = vec!["segment", "put"];
    put.extend(files.iter().map(String::as_str));
    kitle_ok(&put, env, cwd);
}

const SHOP_AS_OF: &str = "2026-03-31T18:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_gives_the_local_engines_answers() {
    let s3 = S3Server::start();
    let env = cluster_env(&s3, "nodes");
    let cluster = Cluster::start(&env, &[vec![], vec![]]);
    let engine: Engine = cluster.engine.parse().unwrap();

    // Every conformance case, with the test process as the coordinator.
    let cases = cases();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (i, scenario) in cases["scenarios"].as_array().unwrap().iter().enumerate() {
        let name = scenario["name"].as_str().unwrap();
        let backend = Backend::s3(&s3, &format!("conformance-{i}"));
        backend.fill_from(&conformance_store()).await;
        let store = Store::open(&backend.config())
            .unwrap()
            .with_engine(engine.clone());
        let (outcome, compared, differ) = refresh_scenario(&store, scenario, &cases)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "scenario {name} on the cluster: {e}\nscheduler log:\n{}",
                    cluster.log("scheduler")
                )
            });
        assert_eq!(outcome.engine, cluster.engine, "{name}");
        checked += compared;
        failures.extend(differ);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 70, "only {checked} segments checked");
    // The executors did the work: each ran tasks.
    for i in [1, 2] {
        let log = cluster.log(&format!("executor-{i}"));
        assert!(
            log.contains("task") || log.contains("Task"),
            "executor {i} ran no task:\n{log}"
        );
    }

    // One generated shop, twice (the generator is deterministic): refreshed by the local
    // engine and through the cluster by the CLI.
    let cwd = tempfile::tempdir().unwrap();
    let local = at(&env, "shop-local");
    let mut remote = at(&env, "shop-cluster");
    let files = ready_made_files();
    for shop in [&local, &remote] {
        generate_shop(shop, cwd.path(), "1200", "40", "11", &files);
    }
    let local_run: Value = serde_json::from_str(&kitle_ok(
        &["refresh", "--as-of", SHOP_AS_OF, "--json"],
        &local,
        cwd.path(),
    ))
    .unwrap();
    let cluster_run: Value = serde_json::from_str(&kitle_ok(
        &[
            "refresh",
            "--as-of",
            SHOP_AS_OF,
            "--json",
            "--engine",
            &cluster.engine,
        ],
        &remote,
        cwd.path(),
    ))
    .unwrap();
    assert_eq!(local_run["engine"], "local");
    assert_eq!(cluster_run["engine"], cluster.engine.as_str());
    let sizes = |run: &Value| -> Vec<(String, u64)> {
        run["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().into(),
                    s["size"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(sizes(&cluster_run), sizes(&local_run));
    assert!(sizes(&local_run).iter().filter(|(_, n)| *n > 0).count() >= 10);
    assert_eq!(
        all_members(&remote, cwd.path()),
        all_members(&local, cwd.path())
    );

    // Analyst SQL through the cluster: the contract's views, kitle's own tables (the
    // `segments` table included, a VALUES view) and kitle's functions in one statement.
    remote.push(("KITLE_ENGINE", cluster.engine.clone()));
    let queries = [
        "SELECT count(*) AS events, count(DISTINCT customer_id) AS buyers FROM events WHERE event_type = 'order_placed'",
        "SELECT s.id, s.size, count(m.customer_id) AS members FROM segments s LEFT JOIN memberships m ON m.segment_id = s.id GROUP BY s.id, s.size ORDER BY s.id",
        "SELECT segment_id, change, count(*) AS n FROM segment_changes GROUP BY segment_id, change ORDER BY segment_id, change",
        "SELECT city, count(*) AS n FROM customers GROUP BY city ORDER BY n DESC, city LIMIT 5",
    ];
    for query in queries {
        let on_cluster = kitle_ok(&["sql", query, "--format", "csv"], &remote, cwd.path());
        let here = kitle_ok(&["sql", query, "--format", "csv"], &local, cwd.path());
        assert_eq!(on_cluster, here, "{query}");
        assert!(on_cluster.lines().count() > 1, "{query}: {on_cluster}");
    }

    // `kitle serve --engine …`: previews and SQL over HTTP equal a local service's.
    let serve_env = |shop: &[(&'static str, String)], engine: &str| {
        let mut e = shop.to_vec();
        e.push(("KITLE_ENGINE", engine.to_string()));
        e.push(("KITLE_SERVE__SCHEDULER", "false".into()));
        e
    };
    let on_cluster = Server::start(
        &["serve"],
        &serve_env(&at(&env, "shop-cluster"), &cluster.engine),
        cwd.path(),
        None,
        Duration::from_secs(60),
    );
    let here = Server::start(
        &["serve"],
        &serve_env(&local, "local"),
        cwd.path(),
        None,
        Duration::from_secs(60),
    );
    let c = client();
    let definition: Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    for body in [
        json!({"definition": definition, "as_of": SHOP_AS_OF, "sample": 20}),
        json!({"definition": definition, "as_of": [SHOP_AS_OF, "2026-03-20T00:00:00Z"]}),
        json!({"sql": "SELECT event_type, count(*) AS n FROM events GROUP BY event_type ORDER BY event_type"}),
    ] {
        let path = if body.get("sql").is_some() {
            "/v1/sql"
        } else {
            "/v1/segments/preview"
        };
        let (status, remote_answer) = post(&c, on_cluster.url(path), body.clone()).await;
        assert_eq!(status, 200, "{path} on the cluster: {remote_answer}");
        let (status, local_answer) = post(&c, here.url(path), body.clone()).await;
        assert_eq!(status, 200, "{path} locally: {local_answer}");
        assert_eq!(remote_answer, local_answer, "{path} {body}");
    }
}

#[test]
fn an_executor_killed_mid_refresh_loses_no_memberships() {
    let s3 = S3Server::start();
    let env = cluster_env(&s3, "nodes");
    let cwd = tempfile::tempdir().unwrap();
    // Two identical shops: one refreshed locally (the expected answer), one on the cluster.
    let expected = at(&env, "killed-expected");
    let shop = at(&env, "killed");
    let files = ready_made_files();
    for store in [&expected, &shop] {
        generate_shop(store, cwd.path(), "800", "30", "5", &files);
        // The memberships a failed refresh must leave: one local refresh a week earlier.
        kitle_ok(
            &["refresh", "--as-of", "2026-03-24T12:00:00Z"],
            store,
            cwd.path(),
        );
    }
    let before = all_members(&shop, cwd.path());
    kitle_ok(&["refresh", "--as-of", SHOP_AS_OF], &expected, cwd.path());

    // Executor 1 kills itself (SIGKILL) as it starts its second task.
    let mut cluster = Cluster::start(
        &env,
        &[vec![("KITLE_FAILPOINT", "executor.task:2".into())], vec![]],
    );
    let out = kitle(
        &[
            "refresh",
            "--as-of",
            SHOP_AS_OF,
            "--engine",
            &cluster.engine,
        ],
        &shop,
        cwd.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let killed = cluster.nodes[1].exited();
    assert!(
        killed.is_some(),
        "executor 1 is still running: its failpoint was never reached, so the test killed nothing \
         (refresh: {}, {stderr})\n{}",
        out.status,
        cluster.log("executor-1")
    );
    assert!(
        cluster
            .log("executor-1")
            .contains("failpoint executor.task:2 reached"),
        "{}",
        cluster.log("executor-1")
    );
    assert!(cluster.nodes[2].exited().is_none(), "executor 2 stays up");
    if out.status.success() {
        // Ballista ran the lost tasks again on executor 2.
        assert_eq!(
            all_members(&shop, cwd.path()),
            all_members(&expected, cwd.path())
        );
    } else {
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&cluster.engine), "{stderr}");
        assert_eq!(all_members(&shop, cwd.path()), before, "{stderr}");
    }
    // Whatever happened, the cluster still serves refreshes with its other executor, once the
    // scheduler has counted the dead one lost (`executor_timeout_seconds`, 4 s here).
    std::thread::sleep(Duration::from_secs(6));
    let again = kitle_ok(
        &[
            "refresh",
            "--as-of",
            SHOP_AS_OF,
            "--json",
            "--engine",
            &cluster.engine,
        ],
        &shop,
        cwd.path(),
    );
    assert!(again.contains(&cluster.engine), "{again}");
    assert_eq!(
        all_members(&shop, cwd.path()),
        all_members(&expected, cwd.path())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_scheduler_is_the_services_failure_and_names_the_cluster() {
    let dir = crate::support::http::store_dir("");
    let store = dir.path().join("store").display().to_string();
    let definition = dir.path().join("segment.json");
    std::fs::write(
        &definition,
        cases()["scenarios"][0]["segments"][0].to_string(),
    )
    .unwrap();
    kitle_ok(
        &[
            "segment",
            "put",
            definition.to_str().unwrap(),
            "--store",
            &store,
        ],
        &[],
        dir.path(),
    );
    kitle_ok(
        &[
            "refresh",
            "--as-of",
            "2026-01-15T00:00:00Z",
            "--store",
            &store,
        ],
        &[],
        dir.path(),
    );
    let manifest_before = std::fs::read(Path::new(&store).join("memberships/manifest.json")).ok();
    let nobody = format!("ballista://127.0.0.1:{}", free_port());
    let out = kitle(
        &[
            "refresh",
            "--as-of",
            "2026-01-20T00:00:00Z",
            "--store",
            &store,
            "--engine",
            &nobody,
        ],
        &[("KITLE_CLUSTER__CONNECT_TIMEOUT_SECONDS", "2".into())],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&nobody), "{stderr}");
    assert!(stderr.contains("scheduler cannot be reached"), "{stderr}");
    if let Some(before) = manifest_before {
        let after = std::fs::read(Path::new(&store).join("memberships/manifest.json")).unwrap();
        assert_eq!(after, before, "a failed refresh commits nothing");
    }

    // The service: SQL and previews fail as the service's (5xx), naming the cluster.
    let server = Server::start(
        &["serve"],
        &[
            ("KITLE_ENGINE", nobody.clone()),
            ("KITLE_CLUSTER__CONNECT_TIMEOUT_SECONDS", "2".into()),
            ("KITLE_SERVE__SCHEDULER", "false".into()),
        ],
        dir.path(),
        None,
        Duration::from_secs(60),
    );
    let c = client();
    let (status, body) = post(
        &c,
        server.url("/v1/sql"),
        json!({"sql": "SELECT count(*) FROM events"}),
    )
    .await;
    assert!(status.is_server_error(), "{status}: {body}");
    assert!(body.to_string().contains(&nobody), "{body}");
    // Members are still served from memory.
    let (status, _) = crate::support::http::get(&c, server.url("/v1/segments")).await;
    assert_eq!(status, 200);
}

/// Every plan a refresh of the ready-made segments sends to a cluster — optimised as the
/// coordinator sends it — decodes on a scheduler's session into the same plan, and the
/// scheduler's physical plan decodes on an executor's side into the same physical plan: the
/// plans keep their shape on the way (no in-memory table, no unknown function, no operator
/// Ballista cannot carry).
#[tokio::test]
async fn refresh_plans_travel_to_a_cluster_unchanged() {
    use ballista_core::extension::SessionConfigExt;
    use ballista_core::serde::BallistaLogicalExtensionCodec;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use datafusion_proto::bytes as proto;

    let end = chrono::NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
    let (_dir, store, tables) =
        crate::support::generated_shop(&kitle_data::generate::GenerateOptions {
            customers: 300,
            days: 20,
            seed: 3,
            end,
        })
        .await;
    let as_of: DateTime<Utc> = SHOP_AS_OF.parse().unwrap();
    let definitions: Vec<kitle_planner::SegmentDefinition> = ready_made_files()
        .iter()
        .map(|f| {
            let doc: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
            kitle_planner::parse_definition(&doc, chrono_tz::UTC).unwrap()
        })
        .collect();
    let ctx = kitle_data::session::new_context(&store);
    tables.register_as_of(&ctx, as_of).unwrap();
    let targets: Vec<String> = definitions.iter().map(|d| d.id.clone()).collect();
    let refresh = kitle_planner::build_refresh_plan(
        &ctx,
        &tables,
        &definitions,
        &targets,
        as_of,
        chrono_tz::UTC,
    )
    .await
    .unwrap();
    let sent = ctx.state().optimize(&refresh.plan).unwrap();

    let logical = BallistaLogicalExtensionCodec::default();
    let bytes = proto::logical_plan_to_bytes_with_extension_codec(&sent, &logical).unwrap();
    let scheduler = kitle_data::cluster::nodes::scheduler_session_builder(store.clone())(
        SessionConfig::new_with_ballista(),
    )
    .unwrap();
    let scheduler = SessionContext::new_with_state(scheduler);
    let received = proto::logical_plan_from_bytes_with_extension_codec(
        &bytes,
        &scheduler.task_ctx(),
        &logical,
    )
    .unwrap();
    assert_eq!(
        received.display_indent_schema().to_string(),
        sent.display_indent_schema().to_string()
    );
    assert!(
        sent.display_indent().to_string().contains("kitle_sequence"),
        "the ready-made funnels call kitle's window function: {}",
        sent.display_indent()
    );

    let physical = scheduler
        .state()
        .create_physical_plan(&received)
        .await
        .unwrap();
    let codec = kitle_data::cluster::portable::KitleCodec::default();
    let bytes = proto::physical_plan_to_bytes_with_extension_codec(
        std::sync::Arc::clone(&physical),
        &codec,
    )
    .unwrap();
    let executor = kitle_data::session::new_context(&store);
    let ran =
        proto::physical_plan_from_bytes_with_extension_codec(&bytes, &executor.task_ctx(), &codec)
            .unwrap();
    let (ran, planned) = (
        displayable(ran.as_ref()).indent(true).to_string(),
        displayable(physical.as_ref()).indent(true).to_string(),
    );
    let differ: Vec<(&str, &str)> = ran
        .lines()
        .zip(planned.lines())
        .filter(|(a, b)| a != b)
        .take(3)
        .collect();
    assert!(
        differ.is_empty() && ran.lines().count() == planned.lines().count(),
        "the executor's plan differs from the scheduler's: {differ:#?}"
    );
}
