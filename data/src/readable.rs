//! An object-store view that shows DataFusion only the files that passed the footer check.
//!
//! DataFusion's listing tables list their folder themselves; an unreadable file in that
//! listing would fail the whole query. Wrapping the store so that listings under the contract
//! folders return only the checked, readable files keeps skip-and-report inside the ordinary
//! listing-table scan (partition pruning, statistics, any executor) instead of a custom table
//! provider. Everything outside those folders passes through untouched.
//!
//! Two ways to decide what is shown: the coordinator's [`ReadableOnly::new`] shows exactly the
//! files one check found readable (a snapshot: the plan and the report agree on the files),
//! and a cluster scheduler's [`ReadableOnly::checked`] judges each file as it is listed, with
//! the same rules, because the scheduler — not the coordinator — lists the files of a plan it
//! is sent. A file that lands between the coordinator's check and the scheduler's listing is
//! then read by the cluster (and was not counted in the coordinator's report).

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

use crate::contract::ContractTable;
use crate::files::FooterCache;
use crate::layout;

/// A store whose listings under `guarded` prefixes contain only the files shown.
#[derive(Debug)]
pub struct ReadableOnly {
    inner: Arc<dyn ObjectStore>,
    guarded: Vec<Path>,
    shown: Shown,
}

/// Which files of the guarded prefixes a [`ReadableOnly`] lists.
#[derive(Debug, Clone)]
enum Shown {
    /// Exactly these: the files one check found readable (the coordinator's snapshot).
    Allowed(Arc<HashSet<Path>>),
    /// Each file as [`crate::files::is_readable`] judges it when listed, in any store of this
    /// object store: for a cluster's scheduler, which lists the files of every scan itself and
    /// must leave out what the coordinator leaves out.
    Checked(Arc<FooterCache>),
}

impl ReadableOnly {
    /// Wraps `inner`; under each of `guarded`, only `allowed` objects are listed.
    pub fn new(inner: Arc<dyn ObjectStore>, guarded: Vec<Path>, allowed: HashSet<Path>) -> Self {
        Self {
            inner,
            guarded,
            shown: Shown::Allowed(Arc::new(allowed)),
        }
    }

    /// Wraps `inner` so that listings of the contract tables of every store inside it — a
    /// listing of a folder `…/customers`, `…/events` or `…/events/date=…`, as DataFusion's
    /// listing tables make them — hold only the files the footer check finds readable,
    /// judged as they are listed (each version of a file once, in `cache`). Other listings
    /// pass through.
    pub fn checked(inner: Arc<dyn ObjectStore>, cache: Arc<FooterCache>) -> Self {
        Self {
            inner,
            guarded: Vec::new(),
            shown: Shown::Checked(cache),
        }
    }

    /// The store root and table of a listing of `prefix`, when it lists a contract table's
    /// folder (or one partition of `events`).
    fn table_listing(prefix: Option<&Path>) -> Option<(Path, ContractTable)> {
        let parts: Vec<_> = prefix?.parts().collect();
        let names: Vec<&str> = parts.iter().map(|p| p.as_ref()).collect();
        let (root_len, table) = match names.as_slice() {
            [.., last] if *last == layout::CUSTOMERS_DIR => {
                (names.len() - 1, ContractTable::Customers)
            }
            [.., last] if *last == layout::EVENTS_DIR => (names.len() - 1, ContractTable::Events),
            [.., events, partition]
                if *events == layout::EVENTS_DIR
                    && partition.starts_with(&format!("{}=", layout::EVENTS_PARTITION_COLUMN)) =>
            {
                (names.len() - 2, ContractTable::Events)
            }
            _ => return None,
        };
        Some((Path::from_iter(parts[..root_len].iter().cloned()), table))
    }

    /// Drops the objects of a listing that are not shown (errors pass through).
    fn shown_only(
        &self,
        prefix: Option<&Path>,
        listing: BoxStream<'static, Result<ObjectMeta>>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let view = self.view(prefix);
        listing
            .map(move |item| {
                let view = view.clone();
                async move {
                    match item {
                        Ok(meta) => view.shows(&meta).await.then_some(Ok(meta)),
                        Err(e) => Some(Err(e)),
                    }
                }
            })
            .buffered(CHECK_CONCURRENCY)
            .filter_map(futures::future::ready)
            .boxed()
    }
}

/// Footers judged at once while a listing is checked.
const CHECK_CONCURRENCY: usize = 16;

