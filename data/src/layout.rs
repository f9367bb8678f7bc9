//! Where things live inside a store: the one place that knows the store's layout.
//!
//! Other systems write `customers/` and `events/`; everything else under the root belongs to
//! the engine. Code elsewhere asks this module for paths instead of formatting them itself, so
//! that a change of layout is a change of this file.

use chrono::NaiveDate;

/// Folder of customer profile snapshots (`customers/*.parquet`).
pub const CUSTOMERS_DIR: &str = "customers";

/// Folder of behavioural events, Hive-partitioned by UTC date (`events/date=YYYY-MM-DD/`).
pub const EVENTS_DIR: &str = "events";

/// Name of the Hive partition column of `events`.
pub const EVENTS_PARTITION_COLUMN: &str = "date";

/// File extension of the contract's data files.
pub const PARQUET_EXTENSION: &str = ".parquet";

/// The folder holding the events of one UTC day, relative to the store root.
pub fn events_partition(date: NaiveDate) -> String {
    format!(
        "{EVENTS_DIR}/{EVENTS_PARTITION_COLUMN}={}",
        date.format("%Y-%m-%d")
    )
}

/// Parses the partition date out of a path relative to the store root
/// (`events/date=2025-11-28/part-0.parquet` → 2025-11-28); `None` when the path is not inside a
/// well-formed partition.
pub fn partition_date_of(relative_path: &str) -> Option<NaiveDate> {
    let rest = relative_path.strip_prefix(EVENTS_DIR)?.strip_prefix('/')?;
    let (dir, file) = rest.split_once('/')?;
    if file.is_empty() || file.contains('/') {
        return None;
    }
    let value = dir
        .strip_prefix(EVENTS_PARTITION_COLUMN)?
        .strip_prefix('=')?;
    NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()
}

/// The segment definitions kept in the store: one JSON object `{id: definition}`, written
/// whole, so that a set of definitions is stored all or nothing.
pub const DEFINITIONS_FILE: &str = "segments/definitions.json";

/// The manifest: which membership version of each segment is current, and every refresh's
/// figures. Written last by a refresh; whatever it names is complete.
pub const MANIFEST_FILE: &str = "memberships/manifest.json";

/// Folder of membership versions (`memberships/<segment>/v<version>-<nonce>.parquet`).
pub const MEMBERSHIPS_DIR: &str = "memberships";

/// Folder of change logs (`changes/<segment>/v<version>-<nonce>.parquet`).
pub const CHANGES_DIR: &str = "changes";

/// The members file of one version of a segment. The nonce keeps a crashed or concurrent
/// writer from overwriting a file another manifest may name.
pub fn members_file(segment: &str, version: u64, nonce: &str) -> String {
    format!("{MEMBERSHIPS_DIR}/{segment}/v{version:010}-{nonce}.parquet")
}

/// The change log of one version of a segment.
pub fn changes_file(segment: &str, version: u64, nonce: &str) -> String {
    format!("{CHANGES_DIR}/{segment}/v{version:010}-{nonce}.parquet")
}

/// The lock file that serialises commits of `object` (a path relative to the store root) on a
/// local folder: beside it, hidden (`memberships/.manifest.json.lock`). Never removed: removing
/// a lock file another process may be waiting on would let two writers in.
pub fn commit_lock_file(object: &str) -> String {
    match object.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.{name}.lock"),
        None => format!(".{object}.lock"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_files_lie_hidden_beside_their_object() {
        assert_eq!(
            commit_lock_file(MANIFEST_FILE),
            "memberships/.manifest.json.lock"
        );
        assert_eq!(commit_lock_file("x.json"), ".x.json.lock");
    }

    #[test]
    fn partition_paths_round_trip() {
        let day = NaiveDate::from_ymd_opt(2025, 11, 28).unwrap();
        let dir = events_partition(day);
        assert_eq!(dir, "events/date=2025-11-28");
        assert_eq!(
            partition_date_of(&format!("{dir}/part-0.parquet")),
            Some(day)
        );
        assert_eq!(partition_date_of("events/part-0.parquet"), None);
        assert_eq!(partition_date_of("events/date=2025-13-01/x.parquet"), None);
        assert_eq!(
            partition_date_of("events/date=2025-11-28/a/x.parquet"),
            None
        );
    }
}
