//! The synthetic shop: a believable Turkish online shop's customers and events, written into a
//! store exactly as the data contract says other systems write them.
//!
//! It exists so that kitle can be tried, tested and measured without anybody's real data: the
//! segments a shop actually asks for (lapsed buyers, cart abandoners of the last week, VIPs
//! with e-mail consent, Black Friday buyers, ≥ 10 000 TL spenders, students at `edu.tr`
//! addresses, …) all have members, and the awkward parts of real data are there too —
//! anonymous visitors, guest checkouts, profile rows that change inside the period, events
//! delivered twice.
//!
//! What lands in the store:
//!
//! ```text
//! customers/part-0000.parquet                      the first profile row of every customer
//! customers/part-0001-updates.parquet              later rows of ~10 % of them (consent, tags, B2B…)
//! events/date=YYYY-MM-DD/part-0000.parquet         every event of that UTC day
//! events/date=YYYY-MM-DD/part-0001-redelivery.parquet   on ~1/3 of the days: ~0.1 % of them again
//! ```
//!
//! The same options always give the same bytes: every random choice comes from a stream keyed
//! by what it is about (see `rng`), customers' traits are a pure function of (seed, customer),
//! and each day a pure function of (seed, day, traits) — so days are written in parallel, in
//! any order, on any number of threads, with identical results.

mod calendar;
mod catalog;
mod customers;
mod events;
mod orders;
mod rng;
mod world;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use arrow::array::RecordBatch;
use chrono::{Duration, NaiveDate};
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::layout;
use crate::progress::Progress;
use crate::store::Store;

use self::calendar::{DAY_US, date_of, day_number};
use self::customers::{Period, ProfileSource};
use self::events::{DayFiles, generate_day};
use self::world::{Shop, World};

/// The `created_by` written into every generated Parquet file. Fixed (no library version, no
/// date) so that the same options give the same bytes.
pub const CREATED_BY: &str = "kitle generate";

/// Most days one run may generate (ten years).
pub const MAX_DAYS: u32 = 3650;

/// Most customers one run may generate: their traits are held in memory while the days are
/// written (about 100 bytes each).
pub const MAX_CUSTOMERS: u64 = 100_000_000;

/// What to generate. The same options always produce the same files, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Number of customers (≥ 1). Events scale with it: about 0.55 events per customer per
    /// day, so 1 000 000 customers × 90 days is about 50 million events.
    pub customers: u64,
    /// Number of days of events (1 ..= 3650), ending with `end`.
    pub days: u32,
    /// Seed of every random choice; another seed is another shop with the same catalogue.
    pub seed: u64,
    /// The last day of the period (a UTC date). Given explicitly rather than taken from the
    /// clock, so that a run is reproducible.
    pub end: NaiveDate,
}

/// What a run wrote, for the CLI to report and for tests to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateSummary {
    /// Customers generated (distinct `customer_id`s).
    pub customers: u64,
    /// Profile rows written: one per customer plus the later rows of the updates file.
    pub customer_rows: u64,
    /// Distinct events written (the `part-0000` files); redelivered copies are not counted.
    pub events: u64,
    /// Files written.
    pub files: u64,
    /// Bytes written, over all files.
    pub bytes: u64,
    /// First day of the period (`end - days + 1`).
    pub first_day: NaiveDate,
    /// Last day of the period (`end`).
    pub last_day: NaiveDate,
}

/// Generates the shop described by `options` into `store`, reporting progress in two phases
/// ("generating customers", counted in customers, then "generating events", counted in days).
///
/// Files are put whole (as the contract's writers do), each one when it is ready, so an
/// interrupted run leaves complete files only. Existing files at the same paths are replaced;
/// others are left alone.
pub async fn generate(
    store: &Store,
    options: &GenerateOptions,
    progress: &dyn Progress,
) -> Result<GenerateSummary> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    generate_on(store, options, progress, workers).await
}

