//! Carrying the `customers` table's row positions to the executors.
//!
//! The data contract breaks a tie between two profile rows of one customer with the same
//! `updated_at` by the file's path and then by the row's position in its file; kitle's plans
//! read the position with DataFusion's `file_row_index()`, which the Parquet scan turns into a
//! *virtual column* of the scan. DataFusion's protobuf encoding of a Parquet scan (what
//! Ballista sends a task in) keeps the file schema, the partition columns and the projection
//! but not the virtual columns, so an executor could not decode such a scan ("column index
//! out of bounds").
//!
//! The scheduler therefore wraps every scan with a virtual column in a [`PortableScanExec`]
//! ([`PortableScanRule`], its last physical rule), which [`KitleCodec`] — the physical codec of
//! the scheduler and the executors — encodes as the ordinary Parquet scan with every reference
//! to the row-index column written back as the `file_row_index()` call it came from. Decoding
//! that scan rebuilds the virtual column exactly as planning did (the Parquet source's own
//! projection pushdown), and the wrapper again, so a plan can be encoded any number of times.
//! Everything else goes through Ballista's codec unchanged.

use std::fmt;
use std::sync::Arc;

use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, ReplaceChildrenOptions,
};
use datafusion_proto::physical_plan::{
    PhysicalExtensionCodec, PhysicalPlanDecodeContext, PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf::physical_expr_node::ExprType;
use datafusion_proto::protobuf::physical_plan_node::PhysicalPlanType;
use datafusion_proto::protobuf::{PhysicalExprNode, PhysicalPlanNode, PhysicalScalarUdfNode};
use prost::Message;

/// What a [`KitleCodec`] payload of a portable scan starts with.
const MAGIC: &[u8] = b"kitle.portable_scan.v1\0";

/// The name DataFusion gives the row-index virtual column of a scan (a numeric suffix when
/// taken).
const ROW_INDEX_COLUMN: &str = "__datafusion_file_row_index";

/// The function the virtual column stands for.
const ROW_INDEX_FUNCTION: &str = "file_row_index";

/// Wraps every scan with virtual columns in a [`PortableScanExec`].
#[derive(Debug, Default)]
pub struct PortableScanRule;

impl PhysicalOptimizerRule for PortableScanRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if has_virtual_columns(node.as_ref()) {
                Ok(Transformed::yes(
                    Arc::new(PortableScanExec { inner: node }) as Arc<dyn ExecutionPlan>
                ))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "kitle_portable_scan"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `plan` is a file scan whose source has virtual columns.
fn has_virtual_columns(plan: &dyn ExecutionPlan) -> bool {
    plan.downcast_ref::<DataSourceExec>()
        .and_then(|scan| scan.data_source().downcast_ref::<FileScanConfig>())
        .is_some_and(|config| {
            !config
                .file_source()
                .table_schema()
                .virtual_columns()
                .is_empty()
        })
}

/// A file scan with virtual columns, run as it is and encoded by [`KitleCodec`].
#[derive(Debug)]
pub struct PortableScanExec {
    inner: Arc<dyn ExecutionPlan>,
}

impl DisplayAs for PortableScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PortableScanExec: ")?;
        match t {
            DisplayFormatType::TreeRender => Ok(()),
            _ => {
                let inner = datafusion::physical_plan::displayable(self.inner.as_ref())
                    .one_line()
                    .to_string();
                write!(f, "{}", inner.trim_end())
            }
        }
    }
}

impl ExecutionPlan for PortableScanExec {
    fn name(&self) -> &str {
        "PortableScanExec"
    }

    fn schema(&self) -> arrow::datatypes::SchemaRef {
        self.inner.schema()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return Err(DataFusionError::Internal(
                "PortableScanExec is a leaf".to_string(),
            ));
        }
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(datafusion::physical_plan::ChildrenPropertiesMode::Keep),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.inner.execute(partition, context)
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<datafusion::common::Statistics>],
        args: &datafusion::physical_plan::statistics::StatisticsArgs,
    ) -> Result<Arc<datafusion::common::Statistics>> {
        datafusion::physical_plan::statistics::StatisticsContext::new()
            .compute(self.inner.as_ref(), args)
    }
}

