//! The append-only audit log: who changed what, when, from which address. The database
//! refuses updates and deletes on it (see the migration). Details never hold secrets.

use bangfu_shared::Role;
use bangfu_shared::api::AuditEntry;
use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, Statement,
};
use serde_json::Value;
use std::collections::HashMap;

use super::Caller;
use crate::entities::{account, audit, helper, jurisdiction};
use crate::error::{ApiError, ApiResult};

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

/// Which part of the audit log an office reads.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only changes on or after this day (China time).
    pub since: Option<chrono::NaiveDate>,
    /// Only this action (`household.exit`), or a family of them (`household.`).
    pub action: Option<String>,
    /// Only this account's changes (a username).
    pub account: Option<String>,
    /// Only entries older than this id: the next page after a page ending at it.
    pub before: Option<i64>,
    /// At most this many (1 to [`MAX_AUDIT_PAGE`]).
    pub limit: u64,
}

/// Most entries one page of the audit log answers.
pub const MAX_AUDIT_PAGE: u64 = 500;

/// The audit log newest first, as a county office or an admin may read it: an admin
/// all of it, a county office the changes made by its county's accounts (its offices,
/// its towns' offices, its helpers). Town offices and helpers may not: the log is the
/// county's check on the towns.
pub async fn list(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: &AuditFilter,
) -> ApiResult<Vec<AuditEntry>> {
    caller.require(&[Role::CountyOffice], "read the audit log")?;
    if !(1..=MAX_AUDIT_PAGE).contains(&filter.limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: 1 to {MAX_AUDIT_PAGE} entries, got {}",
            filter.limit
        )));
    }
    let mut cond = Condition::all();
    if caller.role != Role::Admin {
        let county = caller
            .county_id
            .ok_or_else(|| ApiError::Forbidden("this account belongs to no county".into()))?;
        cond = cond.add(audit::Column::AccountId.in_subquery(county_accounts(county)));
    }
    if let Some(since) = filter.since {
        cond = cond.add(audit::Column::At.gte(super::china_day_start(since)));
    }
    if let Some(action) = filter.action.as_deref() {
        cond = cond.add(match action.strip_suffix('.') {
            Some(family) => audit::Column::Action.starts_with(format!("{family}.")),
            None => audit::Column::Action.eq(action),
        });
    }
    if let Some(name) = filter.account.as_deref() {
        let id = account::Entity::find()
            .select_only()
            .column(account::Column::Id)
            .filter(account::Column::Username.eq(name))
            .into_tuple::<i64>()
            .one(db)
            .await?
            .ok_or(ApiError::NotFound("account"))?;
        cond = cond.add(audit::Column::AccountId.eq(id));
    }
    if let Some(before) = filter.before {
        cond = cond.add(audit::Column::Id.lt(before));
    }
    let rows = audit::Entity::find()
        .filter(cond)
        .order_by_desc(audit::Column::Id)
        .limit(filter.limit)
        .all(db)
        .await?;
    entries(db, rows).await
}

/// The accounts of a county: offices scoped to it or to one of its towns, and helpers
/// of its ledger.
fn county_accounts(county: i64) -> sea_orm::sea_query::SelectStatement {
    let places = Query::select()
        .column(jurisdiction::Column::Id)
        .from(jurisdiction::Entity)
        .cond_where(
            Condition::any()
                .add(jurisdiction::Column::Id.eq(county))
                .add(jurisdiction::Column::ParentId.eq(county)),
        )
        .to_owned();
    let helpers = Query::select()
        .column(helper::Column::Id)
        .from(helper::Entity)
        .and_where(helper::Column::CountyId.eq(county))
        .to_owned();
    Query::select()
        .column(account::Column::Id)
        .from(account::Entity)
        .cond_where(
            Condition::any()
                .add(account::Column::ScopeId.in_subquery(places))
                .add(account::Column::HelperId.in_subquery(helpers)),
        )
        .to_owned()
}

/// The rows as the API shows them, each with its account's username.
async fn entries(db: &impl ConnectionTrait, rows: Vec<audit::Model>) -> ApiResult<Vec<AuditEntry>> {
    let ids: Vec<i64> = rows.iter().filter_map(|r| r.account_id).collect();
    let names: HashMap<i64, String> = account::Entity::find()
        .select_only()
        .column(account::Column::Id)
        .column(account::Column::Username)
        .filter(account::Column::Id.is_in(ids))
        .into_tuple::<(i64, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: r.at,
            account: r.account_id.and_then(|a| names.get(&a).cloned()),
            action: r.action,
            entity: r.entity,
            entity_id: r.entity_id,
            // Written by this server as JSON; an unreadable one is shown as its text.
            detail: serde_json::from_str(&r.detail).unwrap_or(Value::String(r.detail)),
            remote_addr: r.remote_addr,
        })
        .collect())
}