/// [`generate`] on `workers` threads (the output does not depend on how many).
async fn generate_on(
    store: &Store,
    options: &GenerateOptions,
    progress: &dyn Progress,
    workers: usize,
) -> Result<GenerateSummary> {
    validate(options)?;
    let last_day = options.end;
    let first_day = last_day - Duration::days(i64::from(options.days) - 1);
    let period = Period {
        first: day_number(first_day),
        last: day_number(last_day),
        end_us: (i64::from(day_number(last_day)) + 1) * DAY_US,
    };
    let workers = workers.max(1);
    let (tx, mut rx) = mpsc::channel(workers + 1);
    let (customers, seed) = (options.customers, options.seed);
    let producer =
        tokio::task::spawn_blocking(move || produce(seed, customers, period, workers, &tx));

    let mut summary = GenerateSummary {
        customers,
        customer_rows: 0,
        events: 0,
        files: 0,
        bytes: 0,
        first_day,
        last_day,
    };
    progress.start("generating customers", customers);
    let result = async {
        while let Some(message) = rx.recv().await {
            match message {
                Message::Customers(n) => progress.advance(n),
                Message::CustomerFiles { first, updates } => {
                    summary.customer_rows += first.rows + updates.rows;
                    put(
                        store,
                        &format!("{}/part-0000.parquet", layout::CUSTOMERS_DIR),
                        first.bytes,
                        &mut summary,
                    )
                    .await?;
                    if updates.rows > 0 {
                        let path = format!("{}/part-0001-updates.parquet", layout::CUSTOMERS_DIR);
                        put(store, &path, updates.bytes, &mut summary).await?;
                    }
                    progress.finish();
                    progress.start("generating events", u64::from(options.days));
                }
                Message::Day { date, files } => {
                    let dir = layout::events_partition(date);
                    summary.events += files.events;
                    put(
                        store,
                        &format!("{dir}/part-0000.parquet"),
                        files.main,
                        &mut summary,
                    )
                    .await?;
                    if let Some(bytes) = files.redelivery {
                        put(
                            store,
                            &format!("{dir}/part-0001-redelivery.parquet"),
                            bytes,
                            &mut summary,
                        )
                        .await?;
                    }
                    progress.advance(1);
                }
                Message::Failed(error) => return Err(error),
            }
        }
        Ok::<(), Error>(())
    }
    .await;
    // On an error `rx` is dropped here, which makes the producer stop at its next file.
    drop(rx);
    let produced = producer.await;
    result?;
    if let Err(error) = produced {
        if error.is_panic() {
            std::panic::resume_unwind(error.into_panic());
        }
        return Err(Error::Io {
            context: "generating the shop".into(),
            source: std::io::Error::other(error.to_string()),
        });
    }
    progress.finish();
    Ok(summary)
}

fn validate(options: &GenerateOptions) -> Result<()> {
    if options.customers == 0 {
        return Err(Error::InvalidArgument {
            name: "--customers",
            reason: "must be at least 1".into(),
        });
    }
    if options.customers > MAX_CUSTOMERS {
        return Err(Error::InvalidArgument {
            name: "--customers",
            reason: format!("must be at most {MAX_CUSTOMERS}"),
        });
    }
    if !(1..=MAX_DAYS).contains(&options.days) {
        return Err(Error::InvalidArgument {
            name: "--days",
            reason: format!("must be between 1 and {MAX_DAYS}, got {}", options.days),
        });
    }
    if options
        .end
        .checked_sub_signed(Duration::days(4 * 365 + i64::from(MAX_DAYS)))
        .is_none()
        || options.end.checked_add_signed(Duration::days(1)).is_none()
    {
        return Err(Error::InvalidArgument {
            name: "--end",
            reason: format!("{} is too far from the present", options.end),
        });
    }
    Ok(())
}

async fn put(
    store: &Store,
    relative: &str,
    bytes: Vec<u8>,
    summary: &mut GenerateSummary,
) -> Result<()> {
    summary.files += 1;
    summary.bytes += bytes.len() as u64;
    store
        .object_store()
        .put(&store.path(relative), PutPayload::from(bytes))
        .await?;
    Ok(())
}

/// What the generating threads hand to the task that puts files.
enum Message {
    /// This many more customers drawn.
    Customers(u64),
    CustomerFiles {
        first: Encoded,
        updates: Encoded,
    },
    Day {
        date: NaiveDate,
        files: DayFiles,
    },
    Failed(Error),
}

