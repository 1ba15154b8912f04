//! Who may sign what, remembered between pushes: an account's device keys and the
//! households its helper has ever been paired with.
//!
//! Every push checks each record against both; loading them costs two queries per
//! request, which for a one-record submission is a fifth of its database work. Both
//! only grow in practice, so a cached answer that holds every id a push names is used
//! as it is, and one that lacks an id is reloaded (a device registered or a pairing
//! imported a moment ago is seen at once):
//! - pairings are never deleted (a change of helper ends a pairing, it stays in the
//!   history), so "ever paired" is never withdrawn and needs no expiry;
//! - a device can be revoked (by another process, the command line): cached keys are
//!   trusted for [`KEYS_TTL`], as long as a bearer token is (see `sessions`).

use base64::Engine;
use ed25519_dalek::VerifyingKey;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::entities::{device, pairing};
use crate::error::ApiResult;

/// How long a revoked device's cached key may still verify pushes.
pub const KEYS_TTL: Duration = super::sessions::DEFAULT_TTL;

/// Accounts (or helpers) remembered at most; beyond this the map is emptied.
const MAX_ENTRIES: usize = 10_000;

/// Device id → its verifying key and when it was registered, for one account.
pub type DeviceKeys = HashMap<i64, DeviceKey>;

/// A registered device's key, and the server's time of its registration: the device
/// cannot have signed anything before it (the key is made at login, just before), so a
/// record claiming an earlier signing time was signed with the clock set back.
#[derive(Debug, Clone, Copy)]
pub struct DeviceKey {
    pub key: VerifyingKey,
    pub registered_at: chrono::DateTime<chrono::Utc>,
}

/// The cache; one per server.
#[derive(Default)]
pub struct Signers {
    keys: Mutex<HashMap<i64, (Instant, Arc<DeviceKeys>)>>,
    paired: Mutex<HashMap<i64, Arc<HashSet<i64>>>>,
}

impl Signers {
    /// The account's unrevoked device keys, holding every id in `wanted` if the
    /// database does.
    pub async fn device_keys(
        &self,
        db: &impl ConnectionTrait,
        account_id: i64,
        wanted: &[i64],
    ) -> ApiResult<Arc<DeviceKeys>> {
        let cached = self.keys.lock().ok().and_then(|m| {
            m.get(&account_id)
                .filter(|(at, keys)| {
                    at.elapsed() < KEYS_TTL && wanted.iter().all(|d| keys.contains_key(d))
                })
                .map(|(_, keys)| keys.clone())
        });
        if let Some(keys) = cached {
            return Ok(keys);
        }
        let keys = Arc::new(load_keys(db, account_id).await?);
        remember(&self.keys, account_id, (Instant::now(), keys.clone()));
        Ok(keys)
    }

    /// Households the helper has ever been paired with, holding every id in `wanted`
    /// if the database does.
    pub async fn paired(
        &self,
        db: &impl ConnectionTrait,
        helper_id: i64,
        wanted: &[i64],
    ) -> ApiResult<Arc<HashSet<i64>>> {
        let cached = self.paired.lock().ok().and_then(|m| {
            m.get(&helper_id)
                .filter(|set| wanted.iter().all(|h| set.contains(h)))
                .cloned()
        });
        if let Some(set) = cached {
            return Ok(set);
        }
        let set: HashSet<i64> = pairing::Entity::find()
            .select_only()
            .column(pairing::Column::HouseholdId)
            .filter(pairing::Column::HelperId.eq(helper_id))
            .into_tuple::<i64>()
            .all(db)
            .await?
            .into_iter()
            .collect();
        let set = Arc::new(set);
        remember(&self.paired, helper_id, set.clone());
        Ok(set)
    }
}

impl Signers {
    /// Forgets the device keys of `account` (a device revoked through this server), so
    /// the next push reads them again and the revoked key verifies nothing more.
    pub fn forget_keys(&self, account_id: i64) {
        if let Ok(mut m) = self.keys.lock() {
            m.remove(&account_id);
        }
    }
}

fn remember<V>(map: &Mutex<HashMap<i64, V>>, key: i64, value: V) {
    if let Ok(mut m) = map.lock() {
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(key, value);
    }
}

/// The account's unrevoked devices whose stored key parses (weak keys were refused at
/// registration; a stored one that is weak is skipped all the same).
async fn load_keys(db: &impl ConnectionTrait, account_id: i64) -> ApiResult<DeviceKeys> {
    let rows = device::Entity::find()
        .filter(device::Column::AccountId.eq(account_id))
        .filter(device::Column::RevokedAt.is_null())
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|d| {
            let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
                .decode(&d.public_key)
                .ok()?
                .try_into()
                .ok()?;
            let key = VerifyingKey::from_bytes(&bytes)
                .ok()
                .filter(|k| !k.is_weak())?;
            Some((
                d.id,
                DeviceKey {
                    key,
                    registered_at: d.created_at,
                },
            ))
        })
        .collect())
}
