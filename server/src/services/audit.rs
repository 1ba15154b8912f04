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
use crate::entities::{account, audit, helper, household, jurisdiction, pairing, policy};
use crate::error::{ApiError, ApiResult};

/// One change to record.
#[derive(Debug, Clone)]
pub struct Entry {
    pub action: &'static str,
    pub entity: &'static str,
    pub entity_id: Option<i64>,
    /// The detail as the JSON text stored: written out at once, since an import keeps
    /// one entry per household, helper, pairing and account until it commits, and as a
    /// `Value` each held a map's nodes (38 MB of 100 MB at 20,000 rows, QA s27a F5).
    pub detail: String,
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
            detail: detail.to_string(),
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
    // A chunk's rows and statements at a time, not all of an import's at once.
    let (backend, at) = (db.get_database_backend(), super::now());
    let mut entries = entries.into_iter();
    loop {
        let chunk: Vec<Entry> = entries.by_ref().take(STATEMENT_ROWS).collect();
        if chunk.is_empty() {
            return Ok(());
        }
        for stmt in statements_at(backend, caller, chunk, at) {
            db.execute_raw(stmt).await?;
        }
    }
}

/// Rows of the audit log per INSERT statement.
const STATEMENT_ROWS: usize = 2000;

/// The inserts that record `entries`, to run with other writes (`db::execute_all`).
pub fn statements(backend: DbBackend, caller: &Caller, entries: Vec<Entry>) -> Vec<Statement> {
    statements_at(backend, caller, entries, super::now())
}

/// [`statements`], dated `at`.
fn statements_at(
    backend: DbBackend,
    caller: &Caller,
    entries: Vec<Entry>,
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<Statement> {
    let rows = entries
        .into_iter()
        .map(|e| audit::ActiveModel {
            at: Set(at),
            account_id: Set(caller.account_id),
            action: Set(e.action.to_string()),
            entity: Set(e.entity.to_string()),
            entity_id: Set(e.entity_id),
            detail: Set(e.detail),
            remote_addr: Set(caller.remote_addr.clone()),
            ..Default::default()
        })
        .collect();
    crate::db::insert_statements(backend, rows, STATEMENT_ROWS)
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
    let county = match caller.role {
        Role::Admin => None,
        _ => Some(
            caller
                .county_id
                .ok_or_else(|| ApiError::Forbidden("this account belongs to no county".into()))?,
        ),
    };
    if let Some(county) = county {
        cond = cond.add(
            Condition::any()
                .add(audit::Column::AccountId.in_subquery(county_accounts(county)))
                .add(about_county(county)),
        );
    }
    if let Some(since) = filter.since {
        cond = cond.add(audit::Column::At.gte(super::china_day_start(since)));
    }
    if let Some(action) = filter.action.as_deref() {
        check_action(action)?;
        cond = cond.add(match action.strip_suffix('.') {
            Some(family) => audit::Column::Action.starts_with(format!("{family}.")),
            None => audit::Column::Action.eq(action),
        });
    }
    if let Some(name) = filter.account.as_deref() {
        // A county office looks up its own county's accounts and the admins': any other
        // is not found, as an unknown name is (the answer tells no one which usernames
        // another county has).
        let mut known = Condition::all().add(account::Column::Username.eq(name));
        if let Some(county) = county {
            known = known.add(
                Condition::any()
                    .add(account::Column::Id.in_subquery(county_accounts(county)))
                    .add(account::Column::Role.eq(Role::Admin.code())),
            );
        }
        let id = account::Entity::find()
            .select_only()
            .column(account::Column::Id)
            .filter(known)
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

/// An action as the log names them (`household.exit`), or a family (`household.`):
/// lower-case words joined by dots. Anything else is refused, so no `%` or `_` reaches
/// the database's LIKE as a wildcard.
fn check_action(action: &str) -> ApiResult<()> {
    let words = action.strip_suffix('.').unwrap_or(action);
    let word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    if words.split('.').all(word) && !words.starts_with('_') {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "action: an action such as `household.exit`, or a family such as `household.`, \
             got `{action}`"
        )))
    }
}

/// Changes made by anyone (an admin, the server's command line) to the county's own
/// things: its households, pairings, helpers, accounts, places, policies and ledger.
fn about_county(county: i64) -> Condition {
    let of = |entity: &str, ids: sea_orm::sea_query::SelectStatement| {
        Condition::all()
            .add(audit::Column::Entity.eq(entity))
            .add(audit::Column::EntityId.in_subquery(ids))
    };
    let households = Query::select()
        .column(household::Column::Id)
        .from(household::Entity)
        .and_where(household::Column::CountyId.eq(county))
        .to_owned();
    let pairings = Query::select()
        .column(pairing::Column::Id)
        .from(pairing::Entity)
        .and_where(pairing::Column::HouseholdId.in_subquery(households.clone()))
        .to_owned();
    let helpers = Query::select()
        .column(helper::Column::Id)
        .from(helper::Entity)
        .and_where(helper::Column::CountyId.eq(county))
        .to_owned();
    let policies = Query::select()
        .column(policy::Column::Id)
        .from(policy::Entity)
        .and_where(policy::Column::CountyId.eq(county))
        .to_owned();
    Condition::any()
        .add(of("household", households))
        .add(of("pairing", pairings))
        .add(of("helper", helpers))
        .add(of("account", county_accounts(county)))
        .add(of("jurisdiction", county_places(county)))
        .add(of("policy", policies))
        .add(
            Condition::all()
                .add(audit::Column::Entity.eq("county"))
                .add(audit::Column::EntityId.eq(county)),
        )
}

/// The county and its towns.
fn county_places(county: i64) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(jurisdiction::Column::Id)
        .from(jurisdiction::Entity)
        .cond_where(
            Condition::any()
                .add(jurisdiction::Column::Id.eq(county))
                .add(jurisdiction::Column::ParentId.eq(county)),
        )
        .to_owned()
}

/// The accounts of a county: offices scoped to it or to one of its towns, and helpers
/// of its ledger.
fn county_accounts(county: i64) -> sea_orm::sea_query::SelectStatement {
    let places = county_places(county);
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
