//! The local store on a temporary directory: real SQLite, real files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod common;

use bangfu_client::draft::{SignatureMethod, VisitDraft};
use bangfu_client::{Client, ClientError, DataDir, Limits};
use bangfu_shared::VisitKind;
use bangfu_shared::visit::{
    Delivery, HouseholdSignature, Occasion, RecordType, VisitBody, VisitError, ZERO_HASH,
};
use common::*;
use sea_orm::ConnectionTrait;

fn witness() -> HouseholdSignature {
    HouseholdSignature::Witness {
        name: "赵村医".into(),
        role: "村公证人".into(),
        reason: "户主卧床".into(),
        image_sha256: None,
    }
}

/// [`witness`] with a mark drawn on the pad (`n` makes it a drawing of its own).
async fn marked_witness(c: &Client, dir: &std::path::Path, n: u32) -> HouseholdSignature {
    let png = std::fs::read(write_png(&dir.join(format!("mark{n}.png")), 200 + n, 80)).unwrap();
    let HouseholdSignature::Witness {
        name, role, reason, ..
    } = witness()
    else {
        unreachable!("witness() is a witness")
    };
    HouseholdSignature::Witness {
        name,
        role,
        reason,
        image_sha256: Some(c.attach_signature_png(&png).await.unwrap()),
    }
}

#[test]
fn opens_in_wal_mode_and_migrates_once() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = Client::open(DataDir::new(dir.path()), Limits::default())
            .await
            .unwrap();
        assert_eq!(c.store().journal_mode().await.unwrap(), "wal");
        assert!(matches!(c.identity().await, Err(ClientError::NotLoggedIn)));
        c.store().clone().close().await.unwrap();
        // Reopening does not re-run migrations (they would fail on existing tables).
        let c = Client::open(DataDir::new(dir.path()), Limits::default())
            .await
            .unwrap();
        assert_eq!(c.store().integrity_check().await.unwrap(), "ok");
    });
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}

#[test]
fn key_file_is_private() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(login(dir.path(), Limits::default()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = DataDir::new(dir.path()).key_path();
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read(&key).unwrap().len(), 32);
    }
}

#[test]
fn records_chain_and_verify_across_restarts() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let photo_a = write_jpeg(&dir.path().join("a.jpg"), 800, 600);
    let photo_b = write_png(&dir.path().join("b.png"), 300, 500);
    let (home_id, call_id) = rt.block_on(async {
        let c = login(&dir.path().join("data"), Limits::default()).await;
        let mut home = VisitBody::new(VisitKind::Home, now());
        home.photos = vec![
            c.attach_photo(&photo_a).await.unwrap(),
            c.attach_photo(&photo_b).await.unwrap(),
        ];
        home.deliveries = vec![Delivery {
            item: "月饼".into(),
            value_fen: 8800,
            occasion: Some(Occasion::Zhongqiu),
        }];
        home.household_signature = Some(witness());
        let first = c.record_visit(1, home, None, None, now()).await.unwrap();
        assert_eq!(
            (first.record.seq, first.record.prev_sha256.as_str()),
            (1, ZERO_HASH)
        );
        let call = c
            .record_visit(
                2,
                VisitBody::new(VisitKind::Phone, now()),
                None,
                None,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(call.record.seq, 2);
        assert_eq!(
            call.record.prev_sha256,
            first.record.record_sha256().unwrap()
        );
        (first.record.id, call.record.id)
    });
    // "Quit and restart": a fresh runtime and client over the same directory.
    let rt = runtime();
    rt.block_on(async {
        let c = Client::open(DataDir::new(dir.path().join("data")), Limits::default())
            .await
            .unwrap();
        let visits = c.visits(None, 10).await.unwrap();
        assert_eq!(visits.len(), 2);
        let home = visits.iter().find(|v| v.visit_id == home_id).unwrap();
        let body = home.current.signed.record.visit.as_ref().unwrap();
        assert_eq!(body.photos.len(), 2);
        for p in &body.photos {
            assert!(c.photos().verify(&p.sha256), "photo {} on disk", p.sha256);
        }
        assert_eq!(home.unsynced, 1, "local only until sync");
        assert!(visits.iter().any(|v| v.visit_id == call_id));
        let report = c.verify().await.unwrap();
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.records, 2);
    });
}

#[test]
fn a_home_visit_without_the_household_signature_stays_a_draft() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let mut draft = VisitDraft::new(1, VisitKind::Home, now());
        draft.problems = "屋顶漏雨".into();
        c.save_draft(&draft).await.unwrap();
        let err = c.complete_draft(&draft, now()).await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Visit(VisitError::MissingHouseholdSignature)
            ),
            "{err}"
        );
        assert_eq!(c.store().record_count().await.unwrap(), 0);
        assert_eq!(
            c.drafts().await.unwrap(),
            vec![draft.clone()],
            "the draft is kept"
        );

        draft.signature_method = SignatureMethod::Witness;
        draft.witness_name = "赵村医".into();
        draft.witness_role = "村公证人".into();
        draft.witness_reason = "户主不识字".into();
        assert!(
            c.complete_draft(&draft, now()).await.is_err(),
            "the witness signs on the pad too"
        );
        let png = std::fs::read(write_png(&dir.path().join("mark.png"), 80, 30)).unwrap();
        draft.signature_image = Some(c.attach_signature_png(&png).await.unwrap());
        let signed = c.complete_draft(&draft, now()).await.unwrap();
        assert!(matches!(
            signed.record.visit.unwrap().household_signature,
            Some(HouseholdSignature::Witness { .. })
        ));
        assert!(
            c.drafts().await.unwrap().is_empty(),
            "signing removes the draft in the same transaction"
        );

        // A phone call needs only the helper.
        let call = VisitDraft::new(2, VisitKind::Phone, now());
        c.complete_draft(&call, now()).await.unwrap();
    });
}

#[test]
fn drafts_survive_a_restart() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut draft = VisitDraft::new(3, VisitKind::Home, now());
    draft.notes = "半句话".into();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        c.save_draft(&draft).await.unwrap();
        draft.notes.push_str("，写完了");
        c.save_draft(&draft).await.unwrap();
    });
    let rt = runtime();
    rt.block_on(async {
        let c = Client::open(DataDir::new(dir.path()), Limits::default())
            .await
            .unwrap();
        assert_eq!(c.drafts().await.unwrap(), vec![draft]);
    });
}

/// The library refuses an amendment without a reason, as the form and `visit amend`
/// do: an embedder cannot sign a correction the town office cannot read the cause of.
#[test]
fn record_visit_refuses_an_amendment_without_a_reason() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let body = VisitBody::new(VisitKind::Phone, now());
        let original = c
            .record_visit(2, body.clone(), None, None, now())
            .await
            .unwrap();
        let id = original.record.id;
        for reason in [None, Some(String::new()), Some(" \t ".to_string())] {
            let err = c
                .record_visit(2, body.clone(), Some((id, reason.clone())), None, now())
                .await
                .unwrap_err();
            assert!(
                matches!(err, ClientError::AmendmentReasonMissing),
                "{reason:?}: {err}"
            );
        }
        // Nothing was signed or stored.
        assert_eq!(c.store().record_count().await.unwrap(), 1);
        let row = c.original_visit(id).await.unwrap();
        assert_eq!(row.amendments, 0);
        // With a reason, trimmed as it is stored.
        let amended = c
            .record_visit(2, body, Some((id, Some("  时间记错 ".into()))), None, now())
            .await
            .unwrap();
        assert_eq!(amended.record.reason.as_deref(), Some("时间记错"));
    });
}

