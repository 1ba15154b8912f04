//! The jurisdiction tree county → town → village: lookups and creation on demand.

use bangfu_shared::JurisdictionLevel;
use bangfu_shared::api::Place;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use std::collections::HashMap;

use crate::entities::jurisdiction;
use crate::error::{ApiError, ApiResult};

/// Finds a place by level, name and parent.
pub async fn find(
    db: &impl ConnectionTrait,
    level: JurisdictionLevel,
    name: &str,
    parent_id: Option<i64>,
) -> ApiResult<Option<jurisdiction::Model>> {
    let mut q = jurisdiction::Entity::find()
        .filter(jurisdiction::Column::Level.eq(level.code()))
        .filter(jurisdiction::Column::Name.eq(name));
    q = match parent_id {
        Some(p) => q.filter(jurisdiction::Column::ParentId.eq(p)),
        None => q.filter(jurisdiction::Column::ParentId.is_null()),
    };
    Ok(q.one(db).await?)
}

/// Finds or creates a place; returns its id and whether it was created.
pub async fn ensure(
    db: &impl ConnectionTrait,
    level: JurisdictionLevel,
    name: &str,
    parent_id: Option<i64>,
) -> ApiResult<(i64, bool)> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::Invalid(format!(
            "a {} needs a name",
            level.code()
        )));
    }
    if let Some(found) = find(db, level, name, parent_id).await? {
        return Ok((found.id, false));
    }
    let created = jurisdiction::ActiveModel {
        level: Set(level.code().to_string()),
        name: Set(name.to_string()),
        parent_id: Set(parent_id),
        created_at: Set(super::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((created.id, true))
}

/// One place by id.
pub async fn get(db: &impl ConnectionTrait, id: i64) -> ApiResult<jurisdiction::Model> {
    jurisdiction::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("place"))
}

/// County `id`; 404 `county` for any other place (an admin names the county by id, and
/// a town's id taken for one gave a county report of zeros and a policy stored on a
/// town as its county's, QA s22c F3).
pub async fn county(db: &impl ConnectionTrait, id: i64) -> ApiResult<jurisdiction::Model> {
    get(db, id)
        .await
        .ok()
        .filter(|p| p.level == JurisdictionLevel::County.code())
        .ok_or(ApiError::NotFound("county"))
}

/// Town `id`, if the caller's scope holds it (an admin's all, a county office's own
/// county's towns, a town office's own town); otherwise 404 `town`, the same for a town
/// that does not exist as for one of another county.
pub async fn town_in_scope(
    db: &impl ConnectionTrait,
    caller: &crate::services::Caller,
    id: i64,
) -> ApiResult<jurisdiction::Model> {
    use crate::services::Scope;
    let place = get(db, id).await.map_err(|_| ApiError::NotFound("town"))?;
    let in_scope = match caller.scope() {
        Scope::All => true,
        Scope::County(c) => place.parent_id == Some(c),
        Scope::Town(own) => own == id,
        _ => false,
    };
    if !in_scope || place.level != JurisdictionLevel::Town.code() {
        return Err(ApiError::NotFound("town"));
    }
    Ok(place)
}

/// Village `id`, if its town is in the caller's scope ([`town_in_scope`]); otherwise
/// 404 `village`, the same for one that does not exist as for one of another town.
pub async fn village_in_scope(
    db: &impl ConnectionTrait,
    caller: &crate::services::Caller,
    id: i64,
) -> ApiResult<jurisdiction::Model> {
    let place = get(db, id)
        .await
        .map_err(|_| ApiError::NotFound("village"))?;
    let town = place
        .parent_id
        .filter(|_| place.level == JurisdictionLevel::Village.code())
        .ok_or(ApiError::NotFound("village"))?;
    town_in_scope(db, caller, town)
        .await
        .map_err(|_| ApiError::NotFound("village"))?;
    Ok(place)
}

