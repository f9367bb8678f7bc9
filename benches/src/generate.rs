//! `bench-generate`: how fast the synthetic shop is written.
//!
//! ```text
//! cargo run --release -p kitle-benches --bin bench-generate -- --customers 1000000 --days 90
//! ```
//!
//! Generates into a temporary local store (or `--out DIR`, kept afterwards) and prints the
//! customers, events, seconds, events per second and megabytes written. The requirement is
//! at least one million events per second on a 2-core machine in a release build.

use std::process::ExitCode;
use std::time::Instant;

use chrono::NaiveDate;
use kitle_data::generate::{GenerateOptions, generate};
use kitle_data::{NoProgress, Store, StoreConfig};

struct Args {
    customers: u64,
    days: u32,
    seed: u64,
    end: NaiveDate,
    out: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        customers: 1_000_000,
        days: 90,
        seed: 42,
        end: NaiveDate::from_ymd_opt(2025, 12, 31).ok_or("bad default end")?,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--customers" => {
                args.customers = value()?.parse().map_err(|e| format!("--customers: {e}"))?
            }
            "--days" => args.days = value()?.parse().map_err(|e| format!("--days: {e}"))?,
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--end" => args.end = value()?.parse().map_err(|e| format!("--end: {e}"))?,
            "--out" => args.out = Some(value()?),
            "--help" | "-h" => {
                return Err("usage: bench-generate [--customers N] [--days D] [--seed S] [--end YYYY-MM-DD] [--out DIR]".into());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let temp = match tempfile::TempDir::new() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("cannot create a temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = match &args.out {
        Some(dir) => dir.clone(),
        None => temp.path().display().to_string(),
    };
    let store = match Store::open(&StoreConfig {
        url,
        ..StoreConfig::default()
    }) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let options = GenerateOptions {
        customers: args.customers,
        days: args.days,
        seed: args.seed,
        end: args.end,
    };
    let started = Instant::now();
    let summary = match generate(&store, &options, &NoProgress).await {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("store           {}", store.display_url());
    println!(
        "period          {} .. {}",
        summary.first_day, summary.last_day
    );
    println!("threads         {threads}");
    println!("customers       {}", summary.customers);
    println!("customer rows   {}", summary.customer_rows);
    println!("events          {}", summary.events);
    println!("files           {}", summary.files);
    println!("seconds         {seconds:.2}");
    println!("events/second   {:.0}", summary.events as f64 / seconds);
    println!("MB written      {:.1}", summary.bytes as f64 / 1e6);
    ExitCode::SUCCESS
}
