//! Who the customers are: behavioural traits (drawn once per customer and shared by every
//! day) and the profile rows of `customers/`.
//!
//! A customer's traits are a pure function of (seed, customer index, period); that is what lets
//! every day be generated independently of the others. The profile text (names, e-mail, phone,
//! city) comes from a second stream of the same customer, drawn only when the `customers/`
//! files are written, so events never pay for it.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Builder, Decimal128Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::calendar::{DAY_US, HOUR_US};
use super::catalog::{
    ABROAD_CITIES, ABROAD_WEIGHTS, CITIES, COMPANY_DOMAINS, Catalog, FEMALE_NAMES, LAST_NAMES,
    MAIL_DOMAINS, MALE_NAMES, MOBILE_PREFIXES, UNIVERSITY_DOMAINS, ascii_fold,
};
use super::orders::spent_before;
use super::rng::{Rand, mix, tag};
use super::world::World;
use crate::error::Result;

/// The generated period, as day numbers and instants.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Period {
    /// First day (day number).
    pub first: i32,
    /// Last day (day number), inclusive.
    pub last: i32,
    /// Start of the day after `last`: "now" for the profiles.
    pub end_us: i64,
}

impl Period {
    /// Number of days.
    pub(crate) fn days(&self) -> i32 {
        self.last - self.first + 1
    }

    /// Start of the first day.
    pub(crate) fn start_us(&self) -> i64 {
        i64::from(self.first) * DAY_US
    }
}

/// How a customer behaves overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Archetype {
    /// Registered long ago, hardly ever comes back.
    Dormant,
    /// Browses, carts, favourites, never buys.
    Browser,
    /// Buys once (on a day fixed in advance), browses otherwise.
    OneTimer,
    /// Buys now and then.
    Regular,
    /// Buys a lot, often several times a month.
    Heavy,
}

/// How a customer feels about the shop after buying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mood {
    Normal,
    /// Reviews with one or two stars, refunds more.
    Unhappy,
    /// Leaves five-star reviews on most orders.
    Fan,
}

/// A marketing consent value; `Null` when the shop never asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Consent {
    Null,
    Granted,
    Denied,
    Pending,
}

impl Consent {
    fn as_str(self) -> Option<&'static str> {
        match self {
            Consent::Null => None,
            Consent::Granted => Some("granted"),
            Consent::Denied => Some("denied"),
            Consent::Pending => Some("pending"),
        }
    }

    /// granted ~45 %, denied ~30 %, pending ~15 %, null ~10 %.
    fn draw(rng: &mut Rand) -> Self {
        match rng.weighted(&[45, 30, 15, 10]) {
            0 => Consent::Granted,
            1 => Consent::Denied,
            2 => Consent::Pending,
            _ => Consent::Null,
        }
    }
}

/// B2B (wholesale account) application status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum B2b {
    Null,
    None,
    Pending,
    Approved,
    Rejected,
}

impl B2b {
    fn as_str(self) -> Option<&'static str> {
        match self {
            B2b::Null => None,
            B2b::None => Some("none"),
            B2b::Pending => Some("pending"),
            B2b::Approved => Some("approved"),
            B2b::Rejected => Some("rejected"),
        }
    }
}

/// Tag bits (`tags` column).
pub(crate) mod tags {
    pub(crate) const VIP: u8 = 1;
    pub(crate) const BLACKLIST: u8 = 2;
    pub(crate) const WHOLESALE: u8 = 4;
    pub(crate) const STUDENT: u8 = 8;
    /// The tag texts, in the order they are listed.
    pub(crate) const NAMES: [(u8, &str); 4] = [
        (VIP, "VIP"),
        (BLACKLIST, "Kara Liste"),
        (WHOLESALE, "Toptancı"),
        (STUDENT, "Öğrenci"),
    ];
}

