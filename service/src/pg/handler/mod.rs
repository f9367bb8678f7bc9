//! Running statements for one connection, over the simple and the extended protocol.
//!
//! Each connection has one analyst session (built on its first statement, with the
//! PostgreSQL catalogue added), whose tables are read again before each statement runs, so
//! a connection kept open by a BI tool sees new events and the memberships of later refreshes.
//! A plain result is capped at `sql_max_rows`; a cursor (`DECLARE`/`FETCH`) or a portal read
//! in pages (`Execute` with a row limit) streams any number of rows. Every statement runs
//! under the time limit (lowered by the client's `statement_timeout`, never raised). An error
//! fails the statement, never the connection; inside a transaction block the block then
//! refuses statements until `ROLLBACK`, as PostgreSQL does.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use futures::{Sink, stream};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{MemPortalStore, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::TransactionStatus;
use pgwire::types::format::FormatOptions;
use tokio::sync::{MappedMutexGuard, MutexGuard};

mod session;

use super::Shared;
use super::cursor::{self, Cursor, SharedCursor};
use super::error::error;
use super::settings;
use super::statement::{self, Prepared};
use crate::analyst::policy;
use crate::analyst::{AnalystError, Budget, CATALOG, Rows, Session, Verdict, record};

/// The metrics label of this front end's statements.
const PROTOCOL: &str = "postgres";

/// Why a statement failed: analyst SQL's own failures keep their kind for the metrics.
enum Failure {
    Analyst(AnalystError),
    Wire(PgWireError),
}

impl From<AnalystError> for Failure {
    fn from(e: AnalystError) -> Self {
        Self::Analyst(e)
    }
}

impl From<PgWireError> for Failure {
    fn from(e: PgWireError) -> Self {
        Self::Wire(e)
    }
}

impl Failure {
    /// Records the failed statement in the metrics and turns it into the client's error.
    fn report(self, started: Instant) -> PgWireError {
        let outcome = match &self {
            Self::Analyst(e) => e.outcome(),
            Self::Wire(_) => "query_error",
        };
        record(PROTOCOL, outcome, started.elapsed());
        match self {
            Self::Analyst(e) => e.into(),
            Self::Wire(e) => e,
        }
    }
}

/// A declared cursor as the connection lists it.
struct Declared {
    cursor: SharedCursor,
    schema: SchemaRef,
    hold: bool,
}

/// One connection's state.
pub struct Conn {
    shared: Arc<Shared>,
    sql: PostgresCompatibilityParser,
    session: tokio::sync::Mutex<Option<Session>>,
    cursors: Mutex<HashMap<String, Declared>>,
    /// The user name the client logged in with.
    user: std::sync::OnceLock<String>,
}

/// `session_user()` (what `current_user` is rewritten to) answering `user`.
fn session_user(user: String) -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use datafusion::scalar::ScalarValue;
    create_udf(
        "session_user",
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(user.clone()))))
        }),
    )
}

impl Conn {
    /// Remembers the client's user name (known once it logged in), for `current_user`.
    fn know_user<C: ClientInfo>(&self, client: &C) {
        self.user.get_or_init(|| {
            client
                .metadata()
                .get(pgwire::api::METADATA_USER)
                .cloned()
                .unwrap_or_default()
        });
    }
}

fn cursor_missing(name: &str) -> PgWireError {
    error("34000", format!("cursor \"{name}\" does not exist"))
}

fn portal_store<C>(client: &C) -> Option<&MemPortalStore<Prepared>>
where
    C: ClientPortalStore,
    C::PortalStore: PortalStore,
{
    client.portal_store().as_any().downcast_ref()
}