#[test]
fn amendments_and_voids_are_new_signed_records() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let mut body = VisitBody::new(VisitKind::Phone, now());
        body.problems = vec!["错字".into()];
        let original = c
            .record_visit(2, body.clone(), None, None, now())
            .await
            .unwrap();
        let id = original.record.id;

        body.problems = vec!["正确的问题".into()];
        let amendment = c
            .record_visit(2, body, Some((id, Some("改错字".into()))), None, now())
            .await
            .unwrap();
        assert_eq!(amendment.record.record_type, RecordType::Amendment);
        assert_eq!(amendment.record.target_id, Some(id));

        // Amending through the amendment's id still points at the original.
        let again = c.original_visit(amendment.record.id).await.unwrap();
        assert_eq!(again.visit_id, id);
        assert_eq!(again.amendments, 1);
        assert_eq!(
            again.current.signed.record.visit.as_ref().unwrap().problems,
            vec!["正确的问题".to_string()]
        );

        // Moving a visit to another household is refused.
        let b = again.current.signed.record.visit.clone().unwrap();
        assert!(matches!(
            c.record_visit(1, b, Some((id, Some("改户".into()))), None, now())
                .await,
            Err(ClientError::Refused(_))
        ));

        assert!(
            c.void_visit(id, "  ", now()).await.is_err(),
            "a void needs a reason"
        );
        let void = c.void_visit(id, "录错户", now()).await.unwrap();
        assert_eq!(void.record.record_type, RecordType::Void);
        assert!(c.void_visit(id, "again", now()).await.is_err());
        let b = VisitBody::new(VisitKind::Phone, now());
        assert!(matches!(
            c.record_visit(2, b, Some((id, Some("再改".into()))), None, now())
                .await,
            Err(ClientError::Refused(_))
        ));

        // Three records, nothing deleted; the original's bytes are unchanged.
        assert_eq!(c.store().record_count().await.unwrap(), 3);
        assert_eq!(
            c.store().record(id).await.unwrap().unwrap().signed,
            original
        );
        let row = c.original_visit(id).await.unwrap();
        assert!(row.voided);
        assert_eq!(row.void_reason.as_deref(), Some("录错户"));
        // A voided visit no longer counts as the last contact.
        let h = c.households(now()).await.unwrap();
        assert!(
            h.iter()
                .find(|h| h.detail.summary.id == 2)
                .unwrap()
                .last_phone
                .is_none()
        );
        assert!(c.verify().await.unwrap().ok());
    });
}

#[test]
fn the_store_refuses_to_edit_or_delete_signed_records() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        c.record_visit(
            2,
            VisitBody::new(VisitKind::Phone, now()),
            None,
            None,
            now(),
        )
        .await
        .unwrap();
        let db = c.store().connection();
        let edit = db
            .execute_unprepared("UPDATE records SET envelope_json = '{}'")
            .await;
        assert!(edit.unwrap_err().to_string().contains("never edited"));
        let delete = db.execute_unprepared("DELETE FROM records").await;
        assert!(delete.unwrap_err().to_string().contains("never deleted"));
        // The sync state may change (issue 4 marks records as uploaded).
        db.execute_unprepared("UPDATE records SET sync_state = 'synced'")
            .await
            .unwrap();
        assert_eq!(c.visits(None, 10).await.unwrap()[0].unsynced, 0);
    });
}

#[test]
fn households_show_last_contacts_and_overdue_by_policy() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let photo = write_jpeg(&dir.path().join("home.jpg"), 800, 600);
    rt.block_on(async {
        let c = login(&dir.path().join("data"), Limits::default()).await;
        // Household 2: a home visit (with the photo the policy asks) and a call this
        // window → both done this window, the windows of January and February still
        // missed (M7).
        let mut home = VisitBody::new(VisitKind::Home, now() - chrono::Duration::days(3));
        home.household_signature = Some(witness());
        home.photos = vec![c.attach_photo(&photo).await.unwrap()];
        c.record_visit(2, home, None, None, now()).await.unwrap();
        c.record_visit(
            2,
            VisitBody::new(VisitKind::Phone, now()),
            None,
            None,
            now(),
        )
        .await
        .unwrap();

        let list = c.households(now()).await.unwrap();
        assert_eq!(list.len(), 3);
        let by_id = |id| list.iter().find(|h| h.detail.summary.id == id).unwrap();
        let never = by_id(1);
        assert!(never.overdue(), "never visited → overdue");
        assert!(never.last_home.is_none());
        // The windows missed in the quarter, oldest first: January–February for the
        // bimonthly home visit, January and February for the monthly call (as the
        // server's sheet has them); the list names the one that began first.
        let windows: Vec<_> = never
            .missed
            .iter()
            .map(|w| (w.kind, w.from.to_string(), w.to.to_string(), w.months))
            .collect();
        assert_eq!(
            windows,
            vec![
                (VisitKind::Home, "2026-01-01".into(), "2026-02-28".into(), 2),
                (
                    VisitKind::Phone,
                    "2026-01-01".into(),
                    "2026-01-31".into(),
                    1
                ),
                (
                    VisitKind::Phone,
                    "2026-02-01".into(),
                    "2026-02-28".into(),
                    1
                ),
            ]
        );
        assert_eq!(never.first_missed().map(|w| w.kind), Some(VisitKind::Home));
        let visited = by_id(2);
        assert_eq!(
            visited.missed, never.missed,
            "a visit in March makes up for no window of January or February"
        );
        assert_eq!(visited.to_correct, 0);
        assert_eq!(
            visited.next_due(),
            None,
            "both requirements met this window"
        );
        assert_eq!(visited.last_home, Some(now() - chrono::Duration::days(3)));
        let second = by_id(3);
        assert_eq!(second.role, Some(bangfu_shared::PairingRole::Second));
        assert_eq!(
            second.due.len(),
            1,
            "a second helper owes a monthly home visit only"
        );
    });
}

#[test]
fn a_record_must_name_a_known_household_and_stored_images() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let err = c
            .record_visit(
                99,
                VisitBody::new(VisitKind::Phone, now()),
                None,
                None,
                now(),
            )
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            ClientError::NotFound {
                what: "household",
                ..
            }
        ));
        let mut home = VisitBody::new(VisitKind::Home, now());
        home.household_signature = Some(HouseholdSignature::Drawn {
            image_sha256: "ab".repeat(32),
        });
        let err = c
            .record_visit(1, home, None, None, now())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("missing from the local store"),
            "{err}"
        );
    });
}

/// A record of another device (the helper's old phone), as the server sends it in pull.
fn server_record(
    key: &bangfu_client::signing::DeviceKey,
    seq: i64,
    prev: &str,
    record_type: RecordType,
    target: Option<uuid::Uuid>,
) -> bangfu_shared::sync::ServerRecord {
    let visit = (record_type != RecordType::Void).then(|| {
        let mut v = VisitBody::new(VisitKind::Phone, now());
        v.notes = Some(format!("旧手机 {seq}"));
        v
    });
    let envelope = bangfu_shared::visit::RecordEnvelope {
        v: bangfu_shared::visit::FORMAT_VERSION,
        id: uuid::Uuid::now_v7(),
        record_type,
        device_id: 41,
        seq,
        prev_sha256: prev.into(),
        author_helper_id: HELPER_ID,
        household_id: 1,
        created_at: now() + chrono::Duration::seconds(seq),
        visit,
        target_id: target,
        reason: (record_type == RecordType::Void).then(|| "误录".to_string()),
    };
    bangfu_shared::sync::ServerRecord {
        signed: key.sign(envelope).unwrap(),
        status: bangfu_shared::sync::AckStatus::Accepted,
        missing_blobs: Vec::new(),
        flags: Vec::new(),
        received_at: now(),
        review: None,
        family_changes: Vec::new(),
    }
}

