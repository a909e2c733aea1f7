//! `/api/openapi.json`: the OpenAPI 3.1 document of the whole REST API, assembled from each module's
//! `#[utoipa::path]` annotations.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use super::{admin, auth, staff};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sportello API",
        description = "Virtual offices of a municipality: booking, staff, rooms. Errors are \
                       `{\"error\": {\"code\", \"message\"}}`; staff endpoints need the session cookie \
                       set by `/api/auth/login`; room endpoints take the room's join token as a Bearer token."
    ),
    paths(
        auth::login, auth::logout, auth::me, auth::change_password, auth::setup,
        admin::list_offices, admin::create_office, admin::update_office, admin::delete_office,
        admin::list_services, admin::create_service, admin::update_service, admin::delete_service,
        admin::list_users, admin::create_user, admin::update_user, admin::reset_link,
        admin::get_settings, admin::put_settings,
        staff::list_appointments, staff::appointment_detail, staff::set_status, staff::join_appointment,
        staff::waiting, staff::admit, staff::decline, staff::virtual_office, staff::office_virtual_office,
        staff::invite,
    ),
    tags(
        (name = "public", description = "Citizens, no account: offices, services, free slots, booking"),
        (name = "auth", description = "Staff login, logout, password, setup links"),
        (name = "admin", description = "Offices, services, staff and settings (administrators)"),
        (name = "staff", description = "Officials' dashboard: appointments, waiting room, links"),
        (name = "rooms", description = "Documents and chat inside a room (join token as Bearer)"),
    )
)]
struct StaffApi;

/// The complete document: the staff side above plus each module's own part.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = StaffApi::openapi();
    doc.merge(super::public::openapi());
    doc.merge(super::council::openapi());
    doc.merge(super::archive::openapi());
    doc.merge(super::calendar::openapi());
    doc.merge(super::rooms::openapi());
    doc.merge(super::live::openapi());
    doc.merge(super::network_check::openapi());
    doc.merge(super::webhooks::openapi());
    doc
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_audience() {
        let doc = serde_json::to_value(document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/api/auth/login",
            "/api/admin/offices",
            "/api/staff/waiting",
            "/api/staff/invitations",
            "/api/public/appointments",
            "/api/council/sessions/{id}/minutes",
            "/api/archive/{session_id}",
            "/api/rooms/{room}/documents",
            "/api/live/{session}/whep",
            "/api/council/sessions/{id}/encoder-token",
            "/api/network-check",
            "/api/network-check/{probe}",
            "/api/admin/webhooks/{id}/deliveries",
        ] {
            assert!(paths.contains_key(path), "{path} missing from {:?}", paths.keys().collect::<Vec<_>>());
        }
        assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    }
}
