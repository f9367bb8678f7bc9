//! Random valid segment definitions, for comparing the engine with [`crate::reference`].
//!
//! [`arb_definition`] yields definition JSON documents (condition trees of depth ≤ 3) of every
//! condition kind but `sql` and `segment` (sequences included), with every operator, measure and period, against
//! the data contract's columns with operators that fit their types. Values are drawn near the
//! edges where implementations go wrong: instants exactly at `as_of - d` and `as_of` (± 1 µs,
//! written with `Z` or `+03:00`), bare dates, amounts like `37.535`, texts and ids with Turkish
//! letters (`İ ı ş ğ Ç Ö Ü`, whose lower-casing is not one character for one), LIKE
//! metacharacters (`%`, `_`), the empty string, and `edu.tr`-style domains.

use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value as Json, json};

/// Where the interesting edges of a generated shop are.
#[derive(Debug, Clone)]
pub struct Edges {
    /// The instant the definitions will be evaluated at: windows end here.
    pub as_of: DateTime<Utc>,
    /// The store's time zone (bare dates are its midnights; `between` needs `lo <= hi`).
    pub tz: Tz,
    /// More instants to compare with, e.g. timestamps of events of the shop (each is also
    /// used ± 1 µs).
    pub instants: Vec<DateTime<Utc>>,
    /// Customer ids of the shop, so that `eq`/`starts_with` on ids can hit.
    pub customer_ids: Vec<String>,
}

impl Edges {
    /// Edges from `as_of` alone, in UTC.
    pub fn new(as_of: DateTime<Utc>) -> Edges {
        Edges {
            as_of,
            tz: Tz::UTC,
            instants: Vec::new(),
            customer_ids: Vec::new(),
        }
    }
}

/// The durations drawn (windows, `within_last`, `older_than`, `within`).
pub const DURATIONS: &[&str] = &[
    "1m", "90m", "1h", "2h", "24h", "1d", "2d", "7d", "1w", "14d", "2w", "30d", "40d", "60d",
    "90d", "365d",
];

/// The event types drawn: all those of the data contract (which the generator emits), and one
/// no event has.
pub static EVENT_TYPES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut types = kitle_data::contract::EVENT_TYPES.to_vec();
    types.push("no_such_event");
    types
});

/// Texts mixed into every text value: Turkish letters whose case mapping is special, LIKE
/// metacharacters and the empty string.
const TRICKY_TEXTS: &[&str] = &[
    "İ",
    "ı",
    "i",
    "I",
    "ş",
    "Ş",
    "ğ",
    "Ç",
    "ç",
    "Ö",
    "ö",
    "Ü",
    "ü",
    "İstanbul",
    "ISTANBUL",
    "%",
    "_",
    "a%",
    "%a",
    "_a",
    "",
    "\\",
];

/// The kind of a column, as far as which operators it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Timestamp,
    TextList,
}

/// A column of the contract with the values worth comparing it with.
#[derive(Debug, Clone)]
struct Column {
    name: &'static str,
    kind: Kind,
    texts: Vec<String>,
    numbers: Vec<&'static str>,
}

fn text_column(name: &'static str, texts: &[&str]) -> Column {
    Column {
        name,
        kind: Kind::Text,
        texts: texts.iter().map(|t| t.to_string()).collect(),
        numbers: Vec::new(),
    }
}

fn number_column(name: &'static str, numbers: &[&'static str]) -> Column {
    Column {
        name,
        kind: Kind::Number,
        texts: Vec::new(),
        numbers: numbers.to_vec(),
    }
}

fn time_column(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Timestamp,
        texts: Vec::new(),
        numbers: Vec::new(),
    }
}

const AMOUNTS: &[&str] = &[
    "0", "0.01", "37.535", "37.54", "37.53", "99.99", "100", "149.995", "500", "1000", "1500",
    "2999.999", "3000", "5000", "10000", "-1", "1e3", "12.5",
];
const SMALL_COUNTS: &[&str] = &["0", "1", "2", "3", "4", "5", "10", "1.5", "0.5", "-1"];
const RATINGS: &[&str] = &["0", "1", "2", "2.5", "3", "4", "4.5", "5", "6"];

