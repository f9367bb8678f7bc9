//! A reference evaluator of the segment language: plain Rust over rows, written from
//! `shared/spec/segment-language.md` alone, to check the engine against.
//!
//! Nothing here compiles a definition into a DataFusion plan. The store is read once through
//! `kitle-data`'s as-of plans (`customers_plan`, `events_plan`, which already apply the data
//! contract: one row per `event_id`, the latest profile row per customer), every column is
//! turned into plain values ([`Cell`]), and each condition is evaluated for each customer of
//! the universe by direct loops that follow the spec's wording. The only DataFusion use is the
//! `{"sql": …}` condition, whose meaning *is* a DataFusion query over the as-of views.
//!
//! Numbers are compared exactly: every number (integer, decimal, float, a JSON value) becomes
//! an exact decimal expansion ([`Exact`]) and is compared digit by digit, never through `f64`.
//! `avg` is the `f64` nearest to the exact quotient (computed by long division and Rust's
//! correctly-rounded parser), then compared exactly too.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use kitle_data::Store;
use kitle_data::files::FooterCache;
use kitle_data::tables::ContractTables;
use kitle_planner::{
    Condition, Decimal, Duration, DurationUnit, EventCondition, Measure, Op, Period,
    SegmentDefinition, SequenceCondition, Value,
};
use sha2::{Digest, Sha256};

/// One value of one column of one row, as plain Rust.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL null.
    Null,
    /// Any string type.
    Text(String),
    /// Any integer type, exactly.
    Int(i128),
    /// A decimal: `mantissa × 10^-scale`.
    Decimal(i128, i8),
    /// A float.
    Float(f64),
    /// A timestamp, in microseconds since the epoch (UTC).
    Time(i64),
    /// A date, in days since the epoch.
    Date(i32),
    /// A boolean.
    Bool(bool),
    /// A list of (nullable) strings.
    List(Vec<Option<String>>),
    /// A non-null value of a type the language cannot compare (struct, binary, …).
    Other,
}

impl Cell {
    fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }

    /// The cell as an exact number, if it is a number (and not NaN).
    fn number(&self) -> Option<Exact> {
        match self {
            Cell::Int(i) => Some(Exact::from_mantissa(*i, 0)),
            Cell::Decimal(m, s) => Some(Exact::from_mantissa(*m, *s)),
            Cell::Float(f) => Exact::from_f64(*f),
            _ => None,
        }
    }

    /// A key equal for equal values, for `distinct`.
    fn distinct_key(&self) -> Option<String> {
        Some(match self {
            Cell::Null => return None,
            Cell::Text(s) => format!("text:{s}"),
            Cell::Int(_) | Cell::Decimal(..) | Cell::Float(_) => match self.number() {
                Some(n) => format!("number:{n:?}"),
                None => "number:NaN".to_string(),
            },
            Cell::Time(t) => format!("time:{t}"),
            Cell::Date(d) => format!("date:{d}"),
            Cell::Bool(b) => format!("bool:{b}"),
            Cell::List(items) => format!("list:{items:?}"),
            Cell::Other => return None,
        })
    }
}

/// An exact real number: ±infinity or a finite decimal expansion.
///
/// Finite values are normalised (no leading zeros in `int`, no trailing zeros in `frac`, zero
/// is never negative), so that equal values are equal structs and the order below is the
/// order of the numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exact {
    /// −∞ (a float column may hold it).
    NegInf,
    /// A finite number `(-1)^negative × int.frac`.
    Finite {
        /// Below zero.
        negative: bool,
        /// Integer digits, without leading zeros (empty for zero).
        int: String,
        /// Fraction digits, without trailing zeros.
        frac: String,
    },
    /// +∞.
    PosInf,
}

impl Exact {
    fn finite(negative: bool, int: &str, frac: &str) -> Exact {
        let int = int.trim_start_matches('0').to_string();
        let frac = frac.trim_end_matches('0').to_string();
        let negative = negative && !(int.is_empty() && frac.is_empty());
        Exact::Finite {
            negative,
            int,
            frac,
        }
    }

    /// `mantissa × 10^-scale`.
    pub fn from_mantissa(mantissa: i128, scale: i8) -> Exact {
        let digits = mantissa.unsigned_abs().to_string();
        let negative = mantissa < 0;
        if scale <= 0 {
            let zeros = "0".repeat(usize::from(scale.unsigned_abs()));
            return Exact::finite(negative, &format!("{digits}{zeros}"), "");
        }
        let scale = scale as usize;
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        Exact::finite(negative, int, frac)
    }

    /// A JSON number of a definition.
    pub fn from_decimal(d: &Decimal) -> Exact {
        Exact::from_mantissa(d.mantissa(), d.scale() as i8)
    }

    /// The exact value of a double (every finite double has a finite decimal expansion, of at
    /// most 1074 fraction digits); `None` for NaN.
    pub fn from_f64(f: f64) -> Option<Exact> {
        if f.is_nan() {
            return None;
        }
        if f.is_infinite() {
            return Some(if f > 0.0 {
                Exact::PosInf
            } else {
                Exact::NegInf
            });
        }
        // Rust formats with a given precision exactly (correctly rounded at that digit, and
        // 1100 digits is past the last non-zero one of any double).
        let text = format!("{:.1100}", f.abs());
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        Some(Exact::finite(f < 0.0, int, frac))
    }

    fn magnitude_cmp(a_int: &str, a_frac: &str, b_int: &str, b_frac: &str) -> Ordering {
        a_int
            .len()
            .cmp(&b_int.len())
            .then_with(|| a_int.cmp(b_int))
            // Without trailing zeros, fractions compare as strings: "5" > "49", "5" < "5001".
            .then_with(|| a_frac.cmp(b_frac))
    }
}

