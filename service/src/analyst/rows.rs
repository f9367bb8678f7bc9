//! A query's result as a stream of Arrow batches under the configuration's limits: the time
//! limit counts the time the query keeps its caller waiting (planning, and waiting for each
//! batch — not the time the caller spends reading pages of a cursor), and an optional row cap
//! stops a plain result that grows past it. The stream records the query's outcome and
//! latency in the metrics once, when it ends, fails or is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::Stream;

use super::error::AnalystError;

/// The time a statement may still take, spent as it runs.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    limit: Option<Duration>,
    left: Option<Duration>,
}

impl Budget {
    /// A full budget of `limit` (none: unlimited).
    pub fn new(limit: Option<Duration>) -> Self {
        Self { limit, left: limit }
    }

    /// Runs `work` within what is left, and deducts the time it took.
    pub async fn run<T, F>(&mut self, work: F) -> Result<T, AnalystError>
    where
        F: Future<Output = Result<T, AnalystError>>,
    {
        let Some(left) = self.left else {
            return work.await;
        };
        let started = Instant::now();
        let outcome = tokio::time::timeout(left, work).await;
        self.left = Some(left.saturating_sub(started.elapsed()));
        match outcome {
            Ok(result) => result,
            Err(_) => Err(self.exceeded()),
        }
    }

    fn exceeded(&self) -> AnalystError {
        AnalystError::TimeLimit(self.limit.unwrap_or_default())
    }
}

/// Records one statement's outcome and latency: `kitle_sql_queries_total{protocol, outcome}`
/// and `kitle_sql_query_duration_seconds{protocol}`.
pub fn record(protocol: &'static str, outcome: &'static str, elapsed: Duration) {
    metrics::counter!("kitle_sql_queries_total", "protocol" => protocol, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("kitle_sql_query_duration_seconds", "protocol" => protocol)
        .record(elapsed.as_secs_f64());
}

/// The batches of one running query.
pub struct Rows {
    schema: SchemaRef,
    inner: SendableRecordBatchStream,
    budget: Budget,
    /// The armed timer while the caller waits for a batch, and since when it waits.
    timer: Option<(Instant, Pin<Box<tokio::time::Sleep>>)>,
    cap: Option<usize>,
    rows: usize,
    done: bool,
    protocol: &'static str,
    started: Instant,
    recorded: bool,
}

impl Rows {
    pub(super) fn new(
        schema: SchemaRef,
        inner: SendableRecordBatchStream,
        budget: Budget,
        cap: Option<usize>,
        protocol: &'static str,
        started: Instant,
    ) -> Self {
        Self {
            schema,
            inner,
            budget,
            timer: None,
            cap,
            rows: 0,
            done: false,
            protocol,
            started,
            recorded: false,
        }
    }

    /// The result's columns.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn finish(&mut self, outcome: &'static str) {
        self.done = true;
        self.timer = None;
        if !self.recorded {
            self.recorded = true;
            record(self.protocol, outcome, self.started.elapsed());
        }
    }

    fn fail(&mut self, error: AnalystError) -> Poll<Option<Result<RecordBatch, AnalystError>>> {
        self.finish(error.outcome());
        Poll::Ready(Some(Err(error)))
    }
}

impl Stream for Rows {
    type Item = Result<RecordBatch, AnalystError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(left) = this.budget.left {
            let (_, sleep) = this
                .timer
                .get_or_insert_with(|| (Instant::now(), Box::pin(tokio::time::sleep(left))));
            if sleep.as_mut().poll(cx).is_ready() {
                this.budget.left = Some(Duration::ZERO);
                let error = this.budget.exceeded();
                return this.fail(error);
            }
        }
        let next = match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(next) => next,
        };
        if let (Some(left), Some((since, _))) = (this.budget.left, this.timer.take()) {
            this.budget.left = Some(left.saturating_sub(since.elapsed()));
        }
        match next {
            None => {
                this.finish("ok");
                Poll::Ready(None)
            }
            Some(Err(e)) => this.fail(e.into()),
            Some(Ok(batch)) => {
                this.rows += batch.num_rows();
                match this.cap {
                    Some(cap) if this.rows > cap => this.fail(AnalystError::RowLimit(cap)),
                    _ => Poll::Ready(Some(Ok(batch))),
                }
            }
        }
    }
}

impl Drop for Rows {
    fn drop(&mut self) {
        // A result abandoned by its reader (a cursor closed early) ended without a failure.
        self.finish("ok");
    }
}