fn customer_columns(edges: &Edges) -> Vec<Column> {
    let mut ids: Vec<String> = [
        "c",
        "c0",
        "c00",
        "c000",
        "c0000001",
        "c0000150",
        "C0",
        "ç",
        "müşteri-ğ1",
        "ŞİRKET-7",
        "öğrenci_İ",
        "C-UPPER",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ids.extend(edges.customer_ids.iter().take(8).cloned());
    let mut id_column = text_column("customer_id", &[]);
    id_column.texts = ids;
    vec![
        id_column,
        text_column(
            "email",
            &[
                "@",
                "gmail",
                "GMAIL",
                "@gmail.com",
                ".com",
                "edu.tr",
                ".edu.tr",
                "EDU.TR",
                "@company.com.tr",
                "com.tr",
                "ogr",
                "hotmail",
            ],
        ),
        text_column("phone", &["+90", "+90 5", "+49", "0", "5", " "]),
        text_column(
            "email_consent",
            &["granted", "denied", "pending", "GRANTED", "Granted"],
        ),
        text_column("sms_consent", &["granted", "denied", "pending", "DENIED"]),
        text_column(
            "customer_group",
            &[
                "Toptancı",
                "TOPTANCI",
                "toptancı",
                "TOPTANCı",
                "Perakende",
                "perakende",
                "Topt",
            ],
        ),
        text_column(
            "b2b_status",
            &["none", "pending", "approved", "rejected", "APPROVED"],
        ),
        text_column("language", &["tr", "TR", "en", "de", "ar", "t"]),
        text_column("account_status", &["active", "passive", "ACTIVE", "pass"]),
        text_column("gender", &["female", "male", "FEMALE", "male "]),
        number_column(
            "total_order_amount",
            &[
                "0", "37.535", "1000", "1000.005", "4999.99", "5000", "10000", "12345.67", "-1",
                "250.5",
            ],
        ),
        time_column("consent_updated_at"),
        time_column("registered_at"),
        time_column("password_updated_at"),
        time_column("birth_date"),
        time_column("updated_at"),
        Column {
            name: "tags",
            kind: Kind::TextList,
            texts: [
                "VIP",
                "Kara Liste",
                "Toptancı",
                "Öğrenci",
                "vip",
                "KARA LİSTE",
                "İ",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            numbers: Vec::new(),
        },
    ]
}

fn event_columns(edges: &Edges) -> Vec<Column> {
    let mut customer = customer_columns(edges).remove(0);
    customer.texts.push("anon-".into());
    vec![
        text_column("event_id", &["e", "ev-", "0", "-"]),
        customer,
        text_column("anonymous_id", &["anon-", "anon-0", "ANON"]),
        text_column("event_type", &EVENT_TYPES),
        time_column("ts"),
        text_column("session_id", &["c", "v", "s-", "0"]),
        text_column("product_id", &["p-", "p-10001", "p-1000", "P-"]),
        text_column(
            "category_id",
            &[
                "cat-kozmetik",
                "cat-ayakkabı",
                "CAT-AYAKKABI",
                "cat-ev-yaşam",
                "cat-elektronik",
                "cat-giyim",
                "cat-",
            ],
        ),
        text_column(
            "brand_id",
            &[
                "brand-nike",
                "brand-hotiç",
                "BRAND-HOTİÇ",
                "brand-arçelik",
                "brand-",
            ],
        ),
        text_column("order_id", &["o", "ord-", "0", "-"]),
        number_column("amount", AMOUNTS),
        number_column("quantity", SMALL_COUNTS),
        text_column("currency", &["TRY", "EUR", "try", "USD", "TR"]),
        text_column(
            "payment_method",
            &[
                "credit_card",
                "bank_transfer",
                "cash_on_delivery",
                "CREDIT_CARD",
                "card",
            ],
        ),
        text_column(
            "shipping_country",
            &["TR", "DE", "NL", "AZ", "CY", "GB", "tr"],
        ),
        text_column("billing_country", &["TR", "DE", "GB", "tr"]),
        number_column("rating", RATINGS),
        text_column(
            "campaign_id",
            &[
                "cmp-",
                "sms-",
                "popup-",
                "popup-bulten-kayit",
                "black-friday",
                "CMP-",
            ],
        ),
        text_column(
            "checkout_step",
            &["cart", "address", "shipping", "payment", "PAYMENT"],
        ),
        text_column("page_id", &["blog-", "blog-kitap-onerileri", "BLOG-"]),
    ]
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn rfc3339_istanbul_offset(at: DateTime<Utc>) -> String {
    let plus3 = FixedOffset::east_opt(3 * 3600).unwrap();
    at.with_timezone(&plus3)
        .to_rfc3339_opts(SecondsFormat::Micros, false)
}

fn duration_of(text: &str) -> TimeDelta {
    let (amount, unit) = text.split_at(text.len() - 1);
    let amount: i64 = amount.parse().unwrap();
    TimeDelta::seconds(
        amount
            * match unit {
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                _ => 7 * 86_400,
            },
    )
}

/// Instants worth comparing with, each as the instant and one way of writing it.
fn instants(edges: &Edges) -> Vec<(DateTime<Utc>, String)> {
    let as_of = edges.as_of;
    let micro = TimeDelta::microseconds(1);
    let mut out = Vec::new();
    let mut push = |at: DateTime<Utc>| {
        out.push((at, rfc3339(at)));
        out.push((at, rfc3339_istanbul_offset(at)));
    };
    for at in [as_of, as_of - micro, as_of + micro] {
        push(at);
    }
    for d in DURATIONS {
        let edge = as_of - duration_of(d);
        push(edge);
        push(edge + micro);
    }
    for at in &edges.instants {
        push(*at);
        push(*at - micro);
        push(*at + micro);
    }
    // Bare dates: midnights in the store's zone.
    let today = as_of.with_timezone(&edges.tz).date_naive();
    let mut dates: Vec<NaiveDate> = [0, 1, 2, 7, 14, 30, 40, 60, 365]
        .iter()
        .map(|k| today - TimeDelta::days(*k))
        .collect();
    dates.push(today + TimeDelta::days(1));
    for (y, m, d) in [
        (1990, 1, 1),
        (1999, 12, 31),
        (2000, 1, 1),
        (1985, 6, 15),
        (2025, 6, 1),
    ] {
        dates.push(NaiveDate::from_ymd_opt(y, m, d).unwrap());
    }
    for date in dates {
        let midnight = edges
            .tz
            .from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .map(|t| t.with_timezone(&Utc));
        if let Some(midnight) = midnight {
            out.push((midnight, date.format("%Y-%m-%d").to_string()));
        }
    }
    out
}

/// A text or a list of 1 to 3 texts, mostly from `pool` (values of the column), sometimes
/// from `tricky`.
fn texts_value(pool: Vec<String>, tricky: Vec<String>) -> BoxedStrategy<Json> {
    let one = if tricky.is_empty() {
        select(pool).boxed()
    } else {
        prop_oneof![4 => select(pool), 1 => select(tricky)].boxed()
    };
    prop_oneof![
        3 => one.clone().prop_map(Json::String),
        2 => vec(one, 1..=3).prop_map(|items| json!(items)),
    ]
    .boxed()
}

fn number_json(text: &str) -> Json {
    serde_json::from_str(text).expect("the pools hold JSON numbers")
}

fn number_value(pool: Vec<&'static str>) -> BoxedStrategy<Json> {
    select(pool).prop_map(number_json).boxed()
}

fn number_range(pool: Vec<&'static str>) -> BoxedStrategy<Json> {
    (select(pool.clone()), select(pool))
        .prop_map(|(a, b)| {
            let (x, y): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
            // Pool numbers are short enough that f64 orders them correctly.
            if x <= y {
                json!([number_json(a), number_json(b)])
            } else {
                json!([number_json(b), number_json(a)])
            }
        })
        .boxed()
}

fn instant_value(pool: Vec<(DateTime<Utc>, String)>) -> BoxedStrategy<Json> {
    select(pool)
        .prop_map(|(_, text)| Json::String(text))
        .boxed()
}

fn instant_range(pool: Vec<(DateTime<Utc>, String)>) -> BoxedStrategy<Json> {
    (select(pool.clone()), select(pool))
        .prop_map(|(a, b)| {
            let (lo, hi) = if a.0 <= b.0 { (a, b) } else { (b, a) };
            json!([lo.1, hi.1])
        })
        .boxed()
}

fn duration_value() -> BoxedStrategy<Json> {
    select(DURATIONS.to_vec())
        .prop_map(|d| Json::String(d.to_string()))
        .boxed()
}

/// `op`, `value` and maybe `ignore_case` for a test of `column`, as JSON fields.
fn arb_test(column: &Column, edges: &Edges) -> BoxedStrategy<Map<String, Json>> {
    let with = |op: &'static str, value: Option<Json>| {
        let mut m = Map::new();
        m.insert("op".into(), json!(op));
        if let Some(v) = value {
            m.insert("value".into(), v);
        }
        m
    };
    let presence = select(vec!["is_set", "is_not_set"]).prop_map(move |op| with(op, None));
    let typed: BoxedStrategy<Map<String, Json>> = match column.kind {
        Kind::Text => {
            let mut ops = vec![
                "eq",
                "neq",
                "in",
                "not_in",
                "contains",
                "not_contains",
                "starts_with",
                "ends_with",
            ];
            if column.name == "email" {
                ops.extend(["domain_in", "domain_in", "domain_in"]);
            }
            let pool = column.texts.clone();
            let tricky: Vec<String> = TRICKY_TEXTS.iter().map(|t| t.to_string()).collect();
            let domains: Vec<String> = [
                "edu.tr",
                "EDU.TR",
                "itu.edu.tr",
                "ogr.itu.edu.tr",
                "du.tr",
                "gmail.com",
                "com",
                "com.tr",
                "company.com.tr",
                "yandex.com.tr",
                "İtu.edu.tr",
                "tr",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            (
                select(ops),
                texts_value(pool, tricky),
                texts_value(domains, Vec::new()),
                prop_oneof![Just(None), Just(Some(false)), Just(Some(true))],
            )
                .prop_map(move |(op, value, domain, ignore_case)| {
                    let value = if op == "domain_in" { domain } else { value };
                    let mut m = with(op, Some(value));
                    if let Some(ic) = ignore_case {
                        m.insert("ignore_case".into(), json!(ic));
                    }
                    m
                })
                .boxed()
        }
        Kind::Number => {
            let pool = column.numbers.clone();
            prop_oneof![
                (
                    select(vec!["eq", "neq", "gt", "gte", "lt", "lte"]),
                    number_value(pool.clone())
                )
                    .prop_map(move |(op, v)| with(op, Some(v))),
                number_range(pool).prop_map(move |v| with("between", Some(v))),
            ]
            .boxed()
        }
        Kind::Timestamp => time_test(edges)
            .prop_map(move |(op, v)| with(op, Some(v)))
            .boxed(),
        Kind::TextList => {
            let pool = column.texts.clone();
            let tricky = vec!["ı".to_string(), String::new(), "%".to_string()];
            (
                select(vec!["has_any", "has_all", "has_none"]),
                vec(prop_oneof![4 => select(pool), 1 => select(tricky)], 1..=3),
            )
                .prop_map(move |(op, values)| with(op, Some(json!(values))))
                .boxed()
        }
    };
    prop_oneof![1 => presence, 5 => typed].boxed()
}

/// A timestamp operator and its value (for timestamp columns and `first_time`/`last_time`).
fn time_test(edges: &Edges) -> BoxedStrategy<(&'static str, Json)> {
    let pool = instants(edges);
    prop_oneof![
        (
            select(vec!["eq", "neq", "gt", "gte", "lt", "lte"]),
            instant_value(pool.clone())
        ),
        instant_range(pool).prop_map(|v| ("between", v)),
        (select(vec!["within_last", "older_than"]), duration_value()),
    ]
    .boxed()
}

/// An attribute condition on a column of `customers`.
fn arb_attribute(edges: &Edges) -> BoxedStrategy<Json> {
    let columns = customer_columns(edges);
    let edges = edges.clone();
    select(columns)
        .prop_flat_map(move |column| {
            arb_test(&column, &edges).prop_map(move |test| {
                let mut m = Map::new();
                m.insert("attribute".into(), json!(column.name));
                m.extend(test);
                Json::Object(m)
            })
        })
        .boxed()
}

/// The event columns the generated shop fills for events of `event_type` (besides the
/// columns every event has), so that filters and measures mostly test values that exist.
fn relevant_columns(event_type: &str) -> Vec<&'static str> {
    let mut columns = vec![
        "event_id",
        "customer_id",
        "anonymous_id",
        "session_id",
        "ts",
    ];
    columns.extend(match event_type {
        "product_viewed"
        | "product_added_to_cart"
        | "product_removed_from_cart"
        | "product_added_to_favorites" => {
            vec![
                "product_id",
                "category_id",
                "brand_id",
                "amount",
                "quantity",
            ]
        }
        "product_reviewed" => vec!["product_id", "category_id", "brand_id", "rating"],
        t if t.starts_with("order_") => vec![
            "order_id",
            "amount",
            "quantity",
            "currency",
            "payment_method",
            "shipping_country",
            "billing_country",
            "product_id",
            "category_id",
            "brand_id",
        ],
        t if t.starts_with("email_") || t.starts_with("sms_") || t.starts_with("popup_") => {
            vec!["campaign_id"]
        }
        "category_viewed" => vec!["category_id"],
        "brand_viewed" => vec!["brand_id"],
        "checkout_step_viewed" => vec!["checkout_step"],
        "blog_viewed" => vec!["page_id"],
        _ => vec!["event_type"],
    });
    columns
}

/// The first event type of an `event` value.
fn first_type(event: &Json) -> String {
    match event {
        Json::String(t) => t.clone(),
        Json::Array(items) => items[0].as_str().unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

/// A `where` filter on a column of `events`: mostly one of `relevant`, sometimes any.
fn arb_filter(edges: &Edges, relevant: &[&str]) -> BoxedStrategy<Json> {
    let columns = event_columns(edges);
    let chosen: Vec<Column> = columns
        .iter()
        .filter(|c| relevant.contains(&c.name))
        .cloned()
        .collect();
    let edges = edges.clone();
    prop_oneof![3 => select(chosen), 1 => select(columns)]
        .prop_flat_map(move |column| {
            arb_test(&column, &edges).prop_map(move |test| {
                let mut m = Map::new();
                m.insert("property".into(), json!(column.name));
                m.extend(test);
                Json::Object(m)
            })
        })
        .boxed()
}

fn arb_event_types() -> BoxedStrategy<Json> {
    // Weighted towards the frequent types so that most conditions have matching events.
    let frequent = vec![
        "product_viewed",
        "order_created",
        "product_added_to_cart",
        "category_viewed",
        "email_sent",
    ];
    prop_oneof![
        3 => select(frequent.clone()).prop_map(|t| json!(t)),
        2 => select(EVENT_TYPES.to_vec()).prop_map(|t| json!(t)),
        2 => vec(select(EVENT_TYPES.to_vec()), 1..=3).prop_map(|t| json!(t)),
        1 => vec(select(frequent), 1..=2).prop_map(|t| json!(t)),
    ]
    .boxed()
}

fn arb_period(edges: &Edges) -> BoxedStrategy<Option<Json>> {
    let pool = instants(edges);
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(json!("all_time"))),
        3 => duration_value().prop_map(|d| Some(json!({"last": d}))),
        2 => duration_value().prop_map(|d| Some(json!({"before_last": d}))),
        2 => instant_value(pool.clone()).prop_map(|t| Some(json!({"since": t}))),
        2 => instant_range(pool).prop_map(|r| Some(json!({"between": r}))),
    ]
    .boxed()
}

/// A numeric measure (`None` for the default `count`), with the numbers worth comparing it
/// with; measured columns mostly among `relevant`.
fn arb_numeric_measure(relevant: &[&str]) -> BoxedStrategy<(Option<Json>, Vec<&'static str>)> {
    let all_numeric = vec!["amount", "quantity", "rating"];
    let mut numeric: Vec<&'static str> = all_numeric
        .iter()
        .copied()
        .filter(|c| relevant.contains(c))
        .collect();
    if numeric.is_empty() {
        numeric = all_numeric.clone();
    }
    let mut distinct: Vec<&'static str> = event_columns(&Edges::new(Utc::now()))
        .iter()
        .map(|c| c.name)
        .filter(|c| relevant.contains(c) && *c != "event_id")
        .collect();
    distinct.push("ts");
    let pool_of = |column: &str| match column {
        "amount" => AMOUNTS.to_vec(),
        "quantity" => SMALL_COUNTS.to_vec(),
        _ => RATINGS.to_vec(),
    };
    prop_oneof![
        3 => Just((None, SMALL_COUNTS.to_vec())),
        1 => Just((Some(json!("count")), SMALL_COUNTS.to_vec())),
        1 => Just((Some(json!("active_days")), SMALL_COUNTS.to_vec())),
        3 => (select(vec!["sum", "avg", "min", "max"]),
              prop_oneof![4 => select(numeric), 1 => select(all_numeric)])
            .prop_map(move |(m, c)| (Some(json!({ m: c })), pool_of(c))),
        1 => select(distinct)
            .prop_map(|c| (Some(json!({"distinct": c})), SMALL_COUNTS.to_vec())),
    ]
    .boxed()
}

const PERCENTS: &[&str] = &[
    "0.5", "1", "10", "12.5", "20", "33.3", "50", "66.7", "90", "99.9", "100",
];

/// The measure, `op` and `value` of an event condition without `not_followed_by`.
fn arb_measure_comparison(edges: &Edges, relevant: &[&str]) -> BoxedStrategy<Map<String, Json>> {
    let numeric = arb_numeric_measure(relevant)
        .prop_flat_map(|(measure, pool)| {
            let comparison = prop_oneof![
                4 => (select(vec!["eq", "neq", "gt", "gte", "lt", "lte"]),
                      number_value(pool.clone())),
                1 => number_range(pool).prop_map(|v| ("between", v)),
                2 => (select(vec!["top_percent", "bottom_percent"]),
                      number_value(PERCENTS.to_vec())),
            ];
            // Only the default `count` may leave out both `op` and `value` (gte 1).
            let keep = if measure.is_none() {
                prop::bool::weighted(0.6).boxed()
            } else {
                Just(true).boxed()
            };
            (Just(measure), comparison, keep)
        })
        .prop_map(|(measure, (op, value), keep)| {
            let mut m = Map::new();
            if let Some(measure) = measure {
                m.insert("measure".into(), measure);
            }
            if keep {
                m.insert("op".into(), json!(op));
                m.insert("value".into(), value);
            }
            m
        });
    let time_or_rank = prop_oneof![
        4 => time_test(edges),
        1 => (select(vec!["top_percent", "bottom_percent"]), number_value(PERCENTS.to_vec())),
    ];
    let timed = (select(vec!["first_time", "last_time"]), time_or_rank).prop_map(
        |(measure, (op, value))| {
            let mut m = Map::new();
            m.insert("measure".into(), json!(measure));
            m.insert("op".into(), json!(op));
            m.insert("value".into(), value);
            m
        },
    );
    prop_oneof![4 => numeric, 1 => timed].boxed()
}

fn arb_filters(edges: &Edges, relevant: &[&str]) -> BoxedStrategy<Option<Json>> {
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(json!([]))),
        3 => vec(arb_filter(edges, relevant), 1..=2).prop_map(|f| Some(json!(f))),
    ]
    .boxed()
}

