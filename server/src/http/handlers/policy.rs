//! Viewing and versioning county policies.

use actix_web::{HttpResponse, web};
use bangfu_shared::{Policy, PolicyPreset, Role};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::NoQuery;
use crate::http::extract::{Json, Query, date_in_range};
use crate::services::policy::{self, PolicySet, PolicyVersion};
use crate::services::{Caller, Scope, jurisdictions, today};

/// Which county's policies.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PolicyQuery {
    /// The county (defaults to the caller's).
    pub county: Option<i64>,
    /// A town, for its override.
    pub town: Option<i64>,
    /// The day (default today), for `effective`.
    pub date: Option<NaiveDate>,
}

async fn county_of(state: &AppState, caller: &Caller, asked: Option<i64>) -> ApiResult<i64> {
    match (caller.role, caller.county_id, asked) {
        (Role::Admin, _, Some(c)) => Ok(jurisdictions::county(&state.db, c).await?.id),
        (_, Some(own), None) => Ok(own),
        (_, Some(own), Some(c)) if c == own => Ok(c),
        (Role::Admin, _, None) => Err(ApiError::BadRequest("name the county (county=ID)".into())),
        _ => Err(ApiError::NotFound("county")),
    }
}

/// The towns whose policy overrides the caller may read: `None` for all of its county
/// (a county office, an admin); a town office's own; a helper's, the towns of the
/// households they are paired with.
async fn visible_towns(
    state: &AppState,
    caller: &Caller,
) -> ApiResult<Option<std::collections::HashSet<i64>>> {
    use sea_orm::{EntityTrait, QueryFilter, QuerySelect};
    let scope = caller.scope();
    Ok(match scope {
        Scope::All | Scope::County(_) => None,
        Scope::Town(own) => Some([own].into()),
        Scope::Helper(_) | Scope::Nothing => Some(
            crate::entities::household::Entity::find()
                .select_only()
                .column(crate::entities::household::Column::TownId)
                .filter(scope.households())
                .distinct()
                .into_tuple::<i64>()
                .all(&state.db)
                .await?
                .into_iter()
                .collect(),
        ),
    })
}

/// Refuses (404 `town`) a town that is not one of `county`'s (the county's policy is no
/// answer for another county's town, nor for a town that does not exist), or that the
/// caller may not read; answers the towns the caller may read ([`visible_towns`]).
async fn check_town(
    state: &AppState,
    caller: &Caller,
    county: i64,
    town: Option<i64>,
) -> ApiResult<Option<std::collections::HashSet<i64>>> {
    let visible = visible_towns(state, caller).await?;
    if let Some(t) = town {
        // A town office's scope is its town, a helper's the towns of their households:
        // another's is not found, as its reports are (QA s23b F15, s23d F10).
        if visible.as_ref().is_some_and(|towns| !towns.contains(&t)) {
            return Err(ApiError::NotFound("town"));
        }
        let place = jurisdictions::get(&state.db, t)
            .await
            .map_err(|_| ApiError::NotFound("town"))?;
        if place.parent_id != Some(county) {
            return Err(ApiError::NotFound("town"));
        }
    }
    Ok(visible)
}

#[utoipa::path(get, path = "/api/v1/policies", params(PolicyQuery), responses((status = 200, body = Vec<PolicyVersion>)))]
/// Every stored version of the county's policy (and its towns' overrides; a town
/// office sees its own town's only, a helper those of their households' towns).
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<PolicyQuery>,
) -> ApiResult<web::Json<Vec<PolicyVersion>>> {
    let county = county_of(&state, &caller, q.county).await?;
    let visible = check_town(&state, &caller, county, q.town).await?;
    let mut versions = policy::versions(&state.db, county).await?;
    if let Some(towns) = visible {
        versions.retain(|v| v.town_id.is_none_or(|t| towns.contains(&t)));
    }
    Ok(web::Json(versions))
}

#[utoipa::path(get, path = "/api/v1/policies/effective", params(PolicyQuery), responses((status = 200, body = Policy)))]
/// The policy in force for a town (or the county) on a day.
pub async fn effective(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<PolicyQuery>,
) -> ApiResult<web::Json<Policy>> {
    let county = county_of(&state, &caller, q.county).await?;
    check_town(&state, &caller, county, q.town).await?;
    Ok(web::Json(
        policy::effective(
            &state.db,
            county,
            q.town,
            date_in_range(q.date.unwrap_or_else(today), "date")?,
        )
        .await?,
    ))
}

/// A new policy version: a shipped preset or a full policy.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    pub county: Option<i64>,
    /// A town's override; none for the county-wide policy.
    pub town: Option<i64>,
    pub valid_from: NaiveDate,
    pub preset: Option<PolicyPreset>,
    /// A full policy; a key the policy does not have (a misspelt field) is refused,
    /// naming it.
    #[schema(value_type = Option<Policy>)]
    pub policy: Option<serde_json::Value>,
}

#[utoipa::path(post, path = "/api/v1/policies", request_body = NewPolicy,
    responses((status = 201, body = PolicySet), (status = 403, body = bangfu_shared::api::ErrorBody), (status = 422, body = bangfu_shared::api::ErrorBody)))]
/// Stores a new version of a county's (or a town's) policy. County offices and admins only.
/// The answer's `notices` say what else it does: rejudges what is past (dated back), replaces
/// a version of its day, or leaves towns with their own policy alone.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NewPolicy>,
    _query: NoQuery,
) -> ApiResult<HttpResponse> {
    caller.require(&[Role::CountyOffice], "change the policy")?;
    let body = body.into_inner();
    let county = county_of(&state, &caller, body.county).await?;
    check_town(&state, &caller, county, body.town).await?;
    let chosen = match (body.preset, body.policy) {
        (Some(p), None) => p.policy(),
        (None, Some(p)) => policy::parse(p, "policy.")?,
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of preset or policy".into(),
            ));
        }
    };
    let version = policy::set(
        &state.db,
        &caller,
        county,
        body.town,
        date_in_range(body.valid_from, "valid_from")?,
        &chosen,
    )
    .await?;
    Ok(HttpResponse::Created().json(version))
}
