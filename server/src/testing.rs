//! Test support shared by the server's unit tests and the `tests/` crate: a fresh real
//! database per test — a temporary SQLite file, or a private schema on the PostgreSQL
//! server named by `TEST_DATABASE_URL` — and a real server on `127.0.0.1:0`.

#![allow(
    clippy::expect_used,
    reason = "test support: a failed setup should stop the test loudly"
)]

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use std::net::{SocketAddr, TcpListener};

use crate::config::{Argon2Settings, Settings};
use crate::{AppState, db};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated, empty database that is removed when the test is done.
pub struct TestDb {
    pub db: DatabaseConnection,
    pub url: String,
    pub backend: Backend,
    dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// A database on `backend`, or `None` for PostgreSQL when `TEST_DATABASE_URL` is unset.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::sqlite().await),
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    /// A fresh SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        let db = db::connect_and_migrate(&url).await.expect("migrate sqlite");
        TestDb {
            db,
            url,
            backend: Backend::Sqlite,
            dir,
            pg: None,
        }
    }

    /// A private schema on the PostgreSQL server of `TEST_DATABASE_URL`.
    pub async fn postgres() -> Option<TestDb> {
        let base = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        let schema = format!("t_{}", uuid_like());
        let admin = Database::connect(base.clone())
            .await
            .expect("connect TEST_DATABASE_URL");
        admin
            .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("create schema");
        admin.close().await.ok();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        let db = db::connect_and_migrate(&url)
            .await
            .expect("migrate postgres");
        let dir = tempfile::tempdir().expect("temp dir");
        Some(TestDb {
            db,
            url,
            backend: Backend::Postgres,
            dir,
            pg: Some((base, schema)),
        })
    }

    /// A pool of its own for an in-process server. actix workers run their own runtimes,
    /// and a PostgreSQL connection opened on one dies with it: sharing the test's pool
    /// would hand such dead connections back to the test once the server stopped.
    pub async fn server_pool(&self) -> DatabaseConnection {
        db::connect(&self.url)
            .await
            .expect("connect the server's pool")
    }

    /// Moves a household's exit of today, and the ends it gave the household's pairings,
    /// a day back, as a day passing would: from its second day an exit is no longer
    /// withdrawn but the household comes back by a rejoin (s32d X6). Pairings that began
    /// today are moved to 60 days back first, so none ends before it begins. Returns the
    /// exit's day.
    pub async fn exit_a_day_old(&self, household_id: i64) -> chrono::NaiveDate {
        let today = crate::services::today();
        let yesterday = today - chrono::Duration::days(1);
        let since = today - chrono::Duration::days(60);
        let h = household_id;
        for sql in [
            format!(
                "UPDATE pairings SET valid_from = '{since}' \
                 WHERE household_id = {h} AND valid_from = '{today}'"
            ),
            format!(
                "UPDATE pairings SET valid_to = '{yesterday}' \
                 WHERE household_id = {h} AND valid_to = '{today}'"
            ),
            format!(
                "UPDATE household_exits SET effective_from = '{yesterday}' \
                 WHERE household_id = {h} AND effective_from = '{today}'"
            ),
        ] {
            if let Err(e) = self.db.execute_unprepared(&sql).await {
                panic!("moving the exit a day back: {e}");
            }
        }
        yesterday
    }

    /// A directory for files the test writes (photos, exports).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Drops the PostgreSQL schema (SQLite files go with the temp dir).
    pub async fn cleanup(self) {
        self.db.close().await.ok();
        let Some((base, schema)) = self.pg else {
            return;
        };
        if let Ok(admin) = Database::connect(base).await {
            admin
                .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await
                .ok();
            admin.close().await.ok();
        }
    }
}

fn uuid_like() -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

/// Settings for tests: cheap password hashing, two workers, data in `dir`.
pub fn test_settings(url: &str, dir: &std::path::Path) -> Settings {
    Settings {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.to_path_buf(),
        database_url: Some(url.to_string()),
        workers: 2,
        argon2: Argon2Settings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        log: "warn".into(),
        ..Settings::default()
    }
}

/// A running server on a loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    handle: actix_web::dev::ServerHandle,
}

impl TestServer {
    /// Starts a server over an existing database connection.
    pub fn start(db: DatabaseConnection, settings: Settings) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let server =
            crate::serve(AppState::new(db, settings).expect("state"), listener).expect("serve");
        let handle = server.handle();
        tokio::spawn(server);
        TestServer {
            addr,
            base: format!("http://{addr}/api/v1"),
            handle,
        }
    }

    /// The URL of an API path (`/me` → `http://127.0.0.1:PORT/api/v1/me`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops accepting and waits for the workers, leaving the value in place.
    pub async fn stop_ref(&self) {
        self.handle.stop(true).await;
    }

    /// Stops accepting and waits for the workers.
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// Runs one async test body on SQLite and, when `TEST_DATABASE_URL` is set, on PostgreSQL:
/// `db_test!(name, body_fn)` makes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! db_test {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let t = $crate::testing::TestDb::sqlite().await;
                super::$body(&t).await;
                t.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::testing::TestDb::postgres().await {
                    Some(t) => {
                        super::$body(&t).await;
                        t.cleanup().await;
                    }
                    None => eprintln!("skipped: TEST_DATABASE_URL is not set"),
                }
            }
        }
    };
}