impl Ord for Exact {
    fn cmp(&self, other: &Self) -> Ordering {
        use Exact::*;
        match (self, other) {
            (NegInf, NegInf) | (PosInf, PosInf) => Ordering::Equal,
            (NegInf, _) | (_, PosInf) => Ordering::Less,
            (_, NegInf) | (PosInf, _) => Ordering::Greater,
            (
                Finite {
                    negative: an,
                    int: ai,
                    frac: af,
                },
                Finite {
                    negative: bn,
                    int: bi,
                    frac: bf,
                },
            ) => match (an, bn) {
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                (false, false) => Exact::magnitude_cmp(ai, af, bi, bf),
                (true, true) => Exact::magnitude_cmp(bi, bf, ai, af),
            },
        }
    }
}

impl PartialOrd for Exact {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The `f64` nearest to `mantissa × 10^-scale / count` (ties to even), as the spec defines
/// `avg`: the quotient is written out by long division with enough digits that no double and
/// no midpoint between doubles can lie strictly between it and what is written, plus a
/// trailing `1` when digits were left (so the written value is on the same side of every
/// midpoint), and Rust's parser (correctly rounded for any number of digits) reads it.
pub fn nearest_f64_of_quotient(mantissa: i128, scale: i8, count: u64) -> f64 {
    assert!(count > 0, "an average of nothing");
    let numerator = mantissa.unsigned_abs();
    let count = u128::from(count);
    let mut text = (numerator / count).to_string();
    let mut remainder = numerator % count;
    text.push('.');
    for _ in 0..600 {
        remainder *= 10;
        text.push(char::from(b'0' + (remainder / count) as u8));
        remainder %= count;
    }
    if remainder != 0 {
        text.push('1');
    }
    let text = format!("{text}e{}", -i32::from(scale));
    let value: f64 = text.parse().expect("a decimal parses as f64");
    if mantissa < 0 { -value } else { value }
}

/// The first instant of `date` in `tz`: its midnight, the earlier one where midnight happens
/// twice, the end of the gap where the clock skips midnight (the first instant whose local
/// date is `date`).
pub fn first_instant_of(date: NaiveDate, tz: Tz) -> i64 {
    let local = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    if let Some(at) = tz.from_local_datetime(&local).earliest() {
        return at.with_timezone(&Utc).timestamp_micros();
    }
    // In a gap: search the first second whose local date is `date` (offsets are whole
    // seconds, and within two days around midnight the local date only moves forward here).
    let naive_utc = local.and_utc().timestamp();
    let (mut lo, mut hi) = (naive_utc - 2 * 86_400, naive_utc + 2 * 86_400);
    let local_date = |s: i64| {
        Utc.timestamp_opt(s, 0)
            .unwrap()
            .with_timezone(&tz)
            .date_naive()
    };
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if local_date(mid) >= date {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo * 1_000_000
}

fn duration_micros(d: &Duration) -> i64 {
    let unit: i64 = match d.unit() {
        DurationUnit::Minutes => 60,
        DurationUnit::Hours => 60 * 60,
        DurationUnit::Days => 24 * 60 * 60,
        DurationUnit::Weeks => 7 * 24 * 60 * 60,
    };
    i64::from(d.amount()) * unit * 1_000_000
}

/// The rows of one table as cells, with its columns by name.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// Column names, in the table's order.
    pub columns: Vec<String>,
    /// One vector of cells per row, in column order.
    pub rows: Vec<Vec<Cell>>,
}

impl Rows {
    /// The index of the column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    fn from_batches(batches: &[RecordBatch], fields: &[Arc<Field>]) -> Rows {
        let columns: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
        let mut rows = Vec::new();
        for batch in batches {
            let cells: Vec<Vec<Cell>> = batch.columns().iter().map(cells_of).collect();
            for i in 0..batch.num_rows() {
                rows.push(cells.iter().map(|column| column[i].clone()).collect());
            }
        }
        Rows { columns, rows }
    }
}

