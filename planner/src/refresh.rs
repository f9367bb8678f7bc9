//! Keeping definitions in the store, and refreshing memberships.
//!
//! A refresh evaluates the asked-for segments (and, inside the same plan, those they refer to)
//! at one `as_of`, diffs each against its current version — who entered, who exited, and since
//! when each member has been in — and hands the new versions to `kitle-data` to commit with
//! one manifest write. The functions here also serve `segment put|validate|rm|explain|preview`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use datafusion::physical_plan::displayable;
use kitle_data::contract::ContractTable;
use kitle_data::files::FooterCache;
use kitle_data::memberships::{self, Member, NewVersion};
use kitle_data::tables::{ContractTables, ReadReport};
use kitle_data::{Progress, Store};
use serde::Serialize;
use serde_json::Value as Json;

use crate::compile::{build_refresh_plan, members_of};
use crate::definition::SegmentDefinition;
use crate::error::{Error, Problem, Problems};
use crate::parse::parse_definition;
use crate::validate::{StoreSchemas, validate_set};

/// What a refresh did to one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentRefresh {
    /// The segment.
    pub id: String,
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
    /// Files skipped and rows dropped while reading the store.
    pub report: ReadReport,
}

/// The stored definitions, parsed (instants of stored definitions are UTC, so the zone only
/// matters for documents written by hand into the store).
pub async fn stored_definitions(store: &Store, tz: Tz) -> Result<Vec<SegmentDefinition>, Error> {
    let documents = memberships::read_definitions(store).await?;
    let mut problems = Problems::new();
    let mut definitions = Vec::new();
    for (id, document) in &documents {
        match parse_definition(document, tz) {
            Ok(d) => definitions.push(d),
            Err(p) => problems
                .extend(p.under(&format!("{}[{id:?}]", kitle_data::layout::DEFINITIONS_FILE))),
        }
    }
    problems.into_result(definitions).map_err(Error::Refused)
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
pub async fn check_definitions(
    store: &Store,
    documents: &[Json],
    tz: Tz,
) -> Result<Vec<SegmentDefinition>, Error> {
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
    let tables = ContractTables::load(store, &FooterCache::new()).await?;
    let new_ids: BTreeSet<&str> = definitions.iter().map(|d| d.id.as_str()).collect();
    let existing: Vec<SegmentDefinition> = stored_definitions(store, tz)
        .await?
        .into_iter()
        .filter(|d| !new_ids.contains(d.id.as_str()))
        .collect();
    validate_set(&definitions, &existing, &schemas_of(&tables)).map_err(Error::Refused)?;

    // Compile each (with what it refers to) so that a `sql` condition that does not plan is
    // refused now rather than at the next refresh.
    let mut all = existing;
    all.extend(definitions.iter().cloned());
    let ctx = kitle_data::session::new_context(store);
    let as_of = Utc::now();
    tables.register_as_of(&ctx, as_of)?;
    for (i, d) in definitions.iter().enumerate() {
        if let Err(e) =
            crate::compile::check_plan(&ctx, &tables, &all, std::slice::from_ref(&d.id), as_of, tz)
                .await
        {
            let path = if definitions.len() > 1 {
                format!("[{i}].condition")
            } else {
                "condition".into()
            };
            problems.push(Problem::new(
                path,
                "",
                "a condition that plans",
                e.to_string(),
            ));
        }
    }
    problems.into_result(definitions).map_err(Error::Refused)
}

/// Stores `documents` (validated as one set: all or none). Returns each id with whether it was
/// created (`true`) or replaced.
pub async fn put_definitions(
    store: &Store,
    documents: &[Json],
    tz: Tz,
) -> Result<Vec<(String, bool)>, Error> {
    let definitions = check_definitions(store, documents, tz).await?;
    let mut stored = memberships::read_definitions(store).await?;
    let mut outcome = Vec::new();
    for d in definitions {
        let created = stored.insert(d.id.clone(), d.to_json()).is_none();
        outcome.push((d.id, created));
    }
    memberships::write_definitions(store, &stored).await?;
    Ok(outcome)
}

/// Removes a stored definition (and forgets its memberships); refused while other stored
/// segments refer to it.
pub async fn remove_definition(store: &Store, id: &str, tz: Tz) -> Result<(), Error> {
    let definitions = stored_definitions(store, tz).await?;
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
    let mut stored = memberships::read_definitions(store).await?;
    stored.remove(id);
    memberships::write_definitions(store, &stored).await?;
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

/// Refreshes `requested` (all stored segments when empty) at `as_of` and commits the new
/// versions. A failure at any point leaves the previous versions current.
pub async fn refresh(
    store: &Store,
    cache: &FooterCache,
    requested: &[String],
    as_of: DateTime<Utc>,
    tz: Tz,
    progress: &dyn Progress,
) -> Result<RefreshOutcome, Error> {
    let started = Instant::now();
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
    progress.start("evaluating", targets.len() as u64);
    let ctx = kitle_data::session::new_context(store);
    tables.register_as_of(&ctx, as_of)?;
    let plan = build_refresh_plan(&ctx, &tables, &definitions, &targets, as_of, tz).await?;
    let evaluated = members_of(&ctx, plan).await?;
    progress.finish();

    progress.start("writing", targets.len() as u64);
    let manifest = memberships::read_manifest(store).await?;
    // Customers erased while this refresh ran (the universe was read before): never brought
    // back.
    let erased_meanwhile: BTreeSet<String> = manifest
        .erased_hashes()
        .difference(tables.erased())
        .cloned()
        .collect();
    let duration_ms = started.elapsed().as_millis() as u64;
    let mut versions = Vec::new();
    for id in &targets {
        let previous: BTreeMap<String, DateTime<Utc>> =
            memberships::current_members(store, &manifest, id)
                .await?
                .into_iter()
                .map(|m| (m.customer_id, m.since))
                .collect();
        let mut now = evaluated.get(id).cloned().unwrap_or_default();
        if !erased_meanwhile.is_empty() {
            now.retain(|c| !erased_meanwhile.contains(&kitle_data::erasure::id_hash(c)));
        }
        let now_set: BTreeSet<&str> = now.iter().map(String::as_str).collect();
        let entered: Vec<String> = now
            .iter()
            .filter(|c| !previous.contains_key(*c))
            .cloned()
            .collect();
        let exited: Vec<String> = previous
            .keys()
            .filter(|c| !now_set.contains(c.as_str()))
            .cloned()
            .collect();
        let members = now
            .iter()
            .map(|c| Member {
                customer_id: c.clone(),
                since: previous.get(c).copied().unwrap_or(as_of),
            })
            .collect();
        versions.push(NewVersion {
            segment: id.clone(),
            as_of,
            members,
            entered,
            exited,
            duration_ms,
        });
        progress.advance(1);
    }
    memberships::commit(store, &manifest, &versions).await?;
    progress.finish();
    Ok(RefreshOutcome {
        as_of,
        segments: versions
            .iter()
            .map(|v| SegmentRefresh {
                id: v.segment.clone(),
                size: v.members.len() as u64,
                entered: v.entered.len() as u64,
                exited: v.exited.len() as u64,
                duration_ms,
            })
            .collect(),
        report: tables.report(),
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
) -> Result<PlannedSession, Error> {
    let ctx = kitle_data::session::new_context(tables.store());
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
) -> Result<PlannedSession, Error> {
    let definitions = with_references(store, definition, tz).await?;
    let tables = ContractTables::load(store, &FooterCache::new()).await?;
    plan_at(&tables, &definitions, &definition.id, as_of, tz).await
}

/// Evaluates `definition` (with the stored segments it refers to) at `as_of` without storing
/// anything: its members, sorted.
pub async fn preview(
    store: &Store,
    definition: &SegmentDefinition,
    as_of: DateTime<Utc>,
    tz: Tz,
) -> Result<Vec<String>, Error> {
    let mut out = preview_at(store, &FooterCache::new(), definition, &[as_of], tz).await?;
    Ok(out.pop().unwrap_or_default())
}

/// [`preview`] at each of `instants` (a new segment's history before it exists), reading the
/// store's file list once.
pub async fn preview_at(
    store: &Store,
    cache: &FooterCache,
    definition: &SegmentDefinition,
    instants: &[DateTime<Utc>],
    tz: Tz,
) -> Result<Vec<Vec<String>>, Error> {
    let definitions = with_references(store, definition, tz).await?;
    let tables = ContractTables::load(store, cache).await?;
    let mut out = Vec::with_capacity(instants.len());
    for as_of in instants {
        let (ctx, plan) = plan_at(&tables, &definitions, &definition.id, *as_of, tz).await?;
        out.push(
            members_of(&ctx, plan)
                .await?
                .remove(&definition.id)
                .unwrap_or_default(),
        );
    }
    Ok(out)
}

/// The logical (optimised) and physical plans `definition` runs as at `as_of`, as text.
pub async fn explain(
    store: &Store,
    definition: &SegmentDefinition,
    as_of: DateTime<Utc>,
    tz: Tz,
    analyze: bool,
) -> Result<String, Error> {
    let (ctx, plan) = plan_one(store, definition, as_of, tz).await?;
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
) -> Result<crate::explain::MemberExplanation, Error> {
    let all = stored_definitions(store, tz).await?;
    let definitions = closure(&all, &[id.to_string()])?;
    let definition = definitions
        .iter()
        .find(|d| d.id == id)
        .cloned()
        .ok_or_else(|| Error::NotFound(id.to_string()))?;
    let tables = ContractTables::load(store, cache).await?;
    crate::explain::explain_member(&tables, &definitions, &definition, customer_id, as_of, tz).await
}