/// A reinstalled device recovers a visit its lost predecessor never finished sending the
/// photos of: it shows as awaiting photos, but no sync from this device can finish it, so
/// it does not count as this device's unsynced work.
#[test]
fn another_devices_unfinished_record_is_not_this_devices_unsynced_work() {
    use bangfu_shared::sync::{AckStatus, PullResponse};
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let lost = bangfu_client::signing::DeviceKey::from_seed([5; 32]);
        let mut unfinished = server_record(&lost, 1, ZERO_HASH, RecordType::Visit, None);
        unfinished.status = AckStatus::AwaitingPhotos;
        unfinished.missing_blobs = vec!["ab".repeat(32)];
        let page = PullResponse {
            records: vec![unfinished],
            households: None,
            policy: None,
            evidence_history: Vec::new(),
            exit_cuts_history: Vec::new(),
            visits_history: Vec::new(),
            cursor: 3,
            more: false,
        };
        let applied = c.store().apply_pull_page(&page).await.unwrap();
        assert_eq!(applied.imported, 1, "{applied:?}");
        let counts = c.store().sync_counts().await.unwrap();
        assert_eq!(
            (counts.awaiting_other_device, counts.awaiting_photos),
            (1, 0)
        );
        assert_eq!(counts.unsynced(), 0);

        c.record_visit(
            1,
            VisitBody::new(VisitKind::Phone, now()),
            None,
            None,
            now(),
        )
        .await
        .unwrap();
        assert_eq!(
            c.store().sync_counts().await.unwrap().unsynced(),
            1,
            "its own visit"
        );
    });
}

/// A record of a later format (signed by a newer app on another device) is kept in the
/// inbox, not dropped while the cursor moves past it: an updated app still finds it.
#[test]
fn a_pulled_record_of_a_newer_format_is_kept_for_an_update() {
    use bangfu_shared::sync::PullResponse;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let other = bangfu_client::signing::DeviceKey::from_seed([7; 32]);
        let mut newer = server_record(&other, 1, ZERO_HASH, RecordType::Visit, None);
        // (This version cannot sign it, nor check its signature: it cannot read it.)
        newer.signed.record.v = bangfu_shared::visit::FORMAT_VERSION + 1;
        let page = PullResponse {
            records: vec![newer.clone()],
            households: None,
            policy: None,
            evidence_history: Vec::new(),
            exit_cuts_history: Vec::new(),
            visits_history: Vec::new(),
            cursor: 7,
            more: false,
        };
        for _ in 0..2 {
            let applied = c.store().apply_pull_page(&page).await.unwrap();
            assert_eq!((applied.imported, applied.waiting), (0, 1), "{applied:?}");
            assert!(
                applied
                    .problems
                    .iter()
                    .any(|p| p.to_string().contains("kept and read after an update")),
                "{applied:?}"
            );
        }
        assert_eq!(c.store().pull_cursor().await.unwrap(), 7);
        assert!(c.visits(None, 10).await.unwrap().is_empty());
    });
}

#[test]
fn pull_pages_import_records_in_any_order_and_update_households() {
    use bangfu_client::store::SyncState;
    use bangfu_shared::sync::PullResponse;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let old = bangfu_client::signing::DeviceKey::from_seed([9; 32]);
        let visit = server_record(&old, 1, ZERO_HASH, RecordType::Visit, None);
        let visit_sha = visit.signed.record.record_sha256().unwrap();
        let void = server_record(
            &old,
            2,
            &visit_sha,
            RecordType::Void,
            Some(visit.signed.record.id),
        );
        // The void arrives first (its visit's photos came later, say): it waits.
        let mut households = default_households();
        households.truncate(1);
        let page = PullResponse {
            records: vec![void.clone()],
            households: Some(households),
            policy: None,
            evidence_history: Vec::new(),
            exit_cuts_history: Vec::new(),
            visits_history: Vec::new(),
            cursor: 10,
            more: true,
        };
        let applied = c.store().apply_pull_page(&page).await.unwrap();
        assert_eq!((applied.imported, applied.waiting), (0, 1));
        assert!(applied.households);
        assert_eq!(c.households(now()).await.unwrap().len(), 1);
        assert_eq!(c.store().pull_cursor().await.unwrap(), 10);
        assert!(c.visits(None, 10).await.unwrap().is_empty());

        let page = PullResponse {
            records: vec![visit.clone()],
            households: None,
            policy: None,
            evidence_history: Vec::new(),
            exit_cuts_history: Vec::new(),
            visits_history: Vec::new(),
            cursor: 12,
            more: false,
        };
        let applied = c.store().apply_pull_page(&page).await.unwrap();
        assert_eq!((applied.imported, applied.waiting), (2, 0), "{applied:?}");
        let v = c.visits(None, 10).await.unwrap();
        assert_eq!(v.len(), 1);
        assert!(v[0].voided);
        assert_eq!(v[0].sync, SyncState::Synced);
        assert_eq!(c.households(now()).await.unwrap().len(), 1, "kept");

        // The same page again changes nothing; this device's own chain is untouched.
        let applied = c.store().apply_pull_page(&page).await.unwrap();
        assert_eq!((applied.imported, applied.updated), (0, 1));
        let mine = c
            .record_visit(
                1,
                VisitBody::new(VisitKind::Phone, now()),
                None,
                None,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(mine.record.seq, 1, "a new device starts its own chain");
        assert!(c.verify().await.unwrap().ok());
        let counts = c.store().sync_counts().await.unwrap();
        assert_eq!((counts.synced, counts.local), (2, 1));
    });
}

/// The server's flags on an acknowledgement reach the visit as the helper sees it; an
/// amendment settles "does not count" but not what the office still sees; a flag this
/// version does not know is kept by its code.
#[test]
fn the_servers_flags_reach_the_visit_and_an_amendment_settles_the_time_ones() {
    use bangfu_client::flags::Flag;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let call = c
            .record_visit(
                1,
                VisitBody::new(VisitKind::Phone, now()),
                None,
                None,
                now(),
            )
            .await
            .unwrap();
        c.store()
            .apply_acks(&[ack(
                call.record.id,
                &[
                    "dated_after_signing",
                    "entered_late",
                    "sent_by_a_newer_server",
                ],
            )])
            .await
            .unwrap();
        let v = c.store().visit(call.record.id).await.unwrap().unwrap();
        assert_eq!(
            v.flags,
            vec![
                Flag::DatedAfterSigning,
                Flag::EnteredLate,
                Flag::Other("sent_by_a_newer_server".into())
            ]
        );
        assert_eq!(v.sync, bangfu_client::store::SyncState::Synced);

        let mut corrected = VisitBody::new(VisitKind::Phone, now() - chrono::Duration::hours(2));
        corrected.problems = vec!["时间已更正".into()];
        let amendment = c
            .record_visit(
                1,
                corrected,
                Some((call.record.id, Some("时间录错".into()))),
                None,
                now(),
            )
            .await
            .unwrap();
        c.store()
            .apply_acks(&[ack(amendment.record.id, &[])])
            .await
            .unwrap();
        let v = &c.visits(Some(1), 10).await.unwrap()[0];
        assert_eq!(
            v.flags,
            vec![
                Flag::EnteredLate,
                Flag::Other("sent_by_a_newer_server".into())
            ],
            "the corrected visit counts again; the late entry stays visible"
        );
    });
}

