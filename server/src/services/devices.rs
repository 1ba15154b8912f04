//! Client devices: an Ed25519 public key bound to one account, so the server can later
//! check that a record was signed by a device of its author.

use bangfu_shared::api::{DeviceDto, RegisterDevice};
use base64::Engine;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QueryTrait, Set,
};

use super::{Caller, audit};
use crate::entities::device;
use crate::error::{ApiError, ApiResult};

/// Checks a base64 Ed25519 public key and returns its canonical base64. Keys that are
/// not a curve point, or are of small order (a "weak" key, for which signatures prove
/// nothing), are refused here once, so verifying a pushed record needs no strict mode.
pub fn parse_key(b64: &str) -> ApiResult<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| ApiError::Invalid("public_key is not base64".into()))?;
    let bytes: [u8; 32] = key.as_slice().try_into().map_err(|_| {
        ApiError::Invalid(format!(
            "public_key must be 32 bytes (Ed25519), got {}",
            key.len()
        ))
    })?;
    match ed25519_dalek::VerifyingKey::from_bytes(&bytes) {
        Ok(k) if !k.is_weak() => Ok(base64::engine::general_purpose::STANDARD.encode(bytes)),
        _ => Err(ApiError::Invalid(
            "public_key is not a usable Ed25519 key (not a curve point, or of small order)".into(),
        )),
    }
}

/// Registers a device key for the caller. The same key again returns the existing device
/// (`false`: not new); a key bound to another account is a conflict.
pub async fn register(
    db: &impl ConnectionTrait,
    caller: &Caller,
    req: &RegisterDevice,
) -> ApiResult<(DeviceDto, bool)> {
    let account_id = caller.account_id.ok_or(ApiError::Unauthenticated)?;
    // Only a helper's device signs records; an office's key would never be used, and
    // would only crowd the lists of devices and anomalies (QA s25b F6).
    if !caller.role.is_helper() {
        return Err(ApiError::Forbidden(
            "only a helper's device registers a key: office accounts sign no records".into(),
        ));
    }
    let canonical = parse_key(&req.public_key)?;
    let label = req.label.trim();
    if label.is_empty() || label.chars().count() > 100 {
        return Err(ApiError::Invalid("label must be 1–100 characters".into()));
    }
    super::check_free_text(label, "label", 100)?;
    if let Some(existing) = device::Entity::find()
        .filter(device::Column::PublicKey.eq(&canonical))
        .one(db)
        .await?
    {
        if existing.account_id != account_id {
            return Err(ApiError::Conflict(
                "this device key is registered to another account".into(),
            ));
        }
        // A phone found again after its device was revoked: what it signs would all be
        // refused, so it is told now, and the client makes a new key (QA s29c K2).
        if existing.revoked_at.is_some() {
            return Err(ApiError::DeviceRevoked);
        }
        return Ok((to_dto(existing), false));
    }
    let created = device::ActiveModel {
        account_id: Set(account_id),
        public_key: Set(canonical),
        label: Set(label.to_string()),
        created_at: Set(super::now_seconds()),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    audit::record(
        db,
        caller,
        audit::Entry::new(
            "device.register",
            "device",
            Some(created.id),
            serde_json::json!({ "label": label }),
        ),
    )
    .await?;
    Ok((to_dto(created), true))
}

/// The caller's devices.
pub async fn list(db: &impl ConnectionTrait, caller: &Caller) -> ApiResult<Vec<DeviceDto>> {
    let account_id = caller.account_id.ok_or(ApiError::Unauthenticated)?;
    if !caller.role.is_helper() {
        // An office has no devices: an empty list read as "this helper has none" (QA
        // s29c K12).
        return Err(ApiError::BadRequest(
            "an office account has no devices: name a helper (?helper=ID)".into(),
        ));
    }
    devices_of(db, account_id, false).await
}

/// The devices of an account, oldest first: those in use, or (`revoked`) all of them,
/// the revoked ones saying when.
async fn devices_of(
    db: &impl ConnectionTrait,
    account: i64,
    revoked: bool,
) -> ApiResult<Vec<DeviceDto>> {
    let list = device::Entity::find()
        .filter(device::Column::AccountId.eq(account))
        .apply_if((!revoked).then_some(()), |q, ()| {
            q.filter(device::Column::RevokedAt.is_null())
        })
        .order_by_asc(device::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_dto)
        .collect();
    with_activity(db, list).await
}

/// Revokes device `id` (a lost or stolen phone): records it signs are refused from now
/// on ([`super::signers`]), whatever they claim, and the account's sessions end. The
/// caller's own device, or, for an office, a device of a helper paired with a household
/// in its scope; any other is not
/// found, so the answer tells nothing of another office's devices. The device's
/// account, whose cached keys the caller forgets.
pub async fn revoke(db: &impl ConnectionTrait, caller: &Caller, id: i64) -> ApiResult<i64> {
    let found = device::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("device"))?;
    let own = Some(found.account_id) == caller.account_id;
    if !own && !office_reaches(db, caller, found.account_id).await? {
        return Err(ApiError::NotFound("device"));
    }
    if let Some(at) = found.revoked_at {
        return Err(ApiError::Conflict(format!(
            "device {id} was revoked already, at {}",
            super::china_time(at)
        )));
    }
    let (label, account) = (found.label.clone(), found.account_id);
    let mut active: device::ActiveModel = found.into();
    active.revoked_at = Set(Some(super::now_seconds()));
    active.update(db).await?;
    // The lost phone's session ends with its key, and so does every other session of
    // the account: a session is not tied to a device, and one left open let the phone
    // go on downloading the households and register a new key whose visits counted
    // (QA s29c K1). The helper logs in again on their new phone.
    super::auth::end_sessions(db, account, None).await?;
    audit::record(
        db,
        caller,
        audit::Entry::new(
            "device.revoke",
            "device",
            Some(id),
            serde_json::json!({ "label": label }),
        ),
    )
    .await?;
    Ok(account)
}

