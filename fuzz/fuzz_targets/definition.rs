//! Fuzz target: segment definitions (and the small parsers of the language) from any bytes.
//! The checks are in `checks/definition.rs`.
#![no_main]

#[path = "../checks/definition.rs"]
mod definition;

use std::sync::OnceLock;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static SCHEMAS: OnceLock<kitle_planner::StoreSchemas> = OnceLock::new();
    definition::check(data, SCHEMAS.get_or_init(definition::schemas));
});
