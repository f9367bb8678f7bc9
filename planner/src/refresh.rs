//! Keeping definitions in the store, and refreshing memberships.
//!
//! A refresh evaluates the asked-for segments (and, inside the same plan, those they refer to)
//! at one `as_of`, diffs each against its current version — who entered, who exited, and since
//! when each member has been in — and hands the new versions to `kitle-data` to commit with
//! one manifest write. The functions here also serve `segment put|validate|rm|explain|preview`.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use datafusion::physical_plan::displayable;
use kitle_data::contract::ContractTable;
use kitle_data::files::FooterCache;
use kitle_data::memberships;
use kitle_data::session::Limits;
use kitle_data::tables::{ContractTables, ReadReport};
use kitle_data::{Progress, Store};
use serde::Serialize;
use serde_json::Value as Json;

use crate::compile::{
    StateReport, build_refresh_plan, build_refresh_plan_with_states, members_of, members_of_counted,
};
use crate::definition::SegmentDefinition;
use crate::error::{Error, Problem, Problems};
use crate::parse::parse_definition;
use crate::validate::{StoreSchemas, validate_set};

/// What a refresh did to one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentRefresh {
    /// The segment.
    pub id: String,
    /// The version this refresh committed.
    pub version: u64,
    /// Members after the refresh.
    pub size: u64,
    /// Customers who entered.
    pub entered: u64,
    /// Customers who exited.
    pub exited: u64,
    /// Duration of the whole run: the segments of one refresh are evaluated together.
    pub duration_ms: u64,
}

/// What a refresh did.
#[derive(Debug, Clone, Serialize)]
pub struct RefreshOutcome {
    /// The instant the segments were evaluated at.
    pub as_of: DateTime<Utc>,
    /// Per refreshed segment, in the order asked (all stored segments by id when none named).
    pub segments: Vec<SegmentRefresh>,
    /// How many times the commit was applied again because another writer committed first.
    pub retries: u32,
    /// Files skipped and rows dropped while reading the store.
    pub report: ReadReport,
    /// Where the plans ran: `local`, or the cluster engine's `ballista://HOST:PORT`.
    pub engine: String,
    /// Whether partial states were used (`full` or `incremental`), how many days' states were
    /// reused and recomputed, and the bytes and rows the refresh's scans read.
    pub states: StateReport,
    /// The requests and bytes the store served this process during the refresh, counted at
    /// the object store (listings, footers, events, states, kitle's own objects and commit):
    /// on S3, the requests sent. Work on a cluster's executors is not in it, and in `kitle
    /// serve` reads answered for other callers meanwhile are.
    pub store_io: kitle_data::counted::StoreIo,
}

/// The stored definitions, parsed (instants of stored definitions are UTC, so the zone only
/// matters for documents written by hand into the store).
pub async fn stored_definitions(store: &Store, tz: Tz) -> Result<Vec<SegmentDefinition>, Error> {
    parse_stored(&memberships::read_definitions(store).await?, tz)
}

/// The store's schemas as validation needs them.
pub fn schemas_of(tables: &ContractTables) -> StoreSchemas {
    StoreSchemas {
        customers: tables.schema(ContractTable::Customers).as_ref().clone(),
        events: tables.schema(ContractTable::Events).as_ref().clone(),
    }
}

/// Parses and validates `documents` as one set against the store (its schema and the segments
/// already stored), and checks that each compiles (a `sql` condition must plan). Returns the
/// definitions, or every problem with its path (`[i].…` when several documents are given).
///
/// `cache` keeps the store's file verdicts between calls (the service passes its own, so a
/// check does not read every footer again).
pub async fn check_definitions(
    store: &Store,
    cache: &FooterCache,
    documents: &[Json],
    tz: Tz,
) -> Result<Vec<SegmentDefinition>, Error> {
    Ok(checked(store, cache, documents, tz).await?.0)
}