/// An office ends a pairing: the household drops out of the server's list. It stays
/// on the device as no longer paired: out of the list to visit, its name and visits
/// kept, its visits amended and voided, a visit dated within the pairing signed, one
/// after it refused in Chinese; listed again, it is current again.
#[test]
fn a_household_whose_pairing_ended_keeps_its_history_and_drafts() {
    use bangfu_client::i18n::Lang;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        let at =
            |d: u32| chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, d, 2, 0, 0).unwrap();
        let call = c
            .record_visit(
                3,
                VisitBody::new(VisitKind::Phone, at(13)),
                None,
                None,
                at(13),
            )
            .await
            .unwrap();

        // The server's list on 2026-03-20 no longer has 王五 (household 3).
        let identity = c.identity().await.unwrap();
        let mut listed = default_households();
        listed.truncate(2);
        let mut later = snapshot(listed);
        later.server_time = at(20);
        c.install_login(&identity, &later).await.unwrap();

        let current: Vec<i64> = c
            .households(at(20))
            .await
            .unwrap()
            .iter()
            .map(|h| h.detail.summary.id)
            .collect();
        assert_eq!(current, vec![1, 2], "no longer in the list to visit");
        let ended = c.ended_households().await.unwrap();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].detail.summary.head_name, "王五");
        assert_eq!(ended[0].unpaired_since, day(20));
        assert_eq!(
            ended[0].periods,
            vec![(
                chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
                day(20)
            )]
        );
        assert_eq!(c.household(3).await.unwrap().summary.head_name, "王五");
        assert_eq!(c.visits(Some(3), 10).await.unwrap().len(), 1);

        // Its visit is amended (same day) and a second one voided.
        let mut amended = VisitBody::new(VisitKind::Phone, at(13));
        amended.problems = vec!["补充：药费".into()];
        c.record_visit(
            3,
            amended,
            Some((call.record.id, Some("补充".into()))),
            None,
            at(21),
        )
        .await
        .unwrap();
        let second = c
            .record_visit(
                3,
                VisitBody::new(VisitKind::Phone, at(18)),
                None,
                None,
                at(21),
            )
            .await
            .expect("a visit dated within the pairing is signed");
        c.void_visit(second.record.id, "重复", at(21))
            .await
            .unwrap();

        // A draft dated after the pairing ended is refused, and kept.
        let mut draft = bangfu_client::draft::VisitDraft::new(3, VisitKind::Phone, at(21));
        draft.problems = "电话回访".into();
        c.save_draft(&draft).await.unwrap();
        let err = c.complete_draft(&draft, at(21)).await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::OutsidePairing {
                    household_id: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let zh = Lang::Zh.error(&err);
        assert!(
            zh.contains("王五户已结束结对")
                && zh.contains("2026-03-21")
                && zh.contains("2025-01-01 至 2026-03-20")
                && zh.contains("请更正走访日期"),
            "{zh}"
        );
        assert_eq!(c.drafts().await.unwrap().len(), 1, "the draft is kept");
        // Moving a visit out of the pairing by amendment is refused too.
        let moved = c
            .record_visit(
                3,
                VisitBody::new(VisitKind::Phone, at(21)),
                Some((call.record.id, Some("改期".into()))),
                None,
                at(21),
            )
            .await;
        assert!(
            matches!(moved, Err(ClientError::OutsidePairing { .. })),
            "{moved:?}"
        );
        assert!(c.verify().await.unwrap().ok());

        // Listed again (paired anew), it is current again and the draft signs.
        let mut again = snapshot(default_households());
        again.server_time = at(22);
        c.install_login(&identity, &again).await.unwrap();
        assert_eq!(c.households(at(22)).await.unwrap().len(), 3);
        assert!(c.ended_households().await.unwrap().is_empty());
        c.complete_draft(&draft, at(22)).await.unwrap();
    });
}

/// A pull page's household list replaces the current households the same way: the
/// ones it leaves out are kept as ended, once (the date they were first missed).
#[test]
fn a_pull_page_without_a_household_keeps_it_as_ended() {
    use bangfu_shared::sync::PullResponse;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let page = |households: Vec<bangfu_shared::api::HouseholdDetail>, cursor| PullResponse {
            records: vec![],
            households: Some(households),
            policy: None,
            evidence_history: Vec::new(),
            exit_cuts_history: Vec::new(),
            visits_history: Vec::new(),
            cursor,
            more: false,
        };
        let mut one = default_households();
        one.truncate(1);
        c.store()
            .apply_pull_page(&page(one.clone(), 5))
            .await
            .unwrap();
        let ended = c.ended_households().await.unwrap();
        let names: Vec<&str> = ended
            .iter()
            .map(|h| h.detail.summary.head_name.as_str())
            .collect();
        assert_eq!(names, vec!["王五", "李四"], "by village, then name");
        let since = ended[0].unpaired_since;
        c.store().apply_pull_page(&page(one, 6)).await.unwrap();
        assert_eq!(c.ended_households().await.unwrap()[0].unpaired_since, since);
        c.store()
            .apply_pull_page(&page(default_households(), 7))
            .await
            .unwrap();
        assert!(c.ended_households().await.unwrap().is_empty());
        assert_eq!(c.households(now()).await.unwrap().len(), 3);
    });
}

/// Another account logging in on the same device does not inherit the previous one's
/// households as its own former ones; the same account logging in again keeps them.
#[test]
fn another_account_on_the_device_does_not_inherit_ended_households() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let mut identity = c.identity().await.unwrap();
        let mut one = default_households();
        one.truncate(1);
        // The same account again, with a shorter list: the others are its former ones.
        c.install_login(&identity, &snapshot(one.clone()))
            .await
            .unwrap();
        assert_eq!(c.ended_households().await.unwrap().len(), 2);
        // Another account: only its own households, none "ended".
        identity.account_id += 1;
        identity.username = "13900000000".into();
        c.install_login(&identity, &snapshot(one)).await.unwrap();
        assert!(c.ended_households().await.unwrap().is_empty());
        assert_eq!(c.households(now()).await.unwrap().len(), 1);
    });
}

/// 王五 (household 3) with the helper's pairing ended by the office on `to` (the first
/// day no longer paired), as the server lists a recently ended household.
fn ended_on(to: chrono::NaiveDate) -> Vec<bangfu_shared::api::HouseholdDetail> {
    let mut listed = default_households();
    listed[2].pairings[0].valid_to = Some(to);
    listed
}

/// The server lists a household whose pairing with the helper ended (for a quarter
/// after the end): the device stores it as ended from the real end, not from the day it
/// noticed; a visit before the end signs, a draft dated on or after it is refused with
/// the usual message. Dropped from the list later, it keeps that date.
#[test]
fn a_listed_household_whose_pairing_ended_is_stored_as_ended_from_its_real_end() {
    use bangfu_client::i18n::Lang;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        let at =
            |d: u32| chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, d, 2, 0, 0).unwrap();
        let identity = c.identity().await.unwrap();
        let mut later = snapshot(ended_on(day(10)));
        later.server_time = at(20);
        c.install_login(&identity, &later).await.unwrap();

        let current: Vec<i64> = c
            .households(at(20))
            .await
            .unwrap()
            .iter()
            .map(|h| h.detail.summary.id)
            .collect();
        assert_eq!(current, vec![1, 2]);
        let stored = c.store().ended_households().await.unwrap();
        assert_eq!(stored.len(), 1, "stored as ended, not current");
        assert_eq!(stored[0].unpaired_since, Some(day(10)));
        let ended = c.ended_households().await.unwrap();
        assert_eq!(ended.len(), 1);
        assert_eq!(
            ended[0].unpaired_since,
            day(10),
            "not the day it was noticed"
        );
        assert_eq!(ended[0].ended_on, Some(day(10)));
        assert_eq!(
            ended[0].periods,
            vec![(chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(), day(9))],
            "the pairing's last day is the day before valid_to"
        );
        assert_eq!(
            ended[0].shown_end(Lang::Zh),
            format!("{}起不再结对", day(10))
        );

        c.record_visit(
            3,
            VisitBody::new(VisitKind::Phone, at(9)),
            None,
            None,
            at(20),
        )
        .await
        .expect("a visit on the pairing's last day signs");
        let mut draft = VisitDraft::new(3, VisitKind::Phone, at(10));
        draft.problems = "电话回访".into();
        c.save_draft(&draft).await.unwrap();
        let err = c.complete_draft(&draft, at(20)).await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::OutsidePairing {
                    household_id: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let zh = Lang::Zh.error(&err);
        assert!(
            zh.contains("王五户已结束结对") && zh.contains("2025-01-01 至 2026-03-09"),
            "{zh}"
        );

        // A quarter later the server no longer lists it: the real end stays.
        let mut dropped = default_households();
        dropped.truncate(2);
        let mut quarter = snapshot(dropped);
        quarter.server_time = at(31);
        c.install_login(&identity, &quarter).await.unwrap();
        let ended = c.ended_households().await.unwrap();
        assert_eq!(ended[0].unpaired_since, day(10));
        assert_eq!(ended[0].ended_on, Some(day(10)));
    });
}

