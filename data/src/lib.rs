//! `kitle-data`: everything that knows the store.
//!
//! Parsing store URLs into an `object_store` and registering it with DataFusion ([`store`]),
//! where things live ([`layout`]), the data contract's tables with their normalisation and the
//! skip-and-report of unreadable files ([`contract`], [`files`], [`tables`]), and the synthetic
//! shop generator ([`generate`]). Nothing here knows what a segment means.

pub mod blame;
pub mod contract;
pub mod erasure;
pub mod error;
pub mod files;
pub mod functions;
pub mod generate;
pub mod identity;
pub mod json;
pub mod layout;
pub mod memberships;
pub mod progress;
pub mod readable;
pub mod session;
pub mod store;
pub mod tables;

pub use blame::{Blame, classify};
pub use error::{Error, Result};
pub use progress::{NoProgress, Progress};
pub use store::{S3Options, Store, StoreConfig};
