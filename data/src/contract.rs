//! The data contract: the columns of `customers` and `events`, their normalised Arrow types,
//! and which physical types a writer may have used for each.
//!
//! This is the one place that decides how a file written by another system is read: a column
//! of the contract is accepted when its physical type belongs to the column's [`ColumnKind`],
//! and is then cast to the kind's normalised type (timestamps to UTC microseconds, any string
//! type to `Utf8`, any numeric type to the contract's decimal or integer type). Extra columns
//! are kept, with their types normalised the same way.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The time zone every normalised timestamp carries.
pub const UTC: &str = "UTC";

/// What a column of the contract holds, and so which physical types are accepted for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Any string type, read as `Utf8`.
    Text,
    /// A list of strings (`tags`), read as `List<Utf8>`.
    TextList,
    /// A timestamp of any unit, zoned or not (naive is UTC), or a date; read as
    /// `Timestamp(Microsecond, "UTC")`.
    Timestamp,
    /// A calendar date, read as `Date32`; timestamps are accepted and truncated to their day.
    Date,
    /// Money: any integer, decimal or floating type, read as `Decimal128(18, 2)` (floats rounded).
    Decimal,
    /// A count: any numeric type, read as `Int32`.
    Int32,
    /// A small number (review stars): any numeric type, read as `Int8`.
    Int8,
}

impl ColumnKind {
    /// The normalised Arrow type of this kind.
    pub fn data_type(self) -> DataType {
        match self {
            ColumnKind::Text => DataType::Utf8,
            ColumnKind::TextList => {
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
            }
            ColumnKind::Timestamp => timestamp_type(),
            ColumnKind::Date => DataType::Date32,
            ColumnKind::Decimal => DataType::Decimal128(18, 2),
            ColumnKind::Int32 => DataType::Int32,
            ColumnKind::Int8 => DataType::Int8,
        }
    }

    /// Whether a file column of physical type `physical` can be read as this kind. Anything
    /// else makes the file unreadable (a timestamp written as text, a number written as text).
    pub fn accepts(self, physical: &DataType) -> bool {
        let physical = unwrap_dictionary(physical);
        match self {
            ColumnKind::Text => is_string(physical),
            ColumnKind::TextList => match physical {
                DataType::List(f)
                | DataType::LargeList(f)
                | DataType::ListView(f)
                | DataType::LargeListView(f)
                | DataType::FixedSizeList(f, _) => is_string(unwrap_dictionary(f.data_type())),
                _ => false,
            },
            ColumnKind::Timestamp | ColumnKind::Date => matches!(
                physical,
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
            ),
            ColumnKind::Decimal | ColumnKind::Int32 | ColumnKind::Int8 => is_numeric(physical),
        }
    }
}

/// `Timestamp(Microsecond, "UTC")`: the one timestamp type inside kitle.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
}

/// One column of the contract.
#[derive(Debug, Clone, Copy)]
pub struct ContractColumn {
    /// Column name.
    pub name: &'static str,
    /// What it holds.
    pub kind: ColumnKind,
    /// Whether a row with a null here is dropped (and a file without the column unreadable).
    pub required: bool,
}

const fn col(name: &'static str, kind: ColumnKind, required: bool) -> ContractColumn {
    ContractColumn {
        name,
        kind,
        required,
    }
}

use ColumnKind::*;

/// The columns of `customers`, in the contract's order.
pub const CUSTOMER_COLUMNS: &[ContractColumn] = &[
    col("customer_id", Text, true),
    col("email", Text, false),
    col("phone", Text, false),
    col("email_consent", Text, false),
    col("sms_consent", Text, false),
    col("consent_updated_at", Timestamp, false),
    col("tags", TextList, false),
    col("customer_group", Text, false),
    col("total_order_amount", Decimal, false),
    col("b2b_status", Text, false),
    col("language", Text, false),
    col("registered_at", Timestamp, false),
    col("password_updated_at", Timestamp, false),
    col("account_status", Text, false),
    col("birth_date", Date, false),
    col("gender", Text, false),
    col("updated_at", Timestamp, true),
];

/// The columns of `events`, in the contract's order (the partition column `date` comes after
/// them and any extra columns).
pub const EVENT_COLUMNS: &[ContractColumn] = &[
    col("event_id", Text, true),
    col("customer_id", Text, false),
    col("anonymous_id", Text, false),
    col("event_type", Text, true),
    col("ts", Timestamp, true),
    col("session_id", Text, false),
    col("product_id", Text, false),
    col("category_id", Text, false),
    col("brand_id", Text, false),
    col("order_id", Text, false),
    col("amount", Decimal, false),
    col("quantity", Int32, false),
    col("currency", Text, false),
    col("payment_method", Text, false),
    col("shipping_country", Text, false),
    col("billing_country", Text, false),
    col("rating", Int8, false),
    col("campaign_id", Text, false),
    col("checkout_step", Text, false),
    col("page_id", Text, false),
];

