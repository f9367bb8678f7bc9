//! Conditional commits of kitle's small JSON objects: the one way the manifest, the stored
//! definitions and any later committed state are replaced.
//!
//! Several writers share a store: the service's scheduler, `kitle refresh` and `kitle segment
//! put` from the command line, other replicas of the service. Each of them replaces one small
//! JSON object by reading it, changing it and writing it back, so a plain PUT would let the
//! later writer silently drop what the earlier one committed. [`update_json`] makes that
//! read–change–write conditional:
//!
//! - on S3 the write is `PutMode::Update` with the version (ETag) that was read, or
//!   `PutMode::Create` when there was nothing yet — the object store refuses it when another
//!   writer committed in between;
//! - on a local folder (`LocalFileSystem` has no conditional update) the whole read–change–write
//!   runs under an exclusive OS file lock on a lock file beside the object, and the write is a
//!   rename of a fully written temporary file: atomic between the processes of one machine (not
//!   across machines sharing a network file system).
//!
//! On a conflict the object is read again and the change applied again to what is there now
//! (the change is a function of the current value, so it can decide that re-applying is not
//! meaningful and fail with its own error instead). After [`MAX_ATTEMPTS`] conflicts in a row
//! the commit gives up with [`Error::CommitConflict`].

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::layout;
use crate::store::Store;

/// How many times a commit is attempted before it gives up on conflicts. Writers of one store
/// are few (a scheduler, a CLI, a handful of replicas), so this many lost races in a row means
/// something is wrong rather than busy.
pub const MAX_ATTEMPTS: u32 = 64;

/// What a commit did.
#[derive(Debug, Clone)]
pub struct Committed<T> {
    /// The value now stored (the result of the last application of the change).
    pub value: T,
    /// How many times the change was re-applied because another writer had committed first.
    pub retries: u32,
    /// Whether anything was written (`false` when the change left the value as it was).
    pub written: bool,
}

/// Replaces the JSON object at `relative` (a path relative to the store root, from
/// [`crate::layout`]) with `change(current)`, conditionally: the write only succeeds if nobody
/// else committed the object since it was read; otherwise it is read again and `change` is
/// called again with what is there now. `current` is `T::default()` when the object does not
/// exist yet. When `change` returns a value that serialises to the stored bytes, nothing is
/// written.
///
/// `change` may fail with its own error (for instance when what another writer committed makes
/// the change meaningless); that error is returned as is and nothing is written.
pub async fn update_json<T, E, F, Fut>(
    store: &Store,
    relative: &str,
    mut change: F,
) -> std::result::Result<Committed<T>, E>
where
    T: Serialize + DeserializeOwned + Default,
    E: From<Error>,
    F: FnMut(T) -> Fut,
    Fut: Future<Output = std::result::Result<T, E>>,
{
    let mut retries = 0;
    loop {
        // Local folders: held from the read to the write, so no other process of this machine
        // commits in between; released when dropped.
        let _lock = match store.local_root() {
            Some(root) => {
                Some(FileLock::acquire(root.join(layout::commit_lock_file(relative))).await?)
            }
            None => None,
        };
        let (stored, version) = read_versioned(store, relative).await?;
        let current = match &stored {
            Some(bytes) => serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
                path: relative.to_string(),
                reason: e.to_string(),
            })?,
            None => T::default(),
        };
        let next = change(current).await?;
        let bytes = Bytes::from(
            serde_json::to_vec_pretty(&next).map_err(|e| Error::Corrupt {
                path: relative.to_string(),
                reason: format!("cannot serialise: {e}"),
            })?,
        );
        if stored.as_ref() == Some(&bytes) {
            return Ok(Committed {
                value: next,
                retries,
                written: false,
            });
        }
        let mode = match (_lock.is_some(), version) {
            // The lock already excludes every other writer.
            (true, _) => PutMode::Overwrite,
            (false, Some(version)) => PutMode::Update(version),
            (false, None) => PutMode::Create,
        };
        let path = store.path(relative);
        let point = failpoint_name(relative);
        crate::failpoint::reach(&format!("{point}.before_commit"));
        let written = store
            .object_store()
            .put_opts(&path, PutPayload::from_bytes(bytes), PutOptions::from(mode))
            .await;
        match written {
            Ok(_) => {
                crate::failpoint::reach(&format!("{point}.after_commit"));
                if retries > 0 {
                    tracing::info!(path = relative, retries, "committed after conflicts");
                }
                return Ok(Committed {
                    value: next,
                    retries,
                    written: true,
                });
            }
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => {
                retries += 1;
                if retries >= MAX_ATTEMPTS {
                    return Err(Error::CommitConflict {
                        path: relative.to_string(),
                        attempts: retries,
                    }
                    .into());
                }
                tracing::debug!(
                    path = relative,
                    retries,
                    "another writer committed first; re-applying"
                );
                tokio::time::sleep(backoff(retries)).await;
            }
            Err(e) => return Err(Error::from(e).into()),
        }
    }
}

