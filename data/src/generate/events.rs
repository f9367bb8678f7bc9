//! One day of events: visits, orders and their follow-ups, campaigns, anonymous visitors.
//!
//! [`generate_day`] is a pure function of the [`World`] and the day: it asks only streams
//! keyed by that day (and recomputes the plans of the earlier orders it follows up), so days can
//! be written in parallel and in any order. Events go straight into Arrow builders — ids are
//! assembled in reused `String`s, never allocated per event — and every 64 Ki rows into the
//! Parquet writer.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanArray, Decimal128Builder, Int8Builder, Int32Builder,
    RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;

use super::calendar::{DAY_US, DayInfo, HOUR_US};
use super::catalog::{BLOG_PAGES, CHECKOUT_STEPS, COUNTRIES, PAYMENT_METHODS, POPUP_CAMPAIGNS};
use super::customers::{Consent, Traits, push_customer_id, push_padded, tags};
use super::orders::{LOOKBACK, OrderRef, day_plan, money, order_plan, price_on};
use super::rng::{Rand, mix, splitmix, tag, unit};
use super::world::World;
use super::writer_properties;
use crate::error::Result;

/// Rows per Arrow batch handed to the Parquet writer.
const BATCH_ROWS: usize = 64 * 1024;

/// Share of a redelivery day's events that land a second time.
const REDELIVERED_SHARE: f64 = 0.001;

/// Anonymous visits per customer per ordinary day.
const VISITS_PER_CUSTOMER: f64 = 0.012;

/// The event types, all of which the generator emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    ProductViewed,
    ProductAddedToCart,
    ProductRemovedFromCart,
    ProductAddedToFavorites,
    ProductReviewed,
    OrderCreated,
    OrderDelivered,
    OrderRefunded,
    OrderCancelled,
    EmailSent,
    EmailOpened,
    EmailClicked,
    SmsSent,
    SmsClicked,
    PopupFormSubmitted,
    CategoryViewed,
    BrandViewed,
    CheckoutStepViewed,
    BlogViewed,
    SearchPerformed,
    Identified,
}

impl Kind {
    /// Every event type of the data contract.
    #[cfg(test)]
    pub(crate) const ALL: [Kind; 21] = [
        Kind::ProductViewed,
        Kind::ProductAddedToCart,
        Kind::ProductRemovedFromCart,
        Kind::ProductAddedToFavorites,
        Kind::ProductReviewed,
        Kind::OrderCreated,
        Kind::OrderDelivered,
        Kind::OrderRefunded,
        Kind::OrderCancelled,
        Kind::EmailSent,
        Kind::EmailOpened,
        Kind::EmailClicked,
        Kind::SmsSent,
        Kind::SmsClicked,
        Kind::PopupFormSubmitted,
        Kind::CategoryViewed,
        Kind::BrandViewed,
        Kind::CheckoutStepViewed,
        Kind::BlogViewed,
        Kind::SearchPerformed,
        Kind::Identified,
    ];

    /// The `event_type` text.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::ProductViewed => "product_viewed",
            Kind::ProductAddedToCart => "product_added_to_cart",
            Kind::ProductRemovedFromCart => "product_removed_from_cart",
            Kind::ProductAddedToFavorites => "product_added_to_favorites",
            Kind::ProductReviewed => "product_reviewed",
            Kind::OrderCreated => "order_created",
            Kind::OrderDelivered => "order_delivered",
            Kind::OrderRefunded => "order_refunded",
            Kind::OrderCancelled => "order_cancelled",
            Kind::EmailSent => "email_sent",
            Kind::EmailOpened => "email_opened",
            Kind::EmailClicked => "email_clicked",
            Kind::SmsSent => "sms_sent",
            Kind::SmsClicked => "sms_clicked",
            Kind::PopupFormSubmitted => "popup_form_submitted",
            Kind::CategoryViewed => "category_viewed",
            Kind::BrandViewed => "brand_viewed",
            Kind::CheckoutStepViewed => "checkout_step_viewed",
            Kind::BlogViewed => "blog_viewed",
            Kind::SearchPerformed => "search_performed",
            Kind::Identified => "identified",
        }
    }
}

/// Schema of the generated `events/` files: exactly the contract's columns.
pub(crate) fn schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        text("customer_id"),
        text("anonymous_id"),
        Field::new("event_type", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        text("session_id"),
        text("product_id"),
        text("category_id"),
        text("brand_id"),
        text("order_id"),
        Field::new("amount", DataType::Decimal128(18, 2), true),
        Field::new("quantity", DataType::Int32, true),
        text("currency"),
        text("payment_method"),
        text("shipping_country"),
        text("billing_country"),
        Field::new("rating", DataType::Int8, true),
        text("campaign_id"),
        text("checkout_step"),
        text("page_id"),
    ]))
}

/// Which campaign an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Campaign {
    None,
    Email,
    Sms,
    Popup(u8),
}