impl Conn {
    /// The session, built on first use; its tables read again when `refresh`.
    async fn session(&self, refresh: bool) -> Result<MappedMutexGuard<'_, Session>, AnalystError> {
        let mut guard = self.session.lock().await;
        match guard.as_mut() {
            None => {
                let session = self.shared.analyst.session(PROTOCOL).await?;
                datafusion_pg_catalog::pg_catalog::setup_pg_catalog(
                    session.context(),
                    CATALOG,
                    EmptyContextProvider,
                )
                .map_err(|e| AnalystError::Engine(format!("the PostgreSQL catalogue: {e}")))?;
                // `current_user`, `session_user`: the name the client logged in with (the
                // catalogue's own answers "postgres" to everyone).
                let user = self.user.get().cloned().unwrap_or_default();
                session.context().register_udf(session_user(user));
                *guard = Some(session);
            }
            Some(session) if refresh => session.refresh().await?,
            Some(_) => {}
        }
        Ok(MutexGuard::map(guard, |s| s.as_mut().expect("built above")))
    }

    async fn plan(
        &self,
        statement: &Statement,
        limit: Option<Duration>,
        refresh: bool,
    ) -> Result<LogicalPlan, AnalystError> {
        let session = self.session(refresh).await?;
        let mut budget = Budget::new(limit);
        session
            .plan(
                DfStatement::Statement(Box::new(statement.clone())),
                &mut budget,
            )
            .await
    }

    /// Judges and prepares one statement; queries are planned (with the tables read again
    /// when `refresh`).
    async fn prepare(
        &self,
        statement: Statement,
        limit: Option<Duration>,
        refresh: bool,
    ) -> Result<Prepared, Failure> {
        match policy::judge(&statement) {
            Verdict::Refused(refusal) => Err(AnalystError::Refused(refusal).into()),
            Verdict::Query => {
                let plan = self.plan(&statement, limit, refresh).await?;
                Ok(Prepared::Query {
                    statement: Box::new(statement),
                    plan: Arc::new(plan),
                })
            }
            Verdict::Session => Ok(match statement {
                Statement::Declare { .. } => {
                    let (name, hold, query) = statement::declared(&statement)?;
                    let plan = self.plan(&query, limit, refresh).await?;
                    Prepared::Declare {
                        name,
                        hold,
                        query: Box::new(query),
                        plan: Arc::new(plan),
                    }
                }
                Statement::Fetch {
                    name, direction, ..
                } => Prepared::Fetch {
                    name: name.value.clone(),
                    count: statement::fetch_count(&direction)?,
                },
                Statement::Close { cursor } => Prepared::Close(statement::closed(&cursor)),
                Statement::ShowVariable { variable } => {
                    Prepared::Show(session::show_name(&variable))
                }
                other => Prepared::Session(Box::new(other)),
            }),
        }
    }

    /// Starts a query: planned again with the tables as they are now (unless `fresh`: just
    /// planned so), its parameters bound, then run.
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        query: &Statement,
        parsed: &LogicalPlan,
        portal: Option<&Portal<Prepared>>,
        limit: Option<Duration>,
        capped: bool,
        fresh: bool,
        started: Instant,
    ) -> Result<Rows, Failure> {
        let session = self.session(!fresh).await?;
        let mut budget = Budget::new(limit);
        let plan = if fresh {
            parsed.clone()
        } else {
            let plan = session
                .plan(DfStatement::Statement(Box::new(query.clone())), &mut budget)
                .await?;
            let same = |a: &LogicalPlan, b: &LogicalPlan| {
                let (a, b) = (a.schema().as_arrow(), b.schema().as_arrow());
                a.fields().len() == b.fields().len()
                    && a.fields()
                        .iter()
                        .zip(b.fields())
                        .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
            };
            if !same(&plan, parsed) {
                return Err(error(
                    "0A000",
                    "cached plan must not change result type: the store's tables changed since \
                     the statement was prepared; prepare it again",
                )
                .into());
            }
            plan
        };
        let plan = match portal {
            Some(portal) if portal.parameter_len() > 0 => {
                let types = statement::parameter_types(&plan)?;
                let wire = statement::wire_types(&types)?;
                let inferred: Vec<Option<&DataType>> = types.iter().map(Option::as_ref).collect();
                let server: Vec<Option<&Type>> = wire.iter().map(Some).collect();
                let values = arrow_pg::datatypes::df::deserialize_parameters_with_server_types(
                    portal, &inferred, &server,
                )?;
                plan.replace_params_with_values(&values)
                    .map_err(AnalystError::from)?
            }
            _ => plan,
        };
        Ok(session.run(plan, budget, capped, started).await?)
    }

    /// Closes the cursors a transaction's end closes (all but `WITH HOLD` ones), or all.
    fn close_cursors<C>(&self, client: &C, all: bool)
    where
        C: ClientPortalStore,
        C::PortalStore: PortalStore,
    {
        let mut cursors = self.cursors.lock().expect("cursor list");
        let closing: Vec<String> = cursors
            .iter()
            .filter(|(_, d)| all || !d.hold)
            .map(|(name, _)| name.clone())
            .collect();
        for name in closing {
            cursors.remove(&name);
            if let Some(store) = portal_store(client) {
                store.rm_portal(&name);
            }
        }
    }

    /// Runs a prepared statement. `format` is the result format the client asked for,
    /// `capped` whether the row cap applies (a plain result), `fresh` whether a query was
    /// just planned with fresh tables.
    #[allow(clippy::too_many_arguments)]
    async fn execute<C>(
        &self,
        client: &mut C,
        prepared: &Prepared,
        portal: Option<&Portal<Prepared>>,
        format: &Format,
        capped: bool,
        fresh: bool,
        started: Instant,
    ) -> Result<Response, Failure>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let ends_block = matches!(prepared, Prepared::Session(s)
            if matches!(**s, Statement::Commit { .. } | Statement::Rollback { savepoint: None, .. }));
        if client.transaction_status() == TransactionStatus::Error && !ends_block {
            return Err(error(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            )
            .into());
        }
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let limit = settings::time_limit(client.metadata(), self.shared.analyst.limits().time);
        let response = match prepared {
            Prepared::Query { statement, plan } => {
                let rows = self
                    .start(statement, plan, portal, limit, capped, fresh, started)
                    .await?;
                let schema = rows.schema();
                return Ok(Response::Query(cursor::response(
                    &schema, rows, format, options, "SELECT",
                )?));
            }
            Prepared::Declare {
                name,
                hold,
                query,
                plan,
            } => {
                if self.cursors.lock().expect("cursor list").contains_key(name) {
                    return Err(error("42P03", format!("cursor \"{name}\" already exists")).into());
                }
                let rows = self
                    .start(query, plan, portal, limit, false, fresh, started)
                    .await?;
                let schema = rows.schema();
                let cursor = Arc::new(tokio::sync::Mutex::new(Cursor::new(rows)));
                self.cursors.lock().expect("cursor list").insert(
                    name.clone(),
                    Declared {
                        cursor,
                        schema,
                        hold: *hold,
                    },
                );
                // Clients `Describe` the cursor's portal by its name (psycopg does).
                if let Some(store) = portal_store(client) {
                    let statement = StoredStatement::new(
                        name.clone(),
                        Prepared::CursorPortal(name.clone()),
                        vec![],
                    );
                    store.put_portal(Arc::new(Portal::new_cursor(
                        name.clone(),
                        Arc::new(statement),
                    )));
                }
                Response::Execution(Tag::new("DECLARE CURSOR"))
            }
            Prepared::Fetch { name, count } => {
                let (cursor, schema) = {
                    let cursors = self.cursors.lock().expect("cursor list");
                    let declared = cursors.get(name).ok_or_else(|| cursor_missing(name))?;
                    (Arc::clone(&declared.cursor), Arc::clone(&declared.schema))
                };
                let batches = cursor::fetch(cursor, *count).await;
                Response::Query(cursor::response(
                    &schema, batches, format, options, "FETCH",
                )?)
            }
            Prepared::Close(name) => {
                match name {
                    None => self.close_cursors(client, true),
                    Some(name) => {
                        if self
                            .cursors
                            .lock()
                            .expect("cursor list")
                            .remove(name)
                            .is_none()
                        {
                            return Err(cursor_missing(name).into());
                        }
                        if let Some(store) = portal_store(client) {
                            store.rm_portal(name);
                        }
                    }
                }
                Response::Execution(Tag::new("CLOSE CURSOR"))
            }
            Prepared::Show(name) => {
                let batch = self.show(client.metadata(), name)?;
                let schema = batch.schema();
                Response::Query(cursor::response(
                    &schema,
                    stream::iter([Ok(batch)]),
                    format,
                    options,
                    "SHOW",
                )?)
            }
            Prepared::Session(statement) => self.session_statement(client, statement).await?,
            Prepared::CursorPortal(name) => {
                return Err(error(
                    "0A000",
                    format!("read the cursor with FETCH … FROM \"{name}\""),
                )
                .into());
            }
        };
        record(PROTOCOL, "ok", started.elapsed());
        Ok(response)
    }
}

