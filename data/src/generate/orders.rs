//! When customers visit and buy, and what becomes of each order.
//!
//! Both are cheap pure functions — [`day_plan`] of (seed, customer, day) and [`order_plan`] of
//! (seed, customer, order day, slot) — so that a day can find the orders of earlier days it has
//! to deliver, cancel, refund or review by recomputing them instead of remembering them.

use super::calendar::{DAY_US, DayInfo, HOUR_US};
use super::customers::{Archetype, Mood, Traits};
use super::rng::{Rand, mix, tag, unit};
use super::world::Shop;

/// How many days after an order something can still happen to it (delivery abroad up to 9
/// days, a refund up to 14 days after delivery).
pub(crate) const LOOKBACK: i32 = 24;

/// An order, named by the day it was placed and the visit of that day it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrderRef {
    /// Day number of `order_created`.
    pub day: i32,
    /// Index of the visit (session) of that day.
    pub slot: u8,
}

/// The visits of one customer on one day.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DayPlan {
    /// Number of visits (0: not seen today).
    pub sessions: u8,
    /// Bit `k` set: visit `k` ends with an order.
    pub orders: u8,
}

/// Most visits a customer makes in one day.
pub(crate) const MAX_SESSIONS: u32 = 6;

/// Whether and how often customer `index` visits on `day`, and which visits end with orders.
pub(crate) fn day_plan(shop: &Shop, index: u64, t: &Traits, day: &DayInfo) -> DayPlan {
    let d = day.day;
    if d < t.created_day - 30 {
        return DayPlan::default();
    }
    let mut x = f64::from(t.rate) * day.activity;
    if d > t.churn_day {
        x *= 0.1;
    }
    if d < t.created_day {
        // Looking around anonymously before signing up.
        x *= 0.5;
    }
    if t.passive {
        x *= 0.3;
    }
    let forced_order = d == t.order_day;
    let forced_visit = forced_order || (!t.guest && d == t.created_day);
    let h = mix([shop.seed, tag::DAY, index, d as u64]);
    if !forced_visit && unit(h) >= x / (1.0 + x) {
        return DayPlan::default();
    }
    let mut rng = Rand::new(h);
    let sessions = (1 + rng.geometric(x.min(2.0) * 0.5)).min(MAX_SESSIONS) as u8;
    let mut orders = 0;
    if d >= t.created_day && d <= t.churn_day {
        let p = f64::from(t.order_p) * day.order;
        for k in 0..sessions {
            if rng.chance(p) {
                orders |= 1 << k;
            }
        }
    }
    if forced_order {
        orders |= 1;
    }
    DayPlan { sessions, orders }
}

/// Converts a lira amount (kuruş) into the customer's currency: euro at 48.50 TL.
pub(crate) fn money(kurus: i64, eur: bool) -> i64 {
    if eur {
        (kurus * 100 + 2_425) / 4_850
    } else {
        kurus
    }
}

/// The price of `product` on `day` (discounts on the big days), in kuruş.
pub(crate) fn price_on(shop: &Shop, product: u32, day: &DayInfo) -> i64 {
    let list = shop.catalog.price(product);
    if day.price == 1.0 {
        list
    } else {
        (list as f64 * day.price).round() as i64
    }
}

/// Something that happens to an order on a later day.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub day: i32,
    pub ts: i64,
}

/// Everything about one order.
#[derive(Debug, Clone)]
pub(crate) struct OrderPlan {
    /// (product, quantity) per line.
    pub lines: [(u32, i32); 4],
    pub line_count: usize,
    /// Total in the order's currency (cents).
    pub amount: i64,
    /// Total in lira (kuruş), for `total_order_amount`.
    pub amount_try: i64,
    /// Items over all lines.
    pub items: i32,
    pub eur: bool,
    /// Index into `catalog::PAYMENT_METHODS`.
    pub payment: u8,
    /// Indices into `catalog::COUNTRIES`.
    pub ship: u8,
    pub bill: u8,
    pub cancelled: Option<Outcome>,
    pub delivered: Option<Outcome>,
    /// With the refunded amount and, for a partial refund, the product.
    pub refunded: Option<(Outcome, i64, Option<u32>)>,
    /// With the product and the stars.
    pub reviewed: Option<(Outcome, u32, i8)>,
}

impl OrderPlan {
    /// The order's lines.
    pub(crate) fn lines(&self) -> &[(u32, i32)] {
        &self.lines[..self.line_count]
    }

    /// Bit `k - 1` set: something happens to the order `k` days after it was placed.
    pub(crate) fn follow_up_days(&self, placed: i32) -> u32 {
        [
            self.cancelled.map(|o| o.day),
            self.delivered.map(|o| o.day),
            self.refunded.map(|r| r.0.day),
            self.reviewed.map(|r| r.0.day),
        ]
        .into_iter()
        .flatten()
        .filter(|&day| (1..=LOOKBACK).contains(&(day - placed)))
        .fold(0, |bits, day| bits | 1 << (day - placed - 1))
    }
}

