//! The segment definitions kept in the store: one JSON object `{id: definition}` at
//! [`layout::DEFINITIONS_FILE`], replaced whole (so a set of definitions is stored all or
//! nothing) and only through a conditional commit, so that two writers — `kitle segment put`
//! beside the service, two replicas — never drop each other's definitions. Nothing here knows
//! what a definition means: the planner parses and validates them.

use std::collections::BTreeMap;
use std::future::Future;

use object_store::ObjectStoreExt;

use crate::commit::{Committed, update_json};
use crate::error::{Error, Result};
use crate::layout;
use crate::store::Store;

/// The stored definitions: id → JSON document.
pub type Definitions = BTreeMap<String, serde_json::Value>;

/// Reads the stored definitions (`id` → JSON document); empty when none were stored.
pub async fn read_definitions(store: &Store) -> Result<Definitions> {
    match store
        .object_store()
        .get(&store.path(layout::DEFINITIONS_FILE))
        .await
    {
        Ok(got) => {
            let bytes = got.bytes().await?;
            serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                path: layout::DEFINITIONS_FILE.into(),
                reason: e.to_string(),
            })
        }
        Err(object_store::Error::NotFound { .. }) => Ok(BTreeMap::new()),
        Err(e) => Err(e.into()),
    }
}

/// Replaces the stored definitions with `change(current)`, conditionally (see
/// [`crate::commit::update_json`]): when another writer committed first, `change` is applied
/// again to what it committed, so it must check what it relies on (the segments a definition
/// refers to, the one to be removed) against the definitions it is given, and may refuse with
/// its own error.
pub async fn update_definitions<E, F, Fut>(
    store: &Store,
    change: F,
) -> std::result::Result<Committed<Definitions>, E>
where
    E: From<Error>,
    F: FnMut(Definitions) -> Fut,
    Fut: Future<Output = std::result::Result<Definitions, E>>,
{
    update_json(store, layout::DEFINITIONS_FILE, change).await
}
