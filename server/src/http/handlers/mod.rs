//! Route table and handlers, grouped by resource.

pub mod auth;
pub mod households;
pub mod ledger;
pub mod policy;

use actix_web::web;

/// Every `/api/v1` route, in one place.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(super::openapi::document))
        .route("/auth/login", web::post().to(auth::login))
        .route("/auth/enroll", web::post().to(auth::enroll))
        .route("/auth/logout", web::post().to(auth::logout))
        .route("/me", web::get().to(auth::me))
        .route("/me/snapshot", web::get().to(households::snapshot))
        .route("/devices", web::post().to(auth::register_device))
        .route("/devices", web::get().to(auth::list_devices))
        .route("/households", web::get().to(households::list))
        .route("/households/{id}", web::get().to(households::detail))
        .route("/ledger/import", web::post().to(ledger::import))
        .route("/ledger/export", web::get().to(ledger::export))
        .route(
            "/enrollment/codes",
            web::post().to(ledger::enrollment_codes),
        )
        .route("/policies", web::get().to(policy::list))
        .route("/policies", web::post().to(policy::create))
        .route("/policies/effective", web::get().to(policy::effective));
}
