//! Helpers shared by the unit tests: the data contract's schemas and the conformance cases.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use serde_json::Value as Json;

use crate::StoreSchemas;

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The data contract's `customers` and `events` columns, plus the custom columns the
/// conformance store has (`loyalty_points` on customers, `coupon_code` on events).
pub(crate) fn contract_schemas() -> StoreSchemas {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let customers = Schema::new(vec![
        text("customer_id", false),
        text("email", true),
        text("phone", true),
        text("email_consent", true),
        text("sms_consent", true),
        Field::new("consent_updated_at", timestamp(), true),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        text("customer_group", true),
        Field::new("total_order_amount", DataType::Decimal128(18, 2), true),
        text("b2b_status", true),
        text("language", true),
        Field::new("registered_at", timestamp(), true),
        Field::new("password_updated_at", timestamp(), true),
        text("account_status", true),
        Field::new("birth_date", DataType::Date32, true),
        text("gender", true),
        Field::new("updated_at", timestamp(), false),
        Field::new("loyalty_points", DataType::Int64, true),
    ]);
    let mut event_fields = vec![
        text("event_id", false),
        text("customer_id", true),
        text("anonymous_id", true),
        text("event_type", false),
        Field::new("ts", timestamp(), false),
        text("session_id", true),
        text("product_id", true),
        text("category_id", true),
        text("brand_id", true),
        text("order_id", true),
        Field::new("amount", DataType::Decimal128(18, 2), true),
        Field::new("quantity", DataType::Int32, true),
        text("currency", true),
        text("payment_method", true),
        text("shipping_country", true),
        text("billing_country", true),
        Field::new("rating", DataType::Int8, true),
        text("campaign_id", true),
        text("checkout_step", true),
        text("page_id", true),
    ];
    event_fields.push(text("coupon_code", true));
    StoreSchemas {
        customers,
        events: Schema::new(event_fields),
    }
}

/// `shared/` beside the workspace (as the integration tests find it).
fn shared_dir() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    [here.join("../../shared"), here.join("../shared")]
        .into_iter()
        .find(|p| p.join("conformance").exists())
        .unwrap_or_else(|| panic!("../shared/conformance not found beside {}", here.display()))
}

/// Each conformance scenario's name and segment documents (the `expected` members are not the
/// planner's business).
pub(crate) fn conformance_scenarios() -> Vec<(String, Vec<Json>)> {
    let path = shared_dir().join("conformance/cases.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let cases: Json = serde_json::from_str(&text).expect("cases.json is JSON");
    cases["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .map(|s| {
            let name = s["name"].as_str().expect("scenario name").to_string();
            let segments = s["segments"].as_array().expect("segments").clone();
            (name, segments)
        })
        .collect()
}
