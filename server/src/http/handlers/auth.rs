//! Login, enrollment, logout, `me` and device registration.

use actix_web::{HttpRequest, HttpResponse, web};
use bangfu_shared::api::{
    ChangePassword, DeviceDto, EnrollRequest, LoginRequest, LoginResponse, Me, RegisterDevice,
};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::NoQuery;
use crate::http::extract::{Json, bearer, remote};
use crate::services::{Caller, auth, devices, throttle};

/// The address's attempt beside the username's (see [`throttle::ADDRESS_FAILURES_ALLOWED`]):
/// both, or the username's given back uncounted when the address is refused.
fn reserve_address<'a>(
    state: &'a AppState,
    req: &HttpRequest,
    attempt: throttle::Attempt<'a>,
) -> ApiResult<(throttle::Attempt<'a>, throttle::Attempt<'a>)> {
    match state.login_throttle.reserve_address(remote(req).as_deref()) {
        Ok(from) => Ok((attempt, from)),
        Err(e) => {
            attempt.give_back();
            Err(e)
        }
    }
}

#[utoipa::path(post, path = "/api/v1/auth/login", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 400, description = "bad_request: username over 64 characters or password over 1024 bytes"), (status = 401, body = bangfu_shared::api::ErrorBody), (status = 429, description = "too_many_attempts: five failures for this username from this address in 15 minutes; see Retry-After")))]
/// Logs in with username (a helper's phone) and password.
///
/// Oversized credentials are refused before the throttle sees them; the attempt is
/// counted before the slow password check (see [`throttle`]).
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<LoginRequest>,
    _query: NoQuery,
) -> ApiResult<web::Json<LoginResponse>> {
    auth::check_username_size(&body.username)?;
    auth::check_secret_size("password", &body.password)?;
    let key = throttle::key("login", &body.username, remote(&req).as_deref());
    let attempt = state.login_throttle.reserve(key)?;
    let from = reserve_address(&state, &req, attempt)?;
    let resp = auth::login(
        &state.db,
        &state.settings,
        &body.username,
        &body.password,
        remote(&req),
    )
    .await;
    let (attempt, from) = from;
    attempt.settle(&resp);
    from.settle(&resp);
    Ok(web::Json(resp?))
}

#[utoipa::path(post, path = "/api/v1/auth/enroll", request_body = EnrollRequest,
    responses((status = 200, body = LoginResponse), (status = 400, description = "bad_request: username over 64 characters, code or new_password over 1024 bytes"), (status = 401, body = bangfu_shared::api::ErrorBody), (status = 422, body = bangfu_shared::api::ErrorBody), (status = 429, description = "too_many_attempts, as for login")))]
/// A helper's first login with the town office's one-time code; sets the password.
/// Throttled like [`login`].
pub async fn enroll(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<EnrollRequest>,
    _query: NoQuery,
) -> ApiResult<web::Json<LoginResponse>> {
    auth::check_username_size(&body.username)?;
    auth::check_secret_size("code", &body.code)?;
    auth::check_secret_size("new_password", &body.new_password)?;
    let key = throttle::key("enroll", &body.username, remote(&req).as_deref());
    let attempt = state.login_throttle.reserve(key)?;
    let from = reserve_address(&state, &req, attempt)?;
    let resp = auth::enroll(
        &state.db,
        &state.settings,
        &body.username,
        &body.code,
        &body.new_password,
        remote(&req),
    )
    .await;
    let (attempt, from) = from;
    attempt.settle(&resp);
    from.settle(&resp);
    let resp = resp?;
    // A code that reset a password ended the account's sessions: none is served from
    // memory either.
    state.sessions.forget_account(resp.me.account_id);
    Ok(web::Json(resp))
}

