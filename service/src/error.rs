//! How a command fails: a message for stderr and the exit code the spec gives it (2 for bad
//! input — arguments, definitions, SQL — and 1 for a failure at run time).

use std::fmt;

use kitle_data::Blame;

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

impl CliError {
    /// The exit code of a failure blamed on `blame`: 2 for the caller's input, 1 for everything
    /// that failed while running (the store, the engine, a limit, a conflicting writer).
    fn blamed(blame: Blame, message: String) -> Self {
        match blame {
            Blame::Input => Self::input(message),
            _ => Self::runtime(message),
        }
    }
}

impl From<kitle_data::Error> for CliError {
    fn from(e: kitle_data::Error) -> Self {
        Self::blamed(e.blame(), e.to_string())
    }
}

impl From<kitle_planner::Error> for CliError {
    fn from(e: kitle_planner::Error) -> Self {
        Self::blamed(e.blame(), e.to_string())
    }
}

impl From<datafusion::error::DataFusionError> for CliError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Self::blamed(kitle_data::classify(&e), e.to_string())
    }
}
