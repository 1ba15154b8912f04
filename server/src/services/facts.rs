//! Visit facts: one row per visit or amendment record with what attendance needs to
//! judge it, kept current inside the same transactions that store records, so reports
//! aggregate facts in SQL instead of re-reading signed records.
//!
//! Cross-record rules live here: a void record voids the visit it targets (whichever
//! arrives first); the newest amendment of a visit supersedes the original and older
//! amendments; a photo already used by another visit is flagged on the later one.

use bangfu_shared::VisitKind;
use bangfu_shared::visit::{HouseholdSignature, RecordEnvelope, RecordType};
use chrono::{DateTime, Datelike, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect, Set,
};
use std::collections::HashSet;

use crate::entities::{record, record_blob, record_review, visit_fact};
use crate::error::ApiResult;

/// The visit's calendar day in China (UTC+8), the day the rules count.
pub fn local_date(at: DateTime<Utc>) -> chrono::NaiveDate {
    (at + chrono::Duration::hours(8)).date_naive()
}

/// Adds the facts of newly stored records and applies their effects on older ones.
pub async fn on_records_stored(
    db: &impl ConnectionTrait,
    stored: &[(&RecordEnvelope, bool, bool)],
    received_at: DateTime<Utc>,
) -> ApiResult<()> {
    for (env, complete, clock_flag) in stored {
        match env.record_type {
            RecordType::Void => {
                if let Some(target) = env.target_id {
                    void(db, &target.to_string()).await?;
                }
            }
            RecordType::Visit | RecordType::Amendment => {
                add(db, env, *complete, *clock_flag, received_at).await?
            }
        }
    }
    Ok(())
}

async fn add(
    db: &impl ConnectionTrait,
    env: &RecordEnvelope,
    complete: bool,
    clock_flag: bool,
    received_at: DateTime<Utc>,
) -> ApiResult<()> {
    let Some(visit) = &env.visit else {
        return Ok(());
    };
    let id = env.id.to_string();
    let original = env.target_id.map_or_else(|| id.clone(), |t| t.to_string());
    let date = local_date(visit.at);
    let witness_ok = match &visit.household_signature {
        Some(HouseholdSignature::Witness {
            name, role, reason, ..
        }) => !name.trim().is_empty() && !role.trim().is_empty() && !reason.trim().is_empty(),
        _ => true,
    };
    let voided = record::Entity::find()
        .filter(record::Column::RecordType.eq(RecordType::Void.code()))
        .filter(record::Column::TargetId.eq(original.as_str()))
        .one(db)
        .await?
        .is_some();
    let photos: Vec<String> = visit.photos.iter().map(|p| p.sha256.clone()).collect();
    let photo_reused = photo_used_elsewhere(db, &photos, &original).await?;
    visit_fact::ActiveModel {
        record_id: Set(id),
        original_id: Set(original.clone()),
        household_id: Set(env.household_id),
        helper_id: Set(env.author_helper_id),
        kind: Set(visit.kind.code().to_string()),
        visit_date: Set(date),
        year: Set(date.year()),
        month: Set(date.month() as i32),
        photo_count: Set(visit.photos.len() as i32),
        photos_complete: Set(complete),
        household_signed: Set(visit.kind == VisitKind::Phone || visit.household_signature.is_some()),
        witness_ok: Set(witness_ok),
        clock_flag: Set(clock_flag),
        photo_reused: Set(photo_reused),
        voided: Set(voided),
        superseded: Set(false),
        received_at: Set(received_at),
    }
    .insert(db)
    .await?;
    // Amendments may arrive before the visit they correct: settle versions either way
    // (a visit with a single version, the common case, needs nothing).
    let versions = visit_fact::Entity::find()
        .filter(visit_fact::Column::OriginalId.eq(original.as_str()))
        .count(db)
        .await?;
    if versions > 1 {
        supersede(db, &original).await?;
    }
    if env.record_type == RecordType::Amendment {
        resubmit(db, &original).await?;
    }
    Ok(())
}

/// Whether a visit other than `original` (and its amendments) already uses one of `photos`.
async fn photo_used_elsewhere(
    db: &impl ConnectionTrait,
    photos: &[String],
    original: &str,
) -> ApiResult<bool> {
    if photos.is_empty() {
        return Ok(false);
    }
    let users: Vec<String> = record_blob::Entity::find()
        .select_only()
        .column(record_blob::Column::RecordId)
        .filter(record_blob::Column::Sha256.is_in(photos.to_vec()))
        .into_tuple()
        .all(db)
        .await?;
    if users.is_empty() {
        return Ok(false);
    }
    let others = visit_fact::Entity::find()
        .filter(visit_fact::Column::RecordId.is_in(users))
        .filter(visit_fact::Column::OriginalId.ne(original))
        .one(db)
        .await?;
    Ok(others.is_some())
}

/// Marks every fact of a visit voided.
async fn void(db: &impl ConnectionTrait, original: &str) -> ApiResult<()> {
    visit_fact::Entity::update_many()
        .col_expr(visit_fact::Column::Voided, Expr::value(true))
        .filter(visit_fact::Column::OriginalId.eq(original))
        .exec(db)
        .await?;
    Ok(())
}

/// Keeps only the newest version (original or amendment, by device time then sequence) of a visit.
async fn supersede(db: &impl ConnectionTrait, original: &str) -> ApiResult<()> {
    let ids: Vec<String> = visit_fact::Entity::find()
        .select_only()
        .column(visit_fact::Column::RecordId)
        .filter(visit_fact::Column::OriginalId.eq(original))
        .into_tuple()
        .all(db)
        .await?;
    let versions = record::Entity::find()
        .filter(record::Column::Id.is_in(ids.clone()))
        .all(db)
        .await?;
    let newest = versions
        .iter()
        .max_by_key(|r| {
            (
                r.record_type != RecordType::Visit.code(),
                r.created_at_device,
                r.device_seq,
            )
        })
        .map(|r| r.id.clone());
    for id in ids {
        visit_fact::Entity::update_many()
            .col_expr(
                visit_fact::Column::Superseded,
                Expr::value(Some(&id) != newest.as_ref()),
            )
            .filter(visit_fact::Column::RecordId.eq(id.as_str()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// An amendment answers a "has issues" note: the visit goes back to the town office.
async fn resubmit(db: &impl ConnectionTrait, original: &str) -> ApiResult<()> {
    let last = record_review::Entity::find()
        .filter(record_review::Column::RecordId.eq(original))
        .all(db)
        .await?
        .into_iter()
        .max_by_key(|r| r.id);
    if last.is_some_and(|r| r.state == "has_issues") {
        record_review::ActiveModel {
            record_id: Set(original.to_string()),
            state: Set("resubmitted".into()),
            reason: Set(None),
            account_id: Set(None),
            at: Set(super::now()),
            ..Default::default()
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

/// Records whose files have all arrived: their facts now have complete photos.
pub async fn photos_completed(
    db: &impl ConnectionTrait,
    record_ids: &HashSet<String>,
) -> ApiResult<()> {
    if record_ids.is_empty() {
        return Ok(());
    }
    visit_fact::Entity::update_many()
        .col_expr(visit_fact::Column::PhotosComplete, Expr::value(true))
        .filter(visit_fact::Column::RecordId.is_in(record_ids.iter().cloned()))
        .exec(db)
        .await?;
    Ok(())
}
