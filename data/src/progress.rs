//! Progress of long work, reported through a small trait.
//!
//! The data and planning layers only say how far they are; the CLI renders that as a progress
//! bar on a terminal and the service as log lines and metrics. Nothing here prints.

/// Receives progress of one long operation (generate, refresh, export).
pub trait Progress: Send + Sync {
    /// A new phase starts, with `total` units of work when known (`0` when unknown).
    fn start(&self, phase: &str, total: u64);
    /// `delta` more units of the current phase are done.
    fn advance(&self, delta: u64);
    /// The current phase is over.
    fn finish(&self);
}

/// A [`Progress`] that ignores everything: for tests, pipes and library callers that do not
/// care.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _phase: &str, _total: u64) {}
    fn advance(&self, _delta: u64) {}
    fn finish(&self) {}
}
