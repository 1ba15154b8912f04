//! Issue 3 end to end: a helper logs in once against the real server, then the server
//! goes away; the helper records a signed home visit with two photos and a phone call,
//! the client restarts (a new instance over the same data directory) and finds both
//! with their photos. When a server is back, a sync delivers them.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use std::time::Duration;

use bangfu_client::store::SyncState;
use bangfu_client::sync::RetryPolicy;
use bangfu_client::{Client, DataDir, Limits, SyncOptions};
use bangfu_server::db_test;
use bangfu_shared::visit::{HouseholdSignature, PolicyArea, VisitBody, sha256_hex};
use bangfu_shared::{Role, VisitKind};
use bangfu_tests::field::{jpeg, png};
use bangfu_tests::scenario::HELPER;
use bangfu_tests::{
    FIXTURE, PASSWORD, TestDb, TestServer, World, client_logged_in, enroll_directly, login_at,
    office,
};
use sea_orm::{EntityTrait, PaginatorTrait};

/// The fixture ledger imported, the helper enrolled and logged in on a client whose
/// data lives in `scratch/data` (`scratch` a fresh directory for the test's files).
async fn field(
    t: &TestDb,
) -> (
    World,
    std::path::PathBuf,
    Client,
    bangfu_client::LoginSummary,
) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    w.import_ok(&county, "", FIXTURE.as_bytes().to_vec()).await;
    enroll_directly(t, &w, HELPER).await;
    let scratch = t.dir().join("client");
    std::fs::create_dir_all(&scratch).unwrap();
    let (client, login) = client_logged_in(&w, &scratch.join("data"), HELPER, "村里的终端").await;
    (w, scratch, client, login)
}

