//! One-time enrollment codes: helpers in an imported ledger get accounts without anyone
//! typing them in; the town office prints a code per not-yet-enrolled helper and hands
//! it out; the helper logs in with phone + code once and sets a password.
//!
//! Codes are 10 characters from an alphabet without look-alikes (~49 bits), expire, are
//! stored only as salted argon2id hashes like passwords (an unsalted fast digest of so
//! short a code would give a stolen database copy every pending code in hours), and a
//! new code cancels the old one, so a helper holding one is issued another only when its
//! sheet is reprinted or their own slip is asked for. An office gets codes only for helpers all
//! of whose current households are in its scope (see [`pending_accounts`]).

use bangfu_shared::Role;
use bangfu_shared::api::EnrollmentCode;
use rand::Rng;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QueryTrait, Set,
};
use std::collections::HashSet;

use super::{Caller, Scope, audit, auth};
use crate::config::Settings;
use crate::entities::{account, helper, household, pairing};
use crate::error::{ApiError, ApiResult};
use crate::ledger::formula::inert;

const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 10;

fn new_code() -> String {
    let mut rng = rand::rng();
    let raw: String = (0..CODE_LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &raw[..5], &raw[5..])
}

/// The helpers awaiting codes in a request's reach.
struct Pending {
    accounts: Vec<account::Model>,
    /// Left out: also paired outside the caller's scope.
    outside: usize,
    /// Left out: they hold a code in force (printed on another sheet, or on this one
    /// when not reprinting).
    held: usize,
}

/// Codes issued, and how many helpers of the request's reach were left out because
/// they hold a code in force: the sheet says so, or an empty one would read as "no one
/// awaits a code" (QA s28c G2).
#[derive(Debug)]
pub struct Issued {
    pub codes: Vec<EnrollmentCode>,
    pub held: usize,
    /// The request reprinted a sheet (`reissue`): those left out hold codes of other
    /// sheets or slips, which asking to reprint would not give them.
    pub reissued: bool,
}

/// Where codes are issued: a town, one village, or one helper (of the caller's scope).
#[derive(Debug, Clone, Copy, Default)]
pub struct Within {
    pub town: Option<i64>,
    pub village: Option<i64>,
    /// One helper's slip (lost, or never handed out): always a new code, cancelling the
    /// one in force, whatever sheet printed it; nobody else's code changes.
    pub helper: Option<i64>,
    /// Reprint a lost sheet: new codes for the helpers whose code in force that sheet
    /// printed, cancelling those, and for helpers holding none. Without it a request
    /// skips every helper holding a code in force (see [`pending_accounts`]), so asking
    /// again, town-wide or by village, never cancels a sheet already handed out.
    pub reissue: bool,
    /// With `helper`: a code for a helper who has enrolled, to set a new password (a
    /// forgotten one, a lost phone); using it ends all their sessions. Their password
    /// keeps working until then.
    pub reset: bool,
}

/// The sheet a request prints: which codes in force it leaves out, which it takes back,
/// and what each code it prints remembers of where it was printed.
#[derive(Debug, Clone, Copy)]
struct Sheet {
    /// The place whose sheet it is: the village asked for, else the town, else the
    /// office's own town or county; [`account::ONE_SLIP`] for one helper's slip.
    place: Option<i64>,
    helper: Option<i64>,
    reissue: bool,
    reset: bool,
}

fn sheet_of(scope: Scope, within: Within) -> Sheet {
    let own = match scope {
        Scope::Town(t) => Some(t),
        Scope::County(c) => Some(c),
        Scope::All | Scope::Helper(_) | Scope::Nothing => None,
    };
    let place = match within.helper {
        Some(_) => Some(account::ONE_SLIP),
        None => within.village.or(within.town).or(own),
    };
    Sheet {
        place,
        helper: within.helper,
        reissue: within.reissue,
        reset: within.reset && within.helper.is_some(),
    }
}

