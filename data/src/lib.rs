//! `kitle-data`: everything that knows the store.
//!
//! Parsing store URLs into an `object_store` and registering it with DataFusion ([`store`]),
//! where things live ([`layout`]), the data contract's tables with their normalisation and the
//! skip-and-report of unreadable files ([`contract`], [`files`], [`tables`]), kitle's own
//! objects, their conditional commits and their garbage collection ([`memberships`],
//! [`definitions`], [`commit`], [`gc`]), the kill -9 campaign's failpoints ([`failpoint`]), and the
//! synthetic shop generator ([`generate`]). Nothing here knows what a segment means.
//!
//! Without the default `engine` feature only the contract's column types ([`contract`]) and
//! the layout ([`layout`]) are built, with no DataFusion: what the fuzz targets of the segment
//! language need, so that they build in a minute.

pub mod contract;
pub mod layout;

/// Declares every item given under `#[cfg(feature = "engine")]`: one list of what needs the
/// engine, so a module added to it cannot be left without the gate (`gc` once was, and a build
/// without the default features then failed).
macro_rules! engine {
    ($($item:item)*) => {
        $(
            #[cfg(feature = "engine")]
            $item
        )*
    };
}

engine! {
    pub mod blame;
    pub mod cluster;
    pub mod commit;
    pub mod counted;
    pub mod deadline;
    pub mod definitions;
    pub mod erasure;
    pub mod error;
    pub mod failpoint;
    pub mod files;
    pub mod functions;
    pub mod gc;
    pub mod generate;
    pub mod identity;
    pub mod json;
    pub mod memberships;
    pub mod own_tables;
    pub mod progress;
    pub mod readable;
    pub mod session;
    pub mod states;
    pub mod store;
    pub mod tables;
    #[cfg(test)]
    mod test_store;

    pub use blame::{Blame, classify};
    pub use error::{Error, Result};
    pub use progress::{NoProgress, Progress};
    pub use store::{S3Options, Store, StoreConfig};
}