/// [`check_definitions`], also returning the store's schemas it validated against (a put
/// validates again, against the definitions another writer committed meanwhile).
async fn checked(
    store: &Store,
    cache: &FooterCache,
    documents: &[Json],
    tz: Tz,
) -> Result<(Vec<SegmentDefinition>, StoreSchemas), Error> {
    let mut problems = Problems::new();
    let mut definitions = Vec::new();
    for (i, document) in documents.iter().enumerate() {
        match parse_definition(document, tz) {
            Ok(d) => definitions.push(d),
            Err(p) => problems.extend(if documents.len() > 1 {
                p.under(&format!("[{i}]"))
            } else {
                p
            }),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Refused(problems));
    }
    let tables = ContractTables::load(store, cache).await?;
    let schemas = schemas_of(&tables);
    let existing = others(&stored_definitions(store, tz).await?, &definitions);
    validate_set(&definitions, &existing, &schemas).map_err(Error::Refused)?;

    // Compile each (with what it refers to) so that a `sql` condition that does not plan is
    // refused now rather than at the next refresh.
    let mut all = existing;
    all.extend(definitions.iter().cloned());
    let ctx = kitle_data::session::new_context(store);
    let as_of = Utc::now();
    tables.register_as_of(&ctx, as_of)?;
    for (i, d) in definitions.iter().enumerate() {
        let prefix = if definitions.len() > 1 {
            format!("[{i}]")
        } else {
            String::new()
        };
        // Each `sql` condition at its own path, with the query as what was found.
        let mut queries = Vec::new();
        d.condition.walk("condition", &mut |path, c| {
            if let crate::definition::Condition::Sql(query) = c {
                queries.push((format!("{path}.sql"), query.clone()));
            }
        });
        let mut refused = false;
        for (path, query) in queries {
            if let Err(message) = crate::compile::plan_sql_condition(&ctx, &query).await {
                refused = true;
                problems.push(
                    Problem::new(
                        path,
                        crate::error::quote(&query),
                        "a read-only query over events, customers and identities that returns a customer_id column",
                        message,
                    )
                    .under(&prefix),
                );
            }
        }
        if refused {
            continue;
        }
        if let Err(e) =
            crate::compile::check_plan(&ctx, &tables, &all, std::slice::from_ref(&d.id), as_of, tz)
                .await
        {
            match e.blame() {
                kitle_data::Blame::Input => problems.push(
                    Problem::new("condition", "", "a condition that plans", e.to_string())
                        .under(&prefix),
                ),
                // The store or the engine failed: not a problem of the definition.
                _ => return Err(e),
            }
        }
    }
    problems
        .into_result((definitions, schemas))
        .map_err(Error::Refused)
}

/// The definitions of `stored` whose ids are not among `new`.
fn others(stored: &[SegmentDefinition], new: &[SegmentDefinition]) -> Vec<SegmentDefinition> {
    let new_ids: BTreeSet<&str> = new.iter().map(|d| d.id.as_str()).collect();
    stored
        .iter()
        .filter(|d| !new_ids.contains(d.id.as_str()))
        .cloned()
        .collect()
}

/// Parses stored definition documents (as [`stored_definitions`] does).
fn parse_stored(
    documents: &kitle_data::definitions::Definitions,
    tz: Tz,
) -> Result<Vec<SegmentDefinition>, Error> {
    let mut problems = Problems::new();
    let mut definitions = Vec::new();
    for (id, document) in documents {
        match parse_definition(document, tz) {
            Ok(d) => definitions.push(d),
            Err(p) => problems
                .extend(p.under(&format!("{}[{id:?}]", kitle_data::layout::DEFINITIONS_FILE))),
        }
    }
    problems.into_result(definitions).map_err(Error::Refused)
}

/// What a put stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PutOutcome {
    /// Each definition's id with whether it was created (`true`) or replaced, in the order
    /// given.
    pub stored: Vec<(String, bool)>,
    /// How many times the commit was applied again because another writer committed first.
    pub retries: u32,
}

/// Stores `documents` (validated as one set: all or none). Returns each id with whether it was
/// created (`true`) or replaced.
///
/// The commit is conditional: when another writer changed the stored definitions meanwhile,
/// the set is validated again against what that writer committed (a segment referred to may
/// have been removed, or a cycle formed) and stored on top of it, or refused with the problems.
pub async fn put_definitions(
    store: &Store,
    cache: &FooterCache,
    documents: &[Json],
    tz: Tz,
) -> Result<PutOutcome, Error> {
    let (definitions, schemas) = checked(store, cache, documents, tz).await?;
    let stored = std::sync::Mutex::new(Vec::new());
    let (definitions, schemas, stored_ref) = (&definitions, &schemas, &stored);
    let committed = kitle_data::definitions::update_definitions(store, |mut current| async move {
        let existing = others(&parse_stored(&current, tz)?, definitions);
        validate_set(definitions, &existing, schemas).map_err(Error::Refused)?;
        let mut outcome = Vec::new();
        for d in definitions {
            let created = current.insert(d.id.clone(), d.to_json()).is_none();
            outcome.push((d.id.clone(), created));
        }
        *stored_ref.lock().expect("outcome lock") = outcome;
        Ok::<_, Error>(current)
    })
    .await?;
    Ok(PutOutcome {
        stored: stored.into_inner().expect("outcome lock"),
        retries: committed.retries,
    })
}