/// The physical codec of kitle's cluster nodes: Ballista's, plus [`PortableScanExec`].
#[derive(Debug, Default)]
pub struct KitleCodec {
    ballista: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for KitleCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(scan) = buf.strip_prefix(MAGIC) else {
            return self.ballista.try_decode(buf, inputs, ctx, proto_converter);
        };
        let proto = PhysicalPlanNode::decode(scan)
            .map_err(|e| DataFusionError::Internal(format!("decoding a portable scan: {e}")))?;
        let inner =
            proto_converter.proto_to_execution_plan(&proto, &PhysicalPlanDecodeContext::new(ctx, self))?;
        Ok(Arc::new(PortableScanExec { inner }))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let Some(scan) = node.downcast_ref::<PortableScanExec>() else {
            return self.ballista.try_encode(node, buf, proto_converter);
        };
        let mut proto = proto_converter.execution_plan_to_proto(&scan.inner, self)?;
        let Some(PhysicalPlanType::ParquetScan(parquet)) = proto.physical_plan_type.as_mut() else {
            return Err(DataFusionError::Internal(format!(
                "a scan with virtual columns that is not a Parquet scan cannot travel to a cluster: {}",
                datafusion::physical_plan::displayable(scan.inner.as_ref()).one_line()
            )));
        };
        let projections = parquet
            .base_conf
            .as_mut()
            .and_then(|conf| conf.projection_exprs.as_mut())
            .map(|p| p.projections.iter_mut());
        for projection in projections.into_iter().flatten() {
            if let Some(expr) = projection.expr.as_mut() {
                restore_row_index_calls(expr)?;
            }
        }
        buf.extend_from_slice(MAGIC);
        proto
            .encode(buf)
            .map_err(|e| DataFusionError::Internal(format!("encoding a portable scan: {e}")))
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        if name == ROW_INDEX_FUNCTION {
            return Ok(datafusion::functions::core::file_row_index());
        }
        self.ballista.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.ballista.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.ballista.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udwf(node, buf)
    }
}

/// Rewrites every reference to the row-index virtual column inside `expr` as the
/// `file_row_index()` call it stands for. The projections of a scan put it under casts; any
/// other expression around it is refused (it would not decode).
/// Planning turned `file_row_index()` into `CAST(<row index column> AS Int64)`: that cast is
/// written back as the call alone, so that decoding (which adds the cast again) gives the
/// planned expression exactly.
fn restore_row_index_calls(expr: &mut PhysicalExprNode) -> Result<()> {
    let is_row_index = |node: &PhysicalExprNode| {
        matches!(&node.expr_type, Some(ExprType::Column(c)) if c.name.starts_with(ROW_INDEX_COLUMN))
    };
    let call = || -> Result<ExprType> {
        Ok(ExprType::ScalarUdf(PhysicalScalarUdfNode {
            name: ROW_INDEX_FUNCTION.to_string(),
            args: Vec::new(),
            fun_definition: None,
            return_type: Some((&arrow::datatypes::DataType::Int64).try_into()?),
            nullable: true,
            return_field_name: format!("{ROW_INDEX_FUNCTION}()"),
        }))
    };
    if is_row_index(expr) {
        expr.expr_type = Some(call()?);
        return Ok(());
    }
    match expr.expr_type.as_mut() {
        Some(ExprType::Cast(cast)) if cast.expr.as_deref().is_some_and(is_row_index) => {
            expr.expr_type = Some(call()?);
            Ok(())
        }
        Some(ExprType::Cast(cast)) => match cast.expr.as_mut() {
            Some(inner) => restore_row_index_calls(inner),
            None => Ok(()),
        },
        Some(ExprType::TryCast(cast)) => match cast.expr.as_mut() {
            Some(inner) => restore_row_index_calls(inner),
            None => Ok(()),
        },
        Some(ExprType::ScalarUdf(call)) => call.args.iter_mut().try_for_each(restore_row_index_calls),
        _ => {
            let text = format!("{expr:?}");
            if text.contains(ROW_INDEX_COLUMN) {
                return Err(DataFusionError::NotImplemented(format!(
                    "a scan's row index inside this expression cannot travel to a cluster: {text}"
                )));
            }
            Ok(())
        }
    }
}
