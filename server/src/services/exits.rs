//! A household leaves pairing and comes back: an office files an exit from a day (its
//! pairings end then, its status becomes 已脱贫), may cancel one whose day is still to
//! come, and brings a household that left back (返贫).
//!
//! Every exit is a row of its own, with what each pairing it ended said before
//! (`household_exits`, `household_exit_pairings`). Why: filing an exit overwrites the
//! pairings' ends and reasons; only with the prior state kept can a mistaken exit be
//! withdrawn exactly, while the filing and the withdrawal both stay on record.

use bangfu_shared::api::{ExitCancel, ExitDto, HouseholdDetail, HouseholdExit, HouseholdRejoin};
use bangfu_shared::{HouseholdStatus, PairingRole};
use chrono::NaiveDate;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::households::{detail, in_scope};
use super::{Caller, audit};
use crate::entities::{account, household, household_exit, household_exit_pairing, pairing};
use crate::error::{ApiError, ApiResult};
use std::collections::HashMap;

/// An office's reason for an exit, a cancel or a rejoin, trimmed: 1 to
/// [`MAX_EXIT_REASON`] characters of text that says something (not only spaces or
/// invisible characters) under the rules of every free text ([`super::check_free_text`]:
/// no control characters, no bidi overrides), else a 422 saying what it should give.
pub(super) fn checked_reason<'a>(reason: &'a str, why: &str) -> ApiResult<&'a str> {
    let reason = reason.trim();
    let invisible = |c: char| {
        c.is_whitespace() || matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}')
    };
    // A reason is one line: it is printed in lists and the audit log line by line
    // (QA s31c T6).
    if reason
        .chars()
        .any(|c| matches!(c, '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}'))
    {
        return Err(ApiError::Invalid(
            "reason: holds a line break or a tab; give it on one line".into(),
        ));
    }
    if reason.chars().all(invisible) {
        return Err(ApiError::Invalid(format!(
            "reason: give why the household {why} (1 to {MAX_EXIT_REASON} characters)"
        )));
    }
    super::check_free_text(reason, "reason", MAX_EXIT_REASON)?;
    Ok(reason)
}

/// Longest reason an office may give for a household's exit, in characters.
const MAX_EXIT_REASON: usize = 200;

/// Takes a household out of pairing from `exit.effective_from` (see [`HouseholdExit`]):
/// its open pairings end that day, its status becomes 已脱贫, devices learn it at their
/// next pull, and a later import no longer counts its helpers as taken by it. Only an
/// office whose scope holds the household may; a helper may not.
pub async fn exit(
    db: &DatabaseConnection,
    caller: &Caller,
    id: i64,
    exit: &HouseholdExit,
) -> ApiResult<HouseholdDetail> {
    caller.require_office("take a household out of pairing")?;
    let reason = checked_reason(&exit.reason, "leaves pairing")?;
    let from = exit.effective_from;
    check_exit_day(from)?;
    in_scope(db, caller, id).await?;
    let (_gate, txn) = crate::db::begin_write(db).await?;
    let row = locked(&txn, id).await?;
    let holding = holding_pairings(&txn, id, from).await?;
    if holding.is_empty() {
        if row.status == HouseholdStatus::Exited.code() {
            return Err(already_exited(&txn, id, from).await?);
        }
        return Err(ApiError::Conflict(
            "the household has no pairing to end: it is not paired (a household brought \
             back is paired by the next ledger import)"
                .into(),
        ));
    }
    let filed = record_exit(&txn, caller, &row, from, reason, &holding).await?;
    end_pairings(&txn, id, from, reason).await?;
    set_status(&txn, id, HouseholdStatus::Exited.code()).await?;
    super::sync::bump_ledger(&txn, row.county_id).await?;
    audit::record(
        &txn,
        caller,
        audit::Entry::new(
            "household.exit",
            "household",
            Some(id),
            serde_json::json!({
                "exit_id": filed,
                "effective_from": from,
                "reason": reason,
                "pairings_ended": holding.len(),
            }),
        ),
    )
    .await?;
    answer_under_lock(db, txn, caller, id).await
}

/// An exit's first day is today or later, at most a year ahead. Never earlier: the
/// windows that ended before today have their verdict, and an exit dated back would
/// leave them judged for no one (a miss erased by filing an exit and bringing the
/// household back). A household that left earlier is taken out from today.
fn check_exit_day(from: NaiveDate) -> ApiResult<()> {
    let today = super::today();
    // A calendar year: 2026-12-05 may file an exit for 2027-12-05, not 12-06 (QA s26c F7).
    let latest = today
        .checked_add_months(chrono::Months::new(12))
        .unwrap_or(today);
    if from < today {
        return Err(ApiError::BadRequest(format!(
            "effective_from: {from} is before today ({today}): an exit takes effect today \
             or later, so the visit windows already ended keep their verdict"
        )));
    }
    if from > latest {
        return Err(ApiError::BadRequest(format!(
            "effective_from: {from} is more than a year ahead (at most {latest})"
        )));
    }
    Ok(())
}

