//! Whether a room token still stands for what it was issued for. A signed token proves who issued
//! it and for which room; what it names can change afterwards — an official is deactivated, an
//! appointment is moved, cancelled or over, a council's chair changes or a member is removed. Every
//! use of a room token, the websocket join and the room's REST calls (documents, chat history),
//! asks [`check`] first.

use sportello_store::{Status, Store, StoreError};

use crate::protocol::council::{IDENTITY_PREFIX, ROOM_PREFIX};
use sportello_backoffice::desk::{WALKIN_ROOM_PREFIX, citizen_identity};
use sportello_backoffice::links::citizen_claims;
use sportello_backoffice::token::{Claims, Role};

/// Why a token no longer grants what it says.
#[derive(Debug, thiserror::Error)]
pub enum Revoked {
    #[error("the staff account is deactivated or gone")]
    Account,
    #[error("the appointment no longer exists")]
    AppointmentNotFound,
    #[error("the appointment was cancelled")]
    Cancelled,
    #[error("the appointment is over")]
    Closed,
    #[error("the appointment was moved: the link is from before")]
    Moved,
    #[error("no longer the chair or a member of the council session")]
    Membership,
    #[error("the walk-in is over, or this official no longer serves it")]
    Walkin,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the account, the appointment and the council membership the token names, as they are now.
pub async fn check(store: &Store, claims: &Claims) -> Result<(), Revoked> {
    let user_id = claims.sub.strip_prefix(IDENTITY_PREFIX).filter(|id| !id.is_empty());
    if let Some(user_id) = user_id {
        match store.user(user_id).await? {
            Some(user) if user.active => {}
            _ => return Err(Revoked::Account),
        }
    }
    if let Some(id) = &claims.appt {
        let appt = store.appointment(id).await?.ok_or(Revoked::AppointmentNotFound)?;
        match appt.status {
            Status::Confirmed => {}
            Status::Cancelled => return Err(Revoked::Cancelled),
            Status::Completed | Status::NoShow => return Err(Revoked::Closed),
        }
        // The citizen's link carries the appointment's window: after a move it is a new link.
        let current = citizen_claims(&appt, 0);
        if claims.sub == current.sub && (claims.nbf, claims.exp) != (current.nbf, current.exp) {
            return Err(Revoked::Moved);
        }
    }
    // A viewer (a public display in the chamber) has no say in a council room, whoever it is.
    if let Some(session_id) = claims.room.strip_prefix(ROOM_PREFIX)
        && claims.role != Role::Viewer
    {
        let Some(user_id) = user_id else { return Err(Revoked::Membership) };
        let session = store.council_session(session_id).await?.ok_or(Revoked::Membership)?;
        let allowed = match claims.role {
            // The chair's link chairs only while its holder chairs.
            Role::Host => session.chair_id == user_id,
            Role::Participant | Role::Viewer => {
                session.chair_id == user_id || store.council_members(session_id).await?.iter().any(|m| m == user_id)
            }
        };
        if !allowed {
            return Err(Revoked::Membership);
        }
    }
    if let Some(id) = claims.room.strip_prefix(WALKIN_ROOM_PREFIX) {
        walkin(store, id, claims, user_id).await?;
    }
    Ok(())
}

/// A walk-in's room (`walkin-<id>`, docs/walkin.md): open while the walk-in is not over; the
/// citizen enters with their own identity, an official while they serve it, are handed it, or
/// were called into the room by a colleague.
async fn walkin(store: &Store, id: &str, claims: &Claims, user_id: Option<&str>) -> Result<(), Revoked> {
    let walkin = store.walkin(id).await?.ok_or(Revoked::Walkin)?;
    if walkin.state.is_over() {
        return Err(Revoked::Walkin);
    }
    if claims.sub == citizen_identity(id) {
        return Ok(());
    }
    let Some(user_id) = user_id else { return Err(Revoked::Walkin) };
    let serves = walkin.official_id.as_deref() == Some(user_id) || walkin.transfer_to.as_deref() == Some(user_id);
    if serves || store.called_into(&claims.room, user_id, walkin.queued_at).await? {
        Ok(())
    } else {
        Err(Revoked::Walkin)
    }
}
