//! Checkpoints of SQLite's write-ahead log off the write path. Left to SQLite, the
//! commit that finds the WAL past 1,000 pages copies it into the database file and
//! fsyncs both, inside the write transaction: every write waits behind it, and since the
//! writer runs on an HTTP worker ([`super::WriteTxn`]), so does every request on that
//! worker. The writer's connection does not checkpoint itself (`wal_autocheckpoint=0`);
//! after a commit that leaves the WAL past the same size, a checkpoint runs on a
//! blocking thread with a connection of its own, while writers go on appending. What
//! they appended meanwhile it copies in a second, short pass holding the write gate, so
//! the next writer finds the WAL wholly copied and starts it over from its beginning
//! (SQLite reuses a WAL only then: under a steady stream of writes, checkpoints alone
//! never leave it so, and the WAL would grow without end).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

/// The WAL size that calls for a checkpoint: SQLite's own default, 1,000 pages.
const WAL_PAGES: i64 = 1000;

/// The writer's WAL size in pages after its last commit (SQLite's WAL hook; there is
/// one writer slot per process).
static PAGES: AtomicI64 = AtomicI64::new(0);

/// The databases a checkpoint is running for (one at a time each).
static RUNNING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Has the writer's connection report its WAL's size after each commit (after
/// `wal_autocheckpoint=0`, which would replace the hook).
pub(super) fn watch(conn: &rusqlite::Connection) {
    fn hook(_: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
        PAGES.store(i64::from(pages), Ordering::Relaxed);
        Ok(())
    }
    conn.wal_hook(Some(hook));
}

/// Called after each commit of the writer on `file`: starts a checkpoint when the WAL
/// has grown past [`WAL_PAGES`] and none of that file is running.
pub(super) fn after_commit(file: &Path) {
    if PAGES.load(Ordering::Relaxed) < WAL_PAGES {
        return;
    }
    let Some(running) = Running::start(file) else {
        return;
    };
    let file = file.to_path_buf();
    let work = move || {
        if let Err(e) = checkpoint(&file) {
            // The next commit past the size tries again; the data are safe either way.
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
        drop(running);
    };
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        drop(rt.spawn_blocking(work));
    }
}

/// The checkpointer's connection, kept between checkpoints (opening one and reading
/// the schema cost about as much as a checkpoint's copying); replaced when a
/// checkpoint is for another database file.
static CONNECTION: Mutex<Option<(PathBuf, rusqlite::Connection)>> = Mutex::new(None);

/// A passive checkpoint (it never waits for writers or readers), then a second pass
/// through the write gate for what writers appended meanwhile.
fn checkpoint(file: &Path) -> Result<(), sea_orm::DbErr> {
    let mut kept = CONNECTION
        .lock()
        .map_err(|_| sea_orm::DbErr::Custom("the checkpointer failed mid-call".into()))?;
    if kept.as_ref().is_none_or(|(f, _)| f != file) {
        *kept = None;
        *kept = Some((file.to_path_buf(), super::in_place::open(file)?));
    }
    let Some((_, conn)) = kept.as_ref() else {
        return Ok(());
    };
    let pass = || {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok(r.get::<_, i64>(1)? == r.get::<_, i64>(2)?)
        })
        .map_err(|e| super::in_place::query_err(&e))
    };
    pass()?;
    // Whatever the first pass copied, writers appended more meanwhile; the WAL starts
    // over only at a write that finds it wholly copied, so the rest is copied with the
    // writers held off.
    let _gate = super::SQLITE_WRITER.blocking_lock();
    pass().map(drop)
}

/// A database's place in [`RUNNING`], left when dropped: after the checkpoint, or with
/// the task if its runtime shuts down before running it.
struct Running(PathBuf);

impl Running {
    /// `None` if a checkpoint of `file` is running already.
    fn start(file: &Path) -> Option<Running> {
        let mut running = RUNNING.lock().ok()?;
        if running.iter().any(|f| f == file) {
            return None;
        }
        running.push(file.to_path_buf());
        Some(Running(file.to_path_buf()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut running) = RUNNING.lock() {
            running.retain(|f| f != &self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    /// Four rounds of 500 commits of ~8 KB, each round 8 MB through the WAL, without a
    /// pause within a round: with no checkpoint the WAL grows by 8 MB a round (to 33 MB);
    /// checkpointed, later rounds reuse the space of the first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_is_checkpointed_and_reused_instead_of_growing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let db = super::super::connect(&url).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL)")
            .await
            .unwrap();
        let row = "x".repeat(8000);
        let wal_len = || {
            std::fs::metadata(super::super::wal_of(&file))
                .unwrap()
                .len()
        };
        let mut sizes = Vec::new();
        for round in 0..4i64 {
            for i in 0..500 {
                let (_gate, txn) = super::super::begin_write(&db).await.unwrap();
                txn.commit_with(vec![Statement::from_sql_and_values(
                    DbBackend::Sqlite,
                    "INSERT INTO t (a, b) VALUES (?, ?)",
                    [(round * 500 + i).into(), row.as_str().into()],
                )])
                .await
                .unwrap();
            }
            // A quiet moment, as a server has between bursts: the checkpoint finishes.
            while super::RUNNING.lock().unwrap().iter().any(|f| f == &file) {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            sizes.push(wal_len());
        }
        assert!(
            sizes[3] < sizes[0] + (8 << 20),
            "the WAL's space was reused, not grown by a round's 8 MB each round: {sizes:?}"
        );
        let n = db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT COUNT(*) AS n FROM t",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap();
        assert_eq!(n, 2000);
    }
}
