//! The in-memory membership index that lookups answer from, without touching object storage.
//!
//! Customer ids are interned to dense integers **in sorted order** (the rank of an id among
//! all known ids), so one roaring bitmap per segment both answers "is X a member" in
//! nanoseconds and iterates members ordered by `customer_id` — which is what member pages and
//! exports need. Each member's `since` is a small index into the segment's table of distinct
//! `since` instants (there is one per refresh at which somebody entered), kept in bitmap
//! order and found by the bitmap's rank.
//!
//! A [`Snapshot`] is immutable. A refresh builds the next one (reusing the bitmaps of the
//! segments it did not touch, renumbered to the new interner) and the service swaps it in
//! whole, so a reader sees the old or the new version of every segment, never a mix.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kitle_data::memberships::{Member, RefreshRecord};
use roaring::RoaringBitmap;

/// Customer ids, sorted, each numbered by its rank. Stored as one text arena and offsets, so
/// a million ids cost their bytes plus 4 bytes each.
#[derive(Debug, Default)]
pub struct Interner {
    arena: String,
    /// End offset of each id in `arena`; id `i` spans `ends[i-1]..ends[i]`.
    ends: Vec<u32>,
}

impl Interner {
    /// Builds an interner from ids in ascending order without duplicates.
    fn from_sorted<'a>(ids: impl IntoIterator<Item = &'a str>) -> Self {
        let mut arena = String::new();
        let mut ends = Vec::new();
        for id in ids {
            arena.push_str(id);
            ends.push(u32::try_from(arena.len()).expect("customer ids fit in 4 GiB"));
        }
        arena.shrink_to_fit();
        ends.shrink_to_fit();
        Self { arena, ends }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no id is interned.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The id numbered `rank`.
    pub fn get(&self, rank: u32) -> &str {
        let i = rank as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.arena[start..self.ends[i] as usize]
    }

    /// `Ok(rank)` of `id`, or `Err(position)` where it would be inserted.
    pub fn rank(&self, id: &str) -> Result<u32, u32> {
        let (mut lo, mut hi) = (0usize, self.ends.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid as u32).cmp(id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid as u32),
            }
        }
        Err(lo as u32)
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len() as u32).map(|r| self.get(r))
    }

    fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 4
    }
}

/// Index of each member's `since` in [`SegmentIndex::since_values`], in bitmap order: two
/// bytes per member while a segment has at most 65 536 distinct `since` instants.
#[derive(Debug)]
enum SinceIndex {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl SinceIndex {
    fn get(&self, i: usize) -> usize {
        match self {
            SinceIndex::Narrow(v) => v[i] as usize,
            SinceIndex::Wide(v) => v[i] as usize,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            SinceIndex::Narrow(v) => v.capacity() * 2,
            SinceIndex::Wide(v) => v.capacity() * 4,
        }
    }
}

/// The current version of one segment's memberships.
#[derive(Debug)]
pub struct SegmentIndex {
    /// The refresh that produced this version (version, `as_of`, counts, files).
    pub record: RefreshRecord,
    /// Members, as interner ranks.
    pub members: RoaringBitmap,
    since_values: Vec<DateTime<Utc>>,
    since: SinceIndex,
}

impl SegmentIndex {
    /// Builds a segment from its members as (interner rank, since) pairs, in any order.
    fn build(record: RefreshRecord, mut members: Vec<(u32, DateTime<Utc>)>) -> Self {
        members.sort_unstable_by_key(|m| m.0);
        members.dedup_by_key(|m| m.0);
        let mut since_values: Vec<DateTime<Utc>> = members.iter().map(|m| m.1).collect();
        since_values.sort_unstable();
        since_values.dedup();
        // Usually a handful of instants left out of one per member: give the rest back.
        since_values.shrink_to_fit();
        let bitmap =
            RoaringBitmap::from_sorted_iter(members.iter().map(|m| m.0)).expect("ranks are sorted");
        let positions = members.iter().map(|m| {
            since_values
                .binary_search(&m.1)
                .expect("every since is in the table")
        });
        let since = if since_values.len() <= usize::from(u16::MAX) + 1 {
            SinceIndex::Narrow(positions.map(|p| p as u16).collect())
        } else {
            SinceIndex::Wide(positions.map(|p| p as u32).collect())
        };
        Self {
            record,
            members: bitmap,
            since_values,
            since,
        }
    }

