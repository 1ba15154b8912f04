//! Client devices: an Ed25519 public key bound to one account, so the server can later
//! check that a record was signed by a device of its author.

use bangfu_shared::api::{DeviceDto, RegisterDevice};
use base64::Engine;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};

use super::{Caller, audit};
use crate::entities::device;
use crate::error::{ApiError, ApiResult};

/// Registers a device key for the caller. The same key again returns the existing device
/// (`false`: not new); a key bound to another account is a conflict.
pub async fn register(
    db: &impl ConnectionTrait,
    caller: &Caller,
    req: &RegisterDevice,
) -> ApiResult<(DeviceDto, bool)> {
    let account_id = caller.account_id.ok_or(ApiError::Unauthenticated)?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(req.public_key.trim())
        .map_err(|_| ApiError::Invalid("public_key is not base64".into()))?;
    if key.len() != 32 {
        return Err(ApiError::Invalid(format!(
            "public_key must be 32 bytes (Ed25519), got {}",
            key.len()
        )));
    }
    let label = req.label.trim();
    if label.is_empty() || label.chars().count() > 100 {
        return Err(ApiError::Invalid("label must be 1–100 characters".into()));
    }
    let canonical = base64::engine::general_purpose::STANDARD.encode(&key);
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
        return Ok((to_dto(existing), false));
    }
    let created = device::ActiveModel {
        account_id: Set(account_id),
        public_key: Set(canonical),
        label: Set(label.to_string()),
        created_at: Set(super::now()),
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
    Ok(device::Entity::find()
        .filter(device::Column::AccountId.eq(account_id))
        .filter(device::Column::RevokedAt.is_null())
        .order_by_asc(device::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_dto)
        .collect())
}

fn to_dto(m: device::Model) -> DeviceDto {
    DeviceDto {
        id: m.id,
        public_key: m.public_key,
        label: m.label,
        registered_at: m.created_at,
    }
}