/// `not_followed_by`: the follow-up's types, `within`, and filters that fit them.
fn arb_follow_up(edges: &Edges) -> BoxedStrategy<Json> {
    let edges = edges.clone();
    arb_event_types()
        .prop_flat_map(move |event| {
            let relevant = relevant_columns(&first_type(&event));
            (
                Just(event),
                duration_value(),
                arb_filters(&edges, &relevant),
            )
        })
        .prop_map(|(event, within, filters)| {
            let mut f = Map::new();
            f.insert("event".into(), event);
            f.insert("within".into(), within);
            if let Some(filters) = filters {
                f.insert("where".into(), filters);
            }
            Json::Object(f)
        })
        .boxed()
}

/// An event condition: with a measure and comparison, or with `not_followed_by`. Filters and
/// measured columns mostly fit the (first) event type.
fn arb_event(edges: &Edges) -> BoxedStrategy<Json> {
    let edges = edges.clone();
    arb_event_types()
        .prop_flat_map(move |event| {
            let relevant = relevant_columns(&first_type(&event));
            let tail = prop_oneof![
                4 => arb_measure_comparison(&edges, &relevant),
                1 => arb_follow_up(&edges).prop_map(|f| {
                    let mut m = Map::new();
                    m.insert("not_followed_by".into(), f);
                    m
                }),
            ];
            (
                Just(event),
                arb_filters(&edges, &relevant),
                arb_period(&edges),
                tail,
            )
        })
        .prop_map(|(event, filters, period, tail)| {
            let mut m = Map::new();
            m.insert("event".into(), event);
            if let Some(f) = filters {
                m.insert("where".into(), f);
            }
            if let Some(p) = period {
                m.insert("period".into(), p);
            }
            m.extend(tail);
            Json::Object(m)
        })
        .boxed()
}