/// One event before it becomes a row; texts are indices resolved when the row is written.
#[derive(Debug, Clone, Copy)]
struct Ev {
    ts: i64,
    kind: Kind,
    /// `customer_id` is set.
    known: bool,
    /// 0: no `anonymous_id`; `n`: the actor's device `n - 1`.
    device: u8,
    /// 0: no `session_id`; `k + 1`: the actor's visit `k`.
    session: u8,
    product: Option<u32>,
    category: Option<u8>,
    brand: Option<u16>,
    order: Option<OrderRef>,
    amount: Option<i64>,
    quantity: Option<i32>,
    eur: bool,
    payment: Option<u8>,
    ship: Option<u8>,
    bill: Option<u8>,
    rating: Option<i8>,
    campaign: Campaign,
    step: Option<u8>,
    page: Option<u8>,
}

const BLANK: Ev = Ev {
    ts: 0,
    kind: Kind::Identified,
    known: false,
    device: 0,
    session: 0,
    product: None,
    category: None,
    brand: None,
    order: None,
    amount: None,
    quantity: None,
    eur: false,
    payment: None,
    ship: None,
    bill: None,
    rating: None,
    campaign: Campaign::None,
    step: None,
    page: None,
};

/// Session numbers of visits that start from a campaign click (day plans use `0..6`).
const EMAIL_SESSION: u8 = 7;
const SMS_SESSION: u8 = 8;

/// What differs between a day's e-mail campaign and its SMS campaign.
struct Channel {
    /// Mixed into the send's hash, so that the two channels draw apart.
    number: u64,
    /// The hour the send starts at, and over how many minutes it spreads.
    hour: i64,
    spread_minutes: i64,
    /// The share of consenting customers it reaches on a peak day and on another day.
    audience: (f64, f64),
    /// The customer's consent to this channel at an instant.
    consent: fn(&Traits, i64) -> Consent,
    campaign: Campaign,
    sent: Kind,
    clicked: Kind,
    /// The visit number of the visit a click opens (`k` of `campaign_visit`); the click
    /// event itself carries the number after it.
    session: u8,
}

const EMAIL: Channel = Channel {
    number: 1,
    hour: 7,
    spread_minutes: 45,
    audience: (0.9, 0.45),
    consent: Traits::email_consent_at,
    campaign: Campaign::Email,
    sent: Kind::EmailSent,
    clicked: Kind::EmailClicked,
    session: EMAIL_SESSION,
};

const SMS: Channel = Channel {
    number: 2,
    hour: 9,
    spread_minutes: 20,
    audience: (0.8, 0.35),
    consent: Traits::sms_consent_at,
    campaign: Campaign::Sms,
    sent: Kind::SmsSent,
    clicked: Kind::SmsClicked,
    session: SMS_SESSION,
};

/// Arrow builders of one batch of event rows.
struct Columns {
    event_id: StringBuilder,
    customer_id: StringBuilder,
    anonymous_id: StringBuilder,
    event_type: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    session_id: StringBuilder,
    product_id: StringBuilder,
    category_id: StringBuilder,
    brand_id: StringBuilder,
    order_id: StringBuilder,
    amount: Decimal128Builder,
    quantity: Int32Builder,
    currency: StringBuilder,
    payment_method: StringBuilder,
    shipping_country: StringBuilder,
    billing_country: StringBuilder,
    rating: Int8Builder,
    campaign_id: StringBuilder,
    checkout_step: StringBuilder,
    page_id: StringBuilder,
}

impl Columns {
    fn new() -> Result<Self> {
        let text = |bytes_per_row: usize| {
            StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * bytes_per_row)
        };
        Ok(Self {
            event_id: text(18),
            customer_id: text(8),
            anonymous_id: text(12),
            event_type: text(15),
            ts: TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS).with_timezone("UTC"),
            session_id: text(20),
            product_id: text(7),
            category_id: text(12),
            brand_id: text(10),
            order_id: text(1),
            amount: Decimal128Builder::with_capacity(BATCH_ROWS).with_precision_and_scale(18, 2)?,
            quantity: Int32Builder::with_capacity(BATCH_ROWS),
            currency: text(2),
            payment_method: text(1),
            shipping_country: text(1),
            billing_country: text(1),
            rating: Int8Builder::with_capacity(BATCH_ROWS),
            campaign_id: text(2),
            checkout_step: text(1),
            page_id: text(1),
        })
    }

    fn len(&self) -> usize {
        self.event_id.len()
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.customer_id.finish()),
            Arc::new(self.anonymous_id.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.session_id.finish()),
            Arc::new(self.product_id.finish()),
            Arc::new(self.category_id.finish()),
            Arc::new(self.brand_id.finish()),
            Arc::new(self.order_id.finish()),
            Arc::new(self.amount.finish()),
            Arc::new(self.quantity.finish()),
            Arc::new(self.currency.finish()),
            Arc::new(self.payment_method.finish()),
            Arc::new(self.shipping_country.finish()),
            Arc::new(self.billing_country.finish()),
            Arc::new(self.rating.finish()),
            Arc::new(self.campaign_id.finish()),
            Arc::new(self.checkout_step.finish()),
            Arc::new(self.page_id.finish()),
        ];
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}

