//! How analyst SQL fails, sorted by who is to blame: the statement (refused, or a wrong
//! query), a limit of the configuration, or the service itself (the store, the engine). Front
//! ends map these to their own codes: HTTP codes in `http/sql.rs`, SQLSTATEs in `pg/error.rs`.

use std::time::Duration;

use datafusion::error::DataFusionError;
use kitle_data::Blame;

use super::policy::Refusal;

/// What is wrong with a query, for front ends that name it (a PostgreSQL SQLSTATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// It does not parse.
    Syntax,
    /// It names a table that does not exist.
    UndefinedTable,
    /// It names a column that does not exist.
    UndefinedColumn,
    /// It names a function that does not exist, or calls one with arguments it does not take.
    UndefinedFunction,
    /// A column reference matches more than one column.
    Ambiguous,
    /// The engine does not implement what it asks for.
    Unsupported,
    /// It divides by zero.
    DivisionByZero,
    /// A value cannot be cast or read as the type asked for.
    InvalidValue,
    /// Anything else the planner refuses (types, grouping, …).
    Other,
}

/// A failure of analyst SQL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalystError {
    /// The statement is not allowed (it writes, changes an engine setting, or is of a kind
    /// kitle does not run).
    #[error("{}", .0.message)]
    Refused(Refusal),
    /// The query is wrong: syntax, an unknown table or column, types, a failing cast or
    /// division. The message is the engine's.
    #[error("{message}")]
    Query {
        /// What is wrong with it.
        fault: Fault,
        /// The engine's message.
        message: String,
    },
    /// The query ran longer than the time limit.
    #[error("the query ran longer than the configured limit of {} (sql_timeout_seconds)", seconds(*.0))]
    TimeLimit(Duration),
    /// The query needed more memory than the limit.
    #[error("the query needs more memory than the configured limit (sql_memory_limit_mb): {0}")]
    MemoryLimit(String),
    /// A plain result held more rows than the cap.
    #[error(
        "the result has more than {0} rows (sql_max_rows); add a LIMIT or aggregate, or read \
         it through a cursor"
    )]
    RowLimit(usize),
    /// The store could not be read (listing, a file, kitle's own objects).
    #[error("{0}")]
    Store(String),
    /// The engine failed for a reason that is not the query's.
    #[error("{0}")]
    Engine(String),
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}

impl AnalystError {
    /// The label of this failure in the `outcome` of `kitle_sql_queries_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Refused(_) => "refused",
            Self::Query { .. } => "query_error",
            Self::TimeLimit(_) => "time_limit",
            Self::MemoryLimit(_) | Self::RowLimit(_) => "resource_limit",
            Self::Store(_) | Self::Engine(_) => "failed",
        }
    }

    /// Whether the caller is to blame (the statement or a limit it ran into) rather than the
    /// service.
    pub fn is_callers(&self) -> bool {
        !matches!(self, Self::Store(_) | Self::Engine(_))
    }
}

impl From<DataFusionError> for AnalystError {
    /// Who is to blame comes from the one classifier ([`kitle_data::classify`]); for the
    /// caller's errors, the [`Fault`] names what is wrong for the front ends that say so.
    fn from(error: DataFusionError) -> Self {
        let root = error.find_root();
        // A plan stopped from the inside at its deadline (`kitle_data::deadline`).
        if let DataFusionError::External(inner) = root
            && let Some(kitle_data::Error::TimeLimit { seconds, .. }) = inner.downcast_ref()
        {
            return Self::TimeLimit(Duration::from_secs_f64(*seconds));
        }
        let message = root.to_string();
        match kitle_data::classify(&error) {
            Blame::Limit => Self::MemoryLimit(message),
            Blame::Input | Blame::Evaluation => Self::Query {
                fault: fault(root),
                message,
            },
            Blame::Store => Self::Store(message),
            _ => Self::Engine(message),
        }
    }
}

/// What is wrong with a query the classifier blamed on the caller.
fn fault(root: &DataFusionError) -> Fault {
    use datafusion::arrow::error::ArrowError;
    use datafusion::common::SchemaError;
    match root {
        DataFusionError::SQL(..) => Fault::Syntax,
        DataFusionError::Plan(m) if m.starts_with("table '") && m.ends_with("not found") => {
            Fault::UndefinedTable
        }
        DataFusionError::Plan(m)
            if m.contains("Invalid function")
                || m.contains("No function matches")
                || m.contains("function '") =>
        {
            Fault::UndefinedFunction
        }
        DataFusionError::SchemaError(e, _) => match e.as_ref() {
            SchemaError::FieldNotFound { .. } => Fault::UndefinedColumn,
            SchemaError::AmbiguousReference { .. } => Fault::Ambiguous,
            _ => Fault::Other,
        },
        DataFusionError::NotImplemented(_) => Fault::Unsupported,
        DataFusionError::ArrowError(e, _) => match e.as_ref() {
            ArrowError::DivideByZero => Fault::DivisionByZero,
            _ => Fault::InvalidValue,
        },
        DataFusionError::Execution(m) if m.to_ascii_lowercase().contains("divide by zero") => {
            Fault::DivisionByZero
        }
        _ => Fault::Other,
    }
}

impl From<kitle_data::Error> for AnalystError {
    /// Reading the store's tables for a session failed: blamed by the one classifier.
    fn from(error: kitle_data::Error) -> Self {
        match error {
            kitle_data::Error::DataFusion(e) => e.into(),
            kitle_data::Error::TimeLimit { seconds, .. } => {
                Self::TimeLimit(Duration::from_secs_f64(seconds))
            }
            other => match other.blame() {
                Blame::Input | Blame::Evaluation => Self::Query {
                    fault: Fault::Other,
                    message: other.to_string(),
                },
                Blame::Limit => Self::MemoryLimit(other.to_string()),
                Blame::Store => Self::Store(other.to_string()),
                _ => Self::Engine(other.to_string()),
            },
        }
    }
}