/// The content and fate of order `o` of customer `index`.
pub(crate) fn order_plan(shop: &Shop, index: u64, t: &Traits, o: OrderRef) -> OrderPlan {
    let mut rng = Rand::new(mix([
        shop.seed,
        tag::ORDER,
        index,
        o.day as u64,
        u64::from(o.slot),
    ]));
    let day = shop.calendar.get(o.day);
    let line_count = if t.wholesale {
        1 + rng.below(4) as usize
    } else {
        1 + rng.weighted(&[55, 25, 12, 8])
    };
    let mut lines = [(0, 0); 4];
    let (mut amount, mut amount_try, mut items) = (0, 0, 0);
    for line in lines.iter_mut().take(line_count) {
        let product = shop.catalog.pick_product(&mut rng, &t.cats);
        let price = price_on(shop, product, day);
        // Wholesale buyers take dozens of anything under 2 000 TL (prices are in kuruş).
        let quantity = if t.wholesale && price < 200_000 {
            rng.range(3, 20) as i32
        } else {
            1 + rng.weighted(&[85, 11, 4]) as i32
        };
        amount += money(price, t.eur) * i64::from(quantity);
        amount_try += price * i64::from(quantity);
        items += quantity;
        *line = (product, quantity);
    }
    let mut ship = t.country;
    if ship == 0 && rng.chance(0.01) {
        // A gift sent to family abroad.
        ship = 1 + rng.below(5) as u8;
    }
    let bill = if t.country != 0 && rng.chance(0.3) {
        0
    } else {
        t.country
    };
    let mut payment = if rng.chance(0.8) {
        t.payment
    } else {
        rng.weighted(&[70, 12, 18]) as u8
    };
    if payment == 2 && ship != 0 {
        payment = 0;
    }

    let at = |rng: &mut Rand, day: i32, from_h: i64, hours: i64| Outcome {
        day,
        ts: i64::from(day) * DAY_US + from_h * HOUR_US + rng.below((hours * HOUR_US) as u64) as i64,
    };
    let mut plan = OrderPlan {
        lines,
        line_count,
        amount,
        amount_try,
        items,
        eur: t.eur,
        payment,
        ship,
        bill,
        cancelled: None,
        delivered: None,
        refunded: None,
        reviewed: None,
    };
    let cancel_p = match (t.mood, payment) {
        (Mood::Unhappy, _) => 0.12,
        (_, 2) => 0.09, // refused at the door (kapıda ödeme)
        _ => 0.04,
    };
    if rng.chance(cancel_p) {
        let on = o.day + 1 + rng.below(2) as i32;
        plan.cancelled = Some(at(&mut rng, on, 6, 14));
        return plan;
    }
    let lag = if ship == 0 {
        1 + rng.weighted(&[30, 35, 20, 10, 5]) as i32
    } else {
        4 + rng.below(6) as i32
    };
    let delivered = at(&mut rng, o.day + lag, 6, 10);
    plan.delivered = Some(delivered);
    let refund_p = if t.mood == Mood::Unhappy { 0.3 } else { 0.04 };
    if rng.chance(refund_p) {
        let on = delivered.day + 2 + rng.below(13) as i32;
        let when = at(&mut rng, on, 7, 11);
        let (product, quantity) = plan.lines()[rng.below(line_count as u64) as usize];
        plan.refunded = Some(if line_count == 1 || rng.chance(0.6) {
            (when, amount, None)
        } else {
            (
                when,
                money(price_on(shop, product, day), t.eur) * i64::from(quantity),
                Some(product),
            )
        });
    }
    let review_p = match t.mood {
        Mood::Fan => 0.7,
        Mood::Unhappy => 0.5,
        Mood::Normal => {
            if t.archetype == Archetype::Heavy {
                0.15
            } else {
                0.1
            }
        }
    };
    if rng.chance(review_p) {
        let on = delivered.day + 1 + rng.below(10) as i32;
        let when = at(&mut rng, on, 12, 9);
        let product = plan.lines()[rng.below(line_count as u64) as usize].0;
        let stars = match t.mood {
            Mood::Fan => 5,
            Mood::Unhappy => 1 + rng.weighted(&[55, 35, 10]) as i8,
            Mood::Normal => 1 + rng.weighted(&[6, 7, 12, 30, 45]) as i8,
        };
        plan.reviewed = Some((when, product, stars));
    }
    plan
}

/// An order in the [`Schedule`], with the days on which something happens to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scheduled {
    pub order: OrderRef,
    /// [`OrderPlan::follow_up_days`]: lets a day skip recomputing orders with nothing due.
    pub follow_ups: u32,
}

/// Every customer's orders from `LOOKBACK` days before the period to its end, in customer
/// order: what lets a day find the earlier orders it has to follow up, without asking every
/// customer about every earlier day again.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    /// `offsets[i]..offsets[i + 1]` are customer `i`'s entries in `orders`.
    pub offsets: Vec<usize>,
    pub orders: Vec<Scheduled>,
}

impl Schedule {
    /// The orders of customer `index`, oldest first.
    pub(crate) fn of(&self, index: u64) -> &[Scheduled] {
        let i = index as usize;
        &self.orders[self.offsets[i]..self.offsets[i + 1]]
    }
}

/// Lira spent by customer `index` on orders inside the period placed on days that ended
/// before `at` and not cancelled: how much `total_order_amount` grew by then.
pub(crate) fn spent_before(
    shop: &Shop,
    index: u64,
    t: &Traits,
    orders: &[Scheduled],
    at: i64,
) -> i64 {
    orders
        .iter()
        .map(|s| s.order)
        .filter(|o| o.day >= shop.period.first && i64::from(o.day + 1) * DAY_US <= at)
        .map(|o| {
            let plan = order_plan(shop, index, t, o);
            if plan.cancelled.is_some() {
                0
            } else {
                plan.amount_try
            }
        })
        .sum()
}
