//! The write transaction of [`super::begin_write`]: on PostgreSQL an ordinary one, on
//! SQLite the writer's own connection (kept between transactions, see
//! [`super::SqliteWriter`]), driven synchronously on the calling thread through
//! `rusqlite`.
//!
//! Why: SQLite has one writer at a time, so how long a transaction holds the write gate
//! bounds every write the server makes. Through sqlx every call is a hand-off to the
//! connection's worker thread and back, and the task then waits its turn on a busy HTTP
//! worker: a push's two calls held the gate ~430 µs under the reference load, for
//! ~60 µs of SQLite work. Run in place, a transaction holds the gate for its work only.
//! Statements are built by sea-orm as for PostgreSQL; they are bound and their rows
//! decoded in [`super::sqlite_values`].
//!
//! Nothing is left half-written: a statement that fails rolls the whole transaction
//! back at once (later calls are refused), and a transaction dropped unfinished (an
//! error path, a cancelled request) is rolled back as it is dropped.

use super::in_place::{Answer, Fetch, plain, statement};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, Statement,
};
use tokio::sync::MutexGuard;

/// A transaction that will write; see the module documentation. Use it as any
/// `ConnectionTrait`, and finish it with [`WriteTxn::commit`] or
/// [`WriteTxn::commit_with`]; dropping it unfinished rolls it back.
pub enum WriteTxn {
    /// PostgreSQL: sea-orm's transaction (its protocol pipelines `BEGIN` already).
    Postgres(DatabaseTransaction),
    /// SQLite: the writer's slot and connection.
    Sqlite(SqliteWrite),
}

/// The SQLite side of [`WriteTxn`].
pub struct SqliteWrite {
    inner: std::sync::Mutex<Inner>,
}

struct Inner {
    /// The gate, holding the connection.
    gate: MutexGuard<'static, super::SqliteWriter>,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `BEGIN IMMEDIATE` done (by [`super::begin_write`]): the transaction holds
    /// SQLite's write lock.
    Open,
    /// Rolled back after a failed statement: every later call is refused.
    Aborted,
    /// Committed or rolled back on purpose.
    Done,
}

impl WriteTxn {
    /// A SQLite write transaction on the gate's connection, which has begun it.
    pub(super) fn sqlite(gate: MutexGuard<'static, super::SqliteWriter>) -> WriteTxn {
        WriteTxn::Sqlite(SqliteWrite {
            inner: std::sync::Mutex::new(Inner {
                gate,
                state: State::Open,
            }),
        })
    }

    /// Commits what was written.
    pub async fn commit(self) -> Result<(), DbErr> {
        self.commit_with(Vec::new()).await
    }

    /// Runs `stmts` (as [`super::execute_all`] does) and commits.
    pub async fn commit_with(self, stmts: Vec<Statement>) -> Result<(), DbErr> {
        match self {
            WriteTxn::Postgres(txn) => {
                super::execute_all(&txn, stmts).await?;
                txn.commit().await
            }
            WriteTxn::Sqlite(w) => w.with(|inner| {
                for stmt in stmts {
                    inner.run(stmt, Fetch::Execute)?;
                }
                inner.guarded(|conn| plain(conn, "COMMIT"))?;
                inner.state = State::Done;
                super::checkpoint::after_commit(&inner.gate.file);
                Ok(())
            }),
        }
    }
}

impl Inner {
    /// Runs one statement. A failure rolls the transaction back before it is returned.
    fn run(&mut self, stmt: Statement, fetch: Fetch) -> Result<Answer, DbErr> {
        if self.state != State::Open {
            return Err(DbErr::Custom(
                "the write transaction was already rolled back or committed".into(),
            ));
        }
        let values = stmt.values.map(|v| v.0).unwrap_or_default();
        self.guarded(|conn| statement(conn, &stmt.sql, &values, fetch))
    }