/// What a later profile row changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// New marketing consents.
    Consent { email: Consent, sms: Consent },
    /// Tags added (VIP, Kara Liste).
    Tags(u8),
    /// B2B application decided.
    B2b(B2b),
    /// Account switched to passive.
    Passive,
    /// Password changed.
    Password,
}

/// A change of profile inside the period (the `part-0001-updates` row).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Update {
    /// When the row was written.
    pub at: i64,
    pub change: Change,
}

/// Everything about a customer that events depend on.
#[derive(Debug, Clone)]
pub(crate) struct Traits {
    pub archetype: Archetype,
    pub mood: Mood,
    /// No account: checked out as a guest or filled a popup form.
    pub guest: bool,
    /// E-mail at a university (`…edu.tr`).
    pub edu: bool,
    pub has_phone: bool,
    /// Buys in bulk (B2B customers, the Toptancı group).
    pub wholesale: bool,
    /// Account switched off (never logs in after the period starts).
    pub passive: bool,
    /// Expected visits per day on an ordinary day.
    pub rate: f32,
    /// Chance that a visit ends with an order.
    pub order_p: f32,
    /// Chance of adding a viewed product to the cart.
    pub cart_p: f32,
    /// Chance of adding a viewed product to favourites.
    pub fav_p: f32,
    /// Mean number of products viewed per visit.
    pub views: f32,
    /// Chance of opening a marketing e-mail (0: never opens).
    pub open_p: f32,
    /// Chance of clicking an opened e-mail.
    pub click_p: f32,
    /// Chance of clicking a marketing SMS.
    pub sms_click_p: f32,
    /// Favourite categories.
    pub cats: [u8; 3],
    /// Browsers/devices used (1 or 2), each with its own `anonymous_id`.
    pub devices: u8,
    /// Index into `catalog::COUNTRIES`.
    pub country: u8,
    /// Pays in euro.
    pub eur: bool,
    /// Usual payment method (index into `catalog::PAYMENT_METHODS`).
    pub payment: u8,
    /// First seen: registration, or the first guest checkout.
    pub created_at: i64,
    pub created_day: i32,
    /// Stops buying (and mostly visiting) after this day; `i32::MAX` for never.
    pub churn_day: i32,
    /// The one order of a one-timer; `i32::MIN` for none.
    pub order_day: i32,
    /// Consents of the first profile row.
    pub email: Consent,
    pub sms: Consent,
    /// Tags of the first profile row.
    pub tags: u8,
    pub b2b: B2b,
    /// 0: null, 1: Perakende, 2: Toptancı.
    pub group: u8,
    /// Spent before the period (kuruş), part of `total_order_amount`.
    pub hist_amount: i64,
    pub update: Option<Update>,
}

