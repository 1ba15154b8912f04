//! What a record may claim about other records and about its own time.
//!
//! Voids and amendments act only on their author's own visits: a helper who can see
//! another helper's visit (a second helper reads the first helper's record ids on the
//! quarterly sheet) must not be able to withdraw or move it, in whichever order the
//! records arrive. And a photo first used by a visit that was later voided counts on
//! the visit recorded again with it. A visit dated after it was signed does not count;
//! one signed long after its date counts, flagged as entered late.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use bangfu_server::db_test;
use bangfu_server::entities::visit_fact;
use bangfu_shared::VisitKind;
use bangfu_shared::sync::AckStatus;
use bangfu_shared::visit::{RecordType, SignedRecord, VisitBody};
use bangfu_tests::TestDb;
use bangfu_tests::field::{jpeg, png, upload};
use bangfu_tests::scenario::Field;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

async fn push_as(f: &Field, token: &str, records: &[SignedRecord]) -> Vec<(AckStatus, String)> {
    let (status, body) =
        f.w.post_json(
            Some(token),
            "/sync/push",
            &serde_json::json!({ "records": records }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let resp: bangfu_shared::sync::PushResponse = serde_json::from_value(body).unwrap();
    resp.acks
        .into_iter()
        .map(|a| (a.status, a.reason.unwrap_or_default()))
        .collect()
}

/// Uploads `files` as the field helper.
async fn upload_all(f: &Field, files: &[&Vec<u8>]) {
    for bytes in files {
        assert!(
            upload(&f.w.http, &f.origin, &f.token, bytes)
                .await
                .is_success()
        );
    }
}

/// The visit fact of record `id`: (voided, superseded, photo_reused).
async fn fact(t: &TestDb, id: uuid::Uuid) -> (bool, bool, bool) {
    let f = visit_fact::Entity::find()
        .filter(visit_fact::Column::RecordId.eq(id.to_string()))
        .one(&t.db)
        .await
        .unwrap()
        .expect("a visit fact");
    (f.voided, f.superseded, f.photo_reused)
}

db_test!(
    only_the_author_voids_or_amends_a_visit_in_any_order,
    foreign_targets
);
async fn foreign_targets(t: &TestDb) {
    let mut f = Field::new(t).await;
    let (second, mut s) = f.second_helper(t).await;
    let h = f.household;

    // The first helper's call is stored; the second helper tries to withdraw and move it.
    let call = f.device.phone_call(h);
    assert_eq!(
        f.push(std::slice::from_ref(&call)).await.acks[0].status,
        AckStatus::Accepted
    );
    let void = s.sign(
        h,
        RecordType::Void,
        None,
        Some(call.record.id),
        Some("误录"),
    );
    let mut moved = call.record.visit.clone().unwrap();
    moved.at -= chrono::Duration::days(40);
    let amend = s.sign(
        h,
        RecordType::Amendment,
        Some(moved),
        Some(call.record.id),
        None,
    );
    let acks = push_as(&f, &second, &[void, amend]).await;
    for (status, reason) in &acks {
        assert_eq!(*status, AckStatus::Rejected, "{reason}");
        assert!(reason.contains("another helper"), "{reason}");
    }
    assert_eq!(fact(t, call.record.id).await, (false, false, false));

    // Out of order: the second helper's void and amendment of a visit arrive before it.
    let later = f.device.phone_call(h);
    let void = s.sign(
        h,
        RecordType::Void,
        None,
        Some(later.record.id),
        Some("误录"),
    );
    let mut moved = later.record.visit.clone().unwrap();
    moved.at -= chrono::Duration::days(40);
    let amend = s.sign(
        h,
        RecordType::Amendment,
        Some(moved),
        Some(later.record.id),
        None,
    );
    let acks = push_as(&f, &second, &[void, amend.clone()]).await;
    assert!(
        acks.iter().all(|(s, _)| *s == AckStatus::Accepted),
        "{acks:?}"
    );
    assert_eq!(
        f.push(std::slice::from_ref(&later)).await.acks[0].status,
        AckStatus::Accepted
    );
    assert_eq!(
        fact(t, later.record.id).await,
        (false, false, false),
        "the author's visit stands, neither voided nor superseded"
    );
    assert!(
        fact(t, amend.record.id).await.1,
        "the foreign amendment never counts"
    );

    // The author's own void and amendment still work, and an amendment must name the
    // original visit, not an amendment of it.
    let mut fixed = call.record.visit.clone().unwrap();
    fixed.notes = Some("更正".into());
    let own_amend = f.device.sign(
        h,
        RecordType::Amendment,
        Some(fixed.clone()),
        Some(call.record.id),
        None,
    );
    let chained = f.device.sign(
        h,
        RecordType::Amendment,
        Some(fixed),
        Some(own_amend.record.id),
        None,
    );
    let own_void = f.device.sign(
        h,
        RecordType::Void,
        None,
        Some(later.record.id),
        Some("重复"),
    );
    let acks = f.push(&[own_amend.clone(), chained, own_void]).await.acks;
    assert_eq!(acks[0].status, AckStatus::Accepted);
    assert_eq!(acks[1].status, AckStatus::Rejected);
    assert!(
        acks[1]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("not a visit"),
        "{:?}",
        acks[1].reason
    );
    assert_eq!(acks[2].status, AckStatus::Accepted);
    assert_eq!(fact(t, call.record.id).await, (false, true, false));
    assert_eq!(fact(t, own_amend.record.id).await, (false, false, false));
    assert!(
        fact(t, later.record.id).await.0,
        "the author's void withdraws the visit"
    );
}

db_test!(
    a_photo_of_a_voided_visit_counts_on_the_visit_recorded_again,
    photo_after_void
);
async fn photo_after_void(t: &TestDb) {
    let mut f = Field::new(t).await;
    let h = f.household;
    let photo = jpeg(12, 41);
    let signature = png(41);
    upload_all(&f, &[&photo, &signature]).await;
    let first = f.device.home_visit(h, &photo, &signature);
    let again = f.device.home_visit(h, &photo, &signature);
    let acks = f.push(&[first.clone(), again.clone()]).await.acks;
    assert!(
        acks.iter().all(|a| a.status == AckStatus::Accepted),
        "{acks:?}"
    );
    assert!(
        fact(t, again.record.id).await.2,
        "the second use of a photo is flagged"
    );
    assert!(acks[0].flags.is_empty(), "the first use counts: {acks:?}");
    assert_eq!(
        acks[1].flags,
        vec!["photo_reused"],
        "the device is told the visit does not count"
    );
    let resent = f.push(std::slice::from_ref(&again)).await.acks;
    assert_eq!(
        resent[0].flags,
        vec!["photo_reused"],
        "and again on a re-send"
    );
    let (again_flags, cursor) = pulled_flags(&f, 0, again.record.id).await;
    assert_eq!(
        again_flags,
        Some(vec!["photo_reused".to_string()]),
        "pull says so too"
    );

    let void = f.device.sign(
        h,
        RecordType::Void,
        None,
        Some(first.record.id),
        Some("录错了户"),
    );
    assert_eq!(f.push(&[void]).await.acks[0].status, AckStatus::Accepted);
    assert!(fact(t, first.record.id).await.0);
    assert_eq!(
        fact(t, again.record.id).await,
        (false, false, false),
        "with the first use withdrawn, the visit recorded again counts"
    );
    assert_eq!(
        pulled_flags(&f, cursor, again.record.id).await.0,
        Some(vec![]),
        "the device's next pull brings the visit again, no longer flagged"
    );

    // A third use is still a re-use of the standing visit's photo.
    let third = f.device.home_visit(h, &photo, &signature);
    assert_eq!(
        f.push(std::slice::from_ref(&third)).await.acks[0].status,
        AckStatus::Accepted
    );
    assert!(fact(t, third.record.id).await.2);
}

db_test!(
    a_photo_belongs_to_the_visit_that_used_it_first_and_its_amendments,
    photo_owner
);
async fn photo_owner(t: &TestDb) {
    let mut f = Field::new(t).await;
    let h = f.household;
    let (photo, mark, other_mark) = (jpeg(12, 51), png(51), png(56));
    upload_all(&f, &[&photo, &mark, &other_mark]).await;
    let first = f.device.home_visit(h, &photo, &mark);
    let again = f.device.home_visit(h, &photo, &other_mark);
    for r in [&first, &again] {
        assert_eq!(
            f.push(std::slice::from_ref(r)).await.acks[0].status,
            AckStatus::Accepted
        );
    }
    assert!(!fact(t, first.record.id).await.2, "the first use owns it");
    assert!(fact(t, again.record.id).await.2);

    // The first visit's helper corrects it: the photo is still its own.
    let mut fixed = first.record.visit.clone().unwrap();
    fixed.notes = Some("更正".into());
    let amend_first = f.device.sign(
        h,
        RecordType::Amendment,
        Some(fixed),
        Some(first.record.id),
        None,
    );
    let acks = f.push(std::slice::from_ref(&amend_first)).await.acks;
    assert_eq!(acks[0].status, AckStatus::Accepted);
    assert!(acks[0].flags.is_empty(), "the amendment counts: {acks:?}");
    assert_eq!(fact(t, amend_first.record.id).await, (false, false, false));

    // Correcting the re-use keeps the flag.
    let mut same = again.record.visit.clone().unwrap();
    same.notes = Some("更正".into());
    let amend_again = f.device.sign(
        h,
        RecordType::Amendment,
        Some(same),
        Some(again.record.id),
        None,
    );
    assert_eq!(
        f.push(std::slice::from_ref(&amend_again)).await.acks[0].flags,
        vec!["photo_reused"]
    );

    // Withdrawing the first visit clears the re-use.
    let void = f.device.sign(
        h,
        RecordType::Void,
        None,
        Some(first.record.id),
        Some("录错了户"),
    );
    assert_eq!(f.push(&[void]).await.acks[0].status, AckStatus::Accepted);
    assert!(
        !fact(t, amend_again.record.id).await.2,
        "the corrected visit counts now"
    );

    // In one batch as across batches: a file another visit signed with first is no new
    // photo.
    let (card, later_photo, fresh_signature) = (png(52), jpeg(12, 54), png(53));
    upload_all(&f, &[&card, &later_photo, &fresh_signature]).await;
    let signs = f.device.home_visit(h, &later_photo, &card);
    let shows = f.device.home_visit(h, &card, &fresh_signature);
    let acks = f.push(&[signs.clone(), shows.clone()]).await.acks;
    assert!(acks[0].flags.is_empty(), "{acks:?}");
    assert_eq!(acks[1].flags, vec!["photo_reused"], "{acks:?}");

    // A visit whose void arrived before it owns nothing: the visit recorded again with
    // its photo in the same batch counts.
    let (withdrawn_photo, mark_a, mark_b) = (jpeg(12, 55), png(58), png(59));
    upload_all(&f, &[&withdrawn_photo, &mark_a, &mark_b]).await;
    let withdrawn = f.device.home_visit(h, &withdrawn_photo, &mark_a);
    let recorded_again = f.device.home_visit(h, &withdrawn_photo, &mark_b);
    let void = f.device.sign(
        h,
        RecordType::Void,
        None,
        Some(withdrawn.record.id),
        Some("录错了户"),
    );
    assert_eq!(f.push(&[void]).await.acks[0].status, AckStatus::Accepted);
    let acks = f
        .push(&[withdrawn.clone(), recorded_again.clone()])
        .await
        .acks;
    assert!(
        acks.iter()
            .all(|a| a.status == AckStatus::Accepted && a.flags.is_empty()),
        "{acks:?}"
    );
    assert!(fact(t, withdrawn.record.id).await.0, "voided as it arrived");
    assert!(!fact(t, recorded_again.record.id).await.2);

    // A mark drawn on the pad is never the same bytes twice: the same signature image on
    // a second visit is a copy, and that visit does not count, like a re-used photo.
    let (p1, p2, copied) = (jpeg(12, 60), jpeg(12, 61), png(60));
    upload_all(&f, &[&p1, &p2, &copied]).await;
    let signed = f.device.home_visit(h, &p1, &copied);
    let copy = f.device.home_visit(h, &p2, &copied);
    assert!(
        f.push(std::slice::from_ref(&signed)).await.acks[0]
            .flags
            .is_empty()
    );
    assert_eq!(
        f.push(std::slice::from_ref(&copy)).await.acks[0].flags,
        vec!["photo_reused"]
    );
    assert_eq!(
        (
            fact(t, signed.record.id).await.2,
            fact(t, copy.record.id).await.2
        ),
        (false, true)
    );
}

/// The flags of record `id` in the helper's pull from `cursor` (`None`: not in it), and
/// the cursor after it.
async fn pulled_flags(f: &Field, cursor: i64, id: uuid::Uuid) -> (Option<Vec<String>>, i64) {
    let (status, body) =
        f.w.get(Some(&f.token), &format!("/sync/pull?cursor={cursor}"))
            .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let pull: bangfu_shared::sync::PullResponse = serde_json::from_value(body).unwrap();
    assert!(!pull.more, "one page");
    let flags = pull
        .records
        .into_iter()
        .find(|r| r.signed.record.id == id)
        .map(|r| r.flags);
    (flags, pull.cursor)
}

db_test!(
    visits_dated_after_signing_or_entered_late_are_flagged,
    dating
);
async fn dating(t: &TestDb) {
    let mut f = Field::new(t).await;
    let h = f.household;
    let signed = chrono::Utc::now();
    let records: Vec<SignedRecord> = [
        signed - chrono::Duration::days(20),
        signed + chrono::Duration::days(1),
        signed - chrono::Duration::days(2),
        // Seven whole days and most of an eighth: late (more than 7 × 24 hours).
        signed - chrono::Duration::hours(7 * 24 + 23),
        signed - chrono::Duration::hours(6 * 24 + 23),
    ]
    .into_iter()
    .map(|at| {
        let mut v = VisitBody::new(VisitKind::Phone, at);
        v.notes = Some("电话了解近况".into());
        f.device
            .sign_at(h, RecordType::Visit, Some(v), None, None, signed)
    })
    .collect();
    let acks = f.push(&records).await.acks;
    assert!(
        acks.iter().all(|a| a.status == AckStatus::Accepted),
        "{acks:?}"
    );
    assert_eq!(acks[0].flags, ["entered_late"]);
    assert_eq!(acks[1].flags, ["dated_after_signing"]);
    assert!(acks[2].flags.is_empty(), "{:?}", acks[2]);
    assert_eq!(acks[3].flags, ["entered_late"], "7 days 23 hours is late");
    assert!(acks[4].flags.is_empty(), "{:?}", acks[4]);
    // The office's anomaly list names the visits entered late, with household and date,
    // not only the drill-down of one household (QA s29b J5).
    let (_, anomalies) = f.w.get(Some(&f.county), "/sync/anomalies").await;
    let late: Vec<i64> = anomalies
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "entered_late" && a["household_id"] == h)
        .map(|a| a["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        late,
        [records[0].record.seq, records[3].record.seq],
        "{anomalies}"
    );
    let resp =
        f.w.http
            .get(f.w.server.url("/sync/anomalies?format=csv"))
            .bearer_auth(&f.county)
            .send()
            .await
            .unwrap();
    let csv = resp.text().await.unwrap();
    assert!(
        csv.contains(",补录,") && csv.contains("在走访多日后才录入"),
        "{csv}"
    );
    // Lateness alone is said not to decide counting: another row may say the visit
    // does not count, and the 补录 row must not claim it does (QA s30b M1).
    assert!(!csv.contains("：计入考勤"), "{csv}");
    let mut counted = Vec::new();
    for r in &records {
        let fact = visit_fact::Entity::find()
            .filter(visit_fact::Column::RecordId.eq(r.record.id.to_string()))
            .one(&t.db)
            .await
            .unwrap()
            .unwrap();
        counted.push(!fact.clock_flag);
    }
    assert_eq!(
        counted,
        [true, false, true, true, true],
        "a late entry counts; a visit dated after its signing does not"
    );

    // The county office's drill-down shows each visit's flags and why it does not count.
    for (r, flags, reason) in [
        // (Before the helper's pairing began, the fixture's import day: not counted.)
        (
            &records[0],
            serde_json::json!(["entered_late"]),
            "走访时未与该户结对",
        ),
        (&records[1], serde_json::Value::Null, "设备时间异常"),
    ] {
        let day = bangfu_server::services::facts::local_date(r.record.visit.as_ref().unwrap().at);
        let quarter = bangfu_shared::report::Quarter::of(day);
        let (status, lines) =
            f.w.get(
                Some(&f.county),
                &format!("/reports/records?household={h}&quarter={quarter}"),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{lines}");
        let line = lines
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["record_id"] == r.record.id.to_string())
            .unwrap_or_else(|| panic!("{lines}"));
        assert_eq!(line["flags"], flags, "{line}");
        assert_eq!(line["reason"].as_str(), Some(reason), "{line}");
    }

    // Correcting a note weeks later is not itself a late entry: a visit entered on time
    // stays so.
    // (On a device of its own: this one signed the records above with today's clock,
    // and one signed after them 20 days earlier would say its clock went back.)
    let long_ago = signed - chrono::Duration::days(20);
    let mut on_time = VisitBody::new(VisitKind::Phone, long_ago);
    on_time.notes = Some("电话了解近况".into());
    f.device = bangfu_tests::field::Device::register(&f.w, &f.token, f.device.helper_id).await;
    let first = f.device.sign_at(
        h,
        RecordType::Visit,
        Some(on_time.clone()),
        None,
        None,
        long_ago + chrono::Duration::hours(1),
    );
    let acks = f.push(std::slice::from_ref(&first)).await.acks;
    assert!(acks[0].flags.is_empty(), "{:?}", acks[0]);
    on_time.notes = Some("更正备注".into());
    let amend = f.device.sign_at(
        h,
        RecordType::Amendment,
        Some(on_time.clone()),
        Some(first.record.id),
        None,
        signed,
    );
    let acks = f.push(&[amend]).await.acks;
    assert!(acks[0].flags.is_empty(), "{:?}", acks[0]);
    // But a photo the visit did not have, brought by an amendment weeks later, was
    // taken then: it proves nothing of the visit, and the amendment is a late entry,
    // marked 补录 (QA s29b J18).
    let photo = jpeg(20, 77);
    on_time.photos.push(bangfu_shared::visit::PhotoRef {
        sha256: bangfu_shared::visit::sha256_hex(&photo),
        bytes: photo.len() as u64,
        width: 100,
        height: 90,
    });
    let late_photo = f.device.sign_at(
        h,
        RecordType::Amendment,
        Some(on_time),
        Some(first.record.id),
        None,
        signed,
    );
    let acks = f.push(&[late_photo]).await.acks;
    assert_eq!(acks[0].flags, ["entered_late"], "{:?}", acks[0]);
    // And a visit entered late stays so: correcting its note keeps the office's 补录
    // mark, which the sheet reads from the current version (QA s22b F1).
    let mut fixed = records[0].record.visit.clone().unwrap();
    fixed.notes = Some("更正备注".into());
    let amend = f.device.sign_at(
        h,
        RecordType::Amendment,
        Some(fixed),
        Some(records[0].record.id),
        None,
        signed,
    );
    let acks = f.push(&[amend]).await.acks;
    assert_eq!(acks[0].flags, ["entered_late"], "{:?}", acks[0]);
    // But moving a visit weeks back (into a missed window, say) is a late entry.
    let mut moved = records[2].record.visit.clone().unwrap();
    moved.at = signed - chrono::Duration::days(20);
    let back = f.device.sign_at(
        h,
        RecordType::Amendment,
        Some(moved),
        Some(records[2].record.id),
        None,
        signed,
    );
    let acks = f.push(&[back]).await.acks;
    assert_eq!(acks[0].flags, ["entered_late"], "{:?}", acks[0]);
}

db_test!(
    a_devices_later_amendment_wins_though_its_clock_went_back,
    clock_back
);
async fn clock_back(t: &TestDb) {
    let mut f = Field::new(t).await;
    let h = f.household;
    let call = f.device.phone_call(h);
    let now = chrono::Utc::now();
    let mut first = call.record.visit.clone().unwrap();
    first.notes = Some("第一次更正".into());
    let mut second = first.clone();
    second.notes = Some("第二次更正".into());
    let amend = |f: &mut Field, v: VisitBody, at| {
        f.device.sign_at(
            h,
            RecordType::Amendment,
            Some(v),
            Some(call.record.id),
            None,
            at,
        )
    };
    let a1 = amend(&mut f, first, now);
    // The device's clock was set back an hour before the second correction.
    let a2 = amend(&mut f, second, now - chrono::Duration::hours(1));
    let acks = f.push(&[call.clone(), a1.clone(), a2.clone()]).await.acks;
    assert!(
        acks.iter().all(|a| a.status == AckStatus::Accepted),
        "{acks:?}"
    );
    assert!(
        fact(t, a1.record.id).await.1,
        "the first correction is replaced"
    );
    assert!(
        !fact(t, a2.record.id).await.1,
        "the device's later correction stands"
    );
    // The clock went back between them: the later record counts, marked for the office
    // (QA s26a F2), with both times in China time.
    assert!(acks[1].flags.is_empty(), "{:?}", acks[1]);
    assert!(
        acks[2].flags.iter().any(|f| f == "clock_went_back"),
        "{:?}",
        acks[2]
    );
    let (_, anomalies) = f.w.get(Some(&f.county), "/sync/anomalies").await;
    let entry = anomalies
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "clock_went_back")
        .unwrap_or_else(|| panic!("{anomalies}"));
    assert_eq!(entry["seq"], a2.record.seq, "{entry}");
    let china = |t: chrono::DateTime<chrono::Utc>| {
        (t + chrono::Duration::hours(8))
            .format("%Y-%m-%d %H:%M:%S (UTC+8)")
            .to_string()
    };
    assert_eq!(
        entry["detail"],
        format!(
            "record {} was signed at {}, before the device's record {} ({}): its clock went back",
            a2.record.seq,
            china(a2.record.created_at),
            a1.record.seq,
            china(a1.record.created_at)
        )
    );

    // A visit signed with the clock gone back keeps its mark when corrected on the same
    // day with the clock set right: its date is still that clock's word (QA s26d F5).
    let back = now - chrono::Duration::hours(2);
    let mut v = VisitBody::new(VisitKind::Phone, back);
    v.notes = Some("电话了解近况".into());
    let late = f
        .device
        .sign_at(h, RecordType::Visit, Some(v.clone()), None, None, back);
    v.notes = Some("更正备注".into());
    let fixed = f.device.sign_at(
        h,
        RecordType::Amendment,
        Some(v),
        Some(late.record.id),
        None,
        chrono::Utc::now(),
    );
    let acks = f.push(&[late]).await.acks;
    assert_eq!(acks[0].flags, ["clock_went_back"], "{:?}", acks[0]);
    let acks = f.push(&[fixed]).await.acks;
    assert_eq!(acks[0].flags, ["clock_went_back"], "{:?}", acks[0]);
}

db_test!(
    a_record_signed_before_its_device_was_registered_is_flagged_and_not_counted,
    clock_set_back
);
/// A record claiming to be signed before its device was registered was signed with the
/// clock set back: the way to date a visit into a closed quarter that would also escape
/// the late-entry mark. It is stored, flagged `clock_behind`, not counted, listed to the
/// office in China time; an amendment signed with a right clock settles it, as a late
/// entry (QA s26a F2, s26c F1).
async fn clock_set_back(t: &TestDb) {
    let f = Field::new(t).await;
    let h = f.household;
    let mut device = bangfu_tests::field::Device::register_today(
        &f.w.http,
        &f.w.server.base,
        &f.token,
        f.device.helper_id,
    )
    .await;
    let now = chrono::Utc::now();
    let call = |at: chrono::DateTime<chrono::Utc>| {
        let mut v = VisitBody::new(VisitKind::Phone, at);
        v.notes = Some("电话了解近况".into());
        v
    };
    let back = now - chrono::Duration::days(9);
    let set_back = device.sign_at(h, RecordType::Visit, Some(call(back)), None, None, back);
    // A clock a minute slow, within the tolerance, is not set back.
    let slow_at = now - chrono::Duration::seconds(60);
    let slow = device.sign_at(
        h,
        RecordType::Visit,
        Some(call(slow_at)),
        None,
        None,
        slow_at,
    );
    let acks = f.push(&[set_back.clone(), slow.clone()]).await.acks;
    assert!(
        acks.iter().all(|a| a.status == AckStatus::Accepted),
        "{acks:?}"
    );
    assert_eq!(acks[0].flags, ["clock_behind"], "{:?}", acks[0]);
    assert!(acks[1].flags.is_empty(), "{:?}", acks[1]);
    let clock_flag = |id: String| async move {
        visit_fact::Entity::find()
            .filter(visit_fact::Column::RecordId.eq(id))
            .one(&t.db)
            .await
            .unwrap()
            .unwrap()
            .clock_flag
    };
    assert!(
        clock_flag(set_back.record.id.to_string()).await,
        "not counted"
    );
    assert!(!clock_flag(slow.record.id.to_string()).await);

    let (_, anomalies) = f.w.get(Some(&f.county), "/sync/anomalies").await;
    let entry = anomalies
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "clock_behind")
        .unwrap_or_else(|| panic!("{anomalies}"));
    assert_eq!(entry["seq"], set_back.record.seq, "{entry}");
    let detail = entry["detail"].as_str().unwrap();
    let signed_china = (back + chrono::Duration::hours(8)).format("%Y-%m-%d %H:%M:%S (UTC+8)");
    assert!(
        detail.starts_with(&format!(
            "device time {signed_china} is before this device was registered"
        )),
        "{detail}"
    );

    // Amended with the clock set right: the visit of nine days ago counts, marked as
    // entered late.
    let amend = device.sign_at(
        h,
        RecordType::Amendment,
        Some(call(back)),
        Some(set_back.record.id),
        None,
        now,
    );
    let acks = f.push(std::slice::from_ref(&amend)).await.acks;
    assert_eq!(acks[0].flags, ["entered_late"], "{:?}", acks[0]);
    assert!(!clock_flag(amend.record.id.to_string()).await, "counted");
}
