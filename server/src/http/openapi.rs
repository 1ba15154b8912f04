//! The OpenAPI document, served at `/api/v1/openapi.json`, generated from the handlers'
//! annotations and the shared DTOs so it cannot drift from the code.

use actix_web::HttpResponse;
use utoipa::OpenApi;

use super::handlers::{auth, households, ledger, policy, reports, sync, tus};

#[derive(OpenApi)]
#[openapi(
    info(title = "Bangfu API", description = "帮扶 paired-assistance ledger, accounts and visits"),
    paths(
        auth::login, auth::enroll, auth::logout, auth::me, auth::register_device, auth::list_devices,
        households::list, households::detail, households::exit, households::cancel_exit, households::exits, households::rejoin, households::snapshot,
        ledger::import, ledger::export, ledger::enrollment_codes,
        policy::list, policy::effective, policy::create,
        reports::attendance, reports::versions, reports::submit, reports::town, reports::county, reports::records, reports::review,
        sync::push, sync::pull, sync::anomalies, sync::field_changes, sync::decide, sync::blob,
        tus::options, tus::create, tus::head, tus::patch,
    ),
    components(schemas(bangfu_shared::api::ErrorBody, bangfu_shared::ledger::RowError)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
