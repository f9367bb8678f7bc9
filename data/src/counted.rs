//! Counts of the requests and bytes a store served: what an S3 bill and a network link see.
//!
//! Every [`crate::store::Store`] wraps its object store in a [`Counted`] store, so that a
//! refresh can report how many requests of each kind it made and how many bytes it fetched and
//! wrote — measured where they happen, not estimated from file sizes. DataFusion's own scan
//! metrics (`bytes_scanned`) count what the Parquet reader asked for; these count what the
//! store was asked for, listings, footers, kitle's own objects and commits included.
//!
//! Reads of byte ranges go through the same coalescing an S3 store applies
//! ([`object_store::coalesce_ranges`] with its default gap), each merged range counted as one
//! `GET`, so the figure for S3 is the number of HTTP requests the refresh sent. A local folder
//! keeps its own faster `get_ranges` (one file opened for several ranges); its count is then the
//! ranges asked for after the same coalescing.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, OBJECT_STORE_COALESCE_DEFAULT,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    RenameOptions, Result, coalesce_ranges,
};
use serde::Serialize;

/// The running totals of one store (shared by every clone of it in this process).
#[derive(Debug, Default)]
pub struct IoCounters {
    gets: AtomicU64,
    heads: AtomicU64,
    lists: AtomicU64,
    puts: AtomicU64,
    deletes: AtomicU64,
    copies: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

/// A snapshot of [`IoCounters`], or the difference of two (what happened between them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreIo {
    /// Every request below, summed.
    pub requests: u64,
    /// Reads of an object or of a byte range of one (`GET`).
    pub gets: u64,
    /// Reads of an object's metadata only (`HEAD`).
    pub heads: u64,
    /// Listings: one per page a listing returns on S3 (`ListObjectsV2`), one per call here.
    pub lists: u64,
    /// Writes, conditional ones included, and the parts of multipart uploads (`PUT`).
    pub puts: u64,
    /// Objects deleted.
    pub deletes: u64,
    /// Copies and renames.
    pub copies: u64,
    /// Bytes of object data fetched by the reads.
    pub bytes_read: u64,
    /// Bytes of object data written.
    pub bytes_written: u64,
}