/// What one listing shows, as decided by its prefix.
#[derive(Clone)]
enum ListingView {
    /// Everything (a listing of no contract table, in checked mode).
    All,
    /// Outside `guarded`, everything; inside, the allowed files.
    Allowed {
        guarded: Vec<Path>,
        allowed: Arc<HashSet<Path>>,
    },
    /// The readable files of `table` of the store at `root`.
    Checked {
        inner: Arc<dyn ObjectStore>,
        root: Path,
        table: ContractTable,
        cache: Arc<FooterCache>,
    },
}

impl ReadableOnly {
    fn view(&self, prefix: Option<&Path>) -> ListingView {
        match &self.shown {
            Shown::Allowed(allowed) => ListingView::Allowed {
                guarded: self.guarded.clone(),
                allowed: Arc::clone(allowed),
            },
            Shown::Checked(cache) => match Self::table_listing(prefix) {
                Some((root, table)) => ListingView::Checked {
                    inner: Arc::clone(&self.inner),
                    root,
                    table,
                    cache: Arc::clone(cache),
                },
                None => ListingView::All,
            },
        }
    }
}

impl ListingView {
    /// Whether a listed object is shown.
    async fn shows(&self, meta: &ObjectMeta) -> bool {
        match self {
            ListingView::All => true,
            ListingView::Allowed { guarded, allowed } => {
                !guarded.iter().any(|g| meta.location.prefix_matches(g))
                    || allowed.contains(&meta.location)
            }
            ListingView::Checked {
                inner,
                root,
                table,
                cache,
            } => {
                let Some(parts) = meta.location.prefix_match(root) else {
                    return false;
                };
                let relative = parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>();
                crate::files::is_readable(
                    inner.as_ref(),
                    *table,
                    &relative.join("/"),
                    meta,
                    cache,
                )
                .await
            }
        }
    }
}

impl fmt::Display for ReadableOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadableOnly({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for ReadableOnly {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.shown_only(prefix, self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.shown_only(prefix, self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        let objects = std::mem::take(&mut result.objects);
        let view = self.view(prefix);
        let mut shown = Vec::with_capacity(objects.len());
        for meta in objects {
            if view.shows(&meta).await {
                shown.push(meta);
            }
        }
        result.objects = shown;
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_of_contract_tables_are_recognised_in_any_store() {
        let of = |p: &str| ReadableOnly::table_listing(Some(&Path::from(p)));
        assert_eq!(
            of("shops/a/events"),
            Some((Path::from("shops/a"), ContractTable::Events))
        );
        assert_eq!(
            of("shops/a/events/date=2026-03-01"),
            Some((Path::from("shops/a"), ContractTable::Events))
        );
        assert_eq!(
            of("customers"),
            Some((Path::from(""), ContractTable::Customers))
        );
        assert_eq!(of("shops/a/memberships/seg/v1.parquet"), None);
        assert_eq!(of("shops/a/events/other"), None);
        assert_eq!(ReadableOnly::table_listing(None), None);
    }

    /// The scheduler's view leaves out what the coordinator's check leaves out: a file that is
    /// not Parquet, a broken one, one outside a partition; and lists the readable ones.
    #[tokio::test]
    async fn the_checked_view_lists_only_readable_files() {
        use object_store::ObjectStoreExt;
        let (_dir, store) = crate::test_store::temp_store();
        crate::generate::generate(
            &store,
            &crate::generate::GenerateOptions {
                customers: 30,
                days: 2,
                seed: 1,
                end: chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
            },
            &crate::NoProgress,
        )
        .await
        .unwrap();
        let inner = store.object_store();
        inner
            .put(
                &store.path("events/date=2026-01-02/broken.parquet"),
                b"not parquet".to_vec().into(),
            )
            .await
            .unwrap();
        inner
            .put(
                &store.path("events/stray.parquet"),
                b"PAR1".to_vec().into(),
            )
            .await
            .unwrap();
        let checked = ReadableOnly::checked(Arc::clone(inner), Arc::new(FooterCache::new()));
        let listed: Vec<ObjectMeta> = checked
            .list(Some(&store.path("events")))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        let names: Vec<String> = listed.iter().map(|m| m.location.to_string()).collect();
        assert!(!names.is_empty());
        assert!(names.iter().all(|n| n.ends_with(".parquet")), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("broken") || n.contains("stray")), "{names:?}");
        let tables = crate::tables::ContractTables::load(&store, &FooterCache::new())
            .await
            .unwrap();
        assert_eq!(listed.len(), tables.files(ContractTable::Events).readable.len());
        let partition = checked
            .list_with_delimiter(Some(&store.path("events/date=2026-01-02")))
            .await
            .unwrap();
        assert!(
            partition
                .objects
                .iter()
                .all(|m| !m.location.to_string().contains("broken")),
            "{:?}",
            partition.objects
        );
    }
}
