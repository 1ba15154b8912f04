//! Route table and handlers, grouped by resource.

pub mod audit;
pub mod auth;
pub mod households;
pub mod ledger;
pub mod policy;
pub mod reports;
pub mod sync;
pub mod tus;

use actix_web::web;

/// The routes [`resource!`] builds on: actix-web's, GET with HEAD, and OPTIONS, which
/// it has no shorthand for.
mod method {
    use actix_web::guard;
    pub use actix_web::web::{delete, head, patch, post};

    /// GET, and HEAD with it (HTTP asks that a resource with GET answer HEAD; actix
    /// sends a HEAD answer's headers without its body).
    pub fn get() -> actix_web::Route {
        actix_web::web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
    }

    pub fn options() -> actix_web::Route {
        actix_web::web::method(actix_web::http::Method::OPTIONS)
    }
}

/// A resource at `$path` answering each `$method => $handler`, and any other method
/// with a JSON 405 naming the ones it has (`Allow`), as HTTP asks.
macro_rules! resource {
    ($path:expr, $($method:ident => $handler:expr),+ $(,)?) => {
        web::resource($path)
            $(.route(method::$method().to($handler)))+
            .default_service(web::to(|| {
                crate::http::method_not_allowed(concat!($(resource!(@name $method), ", "),+))
            }))
    };
    (@name get) => { "GET, HEAD" };
    (@name post) => { "POST" };
    (@name head) => { "HEAD" };
    (@name patch) => { "PATCH" };
    (@name delete) => { "DELETE" };
    (@name options) => { "OPTIONS" };
}

/// Every `/api/v1` route, in one place.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource!("/openapi.json", get => super::openapi::document))
        .service(resource!("/auth/login", post => auth::login))
        .service(resource!("/auth/enroll", post => auth::enroll))
        .service(resource!("/auth/logout", post => auth::logout))
        .service(resource!("/auth/password", post => auth::change_password))
        .service(resource!("/me", get => auth::me))
        .service(resource!("/me/snapshot", get => households::snapshot))
        .service(resource!("/devices", post => auth::register_device, get => auth::list_devices))
        .service(resource!("/devices/{id}/revoke", post => auth::revoke_device))
        .service(resource!("/households", get => households::list))
        .service(resource!("/households/{id}", get => households::detail, patch => households::correct))
        .service(resource!("/households/{id}/exit", post => households::exit))
        .service(resource!("/households/{id}/exit/cancel", post => households::cancel_exit))
        .service(resource!("/households/{id}/pairing-change/cancel", post => households::cancel_pairing_change))
        .service(resource!("/households/{id}/exits", get => households::exits))
        .service(resource!("/households/{id}/rejoin", post => households::rejoin))
        .service(resource!("/exits", get => households::all_exits))
        .service(resource!("/places", get => households::places))
        .service(resource!("/audit", get => audit::list))
        .service(resource!("/ledger/import", post => ledger::import))
        .service(resource!("/ledger/export", get => ledger::export))
        .service(resource!("/enrollment/codes", post => ledger::enrollment_codes))
        .service(resource!("/policies", get => policy::list, post => policy::create))
        .service(resource!("/policies/effective", get => policy::effective))
        .service(
            resource!("/sync/push", post => sync::push)
                .app_data(crate::http::extract::BodyLimit(MAX_PUSH_BYTES)),
        )
        .service(resource!("/sync/pull", get => sync::pull))
        .service(resource!("/sync/anomalies", get => sync::anomalies))
        .service(resource!("/review/family-changes", get => sync::field_changes))
        .service(resource!("/review/family-changes/{id}", post => sync::decide))
        .service(resource!("/blobs/{sha256}", get => sync::blob))
        .service(resource!("/reports/attendance", get => reports::attendance))
        .service(resource!("/reports/attendance/versions", get => reports::versions))
        .service(resource!("/reports/attendance/submit", post => reports::submit))
        .service(resource!("/reports/town", get => reports::town))
        .service(resource!("/reports/county", get => reports::county))
        .service(resource!("/reports/records", get => reports::records))
        .service(resource!("/records/{id}/review", post => reports::review))
        .service(resource!("/records/{id}/review/cancel", post => reports::cancel_review))
        .service(
            web::scope("/files")
                .wrap(actix_web::middleware::DefaultHeaders::new().add(("Tus-Resumable", "1.0.0")))
                .service(resource!("", options => tus::options, post => tus::create))
                .service(resource!("/{id}", head => tus::head, patch => tus::patch, delete => tus::terminate)),
        );
}

/// A push carries up to 500 signed records, notes and family changes included: a larger
/// body limit than other endpoints (`docs/sync-protocol.md`).
pub const MAX_PUSH_BYTES: usize = 32 * 1024 * 1024;