/// What counts as ended: none of the helper's pairings holds today or later. A pairing
/// ending later, a new pairing after an ended one, or one filed to start later keep the
/// household current; another helper's open pairing does not. A pull page classifies
/// the same way.
#[test]
fn a_household_is_ended_only_when_none_of_the_helpers_pairings_holds() {
    use bangfu_shared::sync::PullResponse;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let ymd = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let today = bangfu_client::client::today(chrono::Utc::now());
        let mut listed = default_households();
        // 张三: the helper's pairing ends tomorrow (an exit filed for then).
        listed[0].pairings[0].valid_to = Some(today + chrono::Duration::days(1));
        // 李四: an ended pairing and a new one filed to start next month.
        let mut renewed = listed[1].pairings[0].clone();
        listed[1].pairings[0].valid_to = Some(ymd(2025, 6, 1));
        renewed.id += 1;
        renewed.valid_from = today + chrono::Duration::days(30);
        listed[1].pairings.insert(0, renewed);
        // 王五: the helper's pairing ended today; another helper's goes on.
        listed[2].pairings[0].valid_to = Some(today);
        let mut others = listed[2].pairings[0].clone();
        others.id += 1;
        others.helper.id += 100;
        others.valid_to = None;
        listed[2].pairings.insert(0, others);
        c.store()
            .apply_pull_page(&PullResponse {
                records: vec![],
                households: Some(listed),
                policy: None,
                evidence_history: Vec::new(),
                exit_cuts_history: Vec::new(),
                visits_history: Vec::new(),
                cursor: 3,
                more: false,
            })
            .await
            .unwrap();

        let now = chrono::Utc::now();
        let current: Vec<i64> = c
            .households(now)
            .await
            .unwrap()
            .iter()
            .map(|h| h.detail.summary.id)
            .collect();
        assert_eq!(current, vec![1, 2]);
        let ended = c.ended_households_at(now).await.unwrap();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].detail.summary.id, 3);
        assert_eq!(ended[0].ended_on, Some(today));

        // Two days on, 张三's pairing has ended by its date, though no new list came.
        let later = now + chrono::Duration::days(2);
        let current: Vec<i64> = c
            .households(later)
            .await
            .unwrap()
            .iter()
            .map(|h| h.detail.summary.id)
            .collect();
        assert_eq!(current, vec![2]);
        let ended = c.ended_households_at(later).await.unwrap();
        let zhang = ended.iter().find(|h| h.detail.summary.id == 1).unwrap();
        assert_eq!(zhang.ended_on, Some(today + chrono::Duration::days(1)));
        assert_eq!(zhang.periods.last().unwrap().1, today);
        let refused = c
            .record_visit(
                1,
                VisitBody::new(VisitKind::Phone, later),
                None,
                None,
                later,
            )
            .await;
        assert!(
            matches!(refused, Err(ClientError::OutsidePairing { .. })),
            "{refused:?}"
        );
    });
}

/// A recovered record under a number its device already has here for another record
/// (a copy of a data directory signed it: the server keeps and counts both) is stored
/// and shown, not refused at every sync (QA s22d F1), a third and more too (QA s25a F5).
/// One the store cannot hold (past `MAX_SEQUENCE_COPIES` under that number) stays in
/// the inbox and is reported by every sync, once each: not reported once and forgotten.
#[test]
fn a_recovered_record_that_cannot_be_stored_is_reported_at_every_sync() {
    use bangfu_client::problem::Problem;
    use bangfu_shared::sync::PullResponse;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let old = bangfu_client::signing::DeviceKey::from_seed([5; 32]);
        let first = server_record(&old, 1, ZERO_HASH, RecordType::Visit, None);
        let page = |r: &bangfu_shared::sync::ServerRecord, cursor| PullResponse {
            records: vec![r.clone()],
            households: None,
            policy: None,
            evidence_history: Vec::new(),
            exit_cuts_history: Vec::new(),
            visits_history: Vec::new(),
            cursor,
            more: false,
        };
        let applied = c.store().apply_pull_page(&page(&first, 1)).await.unwrap();
        assert_eq!(applied.imported, 1, "{applied:?}");
        // Another record claiming the same device and number: a copy's, kept.
        let twin = server_record(&old, 1, ZERO_HASH, RecordType::Visit, None);
        let applied = c.store().apply_pull_page(&page(&twin, 2)).await.unwrap();
        assert!(applied.problems.is_empty(), "{applied:?}");
        assert_eq!(applied.imported, 1, "{applied:?}");
        assert_eq!(c.visits(None, 10).await.unwrap().len(), 2, "both shown");
        // A third and more under that number: kept and shown, up to the store's bound.
        let copies = bangfu_client::store::MAX_SEQUENCE_COPIES;
        for _ in 1..copies {
            let copy = server_record(&old, 1, ZERO_HASH, RecordType::Visit, None);
            let applied = c.store().apply_pull_page(&page(&copy, 2)).await.unwrap();
            assert!(applied.problems.is_empty(), "{applied:?}");
        }
        let shown = usize::try_from(copies + 1).unwrap();
        assert_eq!(c.visits(None, 100).await.unwrap().len(), shown);
        // One past it: reported, and kept waiting.
        let triplet = server_record(&old, 1, ZERO_HASH, RecordType::Visit, None);
        let taken = Problem::SequenceTaken {
            id: triplet.signed.record.id,
            device_id: 41,
            seq: 1,
        };
        let applied = c.store().apply_pull_page(&page(&triplet, 2)).await.unwrap();
        assert_eq!(applied.problems, vec![taken.clone()], "reported once");
        assert_eq!(applied.waiting, 1);
        // A later sync whose pull brings nothing new says it again.
        let empty = PullResponse {
            records: Vec::new(),
            households: None,
            policy: None,
            evidence_history: Vec::new(),
            exit_cuts_history: Vec::new(),
            visits_history: Vec::new(),
            cursor: 3,
            more: false,
        };
        let applied = c.store().apply_pull_page(&empty).await.unwrap();
        assert_eq!(applied.problems, vec![taken], "still reported");
        assert_eq!(c.visits(None, 100).await.unwrap().len(), shown);
    });
}

