//! One module per command of the CLI.

pub mod gc;
pub mod generate;
pub mod refresh;
pub mod segment;
pub mod serve;
pub mod sql;
