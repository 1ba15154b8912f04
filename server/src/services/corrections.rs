//! An office's corrections of a household's record: head of household, phone, village.
//!
//! Why apart from the ledger import: an import knows a household by its village, head
//! and phone, so a row with the name spelt right is read as a new household (whose 序号
//! then collides with the misspelt one's). A correction keeps the household, its 序号,
//! pairings and visits, and changes only what it names (QA s29b J23).

use bangfu_shared::api::{HouseholdCorrection, HouseholdDetail};
use bangfu_shared::ledger::{MAX_NAME_CHARS, col, is_valid_phone, normalize_cell};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, Set,
};

use super::households::in_scope;
use super::{Caller, audit};
use crate::entities::{household, jurisdiction};
use crate::error::{ApiError, ApiResult};

/// What a correction will write, checked before any lock is taken.
struct Checked {
    head_name: Option<String>,
    phone: Option<String>,
    village_id: Option<i64>,
    reason: String,
}

fn check(c: &HouseholdCorrection) -> ApiResult<Checked> {
    let reason = super::exits::checked_reason(&c.reason, "is corrected")?;
    let head_name = match &c.head_name {
        Some(name) => {
            // A line break would be dropped with the spaces, joining two words into a
            // name no one typed (QA s30e Q4).
            if name.chars().any(char::is_control) {
                return Err(ApiError::Invalid(
                    "head_name: holds a line break or another control character".into(),
                ));
            }
            let name = normalize_cell(col::HEAD_NAME, name);
            if name.is_empty() {
                return Err(ApiError::Invalid("head_name: empty".into()));
            }
            super::check_free_text(&name, "head_name", MAX_NAME_CHARS)?;
            Some(name)
        }
        None => None,
    };
    let phone = match &c.phone {
        Some(phone) => {
            let phone = normalize_cell(col::PHONE, phone).trim().to_string();
            if !phone.is_empty() && !is_valid_phone(&phone) {
                return Err(ApiError::Invalid(format!(
                    "phone: {phone} is not a phone number (11-digit mobile, or a landline \
                     with its area code)"
                )));
            }
            Some(phone)
        }
        None => None,
    };
    if head_name.is_none() && phone.is_none() && c.village_id.is_none() {
        return Err(ApiError::Invalid(
            "nothing to correct: give head_name, phone or village_id".into(),
        ));
    }
    Ok(Checked {
        head_name,
        phone,
        village_id: c.village_id,
        reason: reason.to_string(),
    })
}

/// Corrects household `id` (see [`HouseholdCorrection`]) for an office whose scope holds
/// it; a helper may not. Another household of the village with the same head and phone
/// is a conflict: the two would be one to every later import.
pub async fn correct(
    db: &DatabaseConnection,
    caller: &Caller,
    id: i64,
    correction: &HouseholdCorrection,
) -> ApiResult<HouseholdDetail> {
    caller.require_office("correct a household")?;
    let c = check(correction)?;
    in_scope(db, caller, id).await?;
    let (_gate, txn) = crate::db::begin_write(db).await?;
    let h = household::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(ApiError::NotFound("household"))?;
    let village = match c.village_id {
        Some(v) if v != h.village_id => Some(village_of_town(&txn, v, h.town_id).await?),
        _ => None,
    };
    let head_name = c.head_name.unwrap_or_else(|| h.head_name.clone());
    let phone = c.phone.unwrap_or_else(|| h.phone.clone());
    let village_id = village.as_ref().map_or(h.village_id, |v| v.id);
    let changed: Vec<&str> = [
        ("head_name", head_name != h.head_name),
        ("phone", phone != h.phone),
        ("village_id", village_id != h.village_id),
    ]
    .into_iter()
    .filter_map(|(field, differs)| differs.then_some(field))
    .collect();
    if changed.is_empty() {
        return Err(ApiError::Conflict(
            "the household already reads so: nothing was changed".into(),
        ));
    }
    let twin = household::Entity::find()
        .filter(household::Column::VillageId.eq(village_id))
        .filter(household::Column::HeadName.eq(head_name.as_str()))
        .filter(household::Column::Phone.eq(phone.as_str()))
        .filter(household::Column::Id.ne(id))
        .one(&txn)
        .await?;
    if let Some(twin) = twin {
        return Err(ApiError::Conflict(format!(
            "household {} of that village has the same head of household and phone: two \
             households would be one to every ledger import",
            twin.id
        )));
    }
    if head_name != h.head_name {
        refuse_one_who_left(&txn, id, &head_name).await?;
    }
    let county = h.county_id;
    let from_village = h.village_id;
    let members = renamed_head(&h.members, &h.head_name, &head_name)?;
    let mut active: household::ActiveModel = h.into();
    if let Some(members) = members {
        active.members = Set(members);
    }
    if let Some(v) = &village {
        let town = jurisdiction::Entity::find_by_id(v.parent_id.unwrap_or_default())
            .one(&txn)
            .await?
            .map(|t| t.name)
            .unwrap_or_default();
        active.address = Set(format!("{town}{}", v.name));
    }
    active.head_name = Set(head_name);
    active.phone = Set(phone);
    active.village_id = Set(village_id);
    active.updated_at = Set(super::now());
    active.update(&txn).await?;
    super::sync::bump_ledger(&txn, county).await?;
    // Which fields and why, not the names and numbers themselves (personal data).
    let detail = serde_json::json!({
        "fields": changed,
        "reason": c.reason,
        "village_from": from_village,
        "village_to": village_id,
    });
    let entry = audit::Entry::new("household.correct", "household", Some(id), detail);
    audit::record(&txn, caller, entry).await?;
    super::exits::answer_under_lock(db, txn, caller, id).await
}

