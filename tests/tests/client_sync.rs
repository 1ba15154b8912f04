//! Issue 4 end to end with the real client: the `bangfu-client` sync engine against a
//! real server, on SQLite and PostgreSQL. After every scenario the server holds exactly
//! the records the devices created, each once, and every photo byte-identical.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bangfu_client::store::SyncState;
use bangfu_client::sync::{RetryPolicy, SyncPhase};
use bangfu_client::{Client, DataDir, Limits, SyncOptions, SyncProgress, SyncReport};
use bangfu_server::db_test;
use bangfu_shared::visit::{HouseholdSignature, VisitBody, sha256_hex};
use bangfu_shared::{Role, VisitKind};
use bangfu_tests::field::{cutting_proxy, jpeg, png, tus_offset};
use bangfu_tests::scenario::HELPER;
use bangfu_tests::{FIXTURE, TestDb, World, client_logged_in, enroll_directly, office, quick_sync};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait as _, EntityTrait, PaginatorTrait};

/// The test's scratch directory for client data dirs and photo files (removed with
/// the test database).
struct ClientDir(std::path::PathBuf);

impl ClientDir {
    fn new(t: &TestDb) -> ClientDir {
        let dir = t.dir().join("clients");
        std::fs::create_dir_all(&dir).unwrap();
        ClientDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

/// A county with the fixture ledger and the helper enrolled.
async fn world(t: &TestDb) -> World {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    w.import_ok(&county, "", FIXTURE.as_bytes().to_vec()).await;
    enroll_directly(t, &w, HELPER).await;
    w
}

fn origin(w: &World) -> String {
    format!("http://{}", w.server.addr)
}

/// A device: a client over its own data directory, logged in to `w` as the helper.
async fn device(w: &World, dir: &Path) -> Client {
    client_logged_in(w, dir, HELPER, "测试终端").await.0
}

async fn household(c: &Client) -> i64 {
    c.households(chrono::Utc::now()).await.unwrap()[0]
        .detail
        .summary
        .id
}

/// A signed home visit with photos of about `kib` KiB each and a drawn signature.
async fn home_visit(
    c: &Client,
    dir: &Path,
    household: i64,
    kib: &[usize],
    seed: u8,
) -> Vec<String> {
    let mut body = VisitBody::new(VisitKind::Home, chrono::Utc::now());
    body.problems.push("屋顶漏雨".into());
    for (i, k) in kib.iter().enumerate() {
        let path = dir.join(format!("photo-{seed}-{i}.jpg"));
        std::fs::write(&path, jpeg(*k, seed.wrapping_add(i as u8))).unwrap();
        body.photos.push(c.attach_photo(&path).await.unwrap());
    }
    let sig = c.attach_signature_png(&png(seed)).await.unwrap();
    body.household_signature = Some(HouseholdSignature::Drawn {
        image_sha256: sig.clone(),
    });
    let mut files: Vec<String> = body.photos.iter().map(|p| p.sha256.clone()).collect();
    files.push(sig);
    c.record_visit(household, body, None, None, chrono::Utc::now())
        .await
        .unwrap();
    files
}

async fn phone_call(c: &Client, household: i64, note: &str) -> uuid::Uuid {
    let mut body = VisitBody::new(VisitKind::Phone, chrono::Utc::now());
    body.notes = Some(note.into());
    c.record_visit(household, body, None, None, chrono::Utc::now())
        .await
        .unwrap()
        .record
        .id
}

async fn sync(c: &Client, opts: &SyncOptions) -> SyncReport {
    c.sync(opts, &|_| {}).await.unwrap()
}

/// Every record id on a device.
async fn local_ids(c: &Client) -> BTreeSet<String> {
    let device = c.identity().await.unwrap().device_id;
    let mut ids: BTreeSet<String> = c
        .store()
        .device_records(device)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.signed.record.id.to_string())
        .collect();
    // Records recovered from other devices count too.
    for v in c.visits(None, 10_000).await.unwrap() {
        ids.insert(v.visit_id.to_string());
    }
    ids
}

/// The server holds exactly `ids`, each once; every file is byte-identical to the
/// device's copy.
async fn server_holds_exactly(
    t: &TestDb,
    w: &World,
    ids: &BTreeSet<String>,
    c: &Client,
    files: &[String],
) {
    use bangfu_server::entities::record;
    let rows = record::Entity::find().all(&t.db).await.unwrap();
    let stored: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let unique: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), unique.len(), "no record stored twice");
    assert_eq!(&unique, ids, "the server holds exactly the records created");
    assert!(
        rows.iter().all(|r| r.status == "accepted"),
        "every record complete: {:?}",
        rows.iter().map(|r| &r.status).collect::<Vec<_>>()
    );
    let token = w.login(HELPER).await;
    for sha in files {
        let (status, bytes) = w.get_bytes(&token, &format!("/blobs/{sha}")).await;
        let local = std::fs::read(c.photos().path_of(sha)).unwrap();
        assert_eq!(status, StatusCode::OK, "{sha}");
        assert!(bytes == local, "file {sha} is byte-identical on the server");
        assert_eq!(sha256_hex(&bytes), *sha);
    }
}

async fn all_synced(c: &Client) {
    let counts = c.store().sync_counts().await.unwrap();
    assert_eq!(counts.unsynced(), 0, "{counts:?}");
}

