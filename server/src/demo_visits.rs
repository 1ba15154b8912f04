//! The demo county's past quarters of field work, so every report is filled in at once:
//! each helper gets a demo device key, and its visits and calls are signed and go through
//! the same push and upload services as a real device's. About one visit in ten is
//! missed, and a few records do not count (a home visit without a photo, a call voided
//! as mistaken, a device clock running ahead).

use bangfu_shared::api::RegisterDevice;
use bangfu_shared::report::Quarter;
use bangfu_shared::sync::PushRequest;
use bangfu_shared::visit::{
    FORMAT_VERSION, HouseholdSignature, PhotoRef, RecordEnvelope, RecordType, SignedRecord,
    VisitBody, ZERO_HASH, sha256_hex, truncate_to_seconds,
};
use bangfu_shared::{PairingRole, VisitKind};
use base64::Engine;
use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use ed25519_dalek::{Signer, SigningKey};
use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use crate::config::Settings;
use crate::entities::{account, blob, device, household, pairing, upload};
use crate::error::{ApiError, ApiResult};
use crate::services::{Caller, auth, devices, sync};
use crate::storage::{BlobStore, LocalStore};

/// A helper's demo device: key, server id and chain position.
struct DemoDevice {
    caller: Caller,
    key: SigningKey,
    device_id: i64,
    seq: i64,
    prev: String,
    records: Vec<SignedRecord>,
}

impl DemoDevice {
    fn sign(
        &mut self,
        household_id: i64,
        record_type: RecordType,
        visit: Option<VisitBody>,
        target: Option<uuid::Uuid>,
        created_at: chrono::DateTime<Utc>,
    ) -> ApiResult<uuid::Uuid> {
        self.seq += 1;
        let record = RecordEnvelope {
            v: FORMAT_VERSION,
            id: uuid::Uuid::now_v7(),
            record_type,
            device_id: self.device_id,
            seq: self.seq,
            prev_sha256: self.prev.clone(),
            author_helper_id: self.caller.helper_id.unwrap_or_default(),
            household_id,
            created_at: truncate_to_seconds(created_at),
            visit,
            target_id: target,
            reason: (record_type == RecordType::Void).then(|| "误录".to_string()),
        };
        let bytes = record
            .canonical_bytes()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        self.prev = sha256_hex(&bytes);
        let id = record.id;
        self.records.push(SignedRecord {
            signature: hex::encode(self.key.sign(&bytes).to_bytes()),
            record,
        });
        Ok(id)
    }
}

