//! SQLite driven in place: statements run on the calling thread through the writer's
//! or a reader's own `rusqlite` connection instead of through sqlx, whose every call is
//! a hand-off to the connection's worker thread and back (two thread switches, and a
//! wait for the caller's turn on a busy HTTP worker). For work that takes microseconds:
//! the write transactions ([`super::WriteTxn`]) and the lookups of [`quick_read`] on the
//! sync path. A report's long queries stay on sqlx, off the HTTP workers.

use super::sqlite_values::{self, Column};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr,
    Statement,
};
use std::path::{Path, PathBuf};

/// What a call wants back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fetch {
    Execute,
    All,
    One,
}

/// What a call returned.
pub(super) enum Answer {
    Exec(ExecResult),
    Rows(Vec<QueryResult>),
}

impl Answer {
    pub(super) fn exec(self) -> Result<ExecResult, DbErr> {
        match self {
            Answer::Exec(done) => Ok(done),
            Answer::Rows(_) => Err(DbErr::Custom("an execute returned rows".into())),
        }
    }

    pub(super) fn rows(self) -> Vec<QueryResult> {
        match self {
            Answer::Rows(rows) => rows,
            Answer::Exec(_) => Vec::new(),
        }
    }
}

/// Opens a connection of the server's own to the SQLite database `file`, with the
/// settings [`super::connect`] gives the pool's (the WAL itself is the database's, set
/// when the pool first connected).
pub(super) fn open(file: &Path) -> Result<rusqlite::Connection, DbErr> {
    use rusqlite::OpenFlags;
    let fail = |e: rusqlite::Error| {
        DbErr::Conn(RuntimeErr::Internal(format!(
            "cannot open a connection to {}: {e}",
            file.display()
        )))
    };
    if file.as_os_str().is_empty() || file.to_string_lossy().starts_with(":memory:") {
        return Err(DbErr::Custom(
            "the server needs a SQLite database file, not an in-memory database".into(),
        ));
    }
    let conn = rusqlite::Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(fail)?;
    conn.busy_timeout(super::BUSY_TIMEOUT).map_err(fail)?;
    // Checkpoints run off the write path (see `checkpoint`).
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;",
    )
    .map_err(fail)?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// `BEGIN IMMEDIATE`, waiting at most `wait` for the write lock (the connection's busy
/// timeout is [`super::BUSY_TIMEOUT`] again afterwards).
pub(super) fn begin_immediate(
    conn: &rusqlite::Connection,
    wait: std::time::Duration,
) -> rusqlite::Result<()> {
    conn.busy_timeout(wait)?;
    let begun = conn
        .prepare_cached("BEGIN IMMEDIATE")
        .and_then(|mut s| s.execute([]));
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    begun.map(drop)
}

/// Whether SQLite refused because another connection holds the lock.
pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

/// Runs a statement without values or rows (`BEGIN`, `COMMIT`).
pub(super) fn plain(conn: &rusqlite::Connection, sql: &str) -> Result<(), DbErr> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.raw_execute())
        .map(drop)
        .map_err(|e| exec_err(&e))
}

/// Runs the statement `sql`, binding `values` to its `?`s in order.
pub(super) fn statement(
    conn: &rusqlite::Connection,
    sql: &str,
    values: &[sea_orm::Value],
    fetch: Fetch,
) -> Result<Answer, DbErr> {
    let mut stmt = conn.prepare_cached(sql).map_err(|e| query_err(&e))?;
    let wanted = stmt.parameter_count();
    if wanted != values.len() {
        return Err(DbErr::Custom(format!(
            "a statement wants {wanted} values, {} were given",
            values.len()
        )));
    }
    for (i, v) in values.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, sqlite_values::bind(v)?)
            .map_err(|e| query_err(&e))?;
    }
    let cols: Vec<Column> = if fetch == Fetch::Execute {
        Vec::new()
    } else {
        sqlite_values::columns(&stmt)
    };
    let mut rows = Vec::new();
    let mut out = stmt.raw_query();
    while let Some(row) = out.next().map_err(|e| query_err(&e))? {
        if fetch != Fetch::Execute {
            rows.push(sqlite_values::row(row, &cols)?);
        }
    }
    drop(out);
    Ok(match fetch {
        Fetch::Execute => Answer::Exec(sqlite_values::executed(
            conn.last_insert_rowid(),
            conn.changes(),
        )?),
        Fetch::All => Answer::Rows(sqlite_values::results(rows)?),
        Fetch::One => Answer::Rows(sqlite_values::results(rows.into_iter().take(1).collect())?),
    })
}

/// A driver error as sea-orm reports one.
pub(super) fn query_err(e: &rusqlite::Error) -> DbErr {
    DbErr::Query(RuntimeErr::Internal(e.to_string()))
}

fn exec_err(e: &rusqlite::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::Internal(e.to_string()))
}

/// A connection for a few small reads, on SQLite run in place (see the module
/// documentation); on PostgreSQL the pool. Take one per lookup and drop it when done:
/// it is one of a few kept per database file.
pub enum QuickRead<'a> {
    Pool(&'a DatabaseConnection),
    Sqlite(Box<Reader>),
}