fn arb_bucket() -> BoxedStrategy<Json> {
    let bound = prop_oneof![1 => Just(0u8), 1 => Just(100u8), 1 => Just(50u8), 6 => 0u8..=100];
    (
        select(vec!["kis-2025", "ab", "", "İ-ş", "x:y", "Ç"]),
        bound.clone(),
        bound,
    )
        .prop_map(
            |(salt, a, b)| json!({"bucket": {"salt": salt, "from": a.min(b), "to": a.max(b)}}),
        )
        .boxed()
}

/// The step types of sequences: funnels of the generated shop (views, carts, orders), the
/// same type twice (one event matching two steps; equal instants), and any type.
fn arb_step_types() -> BoxedStrategy<Json> {
    let funnel = vec![
        "product_viewed",
        "product_added_to_cart",
        "checkout_step_viewed",
        "order_created",
        "identified",
        "category_viewed",
    ];
    prop_oneof![
        5 => select(funnel.clone()).prop_map(|t| json!(t)),
        1 => vec(select(funnel), 1..=2).prop_map(|t| json!(t)),
        1 => select(EVENT_TYPES.to_vec()).prop_map(|t| json!(t)),
    ]
    .boxed()
}

/// One step of a sequence, sometimes with filters that fit its type.
fn arb_step(edges: &Edges) -> BoxedStrategy<Json> {
    let edges = edges.clone();
    arb_step_types()
        .prop_flat_map(move |event| {
            let relevant = relevant_columns(&first_type(&event));
            (Just(event), arb_filters(&edges, &relevant))
        })
        .prop_map(|(event, filters)| {
            let mut m = Map::new();
            m.insert("event".into(), event);
            if let Some(f) = filters {
                m.insert("where".into(), f);
            }
            Json::Object(m)
        })
        .boxed()
}