/// A visit the server does not count (here a reused photo; a clock ahead alike) does
/// not satisfy its window: the household is not 本期已完成, its last contact is the
/// last counted one and the list counts it as not counted. A visit not yet synced
/// counts provisionally; a later, counted amendment counts again.
#[test]
fn a_visit_the_server_does_not_count_satisfies_no_window() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let call = phone_call_now(&c, 2).await;
        let phone_done = |list: &[bangfu_client::HouseholdOverview]| {
            let h = list.iter().find(|h| h.detail.summary.id == 2).unwrap();
            let due = h.due.iter().find(|d| d.kind == VisitKind::Phone).unwrap();
            (due.done_this_window, h.last_phone.is_some(), h.not_counted)
        };
        let list = c.households(now()).await.unwrap();
        assert_eq!(
            phone_done(&list),
            (true, true, 0),
            "local: counts provisionally"
        );

        c.store()
            .apply_acks(&[ack(call.record.id, &["photo_reused", "entered_late"])])
            .await
            .unwrap();
        let list = c.households(now()).await.unwrap();
        assert_eq!(
            phone_done(&list),
            (false, false, 1),
            "not counted: not done this window, no last call, marked"
        );

        let amendment = c
            .record_visit(
                2,
                VisitBody::new(VisitKind::Phone, now()),
                Some((call.record.id, Some("换照片".into()))),
                None,
                now(),
            )
            .await
            .unwrap();
        c.store()
            .apply_acks(&[ack(amendment.record.id, &[])])
            .await
            .unwrap();
        let list = c.households(now()).await.unwrap();
        assert_eq!(phone_done(&list), (true, true, 0), "amended: counts again");
    });
}

/// A voided visit cannot be amended: a "not counted" flag (whose advice is to amend it)
/// no longer concerns it, nor "entered late, it counts", and a review note says it is
/// voided, not 请更正此次走访.
#[test]
fn a_voided_visit_shows_no_advice_to_amend_it() {
    use bangfu_client::i18n::Lang;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let call = phone_call_now(&c, 2).await;
        let id = call.record.id;
        c.store()
            .apply_acks(&[ack(id, &["photo_reused", "entered_late", "chain_break"])])
            .await
            .unwrap();
        c.void_visit(id, "重复录入", now()).await.unwrap();
        let v = c.store().visit(id).await.unwrap().unwrap();
        assert!(v.voided);
        // Nor "entered late: it counts" (QA s23b F11); the device's chain still shows.
        assert_eq!(v.flags, vec![bangfu_client::flags::Flag::ChainBreak]);
        let note = bangfu_client::store::ReviewNote {
            note: "照片模糊".into(),
            amended_since: false,
        };
        let text = Lang::Zh.review_text_for(&note, true);
        assert!(
            text.contains("已作废") && !text.contains("请更正"),
            "{text}"
        );
    });
}

/// The reuse warning follows the server's rule: a photo stays its first visit's even on
/// a version an amendment replaced (M1), and amending that first visit does not warn
/// about a photo another visit took later (M2); amending the later one still does.
#[test]
fn the_reuse_warning_names_the_first_holder_of_a_photo_in_any_version() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let p1 = write_jpeg(&dir.path().join("p1.jpg"), 800, 600);
    let p2 = write_png(&dir.path().join("p2.png"), 300, 500);
    rt.block_on(async {
        let c = login(&dir.path().join("data"), Limits::default()).await;
        let p1 = c.attach_photo(&p1).await.unwrap();
        let p2 = c.attach_photo(&p2).await.unwrap();
        let hour = chrono::Duration::hours(1);
        let home = |photo: &bangfu_shared::visit::PhotoRef, at| {
            let mut body = VisitBody::new(VisitKind::Home, at);
            body.photos = vec![photo.clone()];
            body.household_signature = Some(witness());
            body
        };
        let a = c
            .record_visit(1, home(&p1, now() - hour * 5), None, None, now() - hour * 5)
            .await
            .unwrap()
            .record
            .id;
        // A's photo swapped by an amendment: p1 sits on a superseded version only.
        c.record_visit(
            1,
            home(&p2, now() - hour * 5),
            Some((a, Some("换照片".into()))),
            None,
            now() - hour * 4,
        )
        .await
        .unwrap();
        let warned = c
            .reused_images(std::slice::from_ref(&p1), None, None)
            .await
            .unwrap();
        assert_eq!(
            warned.iter().map(|r| r.visit_id).collect::<Vec<_>>(),
            vec![a],
            "a photo on a superseded version is still the first visit's"
        );

        // B reuses A's current photo later: B is warned, an amendment of A is not.
        let b = c
            .record_visit(2, home(&p2, now() - hour * 3), None, None, now() - hour * 3)
            .await
            .unwrap()
            .record
            .id;
        let amend_a = c
            .reused_images(std::slice::from_ref(&p2), None, Some(a))
            .await
            .unwrap();
        assert!(amend_a.is_empty(), "A used p2 first: {amend_a:?}");
        let amend_b = c
            .reused_images(std::slice::from_ref(&p2), None, Some(b))
            .await
            .unwrap();
        assert_eq!(
            amend_b.iter().map(|r| r.visit_id).collect::<Vec<_>>(),
            vec![a]
        );
    });
}

/// A visit dated before the helper's pairing with a current household began is refused
/// (as one after an ended pairing is); a date in an ended quarter within the pairing is
/// signed (the interfaces warn), and `closed_quarter` names that quarter.
#[test]
fn a_visit_dated_before_the_pairing_is_refused() {
    use bangfu_client::i18n::Lang;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let at =
            |y, m, d| chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, y, m, d, 2, 0, 0).unwrap();
        let err = c
            .record_visit(
                2,
                VisitBody::new(VisitKind::Phone, at(2024, 6, 1)),
                None,
                None,
                now(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::NotPairedOn { .. }), "{err:?}");
        let text = Lang::Zh.error(&err);
        assert!(
            text.contains("不在您与") && text.contains("2025-01-01 起"),
            "{text}"
        );
        c.record_visit(
            2,
            VisitBody::new(VisitKind::Phone, at(2025, 6, 1)),
            None,
            None,
            now(),
        )
        .await
        .unwrap();
        let q = bangfu_client::client::closed_quarter(at(2025, 6, 1).date_naive(), now());
        assert_eq!(q.map(|q| q.to_string()), Some("2025Q2".into()));
        assert_eq!(
            bangfu_client::client::closed_quarter(now().date_naive(), now()),
            None
        );
    });
}

/// The server's acknowledgement of record `id`: accepted, with `flags`.
fn ack(id: uuid::Uuid, flags: &[&str]) -> bangfu_shared::sync::Ack {
    bangfu_shared::sync::Ack {
        id,
        status: bangfu_shared::sync::AckStatus::Accepted,
        reason: None,
        reason_code: None,
        missing_blobs: vec![],
        flags: flags.iter().map(|f| f.to_string()).collect(),
    }
}

/// Signs a phone call to `household` at [`now`].
async fn phone_call_now(c: &Client, household: i64) -> bangfu_shared::visit::SignedRecord {
    c.record_visit(
        household,
        VisitBody::new(VisitKind::Phone, now()),
        None,
        None,
        now(),
    )
    .await
    .unwrap()
}

/// Lists `households` as the server's snapshot would, for the logged-in account.
async fn relist(c: &Client, households: Vec<bangfu_shared::api::HouseholdDetail>) {
    let identity = c.identity().await.unwrap();
    c.install_login(&identity, &snapshot(households))
        .await
        .unwrap();
}

/// Our helper's pairing with `h` begins on `from`; another helper held it before.
fn taken_over_on(h: &mut bangfu_shared::api::HouseholdDetail, from: chrono::NaiveDate) {
    let mut before = h.pairings[0].clone();
    before.id += 1;
    before.helper.id = HELPER_ID + 1;
    before.helper.name = "前任".into();
    before.valid_to = Some(from);
    h.pairings[0].valid_from = from;
    h.pairings.push(before);
}

fn day(m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap()
}