impl Traits {
    /// Draws the traits of customer `index`.
    pub(crate) fn derive(seed: u64, index: u64, period: &Period, catalog: &Catalog) -> Self {
        let mut rng = Rand::new(mix([seed, tag::TRAITS, index]));
        let guest = rng.chance(0.15);
        let b2b = match rng.weighted(&[30, 875, 40, 30, 25]) {
            0 => B2b::Null,
            1 => B2b::None,
            2 => B2b::Pending,
            3 => B2b::Approved,
            _ => B2b::Rejected,
        };
        let b2b = if guest { B2b::Null } else { b2b };
        let group = if b2b == B2b::Approved {
            2
        } else {
            match rng.weighted(&[35, 63, 2]) {
                0 => 0,
                1 => 1,
                _ => 2,
            }
        };
        let wholesale = group == 2;
        let archetype = if wholesale {
            if rng.chance(0.3) {
                Archetype::Heavy
            } else {
                Archetype::Regular
            }
        } else if guest {
            [Archetype::OneTimer, Archetype::Browser, Archetype::Dormant]
                [rng.weighted(&[45, 25, 30])]
        } else {
            [
                Archetype::Dormant,
                Archetype::Browser,
                Archetype::OneTimer,
                Archetype::Regular,
                Archetype::Heavy,
            ][rng.weighted(&[24, 36, 17, 17, 6])]
        };
        let spread = (1.4 * (rng.unit() - 0.5)).exp() as f32;
        let (rate, order_p, cart_p, views) = match archetype {
            Archetype::Dormant => (0.003, 0.03, 0.05, 3.0),
            Archetype::Browser => (0.036, 0.0, 0.06, 5.0),
            Archetype::OneTimer => (0.027, 0.0, 0.08, 3.5),
            Archetype::Regular => (0.08, 0.09, 0.10, 4.0),
            Archetype::Heavy => (0.32, 0.2, 0.14, 5.0),
        };
        let mood = match rng.weighted(&[82, 8, 10]) {
            0 => Mood::Normal,
            1 => Mood::Unhappy,
            _ => Mood::Fan,
        };
        // One in seven keeps a wish list: favourites a lot (often without ever buying).
        let fav_p = if rng.chance(0.15) { 0.2 } else { 0.025 };
        let open_p = if rng.chance(0.35) {
            0.0
        } else {
            0.15 + 0.55 * rng.unit()
        };
        let click_p = 0.1 + 0.25 * rng.unit();
        let sms_click_p = 0.02 + 0.1 * rng.unit();
        let cats = [
            catalog.random_category(&mut rng),
            catalog.random_category(&mut rng),
            catalog.random_category(&mut rng),
        ];
        let devices = if rng.chance(0.3) { 2 } else { 1 };
        let country = if rng.chance(0.03) {
            1 + rng.weighted(ABROAD_WEIGHTS) as u8
        } else {
            0
        };
        let eur = matches!(country, 1 | 2) && rng.chance(0.6);
        let payment = match rng.weighted(&[70, 12, 18]) {
            2 if country != 0 => 0,
            p => p as u8,
        };
        let edu = !wholesale && rng.chance(0.05);
        let has_phone = rng.chance(0.9);

        // First seen over the last three years (or the whole period when longer), more
        // recently more often: the shop grows.
        let span = (3 * 365).max(period.days() + 30) as f64 * DAY_US as f64;
        let created_at = period.end_us - 1 - (span * rng.unit().powf(1.1)) as i64;
        let created_day = created_at.div_euclid(DAY_US) as i32;
        let passive = !guest && rng.chance(0.07);

        let churn_day =
            if matches!(archetype, Archetype::Regular | Archetype::Heavy) && rng.chance(0.25) {
                period.first + (f64::from(period.days()) * (0.15 + 0.7 * rng.unit())) as i32
            } else {
                i32::MAX
            };
        let order_day = if archetype != Archetype::OneTimer {
            i32::MIN
        } else if guest {
            created_day
        } else if rng.chance(0.5) {
            created_day + rng.exponential(20.0) as i32
        } else {
            created_day + rng.below((period.last - created_day).max(0) as u64 + 1) as i32
        };

        let email = Consent::draw(&mut rng);
        let sms = if rng.chance(0.6) {
            email
        } else {
            Consent::draw(&mut rng)
        };

        let mut tag_bits = 0;
        let vip_p = match archetype {
            Archetype::Heavy => 0.6,
            Archetype::Regular => 0.08,
            _ => 0.005,
        };
        if rng.chance(vip_p) {
            tag_bits |= tags::VIP;
        }
        if rng.chance(if mood == Mood::Unhappy { 0.15 } else { 0.012 }) {
            tag_bits |= tags::BLACKLIST;
        }
        if b2b == B2b::Approved {
            tag_bits |= tags::WHOLESALE;
        }
        if edu && rng.chance(0.6) {
            tag_bits |= tags::STUDENT;
        }

        // What they spent before the period.
        let days_before = (period.first - created_day).max(0) as f64;
        let prior_orders = match archetype {
            Archetype::Heavy | Archetype::Regular => {
                (f64::from(rate * order_p) * days_before.min(730.0) * 0.6 * (0.5 + rng.unit()))
                    as i64
            }
            Archetype::OneTimer => i64::from(order_day < period.first && order_day != i32::MIN),
            Archetype::Dormant => {
                if rng.chance(0.4) && days_before > 0.0 {
                    1 + rng.below(3) as i64
                } else {
                    0
                }
            }
            Archetype::Browser => 0,
        };
        let mut hist_amount = 0;
        for _ in 0..prior_orders.min(200) {
            // 150 TL and up, in kuruş.
            hist_amount += 15_000 + (rng.exponential(900.0) * 100.0) as i64;
        }

        let mut traits = Self {
            archetype,
            mood,
            guest,
            edu,
            has_phone,
            wholesale,
            passive,
            rate: rate * spread,
            order_p,
            cart_p,
            fav_p,
            views,
            open_p: open_p as f32,
            click_p: click_p as f32,
            sms_click_p: sms_click_p as f32,
            cats,
            devices,
            country,
            eur,
            payment,
            created_at,
            created_day,
            churn_day,
            order_day,
            email,
            sms,
            tags: tag_bits,
            b2b,
            group,
            hist_amount,
            update: None,
        };
        traits.update = traits.draw_update(seed, index, period);
        traits
    }