/// Every value of an Arrow column as a [`Cell`].
fn cells_of(array: &ArrayRef) -> Vec<Cell> {
    let n = array.len();
    let each = |f: &dyn Fn(usize) -> Cell| -> Vec<Cell> {
        (0..n)
            .map(|i| if array.is_null(i) { Cell::Null } else { f(i) })
            .collect()
    };
    match array.data_type() {
        DataType::Null => vec![Cell::Null; n],
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            each(&|i| Cell::Text(a.value(i).to_string()))
        }
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
            match cast(array, &DataType::Utf8) {
                Ok(utf8) => cells_of(&utf8),
                Err(_) => each(&|_| Cell::Other),
            }
        }
        DataType::Boolean => {
            let a = array.as_boolean();
            each(&|i| Cell::Bool(a.value(i)))
        }
        DataType::Int8 => {
            let a = array.as_primitive::<Int8Type>();
            each(&|i| Cell::Int(i128::from(a.value(i))))
        }
        DataType::Int16 => {
            let a = array.as_primitive::<Int16Type>();
            each(&|i| Cell::Int(i128::from(a.value(i))))
        }
        DataType::Int32 => {
            let a = array.as_primitive::<Int32Type>();
            each(&|i| Cell::Int(i128::from(a.value(i))))
        }
        DataType::Int64 => {
            let a = array.as_primitive::<Int64Type>();
            each(&|i| Cell::Int(i128::from(a.value(i))))
        }
        DataType::UInt8 => {
            let a = array.as_primitive::<UInt8Type>();
            each(&|i| Cell::Int(i128::from(a.value(i))))
        }
        DataType::UInt16 => {
            let a = array.as_primitive::<UInt16Type>();
            each(&|i| Cell::Int(i128::from(a.value(i))))
        }
        DataType::UInt32 => {
            let a = array.as_primitive::<UInt32Type>();
            each(&|i| Cell::Int(i128::from(a.value(i))))
        }
        DataType::UInt64 => {
            let a = array.as_primitive::<UInt64Type>();
            each(&|i| Cell::Int(i128::from(a.value(i))))
        }
        DataType::Float16 => match cast(array, &DataType::Float64) {
            Ok(f) => cells_of(&f),
            Err(_) => each(&|_| Cell::Other),
        },
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            each(&|i| Cell::Float(f64::from(a.value(i))))
        }
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            each(&|i| Cell::Float(a.value(i)))
        }
        DataType::Decimal128(_, scale) => {
            let a = array.as_primitive::<Decimal128Type>();
            let scale = *scale;
            each(&|i| Cell::Decimal(a.value(i), scale))
        }
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => {
            match cast(array, &DataType::Decimal128(*p, *s)) {
                Ok(d) => cells_of(&d),
                Err(_) => each(&|_| Cell::Other),
            }
        }
        DataType::Timestamp(unit, _) => {
            let micros: Box<dyn Fn(usize) -> i64> = match unit {
                TimeUnit::Second => {
                    let a = array.as_primitive::<TimestampSecondType>().clone();
                    Box::new(move |i| a.value(i) * 1_000_000)
                }
                TimeUnit::Millisecond => {
                    let a = array.as_primitive::<TimestampMillisecondType>().clone();
                    Box::new(move |i| a.value(i) * 1_000)
                }
                TimeUnit::Microsecond => {
                    let a = array.as_primitive::<TimestampMicrosecondType>().clone();
                    Box::new(move |i| a.value(i))
                }
                TimeUnit::Nanosecond => {
                    let a = array.as_primitive::<TimestampNanosecondType>().clone();
                    Box::new(move |i| a.value(i).div_euclid(1_000))
                }
            };
            each(&|i| Cell::Time(micros(i)))
        }
        DataType::Date32 => {
            let a = array.as_primitive::<Date32Type>();
            each(&|i| Cell::Date(a.value(i)))
        }
        DataType::Date64 => match cast(array, &DataType::Date32) {
            Ok(d) => cells_of(&d),
            Err(_) => each(&|_| Cell::Other),
        },
        DataType::List(_) | DataType::LargeList(_) | DataType::ListView(_) => {
            let target = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
            match cast(array, &target) {
                Ok(list) => {
                    let list = list.as_list::<i32>().clone();
                    each(&|i| {
                        let items = list.value(i);
                        let items = items.as_string::<i32>();
                        Cell::List(
                            (0..items.len())
                                .map(|j| (!items.is_null(j)).then(|| items.value(j).to_string()))
                                .collect(),
                        )
                    })
                }
                Err(_) => each(&|_| Cell::Other),
            }
        }
        _ => each(&|_| Cell::Other),
    }
}

/// The store as of one instant, in plain values: the universe's profiles and the events.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The instant.
    pub as_of: DateTime<Utc>,
    /// One row per customer of the universe (the latest profile row with `updated_at <=
    /// as_of`), erased customers left out.
    pub customers: Rows,
    /// One row per `event_id` with `ts <= as_of` (every customer's, and anonymous ones).
    pub events: Rows,
    /// Whether anonymous events are stitched to the customer their device was linked to: the
    /// store's recorded identity setting (`stitched`), else the process's configured one.
    pub stitched: bool,
}

async fn collect(ctx: &SessionContext, plan: LogicalPlan) -> (Vec<RecordBatch>, Vec<Arc<Field>>) {
    let frame = ctx
        .execute_logical_plan(plan)
        .await
        .expect("reference: plan runs");
    let fields = frame.schema().as_arrow().fields().iter().cloned().collect();
    let batches = frame.collect().await.expect("reference: plan collects");
    (batches, fields)
}

impl Snapshot {
    /// Reads `store` as of `as_of` through the data contract's plans.
    pub async fn load(store: &Store, as_of: DateTime<Utc>) -> Snapshot {
        let tables = ContractTables::load(store, &FooterCache::new())
            .await
            .expect("reference: the store's files load");
        let ctx = kitle_data::session::new_context(store);
        tables.install_store(&ctx);
        let (batches, fields) = collect(
            &ctx,
            tables.customers_plan(Some(as_of)).expect("customers plan"),
        )
        .await;
        let mut customers = Rows::from_batches(&batches, &fields);
        // Erased customers are outside every universe: the manifest's erasure list holds the
        // SHA-256 (hex) of their ids.
        let erased: HashSet<String> = kitle_data::memberships::read_manifest(store)
            .await
            .expect("reference: the manifest reads")
            .erasures
            .into_iter()
            .map(|e| e.sha256)
            .collect();
        let id_column = customers.column("customer_id").expect("customer_id");
        customers.rows.retain(|row| match &row[id_column] {
            Cell::Text(id) => !erased.contains(&sha256_hex(id)),
            _ => true,
        });
        let (batches, fields) =
            collect(&ctx, tables.events_plan(Some(as_of)).expect("events plan")).await;
        let events = Rows::from_batches(&batches, &fields);
        let stitched = kitle_data::identity::effective_identity(store)
            .await
            .expect("reference: the identity setting reads")
            == kitle_data::identity::Identity::Stitched;
        Snapshot {
            as_of,
            customers,
            events,
            stitched,
        }
    }
}

