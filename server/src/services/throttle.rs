//! Failed-login throttling: after [`FAILURES_ALLOWED`] wrong passwords (or enrollment
//! codes) for one username from one address within [`WINDOW`], further attempts are
//! refused until the oldest failure leaves the window, right password or not. Argon2
//! makes each guess slow; this bounds how many an attacker gets at all. Kept in memory:
//! a restart forgets it, which costs an attacker a restart's worth of guesses at most.
//!
//! An attempt is counted when it starts, not when its slow password check ends
//! ([`LoginThrottle::reserve`]): otherwise any number of guesses sent at once would all
//! pass the check before the first failure was written down. An attempt that ends
//! without checking a password (the server was busy, the database failed) is given
//! back; one whose request was dropped midway counts as a failure. So does a login
//! answered "enrollment required": that answer says the phone is a helper's, and
//! given back it let anyone test phone numbers without limit.
//!
//! Memory is bounded whatever clients send: a key is a SHA-256 of the action, the
//! lower-cased username and the address (32 bytes however long the username), and the
//! map holds at most [`MAX_KEYS`] keys. When it is full, keys whose failures have all
//! left the window go first; if that is not enough, the least recently used tenth is
//! evicted. Evicting rather than refusing keeps logins working for everyone while
//! someone floods the server with made-up usernames; the price is that a flooder may
//! push their own key out and start over, which takes [`MAX_KEYS`] / 10 slow failed
//! logins for every [`FAILURES_ALLOWED`] extra guesses.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{ApiError, ApiResult};

/// Wrong attempts allowed per username and address within [`WINDOW`].
pub const FAILURES_ALLOWED: usize = 5;
/// Wrong attempts allowed from one address within [`WINDOW`], whatever usernames they
/// name. Why: helpers' logins are phone numbers, easy to list, so one address could try
/// a common password once against every helper, never reaching any one username's
/// limit (QA s32b V6). Far above what a village's helpers behind one carrier address
/// mistype in a quarter of an hour.
pub const ADDRESS_FAILURES_ALLOWED: usize = 50;
/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept at most (about 100 bytes each).
pub const MAX_KEYS: usize = 100_000;

/// The key of an attempt: a digest of the action (login, enroll), the username as typed
/// (trimmed, lower-cased) and the peer address. Fixed-size, so a long username costs
/// the map no more than a short one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 32]);

/// Builds the [`Key`] of an attempt.
pub fn key(action: &str, username: &str, remote: Option<&str>) -> Key {
    let mut h = Sha256::new();
    let from = remote.map_or_else(|| "-".to_string(), network_of);
    // Length-prefixed parts, so no two different triples hash the same bytes.
    for part in [
        action,
        username.trim().to_lowercase().as_str(),
        from.as_str(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    Key(h.finalize().into())
}

/// The network an address counts under: an IPv6 address by its /64, since every home
/// or mobile line is given a whole /64 and may send from any of its 2^64 addresses
/// (QA s33c C5: 60 failures from one /64 were never refused); an IPv4 address (mapped
/// ones included) as itself.
fn network_of(remote: &str) -> String {
    match remote
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_canonical())
    {
        Ok(std::net::IpAddr::V6(v6)) => {
            let net = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(net))
        }
        Ok(v4) => v4.to_string(),
        Err(_) => remote.to_string(),
    }
}

/// What one key has done lately.
#[derive(Debug)]
struct Entry {
    /// Failures within the window, oldest first.
    failures: VecDeque<Instant>,
    /// Attempts started and not yet ended; they count against the limit.
    pending: usize,
    /// The last time an attempt started or ended (eviction order).
    touched: Instant,
}

impl Entry {
    fn is_idle(&self) -> bool {
        self.failures.is_empty() && self.pending == 0
    }
}

/// How an attempt ended, as far as the throttle cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The password or code was right: the key's failures are forgotten.
    Success,
    /// Wrong password or code, a login of an account that must enroll first (it
    /// reveals that the account exists), or the request went away before an answer.
    Failure,
    /// No password was checked (busy server, database error).
    NotCounted,
}

impl Outcome {
    fn of<T>(result: &ApiResult<T>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(
                ApiError::InvalidCredentials
                | ApiError::InvalidEnrollmentCode
                | ApiError::WrongCurrentPassword,
            ) => Outcome::Failure,
            Err(_) => Outcome::NotCounted,
        }
    }
}

