//! A helper who corrects a visit may correct a family change on it the town office has
//! already accepted: the baby's name misspelt (朱小宝 for 朱晓宝), the wrong member
//! recorded as gone. The correction's change arrives as a new one; accepted as such it
//! added a second child beside the misspelt one, and nothing could take that one off
//! (QA s33c C1). Here such a change is found, named to the office beside it in the
//! queue, and applied in the place of the one it corrects.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use std::collections::HashMap;

use bangfu_shared::visit::SignedRecord;

use crate::entities::{field_change, record};
use crate::error::ApiResult;

/// For each pending change among `changes` that a visit's correction proposes in the
/// place of a change of the same kind accepted earlier on the same visit (its original
/// or an earlier correction), that accepted change, by the pending change's id. A change
/// is taken to replace one when it is the correction's only new change of its kind and
/// the correction no longer carries the accepted one; of several such, the latest
/// accepted (the name the household has now).
pub async fn replaced(
    db: &impl ConnectionTrait,
    changes: &[field_change::Model],
) -> ApiResult<HashMap<i64, field_change::Model>> {
    let pending: Vec<&field_change::Model> =
        changes.iter().filter(|c| c.status == "pending").collect();
    let records: Vec<String> = pending.iter().map(|c| c.record_id.clone()).collect();
    let corrections = corrections_of(db, &records).await?;
    if corrections.is_empty() {
        return Ok(HashMap::new());
    }
    let visits = corrections.values().map(|c| c.visit.clone()).collect();
    let chains = chain_changes(db, visits).await?;
    let mut out = HashMap::new();
    for c in pending {
        let Some(correction) = corrections.get(&c.record_id) else {
            continue;
        };
        let chain = chains
            .get(&correction.visit)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let Some(old) = replaced_by(c, &correction.carries, chain) {
            out.insert(c.id, old.clone());
        }
    }
    Ok(out)
}

/// A stored correction: the visit it corrects and the family changes it carries, as
/// (kind, name). Those its visit had decided already are carried but never queued.
struct Correction {
    visit: String,
    carries: Vec<(String, String)>,
}

/// The accepted change `c` takes the place of, given what its correction `carries` and
/// every change of its visit's `chain`.
fn replaced_by<'a>(
    c: &field_change::Model,
    carries: &[(String, String)],
    chain: &'a [field_change::Model],
) -> Option<&'a field_change::Model> {
    let carried: Vec<&str> = carries
        .iter()
        .filter(|(kind, _)| *kind == c.kind)
        .map(|(_, name)| name.as_str())
        .collect();
    let accepted: Vec<&field_change::Model> = chain
        .iter()
        .filter(|o| o.record_id != c.record_id && o.kind == c.kind && o.status == "accepted")
        .collect();
    let new: Vec<&str> = carried
        .iter()
        .copied()
        .filter(|n| !accepted.iter().any(|o| o.name == *n))
        .collect();
    // More than one new change of the kind: which replaces which cannot be told.
    if new != [c.name.as_str()] {
        return None;
    }
    accepted
        .into_iter()
        .filter(|o| !carried.contains(&o.name.as_str()))
        .max_by_key(|o| o.id)
}

/// The stored corrections among `records`, by record id.
async fn corrections_of(
    db: &impl ConnectionTrait,
    records: &[String],
) -> ApiResult<HashMap<String, Correction>> {
    let mut out = HashMap::new();
    for chunk in records.chunks(crate::db::IN_CHUNK) {
        let rows: Vec<(String, Option<String>, String)> = record::Entity::find()
            .select_only()
            .columns([
                record::Column::Id,
                record::Column::TargetId,
                record::Column::Body,
            ])
            .filter(record::Column::Id.is_in(chunk.to_vec()))
            .filter(record::Column::TargetId.is_not_null())
            .into_tuple()
            .all(db)
            .await?;
        for (id, target, body) in rows {
            let (Some(visit), Ok(signed)) = (target, serde_json::from_str::<SignedRecord>(&body))
            else {
                continue;
            };
            let carries = signed
                .record
                .visit
                .map(|v| v.family_changes)
                .unwrap_or_default()
                .into_iter()
                .map(|f| (f.kind.code().to_string(), f.name))
                .collect();
            out.insert(id, Correction { visit, carries });
        }
    }
    Ok(out)
}

