//! Failed-login throttling: after [`FAILURES_ALLOWED`] wrong passwords (or enrollment
//! codes) for one username from one address within [`WINDOW`], further attempts are
//! refused until the oldest failure leaves the window, right password or not. Argon2
//! makes each guess slow; this bounds how many an attacker gets at all. Kept in memory:
//! a restart forgets it, which costs an attacker a restart's worth of guesses at most.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{ApiError, ApiResult};

/// Wrong attempts allowed per username and address within [`WINDOW`].
pub const FAILURES_ALLOWED: usize = 5;
/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept at most; past it, keys with no failure in the window are dropped first.
const MAX_KEYS: usize = 100_000;

/// Failures by `action|username|address`; see the module documentation.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// The key of an attempt: the action (login, enroll), the username as typed (trimmed,
/// lower-cased) and the peer address.
pub fn key(action: &str, username: &str, remote: Option<&str>) -> String {
    format!(
        "{action}|{}|{}",
        username.trim().to_lowercase(),
        remote.unwrap_or("-")
    )
}

impl LoginThrottle {
    /// Refuses the attempt if `key` has used up its failures.
    pub fn check(&self, key: &str) -> ApiResult<()> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> ApiResult<()> {
        let mut map = self.lock()?;
        let Some(list) = map.get_mut(key) else {
            return Ok(());
        };
        prune(list, now);
        match list.front() {
            Some(oldest) if list.len() >= FAILURES_ALLOWED => Err(ApiError::TooManyAttempts {
                retry_after_secs: (WINDOW - now.duration_since(*oldest)).as_secs().max(1),
            }),
            _ => Ok(()),
        }
    }

    /// Counts a wrong password or code for `key`; a success clears its failures.
    pub fn record<T>(&self, key: &str, outcome: &ApiResult<T>) -> ApiResult<()> {
        self.record_at(key, outcome.as_ref().map(drop), Instant::now())
    }

    fn record_at(&self, key: &str, outcome: Result<(), &ApiError>, now: Instant) -> ApiResult<()> {
        let mut map = self.lock()?;
        match outcome {
            Ok(()) => {
                map.remove(key);
            }
            Err(ApiError::InvalidCredentials) => {
                if map.len() >= MAX_KEYS {
                    map.retain(|_, list| {
                        prune(list, now);
                        !list.is_empty()
                    });
                }
                let list = map.entry(key.to_string()).or_default();
                prune(list, now);
                list.push_back(now);
            }
            Err(_) => {}
        }
        Ok(())
    }

    fn lock(&self) -> ApiResult<std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>>> {
        self.failures
            .lock()
            .map_err(|_| ApiError::Internal("login throttle poisoned".into()))
    }
}

/// Drops failures older than the window.
fn prune(list: &mut VecDeque<Instant>, now: Instant) {
    while list
        .front()
        .is_some_and(|t| now.duration_since(*t) >= WINDOW)
    {
        list.pop_front();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn failures_lock_out_until_they_leave_the_window() {
        let t = LoginThrottle::default();
        let k = key("login", " Admin ", Some("10.0.0.1"));
        assert_eq!(k, "login|admin|10.0.0.1");
        let start = Instant::now();
        for i in 0..FAILURES_ALLOWED {
            assert!(t.check_at(&k, start).is_ok(), "attempt {i} allowed");
            t.record_at(&k, Err(&ApiError::InvalidCredentials), start)
                .unwrap();
        }
        match t.check_at(&k, start + Duration::from_secs(60)) {
            Err(ApiError::TooManyAttempts { retry_after_secs }) => {
                assert_eq!(retry_after_secs, WINDOW.as_secs() - 60);
            }
            other => panic!("expected a lock-out, got {other:?}"),
        }
        let other = key("login", "admin", Some("10.0.0.2"));
        assert!(
            t.check_at(&other, start).is_ok(),
            "another address is not locked out"
        );
        assert!(t.check_at(&k, start + WINDOW).is_ok(), "the window passed");
    }

    #[test]
    fn a_success_clears_and_other_errors_do_not_count() {
        let t = LoginThrottle::default();
        let k = key("enroll", "13800000000", None);
        let now = Instant::now();
        for _ in 0..FAILURES_ALLOWED - 1 {
            t.record_at(&k, Err(&ApiError::InvalidCredentials), now)
                .unwrap();
        }
        t.record_at(&k, Ok(()), now).unwrap();
        t.record_at(&k, Err(&ApiError::InvalidCredentials), now)
            .unwrap();
        for _ in 0..10 {
            t.record_at(&k, Err(&ApiError::EnrollmentRequired), now)
                .unwrap();
        }
        assert!(t.check_at(&k, now).is_ok());
    }
}
