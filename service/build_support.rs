//! The build script's one job, kept apart so that it is unit-tested: the list of ready-made
//! segments (`queries/segments/*.json`) as Rust source for `include!`.
//!
//! A folder that cannot be read, or holds no definition, is an error: a binary whose demo and
//! templates have nothing to show must not be built.

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
}
