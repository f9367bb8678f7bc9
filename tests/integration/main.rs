//! kitle's one integration-test binary.
//!
//! Every module runs against real parts: real Parquet files written by other tools, a real
//! S3-compatible server on 127.0.0.1, the real `kitle` binary (the one this build produced:
//! the test target is declared by the `kitle` package, see `support`), a real browser
//! (Chromium).

mod cli;
mod cluster;
mod commits;
mod conformance;
mod console;
mod erasure;
mod failures;
mod fuzz_replay;
mod http;
mod identity;
mod incremental;
mod kills;
mod openapi;
mod pg;
mod reading;
mod ready_made;
mod segments;
mod support;
mod writers;