    /// About one customer in ten gets a second profile row inside the period.
    fn draw_update(&mut self, seed: u64, index: u64, period: &Period) -> Option<Update> {
        let mut rng = Rand::new(mix([seed, tag::UPDATE, index]));
        let from = period.first.max(self.created_day + 1);
        if from > period.last || !rng.chance(0.1) {
            return None;
        }
        let day = from + rng.below((period.last - from) as u64 + 1) as i32;
        let at = i64::from(day) * DAY_US + 6 * HOUR_US + rng.below(14 * HOUR_US as u64) as i64;
        let kind = if self.guest {
            rng.weighted(&[70, 30])
        } else {
            rng.weighted(&[50, 20, 15, 15])
        };
        let change = match kind {
            0 => {
                let flip = |c: Consent, rng: &mut Rand| match c {
                    Consent::Granted => Consent::Denied,
                    Consent::Denied => {
                        if rng.chance(0.5) {
                            Consent::Granted
                        } else {
                            Consent::Denied
                        }
                    }
                    Consent::Pending | Consent::Null => {
                        if rng.chance(0.8) {
                            Consent::Granted
                        } else {
                            Consent::Denied
                        }
                    }
                };
                let email = flip(self.email, &mut rng);
                let sms = if rng.chance(0.5) {
                    flip(self.sms, &mut rng)
                } else {
                    self.sms
                };
                Change::Consent { email, sms }
            }
            1 => Change::Tags(if rng.chance(0.7) {
                tags::VIP
            } else {
                tags::BLACKLIST
            }),
            2 => {
                // The application was pending in the first row.
                self.b2b = B2b::Pending;
                if rng.chance(0.8) {
                    self.wholesale = true;
                    if self.archetype != Archetype::Heavy {
                        self.archetype = Archetype::Regular;
                        self.rate = self.rate.max(0.08);
                        self.order_p = 0.09;
                        self.churn_day = i32::MAX;
                        self.order_day = i32::MIN;
                    }
                    Change::B2b(B2b::Approved)
                } else {
                    Change::B2b(B2b::Rejected)
                }
            }
            _ => {
                if rng.chance(0.6) {
                    Change::Passive
                } else {
                    Change::Password
                }
            }
        };
        Some(Update { at, change })
    }

    /// E-mail consent in force at `ts`.
    pub(crate) fn email_consent_at(&self, ts: i64) -> Consent {
        match self.update {
            Some(Update {
                at,
                change: Change::Consent { email, .. },
            }) if ts >= at => email,
            _ => self.email,
        }
    }

    /// SMS consent in force at `ts`.
    pub(crate) fn sms_consent_at(&self, ts: i64) -> Consent {
        match self.update {
            Some(Update {
                at,
                change: Change::Consent { sms, .. },
            }) if ts >= at => sms,
            _ => self.sms,
        }
    }