/// A sequence (funnel): 2 to 4 steps, with and without `within` and `period`; often the
/// shop's own funnel order (view, cart, order) and sometimes one type twice in a row.
fn arb_sequence(edges: &Edges) -> BoxedStrategy<Json> {
    let funnel = prop_oneof![
        Just(json!([{"event": "product_viewed"}, {"event": "product_added_to_cart"}])),
        Just(
            json!([{"event": "product_viewed"}, {"event": "product_added_to_cart"},
                    {"event": "order_created"}])
        ),
        Just(json!([{"event": "product_viewed"}, {"event": "product_viewed"}])),
        Just(
            json!([{"event": "product_added_to_cart"}, {"event": "product_added_to_cart"},
                    {"event": "product_added_to_cart"}])
        ),
        Just(json!([{"event": "identified"}, {"event": "order_created"}])),
    ];
    let steps = prop_oneof![
        2 => funnel,
        3 => vec(arb_step(edges), 2..=4).prop_map(|steps| json!(steps)),
    ];
    let within = prop_oneof![2 => Just(None), 3 => duration_value().prop_map(Some)];
    (steps, within, arb_period(edges))
        .prop_map(|(steps, within, period)| {
            let mut m = Map::new();
            m.insert("sequence".into(), steps);
            if let Some(w) = within {
                m.insert("within".into(), w);
            }
            if let Some(p) = period {
                m.insert("period".into(), p);
            }
            Json::Object(m)
        })
        .boxed()
}

