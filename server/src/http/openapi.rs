//! The OpenAPI document, served at `/api/v1/openapi.json`, generated from the handlers'
//! annotations and the shared DTOs so it cannot drift from the code.

use actix_web::HttpResponse;
use utoipa::OpenApi;

use super::handlers::{audit, auth, households, ledger, policy, reports, sync, tus};

#[derive(OpenApi)]
#[openapi(
    info(title = "Bangfu API", description = "帮扶 paired-assistance ledger, accounts and visits"),
    paths(
        auth::login, auth::enroll, auth::logout, auth::change_password, auth::revoke_device, auth::me, auth::register_device, auth::list_devices,
        households::list, households::detail, households::correct, households::exit, households::cancel_exit, households::cancel_pairing_change, households::exits, households::all_exits, households::places, households::rejoin, households::snapshot,
        ledger::import, ledger::export, ledger::enrollment_codes,
        policy::list, policy::effective, policy::create,
        reports::attendance, reports::versions, reports::submit, reports::town, reports::county, reports::records, reports::review, reports::cancel_review,
        sync::push, sync::pull, sync::anomalies, sync::field_changes, sync::decide, sync::blob,
        tus::options, tus::create, tus::head, tus::patch, tus::terminate,
        audit::list,
    ),
    // Schemas only a query parameter names (`format`) are not collected from the paths:
    // listed here so their `$ref`s resolve.
    components(schemas(
        bangfu_shared::api::ErrorBody,
        bangfu_shared::ledger::RowError,
        crate::ledger::ExportFormat,
        reports::ReportFormat,
    )),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `{name}` in a documented path is declared as a path parameter of each of its
    /// operations: client generators refuse a document where one is not.
    #[test]
    fn every_path_parameter_is_declared() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        assert!(!paths.is_empty());
        for (path, ops) in paths {
            let names: Vec<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|p| p.split('}').next())
                .collect();
            for (method, op) in ops.as_object().cloned().unwrap_or_default() {
                let declared: Vec<String> = op["parameters"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str().map(str::to_string))
                    .collect();
                for n in &names {
                    assert!(
                        declared.iter().any(|d| d == n),
                        "{method} {path}: `{n}` is not declared"
                    );
                }
            }
        }
    }
}
