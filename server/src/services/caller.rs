//! Who is asking, and what they may see. Every read and write on the server is filtered
//! through a [`Scope`]; a record outside it is reported as not found, never as forbidden,
//! so scoping leaks nothing about other towns.

use bangfu_shared::Role;
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, Condition};

use crate::entities::{household, pairing};
use crate::error::{ApiError, ApiResult};

/// An authenticated account (or the server's own command line acting as admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `None` for the command line.
    pub account_id: Option<i64>,
    pub role: Role,
    /// The town or county an office account is scoped to.
    pub scope_id: Option<i64>,
    /// The county the account belongs to (an office's county, a helper's county).
    pub county_id: Option<i64>,
    /// The helper record of a helper account.
    pub helper_id: Option<i64>,
    /// The peer address, recorded in the audit log.
    pub remote_addr: Option<String>,
}

/// The households a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    County(i64),
    Town(i64),
    /// Households the helper is paired with now or from a filed future date.
    Helper(i64),
    /// An account that sees nothing (a helper account not linked to a helper).
    Nothing,
}

impl Caller {
    /// The server's own command line: an unscoped admin with no account.
    pub fn system() -> Caller {
        Caller {
            account_id: None,
            role: Role::Admin,
            scope_id: None,
            county_id: None,
            helper_id: None,
            remote_addr: None,
        }
    }

    /// What this caller may see.
    pub fn scope(&self) -> Scope {
        match (self.role, self.scope_id, self.helper_id) {
            (Role::Admin, _, _) => Scope::All,
            (Role::CountyOffice, Some(id), _) => Scope::County(id),
            (Role::TownOffice, Some(id), _) => Scope::Town(id),
            (Role::FirstHelper | Role::SecondHelper, _, Some(h)) => Scope::Helper(h),
            _ => Scope::Nothing,
        }
    }

    /// Refuses unless the caller has one of `roles` (admins always may).
    pub fn require(&self, roles: &[Role], what: &str) -> ApiResult<()> {
        if self.role == Role::Admin || roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "a {} account may not {what}",
                self.role.code()
            )))
        }
    }

    /// Refuses helpers; offices and admins pass.
    pub fn require_office(&self, what: &str) -> ApiResult<()> {
        self.require(&[Role::TownOffice, Role::CountyOffice], what)
    }
}

impl Scope {
    /// The households condition for this scope.
    pub fn households(&self) -> Condition {
        match *self {
            Scope::All => Condition::all(),
            Scope::County(id) => Condition::all().add(household::Column::CountyId.eq(id)),
            Scope::Town(id) => Condition::all().add(household::Column::TownId.eq(id)),
            Scope::Helper(helper_id) => {
                let today = super::today();
                let paired = Query::select()
                    .column(pairing::Column::HouseholdId)
                    .from(pairing::Entity)
                    .and_where(pairing::Column::HelperId.eq(helper_id))
                    .cond_where(pairing::holding_after(today))
                    .to_owned();
                Condition::all().add(household::Column::Id.in_subquery(paired))
            }
            Scope::Nothing => Condition::all().add(household::Column::Id.lt(0)),
        }
    }

    /// The households a helper's device lists (snapshot and pull): those of
    /// [`Scope::households`], and for a helper also those whose pairing with the helper
    /// ended within the last [`RECENTLY_ENDED_DAYS`], so the device learns the real end
    /// date (not for one withdrawn before its first day: that never held). The device's household list, a helper's reads of one household (its
    /// detail, its drill-down for quarters they were paired in) and of its photos use
    /// this: a household that left pairing stays on the second helper's sheet to be
    /// signed. Lists, the push check and every write keep [`Scope::households`].
    pub fn device_households(&self) -> Condition {
        match *self {
            Scope::Helper(helper_id) => {
                let since = super::today() - chrono::Duration::days(RECENTLY_ENDED_DAYS);
                let paired = Query::select()
                    .column(pairing::Column::HouseholdId)
                    .from(pairing::Entity)
                    .and_where(pairing::Column::HelperId.eq(helper_id))
                    .cond_where(
                        Condition::any()
                            .add(pairing::Column::ValidTo.is_null())
                            .add(pairing::Column::ValidTo.gt(since)),
                    )
                    // One withdrawn (or cut by an exit) before its day never reaches
                    // the device (QA s31c T1); one whose day had come, ended that day,
                    // tells the device it ended.
                    .cond_where(
                        Condition::any()
                            .add(pairing::ever_holds())
                            .add(pairing::Column::ValidFrom.lte(super::today())),
                    )
                    .to_owned();
                Condition::all().add(household::Column::Id.in_subquery(paired))
            }
            _ => self.households(),
        }
    }
}

/// How long (a quarter) a household whose pairing with a helper ended stays in that
/// helper's device list, marked ended by its pairing history: a pairing with `valid_to`
/// more than this many days ago is left out.
pub const RECENTLY_ENDED_DAYS: i64 = 92;

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role, scope_id: Option<i64>, helper_id: Option<i64>) -> Caller {
        Caller {
            role,
            scope_id,
            helper_id,
            ..Caller::system()
        }
    }

    #[test]
    fn scope_follows_role() {
        assert_eq!(caller(Role::Admin, None, None).scope(), Scope::All);
        assert_eq!(
            caller(Role::CountyOffice, Some(1), None).scope(),
            Scope::County(1)
        );
        assert_eq!(
            caller(Role::TownOffice, Some(2), None).scope(),
            Scope::Town(2)
        );
        assert_eq!(
            caller(Role::FirstHelper, None, Some(3)).scope(),
            Scope::Helper(3)
        );
        assert_eq!(
            caller(Role::SecondHelper, None, Some(4)).scope(),
            Scope::Helper(4)
        );
        assert_eq!(caller(Role::TownOffice, None, None).scope(), Scope::Nothing);
    }

    #[test]
    fn helpers_are_not_offices() {
        assert!(
            caller(Role::FirstHelper, None, Some(1))
                .require_office("import")
                .is_err()
        );
        assert!(
            caller(Role::TownOffice, Some(1), None)
                .require_office("import")
                .is_ok()
        );
        assert!(Caller::system().require_office("import").is_ok());
    }
}
