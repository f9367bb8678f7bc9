//! The generated world: the shop's fixed context, every customer's traits and order schedule.
//!
//! Built once, in parallel over contiguous ranges of customers that are joined back in index
//! order (so the result never depends on which thread finished first), then shared read-only
//! by the workers that write the day files.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::calendar::{Calendar, utc_hour_weights};
use super::catalog::Catalog;
use super::customers::{Period, Traits, id_width};
use super::orders::{LOOKBACK, OrderRef, Schedule, Scheduled, day_plan, order_plan};

/// What every part of the generator reads and nothing changes: the seed, the period, the
/// calendar and the catalogue.
pub(crate) struct Shop {
    pub seed: u64,
    pub customers: u64,
    /// Digits of customer ids.
    pub width: usize,
    pub period: Period,
    /// From `LOOKBACK` days before the period to its last day.
    pub calendar: Calendar,
    pub catalog: Catalog,
    /// Weight of each UTC hour for the start of a visit.
    pub hours: [u32; 24],
}

impl Shop {
    /// The shop of `customers` customers over `period`, drawn from `seed`.
    pub(crate) fn new(seed: u64, customers: u64, period: Period) -> Self {
        Self {
            seed,
            customers,
            width: id_width(customers),
            period,
            calendar: Calendar::new(period.first - LOOKBACK, period.last),
            catalog: Catalog::new(),
            hours: utc_hour_weights(),
        }
    }
}

/// The shop plus its customers.
pub(crate) struct World {
    pub shop: Shop,
    pub traits: Vec<Traits>,
    pub schedule: Schedule,
}

/// Customers per unit of parallel work.
const CHUNK: u64 = 1 << 15;

impl World {
    /// Draws every customer's traits and orders on `workers` threads, reporting each finished
    /// range of customers to `progress`.
    pub(crate) fn build(shop: Shop, workers: usize, progress: &(dyn Fn(u64) + Sync)) -> Self {
        let chunks = shop.customers.div_ceil(CHUNK) as usize;
        let next = AtomicUsize::new(0);
        let done: Mutex<Vec<Option<Chunk>>> = Mutex::new((0..chunks).map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..workers.min(chunks).max(1) {
                scope.spawn(|| {
                    loop {
                        let chunk = next.fetch_add(1, Ordering::Relaxed);
                        if chunk >= chunks {
                            break;
                        }
                        let start = chunk as u64 * CHUNK;
                        let end = (start + CHUNK).min(shop.customers);
                        let part = build_chunk(&shop, start..end);
                        if let Ok(mut slots) = done.lock() {
                            slots[chunk] = Some(part);
                        }
                        progress(end - start);
                    }
                });
            }
        });
        let parts = done
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut traits = Vec::with_capacity(shop.customers as usize);
        let mut schedule = Schedule {
            offsets: Vec::with_capacity(shop.customers as usize + 1),
            orders: Vec::new(),
        };
        schedule.offsets.push(0);
        for (chunk_traits, counts, orders) in parts.into_iter().flatten() {
            traits.extend(chunk_traits);
            for count in counts {
                let last = schedule.offsets[schedule.offsets.len() - 1];
                schedule.offsets.push(last + count);
            }
            schedule.orders.extend(orders);
        }
        Self {
            shop,
            traits,
            schedule,
        }
    }
}

/// The traits, order counts and orders of a range of customers.
type Chunk = (Vec<Traits>, Vec<usize>, Vec<Scheduled>);

fn build_chunk(shop: &Shop, range: std::ops::Range<u64>) -> Chunk {
    let mut traits = Vec::with_capacity((range.end - range.start) as usize);
    let mut counts = Vec::with_capacity(traits.capacity());
    let mut orders = Vec::new();
    for index in range {
        let t = Traits::derive(shop.seed, index, &shop.period, &shop.catalog);
        let before = orders.len();
        for day in (shop.period.first - LOOKBACK)..=shop.period.last {
            let plan = day_plan(shop, index, &t, shop.calendar.get(day));
            let mut bits = plan.orders;
            while bits != 0 {
                let slot = bits.trailing_zeros() as u8;
                let order = OrderRef { day, slot };
                let follow_ups = order_plan(shop, index, &t, order).follow_up_days(day);
                orders.push(Scheduled { order, follow_ups });
                bits &= bits - 1;
            }
        }
        counts.push(orders.len() - before);
        traits.push(t);
    }
    (traits, counts, orders)
}
