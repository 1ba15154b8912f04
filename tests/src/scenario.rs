//! The scenario most end-to-end tests start from, built once here rather than copied into
//! each test file: the fixture ledger imported by the county office, and its first
//! helper signed in with a registered device.

use crate::field::Device;
use crate::{FIXTURE, TestDb, World, enroll_directly, office};
use bangfu_shared::Role;
use bangfu_shared::ledger::LedgerRow;
use bangfu_shared::sync::PushResponse;
use bangfu_shared::visit::{SignedRecord, sha256_hex};
use reqwest::StatusCode;
use serde_json::json;

/// 黄志强, first helper of 田晓东 in the fixture ledger: the helper the tests sign in as.
pub const HELPER: &str = "15907579383";

/// 孔玉梅, second helper of the fixture's households 1–5 (first helper of none).
pub const SECOND_HELPER: &str = "18893287921";

/// Adds the county office account, signs it in and imports the fixture ledger (town
/// 东城镇) as it; returns the office's token.
pub async fn fixture_ledger(t: &TestDb, w: &World) -> String {
    office(t, w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    w.import_ok(&county, "", FIXTURE.as_bytes().to_vec()).await;
    county
}

/// A second town (西港镇, five generated households) beside the fixture's, for tests of
/// what a helper may not reach.
pub struct OtherTown {
    /// Its ledger rows as imported.
    pub rows: Vec<LedgerRow>,
    /// One of its households, as the county office lists it.
    pub household: i64,
}

/// [`HELPER`] signed in with a registered device on a server holding the fixture ledger,
/// one of their households, and the county office signed in.
pub struct Field {
    pub w: World,
    /// The county office's token.
    pub county: String,
    /// The helper's token.
    pub token: String,
    /// `http://host:port` of the server (tus upload URLs are relative to it).
    pub origin: String,
    pub device: Device,
    /// The helper's first household.
    pub household: i64,
    other_town: Option<OtherTown>,
}

impl Field {
    /// The fixture ledger only, on a server with the test settings.
    pub async fn new(t: &TestDb) -> Field {
        Field::build(t, |_| {}, false).await
    }

    /// As [`Field::new`], on a server with adjusted settings.
    pub async fn with(t: &TestDb, adjust: impl FnOnce(&mut bangfu_server::Settings)) -> Field {
        Field::build(t, adjust, false).await
    }

    /// As [`Field::with`], with a second town imported after the fixture's (see
    /// [`Field::other_town`]).
    pub async fn two_towns(t: &TestDb, adjust: impl FnOnce(&mut bangfu_server::Settings)) -> Field {
        Field::build(t, adjust, true).await
    }

    async fn build(
        t: &TestDb,
        adjust: impl FnOnce(&mut bangfu_server::Settings),
        two_towns: bool,
    ) -> Field {
        let w = World::with(t, adjust).await;
        let county = fixture_ledger(t, &w).await;
        let rows = if two_towns {
            let rows = bangfu_server::demo::town_ledger(1, 5, 9);
            w.import_ok(
                &county,
                "",
                bangfu_server::ledger::export::write(
                    &rows,
                    bangfu_server::ledger::ExportFormat::Csv,
                )
                .expect("export the second town"),
            )
            .await;
            Some(rows)
        } else {
            None
        };
        enroll_directly(t, &w, HELPER).await;
        let token = w.login(HELPER).await;
        let (_, me) = w.get(Some(&token), "/me").await;
        let helper_id = me["helper"]["id"].as_i64().expect("helper id");
        let (_, mine) = w.get(Some(&token), "/households").await;
        let household = mine["items"][0]["id"].as_i64().expect("a household");
        let other_town = match rows {
            Some(rows) => {
                let (_, all) = w.get(Some(&county), "/households?per_page=100").await;
                let household = all["items"]
                    .as_array()
                    .expect("households")
                    .iter()
                    .find(|h| h["town"]["name"] == "西港镇")
                    .expect("a household of 西港镇")["id"]
                    .as_i64()
                    .expect("household id");
                Some(OtherTown { rows, household })
            }
            None => None,
        };
        let origin = format!("http://{}", w.server.addr);
        let device = Device::register(&w, &token, helper_id).await;
        Field {
            w,
            county,
            token,
            origin,
            device,
            household,
            other_town,
        }
    }

    /// [`SECOND_HELPER`] signed in with their own registered device: their token and
    /// device.
    pub async fn second_helper(&self, t: &TestDb) -> (String, Device) {
        enroll_directly(t, &self.w, SECOND_HELPER).await;
        let token = self.w.login(SECOND_HELPER).await;
        let (_, me) = self.w.get(Some(&token), "/me").await;
        let id = me["helper"]["id"].as_i64().expect("helper id");
        let device = Device::register(&self.w, &token, id).await;
        (token, device)
    }

    /// The second town of a [`Field::two_towns`].
    pub fn other_town(&self) -> &OtherTown {
        self.other_town
            .as_ref()
            .expect("the field was built with Field::two_towns")
    }

    /// tus: creates an upload of `bytes` as the helper, declaring their SHA-256, and
    /// expects 201; returns the upload's URL.
    pub async fn create_upload(&self, bytes: &[u8]) -> String {
        let (status, url) = crate::field::tus_create(
            &self.w.http,
            &self.origin,
            &self.token,
            bytes.len(),
            &sha256_hex(bytes),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        url.expect("Location")
    }

    /// Pushes `records` as the helper, expecting 200; the server's answer.
    pub async fn push(&self, records: &[SignedRecord]) -> PushResponse {
        let (status, body) = self
            .w
            .post_json(
                Some(&self.token),
                "/sync/push",
                &json!({ "records": records }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_value(body).expect("a push response")
    }
}
