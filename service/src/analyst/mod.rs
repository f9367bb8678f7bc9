//! Read-only analyst SQL, in one place for every front end: `POST /v1/sql`, `kitle sql` and
//! the PostgreSQL protocol (`service/src/pg/`).
//!
//! [`Analyst::session`] builds the session every analyst query runs in — the store's tables
//! registered by the data crate (`events`, `customers`, then kitle's own: `memberships`,
//! `segment_changes`, `segments`, and whatever later work registers there), in the catalog
//! `kitle` and schema `public`, with the configured memory pool. [`policy`] decides which
//! statements run; [`Session::run`] runs a plan under the time limit and streams its batches,
//! with the row cap where the front end asks for it ([`rows`]). Failures are [`AnalystError`]s,
//! sorted by who is to blame; each front end maps them to its own codes.

pub mod error;
pub mod policy;
pub mod rows;

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::catalog::{MemorySchemaProvider, TableProvider};
use datafusion::datasource::TableType;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use kitle_data::Store;
use kitle_data::files::FooterCache;
use kitle_data::tables::{ContractTables, ReadReport};

pub use error::AnalystError;
pub use policy::{Refusal, RefusalKind, Verdict};
pub use rows::{Budget, Rows, record};

/// The catalog analyst SQL sees (the PostgreSQL protocol's database name).
pub const CATALOG: &str = "kitle";
/// The schema the tables are in.
pub const SCHEMA: &str = "public";

/// The limits one analyst query runs under; `None` is unlimited (the CLI's).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Memory the session's queries may hold, in bytes (the DataFusion memory pool).
    pub memory_bytes: Option<usize>,
    /// Time one statement may keep its caller waiting.
    pub time: Option<Duration>,
    /// Rows one plain result may hold (cursors and paged portals stream past it).
    pub max_rows: Option<usize>,
}

impl Limits {
    /// The limits of `kitle serve`'s configuration (`sql_memory_limit_mb`,
    /// `sql_timeout_seconds`, `sql_max_rows`).
    pub fn of_service(config: &crate::config::ServeConfig) -> Self {
        Self {
            memory_bytes: Some(config.sql_memory_limit_mb.saturating_mul(1 << 20)),
            time: Some(config.sql_timeout),
            max_rows: Some(config.sql_max_rows),
        }
    }
}

/// A view of the store (`events`, `customers`: every event once, the latest profile) shown
/// to analysts as the table it is in the contract, so that catalogues list it with the
/// others (`\dt`, `information_schema.tables`, a BI tool's table list). Planning still sees
/// its definition and inlines it.
#[derive(Debug)]
struct AsTable(Arc<dyn TableProvider>);

#[async_trait::async_trait]
impl TableProvider for AsTable {
    fn schema(&self) -> arrow::datatypes::SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_logical_plan(&self) -> Option<std::borrow::Cow<'_, LogicalPlan>> {
        self.0.get_logical_plan()
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[datafusion::prelude::Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&datafusion::prelude::Expr],
    ) -> datafusion::error::Result<Vec<datafusion::logical_expr::TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }
}

/// Re-registers the views of the default schema as [`AsTable`]s.
async fn present_as_tables(ctx: &SessionContext) -> Result<(), AnalystError> {
    let Some(schema) = ctx.catalog(CATALOG).and_then(|c| c.schema(SCHEMA)) else {
        return Ok(());
    };
    for name in schema.table_names() {
        if let Some(table) = schema.table(&name).await?
            && table.table_type() == TableType::View
        {
            schema.deregister_table(&name)?;
            schema.register_table(name, Arc::new(AsTable(table)))?;
        }
    }
    Ok(())
}

/// Builds analyst sessions over one store.
#[derive(Clone)]
pub struct Analyst {
    store: Store,
    cache: Arc<FooterCache>,
    limits: Limits,
}

impl Analyst {
    /// Sessions over `store`, judging files with `cache` (the service's, so files are judged
    /// once per process), under `limits`.
    pub fn new(store: Store, cache: Arc<FooterCache>, limits: Limits) -> Self {
        Self {
            store,
            cache,
            limits,
        }
    }

    /// The limits sessions run under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A new session with the store's tables as they are now, for many statements (a
    /// PostgreSQL connection): the time limit is kept per statement by [`Session::run`].
    /// `protocol` labels its queries in the metrics (`http`, `cli`, `postgres`).
    pub async fn session(&self, protocol: &'static str) -> Result<Session, AnalystError> {
        self.build(protocol, self.data_limits()).await
    }

    /// A new session for one query (`POST /v1/sql`): besides [`Session::run`]'s limit, every
    /// operator of its plan stops at the time limit by itself, even one that never yields
    /// (`kitle_data::deadline`).
    pub async fn query_session(&self, protocol: &'static str) -> Result<Session, AnalystError> {
        let mut limits = self.data_limits();
        if let Some(time) = self.limits.time {
            limits = limits
                .with_time(time, "sql_timeout_seconds")
                .start("the query");
        }
        self.build(protocol, limits).await
    }

    fn data_limits(&self) -> kitle_data::session::Limits {
        let mut limits = kitle_data::session::Limits::none();
        if let Some(bytes) = self.limits.memory_bytes {
            limits.memory_bytes = Some(bytes);
            limits.memory_key = "sql_memory_limit_mb";
        }
        limits
    }

