//! A time limit that DataFusion plans obey from the inside.
//!
//! Dropping a plan's stream at a deadline (`tokio::time::timeout`) is not enough: an operator
//! that consumes a fast input — an aggregation over a cross join's output, say — loops over its
//! input inside one `poll` and never yields, so neither the timer nor anything else on that
//! worker thread runs again until the plan ends, which may be never. Here every operator of a
//! bounded session's physical plans is wrapped ([`DeadlineRule`], the last physical optimizer
//! rule) so that its stream checks the deadline at each batch and fails once it is past: the
//! error reaches the consumer at its next batch, whatever the plan looks like, and the plan
//! stops. The error is [`crate::Error::TimeLimit`], which names the configuration key.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ReplaceChildrenOptions,
};
use futures::Stream;

/// When a piece of work must end, and what to say when it does not.
#[derive(Debug, Clone)]
pub struct Deadline {
    /// The instant past which every operator fails.
    pub at: Instant,
    /// The limit (for the message).
    pub limit: Duration,
    /// What is limited (`the preview`).
    pub what: String,
    /// The configuration key of the limit.
    pub key: &'static str,
}

impl Deadline {
    fn check(&self) -> Result<()> {
        if Instant::now() >= self.at {
            return Err(DataFusionError::External(Box::new(
                crate::Error::TimeLimit {
                    what: self.what.clone(),
                    seconds: self.limit.as_secs_f64(),
                    key: self.key,
                },
            )));
        }
        Ok(())
    }
}

/// The physical optimizer rule that wraps every operator of a plan in a [`DeadlineExec`].
#[derive(Debug, Clone)]
pub struct DeadlineRule(pub Deadline);

impl PhysicalOptimizerRule for DeadlineRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if node.as_ref().name() == DeadlineExec::NAME {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(Arc::new(DeadlineExec {
                input: node,
                deadline: self.0.clone(),
            }) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "kitle_deadline"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The methods of an operator that passes its one `input`'s batches through, keeping its
/// schema, order and partitioning ([`DeadlineExec`], the cluster's `ClusterExec`), written
/// once: each operator adds `replace_children` (with [`only_child`]) and `execute`.
macro_rules! pass_through_methods {
    ($name:expr) => {
        fn name(&self) -> &str {
            $name
        }

        fn schema(&self) -> arrow::datatypes::SchemaRef {
            self.input.schema()
        }

        fn properties(&self) -> &std::sync::Arc<datafusion::physical_plan::PlanProperties> {
            self.input.properties()
        }

        fn maintains_input_order(&self) -> Vec<bool> {
            vec![true]
        }

        fn children(&self) -> Vec<&std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
            vec![&self.input]
        }

        fn apply_expressions(
            &self,
            _f: &mut dyn FnMut(
                &std::sync::Arc<dyn datafusion::physical_expr::PhysicalExpr>,
            ) -> datafusion::error::Result<
                datafusion::common::tree_node::TreeNodeRecursion,
            >,
        ) -> datafusion::error::Result<datafusion::common::tree_node::TreeNodeRecursion> {
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        }

        fn with_new_children(
            self: std::sync::Arc<Self>,
            children: Vec<std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>>,
        ) -> datafusion::error::Result<std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>>
        {
            self.replace_children(
                children,
                datafusion::physical_plan::ReplaceChildrenOptions::new(
                    datafusion::physical_plan::ChildrenPropertiesMode::Keep,
                ),
            )
        }
    };
}
pub(crate) use pass_through_methods;

/// The one child given to the `replace_children` of the pass-through operator `name`.
pub(crate) fn only_child(
    name: &str,
    mut children: Vec<Arc<dyn ExecutionPlan>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    if children.len() != 1 {
        return Err(DataFusionError::Internal(format!(
            "{name} takes one child, not {}",
            children.len()
        )));
    }
    Ok(children.swap_remove(0))
}

/// An operator that passes its input's batches through and fails once the deadline is past.
#[derive(Debug)]
pub struct DeadlineExec {
    input: Arc<dyn ExecutionPlan>,
    deadline: Deadline,
}

impl DeadlineExec {
    const NAME: &'static str = "DeadlineExec";
}

impl DisplayAs for DeadlineExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Self::NAME)
    }
}

impl ExecutionPlan for DeadlineExec {
    pass_through_methods!(Self::NAME);

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(DeadlineExec {
            input: only_child(Self::NAME, children)?,
            deadline: self.deadline.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.deadline.check()?;
        Ok(Box::pin(DeadlineStream {
            input: self.input.execute(partition, context)?,
            deadline: self.deadline.clone(),
            done: false,
        }))
    }
}

/// The stream of a [`DeadlineExec`].
struct DeadlineStream {
    input: SendableRecordBatchStream,
    deadline: Deadline,
    done: bool,
}

impl Stream for DeadlineStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Err(e) = self.deadline.check() {
            self.done = true;
            return Poll::Ready(Some(Err(e)));
        }
        self.input.as_mut().poll_next(cx)
    }
}

impl RecordBatchStream for DeadlineStream {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
}