    /// Number of members.
    pub fn len(&self) -> u64 {
        self.members.len()
    }

    /// Whether the version has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// When the customer numbered `rank` entered, if a member.
    pub fn since_of(&self, rank: u32) -> Option<DateTime<Utc>> {
        if !self.members.contains(rank) {
            return None;
        }
        let position = self.members.rank(rank) as usize - 1;
        Some(self.since_values[self.since.get(position)])
    }

    /// A strong entity tag for this version: the version number and its `as_of`, so that a
    /// segment removed and created again never reuses one.
    pub fn etag(&self) -> String {
        format!(
            "\"{}-{}\"",
            self.record.version,
            self.record.as_of.timestamp_micros()
        )
    }

    fn heap_bytes(&self) -> usize {
        self.members.serialized_size()
            + self.since_values.capacity() * std::mem::size_of::<DateTime<Utc>>()
            + self.since.heap_bytes()
    }
}

/// Segments read from the store for the next snapshot, held compactly while they load: each
/// distinct customer id once, members as (provisional number, since) pairs. Loading a million
/// customers × 100 segments so peaks at a few hundred MB instead of holding every member's id
/// as its own string.
#[derive(Default)]
pub struct Loader {
    ids: std::collections::HashMap<Box<str>, u32>,
    segments: Vec<(RefreshRecord, String, Vec<Pair>)>,
}

/// A member as a (provisional or final) customer number and the instant it entered.
type Pair = (u32, DateTime<Utc>);

impl Loader {
    /// Adds one segment's members (the members file of `record`).
    pub fn add(&mut self, record: RefreshRecord, segment: String, members: Vec<Member>) {
        let mut pairs = Vec::with_capacity(members.len());
        for m in members {
            let next = self.ids.len() as u32;
            let n = match self.ids.get(m.customer_id.as_str()) {
                Some(n) => *n,
                None => {
                    self.ids.insert(m.customer_id.into_boxed_str(), next);
                    next
                }
            };
            pairs.push((n, m.since));
        }
        self.segments.push((record, segment, pairs));
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }
}

/// Every segment's current memberships at one moment. Immutable; replaced whole.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// All customer ids that are or were members of a loaded version.
    pub interner: Interner,
    /// Segment id → its current version (segments never refreshed are absent).
    pub segments: BTreeMap<String, Arc<SegmentIndex>>,
    /// Increases with every swap (0 before the first load); never part of an entity tag,
    /// which must not depend on the process.
    pub generation: u64,
}

impl Snapshot {
    /// Builds the next snapshot: `loaded` holds the segments whose versions changed (read from
    /// the store), `kept` the ids of unchanged segments to carry over from `self`. Segments in
    /// neither are dropped.
    pub fn next(&self, loaded: Loader, kept: &[String]) -> Snapshot {
        // The new interner: the old ids (kept segments refer to them) and the loaded ones.
        let mut fresh: Vec<(&str, u32)> = loaded.ids.iter().map(|(k, v)| (&**k, *v)).collect();
        fresh.sort_unstable();
        let merged = merge_sorted(self.interner.iter(), fresh.iter().map(|f| f.0));
        let interner = Interner::from_sorted(merged.iter().copied());
        drop(merged);
        // Provisional number → rank.
        let mut rank_of = vec![0u32; fresh.len()];
        for (id, n) in &fresh {
            rank_of[*n as usize] = interner.rank(id).expect("loaded ids are interned");
        }
        // Old rank → new rank, monotone, so kept bitmaps keep their order and since indexes.
        let renumber: Vec<u32> = self
            .interner
            .iter()
            .map(|id| interner.rank(id).expect("old ids are kept"))
            .collect();
        drop(fresh);
        let mut segments = BTreeMap::new();
        for id in kept {
            if let Some(old) = self.segments.get(id) {
                let members = RoaringBitmap::from_sorted_iter(
                    old.members.iter().map(|r| renumber[r as usize]),
                )
                .expect("renumbering keeps the order");
                let since = match &old.since {
                    SinceIndex::Narrow(v) => SinceIndex::Narrow(v.clone()),
                    SinceIndex::Wide(v) => SinceIndex::Wide(v.clone()),
                };
                segments.insert(
                    id.clone(),
                    Arc::new(SegmentIndex {
                        record: old.record.clone(),
                        members,
                        since_values: old.since_values.clone(),
                        since,
                    }),
                );
            }
        }
        for (record, id, pairs) in loaded.segments {
            let members = pairs
                .into_iter()
                .map(|(n, since)| (rank_of[n as usize], since))
                .collect();
            segments.insert(id, Arc::new(SegmentIndex::build(record, members)));
        }
        Snapshot {
            interner,
            segments,
            generation: self.generation + 1,
        }
    }