/// Removes a stored definition (and forgets its memberships); refused while other stored
/// segments refer to it. Both checks are made against the definitions the commit replaces, so
/// a reference another writer added meanwhile is seen.
///
/// The removal is two commits (the definitions, then the manifest). A removal killed between
/// them leaves memberships of a segment no longer defined; removing the id again finishes it
/// (it forgets those memberships) instead of answering that no such segment is stored.
pub async fn remove_definition(store: &Store, id: &str, tz: Tz) -> Result<(), Error> {
    let removed = kitle_data::definitions::update_definitions(store, |mut current| async move {
        let definitions = parse_stored(&current, tz)?;
        if !definitions.iter().any(|d| d.id == id) {
            return Err(Error::NotFound(id.to_string()));
        }
        let referenced_by: Vec<String> = definitions
            .iter()
            .filter(|d| d.id != id && d.references().contains(&id))
            .map(|d| d.id.clone())
            .collect();
        if !referenced_by.is_empty() {
            return Err(Error::InUse {
                segment: id.to_string(),
                referenced_by,
            });
        }
        current.remove(id);
        Ok(current)
    })
    .await;
    match removed {
        Err(Error::NotFound(_))
            if memberships::read_manifest(store)
                .await?
                .segments
                .contains_key(id) => {}
        other => {
            other?;
        }
    }
    memberships::forget(store, id).await?;
    Ok(())
}

/// `targets` and every segment they refer to, transitively, from `all`.
fn closure(all: &[SegmentDefinition], targets: &[String]) -> Result<Vec<SegmentDefinition>, Error> {
    let by_id: HashMap<&str, &SegmentDefinition> = all.iter().map(|d| (d.id.as_str(), d)).collect();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = targets.to_vec();
    let mut out = Vec::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let d = by_id
            .get(id.as_str())
            .ok_or_else(|| Error::NotFound(id.clone()))?;
        stack.extend(d.references().into_iter().map(str::to_string));
        out.push((*d).clone());
    }
    Ok(out)
}

/// What one refresh runs on and with. One value, so that [`refresh`] and the run it puts under
/// the limits take the same thing.
#[derive(Clone, Copy)]
pub struct RefreshRun<'a> {
    /// The store read from and committed to.
    pub store: &'a Store,
    /// Parquet footers already read (a long-running service keeps one across refreshes).
    pub cache: &'a FooterCache,
    /// The segments to refresh; all stored segments when empty.
    pub requested: &'a [String],
    /// The instant evaluated at.
    pub as_of: DateTime<Utc>,
    /// The zone of instants written in the definitions.
    pub tz: Tz,
    /// The plan's memory pool and the time limit of the whole refresh.
    pub limits: &'a Limits,
    /// Told what the refresh is doing (a terminal's progress bar, a log, nothing).
    pub progress: &'a dyn Progress,
    /// Ignore every partial state: evaluate from the events alone and write no state
    /// (`kitle refresh --full`).
    pub full: bool,
}

/// Refreshes `run.requested` (all stored segments when empty) at `run.as_of` and commits the
/// new versions, under `run.limits` (the plan's memory pool; the time limit covers the whole
/// refresh). A failure at any point leaves the previous versions current.
pub async fn refresh(run: RefreshRun<'_>) -> Result<RefreshOutcome, Error> {
    let limits = &run.limits.start("the refresh");
    limits
        .run(
            "the refresh",
            refresh_unlimited(RefreshRun { limits, ..run }),
        )
        .await
        .map_err(|e| over_memory(e, limits, "the refresh"))
}

