//! The town office's list of device anomalies: what devices were caught at (clock,
//! chain, refusals: stored as they happen) and the sequence numbers that have not arrived
//! (gaps: derived from the stored records when asked).
//!
//! Each part is one query whatever the county's size: the helpers in scope are a
//! subquery, not a list the server carries in chunks, and the gaps are found by the
//! database with `LAG` over each device's numbers rather than by reading every stored
//! number (QA s27a F6: 2 queries per 500 helpers took 10.7 s for a county of 36,000
//! helpers on PostgreSQL).

use std::collections::{BTreeSet, HashMap, HashSet};

use bangfu_shared::sync::DeviceAnomaly;
use sea_orm::sea_query::{
    Alias, Condition, Expr, ExprTrait, Func, Order, Query, SelectStatement, WindowStatement,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Caller, refusals};
use crate::entities::{device_anomaly, household, pairing, record, visit_fact};
use crate::error::ApiResult;

/// Recorded anomalies and missing sequence numbers of the devices of helpers paired
/// with households in the caller's scope (optionally one town of it), recorded ones
/// first in the order they were detected.
pub async fn in_scope(
    db: &impl ConnectionTrait,
    caller: &Caller,
    town: Option<i64>,
) -> ApiResult<Vec<DeviceAnomaly>> {
    let homes = homes_in_scope(db, caller, town).await?;
    let helpers = helpers_of(homes.clone());
    let mut out: Vec<DeviceAnomaly> = device_anomaly::Entity::find()
        .filter(device_anomaly::Column::HelperId.in_subquery(helpers.clone()))
        .order_by_asc(device_anomaly::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|a| DeviceAnomaly {
            device_id: a.device_id,
            helper_id: a.helper_id,
            kind: a.kind,
            seq: a.device_seq,
            seq_to: None,
            detail: a.detail,
            detected_at: a.detected_at,
            household_id: None,
            visit_date: None,
        })
        .collect();
    out.extend(gaps(db, helpers).await?);
    let stored = stored_of_refused(db, &out).await?;
    refusals::settle(&mut out, &stored);
    out.extend(flagged_visits(db, homes.clone()).await?);
    out.extend(voided_after_accepting(db, homes).await?);
    Ok(out)
}