/// Recent attempts by [`Key`]; see the module documentation.
#[derive(Debug)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<Key, Entry>>,
    capacity: usize,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::with_capacity(MAX_KEYS)
    }
}

/// An attempt under way, counted against its key until [`Attempt::settle`] says how it
/// ended. Dropped unsettled (the request was cancelled), it counts as a failure.
#[derive(Debug)]
#[must_use = "settle the attempt with its outcome"]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    key: Key,
    settled: bool,
    /// A success clears the key's failures (a username's, not an address's: one
    /// account of the sprayer's own would clear the address's count).
    forget_on_success: bool,
}

impl Attempt<'_> {
    /// Records how the attempt ended: a success clears the key's failures, a wrong
    /// password or code (or "enrollment required") is a failure, any other error gives
    /// the attempt back.
    pub fn settle<T>(mut self, result: &ApiResult<T>) {
        self.settled = true;
        let outcome = match Outcome::of(result) {
            Outcome::Success if !self.forget_on_success => Outcome::NotCounted,
            other => other,
        };
        self.throttle.settle_at(self.key, outcome, Instant::now());
    }

    /// Gives the attempt back uncounted: another limit refused the request before any
    /// password was checked.
    pub fn give_back(mut self) {
        self.settled = true;
        self.throttle
            .settle_at(self.key, Outcome::NotCounted, Instant::now());
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle
                .settle_at(self.key, Outcome::Failure, Instant::now());
        }
    }
}

impl LoginThrottle {
    /// A throttle holding at most `capacity` keys (at least ten).
    pub fn with_capacity(capacity: usize) -> LoginThrottle {
        LoginThrottle {
            entries: Mutex::default(),
            capacity: capacity.max(10),
        }
    }

