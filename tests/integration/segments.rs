//! The segment engine end to end: the conformance cases through put → refresh → stored
//! members, the CLI's segment commands, and a refresh killed midway.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::support::http::cases;
use crate::support::{conformance_store, copy_tree, kill_after, kitle, kitle_ok, local_store};
use chrono::{DateTime, Utc};
use kitle_data::files::FooterCache;
use kitle_data::session::Limits;
use kitle_data::{NoProgress, Store, memberships};
use kitle_planner::refresh::{RefreshOutcome, RefreshRun, put_definitions, refresh};

/// Refreshes every stored segment of `store` at `as_of`, with no limits and no progress shown.
async fn refresh_all(
    store: &Store,
    as_of: DateTime<Utc>,
) -> Result<RefreshOutcome, kitle_planner::Error> {
    refresh(RefreshRun {
        store,
        cache: &FooterCache::new(),
        requested: &[],
        as_of,
        tz: chrono_tz::UTC,
        limits: &Limits::none(),
        progress: &NoProgress,
        full: false,
    })
    .await
}

/// Puts every segment of `scenario` into `store` (a copy of the conformance store), refreshes
/// them all at the scenario's `as_of`, checks what the refresh reports (the broken files left
/// out, every segment refreshed) and compares each segment's stored members with `expected` —
/// equal, not close. The refresh's outcome, how many segments were compared, and one line per
/// segment that differs; a failed refresh is returned as it came.
pub(crate) async fn refresh_scenario(
    store: &Store,
    scenario: &serde_json::Value,
    cases: &serde_json::Value,
) -> Result<(RefreshOutcome, usize, Vec<String>), kitle_planner::Error> {
    let name = scenario["name"].as_str().unwrap();
    let documents = scenario["segments"].as_array().unwrap().clone();
    put_definitions(store, &FooterCache::new(), &documents, chrono_tz::UTC)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let as_of: DateTime<Utc> = scenario["as_of"].as_str().unwrap().parse().unwrap();
    let outcome = refresh_all(store, as_of).await?;
    let skipped: Vec<&str> = outcome
        .report
        .skipped_files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        skipped.len(),
        cases["skipped_files"].as_array().unwrap().len(),
        "{name}: {skipped:?}"
    );
    let manifest = memberships::read_manifest(store).await.unwrap();
    let expected: BTreeMap<String, Vec<String>> =
        serde_json::from_value(scenario["expected"].clone()).unwrap();
    assert_eq!(
        outcome.segments.len(),
        expected.len(),
        "{name}: every segment refreshed"
    );
    let mut failures = Vec::new();
    for (id, want) in &expected {
        let got: Vec<String> = memberships::current_members(store, &manifest, id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.customer_id)
            .collect();
        if &got != want {
            let missing: Vec<_> = want.iter().filter(|x| !got.contains(x)).collect();
            let extra: Vec<_> = got.iter().filter(|x| !want.contains(x)).collect();
            failures.push(format!("{name}/{id}: missing {missing:?}, extra {extra:?}"));
        }
    }
    Ok((outcome, expected.len(), failures))
}

/// For each scenario: copy the store, put every segment, refresh them all at `as_of`, and
/// compare each segment's stored members with `expected` ([`refresh_scenario`]).
#[tokio::test]
async fn engine_matches_every_conformance_case() {
    let cases = cases();
    let mut failures = Vec::new();
    let mut checked = 0;
    for scenario in cases["scenarios"].as_array().unwrap() {
        let name = scenario["name"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&conformance_store(), dir.path());
        let store = local_store(dir.path());
        let (_, compared, differ) = refresh_scenario(&store, scenario, &cases)
            .await
            .unwrap_or_else(|e| panic!("scenario {name}: {e}"));
        checked += compared;
        failures.extend(differ);
    }
    assert!(
        failures.is_empty(),
        "{} segments differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 70, "only {checked} segments checked");
}

fn run_ok(args: &[&str], cwd: &Path) -> String {
    kitle_ok(args, &[], cwd)
}

/// Writes definition documents to files and returns their paths.
fn write_definitions(dir: &Path, documents: &[serde_json::Value]) -> Vec<String> {
    documents
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let path = dir.join(format!("def-{i}.json"));
            std::fs::write(&path, serde_json::to_string_pretty(d).unwrap()).unwrap();
            path.display().to_string()
        })
        .collect()
}

