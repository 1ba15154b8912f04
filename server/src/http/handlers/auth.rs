//! Login, enrollment, logout, `me` and device registration.

use actix_web::{HttpRequest, HttpResponse, web};
use bangfu_shared::api::{
    DeviceDto, EnrollRequest, LoginRequest, LoginResponse, Me, RegisterDevice,
};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{Json, bearer, remote};
use crate::services::{Caller, auth, devices, throttle};

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
) -> ApiResult<web::Json<LoginResponse>> {
    auth::check_username_size(&body.username)?;
    auth::check_secret_size("password", &body.password)?;
    let key = throttle::key("login", &body.username, remote(&req).as_deref());
    let attempt = state.login_throttle.reserve(key)?;
    let resp = auth::login(
        &state.db,
        &state.settings,
        &body.username,
        &body.password,
        remote(&req),
    )
    .await;
    attempt.settle(&resp);
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
) -> ApiResult<web::Json<LoginResponse>> {
    auth::check_username_size(&body.username)?;
    auth::check_secret_size("code", &body.code)?;
    auth::check_secret_size("new_password", &body.new_password)?;
    let key = throttle::key("enroll", &body.username, remote(&req).as_deref());
    let attempt = state.login_throttle.reserve(key)?;
    let resp = auth::enroll(
        &state.db,
        &state.settings,
        &body.username,
        &body.code,
        &body.new_password,
        remote(&req),
    )
    .await;
    attempt.settle(&resp);
    Ok(web::Json(resp?))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", responses((status = 204), (status = 401, body = bangfu_shared::api::ErrorBody)))]
/// Revokes the token used for this request.
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
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
) -> ApiResult<HttpResponse> {
    let (device, created) = devices::register(&state.db, &caller, &body).await?;
    Ok(if created {
        HttpResponse::Created().json(device)
    } else {
        HttpResponse::Ok().json(device)
    })
}

#[utoipa::path(get, path = "/api/v1/devices", responses((status = 200, body = Vec<DeviceDto>)))]
/// The caller's registered devices.
pub async fn list_devices(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<web::Json<Vec<DeviceDto>>> {
    Ok(web::Json(devices::list(&state.db, &caller).await?))
}
