//! What the OpenAPI document says beyond the handlers' annotations: the segment language as a
//! JSON Schema (`SegmentDefinition`, so that clients and generated tests send definitions of
//! the right shape), the bearer scheme, and whether it is required.
//!
//! Security depends on the configuration: with tokens every `/v1` route needs one (and the
//! document says so); without tokens the service only listens on loopback and takes requests
//! without one, so the document declares the scheme optional (`security: [{}, {bearer: []}]`).
//! `/healthz`, `/metrics` and `/openapi.json` never need a token; `/v1/auth` declares its own
//! (a token optional: it judges the one sent, if any).

use serde_json::{Value, json};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi, SecurityRequirement};

/// Adds the bearer scheme, the security requirements and the `SegmentDefinition` schema to
/// `openapi`; `tokens` is whether the service has tokens configured.
pub fn complete(openapi: &mut OpenApi, tokens: bool) {
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
    openapi.security = Some(if tokens {
        vec![bearer]
    } else {
        // Optional: a request with no token is served (loopback only).
        vec![SecurityRequirement::default(), bearer]
    });
    for (path, item) in openapi.paths.paths.iter_mut() {
        if matches!(path.as_str(), "/healthz" | "/metrics" | "/openapi.json") {
            for operation in operations(item) {
                operation.security = Some(vec![SecurityRequirement::default()]);
            }
        }
    }
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
        item.options.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Inserts the JSON Schemas of the segment language into the document (as JSON, after utoipa
/// serialised it): `SegmentDefinition` and the schemas it refers to, which the definition
/// request bodies point at.
pub fn with_language(mut document: Value) -> Value {
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in language_schemas() {
            schemas.insert(name.to_string(), schema);
        }
    }
    // The bodies that carry a definition point at it; instants are written as the language
    // writes them, cursors as the service writes them.
    let instant = json!({"type": "string", "pattern": INSTANT});
    if let Some(preview) = document.pointer_mut("/components/schemas/PreviewRequest/properties") {
        preview["definition"] = r("SegmentDefinition");
        preview["as_of"] = json!({
            "description": "One instant (default now) or a list of 1 to 60: RFC 3339 with an offset, or YYYY-MM-DD in the store's zone",
            "anyOf": [{"type": "null"}, instant.clone(),
                {"type": "array", "items": instant.clone(), "minItems": 1, "maxItems": 60}]});
    }
    if let Some(as_of) = document.pointer_mut("/components/schemas/RefreshRequest/properties/as_of")
    {
        *as_of = json!({"description": "The instant to evaluate at (default now, to the second)",
            "anyOf": [{"type": "null"}, instant]});
    }
    // Every operation that takes a parameter or a body may refuse it with a 400.
    if let Some(Value::Object(paths)) = document.pointer_mut("/paths") {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                let takes = operation
                    .get("parameters")
                    .and_then(Value::as_array)
                    .is_some_and(|p| !p.is_empty())
                    || operation.contains_key("requestBody");
                if let Some(Value::Object(responses)) = operation.get_mut("responses")
                    && takes
                    && !responses.contains_key("400")
                {
                    responses.insert(
                        "400".into(),
                        json!({"description": "The request is refused: the error's code and message say what and where",
                            "content": {"application/json": {"schema": r("ErrorBody")}}}),
                    );
                }
            }
        }
    }
    for (route, name, pattern) in [
        (
            "/v1/segments/{id}/members",
            "cursor",
            r"^[0-9]+-[0-9]+-([0-9a-f]{2})*$",
        ),
        ("/v1/segments/{id}/changes", "since", r"^[0-9]+-[0-9]+$"),
    ] {
        let pointer = format!("/paths/{}/get/parameters", route.replace('/', "~1"));
        if let Some(Value::Array(parameters)) = document.pointer_mut(&pointer) {
            for p in parameters.iter_mut().filter(|p| p["name"] == name) {
                p["schema"] = json!({"type": "string", "pattern": pattern});
            }
        }
    }
    if let Some(body) = document
        .pointer_mut("/paths/~1v1~1segments~1{id}/put/requestBody/content/application~1json/schema")
    {
        *body = r("SegmentDefinition");
    }
    document
}

/// `#/components/schemas/<name>`.
fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