    /// Starts an attempt for `key`, or refuses it (429) if the key's failures and the
    /// attempts under way already reach [`FAILURES_ALLOWED`].
    pub fn reserve(&self, key: Key) -> ApiResult<Attempt<'_>> {
        self.reserve_at(key, Instant::now(), FAILURES_ALLOWED)?;
        Ok(Attempt {
            throttle: self,
            key,
            settled: false,
            forget_on_success: true,
        })
    }

    /// Starts an attempt from `remote` (login and enrollment alike), or refuses it
    /// (429) once the address's failures reach [`ADDRESS_FAILURES_ALLOWED`]. A success
    /// does not clear them.
    pub fn reserve_address(&self, remote: Option<&str>) -> ApiResult<Attempt<'_>> {
        let key = key("address", "", remote);
        self.reserve_at(key, Instant::now(), ADDRESS_FAILURES_ALLOWED)?;
        Ok(Attempt {
            throttle: self,
            key,
            settled: false,
            forget_on_success: false,
        })
    }

    fn reserve_at(&self, key: Key, now: Instant, allowed: usize) -> ApiResult<()> {
        let mut map = self.lock();
        if let Some(entry) = map.get_mut(&key) {
            prune(&mut entry.failures, now);
            if entry.failures.len() + entry.pending >= allowed {
                // Until the oldest failure leaves the window; when only attempts under
                // way fill the limit, their outcome is a moment away.
                let retry_after_secs = entry.failures.front().map_or(1, |oldest| {
                    WINDOW
                        .saturating_sub(now.duration_since(*oldest))
                        .as_secs()
                        .max(1)
                });
                return Err(ApiError::TooManyAttempts { retry_after_secs });
            }
            entry.pending += 1;
            entry.touched = now;
            return Ok(());
        }
        self.make_room(&mut map, now);
        map.insert(
            key,
            Entry {
                failures: VecDeque::new(),
                pending: 1,
                touched: now,
            },
        );
        Ok(())
    }

    fn settle_at(&self, key: Key, outcome: Outcome, now: Instant) {
        let mut map = self.lock();
        if let Some(entry) = map.get_mut(&key) {
            entry.pending = entry.pending.saturating_sub(1);
            entry.touched = now;
            prune(&mut entry.failures, now);
            match outcome {
                Outcome::Success => entry.failures.clear(),
                Outcome::Failure => entry.failures.push_back(now),
                Outcome::NotCounted => {}
            }
            if entry.is_idle() {
                map.remove(&key);
            }
        } else if outcome == Outcome::Failure {
            // Evicted while the password was being checked: the failure still counts.
            self.make_room(&mut map, now);
            map.insert(
                key,
                Entry {
                    failures: VecDeque::from([now]),
                    pending: 0,
                    touched: now,
                },
            );
        }
    }

    /// Frees room for one more key when the map is full: idle keys go first, then the
    /// least recently used, down to nine tenths of the capacity so that the next full
    /// pass is a tenth of the capacity of new keys away.
    fn make_room(&self, map: &mut HashMap<Key, Entry>, now: Instant) {
        if map.len() < self.capacity {
            return;
        }
        map.retain(|_, entry| {
            prune(&mut entry.failures, now);
            !entry.is_idle()
        });
        let target = self.capacity - self.capacity / 10;
        if map.len() <= target {
            return;
        }
        let mut by_age: Vec<(Instant, Key)> = map.iter().map(|(k, e)| (e.touched, *k)).collect();
        let evict = map.len() - target;
        by_age.select_nth_unstable_by_key(evict - 1, |(touched, _)| *touched);
        for (_, k) in &by_age[..evict] {
            map.remove(k);
        }
    }

    /// The map, even if a thread panicked holding it: at worst one key's count is off.
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
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

    /// One whole attempt at `now` ending with `outcome`.
    fn attempt(t: &LoginThrottle, k: Key, outcome: Outcome, now: Instant) -> ApiResult<()> {
        t.reserve_at(k, now, FAILURES_ALLOWED)?;
        t.settle_at(k, outcome, now);
        Ok(())
    }

    /// QA s32b V6: one address is refused after many failures whatever usernames they
    /// named, and a success of its own does not clear them; other addresses go on.
    /// QA s33c C5: the addresses of one IPv6 /64 count as one; another /64 and IPv4
    /// addresses do not join them.
    #[test]
    fn an_ipv6_line_counts_as_one_address() {
        let a = key("address", "", Some("2001:db8:1:2::1"));
        assert_eq!(a, key("address", "", Some("2001:db8:1:2:ffff:1:2:3")));
        assert_ne!(a, key("address", "", Some("2001:db8:1:3::1")));
        assert_eq!(
            key("address", "", Some("::ffff:10.9.9.40")),
            key("address", "", Some("10.9.9.40"))
        );
        assert_ne!(
            key("address", "", Some("10.9.9.40")),
            key("address", "", Some("10.9.9.41"))
        );
        let t = LoginThrottle::with_capacity(100);
        for i in 0..ADDRESS_FAILURES_ALLOWED {
            let remote = format!("2001:db8:1:2::{:x}", i + 1);
            drop(t.reserve_address(Some(&remote)).map_err(|e| e.to_string()));
        }
        assert!(matches!(
            t.reserve_address(Some("2001:db8:1:2::beef")),
            Err(ApiError::TooManyAttempts { .. })
        ));
        assert!(t.reserve_address(Some("2001:db8:9::1")).is_ok());
    }

    #[test]
    fn one_address_trying_many_usernames_is_refused() {
        let t = LoginThrottle::default();
        let wrong: ApiResult<()> = Err(ApiError::InvalidCredentials);
        for _ in 0..ADDRESS_FAILURES_ALLOWED - 1 {
            t.reserve_address(Some("10.0.0.9")).unwrap().settle(&wrong);
        }
        t.reserve_address(Some("10.0.0.9")).unwrap().settle(&Ok(()));
        t.reserve_address(Some("10.0.0.9")).unwrap().settle(&wrong);
        assert!(matches!(
            t.reserve_address(Some("10.0.0.9")),
            Err(ApiError::TooManyAttempts { .. })
        ));
        t.reserve_address(Some("10.0.0.10")).unwrap().give_back();
    }

    #[test]
    fn failures_lock_out_until_they_leave_the_window() {
        let t = LoginThrottle::default();
        let k = key("login", " Admin ", Some("10.0.0.1"));
        assert_eq!(
            k,
            key("login", "admin", Some("10.0.0.1")),
            "trimmed, any case"
        );
        let start = Instant::now();
        for i in 0..FAILURES_ALLOWED {
            assert!(
                attempt(&t, k, Outcome::Failure, start).is_ok(),
                "attempt {i} allowed"
            );
        }
        match t.reserve_at(k, start + Duration::from_secs(60), FAILURES_ALLOWED) {
            Err(ApiError::TooManyAttempts { retry_after_secs }) => {
                assert_eq!(retry_after_secs, WINDOW.as_secs() - 60);
            }
            other => panic!("expected a lock-out, got {other:?}"),
        }
        let other = key("login", "admin", Some("10.0.0.2"));
        assert!(
            t.reserve_at(other, start, FAILURES_ALLOWED).is_ok(),
            "another address is not locked out"
        );
        assert!(
            t.reserve_at(k, start + WINDOW, FAILURES_ALLOWED).is_ok(),
            "the window passed"
        );
    }

    #[test]
    fn a_success_clears_and_other_errors_do_not_count() {
        let t = LoginThrottle::default();
        let k = key("enroll", "13800000000", None);
        let now = Instant::now();
        for _ in 0..FAILURES_ALLOWED - 1 {
            attempt(&t, k, Outcome::Failure, now).unwrap();
        }
        attempt(&t, k, Outcome::Success, now).unwrap();
        attempt(&t, k, Outcome::Failure, now).unwrap();
        for _ in 0..10 {
            attempt(&t, k, Outcome::NotCounted, now).unwrap();
        }
        assert!(t.reserve_at(k, now, FAILURES_ALLOWED).is_ok());
    }

    /// A refused login (a wrong password, or an account not enrolled, answered alike)
    /// counts, so phones cannot be tested without limit. A busy server does not.
    #[test]
    fn a_refused_login_counts_as_a_failure() {
        assert_eq!(
            Outcome::of::<()>(&Err(ApiError::InvalidCredentials)),
            Outcome::Failure
        );
        assert_eq!(Outcome::of::<()>(&Err(ApiError::Busy)), Outcome::NotCounted);
        let t = LoginThrottle::default();
        let k = key("login", "13800000000", Some("10.0.0.1"));
        for _ in 0..FAILURES_ALLOWED {
            t.reserve(k)
                .unwrap()
                .settle::<()>(&Err(ApiError::InvalidCredentials));
        }
        assert!(matches!(
            t.reserve(k),
            Err(ApiError::TooManyAttempts { .. })
        ));
    }

    #[test]
    fn guesses_sent_at_once_cannot_exceed_the_limit() {
        let t = LoginThrottle::default();
        let k = key("login", "admin", Some("10.0.0.1"));
        let guesses: Vec<_> = (0..50).map(|_| t.reserve(k)).collect();
        let started = guesses.iter().filter(|g| g.is_ok()).count();
        assert_eq!(
            started, FAILURES_ALLOWED,
            "only five run their password check"
        );
        for g in guesses.into_iter().flatten() {
            g.settle::<()>(&Err(ApiError::InvalidCredentials));
        }
        assert!(matches!(
            t.reserve(k),
            Err(ApiError::TooManyAttempts { .. })
        ));
    }

    #[test]
    fn a_cancelled_attempt_counts_and_a_busy_one_is_given_back() {
        let t = LoginThrottle::default();
        let k = key("login", "admin", None);
        for _ in 0..FAILURES_ALLOWED - 1 {
            drop(t.reserve(k).unwrap());
        }
        t.reserve(k).unwrap().settle::<()>(&Err(ApiError::Busy));
        let last = t.reserve(k).unwrap();
        assert!(matches!(
            t.reserve(k),
            Err(ApiError::TooManyAttempts { .. })
        ));
        last.settle::<()>(&Ok(()));
        assert_eq!(t.len(), 0, "a success forgets the key");
    }

    #[test]
    fn the_map_never_outgrows_its_capacity() {
        let t = LoginThrottle::with_capacity(1_000);
        let now = Instant::now();
        let long = "x".repeat(10_000);
        for i in 0..5_000 {
            let k = key("login", &format!("{long}{i}"), Some("10.0.0.1"));
            attempt(&t, k, Outcome::Failure, now + Duration::from_millis(i)).unwrap();
            assert!(t.len() <= 1_000);
        }
        let newest = key("login", &format!("{long}4999"), Some("10.0.0.1"));
        for _ in 1..FAILURES_ALLOWED {
            attempt(&t, newest, Outcome::Failure, now + Duration::from_secs(10)).unwrap();
        }
        assert!(
            t.reserve_at(newest, now + Duration::from_secs(10), FAILURES_ALLOWED)
                .is_err(),
            "recent keys survive eviction and stay locked"
        );
    }
}