/// Whose events are being written: a customer or an anonymous visitor, with the texts all of
/// their events share.
struct Actor {
    /// `customer_id`, or empty for a visitor.
    customer_id: String,
    /// Distinct for every actor of the day (customer index, or the number of customers plus
    /// the visit number): what session ids are scrambled from.
    number: u64,
    /// `anonymous_id` per device.
    devices: [String; 2],
}

impl Actor {
    fn new() -> Self {
        Self {
            customer_id: String::with_capacity(16),
            number: 0,
            devices: [String::with_capacity(20), String::with_capacity(20)],
        }
    }
}

/// Writes `anon-` + 12 hex digits of `h`.
fn push_anonymous_id(out: &mut String, h: u64) {
    out.clear();
    out.push_str("anon-");
    push_hex(out, h, 12);
}

/// Appends the low `digits` hex digits of `h`.
fn push_hex(out: &mut String, h: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..digits).rev() {
        out.push(char::from(HEX[((h >> (i * 4)) & 0xF) as usize]));
    }
}

/// The Parquet files of one day.
pub(crate) struct DayFiles {
    /// `part-0000.parquet`.
    pub main: Vec<u8>,
    /// `part-0001-redelivery.parquet`, on about a third of the days.
    pub redelivery: Option<Vec<u8>>,
    /// Rows of `main`.
    pub events: u64,
}

/// Generates the events of `day` (a day number of the period).
pub(crate) fn generate_day(world: &World, day: i32) -> Result<DayFiles> {
    let mut writer = DayWriter::new(world, day)?;
    for index in 0..world.shop.customers {
        writer.customer(index)?;
    }
    writer.visitors()?;
    writer.close()
}

struct DayWriter<'w> {
    world: &'w World,
    day: &'w DayInfo,
    schema: SchemaRef,
    columns: Columns,
    writer: ArrowWriter<Vec<u8>>,
    /// Batches of redelivered rows, on a redelivery day.
    redelivered: Option<Vec<RecordBatch>>,
    /// The last row written, in case a redelivery day picked none.
    last_row: Option<RecordBatch>,
    rows: u64,
    event_id: String,
    event_id_prefix: usize,
    /// Seed-dependent key of the day's session ids.
    session_key: u64,
    actor: Actor,
    scratch: String,
    evs: Vec<Ev>,
}

impl<'w> DayWriter<'w> {
    fn new(world: &'w World, day: i32) -> Result<Self> {
        let info = world.shop.calendar.get(day);
        let schema = schema();
        let writer = ArrowWriter::try_new(
            Vec::with_capacity(1 << 20),
            Arc::clone(&schema),
            Some(writer_properties(true)),
        )?;
        let redelivery_day = unit(mix([world.shop.seed, tag::REDELIVERY, day as u64])) < 1.0 / 3.0;
        let mut event_id = String::with_capacity(24);
        event_id.push('e');
        event_id.push_str(&info.ymd);
        event_id.push('-');
        Ok(Self {
            world,
            day: info,
            schema,
            columns: Columns::new()?,
            writer,
            redelivered: redelivery_day.then(Vec::new),
            last_row: None,
            rows: 0,
            event_id_prefix: event_id.len(),
            event_id,
            session_key: mix([world.shop.seed, tag::SESSION, day as u64]),
            actor: Actor::new(),
            scratch: String::with_capacity(32),
            evs: Vec::with_capacity(256),
        })
    }

    fn seed(&self) -> u64 {
        self.world.shop.seed
    }

    fn day_start(&self) -> i64 {
        self.day.start_us()
    }

    fn day_end(&self) -> i64 {
        self.day.start_us() + DAY_US - 1
    }

    /// A start time for a visit, following the hours people shop; visits that end with an
    /// order start before 22:00 UTC so that they end on the same day.
    fn visit_start(&self, rng: &mut Rand, ordering: bool) -> i64 {
        let mut hour = rng.weighted(&self.world.shop.hours) as i64;
        if ordering && hour >= 22 {
            hour -= 4;
        }
        self.day_start() + hour * HOUR_US + rng.below(HOUR_US as u64) as i64
    }

    /// All events of customer `index` on this day.
    fn customer(&mut self, index: u64) -> Result<()> {
        let world = self.world;
        let t = &world.traits[index as usize];
        self.evs.clear();
        self.follow_up_orders(index, t);
        if self.day.day >= t.created_day {
            self.campaigns(index, t);
        }
        let plan = day_plan(&world.shop, index, t, self.day);
        for k in 0..plan.sessions {
            let order = (plan.orders & (1 << k) != 0).then_some(OrderRef {
                day: self.day.day,
                slot: k,
            });
            self.customer_visit(index, t, k, order);
        }
        if self.evs.is_empty() {
            return Ok(());
        }
        self.evs.sort_by_key(|e| e.ts);
        let actor = &mut self.actor;
        actor.customer_id.clear();
        push_customer_id(&mut actor.customer_id, index, world.shop.width);
        actor.number = index;
        for d in 0..usize::from(t.devices) {
            push_anonymous_id(
                &mut actor.devices[d],
                mix([world.shop.seed, tag::DEVICE, index, d as u64]),
            );
        }
        self.flush_actor()
    }

