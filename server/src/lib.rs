//! The Bangfu server as a library: the pairing ledger, accounts and roles, and a scoped
//! REST API under `/api/v1`. `main.rs` only parses the command line; tests start the
//! server on `127.0.0.1:0` through [`run`].

pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod demo_visits;
pub mod entities;
pub mod error;
pub mod http;
pub mod ledger;
pub mod report_files;
pub mod report_pdf;
pub mod services;
pub mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use config::Settings;
pub use error::{ApiError, ApiResult};

use actix_web::dev::Server;
use sea_orm::DatabaseConnection;
use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use storage::{BlobStore, LocalStore};

/// Shared state of every request handler.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Settings,
    /// Where uploaded photos and signature images are kept.
    pub store: Arc<dyn BlobStore>,
    /// Uploads with a PATCH in progress (a second one at the same time is refused).
    pub busy_uploads: Arc<Mutex<HashSet<String>>>,
    /// Recently authenticated tokens (see [`services::sessions`]).
    pub sessions: Arc<services::sessions::SessionCache>,
    /// Device keys and paired households of recent pushes (see [`services::signers`]).
    pub signers: Arc<services::signers::Signers>,
    /// Group commit: successful write requests wait for it before they are answered.
    pub durability: Arc<db::Durability>,
    /// Recent failed logins and enrollments (see [`services::throttle`]).
    pub login_throttle: Arc<services::throttle::LoginThrottle>,
    /// When expired uploads were last looked for (see [`services::upload_expiry::Sweeps`]).
    pub upload_sweeps: Arc<services::upload_expiry::Sweeps>,
    /// Office reads in flight, shared by identical requests (see [`http::shared_runs`]).
    pub shared_runs: http::shared_runs::SharedRuns,
}

impl AppState {
    /// State over a connected database with the local file store in the data directory,
    /// which is made private to the server's user first (see [`storage::private_dir`]).
    pub fn new(db: DatabaseConnection, settings: Settings) -> ApiResult<AppState> {
        storage::private_dir(&settings.data_dir)
            .map_err(|e| ApiError::Internal(format!("data directory: {e}")))?;
        let store = LocalStore::new(&settings.data_dir.join("files"))
            .map_err(|e| ApiError::Internal(format!("file store: {e}")))?;
        Ok(AppState {
            db,
            store: Arc::new(store),
            busy_uploads: Arc::default(),
            sessions: Arc::default(),
            signers: Arc::default(),
            durability: Arc::new(db::Durability::for_url(&settings.effective_database_url())),
            login_throttle: Arc::default(),
            upload_sweeps: Arc::default(),
            shared_runs: http::shared_runs::SharedRuns::default(),
            settings,
        })
    }
}

/// Connects to the configured database, migrates it, and starts serving on `listener`.
/// The returned server runs when awaited (or spawned) and stops with its handle.
pub async fn run(settings: Settings, listener: TcpListener) -> ApiResult<Server> {
    // Before the database: the SQLite file is created inside it.
    storage::private_dir(&settings.data_dir)
        .map_err(|e| ApiError::Internal(format!("data directory: {e}")))?;
    let url = settings.effective_database_url();
    db::check_writable_for_serving(&url).map_err(ApiError::Internal)?;
    let db = db::connect_and_migrate(&url).await?;
    serve(AppState::new(db, settings)?, listener)
}

/// Starts serving with an already connected database.
pub fn serve(state: AppState, listener: TcpListener) -> ApiResult<Server> {
    let workers = match state.settings.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().configure(|cfg| http::configure(cfg, state.clone()))
    })
    .workers(workers)
    // Answers go out as they are written: a client waits on each one (a push, then
    // the next photo), and Nagle's algorithm would hold a short write back for the
    // acknowledgement of the one before.
    .tcp_nodelay(true)
    // A weak mobile link may stall for a while before a request's head is through:
    // actix answers 408 (with no body) after 5 seconds by default, which cut requests
    // that would have arrived (QA s22a F4). The device retries either way.
    .client_request_timeout(std::time::Duration::from_secs(30))
    .listen(listener)
    .map_err(|e| ApiError::Internal(format!("cannot listen: {e}")))?
    .run();
    Ok(server)
}
