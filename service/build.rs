//! Compiles the ready-made segments of `queries/segments/` into the binary, for `kitle demo`.
//! A folder that cannot be read, or holds no definition, fails the build (see
//! `build_support.rs`, which the service's unit tests exercise).

mod build_support;

use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../queries/segments");
    println!("cargo:rerun-if-changed={}", dir.display());
    let files = build_support::ready_made_files(&dir).unwrap_or_else(|e| panic!("{e}"));
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let source = build_support::include_list(&files).unwrap_or_else(|e| panic!("{e}"));
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let target = Path::new(&out_dir).join("ready_made.rs");
    std::fs::write(&target, source)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", target.display()));
}