/// SHA-256 of the UTF-8 bytes of `text`, lower-case hex.
fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Segment id → sorted member ids, for every definition of `definitions`, as the spec
/// defines membership at `as_of` in a store whose time zone is `tz`.
///
/// `definitions` must hold every segment referred to by `{"segment": …}`. Panics on what a
/// valid set cannot hold (an unknown column, a reference outside the set, a cycle).
pub async fn reference_members(
    store: &Store,
    definitions: &[SegmentDefinition],
    as_of: DateTime<Utc>,
    tz: Tz,
) -> BTreeMap<String, Vec<String>> {
    let snapshot = Snapshot::load(store, as_of).await;
    let sql = sql_results(store, definitions, as_of).await;
    let mut evaluator = Evaluator::new(&snapshot, definitions, sql, tz);
    definitions
        .iter()
        .map(|def| (def.id.clone(), evaluator.segment_members(&def.id)))
        .collect()
}

/// The `customer_id`s each `sql` condition of `definitions` returns, run over the `events`
/// and `customers` views as of `as_of`.
async fn sql_results(
    store: &Store,
    definitions: &[SegmentDefinition],
    as_of: DateTime<Utc>,
) -> HashMap<String, HashSet<String>> {
    let mut queries = BTreeSet::new();
    for def in definitions {
        def.condition.walk("condition", &mut |_, c| {
            if let Condition::Sql(sql) = c {
                queries.insert(sql.clone());
            }
        });
    }
    let mut results = HashMap::new();
    if queries.is_empty() {
        return results;
    }
    let tables = ContractTables::load(store, &FooterCache::new())
        .await
        .expect("reference: the store's files load");
    for sql in queries {
        let ctx = kitle_data::session::new_context(store);
        tables
            .register_as_of(&ctx, as_of)
            .expect("reference: as-of views register");
        let frame = ctx
            .sql(&sql)
            .await
            .unwrap_or_else(|e| panic!("reference: `{sql}` does not plan: {e}"));
        let batches = frame
            .collect()
            .await
            .unwrap_or_else(|e| panic!("reference: `{sql}` fails: {e}"));
        let mut ids = HashSet::new();
        for batch in batches {
            let column = batch
                .column_by_name("customer_id")
                .unwrap_or_else(|| panic!("reference: `{sql}` has no customer_id column"));
            for cell in cells_of(column) {
                if let Cell::Text(id) = cell {
                    ids.insert(id);
                }
            }
        }
        results.insert(sql, ids);
    }
    results
}

/// One event, its always-present parts pulled out.
struct Event {
    event_type: String,
    ts: i64,
    row: usize,
}

/// What an event condition's measure came to for one customer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Measured {
    Number(Exact),
    Time(i64),
}

struct Evaluator<'a> {
    snapshot: &'a Snapshot,
    definitions: HashMap<&'a str, &'a SegmentDefinition>,
    sql: HashMap<String, HashSet<String>>,
    tz: Tz,
    as_of: i64,
    /// The universe's ids, in table order.
    ids: Vec<String>,
    /// Each customer's events (by index in the universe), in no particular order.
    events: Vec<Vec<Event>>,
    /// Segments evaluated so far.
    done: HashMap<String, Vec<bool>>,
    /// Segments being evaluated (for cycles).
    in_progress: Vec<String>,
}

impl<'a> Evaluator<'a> {
    fn new(
        snapshot: &'a Snapshot,
        definitions: &'a [SegmentDefinition],
        sql: HashMap<String, HashSet<String>>,
        tz: Tz,
    ) -> Self {
        let customers = &snapshot.customers;
        let id_column = customers
            .column("customer_id")
            .expect("customers.customer_id");
        let ids: Vec<String> = customers
            .rows
            .iter()
            .map(|row| match &row[id_column] {
                Cell::Text(id) => id.clone(),
                other => panic!("reference: a universe row with customer_id {other:?}"),
            })
            .collect();
        let index: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        assert_eq!(index.len(), ids.len(), "the universe repeats an id");

        let ev = &snapshot.events;
        let (c_customer, c_type, c_ts) = (
            ev.column("customer_id").expect("events.customer_id"),
            ev.column("event_type").expect("events.event_type"),
            ev.column("ts").expect("events.ts"),
        );
        let mut events: Vec<Vec<Event>> = ids.iter().map(|_| Vec::new()).collect();
        let mut seen_ids = HashSet::new();
        let c_event_id = ev.column("event_id").expect("events.event_id");
        let c_anonymous = ev.column("anonymous_id").expect("events.anonymous_id");
        // Stitched: each anonymous id belongs to the customer of its latest link (an
        // `identified` event with both ids) with ts <= as_of, on equal ts the greatest
        // event_id — whether or not that customer is in the universe.
        let mut links: HashMap<&str, (i64, &str, &str)> = HashMap::new();
        if snapshot.stitched {
            for cells in &ev.rows {
                let (
                    Cell::Text(event_type),
                    Cell::Text(customer),
                    Cell::Text(anonymous),
                    Cell::Time(ts),
                    Cell::Text(event_id),
                ) = (
                    &cells[c_type],
                    &cells[c_customer],
                    &cells[c_anonymous],
                    &cells[c_ts],
                    &cells[c_event_id],
                )
                else {
                    continue;
                };
                if event_type != "identified" {
                    continue;
                }
                let link = (*ts, event_id.as_str(), customer.as_str());
                let latest = links.entry(anonymous.as_str()).or_insert(link);
                if (link.0, link.1) > (latest.0, latest.1) {
                    *latest = link;
                }
            }
        }
        for (row, cells) in ev.rows.iter().enumerate() {
            // The plan gives each event once; the reference checks it rather than trusts it.
            assert!(
                seen_ids.insert(cells[c_event_id].clone().distinct_key()),
                "reference: event {:?} twice",
                cells[c_event_id]
            );
            // An event with a customer_id keeps it; an anonymous one is its device's owner's
            // when stitched, else nobody's. Events of ids outside the universe count for
            // nobody.
            let owner: &str = match (&cells[c_customer], &cells[c_anonymous]) {
                (Cell::Text(customer), _) => customer,
                (_, Cell::Text(anonymous)) => match links.get(anonymous.as_str()) {
                    Some((_, _, customer)) => customer,
                    None => continue,
                },
                _ => continue,
            };
            let Some(&i) = index.get(owner) else {
                continue;
            };
            let (Cell::Text(event_type), Cell::Time(ts)) = (&cells[c_type], &cells[c_ts]) else {
                panic!("reference: an event without type or ts: {cells:?}");
            };
            assert!(
                *ts <= snapshot.as_of.timestamp_micros(),
                "an event after as_of"
            );
            events[i].push(Event {
                event_type: event_type.clone(),
                ts: *ts,
                row,
            });
        }
        Evaluator {
            snapshot,
            definitions: definitions.iter().map(|d| (d.id.as_str(), d)).collect(),
            sql,
            tz,
            as_of: snapshot.as_of.timestamp_micros(),
            ids,
            events,
            done: HashMap::new(),
            in_progress: Vec::new(),
        }
    }