/// The children of a place, by name.
pub async fn children(
    db: &impl ConnectionTrait,
    parent_id: i64,
) -> ApiResult<Vec<jurisdiction::Model>> {
    Ok(jurisdiction::Entity::find()
        .filter(jurisdiction::Column::ParentId.eq(parent_id))
        .order_by_asc(jurisdiction::Column::Name)
        .all(db)
        .await?)
}

/// Names of places by id, for building DTOs without a query per row.
pub async fn places(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i64>,
) -> ApiResult<HashMap<i64, Place>> {
    let ids: Vec<i64> = ids
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = HashMap::new();
    for chunk in ids.chunks(1000) {
        for m in jurisdiction::Entity::find()
            .filter(jurisdiction::Column::Id.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            out.insert(m.id, to_place(&m));
        }
    }
    Ok(out)
}

/// The DTO of a place.
pub fn to_place(m: &jurisdiction::Model) -> Place {
    Place {
        id: m.id,
        level: m.level.parse().unwrap_or(JurisdictionLevel::Village),
        name: m.name.clone(),
    }
}

/// Resolves a town by name for the command line: unique among all towns, or within the
/// named county.
pub async fn town_by_name(
    db: &impl ConnectionTrait,
    county: Option<&str>,
    town: &str,
) -> ApiResult<jurisdiction::Model> {
    let county_id = match county {
        Some(name) => Some(
            find(db, JurisdictionLevel::County, name, None)
                .await?
                .ok_or_else(|| ApiError::Invalid(format!("no county named {name}")))?
                .id,
        ),
        None => None,
    };
    let mut q = jurisdiction::Entity::find()
        .filter(jurisdiction::Column::Level.eq(JurisdictionLevel::Town.code()))
        .filter(jurisdiction::Column::Name.eq(town));
    if let Some(c) = county_id {
        q = q.filter(jurisdiction::Column::ParentId.eq(c));
    }
    let mut found = q.all(db).await?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(ApiError::Invalid(format!("no town named {town}"))),
        _ => Err(ApiError::Invalid(format!(
            "several towns are named {town}: name the county too"
        ))),
    }
}

/// The towns and villages holding households in the caller's scope (optionally one
/// town), towns first, each by name: what an office needs to name a village to a request
/// that takes `?village=` (enrollment codes one village at a time, QA s28a F2).
pub async fn in_scope(
    db: &impl ConnectionTrait,
    caller: &crate::services::Caller,
    town: Option<i64>,
) -> ApiResult<Vec<bangfu_shared::api::PlaceInScope>> {
    use crate::entities::household;
    caller.require_office("list the places of a scope")?;
    let mut cond = caller.scope().households();
    if let Some(t) = town {
        town_in_scope(db, caller, t).await?;
        cond = cond.add(household::Column::TownId.eq(t));
    }
    let counts: Vec<(i64, i64, i64)> = household::Entity::find()
        .select_only()
        .column(household::Column::TownId)
        .column(household::Column::VillageId)
        .column_as(household::Column::Id.count(), "n")
        .filter(cond)
        .group_by(household::Column::TownId)
        .group_by(household::Column::VillageId)
        .into_tuple()
        .all(db)
        .await?;
    let mut held: HashMap<i64, u64> = HashMap::new();
    for &(town, village, n) in &counts {
        let n = u64::try_from(n).unwrap_or(0);
        *held.entry(town).or_default() += n;
        *held.entry(village).or_default() += n;
    }
    let mut out = Vec::new();
    for chunk in held.keys().copied().collect::<Vec<_>>().chunks(1000) {
        for m in jurisdiction::Entity::find()
            .filter(jurisdiction::Column::Id.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            out.push(bangfu_shared::api::PlaceInScope {
                households: held.get(&m.id).copied().unwrap_or(0),
                parent_id: m.parent_id,
                place: to_place(&m),
            });
        }
    }
    // Each town, then its villages.
    out.sort_by_key(|p| {
        let village = p.place.level == JurisdictionLevel::Village;
        let town = if village {
            p.parent_id
        } else {
            Some(p.place.id)
        };
        (town, village, p.place.name.clone())
    });
    Ok(out)
}