/// H2: a helper is held to no window that began before their own pairing: a second
/// helper who took the household over on 03-05 owes nothing for February (the previous
/// helper's) nor March (not theirs whole), and first owes April; a first helper paired
/// on 02-10 owes nothing for January–February and owes March's call.
#[test]
fn windows_before_the_helpers_pairing_began_are_not_overdue() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let mut listed = default_households();
        taken_over_on(&mut listed[0], day(2, 10));
        taken_over_on(&mut listed[2], day(3, 5));
        relist(&c, listed).await;
        let list = c.households(now()).await.unwrap();
        let by_id = |id| list.iter().find(|h| h.detail.summary.id == id).unwrap();

        let second = by_id(3);
        assert!(!second.overdue() && second.missed.is_empty(), "{second:?}");
        assert_eq!(second.next_due(), Some((VisitKind::Home, day(4, 30))));
        let first = by_id(1);
        assert!(!first.overdue() && first.missed.is_empty(), "{first:?}");
        assert_eq!(first.next_due(), Some((VisitKind::Phone, day(3, 31))));
        // The household paired all along still has its misses.
        assert!(by_id(2).overdue());
    });
}

/// M2: nothing is due past the last paired day. A household leaving on 04-20 owes
/// March's call, not the March–April home visit (the pairing does not hold it whole);
/// one leaving on 03-20 owes nothing more, yet its missed windows stay.
#[test]
fn nothing_is_due_past_a_coming_exit() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let mut listed = default_households();
        for (h, exit) in [(0, day(3, 20)), (1, day(4, 20))] {
            listed[h].summary.exit_on = Some(exit);
            listed[h].pairings[0].valid_to = Some(exit);
        }
        relist(&c, listed).await;
        let list = c.households(now()).await.unwrap();
        let by_id = |id| list.iter().find(|h| h.detail.summary.id == id).unwrap();

        let leaving_later = by_id(2);
        let due: Vec<_> = leaving_later
            .due
            .iter()
            .map(|d| (d.kind, d.due_by))
            .collect();
        assert_eq!(due, vec![(VisitKind::Phone, day(3, 31))]);
        let leaving_soon = by_id(1);
        assert!(leaving_soon.due.is_empty(), "{leaving_soon:?}");
        assert_eq!(leaving_soon.next_due(), None);
        assert_eq!(leaving_soon.missed.len(), 3, "{leaving_soon:?}");
    });
}

/// M7: a call in March hides no earlier miss: February's call stays missed (January's
/// was made), as on the server's sheet.
#[test]
fn a_later_call_keeps_an_earlier_missed_window() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let january =
            chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 10, 2, 0, 0).unwrap();
        for at in [january, now() - chrono::Duration::days(1)] {
            c.record_visit(2, VisitBody::new(VisitKind::Phone, at), None, None, now())
                .await
                .unwrap();
        }
        let list = c.households(now()).await.unwrap();
        let h = list.iter().find(|h| h.detail.summary.id == 2).unwrap();
        let phone: Vec<_> = h
            .missed
            .iter()
            .filter(|w| w.kind == VisitKind::Phone)
            .map(|w| (w.from, w.to))
            .collect();
        assert_eq!(phone, vec![(day(2, 1), day(2, 28))]);
        let due = h.due.iter().find(|d| d.kind == VisitKind::Phone).unwrap();
        assert!(due.done_this_window && due.overdue, "{due:?}");
        assert!(h.overdue());
    });
}

/// QA s21d D11: a visit is judged by the evidence of the policy in force on its date,
/// as the server judges it. With one photo asked until 03-01 and two from then on, a
/// February visit with one photo counts; a March one with one photo does not, and is
/// flagged; the last home contact is February's. A February visit whose witness left
/// no mark is no 双签字 (QA s26a F4): flagged, as the server does not count it either.
#[test]
fn a_visit_is_judged_by_the_evidence_in_force_on_its_date() {
    use bangfu_client::flags::Flag;
    use bangfu_shared::policy::EvidenceSince;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let photos = [
        write_jpeg(&dir.path().join("feb.jpg"), 800, 600),
        write_jpeg(&dir.path().join("mar.jpg"), 600, 800),
        write_jpeg(&dir.path().join("feb2.jpg"), 700, 600),
    ];
    rt.block_on(async {
        let c = login(&dir.path().join("data"), Limits::default()).await;
        let mut snap = snapshot(default_households());
        let one = snap.policy.evidence.clone();
        let mut two = one.clone();
        two.min_photos = 2;
        let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        snap.evidence_history = vec![
            EvidenceSince {
                from: day(1, 1) - chrono::Duration::days(3650),
                evidence: one,
            },
            EvidenceSince {
                from: day(3, 1),
                evidence: two,
            },
        ];
        let identity = c.identity().await.unwrap();
        c.install_login(&identity, &snap).await.unwrap();
        let at =
            |m, d| chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, m, d, 2, 0, 0).unwrap();
        for (n, (when, photo)) in [(at(2, 20), &photos[0]), (at(3, 10), &photos[1])]
            .into_iter()
            .enumerate()
        {
            let mut home = VisitBody::new(VisitKind::Home, when);
            home.household_signature = Some(marked_witness(&c, dir.path(), n as u32).await);
            home.photos = vec![c.attach_photo(photo).await.unwrap()];
            c.record_visit(2, home, None, None, now()).await.unwrap();
        }
        let mut unmarked = VisitBody::new(VisitKind::Home, at(2, 21));
        unmarked.household_signature = Some(witness());
        unmarked.photos = vec![c.attach_photo(&photos[2]).await.unwrap()];
        c.record_visit(2, unmarked, None, None, now())
            .await
            .unwrap();
        let visits = c.visits(Some(2), 10).await.unwrap();
        let flagged: Vec<(u32, bool)> = visits
            .iter()
            .map(|v| {
                let body = v.current.signed.record.visit.as_ref().unwrap();
                (
                    chrono::Datelike::month(&body.at),
                    v.flags.contains(&Flag::MissingEvidence),
                )
            })
            .collect();
        assert_eq!(flagged, [(3, true), (2, true), (2, false)]);
        let list = c.households(now()).await.unwrap();
        let h = list.iter().find(|h| h.detail.summary.id == 2).unwrap();
        assert_eq!(h.last_home, Some(at(2, 20)));
        assert_eq!(h.not_counted, 2);
    });
}

/// A copy of this very data directory (a restored backup) signed a record under a
/// number this device also used: pulled, it is kept beside this device's own record
/// and verification is as before (QA s22d F1); but this device signs no more, since
/// the copy goes on numbering the same chain (QA s31b R1).
#[test]
fn a_copys_record_under_this_devices_number_is_kept_apart_from_its_chain() {
    use bangfu_shared::sync::PullResponse;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let mine = c
            .record_visit(
                1,
                VisitBody::new(VisitKind::Phone, now()),
                None,
                None,
                now(),
            )
            .await
            .unwrap();
        assert_eq!(mine.record.seq, 1);
        let data = bangfu_client::DataDir::new(dir.path());
        let (key, _) = bangfu_client::signing::DeviceKey::load_or_create(&data.key_path()).unwrap();
        let mut body = VisitBody::new(VisitKind::Phone, now());
        body.notes = Some("备份恢复后的另一份".into());
        let envelope = bangfu_shared::visit::RecordEnvelope {
            v: bangfu_shared::visit::FORMAT_VERSION,
            id: uuid::Uuid::now_v7(),
            record_type: RecordType::Visit,
            device_id: DEVICE_ID,
            seq: 1,
            prev_sha256: ZERO_HASH.into(),
            author_helper_id: HELPER_ID,
            household_id: 2,
            created_at: now(),
            visit: Some(body),
            target_id: None,
            reason: None,
        };
        let copy = bangfu_shared::sync::ServerRecord {
            signed: key.sign(envelope).unwrap(),
            status: bangfu_shared::sync::AckStatus::Accepted,
            missing_blobs: Vec::new(),
            flags: vec!["seq_reused".into()],
            received_at: now(),
            review: None,
            family_changes: Vec::new(),
        };
        let applied = c
            .store()
            .apply_pull_page(&PullResponse {
                records: vec![copy],
                households: None,
                policy: None,
                evidence_history: Vec::new(),
                exit_cuts_history: Vec::new(),
                visits_history: Vec::new(),
                cursor: 1,
                more: false,
            })
            .await
            .unwrap();
        assert!(applied.problems.is_empty(), "{applied:?}");
        assert_eq!(c.visits(None, 10).await.unwrap().len(), 2, "both shown");
        let refused = c
            .record_visit(
                1,
                VisitBody::new(VisitKind::Phone, now()),
                None,
                None,
                now(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(refused, bangfu_client::ClientError::DeviceForked),
            "{refused}"
        );
        assert_eq!(mine.record.seq, 1);
        let report = c.verify().await.unwrap();
        assert!(report.ok(), "{report:?}");
    });
}

