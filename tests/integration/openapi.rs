//! The HTTP API against its own OpenAPI document: `schemathesis` (PyPI, installed by the
//! README's test command) runs every check against a real `kitle serve` on a generated shop
//! with the ready-made segments refreshed. Its configuration (`tests/fixtures/schemathesis.toml`)
//! bounds the run and lists the 400s that depend on the store's content as expected; any other
//! finding fails this test with schemathesis's report.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{Server, kitle};

fn run_ok(args: &[&str], cwd: &Path) {
    let out = kitle(args, &[], cwd);
    assert!(
        out.status.success(),
        "kitle {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_api_keeps_to_its_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(cwd.join("kitle.toml"), "[serve]\nscheduler = false\n").unwrap();
    run_ok(
        &[
            "generate",
            "--customers",
            "400",
            "--days",
            "30",
            "--end",
            "2025-11-30",
        ],
        cwd,
    );
    let queries = Path::new(env!("CARGO_MANIFEST_DIR")).join("../queries/segments");
    let mut files: Vec<String> = std::fs::read_dir(&queries)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".json"))
        .collect();
    files.sort();
    let mut put = vec!["segment", "put"];
    put.extend(files.iter().map(String::as_str));
    run_ok(&put, cwd);
    run_ok(&["refresh", "--as-of", "2025-11-30T12:00:00Z"], cwd);
    let server = Server::start(&["serve"], &[], cwd, None, Duration::from_secs(90));

    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/schemathesis.toml");
    let report = cwd.join("schemathesis-report");
    let out = Command::new("schemathesis")
        .arg("--config-file")
        .arg(&config)
        .arg("--no-color")
        .arg("run")
        .arg(server.url("/openapi.json"))
        .args(["--checks", "all", "--report", "junit", "--report-dir"])
        .arg(&report)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run schemathesis ({e}); install it with `python3 -m pip install schemathesis` or run the README's test command")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The summary, for the record of the run (docs/reliability.md quotes it).
    for line in stdout.lines().filter(|l| {
        l.contains("test cases")
            || l.contains("passed")
            || l.contains("failures")
            || l.contains("Seed")
    }) {
        eprintln!("schemathesis: {line}");
    }
    assert!(
        out.status.success(),
        "schemathesis found failures ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
