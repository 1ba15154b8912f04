//! The write transaction of [`super::begin_write`]: on PostgreSQL an ordinary one, on
//! SQLite the writer's own connection (kept between transactions, see
//! [`super::SqliteWriter`]) whose `BEGIN IMMEDIATE` rides on the first statement sent
//! and whose `COMMIT` can ride on the last.
//!
//! Why: every call to a SQLite connection is a hand-off to its worker thread and back,
//! and sqlx's own `BEGIN` and `COMMIT` are rendezvous hand-offs (the worker waits for the
//! caller to take the answer). Those two calls were a third of a small push's thread
//! switches. Here a push is two calls (`BEGIN; reads` and `writes; COMMIT`) and a photo's
//! record two (`BEGIN; writes; reads` and `COMMIT`).
//!
//! Nothing is left half-written: a statement that fails rolls the whole transaction
//! back at once (later calls are refused), and a transaction dropped unfinished (an
//! error path, a cancelled request) has its connection closed instead of kept, which
//! rolls it back.

use sea_orm::sqlx::{self, Executor};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr,
    Statement,
};
use sea_query_sqlx::SqlxValues;
use std::sync::Arc;
use tokio::sync::MutexGuard;

/// A transaction that will write; see the module documentation. Use it as any
/// `ConnectionTrait`, and finish it with [`WriteTxn::commit`] or
/// [`WriteTxn::commit_with`]; dropping it unfinished rolls it back.
pub enum WriteTxn {
    /// PostgreSQL: sea-orm's transaction (its protocol pipelines `BEGIN` already).
    Postgres(DatabaseTransaction),
    /// SQLite: the writer's slot and connection, `BEGIN` sent with the first statement.
    Sqlite(SqliteWrite),
}

/// The SQLite side of [`WriteTxn`].
pub struct SqliteWrite {
    inner: tokio::sync::Mutex<Inner>,
}

struct Inner {
    /// The gate, holding the connection (`Some` until it is dropped to roll back).
    gate: MutexGuard<'static, super::SqliteWriter>,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing sent yet: the next statement carries `BEGIN IMMEDIATE`.
    Fresh,
    /// `BEGIN` sent (the transaction may hold the write lock).
    Open,
    /// Rolled back after a failed statement: every later call is refused.
    Aborted,
    /// Committed or rolled back on purpose.
    Done,
}

/// What a call wants back.
enum Fetch {
    Execute,
    All,
    One,
}

enum Answer {
    Exec(sqlx::sqlite::SqliteQueryResult),
    Rows(Vec<sqlx::sqlite::SqliteRow>),
}

impl WriteTxn {
    /// A SQLite write transaction on the gate's connection (nothing is sent until the
    /// first statement).
    pub(super) fn sqlite(gate: MutexGuard<'static, super::SqliteWriter>) -> WriteTxn {
        WriteTxn::Sqlite(SqliteWrite {
            inner: tokio::sync::Mutex::new(Inner {
                gate,
                state: State::Fresh,
            }),
        })
    }

    /// Commits what was written (on SQLite a transaction that never sent a statement
    /// sends nothing).
    pub async fn commit(self) -> Result<(), DbErr> {
        self.commit_with(Vec::new()).await
    }

    /// Runs `stmts` (as [`super::execute_all`] does) and commits, on SQLite in one call.
    pub async fn commit_with(self, stmts: Vec<Statement>) -> Result<(), DbErr> {
        match self {
            WriteTxn::Postgres(txn) => {
                super::execute_all(&txn, stmts).await?;
                txn.commit().await
            }
            WriteTxn::Sqlite(w) => {
                let mut inner = w.inner.lock().await;
                if stmts.is_empty() && inner.state == State::Fresh {
                    inner.state = State::Done;
                    return Ok(());
                }
                let (mut sql, values) = super::joined(stmts);
                sql.push_str("COMMIT");
                inner.run(sql, values, Fetch::Execute).await?;
                inner.state = State::Done;
                Ok(())
            }
        }
    }
}

