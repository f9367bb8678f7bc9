//! Compiles into the binary what `kitle` serves without the repository beside it:
//!
//! - the ready-made segments of `queries/segments/` (`kitle demo`, `GET /v1/templates`);
//! - the console's static files of `console/` (HTML, CSS, ES modules, the vendored chart
//!   library), each with an entity tag computed here, so that `kitle serve` answers `/` alone.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    ready_made(
        &here.join("../queries/segments"),
        &out.join("ready_made.rs"),
    );
    console(&here.join("console"), &out.join("console_assets.rs"));
}

fn ready_made(dir: &Path, target: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = String::from("&[\n");
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.canonicalize().unwrap().display().to_string()
        ));
    }
    out.push(']');
    std::fs::write(target, out).unwrap();
}

/// Every file under `dir` (recursively, sorted), as `(relative path, bytes, etag)`.
fn console(dir: &Path, target: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let relative = path
            .strip_prefix(dir)
            .unwrap()
            .components()
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .collect::<Vec<_>>()
            .join("/");
        let bytes = std::fs::read(path).unwrap();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut hasher);
        let etag = format!("\"{:016x}\"", hasher.finish());
        out.push_str(&format!(
            "    ({relative:?}, include_bytes!({:?}), {etag:?}),\n",
            path.canonicalize().unwrap().display().to_string()
        ));
    }
    out.push(']');
    std::fs::write(target, out).unwrap();
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}
