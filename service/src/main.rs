//! `kitle`: the command-line entry point. Everything it does is in the `kitle` library (see
//! `kitle::cli`); this file only installs the allocator.

/// mimalloc: the service's request path and DataFusion's operators allocate many small,
/// short-lived objects from several threads, which glibc's allocator serves slowly (measured
/// with `benches/lookup_vs_redis.py`, see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kitle::cli::main()
}