/// The event types the engine knows out of the box, as the data contract lists them (any other
/// value is allowed and usable too). The generator emits all of them.
pub const EVENT_TYPES: &[&str] = &[
    "product_viewed",
    "product_added_to_cart",
    "product_removed_from_cart",
    "product_added_to_favorites",
    "product_reviewed",
    "order_created",
    "order_delivered",
    "order_refunded",
    "order_cancelled",
    "email_sent",
    "email_opened",
    "email_clicked",
    "sms_sent",
    "sms_clicked",
    "popup_form_submitted",
    "category_viewed",
    "brand_viewed",
    "checkout_step_viewed",
    "blog_viewed",
    "search_performed",
    "identified",
];

/// Which of the contract's tables a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContractTable {
    /// `customers/`.
    Customers,
    /// `events/`.
    Events,
}

impl ContractTable {
    /// The table's contract columns.
    pub fn columns(self) -> &'static [ContractColumn] {
        match self {
            ContractTable::Customers => CUSTOMER_COLUMNS,
            ContractTable::Events => EVENT_COLUMNS,
        }
    }

    /// The table's name in SQL.
    pub fn name(self) -> &'static str {
        match self {
            ContractTable::Customers => "customers",
            ContractTable::Events => "events",
        }
    }

    /// The contract column called `name`, if any.
    pub fn column(self, name: &str) -> Option<&'static ContractColumn> {
        self.columns().iter().find(|c| c.name == name)
    }

    /// The normalised schema: the contract's columns, then `extra` columns. Every field is
    /// nullable, because files may lack optional columns and rows with nulls in required
    /// columns are dropped after reading rather than failing the scan.
    pub fn schema(self, extra: &[Field]) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .columns()
            .iter()
            .map(|c| Field::new(c.name, c.kind.data_type(), true))
            .collect();
        fields.extend(extra.iter().cloned());
        Arc::new(Schema::new(fields))
    }
}

/// The normalised type of an extra (non-contract) column found in a file: string types become
/// `Utf8`, timestamps UTC microseconds, dictionaries their value type; `None` when the type is
/// not one kitle can compare (structs, maps, binary), in which case the column is left out.
pub fn normalise_extra_type(physical: &DataType) -> Option<DataType> {
    let physical = unwrap_dictionary(physical);
    Some(match physical {
        t if is_string(t) => DataType::Utf8,
        DataType::Timestamp(_, _) => timestamp_type(),
        DataType::Date64 => DataType::Date32,
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => DataType::Decimal128(*p, *s),
        DataType::Decimal256(_, s) => DataType::Decimal128(38, (*s).min(38)),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
            if is_string(unwrap_dictionary(f.data_type())) =>
        {
            ColumnKind::TextList.data_type()
        }
        DataType::Float16 => DataType::Float32,
        // The numeric types left (the other decimals and Float16 are widened above) stay.
        t if t.is_numeric() || matches!(t, DataType::Boolean | DataType::Date32) => {
            physical.clone()
        }
        _ => return None,
    })
}

fn unwrap_dictionary(t: &DataType) -> &DataType {
    match t {
        DataType::Dictionary(_, v) => unwrap_dictionary(v),
        other => other,
    }
}

/// Whether `t` is one of Arrow's string types (Utf8, LargeUtf8, Utf8View).
pub fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Whether `t` is one of Arrow's integer, floating or decimal types (Arrow's own
/// [`DataType::is_numeric`], named here beside [`is_string`]).
pub fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_accept_what_writers_write_and_refuse_text_timestamps() {
        assert!(Timestamp.accepts(&DataType::Timestamp(TimeUnit::Nanosecond, None)));
        assert!(Timestamp.accepts(&DataType::Timestamp(
            TimeUnit::Millisecond,
            Some("Europe/Istanbul".into())
        )));
        assert!(!Timestamp.accepts(&DataType::Utf8));
        assert!(Text.accepts(&DataType::Dictionary(
            Box::new(DataType::Int32),
            Box::new(DataType::LargeUtf8)
        )));
        assert!(Decimal.accepts(&DataType::Float64));
        assert!(!Decimal.accepts(&DataType::Utf8));
        assert!(TextList.accepts(&DataType::LargeList(Arc::new(Field::new(
            "element",
            DataType::Utf8View,
            true
        )))));
    }

    #[test]
    fn schemas_are_nullable_and_in_contract_order() {
        let s = ContractTable::Events.schema(&[Field::new("coupon_code", DataType::Utf8, true)]);
        assert_eq!(s.field(0).name(), "event_id");
        assert_eq!(s.field(4).data_type(), &timestamp_type());
        assert!(s.fields().iter().all(|f| f.is_nullable()));
        assert_eq!(s.fields().last().unwrap().name(), "coupon_code");
    }
}