/// The simple- and extended-protocol handlers of one connection.
pub struct Queries {
    conn: Arc<Conn>,
    parser: Arc<Parser>,
}

impl Queries {
    /// The handlers of a new connection.
    pub fn new(shared: Arc<Shared>) -> Self {
        let conn = Arc::new(Conn {
            shared,
            sql: PostgresCompatibilityParser::new(),
            session: tokio::sync::Mutex::new(None),
            cursors: Mutex::new(HashMap::new()),
            user: std::sync::OnceLock::new(),
        });
        Self {
            parser: Arc::new(Parser {
                conn: Arc::clone(&conn),
            }),
            conn,
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.conn.know_user(client);
        let statements = statement::parse(&self.conn.sql, query)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        for statement in statements {
            let started = Instant::now();
            let limit =
                settings::time_limit(client.metadata(), self.conn.shared.analyst.limits().time);
            let result = match self.conn.prepare(statement, limit, true).await {
                Ok(prepared) => {
                    self.conn
                        .execute(
                            client,
                            &prepared,
                            None,
                            &Format::UnifiedText,
                            true,
                            true,
                            started,
                        )
                        .await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(response) => responses.push(response),
                Err(failure) => {
                    // The statements before it keep their results; the rest do not run.
                    let info = ErrorInfo::from(failure.report(started));
                    responses.push(Response::Error(Box::new(info)));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let started = Instant::now();
        self.conn.know_user(client);
        let prepared = &portal.statement.statement;
        // A portal read in pages (a row limit per Execute) streams past the row cap.
        let capped = max_rows == 0;
        self.conn
            .execute(
                client,
                prepared,
                Some(portal),
                &portal.result_column_format,
                capped,
                false,
                started,
            )
            .await
            .map_err(|f| f.report(started))
    }
}

/// Parses and describes statements of the extended protocol.
pub struct Parser {
    conn: Arc<Conn>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let started = Instant::now();
        self.conn.know_user(client);
        let mut statements = statement::parse(&self.conn.sql, sql)?;
        let statement = match statements.len() {
            0 => return Ok(None),
            1 => statements.remove(0),
            _ => {
                return Err(error(
                    "42601",
                    "cannot insert multiple commands into a prepared statement",
                ));
            }
        };
        let limit = settings::time_limit(client.metadata(), self.conn.shared.analyst.limits().time);
        // Planned with the session's tables as they are; `Execute` reads them again.
        self.conn
            .prepare(statement, limit, false)
            .await
            .map(Some)
            .map_err(|f| f.report(started))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        match stmt {
            Prepared::Query { plan, .. } | Prepared::Declare { plan, .. } => {
                statement::wire_types(&statement::parameter_types(plan)?)
            }
            _ => Ok(vec![]),
        }
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let format = column_format.unwrap_or(&Format::UnifiedText);
        let options = Arc::new(FormatOptions::default());
        let schema = match stmt {
            Prepared::Query { plan, .. } => statement::result_schema(plan),
            Prepared::Fetch { name, .. } | Prepared::CursorPortal(name) => {
                let cursors = self.conn.cursors.lock().expect("cursor list");
                match cursors.get(name) {
                    Some(declared) => Arc::clone(&declared.schema),
                    None => return Err(cursor_missing(name)),
                }
            }
            Prepared::Show(name) if name == "all" => Arc::new(Schema::new(vec![
                Field::new("name", DataType::Utf8, false),
                Field::new("setting", DataType::Utf8, false),
            ])),
            Prepared::Show(name) => statement::show_schema(name),
            _ => return Ok(vec![]),
        };
        cursor::fields(&schema, format, options)
    }
}
