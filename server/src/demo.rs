//! A generated demo county, so a newcomer sees a working ledger at once: 2 towns,
//! 10 villages, 120 households with their helpers, imported through the same path as a
//! real ledger, plus office accounts and a few enrolled helpers. All names and numbers
//! are synthetic.

use bangfu_shared::api::Member;
use bangfu_shared::ledger::{HelperEntry, LedgerRow};
use bangfu_shared::{JurisdictionLevel, PolicyPreset, Role};
use chrono::{Datelike, NaiveDate};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    Set,
};

use crate::config::Settings;
use crate::entities::account;
use crate::error::{ApiError, ApiResult};
use crate::ledger::{self, ExportFormat, ImportOptions};
use crate::services::{Caller, auth, jurisdictions, policy};

/// The demo county's name.
pub const COUNTY: &str = "演示县";
/// The password of every demo account.
pub const PASSWORD: &str = "bangfu-demo";
const TOWNS: [&str; 2] = ["东城镇", "西港镇"];
const VILLAGES: [&str; 5] = ["一村", "二村", "河口村", "李家村", "王庄村"];
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤";
const GIVEN: [&str; 24] = [
    "秀英", "桂英", "志强", "建国", "海燕", "晓东", "玉兰", "德明", "春梅", "国庆", "丽娟", "文静",
    "红梅", "立新", "凤英", "宏伟", "淑珍", "俊杰", "雪梅", "振华", "桂兰", "永强", "金凤", "长青",
];
const CAUSES: [&str; 8] = [
    "因病",
    "因残",
    "因学",
    "缺技术",
    "缺劳力",
    "缺资金",
    "缺水",
    "交通落后",
];
const MEASURES: [&str; 6] = [
    "产业帮扶、就业帮扶",
    "医疗救助、危房改造",
    "教育资助、小额信贷",
    "公益岗位、低保兜底",
    "危房改造、公益岗位",
    "小额信贷、产业帮扶",
];
const UNITS: [&str; 8] = [
    "市住建局 主任科员",
    "市教育局 副科长",
    "市交通局 副科长",
    "市水务局 科员",
    "市财政局 科员",
    "市卫健局 科员",
    "市供电公司 职员",
    "市人社局 副主任",
];

/// A deterministic pseudo-random sequence (no dependency, same demo every time).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

fn name(rng: &mut Lcg) -> String {
    let surnames: Vec<char> = SURNAMES.chars().collect();
    format!(
        "{}{}",
        surnames[rng.next(surnames.len())],
        GIVEN[rng.next(GIVEN.len())]
    )
}

/// The demo ledger of one town: `households` rows, a second helper per 5 households.
pub fn town_ledger(town_index: usize, households: usize, seed: u64) -> Vec<LedgerRow> {
    let mut rng = Lcg(seed ^ ((town_index as u64 + 1) * 7919));
    let town = TOWNS[town_index % TOWNS.len()];
    let phone = |kind: u64, i: usize| {
        format!(
            "1{}{:09}",
            3 + kind,
            (town_index * 100_000 + i) % 1_000_000_000
        )
    };
    let mut rows = Vec::with_capacity(households);
    let mut second = HelperEntry {
        name: String::new(),
        unit_position: String::new(),
        phone: String::new(),
    };
    for i in 0..households {
        if i % 5 == 0 {
            second = HelperEntry {
                name: name(&mut rng),
                unit_position: "村委会主任".into(),
                phone: phone(5, i / 5),
            };
        }
        rows.push(LedgerRow {
            line: i + 2,
            seq: (i + 1) as u32,
            head_name: name(&mut rng),
            town: town.to_string(),
            village: format!(
                "{}{}",
                &town[..town.len() - "镇".len()],
                VILLAGES[rng.next(VILLAGES.len())]
            ),
            cause: CAUSES[rng.next(CAUSES.len())].to_string(),
            measures: MEASURES[rng.next(MEASURES.len())].to_string(),
            phone: phone(4, i),
            first: HelperEntry {
                name: name(&mut rng),
                unit_position: UNITS[rng.next(UNITS.len())].to_string(),
                phone: phone(6, i),
            },
            second: second.clone(),
        });
    }
    rows
}

/// Whether any visit record is stored: a demo county seeded before [`SEEDED_MARK`]
/// existed is whole if it has its visits.
async fn has_records(db: &DatabaseConnection) -> ApiResult<bool> {
    use sea_orm::QuerySelect;
    Ok(crate::entities::record::Entity::find()
        .limit(1)
        .one(db)
        .await?
        .is_some())
}

/// The logins the demo prints.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    pub username: String,
    pub role: Role,
    pub note: String,
}

/// Written in the data directory once the demo county is whole: seeding runs in steps
/// (ledger, policy, visits and photos), and one stopped midway (a full disk) left a
/// county that the next run took for done (QA s30c N5).
const SEEDED_MARK: &str = "demo-seeded";