/// QA s22e F3: visits the device signed before it heard that a pairing had ended (or
/// before it found the household gone from the server's list) and dated after the end
/// do not count, as the server judges: they carry [`Flag::OutsidePairing`], the list
/// counts them as not counted, and they are no household's last contact. The day is
/// China's, as on the server; a void takes the visit out of both.
#[test]
fn a_visit_dated_after_its_pairing_ended_is_flagged_and_not_counted() {
    use bangfu_client::flags::Flag;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(dir.path(), Limits::default()).await;
        let at = |d: u32, h: u32, m: u32| {
            chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, d, h, m, 0).unwrap()
        };
        let mut calls = Vec::new();
        for (household, when) in [
            (3, at(5, 2, 0)),
            (3, at(9, 15, 30)), // 23:30 on the 9th in China: the pairing's last day
            (3, at(9, 16, 30)), // 00:30 on the 10th in China: ended
            (3, at(12, 2, 0)),
            (2, at(12, 2, 0)),
            (2, at(18, 2, 0)),
            (1, at(12, 2, 0)),
        ] {
            let body = VisitBody::new(VisitKind::Phone, when);
            let id = c
                .record_visit(household, body, None, None, at(18, 3, 0))
                .await
                .unwrap()
                .record
                .id;
            calls.push(id);
        }
        // The server ends 王五's pairing on the 10th and no longer lists 李四; the
        // device finds that out on the 16th.
        let mut listed = default_households();
        listed[2].pairings[0].valid_to =
            Some(chrono::NaiveDate::from_ymd_opt(2026, 3, 10).unwrap());
        listed.remove(1);
        let mut later = snapshot(listed);
        later.server_time = at(16, 2, 0);
        let identity = c.identity().await.unwrap();
        c.install_login(&identity, &later).await.unwrap();

        let flagged = |visits: &[bangfu_client::store::VisitRow]| -> Vec<bool> {
            calls
                .iter()
                .map(|id| {
                    let v = visits.iter().find(|v| v.visit_id == *id).unwrap();
                    v.flags.contains(&Flag::OutsidePairing)
                })
                .collect()
        };
        let visits = c.visits(None, 100).await.unwrap();
        assert_eq!(
            flagged(&visits),
            [false, false, true, true, false, true, false]
        );
        let one = c.store().visit(calls[2]).await.unwrap().unwrap();
        assert!(one.flags.contains(&Flag::OutsidePairing), "{:?}", one.flags);
        let uncounted = c
            .store()
            .not_counted_visits(at(31, 0, 0), &[])
            .await
            .unwrap();
        assert_eq!(uncounted.get(&3), Some(&2));
        assert_eq!(uncounted.get(&2), Some(&1));
        assert_eq!(uncounted.get(&1), None);
        let last = c.store().last_contacts(at(31, 0, 0), &[]).await.unwrap();
        let phone = |h: i64| last.get(&h).and_then(|k| k.get("phone")).copied();
        assert_eq!(phone(3), Some(at(9, 15, 30)));
        assert_eq!(phone(2), Some(at(12, 2, 0)));
        assert_eq!(phone(1), Some(at(12, 2, 0)));

        c.void_visit(calls[3], "误录", at(18, 4, 0)).await.unwrap();
        let visits = c.visits(Some(3), 100).await.unwrap();
        let voided = visits.iter().find(|v| v.visit_id == calls[3]).unwrap();
        assert!(voided.flags.is_empty(), "{:?}", voided.flags);
        let uncounted = c
            .store()
            .not_counted_visits(at(31, 0, 0), &[])
            .await
            .unwrap();
        assert_eq!(uncounted.get(&3), Some(&1));
    });
}

/// A home visit whose image a sync found unusable (missing or altered here, refused by
/// the server) cannot reach the server whole, so it does not count on the device until
/// the image uploads: not the last home visit, counted as not counted (QA s23a F4).
#[test]
fn a_visit_waiting_for_an_unusable_image_does_not_count() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let photo = write_jpeg(&dir.path().join("home.jpg"), 800, 600);
    rt.block_on(async {
        let c = login(&dir.path().join("data"), Limits::default()).await;
        let at = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 10, 2, 0, 0).unwrap();
        let mut home = VisitBody::new(VisitKind::Home, at);
        home.household_signature = Some(witness());
        home.photos = vec![c.attach_photo(&photo).await.unwrap()];
        let sha = home.photos[0].sha256.clone();
        c.record_visit(2, home, None, None, now()).await.unwrap();
        let state = |c: &Client| {
            let c = c.clone();
            async move {
                let list = c.households(now()).await.unwrap();
                let row = list.into_iter().find(|h| h.detail.summary.id == 2).unwrap();
                (row.last_home, row.not_counted)
            }
        };
        assert_eq!(state(&c).await, (Some(at), 0), "counts provisionally");
        c.store().mark_image(&sha, true).await.unwrap();
        assert_eq!(state(&c).await, (None, 1));
        c.store().mark_image(&sha, false).await.unwrap();
        assert_eq!(state(&c).await, (Some(at), 0), "uploaded at last");
    });
}

/// QA s26b F13: a visit recorded while a sync (here: another connection) is writing the
/// store waits for that write instead of failing with "database is locked". Begun
/// deferred, the visit's transaction read the chain's head, then found it stale once
/// the other write committed, and failed at once; begun immediate it waits its turn.
#[test]
fn a_visit_recorded_during_another_write_waits_for_it() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let data = dir.path().join("data");
        let c = login(&data, Limits::default()).await;
        let url = format!(
            "sqlite://{}?mode=rw",
            DataDir::new(&data).db_path().display()
        );
        let mut opts = sea_orm::ConnectOptions::new(url);
        opts.max_connections(1).sqlx_logging(false);
        let other = sea_orm::Database::connect(opts).await.unwrap();
        other.execute_unprepared("BEGIN IMMEDIATE").await.unwrap();
        other
            .execute_unprepared("CREATE TABLE a_sync_writing (x INTEGER)")
            .await
            .unwrap();
        let c2 = c.clone();
        let recording = tokio::spawn(async move {
            let mut call = VisitBody::new(VisitKind::Phone, now());
            call.notes = Some("同步时记录".into());
            c2.record_visit(1, call, None, None, now()).await
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        other.execute_unprepared("COMMIT").await.unwrap();
        let recorded = recording.await.unwrap();
        assert!(recorded.is_ok(), "{:?}", recorded.err());
        assert_eq!(c.visits(None, 10).await.unwrap().len(), 1);
    });
}
