//! Scoped household reads, exits and returns, and the offline snapshot.

use actix_web::web;
use bangfu_shared::api::{
    ExitCancel, ExitDto, HouseholdCorrection, HouseholdDetail, HouseholdExit, HouseholdRejoin,
    HouseholdSummary, Page, PairingChangeCancel, Snapshot,
};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiResult;
use crate::http::extract::NoQuery;
use crate::http::extract::{Json, Query};
use crate::services::Caller;
use crate::services::households::{self, HouseholdFilter};
use crate::services::{corrections, exits, pairing_changes};

/// Filters and paging of `GET /households`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this town.
    pub town: Option<i64>,
    /// Only this village.
    pub village: Option<i64>,
    /// Part of the head of household's name, as literal text (`%` and `_` are not
    /// wildcards), ASCII case ignored.
    pub q: Option<String>,
    /// Only households of this status today (`identified`, `returned`,
    /// `exited_with_policy`, `exited`). One whose exit is filed for a day still to come
    /// keeps its status until that day.
    pub status: Option<bangfu_shared::HouseholdStatus>,
    /// 1-based page (default 1).
    pub page: Option<u64>,
    /// Items per page, 1 to 500 (default 50; 0 or more than 500 is refused with 400).
    pub per_page: Option<u64>,
    /// A pass by cursor: `0` for the first page, then the page before's `next`. Such a
    /// pass goes in id order, so it neither repeats nor skips households while others
    /// are added or renumbered (`page` is ignored); pages by number go in 序号 order.
    pub after: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/households", params(ListQuery),
    responses((status = 200, body = Page<HouseholdSummary>), (status = 400, description = "bad_request: a parameter is not a number, page is 0, per_page is not 1 to 500, an unknown status, or the page lies beyond a 64-bit offset"), (status = 401, body = bangfu_shared::api::ErrorBody)))]
/// A page of the households the caller may see.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<ListQuery>,
) -> ApiResult<web::Json<Page<HouseholdSummary>>> {
    let q = q.into_inner();
    let filter = HouseholdFilter {
        town: q.town,
        village: q.village,
        q: q.q,
        status: q.status,
        after: q.after,
    };
    let page = households::list(
        &state.db,
        &caller,
        &filter,
        q.page.unwrap_or(1),
        q.per_page.unwrap_or(50),
    )
    .await?;
    Ok(web::Json(page))
}

#[utoipa::path(get, path = "/api/v1/households/{id}", params(("id" = i64, Path, description = "household id")),
    responses((status = 200, body = HouseholdDetail), (status = 404, body = bangfu_shared::api::ErrorBody)))]