const INSTANT: &str = r"^(19[7-9][0-9]|20[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]))?$";
const DURATION: &str = r"^[1-9][0-9]{0,5}[mhdw]$";
const ID: &str = r"^[a-z0-9][a-z0-9_-]{0,63}$";

/// The segment language (`../shared/spec/segment-language.md`) as JSON Schemas. The shapes are
/// exact; what depends on the store — whether a column exists and has the operator's type,
/// whether a referred segment exists, cycles — and two cross-field rules JSON Schema cannot
/// state (`between` needs `lo <= hi`, a bucket `from <= to`) are checked by the service and
/// refused with `400 invalid_definition`.
fn language_schemas() -> Vec<(&'static str, Value)> {
    let instant = json!({"type": "string", "pattern": INSTANT,
        "description": "YYYY-MM-DD (midnight in the store's zone) or RFC 3339 with an offset, at most 6 fractional digits"});
    let duration = json!({"type": "string", "pattern": DURATION,
        "description": "minutes, hours, days of 24 h or weeks: 30m, 24h, 30d, 2w"});
    let texts = json!({"anyOf": [{"type": "string"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1}]});
    let number = json!({"type": "number"});
    // An operator with the value it takes; attribute conditions and `where` filters share them.
    let comparisons = |subject: &str| -> Value {
        let with = |ops: Value, value: Value| {
            json!({"type": "object", "required": [subject, "op", "value"], "additionalProperties": false,
                "properties": {subject: {"type": "string", "minLength": 1}, "op": {"enum": ops},
                    "value": value, "ignore_case": {"type": "boolean"}}})
        };
        let without_case = |ops: Value, value: Value| {
            json!({"type": "object", "required": [subject, "op", "value"], "additionalProperties": false,
                "properties": {subject: {"type": "string", "minLength": 1}, "op": {"enum": ops},
                    "value": value}})
        };
        json!({"anyOf": [
            {"type": "object", "required": [subject, "op"], "additionalProperties": false,
             "properties": {subject: {"type": "string", "minLength": 1}, "op": {"enum": ["is_set", "is_not_set"]}}},
            with(json!(["eq", "neq", "contains", "not_contains", "starts_with", "ends_with"]), texts.clone()),
            with(json!(["in", "not_in", "domain_in"]), json!({"type": "array", "items": {"type": "string"}, "minItems": 1})),
            without_case(json!(["eq", "neq", "gt", "gte", "lt", "lte"]), json!({"anyOf": [number.clone(), instant.clone(), {"type": "boolean"}]})),
            without_case(json!(["between"]), json!({"anyOf": [
                {"type": "array", "items": number.clone(), "minItems": 2, "maxItems": 2},
                {"type": "array", "items": instant.clone(), "minItems": 2, "maxItems": 2}]})),
            without_case(json!(["within_last", "older_than"]), duration.clone()),
            without_case(json!(["has_any", "has_all", "has_none"]), json!({"type": "array", "items": {"type": "string"}, "minItems": 1}))
        ]})
    };
    let period = json!({"anyOf": [
        {"enum": ["all_time"]},
        {"type": "object", "required": ["last"], "additionalProperties": false, "properties": {"last": duration.clone()}},
        {"type": "object", "required": ["before_last"], "additionalProperties": false, "properties": {"before_last": duration.clone()}},
        {"type": "object", "required": ["since"], "additionalProperties": false, "properties": {"since": instant.clone()}},
        {"type": "object", "required": ["between"], "additionalProperties": false,
         "properties": {"between": {"type": "array", "items": instant.clone(), "minItems": 2, "maxItems": 2}}}
    ]});
    let column = json!({"type": "string", "minLength": 1});
    let measure = json!({"anyOf": [
        {"enum": ["count", "active_days", "first_time", "last_time"]},
        {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": false,
         "properties": {"sum": column, "avg": column, "min": column, "max": column, "distinct": column}}
    ]});
    // Event types are never validated (a type no event has matches nothing).
    let events = json!({"anyOf": [{"type": "string"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1}]});
    let filters = json!({"type": "array", "items": r("PropertyFilter")});
    let base = json!({"event": events, "where": filters, "period": period});
    let event = |extra: Value, required: Value| -> Value {
        let mut properties = base.clone();
        for (k, v) in extra.as_object().into_iter().flatten() {
            properties[k] = v.clone();
        }
        json!({"type": "object", "required": required, "additionalProperties": false, "properties": properties})
    };
    let event_condition = json!({"anyOf": [
        // Counted at least once: no op or value (the measure, if given, is `count`).
        event(json!({"measure": {"enum": ["count"]}}), json!(["event"])),
        event(json!({"measure": measure, "op": {"enum": ["eq", "neq", "gt", "gte", "lt", "lte"]},
            "value": {"anyOf": [number, instant]}}), json!(["event", "op", "value"])),
        event(json!({"measure": measure, "op": {"enum": ["between"]},
            "value": {"anyOf": [{"type": "array", "items": number, "minItems": 2, "maxItems": 2},
                {"type": "array", "items": instant, "minItems": 2, "maxItems": 2}]}}), json!(["event", "op", "value"])),
        event(json!({"measure": measure, "op": {"enum": ["within_last", "older_than"]}, "value": duration}), json!(["event", "op", "value"])),
        event(json!({"measure": measure, "op": {"enum": ["top_percent", "bottom_percent"]},
            "value": {"type": "number", "exclusiveMinimum": 0, "maximum": 100}}), json!(["event", "op", "value"])),
        event(json!({"not_followed_by": {"type": "object", "required": ["event", "within"], "additionalProperties": false,
            "properties": {"event": events, "within": duration, "where": filters}}}), json!(["event", "not_followed_by"]))
    ]});
    let list = json!({"type": "array", "items": r("Condition"), "minItems": 1});
    let single = |key: &str, value: Value| json!({"type": "object", "required": [key], "additionalProperties": false, "properties": {key: value}});
    let condition = json!({
    "description": "One condition: exactly one of all, any, not, segment, bucket, sql, attribute, event.",
    "anyOf": [
        single("all", list.clone()),
        single("any", list),
        single("not", r("Condition")),
        single("segment", json!({"type": "string", "pattern": ID})),
        single("bucket", json!({"type": "object", "required": ["salt", "from", "to"], "additionalProperties": false,
            "properties": {"salt": {"type": "string"}, "from": {"type": "integer", "minimum": 0, "maximum": 100},
                "to": {"type": "integer", "minimum": 0, "maximum": 100}}})),
        single("sql", json!({"type": "string", "minLength": 1, "pattern": r"\S",
            "description": "A read-only query over events, customers and identities returning customer_id"})),
        r("AttributeCondition"),
        r("EventCondition")
    ]});
    let cron = r"^(\*|[0-5]?[0-9])(/[1-9][0-9]?)? (\*|1?[0-9]|2[0-3])(/[1-9][0-9]?)? (\*|[1-9]|[12][0-9]|3[01]) (\*|[1-9]|1[0-2]) (\*|[0-6])$";
    vec![
        (
            "SegmentDefinition",
            json!({
            "description": "A segment definition (../shared/spec/segment-language.md). What depends on the store — whether columns exist and have the operators' types, whether referred segments exist, cycles — and two cross-field rules (between's lo <= hi, a bucket's from <= to) are checked by the service: 400 invalid_definition, with every problem's JSON path.",
            "type": "object", "required": ["condition"], "additionalProperties": false,
            "properties": {
                "id": {"type": "string", "pattern": ID},
                "name": {"type": "string"},
                "description": {"type": "string"},
                "refresh": {"anyOf": [{"enum": ["manual", "hourly", "nightly"]}, {"type": "string", "pattern": cron}]},
                "condition": r("Condition")
            }}),
        ),
        ("Condition", condition),
        ("AttributeCondition", comparisons("attribute")),
        ("PropertyFilter", comparisons("property")),
        ("EventCondition", event_condition),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_of_the_language_resolves() {
        let names: Vec<&str> = language_schemas().iter().map(|(n, _)| *n).collect();
        let text =
            Value::Array(language_schemas().into_iter().map(|(_, s)| s).collect()).to_string();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(
                names.contains(&name.as_str()),
                "{name} is referred to but not defined"
            );
        }
    }

    #[test]
    fn security_is_optional_without_tokens_and_required_with_them() {
        let mut doc = OpenApi::default();
        complete(&mut doc, false);
        assert_eq!(doc.security.as_ref().unwrap().len(), 2);
        let mut doc = OpenApi::default();
        complete(&mut doc, true);
        assert_eq!(doc.security.as_ref().unwrap().len(), 1);
    }
}