/// Issues fresh codes for every helper in scope (optionally one town or village) who
/// has not enrolled, at most `max` of them (`None`: no bound, the server's own command
/// line). More pending than `max` is refused before anything changes: one request must
/// finish while its caller still waits for the sheet (QA s27a F1).
///
/// All or nothing, in one write transaction: a new code replaces the printed one, so a
/// run that stopped half-way would leave some helpers with a cancelled sheet and no new
/// code anyone has seen.
pub async fn issue(
    db: &DatabaseConnection,
    caller: &Caller,
    settings: &Settings,
    within: Within,
    max: Option<u64>,
) -> ApiResult<Issued> {
    caller.require_office("issue enrollment codes")?;
    let mut households = caller.scope().households();
    if let Some(t) = within.town {
        // A town that is not there, or not the caller's, is 404 (not an empty list).
        super::jurisdictions::town_in_scope(db, caller, t).await?;
        households = households.add(household::Column::TownId.eq(t));
    }
    if let Some(v) = within.village {
        let village = super::jurisdictions::village_in_scope(db, caller, v).await?;
        // Both named and not nested: an empty sheet would read as "no one awaits a
        // code" (QA s29a I5).
        if let Some(t) = within.town.filter(|t| village.parent_id != Some(*t)) {
            return Err(ApiError::Invalid(format!(
                "village {v} ({}) is not in town {t}: name the village alone, or one of the town's (GET /api/v1/places?town={t})",
                village.name
            )));
        }
        households = households.add(household::Column::VillageId.eq(v));
    }
    if within.reset && within.helper.is_none() {
        return Err(ApiError::BadRequest(
            "reset=true resets one helper's password: name them with helper=ID".into(),
        ));
    }
    if matches!(caller.scope(), Scope::All)
        && within.town.is_none()
        && within.village.is_none()
        && within.helper.is_none()
    {
        return Err(ApiError::BadRequest(
            "name a town (?town=ID), a village (?village=ID) or a helper (?helper=ID) to issue codes for"
                .into(),
        ));
    }
    // The codes are drawn and hashed (slow, on purpose) before the write transaction,
    // so pushes do not wait for the hashing; the transaction then stores the codes of
    // the accounts still pending.
    let sheet = sheet_of(caller.scope(), within);
    let pending = pending_accounts(db, households.clone(), caller.scope(), sheet).await?;
    if let Some(helper) = within.helper.filter(|_| pending.accounts.is_empty()) {
        return Err(no_code_for(db, caller, households, helper, pending.outside).await);
    }
    let pending = pending.accounts;
    if let Some(max) = max.filter(|m| pending.len() as u64 > *m) {
        // A village cannot be split further: only the server's command line is left.
        let by_village = if within.village.is_none() {
            "issue them village by village (?village=ID, see GET /api/v1/places), or "
        } else {
            ""
        };
        return Err(ApiError::Invalid(format!(
            "{} helpers await enrollment codes here, more than one request issues ({max}): \
             {by_village}run `bangfu-server enrollment-codes` on the server; no code was changed",
            pending.len()
        )));
    }
    let drawn = draw(&settings.argon2, pending.iter().map(|a| a.id)).await?;
    let (_gate, txn) = crate::db::begin_write(db).await?;
    if crate::db::is_postgres(db) {
        // One issuing at a time, as SQLite's write lock makes it: two requests at once
        // (a double click) each read "no code in force" at READ COMMITTED and each
        // handed out a full sheet, the first void (QA s29a I2). The second now reads
        // the first's codes as held.
        txn.execute_unprepared(
            "SELECT pg_advisory_xact_lock(hashtext('bangfu-enrollment-codes:' || current_schema()))",
        )
        .await?;
    }
    let codes = issue_in(
        &txn,
        caller,
        settings.enrollment_ttl_days,
        sheet,
        households,
        drawn,
    )
    .await?;
    txn.commit().await?;
    Ok(codes)
}

/// A new code and its hash for each account of `ids`, hashed on every core at once (a
/// town's thousands of argon2id hashes one after another took minutes, QA s27a F1).
async fn draw(
    argon2: &crate::config::Argon2Settings,
    ids: impl Iterator<Item = i64>,
) -> ApiResult<Vec<(i64, String, String)>> {
    use futures_util::{StreamExt, TryStreamExt};
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    futures_util::stream::iter(ids)
        .map(|id| async move {
            let code = new_code();
            let hash = auth::hash_secret(argon2, auth::normalize_code(&code)).await?;
            Ok::<_, ApiError>((id, code, hash))
        })
        .buffer_unordered(cores)
        .try_collect()
        .await
}

/// Pairings holding today: open, or ending on a later day.
fn current() -> Condition {
    Condition::all()
        .add(
            Condition::any()
                .add(pairing::Column::ValidTo.is_null())
                .add(pairing::Column::ValidTo.gt(super::today())),
        )
        .add(pairing::ever_holds())
}

