//! `kitle segment validate|put|list|show|rm|explain|preview`: definitions kept in the store.

use std::path::Path;

use chrono::{DateTime, Utc};
use kitle_data::Store;
use kitle_data::files::FooterCache;
use kitle_data::memberships;
use kitle_planner::SegmentDefinition;
use kitle_planner::refresh::{
    check_definitions, explain, preview, put_definitions, remove_definition, stored_definitions,
};
use serde_json::{Value, json};

use crate::Context;
use crate::error::CliError;

/// The `segment` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SegmentCommand {
    /// Check definitions against the language and the store's schema.
    Validate {
        /// Definition files (JSON: one definition, or a list of them).
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Store definitions (validated as one set: all or none).
    Put {
        /// Definition files.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// List the stored segments.
    List,
    /// Print a stored definition with its size and last refresh.
    Show {
        /// Segment id.
        id: String,
    },
    /// Remove a stored segment (refused while others refer to it).
    Rm {
        /// Segment id.
        id: String,
    },
    /// Print the DataFusion logical and physical plans a definition runs as.
    Explain {
        /// A definition file, or the id of a stored segment.
        target: String,
        /// Evaluation instant (default: now).
        #[arg(long)]
        as_of: Option<String>,
        /// Also run the plan and show each operator's metrics (rows, time, memory).
        #[arg(long)]
        analyze: bool,
    },
    /// Size and a sample of members, nothing stored.
    Preview {
        /// A definition file, or the id of a stored segment.
        target: String,
        /// Evaluation instant (default: now).
        #[arg(long)]
        as_of: Option<String>,
    },
}

/// Reads the JSON documents of definition files (a file may hold one definition or a list).
fn read_documents(files: &[String]) -> Result<Vec<Value>, CliError> {
    let mut documents = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::input(format!("cannot read {file}: {e}")))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| CliError::input(format!("{file} is not JSON: {e}")))?;
        match value {
            Value::Array(items) => documents.extend(items),
            other => documents.push(other),
        }
    }
    Ok(documents)
}

/// Parses `--as-of` in the store's zone, or now truncated to the second.
pub fn as_of(ctx: &Context, text: Option<&str>) -> Result<DateTime<Utc>, CliError> {
    match text {
        Some(t) => kitle_planner::parse_instant(t, ctx.config.time_zone)
            .map_err(|e| CliError::input(format!("--as-of: {e}"))),
        None => {
            let now = Utc::now();
            Ok(DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now))
        }
    }
}

/// A definition from a file, or the stored one with that id.
async fn resolve(
    ctx: &Context,
    store: &Store,
    target: &str,
) -> Result<SegmentDefinition, CliError> {
    if Path::new(target).is_file() {
        let documents = read_documents(&[target.to_string()])?;
        let [document] = documents.as_slice() else {
            return Err(CliError::input(format!(
                "{target} holds {} definitions; give one",
                documents.len()
            )));
        };
        let definitions = check_definitions(
            store,
            &FooterCache::new(),
            std::slice::from_ref(document),
            ctx.config.time_zone,
        )
        .await?;
        return Ok(definitions.into_iter().next().expect("one definition"));
    }
    stored_definitions(store, ctx.config.time_zone)
        .await?
        .into_iter()
        .find(|d| d.id == target)
        .ok_or_else(|| {
            CliError::input(format!(
                "{target} is neither a definition file nor a stored segment"
            ))
        })
}