/// Every family change of each visit in `visits` and of its corrections, by visit.
async fn chain_changes(
    db: &impl ConnectionTrait,
    visits: Vec<String>,
) -> ApiResult<HashMap<String, Vec<field_change::Model>>> {
    let visits: Vec<String> = visits
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out: HashMap<String, Vec<field_change::Model>> = HashMap::new();
    for chunk in visits.chunks(crate::db::IN_CHUNK) {
        let members: Vec<(String, Option<String>)> = record::Entity::find()
            .select_only()
            .columns([record::Column::Id, record::Column::TargetId])
            .filter(
                sea_orm::Condition::any()
                    .add(record::Column::Id.is_in(chunk.to_vec()))
                    .add(record::Column::TargetId.is_in(chunk.to_vec())),
            )
            .into_tuple()
            .all(db)
            .await?;
        let visit_of: HashMap<String, String> = members
            .into_iter()
            .map(|(id, target)| (id.clone(), target.unwrap_or(id)))
            .collect();
        let ids: Vec<String> = visit_of.keys().cloned().collect();
        for ids in ids.chunks(crate::db::IN_CHUNK) {
            for c in field_change::Entity::find()
                .filter(field_change::Column::RecordId.is_in(ids.to_vec()))
                .all(db)
                .await?
            {
                if let Some(visit) = visit_of.get(&c.record_id) {
                    out.entry(visit.clone()).or_default().push(c);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn change(id: i64, record: &str, kind: &str, name: &str, status: &str) -> field_change::Model {
        field_change::Model {
            id,
            record_id: record.into(),
            household_id: 1,
            kind: kind.into(),
            name: name.into(),
            status: status.into(),
            note: None,
            decided_by: None,
            decided_at: None,
            created_at: chrono::Utc::now(),
        }
    }

    fn carries(names: &[&str]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| ("birth".to_string(), (*n).to_string()))
            .collect()
    }

    #[test]
    fn a_renamed_change_replaces_the_accepted_one_it_no_longer_carries() {
        let chain = [
            change(1, "v", "birth", "朱小宝", "accepted"),
            change(2, "v", "death", "朱老汉", "accepted"),
            change(3, "a", "birth", "朱晓宝", "pending"),
        ];
        let fix = carries(&["朱晓宝"]);
        assert_eq!(replaced_by(&chain[2], &fix, &chain).map(|c| c.id), Some(1));
        // Still carried by the correction (decided, so not queued again): the new one
        // is another child.
        let both = carries(&["朱小宝", "朱晓宝"]);
        assert_eq!(replaced_by(&chain[2], &both, &chain), None);
        // Two new ones of the kind: which replaces it cannot be told.
        let two = carries(&["朱晓宝", "朱大宝"]);
        assert_eq!(replaced_by(&chain[2], &two, &chain), None);
        // A rejected one is not in the household to replace.
        let rejected = [
            change(1, "v", "birth", "朱小宝", "rejected"),
            change(3, "a", "birth", "朱晓宝", "pending"),
        ];
        assert_eq!(replaced_by(&rejected[1], &fix, &rejected), None);
        // Corrected twice: the latest accepted name is the one in the household.
        let again = [
            change(1, "v", "birth", "朱小宝", "accepted"),
            change(3, "a", "birth", "朱晓宝", "accepted"),
            change(5, "b", "birth", "朱孝宝", "pending"),
        ];
        let third = carries(&["朱孝宝"]);
        assert_eq!(
            replaced_by(&again[2], &third, &again).map(|c| c.id),
            Some(3)
        );
    }
}