    fn segment_members(&mut self, id: &str) -> Vec<String> {
        let members = self.segment(id);
        let mut out: Vec<String> = self
            .ids
            .iter()
            .zip(&members)
            .filter(|(_, m)| **m)
            .map(|(id, _)| id.clone())
            .collect();
        out.sort();
        out
    }

    /// Membership of segment `id`, one flag per customer of the universe.
    fn segment(&mut self, id: &str) -> Vec<bool> {
        if let Some(done) = self.done.get(id) {
            return done.clone();
        }
        assert!(
            !self.in_progress.iter().any(|p| p == id),
            "reference: a cycle of segment references through {id}: {:?}",
            self.in_progress
        );
        let def = *self
            .definitions
            .get(id)
            .unwrap_or_else(|| panic!("reference: segment `{id}` is not among the definitions"));
        self.in_progress.push(id.to_string());
        let members = self.condition(&def.condition);
        self.in_progress.pop();
        self.done.insert(id.to_string(), members.clone());
        members
    }

    /// Whether `condition` holds, for each customer of the universe.
    fn condition(&mut self, condition: &Condition) -> Vec<bool> {
        let n = self.ids.len();
        match condition {
            Condition::All(items) => {
                assert!(!items.is_empty(), "an empty all");
                let mut out = vec![true; n];
                for item in items {
                    let holds = self.condition(item);
                    for (o, h) in out.iter_mut().zip(holds) {
                        *o = *o && h;
                    }
                }
                out
            }
            Condition::Any(items) => {
                assert!(!items.is_empty(), "an empty any");
                let mut out = vec![false; n];
                for item in items {
                    let holds = self.condition(item);
                    for (o, h) in out.iter_mut().zip(holds) {
                        *o = *o || h;
                    }
                }
                out
            }
            Condition::Not(inner) => self.condition(inner).into_iter().map(|h| !h).collect(),
            Condition::Segment(id) => self.segment(id),
            Condition::Bucket { salt, from, to } => self
                .ids
                .iter()
                .map(|id| {
                    let b = bucket(salt, id);
                    u64::from(*from) <= b && b < u64::from(*to)
                })
                .collect(),
            Condition::Sql(sql) => {
                let ids = self
                    .sql
                    .get(sql)
                    .expect("every sql condition was run beforehand");
                self.ids.iter().map(|id| ids.contains(id)).collect()
            }
            Condition::Attribute(a) => {
                let column = self
                    .snapshot
                    .customers
                    .column(&a.attribute)
                    .unwrap_or_else(|| {
                        panic!("reference: `{}` is no column of customers", a.attribute)
                    });
                self.snapshot
                    .customers
                    .rows
                    .iter()
                    .map(|row| self.test(&row[column], a.op, a.value.as_ref(), a.ignore_case))
                    .collect()
            }
            Condition::Event(e) => self.event_condition(e),
            Condition::Sequence(sequence) => self.sequence_condition(sequence),
        }
    }

    /// A sequence: for every event that may serve the first step (in the period), the
    /// earliest event after it for each next step — for a fixed first event, taking the
    /// earliest possible event at every step never rules out a chain the definition admits
    /// (any later choice only narrows what may follow) — then whether the last one lies within
    /// `within` of the first. Timestamps strictly increase along the chain, so an event never
    /// serves two steps and equal instants are never consecutive.
    fn sequence_condition(&self, sequence: &SequenceCondition) -> Vec<bool> {
        let within = sequence.within.as_ref().map(duration_micros);
        let steps = &sequence.steps;
        self.events
            .iter()
            .map(|events| {
                let mut events: Vec<&Event> = events.iter().collect();
                events.sort_by_key(|ev| ev.ts);
                let serves = |ev: &Event, k: usize| {
                    steps[k].events.contains(&ev.event_type)
                        && steps[k].filters.iter().all(|f| {
                            self.test(
                                self.event_cell(ev, &f.property),
                                f.op,
                                f.value.as_ref(),
                                f.ignore_case,
                            )
                        })
                        && (k > 0 || self.in_period(&sequence.period, ev.ts))
                };
                events.iter().any(|first| {
                    if !serves(first, 0) {
                        return false;
                    }
                    let deadline = within.map(|w| first.ts + w);
                    let mut at = first.ts;
                    (1..steps.len()).all(|k| {
                        let next = events.iter().find(|ev| {
                            ev.ts > at && deadline.is_none_or(|d| ev.ts <= d) && serves(ev, k)
                        });
                        match next {
                            Some(ev) => {
                                at = ev.ts;
                                true
                            }
                            None => false,
                        }
                    })
                })
            })
            .collect()
    }

