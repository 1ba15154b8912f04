//! Opening the database: SQLite (the embedded default) or PostgreSQL, chosen by the URL
//! scheme, and migrated to the current schema. Everything else is backend-agnostic.

use bangfu_migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, QueryTrait,
    Statement, TransactionTrait,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod checkpoint;
mod in_place;
mod sqlite_values;
mod write_txn;
pub use in_place::{QuickRead, quick_read};
pub use write_txn::WriteTxn;

/// Connects to `url`; for SQLite creates the file's directory and sets WAL, foreign keys,
/// a busy timeout and `synchronous=NORMAL`: a commit does not fsync by itself. What a
/// client is told is stored is made durable before the answer by [`Durability::sync`]
/// (group commit: one fsync of the WAL covers every commit before it), which the HTTP
/// layer runs for every successful write request.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let url = &sqlite_url_with_mode(url)?;
    let mut opts = ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        if let Some(dir) = sqlite_dir(url) {
            // Private as the data directory is: it will hold the households' data (QA
            // s31c T8: a mistyped path made a tree of 0755 directories).
            crate::storage::create_private_dir_all(&dir)
                .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", dir.display())))?;
        }
        // A connection to a local file cannot go stale: testing it before each use (a
        // ping through its worker thread) cost a thread round trip per query.
        opts.max_connections(8)
            .min_connections(1)
            .test_before_acquire(false)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(BUSY_TIMEOUT)
            });
    } else {
        // A row or table lock held elsewhere (a long import, an operator's open
        // transaction) ends a request's wait as SQLite's busy timeout does: 503 `busy`,
        // not a request stalled for as long as the lock lasts, holding a connection
        // every other request then lacks (QA s26b F8).
        let lock_timeout = format!("{}ms", BUSY_TIMEOUT.as_millis());
        opts.max_connections(16)
            .map_sqlx_postgres_opts(move |o| o.options([("lock_timeout", lock_timeout.as_str())]));
    }
    let file = sqlite_file(url);
    if let Some(file) = &file {
        // Before SQLite opens it: created 0600, so the -wal and -shm files SQLite makes
        // beside it get that mode too.
        if url.contains("mode=rwc") {
            crate::storage::create_private_file(file).map_err(|e| {
                // The file may be there and not writable (QA s26b F7): say which.
                let verb = if file.exists() {
                    "cannot open for writing"
                } else {
                    "cannot create"
                };
                DbErr::Custom(format!("{verb} {}: {e}", file.display()))
            })?;
        }
        private_sqlite_files(file)?;
    }
    if url.starts_with("postgres") {
        reach_postgres(url).await?;
    }
    let db = Database::connect(opts).await?;
    if let Some(file) = &file {
        // The -wal and -shm files now exist: made by SQLite with the database's mode,
        // or left by an earlier version with the umask's.
        private_sqlite_files(file)?;
    }
    Ok(db)
}

/// How long a first connection to PostgreSQL may take before the server gives up.
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens one PostgreSQL connection before the pool does, so a database that cannot be
/// reached says why (connection refused, no such database, authentication failed) at
/// once; the pool retries until its acquire timeout and then says only "pool timed
/// out", after 30 seconds (QA s26b F12).
async fn reach_postgres(url: &str) -> Result<(), DbErr> {
    use sea_orm::sqlx::{Connection, postgres::PgConnection};
    match tokio::time::timeout(REACH_TIMEOUT, PgConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            // Closing politely only tells the server sooner; dropping does as well.
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(DbErr::Conn(sea_orm::RuntimeErr::Internal(reach_failure(
            &e,
        )))),
        Err(_) => Err(DbErr::Conn(sea_orm::RuntimeErr::Internal(format!(
            "no answer within {} s",
            REACH_TIMEOUT.as_secs()
        )))),
    }
}

/// How many times [`hold_postgres`] asks for the lock, 250 ms apart.
const LOCK_TRIES: u32 = 20;

/// Held while a server serves a PostgreSQL database (see [`hold_postgres`]); the lock
/// goes with the connection.
pub struct DatabaseLock {
    /// Watches the lock's connection and takes the lock again after it drops (see
    /// [`keep_lock`]); stopped with the lock.
    watch: tokio::task::JoinHandle<()>,
}