/// The name a commit of `relative` has among the failpoints: its file name without the
/// extension (`manifest`, `definitions`).
fn failpoint_name(relative: &str) -> &str {
    let name = relative.rsplit('/').next().unwrap_or(relative);
    name.split('.').next().unwrap_or(name)
}

/// The stored bytes of `relative` with the version they were read at; `None` when absent.
async fn read_versioned(
    store: &Store,
    relative: &str,
) -> Result<(Option<Bytes>, Option<UpdateVersion>)> {
    match store.object_store().get(&store.path(relative)).await {
        Ok(got) => {
            let version = UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            Ok((Some(got.bytes().await?), Some(version)))
        }
        Err(object_store::Error::NotFound { .. }) => Ok((None, None)),
        Err(e) => Err(e.into()),
    }
}

/// How long to wait before re-applying after the `retries`-th conflict: a few milliseconds,
/// doubling, at most half a second, with jitter so that two writers that collided do not
/// collide again in step.
fn backoff(retries: u32) -> Duration {
    let base = 5u64 << retries.min(7);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let jitter = u64::from(nanos ^ std::process::id()) % base.max(1);
    Duration::from_millis((base + jitter).min(500))
}

/// An exclusive lock on a file, held until dropped (the OS releases it when the file closes,
/// also when the process dies).
struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    async fn acquire(path: PathBuf) -> Result<Self> {
        tokio::task::spawn_blocking(move || {
            let io = |context: &str, source| Error::Io {
                context: format!("{context} {}", path.display()),
                source,
            };
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io("creating the folder of", e))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| io("opening the commit lock", e))?;
            file.lock().map_err(|e| io("locking", e))?;
            Ok(FileLock { _file: file })
        })
        .await
        .map_err(|e| Error::Io {
            context: "waiting for a commit lock".into(),
            source: std::io::Error::other(e),
        })?
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::test_store::temp_store;

    /// Many writers of one process, each adding its own key: nothing is lost, and a change
    /// that leaves the value alone writes nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_updates_keep_every_change() {
        let (_dir, store) = temp_store();
        let store = Arc::new(store);
        let mut tasks = Vec::new();
        for writer in 0..8 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for round in 0..10 {
                    update_json::<BTreeMap<String, u32>, Error, _, _>(
                        &store,
                        "state/test.json",
                        |mut map| async move {
                            // Another writer gets every chance to commit in between.
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            map.insert(format!("{writer}-{round}"), round);
                            Ok(map)
                        },
                    )
                    .await
                    .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let done = update_json::<BTreeMap<String, u32>, Error, _, _>(
            &store,
            "state/test.json",
            |map| async move { Ok(map) },
        )
        .await
        .unwrap();
        assert_eq!(done.value.len(), 80);
        assert!(!done.written);
    }

    /// A change's own error is returned and nothing is written.
    #[tokio::test]
    async fn a_refused_change_writes_nothing() {
        let (dir, store) = temp_store();
        let refused =
            update_json::<BTreeMap<String, u32>, Error, _, _>(&store, "state/x.json", |_| async {
                Err(Error::InvalidArgument {
                    name: "test",
                    reason: "refused".into(),
                })
            })
            .await;
        assert!(matches!(refused, Err(Error::InvalidArgument { .. })));
        assert!(!dir.path().join("state/x.json").exists());
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(1) >= Duration::from_millis(10));
        for r in 0..100 {
            assert!(backoff(r) <= Duration::from_millis(500));
        }
    }
}