/// Whether `caller` is an office whose scope holds a household the helper of `account`
/// is paired with.
async fn office_reaches(
    db: &impl ConnectionTrait,
    caller: &Caller,
    account: i64,
) -> ApiResult<bool> {
    use crate::entities::{account, household, pairing};
    use sea_orm::sea_query::Query;
    if caller.require_office("revoke a helper's device").is_err() {
        return Ok(false);
    }
    let Some(helper) = account::Entity::find_by_id(account)
        .one(db)
        .await?
        .and_then(|a| a.helper_id)
    else {
        return Ok(false);
    };
    let in_scope = Query::select()
        .column(household::Column::Id)
        .from(household::Entity)
        .cond_where(caller.scope().households())
        .to_owned();
    Ok(pairing::Entity::find()
        .filter(pairing::Column::HelperId.eq(helper))
        .filter(pairing::Column::HouseholdId.in_subquery(in_scope))
        .one(db)
        .await?
        .is_some())
}

/// The unrevoked devices of `helper`, for an office whose scope holds a household the
/// helper is paired with; otherwise not found.
pub async fn of_helper(
    db: &impl ConnectionTrait,
    caller: &Caller,
    helper: i64,
) -> ApiResult<Vec<DeviceDto>> {
    use crate::entities::account;
    let Some(acct) = account::Entity::find()
        .filter(account::Column::HelperId.eq(helper))
        .one(db)
        .await?
    else {
        return Err(ApiError::NotFound("helper"));
    };
    if caller.helper_id == Some(helper) && Some(acct.id) == caller.account_id {
        return devices_of(db, acct.id, false).await;
    }
    if !office_reaches(db, caller, acct.id).await? {
        return Err(ApiError::NotFound("helper"));
    }
    // Revoked ones too, with when: the office sees what it revoked (QA s29c K12).
    devices_of(db, acct.id, true).await
}

fn to_dto(m: device::Model) -> DeviceDto {
    DeviceDto {
        id: m.id,
        public_key: m.public_key,
        label: m.label,
        registered_at: m.created_at,
        revoked_at: m.revoked_at,
        records: 0,
        last_record_at: None,
        last_seq: None,
    }
}

/// Fills in what each device sent (records, the latest received), in one query: the
/// office revoking a lost phone tells it from the one in the helper's hand by it.
async fn with_activity(
    db: &impl ConnectionTrait,
    mut list: Vec<DeviceDto>,
) -> ApiResult<Vec<DeviceDto>> {
    use crate::entities::record;
    use sea_orm::QuerySelect;
    if list.is_empty() {
        return Ok(list);
    }
    let ids: Vec<i64> = list.iter().map(|d| d.id).collect();
    let rows: Vec<(i64, i64, i64, chrono::DateTime<chrono::Utc>)> = record::Entity::find()
        .select_only()
        .column(record::Column::DeviceId)
        .column_as(record::Column::SeqId.count(), "records")
        .column_as(record::Column::DeviceSeq.max(), "last_seq")
        .column_as(record::Column::ReceivedAt.max(), "last_at")
        .filter(record::Column::DeviceId.is_in(ids))
        .group_by(record::Column::DeviceId)
        .into_tuple()
        .all(db)
        .await?;
    for (device, records, last_seq, last_at) in rows {
        if let Some(d) = list.iter_mut().find(|d| d.id == device) {
            d.records = u64::try_from(records).unwrap_or(0);
            d.last_seq = Some(last_seq);
            d.last_record_at = Some(last_at);
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn only_usable_ed25519_keys_register() {
        let real = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]).verifying_key();
        assert_eq!(
            parse_key(&format!(" {} ", b64(real.as_bytes()))).unwrap(),
            b64(real.as_bytes())
        );
        let err = |k: &str| match parse_key(k) {
            Err(ApiError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(err("not base64!").contains("base64"));
        assert!(err(&b64(&[1u8; 31])).contains("32 bytes"));
        // The identity point (y = 1): a small-order key any signature would satisfy.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(err(&b64(&identity)).contains("small order"));
    }
}
