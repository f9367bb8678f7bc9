//! Arrow cells as JSON values, the one conversion that explanations and SQL over HTTP share:
//! numbers stay numbers (decimals exactly as Arrow writes them), instants become RFC 3339 in
//! UTC, text stays text (Turkish letters intact).

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type};
use arrow::datatypes::{TimeUnit, UInt8Type, UInt16Type, UInt32Type, UInt64Type};
use chrono::DateTime;
use serde_json::{Value as Json, json};

/// One cell as JSON: numbers as numbers (decimals exactly, as written by Arrow), instants as
/// RFC 3339 UTC, text as text.
pub fn json_value(array: &dyn Array, row: usize) -> Json {
    // `logical_nulls`: a `NullArray` has no null buffer but every value is null.
    if array.logical_nulls().is_some_and(|n| n.is_null(row)) {
        return Json::Null;
    }
    let number = |text: String| {
        text.parse::<serde_json::Number>()
            .map(Json::Number)
            .unwrap_or(Json::String(text))
    };
    match array.data_type() {
        DataType::Boolean => Json::Bool(array.as_boolean().value(row)),
        DataType::Int8 => json!(array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => json!(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => json!(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => json!(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => json!(array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => json!(array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => json!(array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => json!(array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float64 => json!(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Json::String(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Json::String(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Json::String(array.as_string_view().value(row).to_string()),
        DataType::Timestamp(unit, _) => {
            let utc = arrow::compute::cast(
                &array.slice(row, 1),
                &DataType::Timestamp(TimeUnit::Microsecond, None),
            )
            .ok();
            let micros = utc.as_ref().map(|a| {
                a.as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                    .value(0)
            });
            match micros.and_then(DateTime::from_timestamp_micros) {
                Some(at) => Json::String(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                None => Json::String(format!("{unit:?} timestamp out of range")),
            }
        }
        DataType::Decimal128(..) | DataType::Float32 | DataType::Float16 => {
            number(display(array, row))
        }
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(row);
            Json::Array((0..items.len()).map(|i| json_value(&items, i)).collect())
        }
        DataType::LargeList(_) => {
            let items = array.as_list::<i64>().value(row);
            Json::Array((0..items.len()).map(|i| json_value(&items, i)).collect())
        }
        _ => Json::String(display(array, row)),
    }
}

/// A cell as Arrow displays it (for types JSON has no better form for).
pub fn display(array: &dyn Array, row: usize) -> String {
    arrow::util::display::array_value_to_string(array, row).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, Decimal128Array, Int64Array, NullArray, StringArray, TimestampMicrosecondArray,
    };

    use super::*;

    #[test]
    fn cells_keep_their_json_kind() {
        let cases: Vec<(ArrayRef, Json)> = vec![
            (Arc::new(NullArray::new(1)), Json::Null),
            (Arc::new(Int64Array::from(vec![Some(7)])), json!(7)),
            (Arc::new(Int64Array::from(vec![None::<i64>])), Json::Null),
            (
                Arc::new(
                    Decimal128Array::from(vec![123_456i128])
                        .with_precision_and_scale(18, 2)
                        .unwrap(),
                ),
                json!(1234.56),
            ),
            (Arc::new(StringArray::from(vec!["İğdır"])), json!("İğdır")),
            (
                Arc::new(
                    TimestampMicrosecondArray::from(vec![1_764_590_400_000_000])
                        .with_timezone("UTC"),
                ),
                json!("2025-12-01T12:00:00Z"),
            ),
        ];
        for (array, expected) in cases {
            assert_eq!(
                json_value(array.as_ref(), 0),
                expected,
                "{:?}",
                array.data_type()
            );
        }
    }
}
