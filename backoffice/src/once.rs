//! Work that one node does at a time when several share the database (issue 16): a reminder or a
//! late confirmation is sent by one node, a calendar source fetched by one, the retention pass
//! run by one per interval. Each is a lease in the store (`leases`), named for the work and held
//! by this node's id; a node that dies holding one only delays that work until the lease ends.
//! A single node takes every lease at once (and pays one row write per item for it).

use std::time::Duration;

use sportello_store::StoreError;

use crate::context::BackOffice;

/// How long one item (an email, a calendar fetch) stays another node's: longer than its work can
/// take (an SMTP exchange, a bounded fetch), so a live holder is never overtaken.
pub const ITEM: Duration = Duration::from_secs(300);

/// Takes lease `name` for this node for `hold`, from the back office's clock. False when another
/// node holds it.
pub async fn take(back: &BackOffice, name: &str, hold: Duration) -> Result<bool, StoreError> {
    let now_ms = back.clock.now().saturating_mul(1000);
    let until = now_ms.saturating_add(i64::try_from(hold.as_millis()).unwrap_or(i64::MAX));
    back.store.take_lease(name, &back.node, now_ms, until).await
}

/// Gives lease `name` back once its work is done (or failed and should be retried by anyone).
pub async fn release(back: &BackOffice, name: &str) -> Result<(), StoreError> {
    back.store.release_lease(name, &back.node).await
}
