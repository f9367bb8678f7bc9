//! The build script's jobs, kept apart so that they are unit-tested: the list of ready-made
//! segments (`queries/segments/*.json`) and the console's files (`console/`) as Rust source
//! for `include!`.
//!
//! A folder that cannot be read, or holds nothing, is an error: a binary whose demo, templates
//! or console have nothing to show must not be built.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// The `*.json` files of `dir`, sorted; an error naming the folder when it cannot be read or
/// holds none.
pub(crate) fn ready_made_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "cannot read the ready-made segments in {}: {e} (kitle demo embeds them)",
            dir.display()
        )
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|x| x == "json") {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(format!(
            "{} holds no ready-made segment (*.json): kitle demo would have nothing to show",
            dir.display()
        ));
    }
    files.sort();
    Ok(files)
}

/// Rust source of a `&[(file name, contents)]` slice that includes each of `files`.
pub(crate) fn include_list(files: &[PathBuf]) -> Result<String, String> {
    let mut out = String::from("&[\n");
    for path in files {
        let name = path
            .file_name()
            .ok_or_else(|| format!("{} has no file name", path.display()))?
            .to_string_lossy()
            .to_string();
        let absolute = path
            .canonicalize()
            .map_err(|e| format!("cannot resolve {}: {e}", path.display()))?;
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            absolute.display().to_string()
        ));
    }
    out.push(']');
    Ok(out)
}

/// The folders and files under `dir` (recursively, each list sorted); an error naming the
/// folder when one cannot be read or there is no file.
pub(crate) fn console_files(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), String> {
    let mut folders = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    let mut next = 0;
    while next < folders.len() {
        let folder = folders[next].clone();
        next += 1;
        let entries = std::fs::read_dir(&folder).map_err(|e| {
            format!(
                "cannot read the console's files in {}: {e} (kitle serve embeds them)",
                folder.display()
            )
        })?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot list {}: {e}", folder.display()))?
                .path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    if files.is_empty() {
        return Err(format!(
            "{} holds no console file: kitle serve would answer / with nothing",
            dir.display()
        ));
    }
    folders.sort();
    files.sort();
    Ok((folders, files))
}

/// Rust source of a `&[(path under dir with `/`, bytes, entity tag)]` slice that includes each
/// of `files`; the tag is a hash of the bytes, so it changes exactly when the file does.
pub(crate) fn asset_list(dir: &Path, files: &[PathBuf]) -> Result<String, String> {
    let mut out = String::from("&[\n");
    for path in files {
        let relative = path
            .strip_prefix(dir)
            .map_err(|_| format!("{} is not under {}", path.display(), dir.display()))?
            .components()
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .collect::<Vec<_>>()
            .join("/");
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut hasher);
        let etag = format!("\"{:016x}\"", hasher.finish());
        let absolute = path
            .canonicalize()
            .map_err(|e| format!("cannot resolve {}: {e}", path.display()))?;
        out.push_str(&format!(
            "    ({relative:?}, include_bytes!({:?}), {etag:?}),\n",
            absolute.display().to_string()
        ));
    }
    out.push(']');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_missing_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README.md"), "not a segment").unwrap();
        let err = ready_made_files(dir.path()).unwrap_err();
        assert!(err.contains("holds no ready-made segment"), "{err}");
        let err = ready_made_files(&dir.path().join("missing")).unwrap_err();
        assert!(err.contains("cannot read the ready-made segments"), "{err}");
    }

    #[test]
    fn the_shipped_folder_lists_its_segments() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../queries/segments");
        let files = ready_made_files(&dir).unwrap();
        assert!(files.len() >= 5, "{files:?}");
        let source = include_list(&files).unwrap();
        assert_eq!(source.matches("include_str!").count(), files.len());
    }

    #[test]
    fn the_console_folder_lists_its_files_with_paths_and_tags() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let (folders, files) = console_files(&dir).unwrap();
        assert!(
            folders.contains(&dir.join("js/builder/rows")),
            "{folders:?}"
        );
        assert!(files.contains(&dir.join("index.html")), "{files:?}");
        let source = asset_list(&dir, &files).unwrap();
        assert_eq!(source.matches("include_bytes!").count(), files.len());
        assert!(
            source.contains("(\"js/app.js\", include_bytes!("),
            "{source}"
        );
        let empty = tempfile::tempdir().unwrap();
        std::fs::create_dir(empty.path().join("js")).unwrap();
        let err = console_files(empty.path()).unwrap_err();
        assert!(err.contains("holds no console file"), "{err}");
    }
}