/// The household's pairings still holding on `from` (a pairing due to start on or after
/// it never holds, and is ended where it starts).
async fn holding_pairings(
    db: &impl ConnectionTrait,
    household_id: i64,
    from: NaiveDate,
) -> ApiResult<Vec<pairing::Model>> {
    Ok(pairing::Entity::find()
        .filter(holding(household_id, from))
        .order_by_asc(pairing::Column::Id)
        .all(db)
        .await?)
}

fn holding(household_id: i64, from: NaiveDate) -> Condition {
    Condition::all()
        .add(pairing::Column::HouseholdId.eq(household_id))
        .add(
            Condition::any()
                .add(pairing::Column::ValidTo.is_null())
                .add(pairing::Column::ValidTo.gt(from)),
        )
}

/// Files the exit's row and, for each pairing it ends, what the pairing said before and
/// the end the exit gives it; returns the exit's id.
async fn record_exit(
    db: &impl ConnectionTrait,
    caller: &Caller,
    row: &household::Model,
    from: NaiveDate,
    reason: &str,
    holding: &[pairing::Model],
) -> ApiResult<i64> {
    let filed = household_exit::ActiveModel {
        household_id: Set(row.id),
        effective_from: Set(from),
        reason: Set(reason.to_string()),
        prior_status: Set(row.status.clone()),
        filed_by: Set(caller.account_id),
        filed_at: Set(super::now_seconds()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    if !holding.is_empty() {
        let priors = holding.iter().map(|p| household_exit_pairing::ActiveModel {
            exit_id: Set(filed.id),
            pairing_id: Set(p.id),
            prior_valid_to: Set(p.valid_to),
            prior_reason: Set(p.reason.clone()),
            set_valid_to: Set(from.max(p.valid_from)),
        });
        household_exit_pairing::Entity::insert_many(priors)
            .exec_without_returning(db)
            .await?;
    }
    Ok(filed.id)
}

/// Ends the household's pairings still holding on `from`: one that has begun ends on
/// `from` with the exit's reason, one due to begin on or after it ends where it begins.
async fn end_pairings(
    db: &impl ConnectionTrait,
    household_id: i64,
    from: NaiveDate,
    reason: &str,
) -> ApiResult<()> {
    pairing::Entity::update_many()
        .col_expr(
            pairing::Column::ValidTo,
            Expr::col(pairing::Column::ValidFrom),
        )
        .filter(holding(household_id, from).add(pairing::Column::ValidFrom.gte(from)))
        .exec(db)
        .await?;
    pairing::Entity::update_many()
        .col_expr(pairing::Column::ValidTo, Expr::value(Some(from)))
        .col_expr(
            pairing::Column::Reason,
            Expr::value(Some(reason.to_string())),
        )
        .filter(holding(household_id, from).add(pairing::Column::ValidFrom.lt(from)))
        .exec(db)
        .await?;
    Ok(())
}

async fn set_status(db: &impl ConnectionTrait, id: i64, status: &str) -> ApiResult<()> {
    household::Entity::update_many()
        .col_expr(household::Column::Status, Expr::value(status))
        .col_expr(household::Column::UpdatedAt, Expr::value(super::now()))
        .filter(household::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// The refusal of an exit for a household whose pairings all end on or before `from`:
/// it has left, or an exit filed for a later day than today already ends them earlier
/// (such an exit may be moved earlier, or cancelled, never moved later: its day is what
/// the office said).
async fn already_exited(
    db: &impl ConnectionTrait,
    id: i64,
    from: NaiveDate,
) -> ApiResult<ApiError> {
    let filed: Option<NaiveDate> = filed_exit(db, id).await?;
    Ok(ApiError::Conflict(match filed {
        Some(day) if day == from => format!("an exit from {day} is already filed"),
        Some(day) => format!(
            "an exit from {day} is already filed: it can be moved earlier, not later \
             than {day} ({from} asked); cancel it first to file another day"
        ),
        None => "the household has already left pairing".into(),
    }))
}

/// The day an exit filed for a day after today takes effect, if there is one: the
/// latest end of the household's pairings still to come.
async fn filed_exit(db: &impl ConnectionTrait, id: i64) -> ApiResult<Option<NaiveDate>> {
    Ok(pairing::Entity::find()
        .select_only()
        .column(pairing::Column::ValidTo)
        .filter(pairing::Column::HouseholdId.eq(id))
        .filter(pairing::Column::ValidTo.gt(super::today()))
        .order_by_desc(pairing::Column::ValidTo)
        .into_tuple::<Option<NaiveDate>>()
        .one(db)
        .await?
        .flatten())
}

/// Withdraws the household's latest exit while its day is still to come: each pairing
/// it ended gets back the end and reason it had, the household its prior status, and
/// the exit stays on record as cancelled. An exit in effect is not undone (its days
/// may already count in attendance): [`rejoin`] brings the household back instead. If
/// a later change (a ledger import) has moved one of its pairings since, nothing is
/// changed and the answer says so: the office files that change again.
pub async fn cancel(
    db: &DatabaseConnection,
    caller: &Caller,
    id: i64,
    cancel: &ExitCancel,
) -> ApiResult<HouseholdDetail> {
    caller.require_office("cancel a household's exit")?;
    let reason = checked_reason(&cancel.reason, "stays in pairing")?;
    in_scope(db, caller, id).await?;
    let (_gate, txn) = crate::db::begin_write(db).await?;
    let row = locked(&txn, id).await?;
    let Some(filed) = latest_standing_exit(&txn, id).await? else {
        return Err(no_exit_to_cancel(&txn, id).await?);
    };
    // Checked first: a household brought back has no exit to withdraw, whatever its day.
    if row.status != HouseholdStatus::Exited.code() {
        return Err(ApiError::Conflict(
            "the household was brought back (rejoin) since its exit: there is no exit to \
             cancel"
                .into(),
        ));
    }
    // On its first day no window has yet been judged without the household's pairings
    // (those that ended yesterday were held in full), so it may still be withdrawn.
    if filed.effective_from < super::today() {
        return Err(ApiError::Conflict(format!(
            "the exit from {} has taken effect: bring the household back with rejoin",
            filed.effective_from
        )));
    }
    let restored = restore_pairings(&txn, filed.id).await?;
    check_limits(&txn, &row, filed.effective_from, &restored).await?;
    set_status(&txn, id, &filed.prior_status).await?;
    household_exit::Entity::update_many()
        .col_expr(
            household_exit::Column::CancelledAt,
            Expr::value(Some(super::now_seconds())),
        )
        .col_expr(
            household_exit::Column::CancelledBy,
            Expr::value(caller.account_id),
        )
        .col_expr(
            household_exit::Column::CancelReason,
            Expr::value(Some(reason.to_string())),
        )
        .filter(household_exit::Column::Id.eq(filed.id))
        .exec(&txn)
        .await?;
    super::sync::bump_ledger(&txn, row.county_id).await?;
    audit::record(
        &txn,
        caller,
        audit::Entry::new(
            "household.exit_cancel",
            "household",
            Some(id),
            serde_json::json!({
                "exit_id": filed.id,
                "effective_from": filed.effective_from,
                "reason": reason,
            }),
        ),
    )
    .await?;
    answer_under_lock(db, txn, caller, id).await
}

/// The household's row, read again inside the write transaction and locked there (on
/// PostgreSQL `FOR UPDATE`; on SQLite the transaction holds the database's write lock
/// already), so an exit, its cancel and a rejoin of one household take turns and each
/// judges the household as the one before it left it. Read before the transaction (QA
/// s23c F10), a cancel that waited for an exit being filed judged the exit it then found
/// by the household's status from before it, and answered 409 "brought back (rejoin)
/// since its exit"; an exit filed while a cancel ran recorded the status from before the
/// cancel as its prior one.
pub(super) async fn locked(db: &impl ConnectionTrait, id: i64) -> ApiResult<household::Model> {
    household::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("household"))
}

/// The refusal of a cancel for a household with no standing exit, saying what became of
/// its latest one: cancelled already (by another office, or a cancel sent twice), or
/// undone by a rejoin; or that it never had one.
async fn no_exit_to_cancel(db: &impl ConnectionTrait, household_id: i64) -> ApiResult<ApiError> {
    let latest = household_exit::Entity::find()
        .filter(household_exit::Column::HouseholdId.eq(household_id))
        .order_by_desc(household_exit::Column::Id)
        .one(db)
        .await?;
    Ok(ApiError::Conflict(match latest {
        Some(e) if e.cancelled_at.is_some() => format!(
            "the exit from {} was already cancelled (at {}): there is no exit to cancel",
            e.effective_from,
            e.cancelled_at
                .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default()
        ),
        _ => "the household has no exit to cancel".into(),
    }))
}

/// The household's latest exit not cancelled, if any.
async fn latest_standing_exit(
    db: &impl ConnectionTrait,
    household_id: i64,
) -> ApiResult<Option<household_exit::Model>> {
    Ok(household_exit::Entity::find()
        .filter(household_exit::Column::HouseholdId.eq(household_id))
        .filter(household_exit::Column::CancelledAt.is_null())
        .order_by_desc(household_exit::Column::Id)
        .one(db)
        .await?)
}

/// Gives each pairing the exit ended its prior end and reason, each only while it still
/// ends where the exit put it; if one was changed since, the transaction is refused.
/// Returns the pairings restored.
async fn restore_pairings(db: &impl ConnectionTrait, exit_id: i64) -> ApiResult<Vec<i64>> {
    let priors = household_exit_pairing::Entity::find()
        .filter(household_exit_pairing::Column::ExitId.eq(exit_id))
        .all(db)
        .await?;
    let ids = priors.iter().map(|p| p.pairing_id).collect();
    for p in priors {
        let restored = pairing::Entity::update_many()
            .col_expr(pairing::Column::ValidTo, Expr::value(p.prior_valid_to))
            .col_expr(pairing::Column::Reason, Expr::value(p.prior_reason.clone()))
            .filter(pairing::Column::Id.eq(p.pairing_id))
            .filter(pairing::Column::ValidTo.eq(p.set_valid_to))
            .exec(db)
            .await?;
        if restored.rows_affected != 1 {
            return Err(ApiError::Conflict(format!(
                "pairing {} has changed since the exit was filed (a ledger import?): \
                 nothing was cancelled; file the household's pairings through the ledger",
                p.pairing_id
            )));
        }
    }
    Ok(ids)
}

/// Refuses a cancel that would give a helper more households than the policy allows:
/// while the exit stood, its helpers were free from its day, and an import may have
/// given them another household since (一帮一; a second helper at most five).
pub(super) async fn check_limits(
    db: &impl ConnectionTrait,
    row: &household::Model,
    from: NaiveDate,
    restored: &[i64],
) -> ApiResult<()> {
    let policy = super::policy::effective(db, row.county_id, Some(row.town_id), from).await?;
    let back = pairing::Entity::find()
        .filter(pairing::Column::Id.is_in(restored.to_vec()))
        .filter(pairing::holding_after(from))
        .all(db)
        .await?;
    for p in back {
        let role: PairingRole = p
            .role
            .parse()
            .map_err(|e: bangfu_shared::SharedError| ApiError::Internal(e.to_string()))?;
        let max = match role {
            PairingRole::First => policy.pairing.max_households_first,
            PairingRole::Second => policy.pairing.max_households_second,
        };
        let households: Vec<i64> = pairing::Entity::find()
            .select_only()
            .column(pairing::Column::HouseholdId)
            .distinct()
            .filter(pairing::Column::HelperId.eq(p.helper_id))
            .filter(pairing::Column::Role.eq(p.role.clone()))
            .filter(pairing::holding_after(from))
            .into_tuple()
            .all(db)
            .await?;
        if households.len() > max as usize {
            // Named as the office knows helpers, by name and phone (QA s31c T5).
            let who = crate::entities::helper::Entity::find_by_id(p.helper_id)
                .one(db)
                .await?
                .map_or_else(
                    || format!("helper {}", p.helper_id),
                    |h| format!("{} ({})", h.name, h.phone),
                );
            return Err(ApiError::Conflict(format!(
                "{who} would be paired as {} with {} households, over the policy's \
                 {max}: a ledger import gave the helper another household from {from}; \
                 change that pairing first",
                role.label_zh(),
                households.len()
            )));
        }
    }
    Ok(())
}

/// Every exit filed for the household, newest first, cancelled ones included; out of
/// scope is not found. Helpers may read their own households' exits, without the office
/// accounts that filed, withdrew or undid them.
pub async fn list(db: &impl ConnectionTrait, caller: &Caller, id: i64) -> ApiResult<Vec<ExitDto>> {
    in_scope(db, caller, id).await?;
    let rows = household_exit::Entity::find()
        .filter(household_exit::Column::HouseholdId.eq(id))
        .order_by_desc(household_exit::Column::Id)
        .all(db)
        .await?;
    let mut exits = dtos(db, rows).await?;
    if caller.role.is_helper() {
        // A helper learns when and why their household leaves, not which office
        // accounts filed, withdrew or undid it: those are the offices' own to know.
        for e in &mut exits {
            e.filed_by = None;
            e.cancelled_by = None;
            e.rejoined_by = None;
        }
    }
    Ok(exits)
}

/// What a household's standing exit says on the day asked: the exit's first day, and
/// the status the household keeps until then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingExit {
    pub on: NaiveDate,
    /// The status before the exit (before the first of a chain of exits moved earlier).
    pub before: HouseholdStatus,
}

impl StandingExit {
    /// The household's status on `day`: 已脱贫 from the exit's day, the status it had
    /// before it until then (it is still paired and visited).
    pub fn status_on(&self, day: NaiveDate) -> HouseholdStatus {
        if day < self.on {
            self.before
        } else {
            HouseholdStatus::Exited
        }
    }
}

/// The standing exit of each of `exited` (households whose stored status is 已脱贫):
/// their latest exit neither cancelled nor ended by a return. An exit moved earlier was filed while the household
/// already read 已脱贫, so the status before it is the one before the exit it moved.
pub async fn standing(
    db: &impl ConnectionTrait,
    exited: &[i64],
) -> ApiResult<HashMap<i64, StandingExit>> {
    let mut out: HashMap<i64, StandingExit> = HashMap::new();
    for chunk in exited.chunks(1000) {
        let rows = household_exit::Entity::find()
            .filter(household_exit::Column::HouseholdId.is_in(chunk.to_vec()))
            .filter(household_exit::Column::CancelledAt.is_null())
            .filter(household_exit::Column::RejoinedAt.is_null())
            .order_by_desc(household_exit::Column::Id)
            .all(db)
            .await?;
        let mut settled: std::collections::HashSet<i64> = std::collections::HashSet::new();
        for e in rows {
            if settled.contains(&e.household_id) {
                continue;
            }
            let before: Option<HouseholdStatus> = e.prior_status.parse().ok();
            let entry = out.entry(e.household_id).or_insert(StandingExit {
                on: e.effective_from,
                before: HouseholdStatus::Exited,
            });
            if let Some(b) = before.filter(|b| *b != HouseholdStatus::Exited) {
                entry.before = b;
                settled.insert(e.household_id);
            }
        }
    }
    Ok(out)
}

/// The days the exits (not withdrawn) of the households matching `households` (a
/// condition on `household_exits`) took effect, as (household, day): a pairing that
/// ends on one of them was ended by the exit, not by a change of helper, and a window
/// the exit cut may still be its helper's (the policy's `exit_cuts`), if the exit was
/// filed in time: each with the day (China time) it was filed.
pub async fn exit_days(db: &impl ConnectionTrait, households: Condition) -> ApiResult<ExitDays> {
    let rows: Vec<(i64, NaiveDate, chrono::DateTime<chrono::Utc>)> = household_exit::Entity::find()
        .select_only()
        .column(household_exit::Column::HouseholdId)
        .column(household_exit::Column::EffectiveFrom)
        .column(household_exit::Column::FiledAt)
        .filter(households)
        .filter(household_exit::Column::CancelledAt.is_null())
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(h, day, filed)| ((h, day), super::china_day(filed)))
        .collect())
}