    /// Deliveries, cancellations, refunds and reviews due today for earlier orders.
    fn follow_up_orders(&mut self, index: u64, t: &Traits) {
        let world = self.world;
        let shop = &world.shop;
        let today = self.day.day;
        for scheduled in world.schedule.of(index) {
            let o = scheduled.order;
            if o.day >= today {
                break;
            }
            if o.day < today - LOOKBACK || scheduled.follow_ups & (1 << (today - o.day - 1)) == 0 {
                continue;
            }
            let plan = order_plan(shop, index, t, o);
            let base = Ev {
                known: true,
                order: Some(o),
                eur: plan.eur,
                ..BLANK
            };
            if let Some(c) = plan.cancelled.filter(|c| c.day == today) {
                self.evs.push(Ev {
                    ts: c.ts,
                    kind: Kind::OrderCancelled,
                    amount: Some(plan.amount),
                    ..base
                });
            }
            if let Some(d) = plan.delivered.filter(|d| d.day == today) {
                self.evs.push(Ev {
                    ts: d.ts,
                    kind: Kind::OrderDelivered,
                    ship: Some(plan.ship),
                    quantity: Some(plan.items),
                    ..base
                });
            }
            if let Some((r, amount, product)) = plan.refunded.filter(|r| r.0.day == today) {
                self.evs.push(Ev {
                    ts: r.ts,
                    kind: Kind::OrderRefunded,
                    amount: Some(amount),
                    payment: Some(plan.payment),
                    product,
                    category: product.map(|p| shop.catalog.category_of(p)),
                    brand: product.map(|p| shop.catalog.brand_of(p)),
                    ..base
                });
            }
            if let Some((r, product, stars)) = plan.reviewed.filter(|r| r.0.day == today) {
                self.evs.push(Ev {
                    ts: r.ts,
                    kind: Kind::ProductReviewed,
                    device: 1,
                    product: Some(product),
                    category: Some(shop.catalog.category_of(product)),
                    brand: Some(shop.catalog.brand_of(product)),
                    rating: Some(stars),
                    ..base
                });
            }
        }
    }

    /// Today's e-mail and SMS campaigns, if the customer may get them, with opens and clicks.
    fn campaigns(&mut self, index: u64, t: &Traits) {
        let day = self.day;
        let end = self.day_end();
        if day.email.is_some()
            && let Some((sent, mut rng, base)) = self.campaign_send(index, t, &EMAIL)
        {
            let boost = if day.peak { 1.3 } else { 1.0 };
            if rng.chance(f64::from(t.open_p) * boost) {
                let opened = sent + ((60.0 + rng.exponential(3.0 * 3600.0)) * 1e6) as i64;
                if opened <= end {
                    self.evs.push(Ev {
                        ts: opened,
                        kind: Kind::EmailOpened,
                        ..base
                    });
                    if rng.chance(f64::from(t.click_p)) {
                        let clicked = (opened + rng.range(5, 300) * 1_000_000).min(end);
                        self.campaign_click(index, t, base, &EMAIL, clicked);
                    }
                }
            }
        }
        if day.sms.is_some()
            && t.has_phone
            && let Some((sent, mut rng, base)) = self.campaign_send(index, t, &SMS)
            && rng.chance(f64::from(t.sms_click_p))
        {
            let clicked = (sent + ((30.0 + rng.exponential(1800.0)) * 1e6) as i64).min(end);
            self.campaign_click(index, t, base, &SMS, clicked);
        }
    }

    /// Today's send of `channel` to the customer, when they are in its audience, may get it
    /// and are not blacklisted: pushes the sent event and gives its instant, the draws that
    /// follow from it and the base of the campaign's later events.
    fn campaign_send(
        &mut self,
        index: u64,
        t: &Traits,
        channel: &Channel,
    ) -> Option<(i64, Rand, Ev)> {
        let day = self.day;
        let h = mix([
            self.seed(),
            tag::CAMPAIGN,
            index,
            day.day as u64,
            channel.number,
        ]);
        let sent = self.day_start()
            + channel.hour * HOUR_US
            + (h >> 20) as i64 % (channel.spread_minutes * 60_000_000);
        let audience = if day.peak {
            channel.audience.0
        } else {
            channel.audience.1
        };
        if unit(h) < audience
            && sent > t.created_at
            && (channel.consent)(t, sent) == Consent::Granted
            && t.tags_at(sent) & tags::BLACKLIST == 0
        {
            let base = Ev {
                known: true,
                campaign: channel.campaign,
                ..BLANK
            };
            self.evs.push(Ev {
                ts: sent,
                kind: channel.sent,
                ..base
            });
            Some((sent, Rand::new(h), base))
        } else {
            None
        }
    }

