//! Accounts, passwords and bearer tokens.
//!
//! Passwords and enrollment codes are argon2id hashes (a code is short enough to be
//! guessed from a fast digest); tokens are random 256-bit secrets stored only as SHA-256
//! digests, so a copy of the database gives no one a way in. Tokens expire and
//! can be revoked. Helpers log in by phone number; until they enroll with the one-time
//! code their town office handed out, they have no password.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use bangfu_shared::api::{HelperRef, LoginResponse, Me};
use bangfu_shared::{JurisdictionLevel, Role};
use base64::Engine;
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use sha2::{Digest, Sha256};

use super::cpu_slots::CpuSlots;
use super::{Caller, audit, jurisdictions};
use crate::config::{Argon2Settings, Settings};
use crate::entities::{account, auth_token, helper, jurisdiction};
use crate::error::{ApiError, ApiResult};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest username a login or enrollment may name (phone numbers and office names are
/// far shorter). Checked before anything else, so a megabyte "username" is refused
/// before it is hashed, looked up or remembered by the throttle.
pub const MAX_USERNAME_CHARS: usize = 64;
/// Longest password (or enrollment code) accepted, in bytes: argon2 hashes any length,
/// but no one types more, and a huge one would only cost the server time.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Refuses (400) a username too long to be real, before any work is spent on it.
pub fn check_username_size(username: &str) -> ApiResult<()> {
    if username.trim().chars().count() > MAX_USERNAME_CHARS {
        return Err(ApiError::BadRequest(format!(
            "username is too long (at most {MAX_USERNAME_CHARS} characters)"
        )));
    }
    Ok(())
}

/// Refuses (400, naming `field`) a password or code too long to be real.
pub fn check_secret_size(field: &str, secret: &str) -> ApiResult<()> {
    if secret.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::BadRequest(format!(
            "{field} is too long (at most {MAX_PASSWORD_BYTES} bytes)"
        )));
    }
    Ok(())
}

