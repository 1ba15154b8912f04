//! Opening the database: SQLite (the embedded default) or PostgreSQL, chosen by the URL
//! scheme, and migrated to the current schema. Everything else is backend-agnostic.

use bangfu_migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use std::time::Duration;

/// Connects to `url`; for SQLite creates the file's directory and sets WAL, full sync
/// (an acknowledged write survives a crash), foreign keys and a busy timeout.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        if let Some(dir) = sqlite_dir(url) {
            std::fs::create_dir_all(&dir)
                .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", dir.display())))?;
        }
        opts.max_connections(8)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
            });
    } else {
        opts.max_connections(16);
    }
    Database::connect(opts).await
}

/// Connects and applies every pending migration.
pub async fn connect_and_migrate(url: &str) -> Result<DatabaseConnection, DbErr> {
    let db = connect(url).await?;
    migrate(&db).await?;
    Ok(db)
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// The guard of [`begin_write`]: SQLite's one writer slot in this process.
pub type WriteGuard = Option<tokio::sync::MutexGuard<'static, ()>>;

/// One writer at a time on SQLite, queued in the process instead of in SQLite's busy
/// handler, which sleeps (1, 2, 5, 10 … 100 ms) when a second connection wants the write
/// lock: under concurrent pushes those sleeps, not the work, bounded throughput.
/// PostgreSQL has row locks and needs no gate (`None`). Hold the guard from `BEGIN` to
/// `COMMIT`, and never across a call that takes it again.
pub async fn write_gate(db: &impl ConnectionTrait) -> WriteGuard {
    static SQLITE_WRITER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    if is_postgres(db) {
        None
    } else {
        Some(SQLITE_WRITER.lock().await)
    }
}

/// Begins a transaction that will write: through the gate, and on SQLite as
/// `BEGIN IMMEDIATE`, so a transaction that reads before it writes takes the write lock
/// up front instead of failing at its first write when another connection committed in
/// between (`SQLITE_BUSY_SNAPSHOT` is not retried by the busy handler).
pub async fn begin_write(
    db: &DatabaseConnection,
) -> Result<(WriteGuard, DatabaseTransaction), DbErr> {
    let gate = write_gate(db).await;
    let options = TransactionOptions {
        sqlite_transaction_mode: (!is_postgres(db)).then_some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let txn = db.begin_with_options(options).await?;
    Ok((gate, txn))
}

/// Inserts `rows` in multi-row statements of `per` rows (keep `per` × columns under the
/// bind limit: 32,766 on SQLite, 65,535 on PostgreSQL).
pub async fn insert_chunked<A>(
    db: &impl ConnectionTrait,
    rows: Vec<A>,
    per: usize,
) -> Result<(), DbErr>
where
    A: sea_orm::ActiveModelTrait + Clone + Send,
{
    for chunk in rows.chunks(per.max(1)) {
        <A::Entity as sea_orm::EntityTrait>::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Whether the connection is to PostgreSQL (for the few places that report it).
pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == sea_orm::DbBackend::Postgres
}

fn sqlite_dir(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_path_buf())
}
