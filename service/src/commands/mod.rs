//! One module per command of the CLI.

pub mod cluster;
pub mod erase;
pub mod gc;
pub mod generate;
pub mod identity;
pub mod refresh;
pub mod segment;
pub mod serve;
pub mod sql;
