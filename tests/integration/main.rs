//! kitle's one integration-test binary.
//!
//! Every module runs against real parts: real Parquet files written by other tools, a real
//! S3-compatible server on 127.0.0.1, the real `kitle` binary.

mod cli;
mod conformance;
mod http;
mod pg;
mod reading;
mod ready_made;
mod segments;
mod writers;