/// A memory-limit failure of `what`, said with the limit and the key that sets it.
fn over_memory(e: Error, limits: &Limits, what: &str) -> Error {
    match e {
        Error::Engine { source, .. }
            if matches!(
                source.find_root(),
                datafusion::error::DataFusionError::ResourcesExhausted(_)
            ) =>
        {
            Error::Engine {
                context: format!(
                    "{what} needs more memory than the configured {} MiB ({})",
                    limits.memory_bytes.unwrap_or_default() >> 20,
                    limits.memory_key
                ),
                source,
            }
        }
        other => other,
    }
}

async fn refresh_unlimited(run: RefreshRun<'_>) -> Result<RefreshOutcome, Error> {
    let RefreshRun {
        store,
        cache,
        requested,
        as_of,
        tz,
        limits,
        progress,
        full,
    } = run;
    let started = Instant::now();
    let io_at_start = store.io();
    // The manifest before the definitions: a removal committed after this read is seen when
    // the new versions are committed (see `memberships::commit`).
    let manifest = memberships::read_manifest(store).await?;
    let all = stored_definitions(store, tz).await?;
    let targets: Vec<String> = if requested.is_empty() {
        all.iter().map(|d| d.id.clone()).collect()
    } else {
        requested.to_vec()
    };
    let definitions = closure(&all, &targets)?;

    progress.start("reading the store", 0);
    let tables = ContractTables::load(store, cache).await?;
    progress.finish();
    let ctx = kitle_data::session::context_with(store, limits);
    tables.register_as_of(&ctx, as_of)?;
    let (plan, mut states) = if full {
        let plan = build_refresh_plan(&ctx, &tables, &definitions, &targets, as_of, tz).await?;
        (plan, StateReport::full())
    } else {
        build_refresh_plan_with_states(&ctx, &tables, &definitions, &targets, as_of, tz, progress)
            .await?
    };
    progress.start("evaluating", targets.len() as u64);
    let evaluated = members_of_counted(&ctx, plan, &mut states).await?;
    progress.finish();

    progress.start("writing", targets.len() as u64);
    let duration_ms = started.elapsed().as_millis() as u64;
    let mut versions = Vec::new();
    for id in &targets {
        let previous = memberships::current_members(store, &manifest, id).await?;
        let now = evaluated.get(id).map(Vec::as_slice).unwrap_or_default();
        versions.push(memberships::diff(id, as_of, now, &previous, duration_ms));
        progress.advance(1);
    }
    let commit = memberships::commit(store, &manifest, &versions).await?;
    progress.finish();
    Ok(RefreshOutcome {
        engine: store.engine().to_string(),
        as_of,
        segments: commit
            .records
            .iter()
            .map(|(id, r)| SegmentRefresh {
                id: id.clone(),
                version: r.version,
                size: r.size,
                entered: r.entered,
                exited: r.exited,
                duration_ms,
            })
            .collect(),
        retries: commit.retries,
        report: tables.report(),
        states,
        store_io: store.io().since(&io_at_start),
    })
}

/// A session with the store's tables registered as of some instant, and a plan to run in it.
type PlannedSession = (
    datafusion::prelude::SessionContext,
    crate::compile::RefreshPlan,
);

/// `definition` with the stored segments it refers to (the stored version of its own id left
/// out), ready to compile.
async fn with_references(
    store: &Store,
    definition: &SegmentDefinition,
    tz: Tz,
) -> Result<Vec<SegmentDefinition>, Error> {
    let mut all: Vec<SegmentDefinition> = stored_definitions(store, tz)
        .await?
        .into_iter()
        .filter(|d| d.id != definition.id)
        .collect();
    all.push(definition.clone());
    closure(&all, std::slice::from_ref(&definition.id))
}

/// Plans `definitions` (holding everything `target` refers to) at `as_of` over `tables`, in a
/// session ready to run it.
async fn plan_at(
    tables: &ContractTables,
    definitions: &[SegmentDefinition],
    target: &str,
    as_of: DateTime<Utc>,
    tz: Tz,
    limits: &Limits,
) -> Result<PlannedSession, Error> {
    let ctx = kitle_data::session::context_with(tables.store(), limits);
    tables.register_as_of(&ctx, as_of)?;
    let plan = build_refresh_plan(
        &ctx,
        tables,
        definitions,
        std::slice::from_ref(&target.to_string()),
        as_of,
        tz,
    )
    .await?;
    Ok((ctx, plan))
}

