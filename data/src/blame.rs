//! Who is to blame for a failure: the one classifier of DataFusion (and store) errors that every
//! front end uses — the CLI's exit codes, the HTTP error codes, the PostgreSQL protocol's
//! SQLSTATEs and the planner's error kinds.
//!
//! DataFusion reports a syntax error, an unknown column, a full memory pool, a division by zero
//! and a failed object-store request through one error type, often wrapped several times
//! (`Context`, `Shared`, `ArrowError::ExternalError`, `External`). Front ends must not guess from
//! the message: a store failure blamed on the caller hides an outage, and a caller's typo
//! reported as a 500 pages the operator. [`classify`] walks the wrapping and answers with a
//! [`Blame`]; the front ends map each blame to their own codes in one place each.

use std::error::Error as StdError;

use arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Whose failure it is, and so how a front end reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Blame {
    /// The caller's input as written: SQL syntax, an unknown table or column, a type mismatch,
    /// a feature DataFusion does not support, a bad setting or argument. HTTP 400, exit 2.
    Input,
    /// The query ran but failed on the data it read: a division by zero, a cast that failed, an
    /// invalid argument to a function at run time. The caller's for analyst SQL (their query);
    /// the service's for a stored definition that fails during a refresh.
    Evaluation,
    /// A configured resource limit was hit (the memory pool). The caller's request was too big
    /// for the limits: HTTP 400 with the limit's name, never a crash.
    Limit,
    /// The store failed: an object-store request, local I/O, a Parquet file that cannot be read.
    /// The service's: HTTP 5xx, exit 1, naming what failed.
    Store,
    /// The engine itself failed: an internal error, a panicked task, anything unexpected. The
    /// service's.
    Engine,
    /// Another writer committed something that makes this write meaningless (a segment removed
    /// while it was being refreshed), or won the race for a commit too often: nothing was
    /// written, and trying again may succeed. HTTP 409, exit 1.
    Conflict,
}

impl Blame {
    /// Whether the caller can fix it by changing what they sent (input, evaluation, limit),
    /// as opposed to a failure of the service (store, engine).
    pub fn is_callers(self) -> bool {
        matches!(self, Blame::Input | Blame::Evaluation | Blame::Limit)
    }
}

/// Classifies a DataFusion error by its innermost meaningful cause.
pub fn classify(error: &DataFusionError) -> Blame {
    match error {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            classify(inner)
        }
        DataFusionError::Shared(inner) => classify(inner),
        DataFusionError::Collection(errors) => errors
            .iter()
            .map(classify)
            // The service's failure wins over the caller's: never hide an outage.
            .max_by_key(|b| severity(*b))
            .unwrap_or(Blame::Engine),
        DataFusionError::ArrowError(e, _) => classify_arrow(e),
        // The Parquet reader wraps what failed while decoding — a filter pushed into the scan
        // that fails on the data (a cast) is the query's, not the store's.
        DataFusionError::ParquetError(e) => match e.as_ref() {
            parquet::errors::ParquetError::External(inner) => classify_dyn(inner.as_ref()),
            _ => Blame::Store,
        },
        DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) => Blame::Store,
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Configuration(_) => Blame::Input,
        DataFusionError::ResourcesExhausted(_) => Blame::Limit,
        DataFusionError::Execution(_) => Blame::Evaluation,
        DataFusionError::External(e) => classify_dyn(e.as_ref()),
        DataFusionError::ExecutionJoin(_)
        | DataFusionError::Internal(_)
        | DataFusionError::Substrait(_)
        | DataFusionError::Ffi(_) => Blame::Engine,
    }
}

/// Classifies an Arrow error (raised by kernels on the data, or wrapping another error).
pub fn classify_arrow(error: &ArrowError) -> Blame {
    match error {
        ArrowError::ExternalError(e) => classify_dyn(e.as_ref()),
        ArrowError::IoError(..) | ArrowError::ParquetError(_) => Blame::Store,
        ArrowError::DivideByZero
        | ArrowError::ArithmeticOverflow(_)
        | ArrowError::CastError(_)
        | ArrowError::ParseError(_)
        | ArrowError::ComputeError(_)
        | ArrowError::InvalidArgumentError(_) => Blame::Evaluation,
        ArrowError::MemoryError(_) => Blame::Limit,
        _ => Blame::Engine,
    }
}

