//! Erasure (KVKK, GDPR): forgetting a customer in everything kitle wrote, and keeping them out
//! of every later evaluation.
//!
//! What stays is the erasure list, in the manifest: the SHA-256 of each erased id (lower-case
//! hex of its UTF-8 bytes), the instant and the reason. Every evaluation excludes those ids
//! from its universe (see [`crate::tables::ContractTables::universe_plan`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One erased customer, as the manifest's erasure list records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Erasure {
    /// SHA-256 of the customer id (lower-case hex): the only trace of the id kept.
    pub sha256: String,
    /// When the erasure was committed.
    pub at: DateTime<Utc>,
    /// Why, as the caller gave it (`--reason`, the request's `reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether every other file kitle wrote was rewritten without the id; `false` while that
    /// rewrite is still to be done (a killed erasure), which any later erasure finishes.
    pub rewritten: bool,
}

/// The SHA-256 of a customer id, as the erasure list holds it.
pub fn id_hash(customer_id: &str) -> String {
    let digest = Sha256::digest(customer_id.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_lower_case_hex_of_the_utf8_bytes() {
        assert_eq!(
            id_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(id_hash("müşteri-ğ1").len(), 64);
    }
}