    /// Segment ids (with their `since`) that `customer_id` is a member of.
    pub fn segments_of(&self, customer_id: &str) -> Vec<(&str, DateTime<Utc>)> {
        let Ok(rank) = self.interner.rank(customer_id) else {
            return Vec::new();
        };
        self.segments
            .iter()
            .filter_map(|(id, s)| s.since_of(rank).map(|since| (id.as_str(), since)))
            .collect()
    }

    // Segments are named by id, not passed as `SegmentIndex`: a segment's bitmap numbers
    // customers by this snapshot's interner only, so it must never meet another snapshot's.

    /// Whether `customer_id` is a member of `segment`, with since when.
    pub fn lookup(&self, segment: &str, customer_id: &str) -> Option<DateTime<Utc>> {
        let segment = self.segments.get(segment)?;
        let rank = self.interner.rank(customer_id).ok()?;
        segment.since_of(rank)
    }

    /// Up to `limit` members of `segment` with ids greater than `after` (all when `None`), in
    /// id order, and whether more follow (none for a segment without memberships).
    pub fn page(
        &self,
        segment: &str,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<(&str, DateTime<Utc>)>, bool) {
        let Some(segment) = self.segments.get(segment) else {
            return (Vec::new(), false);
        };
        let start = match after {
            None => 0,
            Some(id) => match self.interner.rank(id) {
                Ok(r) => r + 1,
                Err(r) => r,
            },
        };
        let mut out = Vec::with_capacity(limit.min(segment.members.len() as usize));
        let mut iter = segment.members.range(start..);
        for rank in iter.by_ref().take(limit) {
            out.push((
                self.interner.get(rank),
                segment.since_of(rank).expect("a member"),
            ));
        }
        let more = iter.next().is_some();
        (out, more)
    }

    /// Every member of `segment` in id order.
    pub fn all<'a>(&'a self, segment: &str) -> impl Iterator<Item = (&'a str, DateTime<Utc>)> + 'a {
        self.segments.get(segment).into_iter().flat_map(move |s| {
            s.members
                .iter()
                .enumerate()
                .map(move |(i, rank)| (self.interner.get(rank), s.since_values[s.since.get(i)]))
        })
    }

    /// An entity tag for customer lookups, which read every segment: derived from the stored
    /// versions alone (each segment's id, version number and `as_of`), so it is the same in
    /// every process serving the same manifest — after a restart, on another replica — and
    /// changes whenever any segment's version does. A per-process counter would repeat after a
    /// restart and let a stale `If-None-Match` match a new answer.
    pub fn etag(&self) -> String {
        // FNV-1a, 64 bits: stable across processes, platforms and Rust versions (the standard
        // library's hasher promises none of that).
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for (id, segment) in &self.segments {
            feed(id.as_bytes());
            feed(&[0]);
            feed(&segment.record.version.to_le_bytes());
            feed(&segment.record.as_of.timestamp_micros().to_le_bytes());
        }
        format!("\"s{}-{hash:016x}\"", self.segments.len())
    }

    /// Approximate heap memory held, in bytes (reported in metrics and the benchmark).
    pub fn heap_bytes(&self) -> usize {
        self.interner.heap_bytes()
            + self
                .segments
                .values()
                .map(|s| s.heap_bytes())
                .sum::<usize>()
    }
}

