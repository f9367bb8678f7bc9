//! Statements as the PostgreSQL front end keeps them between `Parse` and `Execute`: parsed
//! with PostgreSQL's grammar (and datafusion-pg-catalog's rewrites of what clients send on
//! connect), judged by the analyst policy, and — for queries — planned, so that `Describe`
//! can answer the parameter and result types.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow_pg::datatypes::into_pg_type;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::sql::sqlparser::ast::{CloseCursor, DeclareType, FetchDirection, Statement, Value};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use pgwire::api::Type;
use pgwire::error::{PgWireError, PgWireResult};

use super::error::error;

/// A statement ready to run.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// A query, with its plan as of parsing (for `Describe`; it is planned again, with the
    /// store's tables as they are then, when it runs).
    Query {
        /// The statement.
        statement: Box<Statement>,
        /// Its plan at parse time (with `$n` placeholders).
        plan: Arc<LogicalPlan>,
    },
    /// `DECLARE name CURSOR [WITH HOLD] FOR query`.
    Declare {
        /// The cursor's name.
        name: String,
        /// `WITH HOLD`: it outlives its transaction.
        hold: bool,
        /// The query, as a statement.
        query: Box<Statement>,
        /// Its plan at parse time.
        plan: Arc<LogicalPlan>,
    },
    /// `FETCH [FORWARD] [n | ALL | NEXT] FROM name`.
    Fetch {
        /// The cursor's name.
        name: String,
        /// Rows asked for; `None`: all that are left.
        count: Option<usize>,
    },
    /// `CLOSE name` or `CLOSE ALL` (`None`).
    Close(Option<String>),
    /// `SHOW name`.
    Show(String),
    /// Any other statement about the session: `SET`, `RESET`, `BEGIN`, `COMMIT`, `ROLLBACK`,
    /// `SAVEPOINT`, `DISCARD`, `DEALLOCATE`.
    Session(Box<Statement>),
    /// The portal of a declared cursor, for clients that `Describe` it by name.
    CursorPortal(String),
}

/// Parses SQL text with PostgreSQL's grammar and the catalogue rewrites.
pub fn parse(parser: &PostgresCompatibilityParser, sql: &str) -> PgWireResult<Vec<Statement>> {
    parser
        .parse(sql)
        .map_err(|e| error("42601", format!("syntax error: {e}")))
}

fn number(value: &Value) -> Option<usize> {
    match value {
        Value::Number(n, _) => n.parse().ok(),
        _ => None,
    }
}

/// The rows a `FETCH` direction asks for (`None`: all); only forward directions.
pub fn fetch_count(direction: &FetchDirection) -> PgWireResult<Option<usize>> {
    let forward_only = || {
        error(
            "0A000",
            "kitle's cursors only move forward: use FETCH [FORWARD] n, NEXT or ALL",
        )
    };
    match direction {
        FetchDirection::Next | FetchDirection::Forward { limit: None } => Ok(Some(1)),
        FetchDirection::Forward { limit: Some(v) } | FetchDirection::Count { limit: v } => {
            number(&v.value).map(Some).ok_or_else(forward_only)
        }
        FetchDirection::All | FetchDirection::ForwardAll => Ok(None),
        _ => Err(forward_only()),
    }
}

/// The cursor a `DECLARE` declares: name, `WITH HOLD`, and its query as a statement.
pub fn declared(statement: &Statement) -> PgWireResult<(String, bool, Statement)> {
    let Statement::Declare { stmts } = statement else {
        return Err(error("XX000", "not a DECLARE"));
    };
    let [declare] = stmts.as_slice() else {
        return Err(error("0A000", "declare one cursor at a time"));
    };
    if declare.declare_type != Some(DeclareType::Cursor) {
        return Err(error("0A000", "only cursors can be declared"));
    }
    if declare.scroll == Some(true) {
        return Err(error(
            "0A000",
            "kitle's cursors only move forward: declare it without SCROLL",
        ));
    }
    if declare.binary == Some(true) {
        return Err(error(
            "0A000",
            "BINARY cursors are not supported: ask for binary results in the protocol instead",
        ));
    }
    let name = declare
        .names
        .first()
        .map(|n| n.value.clone())
        .ok_or_else(|| error("42601", "DECLARE needs a cursor name"))?;
    let query = declare
        .for_query
        .clone()
        .ok_or_else(|| error("42601", "DECLARE … CURSOR needs FOR and a query"))?;
    Ok((name, declare.hold == Some(true), Statement::Query(query)))
}

/// The cursor names a `CLOSE` closes (`None`: all).
pub fn closed(cursor: &CloseCursor) -> Option<String> {
    match cursor {
        CloseCursor::All => None,
        CloseCursor::Specific { name } => Some(name.value.clone()),
    }
}

/// The types of a plan's `$n` parameters, in order: what DataFusion inferred from their use,
/// else the type they are cast to (`$1::int`), else unknown (the client's type decides).
pub fn parameter_types(plan: &LogicalPlan) -> PgWireResult<Vec<Option<DataType>>> {
    let mut types: HashMap<String, Option<DataType>> = plan
        .get_parameter_types()
        .map_err(|e| PgWireError::from(crate::analyst::AnalystError::from(e)))?;
    if types.values().any(Option::is_none) {
        let _ = plan.apply(|node| {
            for expr in node.expressions() {
                let _ = expr.apply(|e| {
                    if let Expr::Cast(cast) = e
                        && let Expr::Placeholder(p) = cast.expr.as_ref()
                        && let Some(slot @ None) = types.get_mut(&p.id)
                    {
                        *slot = Some(cast.field.data_type().clone());
                    }
                    Ok(TreeNodeRecursion::Continue)
                });
            }
            Ok(TreeNodeRecursion::Continue)
        });
    }
    let mut ordered: Vec<(u32, Option<DataType>)> = types
        .into_iter()
        .map(|(id, t)| (id.trim_start_matches('$').parse().unwrap_or(u32::MAX), t))
        .collect();
    ordered.sort_by_key(|(n, _)| *n);
    Ok(ordered.into_iter().map(|(_, t)| t).collect())
}

/// The wire types of `types` (unknown where nothing was inferred).
pub fn wire_types(types: &[Option<DataType>]) -> PgWireResult<Vec<Type>> {
    types
        .iter()
        .map(|t| match t {
            Some(t) => into_pg_type(t),
            None => Ok(Type::UNKNOWN),
        })
        .collect()
}

/// The result columns of a plan.
pub fn result_schema(plan: &LogicalPlan) -> SchemaRef {
    Arc::new(plan.schema().as_arrow().clone())
}

/// The one text column of `SHOW name`.
pub fn show_schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![arrow::datatypes::Field::new(
        name,
        DataType::Utf8,
        true,
    )]))
}
