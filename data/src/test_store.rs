//! What the crate's unit tests open stores with (built for tests only).

use crate::store::{Store, StoreConfig};

/// A store with the default configuration on a new, empty temporary folder; the folder goes
/// when the guard is dropped, so keep it for as long as the store is used.
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig {
        url: dir.path().display().to_string(),
        ..StoreConfig::default()
    })
    .unwrap();
    (dir, store)
}