impl IoCounters {
    /// What has been counted so far.
    pub fn snapshot(&self) -> StoreIo {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (gets, heads, lists) = (get(&self.gets), get(&self.heads), get(&self.lists));
        let (puts, deletes, copies) = (get(&self.puts), get(&self.deletes), get(&self.copies));
        StoreIo {
            requests: gets + heads + lists + puts + deletes + copies,
            gets,
            heads,
            lists,
            puts,
            deletes,
            copies,
            bytes_read: get(&self.bytes_read),
            bytes_written: get(&self.bytes_written),
        }
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl StoreIo {
    /// What was counted after `earlier` was taken (each field saturates at 0).
    pub fn since(&self, earlier: &StoreIo) -> StoreIo {
        StoreIo {
            requests: self.requests.saturating_sub(earlier.requests),
            gets: self.gets.saturating_sub(earlier.gets),
            heads: self.heads.saturating_sub(earlier.heads),
            lists: self.lists.saturating_sub(earlier.lists),
            puts: self.puts.saturating_sub(earlier.puts),
            deletes: self.deletes.saturating_sub(earlier.deletes),
            copies: self.copies.saturating_sub(earlier.copies),
            bytes_read: self.bytes_read.saturating_sub(earlier.bytes_read),
            bytes_written: self.bytes_written.saturating_sub(earlier.bytes_written),
        }
    }
}

/// An object store that counts what it is asked for, then passes it on.
#[derive(Debug)]
pub struct Counted {
    inner: Arc<dyn ObjectStore>,
    counters: Arc<IoCounters>,
    /// Whether `inner` reads several ranges of one object better itself (a local folder):
    /// then `get_ranges` is passed on and counted as the coalesced ranges it asked for.
    own_ranges: bool,
}

impl Counted {
    /// Wraps `inner`, counting into `counters`. `own_ranges`: pass `get_ranges` on to `inner`
    /// (for a store that overrides it, such as a local folder) instead of splitting it into
    /// the range reads an S3 store sends.
    pub fn new(inner: Arc<dyn ObjectStore>, counters: Arc<IoCounters>, own_ranges: bool) -> Self {
        Self {
            inner,
            counters,
            own_ranges,
        }
    }

    fn count_listing(
        &self,
        stream: BoxStream<'static, Result<ObjectMeta>>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        add(&self.counters.lists, 1);
        stream.boxed()
    }
}

impl fmt::Display for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counted({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Counted {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        add(&self.counters.puts, 1);
        add(&self.counters.bytes_written, payload.content_length() as u64);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        add(&self.counters.puts, 1);
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(CountedUpload {
            inner: upload,
            counters: Arc::clone(&self.counters),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let head = options.head;
        let result = self.inner.get_opts(location, options).await;
        if head {
            add(&self.counters.heads, 1);
        } else {
            add(&self.counters.gets, 1);
            if let Ok(r) = &result {
                add(&self.counters.bytes_read, r.range.end - r.range.start);
            }
        }
        result
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if !self.own_ranges {
            return coalesce_ranges(
                ranges,
                |range| async move {
                    let options = GetOptions {
                        range: Some(range.into()),
                        ..Default::default()
                    };
                    self.get_opts(location, options).await?.bytes().await
                },
                OBJECT_STORE_COALESCE_DEFAULT,
            )
            .await;
        }
        let merged = merged_ranges(ranges);
        let result = self.inner.get_ranges(location, ranges).await;
        add(&self.counters.gets, merged.len() as u64);
        if result.is_ok() {
            add(
                &self.counters.bytes_read,
                merged.iter().map(|r| r.end - r.start).sum(),
            );
        }
        result
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let counters = Arc::clone(&self.counters);
        self.inner
            .delete_stream(locations)
            .inspect(move |r| {
                if r.is_ok() {
                    add(&counters.deletes, 1);
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.count_listing(self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.count_listing(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        add(&self.counters.lists, 1);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        add(&self.counters.copies, 1);
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        add(&self.counters.copies, 1);
        self.inner.rename_opts(from, to, options).await
    }
}

/// The ranges an S3 store would fetch for `ranges`: sorted, and merged where the gap between
/// two is at most [`OBJECT_STORE_COALESCE_DEFAULT`] (what [`coalesce_ranges`] does).
fn merged_ranges(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for range in sorted {
        match merged.last_mut() {
            Some(last) if range.start <= last.end.saturating_add(OBJECT_STORE_COALESCE_DEFAULT) => {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(range),
        }
    }
    merged
}

/// A multipart upload whose parts are counted as `PUT`s with their bytes.
#[derive(Debug)]
struct CountedUpload {
    inner: Box<dyn MultipartUpload>,
    counters: Arc<IoCounters>,
}

#[async_trait]
impl MultipartUpload for CountedUpload {
    fn put_part(&mut self, data: PutPayload) -> object_store::UploadPart {
        add(&self.counters.puts, 1);
        add(&self.counters.bytes_written, data.content_length() as u64);
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    /// Each kind of request is counted once per request, with the bytes it moved; several
    /// nearby ranges are one `GET`, as an S3 store would send them, and far ones are two.
    #[tokio::test]
    async fn requests_and_bytes_are_counted_as_an_s3_store_sends_them() {
        let counters = Arc::new(IoCounters::default());
        let store = Counted::new(Arc::new(InMemory::new()), Arc::clone(&counters), false);
        let path = Path::from("a/b.bin");
        let data = vec![7u8; 3 * 1024 * 1024];
        store.put(&path, data.into()).await.unwrap();
        let start = counters.snapshot();
        assert_eq!((start.puts, start.bytes_written), (1, 3 * 1024 * 1024));

        store.head(&path).await.unwrap();
        let near = store.get_ranges(&path, &[0..10, 20..30]).await.unwrap();
        assert_eq!(near[1].len(), 10);
        store
            .get_ranges(&path, &[0..10, 3 * 1024 * 1024 - 10..3 * 1024 * 1024])
            .await
            .unwrap();
        let listed: Vec<_> = store.list(Some(&Path::from("a"))).collect().await;
        assert_eq!(listed.len(), 1);
        store.delete(&path).await.unwrap();

        let io = counters.snapshot().since(&start);
        assert_eq!(
            (io.heads, io.gets, io.lists, io.deletes, io.puts),
            (1, 3, 1, 1, 0)
        );
        assert_eq!(io.bytes_read, 30 + 20);
        assert_eq!(io.requests, 6);
    }

    /// A local folder keeps its own range reads; the count is the same as for S3.
    #[tokio::test]
    async fn a_store_reading_its_own_ranges_counts_the_merged_ranges() {
        let counters = Arc::new(IoCounters::default());
        let store = Counted::new(Arc::new(InMemory::new()), Arc::clone(&counters), true);
        let path = Path::from("c.bin");
        store.put(&path, vec![1u8; 3 * 1024 * 1024].into()).await.unwrap();
        let start = counters.snapshot();
        let far = 3 * 1024 * 1024 - 10;
        let got = store
            .get_ranges(&path, &[far..far + 10, 0..10, 20..30])
            .await
            .unwrap();
        assert_eq!(got.len(), 3);
        let io = counters.snapshot().since(&start);
        assert_eq!((io.gets, io.bytes_read), (2, 30 + 10));
    }
}