#[utoipa::path(post, path = "/api/v1/auth/password", request_body = ChangePassword,
    responses((status = 204, description = "changed; the caller's other sessions ended"), (status = 401, body = bangfu_shared::api::ErrorBody, description = "invalid_credentials: the current password is wrong"), (status = 422, body = bangfu_shared::api::ErrorBody, description = "the new password is too weak"), (status = 429, description = "too_many_attempts, as for login")))]
/// Changes the caller's own password. Throttled like [`login`]: a session left open
/// must not be a way to try passwords.
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<ChangePassword>,
    _query: NoQuery,
) -> ApiResult<HttpResponse> {
    let token = bearer(&req).ok_or(ApiError::Unauthenticated)?;
    let account = caller.account_id.ok_or(ApiError::Unauthenticated)?;
    let key = throttle::key("password", &account.to_string(), remote(&req).as_deref());
    let attempt = state.login_throttle.reserve(key)?;
    let resp = auth::change_password(
        &state.db,
        &state.settings,
        &caller,
        &token,
        &body.current_password,
        &body.new_password,
    )
    .await;
    attempt.settle(&resp);
    resp?;
    state.sessions.forget_account(account);
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/devices/{id}/revoke", params(("id" = i64, Path, description = "device id")),
    responses((status = 204, description = "revoked: records it signs are refused from now on, and the account's sessions end"), (status = 404, body = bangfu_shared::api::ErrorBody, description = "no such device of the caller, or of a helper in the office's scope")))]
/// Revokes a device (a lost or stolen phone): by its own account, or by the office of
/// its helper.
pub async fn revoke_device(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    _query: NoQuery,
) -> ApiResult<HttpResponse> {
    let account = devices::revoke(&state.db, &caller, id.into_inner()).await?;
    state.signers.forget_keys(account);
    state.sessions.forget_account(account);
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/logout", responses((status = 204), (status = 401, body = bangfu_shared::api::ErrorBody)))]
/// Revokes the token used for this request.
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    _query: NoQuery,
) -> ApiResult<HttpResponse> {
    let token = bearer(&req).ok_or(ApiError::Unauthenticated)?;
    auth::revoke(&state.db, &caller, &token).await?;
    state.sessions.forget(&token);
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = Me), (status = 401, body = bangfu_shared::api::ErrorBody)))]
/// Who the token belongs to and what it may see.
pub async fn me(state: web::Data<AppState>, caller: Caller) -> ApiResult<web::Json<Me>> {
    Ok(web::Json(auth::me(&state.db, &caller).await?))
}

#[utoipa::path(post, path = "/api/v1/devices", request_body = RegisterDevice,
    responses((status = 201, body = DeviceDto), (status = 200, body = DeviceDto, description = "already registered"), (status = 409, body = bangfu_shared::api::ErrorBody)))]
/// Binds a device's Ed25519 public key to the caller's account.
pub async fn register_device(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<RegisterDevice>,
    _query: NoQuery,
) -> ApiResult<HttpResponse> {
    let (device, created) = devices::register(&state.db, &caller, &body).await?;
    Ok(if created {
        HttpResponse::Created().json(device)
    } else {
        HttpResponse::Ok().json(device)
    })
}

/// Whose devices `GET /devices` lists.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DevicesQuery {
    /// For an office: the devices of this helper (their id, as `/households` shows it),
    /// to find a lost phone's device to revoke.
    pub helper: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/devices", params(DevicesQuery), responses((status = 200, body = Vec<DeviceDto>), (status = 404, body = bangfu_shared::api::ErrorBody, description = "helper: no such helper paired in the office's scope")))]
/// The caller's registered devices, or for an office a helper's.
pub async fn list_devices(
    state: web::Data<AppState>,
    caller: Caller,
    q: crate::http::extract::Query<DevicesQuery>,
) -> ApiResult<web::Json<Vec<DeviceDto>>> {
    Ok(web::Json(match q.helper {
        Some(helper) => devices::of_helper(&state.db, &caller, helper).await?,
        None => devices::list(&state.db, &caller).await?,
    }))
}