/// The not-yet-enrolled accounts of the helpers paired in `households` today, and how
/// many more were left out because they are also paired with households outside
/// `scope`, the caller's.
///
/// A helper holding a code in force is left out unless the request reprints the sheet
/// that printed it (`reissue`, see [`printed_by`]) or names the helper: a second
/// helper's five households often span villages, and each village's request cancelled
/// the code printed on the sheet of the one before (QA s28a F1), as a town-wide request
/// cancelled every village's sheet (s28d H3). So each helper is on the sheet of the
/// first request issued after they were paired (s28b F1).
///
/// Why those also paired outside are left out: a code opens every household the helper
/// is paired with. A town office issuing one for a helper who also serves another town
/// would hand itself that town's households and void the sheet that town printed; the
/// office whose scope covers all their households (the county office) issues theirs.
async fn pending_accounts(
    db: &impl ConnectionTrait,
    households: Condition,
    scope: Scope,
    sheet: Sheet,
) -> ApiResult<Pending> {
    let in_scope = Query::select()
        .column(household::Column::Id)
        .from(household::Entity)
        .cond_where(households)
        .to_owned();
    let helper_ids = Query::select()
        .column(pairing::Column::HelperId)
        .from(pairing::Entity)
        .and_where(pairing::Column::HouseholdId.in_subquery(in_scope))
        .cond_where(current())
        .to_owned();
    let unenrolled = account::Entity::find()
        .filter(account::Column::HelperId.in_subquery(helper_ids))
        .apply_if((!sheet.reset).then_some(()), |q, ()| {
            q.filter(account::Column::PasswordHash.is_null())
        })
        .filter(account::Column::Disabled.eq(false))
        .apply_if(sheet.helper, |q, h| {
            q.filter(account::Column::HelperId.eq(h))
        })
        .order_by_asc(account::Column::Username)
        .all(db)
        .await?;
    let total = unenrolled.len();
    let mut pending = without_outsiders(db, scope, unenrolled).await?;
    let outside = total - pending.len();
    // Counted among those the caller could issue, so the sheet's "left out for holding
    // a code" never counts a helper only another office can issue (QA s29a I7).
    let before = pending.len();
    if sheet.helper.is_none() {
        let now = super::now();
        let in_force = |a: &account::Model| {
            a.enrollment_code_hash.is_some() && a.enrollment_expires_at.is_some_and(|t| t > now)
        };
        let holders: Vec<&account::Model> = pending.iter().filter(|a| in_force(a)).collect();
        let taken_back = if sheet.reissue {
            printed_by(db, sheet.place, &holders).await?
        } else {
            HashSet::new()
        };
        pending.retain(|a| !in_force(a) || taken_back.contains(&a.id));
    }
    let held = before - pending.len();
    Ok(Pending {
        accounts: pending,
        outside,
        held,
    })
}

/// `accounts` less those whose helper is also paired with households outside `scope`.
async fn without_outsiders(
    db: &impl ConnectionTrait,
    scope: Scope,
    accounts: Vec<account::Model>,
) -> ApiResult<Vec<account::Model>> {
    if scope == Scope::All {
        return Ok(accounts);
    }
    let visible = Query::select()
        .column(household::Column::Id)
        .from(household::Entity)
        .cond_where(scope.households())
        .to_owned();
    let ids: Vec<i64> = accounts.iter().filter_map(|a| a.helper_id).collect();
    let mut outside = HashSet::new();
    for chunk in ids.chunks(1000) {
        // Whole rows, as in `places_served`: this also runs in the write transaction.
        let found = pairing::Entity::find()
            .filter(pairing::Column::HelperId.is_in(chunk.to_vec()))
            .filter(current())
            .filter(pairing::Column::HouseholdId.not_in_subquery(visible.clone()))
            .all(db)
            .await?;
        outside.extend(found.into_iter().map(|p| p.helper_id));
    }
    Ok(accounts
        .into_iter()
        .filter(|a| a.helper_id.is_none_or(|h| !outside.contains(&h)))
        .collect())
}

/// The accounts of `holders` whose code in force the sheet of `place` printed, which
/// its reprint takes back; the others' sheets stay good (QA s28c G1, s29a I1: a
/// town-wide sheet remembers its town, so reprinting one town's sheet leaves a code a
/// helper serving two towns holds from the other's). A code of no known sheet (printed
/// before codes remembered their sheet, QA s28d H1) or of a place the helper no longer
/// serves (moved: that sheet cannot reprint it, s28d H2) is taken as this sheet's; a
/// slip printed for one helper alone is no sheet's.
async fn printed_by(
    db: &impl ConnectionTrait,
    place: Option<i64>,
    holders: &[&account::Model],
) -> ApiResult<HashSet<i64>> {
    let elsewhere: Vec<i64> = holders
        .iter()
        .filter(|a| {
            a.enrollment_place_id
                .is_some_and(|p| Some(p) != place && p != account::ONE_SLIP)
        })
        .filter_map(|a| a.helper_id)
        .collect();
    let serving = places_served(db, &elsewhere).await?;
    Ok(holders
        .iter()
        .filter(|a| match a.enrollment_place_id {
            None => true,
            Some(account::ONE_SLIP) => false,
            Some(p) if Some(p) == place => true,
            Some(p) => a.helper_id.is_some_and(|h| !serving.contains(&(h, p))),
        })
        .map(|a| a.id)
        .collect())
}