/// Visits their helper voided after the office accepted a family change of theirs, one
/// line per change: the household's members still carry it, and nothing else told the
/// office (QA s33d S9: a visit voided as 录错户 left its new head in place).
async fn voided_after_accepting(
    db: &impl ConnectionTrait,
    homes: SelectStatement,
) -> ApiResult<Vec<DeviceAnomaly>> {
    use crate::entities::field_change;
    let voided = Query::select()
        .column(visit_fact::Column::RecordId)
        .from(visit_fact::Entity)
        .and_where(visit_fact::Column::HouseholdId.in_subquery(homes.clone()))
        .and_where(visit_fact::Column::Voided.eq(true))
        .to_owned();
    let changes = field_change::Entity::find()
        .filter(field_change::Column::HouseholdId.in_subquery(homes))
        .filter(field_change::Column::Status.eq("accepted"))
        .filter(field_change::Column::RecordId.in_subquery(voided))
        .order_by_asc(field_change::Column::Id)
        .all(db)
        .await?;
    let ids: Vec<String> = changes.iter().map(|c| c.record_id.clone()).collect();
    let mut facts = std::collections::HashMap::new();
    for chunk in ids.chunks(crate::db::IN_CHUNK) {
        for f in visit_fact::Entity::find()
            .filter(visit_fact::Column::RecordId.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            facts.insert(f.record_id.clone(), f);
        }
    }
    let mut records = std::collections::HashMap::new();
    for chunk in ids.chunks(crate::db::IN_CHUNK) {
        let rows: Vec<(String, i64, i64)> = record::Entity::find()
            .select_only()
            .columns([
                record::Column::Id,
                record::Column::DeviceId,
                record::Column::DeviceSeq,
            ])
            .filter(record::Column::Id.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        records.extend(
            rows.into_iter()
                .map(|(id, device, seq)| (id, (device, seq))),
        );
    }
    Ok(changes
        .into_iter()
        .filter_map(|c| {
            let f = facts.get(&c.record_id)?;
            let &(device_id, seq) = records.get(&c.record_id)?;
            let change = c
                .kind
                .parse::<bangfu_shared::visit::FamilyChangeKind>()
                .map_or(c.kind.clone(), |k| k.label_zh().to_string());
            Some(DeviceAnomaly {
                device_id,
                helper_id: f.helper_id,
                kind: "voided_with_changes".into(),
                seq,
                seq_to: None,
                detail: format!(
                    "record {seq} (the visit of {} to household {}) was voided after the \
                     office accepted its family change `{change} {}` (change {}): the \
                     household's members still carry it",
                    f.visit_date, f.household_id, c.name, c.id
                ),
                detected_at: c.decided_at.unwrap_or(f.received_at),
                household_id: Some(f.household_id),
                visit_date: Some(f.visit_date),
            })
        })
        .collect())
}

/// `SELECT id FROM households` in the caller's scope (optionally one town of it).
async fn homes_in_scope(
    db: &impl ConnectionTrait,
    caller: &Caller,
    town: Option<i64>,
) -> ApiResult<SelectStatement> {
    caller.require_office("view sync anomalies and reviews")?;
    let mut cond = caller.scope().households();
    if let Some(t) = town {
        // A town outside the scope is not found, as in the reports: an empty list would
        // read as "nothing to review" for a mistyped id.
        super::jurisdictions::town_in_scope(db, caller, t).await?;
        cond = cond.add(household::Column::TownId.eq(t));
    }
    Ok(Query::select()
        .column(household::Column::Id)
        .from(household::Entity)
        .cond_where(cond)
        .to_owned())
}

/// `SELECT helper_id FROM pairing WHERE household_id IN (homes)`: any pairing, past or
/// present, since a helper's device history outlives the pairing.
fn helpers_of(homes: SelectStatement) -> SelectStatement {
    Query::select()
        .column(pairing::Column::HelperId)
        .from(pairing::Entity)
        .and_where(pairing::Column::HouseholdId.in_subquery(homes))
        .to_owned()
}

/// The standing visits (neither voided nor corrected since) of the households `homes`
/// that the office should check, one line each: entered days late (补录, they count)
/// or using a photo or signature image of another visit (照片重复使用, they do not).
/// Shown only one household at a time in the drill-down before (QA s29b J5).
async fn flagged_visits(
    db: &impl ConnectionTrait,
    homes: SelectStatement,
) -> ApiResult<Vec<DeviceAnomaly>> {
    let late = Query::select()
        .column(record::Column::Id)
        .from(record::Entity)
        .and_where(record::Column::HouseholdId.in_subquery(homes.clone()))
        .and_where(record::Column::Flags.like("%entered_late%"))
        .to_owned();
    let facts = visit_fact::Entity::find()
        .filter(visit_fact::Column::HouseholdId.in_subquery(homes))
        .filter(visit_fact::Column::Voided.eq(false))
        .filter(visit_fact::Column::Superseded.eq(false))
        .filter(
            Condition::any()
                .add(visit_fact::Column::PhotoReused.eq(true))
                .add(visit_fact::Column::RecordId.in_subquery(late)),
        )
        .order_by_asc(visit_fact::Column::ReceivedAt)
        .all(db)
        .await?;
    let ids: Vec<String> = facts.iter().map(|f| f.record_id.clone()).collect();
    // The stored mark may be stale (the visit that used the photo first since voided):
    // judged now, as the pull does.
    let reused = super::facts::photo_reused(db, &ids).await?;
    let mut records = std::collections::HashMap::new();
    for chunk in ids.chunks(1000) {
        for r in record::Entity::find()
            .filter(record::Column::Id.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            records.insert(r.id.clone(), r);
        }
    }
    let mut out = Vec::new();
    for f in facts {
        let Some(r) = records.get(&f.record_id) else {
            continue;
        };
        let late = r.flags.split(',').any(|x| x.trim() == "entered_late");
        let kinds = [
            (late, "entered_late", "entered days after the visit"),
            (
                reused.contains(&f.record_id),
                "photo_reused",
                "a photo or signature image of it was used first by another visit",
            ),
        ];
        for (_, kind, what) in kinds.into_iter().filter(|(on, ..)| *on) {
            out.push(DeviceAnomaly {
                device_id: r.device_id,
                helper_id: f.helper_id,
                kind: kind.into(),
                seq: r.device_seq,
                seq_to: None,
                detail: format!(
                    "record {} (the visit of {} to household {}): {what}",
                    r.device_seq, f.visit_date, f.household_id
                ),
                detected_at: f.received_at,
                household_id: Some(f.household_id),
                visit_date: Some(f.visit_date),
            });
        }
    }
    Ok(out)
}

/// One `gap` per run of missing numbers before a stored record of the helpers' devices:
/// the database pairs each stored number with the device's previous one (`LAG`) and
/// returns only the pairs with a hole between them, never one row per number (sequence
/// numbers are the device's to choose, up to 2^53−1).
async fn gaps(
    db: &impl ConnectionTrait,
    helpers: SelectStatement,
) -> ApiResult<Vec<DeviceAnomaly>> {
    let q = gaps_query(helpers);
    let stmt = db.get_database_backend().build(&q);
    let mut out = Vec::new();
    // Columns by position, as `gaps_query` selects them.
    for row in db.query_all_raw(stmt).await? {
        let (device, helper, seq) = (
            row.try_get_by_index::<i64>(0)?,
            row.try_get_by_index::<i64>(1)?,
            row.try_get_by_index::<i64>(2)?,
        );
        let prev = row.try_get_by_index::<Option<i64>>(3)?.unwrap_or(0);
        out.extend(gap(device, helper, prev, seq));
    }
    Ok(out)
}

/// `SELECT device_id, author_helper_id, device_seq, prev FROM (… LAG(device_seq) OVER
/// (PARTITION BY device_id ORDER BY device_seq) AS prev …) WHERE` a number is missing
/// before `device_seq`. The difference, not `prev + 1`, keeps PostgreSQL's bigint
/// arithmetic clear of overflow.
fn gaps_query(helpers: SelectStatement) -> SelectStatement {
    let inner = Query::select()
        .column(record::Column::DeviceId)
        .column(record::Column::AuthorHelperId)
        .column(record::Column::DeviceSeq)
        .expr_window_as(
            Func::cust("LAG").arg(Expr::col(record::Column::DeviceSeq)),
            WindowStatement::partition_by(record::Column::DeviceId)
                .order_by(record::Column::DeviceSeq, Order::Asc)
                .to_owned(),
            Alias::new("prev"),
        )
        .from(record::Entity)
        .and_where(record::Column::AuthorHelperId.in_subquery(helpers))
        .to_owned();
    let s = |name: &str| Expr::col((Alias::new("s"), Alias::new(name)));
    Query::select()
        .expr(s("device_id"))
        .expr(s("author_helper_id"))
        .expr(s("device_seq"))
        .expr(s("prev"))
        .from_subquery(inner, Alias::new("s"))
        .cond_where(
            Condition::any()
                .add(s("prev").is_null().and(s("device_seq").gt(1)))
                .add(s("device_seq").sub(s("prev")).gt(1)),
        )
        .order_by((Alias::new("s"), Alias::new("device_id")), Order::Asc)
        .order_by((Alias::new("s"), Alias::new("device_seq")), Order::Asc)
        .to_owned()
}

/// Which of the refused numbers among `anomalies` a stored record now holds, for
/// [`refusals::settle`]: one query for the (few) refused devices, not a read of every
/// stored number.
async fn stored_of_refused(
    db: &impl ConnectionTrait,
    anomalies: &[DeviceAnomaly],
) -> ApiResult<HashSet<(i64, i64)>> {
    let refused: BTreeSet<(i64, i64)> = anomalies
        .iter()
        .filter(|a| a.kind == refusals::REFUSED)
        .map(|a| (a.device_id, a.seq))
        .collect();
    let mut stored = HashSet::new();
    let pairs: Vec<(i64, i64)> = refused.iter().copied().collect();
    for chunk in pairs.chunks(crate::db::IN_CHUNK) {
        let devices: BTreeSet<i64> = chunk.iter().map(|p| p.0).collect();
        let seqs: BTreeSet<i64> = chunk.iter().map(|p| p.1).collect();
        let found: Vec<(i64, i64)> = record::Entity::find()
            .select_only()
            .column(record::Column::DeviceId)
            .column(record::Column::DeviceSeq)
            .filter(record::Column::DeviceId.is_in(devices))
            .filter(record::Column::DeviceSeq.is_in(seqs))
            .into_tuple()
            .all(db)
            .await?;
        stored.extend(found.into_iter().filter(|p| refused.contains(p)));
    }
    Ok(stored)
}

/// The `gap` anomaly between two consecutive stored sequence numbers of a device, if
/// any number lies strictly between them.
fn gap(device: i64, helper: i64, prev: i64, seq: i64) -> Option<DeviceAnomaly> {
    let (first, last) = (prev.checked_add(1)?, seq.checked_sub(1)?);
    if first > last {
        return None;
    }
    let detail = if first == last {
        format!("record {first} of this device has not arrived")
    } else {
        let count = i128::from(last) - i128::from(first) + 1;
        format!("records {first} to {last} of this device ({count}) have not arrived")
    };
    Some(DeviceAnomaly {
        device_id: device,
        helper_id: helper,
        kind: "gap".into(),
        seq: first,
        seq_to: Some(last),
        detail,
        detected_at: super::now(),
        household_id: None,
        visit_date: None,
    })
}

/// What the printed anomaly list names beside the ids of the JSON: helpers with their
/// phones, device labels, household heads and towns.
#[derive(Default)]
struct Names {
    helpers: HashMap<i64, (String, String)>,
    labels: HashMap<i64, String>,
    /// Household → (head, town).
    households: HashMap<i64, (String, i64)>,
    /// Helper → the towns of the households they are or were paired with.
    helper_towns: HashMap<i64, BTreeSet<i64>>,
    towns: HashMap<i64, String>,
}

impl Names {
    async fn of(db: &impl ConnectionTrait, list: &[DeviceAnomaly]) -> ApiResult<Names> {
        use crate::entities::{device, helper, jurisdiction};
        let mut n = Names::default();
        let helper_ids: Vec<i64> = unique(list.iter().map(|a| a.helper_id));
        for chunk in helper_ids.chunks(1000) {
            for h in helper::Entity::find()
                .filter(helper::Column::Id.is_in(chunk.to_vec()))
                .all(db)
                .await?
            {
                n.helpers.insert(h.id, (h.name, h.phone));
            }
        }
        for chunk in unique(list.iter().map(|a| a.device_id)).chunks(1000) {
            for d in device::Entity::find()
                .filter(device::Column::Id.is_in(chunk.to_vec()))
                .all(db)
                .await?
            {
                n.labels.insert(d.id, d.label);
            }
        }
        let mut homes: BTreeSet<i64> = list.iter().filter_map(|a| a.household_id).collect();
        let mut paired: Vec<(i64, i64)> = Vec::new();
        for chunk in helper_ids.chunks(1000) {
            for p in pairing::Entity::find()
                .filter(pairing::Column::HelperId.is_in(chunk.to_vec()))
                .all(db)
                .await?
            {
                homes.insert(p.household_id);
                paired.push((p.helper_id, p.household_id));
            }
        }
        for chunk in homes.into_iter().collect::<Vec<_>>().chunks(1000) {
            for h in household::Entity::find()
                .filter(household::Column::Id.is_in(chunk.to_vec()))
                .all(db)
                .await?
            {
                n.households.insert(h.id, (h.head_name, h.town_id));
            }
        }
        for (helper, home) in paired {
            if let Some((_, town)) = n.households.get(&home) {
                n.helper_towns.entry(helper).or_default().insert(*town);
            }
        }
        let towns = unique(n.households.values().map(|(_, town)| *town));
        for chunk in towns.chunks(1000) {
            for j in jurisdiction::Entity::find()
                .filter(jurisdiction::Column::Id.is_in(chunk.to_vec()))
                .all(db)
                .await?
            {
                n.towns.insert(j.id, j.name);
            }
        }
        Ok(n)
    }

    /// The town of the anomaly: its household's, else those of its helper's households.
    fn town_of(&self, a: &DeviceAnomaly) -> String {
        let ids: Vec<i64> = match a.household_id.and_then(|h| self.households.get(&h)) {
            Some((_, town)) => vec![*town],
            None => self
                .helper_towns
                .get(&a.helper_id)
                .map(|t| t.iter().copied().collect())
                .unwrap_or_default(),
        };
        let names: Vec<&str> = ids
            .iter()
            .filter_map(|id| self.towns.get(id).map(String::as_str))
            .collect();
        names.join("、")
    }
}

/// The distinct values of `ids`, in order.
fn unique(ids: impl Iterator<Item = i64>) -> Vec<i64> {
    ids.collect::<BTreeSet<i64>>().into_iter().collect()
}

/// The anomaly list as the town office prints it: CSV with a byte-order mark and
/// Chinese headers and text, one line per anomaly, by helper, device and number, each
/// naming the helper and their phone (the JSON carries only ids, which an office
/// reading a printout cannot look up), and the town, by which a county office hands
/// the lines out (QA s29c K15).
pub async fn to_csv(db: &impl ConnectionTrait, list: &[DeviceAnomaly]) -> ApiResult<Vec<u8>> {
    use crate::ledger::formula::inert;
    let names = Names::of(db, list).await?;
    let unknown = (String::new(), String::new());
    let mut rows: Vec<&DeviceAnomaly> = list.iter().collect();
    rows.sort_by_key(|a| {
        let name = names.helpers.get(&a.helper_id).map_or("", |h| h.0.as_str());
        (name, a.helper_id, a.device_id, a.seq)
    });
    let mut out = Vec::from("\u{feff}".as_bytes());
    {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut out);
        let io = |e: csv::Error| crate::error::ApiError::Internal(e.to_string());
        w.write_record([
            "乡镇",
            "帮扶责任人",
            "联系电话",
            "设备",
            "类型",
            "记录序号",
            "贫困户",
            "说明",
            "发现时间(北京时间)",
        ])
        .map_err(io)?;
        for a in rows {
            let (name, phone) = names.helpers.get(&a.helper_id).unwrap_or(&unknown);
            let device = match names.labels.get(&a.device_id).filter(|l| !l.is_empty()) {
                Some(label) => format!("{}（{label}）", a.device_id),
                None => a.device_id.to_string(),
            };
            let head = a
                .household_id
                .and_then(|h| names.households.get(&h))
                .map_or("", |(head, _)| head.as_str());
            let found = (a.detected_at + chrono::Duration::hours(8))
                .format("%Y-%m-%d %H:%M")
                .to_string();
            // Names and labels are as a ledger or a device gave them: made inert.
            w.write_record(
                [
                    names.town_of(a).as_str(),
                    name.as_str(),
                    phone.as_str(),
                    device.as_str(),
                    a.kind_zh(),
                    a.seq_text().as_str(),
                    head,
                    a.detail_zh().as_str(),
                    found.as_str(),
                ]
                .map(|cell| inert(cell).into_owned()),
            )
            .map_err(io)?;
        }
        w.flush()
            .map_err(|e| crate::error::ApiError::Internal(e.to_string()))?;
    }
    Ok(out)
}
