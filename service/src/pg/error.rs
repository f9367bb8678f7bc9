//! Analyst SQL's failures as PostgreSQL errors: a SQLSTATE a client can act on and the
//! message. Every error is an `ERROR` (the statement fails, the connection stays usable);
//! only a failed login is `FATAL`.

use pgwire::error::{ErrorInfo, PgWireError};

use crate::analyst::error::Fault;
use crate::analyst::{AnalystError, RefusalKind};

/// An `ERROR` with `code` (a SQLSTATE) and `message`.
pub fn error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// A `FATAL` error that ends the connection (a refused login).
pub fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// The SQLSTATE of an analyst failure.
pub fn sqlstate(e: &AnalystError) -> &'static str {
    match e {
        AnalystError::Refused(r) => match r.kind {
            // "cannot execute INSERT in a read-only transaction"
            RefusalKind::Write => "25006",
            RefusalKind::EngineSetting => "42501",
            RefusalKind::UnknownSetting => "42704",
            RefusalKind::Unsupported => "0A000",
        },
        AnalystError::Query { fault, .. } => match fault {
            Fault::Syntax => "42601",
            Fault::UndefinedTable => "42P01",
            Fault::UndefinedColumn => "42703",
            Fault::UndefinedFunction => "42883",
            Fault::Ambiguous => "42702",
            Fault::Unsupported => "0A000",
            Fault::DivisionByZero => "22012",
            Fault::InvalidValue => "22023",
            Fault::Other => "42000",
        },
        // "canceling statement due to statement timeout"
        AnalystError::TimeLimit(_) => "57014",
        AnalystError::MemoryLimit(_) => "53200",
        AnalystError::RowLimit(_) => "54000",
        AnalystError::Store(_) => "58030",
        _ => "XX000",
    }
}

impl From<AnalystError> for PgWireError {
    fn from(e: AnalystError) -> Self {
        if !e.is_callers() {
            tracing::error!(error = %e, "analyst SQL failed over the PostgreSQL protocol");
        }
        error(sqlstate(&e), e.to_string())
    }
}