/// A small, unique JPEG standing in for a visit photo.
fn photo(n: u64) -> ApiResult<Vec<u8>> {
    let img = image::RgbImage::from_fn(48, 36, |x, y| {
        image::Rgb([
            (x as u64 * 5 + n) as u8,
            (y as u64 * 7 + n / 256) as u8,
            (n % 251) as u8,
        ])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(out)
}

/// A witness's mark drawn on the pad for demo visit `n`: a small PNG of a stroke, its
/// top row the bits of `n` (a drawn mark is never the same bytes twice; the same image
/// on two visits would read as a copy).
fn mark(n: u64) -> ApiResult<Vec<u8>> {
    let img = image::GrayImage::from_fn(64, 24, |x, y| {
        let stroke = 8 + (u64::from(x) * (n % 5 + 1) % 12) as u32;
        let ink = if y == 0 {
            (n >> x) & 1 == 1
        } else {
            y.abs_diff(stroke) < 2
        };
        image::Luma([if ink { 0 } else { 255 }])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(out)
}

/// Stores demo photos and witness marks directly (files through the store, blob rows and each sender's
/// finished upload in batches): the upload path itself is exercised by real clients;
/// the demo only needs the files there, sent by the accounts whose visits name them
/// (offices read a file through a record only when its account sent the bytes).
async fn store_photos(
    db: &DatabaseConnection,
    store: &Arc<dyn BlobStore>,
    photos: &[(Vec<u8>, i64, &'static str)],
) -> ApiResult<()> {
    let io = |e: std::io::Error| ApiError::Internal(format!("storage: {e}"));
    let now = crate::services::now();
    let mut rows = Vec::new();
    let mut sent = Vec::new();
    for (bytes, account_id, content_type) in photos {
        let sha = sha256_hex(bytes);
        let id = uuid::Uuid::now_v7().simple().to_string();
        sent.push(upload::ActiveModel {
            id: Set(id.clone()),
            sha256: Set(Some(sha.clone())),
            length: Set(bytes.len() as i64),
            status: Set("complete".into()),
            account_id: Set(*account_id),
            created_at: Set(now - chrono::Duration::seconds(1)),
            completed_at: Set(Some(now)),
        });
        let mut w = store.append(&id, 0).await.map_err(io)?;
        w.write(bytes).await.map_err(io)?;
        w.finish_as_blob(&sha).await.map_err(io)?;
        rows.push(blob::ActiveModel {
            sha256: Set(sha),
            size: Set(bytes.len() as i64),
            content_type: Set((*content_type).into()),
            created_at: Set(now),
        });
    }
    for chunk in rows.chunks(500) {
        blob::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    for chunk in sent.chunks(500) {
        upload::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

fn at(day: NaiveDate, hour: u32) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(
        &day.and_hms_opt(hour.saturating_sub(8), 30, 0)
            .unwrap_or_default(),
    )
}

/// A visit the demo plans for a device, signed once all are planned (in time order).
struct DemoVisit {
    household_id: i64,
    visit: VisitBody,
    /// When the device signs it (its clock: an hour after the visit, or days ahead).
    created: chrono::DateTime<Utc>,
    /// When it is voided, if it is.
    void_at: Option<chrono::DateTime<Utc>>,
}

/// Dates the demo devices' registration the day before the first quarter the demo plays:
/// a year of field use, in which no device signs before it was registered (a record that
/// claims to is flagged `clock_behind` and does not count).
async fn registered_before(
    db: &DatabaseConnection,
    devices: &HashMap<i64, DemoDevice>,
    quarters: &[Quarter],
) -> ApiResult<()> {
    let Some(first) = quarters.iter().map(|q| q.start()).min() else {
        return Ok(());
    };
    let since = crate::services::china_day_start(first) - chrono::Duration::days(1);
    let ids: Vec<i64> = devices.values().map(|d| d.device_id).collect();
    for chunk in ids.chunks(crate::db::IN_CHUNK) {
        device::Entity::update_many()
            .col_expr(device::Column::CreatedAt, Expr::value(since))
            .filter(device::Column::Id.is_in(chunk.to_vec()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Generates and pushes the visits of `quarters` for every pairing of the county.
pub async fn generate(
    db: &DatabaseConnection,
    settings: &Settings,
    county_id: i64,
    quarters: &[Quarter],
) -> ApiResult<usize> {
    let store: Arc<dyn BlobStore> = Arc::new(
        LocalStore::new(&settings.data_dir.join("files"))
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    let homes: Vec<household::Model> = household::Entity::find()
        .filter(household::Column::CountyId.eq(county_id))
        .all(db)
        .await?;
    let ids: Vec<i64> = homes.iter().map(|h| h.id).collect();
    let pairs = pairing::Entity::find()
        .filter(pairing::Column::HouseholdId.is_in(ids))
        .filter(pairing::Column::ValidTo.is_null())
        .all(db)
        .await?;
    let mut rng = rand::rng();
    let mut devices: HashMap<i64, DemoDevice> = HashMap::new();
    for p in &pairs {
        if devices.contains_key(&p.helper_id) {
            continue;
        }
        let Some(acct) = account::Entity::find()
            .filter(account::Column::HelperId.eq(p.helper_id))
            .one(db)
            .await?
        else {
            continue;
        };
        let caller = auth::caller_for(db, &acct, None).await?;
        let key = SigningKey::from_bytes(&rng.random::<[u8; 32]>());
        let req = RegisterDevice {
            public_key: base64::engine::general_purpose::STANDARD
                .encode(key.verifying_key().to_bytes()),
            label: "演示设备".into(),
        };
        let (dev, _) = devices::register(db, &caller, &req).await?;
        devices.insert(
            p.helper_id,
            DemoDevice {
                caller,
                key,
                device_id: dev.id,
                seq: 0,
                prev: ZERO_HASH.to_string(),
                records: Vec::new(),
            },
        );
    }
    registered_before(db, &devices, quarters).await?;
    let mut photos: Vec<(Vec<u8>, i64, &'static str)> = Vec::new();
    let mut n = 0u64;
    let today = crate::services::today();
    // Each device's visits, planned first and signed in the order of the device's clock:
    // a device signs as time goes on, and a record signed before the one before it is
    // flagged (`clock_went_back`).
    let mut planned: HashMap<i64, Vec<DemoVisit>> = HashMap::new();
    for q in quarters {
        for p in &pairs {
            if !devices.contains_key(&p.helper_id) {
                continue;
            }
            let role: PairingRole = p
                .role
                .parse()
                .map_err(|e: bangfu_shared::SharedError| ApiError::Internal(e.to_string()))?;
            for m in 0..3 {
                let month = q.start().month() + m;
                let day = |d: u32| NaiveDate::from_ymd_opt(q.year, month, d).unwrap_or(q.start());
                let mut plan: Vec<(VisitKind, NaiveDate)> = Vec::new();
                match role {
                    PairingRole::First => {
                        plan.push((VisitKind::Phone, day(3 + rng.random_range(0..20))));
                        if month % 2 == 0 {
                            plan.push((VisitKind::Home, day(5 + rng.random_range(0..20))));
                        }
                    }
                    PairingRole::Second => {
                        plan.push((VisitKind::Home, day(2 + rng.random_range(0..24))))
                    }
                }
                for (kind, date) in plan {
                    if rng.random_range(0..10) == 0 || date > today {
                        continue; // a miss
                    }
                    n += 1;
                    let mut v = VisitBody::new(kind, at(date, 10 + rng.random_range(0..6)));
                    if kind == VisitKind::Home {
                        let account = devices
                            .get(&p.helper_id)
                            .and_then(|d| d.caller.account_id)
                            .unwrap_or_default();
                        let drawn = mark(n)?;
                        v.household_signature = Some(HouseholdSignature::Witness {
                            name: "村公证员".into(),
                            role: "村公证人".into(),
                            reason: "户主年老不能书写".into(),
                            image_sha256: Some(sha256_hex(&drawn)),
                        });
                        photos.push((drawn, account, "image/png"));
                        v.help.push("讲解医疗报销政策".into());
                        if rng.random_range(0..15) != 0 {
                            let bytes = photo(n)?;
                            v.photos.push(PhotoRef {
                                sha256: sha256_hex(&bytes),
                                bytes: bytes.len() as u64,
                                width: 48,
                                height: 36,
                            });
                            photos.push((bytes, account, "image/jpeg"));
                        }
                    }
                    let clock_ahead = rng.random_range(0..60) == 0;
                    let created = if clock_ahead {
                        Utc::now() + chrono::Duration::days(2)
                    } else {
                        v.at + chrono::Duration::hours(1)
                    };
                    let voided = kind == VisitKind::Phone && rng.random_range(0..40) == 0;
                    planned.entry(p.helper_id).or_default().push(DemoVisit {
                        household_id: p.household_id,
                        visit: v,
                        created,
                        void_at: voided.then(|| at(date, 20).max(created)),
                    });
                }
            }
        }
    }
    for (helper, mut visits) in planned {
        let Some(dev) = devices.get_mut(&helper) else {
            continue;
        };
        visits.sort_by_key(|v| v.created);
        let mut voids = Vec::new();
        for v in visits {
            // A void is signed when its time comes among the device's visits.
            voids.sort_by_key(|(at, _, _)| std::cmp::Reverse(*at));
            while voids.last().is_some_and(|(at, _, _)| *at <= v.created) {
                if let Some((at, household, target)) = voids.pop() {
                    dev.sign(household, RecordType::Void, None, Some(target), at)?;
                }
            }
            let id = dev.sign(
                v.household_id,
                RecordType::Visit,
                Some(v.visit),
                None,
                v.created,
            )?;
            if let Some(void_at) = v.void_at {
                voids.push((void_at, v.household_id, id));
            }
        }
        voids.sort_by_key(|(at, _, _)| std::cmp::Reverse(*at));
        while let Some((at, household, target)) = voids.pop() {
            dev.sign(household, RecordType::Void, None, Some(target), at)?;
        }
    }
    store_photos(db, &store, &photos).await?;
    let mut total = 0;
    let signers = crate::services::signers::Signers::default();
    for dev in devices.values_mut() {
        for chunk in std::mem::take(&mut dev.records).chunks(bangfu_shared::sync::MAX_PUSH_RECORDS)
        {
            total += chunk.len();
            sync::push(
                db,
                settings,
                &signers,
                &dev.caller,
                PushRequest {
                    records: chunk.to_vec(),
                },
            )
            .await?;
        }
    }
    Ok(total)
}
