//! The local store: one SQLite file in the data directory, in WAL mode, migrated on
//! open. Every save is a single transaction, so a process killed at any moment leaves
//! either the whole record or none of it.
//!
//! Signed records are append-only (enforced by triggers too); the `visits` table is a
//! projection of them (the current state of each visit after amendments and voids),
//! written in the same transaction as the record that changes it.

mod outbox;
mod queries;
mod schema;
mod sheets;

use std::path::Path;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, Value,
};

use crate::error::{ClientError, Result};

pub use outbox::{DecisionsReceived, MAX_SEQUENCE_COPIES, PullApplied, SyncCounts};
pub use queries::{Identity, LocalHousehold, ReviewNote, StoredRecord, SyncState, VisitRow};
pub use sheets::{StoredSubmission, SubmissionState};

/// The client's SQLite store.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

/// A statement for the SQLite backend with bound parameters.
pub(crate) fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

impl Store {
    /// Opens (creating if needed) and migrates the store at `path`. The store and its
    /// -wal and -shm files are the user's alone (0600) whatever the umask: they hold
    /// households' personal data and the session (QA s23 F5).
    pub async fn open(path: &Path) -> Result<Self> {
        // Created 0600 before SQLite opens it, so the -wal and -shm files SQLite makes
        // beside it get that mode too.
        crate::config::private_file(path)?;
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut opts = ConnectOptions::new(url);
        // One connection: the client is one user; it also keeps per-connection pragmas
        // in force for every statement.
        opts.max_connections(1)
            .min_connections(1)
            .sqlx_logging(false)
            .acquire_timeout(Duration::from_secs(30));
        opts.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
        });
        let db = Database::connect(opts).await?;
        // Ones an earlier version left with the umask's mode.
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let side = std::path::PathBuf::from(name);
            if side.exists() {
                crate::config::set_mode(&side, 0o600)?;
            }
        }
        let store = Store { db };
        store.migrate().await?;
        Ok(store)
    }

    /// The connection, for embedders that need to read more than this API offers.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Begins a transaction that writes, holding SQLite's write lock from its `BEGIN`
    /// (`BEGIN IMMEDIATE`): one begun deferred reads first and, if a sync wrote
    /// meanwhile, fails its first write at once with "database is locked" (a stale
    /// snapshot no wait can save). Begun immediate, it waits its turn (the busy
    /// timeout) for the other's short transaction instead (QA s26b F13).
    pub async fn begin_write(
        &self,
    ) -> std::result::Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
        use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait as _};
        self.db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
    }

    async fn migrate(&self) -> Result<()> {
        let current = self.user_version().await?;
        if current > schema::STEPS.len() as i64 {
            return Err(ClientError::NewerStore {
                found: current,
                known: schema::STEPS.len() as i64,
            });
        }
        for (i, step) in schema::STEPS.iter().enumerate().skip(current as usize) {
            let txn = self.begin_write().await?;
            txn.execute_unprepared(step).await?;
            txn.execute_unprepared(&format!("PRAGMA user_version = {}", i + 1))
                .await?;
            txn.commit().await?;
        }
        Ok(())
    }

    async fn user_version(&self) -> Result<i64> {
        let row = self
            .db
            .query_one_raw(stmt("PRAGMA user_version", []))
            .await?;
        Ok(row
            .map(|r| r.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0))
    }

    /// `PRAGMA integrity_check`: `"ok"` for a sound file.
    pub async fn integrity_check(&self) -> Result<String> {
        let rows = self
            .db
            .query_all_raw(stmt("PRAGMA integrity_check", []))
            .await?;
        let lines: Vec<String> = rows
            .iter()
            .filter_map(|r| r.try_get_by_index::<String>(0).ok())
            .collect();
        Ok(lines.join("\n"))
    }

    /// The journal mode in force (`"wal"`).
    pub async fn journal_mode(&self) -> Result<String> {
        let row = self
            .db
            .query_one_raw(stmt("PRAGMA journal_mode", []))
            .await?;
        Ok(row
            .map(|r| r.try_get_by_index::<String>(0))
            .transpose()?
            .unwrap_or_default())
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(self) -> Result<()> {
        self.db.close().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store and its -wal and -shm files are the user's alone (0600) once opened,
    /// whatever the umask; ones an earlier version left open are tightened on the next
    /// open (QA s23 F5).
    #[cfg(unix)]
    #[tokio::test]
    async fn the_store_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bangfu.sqlite3");
        let files = [
            path.clone(),
            dir.path().join("bangfu.sqlite3-wal"),
            dir.path().join("bangfu.sqlite3-shm"),
        ];
        let store = Store::open(&path).await.unwrap();
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        store.close().await.unwrap();
        // An earlier version's store, with its side files left behind.
        std::fs::write(&files[1], b"").unwrap();
        std::fs::write(&files[2], b"").unwrap();
        for f in &files {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let store = Store::open(&path).await.unwrap();
        for f in &files {
            assert_eq!(mode(f), 0o600, "tightened: {}", f.display());
        }
        store.close().await.unwrap();
    }

    /// A store a newer client wrote is refused as such, and left as it was.
    #[tokio::test]
    async fn a_store_from_a_newer_client_is_refused_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let store = Store::open(&path).await.unwrap();
        let newer = schema::STEPS.len() as i64 + 1;
        store
            .connection()
            .execute_unprepared(&format!("PRAGMA user_version = {newer}"))
            .await
            .unwrap();
        store.close().await.unwrap();
        let e = Store::open(&path).await.map(|_| ()).unwrap_err();
        assert!(
            matches!(e, ClientError::NewerStore { found, .. } if found == newer),
            "{e:?}"
        );
    }

    /// A store made by the first schema version, with a record and its photo link,
    /// migrates to the current schema with its data intact.
    #[tokio::test]
    async fn a_version_1_store_migrates_with_its_records() {
        let dir = std::env::temp_dir().join(format!("bangfu-migrate-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.sqlite3");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = Database::connect(url.as_str()).await.unwrap();
        db.execute_unprepared(schema::STEPS[0]).await.unwrap();
        db.execute_unprepared("PRAGMA user_version = 1")
            .await
            .unwrap();
        let photo = "ab".repeat(32);
        let prev = "0".repeat(64);
        db.execute_unprepared(&format!(
            "INSERT INTO files VALUES ('{photo}', 'image/jpeg', 10, 4, 3, '2026-03-01T00:00:00Z');
             INSERT INTO records (id, device_id, seq, record_type, household_id, sha256, prev_sha256, envelope_json, signature, created_at)
               VALUES ('r1', 1, 1, 'visit', 1, 'cd', '{prev}', '{{}}', 'sig', '2026-03-01T00:00:00Z');
             INSERT INTO record_files VALUES ('r1', '{photo}', 'photo');"
        ))
        .await
        .unwrap();
        db.close().await.unwrap();

        let store = Store::open(&path).await.unwrap();
        assert_eq!(
            store.user_version().await.unwrap(),
            schema::STEPS.len() as i64
        );
        let row = store
            .connection()
            .query_one_raw(stmt(
                "SELECT r.sync_state, r.sync_missing, f.sha256 FROM records r JOIN record_files f ON f.record_id = r.id",
                [],
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get_by_index::<String>(0).unwrap(), "local");
        assert_eq!(row.try_get_by_index::<String>(1).unwrap(), "[]");
        assert_eq!(row.try_get_by_index::<String>(2).unwrap(), photo);
        assert!(store.missing_images().await.unwrap().is_empty());
        assert_eq!(store.integrity_check().await.unwrap(), "ok");
        store.close().await.unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }

    /// An upgraded device keeps its households as the helper's current ones: step 5
    /// marks none of them ended (only a later server list can).
    #[tokio::test]
    async fn households_stored_before_step_5_stay_current() {
        let dir = std::env::temp_dir().join(format!("bangfu-migrate5-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.sqlite3");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = Database::connect(url.as_str()).await.unwrap();
        for step in &schema::STEPS[..4] {
            db.execute_unprepared(step).await.unwrap();
        }
        db.execute_unprepared("PRAGMA user_version = 4")
            .await
            .unwrap();
        let detail = serde_json::json!({
            "id": 7, "head_name": "赵六", "town": {"id": 1, "level": "town", "name": "东山镇"},
            "village": {"id": 2, "level": "village", "name": "北村"}, "address": "北村7号",
            "phone": "13900000000", "size": 2, "status": "identified", "cause": "因病",
            "measures": "医疗救助", "first_helper": null, "second_helper": null,
            "members": [], "pairings": []
        });
        db.execute_raw(stmt(
            "INSERT INTO households (id, head_name, village, detail_json) VALUES (7, '赵六', '北村', ?)",
            [detail.to_string().into()],
        ))
        .await
        .unwrap();
        db.close().await.unwrap();

        let store = Store::open(&path).await.unwrap();
        let listed = store.households().await.unwrap();
        assert_eq!(listed.len(), 1, "still the helper's household");
        assert_eq!(listed[0].summary.head_name, "赵六");
        assert!(store.ended_households().await.unwrap().is_empty());
        store.close().await.unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }
}