    /// A click on `channel`'s message at `clicked`, and the visit it opens.
    fn campaign_click(
        &mut self,
        index: u64,
        t: &Traits,
        base: Ev,
        channel: &Channel,
        clicked: i64,
    ) {
        self.evs.push(Ev {
            ts: clicked,
            kind: channel.clicked,
            device: 1,
            session: channel.session + 1,
            ..base
        });
        self.campaign_visit(index, t, channel.session, clicked);
    }

    /// A short visit after a campaign click: the link identifies the customer.
    fn campaign_visit(&mut self, index: u64, t: &Traits, k: u8, start: i64) {
        let mut rng = Rand::new(mix([
            self.seed(),
            tag::SESSION,
            index,
            self.day.day as u64,
            u64::from(k),
        ]));
        let mut trail = Trail::new(self.day, start, true, 1, k, u32::MAX);
        let views = 1 + rng.geometric(1.5);
        self.browse(&mut trail, &mut rng, t, views, true);
        self.evs.extend_from_slice(&trail.evs);
    }

    /// Visit `k` of the day plan, ending with `order` when it has one.
    fn customer_visit(&mut self, index: u64, t: &Traits, k: u8, order: Option<OrderRef>) {
        let world = self.world;
        let shop = &world.shop;
        let day = self.day;
        let mut rng = Rand::new(mix([
            shop.seed,
            tag::SESSION,
            index,
            day.day as u64,
            u64::from(k),
        ]));
        let registering = !t.guest && day.day == t.created_day && k == 0;
        let mut start = self.visit_start(&mut rng, order.is_some());
        if registering {
            // Signing up is what `registered_at` records: the visit starts a little before.
            start = (t.created_at - rng.range(30, 300) * 1_000_000).max(self.day_start());
        }
        let device = 1 + rng.below(u64::from(t.devices)) as u8;
        let before_account = !registering && start < t.created_at;
        // Logged in from the start, after a few pages (logging in, signing up), or not at all.
        let (known, identify_at) = if before_account || t.guest {
            (false, u32::MAX)
        } else if registering || rng.chance(0.15) {
            (false, 1 + rng.below(3) as u32)
        } else {
            (true, u32::MAX)
        };
        let mut trail = Trail::new(day, start, known, device, k, identify_at);
        let e = trail.step(&mut rng, 5.0);
        match rng.weighted(&[30, 15, 7, 6, 42]) {
            0 => {
                let category = t.cats[rng.below(3) as usize];
                trail.emit(Ev {
                    ts: e,
                    kind: Kind::CategoryViewed,
                    category: Some(category),
                    ..BLANK
                });
            }
            1 => trail.emit(Ev {
                ts: e,
                kind: Kind::SearchPerformed,
                ..BLANK
            }),
            2 => {
                let category = t.cats[rng.below(3) as usize];
                let brand = shop.catalog.brand_of_category(category, &mut rng);
                trail.emit(Ev {
                    ts: e,
                    kind: Kind::BrandViewed,
                    brand: Some(brand),
                    ..BLANK
                });
            }
            3 => {
                let page = rng.below(BLOG_PAGES.len() as u64) as u8;
                trail.emit(Ev {
                    ts: e,
                    kind: Kind::BlogViewed,
                    page: Some(page),
                    ..BLANK
                });
            }
            _ => {}
        }
        let views = 1 + rng.geometric(f64::from(t.views) - 1.0);
        let cart_before = self.browse(&mut trail, &mut rng, t, views, !t.guest);

        if t.guest && !trail.known && rng.chance(0.06) {
            // A guest leaves their e-mail in a popup form.
            let ts = trail.step(&mut rng, 20.0);
            let popup = rng.below(POPUP_CAMPAIGNS.len() as u64) as u8;
            trail.known = true;
            trail.emit(Ev {
                ts,
                kind: Kind::PopupFormSubmitted,
                campaign: Campaign::Popup(popup),
                ..BLANK
            });
            trail.identify(ts);
        }

        if let Some(o) = order {
            let plan = order_plan(shop, index, t, o);
            for &(product, quantity) in plan.lines() {
                let price = money(price_on(shop, product, day), t.eur);
                let ts = trail.step(&mut rng, 40.0);
                trail.emit(product_event(
                    shop,
                    Kind::ProductViewed,
                    ts,
                    product,
                    price,
                    None,
                    t.eur,
                ));
                let ts = trail.step(&mut rng, 15.0);
                trail.emit(product_event(
                    shop,
                    Kind::ProductAddedToCart,
                    ts,
                    product,
                    price * i64::from(quantity),
                    Some(quantity),
                    t.eur,
                ));
            }
            if let Some(product) = cart_before.filter(|_| rng.chance(0.5)) {
                trail.remove_from_cart(&mut rng, shop, day, product, t.eur);
            }
            if !trail.known {
                // Logging in, or giving an e-mail address at guest checkout.
                let ts = trail.step(&mut rng, 10.0);
                trail.identify(ts);
            }
            trail.checkout(&mut rng, CHECKOUT_STEPS.len() as u8);
            let ts = trail.step(&mut rng, 20.0);
            trail.emit(Ev {
                ts,
                kind: Kind::OrderCreated,
                order: Some(o),
                amount: Some(plan.amount),
                quantity: Some(plan.items),
                eur: plan.eur,
                payment: Some(plan.payment),
                ship: Some(plan.ship),
                bill: Some(plan.bill),
                ..BLANK
            });
        } else if let Some(product) = cart_before {
            // The cart is left behind, sometimes after a look at the checkout.
            if rng.chance(0.15) {
                trail.remove_from_cart(&mut rng, shop, day, product, t.eur);
            } else if rng.chance(0.25) {
                let steps = 1 + rng.weighted(&[50, 35, 15]) as u8;
                trail.checkout(&mut rng, steps);
            }
        }
        self.evs.extend_from_slice(&trail.evs);
    }

