//! An object-store view that shows DataFusion only the files that passed the footer check.
//!
//! DataFusion's listing tables list their folder themselves; an unreadable file in that
//! listing would fail the whole query. Wrapping the store so that listings under the contract
//! folders return only the checked, readable files keeps skip-and-report inside the ordinary
//! listing-table scan (partition pruning, statistics, any executor) instead of a custom table
//! provider. Everything outside those folders passes through untouched.

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

/// A store whose listings under `guarded` prefixes contain only the `allowed` objects.
#[derive(Debug)]
pub struct ReadableOnly {
    inner: Arc<dyn ObjectStore>,
    guarded: Vec<Path>,
    allowed: Arc<HashSet<Path>>,
}

impl ReadableOnly {
    /// Wraps `inner`; under each of `guarded`, only `allowed` objects are listed.
    pub fn new(inner: Arc<dyn ObjectStore>, guarded: Vec<Path>, allowed: HashSet<Path>) -> Self {
        Self {
            inner,
            guarded,
            allowed: Arc::new(allowed),
        }
    }

    /// Drops the objects of a listing that are not shown (errors pass through).
    fn shown_only(
        &self,
        listing: BoxStream<'static, Result<ObjectMeta>>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let guarded = self.guarded.clone();
        let allowed = Arc::clone(&self.allowed);
        listing
            .filter(move |item| {
                let keep = match item {
                    Ok(meta) => Self::is_shown(&guarded, &allowed, &meta.location),
                    Err(_) => true,
                };
                futures::future::ready(keep)
            })
            .boxed()
    }

    fn is_shown(guarded: &[Path], allowed: &HashSet<Path>, location: &Path) -> bool {
        !guarded.iter().any(|g| location.prefix_matches(g)) || allowed.contains(location)
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
        self.shown_only(self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.shown_only(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result
            .objects
            .retain(|meta| Self::is_shown(&self.guarded, &self.allowed, &meta.location));
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}