/// Classifies a boxed error of unknown type by trying the types that carry a meaning.
fn classify_dyn(error: &(dyn StdError + Send + Sync + 'static)) -> Blame {
    if let Some(e) = error.downcast_ref::<DataFusionError>() {
        classify(e)
    } else if let Some(e) = error.downcast_ref::<ArrowError>() {
        classify_arrow(e)
    } else if let Some(e) = error.downcast_ref::<crate::Error>() {
        e.blame()
    } else if let Some(parquet::errors::ParquetError::External(inner)) =
        error.downcast_ref::<parquet::errors::ParquetError>()
    {
        classify_dyn(inner.as_ref())
    } else if error.downcast_ref::<object_store::Error>().is_some()
        || error.downcast_ref::<std::io::Error>().is_some()
        || error
            .downcast_ref::<parquet::errors::ParquetError>()
            .is_some()
    {
        Blame::Store
    } else {
        Blame::Engine
    }
}

/// Order used when several errors are reported at once: the service's failures first.
fn severity(blame: Blame) -> u8 {
    match blame {
        Blame::Input => 0,
        Blame::Evaluation => 1,
        Blame::Limit => 2,
        Blame::Conflict => 3,
        Blame::Store => 4,
        Blame::Engine => 5,
    }
}

impl crate::Error {
    /// Whose failure this is (see [`Blame`]).
    pub fn blame(&self) -> Blame {
        use crate::Error;
        match self {
            Error::InvalidStoreUrl { .. }
            | Error::InvalidArgument { .. }
            | Error::IdentityMismatch { .. } => Blame::Input,
            Error::UnreadableFile { .. }
            | Error::Corrupt { .. }
            | Error::ObjectStore(_)
            | Error::Parquet(_)
            | Error::Io { .. } => Blame::Store,
            Error::DataFusion(e) => classify(e),
            Error::Arrow(e) => classify_arrow(e),
            Error::TimeLimit { .. } => Blame::Limit,
            Error::Cluster { data: true, .. } => Blame::Evaluation,
            Error::Cluster { .. } => Blame::Engine,
            Error::CommitConflict { .. } | Error::Conflict { .. } => Blame::Conflict,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn wrapped_errors_are_classified_by_their_cause() {
        let limit = DataFusionError::ResourcesExhausted("pool".into());
        assert_eq!(classify(&limit), Blame::Limit);
        let wrapped = DataFusionError::Context(
            "while running".into(),
            Box::new(DataFusionError::ArrowError(
                Box::new(ArrowError::ExternalError(Box::new(limit))),
                None,
            )),
        );
        assert_eq!(classify(&wrapped), Blame::Limit);
        let shared = DataFusionError::Shared(Arc::new(DataFusionError::ObjectStore(Box::new(
            object_store::Error::NotFound {
                path: "x".into(),
                source: "gone".into(),
            },
        ))));
        assert_eq!(classify(&shared), Blame::Store);
        assert!(!classify(&shared).is_callers());
    }

    #[test]
    fn the_callers_mistakes_and_the_services_failures_differ() {
        assert_eq!(
            classify(&DataFusionError::Plan("no table x".into())),
            Blame::Input
        );
        assert_eq!(
            classify(&DataFusionError::ArrowError(
                Box::new(ArrowError::DivideByZero),
                None
            )),
            Blame::Evaluation
        );
        assert_eq!(
            classify(&DataFusionError::Internal("bug".into())),
            Blame::Engine
        );
        let io = DataFusionError::External(Box::new(std::io::Error::other("disk")));
        assert_eq!(classify(&io), Blame::Store);
        let mixed = DataFusionError::Collection(vec![
            DataFusionError::Plan("typo".into()),
            DataFusionError::IoError(std::io::Error::other("disk")),
        ]);
        assert_eq!(classify(&mixed), Blame::Store);
        // A filter pushed into the Parquet scan that fails on the data is the query's.
        let pushed = DataFusionError::ParquetError(Box::new(
            parquet::errors::ParquetError::External(Box::new(ArrowError::CastError(
                "Cannot cast string 'c001' to value of Int32 type".into(),
            ))),
        ));
        assert_eq!(classify(&pushed), Blame::Evaluation);
        let torn = DataFusionError::ParquetError(Box::new(parquet::errors::ParquetError::General(
            "bad page header".into(),
        )));
        assert_eq!(classify(&torn), Blame::Store);
        let late = crate::Error::TimeLimit {
            what: "the preview".into(),
            seconds: 2.0,
            key: "preview_timeout_seconds",
        };
        assert_eq!(
            classify(&DataFusionError::External(Box::new(late))),
            Blame::Limit
        );
        let lost = crate::Error::CommitConflict {
            path: "memberships/manifest.json".into(),
            attempts: 64,
        };
        assert_eq!(lost.blame(), Blame::Conflict);
        let data = crate::Error::InvalidStoreUrl {
            url: "gs://x".into(),
            reason: "scheme".into(),
        };
        assert_eq!(data.blame(), Blame::Input);
    }
}