fn merge_sorted<'a>(
    a: impl Iterator<Item = &'a str>,
    b: impl Iterator<Item = &'a str>,
) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut a = a.peekable();
    let mut b = b.peekable();
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match x.cmp(y) {
                std::cmp::Ordering::Less => a.next(),
                std::cmp::Ordering::Greater => b.next(),
                std::cmp::Ordering::Equal => {
                    b.next();
                    a.next()
                }
            },
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: u64, size: u64) -> RefreshRecord {
        RefreshRecord {
            version,
            as_of: DateTime::from_timestamp(1_700_000_000 + version as i64, 0).unwrap(),
            size,
            entered: 0,
            exited: 0,
            duration_ms: 0,
            members: String::new(),
            changes: String::new(),
        }
    }

    fn member(id: &str, since: i64) -> Member {
        Member {
            customer_id: id.into(),
            since: DateTime::from_timestamp(since, 0).unwrap(),
        }
    }

    fn loader(segments: Vec<(RefreshRecord, &str, Vec<Member>)>) -> Loader {
        let mut l = Loader::default();
        for (r, id, members) in segments {
            l.add(r, id.to_string(), members);
        }
        l
    }

    #[test]
    fn lookups_pages_and_renumbering_agree_with_the_member_lists() {
        let empty = Snapshot::default();
        let a = vec![member("c2", 10), member("ç1", 20), member("c9", 10)];
        let first = empty.next(loader(vec![(record(1, 3), "a", a)]), &[]);
        assert_eq!(first.lookup("a", "c2").unwrap().timestamp(), 10);
        assert_eq!(first.lookup("a", "ç1").unwrap().timestamp(), 20);
        assert!(first.lookup("a", "c3").is_none());
        let (page, more) = first.page("a", None, 2);
        assert_eq!(page.iter().map(|p| p.0).collect::<Vec<_>>(), ["c2", "c9"]);
        assert!(more);
        let (page, more) = first.page("a", Some("c9"), 2);
        assert_eq!(page.iter().map(|p| p.0).collect::<Vec<_>>(), ["ç1"]);
        assert!(!more);
        // Between ids not in the interner, pages start at the insertion point.
        let (page, _) = first.page("a", Some("c5"), 10);
        assert_eq!(page[0].0, "c9");

        // A second segment brings new ids; the first keeps its answers after renumbering.
        let b = vec![member("a0", 5), member("c3", 7)];
        let second = first.next(loader(vec![(record(1, 2), "b", b)]), &["a".into()]);
        assert_eq!(second.lookup("a", "ç1").unwrap().timestamp(), 20);
        assert!(second.lookup("a", "c3").is_none());
        assert_eq!(
            second.all("a").map(|m| m.0).collect::<Vec<_>>(),
            ["c2", "c9", "ç1"]
        );
        assert_eq!(
            second.segments_of("c3"),
            vec![("b", DateTime::from_timestamp(7, 0).unwrap())]
        );
        assert_eq!(second.generation, first.generation + 1);
        assert_ne!(second.etag(), first.etag());
        // The tag comes from the versions, not from the swap count: the same segments at the
        // same versions give the same tag in a snapshot built from scratch (another process).
        let again = Snapshot::default().next(
            loader(vec![
                (
                    record(1, 3),
                    "a",
                    vec![member("c2", 10), member("ç1", 20), member("c9", 10)],
                ),
                (record(1, 2), "b", vec![member("a0", 5), member("c3", 7)]),
            ]),
            &[],
        );
        assert_eq!(again.generation, 1);
        assert_eq!(again.etag(), second.etag());
    }

    #[test]
    fn a_million_customers_in_a_hundred_segments_fit_well_under_a_gibibyte() {
        // Scaled down 10× in customers to keep the test quick: 100 k customers, 100 segments
        // of varying density, each with a few `since` values.
        let ids: Vec<String> = (0..100_000).map(|i| format!("cust-{i:07}")).collect();
        let mut loaded = Loader::default();
        for s in 0..100u64 {
            let members: Vec<Member> = ids
                .iter()
                .enumerate()
                .filter(|(i, _)| (*i as u64 * 7919 + s).is_multiple_of(s % 10 + 2))
                .map(|(i, id)| member(id, (i % 24) as i64 * 3600))
                .collect();
            loaded.add(record(1, members.len() as u64), format!("s{s}"), members);
        }
        let snapshot = Snapshot::default().next(loaded, &[]);
        let bytes = snapshot.heap_bytes();
        // Memory grows linearly with customers: 10× this must stay well under 1 GiB.
        assert!(
            bytes * 10 < 512 << 20,
            "{bytes} bytes for 100k customers × 100 segments"
        );
    }
}