/// Plans `definition` (with the stored segments it refers to) at `as_of`, in a session ready
/// to run it.
async fn plan_one(
    store: &Store,
    definition: &SegmentDefinition,
    as_of: DateTime<Utc>,
    tz: Tz,
    limits: &Limits,
) -> Result<PlannedSession, Error> {
    let definitions = with_references(store, definition, tz).await?;
    let tables = ContractTables::load(store, &FooterCache::new()).await?;
    plan_at(&tables, &definitions, &definition.id, as_of, tz, limits).await
}

/// Evaluates `definition` (with the stored segments it refers to) at `as_of` without storing
/// anything, under `limits`: its members, sorted.
pub async fn preview(
    store: &Store,
    definition: &SegmentDefinition,
    as_of: DateTime<Utc>,
    tz: Tz,
    limits: &Limits,
) -> Result<Vec<String>, Error> {
    let mut out = preview_at(store, &FooterCache::new(), definition, &[as_of], tz, limits).await?;
    Ok(out.pop().unwrap_or_default())
}

/// [`preview`] at each of `instants` (a new segment's history before it exists), reading the
/// store's file list once. Every instant's plan runs under the memory pool of `limits`; the
/// time limit covers the whole preview.
pub async fn preview_at(
    store: &Store,
    cache: &FooterCache,
    definition: &SegmentDefinition,
    instants: &[DateTime<Utc>],
    tz: Tz,
    limits: &Limits,
) -> Result<Vec<Vec<String>>, Error> {
    let limits = &limits.start("the preview");
    let work = async {
        let definitions = with_references(store, definition, tz).await?;
        let tables = ContractTables::load(store, cache).await?;
        let mut out = Vec::with_capacity(instants.len());
        for as_of in instants {
            let (ctx, plan) =
                plan_at(&tables, &definitions, &definition.id, *as_of, tz, limits).await?;
            out.push(
                members_of(&ctx, plan)
                    .await?
                    .remove(&definition.id)
                    .unwrap_or_default(),
            );
        }
        Ok(out)
    };
    limits
        .run("the preview", work)
        .await
        .map_err(|e| over_memory(e, limits, "the preview"))
}

/// The logical (optimised) and physical plans `definition` runs as at `as_of`, as text.
pub async fn explain(
    store: &Store,
    definition: &SegmentDefinition,
    as_of: DateTime<Utc>,
    tz: Tz,
    analyze: bool,
) -> Result<String, Error> {
    // Run by the operator from the command line: no configured limits.
    let (ctx, plan) = plan_one(store, definition, as_of, tz, &Limits::none()).await?;
    let frame = ctx.execute_logical_plan(plan.plan).await?;
    let logical = frame.clone().into_optimized_plan()?;
    let physical = frame.create_physical_plan().await?;
    let mut text = format!(
        "== logical plan (as of {as_of}) ==\n{}\n\n== physical plan ==\n{}",
        logical.display_indent(),
        displayable(physical.as_ref()).indent(true)
    );
    if analyze {
        // Run it, then show the plan with each operator's metrics (rows, time, memory).
        let mut stream = datafusion::physical_plan::execute_stream(
            std::sync::Arc::clone(&physical),
            ctx.task_ctx(),
        )?;
        while let Some(batch) = futures::StreamExt::next(&mut stream).await {
            batch?;
        }
        text.push_str(&format!(
            "\n\n== physical plan with metrics ==\n{}",
            datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(
                physical.as_ref()
            )
            .indent(true)
        ));
    }
    Ok(text)
}

/// Explains stored segment `id` for `customer_id` at `as_of` (see
/// [`crate::explain::explain_member`]), with the stored segments it refers to.
pub async fn explain_stored_member(
    store: &Store,
    cache: &FooterCache,
    id: &str,
    customer_id: &str,
    as_of: DateTime<Utc>,
    tz: Tz,
    limits: &Limits,
) -> Result<crate::explain::MemberExplanation, Error> {
    let limits = &limits.start("the explanation");
    let work = async {
        let all = stored_definitions(store, tz).await?;
        let definitions = closure(&all, &[id.to_string()])?;
        let definition = definitions
            .iter()
            .find(|d| d.id == id)
            .cloned()
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        let tables = ContractTables::load(store, cache).await?;
        crate::explain::explain_member(
            &tables,
            &definitions,
            &definition,
            customer_id,
            as_of,
            tz,
            limits,
        )
        .await
    };
    limits
        .run("the explanation", work)
        .await
        .map_err(|e| over_memory(e, limits, "the explanation"))
}
