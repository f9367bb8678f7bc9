//! `sql` conditions: their own query over the as-of tables.

use datafusion::arrow::datatypes::DataType;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::{LogicalPlanBuilder, cast};
use datafusion::prelude::{Expr, SessionContext, col, lit};

use super::{CID, CompileError, Compiler, Failure};

impl Compiler<'_> {
    pub(super) async fn sql(&mut self, ctx: &SessionContext, query: &str) -> Result<Expr, Failure> {
        if let Some(i) = self.sql_keys.get(query) {
            return Ok(col(self.sqls[*i].1.clone()).is_true());
        }
        let index = self.sqls.len();
        let frame = plan_sql_condition(ctx, query)
            .await
            .map_err(CompileError::new)?;
        let flag = format!("__sql_{index}");
        let qcid = format!("__sql_{index}_cid");
        let plan = LogicalPlanBuilder::from(frame.into_unoptimized_plan())
            .project(vec![cast(col(CID), DataType::Utf8).alias(qcid.clone())])
            .map_err(CompileError::from)?
            .filter(col(qcid.clone()).is_not_null())
            .map_err(CompileError::from)?
            .distinct()
            .map_err(CompileError::from)?
            .project(vec![col(qcid), lit(true).alias(flag.clone())])
            .map_err(CompileError::from)?
            .build()
            .map_err(CompileError::from)?;
        self.sqls.push((plan, flag.clone()));
        self.sql_keys.insert(query.to_string(), index);
        Ok(col(flag).is_true())
    }
}

/// Plans the query of a `sql` condition in `ctx` (where the as-of `events`, `customers` and
/// `identities` are registered): refused when it does not plan, is not read-only, or returns
/// no `customer_id` column — the spec's rule, checked here only, for validation and for the
/// compiler alike. The refusal is a sentence for the problem's message.
pub async fn plan_sql_condition(
    ctx: &SessionContext,
    query: &str,
) -> Result<datafusion::dataframe::DataFrame, String> {
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let frame = ctx
        .sql_with_options(query, options)
        .await
        .map_err(|e| format!("the sql condition does not plan: {}", e.find_root()))?;
    if frame.schema().field_with_unqualified_name(CID).is_err() {
        let columns: Vec<String> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        return Err(format!(
            "the sql condition returns no customer_id column (it returns {})",
            if columns.is_empty() {
                "no columns".to_string()
            } else {
                columns.join(", ")
            }
        ));
    }
    Ok(frame)
}
