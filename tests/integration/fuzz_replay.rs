//! The fuzz targets' corpora and every input that ever made one fail, replayed through the
//! targets' own checks (`fuzz/checks/`, included here as they are) as ordinary tests on the
//! stable toolchain. The long fuzzing run itself is the campaign's command
//! (docs/reliability.md), not part of the suite.

use std::path::{Path, PathBuf};

use kitle::http::bodies;

#[path = "../../fuzz/checks/definition.rs"]
mod definition;
#[path = "../../fuzz/checks/request_bodies.rs"]
mod request_bodies;

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden && path.extension().is_none_or(|e| e != "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str, check: impl Fn(&[u8])) {
    let files = inputs(target);
    assert!(
        files.len() >= 50,
        "the {target} corpus is missing ({} files): run python3 fuzz/seed_corpus.py",
        files.len()
    );
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)))
        {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{target}: {} fails: {what}", file.display());
        }
    }
}

#[test]
fn the_definition_corpus_replays_without_a_failure() {
    let schemas = definition::schemas();
    replay("definition", |data| definition::check(data, &schemas));
}

#[test]
fn the_request_bodies_corpus_replays_without_a_failure() {
    let schemas = definition::schemas();
    replay("request_bodies", |data| {
        request_bodies::check(data, &schemas)
    });
}
