//! Recently authenticated bearer tokens, kept in memory for a short while.
//!
//! A sync submission is three requests (tus create, PATCH, push), and resolving a token
//! takes three lookups (token, account, scope); caching the answer for a few seconds
//! removes most of the database work of authentication on the hot path. A token revoked
//! through this server (logout) is forgotten at once; one revoked by another process
//! (the server's command line) stops working within the time-to-live.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Caller, auth};
use crate::error::ApiResult;

/// How long a resolved token is trusted without asking the database again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15);

/// Entries kept at most; beyond this the cache is emptied (it refills on demand).
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    caller: Caller,
    token_expires: DateTime<Utc>,
    cached_at: Instant,
}

/// Token digest → caller, for [`DEFAULT_TTL`].
pub struct SessionCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Default for SessionCache {
    fn default() -> Self {
        SessionCache::new(DEFAULT_TTL)
    }
}

impl SessionCache {
    /// A cache trusting an answer for `ttl` (zero disables caching).
    pub fn new(ttl: Duration) -> SessionCache {
        SessionCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The caller behind `token`, from memory when fresh, else from the database.
    pub async fn authenticate(
        &self,
        db: &impl ConnectionTrait,
        token: &str,
        remote: Option<String>,
    ) -> ApiResult<Caller> {
        let key = auth::digest(token);
        if let Some(caller) = self.fresh(&key) {
            return Ok(Caller {
                remote_addr: remote,
                ..caller
            });
        }
        let (caller, token_expires) = auth::authenticate_with_expiry(db, token, remote).await?;
        self.remember(key, &caller, token_expires);
        Ok(caller)
    }

    /// Drops a token (after logout), so it is refused on the very next request.
    pub fn forget(&self, token: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(&auth::digest(token));
        }
    }

    /// Drops every token of `account` (a password reset, a new password), so each is
    /// refused on its very next request through this server.
    pub fn forget_account(&self, account: i64) {
        if let Ok(mut map) = self.entries.lock() {
            map.retain(|_, e| e.caller.account_id != Some(account));
        }
    }

    fn fresh(&self, key: &str) -> Option<Caller> {
        let map = self.entries.lock().ok()?;
        let e = map.get(key)?;
        (e.cached_at.elapsed() < self.ttl && e.token_expires > super::now())
            .then(|| e.caller.clone())
    }

    fn remember(&self, key: String, caller: &Caller, token_expires: DateTime<Utc>) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(
                key,
                Entry {
                    caller: Caller {
                        remote_addr: None,
                        ..caller.clone()
                    },
                    token_expires,
                    cached_at: Instant::now(),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bangfu_shared::Role;

    fn caller() -> Caller {
        Caller {
            account_id: Some(7),
            role: Role::FirstHelper,
            scope_id: None,
            county_id: Some(1),
            helper_id: Some(3),
            remote_addr: Some("10.0.0.1".into()),
        }
    }

    #[test]
    fn remembers_until_forgotten_or_stale() {
        let cache = SessionCache::new(Duration::from_secs(60));
        let key = auth::digest("bf_token");
        cache.remember(
            key.clone(),
            &caller(),
            super::super::now() + chrono::Duration::hours(1),
        );
        let hit = cache.fresh(&key).unwrap();
        assert_eq!(hit.account_id, Some(7));
        assert_eq!(hit.remote_addr, None, "the peer address is per request");
        cache.forget("bf_token");
        assert!(cache.fresh(&key).is_none(), "logout forgets at once");

        cache.remember(
            key.clone(),
            &caller(),
            super::super::now() - chrono::Duration::seconds(1),
        );
        assert!(
            cache.fresh(&key).is_none(),
            "an expired token is not served"
        );

        let off = SessionCache::new(Duration::ZERO);
        off.remember(
            key.clone(),
            &caller(),
            super::super::now() + chrono::Duration::hours(1),
        );
        assert!(
            off.fresh(&key).is_none(),
            "a zero time-to-live disables the cache"
        );
    }
}