/// (helper, place) for every village, town and county where each of `helpers` is
/// paired with a household today. Whole rows, not a join's columns: it also runs in a
/// write transaction, which on SQLite reads through the writer's own connection, whose
/// rows decode entity columns only (a joined tuple came back empty there, QA s29c K5).
async fn places_served(
    db: &impl ConnectionTrait,
    helpers: &[i64],
) -> ApiResult<HashSet<(i64, i64)>> {
    let mut pairs: Vec<(i64, i64)> = Vec::new();
    for chunk in helpers.chunks(1000) {
        for p in pairing::Entity::find()
            .filter(pairing::Column::HelperId.is_in(chunk.to_vec()))
            .filter(current())
            .all(db)
            .await?
        {
            pairs.push((p.helper_id, p.household_id));
        }
    }
    let ids: Vec<i64> = pairs
        .iter()
        .map(|(_, h)| *h)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut homes = std::collections::HashMap::new();
    for chunk in ids.chunks(1000) {
        for h in household::Entity::find()
            .filter(household::Column::Id.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            homes.insert(h.id, [h.village_id, h.town_id, h.county_id]);
        }
    }
    Ok(pairs
        .into_iter()
        .filter_map(|(helper, home)| homes.get(&home).map(|places| (helper, *places)))
        .flat_map(|(helper, places)| places.map(|p| (helper, p)))
        .collect())
}

/// Why a request for one helper's code has none to issue, in words the office can act
/// on; a helper not paired in the caller's scope is not found, whatever else is true of
/// them, so the answer tells nothing of another office's helpers.
async fn no_code_for(
    db: &DatabaseConnection,
    caller: &Caller,
    households: Condition,
    helper: i64,
    outside: usize,
) -> ApiError {
    let paired_in = |households: Condition| {
        let homes = Query::select()
            .column(household::Column::Id)
            .from(household::Entity)
            .cond_where(households)
            .to_owned();
        pairing::Entity::find()
            .filter(pairing::Column::HelperId.eq(helper))
            .filter(pairing::Column::HouseholdId.in_subquery(homes))
            .filter(current())
            .one(db)
    };
    let (in_scope, in_reach, account) = match tokio::try_join!(
        paired_in(caller.scope().households()),
        paired_in(households),
        account::Entity::find()
            .filter(account::Column::HelperId.eq(helper))
            .one(db),
    ) {
        Ok(found) => found,
        Err(e) => return e.into(),
    };
    let Some(account) = account.filter(|_| in_scope.is_some()) else {
        return ApiError::NotFound("helper");
    };
    if in_reach.is_none() {
        // Named with a village or town they are not paired in (QA s29a I9).
        return ApiError::Invalid(format!(
            "helper {helper} is not paired with a household of the village or town named: ask with ?helper={helper} alone"
        ));
    }
    if outside > 0 {
        return ApiError::Invalid(format!(
            "helper {helper} is also paired with households outside your scope: the office \
             whose scope covers all of them ({}) issues their code",
            if matches!(caller.scope(), Scope::Town(_)) {
                "the county office"
            } else {
                "the province"
            }
        ));
    }
    if account.disabled {
        return ApiError::Invalid(format!(
            "helper {helper}'s account is disabled: enable it before issuing a code"
        ));
    }
    ApiError::Invalid(format!(
        "helper {helper} has already enrolled (set a password) and logs in with it; if they \
         forgot it or lost their phone, add reset=true for a code that sets a new one"
    ))
}

