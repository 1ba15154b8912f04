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

/// Refuses (400) a username too long to be real, or holding a control character
/// (PostgreSQL cannot even compare one with U+0000), before any work is spent on it.
pub fn check_username_size(username: &str) -> ApiResult<()> {
    if username.trim().chars().count() > MAX_USERNAME_CHARS {
        return Err(ApiError::BadRequest(format!(
            "username is too long (at most {MAX_USERNAME_CHARS} characters)"
        )));
    }
    if username.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "username holds a control character".into(),
        ));
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

/// Refuses passwords too short to be worth hashing. Spaces do not count towards the
/// length: eight spaces (a phone keyboard's easy slip) are no password.
pub fn check_password_strength(password: &str) -> ApiResult<()> {
    if password.chars().filter(|c| !c.is_whitespace()).count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::Invalid(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters other than spaces"
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
        spend_a_check(settings, password).await?;
        return Err(failed(db, "auth.login_failed", None, remote).await);
    };
    let Some(hash) = acct.password_hash.clone() else {
        // A helper who has not enrolled yet: answered as a wrong password, after a
        // check's worth of time, and counted by the throttle, so that no answer tells
        // which phone numbers belong to helpers. The message says a first login uses
        // the town office's code.
        spend_a_check(settings, password).await?;
        return Err(failed(db, "auth.login_failed", Some(acct.id), remote).await);
    };
    if !verify_password(&settings.argon2, hash, password.to_string()).await? {
        return Err(failed(db, "auth.login_failed", Some(acct.id), remote).await);
    }
    // The helper remembered their password: a reset code pending since is moot, and
    // left in force it would let whoever holds the slip take the account (QA s29c K3).
    if acct.enrollment_code_hash.is_some() {
        account::Entity::update_many()
            .col_expr(
                account::Column::EnrollmentCodeHash,
                sea_orm::sea_query::Expr::value(Option::<String>::None),
            )
            .col_expr(
                account::Column::EnrollmentExpiresAt,
                sea_orm::sea_query::Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(account::Column::Id.eq(acct.id))
            .exec(db)
            .await?;
    }
    issue_token(db, settings, acct, remote, "auth.login").await
}

/// Records a failed sign-in in the audit log (the account tried, when known, and the
/// address; never what was typed), and gives the answer the caller sends. Every failure
/// writes one row, an unknown username's too, so the write's time tells no one which
/// usernames exist. A failure to record is logged, not answered: the answer stays a
/// wrong password, as for any other failure.
async fn failed(
    db: &impl ConnectionTrait,
    action: &'static str,
    account: Option<i64>,
    remote: Option<String>,
) -> ApiError {
    let mut by = Caller::system();
    by.remote_addr = remote;
    let entry = audit::Entry::new(action, "account", account, serde_json::json!({}));
    if let Err(e) = audit::record(db, &by, entry).await {
        tracing::warn!("recording a failed sign-in: {e}");
    }
    if action == "auth.enroll_failed" {
        ApiError::InvalidEnrollmentCode
    } else {
        ApiError::InvalidCredentials
    }
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
    let found = account::Entity::find()
        .filter(account::Column::Username.eq(username.trim()))
        .one(db)
        .await?;
    let Some(acct) = found.filter(|a| !a.disabled) else {
        // As for login: an unknown phone costs the time a code check would.
        spend_a_check(settings, code).await?;
        return Err(failed(db, "auth.enroll_failed", None, remote).await);
    };
    let live = acct.enrollment_expires_at.is_some_and(|t| t > super::now());
    let code_ok = match acct.enrollment_code_hash.clone() {
        Some(hash) if live => code_matches(&settings.argon2, hash, code).await?,
        _ => {
            // No pending code (enrolled already, or it expired): the same time again, so
            // the answer's timing does not tell which phones await enrollment.
            spend_a_check(settings, code).await?;
            false
        }
    };
    if !code_ok {
        return Err(failed(db, "auth.enroll_failed", Some(acct.id), remote).await);
    }
    let hash = hash_password(&settings.argon2, new_password.to_string()).await?;
    // A code given to an account that had a password resets it (a forgotten password,
    // a lost phone): every session the account had ends, the lost phone's too.
    let action = if acct.password_hash.is_some() {
        "auth.password_reset"
    } else {
        "auth.enroll"
    };
    let mut active = acct.clone().into_active_model();
    active.password_hash = Set(Some(hash));
    active.enrollment_code_hash = Set(None);
    active.enrollment_expires_at = Set(None);
    let acct = active.update(db).await?;
    end_sessions(db, acct.id, None).await?;
    issue_token(db, settings, acct, remote, action).await
}

/// Ends every session of `account` but the one of `keep` (a token).
pub async fn end_sessions(
    db: &impl ConnectionTrait,
    account: i64,
    keep: Option<&str>,
) -> ApiResult<()> {
    auth_token::Entity::update_many()
        .col_expr(
            auth_token::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(super::now()),
        )
        .filter(auth_token::Column::AccountId.eq(account))
        .filter(auth_token::Column::RevokedAt.is_null())
        .filter(auth_token::Column::TokenHash.ne(keep.map(digest).unwrap_or_default()))
        .exec(db)
        .await?;
    Ok(())
}

/// The caller changes their own password, proving the current one; their other
/// sessions end. `token` is the session asking, which goes on.
pub async fn change_password(
    db: &impl ConnectionTrait,
    settings: &Settings,
    caller: &Caller,
    token: &str,
    current: &str,
    new_password: &str,
) -> ApiResult<()> {
    check_secret_size("current_password", current)?;
    check_secret_size("new_password", new_password)?;
    check_password_strength(new_password)?;
    // A change to the same password would only end the account's other sessions (QA
    // s30a L4).
    if new_password == current {
        return Err(ApiError::Invalid(
            "new_password is the same as current_password: nothing was changed".into(),
        ));
    }
    let account = caller.account_id.ok_or(ApiError::Unauthenticated)?;
    let acct = account::Entity::find_by_id(account)
        .one(db)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let stored = acct
        .password_hash
        .clone()
        .ok_or(ApiError::InvalidCredentials)?;
    if !verify_password(&settings.argon2, stored, current.to_string()).await? {
        let remote = caller.remote_addr.clone();
        failed(db, "auth.password_change_failed", Some(acct.id), remote).await;
        return Err(ApiError::WrongCurrentPassword);
    }
    let hash = hash_password(&settings.argon2, new_password.to_string()).await?;
    let mut active = acct.into_active_model();
    active.password_hash = Set(Some(hash));
    // A reset code still pending would let whoever holds the slip take the account
    // over after the helper chose a new password themselves (QA s29c K3).
    active.enrollment_code_hash = Set(None);
    active.enrollment_expires_at = Set(None);
    active.update(db).await?;
    end_sessions(db, account, Some(token)).await?;
    audit::record(
        db,
        caller,
        audit::Entry::new(
            "auth.password_change",
            "account",
            Some(account),
            serde_json::json!({}),
        ),
    )
    .await
}

/// Sets an account's password from the server's command line (an office that forgot
/// theirs): its sessions end.
pub async fn set_password(
    db: &impl ConnectionTrait,
    settings: &Settings,
    username: &str,
    new_password: &str,
) -> ApiResult<account::Model> {
    check_password_strength(new_password)?;
    let acct = account::Entity::find()
        .filter(account::Column::Username.eq(username.trim()))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::Invalid(format!("no account named {}", username.trim())))?;
    let hash = hash_password(&settings.argon2, new_password.to_string()).await?;
    let mut active = acct.into_active_model();
    active.password_hash = Set(Some(hash));
    active.enrollment_code_hash = Set(None);
    active.enrollment_expires_at = Set(None);
    let acct = active.update(db).await?;
    end_sessions(db, acct.id, None).await?;
    audit::record(
        db,
        &Caller::system(),
        audit::Entry::new(
            "auth.password_set",
            "account",
            Some(acct.id),
            serde_json::json!({}),
        ),
    )
    .await?;
    Ok(acct)
}