/// Commits `txn` and answers with the household as one consistent state (QA s24c F2,
/// s24d F2: an answer read while another exit, cancel or rejoin committed between its
/// queries mixed the two). On PostgreSQL it is read inside the transaction, before the
/// row lock is let go. On SQLite the transaction runs on the writer's own connection,
/// which reads only what it writes (its decoder knows the columns it writes, not every
/// query's), and holds the write gate until its commit: the answer is read after the
/// commit with the gate taken again, so no write lands between its queries.
pub(super) async fn answer_under_lock(
    db: &DatabaseConnection,
    txn: crate::db::WriteTxn,
    caller: &Caller,
    id: i64,
) -> ApiResult<HouseholdDetail> {
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        let answer = detail(&txn, caller, id).await?;
        txn.commit().await?;
        return Ok(answer);
    }
    txn.commit().await?;
    let _gate = crate::db::write_gate(db).await;
    detail(db, caller, id).await
}

/// Exits by (household, effective day): the day each was filed.
pub type ExitDays = HashMap<(i64, NaiveDate), NaiveDate>;

/// The day (China time) each pairing was recorded, by (household, role, first day):
/// when a change of helper ending the pairing before it on that day was filed.
#[derive(Default)]
pub struct Successors(HashMap<(i64, String, NaiveDate), NaiveDate>);