async fn issue_in(
    db: &impl ConnectionTrait,
    caller: &Caller,
    ttl_days: i64,
    sheet: Sheet,
    households: Condition,
    drawn: Vec<(i64, String, String)>,
) -> ApiResult<Issued> {
    // Read again inside the transaction: an account that enrolled meanwhile gets none.
    let Pending {
        accounts: pending,
        outside: skipped,
        held,
    } = pending_accounts(db, households, caller.scope(), sheet).await?;
    if skipped > 0 {
        tracing::info!(
            skipped,
            "enrollment codes: helpers also paired outside the caller's scope left out"
        );
    }
    let mut drawn: std::collections::HashMap<i64, (String, String)> = drawn
        .into_iter()
        .map(|(id, code, hash)| (id, (code, hash)))
        .collect();
    let helper_ids: Vec<i64> = pending.iter().filter_map(|a| a.helper_id).collect();
    let mut names = std::collections::HashMap::new();
    for chunk in helper_ids.chunks(1000) {
        for h in helper::Entity::find()
            .filter(helper::Column::Id.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            names.insert(h.id, h.name);
        }
    }
    let expires_at = super::now_seconds() + chrono::Duration::days(ttl_days);
    let mut codes = Vec::with_capacity(pending.len());
    for acct in pending {
        let name = acct
            .helper_id
            .and_then(|h| names.get(&h).cloned())
            .unwrap_or_default();
        // An account that became pending after the codes were drawn gets one next time.
        let Some((code, hash)) = drawn.remove(&acct.id) else {
            continue;
        };
        let role: Role = acct.role.parse().unwrap_or(Role::FirstHelper);
        let username = acct.username.clone();
        let mut active = acct.into_active_model();
        active.enrollment_code_hash = Set(Some(hash));
        active.enrollment_expires_at = Set(Some(expires_at));
        active.enrollment_place_id = Set(sheet.place);
        active.update(db).await?;
        codes.push(EnrollmentCode {
            name,
            phone: username,
            role,
            code,
            expires_at,
        });
    }
    audit::record(
        db,
        caller,
        audit::Entry::new(
            "enrollment.issue",
            "account",
            None,
            serde_json::json!({
                "sheet_place_id": sheet.place,
                "helper_id": sheet.helper,
                "reissue": sheet.reissue,
                "reset": sheet.reset,
                "count": codes.len(),
                "skipped_outside_scope": skipped,
                "held_a_code": held,
            }),
        ),
    )
    .await?;
    Ok(Issued {
        codes,
        held,
        reissued: sheet.reissue,
    })
}

/// Who asked for a sheet: its closing line names their way to a reprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    Api,
    CommandLine,
}

/// The sheet's closing line when a request left out helpers holding a code: how many,
/// and how to reprint (QA s29a I7: a reprint is not advised in the answer to one, nor
/// in the API's words on the command line).
pub fn held_note_zh(issued: &Issued, asker: Asker) -> String {
    let held = issued.held;
    if issued.reissued {
        return format!("另有{held}名帮扶责任人持有其他登记表上或单独补发的有效激活码，本表未列");
    }
    let how = match asker {
        Asker::Api => {
            "可重新打印该表（接口参数 reissue=true）；个人激活码遗失，可单独补发（接口参数 helper=帮扶责任人编号，见 /households）"
        }
        Asker::CommandLine => "可加 --reissue 重新打印该表",
    };
    format!(
        "另有{held}名帮扶责任人已持有有效的激活码（印在先前的登记表上或单独补发），本表未列；如先前的登记表遗失，{how}"
    )
}

/// The code sheet as CSV with Chinese headers, for printing.
pub fn to_csv(issued: &Issued, asker: Asker) -> ApiResult<Vec<u8>> {
    let codes = issued.codes.as_slice();
    let mut out = Vec::from("\u{feff}".as_bytes());
    {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut out);
        let io = |e: csv::Error| ApiError::Internal(e.to_string());
        w.write_record(["姓名", "手机号(登录名)", "角色", "激活码", "有效期至"])
            .map_err(io)?;
        for c in codes {
            let expires = (c.expires_at + chrono::Duration::hours(8))
                .format("%Y-%m-%d %H:%M")
                .to_string();
            // The name is as a ledger file gave it: made inert like the ledger's export.
            w.write_record(
                [
                    c.name.as_str(),
                    c.phone.as_str(),
                    c.role.label_zh(),
                    c.code.as_str(),
                    expires.as_str(),
                ]
                .map(|cell| inert(cell).into_owned()),
            )
            .map_err(io)?;
        }
        if issued.held > 0 {
            w.write_record([held_note_zh(issued, asker).as_str(), "", "", "", ""])
                .map_err(io)?;
        }
        w.flush().map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_unambiguous_alphabet() {
        let c = new_code();
        assert_eq!(c.len(), 11);
        assert_eq!(&c[5..6], "-");
        assert!(
            auth::normalize_code(&c)
                .bytes()
                .all(|b| ALPHABET.contains(&b))
        );
        assert_ne!(new_code(), new_code());
    }
}