/// Whether `code` is the one stored as `hash`: argon2id (salted, slow: a copy of the
/// database does not yield the pending codes), or the plain SHA-256 of codes issued
/// before, still accepted until they expire. A legacy code is compared in constant
/// time, after a check's worth of time, so neither how much of the digest a guess
/// matched nor which accounts still hold a legacy code shows in the answer's timing.
async fn code_matches(settings: &Argon2Settings, hash: String, code: &str) -> ApiResult<bool> {
    let code = normalize_code(code);
    if hash.starts_with("$argon2") {
        verify_password(settings, hash, code).await
    } else {
        verify_password(settings, dummy_hash(settings)?, code.clone()).await?;
        Ok(constant_time_eq(hash.as_bytes(), digest(&code).as_bytes()))
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their length only, never on
/// where they first differ (`==` stops at the first differing byte, which tells a
/// patient attacker how much of a stored digest a guess matched). The server has no
/// constant-time crate of its own (`subtle` is only in the lock file, through argon2),
/// so this is the usual fold of XORs; `black_box` keeps the compiler from turning it
/// back into an early exit. Lengths are not secret here: digests are 64 hex digits.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
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
    let now = super::now_seconds();
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

/// Checks `secret` against [`dummy_hash`], which nothing matches: the time a real
/// password or code check takes, for answers that must not come sooner (an unknown
/// username, a helper not enrolled). A busy server answers 503 here as for a real check.
async fn spend_a_check(settings: &Settings, secret: &str) -> ApiResult<()> {
    let hash = dummy_hash(&settings.argon2)?;
    verify_password(&settings.argon2, hash, secret.to_string()).await?;
    Ok(())
}

/// An argon2id hash in PHC form with the configured parameters, random salt and random
/// output, so no secret matches it. Argon2 verifies with the parameters written in the
/// hash, so a fixed constant cost what its own parameters cost, not what the configured
/// ones do, and timing told unknown usernames from real ones whenever they differed.
/// Made on first use, once per parameter set (a server has one; the tests a few), and
/// without hashing anything: verifying it costs exactly one hash.
fn dummy_hash(settings: &Argon2Settings) -> ApiResult<String> {
    use std::sync::{Mutex, PoisonError};
    static MADE: Mutex<Vec<(Argon2Settings, String)>> = Mutex::new(Vec::new());
    let mut made = MADE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, hash)) = made.iter().find(|(s, _)| s == settings) {
        return Ok(hash.clone());
    }
    // The parameters are checked as a real hash would check them.
    argon2(settings)?;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let salt: [u8; 16] = rand::rng().random();
    let output: [u8; argon2::Params::DEFAULT_OUTPUT_LEN] = rand::rng().random();
    let hash = format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        settings.memory_kib,
        settings.iterations,
        settings.parallelism,
        b64.encode(salt),
        b64.encode(output)
    );
    made.push((settings.clone(), hash.clone()));
    Ok(hash)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]
    use super::*;
    use crate::testing::TestDb;
    use std::time::{Duration, Instant};

    fn cheap() -> Argon2Settings {
        Argon2Settings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    /// The stand-in hash costs what the configured parameters cost (argon2 verifies
    /// with the parameters in the hash), matches nothing, and is made once per set.
    #[tokio::test]
    async fn the_dummy_hash_follows_the_configured_parameters() {
        let s = cheap();
        let h = dummy_hash(&s).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{h}");
        assert_eq!(dummy_hash(&s).unwrap(), h, "made once");
        let other = Argon2Settings {
            memory_kib: 128,
            iterations: 3,
            parallelism: 2,
        };
        assert!(
            dummy_hash(&other)
                .unwrap()
                .starts_with("$argon2id$v=19$m=128,t=3,p=2$")
        );
        assert!(!verify_password(&s, h, String::new()).await.unwrap());
        let invalid = Argon2Settings {
            memory_kib: 1,
            ..cheap()
        };
        assert!(dummy_hash(&invalid).is_err(), "refused as a real hash is");
    }

    #[test]
    fn digests_compare_in_constant_time_and_correctly() {
        let d = digest("ABCDE23456");
        assert!(constant_time_eq(
            d.as_bytes(),
            digest("ABCDE23456").as_bytes()
        ));
        assert!(!constant_time_eq(
            d.as_bytes(),
            digest("ABCDE23457").as_bytes()
        ));
        assert!(!constant_time_eq(d.as_bytes(), &d.as_bytes()[..63]));
        assert!(constant_time_eq(b"", b""));
    }

    #[tokio::test]
    async fn legacy_codes_still_match_as_typed() {
        let s = cheap();
        let stored = digest("ABCDE23456");
        assert!(
            code_matches(&s, stored.clone(), "abcde-23456")
                .await
                .unwrap()
        );
        assert!(!code_matches(&s, stored, "ABCDE-23457").await.unwrap());
    }

    /// The shortest of a few runs of `f`, in which nothing else slows it.
    async fn fastest<F, Fut>(f: F) -> Duration
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut best = Duration::MAX;
        for _ in 0..7 {
            let start = Instant::now();
            f().await;
            best = best.min(start.elapsed());
        }
        best
    }

    /// A helper who has not enrolled is told so only after as long as an unknown
    /// username takes (a password check's worth): answered at once, the difference told
    /// anyone which phone numbers are helpers'.
    async fn unenrolled_login_costs_a_check(t: &TestDb) {
        let settings = Settings {
            // Costly enough that a check stands well above a database query.
            argon2: Argon2Settings {
                memory_kib: 8 * 1024,
                iterations: 3,
                parallelism: 1,
            },
            ..Settings::default()
        };
        account::ActiveModel {
            username: Set("13800000000".into()),
            password_hash: Set(None),
            role: Set(Role::FirstHelper.code().to_string()),
            scope_id: Set(None),
            helper_id: Set(None),
            enrollment_code_hash: Set(None),
            enrollment_expires_at: Set(None),
            disabled: Set(false),
            created_at: Set(super::super::now()),
            ..Default::default()
        }
        .insert(&t.db)
        .await
        .unwrap();
        let attempt = |username: &'static str| {
            let (db, settings) = (&t.db, &settings);
            move || async move {
                let _ = login(db, settings, username, "some password", None).await;
            }
        };
        assert!(matches!(
            login(&t.db, &settings, "13800000000", "x", None).await,
            Err(ApiError::InvalidCredentials)
        ));
        assert!(matches!(
            login(&t.db, &settings, "13900000000", "x", None).await,
            Err(ApiError::InvalidCredentials)
        ));
        // Fastest of a few runs each, and a loose margin: the property is a whole
        // password check (tens of ms here) against none (a query, well under 1 ms), so
        // a loaded machine that slows one run does not tip the comparison.
        let unknown = fastest(attempt("13900000000")).await;
        let unenrolled = fastest(attempt("13800000000")).await;
        assert!(
            unenrolled * 5 > unknown,
            "not enrolled: {unenrolled:?}, unknown: {unknown:?}"
        );
    }
    crate::db_test!(
        an_unenrolled_login_takes_as_long_as_an_unknown_one,
        unenrolled_login_costs_a_check
    );

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

    #[test]
    fn a_password_of_spaces_is_too_short() {
        assert!(check_password_strength("        ").is_err());
        assert!(check_password_strength(" a b c d e f g ").is_err());
        assert!(check_password_strength("bangfu-demo").is_ok());
        assert!(check_password_strength("ab cd ef gh").is_ok());
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
