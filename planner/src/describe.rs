//! What the store offers a segment builder: the columns of `customers` and `events` with the
//! language's type family of each and the operators that family has, and the event types
//! present with how many events each has.
//!
//! A builder that offers only these choices produces definitions that validate (columns that
//! exist, operators their type has), and the operators come from the same place validation
//! reads them from ([`ColumnKind::operators`]), so the two cannot disagree.

use arrow::datatypes::Schema;
use kitle_data::contract::ContractTable;
use kitle_data::tables::ContractTables;
use serde::Serialize;

use crate::error::Error;
use crate::validate::ColumnKind;

/// One column as a builder needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnDescription {
    /// The column's name, as conditions name it.
    pub name: String,
    /// The language's type family: `text`, `number`, `timestamp`, `text_list`, `boolean` or
    /// `other` (which decides the operators and the kind of value).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The Arrow type the store's files are read as (`Utf8`, `Decimal128(18, 2)`, …).
    pub arrow_type: String,
    /// The operators a condition on this column may use, `is_set`/`is_not_set` first.
    pub operators: Vec<&'static str>,
}

/// How many events one event type has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventTypeCount {
    /// The `event_type`.
    pub event_type: String,
    /// Events of that type in the store, each `event_id` once.
    pub count: u64,
}

/// The store as a builder sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreDescription {
    /// Columns of `customers`: what attribute conditions may name (contract columns first,
    /// then custom ones).
    pub customers: Vec<ColumnDescription>,
    /// Columns of `events`: what `where` filters and measures may name.
    pub events: Vec<ColumnDescription>,
    /// The event types present, most frequent first.
    pub event_types: Vec<EventTypeCount>,
}

/// The language's name of a type family, as [`ColumnDescription::kind`] writes it.
pub fn kind_name(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Text => "text",
        ColumnKind::Number => "number",
        ColumnKind::Timestamp => "timestamp",
        ColumnKind::TextList => "text_list",
        ColumnKind::Boolean => "boolean",
        ColumnKind::Other => "other",
    }
}

/// Every column of `schema`, described.
pub fn describe_columns(schema: &Schema) -> Vec<ColumnDescription> {
    schema
        .fields()
        .iter()
        .map(|field| {
            let kind = ColumnKind::of(field.data_type());
            ColumnDescription {
                name: field.name().clone(),
                kind: kind_name(kind),
                arrow_type: field.data_type().to_string(),
                operators: kind
                    .operators(field.name())
                    .into_iter()
                    .map(|op| op.as_str())
                    .collect(),
            }
        })
        .collect()
}

/// The columns of both tables (cheap: from the files' footers, already checked by
/// `tables`), without the event type counts.
pub fn describe_columns_of(
    tables: &ContractTables,
) -> (Vec<ColumnDescription>, Vec<ColumnDescription>) {
    (
        describe_columns(&tables.schema(ContractTable::Customers)),
        describe_columns(&tables.schema(ContractTable::Events)),
    )
}

/// The event types present with their counts (a scan of the event files' type and id
/// columns, under `limits`).
pub async fn event_types_of(
    tables: &ContractTables,
    limits: &kitle_data::session::Limits,
) -> Result<Vec<EventTypeCount>, Error> {
    Ok(tables
        .event_type_counts(limits)
        .await?
        .into_iter()
        .map(|(event_type, count)| EventTypeCount { event_type, count })
        .collect())
}

/// The whole description of the store (the count's scan under `limits`).
pub async fn describe_store(
    tables: &ContractTables,
    limits: &kitle_data::session::Limits,
) -> Result<StoreDescription, Error> {
    let (customers, events) = describe_columns_of(tables);
    Ok(StoreDescription {
        customers,
        events,
        event_types: event_types_of(tables, limits).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, TimeUnit};

    #[test]
    fn operators_follow_the_column_type() {
        let schema = Schema::new(vec![
            Field::new("email", DataType::Utf8, true),
            Field::new("city", DataType::Utf8, true),
            Field::new("total_order_amount", DataType::Decimal128(18, 2), true),
            Field::new(
                "registered_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new(
                "tags",
                DataType::List(std::sync::Arc::new(Field::new(
                    "item",
                    DataType::Utf8,
                    true,
                ))),
                true,
            ),
        ]);
        let columns = describe_columns(&schema);
        let by_name = |n: &str| columns.iter().find(|c| c.name == n).unwrap();
        assert_eq!(by_name("email").kind, "text");
        assert!(by_name("email").operators.contains(&"domain_in"));
        assert!(!by_name("city").operators.contains(&"domain_in"));
        assert_eq!(by_name("total_order_amount").kind, "number");
        assert!(by_name("total_order_amount").operators.contains(&"between"));
        assert_eq!(by_name("registered_at").kind, "timestamp");
        assert!(by_name("registered_at").operators.contains(&"within_last"));
        assert_eq!(by_name("tags").kind, "text_list");
        assert_eq!(
            by_name("tags").operators,
            vec!["is_set", "is_not_set", "has_any", "has_all", "has_none"]
        );
    }
}