    /// Tags in force at `ts`.
    pub(crate) fn tags_at(&self, ts: i64) -> u8 {
        match self.update {
            Some(Update {
                at,
                change: Change::Tags(t),
            }) if ts >= at => self.tags | t,
            Some(Update {
                at,
                change: Change::B2b(B2b::Approved),
            }) if ts >= at => self.tags | tags::WHOLESALE,
            _ => self.tags,
        }
    }
}

/// The width of the digits of customer ids: at least 7, more for larger shops, so that ids
/// sort in index order.
pub(crate) fn id_width(customers: u64) -> usize {
    customers.to_string().len().max(7)
}

/// Writes the id of customer `index` (0-based) as `c` + zero-padded index + 1.
pub(crate) fn push_customer_id(out: &mut String, index: u64, width: usize) {
    out.push('c');
    push_padded(out, index + 1, width);
}

/// Appends `n` zero-padded to `width` digits, without going through `fmt`.
#[inline]
pub(crate) fn push_padded(out: &mut String, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    while n > 0 {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let len = (digits.len() - i).max(width);
    for &d in &digits[digits.len() - len..] {
        out.push(char::from(d));
    }
}

/// Schema of the generated `customers/` files: the contract's columns, then the custom
/// `first_name`, `last_name` and `city`.
pub(crate) fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let tags = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("email", DataType::Utf8, true),
        Field::new("phone", DataType::Utf8, true),
        Field::new("email_consent", DataType::Utf8, true),
        Field::new("sms_consent", DataType::Utf8, true),
        Field::new("consent_updated_at", ts.clone(), true),
        Field::new("tags", tags, true),
        Field::new("customer_group", DataType::Utf8, true),
        Field::new("total_order_amount", DataType::Decimal128(18, 2), true),
        Field::new("b2b_status", DataType::Utf8, true),
        Field::new("language", DataType::Utf8, true),
        Field::new("registered_at", ts.clone(), true),
        Field::new("password_updated_at", ts.clone(), true),
        Field::new("account_status", DataType::Utf8, true),
        Field::new("birth_date", DataType::Date32, true),
        Field::new("gender", DataType::Utf8, true),
        Field::new("updated_at", ts, false),
        Field::new("first_name", DataType::Utf8, true),
        Field::new("last_name", DataType::Utf8, true),
        Field::new("city", DataType::Utf8, true),
    ]))
}

/// The parts of a profile that only the `customers/` files need.
struct Profile {
    first_name: &'static str,
    last_name: &'static str,
    city: &'static str,
    gender: Option<&'static str>,
    language: &'static str,
    birth_date: Option<i32>,
    consent_updated_at: Option<i64>,
    password_updated_at: Option<i64>,
}

/// Builders of one batch of customer rows.
struct Columns {
    customer_id: StringBuilder,
    email: StringBuilder,
    phone: StringBuilder,
    email_consent: StringBuilder,
    sms_consent: StringBuilder,
    consent_updated_at: TimestampMicrosecondBuilder,
    tags: ListBuilder<StringBuilder>,
    customer_group: StringBuilder,
    total_order_amount: Decimal128Builder,
    b2b_status: StringBuilder,
    language: StringBuilder,
    registered_at: TimestampMicrosecondBuilder,
    password_updated_at: TimestampMicrosecondBuilder,
    account_status: StringBuilder,
    birth_date: Date32Builder,
    gender: StringBuilder,
    updated_at: TimestampMicrosecondBuilder,
    first_name: StringBuilder,
    last_name: StringBuilder,
    city: StringBuilder,
}

fn ts_builder() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