impl Successors {
    /// From (household, role, first day, recorded at) of a set of pairings.
    pub fn of<'a>(
        pairings: impl IntoIterator<Item = (i64, &'a str, NaiveDate, chrono::DateTime<chrono::Utc>)>,
    ) -> Self {
        let mut out: HashMap<(i64, String, NaiveDate), NaiveDate> = HashMap::new();
        for (household, role, from, at) in pairings {
            let day = super::china_day(at);
            out.entry((household, role.to_string(), from))
                .and_modify(|d| *d = (*d).min(day))
                .or_insert(day);
        }
        Successors(out)
    }
}

/// The ends of pairings by (household, role, first day no longer paired): the helpers
/// whose pairing in the role ended that day. A pairing beginning that day with another
/// helper took the household over: a change of helper.
#[derive(Default)]
pub struct Handovers(HashMap<(i64, String, NaiveDate), Vec<i64>>);

impl Handovers {
    /// From (household, role, helper, first day, first day no longer paired) of a set of
    /// pairings; one that ended where it began never held and hands nothing over.
    pub fn of<'a>(
        pairings: impl IntoIterator<Item = (i64, &'a str, i64, NaiveDate, Option<NaiveDate>)>,
    ) -> Self {
        let mut out: HashMap<(i64, String, NaiveDate), Vec<i64>> = HashMap::new();
        for (household, role, helper, from, until) in pairings {
            if let Some(until) = until.filter(|u| *u > from) {
                out.entry((household, role.to_string(), until))
                    .or_default()
                    .push(helper);
            }
        }
        Handovers(out)
    }

