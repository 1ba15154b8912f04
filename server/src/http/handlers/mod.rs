//! Route table and handlers, grouped by resource.

pub mod auth;
pub mod households;
pub mod ledger;
pub mod policy;
pub mod reports;
pub mod sync;
pub mod tus;

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
        .route("/households/{id}/exit", web::post().to(households::exit))
        .route(
            "/households/{id}/exit/cancel",
            web::post().to(households::cancel_exit),
        )
        .route("/households/{id}/exits", web::get().to(households::exits))
        .route(
            "/households/{id}/rejoin",
            web::post().to(households::rejoin),
        )
        .route("/ledger/import", web::post().to(ledger::import))
        .route("/ledger/export", web::get().to(ledger::export))
        .route(
            "/enrollment/codes",
            web::post().to(ledger::enrollment_codes),
        )
        .route("/policies", web::get().to(policy::list))
        .route("/policies", web::post().to(policy::create))
        .route("/policies/effective", web::get().to(policy::effective))
        .service(
            web::resource("/sync/push")
                .app_data(crate::http::extract::BodyLimit(MAX_PUSH_BYTES))
                .route(web::post().to(sync::push))
                // Another method: the JSON 404 every other route answers with, not
                // actix's bare 405.
                .default_service(web::to(crate::http::not_found)),
        )
        .route("/sync/pull", web::get().to(sync::pull))
        .route("/sync/anomalies", web::get().to(sync::anomalies))
        .route("/review/family-changes", web::get().to(sync::field_changes))
        .route("/review/family-changes/{id}", web::post().to(sync::decide))
        .route("/blobs/{sha256}", web::get().to(sync::blob))
        .route("/reports/attendance", web::get().to(reports::attendance))
        .route(
            "/reports/attendance/versions",
            web::get().to(reports::versions),
        )
        .route(
            "/reports/attendance/submit",
            web::post().to(reports::submit),
        )
        .route("/reports/town", web::get().to(reports::town))
        .route("/reports/county", web::get().to(reports::county))
        .route("/reports/records", web::get().to(reports::records))
        .route("/records/{id}/review", web::post().to(reports::review))
        .service(
            web::scope("/files")
                .wrap(actix_web::middleware::DefaultHeaders::new().add(("Tus-Resumable", "1.0.0")))
                .route(
                    "",
                    web::method(actix_web::http::Method::OPTIONS).to(tus::options),
                )
                .route("", web::post().to(tus::create))
                .route("/{id}", web::head().to(tus::head))
                .route("/{id}", web::patch().to(tus::patch)),
        );
}

/// A push carries up to 500 signed records, notes and family changes included: a larger
/// body limit than other endpoints (`docs/sync-protocol.md`).
pub const MAX_PUSH_BYTES: usize = 32 * 1024 * 1024;
