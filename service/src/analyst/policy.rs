//! The read-only statement policy of analyst SQL: which statements run, which belong to a
//! client's session, and which are refused and why. One place decides for every front end
//! (`POST /v1/sql`, `kitle sql`, the PostgreSQL protocol), so a statement refused over one is
//! refused over all of them.
//!
//! Statements are judged twice: here, on the parsed statement (so a refusal names what was
//! written, before anything is planned), and again on the logical plan with DataFusion's
//! [`SQLOptions`] (so a write hidden inside a query — `SELECT … INTO`, a data-modifying `WITH` —
//! is refused too).

use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{ObjectName, Set, Statement};

/// Why a statement is refused; front ends turn it into their own codes (an HTTP code, a
/// PostgreSQL SQLSTATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// It would write: DDL, DML, `COPY … FROM`, `COPY … TO` a file, `SELECT … INTO`.
    Write,
    /// It would change a setting of the engine (`SET datafusion.…`), which every query of the
    /// service shares.
    EngineSetting,
    /// It sets a configuration parameter kitle does not know.
    UnknownSetting,
    /// kitle does not run this kind of statement (`PREPARE`, `LISTEN`, scrollable cursors…).
    Unsupported,
}

/// A refused statement: the kind and a message for people, naming the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What rule refused it.
    pub kind: RefusalKind,
    /// What was refused and why.
    pub message: String,
}