/// Refuses to name head a member whose departure (death, move or marriage out) the
/// office accepted: a correction would bring them back without a trace in the review
/// queue (QA s33d S1).
async fn refuse_one_who_left(
    db: &impl sea_orm::ConnectionTrait,
    household_id: i64,
    name: &str,
) -> ApiResult<()> {
    use crate::entities::field_change;
    let left = field_change::Entity::find()
        .filter(field_change::Column::HouseholdId.eq(household_id))
        .filter(field_change::Column::Status.eq("accepted"))
        .filter(field_change::Column::Kind.is_in(["death", "move_out", "marriage_out"]))
        .filter(field_change::Column::Name.eq(name))
        .one(db)
        .await?;
    match left {
        Some(change) => Err(ApiError::Conflict(format!(
            "head_name: {name} left the household ({}, accepted as family change {}): a \
             correction does not bring them back",
            change.kind, change.id
        ))),
        None => Ok(()),
    }
}

/// The household's members (stored JSON) with the head of household renamed from `old`
/// to `new`, or `None` when no member changes: the member list must not keep the
/// misspelt name beside the corrected head (QA s30e Q2).
fn renamed_head(members: &str, old: &str, new: &str) -> ApiResult<Option<String>> {
    if old == new {
        return Ok(None);
    }
    let mut list: Vec<bangfu_shared::api::Member> = serde_json::from_str(members)
        .map_err(|e| ApiError::Internal(format!("household members: {e}")))?;
    // A correction fixes the head's misspelt name; naming another member head would
    // list them twice (QA s33c C2). That is done when accepting the old head's departure.
    if let Some(other) = list.iter().find(|m| m.name == new && m.relation != "户主") {
        return Err(ApiError::Conflict(format!(
            "head_name: {new} is already a member of the household ({}): a correction \
             fixes the head's misspelt name; to make another member head, accept the \
             change that takes {old} out with new_head (POST \
             /api/v1/review/family-changes/{{id}})",
            other.relation
        )));
    }
    let mut changed = false;
    for m in list
        .iter_mut()
        .filter(|m| m.relation == "户主" && m.name == old)
    {
        m.name = new.to_string();
        changed = true;
    }
    if !changed {
        return Ok(None);
    }
    serde_json::to_string(&list)
        .map(Some)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// The village `id`, if it is one of town `town`'s; else the correction is refused.
async fn village_of_town(
    db: &impl sea_orm::ConnectionTrait,
    id: i64,
    town: i64,
) -> ApiResult<jurisdiction::Model> {
    jurisdiction::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|v| {
            v.level == bangfu_shared::JurisdictionLevel::Village.code() && v.parent_id == Some(town)
        })
        .ok_or_else(|| {
            ApiError::Invalid(format!(
                "village_id: {id} is not a village of the household's town (a household \
                 moves to another town by that town's ledger import)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::renamed_head;

    /// QA s30e Q2: the member marked 户主 under the old name takes the new one; others
    /// and a list without the head are left as they are.
    #[test]
    fn the_head_among_the_members_is_renamed() {
        let members =
            r#"[{"name":"朱海燕","relation":"户主"},{"name":"朱小宝","relation":"子女"}]"#;
        let renamed = renamed_head(members, "朱海燕", "朱海艳").ok().flatten();
        let renamed = renamed.unwrap_or_default();
        assert!(
            renamed.contains("朱海艳") && !renamed.contains("朱海燕"),
            "{renamed}"
        );
        assert!(renamed.contains("朱小宝"), "{renamed}");
        assert!(matches!(renamed_head("[]", "朱海燕", "朱海艳"), Ok(None)));
        assert!(matches!(
            renamed_head(members, "朱海燕", "朱海燕"),
            Ok(None)
        ));
    }
}
