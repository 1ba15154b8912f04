//! Expiry of unfinished uploads (tus expiration extension).
//!
//! A creation cut mid-body, or a client that never came back, leaves an upload row and
//! its partial bytes. An upload still unfinished `upload_expiry_days` after its creation
//! is discarded: its row is deleted and its bytes with it. Responses about an unfinished
//! upload say when that happens (`Upload-Expires`); a client resuming after it gets 404
//! and creates the upload again. The sweep runs in the background, at most once an hour,
//! when an upload is created (so also on the first creation after a start); an upload
//! with a PATCH in progress is left for the next. It first stores the unfinished uploads
//! that already hold every byte ([`finish_held_all`]), so those are never discarded.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use super::uploads::Busy;
use crate::config::Settings;
use crate::entities::upload;
use crate::error::{ApiError, ApiResult};
use crate::storage::BlobStore;

/// How often, at most, a sweep is started.
const SWEEP_EVERY_SECS: i64 = 3600;

/// When the last sweep was started (Unix seconds), so requests start one an hour.
#[derive(Debug, Default)]
pub struct Sweeps {
    last: AtomicI64,
}

impl Sweeps {
    /// Whether a sweep is due at `now`; if so it counts as started.
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        let now = now.timestamp();
        let last = self.last.load(Ordering::Relaxed);
        now - last >= SWEEP_EVERY_SECS
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// When an upload created at `created` expires unless it is finished.
pub fn expires_at(settings: &Settings, created: DateTime<Utc>) -> DateTime<Utc> {
    created + Duration::days(settings.upload_expiry_days)
}

/// The condition on `uploads` of an unfinished upload not yet past its expiry: the
/// ones that count toward an account's limit and that a creation may hand back.
pub fn unexpired(settings: &Settings) -> sea_orm::Condition {
    let cutoff = super::now() - Duration::days(settings.upload_expiry_days);
    sea_orm::Condition::all()
        .add(upload::Column::Status.eq("partial"))
        .add(upload::Column::CreatedAt.gt(cutoff))
}

/// Refuses an unfinished upload past its expiry as gone (404), as it will be once the
/// sweep has run: between the two it must neither take bytes nor answer `HEAD` as if
/// it were alive, since it no longer counts toward the account's limit (QA s24c F6).
pub fn refuse_lapsed(settings: &Settings, created: DateTime<Utc>, complete: bool) -> ApiResult<()> {
    if !complete && expires_at(settings, created) <= super::now() {
        return Err(ApiError::NotFound("upload"));
    }
    Ok(())
}

/// `Upload-Expires` (an HTTP date) for an upload created at `created`.
pub fn expires_header(settings: &Settings, created: DateTime<Utc>) -> String {
    expires_at(settings, created)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Discards the unfinished uploads created before `now` less the expiry, except those
/// busy with a PATCH; returns how many. They go as a client's termination does
/// ([`super::uploads::discard_unfinished`]): rows first, then bytes.
pub async fn expire(
    db: &DatabaseConnection,
    store: &Arc<dyn BlobStore>,
    busy: &Mutex<HashSet<String>>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> ApiResult<usize> {
    let cutoff = now - Duration::days(settings.upload_expiry_days);
    let stale = upload::Entity::find()
        .filter(upload::Column::Status.eq("partial"))
        .filter(upload::Column::CreatedAt.lt(cutoff))
        .all(db)
        .await?;
    // Held until the bytes are gone, so no PATCH starts on them meanwhile.
    let taken: Vec<Busy<'_>> = stale
        .iter()
        .filter_map(|row| Busy::take(busy, &row.id).ok())
        .collect();
    super::uploads::discard_unfinished(db, store, &taken).await?;
    Ok(taken.len())
}

/// Stores every unfinished upload that already holds all its bytes: a crash, or a busy
/// image check, between the last byte and the commit leaves one (see
/// [`super::uploads::finish_held`]). A client asking about it again would finish it; this
/// finishes it for the records waiting on it even if none does, and before the expiry
/// could discard it. Uploads with a PATCH in progress are left to it. Returns how many
/// were stored; one that fails its checks is logged (by id) and failed as at its last
/// PATCH.
pub async fn finish_held_all(
    db: &DatabaseConnection,
    store: &Arc<dyn BlobStore>,
    busy: &Mutex<HashSet<String>>,
    settings: &Settings,
) -> ApiResult<usize> {
    let partial = upload::Entity::find()
        .filter(upload::Column::Status.eq("partial"))
        .all(db)
        .await?;
    let mut stored = 0;
    for row in partial {
        if !super::uploads::state(store, &row).await?.held_unfinished() {
            continue;
        }
        let Ok(mark) = Busy::take(busy, &row.id) else {
            continue;
        };
        match super::uploads::finish_held(db, store, settings, &mark).await {
            Ok(_) => stored += 1,
            Err(e) => tracing::warn!(upload = %row.id, error = %e, "finishing a held upload"),
        }
    }
    Ok(stored)
}

/// Starts a sweep in the background when one is due (see [`Sweeps`]): held uploads are
/// finished ([`finish_held_all`]), then expired ones discarded. Its outcome is logged,
/// never the client's concern.
pub fn sweep_if_due(state: &crate::AppState) {
    let now = super::now();
    if !state.upload_sweeps.due(now) {
        return;
    }
    let state = state.clone();
    actix_web::rt::spawn(async move {
        match finish_held_all(
            &state.db,
            &state.store,
            &state.busy_uploads,
            &state.settings,
        )
        .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(stored = n, "stored uploads that held every byte"),
            Err(e) => tracing::warn!(error = %e, "finishing held uploads"),
        }
        match expire(
            &state.db,
            &state.store,
            &state.busy_uploads,
            &state.settings,
            now,
        )
        .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "discarded unfinished uploads past expiry"),
            Err(e) => tracing::warn!(error = %e, "expiring unfinished uploads"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_is_due_once_an_hour() {
        let s = Sweeps::default();
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        assert!(s.due(t0), "the first request starts one");
        assert!(!s.due(t0 + Duration::minutes(59)));
        assert!(s.due(t0 + Duration::minutes(60)));
        assert!(!s.due(t0 + Duration::minutes(61)));
    }

    #[test]
    fn upload_expires_is_an_http_date() {
        let settings = Settings::default();
        let created = DateTime::parse_from_rfc3339("2026-12-01T08:30:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(
            expires_header(&settings, created),
            "Thu, 31 Dec 2026 08:30:00 GMT"
        );
    }
}
