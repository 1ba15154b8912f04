//! The audit log, read by the county (`GET /audit`).

use actix_web::web;
use bangfu_shared::api::AuditEntry;
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiResult;
use crate::http::extract::Query;
use crate::services::Caller;
use crate::services::audit::{self, AuditFilter};

/// Filters and paging of `GET /audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only changes on or after this day (China time).
    pub since: Option<chrono::NaiveDate>,
    /// Only this action (`household.exit`), or every action of a family (`household.`).
    pub action: Option<String>,
    /// Only the changes of this account (its username).
    pub account: Option<String>,
    /// Only entries older than this id: pass the last id of a page for the next page.
    pub before: Option<i64>,
    /// Entries per page (default 100, 1 to 500).
    pub limit: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 400, description = "bad_request: a parameter is malformed or limit is out of range"), (status = 403, description = "forbidden: not a county office or admin"), (status = 404, description = "not_found: no such account")))]
/// Changes newest first: an admin's whole log, a county office's the changes of its own
/// county's accounts.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<AuditQuery>,
) -> ApiResult<web::Json<Vec<AuditEntry>>> {
    let q = q.into_inner();
    let filter = AuditFilter {
        since: q
            .since
            .map(|d| crate::http::extract::date_in_range(d, "since"))
            .transpose()?,
        action: q.action,
        account: q.account,
        before: q.before,
        limit: q.limit.unwrap_or(100),
    };
    Ok(web::Json(audit::list(&state.db, &caller, &filter).await?))
}
