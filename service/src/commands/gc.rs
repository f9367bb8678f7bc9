//! `kitle gc [--delete] [--grace DURATION]`: kitle's data files that no committed version names
//! (left by killed or refused refreshes and removed segments), listed, or removed when asked.

use std::time::Duration;

use chrono::Utc;
use kitle_data::gc::collect;

use crate::Context;
use crate::error::CliError;

/// The arguments of `kitle gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Delete the files found (without it, only list them: a dry run).
    #[arg(long)]
    pub delete: bool,
    /// Leave alone files younger than this (`90s`, `30m`, `1h`, `2d`, or seconds; default:
    /// `gc_grace_seconds` of the configuration, one hour). A refresh writes its files before
    /// the commit that names them, so this must exceed the longest refresh.
    #[arg(long)]
    pub grace: Option<String>,
}

/// Parses a grace period: a whole number with an optional unit `s`, `m`, `h` or `d`.
pub fn parse_grace(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (give e.g. 90s, 30m, 1h, 2d)"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use s, m, h or d)"
            ));
        }
    };
    Ok(Duration::from_secs(n.saturating_mul(seconds)))
}

/// Lists (or deletes) the unnamed files and prints what was found.
pub async fn run(ctx: &Context, args: &GcArgs) -> Result<(), CliError> {
    let grace = match &args.grace {
        Some(text) => parse_grace(text).map_err(|e| CliError::input(format!("--grace: {e}")))?,
        None => ctx.config.gc_grace,
    };
    let store = ctx.open_store()?;
    let found = collect(&store, grace, Utc::now(), args.delete).await?;
    if ctx.json {
        println!("{}", serde_json::to_string(&found).unwrap_or_default());
        return Ok(());
    }
    for file in &found.unnamed {
        println!(
            "{} {:>10} bytes  written {}",
            if found.deleted { "deleted" } else { "unnamed" },
            file.size,
            file.last_modified.format("%Y-%m-%dT%H:%M:%SZ")
        );
        println!("  {}", file.path);
    }
    let verb = if found.unnamed.is_empty() {
        "nothing to delete"
    } else if found.deleted {
        "deleted"
    } else {
        "would delete (run again with --delete)"
    };
    println!(
        "{} of {} data files named by no committed version: {verb} ({} bytes); {} named files kept; {} unnamed files younger than {} s kept",
        found.unnamed.len(),
        found.examined,
        found.unnamed_bytes(),
        found.named,
        found.young.len(),
        found.grace_seconds
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_periods_read_with_their_units() {
        assert_eq!(parse_grace("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_grace("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_grace("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_grace("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_grace("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_grace("1w").unwrap_err().contains("unknown unit"));
        assert!(parse_grace("soon").unwrap_err().contains("not a duration"));
    }
}