    /// The day the start of `helper`'s pairing (household, role) from `from` was filed
    /// (`filed_on`), when it took the household over from another helper, or paired it
    /// for the first time dated back (filed after it began); `None` for the same helper
    /// paired again, whose pairing goes on, and for a first pairing filed in advance
    /// (see [`bangfu_shared::policy::ExitCuts::start_known_in_time`]). A first pairing
    /// dated back is known from its filing as a change is: a county's first import,
    /// dated from the day its pairings really began, charged every helper with the
    /// windows before it, which no one could have recorded (QA s29b J1).
    pub fn start_known_on(
        &self,
        (household, role, helper): (i64, &str, i64),
        (from, filed_on): (NaiveDate, NaiveDate),
    ) -> Option<NaiveDate> {
        match self.0.get(&(household, role.to_string(), from)) {
            Some(before) if before.iter().all(|h| *h == helper) => None,
            Some(_) => Some(filed_on),
            None => (filed_on > from).then_some(filed_on),
        }
    }
}

impl Handovers {
    /// Whether the pairing (household, role) from `from` took no household over: the
    /// household's first pairing in the role (or one after a gap), not a change of
    /// helper, as the reports name a late filing of it (QA s29c K11).
    pub fn is_first(&self, (household, role): (i64, &str), from: NaiveDate) -> bool {
        !self.0.contains_key(&(household, role.to_string(), from))
    }
}