/// A Parquet file in memory.
struct Encoded {
    bytes: Vec<u8>,
    rows: u64,
}

/// Runs on a blocking thread: draws the world, then writes the customer files and the days
/// on `workers` threads, sending each file as it is done.
fn produce(seed: u64, customers: u64, period: Period, workers: usize, tx: &mpsc::Sender<Message>) {
    let shop = Shop::new(seed, customers, period);
    let world = World::build(shop, workers, &|n| {
        let _ = tx.blocking_send(Message::Customers(n));
    });
    match customer_files(&world, workers) {
        Ok((first, updates)) => {
            if tx
                .blocking_send(Message::CustomerFiles { first, updates })
                .is_err()
            {
                return;
            }
        }
        Err(error) => {
            let _ = tx.blocking_send(Message::Failed(error));
            return;
        }
    }
    let next = AtomicU32::new(0);
    let stop = AtomicBool::new(false);
    let days = period.days() as u32;
    std::thread::scope(|scope| {
        for _ in 0..workers.min(days as usize) {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= days {
                        break;
                    }
                    let day = period.first + i as i32;
                    let message = match generate_day(&world, day) {
                        Ok(files) => Message::Day {
                            date: date_of(day),
                            files,
                        },
                        Err(error) => {
                            stop.store(true, Ordering::Relaxed);
                            Message::Failed(error)
                        }
                    };
                    if tx.blocking_send(message).is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
    });
}

/// Customers per batch of profile rows.
const PROFILE_CHUNK: u64 = 1 << 16;

/// Encodes `customers/part-0000` and `part-0001-updates`: rows built in parallel ranges, each
/// file then encoded on its own thread.
fn customer_files(world: &World, workers: usize) -> Result<(Encoded, Encoded)> {
    let source = ProfileSource { world };
    let customers = world.shop.customers;
    let chunks = customers.div_ceil(PROFILE_CHUNK) as usize;
    let next = AtomicU32::new(0);
    let mut parts: Vec<Option<Result<(RecordBatch, RecordBatch)>>> =
        (0..chunks).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.min(chunks).max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let chunk = next.fetch_add(1, Ordering::Relaxed) as usize;
                        if chunk >= chunks {
                            break;
                        }
                        let start = chunk as u64 * PROFILE_CHUNK;
                        let end = (start + PROFILE_CHUNK).min(customers);
                        done.push((chunk, source.batches(start..end)));
                    }
                    done
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(done) => {
                    for (chunk, batches) in done {
                        parts[chunk] = Some(batches);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    let mut first = Vec::with_capacity(chunks);
    let mut updates = Vec::with_capacity(chunks);
    for part in parts.into_iter().flatten() {
        let (a, b) = part?;
        first.push(a);
        updates.push(b);
    }
    let (first, updates) = std::thread::scope(|scope| {
        let updates = scope.spawn(|| encode(&updates, false));
        let first = encode(&first, false);
        (
            first,
            updates
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        )
    });
    Ok((first?, updates?))
}

fn encode(batches: &[RecordBatch], events: bool) -> Result<Encoded> {
    let schema = if events {
        events::schema()
    } else {
        customers::schema()
    };
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(writer_properties(events)))?;
    let mut rows = 0;
    for batch in batches {
        rows += batch.num_rows() as u64;
        writer.write(batch)?;
    }
    Ok(Encoded {
        bytes: writer.into_inner()?,
        rows,
    })
}

/// Parquet settings of every generated file: Snappy, a fixed `created_by`, and neither
/// dictionary nor statistics for the id columns that hardly repeat, where they would only
/// cost time: nobody prunes by event id, and every day file spans all customer ids anyway.
pub(crate) fn writer_properties(events: bool) -> WriterProperties {
    let unique: &[&str] = if events {
        &[
            "event_id",
            "session_id",
            "order_id",
            "anonymous_id",
            "customer_id",
        ]
    } else {
        &["email", "phone"]
    };
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(CREATED_BY.to_string());
    for column in unique {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(*column), false)
            .set_column_statistics_enabled(ColumnPath::from(*column), EnabledStatistics::None);
    }
    builder.build()
}

#[cfg(test)]
mod tests;