    /// `views` product pages with the odd cart addition, favourite and category, brand or
    /// search page in between; returns a product left in the cart, if any.
    fn browse(
        &self,
        trail: &mut Trail,
        rng: &mut Rand,
        t: &Traits,
        views: u32,
        can_favourite: bool,
    ) -> Option<u32> {
        let world = self.world;
        let shop = &world.shop;
        let mut cart = None;
        for _ in 0..views {
            let product = shop.catalog.pick_product(rng, &t.cats);
            let price = money(price_on(shop, product, self.day), t.eur);
            let ts = trail.step(rng, 40.0);
            trail.emit(product_event(
                shop,
                Kind::ProductViewed,
                ts,
                product,
                price,
                None,
                t.eur,
            ));
            if rng.chance(f64::from(t.cart_p)) {
                let quantity = if rng.chance(0.9) { 1 } else { 2 };
                let ts = trail.step(rng, 15.0);
                trail.emit(product_event(
                    shop,
                    Kind::ProductAddedToCart,
                    ts,
                    product,
                    price * i64::from(quantity),
                    Some(quantity),
                    t.eur,
                ));
                cart = Some(product);
            }
            if can_favourite && trail.known && rng.chance(f64::from(t.fav_p)) {
                let ts = trail.step(rng, 5.0);
                trail.emit(product_event(
                    shop,
                    Kind::ProductAddedToFavorites,
                    ts,
                    product,
                    price,
                    None,
                    t.eur,
                ));
            }
            if rng.chance(0.12) {
                let ts = trail.step(rng, 20.0);
                let category = shop.catalog.category_of(product);
                trail.emit(match rng.below(3) {
                    0 => Ev {
                        ts,
                        kind: Kind::CategoryViewed,
                        category: Some(category),
                        ..BLANK
                    },
                    1 => Ev {
                        ts,
                        kind: Kind::BrandViewed,
                        brand: Some(shop.catalog.brand_of(product)),
                        ..BLANK
                    },
                    _ => Ev {
                        ts,
                        kind: Kind::SearchPerformed,
                        ..BLANK
                    },
                });
            }
        }
        cart
    }

    /// Visits of people who are not (yet) customers: browsing, a few carts, popup forms.
    fn visitors(&mut self) -> Result<()> {
        let world = self.world;
        let shop = &world.shop;
        let seed = shop.seed;
        let day = self.day;
        let mut rng = Rand::new(mix([seed, tag::VISITORS, day.day as u64]));
        let expected = shop.customers as f64 * VISITS_PER_CUSTOMER * day.activity;
        let visits = expected.floor() as u64 + u64::from(rng.chance(expected.fract()));
        let pool = (shop.customers / 2).max(1);
        let popular: [u8; 3] = [3, 0, 2];
        for visit in 0..visits {
            let mut rng = Rand::new(mix([seed, tag::VISITORS, day.day as u64, visit]));
            let visitor = rng.below(pool);
            self.evs.clear();
            let start = self.visit_start(&mut rng, false);
            let mut trail = Trail::new(day, start, false, 1, 0, u32::MAX);
            let ts = trail.step(&mut rng, 5.0);
            match rng.weighted(&[30, 20, 10, 40]) {
                0 => {
                    let category = shop.catalog.random_category(&mut rng);
                    trail.emit(Ev {
                        ts,
                        kind: Kind::CategoryViewed,
                        category: Some(category),
                        ..BLANK
                    });
                }
                1 => trail.emit(Ev {
                    ts,
                    kind: Kind::SearchPerformed,
                    ..BLANK
                }),
                2 => {
                    let page = rng.below(BLOG_PAGES.len() as u64) as u8;
                    trail.emit(Ev {
                        ts,
                        kind: Kind::BlogViewed,
                        page: Some(page),
                        ..BLANK
                    });
                }
                _ => {}
            }
            let views = 1 + rng.geometric(2.0);
            for _ in 0..views {
                let product = shop.catalog.pick_product(&mut rng, &popular);
                let price = price_on(shop, product, day);
                let ts = trail.step(&mut rng, 35.0);
                trail.emit(product_event(
                    shop,
                    Kind::ProductViewed,
                    ts,
                    product,
                    price,
                    None,
                    false,
                ));
                if rng.chance(0.04) {
                    let ts = trail.step(&mut rng, 15.0);
                    trail.emit(product_event(
                        shop,
                        Kind::ProductAddedToCart,
                        ts,
                        product,
                        price,
                        Some(1),
                        false,
                    ));
                    if rng.chance(0.2) {
                        trail.checkout(&mut rng, 1);
                    }
                }
            }
            if rng.chance(0.03) {
                let ts = trail.step(&mut rng, 20.0);
                let popup = rng.below(POPUP_CAMPAIGNS.len() as u64) as u8;
                trail.emit(Ev {
                    ts,
                    kind: Kind::PopupFormSubmitted,
                    campaign: Campaign::Popup(popup),
                    ..BLANK
                });
            }
            self.evs.extend_from_slice(&trail.evs);
            let actor = &mut self.actor;
            actor.customer_id.clear();
            actor.number = shop.customers + visit;
            push_anonymous_id(&mut actor.devices[0], mix([seed, tag::VISITOR, visitor]));
            self.flush_actor()?;
        }
        Ok(())
    }