    /// Whether `ts` lies in `period` (and at or before `as_of`).
    fn in_period(&self, period: &Period, ts: i64) -> bool {
        let as_of = self.as_of;
        match period {
            Period::AllTime => ts <= as_of,
            Period::Last(d) => as_of - duration_micros(d) < ts && ts <= as_of,
            Period::BeforeLast(d) => ts <= as_of - duration_micros(d),
            Period::Since(since) => since.timestamp_micros() <= ts && ts <= as_of,
            Period::Between(from, to) => {
                from.timestamp_micros() <= ts && ts < to.timestamp_micros() && ts <= as_of
            }
        }
    }

    /// An attribute condition or a `where` filter on one cell.
    fn test(&self, cell: &Cell, op: Op, value: Option<&Value>, ignore_case: bool) -> bool {
        let set = match cell {
            Cell::Null => false,
            Cell::List(items) => !items.is_empty(),
            _ => true,
        };
        match op {
            Op::IsSet => return set,
            Op::IsNotSet => return !set,
            _ => {}
        }
        let value = value.unwrap_or_else(|| panic!("reference: `{op}` without a value"));
        // A null list counts as an empty list; any other null fails every comparison.
        let cell = match (cell, op) {
            (Cell::Null, Op::HasAny | Op::HasAll | Op::HasNone) => &Cell::List(Vec::new()),
            (Cell::Null, _) => return false,
            _ => cell,
        };
        match cell {
            Cell::Null | Cell::Other => false,
            Cell::Text(text) => test_text(text, op, value, ignore_case),
            Cell::Int(_) | Cell::Decimal(..) | Cell::Float(_) => match cell.number() {
                Some(x) => compare_number(&x, op, value),
                None => false, // NaN
            },
            Cell::Time(t) => self.compare_time(*t, op, value),
            Cell::Date(days) => {
                let date = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                    + chrono::TimeDelta::days(i64::from(*days));
                self.compare_time(first_instant_of(date, self.tz), op, value)
            }
            Cell::Bool(b) => match (op, value) {
                (Op::Eq, Value::Bool(v)) => b == v,
                _ => false,
            },
            Cell::List(items) => {
                let Value::TextList(values) = value else {
                    return false;
                };
                let has = |v: &String| items.iter().any(|item| item.as_ref() == Some(v));
                match op {
                    Op::HasAny => values.iter().any(has),
                    Op::HasAll => values.iter().all(has),
                    Op::HasNone => !values.iter().any(has),
                    _ => false,
                }
            }
        }
    }

    /// A timestamp (µs) against a timestamp operator.
    fn compare_time(&self, t: i64, op: Op, value: &Value) -> bool {
        let instant = |v: &Value| match v {
            Value::Instant(at) => Some(at.timestamp_micros()),
            // `eq`/`neq` keep a string; it is an instant on a timestamp column.
            Value::Text(_) => v.instant_in(self.tz).map(|at| at.timestamp_micros()),
            _ => None,
        };
        match (op, value) {
            (Op::WithinLast, Value::Duration(d)) => {
                self.as_of - duration_micros(d) < t && t <= self.as_of
            }
            (Op::OlderThan, Value::Duration(d)) => t <= self.as_of - duration_micros(d),
            (Op::Between, Value::InstantRange(lo, hi)) => {
                lo.timestamp_micros() <= t && t <= hi.timestamp_micros()
            }
            (Op::Eq | Op::Neq | Op::Gt | Op::Gte | Op::Lt | Op::Lte, v) => match instant(v) {
                Some(v) => ordering_holds(op, t.cmp(&v)),
                None => false,
            },
            _ => false,
        }
    }