impl Columns {
    fn new() -> Result<Self> {
        Ok(Self {
            customer_id: StringBuilder::new(),
            email: StringBuilder::new(),
            phone: StringBuilder::new(),
            email_consent: StringBuilder::new(),
            sms_consent: StringBuilder::new(),
            consent_updated_at: ts_builder(),
            tags: ListBuilder::new(StringBuilder::new()),
            customer_group: StringBuilder::new(),
            total_order_amount: Decimal128Builder::new().with_precision_and_scale(18, 2)?,
            b2b_status: StringBuilder::new(),
            language: StringBuilder::new(),
            registered_at: ts_builder(),
            password_updated_at: ts_builder(),
            account_status: StringBuilder::new(),
            birth_date: Date32Builder::new(),
            gender: StringBuilder::new(),
            updated_at: ts_builder(),
            first_name: StringBuilder::new(),
            last_name: StringBuilder::new(),
            city: StringBuilder::new(),
        })
    }

    fn finish(mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.customer_id.finish()),
            Arc::new(self.email.finish()),
            Arc::new(self.phone.finish()),
            Arc::new(self.email_consent.finish()),
            Arc::new(self.sms_consent.finish()),
            Arc::new(self.consent_updated_at.finish()),
            Arc::new(self.tags.finish()),
            Arc::new(self.customer_group.finish()),
            Arc::new(self.total_order_amount.finish()),
            Arc::new(self.b2b_status.finish()),
            Arc::new(self.language.finish()),
            Arc::new(self.registered_at.finish()),
            Arc::new(self.password_updated_at.finish()),
            Arc::new(self.account_status.finish()),
            Arc::new(self.birth_date.finish()),
            Arc::new(self.gender.finish()),
            Arc::new(self.updated_at.finish()),
            Arc::new(self.first_name.finish()),
            Arc::new(self.last_name.finish()),
            Arc::new(self.city.finish()),
        ];
        Ok(RecordBatch::try_new(schema(), columns)?)
    }
}

/// Writes the profile rows of the customers of a [`World`].
pub(crate) struct ProfileSource<'a> {
    pub world: &'a World,
}

