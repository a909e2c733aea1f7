//! What the outboxes share (App IO's messages, `appio.rs`; the webhooks' deliveries,
//! `webhooks.rs`): a due row is claimed for a lease by moving its next attempt to the lease's end,
//! so a pass on another node, or the next pass here, leaves it alone until then.

use crate::{Result, Store};

impl Store {
    /// Claims row `id` of the outbox `table` until `until`, if it is still `status` and still due
    /// at `was` (another pass that claimed it first moved that). `true` if this pass won it.
    pub(crate) async fn claim_outbox_row(
        &self,
        table: &'static str,
        status: &'static str,
        id: &str,
        was: Option<i64>,
        until: i64,
    ) -> Result<bool> {
        let sql = format!(
            "UPDATE {table} SET next_attempt_at = $1 WHERE id = $2 AND status = '{status}' AND next_attempt_at = $3"
        );
        let sql = &sql;
        let won = self
            .retrying("claim_outbox_row", || async move {
                Ok(sqlx::query(sql).bind(until).bind(id).bind(was).execute(&self.pool).await?.rows_affected())
            })
            .await?;
        Ok(won == 1)
    }
}
