//! The store's identity setting: whose events are whose.
//!
//! `customer_id` (the default): an event belongs to its `customer_id`, and an event without
//! one counts for nobody. `stitched`: an anonymous event belongs to the customer its device's
//! latest `identified` link names (see the segment language's "Identity").
//!
//! The setting is recorded **in the store** (`layout::IDENTITY_FILE`), so that every process
//! reading the store — the CLI, the service, its replicas — agrees on it. A process may also be
//! configured with a value (`identity` in `kitle.toml`, `KITLE_IDENTITY`): the first write of
//! kitle's own objects to a store (definitions, memberships, an erasure; not the generator's
//! `customers/` and `events/`, which stand for other systems' data) records the configured
//! value (or the default); later, a process configured with a
//! value that differs from the recorded one refuses to write and says so. A process that is
//! not configured follows what the store records. [`set_identity`] (`kitle identity set`)
//! changes the recorded value on purpose; the next refresh uses it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout;
use crate::store::Store;

/// Whose events are whose.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    /// An event belongs to its `customer_id`; anonymous events count for nobody.
    #[default]
    CustomerId,
    /// Anonymous events belong to the customer their `anonymous_id` was last linked to.
    Stitched,
}

impl Identity {
    /// Every value, in the order the spec lists them.
    pub const ALL: [Identity; 2] = [Identity::CustomerId, Identity::Stitched];

    /// The value as written in the configuration and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Identity::CustomerId => "customer_id",
            Identity::Stitched => "stitched",
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Identity {
    type Err = Error;

    fn from_str(text: &str) -> Result<Identity> {
        Identity::ALL
            .into_iter()
            .find(|i| i.as_str() == text)
            .ok_or_else(|| Error::InvalidArgument {
                name: "identity",
                reason: format!("{text:?} is neither `customer_id` nor `stitched`"),
            })
    }
}

/// What the store records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRecord {
    /// The setting.
    pub identity: Identity,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// The value the store records; `None` when nothing was ever written to it.
pub async fn recorded_identity(store: &Store) -> Result<Option<IdentityRecord>> {
    match store
        .object_store()
        .get(&store.path(layout::IDENTITY_FILE))
        .await
    {
        Ok(got) => {
            let bytes = got.bytes().await?;
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Corrupt {
                    path: layout::IDENTITY_FILE.into(),
                    reason: e.to_string(),
                })
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The setting evaluations of `store` use: the recorded one, else this process's configured
/// one, else the default (`customer_id`).
pub async fn effective_identity(store: &Store) -> Result<Identity> {
    Ok(match recorded_identity(store).await? {
        Some(record) => record.identity,
        None => store.configured_identity().unwrap_or_default(),
    })
}

/// Checks, before any write, that this process agrees with the store's identity setting, and
/// records the configured value (or the default) when the store has none yet. Refuses with
/// [`Error::IdentityMismatch`] when this process is configured with another value than the
/// recorded one. Returns the setting in force.
pub async fn ensure_writable(store: &Store) -> Result<Identity> {
    let recorded = match recorded_identity(store).await? {
        Some(record) => record.identity,
        // The first write: record the configured value, unless another process recorded one
        // meanwhile (the commit is conditional), which then stands.
        None => {
            let configured = store.configured_identity().unwrap_or_default();
            let committed = crate::commit::update_json(
                store,
                layout::IDENTITY_FILE,
                |current: Option<IdentityRecord>| async move {
                    Ok::<_, Error>(Some(current.unwrap_or(IdentityRecord {
                        identity: configured,
                        recorded_at: Utc::now(),
                    })))
                },
            )
            .await?;
            committed.value.map_or(configured, |r| r.identity)
        }
    };
    match store.configured_identity() {
        Some(configured) if configured != recorded => Err(Error::IdentityMismatch {
            recorded: recorded.to_string(),
            configured: configured.to_string(),
        }),
        _ => Ok(recorded),
    }
}

/// Records `identity` as the store's setting on purpose (`kitle identity set`), whatever was
/// recorded or configured before (a conditional commit, like every one of kitle's small
/// objects); returns what was recorded before.
pub async fn set_identity(store: &Store, identity: Identity) -> Result<Option<Identity>> {
    let before: std::sync::Mutex<Option<Identity>> = std::sync::Mutex::new(None);
    let before_ref = &before;
    crate::commit::update_json(
        store,
        layout::IDENTITY_FILE,
        |current: Option<IdentityRecord>| async move {
            let previous = current.as_ref().map(|r| r.identity);
            *before_ref.lock().expect("identity lock") = previous;
            Ok::<_, Error>(if previous == Some(identity) {
                current
            } else {
                Some(IdentityRecord {
                    identity,
                    recorded_at: Utc::now(),
                })
            })
        },
    )
    .await?;
    Ok(before.into_inner().expect("identity lock"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    fn store(dir: &std::path::Path, identity: Option<Identity>) -> Store {
        Store::open(&StoreConfig {
            url: dir.display().to_string(),
            identity,
            ..StoreConfig::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn the_first_write_records_and_a_different_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let unconfigured = store(dir.path(), None);
        assert_eq!(recorded_identity(&unconfigured).await.unwrap(), None);
        assert_eq!(
            effective_identity(&store(dir.path(), Some(Identity::Stitched)))
                .await
                .unwrap(),
            Identity::Stitched
        );
        // The first write by a stitched process records `stitched`.
        let stitched = store(dir.path(), Some(Identity::Stitched));
        assert_eq!(
            ensure_writable(&stitched).await.unwrap(),
            Identity::Stitched
        );
        assert_eq!(
            effective_identity(&unconfigured).await.unwrap(),
            Identity::Stitched
        );
        assert_eq!(
            ensure_writable(&unconfigured).await.unwrap(),
            Identity::Stitched
        );
        let other = store(dir.path(), Some(Identity::CustomerId));
        let refused = ensure_writable(&other).await.unwrap_err();
        assert!(
            matches!(refused, Error::IdentityMismatch { .. }),
            "{refused}"
        );
        let text = refused.to_string();
        assert!(
            text.contains("stitched") && text.contains("kitle identity set"),
            "{text}"
        );
        // Changed on purpose: now the other process may write, and the first may not.
        assert_eq!(
            set_identity(&other, Identity::CustomerId).await.unwrap(),
            Some(Identity::Stitched)
        );
        assert_eq!(ensure_writable(&other).await.unwrap(), Identity::CustomerId);
        assert!(ensure_writable(&stitched).await.is_err());
    }

    #[test]
    fn values_read_and_write_their_names() {
        for identity in Identity::ALL {
            assert_eq!(identity.as_str().parse::<Identity>().unwrap(), identity);
        }
        assert!("anonymous".parse::<Identity>().is_err());
        assert_eq!(Identity::default(), Identity::CustomerId);
    }
}
