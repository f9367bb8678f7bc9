//! One module per command of the CLI.

pub mod generate;
pub mod sql;