/// Creates the demo county unless it exists; returns the logins either way. A county
/// left half-made by a run that stopped is refused, naming what to do.
pub async fn seed(db: &DatabaseConnection, settings: &Settings) -> ApiResult<Vec<DemoLogin>> {
    let system = Caller::system();
    let existing = jurisdictions::find(db, JurisdictionLevel::County, COUNTY, None).await?;
    let mark = settings.data_dir.join(SEEDED_MARK);
    let county_id = match existing {
        Some(c) if mark.exists() || has_records(db).await? => c.id,
        Some(_) => {
            return Err(ApiError::Conflict(format!(
                "the demo county {COUNTY} was left half-made by an earlier run that stopped \
                 (its visits are missing): remove the data directory {} and run demo again",
                settings.data_dir.display()
            )));
        }
        None => {
            let (county_id, _) =
                jurisdictions::ensure(db, JurisdictionLevel::County, COUNTY, None).await?;
            let from = NaiveDate::from_ymd_opt(2018, 1, 1).unwrap_or_default();
            policy::set(
                db,
                &system,
                county_id,
                None,
                from,
                &PolicyPreset::Laizhou2018.policy(),
            )
            .await?;
            for (t, _) in TOWNS.iter().enumerate() {
                let bytes = ledger::export::write(&town_ledger(t, 60, 2026), ExportFormat::Csv)?;
                let opts = ImportOptions {
                    dry_run: false,
                    county_id: Some(county_id),
                    effective_from: from,
                    filed_on: from,
                    reason: None,
                    // A demo's history: its later towns are added back to 2018 too.
                    retroactive: true,
                };
                ledger::import(db, &system, &bytes, &opts).await?;
            }
            add_members(db, county_id).await?;
            let today = crate::services::today();
            let past: Vec<bangfu_shared::report::Quarter> = (1..=4)
                .map(|q| bangfu_shared::report::Quarter {
                    year: today.year(),
                    q,
                })
                .filter(|q| q.end() < today)
                .collect();
            crate::demo_visits::generate(db, settings, county_id, &past).await?;
            std::fs::write(&mark, b"")
                .map_err(|e| ApiError::Internal(format!("{}: {e}", mark.display())))?;
            county_id
        }
    };
    let mut logins = Vec::new();
    let mut add = |username: &str, role: Role, note: String| {
        logins.push(DemoLogin {
            username: username.to_string(),
            role,
            note,
        })
    };
    ensure_user(db, settings, "admin", Role::Admin, None).await?;
    add("admin", Role::Admin, "系统管理员".into());
    ensure_user(db, settings, "county", Role::CountyOffice, Some(county_id)).await?;
    add("county", Role::CountyOffice, COUNTY.into());
    for (i, town) in TOWNS.iter().enumerate() {
        let town_id = jurisdictions::town_by_name(db, Some(COUNTY), town)
            .await?
            .id;
        let username = format!("town{}", i + 1);
        ensure_user(db, settings, &username, Role::TownOffice, Some(town_id)).await?;
        add(&username, Role::TownOffice, (*town).to_string());
    }
    for row in town_ledger(0, 60, 2026).iter().take(1) {
        for (entry, role) in [
            (&row.first, Role::FirstHelper),
            (&row.second, Role::SecondHelper),
        ] {
            enroll_helper(db, settings, &entry.phone).await?;
            add(
                &entry.phone,
                role,
                format!("{}（{}）", entry.name, role.label_zh()),
            );
        }
    }
    Ok(logins)
}

/// Gives every demo household a few members (the ledger itself has none).
async fn add_members(db: &DatabaseConnection, county_id: i64) -> ApiResult<()> {
    use crate::entities::household;
    let mut rng = Lcg(county_id as u64);
    for h in household::Entity::find()
        .filter(household::Column::CountyId.eq(county_id))
        .all(db)
        .await?
    {
        let mut members = vec![Member {
            name: h.head_name.clone(),
            relation: "户主".into(),
            birth_year: Some(1950 + rng.next(30) as i32),
        }];
        for relation in ["配偶", "子女", "孙子女"].iter().take(rng.next(4)) {
            members.push(Member {
                name: name(&mut rng),
                relation: (*relation).to_string(),
                birth_year: Some(1960 + rng.next(55) as i32),
            });
        }
        let size = members.len() as i64;
        let mut active = h.into_active_model();
        active.members = Set(serde_json::to_string(&members).unwrap_or_else(|_| "[]".into()));
        active.size = Set(Some(size));
        active.update(db).await?;
    }
    Ok(())
}

async fn ensure_user(
    db: &DatabaseConnection,
    settings: &Settings,
    username: &str,
    role: Role,
    scope: Option<i64>,
) -> ApiResult<()> {
    if account::Entity::find()
        .filter(account::Column::Username.eq(username))
        .one(db)
        .await?
        .is_none()
    {
        auth::add_user(
            db,
            settings,
            &Caller::system(),
            username,
            role,
            scope,
            PASSWORD,
        )
        .await?;
    }
    Ok(())
}

async fn enroll_helper(db: &DatabaseConnection, settings: &Settings, phone: &str) -> ApiResult<()> {
    let found = account::Entity::find()
        .filter(account::Column::Username.eq(phone))
        .one(db)
        .await?;
    if let Some(acct) = found.filter(|a| a.password_hash.is_none()) {
        let hash = auth::hash_password(&settings.argon2, PASSWORD.to_string()).await?;
        let mut active = acct.into_active_model();
        active.password_hash = Set(Some(hash));
        active.update(db).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_ledger_is_valid_and_deterministic() {
        let rows = town_ledger(0, 60, 2026);
        assert_eq!(rows, town_ledger(0, 60, 2026));
        assert!(bangfu_shared::ledger::check_file(&rows, 1, 5).is_empty());
        let bytes = ledger::export::write(&rows, ExportFormat::Csv).unwrap();
        let parsed = crate::ledger::read::parse(&bytes, &[]).unwrap();
        assert_eq!(parsed.rows.len(), 60);
        let villages: std::collections::HashSet<_> =
            rows.iter().map(|r| r.village.clone()).collect();
        assert!(villages.len() >= 4, "{villages:?}");
    }
}