#[test]
fn segment_commands_validate_store_explain_and_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    copy_tree(&conformance_store(), &store_dir);
    let store = store_dir.display().to_string();
    let s = ["--store", store.as_str()];
    let defs = dir.path().join("defs");
    std::fs::create_dir_all(&defs).unwrap();

    // A refused definition: every problem with its JSON path, exit 2, nothing stored.
    let bad = serde_json::json!({
        "id": "Bad Id",
        "condition": {"all": [
            {"attribute": "no_such_column", "op": "eq", "value": "x"},
            {"event": "order_created", "op": "gte", "value": "two"},
            {"attribute": "email", "op": "gt", "value": 3}
        ]},
        "colour": "red"
    });
    let files = write_definitions(&defs, &[bad]);
    let out = kitle(
        &[&["segment", "validate", &files[0]], &s[..]].concat(),
        &[],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for path in ["id", "colour", "condition.all[1].value"] {
        assert!(
            stderr.contains(path),
            "problem at {path} missing:\n{stderr}"
        );
    }
    let out = kitle(
        &[&["segment", "put", &files[0]], &s[..]].concat(),
        &[],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !store_dir
            .join(kitle_data::layout::DEFINITIONS_FILE)
            .exists(),
        "nothing stored"
    );

    // A good set with a reference: stored, listed, removable only in the right order.
    let base = serde_json::json!({"id": "buyers", "name": "Alıcılar", "condition": {"event": "order_created", "op": "gte", "value": 1}});
    let derived = serde_json::json!({"id": "buyers-tr", "condition": {"all": [
        {"segment": "buyers"}, {"attribute": "language", "op": "eq", "value": "tr"}]}});
    let files = write_definitions(&defs, &[base, derived]);
    let put = run_ok(
        &[
            &["segment", "put"],
            &files.iter().map(String::as_str).collect::<Vec<_>>()[..],
            &s[..],
        ]
        .concat(),
        dir.path(),
    );
    assert!(
        put.contains("buyers: created") && put.contains("buyers-tr: created"),
        "{put}"
    );
    let list = run_ok(&[&["segment", "list"], &s[..]].concat(), dir.path());
    assert!(list.contains("Alıcılar"), "{list}");
    let out = kitle(
        &[&["segment", "rm", "buyers"], &s[..]].concat(),
        &[],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("buyers-tr"));

    // explain: one scan of events for all event conditions.
    let plans = run_ok(
        &[
            &[
                "segment",
                "explain",
                "buyers-tr",
                "--as-of",
                "2025-12-01T12:00:00Z",
            ],
            &s[..],
        ]
        .concat(),
        dir.path(),
    );
    let physical = plans.split("== physical plan ==").nth(1).unwrap();
    let event_scans = physical
        .lines()
        .filter(|l| l.contains("DataSourceExec") && l.contains("/events/"))
        .count();
    assert_eq!(event_scans, 1, "{plans}");

    // preview, then refresh and members.
    let preview = run_ok(
        &[
            &[
                "segment",
                "preview",
                "buyers-tr",
                "--as-of",
                "2025-12-01T12:00:00Z",
                "--json",
            ],
            &s[..],
        ]
        .concat(),
        dir.path(),
    );
    let preview: serde_json::Value = serde_json::from_str(&preview).unwrap();
    let refreshed = run_ok(
        &[
            &["refresh", "--as-of", "2025-12-01T12:00:00Z", "--json"],
            &s[..],
        ]
        .concat(),
        dir.path(),
    );
    let refreshed: serde_json::Value = serde_json::from_str(&refreshed).unwrap();
    let size = refreshed["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "buyers-tr")
        .unwrap()["size"]
        .clone();
    assert_eq!(preview["size"], size);
    let members = run_ok(&[&["members", "buyers-tr"], &s[..]].concat(), dir.path());
    assert_eq!(members.lines().count() as u64 - 1, size.as_u64().unwrap());
    assert!(
        members
            .lines()
            .nth(1)
            .unwrap()
            .ends_with(",2025-12-01T12:00:00Z"),
        "{members}"
    );

    run_ok(
        &[&["segment", "rm", "buyers-tr"], &s[..]].concat(),
        dir.path(),
    );
    run_ok(&[&["segment", "rm", "buyers"], &s[..]].concat(), dir.path());
}

/// A refresh killed at any moment leaves the previous version current and readable, and the
/// next refresh works.
#[tokio::test]
async fn a_killed_refresh_leaves_the_previous_version_current() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    copy_tree(&conformance_store(), &store_dir);
    let store = local_store(&store_dir);
    let documents = cases()["scenarios"][0]["segments"]
        .as_array()
        .unwrap()
        .clone();
    put_definitions(&store, &FooterCache::new(), &documents, chrono_tz::UTC)
        .await
        .unwrap();
    let first: DateTime<Utc> = "2025-11-15T00:00:00Z".parse().unwrap();
    refresh_all(&store, first).await.unwrap();
    let before = memberships::read_manifest(&store).await.unwrap();

    let store_arg = store_dir.display().to_string();
    let mut killed_midway = 0;
    for delay_ms in [5u64, 40, 80, 120, 160, 200, 260, 320] {
        let finished = kill_after(
            &[
                "refresh",
                "--as-of",
                "2025-12-01T12:00:00Z",
                "--store",
                &store_arg,
            ],
            dir.path(),
            Duration::from_millis(delay_ms),
        );
        let now = memberships::read_manifest(&store).await.unwrap();
        if finished || now != before {
            // It got to its commit: the new manifest must be complete and readable.
            for state in now.segments.values() {
                memberships::read_members(&store, &state.current().unwrap().members)
                    .await
                    .unwrap();
            }
            break;
        }
        killed_midway += 1;
        // Still the previous version, every file of it readable.
        for (id, state) in &now.segments {
            let members = memberships::read_members(&store, &state.current().unwrap().members)
                .await
                .unwrap();
            assert_eq!(members.len() as u64, state.current().unwrap().size, "{id}");
        }
    }
    assert!(killed_midway > 0, "no refresh was killed before its commit");
    // The next refresh works and moves every segment on.
    let at: DateTime<Utc> = "2025-12-01T12:00:00Z".parse().unwrap();
    refresh_all(&store, at).await.unwrap();
    let after = memberships::read_manifest(&store).await.unwrap();
    for (id, state) in &after.segments {
        assert_eq!(state.current().unwrap().as_of, at, "{id}");
    }
}
