//! The append-only audit log: who changed what, when, from which address. The database
//! refuses updates and deletes on it (see the migration). Details never hold secrets.

use sea_orm::{ConnectionTrait, DbBackend, Set, Statement};
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
    for stmt in statements(db.get_database_backend(), caller, entries) {
        db.execute_raw(stmt).await?;
    }
    Ok(())
}

/// The inserts that record `entries`, to run with other writes (`db::execute_all`).
pub fn statements(backend: DbBackend, caller: &Caller, entries: Vec<Entry>) -> Vec<Statement> {
    let at = super::now();
    let rows = entries
        .into_iter()
        .map(|e| audit::ActiveModel {
            at: Set(at),
            account_id: Set(caller.account_id),
            action: Set(e.action.to_string()),
            entity: Set(e.entity.to_string()),
            entity_id: Set(e.entity_id),
            detail: Set(e.detail.to_string()),
            remote_addr: Set(caller.remote_addr.clone()),
            ..Default::default()
        })
        .collect();
    crate::db::insert_statements(backend, rows, 2000)
}