// (a) A connection cut in the middle of a photo; the upload resumes from the server's
// offset, not from zero.
async fn cut_mid_photo(t: &TestDb) {
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let c = device(&w, &dir.path().join("device")).await;
    let h = household(&c).await;
    let files = home_visit(&c, dir.path(), h, &[400], 1).await;
    let photo = files[0].clone();
    let photo_len = std::fs::metadata(c.photos().path_of(&photo)).unwrap().len();
    assert!(
        photo_len > 200 * 1024,
        "a photo worth resuming: {photo_len}"
    );

    // Through a link that dies after 100 KiB, with no retry: the sync stops mid-photo.
    let proxy = cutting_proxy(w.server.addr, 100 * 1024).await;
    let cut = SyncOptions {
        server: Some(format!("http://{proxy}")),
        chunk_bytes: 32 * 1024,
        retry: RetryPolicy::once(),
        ..quick_sync(8)
    };
    let err = c.sync(&cut, &|_| {}).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let visit = c.visits(None, 10).await.unwrap().remove(0);
    assert_eq!(
        visit.sync,
        SyncState::AwaitingPhotos,
        "the server has the record, not the photo"
    );

    // The server kept what arrived before the cut.
    let url = c
        .store()
        .upload_url(&photo)
        .await
        .unwrap()
        .expect("upload URL kept");
    let token = w.login(HELPER).await;
    let held = tus_offset(&w.http, &format!("{}{url}", origin(&w)), &token).await;
    assert!(
        held > 0 && held < photo_len,
        "server offset {held} of {photo_len}"
    );

    // Back in signal: the same upload continues from the server's offset.
    let signature_len = std::fs::metadata(c.photos().path_of(&files[1]))
        .unwrap()
        .len();
    let report = sync(&c, &quick_sync(8)).await;
    eprintln!(
        "photo {photo_len} B: the server held {held} B after the cut; the resumed sync sent {} B (signature {signature_len} B included)",
        report.bytes_sent
    );
    assert_eq!(report.files_resumed, 1, "{report:?}");
    assert!(
        report.bytes_sent <= photo_len - held + signature_len,
        "sent {} for a {photo_len}-byte photo of which the server held {held}, and a {signature_len}-byte signature",
        report.bytes_sent
    );
    assert_eq!(report.synced, 1);
    assert!(c.store().upload_url(&photo).await.unwrap().is_none());

    // A second visit through a link that keeps dying: retries get it through alone.
    let more = home_visit(&c, dir.path(), h, &[300], 7).await;
    let flaky = SyncOptions {
        server: Some(format!("http://{proxy}")),
        chunk_bytes: 32 * 1024,
        ..quick_sync(8)
    };
    let retries = Arc::new(AtomicU64::new(0));
    let r2 = retries.clone();
    let report = c
        .sync(&flaky, &move |p: &SyncProgress| {
            if p.retry.is_some() {
                r2.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await
        .unwrap();
    eprintln!(
        "through the dying link: {} retries, {} B sent",
        retries.load(Ordering::SeqCst),
        report.bytes_sent
    );
    assert!(retries.load(Ordering::SeqCst) > 0, "the link was cut");
    assert!(report.complete(), "{report:?}");

    all_synced(&c).await;
    let all: Vec<String> = files.into_iter().chain(more).collect();
    server_holds_exactly(t, &w, &local_ids(&c).await, &c, &all).await;
}
db_test!(
    a_photo_cut_mid_upload_resumes_from_the_server_offset,
    cut_mid_photo
);

// A link that drops every connection after 40 KiB cannot carry one push of 30 visits
// with long notes (~100 KB): the client halves its batches until they fit, and every
// record still reaches the server exactly once.
async fn weak_link_smaller_pushes(t: &TestDb) {
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let c = device(&w, &dir.path().join("device")).await;
    let h = household(&c).await;
    let note = "电话回访：询问家庭收入、医疗报销、孩子上学和危房改造进度，".repeat(40);
    for i in 0..30 {
        phone_call(&c, h, &format!("{i} {note}")).await;
    }
    let proxy = cutting_proxy(w.server.addr, 40 * 1024).await;
    let opts = SyncOptions {
        server: Some(format!("http://{proxy}")),
        batch_size: 30,
        // Attempts in a row: on a loaded machine (two test suites at once) six ran out
        // once while the batches were still shrinking.
        ..quick_sync(12)
    };
    let answered = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = answered.clone();
    let retries = Arc::new(AtomicU64::new(0));
    let r2 = retries.clone();
    let report = c
        .sync(&opts, &move |p: &SyncProgress| {
            if p.retry.is_some() {
                r2.fetch_add(1, Ordering::SeqCst);
            }
            let mut seen = seen.lock().unwrap();
            if seen.last() != Some(&p.records_done) {
                seen.push(p.records_done);
            }
        })
        .await
        .unwrap();
    let steps = answered.lock().unwrap().clone();
    eprintln!(
        "30 records through a 40 KiB link: {} retries, records done by step {steps:?}",
        retries.load(Ordering::SeqCst)
    );
    assert!(report.complete(), "{report:?}");
    assert_eq!(report.synced, 30);
    // The server's clock is this machine's: nothing to say about the device's.
    assert_eq!(report.clock_offset_secs, None);
    assert!(retries.load(Ordering::SeqCst) > 0, "the link was cut");
    assert!(
        steps.windows(2).all(|s| s[1] - s[0] < 30),
        "no single push carried them all: {steps:?}"
    );
    all_synced(&c).await;
    server_holds_exactly(t, &w, &local_ids(&c).await, &c, &[]).await;
}
db_test!(
    a_weak_link_gets_a_large_push_through_in_smaller_batches,
    weak_link_smaller_pushes
);

// (b) The same batch pushed twice, the sync run twice, and records out of order.
async fn twice_and_out_of_order(t: &TestDb) {
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let c = device(&w, &dir.path().join("device")).await;
    let h = household(&c).await;
    let mut files = home_visit(&c, dir.path(), h, &[30, 30], 2).await;
    for i in 0..4 {
        phone_call(&c, h, &format!("电话 {i}")).await;
    }
    let opts = SyncOptions {
        batch_size: 2,
        ..quick_sync(8)
    };

    // Records 4 and 5 reach the server first, newest first (another path, a lost
    // answer); then the engine sends everything in order.
    let identity = c.identity().await.unwrap();
    let mine = c.store().device_records(identity.device_id).await.unwrap();
    let api = bangfu_client::api::ApiClient::new(&origin(&w))
        .unwrap()
        .with_token(identity.token.clone());
    let early: Vec<_> = [4, 3].iter().map(|i| mine[*i].signed.clone()).collect();
    api.push(&early).await.unwrap();

    let first = sync(&c, &opts).await;
    assert_eq!(first.pushed, 5);
    assert_eq!(first.synced, 5, "{first:?}");
    assert_eq!(first.files_uploaded, 3);
    all_synced(&c).await;

    // The sync run again: nothing to send, nothing changes.
    let again = sync(&c, &opts).await;
    assert_eq!(
        (again.pushed, again.files_uploaded, again.imported),
        (0, 0, 0)
    );

    // The same batch pushed twice: the answers were lost, so the device sends all again.
    c.store()
        .connection()
        .execute_unprepared("UPDATE records SET sync_state = 'uploading'")
        .await
        .unwrap();
    let resent = sync(&c, &opts).await;
    assert_eq!((resent.pushed, resent.synced), (5, 5), "{resent:?}");
    all_synced(&c).await;

    // No gaps or chain breaks in the town office's view.
    let county = w.login("county").await;
    let (_, anomalies) = w.get(Some(&county), "/sync/anomalies").await;
    assert_eq!(anomalies.as_array().unwrap().len(), 0, "{anomalies}");

    files.sort();
    server_holds_exactly(t, &w, &local_ids(&c).await, &c, &files).await;
}
db_test!(
    batches_pushed_twice_and_out_of_order_are_stored_once,
    twice_and_out_of_order
);

// (c) A record altered after signing is refused with a reason the client shows; an
// image altered on the device is not sent.
async fn tampered(t: &TestDb) {
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let c = device(&w, &dir.path().join("device")).await;
    let h = household(&c).await;
    let altered = phone_call(&c, h, "原始内容").await;
    let honest = phone_call(&c, h, "如实记录").await;
    // Someone edits the stored record behind the app's back.
    let db = c.store().connection();
    db.execute_unprepared("DROP TRIGGER records_no_edit")
        .await
        .unwrap();
    db.execute_unprepared(&format!(
        "UPDATE records SET envelope_json = replace(envelope_json, '原始内容', '篡改内容') WHERE id = '{altered}'"
    ))
    .await
    .unwrap();

    let report = sync(&c, &quick_sync(8)).await;
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert_eq!(report.rejected[0].id, altered);
    assert!(
        report.rejected[0].reason.contains("altered after signing"),
        "{report:?}"
    );
    assert_eq!(report.synced, 1);

    let rows = c.visits(None, 10).await.unwrap();
    let row = rows.iter().find(|v| v.visit_id == altered).unwrap();
    assert_eq!(row.sync, SyncState::Rejected);
    assert!(row.sync_reason.as_deref().unwrap().contains("signature"));
    let ok = rows.iter().find(|v| v.visit_id == honest).unwrap();
    assert_eq!(ok.sync, SyncState::Synced);

    // The TUI shows it next to the record, with the reason.
    let data = dir.path().join("device");
    let screen = tokio::task::spawn_blocking(move || {
        use bangfu_client::app::{Action, App, Clock};
        let rt = Arc::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        );
        let client = rt
            .block_on(Client::open(DataDir::new(data), Limits::default()))
            .unwrap();
        let mut app = App::new(
            client,
            rt,
            bangfu_client::i18n::Lang::En,
            Clock::System,
            (160, 30),
        );
        app.update(Action::Char('h'));
        app.history_selected = app
            .history
            .iter()
            .position(|v| v.visit_id == altered)
            .unwrap();
        bangfu_client::ui::screen_text(&app, 160, 30)
    })
    .await
    .unwrap();
    assert!(screen.contains("REJECTED"), "{screen}");
    assert!(screen.contains("altered after signing"), "{screen}");

    // Run again: the refused record stays refused and is not sent again.
    let again = sync(&c, &quick_sync(8)).await;
    assert_eq!(again.pushed, 0);
    // Unless asked to: then the server answers the same.
    let retried = sync(
        &c,
        &SyncOptions {
            retry_rejected: true,
            ..quick_sync(8)
        },
    )
    .await;
    assert_eq!((retried.pushed, retried.rejected.len()), (1, 1));

    // A photo altered on the device after signing is never sent; the visit waits.
    let overview = |c: &bangfu_client::Client| {
        let c = c.clone();
        async move {
            let list = c.households(chrono::Utc::now()).await.unwrap();
            let row = list.into_iter().find(|x| x.detail.summary.id == h).unwrap();
            (row.last_home, row.not_counted)
        }
    };
    let (_, not_counted_before) = overview(&c).await;
    let files = home_visit(&c, dir.path(), h, &[20], 3).await;
    let path = c.photos().path_of(&files[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let report = sync(&c, &quick_sync(8)).await;
    let damaged = bangfu_client::problem::Problem::ImageDamaged {
        sha256: files[0].clone(),
    };
    assert!(report.problems.contains(&damaged), "{report:?}");
    // Said in the helper's language, with what to do; and the visit says it can never
    // be sent as it is, rather than waiting on photos for ever.
    let shown = bangfu_client::i18n::Lang::Zh.problem(&damaged);
    assert!(
        shown.contains("已损坏") && shown.contains("作废"),
        "{shown}"
    );
    let visits = c.visits(Some(h), 10).await.unwrap();
    let waiting = visits
        .iter()
        .find(|v| v.sync == SyncState::AwaitingPhotos)
        .expect("the visit waits for its photo");
    assert_eq!(waiting.damaged_images, vec![files[0].clone()]);
    assert_eq!(report.awaiting_photos, 1);
    // It can never reach the server whole, so the device does not count it: it is not
    // the household's last home visit, and the list marks it (QA s23a F4).
    let (last_home, not_counted) = overview(&c).await;
    assert_ne!(
        last_home,
        Some(waiting.current.signed.record.visit.as_ref().unwrap().at),
        "the damaged visit is not the last home visit"
    );
    assert_eq!(not_counted, not_counted_before + 1);
    use bangfu_server::entities::blob;
    assert!(
        blob::Entity::find_by_id(files[0].clone())
            .one(&t.db)
            .await
            .unwrap()
            .is_none(),
        "the altered photo is not on the server"
    );
    assert_eq!(
        bangfu_server::entities::record::Entity::find()
            .count(&t.db)
            .await
            .unwrap(),
        2,
        "the honest call and the waiting home visit; never the altered record"
    );

    // The advice followed: voided, the visit's photo no longer matters. The void goes
    // up, the old version is not sent again nor its photo reported, and nothing is left
    // waiting (QA s22a F2).
    c.void_visit(waiting.visit_id, "照片损坏", chrono::Utc::now())
        .await
        .unwrap();
    for round in 0..2 {
        let report = sync(&c, &quick_sync(8)).await;
        assert!(report.problems.is_empty(), "{round}: {report:?}");
        assert_eq!(report.awaiting_photos, 0, "{round}: {report:?}");
        assert_eq!(report.counts.awaiting_superseded, 1, "{round}: {report:?}");
        assert_eq!(
            report.counts.unsynced(),
            1,
            "{round}: only the altered record, refused, is left: {report:?}"
        );
        if round == 1 {
            assert_eq!(report.pushed, 0, "nothing is sent again: {report:?}");
        }
    }
    let visits = c.visits(Some(h), 10).await.unwrap();
    let voided = visits
        .iter()
        .find(|v| v.visit_id == waiting.visit_id)
        .unwrap();
    assert!(voided.voided);
    assert_eq!(voided.sync, SyncState::Synced, "not 待传照片 for ever");
}
db_test!(
    a_record_altered_after_signing_is_refused_and_shown,
    tampered
);

// (d) A reinstalled device (new data directory, same account) recovers its history.
async fn reinstalled(t: &TestDb) {
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let old = device(&w, &dir.path().join("old")).await;
    let h = household(&old).await;
    let mut files = home_visit(&old, dir.path(), h, &[40, 40], 4).await;
    let call = phone_call(&old, h, "电话了解近况").await;
    old.void_visit(call, "误录", chrono::Utc::now())
        .await
        .unwrap();
    let amended = {
        let v = old.visits(None, 10).await.unwrap();
        let home = v
            .iter()
            .find(|v| {
                v.current
                    .signed
                    .record
                    .visit
                    .as_ref()
                    .is_some_and(|b| b.kind == VisitKind::Home)
            })
            .unwrap()
            .clone();
        let mut body = home.current.signed.record.visit.clone().unwrap();
        body.problems.push("已联系危房改造".into());
        old.record_visit(
            h,
            body,
            Some((home.visit_id, Some("补充".into()))),
            None,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        home.visit_id
    };
    assert!(sync(&old, &quick_sync(8)).await.complete());

    // The phone is lost; a new one logs in to the same account.
    let new = device(&w, &dir.path().join("new")).await;
    assert_ne!(
        new.identity().await.unwrap().device_id,
        old.identity().await.unwrap().device_id
    );
    assert!(new.visits(None, 10).await.unwrap().is_empty());
    let seen = Arc::new(AtomicU64::new(0));
    let s2 = seen.clone();
    let report = new
        .sync(&quick_sync(8), &move |p: &SyncProgress| {
            if p.phase == SyncPhase::Downloading {
                s2.store(p.files_done, Ordering::SeqCst);
            }
        })
        .await
        .unwrap();
    assert_eq!(report.imported, 4, "{report:?}");
    assert_eq!(report.files_downloaded, 3);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        3,
        "progress counted the downloads"
    );
    assert!(report.complete(), "{report:?}");

    // The history is there as on the old device, photos included.
    let before = old.visits(None, 10).await.unwrap();
    let after = new.visits(None, 10).await.unwrap();
    assert_eq!(after.len(), 2);
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a.visit_id, b.visit_id);
        assert_eq!(a.current.signed, b.current.signed);
        assert_eq!((a.voided, a.amendments), (b.voided, b.amendments));
        assert_eq!(b.sync, SyncState::Synced);
    }
    assert!(
        after
            .iter()
            .any(|v| v.visit_id == amended && v.amendments == 1)
    );
    assert!(after.iter().any(|v| v.visit_id == call && v.voided));
    for sha in &files {
        assert!(new.photos().verify(sha), "{sha} recovered");
    }
    // `verify` checks the new device's own chain (empty) and says the recovered
    // records of the old device are not its to check, rather than counting none.
    let verified = new.verify().await.unwrap();
    assert!(verified.ok(), "{verified:?}");
    assert_eq!((verified.records, verified.other_devices_records), (0, 4));
    let said = bangfu_client::i18n::Lang::Zh.cli_verify(&verified);
    assert!(said.contains("其他终端的记录 4 条"), "{said}");
    let overview = new.households(chrono::Utc::now()).await.unwrap();
    assert!(
        overview.iter().any(|o| o.last_home.is_some()),
        "recovered visits count"
    );

    // The new device carries on; the old one (if found) learns of it.
    let later = phone_call(&new, h, "新手机记录").await;
    assert_eq!(sync(&new, &quick_sync(8)).await.synced, 1);
    let back = sync(&old, &quick_sync(8)).await;
    assert_eq!(back.imported, 1);
    assert!(
        old.visits(None, 10)
            .await
            .unwrap()
            .iter()
            .any(|v| v.visit_id == later)
    );

    let mut ids = local_ids(&old).await;
    ids.extend(local_ids(&new).await);
    // The amendment and the void are records too.
    for r in old
        .store()
        .device_records(old.identity().await.unwrap().device_id)
        .await
        .unwrap()
    {
        ids.insert(r.signed.record.id.to_string());
    }
    files.sort();
    server_holds_exactly(t, &w, &ids, &new, &files).await;
}
db_test!(a_reinstalled_device_recovers_its_history, reinstalled);

/// Runs a sync and drops it (the in-process equivalent of a kill: it stops at whatever
/// it was awaiting) at the first progress event `when` accepts; returns that event's
/// phase, or `None` if the sync finished first.
async fn kill_when(
    c: &Client,
    opts: &SyncOptions,
    when: impl Fn(&SyncProgress) -> bool + Send + Sync,
) -> Option<SyncPhase> {
    let at = std::sync::Mutex::new(None);
    let notify = tokio::sync::Notify::new();
    let progress = |p: &SyncProgress| {
        let mut at = at.lock().unwrap();
        if at.is_none() && when(p) {
            *at = Some(p.phase);
            notify.notify_one();
        }
    };
    tokio::select! {
        biased;
        _ = notify.notified() => {}
        r = c.sync(opts, &progress) => { r.unwrap(); return None; }
    }
    *at.lock().unwrap()
}

// (e) A sync killed mid-way at any point, then run again, completes exactly once.
async fn killed(t: &TestDb) {
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let c = device(&w, &dir.path().join("device")).await;
    let h = household(&c).await;
    let mut files = Vec::new();
    for seed in 0..2u8 {
        files.extend(home_visit(&c, dir.path(), h, &[40], 10 + seed).await);
        phone_call(&c, h, &format!("电话 {seed}")).await;
    }
    let opts = SyncOptions {
        batch_size: 2,
        chunk_bytes: 16 * 1024,
        ..quick_sync(8)
    };
    // Killed in each step: between two push batches, mid-photo, while confirming,
    // while pulling.
    type Step = (SyncPhase, fn(&SyncProgress) -> bool);
    let steps: [Step; 4] = [
        (SyncPhase::Pushing, |p| {
            p.phase == SyncPhase::Pushing && p.records_done > 0
        }),
        (SyncPhase::Uploading, |p| {
            p.phase == SyncPhase::Uploading && p.bytes_done > 0
        }),
        (SyncPhase::Confirming, |p| p.phase == SyncPhase::Confirming),
        (SyncPhase::Pulling, |p| p.phase == SyncPhase::Pulling),
    ];
    for (phase, when) in steps {
        assert_eq!(kill_when(&c, &opts, when).await, Some(phase));
        assert!(c.verify().await.unwrap().ok(), "the store is sound");
    }
    assert!(sync(&c, &opts).await.complete());
    // More visits; then killed at its 1st, 2nd, 3rd… progress event until one run gets
    // to the end.
    for seed in 2..5u8 {
        files.extend(home_visit(&c, dir.path(), h, &[40], 10 + seed).await);
        phone_call(&c, h, &format!("电话 {seed}")).await;
    }
    let mut killed_in = Vec::new();
    for n in 1u64.. {
        let events = AtomicU64::new(0);
        let hit = move |_: &SyncProgress| events.fetch_add(1, Ordering::SeqCst) + 1 == n;
        match kill_when(&c, &opts, hit).await {
            Some(phase) => killed_in.push(phase),
            None => break,
        }
        assert!(c.verify().await.unwrap().ok(), "the store is sound");
    }
    eprintln!(
        "then killed at {} more points before a run completed: {killed_in:?}",
        killed_in.len()
    );
    assert!(killed_in.len() >= 6, "{killed_in:?}");
    let last = sync(&c, &opts).await;
    assert!(last.complete(), "{last:?}");
    all_synced(&c).await;
    files.sort();
    server_holds_exactly(t, &w, &local_ids(&c).await, &c, &files).await;
    let stored = bangfu_server::entities::record::Entity::find()
        .count(&t.db)
        .await
        .unwrap();
    assert_eq!(stored, 10);
}
db_test!(a_sync_killed_mid_way_completes_exactly_once, killed);

/// The sync as a separate process, for [`process_killed`]: runs when the parent sets
/// `BANGFU_SYNC_CHILD` to a data directory, and does nothing as an ordinary test.
#[test]
fn sync_child_process() {
    let Ok(dir) = std::env::var("BANGFU_SYNC_CHILD") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = Client::open(DataDir::new(dir), Limits::default())
            .await
            .unwrap();
        let opts = SyncOptions {
            batch_size: 1,
            chunk_bytes: 16 * 1024,
            ..quick_sync(8)
        };
        c.sync(&opts, &|p: &SyncProgress| {
            println!(
                "progress: {:?} {} {}",
                p.phase, p.records_done, p.bytes_done
            );
        })
        .await
        .unwrap();
        println!("progress: finished");
    });
}

