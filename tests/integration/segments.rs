//! The segment engine against the conformance cases: every scenario, every segment, exactly.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kitle_data::Store;
use kitle_data::files::FooterCache;
use kitle_data::tables::ContractTables;
use kitle_tests::{conformance_store, copy_tree, shared_dir};

fn cases() -> serde_json::Value {
    let text = std::fs::read_to_string(shared_dir().join("conformance/cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn engine_matches_every_conformance_case() {
    let cases = cases();
    let mut failures = Vec::new();
    for scenario in cases["scenarios"].as_array().unwrap() {
        let name = scenario["name"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&conformance_store(), dir.path());
        let store = Store::open(&kitle_data::StoreConfig {
            url: dir.path().display().to_string(),
            ..Default::default()
        })
        .unwrap();
        let tables = ContractTables::load(&store, &FooterCache::new())
            .await
            .unwrap();
        let as_of: DateTime<Utc> = scenario["as_of"].as_str().unwrap().parse().unwrap();
        let definitions: Vec<_> = scenario["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| kitle_planner::parse_definition(d, chrono_tz::UTC).unwrap())
            .collect();
        let members = kitle_planner::evaluate(&tables, &definitions, as_of, chrono_tz::UTC)
            .await
            .unwrap_or_else(|e| panic!("scenario {name}: {e}"));
        let expected: BTreeMap<String, Vec<String>> =
            serde_json::from_value(scenario["expected"].clone()).unwrap();
        for (id, want) in &expected {
            let got = &members[id];
            if got != want {
                let missing: Vec<_> = want.iter().filter(|x| !got.contains(x)).collect();
                let extra: Vec<_> = got.iter().filter(|x| !want.contains(x)).collect();
                failures.push(format!("{name}/{id}: missing {missing:?}, extra {extra:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} segments differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
