//! `kitle-data`: everything that knows the store.
//!
//! Parsing store URLs into an `object_store` and registering it with DataFusion ([`store`]),
//! where things live ([`layout`]), the data contract's tables with their normalisation and the
//! skip-and-report of unreadable files ([`contract`], [`files`], [`tables`]), kitle's own
//! objects and their conditional commits ([`memberships`], [`definitions`], [`commit`]), and the
//! synthetic shop generator ([`generate`]). Nothing here knows what a segment means.
//!
//! Without the default `engine` feature only the contract's column types ([`contract`]) and
//! the layout ([`layout`]) are built, with no DataFusion: what the fuzz targets of the segment
//! language need, so that they build in a minute.

pub mod contract;
pub mod layout;

#[cfg(feature = "engine")]
pub mod blame;
#[cfg(feature = "engine")]
pub mod commit;
#[cfg(feature = "engine")]
pub mod deadline;
#[cfg(feature = "engine")]
pub mod definitions;
#[cfg(feature = "engine")]
pub mod error;
#[cfg(feature = "engine")]
pub mod files;
#[cfg(feature = "engine")]
pub mod generate;
#[cfg(feature = "engine")]
pub mod json;
#[cfg(feature = "engine")]
pub mod memberships;
#[cfg(feature = "engine")]
pub mod own_tables;
#[cfg(feature = "engine")]
pub mod progress;
#[cfg(feature = "engine")]
pub mod readable;
#[cfg(feature = "engine")]
pub mod session;
#[cfg(feature = "engine")]
pub mod store;
#[cfg(feature = "engine")]
pub mod tables;

#[cfg(feature = "engine")]
pub use blame::{Blame, classify};
#[cfg(feature = "engine")]
pub use error::{Error, Result};
#[cfg(feature = "engine")]
pub use progress::{NoProgress, Progress};
#[cfg(feature = "engine")]
pub use store::{S3Options, Store, StoreConfig};