impl Drop for DatabaseLock {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

/// The advisory lock's key: this database and schema.
const LOCK_SQL: &str = "SELECT pg_try_advisory_lock(hashtext('bangfu-server:' || current_database() || '.' || current_schema()))";

/// How often the lock's connection is checked.
const LOCK_CHECK: std::time::Duration = std::time::Duration::from_secs(10);

/// Keeps the lock while the server runs: a session lock goes with its connection, and a
/// PostgreSQL restart (or a dropped connection) released it unseen, letting a second
/// server start (QA s28b F6). Every [`LOCK_CHECK`] the connection is asked; once it is
/// gone, the lock is taken again on a new one, and if another server took it meanwhile
/// that is logged as an error every check until it is resolved.
async fn keep_lock(url: String, mut conn: Option<sea_orm::sqlx::postgres::PgConnection>) {
    use sea_orm::sqlx::{Connection, Row, postgres::PgConnection};
    loop {
        tokio::time::sleep(LOCK_CHECK).await;
        if let Some(c) = conn.as_mut() {
            if c.ping().await.is_ok() {
                continue;
            }
            conn = None;
        }
        let Ok(mut fresh) = PgConnection::connect(&url).await else {
            tracing::warn!(
                "the database lock's connection is gone and the database does not answer yet"
            );
            continue;
        };
        match sea_orm::sqlx::query(LOCK_SQL)
            .fetch_one(&mut fresh)
            .await
            .and_then(|row| row.try_get::<bool, _>(0))
        {
            Ok(true) => {
                tracing::info!("the database lock was taken again on a new connection");
                conn = Some(fresh);
            }
            Ok(false) => tracing::error!(
                "another bangfu-server is serving this database: two servers each keep only the photos sent to them; stop one"
            ),
            Err(e) => tracing::warn!(error = %reach_failure(&e), "taking the database lock again"),
        }
    }
}

/// One server per PostgreSQL database (and schema): a session advisory lock on a
/// connection kept for the server's life. A second server on the same database from
/// another data directory started too, and each kept only the photos sent to it (QA
/// s28a F16). `None` for SQLite, whose file lies in the data directory and is guarded
/// by its lock.
pub async fn hold_postgres(url: &str) -> Result<Option<DatabaseLock>, String> {
    use sea_orm::sqlx::{Connection, Row, postgres::PgConnection};
    if !url.starts_with("postgres") {
        return Ok(None);
    }
    let failed = |e: sea_orm::sqlx::Error| reach_failure(&e);
    let mut conn = tokio::time::timeout(REACH_TIMEOUT, PgConnection::connect(url))
        .await
        .map_err(|_| format!("no answer within {} s", REACH_TIMEOUT.as_secs()))?
        .map_err(failed)?;
    // A server killed a moment ago holds the lock until PostgreSQL notices its
    // connection is gone: a restart waits a few seconds for that before giving up.
    let mut held = false;
    for _ in 0..LOCK_TRIES {
        held = sea_orm::sqlx::query(LOCK_SQL)
            .fetch_one(&mut conn)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(failed)?;
        if held {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    if !held {
        return Err(String::from(
            "another bangfu-server is already serving this database: stop it first (two servers \
             would each keep only the photos sent to them)",
        ));
    }
    Ok(Some(DatabaseLock {
        watch: tokio::spawn(keep_lock(url.to_string(), Some(conn))),
    }))
}

/// Why PostgreSQL could not be reached, in its own words: for a refusal by the database
/// (no such database or role), its message alone, without the line of PostgreSQL's C
/// source the driver appends (`… does not exist at line 948`, which read as a line of
/// the operator's configuration, QA s28a F11).
fn reach_failure(e: &sea_orm::sqlx::Error) -> String {
    let text = match e {
        sea_orm::sqlx::Error::Database(d) => {
            format!("error returned from database: {}", d.message())
        }
        other => other.to_string(),
    };
    // The driver nests some errors in their own kind (`error with configuration: error
    // with configuration: …`): each part said once (QA s28b F7).
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// Makes the SQLite database `file` and its `-wal` and `-shm` files the server user's
/// alone (0600, see [`crate::storage::private_file`]): they hold the households' personal
/// data, which no other local account may read whatever the umask (QA s23 F5).
fn private_sqlite_files(file: &std::path::Path) -> Result<(), DbErr> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        crate::storage::private_file(&path)
            .map_err(|e| DbErr::Custom(format!("cannot restrict {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Connects and applies every pending migration.
pub async fn connect_and_migrate(url: &str) -> Result<DatabaseConnection, DbErr> {
    let db = connect(url).await?;
    migrate(&db).await?;
    Ok(db)
}

/// Applies every pending migration. A database a newer server has migrated is refused
/// in words an operator who rolled the binary back understands (QA s33a S7: sea-orm's
/// "migration file … is missing" read as a broken install).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await.map_err(newer_schema)
}

fn newer_schema(e: DbErr) -> DbErr {
    let text = e.to_string();
    let unknown = text
        .split_once("Migration file of version '")
        .and_then(|(_, rest)| rest.split_once("' is missing"))
        .map(|(name, _)| name.to_string());
    match unknown {
        Some(name) => DbErr::Custom(format!(
            "this database was written by a newer bangfu-server (its migration {name} is \
             unknown to this version): run that version, or restore a backup made with \
             this one; nothing was changed"
        )),
        None => e,
    }
}

/// The guard of [`write_gate`]: SQLite's one writer slot in this process.
pub type WriteGuard = Option<tokio::sync::MutexGuard<'static, SqliteWriter>>;

/// SQLite's writer slot, and the writer's own connection to the database file: not one
/// of sqlx's (each call to those is a hand-off to the connection's thread) but one
/// driven in place, see [`WriteTxn`]. `file` names the database it is for: in a
/// process with several databases (the tests) the slot changes hands and the
/// connection is replaced.
pub struct SqliteWriter {
    file: PathBuf,
    conn: Option<rusqlite::Connection>,
}

static SQLITE_WRITER: tokio::sync::Mutex<SqliteWriter> =
    tokio::sync::Mutex::const_new(SqliteWriter {
        file: PathBuf::new(),
        conn: None,
    });

/// One writer at a time on SQLite, queued in the process instead of in SQLite's busy
/// handler, which sleeps (1, 2, 5, 10 … 100 ms) when a second connection wants the write
/// lock: under concurrent pushes those sleeps, not the work, bounded throughput.
/// PostgreSQL has row locks and needs no gate (`None`). Hold the guard from `BEGIN` to
/// `COMMIT`, and never across a call that takes it again.
pub async fn write_gate(db: &impl ConnectionTrait) -> WriteGuard {
    if is_postgres(db) {
        None
    } else {
        Some(SQLITE_WRITER.lock().await)
    }
}

/// Begins a transaction that will write: through the gate, and on SQLite as
/// `BEGIN IMMEDIATE`, so a transaction that reads before it writes takes the write lock
/// up front instead of failing at its first write when another connection committed in
/// between (`SQLITE_BUSY_SNAPSHOT` is not retried by the busy handler). On SQLite the
/// transaction runs on the writer's own connection and holds the gate itself (the
/// guard returned is `None`; see [`WriteTxn`]). SQLite's write lock is claimed here,
/// without stalling the calling thread should another process hold it (see
/// [`claim_write_lock`]); after [`BUSY_TIMEOUT`] the error is
/// `DbErr::ConnectionAcquire(Timeout)`, which clients are told is a busy server (503).
pub async fn begin_write(db: &DatabaseConnection) -> Result<(WriteGuard, WriteTxn), DbErr> {
    begin_write_waiting(db, BUSY_TIMEOUT).await
}

async fn begin_write_waiting(
    db: &DatabaseConnection,
    timeout: Duration,
) -> Result<(WriteGuard, WriteTxn), DbErr> {
    if is_postgres(db) {
        let gate = write_gate(db).await;
        return Ok((gate, WriteTxn::Postgres(db.begin().await?)));
    }
    let mut gate = SQLITE_WRITER.lock().await;
    let options = db.get_sqlite_connection_pool().connect_options();
    let file = options.get_filename();
    let idle = gate
        .conn
        .as_ref()
        .is_some_and(rusqlite::Connection::is_autocommit);
    if !idle || gate.file.as_path() != file {
        gate.conn = None;
        let conn = in_place::open(file)?;
        checkpoint::watch(&conn);
        gate.conn = Some(conn);
        gate.file = file.to_path_buf();
    }
    claim_write_lock(&mut gate, timeout).await?;
    Ok((None, WriteTxn::sqlite(gate)))
}

/// `BEGIN IMMEDIATE` on the writer's connection. The writer runs on the HTTP worker
/// that asked (see [`WriteTxn`]), and SQLite's busy handler sleeps on the calling thread:
/// waiting there for a lock another process holds (a command-line import beside the
/// server) would stall every request on that worker. So the lock is tried without
/// waiting, and only if it is taken does the wait, up to `timeout`, go to a blocking
/// thread, with the connection. A connection lost there (the request cancelled, a
/// panic) is reopened by the next transaction.
async fn claim_write_lock(gate: &mut SqliteWriter, timeout: Duration) -> Result<(), DbErr> {
    let conn = gate
        .conn
        .take()
        .ok_or_else(|| DbErr::Custom("the writer's connection is closed".into()))?;
    match in_place::begin_immediate(&conn, Duration::ZERO) {
        Err(e) if in_place::is_busy(&e) => {}
        other => {
            gate.conn = Some(conn);
            return other.map_err(|e| in_place::query_err(&e));
        }
    }
    let (conn, begun) = tokio::task::spawn_blocking(move || {
        let begun = in_place::begin_immediate(&conn, timeout);
        (conn, begun)
    })
    .await
    .map_err(|e| DbErr::Custom(format!("waiting for the write lock: {e}")))?;
    gate.conn = Some(conn);
    match begun {
        Err(e) if in_place::is_busy(&e) => Err(DbErr::ConnectionAcquire(
            sea_orm::error::ConnAcquireErr::Timeout,
        )),
        other => other.map_err(|e| in_place::query_err(&e)),
    }
}

/// How long a connection waits for SQLite's lock held by another process (a
/// command-line import beside a running server) before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Values per `IN (…)` list of a lookup: well under SQLite's and PostgreSQL's bind
/// limits.
pub const IN_CHUNK: usize = 500;

/// Multi-row insert statements of `rows`, `per` rows each (keep `per` × columns under
/// the bind limit: 32,766 on SQLite, 65,535 on PostgreSQL), for [`execute_all`].
pub fn insert_statements<A>(backend: DbBackend, rows: Vec<A>, per: usize) -> Vec<Statement>
where
    A: sea_orm::ActiveModelTrait + Send,
{
    let per = per.max(1);
    let mut out = Vec::with_capacity(rows.len().div_ceil(per));
    let mut rows = rows.into_iter().peekable();
    // The rows are moved into their statements, not cloned (a push's are ~1 MB).
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(per).collect();
        out.push(<A::Entity as sea_orm::EntityTrait>::insert_many(chunk).build(backend));
    }
    out
}

/// Runs write statements in order. On SQLite the connections that take batches run in
/// place ([`WriteTxn`], [`quick_read`]), so a statement costs no hand-off of its own and
/// a batch needs no joining.
pub async fn execute_all(db: &impl ConnectionTrait, stmts: Vec<Statement>) -> Result<(), DbErr> {
    for stmt in stmts {
        db.execute_raw(stmt).await?;
    }
    Ok(())
}

/// Runs statements in order and returns the rows they all produce (as
/// [`execute_all`]): a push or an upload reads everything it decides from in one batch.
/// Statements whose rows must be told apart select a [`TAG`] column first (see
/// [`tag_of`]).
pub async fn query_batch(
    db: &impl ConnectionTrait,
    stmts: Vec<Statement>,
) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    let mut rows = Vec::new();
    for stmt in stmts {
        rows.extend(db.query_all_raw(stmt).await?);
    }
    Ok(rows)
}

/// The column naming which statement of a [`query_batch`] a row came from.
pub const TAG: &str = "tag";

/// A constant [`TAG`] column for a select: `.expr_as(db::tag("known"), db::TAG)`.
pub fn tag(name: &'static str) -> sea_orm::sea_query::Expr {
    debug_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    sea_orm::sea_query::Expr::cust(format!("CAST('{name}' AS TEXT)"))
}

/// The [`TAG`] of a row of [`query_batch`].
pub fn tag_of(row: &sea_orm::QueryResult) -> Result<String, DbErr> {
    row.try_get("", TAG)
}

/// Group commit for SQLite's write-ahead log. With `synchronous=NORMAL` a commit reaches
/// the WAL file but not the disk; `sync` makes every commit made so far durable with one
/// `fdatasync` of the WAL, shared by all requests waiting at that moment, so concurrent
/// writers pay one fsync between them instead of one each. (Checkpoints sync the WAL and
/// the database themselves; a WAL is only rewound once fully checkpointed.) PostgreSQL
/// commits durably by itself: there `sync` does nothing.
#[derive(Debug, Default)]
pub struct Durability {
    wal: Option<PathBuf>,
    /// Tickets handed out: each `sync` call takes one after its commit.
    tickets: AtomicU64,
    /// The highest ticket known durable; held while an fsync runs.
    synced: tokio::sync::Mutex<u64>,
    /// fsyncs done, for the benchmark's figures.
    fsyncs: AtomicU64,
}

impl Durability {
    /// For the database at `url` (nothing to do unless it is a SQLite file).
    pub fn for_url(url: &str) -> Durability {
        Durability {
            wal: sqlite_file(url).as_deref().map(wal_of),
            ..Durability::default()
        }
    }

    /// Returns once every commit that finished before the call is on disk.
    pub async fn sync(&self) -> std::io::Result<()> {
        let Some(wal) = &self.wal else {
            return Ok(());
        };
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let mut synced = self.synced.lock().await;
        if *synced >= ticket {
            return Ok(());
        }
        let covered = self.tickets.load(Ordering::SeqCst);
        fsync_wal(wal.clone()).await?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        *synced = covered;
        Ok(())
    }

    /// How many fsyncs `sync` has done (fewer than calls when requests share them).
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }
}

/// Makes every commit made so far on `db` durable now: one fsync of SQLite's WAL (see
/// [`Durability`]), for the command-line writes, which have no request to share it
/// with. Returns whether there was a WAL to sync (PostgreSQL and in-memory databases
/// have none; PostgreSQL commits durably by itself).
pub async fn sync_now(db: &DatabaseConnection) -> std::io::Result<bool> {
    if is_postgres(db) {
        return Ok(false);
    }
    let options = db.get_sqlite_connection_pool().connect_options();
    fsync_wal(wal_of(options.get_filename())).await
}

/// The write-ahead log of the SQLite database `file`.
fn wal_of(file: &std::path::Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// `fdatasync` of a WAL on a blocking thread; `false` when there is none (everything
/// was checkpointed into the synced database file, or the database is in memory).
async fn fsync_wal(wal: PathBuf) -> std::io::Result<bool> {
    tokio::task::spawn_blocking(move || match std::fs::File::open(&wal) {
        Ok(f) => f.sync_data().map(|()| true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Whether the connection is to PostgreSQL (for the few places that report it).
pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == sea_orm::DbBackend::Postgres
}

/// The file of a SQLite URL (`None` for PostgreSQL and in-memory databases).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next()?;
    if path.is_empty() || path.starts_with(":memory:") || url.contains("mode=memory") {
        return None;
    }
    // The file sqlx opens: it decodes `%20` and the like, so the file made private
    // (and created 0600) must be that one, not one named by the raw text (QA s31c T3).
    use std::str::FromStr;
    let opened = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map(|o| o.get_filename().to_path_buf())
        .unwrap_or_else(|_| PathBuf::from(path));
    Some(opened)
}

/// Whether `url` opens a SQLite file read-only (`mode=ro`): fine for a command that only
/// reads, not for a server, which writes at every sign-in (QA s31c T8: it started and
/// then could not record failed sign-ins, so throttling was silently off).
pub fn read_only_sqlite(url: &str) -> bool {
    sqlite_file(url).is_some() && sqlite_mode(url) == Some("ro")
}

/// The `mode` a SQLite URL's query gives, if any.
fn sqlite_mode(url: &str) -> Option<&str> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix("mode="))
}

/// Refuses serving from a SQLite file opened read-only (see [`read_only_sqlite`]).
pub fn check_writable_for_serving(url: &str) -> Result<(), String> {
    match read_only_sqlite(url) {
        true => Err(
            "the database URL opens the SQLite file read-only (mode=ro): the \
                     server writes (sign-ins, pushes, imports); leave mode out, or use \
                     mode=rwc"
                .into(),
        ),
        false => Ok(()),
    }
}

/// A SQLite URL naming a file with no `mode` creates the file, as the data directory's
/// default database is created: sqlx would otherwise refuse a missing file with only
/// "unable to open database file" (QA s30c N6). A URL whose mode cannot create the file
/// (`ro`, `rw`) is refused naming the file when it is not there.
fn sqlite_url_with_mode(url: &str) -> Result<String, DbErr> {
    let Some(file) = sqlite_file(url) else {
        return Ok(url.to_string());
    };
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let mode = sqlite_mode(url);
    if let Some(m) = mode.filter(|m| !["ro", "rw", "rwc", "memory"].contains(m)) {
        return Err(DbErr::Custom(format!(
            "the SQLite URL's mode={m} is not a mode: ro, rw, rwc or memory (leave it out \
             to create the file)"
        )));
    }
    match mode {
        None => Ok(format!(
            "{url}{}mode=rwc",
            if query.is_empty() { "?" } else { "&" }
        )),
        Some(m) if m != "rwc" && !file.exists() => Err(DbErr::Custom(format!(
            "the SQLite file {} does not exist, and the URL's mode={m} does not create it \
             (leave mode out, or use mode=rwc, to create it)",
            file.display()
        ))),
        Some(_) => Ok(url.to_string()),
    }
}

fn sqlite_dir(url: &str) -> Option<std::path::PathBuf> {
    sqlite_file(url)?
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite://data/bangfu.db?mode=rwc"),
            Some(PathBuf::from("data/bangfu.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:/abs/x.db"),
            Some(PathBuf::from("/abs/x.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(
            sqlite_file("sqlite:///tmp/with%20space.db"),
            Some(PathBuf::from("/tmp/with space.db")),
            "the file sqlx opens"
        );
        assert_eq!(
            sqlite_url_with_mode("sqlite:///tmp/b.db").unwrap(),
            "sqlite:///tmp/b.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url_with_mode("sqlite:///tmp/b.db?cache=shared").unwrap(),
            "sqlite:///tmp/b.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            sqlite_url_with_mode("sqlite::memory:").unwrap(),
            "sqlite::memory:"
        );
        assert!(read_only_sqlite("sqlite:///tmp/b.db?cache=shared&mode=ro"));
        assert!(!read_only_sqlite("sqlite:///tmp/b.db?mode=rwc"));
        assert!(!read_only_sqlite("postgres://u@h/db?mode=ro"));
        let bogus = sqlite_url_with_mode("sqlite:///tmp/b.db?mode=bogus").unwrap_err();
        assert!(bogus.to_string().contains("is not a mode"), "{bogus}");
        let refused = sqlite_url_with_mode("sqlite:///nowhere/at/all.db?mode=ro").unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("/nowhere/at/all.db does not exist")
                && refused.to_string().contains("mode=ro"),
            "{refused}"
        );
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
        assert!(Durability::for_url("postgres://u@h/db").wal.is_none());
    }

    /// QA s26b F12: a PostgreSQL nobody listens for is named at once, with its cause,
    /// not after the pool's 30 s as "pool timed out".
    #[tokio::test]
    async fn an_unreachable_postgres_says_why_at_once() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let started = std::time::Instant::now();
        let e = connect(&format!("postgres://postgres@127.0.0.1:{port}/x"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("Connection refused"), "{e}");
        assert!(!e.contains("pool timed out"), "{e}");
        assert!(started.elapsed() < REACH_TIMEOUT, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn statements_run_together_each_with_its_own_values() {
        let db = connect("sqlite::memory:").await.unwrap();
        db.execute_unprepared("CREATE TABLE t (a INTEGER, b TEXT)")
            .await
            .unwrap();
        let insert = |a: i64, b: &str| {
            Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "INSERT INTO t (a, b) VALUES (?, ?)",
                [a.into(), b.into()],
            )
        };
        let update = Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "UPDATE t SET b = ? WHERE a = ?",
            ["二'; DROP TABLE t; --".into(), 2i64.into()],
        );
        execute_all(&db, vec![insert(1, "一"), insert(2, "x"), update])
            .await
            .unwrap();
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT a, b FROM t ORDER BY a",
            ))
            .await
            .unwrap();
        let got: Vec<(i64, String)> = rows
            .iter()
            .map(|r| (r.try_get("", "a").unwrap(), r.try_get("", "b").unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                (1, "一".to_string()),
                (2, "二'; DROP TABLE t; --".to_string())
            ]
        );
        // A failing statement fails the call.
        let bad = Statement::from_string(DbBackend::Sqlite, "INSERT INTO missing VALUES (1)");
        assert!(execute_all(&db, vec![insert(3, "z"), bad]).await.is_err());
    }

    #[tokio::test]
    async fn the_command_line_syncs_the_wal_of_a_file_database() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
        let db = connect(&url).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (x INTEGER)")
            .await
            .unwrap();
        assert!(sync_now(&db).await.unwrap(), "the file's WAL is synced");
        let memory = connect("sqlite::memory:").await.unwrap();
        assert!(!sync_now(&memory).await.unwrap(), "no WAL in memory");
    }

    /// The database file and its -wal and -shm files are the server user's alone
    /// (0600) once opened and migrated, whatever the umask; files an earlier version
    /// left open to others are tightened on the next start (QA s23 F5).
    #[cfg(unix)]
    #[tokio::test]
    async fn the_database_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        // Directories the URL names that are missing are made private (QA s31c T8).
        let nested = dir.path().join("n1").join("n2").join("x.db");
        let made = connect(&format!("sqlite://{}", nested.display()))
            .await
            .unwrap();
        made.close().await.unwrap();
        for d in [dir.path().join("n1"), dir.path().join("n1").join("n2")] {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
        let file = dir.path().join("bangfu.db");
        // No mode: the file is created as with mode=rwc (QA s30c N6).
        let url = format!("sqlite://{}", file.display());
        let files = [
            file.clone(),
            dir.path().join("bangfu.db-wal"),
            dir.path().join("bangfu.db-shm"),
        ];
        let db = connect_and_migrate(&url).await.unwrap();
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        for f in &files {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let again = connect(&url).await.unwrap();
        for f in &files {
            assert_eq!(mode(f), 0o600, "tightened: {}", f.display());
        }
        again.close().await.unwrap();
        db.close().await.unwrap();
    }

    /// QA s33a S7: a database from a newer server says so, and is left as it was.
    #[tokio::test]
    async fn a_database_from_a_newer_server_is_refused_saying_so() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bangfu.db").display());
        let db = connect_and_migrate(&url).await.unwrap();
        db.execute_unprepared(
            "INSERT INTO seaql_migrations VALUES ('m99990101_000001_from_the_future', 1)",
        )
        .await
        .unwrap();
        let err = migrate(&db).await.unwrap_err().to_string();
        assert!(
            err.contains("written by a newer bangfu-server")
                && err.contains("m99990101_000001_from_the_future"),
            "{err}"
        );
        db.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_writers_share_one_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("d.db").display());
        let db = connect(&url).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (x INTEGER)")
            .await
            .unwrap();
        let d = std::sync::Arc::new(Durability::for_url(&url));
        // One at a time: every call after a commit syncs.
        for n in 1..=3 {
            db.execute_unprepared("INSERT INTO t VALUES (1)")
                .await
                .unwrap();
            d.sync().await.unwrap();
            assert_eq!(d.fsyncs(), n);
        }
        // Ten writers arrive while an fsync is in progress (the lock is held): the next
        // fsync covers all of them.
        let held = d.synced.lock().await;
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let d = d.clone();
                tokio::spawn(async move { d.sync().await })
            })
            .collect();
        while d.tickets.load(Ordering::SeqCst) < 13 {
            tokio::task::yield_now().await;
        }
        drop(held);
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        assert_eq!(d.fsyncs(), 4, "ten waiting writers, one fsync");
    }
}