/// Hex SHA-256 of a secret (tokens, enrollment codes).
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn argon2(settings: &Argon2Settings) -> ApiResult<Argon2<'static>> {
    let params = argon2::Params::new(
        settings.memory_kib,
        settings.iterations,
        settings.parallelism,
        None,
    )
    .map_err(|e| ApiError::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

/// Hashes a password with argon2id (on a blocking thread: it is deliberately slow; at
/// most one per core at once, see [`CpuSlots`]).
pub async fn hash_password(settings: &Argon2Settings, password: String) -> ApiResult<String> {
    check_password_strength(&password)?;
    hash_secret(settings, password).await
}

/// Argon2id of a secret (a password, an enrollment code), with a fresh salt.
pub async fn hash_secret(settings: &Argon2Settings, secret: String) -> ApiResult<String> {
    let hasher = argon2(settings)?;
    CpuSlots::passwords()
        .run(move || {
            hasher
                .hash_password(secret.as_bytes())
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| ApiError::Internal(format!("hashing: {e}")))
}

/// Checks a password against a stored hash; an unparseable hash never matches. As
/// costly as hashing, so it takes a slot too.
pub async fn verify_password(
    settings: &Argon2Settings,
    hash: String,
    password: String,
) -> ApiResult<bool> {
    let verifier = argon2(settings)?;
    CpuSlots::passwords()
        .run(move || {
            verifier
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
}

/// Refuses passwords too short to be worth hashing.
pub fn check_password_strength(password: &str) -> ApiResult<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::Invalid(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// A fresh bearer token: 32 random bytes, URL-safe base64, prefixed so it is recognisable.
fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!(
        "bf_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Logs in with username (a helper's phone) and password; returns a new token.
pub async fn login(
    db: &impl ConnectionTrait,
    settings: &Settings,
    username: &str,
    password: &str,
    remote: Option<String>,
) -> ApiResult<LoginResponse> {
    check_username_size(username)?;
    check_secret_size("password", password)?;
    let found = account::Entity::find()
        .filter(account::Column::Username.eq(username.trim()))
        .one(db)
        .await?;
    let Some(acct) = found.filter(|a| !a.disabled) else {
        // Spend the same time as a real check, so timing does not reveal which usernames
        // exist. A busy server answers 503 here as it would for a real account (and the
        // throttle does not count an attempt that checked nothing).
        verify_password(
            &settings.argon2,
            DUMMY_HASH.to_string(),
            password.to_string(),
        )
        .await?;
        return Err(ApiError::InvalidCredentials);
    };
    let Some(hash) = acct.password_hash.clone() else {
        return Err(ApiError::EnrollmentRequired);
    };
    if !verify_password(&settings.argon2, hash, password.to_string()).await? {
        return Err(ApiError::InvalidCredentials);
    }
    issue_token(db, settings, acct, remote, "auth.login").await
}

/// A helper's first login: checks the one-time enrollment code, sets the password,
/// consumes the code and returns a token.
pub async fn enroll(
    db: &impl ConnectionTrait,
    settings: &Settings,
    username: &str,
    code: &str,
    new_password: &str,
    remote: Option<String>,
) -> ApiResult<LoginResponse> {
    check_username_size(username)?;
    check_secret_size("code", code)?;
    check_secret_size("new_password", new_password)?;
    check_password_strength(new_password)?;
    let acct = account::Entity::find()
        .filter(account::Column::Username.eq(username.trim()))
        .one(db)
        .await?
        .filter(|a| !a.disabled)
        .ok_or(ApiError::InvalidCredentials)?;
    let live = acct.enrollment_expires_at.is_some_and(|t| t > super::now());
    let code_ok = match acct.enrollment_code_hash.clone() {
        Some(hash) if live => code_matches(&settings.argon2, hash, code).await?,
        _ => false,
    };
    if !code_ok {
        return Err(ApiError::InvalidCredentials);
    }
    let hash = hash_password(&settings.argon2, new_password.to_string()).await?;
    let mut active = acct.clone().into_active_model();
    active.password_hash = Set(Some(hash));
    active.enrollment_code_hash = Set(None);
    active.enrollment_expires_at = Set(None);
    let acct = active.update(db).await?;
    issue_token(db, settings, acct, remote, "auth.enroll").await
}

/// Whether `code` is the one stored as `hash`: argon2id (salted, slow: a copy of the
/// database does not yield the pending codes), or the plain SHA-256 of codes issued
/// before, still accepted until they expire.
async fn code_matches(settings: &Argon2Settings, hash: String, code: &str) -> ApiResult<bool> {
    let code = normalize_code(code);
    if hash.starts_with("$argon2") {
        verify_password(settings, hash, code).await
    } else {
        Ok(hash == digest(&code))
    }
}

/// Enrollment codes are typed by hand: case and separators do not matter.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

async fn issue_token(
    db: &impl ConnectionTrait,
    settings: &Settings,
    acct: account::Model,
    remote: Option<String>,
    action: &'static str,
) -> ApiResult<LoginResponse> {
    let token = new_token();
    let now = super::now();
    let expires_at = now + chrono::Duration::hours(settings.token_ttl_hours);
    auth_token::ActiveModel {
        account_id: Set(acct.id),
        token_hash: Set(digest(&token)),
        created_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let caller = caller_for(db, &acct, remote).await?;
    audit::record(
        db,
        &caller,
        audit::Entry::new(action, "account", Some(acct.id), serde_json::json!({})),
    )
    .await?;
    Ok(LoginResponse {
        token,
        expires_at,
        me: me(db, &caller).await?,
    })
}

/// The caller a bearer token stands for; unknown, expired and revoked tokens are refused alike.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    token: &str,
    remote: Option<String>,
) -> ApiResult<Caller> {
    Ok(authenticate_with_expiry(db, token, remote).await?.0)
}

/// [`authenticate`], also returning when the token expires (for the session cache).
pub async fn authenticate_with_expiry(
    db: &impl ConnectionTrait,
    token: &str,
    remote: Option<String>,
) -> ApiResult<(Caller, chrono::DateTime<chrono::Utc>)> {
    let row = auth_token::Entity::find()
        .filter(auth_token::Column::TokenHash.eq(digest(token)))
        .one(db)
        .await?
        .filter(|t| t.revoked_at.is_none() && t.expires_at > super::now())
        .ok_or(ApiError::Unauthenticated)?;
    let acct = account::Entity::find_by_id(row.account_id)
        .one(db)
        .await?
        .filter(|a| !a.disabled)
        .ok_or(ApiError::Unauthenticated)?;
    Ok((caller_for(db, &acct, remote).await?, row.expires_at))
}

/// Revokes a token (logout).
pub async fn revoke(db: &impl ConnectionTrait, caller: &Caller, token: &str) -> ApiResult<()> {
    let row = auth_token::Entity::find()
        .filter(auth_token::Column::TokenHash.eq(digest(token)))
        .one(db)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let mut active = row.into_active_model();
    active.revoked_at = Set(Some(super::now()));
    active.update(db).await?;
    audit::record(
        db,
        caller,
        audit::Entry::new(
            "auth.logout",
            "account",
            caller.account_id,
            serde_json::json!({}),
        ),
    )
    .await
}

/// Builds the caller of an account: role, scope, county and helper.
pub async fn caller_for(
    db: &impl ConnectionTrait,
    acct: &account::Model,
    remote: Option<String>,
) -> ApiResult<Caller> {
    let role: Role = acct
        .role
        .parse()
        .map_err(|e| ApiError::Internal(format!("account {}: {e}", acct.id)))?;
    let county_id = match (role, acct.scope_id, acct.helper_id) {
        (_, Some(scope), _) => {
            let place = jurisdictions::get(db, scope).await?;
            if place.level == JurisdictionLevel::County.code() {
                Some(place.id)
            } else {
                place.parent_id
            }
        }
        (_, None, Some(helper_id)) => helper::Entity::find_by_id(helper_id)
            .one(db)
            .await?
            .map(|h| h.county_id),
        _ => None,
    };
    Ok(Caller {
        account_id: Some(acct.id),
        role,
        scope_id: acct.scope_id,
        county_id,
        helper_id: acct.helper_id,
        remote_addr: remote,
    })
}

/// `GET /me`.
pub async fn me(db: &impl ConnectionTrait, caller: &Caller) -> ApiResult<Me> {
    let id = caller.account_id.ok_or(ApiError::Unauthenticated)?;
    let acct = account::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let scope = match acct.scope_id {
        Some(s) => jurisdiction::Entity::find_by_id(s)
            .one(db)
            .await?
            .map(|p| jurisdictions::to_place(&p)),
        None => None,
    };
    let helper = match acct.helper_id {
        Some(h) => helper::Entity::find_by_id(h)
            .one(db)
            .await?
            .map(|h| helper_ref(&h)),
        None => None,
    };
    Ok(Me {
        account_id: acct.id,
        username: acct.username,
        role: caller.role,
        scope,
        helper,
    })
}

/// The DTO of a helper.
pub fn helper_ref(h: &helper::Model) -> HelperRef {
    HelperRef {
        id: h.id,
        name: h.name.clone(),
        unit_position: h.unit_position.clone(),
        phone: h.phone.clone(),
    }
}

/// Creates an office or admin account with a password (`bangfu-server user add`).
pub async fn add_user(
    db: &impl ConnectionTrait,
    settings: &Settings,
    caller: &Caller,
    username: &str,
    role: Role,
    scope_id: Option<i64>,
    password: &str,
) -> ApiResult<account::Model> {
    let username = username.trim();
    if username.is_empty() {
        return Err(ApiError::Invalid("a username is required".into()));
    }
    match (role, scope_id) {
        (Role::TownOffice | Role::CountyOffice, None) => {
            return Err(ApiError::Invalid(format!(
                "a {} account needs a scope (--town or --county)",
                role.code()
            )));
        }
        (Role::FirstHelper | Role::SecondHelper, _) => {
            return Err(ApiError::Invalid(
                "helper accounts come from the imported ledger (login by phone number)".into(),
            ));
        }
        _ => {}
    }
    if account::Entity::find()
        .filter(account::Column::Username.eq(username))
        .one(db)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!("username {username} is taken")));
    }
    let hash = hash_password(&settings.argon2, password.to_string()).await?;
    let acct = account::ActiveModel {
        username: Set(username.to_string()),
        password_hash: Set(Some(hash)),
        role: Set(role.code().to_string()),
        scope_id: Set(if role == Role::Admin { None } else { scope_id }),
        helper_id: Set(None),
        enrollment_code_hash: Set(None),
        enrollment_expires_at: Set(None),
        disabled: Set(false),
        created_at: Set(super::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    audit::record(
        db,
        caller,
        audit::Entry::new(
            "account.create",
            "account",
            Some(acct.id),
            serde_json::json!({ "role": role }),
        ),
    )
    .await?;
    Ok(acct)
}

/// An argon2id hash of a random string, checked against when the username is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0cWFHNyvMNLlE3F3Ks8rZyJ5t0XKkG2qk8QZb1Pq3pA";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_normalize_for_hand_typing() {
        assert_eq!(normalize_code(" abcde-fgh2k "), "ABCDEFGH2K");
    }

    #[test]
    fn tokens_are_random_and_prefixed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("bf_") && a.len() > 40);
        assert_ne!(digest(&a), a);
    }

    #[tokio::test]
    async fn password_hash_verifies_and_rejects() {
        let s = Argon2Settings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let h = hash_password(&s, "correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(
            verify_password(&s, h.clone(), "correct horse".into())
                .await
                .unwrap()
        );
        assert!(!verify_password(&s, h, "wrong horse!".into()).await.unwrap());
        assert!(hash_password(&s, "short".into()).await.is_err());
        assert!(
            !verify_password(&s, "not a hash".into(), "x".into())
                .await
                .unwrap()
        );
    }
}