/// The day (China time) the end `until` of a pairing (household, role) was filed: its
/// household's exit of that day, else the import that paired the next helper in the
/// role from that day. None while it holds, or for an end nothing dates (then
/// [`bangfu_shared::policy::ExitCuts::owes`] judges it as filed in time).
pub fn end_known_on(
    (household, role, until): (i64, &str, Option<NaiveDate>),
    exits: &ExitDays,
    successors: &Successors,
) -> Option<NaiveDate> {
    let until = until?;
    exits
        .get(&(household, until))
        .or_else(|| successors.0.get(&(household, role.to_string(), until)))
        .copied()
}

/// [`exit_days`] of the households `ids`, asked in chunks (a county's list is long).
pub async fn exit_days_of(db: &impl ConnectionTrait, ids: &[i64]) -> ApiResult<ExitDays> {
    let mut out = ExitDays::new();
    for chunk in ids.chunks(1000) {
        let of = Condition::all().add(household_exit::Column::HouseholdId.is_in(chunk.to_vec()));
        out.extend(exit_days(db, of).await?);
    }
    Ok(out)
}

/// Marks each window cut by its household's exit (one not cancelled whose day falls
/// inside it, after its first day) with that day: the town office reads it as the
/// household leaving, not a gap in its helpers to mend.
pub async fn mark_exit_cuts(
    db: &impl ConnectionTrait,
    windows: &mut [bangfu_shared::report::UnownedWindow],
) -> ApiResult<()> {
    let ids: Vec<i64> = windows.iter().map(|w| w.household_id).collect();
    let days = exit_days_of(db, &ids).await?;
    for w in windows {
        w.exit_on = days
            .keys()
            .filter(|(h, d)| *h == w.household_id && *d > w.start && *d <= w.end)
            .map(|(_, d)| *d)
            .min();
    }
    Ok(())
}

/// Households whose status on `day` is `status`, whatever their stored status says: a
/// household with an exit still to come counts under the status it keeps until then
/// (see [`StandingExit`]), not yet under 已脱贫.
pub fn status_is(status: HouseholdStatus, day: NaiveDate) -> Condition {
    use sea_orm::sea_query::Query;
    // Standing exits (neither cancelled nor ended by a return), in effect on `day` or
    // still to come. Moves only go earlier, so a household with one in effect is out of
    // pairing whatever exit it moved; one with only exits to come keeps the status
    // before the first of them (the only one filed while it was not yet 已脱贫).
    let standing = |in_effect: bool, prior: Option<HouseholdStatus>| {
        let mut q = Query::select()
            .column(household_exit::Column::HouseholdId)
            .from(household_exit::Entity)
            .and_where(household_exit::Column::CancelledAt.is_null())
            .and_where(household_exit::Column::RejoinedAt.is_null())
            .to_owned();
        q.and_where(if in_effect {
            household_exit::Column::EffectiveFrom.lte(day)
        } else {
            household_exit::Column::EffectiveFrom.gt(day)
        });
        if let Some(p) = prior {
            q.and_where(household_exit::Column::PriorStatus.eq(p.code()));
        }
        q
    };
    let stored = |s: HouseholdStatus| household::Column::Status.eq(s.code());
    if status == HouseholdStatus::Exited {
        Condition::all().add(stored(HouseholdStatus::Exited)).add(
            Condition::any()
                .add(household::Column::Id.in_subquery(standing(true, None)))
                .add(household::Column::Id.not_in_subquery(standing(false, None))),
        )
    } else {
        Condition::any().add(stored(status)).add(
            Condition::all()
                .add(stored(HouseholdStatus::Exited))
                .add(household::Column::Id.in_subquery(standing(false, Some(status))))
                .add(household::Column::Id.not_in_subquery(standing(true, None))),
        )
    }
}

