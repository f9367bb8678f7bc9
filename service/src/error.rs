//! How a command fails: a message for stderr and the exit code the spec gives it (2 for bad
//! input — arguments, definitions, SQL — and 1 for a failure at run time).

use std::fmt;

/// A command's failure.
#[derive(Debug)]
pub struct CliError {
    /// Exit code: 1 or 2.
    pub code: i32,
    /// What went wrong, for a person.
    pub message: String,
}

impl CliError {
    /// The caller's input was wrong (exit code 2).
    pub fn input(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// Something failed while running (exit code 1).
    pub fn runtime(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<kitle_data::Error> for CliError {
    fn from(e: kitle_data::Error) -> Self {
        match e {
            kitle_data::Error::InvalidStoreUrl { .. }
            | kitle_data::Error::InvalidArgument { .. }
            | kitle_data::Error::IdentityMismatch { .. } => Self::input(e.to_string()),
            other => Self::runtime(other.to_string()),
        }
    }
}

impl From<kitle_planner::Error> for CliError {
    fn from(e: kitle_planner::Error) -> Self {
        match e {
            kitle_planner::Error::Execution(_) => Self::runtime(e.to_string()),
            other => Self::input(other.to_string()),
        }
    }
}

impl From<datafusion::error::DataFusionError> for CliError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Self::runtime(e.to_string())
    }
}