    /// Appends the buffered events of the current actor as rows.
    fn flush_actor(&mut self) -> Result<()> {
        let world = self.world;
        let shop = &world.shop;
        let catalog = &shop.catalog;
        let day = self.day;
        for i in 0..self.evs.len() {
            let ev = self.evs[i];
            let c = &mut self.columns;
            self.event_id.truncate(self.event_id_prefix);
            push_padded(&mut self.event_id, self.rows + 1, 8);
            self.rows += 1;
            c.event_id.append_value(&self.event_id);
            if ev.known && !self.actor.customer_id.is_empty() {
                c.customer_id.append_value(&self.actor.customer_id);
            } else {
                c.customer_id.append_null();
            }
            if ev.device == 0 {
                c.anonymous_id.append_null();
            } else {
                c.anonymous_id
                    .append_value(&self.actor.devices[usize::from(ev.device - 1)]);
            }
            c.event_type.append_value(ev.kind.as_str());
            c.ts.append_value(ev.ts);
            if ev.session == 0 {
                c.session_id.append_null();
            } else {
                // Opaque (an anonymous visit must not give away whose it is) yet unique in the
                // day: `splitmix` is a bijection, and (actor, visit) pairs are distinct.
                let s = &mut self.scratch;
                s.clear();
                s.push('s');
                s.push_str(&day.ymd);
                s.push('-');
                let key = self.session_key ^ (self.actor.number << 4 | u64::from(ev.session - 1));
                push_hex(s, splitmix(key), 16);
                c.session_id.append_value(s.as_str());
            }
            c.product_id
                .append_option(ev.product.map(|p| catalog.product_id(p)));
            c.category_id
                .append_option(ev.category.map(|x| catalog.category_id(x)));
            c.brand_id
                .append_option(ev.brand.map(|b| catalog.brand_id(b)));
            match ev.order {
                Some(o) => {
                    let s = &mut self.scratch;
                    s.clear();
                    s.push('o');
                    s.push_str(&shop.calendar.get(o.day).ymd);
                    s.push('-');
                    s.push_str(&self.actor.customer_id);
                    s.push('-');
                    s.push(char::from(b'0' + o.slot));
                    c.order_id.append_value(s.as_str());
                }
                None => c.order_id.append_null(),
            }
            c.amount.append_option(ev.amount.map(i128::from));
            c.quantity.append_option(ev.quantity);
            c.currency
                .append_option(ev.amount.map(|_| if ev.eur { "EUR" } else { "TRY" }));
            c.payment_method
                .append_option(ev.payment.map(|p| PAYMENT_METHODS[usize::from(p)]));
            c.shipping_country
                .append_option(ev.ship.map(|x| COUNTRIES[usize::from(x)]));
            c.billing_country
                .append_option(ev.bill.map(|x| COUNTRIES[usize::from(x)]));
            c.rating.append_option(ev.rating);
            c.campaign_id.append_option(match ev.campaign {
                Campaign::None => None,
                Campaign::Email => day.email.as_deref(),
                Campaign::Sms => day.sms.as_deref(),
                Campaign::Popup(i) => Some(POPUP_CAMPAIGNS[usize::from(i)]),
            });
            c.checkout_step
                .append_option(ev.step.map(|s| CHECKOUT_STEPS[usize::from(s)]));
            c.page_id
                .append_option(ev.page.map(|p| BLOG_PAGES[usize::from(p)]));
            if c.len() >= BATCH_ROWS {
                self.write_batch()?;
            }
        }
        self.evs.clear();
        Ok(())
    }