/// Which exits an office lists across its town or county.
#[derive(Debug, Clone, Default)]
pub struct ExitFilter {
    /// Only this town (404 outside the caller's scope).
    pub town: Option<i64>,
    /// Only exits filed on or after this day (China time).
    pub since: Option<NaiveDate>,
}

/// Most exits one list answers, newest first.
pub const MAX_LISTED: u64 = 1000;

/// The exits filed for the households of the office's scope, newest first (at most
/// [`MAX_LISTED`]): what a county samples to re-check, and a town reviews.
pub async fn list_scope(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: &ExitFilter,
) -> ApiResult<Vec<ExitDto>> {
    caller.require_office("list household exits")?;
    let mut homes = sea_orm::sea_query::Query::select()
        .column(household::Column::Id)
        .from(household::Entity)
        .cond_where(caller.scope().households())
        .to_owned();
    if let Some(t) = filter.town {
        super::jurisdictions::town_in_scope(db, caller, t).await?;
        homes.and_where(household::Column::TownId.eq(t));
    }
    let mut query = household_exit::Entity::find()
        .filter(household_exit::Column::HouseholdId.in_subquery(homes));
    if let Some(day) = filter.since {
        query = query.filter(household_exit::Column::FiledAt.gte(super::china_day_start(day)));
    }
    let rows = query
        .order_by_desc(household_exit::Column::Id)
        .limit(MAX_LISTED)
        .all(db)
        .await?;
    dtos(db, rows).await
}

