//! Compiles into the binary what `kitle` serves without the repository beside it:
//!
//! - the ready-made segments of `queries/segments/` (`kitle demo`, `GET /v1/templates`);
//! - the console's static files of `console/` (HTML, CSS, ES modules, the vendored chart
//!   library), each with an entity tag computed here, so that `kitle serve` answers `/` alone.
//!
//! A folder that cannot be read, or holds nothing to embed, fails the build (see
//! `build_support.rs`, which the service's unit tests exercise).

mod build_support;

use std::path::Path;

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let out_dir = Path::new(&out_dir);

    let dir = here.join("../queries/segments");
    println!("cargo:rerun-if-changed={}", dir.display());
    let files = build_support::ready_made_files(&dir).unwrap_or_else(|e| panic!("{e}"));
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let source = build_support::include_list(&files).unwrap_or_else(|e| panic!("{e}"));
    write(&out_dir.join("ready_made.rs"), &source);

    let dir = here.join("console");
    let (folders, files) = build_support::console_files(&dir).unwrap_or_else(|e| panic!("{e}"));
    for path in folders.iter().chain(&files) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let source = build_support::asset_list(&dir, &files).unwrap_or_else(|e| panic!("{e}"));
    write(&out_dir.join("console_assets.rs"), &source);
}

fn write(target: &Path, source: &str) {
    std::fs::write(target, source)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", target.display()));
}
