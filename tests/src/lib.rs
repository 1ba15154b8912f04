//! Helpers for the end-to-end tests: a county set up through the real services, a
//! real server on a loopback port, and a small JSON client over reqwest.

#![allow(
    clippy::expect_used,
    reason = "test support: a failed setup should stop the test loudly"
)]

pub mod field;
pub mod scenario;
pub mod stock_client;

pub use bangfu_server::testing::{TestDb, TestServer, test_settings};

use bangfu_server::Settings;
use bangfu_server::services::{Caller, auth, jurisdictions, policy};
use bangfu_shared::{JurisdictionLevel, PolicyPreset, Role};
use chrono::NaiveDate;
use reqwest::StatusCode;
use serde_json::Value;

/// The official sample ledger (one town, 20 households).
pub const FIXTURE: &str = include_str!("../fixtures/ledger-sample.csv");
/// The password of every account the tests create.
pub const PASSWORD: &str = "test-password";

/// A server over a fresh database with one county (laizhou-2018 from 2018).
pub struct World {
    pub server: TestServer,
    /// The server's database, for what a test sets up beside the API.
    pub db: sea_orm::DatabaseConnection,
    pub settings: Settings,
    pub county_id: i64,
    pub http: reqwest::Client,
}

impl World {
    /// Starts a server over `t`'s database with the county 莱州市 and an admin.
    pub async fn new(t: &TestDb) -> World {
        World::with(t, |_| {}).await
    }

    /// As [`World::new`], with settings adjusted first (e.g. smaller body limits).
    pub async fn with(t: &TestDb, adjust: impl FnOnce(&mut Settings)) -> World {
        let mut settings = test_settings(&t.url, t.dir());
        adjust(&mut settings);
        let county_id = county(t, "莱州市").await;
        auth::add_user(
            &t.db,
            &settings,
            &Caller::system(),
            "admin",
            Role::Admin,
            None,
            PASSWORD,
        )
        .await
        .expect("admin");
        let server = TestServer::start(t.server_pool().await, settings.clone());
        World {
            server,
            db: t.db.clone(),
            settings,
            county_id,
            http: reqwest::Client::new(),
        }
    }

    /// Stops the in-process server (its database stays).
    pub async fn server_stop(&self) {
        self.server.stop_ref().await;
    }

