//! The coordinator's side of a cluster run: the query planner that hands every plan to
//! Ballista, and the operator that turns the cluster's failures into [`crate::Error::Cluster`].
//!
//! Ballista's client reports everything that goes wrong — a scheduler that cannot be reached,
//! an executor lost with the job's last retry, a task that failed on the data — as DataFusion
//! *execution* errors carrying text, which kitle's classifier ([`crate::classify`]) would blame
//! on the caller's query. Wrapping the root of every cluster plan here keeps that decision in
//! one place: a failure of the cluster is the service's (HTTP 5xx, exit 1) and names the
//! cluster; only a task that failed on the data itself (a division by zero, a failed cast,
//! which the local engine also reports as the query's) stays the caller's.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ReplaceChildrenOptions,
};
use futures::Stream;

use crate::deadline::DeadlineRule;

/// Ballista's query planner, with every plan it returns wrapped in the deadline (the work's
/// own, else the cluster's job timeout: the physical optimizer rules of the session do not run
/// on the plan Ballista's planner returns) and then in a [`ClusterExec`].
#[derive(Debug)]
pub(crate) struct ClusterPlanner {
    pub(crate) inner: Arc<dyn QueryPlanner + Send + Sync>,
    pub(crate) engine: String,
    pub(crate) deadline: Option<DeadlineRule>,
}

#[async_trait::async_trait]
impl QueryPlanner for ClusterPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self
            .inner
            .create_physical_plan(logical_plan, session)
            .await
            .map_err(|e| cluster_error(&self.engine, e))?;
        let plan = match &self.deadline {
            Some(rule) => rule.optimize(plan, session.config_options())?,
            None => plan,
        };
        Ok(Arc::new(ClusterExec {
            input: plan,
            engine: self.engine.clone(),
        }))
    }
}

/// `error`, from running a plan on the cluster `engine`, as kitle reports it: errors kitle
/// already knows (a time limit) unchanged, the rest as [`crate::Error::Cluster`].
fn cluster_error(engine: &str, error: DataFusionError) -> DataFusionError {
    if let DataFusionError::External(inner) = &error
        && let Some(kitle) = inner.downcast_ref::<crate::Error>()
    {
        if let crate::Error::TimeLimit { seconds, key, .. } = kitle
            && *key == super::JOB_TIMEOUT_KEY
        {
            // The safety net of work without a limit of its own: the cluster stopped making
            // progress, which is the service's failure, not a limit the caller asked for.
            return DataFusionError::External(Box::new(crate::Error::Cluster {
                engine: engine.to_string(),
                reason: "the job did not finish in time",
                message: format!("it ran longer than {seconds} s ({key})"),
                data: false,
            }));
        }
        return error;
    }
    let text = error.to_string();
    let message = text
        .strip_prefix("Execution error: ")
        .unwrap_or(&text)
        .to_string();
    DataFusionError::External(Box::new(crate::Error::Cluster {
        engine: engine.to_string(),
        reason: reason_of(&message),
        data: failed_on_the_data(&message),
        message,
    }))
}

/// What kind of cluster failure `message` (Ballista's text) reports, in words.
fn reason_of(message: &str) -> &'static str {
    let connection = [
        "transport error",
        "ConnectError",
        "Connection refused",
        "Unavailable",
        "dns error",
        "tcp connect",
    ];
    if connection.iter().any(|m| message.contains(m)) {
        "its scheduler cannot be reached"
    } else if message.starts_with("Job ") && message.contains(" failed") {
        "the job failed on the cluster"
    } else if message.contains("Fail to execute query") {
        "the scheduler refused the job"
    } else {
        "the cluster run failed"
    }
}

/// Whether a failed task failed on the data (as the local engine's would, the query's fault)
/// rather than the cluster.
fn failed_on_the_data(message: &str) -> bool {
    ["Divide by zero", "Cast error", "Arithmetic overflow"]
        .iter()
        .any(|m| message.contains(m))
}

/// The root of every cluster plan on the coordinator: passes the cluster's batches through and
/// reports its failures as [`crate::Error::Cluster`].
#[derive(Debug)]
pub struct ClusterExec {
    input: Arc<dyn ExecutionPlan>,
    engine: String,
}

impl ClusterExec {
    const NAME: &'static str = "ClusterExec";
}

impl DisplayAs for ClusterExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: engine={}", Self::NAME, self.engine)
    }
}

impl ExecutionPlan for ClusterExec {
    crate::deadline::pass_through_methods!(Self::NAME);

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(ClusterExec {
            input: crate::deadline::only_child(Self::NAME, children)?,
            engine: self.engine.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self
            .input
            .execute(partition, context)
            .map_err(|e| cluster_error(&self.engine, e))?;
        Ok(Box::pin(ClusterStream {
            input,
            engine: self.engine.clone(),
        }))
    }
}

/// The stream of a [`ClusterExec`].
struct ClusterStream {
    input: SendableRecordBatchStream,
    engine: String,
}

impl Stream for ClusterStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let engine = self.engine.clone();
        self.input
            .as_mut()
            .poll_next(cx)
            .map(|item| item.map(|r| r.map_err(|e| cluster_error(&engine, e))))
    }
}

impl RecordBatchStream for ClusterStream {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Blame;

    #[test]
    fn cluster_failures_are_the_services_and_name_the_cluster() {
        let unreachable = cluster_error(
            "ballista://127.0.0.1:1",
            DataFusionError::Execution(
                "tonic::transport::Error(Transport, ConnectError(\"tcp connect error\", Os { code: 111, kind: ConnectionRefused, message: \"Connection refused\" }))".into(),
            ),
        );
        assert_eq!(crate::classify(&unreachable), Blame::Engine);
        let text = unreachable.to_string();
        assert!(text.contains("ballista://127.0.0.1:1"), "{text}");
        assert!(text.contains("scheduler cannot be reached"), "{text}");

        let lost = cluster_error(
            "ballista://s:50050",
            DataFusionError::Execution("Job abc failed: executor lost".into()),
        );
        assert_eq!(crate::classify(&lost), Blame::Engine);
        assert!(lost.to_string().contains("the job failed on the cluster"));

        let data = cluster_error(
            "ballista://s:50050",
            DataFusionError::Execution("Job abc failed: Arrow error: Divide by zero error".into()),
        );
        assert_eq!(crate::classify(&data), Blame::Evaluation);
    }

    #[test]
    fn the_job_timeout_is_a_cluster_failure() {
        let stalled = DataFusionError::External(Box::new(crate::Error::TimeLimit {
            what: "the cluster job".into(),
            seconds: 3600.0,
            key: super::super::JOB_TIMEOUT_KEY,
        }));
        let reported = cluster_error("ballista://s:1", stalled);
        assert_eq!(crate::classify(&reported), Blame::Engine);
        assert!(reported.to_string().contains("cluster.job_timeout_seconds"));
    }

    #[test]
    fn kitles_own_errors_pass_unchanged() {
        let limit = DataFusionError::External(Box::new(crate::Error::TimeLimit {
            what: "the preview".into(),
            seconds: 1.0,
            key: "preview_timeout_seconds",
        }));
        let kept = cluster_error("ballista://s:1", limit);
        assert_eq!(crate::classify(&kept), Blame::Limit);
    }
}