    fn event_condition(&self, e: &EventCondition) -> Vec<bool> {
        let matching: Vec<Vec<&Event>> = self
            .events
            .iter()
            .map(|events| {
                events
                    .iter()
                    .filter(|ev| self.event_matches(e, ev))
                    .collect()
            })
            .collect();

        if let Some(follow) = &e.not_followed_by {
            let within = duration_micros(&follow.within);
            return matching
                .iter()
                .zip(&self.events)
                .map(|(matched, all)| {
                    let Some(a) = matched.iter().map(|ev| ev.ts).max() else {
                        return false;
                    };
                    if a + within > self.as_of {
                        return false;
                    }
                    !all.iter().any(|ev| {
                        follow.events.contains(&ev.event_type)
                            && a < ev.ts
                            && ev.ts <= a + within
                            && follow.filters.iter().all(|f| {
                                self.test(
                                    self.event_cell(ev, &f.property),
                                    f.op,
                                    f.value.as_ref(),
                                    f.ignore_case,
                                )
                            })
                    })
                })
                .collect();
        }

        let measures: Vec<Option<Measured>> = matching
            .iter()
            .map(|events| self.measure(&e.measure, events))
            .collect();
        let comparison = e
            .comparison
            .clone()
            .unwrap_or_else(|| kitle_planner::Comparison {
                op: Op::Gte,
                value: Value::Number(Decimal::from(1)),
            });
        match comparison.op {
            Op::TopPercent | Op::BottomPercent => {
                let Value::Number(v) = &comparison.value else {
                    panic!("reference: a percent that is not a number");
                };
                // Computed in doubles exactly as written.
                let v: f64 = v.to_string().parse().expect("a decimal parses as f64");
                let population: Vec<&Measured> = measures.iter().flatten().collect();
                let n = population.len();
                measures
                    .iter()
                    .map(|m| {
                        let Some(m) = m else {
                            return false;
                        };
                        let below = population.iter().filter(|other| **other < m).count();
                        let p = if n == 1 {
                            0.0
                        } else {
                            below as f64 / (n - 1) as f64
                        };
                        if comparison.op == Op::TopPercent {
                            p >= 1.0 - v / 100.0
                        } else {
                            p <= v / 100.0
                        }
                    })
                    .collect()
            }
            op => measures
                .iter()
                .map(|m| match m {
                    None => false,
                    Some(Measured::Number(x)) => compare_number(x, op, &comparison.value),
                    Some(Measured::Time(t)) => self.compare_time(*t, op, &comparison.value),
                })
                .collect(),
        }
    }

    fn event_cell(&self, ev: &Event, column: &str) -> &Cell {
        let c = self
            .snapshot
            .events
            .column(column)
            .unwrap_or_else(|| panic!("reference: `{column}` is no column of events"));
        &self.snapshot.events.rows[ev.row][c]
    }

    fn event_matches(&self, e: &EventCondition, ev: &Event) -> bool {
        self.in_period(&e.period, ev.ts)
            && e.events.contains(&ev.event_type)
            && e.filters.iter().all(|f| {
                self.test(
                    self.event_cell(ev, &f.property),
                    f.op,
                    f.value.as_ref(),
                    f.ignore_case,
                )
            })
    }

    /// The measure over one customer's matching events; `None` when missing.
    fn measure(&self, measure: &Measure, events: &[&Event]) -> Option<Measured> {
        let values = |column: &str| -> Vec<&Cell> {
            events
                .iter()
                .map(|ev| self.event_cell(ev, column))
                .filter(|c| !c.is_null())
                .collect()
        };
        let count = |n: usize| Some(Measured::Number(Exact::from_mantissa(n as i128, 0)));
        match measure {
            Measure::Count => count(events.len()),
            Measure::Distinct(column) => {
                let keys: HashSet<String> = values(column)
                    .into_iter()
                    .filter_map(Cell::distinct_key)
                    .collect();
                count(keys.len())
            }
            Measure::ActiveDays => {
                let days: HashSet<NaiveDate> = events
                    .iter()
                    .map(|ev| {
                        Utc.timestamp_micros(ev.ts)
                            .unwrap()
                            .with_timezone(&self.tz)
                            .date_naive()
                    })
                    .collect();
                count(days.len())
            }
            Measure::FirstTime => events.iter().map(|ev| ev.ts).min().map(Measured::Time),
            Measure::LastTime => events.iter().map(|ev| ev.ts).max().map(Measured::Time),
            Measure::Min(column) => values(column)
                .into_iter()
                .filter_map(Cell::number)
                .min()
                .map(Measured::Number),
            Measure::Max(column) => values(column)
                .into_iter()
                .filter_map(Cell::number)
                .max()
                .map(Measured::Number),
            Measure::Sum(column) => Some(Measured::Number(exact_sum(&values(column)).0)),
            Measure::Avg(column) => {
                let values = values(column);
                if values.is_empty() {
                    return None;
                }
                let n = values.len() as u64;
                let average = match exact_sum(&values).1 {
                    Sum::Exact(mantissa, scale) => nearest_f64_of_quotient(mantissa, scale, n),
                    Sum::Float(total) => total / n as f64,
                };
                Exact::from_f64(average).map(Measured::Number)
            }
        }
    }
}

enum Sum {
    /// `mantissa × 10^-scale`, exactly.
    Exact(i128, i8),
    /// A float column's sum (the spec makes exactness promises for decimals only).
    Float(f64),
}

/// The sum of numeric cells (nulls already left out), exactly for integers and decimals.
fn exact_sum(values: &[&Cell]) -> (Exact, Sum) {
    let mut mantissa: i128 = 0;
    let mut scale: Option<i8> = None;
    let mut float: Option<f64> = None;
    for value in values {
        match value {
            Cell::Int(i) => {
                assert!(scale.is_none_or(|s| s == 0), "mixed number kinds");
                scale = Some(0);
                mantissa = mantissa.checked_add(*i).expect("sum overflows i128");
            }
            Cell::Decimal(m, s) => {
                assert!(scale.is_none_or(|t| t == *s), "mixed decimal scales");
                scale = Some(*s);
                mantissa = mantissa.checked_add(*m).expect("sum overflows i128");
            }
            Cell::Float(f) => *float.get_or_insert(0.0) += f,
            other => panic!("reference: summing {other:?}"),
        }
    }
    match float {
        Some(total) => (
            Exact::from_f64(total).unwrap_or(Exact::PosInf),
            Sum::Float(total),
        ),
        None => {
            let scale = scale.unwrap_or(0);
            (
                Exact::from_mantissa(mantissa, scale),
                Sum::Exact(mantissa, scale),
            )
        }
    }
}