/// Runs one `segment` subcommand.
pub async fn run(ctx: &Context, command: &SegmentCommand) -> Result<(), CliError> {
    let store = ctx.open_store()?;
    let tz = ctx.config.time_zone;
    match command {
        SegmentCommand::Validate { files } => {
            let definitions =
                check_definitions(&store, &FooterCache::new(), &read_documents(files)?, tz).await?;
            if ctx.json {
                println!(
                    "{}",
                    json!({"valid": definitions.iter().map(|d| &d.id).collect::<Vec<_>>()})
                );
            } else {
                for d in &definitions {
                    println!("{}: valid", d.id);
                }
            }
        }
        SegmentCommand::Put { files } => {
            let outcome =
                put_definitions(&store, &FooterCache::new(), &read_documents(files)?, tz).await?;
            if ctx.json {
                let items: Vec<Value> = outcome
                    .stored
                    .iter()
                    .map(|(id, created)| json!({"id": id, "created": created}))
                    .collect();
                println!("{}", json!({"stored": items, "retries": outcome.retries}));
            } else {
                for (id, created) in &outcome.stored {
                    println!("{id}: {}", if *created { "created" } else { "replaced" });
                }
            }
        }
        SegmentCommand::List => {
            let manifest = memberships::read_manifest(&store).await?;
            let definitions = stored_definitions(&store, tz).await?;
            let rows: Vec<Value> = definitions
                .iter()
                .map(|d| {
                    let current = manifest.segments.get(&d.id).and_then(|s| s.current());
                    json!({
                        "id": d.id,
                        "name": d.name,
                        "refresh": d.refresh.to_string(),
                        "size": current.map(|r| r.size),
                        "last_as_of": current.map(|r| kitle_planner::format_instant(&r.as_of)),
                    })
                })
                .collect();
            if ctx.json {
                println!("{}", json!({"segments": rows}));
            } else {
                for row in &rows {
                    println!(
                        "{:<36} {:>9} {:<22} {:<10} {}",
                        row["id"].as_str().unwrap_or_default(),
                        row["size"]
                            .as_u64()
                            .map_or("-".to_string(), |s| s.to_string()),
                        row["last_as_of"].as_str().unwrap_or("never refreshed"),
                        row["refresh"].as_str().unwrap_or_default(),
                        row["name"].as_str().unwrap_or_default(),
                    );
                }
            }
        }
        SegmentCommand::Show { id } => {
            let definition = stored_definitions(&store, tz)
                .await?
                .into_iter()
                .find(|d| &d.id == id)
                .ok_or_else(|| CliError::input(format!("no segment {id} is stored")))?;
            let manifest = memberships::read_manifest(&store).await?;
            let current = manifest.segments.get(id).and_then(|s| s.current());
            let mut document = definition.to_json();
            if let Value::Object(map) = &mut document {
                map.insert("size".into(), json!(current.map(|r| r.size)));
                map.insert(
                    "last_as_of".into(),
                    json!(current.map(|r| kitle_planner::format_instant(&r.as_of))),
                );
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&document).unwrap_or_default()
            );
        }
        SegmentCommand::Rm { id } => {
            remove_definition(&store, id, tz).await?;
            if ctx.json {
                println!("{}", json!({"removed": id}));
            } else {
                println!("{id}: removed");
            }
        }
        SegmentCommand::Explain {
            target,
            as_of: at,
            analyze,
        } => {
            let definition = resolve(ctx, &store, target).await?;
            let text = explain(
                &store,
                &definition,
                as_of(ctx, at.as_deref())?,
                tz,
                *analyze,
            )
            .await?;
            if ctx.json {
                println!("{}", json!({"id": definition.id, "plans": text}));
            } else {
                println!("{text}");
            }
        }
        SegmentCommand::Preview { target, as_of: at } => {
            let definition = resolve(ctx, &store, target).await?;
            let at = as_of(ctx, at.as_deref())?;
            let members =
                preview(&store, &definition, at, tz, &ctx.config.refresh_limits()).await?;
            let sample: Vec<&String> = members.iter().take(20).collect();
            if ctx.json {
                println!(
                    "{}",
                    json!({"id": definition.id, "as_of": kitle_planner::format_instant(&at), "size": members.len(), "sample": sample})
                );
            } else {
                println!(
                    "{}: {} members as of {}",
                    definition.id,
                    members.len(),
                    kitle_planner::format_instant(&at)
                );
                for id in sample {
                    println!("  {id}");
                }
            }
        }
    }
    Ok(())
}
