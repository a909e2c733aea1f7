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
        admin::get_settings, admin::put_settings, admin::put_crest, admin::delete_crest,
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
    doc.merge(super::desk::openapi());
    doc.merge(super::appio::openapi());
    doc.merge(super::identity::openapi());
    doc.merge(super::citizen::openapi());
    contract(&mut doc);
    doc
}

/// Paths whose handlers take the staff session ([`super::auth::Staff`]) and those that take a
/// room's join token: the security schemes are assigned here, once, by these prefixes (the contract
/// test's `ignored_auth` check fails if one enforces nothing, its status checks if one enforces
/// more than it says).
const SESSION_PREFIXES: [&str; 5] =
    ["/api/admin/", "/api/staff/", "/api/council/", "/api/auth/me", "/api/auth/password"];
const ROOM_TOKEN_PREFIX: &str = "/api/rooms/";
/// A citizen's SPID/CIE login (`api::citizen`); its logout needs none (204 regardless).
const CITIZEN_PATHS: [&str; 2] = ["/api/citizen/me", "/api/citizen/appointments"];

/// What every operation shares and so is written once: the security schemes, and the errors that
/// come from the shared extractors and middleware rather than from a handler — 401 without a valid
/// credential, 403 for a role that may not or a browser request from another site (`crate::origin`,
/// every state-changing request), 400 for a query string or JSON body that does not parse.
fn contract(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{
        ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };

    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            super::auth::SESSION_COOKIE,
            "The staff session, set by `POST /api/auth/login` (HttpOnly, SameSite=Strict).",
        ))),
    );
    let bearer = |what: &str| {
        SecurityScheme::Http(
            HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").description(Some(what)).build(),
        )
    };
    components.add_security_scheme("room_token", bearer("The room's join token (the `t` of a join link)."));
    components.add_security_scheme(
        "citizen",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            super::citizen::CITIZEN_COOKIE,
            "A citizen's SPID/CIE login, set by `/auth/oidc/callback` (HttpOnly, SameSite=Lax, 2 hours).",
        ))),
    );
    components.add_security_scheme(
        "encoder_token",
        bearer("The chamber encoder's token from `POST /api/council/sessions/{id}/encoder-token`."),
    );

    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let changes_state = method != "get";
            let session = SESSION_PREFIXES.iter().any(|p| path.starts_with(p));
            let room = path.starts_with(ROOM_TOKEN_PREFIX);
            if session {
                operation.security = Some(vec![SecurityRequirement::new("session", Vec::<String>::new())]);
            } else if room {
                operation.security = Some(vec![SecurityRequirement::new("room_token", Vec::<String>::new())]);
            } else if CITIZEN_PATHS.contains(&path.as_str()) {
                operation.security = Some(vec![SecurityRequirement::new("citizen", Vec::<String>::new())]);
            }
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            if secured {
                add_error(operation, "401", "No valid credential (`unauthenticated`)");
            }
            // Council sessions one may not see are 404, never 403; `me` and a citizen have no role
            // to check.
            let role_checked = secured
                && !(method == "get"
                    && (path.starts_with("/api/council/")
                        || path == "/api/auth/me"
                        || CITIZEN_PATHS.contains(&path.as_str())));
            if role_checked || changes_state {
                add_error(
                    operation,
                    "403",
                    "Not allowed for this role or credential (`forbidden`), or a browser request from another \
                     site (`cross_origin`)",
                );
            }
            use utoipa::openapi::path::ParameterIn;
            let params = || operation.parameters.iter().flatten();
            let query = params().any(|p| matches!(p.parameter_in, ParameterIn::Query));
            // A path names something (an office, a room, a session…) or the calendar's `?user=`
            // someone: unknown, or not this credential's to see, it is 404 (no probing).
            let names_something = path.contains('{') || params().any(|p| p.name == "user");
            if names_something {
                add_error(operation, "404", "Not found, or not this credential's to see (`not_found`)");
            }
            let json_body = operation.request_body.as_ref().is_some_and(|b| b.content.contains_key("application/json"));
            if query || json_body {
                add_error(
                    operation,
                    "400",
                    "A malformed query string or body (`invalid_query`, `invalid_body`) or an invalid field",
                );
            }
        }
    }
}

/// Adds the error response `status` (body `ErrorBody`) unless the operation documents it already.
fn add_error(operation: &mut utoipa::openapi::path::Operation, status: &str, description: &str) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    operation.responses.responses.entry(status.to_owned()).or_insert_with(|| {
        ResponseBuilder::new()
            .description(description)
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
            .build()
            .into()
    });
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
            "/api/admin/identity",
            "/api/public/login-options",
            "/api/citizen/me",
            "/api/citizen/appointments",
        ] {
            assert!(paths.contains_key(path), "{path} missing from {:?}", paths.keys().collect::<Vec<_>>());
        }
        assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    }

    #[test]
    fn credentials_and_shared_errors_are_declared() {
        let doc = serde_json::to_value(document()).unwrap();
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["session"]["in"], "cookie");
        assert_eq!(schemes["session"]["name"], super::super::auth::SESSION_COOKIE);
        assert_eq!(schemes["room_token"]["scheme"], "bearer");
        let op = |path: &str, method: &str| doc["paths"][path][method].clone();
        let statuses = |path: &str, method: &str| {
            op(path, method)["responses"].as_object().unwrap().keys().cloned().collect::<Vec<_>>()
        };
        let create_office = op("/api/admin/offices", "post");
        assert_eq!(create_office["security"][0]["session"], serde_json::json!([]));
        for status in ["400", "401", "403"] {
            assert!(statuses("/api/admin/offices", "post").contains(&status.to_owned()), "{status}");
        }
        assert_eq!(op("/api/rooms/{room}/documents", "get")["security"][0]["room_token"], serde_json::json!([]));
        assert!(statuses("/api/staff/calendar/month", "get").contains(&"404".to_owned()), "?user= names someone");
        // The secret may come in the header alone: the cancel's body is optional.
        let cancel = op("/api/public/appointments/{code}/cancel", "post");
        assert_ne!(cancel["requestBody"]["required"], true, "{cancel}");
        // Public operations take no credential and so answer no 401.
        assert!(op("/api/public/services", "get")["security"].is_null());
        assert!(!statuses("/api/public/services", "get").contains(&"401".to_owned()));
        // A citizen's SPID/CIE login is a cookie of its own; its logout needs none.
        assert_eq!(schemes["citizen"]["name"], super::super::citizen::CITIZEN_COOKIE);
        assert_eq!(op("/api/citizen/me", "get")["security"][0]["citizen"], serde_json::json!([]));
        assert!(!statuses("/api/citizen/me", "get").contains(&"403".to_owned()), "no role to check");
        assert!(op("/api/citizen/logout", "post")["security"].is_null());
    }
}