async fn offline_story(t: &TestDb) {
    let (w, scratch, client, login) = field(t).await;
    let data = scratch.join("data");
    assert!(login.key_created);
    assert!(login.households >= 1);

    // No network from here on.
    w.server_stop().await;

    let household = client.households(chrono::Utc::now()).await.unwrap()[0]
        .detail
        .summary
        .id;
    let mut home = VisitBody::new(VisitKind::Home, chrono::Utc::now());
    home.policies.push(PolicyArea::Medical);
    home.problems.push("屋顶漏雨".into());
    for (i, seed) in [1u8, 2].iter().enumerate() {
        let path = scratch.join(format!("photo{i}.jpg"));
        std::fs::write(&path, jpeg(80, *seed)).unwrap();
        home.photos.push(client.attach_photo(&path).await.unwrap());
    }
    let signature = client.attach_signature_png(&png(5)).await.unwrap();
    home.household_signature = Some(HouseholdSignature::Drawn {
        image_sha256: signature.clone(),
    });
    let photos: Vec<String> = home.photos.iter().map(|p| p.sha256.clone()).collect();
    let home = client
        .record_visit(household, home, None, None, chrono::Utc::now())
        .await
        .unwrap();
    let mut call = VisitBody::new(VisitKind::Phone, chrono::Utc::now());
    call.notes = Some("电话了解用药情况".into());
    let call = client
        .record_visit(household, call, None, None, chrono::Utc::now())
        .await
        .unwrap();

    // A sync without network fails at once and changes nothing.
    let offline = SyncOptions {
        retry: RetryPolicy::once(),
        ..SyncOptions::default()
    };
    let err = client.sync(&offline, &|_| {}).await.unwrap_err();
    assert!(err.is_transient(), "{err}");

    // Quit and restart: a new client over the same data directory.
    client.store().clone().close().await.unwrap();
    drop(client);
    let client = Client::open(DataDir::new(&data), Limits::default())
        .await
        .unwrap();
    let visits = client.visits(None, 10).await.unwrap();
    assert_eq!(visits.len(), 2);
    let found_home = visits
        .iter()
        .find(|v| v.visit_id == home.record.id)
        .unwrap();
    let found_call = visits
        .iter()
        .find(|v| v.visit_id == call.record.id)
        .unwrap();
    assert_eq!(found_home.current.signed, home);
    assert_eq!(found_call.current.signed, call);
    for v in [found_home, found_call] {
        assert!(matches!(v.sync, SyncState::Local | SyncState::Uploading));
    }
    for sha in photos.iter().chain([&signature]) {
        let bytes = std::fs::read(client.photos().path_of(sha)).unwrap();
        assert_eq!(sha256_hex(&bytes), *sha, "photo {sha} intact after restart");
    }
    let report = client.verify().await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.records, 2);
    let overview = client.households(chrono::Utc::now()).await.unwrap();
    let h = overview
        .iter()
        .find(|o| o.detail.summary.id == household)
        .unwrap();
    assert!(h.last_home.is_some() && h.last_phone.is_some());

    // The server is back (on another port): one sync delivers both, photos included.
    let server = TestServer::start(t.server_pool().await, w.settings.clone());
    let back = SyncOptions {
        server: Some(format!("http://{}", server.addr)),
        retry: RetryPolicy {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            ..RetryPolicy::default()
        },
        ..SyncOptions::default()
    };
    let report = client.sync(&back, &|_| {}).await.unwrap();
    assert!(report.complete(), "{report:?}");
    assert_eq!((report.synced, report.files_uploaded), (2, 3));
    assert_eq!(
        bangfu_server::entities::record::Entity::find()
            .count(&t.db)
            .await
            .unwrap(),
        2
    );
    let token = login_at(&server, HELPER, PASSWORD).await;
    for sha in photos.iter().chain([&signature]) {
        let resp = reqwest::Client::new()
            .get(server.url(&format!("/blobs/{sha}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::OK);
        // Served as the image it was checked to be, never sniffed as something else.
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        let bytes = resp.bytes().await.unwrap();
        assert!(
            bytes.as_ref() == std::fs::read(client.photos().path_of(sha)).unwrap(),
            "{sha} byte-identical on the server"
        );
    }
    server.stop().await;
}
db_test!(
    a_visit_recorded_offline_survives_a_restart_and_syncs_later,
    offline_story
);

/// QA s21b F12: a home visit short of the photos the county's policy asks (laizhou-2018:
/// one) is not counted by the server, which says so only in its reports. The device
/// says so at once: the visit carries the missing-evidence flag, is no home contact (the
/// windows are judged on the same count) and is among those not counted; an amendment
/// adding the photo makes it count.
async fn short_of_evidence(t: &TestDb) {
    use bangfu_client::flags::Flag;
    let (_w, scratch, client, _) = field(t).await;
    let now = chrono::Utc::now;
    let household = client.households(now()).await.unwrap()[0].detail.summary.id;

    let mut home = VisitBody::new(VisitKind::Home, now());
    home.household_signature = Some(HouseholdSignature::Drawn {
        image_sha256: client.attach_signature_png(&png(7)).await.unwrap(),
    });
    let signed = client
        .record_visit(household, home.clone(), None, None, now())
        .await
        .unwrap();
    let visits = client.visits(Some(household), 10).await.unwrap();
    assert_eq!(visits[0].flags, [Flag::MissingEvidence]);
    let overview = |client: &Client| {
        let client = client.clone();
        async move {
            client
                .households(now())
                .await
                .unwrap()
                .into_iter()
                .find(|o| o.detail.summary.id == household)
                .unwrap()
        }
    };
    let o = overview(&client).await;
    assert_eq!(o.last_home, None, "not counted");
    assert_eq!(o.not_counted, 1);
    // The photo taken and added by an amendment: it counts.
    let path = scratch.join("photo.jpg");
    std::fs::write(&path, jpeg(40, 9)).unwrap();
    home.photos.push(client.attach_photo(&path).await.unwrap());
    client
        .record_visit(
            household,
            home,
            Some((signed.record.id, Some("补拍照片".into()))),
            None,
            now(),
        )
        .await
        .unwrap();
    let visits = client.visits(Some(household), 10).await.unwrap();
    assert!(visits[0].flags.is_empty(), "{:?}", visits[0].flags);
    let o = overview(&client).await;
    assert!(o.last_home.is_some());
    assert_eq!(o.not_counted, 0);
}
db_test!(
    a_home_visit_short_of_the_countys_evidence_does_not_count_on_the_device,
    short_of_evidence
);