/// Runs the sync in a child process and SIGKILLs it after its `kill_after`-th progress
/// line; returns whether it finished first.
fn child_sync(data: &Path, kill_after: Option<usize>) -> bool {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sync_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BANGFU_SYNC_CHILD", data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = 0;
    let mut finished = false;
    for line in out.lines() {
        let line = line.unwrap();
        if line == "progress: finished" {
            finished = true;
        } else if line.starts_with("progress:") {
            seen += 1;
            if Some(seen) == kill_after {
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    finished
}

// (e) The same with a real process killed (SIGKILL) at several points of a sync.
async fn process_killed(t: &TestDb) {
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let data = dir.path().join("device");
    let c = device(&w, &data).await;
    let h = household(&c).await;
    let mut files = Vec::new();
    for seed in 0..3u8 {
        files.extend(home_visit(&c, dir.path(), h, &[50], 20 + seed).await);
        phone_call(&c, h, &format!("电话 {seed}")).await;
    }
    let mut kills = 0;
    for kill_after in [2, 4, 7, 11, 16] {
        let d = data.clone();
        let finished = tokio::task::spawn_blocking(move || child_sync(&d, Some(kill_after)))
            .await
            .unwrap();
        if !finished {
            kills += 1;
            assert!(
                c.verify().await.unwrap().ok(),
                "the store is sound after SIGKILL"
            );
        }
    }
    assert!(kills >= 3, "killed {kills} times");
    let d = data.clone();
    assert!(
        tokio::task::spawn_blocking(move || child_sync(&d, None))
            .await
            .unwrap(),
        "a last run completes"
    );
    all_synced(&c).await;
    files.sort();
    server_holds_exactly(t, &w, &local_ids(&c).await, &c, &files).await;
}
db_test!(
    a_sync_process_killed_mid_way_completes_exactly_once,
    process_killed
);

// A photo the server counts for another visit: the device shows the visit as not
// counted, and shows it counted again once the other visit is withdrawn.
async fn photo_reuse_shown(t: &TestDb) {
    use bangfu_client::flags::Flag;
    use chrono::Timelike as _;
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let c = device(&w, &dir.path().join("device")).await;
    let h = household(&c).await;
    let path = dir.path().join("once.jpg");
    std::fs::write(&path, jpeg(20, 77)).unwrap();
    let sig = c.attach_signature_png(&png(77)).await.unwrap();
    let mut ids = Vec::new();
    let mut times = Vec::new();
    // Today in China (the household is paired from today): in the first hour and a
    // half after Beijing's midnight, "90 minutes ago" was yesterday there.
    let day_start = bangfu_client::client::china_midnight(bangfu_tests::china_today());
    for (i, minutes) in [90, 30].into_iter().enumerate() {
        let at = (chrono::Utc::now() - chrono::Duration::minutes(minutes))
            .max(day_start + chrono::Duration::seconds(i as i64));
        times.push(at.with_nanosecond(0).unwrap());
        let mut body = VisitBody::new(VisitKind::Home, at);
        body.photos.push(c.attach_photo(&path).await.unwrap());
        body.household_signature = Some(HouseholdSignature::Drawn {
            image_sha256: sig.clone(),
        });
        let r = c
            .record_visit(h, body, None, None, chrono::Utc::now())
            .await
            .unwrap();
        ids.push(r.record.id);
    }
    let flags_of = |visits: &[bangfu_client::store::VisitRow], id: uuid::Uuid| {
        visits
            .iter()
            .find(|v| v.visit_id == id)
            .map(|v| v.flags.clone())
            .expect("the visit is listed")
    };

    let report = sync(&c, &quick_sync(4)).await;
    assert_eq!(report.not_counted, 1, "{report:?}");
    all_synced(&c).await;
    let visits = c.visits(Some(h), 100).await.unwrap();
    assert!(flags_of(&visits, ids[0]).is_empty(), "the first use counts");
    assert_eq!(flags_of(&visits, ids[1]), vec![Flag::PhotoReused]);
    // The household list goes by the visit that counts: the later, not counted one is
    // not its last home visit, and the row counts it as not counted.
    let overview = |c: &bangfu_client::Client| {
        let c = c.clone();
        async move {
            let list = c.households(chrono::Utc::now()).await.unwrap();
            let o = list.into_iter().find(|o| o.detail.summary.id == h).unwrap();
            (o.last_home, o.not_counted)
        }
    };
    assert_eq!(overview(&c).await, (Some(times[0]), 1));

    c.void_visit(ids[0], "录错了户", chrono::Utc::now())
        .await
        .unwrap();
    let report = sync(&c, &quick_sync(4)).await;
    assert_eq!(report.not_counted, 0, "{report:?}");
    let visits = c.visits(Some(h), 100).await.unwrap();
    assert!(
        flags_of(&visits, ids[1]).is_empty(),
        "with the first visit withdrawn, the second counts on the device too"
    );
    assert_eq!(overview(&c).await, (Some(times[1]), 0));
}
db_test!(
    a_visit_re_using_a_photo_shows_as_not_counted_until_the_first_is_voided,
    photo_reuse_shown
);

/// A town office's review note ("has issues: …") reaches the helper's device by sync:
/// the visit lists it as asking for a correction, and once the helper's amendment is
/// sent it shows as answered.
async fn review_note_shown(t: &TestDb) {
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let c = device(&w, &dir.path().join("device")).await;
    let h = household(&c).await;
    let id = phone_call(&c, h, "电话了解近况").await;
    sync(&c, &quick_sync(4)).await;
    let review_of = |visits: Vec<bangfu_client::store::VisitRow>| {
        visits
            .into_iter()
            .find(|v| v.visit_id == id)
            .expect("the visit is listed")
            .review
    };
    assert_eq!(review_of(c.visits(Some(h), 10).await.unwrap()), None);

    let county = w.login("county").await;
    let (status, body) = w
        .post_json(
            Some(&county),
            &format!("/records/{id}/review"),
            &serde_json::json!({ "reason": "通话内容过简，请补充" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    sync(&c, &quick_sync(4)).await;
    let review = review_of(c.visits(Some(h), 10).await.unwrap()).expect("the note arrived");
    assert_eq!(review.note, "通话内容过简，请补充");
    assert!(!review.amended_since);
    let shown = bangfu_client::i18n::Lang::Zh.review_text(&review);
    assert!(shown.contains("请更正"), "{shown}");

    let mut body = VisitBody::new(VisitKind::Phone, chrono::Utc::now());
    body.notes = Some("电话了解近况：已落实低保，孩子返校".into());
    c.record_visit(
        h,
        body,
        Some((id, Some("补充通话内容".into()))),
        None,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    sync(&c, &quick_sync(4)).await;
    let review = review_of(c.visits(Some(h), 10).await.unwrap()).expect("still shown");
    assert!(review.amended_since, "the correction answers it");
    assert!(
        bangfu_client::i18n::Lang::Zh
            .review_text(&review)
            .contains("已更正")
    );
}
db_test!(
    a_town_office_review_note_reaches_the_helper,
    review_note_shown
);

/// QA s30a L6: the town office's decisions on the family changes a helper proposed are
/// said by the sync that brings them, once, not only in the visit list.
async fn decisions_said(t: &TestDb) {
    use bangfu_shared::visit::{FamilyChange, FamilyChangeKind};
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let c = device(&w, &dir.path().join("device")).await;
    let h = household(&c).await;
    let mut body = VisitBody::new(VisitKind::Phone, chrono::Utc::now());
    body.notes = Some("电话了解近况".into());
    for name in ["张小宝", "张小妹"] {
        body.family_changes.push(FamilyChange {
            kind: FamilyChangeKind::Birth,
            name: name.into(),
        });
    }
    c.record_visit(h, body, None, None, chrono::Utc::now())
        .await
        .unwrap();
    let first = sync(&c, &quick_sync(4)).await;
    assert_eq!(first.decisions_received.total(), 0);
    let county = w.login("county").await;
    let (_, queue) = w.get(Some(&county), "/review/family-changes").await;
    let ids: Vec<i64> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{queue}");
    for (id, accept) in ids.iter().zip([true, false]) {
        let body = serde_json::json!({ "accept": accept, "note": "请补交出生证明" });
        let (status, body) = w
            .post_json(
                Some(&county),
                &format!("/review/family-changes/{id}"),
                &body,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let report = sync(&c, &quick_sync(4)).await;
    assert_eq!(
        (
            report.decisions_received.accepted,
            report.decisions_received.rejected
        ),
        (1, 1)
    );
    let said = bangfu_client::i18n::Lang::Zh
        .sync_decisions(report.decisions_received)
        .unwrap();
    assert!(said.contains("1 项未通过"), "{said}");
    // Said once: the next sync brings nothing new.
    let again = sync(&c, &quick_sync(4)).await;
    assert_eq!(again.decisions_received.total(), 0);
}
db_test!(
    the_town_offices_decisions_on_family_changes_are_said_by_the_sync,
    decisions_said
);

/// While a sync holds a data directory, a second one (another `bangfu sync`, the TUI's)
/// is refused at once, naming why, and sends nothing; the lock goes with its holder.
async fn one_sync_at_a_time(t: &TestDb) {
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let data = dir.path().join("device");
    let c = device(&w, &data).await;
    let h = household(&c).await;
    phone_call(&c, h, "电话了解近况").await;
    let holder = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(DataDir::new(&data).sync_lock_path())
        .unwrap();
    holder.lock().unwrap();
    let err = c.sync(&quick_sync(4), &|_| {}).await.unwrap_err();
    assert!(
        matches!(err, bangfu_client::ClientError::SyncRunning),
        "{err}"
    );
    assert!(
        bangfu_client::i18n::Lang::Zh
            .error(&err)
            .contains("同步正在进行")
    );
    assert_eq!(c.store().sync_counts().await.unwrap().unsynced(), 1);
    drop(holder);
    let report = sync(&c, &quick_sync(4)).await;
    assert_eq!(report.synced, 1, "{report:?}");
    #[cfg(unix)]
    {
        // Left open to others by whoever made it, the lock is the user's alone once a
        // sync has held it, as every file of the directory (QA s25b F10).
        use std::os::unix::fs::PermissionsExt;
        let lock = std::fs::metadata(DataDir::new(&data).sync_lock_path()).unwrap();
        assert_eq!(lock.permissions().mode() & 0o777, 0o600);
    }
}
db_test!(
    a_second_sync_on_one_data_directory_is_refused,
    one_sync_at_a_time
);

/// The server takes no new upload from the account (it holds as many unfinished ones as
/// the server allows, here one left by another device of the helper): the sync is not
/// an error, nothing is retried in vain, the visit stays awaiting photos and the report
/// says why; its files are not marked unusable. Once that upload finishes, the next sync
/// sends them (QA s23c F9).
async fn uploads_deferred(t: &TestDb) {
    use bangfu_client::problem::Problem;
    use bangfu_tests::field::{tus_create, tus_patch};
    let w = World::with(t, |s| s.max_unfinished_uploads = 1).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    w.import_ok(&county, "", FIXTURE.as_bytes().to_vec()).await;
    enroll_directly(t, &w, HELPER).await;
    let dirs = ClientDir::new(t);
    let c = device(&w, &dirs.path().join("a")).await;
    let h = household(&c).await;
    let files = home_visit(&c, dirs.path(), h, &[40, 20], 5).await;

    let token = w.login(HELPER).await;
    let elsewhere = jpeg(30, 77);
    let (status, url) = tus_create(
        &w.http,
        &origin(&w),
        &token,
        elsewhere.len(),
        &sha256_hex(&elsewhere),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let started = std::time::Instant::now();
    let report = c
        .sync(&quick_sync(8), &|_| {})
        .await
        .expect("a sync the server takes no upload in still completes");
    assert_eq!(report.files_uploaded, 0, "{report:?}");
    assert_eq!(report.awaiting_photos, 1, "{report:?}");
    let deferred: Vec<&Problem> = report
        .problems
        .iter()
        .filter(|p| matches!(p, Problem::UploadsDeferred { .. }))
        .collect();
    assert_eq!(deferred.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let Problem::UploadsDeferred {
        reason,
        files: n,
        records,
    } = deferred[0]
    else {
        unreachable!()
    };
    assert_eq!(*n, files.len() as u64);
    assert_eq!(records.len(), 1);
    assert!(reason.contains("too_many_uploads"), "{reason}");
    let zh = bangfu_client::i18n::Lang::Zh.problem(deferred[0]);
    assert!(zh.contains("仍待传照片") && zh.contains("下次同步"), "{zh}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "not retried for minutes"
    );
    let counts = c.store().sync_counts().await.unwrap();
    assert_eq!(counts.unsynced(), 1, "{counts:?}");

    // The other device finishes its upload: the next sync sends the visit's files.
    let done = tus_patch(&w.http, &url.unwrap(), &token, 0, elsewhere)
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    let report = sync(&c, &quick_sync(3)).await;
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.files_uploaded, files.len() as u64);
    all_synced(&c).await;
    let ids = local_ids(&c).await;
    server_holds_exactly(t, &w, &ids, &c, &files).await;
}
db_test!(
    a_sync_the_server_takes_no_new_upload_in_defers_the_photos,
    uploads_deferred
);

/// QA s23d F9: a synced visit's photo lost from the device (a cleaned folder, a bad
/// card) is fetched back by the next sync, byte for byte, rather than asked for again.
async fn lost_photo_fetched_back(t: &TestDb) {
    let w = world(t).await;
    let dir = tempfile::tempdir().unwrap();
    let c = device(&w, dir.path()).await;
    let h = household(&c).await;
    let files = home_visit(&c, dir.path(), h, &[60], 41).await;
    assert!(sync(&c, &quick_sync(8)).await.complete());
    let lost = c.photos().path_of(&files[0]);
    let bytes = std::fs::read(&lost).unwrap();
    std::fs::remove_file(&lost).unwrap();
    let report = sync(&c, &quick_sync(8)).await;
    assert!(report.complete(), "{report:?}");
    assert_eq!(report.files_downloaded, 1, "{report:?}");
    assert_eq!(std::fs::read(&lost).unwrap(), bytes);
    // Nothing else to fetch the time after.
    assert_eq!(sync(&c, &quick_sync(8)).await.files_downloaded, 0);
}
db_test!(
    a_synced_photo_lost_from_the_device_is_fetched_back,
    lost_photo_fetched_back
);

db_test!(
    a_photo_given_up_on_the_device_ends_its_upload_on_the_server,
    given_up_uploads_end
);

/// A sync cut off mid-file left an unfinished upload of two photos on the server; one is
/// then deleted from the device and the other altered. The next sync gives both up and
/// ends their uploads (tus termination), so they no longer hold the account's places
/// for unfinished uploads until they expire (QA s25a F12).
async fn given_up_uploads_end(t: &TestDb) {
    use bangfu_client::problem::Problem;
    use bangfu_server::entities::upload;
    use bangfu_tests::field::{tus_create, tus_patch};
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let c = device(&w, &dir.path().join("device")).await;
    let h = household(&c).await;
    let files = home_visit(&c, dir.path(), h, &[20, 20], 11).await;
    let token = w.login(HELPER).await;
    for sha in &files[..2] {
        let bytes = std::fs::read(c.photos().path_of(sha)).unwrap();
        let (status, url) = tus_create(&w.http, &origin(&w), &token, bytes.len(), sha).await;
        assert_eq!(status, StatusCode::CREATED);
        let url = url.unwrap();
        let part = tus_patch(&w.http, &url, &token, 0, bytes[..1000].to_vec())
            .await
            .unwrap();
        assert_eq!(part.status(), StatusCode::NO_CONTENT);
        c.store()
            .save_upload(sha, &url, bytes.len() as u64)
            .await
            .unwrap();
    }
    let unfinished = || async {
        upload::Entity::find()
            .all(&t.db)
            .await
            .unwrap()
            .into_iter()
            .filter(|u| u.status == "partial")
            .count()
    };
    assert_eq!(unfinished().await, 2);

    std::fs::remove_file(c.photos().path_of(&files[0])).unwrap();
    let altered = c.photos().path_of(&files[1]);
    let mut bytes = std::fs::read(&altered).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0xff;
    std::fs::write(&altered, bytes).unwrap();

    let report = sync(&c, &quick_sync(4)).await;
    for given_up in [
        Problem::ImageNotOnDevice {
            sha256: files[0].clone(),
        },
        Problem::ImageDamaged {
            sha256: files[1].clone(),
        },
    ] {
        assert!(report.problems.contains(&given_up), "{report:?}");
    }
    assert_eq!(unfinished().await, 0, "both uploads were ended");
    for sha in &files[..2] {
        assert_eq!(c.store().upload_url(sha).await.unwrap(), None);
    }
    assert_eq!(report.files_uploaded, 1, "the signature still goes");
}

db_test!(
    a_photo_still_arriving_from_a_killed_run_is_waited_for,
    in_progress_waited
);

/// QA s25c F3: the next run finds its photo's upload still held by the killed run's
/// PATCH (here one gone silent): it waits for the server to let go, then goes on from
/// the server's offset, instead of spending its attempts on "in progress" and giving up.
async fn in_progress_waited(t: &TestDb) {
    use bangfu_tests::field::tus_create;
    use tokio::io::AsyncWriteExt;
    let w = World::with(t, |s| s.upload_idle_secs = 2).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    w.import_ok(&county, "", FIXTURE.as_bytes().to_vec()).await;
    enroll_directly(t, &w, HELPER).await;
    let dir = tempfile::tempdir().unwrap();
    let c = device(&w, dir.path()).await;
    let h = household(&c).await;
    let files = home_visit(&c, dir.path(), h, &[60], 51).await;
    let photo = std::fs::read(c.photos().path_of(&files[0])).unwrap();
    let token = w.login(HELPER).await;
    let (status, url) = tus_create(&w.http, &origin(&w), &token, photo.len(), &files[0]).await;
    assert_eq!(status, StatusCode::CREATED);
    let path = url.unwrap().trim_start_matches(&origin(&w)).to_string();
    let mut killed = tokio::net::TcpStream::connect(w.server.addr).await.unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
        w.server.addr,
        photo.len()
    );
    killed.write_all(head.as_bytes()).await.unwrap();
    killed.write_all(&photo[..100]).await.unwrap();
    killed.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let report = c
        .sync(&quick_sync(3), &|_| {})
        .await
        .expect("the run waits for the server to let go of the upload");
    assert!(report.complete(), "{report:?}");
    let (status, held) = w.get_bytes(&token, &format!("/blobs/{}", files[0])).await;
    assert_eq!((status, held == photo), (StatusCode::OK, true));
    drop(killed);
}

/// Damages the server's stored copy of `bytes` wherever it lies under `root` (a file of
/// its own is cut in half; a copy inside a pack gets one byte flipped), as a disk fault
/// or a careless hand would. Returns whether a copy was found.
fn damage_stored_copy(root: &Path, bytes: &[u8]) -> bool {
    let mut found = false;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let mut held = std::fs::read(&path).unwrap();
            if held == bytes {
                std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
                found = true;
            } else if let Some(at) = held.windows(bytes.len()).position(|w| w == bytes) {
                held[at + bytes.len() / 2] ^= 0xff;
                std::fs::write(&path, &held).unwrap();
                found = true;
            }
        }
    }
    found
}

/// QA s26b F2, F3: a photo whose copy on the server was damaged is not served (410,
/// never the wrong bytes, never a 500 that stops every download after it); a
/// reinstalled device gets the rest and names that one; the device that took the photo
/// is asked for it again by its next sync and sends it, after which it is served whole.
async fn lost_on_the_server(t: &TestDb) {
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let old = device(&w, &dir.path().join("old")).await;
    let h = household(&old).await;
    let files = home_visit(&old, dir.path(), h, &[40, 40], 51).await;
    assert!(sync(&old, &quick_sync(8)).await.complete());
    let lost = &files[0];
    let bytes = std::fs::read(old.photos().path_of(lost)).unwrap();
    assert!(damage_stored_copy(&t.dir().join("files"), &bytes));

    let new = device(&w, &dir.path().join("new")).await;
    let report = sync(&new, &quick_sync(3)).await;
    assert_eq!(
        report.files_downloaded, 2,
        "the others still come: {report:?}"
    );
    assert!(
        report.problems.iter().any(|p| matches!(
            p,
            bangfu_client::problem::Problem::DownloadFailed { sha256, detail }
                if sha256 == lost && detail.contains("lost or damaged")
        )),
        "{report:?}"
    );
    assert!(!new.photos().verify(lost));
    let token = w.login(HELPER).await;
    // Forgotten once found damaged: a file the server waits for, as one never sent.
    let (status, _) = w.get_bytes(&token, &format!("/blobs/{lost}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The device that took it sends it again; then it is served byte for byte.
    let report = sync(&old, &quick_sync(8)).await;
    assert_eq!(report.files_uploaded, 1, "{report:?}");
    assert!(report.complete(), "{report:?}");
    let (status, served) = w.get_bytes(&token, &format!("/blobs/{lost}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(served == bytes, "the file as the device sent it");
    let report = sync(&new, &quick_sync(8)).await;
    assert!(report.complete(), "{report:?}");
    assert!(new.photos().verify(lost));
}
db_test!(
    a_photo_damaged_on_the_server_is_sent_again_by_its_device,
    lost_on_the_server
);

/// QA s26b F1: the server's database restored from a backup taken before the device's
/// last sync (the backup lacks two of its three records, and its change counter is
/// below the device's cursor). The next sync finds the server's feed starting below its
/// cursor, sends what the server no longer holds, and says so; the server ends up
/// holding every record once.
async fn restored_server(t: &TestDb) {
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let c = device(&w, dir.path()).await;
    let h = household(&c).await;
    let first = phone_call(&c, h, "第一次").await;
    assert!(sync(&c, &quick_sync(8)).await.complete());
    let later = [
        phone_call(&c, h, "第二次").await,
        phone_call(&c, h, "第三次").await,
    ];
    assert!(sync(&c, &quick_sync(8)).await.complete());

    // The backup: taken after the first record, before the other two.
    let ids = later
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ");
    for sql in [
        format!("DELETE FROM visit_facts WHERE record_id IN ({ids})"),
        format!("DELETE FROM record_blobs WHERE record_id IN ({ids})"),
        format!("DELETE FROM records WHERE id IN ({ids})"),
        "UPDATE sync_counters SET value = (SELECT MAX(change_seq) FROM records) WHERE name = 'change'"
            .to_string(),
    ] {
        t.db.execute_unprepared(&sql).await.unwrap();
    }
    assert_eq!(
        bangfu_server::entities::record::Entity::find()
            .count(&t.db)
            .await
            .unwrap(),
        1
    );

    let report = sync(&c, &quick_sync(8)).await;
    assert!(report.complete(), "{report:?}");
    assert_eq!(report.asked_again, 2, "{report:?}");
    server_holds_exactly(t, &w, &local_ids(&c).await, &c, &[]).await;
    assert!(local_ids(&c).await.contains(&first.to_string()));
    all_synced(&c).await;
    // Nothing more to send the time after.
    let again = sync(&c, &quick_sync(8)).await;
    assert_eq!((again.asked_again, again.pushed), (0, 0), "{again:?}");
}
db_test!(
    records_a_restored_server_lacks_are_sent_again,
    restored_server
);

/// Copies a client's data directory (closed) as a backup would.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// QA s31b R1: a data directory restored from a backup while the original signs on
/// shares its device key: both would give numbers of one chain twice. The first pull
/// that brings a record of the key the directory does not hold stops it signing, with
/// a reason; what it signed before still syncs, and the server holds each record once.
async fn restored_backup(t: &TestDb) {
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let (orig_dir, copy_dir) = (dir.path().join("orig"), dir.path().join("copy"));
    let orig = device(&w, &orig_dir).await;
    let h = household(&orig).await;
    let opts = quick_sync(4);
    phone_call(&orig, h, "备份前").await;
    sync(&orig, &opts).await;
    orig.store().clone().close().await.unwrap();
    drop(orig);
    copy_tree(&orig_dir, &copy_dir);
    let orig = Client::open(DataDir::new(&orig_dir), Limits::default())
        .await
        .unwrap();
    let copy = Client::open(DataDir::new(&copy_dir), Limits::default())
        .await
        .unwrap();
    let first = phone_call(&orig, h, "原机").await;
    assert!(sync(&orig, &opts).await.complete());
    // The copy does not know yet: it signs the same number, and learns at its sync.
    let twin = phone_call(&copy, h, "备份机").await;
    let report = sync(&copy, &opts).await;
    assert!(report.complete(), "what it signed still syncs: {report:?}");
    let mut body = VisitBody::new(VisitKind::Phone, chrono::Utc::now());
    body.notes = Some("再记一条".into());
    let refused = copy
        .record_visit(h, body.clone(), None, None, chrono::Utc::now())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, bangfu_client::ClientError::DeviceForked),
        "{refused}"
    );
    assert!(
        bangfu_client::i18n::Lang::Zh
            .error(&refused)
            .contains("新的数据目录"),
        "says what to do"
    );
    // The original learns it at its next pull too: neither copy signs on.
    sync(&orig, &opts).await;
    assert!(matches!(
        orig.record_visit(h, body, None, None, chrono::Utc::now())
            .await
            .unwrap_err(),
        bangfu_client::ClientError::DeviceForked
    ));
    let stored = bangfu_server::entities::record::Entity::find()
        .all(&t.db)
        .await
        .unwrap();
    let ids: Vec<String> = stored.iter().map(|r| r.id.clone()).collect();
    for id in [first, twin] {
        assert_eq!(
            ids.iter().filter(|x| **x == id.to_string()).count(),
            1,
            "each record once"
        );
    }
}
db_test!(
    a_restored_backup_stops_signing_once_its_chain_forked,
    restored_backup
);

/// QA s31b R5: images of recovered records that only another device holds (not on the
/// server yet) are not counted as downloaded: the progress ends at what arrived.
async fn not_yet_uploaded(t: &TestDb) {
    let w = world(t).await;
    let dir = ClientDir::new(t);
    let c = device(&w, &dir.path().join("new")).await;
    let h = household(&c).await;
    // Another device of the account pushed a home visit and never sent its files.
    let token = w.login(HELPER).await;
    let helper = c.identity().await.unwrap().helper.unwrap().id;
    let mut other = bangfu_tests::field::Device::register(&w, &token, helper).await;
    let visit = other.home_visit(h, &jpeg(20, 9), &png(9));
    let (status, acks) = w
        .post_json(
            Some(&token),
            "/sync/push",
            &serde_json::json!({ "records": [visit] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{acks}");
    assert_eq!(acks["acks"][0]["status"], "awaiting_photos", "{acks}");
    let last = Arc::new(std::sync::Mutex::new((0u64, 0u64)));
    let seen = last.clone();
    let report = c
        .sync(&quick_sync(4), &move |p: &SyncProgress| {
            if p.phase == SyncPhase::Downloading {
                *seen.lock().unwrap() = (p.files_done, p.files_total);
            }
        })
        .await
        .unwrap();
    assert_eq!(report.files_downloaded, 0);
    let (done, total) = *last.lock().unwrap();
    assert_eq!((done, total), (0, 0), "nothing counted as downloaded");
}
db_test!(
    images_only_another_device_holds_are_not_counted_downloaded,
    not_yet_uploaded
);