    async fn build(
        &self,
        protocol: &'static str,
        limits: kitle_data::session::Limits,
    ) -> Result<Session, AnalystError> {
        let config =
            kitle_data::session::session_config().with_default_catalog_and_schema(CATALOG, SCHEMA);
        let ctx = kitle_data::session::context_with_config(&self.store, config, &limits);
        let mut session = Session {
            analyst: self.clone(),
            ctx,
            report: ReadReport::default(),
            protocol,
        };
        session.report = session.register().await?;
        Ok(session)
    }
}

/// One analyst session: a DataFusion context with the store's tables and the memory pool.
/// The HTTP and CLI front ends use one per query; the PostgreSQL front end one per connection,
/// refreshed before each statement.
pub struct Session {
    analyst: Analyst,
    ctx: SessionContext,
    report: ReadReport,
    protocol: &'static str,
}

impl Session {
    /// The DataFusion context (the PostgreSQL front end adds its catalogue to it).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The files the last reading of the store left out, and rows it dropped.
    pub fn report(&self) -> &ReadReport {
        &self.report
    }

    async fn register(&self) -> Result<ReadReport, AnalystError> {
        let store = &self.analyst.store;
        let tables = ContractTables::load(store, &self.analyst.cache).await?;
        tables.register(&self.ctx)?;
        kitle_data::memberships::register_tables(&self.ctx, store).await?;
        present_as_tables(&self.ctx).await?;
        Ok(tables.report())
    }

    /// Reads the store's tables again (files landed since, memberships of later refreshes),
    /// for a session that lives longer than one query. A failure keeps the tables it had.
    pub async fn refresh(&mut self) -> Result<(), AnalystError> {
        let catalog = self
            .ctx
            .catalog(CATALOG)
            .ok_or_else(|| AnalystError::Engine(format!("the catalog {CATALOG} is missing")))?;
        let previous = catalog
            .register_schema(SCHEMA, Arc::new(MemorySchemaProvider::new()))
            .map_err(AnalystError::from)?;
        match self.register().await {
            Ok(report) => {
                self.report = report;
                Ok(())
            }
            Err(e) => {
                if let Some(previous) = previous {
                    let _ = catalog.register_schema(SCHEMA, previous);
                }
                Err(e)
            }
        }
    }

    /// Parses one SQL text with the engine's parser (exactly one statement), judges it and
    /// plans it: the front ends without sessions (`POST /v1/sql`, `kitle sql`).
    pub async fn plan_sql(
        &self,
        sql: &str,
        budget: &mut Budget,
    ) -> Result<LogicalPlan, AnalystError> {
        let state = self.ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state.sql_to_statement(sql, &dialect)?;
        match policy::judge_datafusion(&statement) {
            Verdict::Query => {}
            Verdict::Session => {
                let keyword = statement
                    .to_string()
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                return Err(AnalystError::Refused(Refusal::new(
                    RefusalKind::Unsupported,
                    format!(
                        "only read-only queries are allowed: {keyword} belongs to a session; \
                         here each query runs on its own (use the PostgreSQL protocol for \
                         sessions, settings and cursors)"
                    ),
                )));
            }
            Verdict::Refused(refusal) => return Err(AnalystError::Refused(refusal)),
        }
        self.plan(statement, budget).await
    }

    /// Plans a statement that [`policy`] judged a query, and checks the plan against the
    /// read-only rules.
    pub async fn plan(
        &self,
        statement: DfStatement,
        budget: &mut Budget,
    ) -> Result<LogicalPlan, AnalystError> {
        let state = self.ctx.state();
        let plan = budget
            .run(async {
                state
                    .statement_to_plan(statement)
                    .await
                    .map_err(AnalystError::from)
            })
            .await?;
        policy::verify(&plan).map_err(AnalystError::Refused)?;
        Ok(plan)
    }

    /// Starts a checked plan: its batches, under what is left of `budget`, with the row cap
    /// when `capped`. `started` is when the statement arrived (for its latency).
    pub async fn run(
        &self,
        plan: LogicalPlan,
        mut budget: Budget,
        capped: bool,
        started: Instant,
    ) -> Result<Rows, AnalystError> {
        policy::verify(&plan).map_err(AnalystError::Refused)?;
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let ctx = &self.ctx;
        let stream = budget
            .run(async {
                let frame = ctx.execute_logical_plan(plan).await?;
                Ok(frame.execute_stream().await?)
            })
            .await?;
        let cap = if capped {
            self.analyst.limits.max_rows
        } else {
            None
        };
        Ok(Rows::new(
            schema,
            stream,
            budget,
            cap,
            self.protocol,
            started,
        ))
    }

    /// Plans and starts one SQL text (see [`Self::plan_sql`]), recording a failure in the
    /// metrics: the whole of a query for the front ends without sessions.
    pub async fn query(&self, sql: &str, capped: bool) -> Result<Rows, AnalystError> {
        let started = Instant::now();
        let mut budget = Budget::new(self.analyst.limits.time);
        let result = match self.plan_sql(sql, &mut budget).await {
            Ok(plan) => self.run(plan, budget, capped, started).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            record(self.protocol, e.outcome(), started.elapsed());
        }
        result
    }
}
