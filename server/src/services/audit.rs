//! The append-only audit log: who changed what, when, from which address. The database
//! refuses updates and deletes on it (see the migration). Details never hold secrets.

use sea_orm::{ConnectionTrait, EntityTrait, Set};
use serde_json::Value;

use super::Caller;
use crate::entities::audit;
use crate::error::ApiResult;

/// One change to record.
#[derive(Debug, Clone)]
pub struct Entry {
    pub action: &'static str,
    pub entity: &'static str,
    pub entity_id: Option<i64>,
    pub detail: Value,
}

impl Entry {
    /// A change to one entity.
    pub fn new(
        action: &'static str,
        entity: &'static str,
        entity_id: Option<i64>,
        detail: Value,
    ) -> Entry {
        Entry {
            action,
            entity,
            entity_id,
            detail,
        }
    }
}

/// Records one change.
pub async fn record(db: &impl ConnectionTrait, caller: &Caller, entry: Entry) -> ApiResult<()> {
    record_many(db, caller, vec![entry]).await
}

/// Records many changes in as few statements as possible (an import may make thousands).
pub async fn record_many(
    db: &impl ConnectionTrait,
    caller: &Caller,
    entries: Vec<Entry>,
) -> ApiResult<()> {
    let at = super::now();
    let mut rows = entries.into_iter().map(|e| audit::ActiveModel {
        at: Set(at),
        account_id: Set(caller.account_id),
        action: Set(e.action.to_string()),
        entity: Set(e.entity.to_string()),
        entity_id: Set(e.entity_id),
        detail: Set(e.detail.to_string()),
        remote_addr: Set(caller.remote_addr.clone()),
        ..Default::default()
    });
    loop {
        let chunk: Vec<_> = rows.by_ref().take(2000).collect();
        if chunk.is_empty() {
            return Ok(());
        }
        audit::Entity::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
}
