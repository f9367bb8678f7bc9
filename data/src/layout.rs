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

/// The store's recorded identity setting (`customer_id` or `stitched`), so that every process
/// reading the store agrees on whose events are whose.
pub const IDENTITY_FILE: &str = "settings/identity.json";

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

/// Folder of partial states (`states/date=YYYY-MM-DD/<nonce>.parquet`): per-customer partial
/// aggregates of closed days, a cache a refresh recombines instead of re-reading old events.
pub const STATES_DIR: &str = "states";

/// The committed index of partial states: which state files hold which conditions of which
/// day, for which fingerprint of that day's event files.
pub const STATES_INDEX: &str = "states/index.json";

/// A state file of one day; the nonce keeps a crashed or concurrent writer from overwriting a
/// file the index may name.
pub fn state_file(day: NaiveDate, nonce: &str) -> String {
    format!(
        "{STATES_DIR}/{EVENTS_PARTITION_COLUMN}={}/{nonce}{PARQUET_EXTENSION}",
        day.format("%Y-%m-%d")
    )
}

/// The folders other systems write (the data contract's tables). Every other top-level folder
/// of a store is kitle's, and only kitle's part is ever garbage-collected.
pub const CONTRACT_DIRS: &[&str] = &[CUSTOMERS_DIR, EVENTS_DIR];

/// Whether `relative` (a path relative to the store root) lies in kitle's part of the store.
pub fn is_own(relative: &str) -> bool {
    let top = relative.split('/').next().unwrap_or_default();
    !CONTRACT_DIRS.contains(&top)
}

/// Whether `relative` is a committed JSON object of kitle's (the manifest, the definitions,
/// any later committed state): never garbage-collected, and read for the files it names.
pub fn is_committed_object(relative: &str) -> bool {
    is_own(relative) && relative.ends_with(".json")
}

/// Whether `relative` is a data file of kitle's that garbage collection removes when no
/// committed object names it: kitle's own Parquet files (members files, change logs and what
/// later kinds of state write). Lock files, committed objects and anything unknown are kept.
pub fn is_collectable(relative: &str) -> bool {
    is_own(relative) && relative.ends_with(PARQUET_EXTENSION)
}

/// Whether `file_name` is a write in progress on a local folder: object_store's
/// `LocalFileSystem` writes `NAME#N` and renames it to `NAME` when the write completes, so a
/// process killed mid-write leaves `NAME#N` behind (its listings hide such files). Inside
/// kitle's part of a store these are always garbage once old enough.
pub fn is_staged_write(file_name: &str) -> bool {
    match file_name.rsplit_once('#') {
        Some((name, n)) => {
            !name.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// How long an unnamed file is left alone by `kitle gc` when the configuration does not say
/// (`gc_grace_seconds`): a refresh writes its files before the commit that names them, so a
/// young unnamed file may belong to a refresh still running.
pub const DEFAULT_GC_GRACE_SECONDS: u64 = 3600;

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
    fn only_kitles_own_parquet_files_are_collectable() {
        assert!(is_collectable(&members_file("s", 1, "ab")));
        assert!(is_collectable(&changes_file("s", 1, "ab")));
        assert!(!is_collectable(MANIFEST_FILE));
        assert!(!is_collectable(&commit_lock_file(MANIFEST_FILE)));
        assert!(!is_collectable("events/date=2025-11-28/part-0.parquet"));
        assert!(!is_collectable("customers/part-0.parquet"));
        assert!(is_committed_object(DEFINITIONS_FILE));
        assert!(is_staged_write("v0000000001-ab.parquet#12"));
        assert!(is_staged_write("manifest.json#1"));
        assert!(!is_staged_write("a#b.parquet"));
        assert!(!is_staged_write("#1"));
        assert!(!is_committed_object("customers/x.json"));
    }

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