impl Refusal {
    /// A refusal of `kind` with `message`.
    pub fn new(kind: RefusalKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// What a parsed statement is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A query (`SELECT`, `VALUES`, `WITH`, `EXPLAIN`, `SHOW TABLES`, `DESCRIBE`): planned and
    /// run under the limits.
    Query,
    /// A statement about the client's own session — a harmless client setting, a transaction
    /// boundary, a cursor — that changes no data and no engine setting. Front ends with
    /// sessions (the PostgreSQL protocol) carry it out; the others refuse it.
    Session,
    /// Refused.
    Refused(Refusal),
}

/// The configuration parameters a client may set on its own session, by their lower-case
/// name: what drivers and BI tools send on connect (`DateStyle`, `client_encoding`,
/// `search_path`, `application_name`, `extra_float_digits`, …). None of them reaches the
/// engine; the PostgreSQL front end keeps them per connection and reports them back.
pub const CLIENT_SETTINGS: &[&str] = &[
    "application_name",
    "bytea_output",
    "client_encoding",
    "client_min_messages",
    "datestyle",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "extra_float_digits",
    "idle_in_transaction_session_timeout",
    "intervalstyle",
    "jit",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "lock_timeout",
    "search_path",
    "standard_conforming_strings",
    "statement_timeout",
    "timezone",
    "transaction_isolation",
    "transaction_read_only",
];

/// The leading keywords of statements that write (used to say "read-only" rather than
/// "unsupported" when refusing them).
const WRITE_KEYWORDS: &[&str] = &[
    "ALTER", "ANALYZE", "ATTACH", "CACHE", "CALL", "CLUSTER", "COMMENT", "COPY", "CREATE",
    "DELETE", "DENY", "DETACH", "DROP", "EXPORT", "GRANT", "INSERT", "INSTALL", "LOAD", "LOCK",
    "MERGE", "MSCK", "OPTIMIZE", "REFRESH", "REINDEX", "REMOVE", "RENAME", "REPLACE", "REVOKE",
    "TRUNCATE", "UNCACHE", "UNLOAD", "UPDATE", "UPSERT", "VACUUM",
];

/// The canonical (lower-case) name of a configuration parameter as written in `SET`/`SHOW`.
pub fn setting_name(name: &ObjectName) -> String {
    name.to_string().to_ascii_lowercase().replace('"', "")
}

/// Whether a client may set parameter `name` (any case) on its session; engine settings
/// (`datafusion.…`) and unknown parameters are refused with a [`Refusal`] saying which.
pub fn check_setting(name: &str) -> Result<(), Refusal> {
    let lower = name.to_ascii_lowercase();
    if CLIENT_SETTINGS.contains(&lower.as_str()) {
        Ok(())
    } else if lower.starts_with("datafusion.") {
        Err(Refusal::new(
            RefusalKind::EngineSetting,
            format!(
                "engine settings cannot be changed over analyst SQL: {name} (the service's \
                 limits and settings come from its configuration)"
            ),
        ))
    } else {
        Err(Refusal::new(
            RefusalKind::UnknownSetting,
            format!("unrecognized configuration parameter \"{name}\""),
        ))
    }
}

fn leading_keyword(text: &str) -> String {
    text.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
}

fn refuse_by_keyword(text: &str) -> Verdict {
    let keyword = leading_keyword(text);
    if WRITE_KEYWORDS.contains(&keyword.as_str()) {
        Verdict::Refused(Refusal::new(
            RefusalKind::Write,
            format!("analyst SQL is read-only: {keyword} statements are not allowed"),
        ))
    } else {
        Verdict::Refused(Refusal::new(
            RefusalKind::Unsupported,
            format!("{keyword} statements are not supported by kitle's analyst SQL"),
        ))
    }
}

fn set_verdict(set: &Set) -> Verdict {
    let check = |name: &ObjectName| match check_setting(&setting_name(name)) {
        Ok(()) => Verdict::Session,
        Err(refusal) => Verdict::Refused(refusal),
    };
    match set {
        Set::SingleAssignment {
            hivevar: false,
            variable,
            ..
        } => check(variable),
        Set::ParenthesizedAssignments { variables, .. } => variables
            .iter()
            .map(check)
            .find(|v| *v != Verdict::Session)
            .unwrap_or(Verdict::Session),
        Set::MultipleAssignments { assignments } => assignments
            .iter()
            .map(|a| check(&a.name))
            .find(|v| *v != Verdict::Session)
            .unwrap_or(Verdict::Session),
        Set::SetTimeZone { .. } | Set::SetNames { .. } | Set::SetTransaction { .. } => {
            Verdict::Session
        }
        other => Verdict::Refused(Refusal::new(
            RefusalKind::Unsupported,
            format!("{other} is not supported by kitle's analyst SQL"),
        )),
    }
}

/// Judges one statement parsed by sqlparser (the PostgreSQL front end's parser).
pub fn judge(statement: &Statement) -> Verdict {
    match statement {
        Statement::Query(_)
        | Statement::ExplainTable { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowObjects { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowCollation { .. }
        | Statement::ShowCharset { .. }
        | Statement::ShowCreate { .. }
        | Statement::ShowVariables { .. } => Verdict::Query,
        Statement::ShowVariable { variable } => {
            let name = variable
                .iter()
                .map(|i| i.value.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(" ");
            if name.starts_with("datafusion.") {
                // Reading an engine setting is harmless; the engine answers it.
                Verdict::Query
            } else {
                Verdict::Session
            }
        }
        Statement::Explain { statement, .. } => match judge(statement) {
            Verdict::Query => Verdict::Query,
            Verdict::Session => Verdict::Refused(Refusal::new(
                RefusalKind::Unsupported,
                "EXPLAIN explains queries only",
            )),
            refused => refused,
        },
        Statement::Set(set) => set_verdict(set),
        Statement::Reset(reset) => match &reset.reset {
            datafusion::sql::sqlparser::ast::Reset::ALL => Verdict::Session,
            datafusion::sql::sqlparser::ast::Reset::ConfigurationParameter(name) => {
                match check_setting(&setting_name(name)) {
                    Ok(()) => Verdict::Session,
                    Err(refusal) => Verdict::Refused(refusal),
                }
            }
        },
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. }
        | Statement::Discard { .. }
        | Statement::Deallocate { .. } => Verdict::Session,
        Statement::Declare { stmts } => {
            for declare in stmts {
                if let Some(query) = &declare.for_query {
                    let inner = Statement::Query(query.clone());
                    if let Verdict::Refused(r) = judge(&inner) {
                        return Verdict::Refused(r);
                    }
                }
            }
            Verdict::Session
        }
        Statement::Copy { to: false, .. } => Verdict::Refused(Refusal::new(
            RefusalKind::Write,
            "analyst SQL is read-only: COPY … FROM is not allowed",
        )),
        Statement::Copy { .. } => Verdict::Refused(Refusal::new(
            RefusalKind::Unsupported,
            "COPY … TO is not supported: run the query itself (psql's \\copy and \\o write \
             its result to a file on the client)",
        )),
        other => refuse_by_keyword(&other.to_string()),
    }
}

/// Judges one statement parsed by DataFusion's own parser (`POST /v1/sql`, `kitle sql`).
pub fn judge_datafusion(statement: &DfStatement) -> Verdict {
    match statement {
        DfStatement::Statement(inner) => judge(inner),
        DfStatement::Explain(explain) => match judge_datafusion(&explain.statement) {
            Verdict::Query => Verdict::Query,
            Verdict::Session => Verdict::Refused(Refusal::new(
                RefusalKind::Unsupported,
                "EXPLAIN explains queries only",
            )),
            refused => refused,
        },
        DfStatement::CreateExternalTable(_) => Verdict::Refused(Refusal::new(
            RefusalKind::Write,
            "analyst SQL is read-only: CREATE EXTERNAL TABLE is not allowed",
        )),
        DfStatement::CopyTo(_) => Verdict::Refused(Refusal::new(
            RefusalKind::Write,
            "analyst SQL is read-only: COPY … TO writes files and is not allowed",
        )),
        DfStatement::Reset(_) => Verdict::Refused(Refusal::new(
            RefusalKind::EngineSetting,
            "engine settings cannot be changed over analyst SQL: RESET",
        )),
    }
}

/// The plan-level rules: no DDL, no DML (`COPY` included), no statements that change state.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Checks a logical plan against [`read_only`], so that a write inside a query is refused.
pub fn verify(plan: &LogicalPlan) -> Result<(), Refusal> {
    read_only().verify_plan(plan).map_err(|e| {
        let root = e.find_root().to_string();
        let kind = if matches!(plan, LogicalPlan::Statement(_)) {
            RefusalKind::Unsupported
        } else {
            RefusalKind::Write
        };
        Refusal::new(
            kind,
            format!("only read-only queries are allowed: {}", root.trim()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn verdict(sql: &str) -> Verdict {
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        judge(&statements[0])
    }

    fn kind(sql: &str) -> Option<RefusalKind> {
        match verdict(sql) {
            Verdict::Refused(r) => Some(r.kind),
            _ => None,
        }
    }

    #[test]
    fn queries_run_and_writes_are_refused() {
        assert_eq!(verdict("SELECT 1"), Verdict::Query);
        assert_eq!(
            verdict("WITH a AS (SELECT 1) SELECT * FROM a"),
            Verdict::Query
        );
        assert_eq!(verdict("EXPLAIN SELECT 1"), Verdict::Query);
        for write in [
            "INSERT INTO events VALUES (1)",
            "UPDATE customers SET email = 'x'",
            "DELETE FROM memberships",
            "CREATE TABLE t (a int)",
            "DROP TABLE events",
            "ALTER TABLE events ADD COLUMN x int",
            "TRUNCATE events",
            "COPY events FROM '/tmp/x.csv'",
            "EXPLAIN INSERT INTO events VALUES (1)",
            "GRANT SELECT ON events TO analyst",
        ] {
            assert_eq!(kind(write), Some(RefusalKind::Write), "{write}");
        }
    }

    #[test]
    fn client_settings_are_the_session_s_and_engine_settings_are_refused() {
        for ok in [
            "SET DateStyle = 'ISO, MDY'",
            "SET client_encoding TO 'UTF8'",
            "SET search_path = public",
            "SET application_name = 'DBeaver'",
            "SET extra_float_digits = 3",
            "SET TIME ZONE 'UTC'",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            "RESET ALL",
            "BEGIN",
            "COMMIT",
            "DECLARE c CURSOR FOR SELECT 1",
            "FETCH FORWARD 10 FROM c",
            "CLOSE c",
            "SHOW DateStyle",
        ] {
            assert_eq!(verdict(ok), Verdict::Session, "{ok}");
        }
        assert_eq!(
            kind("SET datafusion.execution.batch_size = 1"),
            Some(RefusalKind::EngineSetting)
        );
        assert_eq!(
            kind("SET work_mem = '1GB'"),
            Some(RefusalKind::UnknownSetting)
        );
        assert_eq!(kind("SET ROLE admin"), Some(RefusalKind::Unsupported));
    }
}
