//! The one public error type of `kitle-data`.
//!
//! Every variant says what was wrong and where (a store URL, an object path, a column), so that
//! the CLI and the HTTP layer can show it to a person without adding context of their own.

/// Errors raised while opening, reading or writing a kitle store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store URL could not be understood (unknown scheme, missing bucket, …).
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidStoreUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },

    /// A file of the store is not readable as the data contract says, and the store was opened
    /// with `strict` reading (the default skips and reports such files instead).
    #[error("unreadable file {path}: {reason}")]
    UnreadableFile {
        /// Path of the object relative to the store root.
        path: String,
        /// Why it cannot be read.
        reason: String,
    },

    /// One of kitle's own objects in the store cannot be understood (a manifest edited by
    /// hand, a file cut short by another tool).
    #[error("corrupt object {path}: {reason}")]
    Corrupt {
        /// Path relative to the store root.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An argument given to a data operation is out of its range.
    #[error("invalid argument {name}: {reason}")]
    InvalidArgument {
        /// The argument's name as the user knows it (`--customers`).
        name: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// This process is configured with another identity setting than the store records, so it
    /// refuses to write (it would evaluate events as belonging to other customers than every
    /// other process of the store does).
    #[error(
        "the store records identity `{recorded}` but this process is configured with \
         `{configured}` (identity in kitle.toml or KITLE_IDENTITY), so it refuses to write; \
         configure `{recorded}`, or run `kitle identity set {configured}` to change the \
         store's setting on purpose"
    )]
    IdentityMismatch {
        /// What the store records.
        recorded: String,
        /// What this process is configured with.
        configured: String,
    },

    /// The object store failed (I/O, network, permissions).
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),

    /// DataFusion failed to plan or run a query.
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),

    /// Arrow failed to build or convert a batch.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    /// The Parquet writer or reader failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),

    /// A conditional commit of one of kitle's own objects lost the race to other writers
    /// [`crate::commit::MAX_ATTEMPTS`] times in a row.
    #[error("cannot commit {path}: other writers committed first {attempts} times in a row")]
    CommitConflict {
        /// The object, relative to the store root.
        path: String,
        /// How many attempts were made.
        attempts: u32,
    },

    /// What another writer committed meanwhile makes this change meaningless (a segment
    /// removed while it was being refreshed): nothing was written.
    #[error("{path}: {reason}")]
    Conflict {
        /// The object, relative to the store root.
        path: String,
        /// What changed meanwhile.
        reason: String,
    },

    /// Work ran longer than the configured limit and was stopped.
    #[error("{what} ran longer than the configured limit of {seconds} s ({key})")]
    TimeLimit {
        /// What was stopped (`the preview`, `the refresh`).
        what: String,
        /// The limit, in seconds.
        seconds: f64,
        /// The configuration key that sets it.
        key: &'static str,
    },

    /// A plan run on the cluster engine failed: the scheduler cannot be reached, the job failed
    /// (an executor lost beyond Ballista's retries, a task that failed), or the scheduler
    /// refused it. The service's, unless a task failed on the data itself (`data`).
    #[error("the cluster engine {engine} failed: {reason}: {message}")]
    Cluster {
        /// The engine (`ballista://HOST:PORT`).
        engine: String,
        /// What kind of failure, in words (`its scheduler cannot be reached`).
        reason: &'static str,
        /// Ballista's own message.
        message: String,
        /// Whether a task failed on the data (a division by zero): the query's, as on the local
        /// engine.
        data: bool,
    },

    /// A local file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and on which path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