    /// Logs in and returns the token.
    pub async fn login(&self, username: &str) -> String {
        let (status, body) = self
            .post_json(
                None,
                "/auth/login",
                &serde_json::json!({ "username": username, "password": PASSWORD }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {username}: {body}");
        body["token"].as_str().expect("token").to_string()
    }

    /// GET a JSON path.
    pub async fn get(&self, token: Option<&str>, path: &str) -> (StatusCode, Value) {
        let mut req = self.http.get(self.server.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// GET raw bytes.
    pub async fn get_bytes(&self, token: &str, path: &str) -> (StatusCode, Vec<u8>) {
        let resp = self
            .http
            .get(self.server.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("send");
        let status = resp.status();
        (status, resp.bytes().await.expect("body").to_vec())
    }

    /// POST JSON.
    pub async fn post_json(
        &self,
        token: Option<&str>,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        self.json(reqwest::Method::POST, token, path, body).await
    }

    /// PATCH JSON.
    pub async fn patch_json(
        &self,
        token: Option<&str>,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        self.json(reqwest::Method::PATCH, token, path, body).await
    }

    async fn json(
        &self,
        method: reqwest::Method,
        token: Option<&str>,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.server.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// POST a file body (an import).
    pub async fn post_bytes(&self, token: &str, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.server.url(path))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .expect("send");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Imports a file as `token`, expecting success; returns the report.
    pub async fn import_ok(&self, token: &str, query: &str, body: Vec<u8>) -> Value {
        let (status, report) = self
            .post_bytes(token, &format!("/ledger/import{query}"), body)
            .await;
        assert_eq!(status, StatusCode::OK, "import: {report}");
        report
    }
}

/// Today in China (UTC+8), the calendar the programme's rules and the server use.
pub fn china_today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// Creates a county with the laizhou-2018 policy from 2018-01-01.
pub async fn county(t: &TestDb, name: &str) -> i64 {
    let (id, _) = jurisdictions::ensure(&t.db, JurisdictionLevel::County, name, None)
        .await
        .expect("county");
    let from = NaiveDate::from_ymd_opt(2018, 1, 1).expect("date");
    policy::set(
        &t.db,
        &Caller::system(),
        id,
        None,
        from,
        &PolicyPreset::Laizhou2018.policy(),
    )
    .await
    .expect("policy");
    id
}

/// Creates a town office or county office account.
pub async fn office(t: &TestDb, w: &World, username: &str, role: Role, scope: i64) {
    auth::add_user(
        &t.db,
        &w.settings,
        &Caller::system(),
        username,
        role,
        Some(scope),
        PASSWORD,
    )
    .await
    .expect("office");
}

/// Gives an imported helper a password directly (as if enrolled).
pub async fn enroll_directly(t: &TestDb, w: &World, phone: &str) {
    use bangfu_server::entities::account;
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
    let acct = account::Entity::find()
        .filter(account::Column::Username.eq(phone))
        .one(&t.db)
        .await
        .expect("query")
        .expect("helper account");
    let hash = auth::hash_password(&w.settings.argon2, PASSWORD.to_string())
        .await
        .expect("hash");
    let mut active = acct.into_active_model();
    active.password_hash = Set(Some(hash));
    active.update(&t.db).await.expect("update");
}

/// The fixture with the UTF-8 BOM our CSV export writes.
pub fn with_bom(text: &str) -> Vec<u8> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out
}

/// The `bangfu-server` binary, built on first use (a plain `cargo test` does not build
/// binaries of other packages).
pub fn server_binary() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| built_binary("bangfu-server", "bangfu-server"))
        .clone()
}

/// `bangfu-server` on the embedded database of `data`, whatever the environment says
/// (`DATABASE_URL`, `BANGFU_CONFIG`): whether it succeeded, and its stderr.
pub fn server_command<S: AsRef<std::ffi::OsStr>>(
    data: &std::path::Path,
    args: &[S],
) -> (bool, String) {
    let out = std::process::Command::new(server_binary())
        .env_remove("DATABASE_URL")
        .env_remove("BANGFU_CONFIG")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("bangfu-server: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The field client's `bangfu` binary, built on first use.
pub fn client_binary() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| built_binary("bangfu-client", "bangfu"))
        .clone()
}

/// Builds `bin` of `package` into this test's target directory; its path.
fn built_binary(package: &str, bin: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .env(
            "CARGO_TARGET_DIR",
            profile_dir.parent().expect("target dir"),
        )
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building {bin} failed");
    profile_dir.join(bin)
}

/// A `bangfu-server serve` child process on a free loopback port.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub base: String,
}

impl ServerProcess {
    /// Starts the real binary over `database_url` and waits until it answers.
    pub async fn start(database_url: &str, data_dir: &std::path::Path, port: u16) -> ServerProcess {
        let child = std::process::Command::new(server_binary())
            .args(["--database-url", database_url, "--data-dir"])
            .arg(data_dir)
            .args([
                "--log",
                "warn",
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn bangfu-server");
        let server = ServerProcess {
            child,
            base: format!("http://127.0.0.1:{port}/api/v1"),
        };
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if http
                .get(format!("{}/openapi.json", server.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("bangfu-server did not start on port {port}");
    }

    /// SIGKILL: no shutdown, no flushing — a power cut.
    pub fn kill(self) {
        drop(self);
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Sends `req` and reads its JSON answer, whatever the status: the tests' shorthand for
/// a request made outside [`World`] (a spawned task, a server of its own).
pub async fn send_json<T: serde::de::DeserializeOwned>(req: reqwest::RequestBuilder) -> T {
    req.send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json answer")
}

/// Logs `username` in at `server` (one started without a [`World`]); the token.
pub async fn login_at(server: &TestServer, username: &str, password: &str) -> String {
    let body: Value = send_json(
        reqwest::Client::new()
            .post(server.url("/auth/login"))
            .json(&serde_json::json!({ "username": username, "password": password })),
    )
    .await;
    body["token"].as_str().expect("token").to_string()
}

/// Sync options for a server on loopback: short pauses between `max_attempts` attempts,
/// so a test of retries does not wait for a mobile network's.
pub fn quick_sync(max_attempts: u32) -> bangfu_client::SyncOptions {
    bangfu_client::SyncOptions {
        retry: bangfu_client::sync::RetryPolicy {
            max_attempts,
            base_delay: std::time::Duration::from_millis(5),
            max_delay: std::time::Duration::from_millis(50),
        },
        max_duration: std::time::Duration::from_secs(60),
        ..bangfu_client::SyncOptions::default()
    }
}

/// The real field client over the data directory `dir`, logged in at `w`'s server as
/// `username` (password [`PASSWORD`]) from a device labelled `label`; with what the
/// login reported.
pub async fn client_logged_in(
    w: &World,
    dir: &std::path::Path,
    username: &str,
    label: &str,
) -> (bangfu_client::Client, bangfu_client::LoginSummary) {
    let client = bangfu_client::Client::open(
        bangfu_client::DataDir::new(dir),
        bangfu_client::Limits::default(),
    )
    .await
    .expect("open the client's data directory");
    let login = client
        .login(&bangfu_client::LoginParams {
            server: format!("http://{}", w.server.addr),
            username: username.into(),
            password: PASSWORD.into(),
            enroll_code: None,
            device_label: label.into(),
        })
        .await
        .expect("client login");
    (client, login)
}