fn ordering_holds(op: Op, ordering: Ordering) -> bool {
    match op {
        Op::Eq => ordering == Ordering::Equal,
        Op::Neq => ordering != Ordering::Equal,
        Op::Gt => ordering == Ordering::Greater,
        Op::Gte => ordering != Ordering::Less,
        Op::Lt => ordering == Ordering::Less,
        Op::Lte => ordering != Ordering::Greater,
        _ => false,
    }
}

/// An exact number against a number operator.
fn compare_number(x: &Exact, op: Op, value: &Value) -> bool {
    match (op, value) {
        (Op::Between, Value::NumberRange(lo, hi)) => {
            Exact::from_decimal(lo) <= *x && *x <= Exact::from_decimal(hi)
        }
        (Op::Eq | Op::Neq | Op::Gt | Op::Gte | Op::Lt | Op::Lte, Value::Number(v)) => {
            ordering_holds(op, x.cmp(&Exact::from_decimal(v)))
        }
        _ => false,
    }
}

/// A set text against a text operator.
fn test_text(text: &str, op: Op, value: &Value, ignore_case: bool) -> bool {
    let Some(values) = value.texts() else {
        return false;
    };
    let fold = |s: &str| {
        if ignore_case {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    let subject = fold(text);
    let values: Vec<String> = values.into_iter().map(fold).collect();
    match op {
        Op::Eq | Op::In => values.contains(&subject),
        Op::Neq | Op::NotIn => !values.contains(&subject),
        Op::Contains => values.iter().any(|v| subject.contains(v.as_str())),
        Op::NotContains => !values.iter().any(|v| subject.contains(v.as_str())),
        Op::StartsWith => values.iter().any(|v| subject.starts_with(v.as_str())),
        Op::EndsWith => values.iter().any(|v| subject.ends_with(v.as_str())),
        Op::DomainIn => {
            // The address's own text, not the case-folded one: the domain is lower-cased
            // either way.
            let Some((_, domain)) = text.rsplit_once('@') else {
                return false;
            };
            let domain = domain.to_lowercase();
            values.iter().any(|d| {
                let d = d.to_lowercase();
                domain == d || domain.ends_with(&format!(".{d}"))
            })
        }
        _ => false,
    }
}

/// The A/B bucket of a customer: the first 8 bytes of SHA-256(`salt:customer_id`) as a
/// big-endian u64, modulo 100.
pub fn bucket(salt: &str, customer_id: &str) -> u64 {
    let digest = Sha256::digest(format!("{salt}:{customer_id}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % 100
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Exact {
        let dec: Decimal = text.parse().unwrap();
        Exact::from_decimal(&dec)
    }

    #[test]
    fn exact_numbers_order_like_numbers() {
        assert!(Exact::from_mantissa(3754, 2) > d("37.535"));
        assert!(Exact::from_mantissa(3753, 2) < d("37.535"));
        assert_eq!(Exact::from_mantissa(450, 2), d("4.5"));
        assert!(Exact::from_mantissa(5, 0) >= d("4.5"));
        assert!(Exact::from_mantissa(4, 0) < d("4.5"));
        assert!(d("-1.5") < d("-1.25"));
        assert!(d("-0.001") < d("0"));
        assert_eq!(Exact::from_mantissa(-0, 3), d("0"));
        assert_eq!(Exact::from_mantissa(12, -2), d("1200"));
        assert_eq!(
            Exact::from_f64(0.1).unwrap().cmp(&d("0.1")),
            Ordering::Greater
        );
        assert_eq!(Exact::from_f64(37.5).unwrap(), d("37.5"));
        assert_eq!(Exact::from_f64(-0.0).unwrap(), d("0"));
        assert!(Exact::from_f64(f64::INFINITY).unwrap() > d("1e30"));
        assert!(Exact::from_f64(f64::NAN).is_none());
    }

    #[test]
    fn averages_are_the_nearest_double() {
        assert_eq!(nearest_f64_of_quotient(1000, 2, 3), 10.0 / 3.0);
        assert_eq!(nearest_f64_of_quotient(-1, 0, 3), -1.0 / 3.0);
        assert_eq!(nearest_f64_of_quotient(37535, 3, 1), 37.535);
        assert_eq!(nearest_f64_of_quotient(1, 1, 1), 0.1);
        assert_eq!(nearest_f64_of_quotient(0, 2, 7), 0.0);
    }

    #[test]
    fn bucket_matches_sha256() {
        let digest = Sha256::digest(b"a:b");
        let first = u64::from_be_bytes(digest[..8].try_into().unwrap());
        assert_eq!(bucket("a", "b"), first % 100);
        assert!(bucket("kis-2025", "c001") < 100);
    }

    #[test]
    fn dates_start_at_their_first_instant() {
        let date = NaiveDate::from_ymd_opt(2025, 11, 28).unwrap();
        assert_eq!(
            first_instant_of(date, Tz::UTC),
            Utc.with_ymd_and_hms(2025, 11, 28, 0, 0, 0)
                .unwrap()
                .timestamp_micros()
        );
        assert_eq!(
            first_instant_of(date, Tz::Europe__Istanbul),
            Utc.with_ymd_and_hms(2025, 11, 27, 21, 0, 0)
                .unwrap()
                .timestamp_micros()
        );
        // Chile skipped 2024-09-08 00:00 → 01:00 (UTC-4 → UTC-3): the day starts 04:00 UTC.
        let gap = NaiveDate::from_ymd_opt(2024, 9, 8).unwrap();
        assert_eq!(
            first_instant_of(gap, Tz::America__Santiago),
            Utc.with_ymd_and_hms(2024, 9, 8, 4, 0, 0)
                .unwrap()
                .timestamp_micros()
        );
    }
}