fn arb_leaf(edges: &Edges) -> BoxedStrategy<Json> {
    prop_oneof![
        4 => arb_attribute(edges),
        5 => arb_event(edges),
        1 => arb_bucket(),
        2 => arb_sequence(edges),
    ]
    .boxed()
}

/// A condition of depth at most `depth` (1: a leaf; `all`/`any`/`not` add one level each).
pub fn arb_condition(edges: &Edges, depth: u32) -> BoxedStrategy<Json> {
    let leaf = arb_leaf(edges);
    if depth <= 1 {
        return leaf;
    }
    let inner = arb_condition(edges, depth - 1);
    prop_oneof![
        4 => leaf,
        1 => vec(inner.clone(), 1..=3).prop_map(|items| json!({"all": items})),
        1 => vec(inner.clone(), 1..=3).prop_map(|items| json!({"any": items})),
        1 => inner.prop_map(|c| json!({"not": c})),
    ]
    .boxed()
}

/// A whole definition document: a random valid id, sometimes a name, description and refresh,
/// and a condition tree of depth ≤ 3. (Callers comparing many at once give them unique ids.)
pub fn arb_definition(edges: &Edges) -> impl Strategy<Value = Json> + use<> {
    let name = prop_oneof![
        Just(None),
        select(vec![
            "Kış kampanyası",
            "İyi müşteriler: Toptancı",
            "ŞIK ğÇÖÜ",
            "x"
        ])
        .prop_map(Some),
    ];
    let refresh = prop_oneof![
        3 => Just(None),
        1 => select(vec!["manual", "hourly", "nightly", "30 6 * * 1-5", "0 3 * * *"])
            .prop_map(Some),
    ];
    (
        "[a-z0-9][a-z0-9_-]{0,12}",
        name,
        prop_oneof![Just(None), Just(Some("açıklama İ"))],
        refresh,
        arb_condition(edges, 3),
    )
        .prop_map(|(id, name, description, refresh, condition)| {
            let mut m = Map::new();
            m.insert("id".into(), json!(id));
            if let Some(name) = name {
                m.insert("name".into(), json!(name));
            }
            if let Some(d) = description {
                m.insert("description".into(), json!(d));
            }
            if let Some(r) = refresh {
                m.insert("refresh".into(), json!(r));
            }
            m.insert("condition".into(), condition);
            Json::Object(m)
        })
}