impl ProfileSource<'_> {
    /// The first rows (for `part-0000`) and the later rows (for `part-0001-updates`) of the
    /// customers `range`, in index order.
    pub(crate) fn batches(
        &self,
        range: std::ops::Range<u64>,
    ) -> Result<(RecordBatch, RecordBatch)> {
        let mut first = Columns::new()?;
        let mut later = Columns::new()?;
        let mut id = String::new();
        let mut email = String::new();
        let mut phone = String::new();
        let shop = &self.world.shop;
        for index in range {
            let t = &self.world.traits[index as usize];
            let mut rng = Rand::new(mix([shop.seed, tag::PROFILE, index]));
            id.clear();
            push_customer_id(&mut id, index, shop.width);
            let profile = self.profile(t, &mut rng, &mut email, &mut phone);
            let phone = t.has_phone.then_some(phone.as_str());
            let row = Row {
                id: &id,
                email: &email,
                phone,
                traits: t,
                profile: &profile,
            };
            row.append(&mut first, None);
            if let Some(update) = t.update {
                let spent = spent_before(shop, index, t, self.world.schedule.of(index), update.at);
                row.append(&mut later, Some((update, spent)));
            }
        }
        Ok((first.finish()?, later.finish()?))
    }

    fn profile(
        &self,
        t: &Traits,
        rng: &mut Rand,
        email: &mut String,
        phone: &mut String,
    ) -> Profile {
        let gender = match rng.weighted(&[54, 39, 7]) {
            0 => Some("female"),
            1 => Some("male"),
            _ => None,
        };
        let first_name = match gender {
            Some("female") => *rng.pick(FEMALE_NAMES),
            Some(_) => *rng.pick(MALE_NAMES),
            None if rng.chance(0.5) => *rng.pick(FEMALE_NAMES),
            None => *rng.pick(MALE_NAMES),
        };
        let last_name = *rng.pick(LAST_NAMES);
        let city = if t.country == 0 {
            CITIES[rng.weighted(&CITY_WEIGHTS)].0
        } else {
            *rng.pick(ABROAD_CITIES[usize::from(t.country) - 1])
        };
        let language = match t.country {
            1 if rng.chance(0.6) => "de",
            5 if rng.chance(0.8) => "en",
            _ => ["tr", "en", "de", "ar"][rng.weighted(&[910, 50, 20, 20])],
        };

        // Age: students 18–26, others 18–70 leaning young.
        let age_days = if t.edu {
            18 * 365 + rng.below(8 * 365) as i64
        } else {
            18 * 365 + (52.0 * 365.0 * rng.unit().powf(1.6)) as i64
        };
        let birth_date = rng
            .chance(if t.edu { 0.95 } else { 0.75 })
            .then(|| (self.world.shop.period.end_us / DAY_US - age_days) as i32);
        let born = 1970 + (self.world.shop.period.end_us / DAY_US - age_days) / 365;

        email.clear();
        let mut first = String::new();
        let mut last = String::new();
        ascii_fold(first_name, &mut first);
        ascii_fold(last_name, &mut last);
        let n = rng.below(1000);
        match rng.weighted(&[30, 25, 15, 15, 15]) {
            0 => {
                let _ = write!(email, "{first}.{last}");
                if rng.chance(0.6) {
                    let _ = write!(email, "{n}");
                }
            }
            1 => {
                let _ = write!(email, "{first}{last}{n}");
            }
            2 => {
                let _ = write!(email, "{first}_{last}{:02}", born % 100);
            }
            3 => {
                let _ = write!(email, "{}{last}{n}", &first[..1]);
            }
            _ => {
                let _ = write!(email, "{first}.{last}.{born}");
            }
        }
        email.push('@');
        if t.edu {
            let domain = *rng.pick(UNIVERSITY_DOMAINS);
            email.push_str(domain);
        } else if t.wholesale || rng.chance(0.07) {
            let domain = *rng.pick(COMPANY_DOMAINS);
            email.push_str(domain);
        } else {
            email.push_str(MAIL_DOMAINS[rng.weighted(&MAIL_WEIGHTS)].0);
        }

        phone.clear();
        let digits = rng.below(10_000_000);
        match t.country {
            1 => {
                let _ = write!(phone, "+49 15{} {:07}", rng.below(10), digits);
            }
            2 => {
                let _ = write!(phone, "+31 6 {:08}", digits * 10 + rng.below(10));
            }
            3 => {
                let _ = write!(phone, "+994 5{} {:07}", rng.range(0, 5), digits);
            }
            5 => {
                let _ = write!(
                    phone,
                    "+44 7{:03} {:06}",
                    rng.below(1000),
                    digits % 1_000_000
                );
            }
            // Turkey, and Northern Cyprus on Turkish operators (+90 533 / 542).
            c => {
                let prefix = if c == 4 {
                    [533, 542][rng.below(2) as usize]
                } else {
                    *rng.pick(MOBILE_PREFIXES)
                };
                let _ = write!(
                    phone,
                    "+90 {prefix} {:03} {:02} {:02}",
                    digits / 10_000,
                    digits / 100 % 100,
                    digits % 100
                );
            }
        }

        // Consents were asked at sign-up; some changed them later (before the period).
        let before = self.world.shop.period.start_us().max(t.created_at + 1);
        let later =
            |rng: &mut Rand| t.created_at + ((before - t.created_at) as f64 * rng.unit()) as i64;
        let consent_updated_at = (t.email != Consent::Null || t.sms != Consent::Null).then(|| {
            if rng.chance(0.3) {
                later(rng)
            } else {
                t.created_at
            }
        });
        let password_updated_at = (!t.guest).then(|| {
            if rng.chance(0.5) {
                later(rng)
            } else {
                t.created_at
            }
        });
        Profile {
            first_name,
            last_name,
            city,
            gender,
            language,
            birth_date,
            consent_updated_at,
            password_updated_at,
        }
    }
}

/// One profile row to append.
struct Row<'a> {
    id: &'a str,
    email: &'a str,
    phone: Option<&'a str>,
    traits: &'a Traits,
    profile: &'a Profile,
}

