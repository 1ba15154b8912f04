//! Domain enums in the programme's own terms, each with a stable snake_case code used
//! in the database, on the wire and on the command line, and a Chinese label for people.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::SharedError;

macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal, { $($(#[$vmeta:meta])* $variant:ident = $code:literal / $zh:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable code stored in databases and sent on the wire.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            /// The Chinese label shown to users and written in report headers.
            pub fn label_zh(self) -> &'static str {
                match self { $($name::$variant => $zh),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }

        impl FromStr for $name {
            type Err = SharedError;
            /// Accepts the code, or the Chinese label a person types (`--kind 电话`, QA
            /// s29b J11).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($code | $zh => Ok($name::$variant),)+
                    other => Err(SharedError::UnknownValue {
                        kind: $kind,
                        value: other.to_string(),
                        known: $name::ALL
                            .iter()
                            .map(|v| format!("{} {}", v.label_zh(), v.code()))
                            .collect::<Vec<_>>()
                            .join(", "),
                    }),
                }
            }
        }
    };
}

coded_enum!(
    /// What an account may do; its scope (a town, a county, its own households) follows from it.
    Role, "role", {
        /// 第一帮扶责任人: visits one household.
        FirstHelper = "first_helper" / "第一帮扶责任人",
        /// 第二帮扶责任人: supervises up to five households and compiles attendance.
        SecondHelper = "second_helper" / "第二帮扶责任人",
        /// 镇街扶贫办: a town office.
        TownOffice = "town_office" / "镇街扶贫办",
        /// 市/县扶贫办: a county office.
        CountyOffice = "county_office" / "市县扶贫办",
        /// System administrator, unscoped.
        Admin = "admin" / "系统管理员",
    }
);

coded_enum!(
    /// The role a helper plays in one pairing.
    PairingRole, "pairing role", {
        First = "first" / "第一帮扶责任人",
        Second = "second" / "第二帮扶责任人",
    }
);

coded_enum!(
    /// Registration status of a household (seed 001 §一(一)).
    HouseholdStatus, "household status", {
        /// 新识别: newly identified.
        Identified = "identified" / "新识别",
        /// 返贫: returned to poverty.
        Returned = "returned" / "返贫",
        /// 脱贫享受政策: exited but still enjoying policy.
        ExitedWithPolicy = "exited_with_policy" / "脱贫享受政策",
        /// 已脱贫: exited, no longer paired.
        Exited = "exited" / "已脱贫",
    }
);

coded_enum!(
    /// A level of the jurisdiction tree county → town → village.
    JurisdictionLevel, "jurisdiction level", {
        County = "county" / "市县",
        Town = "town" / "镇街",
        Village = "village" / "村居",
    }
);

coded_enum!(
    /// How a helper contacted the household.
    VisitKind, "visit kind", {
        /// 入户: a home visit.
        Home = "home" / "入户",
        /// 电话: a phone call.
        Phone = "phone" / "电话",
    }
);

impl Role {
    /// Whether this role is a helper's (its scope is the households it is paired with).
    pub fn is_helper(self) -> bool {
        matches!(self, Role::FirstHelper | Role::SecondHelper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A person types the Chinese label (`--kind 电话`), as the help shows it.
    #[test]
    fn chinese_labels_parse_too() {
        assert_eq!("电话".parse::<VisitKind>(), Ok(VisitKind::Phone));
        assert_eq!("入户".parse::<VisitKind>(), Ok(VisitKind::Home));
        let e = "走访".parse::<VisitKind>().unwrap_err().to_string();
        assert!(e.contains("入户 home") && e.contains("电话 phone"), "{e}");
    }

    #[test]
    fn codes_round_trip_for_every_enum() {
        for r in Role::ALL {
            assert_eq!(r.code().parse::<Role>(), Ok(*r));
        }
        for r in PairingRole::ALL {
            assert_eq!(r.code().parse::<PairingRole>(), Ok(*r));
        }
        for s in HouseholdStatus::ALL {
            assert_eq!(s.code().parse::<HouseholdStatus>(), Ok(*s));
        }
        for l in JurisdictionLevel::ALL {
            assert_eq!(l.code().parse::<JurisdictionLevel>(), Ok(*l));
        }
    }

    #[test]
    fn unknown_code_names_kind_and_value() {
        let err = "mayor".parse::<Role>().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown role `mayor` (known: 第一帮扶责任人 first_helper, "),
            "{err}"
        );
    }

    #[test]
    fn serde_uses_the_stable_code() {
        let json = serde_json::to_string(&Role::TownOffice).unwrap_or_default();
        assert_eq!(json, "\"town_office\"");
    }
}