    /// Hands the buffered rows to the Parquet writer, keeping the redelivered ones aside.
    fn write_batch(&mut self) -> Result<()> {
        if self.columns.len() == 0 {
            return Ok(());
        }
        let batch = self.columns.finish(&self.schema)?;
        if let Some(redelivered) = &mut self.redelivered {
            let first_row = self.rows - batch.num_rows() as u64;
            let (seed, day) = (self.world.shop.seed, self.day.day as u64);
            let mask: BooleanArray = (0..batch.num_rows() as u64)
                .map(|i| {
                    Some(unit(mix([seed, tag::REDELIVERY, day, first_row + i])) < REDELIVERED_SHARE)
                })
                .collect();
            let picked = filter_record_batch(&batch, &mask)?;
            if picked.num_rows() > 0 {
                redelivered.push(picked);
            }
            self.last_row = Some(batch.slice(batch.num_rows() - 1, 1));
        }
        self.writer.write(&batch)?;
        Ok(())
    }

    fn close(mut self) -> Result<DayFiles> {
        self.write_batch()?;
        let main = self.writer.into_inner()?;
        let redelivery = match self.redelivered {
            Some(mut batches) => {
                if batches.is_empty() {
                    batches.extend(self.last_row);
                }
                if batches.is_empty() {
                    None
                } else {
                    let mut writer = ArrowWriter::try_new(
                        Vec::new(),
                        Arc::clone(&self.schema),
                        Some(writer_properties(true)),
                    )?;
                    for batch in &batches {
                        writer.write(batch)?;
                    }
                    Some(writer.into_inner()?)
                }
            }
            None => None,
        };
        Ok(DayFiles {
            main,
            redelivery,
            events: self.rows,
        })
    }
}

/// An event about a product (view, cart, favourite) with its line price.
fn product_event(
    shop: &super::world::Shop,
    kind: Kind,
    ts: i64,
    product: u32,
    amount: i64,
    quantity: Option<i32>,
    eur: bool,
) -> Ev {
    Ev {
        ts,
        kind,
        product: Some(product),
        category: Some(shop.catalog.category_of(product)),
        brand: Some(shop.catalog.brand_of(product)),
        amount: Some(amount),
        quantity,
        eur,
        ..BLANK
    }
}

/// The events of one visit as they happen: a clock that moves on with every page, and who is
/// logged in.
struct Trail {
    evs: Vec<Ev>,
    known: bool,
    device: u8,
    session: u8,
    /// Log in (emit `identified`) before the event with this number.
    identify_at: u32,
    emitted: u32,
    t: i64,
    end: i64,
}

impl Trail {
    fn new(day: &DayInfo, start: i64, known: bool, device: u8, k: u8, identify_at: u32) -> Self {
        Self {
            evs: Vec::with_capacity(32),
            known,
            device,
            session: k + 1,
            identify_at,
            emitted: 0,
            t: start,
            end: day.start_us() + DAY_US - 1,
        }
    }

    /// Moves the clock on by a few seconds to minutes (mean `mean_s` seconds); never past the
    /// end of the day, so every event stays in its partition.
    /// The first `steps` checkout pages, one after another.
    fn checkout(&mut self, rng: &mut Rand, steps: u8) {
        for step in 0..steps {
            let ts = self.step(rng, 30.0);
            self.emit(Ev {
                ts,
                kind: Kind::CheckoutStepViewed,
                step: Some(step),
                ..BLANK
            });
        }
    }

    /// `product` taken out of the cart, a little later.
    fn remove_from_cart(
        &mut self,
        rng: &mut Rand,
        shop: &super::world::Shop,
        day: &DayInfo,
        product: u32,
        eur: bool,
    ) {
        let ts = self.step(rng, 20.0);
        let price = money(price_on(shop, product, day), eur);
        self.emit(product_event(
            shop,
            Kind::ProductRemovedFromCart,
            ts,
            product,
            price,
            Some(1),
            eur,
        ));
    }

    fn step(&mut self, rng: &mut Rand, mean_s: f64) -> i64 {
        self.t = (self.t + ((2.0 + rng.exponential(mean_s)) * 1e6) as i64).min(self.end);
        self.t
    }

    fn emit(&mut self, mut ev: Ev) {
        if self.emitted == self.identify_at && !self.known {
            // Logged in just before this page (the clock moved on by seconds since the last).
            self.identify(ev.ts - 1);
        }
        ev.known = self.known;
        ev.device = self.device;
        ev.session = self.session;
        self.evs.push(ev);
        self.emitted += 1;
    }

    /// The visitor logs in (or signs up): links the device's `anonymous_id` to the customer.
    fn identify(&mut self, ts: i64) {
        self.known = true;
        self.evs.push(Ev {
            ts,
            kind: Kind::Identified,
            known: true,
            device: self.device,
            session: self.session,
            ..BLANK
        });
        self.emitted += 1;
    }
}