impl Row<'_> {
    /// Appends the first row (`update` `None`) or the row written by `update`, with what the
    /// customer spent inside the period by then.
    fn append(&self, c: &mut Columns, update: Option<(Update, i64)>) {
        let (t, p) = (self.traits, self.profile);
        let mut email_consent = t.email;
        let mut sms_consent = t.sms;
        let mut consent_updated_at = p.consent_updated_at;
        let mut tag_bits = t.tags;
        let mut b2b = t.b2b;
        let mut group = t.group;
        let mut passive = t.passive;
        let mut password_updated_at = p.password_updated_at;
        let mut total = t.hist_amount;
        let mut updated_at = t
            .created_at
            .max(consent_updated_at.unwrap_or(i64::MIN))
            .max(password_updated_at.unwrap_or(i64::MIN));
        if let Some((u, spent)) = update {
            updated_at = u.at;
            total += spent;
            match u.change {
                Change::Consent { email, sms } => {
                    email_consent = email;
                    sms_consent = sms;
                    consent_updated_at = Some(u.at);
                }
                Change::Tags(bits) => tag_bits |= bits,
                Change::B2b(status) => {
                    b2b = status;
                    if status == B2b::Approved {
                        group = 2;
                        tag_bits |= tags::WHOLESALE;
                    }
                }
                Change::Passive => passive = true,
                Change::Password => password_updated_at = Some(u.at),
            }
        }

        c.customer_id.append_value(self.id);
        c.email.append_value(self.email);
        c.phone.append_option(self.phone);
        c.email_consent.append_option(email_consent.as_str());
        c.sms_consent.append_option(sms_consent.as_str());
        c.consent_updated_at.append_option(consent_updated_at);
        // Most customers have no tags: about half of them as an empty list, half as null.
        if tag_bits == 0 {
            if t.created_at & 1 == 0 {
                c.tags.append(true);
            } else {
                c.tags.append_null();
            }
        } else {
            for (bit, name) in tags::NAMES {
                if tag_bits & bit != 0 {
                    c.tags.values().append_value(name);
                }
            }
            c.tags.append(true);
        }
        c.customer_group.append_option(match group {
            1 => Some("Perakende"),
            2 => Some("Toptancı"),
            _ => None,
        });
        c.total_order_amount.append_value(i128::from(total));
        c.b2b_status.append_option(b2b.as_str());
        c.language.append_value(p.language);
        c.registered_at
            .append_option((!t.guest).then_some(t.created_at));
        c.password_updated_at.append_option(password_updated_at);
        c.account_status.append_option(match (t.guest, passive) {
            (true, _) => None,
            (false, true) => Some("passive"),
            (false, false) => Some("active"),
        });
        c.birth_date.append_option(p.birth_date);
        c.gender.append_option(p.gender);
        c.updated_at.append_value(updated_at);
        c.first_name.append_value(p.first_name);
        c.last_name.append_value(p.last_name);
        c.city.append_value(p.city);
    }
}

const CITY_WEIGHTS: [u32; CITIES.len()] = {
    let mut w = [0; CITIES.len()];
    let mut i = 0;
    while i < CITIES.len() {
        w[i] = CITIES[i].1;
        i += 1;
    }
    w
};

const MAIL_WEIGHTS: [u32; MAIL_DOMAINS.len()] = {
    let mut w = [0; MAIL_DOMAINS.len()];
    let mut i = 0;
    while i < MAIL_DOMAINS.len() {
        w[i] = MAIL_DOMAINS[i].1;
        i += 1;
    }
    w
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fixed_width() {
        let mut s = String::new();
        push_customer_id(&mut s, 0, id_width(1000));
        assert_eq!(s, "c0000001");
        s.clear();
        push_customer_id(&mut s, 12_344_999, id_width(20_000_000));
        assert_eq!(s, "c12345000");
        s.clear();
        push_padded(&mut s, 0, 3);
        assert_eq!(s, "000");
    }
}