    /// Runs `f` on the connection; if it fails, the transaction is rolled back and
    /// every later call refused.
    fn guarded<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, DbErr>,
    ) -> Result<T, DbErr> {
        let conn = self
            .gate
            .conn
            .as_ref()
            .ok_or_else(|| DbErr::Custom("the writer's connection is closed".into()))?;
        let out = f(conn);
        if out.is_err() {
            self.rollback();
            self.state = State::Aborted;
        }
        out
    }

    /// Rolls back an open transaction. Should `ROLLBACK` itself fail, the connection is
    /// closed, which rolls it back.
    fn rollback(&mut self) {
        let Some(conn) = &self.gate.conn else { return };
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            self.gate.conn = None;
        }
    }
}

impl Drop for SqliteWrite {
    fn drop(&mut self) {
        match self.inner.get_mut() {
            // Unfinished (an error returned early, or the request was cancelled): rolled
            // back here, so the next transaction finds the connection idle.
            Ok(inner) if inner.state == State::Open => inner.rollback(),
            Ok(_) => {}
            // A panic mid-call: nothing is known of the connection; closing it rolls
            // back whatever it holds.
            Err(poisoned) => poisoned.into_inner().gate.conn = None,
        }
    }
}

impl SqliteWrite {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> Result<T, DbErr>) -> Result<T, DbErr> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| DbErr::Custom("the write transaction failed mid-call".into()))?;
        f(&mut inner)
    }

    fn call(&self, stmt: Statement, fetch: Fetch) -> Result<Answer, DbErr> {
        self.with(|inner| inner.run(stmt, fetch))
    }

    fn rows(&self, stmt: Statement, fetch: Fetch) -> Result<Vec<QueryResult>, DbErr> {
        Ok(self.call(stmt, fetch)?.rows())
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            WriteTxn::Postgres(txn) => txn.get_database_backend(),
            WriteTxn::Sqlite(_) => DbBackend::Sqlite,
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match self {
            WriteTxn::Postgres(txn) => txn.execute_raw(stmt).await,
            WriteTxn::Sqlite(w) => w.call(stmt, Fetch::Execute)?.exec(),
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self {
            WriteTxn::Postgres(txn) => txn.execute_unprepared(sql).await,
            WriteTxn::Sqlite(_) => {
                self.execute_raw(Statement::from_string(DbBackend::Sqlite, sql))
                    .await
            }
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            WriteTxn::Postgres(txn) => txn.query_one_raw(stmt).await,
            WriteTxn::Sqlite(w) => Ok(w.rows(stmt, Fetch::One)?.into_iter().next()),
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            WriteTxn::Postgres(txn) => txn.query_all_raw(stmt).await,
            WriteTxn::Sqlite(w) => w.rows(stmt, Fetch::All),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn db_with_table() -> (tempfile::TempDir, sea_orm::DatabaseConnection) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
        let db = super::super::connect(&url).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL)")
            .await
            .unwrap();
        (dir, db)
    }

    fn insert(a: i64, b: &str) -> Statement {
        Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "INSERT INTO t (a, b) VALUES (?, ?)",
            [a.into(), b.into()],
        )
    }

    async fn stored(db: &sea_orm::DatabaseConnection) -> Vec<i64> {
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT a FROM t ORDER BY a",
            ))
            .await
            .unwrap();
        rows.iter().map(|r| r.try_get("", "a").unwrap()).collect()
    }

    #[tokio::test]
    async fn reads_see_the_transactions_writes_and_commit_with_stores_them() {
        let (_dir, db) = db_with_table().await;
        let (_gate, txn) = super::super::begin_write(&db).await.unwrap();
        txn.execute_raw(insert(1, "一")).await.unwrap();
        let seen = txn
            .query_all_raw(Statement::from_string(DbBackend::Sqlite, "SELECT a FROM t"))
            .await
            .unwrap();
        assert_eq!(seen.len(), 1, "the transaction reads its own write");
        assert!(
            stored(&db).await.is_empty(),
            "not visible before the commit"
        );
        txn.commit_with(vec![insert(2, "二"), insert(3, "三")])
            .await
            .unwrap();
        assert_eq!(stored(&db).await, [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_failing_statement_rolls_the_whole_transaction_back() {
        let (_dir, db) = db_with_table().await;
        let (gate, txn) = super::super::begin_write(&db).await.unwrap();
        txn.execute_raw(insert(1, "a")).await.unwrap();
        // The batch's second statement breaks the primary key.
        let err = txn
            .commit_with(vec![insert(2, "b"), insert(1, "again")])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("UNIQUE"), "{err}");
        assert!(stored(&db).await.is_empty(), "nothing half-written");
        drop(gate);

        let (_gate, txn) = super::super::begin_write(&db).await.unwrap();
        let bad = Statement::from_string(DbBackend::Sqlite, "INSERT INTO missing VALUES (1)");
        txn.execute_raw(insert(5, "c")).await.unwrap();
        assert!(txn.execute_raw(bad).await.is_err());
        let refused = txn.execute_raw(insert(6, "d")).await.unwrap_err();
        assert!(refused.to_string().contains("rolled back"), "{refused}");
        drop(txn);
        assert!(stored(&db).await.is_empty());
    }

    #[tokio::test]
    async fn a_dropped_transaction_leaves_nothing_and_frees_the_write_lock() {
        let (_dir, db) = db_with_table().await;
        {
            let (_gate, txn) = super::super::begin_write(&db).await.unwrap();
            txn.execute_raw(insert(1, "lost")).await.unwrap();
            // Dropped without a commit, as a cancelled request drops it.
        }
        let (gate, txn) = super::super::begin_write(&db).await.unwrap();
        txn.commit_with(vec![insert(2, "kept")]).await.unwrap();
        drop(gate);
        assert_eq!(stored(&db).await, [2]);
        // A transaction that sent nothing commits nothing.
        let (_gate, txn) = super::super::begin_write(&db).await.unwrap();
        txn.commit().await.unwrap();
        assert_eq!(stored(&db).await, [2]);
    }

    /// Another process's connection in the middle of a write (an import beside the
    /// server): it holds SQLite's write lock until it commits.
    fn hold_write_lock(dir: &std::path::Path) -> rusqlite::Connection {
        let other = rusqlite::Connection::open(dir.join("w.db")).unwrap();
        other
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO t (a, b) VALUES (100, 'other')")
            .unwrap();
        other
    }

    /// An HTTP worker is a single-threaded runtime, as this test's is: while the write
    /// waits for the lock, the thread must go on running the worker's other requests.
    #[tokio::test(flavor = "current_thread")]
    async fn waiting_for_a_lock_held_elsewhere_leaves_the_thread_serving_others() {
        use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
        let (dir, db) = db_with_table().await;
        let other = hold_write_lock(dir.path());
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            other.execute_batch("COMMIT").unwrap();
        });
        let ticks = std::sync::Arc::new(AtomicU32::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    ticks.fetch_add(1, Relaxed);
                }
            })
        };
        let (gate, txn) = super::super::begin_write(&db).await.unwrap();
        txn.commit_with(vec![insert(1, "mine")]).await.unwrap();
        drop(gate);
        let ran = ticks.load(Relaxed);
        ticker.abort();
        release.join().unwrap();
        assert!(
            ran >= 5,
            "other tasks ran while the write waited for the lock ({ran} ticks)"
        );
        assert_eq!(stored(&db).await, [1, 100], "both writes are stored");
    }

    #[tokio::test]
    async fn a_lock_held_past_the_wait_is_a_timeout_and_the_writer_stays_usable() {
        let (dir, db) = db_with_table().await;
        let other = hold_write_lock(dir.path());
        let waited = super::super::begin_write_waiting(&db, std::time::Duration::from_millis(200));
        match waited.await {
            Err(DbErr::ConnectionAcquire(_)) => {}
            Err(e) => panic!("expected a timeout, got {e}"),
            Ok(_) => panic!("the write lock is held elsewhere"),
        }
        other.execute_batch("COMMIT").unwrap();
        let (_gate, txn) = super::super::begin_write(&db).await.unwrap();
        txn.commit_with(vec![insert(1, "after")]).await.unwrap();
        assert_eq!(stored(&db).await, [1, 100]);
    }
}