impl Inner {
    /// Sends one call: `sql` (prefixed by `BEGIN IMMEDIATE` on the first) with its
    /// values. A failure rolls the transaction back before it is returned.
    async fn run(
        &mut self,
        sql: String,
        values: Vec<sea_orm::Value>,
        fetch: Fetch,
    ) -> Result<Answer, DbErr> {
        let sql = match self.state {
            State::Fresh => format!("BEGIN IMMEDIATE;\n{sql}"),
            State::Open => sql,
            State::Aborted | State::Done => {
                return Err(DbErr::Custom(
                    "the write transaction was already rolled back or committed".into(),
                ));
            }
        };
        self.state = State::Open;
        let query = sqlx::query_with(
            sqlx::AssertSqlSafe(sql),
            SqlxValues(sea_orm::sea_query::Values(values)),
        );
        let conn = self.conn()?;
        let answer = match fetch {
            Fetch::Execute => conn.execute(query).await.map(Answer::Exec),
            Fetch::All => conn.fetch_all(query).await.map(Answer::Rows),
            Fetch::One => conn
                .fetch_optional(query)
                .await
                .map(|row| Answer::Rows(row.into_iter().collect())),
        };
        match answer {
            Ok(answer) => Ok(answer),
            Err(e) => {
                // The statement's own changes are undone by SQLite; the earlier ones of
                // this transaction are undone here, so nothing half-written can commit.
                let _ = self.rollback().await;
                self.state = State::Aborted;
                Err(query_err(e))
            }
        }
    }

    fn conn(&mut self) -> Result<&mut sqlx::SqliteConnection, DbErr> {
        self.gate
            .conn
            .as_mut()
            .ok_or_else(|| DbErr::Custom("the writer's connection was closed".into()))
    }

    async fn rollback(&mut self) -> Result<(), DbErr> {
        let was = std::mem::replace(&mut self.state, State::Done);
        if was != State::Open {
            return Ok(());
        }
        if let Err(e) = self.conn()?.execute("ROLLBACK").await {
            // Closing the connection rolls it back.
            self.gate.conn = None;
            return Err(query_err(e));
        }
        Ok(())
    }
}

/// A driver error as sea-orm reports one.
fn query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
}

impl Drop for SqliteWrite {
    fn drop(&mut self) {
        let inner = self.inner.get_mut();
        if inner.state == State::Open {
            // Unfinished (an error returned early, or the request was cancelled): the
            // connection is closed, not kept, and SQLite rolls its transaction back.
            inner.gate.conn = None;
        }
    }
}

impl SqliteWrite {
    async fn call(&self, stmt: Statement, fetch: Fetch) -> Result<Answer, DbErr> {
        let values = stmt.values.map(|v| v.0).unwrap_or_default();
        self.inner.lock().await.run(stmt.sql, values, fetch).await
    }

    async fn rows(&self, stmt: Statement, fetch: Fetch) -> Result<Vec<QueryResult>, DbErr> {
        match self.call(stmt, fetch).await? {
            Answer::Rows(rows) => Ok(rows.into_iter().map(QueryResult::from).collect()),
            Answer::Exec(_) => Ok(Vec::new()),
        }
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
            WriteTxn::Sqlite(w) => match w.call(stmt, Fetch::Execute).await? {
                Answer::Exec(done) => Ok(done.into()),
                Answer::Rows(_) => Err(DbErr::Custom("an execute returned rows".into())),
            },
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
            WriteTxn::Sqlite(w) => Ok(w.rows(stmt, Fetch::One).await?.into_iter().next()),
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            WriteTxn::Postgres(txn) => txn.query_all_raw(stmt).await,
            WriteTxn::Sqlite(w) => w.rows(stmt, Fetch::All).await,
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
        // A transaction that sent nothing commits nothing and costs nothing.
        let (_gate, txn) = super::super::begin_write(&db).await.unwrap();
        txn.commit().await.unwrap();
        assert_eq!(stored(&db).await, [2]);
    }
}
