//! Fuzz target: the JSON bodies of the HTTP API's requests, through the service's own body
//! types and checks (`service/src/http/bodies.rs`, compiled here as it is). The checks are in
//! `checks/request_bodies.rs`.
#![no_main]

// Only the body types and checks are used here; the service uses the rest.
#[allow(dead_code)]
#[path = "../../service/src/http/bodies.rs"]
mod bodies;
#[path = "../checks/definition.rs"]
mod definition;
#[path = "../checks/request_bodies.rs"]
mod request_bodies;

use std::sync::OnceLock;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static SCHEMAS: OnceLock<kitle_planner::StoreSchemas> = OnceLock::new();
    request_bodies::check(data, SCHEMAS.get_or_init(definition::schemas));
});