/// A reader's connection, back to the idle ones when dropped.
pub struct Reader {
    file: PathBuf,
    /// `Some` until dropped (a lock only because a connection is not `Sync`).
    conn: std::sync::Mutex<Option<rusqlite::Connection>>,
}

/// Idle readers of one database file (a process with several databases, the tests,
/// keeps those of the last one asked for).
struct Readers {
    file: PathBuf,
    idle: Vec<rusqlite::Connection>,
}

/// Readers kept idle at most: as many as requests read at once.
const IDLE_READERS: usize = 8;

static READERS: std::sync::Mutex<Readers> = std::sync::Mutex::new(Readers {
    file: PathBuf::new(),
    idle: Vec::new(),
});

/// A connection for small reads of `db`; see [`QuickRead`].
pub fn quick_read(db: &DatabaseConnection) -> Result<QuickRead<'_>, DbErr> {
    if super::is_postgres(db) {
        return Ok(QuickRead::Pool(db));
    }
    let options = db.get_sqlite_connection_pool().connect_options();
    let file = options.get_filename();
    let kept = READERS.lock().ok().and_then(|mut r| {
        if r.file.as_path() != file {
            r.idle.clear();
            r.file = file.to_path_buf();
        }
        r.idle.pop()
    });
    let conn = match kept {
        Some(conn) => conn,
        None => {
            let conn = open(file)?;
            conn.execute_batch("PRAGMA query_only = ON")
                .map_err(|e| query_err(&e))?;
            conn
        }
    };
    Ok(QuickRead::Sqlite(Box::new(Reader {
        file: file.to_path_buf(),
        conn: std::sync::Mutex::new(Some(conn)),
    })))
}

impl Drop for Reader {
    fn drop(&mut self) {
        let Some(conn) = self.conn.get_mut().ok().and_then(Option::take) else {
            return;
        };
        if let Ok(mut r) = READERS.lock()
            && r.file == self.file
            && r.idle.len() < IDLE_READERS
        {
            r.idle.push(conn);
        }
    }
}

impl Reader {
    fn call(&self, stmt: Statement, fetch: Fetch) -> Result<Answer, DbErr> {
        let closed = || DbErr::Custom("the reader's connection is closed".into());
        let conn = self.conn.lock().map_err(|_| closed())?;
        let conn = conn.as_ref().ok_or_else(closed)?;
        let values = stmt.values.map(|v| v.0).unwrap_or_default();
        statement(conn, &stmt.sql, &values, fetch)
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for QuickRead<'_> {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            QuickRead::Pool(db) => db.get_database_backend(),
            QuickRead::Sqlite(_) => DbBackend::Sqlite,
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match self {
            QuickRead::Pool(db) => db.execute_raw(stmt).await,
            QuickRead::Sqlite(r) => r.call(stmt, Fetch::Execute)?.exec(),
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self {
            QuickRead::Pool(db) => db.execute_unprepared(sql).await,
            QuickRead::Sqlite(r) => r
                .call(
                    Statement::from_string(DbBackend::Sqlite, sql),
                    Fetch::Execute,
                )?
                .exec(),
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            QuickRead::Pool(db) => db.query_one_raw(stmt).await,
            QuickRead::Sqlite(r) => Ok(r.call(stmt, Fetch::One)?.rows().into_iter().next()),
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            QuickRead::Pool(db) => db.query_all_raw(stmt).await,
            QuickRead::Sqlite(r) => Ok(r.call(stmt, Fetch::All)?.rows()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn quick_reads_see_what_is_committed_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
        let db = super::super::connect(&url).await.unwrap();
        db.execute_unprepared(
            "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL, at timestamp_with_timezone_text)",
        )
        .await
        .unwrap();
        db.execute_unprepared("INSERT INTO t VALUES (1, '一', '2026-12-01T08:30:00+00:00')")
            .await
            .unwrap();
        let select = Statement::from_string(DbBackend::Sqlite, "SELECT a, b, at FROM t");
        for round in 0..2 {
            // The second round takes the connection the first gave back.
            let read = quick_read(&db).unwrap();
            let rows = read.query_all_raw(select.clone()).await.unwrap();
            assert_eq!(rows.len(), 1 + round);
            let b: String = rows[0].try_get("", "b").unwrap();
            let at: chrono::DateTime<chrono::Utc> = rows[0].try_get("", "at").unwrap();
            assert_eq!(
                (b.as_str(), at.to_rfc3339()),
                ("一", "2026-12-01T08:30:00+00:00".into())
            );
            let write = read
                .execute_unprepared("INSERT INTO t VALUES (9, 'x', NULL)")
                .await
                .unwrap_err();
            assert!(write.to_string().contains("readonly"), "{write}");
            drop(read);
            db.execute_unprepared(&format!("INSERT INTO t VALUES ({}, '二', NULL)", round + 2))
                .await
                .unwrap();
        }
        let idle = READERS.lock().unwrap().idle.len();
        assert!(idle >= 1, "the reader went back to the idle ones");
    }
}