/// One household with members and pairing history; outside the caller's scope it is 404.
pub async fn detail(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> ApiResult<web::Json<HouseholdDetail>> {
    Ok(web::Json(
        households::detail(&state.db, &caller, id.into_inner()).await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/households/{id}", params(("id" = i64, Path, description = "household id")), request_body = HouseholdCorrection,
    responses((status = 200, body = HouseholdDetail), (status = 403, description = "forbidden: a helper"), (status = 404, body = bangfu_shared::api::ErrorBody), (status = 409, description = "conflict: nothing would change, or another household of the village has the same head and phone"), (status = 422, description = "invalid: no reason, an empty name, a phone that is not one, a village not of the household's town, or nothing to correct")))]
/// Corrects a household's head of household, phone or village (of its town): what a
/// ledger import cannot, since it would read the corrected row as a new household.
pub async fn correct(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Json<HouseholdCorrection>,
    _query: NoQuery,
) -> ApiResult<web::Json<HouseholdDetail>> {
    let body = body.into_inner();
    Ok(web::Json(
        corrections::correct(&state.db, &caller, id.into_inner(), &body).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/households/{id}/exit", params(("id" = i64, Path, description = "household id")), request_body = HouseholdExit,
    responses((status = 200, body = HouseholdDetail), (status = 400, description = "bad_request: effective_from before today or over a year ahead"), (status = 403, description = "forbidden: a helper"), (status = 404, body = bangfu_shared::api::ErrorBody), (status = 409, description = "conflict: already left pairing, no pairing to end, or an exit from an earlier day already filed"), (status = 422, description = "invalid: no reason, or a reason with control characters")))]
/// Takes a household out of pairing from a date (已脱贫 / removed from the ledger).
pub async fn exit(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Json<HouseholdExit>,
    _query: NoQuery,
) -> ApiResult<web::Json<HouseholdDetail>> {
    let body = body.into_inner();
    Ok(web::Json(
        exits::exit(&state.db, &caller, id.into_inner(), &body).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/households/{id}/rejoin", params(("id" = i64, Path, description = "household id")), request_body = HouseholdRejoin,
    responses((status = 200, body = HouseholdDetail), (status = 422, description = "invalid: no reason, or a reason with control characters"), (status = 403, description = "forbidden: a helper"), (status = 404, body = bangfu_shared::api::ErrorBody), (status = 409, description = "conflict: the household has not left pairing, its exit is still to come, or its exit took effect today (cancel it instead)")))]
/// Brings a household that left pairing back (返贫); the next ledger import pairs it.
pub async fn rejoin(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Json<HouseholdRejoin>,
    _query: NoQuery,
) -> ApiResult<web::Json<HouseholdDetail>> {
    let body = body.into_inner();
    Ok(web::Json(
        exits::rejoin(&state.db, &caller, id.into_inner(), &body).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/households/{id}/pairing-change/cancel", params(("id" = i64, Path, description = "household id")), request_body = PairingChangeCancel,
    responses((status = 200, body = HouseholdDetail), (status = 403, description = "forbidden: a helper"), (status = 404, body = bangfu_shared::api::ErrorBody), (status = 409, description = "conflict: no change filed for today or later, the change's helper has recorded visits since, an exit ends it, or the old helper would be over the policy's limit"), (status = 422, description = "invalid: no reason, or a reason with control characters")))]
/// Withdraws a change of helper filed for a day still to come: the pairing it ended
/// holds on as before.
pub async fn cancel_pairing_change(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Json<PairingChangeCancel>,
    _query: NoQuery,
) -> ApiResult<web::Json<HouseholdDetail>> {
    let body = body.into_inner();
    Ok(web::Json(
        pairing_changes::cancel(&state.db, &caller, id.into_inner(), &body).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/households/{id}/exit/cancel", params(("id" = i64, Path, description = "household id")), request_body = ExitCancel,
    responses((status = 200, body = HouseholdDetail), (status = 422, description = "invalid: no reason, or a reason with control characters"), (status = 403, description = "forbidden: a helper"), (status = 404, body = bangfu_shared::api::ErrorBody), (status = 409, description = "conflict: no exit to cancel, the exit has taken effect, or a pairing changed since")))]
/// Withdraws an exit filed for a day still to come; the pairings get back what they said.
pub async fn cancel_exit(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Json<ExitCancel>,
    _query: NoQuery,
) -> ApiResult<web::Json<HouseholdDetail>> {
    let body = body.into_inner();
    Ok(web::Json(
        exits::cancel(&state.db, &caller, id.into_inner(), &body).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/households/{id}/exits", params(("id" = i64, Path, description = "household id")),
    responses((status = 200, body = Vec<ExitDto>), (status = 404, body = bangfu_shared::api::ErrorBody)))]
/// Every exit filed for the household, newest first, cancelled ones included.
pub async fn exits(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> ApiResult<web::Json<Vec<ExitDto>>> {
    Ok(web::Json(
        exits::list(&state.db, &caller, id.into_inner()).await?,
    ))
}

/// Filters of `GET /exits`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExitsQuery {
    /// Only this town (404 outside the caller's scope).
    pub town: Option<i64>,
    /// Only exits filed on or after this day.
    pub since: Option<chrono::NaiveDate>,
}

#[utoipa::path(get, path = "/api/v1/exits", params(ExitsQuery),
    responses((status = 200, body = Vec<ExitDto>), (status = 403, description = "forbidden: a helper"), (status = 404, body = bangfu_shared::api::ErrorBody)))]
/// The exits filed in the office's town or county, newest first (at most 1000).
pub async fn all_exits(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<ExitsQuery>,
) -> ApiResult<web::Json<Vec<ExitDto>>> {
    let filter = exits::ExitFilter {
        town: q.town,
        since: q
            .since
            .map(|d| crate::http::extract::date_in_range(d, "since"))
            .transpose()?,
    };
    Ok(web::Json(
        exits::list_scope(&state.db, &caller, &filter).await?,
    ))
}

/// The town filter of the place list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PlacesQuery {
    /// Only this town and its villages (404 outside the caller's scope).
    pub town: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/places", params(PlacesQuery),
    responses((status = 200, body = Vec<bangfu_shared::api::PlaceInScope>), (status = 403, description = "forbidden: a helper"), (status = 404, body = bangfu_shared::api::ErrorBody)))]
/// The towns and villages of the office's scope that hold households, each town followed
/// by its villages, with their ids and household counts.
pub async fn places(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<PlacesQuery>,
) -> ApiResult<web::Json<Vec<bangfu_shared::api::PlaceInScope>>> {
    Ok(web::Json(
        crate::services::jurisdictions::in_scope(&state.db, &caller, q.town).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/me/snapshot", responses((status = 200, body = Snapshot)))]
/// Everything a device needs to work offline.
pub async fn snapshot(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<web::Json<Snapshot>> {
    Ok(web::Json(households::snapshot(&state.db, &caller).await?))
}