/// The rows as the API shows them, with their households' names and the accounts'.
async fn dtos(
    db: &impl ConnectionTrait,
    rows: Vec<household_exit::Model>,
) -> ApiResult<Vec<ExitDto>> {
    let household_ids: Vec<i64> = rows.iter().map(|e| e.household_id).collect();
    let account_ids: Vec<i64> = rows
        .iter()
        .flat_map(|e| [e.filed_by, e.cancelled_by, e.rejoined_by])
        .flatten()
        .collect();
    let names: HashMap<i64, String> = household::Entity::find()
        .select_only()
        .column(household::Column::Id)
        .column(household::Column::HeadName)
        .filter(household::Column::Id.is_in(household_ids))
        .into_tuple::<(i64, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let users: HashMap<i64, String> = account::Entity::find()
        .select_only()
        .column(account::Column::Id)
        .column(account::Column::Username)
        .filter(account::Column::Id.is_in(account_ids))
        .into_tuple::<(i64, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let user = |id: Option<i64>| id.and_then(|i| users.get(&i).cloned());
    let moved = moved_by(db, &rows).await?;
    Ok(rows
        .into_iter()
        .map(|e| ExitDto {
            id: e.id,
            household_id: e.household_id,
            head_name: names.get(&e.household_id).cloned().unwrap_or_default(),
            effective_from: e.effective_from,
            reason: e.reason,
            filed_at: e.filed_at,
            filed_by: user(e.filed_by),
            cancelled_at: e.cancelled_at,
            cancelled_by: user(e.cancelled_by),
            cancel_reason: e.cancel_reason,
            moved_by: moved.get(&e.id).copied(),
            rejoined_at: e.rejoined_at,
            rejoined_by: user(e.rejoined_by),
            rejoin_reason: e.rejoin_reason,
        })
        .collect())
}

/// For each of `rows` that a later exit moved earlier, that exit's id. Moving an exit
/// earlier files a new one while the household already reads 已脱贫 (its prior status
/// is 已脱贫): the next exit of the household not cancelled, filed so, moved it.
async fn moved_by(
    db: &impl ConnectionTrait,
    rows: &[household_exit::Model],
) -> ApiResult<HashMap<i64, i64>> {
    let households: std::collections::BTreeSet<i64> = rows.iter().map(|e| e.household_id).collect();
    let mut all: HashMap<i64, Vec<household_exit::Model>> = HashMap::new();
    let ids: Vec<i64> = households.into_iter().collect();
    for chunk in ids.chunks(1000) {
        for e in household_exit::Entity::find()
            .filter(household_exit::Column::HouseholdId.is_in(chunk.to_vec()))
            .filter(household_exit::Column::CancelledAt.is_null())
            .order_by_asc(household_exit::Column::Id)
            .all(db)
            .await?
        {
            all.entry(e.household_id).or_default().push(e);
        }
    }
    let mut out = HashMap::new();
    for exits in all.values() {
        for pair in exits.windows(2) {
            if let [earlier, later] = pair
                && later.prior_status == HouseholdStatus::Exited.code()
            {
                out.insert(earlier.id, later.id);
            }
        }
    }
    Ok(out)
}

/// Brings a household that left pairing back (返贫): its status becomes 返贫 and a
/// later ledger import that lists it pairs its helpers again (until then an import
/// leaves it out, so a stale spreadsheet row cannot undo an exit by itself). Only an
/// office whose scope holds the household may.
pub async fn rejoin(
    db: &DatabaseConnection,
    caller: &Caller,
    id: i64,
    rejoin: &HouseholdRejoin,
) -> ApiResult<HouseholdDetail> {
    caller.require_office("bring a household back into pairing")?;
    let reason = checked_reason(&rejoin.reason, "returns")?;
    in_scope(db, caller, id).await?;
    let (_gate, txn) = crate::db::begin_write(db).await?;
    let row = locked(&txn, id).await?;
    if row.status != HouseholdStatus::Exited.code() {
        return Err(ApiError::Conflict(
            "the household has not left pairing".into(),
        ));
    }
    // An exit set for a later day still ends its pairings then: bringing it back before
    // would leave it 返贫 with helpers that leave on that day.
    let pending: Option<NaiveDate> = filed_exit(&txn, id).await?;
    if let Some(day) = pending {
        return Err(ApiError::Conflict(format!(
            "its exit takes effect on {day}: cancel the exit, or bring it back from that \
             day on"
        )));
    }
    refuse_while_cancellable(&txn, id).await?;
    let flipped = household::Entity::update_many()
        .col_expr(
            household::Column::Status,
            Expr::value(HouseholdStatus::Returned.code()),
        )
        .col_expr(household::Column::UpdatedAt, Expr::value(super::now()))
        .filter(household::Column::Id.eq(id))
        .filter(household::Column::Status.eq(HouseholdStatus::Exited.code()))
        .exec(&txn)
        .await?;
    if flipped.rows_affected != 1 {
        return Err(ApiError::Conflict(
            "the household has not left pairing".into(),
        ));
    }
    let ended = mark_rejoined(&txn, caller, id, reason).await?;
    super::sync::bump_ledger(&txn, row.county_id).await?;
    audit::record(
        &txn,
        caller,
        audit::Entry::new(
            "household.rejoin",
            "household",
            Some(id),
            serde_json::json!({ "reason": reason, "exit_id": ended }),
        ),
    )
    .await?;
    answer_under_lock(db, txn, caller, id).await
}

/// s32d X6: on its first day an exit can still be withdrawn ([`cancel`]), which gives the
/// household its pairings back; a rejoin then would end them for good and leave it 返贫
/// with no helper until the next import. So the office is pointed to the cancel.
async fn refuse_while_cancellable(db: &impl ConnectionTrait, id: i64) -> ApiResult<()> {
    match latest_standing_exit(db, id).await? {
        Some(exit) if exit.rejoined_at.is_none() && exit.effective_from >= super::today() => {
            Err(ApiError::Conflict(format!(
                "its exit took effect today ({}) and can still be withdrawn: cancel the exit \
                 (POST /households/{id}/exit/cancel, or bangfu-server household cancel-exit), \
                 which gives its pairings back; a rejoin is for a household that left on an \
                 earlier day",
                exit.effective_from
            )))
        }
        _ => Ok(()),
    }
}

/// Records the return on the exits it ends, so the exit history shows the household
/// back, by whom and why: the one in effect, and any exit it moved earlier (still
/// standing, its day maybe still to come, but never to take effect now). Returns the
/// latest one's id. A household out of pairing from before exits were rows has none.
async fn mark_rejoined(
    db: &impl ConnectionTrait,
    caller: &Caller,
    household_id: i64,
    reason: &str,
) -> ApiResult<Option<i64>> {
    let Some(ended) = latest_standing_exit(db, household_id).await? else {
        return Ok(None);
    };
    household_exit::Entity::update_many()
        .col_expr(
            household_exit::Column::RejoinedAt,
            Expr::value(Some(super::now_seconds())),
        )
        .col_expr(
            household_exit::Column::RejoinedBy,
            Expr::value(caller.account_id),
        )
        .col_expr(
            household_exit::Column::RejoinReason,
            Expr::value(Some(reason.to_string())),
        )
        .filter(household_exit::Column::HouseholdId.eq(household_id))
        .filter(household_exit::Column::CancelledAt.is_null())
        .filter(household_exit::Column::RejoinedAt.is_null())
        .exec(db)
        .await?;
    Ok(Some(ended.id))
}
