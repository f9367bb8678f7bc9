//! Whose events are whose: the store's identity setting as a plan step before any pass over
//! the events.
//!
//! With `customer_id` an event is its `customer_id`'s, and anonymous rows are dropped by the
//! scan. With `stitched`, rows without a `customer_id` but with an `anonymous_id` are kept and
//! joined to the owners of anonymous ids ([`ContractTables::identities_plan`]: the latest link
//! with `ts <= as_of`, whichever partition it landed in), and `customer_id` becomes the owner:
//! the stored id when there is one, else the device's owner. `where` filters and measures see
//! the stored column under [`STORED_CID`], so an anonymous event's `customer_id` is still
//! null to them. Owners outside the universe are kept here and dropped by the join to the
//! universe, like any other id without a profile.

use std::collections::BTreeSet;

use datafusion::common::{Column, JoinType};
use datafusion::functions::expr_fn::coalesce;
use datafusion::logical_expr::{LogicalPlanBuilder, when};
use datafusion::prelude::{Expr, col};
use kitle_data::identity::Identity;

use super::{CID, CompileError, Compiler};

/// The stored `customer_id` of a row, once `customer_id` names its owner (stitched mode).
pub(super) const STORED_CID: &str = "__stored_customer_id";

const ANONYMOUS: &str = "anonymous_id";
const KEY: &str = "__anonymous_key";
const LINK_ANONYMOUS: &str = "__link_anonymous_id";
const LINK_OWNER: &str = "__link_customer_id";

impl Compiler<'_> {
    /// Whether anonymous events are stitched to their devices' owners.
    pub(super) fn stitched(&self) -> bool {
        self.tables.identity() == Identity::Stitched
    }

    /// The name under which conditions read the event column `column`: its stored value
    /// (for `customer_id` in stitched mode, [`STORED_CID`]).
    pub(super) fn stored(&self, column: &str) -> String {
        if column == CID && self.stitched() {
            STORED_CID.to_string()
        } else {
            column.to_string()
        }
    }

    /// The raw columns a scan needs besides `columns` to know whose its rows are.
    pub(super) fn identity_columns(&self, columns: &mut BTreeSet<String>) {
        if self.stitched() {
            columns.insert(ANONYMOUS.to_string());
        }
    }

    /// The rows that may belong to somebody: with a `customer_id`, or (stitched) with an
    /// `anonymous_id` that may have an owner.
    pub(super) fn may_have_owner(&self) -> Expr {
        let known = col(CID).is_not_null();
        if self.stitched() {
            known.or(col(ANONYMOUS).is_not_null())
        } else {
            known
        }
    }

    /// `rows` (whose columns are `output`) with `customer_id` naming each row's owner and rows
    /// without one dropped; in `customer_id` mode, `rows` as they are.
    pub(super) fn owned(
        &self,
        rows: LogicalPlanBuilder,
        output: &[String],
    ) -> Result<LogicalPlanBuilder, CompileError> {
        if !self.stitched() {
            return Ok(rows);
        }
        let links = LogicalPlanBuilder::from(self.tables.identities_plan(Some(self.as_of))?)
            .project(vec![
                col(ANONYMOUS).alias(LINK_ANONYMOUS),
                col(CID).alias(LINK_OWNER),
            ])?
            .build()?;
        let others = || {
            output
                .iter()
                .filter(|c| c.as_str() != CID)
                .map(|c| col(Column::from_name(c)))
        };
        let mut keyed: Vec<Expr> = others().collect();
        keyed.push(col(CID).alias(STORED_CID));
        // Only anonymous rows look for an owner: a null key matches no link.
        keyed.push(when(col(CID).is_null(), col(ANONYMOUS)).end()?.alias(KEY));
        let mut owned: Vec<Expr> =
            vec![coalesce(vec![col(STORED_CID), col(LINK_OWNER)]).alias(CID)];
        owned.extend(others());
        owned.push(col(STORED_CID));
        Ok(rows
            .project(keyed)?
            .join(
                links,
                JoinType::Left,
                (vec![KEY], vec![LINK_ANONYMOUS]),
                None,
            )?
            .project(owned)?
            .filter(col(CID).is_not_null())?)
    }
}
