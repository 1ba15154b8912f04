//! Retrying what is worth retrying: exponential backoff with equal jitter, bounded in
//! time per operation and per sync, and in attempts as a backstop.
//!
//! Only transient failures are retried ([`ClientError::is_transient`]: no connection,
//! a timeout, a stream cut mid-answer, a 5xx, 408 or 429). Any other answer from the
//! server is final — except tus's 409 (offset mismatch) and 460 (chunk checksum),
//! which the uploader handles itself by asking the server's offset again.
//!
//! The pause before retry *n* is drawn uniformly from `[cap/2, cap]` with `cap =
//! min(max_delay, base_delay · 2^(n−1))` ("equal jitter"), so devices that lost signal
//! together do not come back in step, and the retries of an operation span its whole
//! patience ([`Budget::give_up_after`]): with full jitter (`[0, cap]`) failures that come
//! at once (a connection refused while a server restarts) used up the attempts in 15–55
//! s, and a two-minute dead spot was not ridden out (QA s31b R2).

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{ClientError, Result};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per operation, the first included (1: never retry).
    pub max_attempts: u32,
    /// The cap of the first pause; each further retry doubles it.
    pub base_delay: Duration,
    /// No pause is longer than this.
    pub max_delay: Duration,
}

/// [`Budget::give_up_after`] by default: two request timeouts of a hung server.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(120);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 20,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// A [`RetryPolicy`] with the patience of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub policy: RetryPolicy,
    /// An operation that has failed for this long since it started (or last moved
    /// forward) is not tried again, whatever attempts are left: a server that takes the
    /// connection and never answers costs a whole request timeout per attempt, and a
    /// helper waiting by the road should hear within minutes that it does not answer.
    pub give_up_after: Duration,
}

impl From<RetryPolicy> for Budget {
    fn from(policy: RetryPolicy) -> Self {
        Budget {
            policy,
            give_up_after: DEFAULT_GIVE_UP_AFTER,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry (tests; a caller that retries by itself).
    pub fn once() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The cap of the pause before retry number `retry` (1 for the first retry).
    pub fn cap(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(20);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The pause before retry number `retry`: uniform in `[cap(retry)/2, cap(retry)]`.
    pub fn delay(&self, retry: u32) -> Duration {
        let cap = self.cap(retry).as_nanos().min(u128::from(u64::MAX)) as u64;
        let half = cap / 2;
        if cap == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(half + random_u64() % (cap - half).saturating_add(1))
    }
}

fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        // No OS randomness: the clock's nanoseconds still spread devices apart.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()))
            .unwrap_or(0)
    })
}

/// Attempt bookkeeping for one operation, within the sync's deadline.
#[derive(Debug)]
pub struct Attempts {
    policy: RetryPolicy,
    give_up_after: Duration,
    deadline: Instant,
    failures: u32,
    /// When the operation started, or last moved forward.
    since: Instant,
}

impl Attempts {
    pub fn new(budget: impl Into<Budget>, deadline: Instant) -> Self {
        let Budget {
            policy,
            give_up_after,
        } = budget.into();
        Attempts {
            policy,
            give_up_after,
            deadline,
            failures: 0,
            since: Instant::now(),
        }
    }

    /// Counts a failure; returns the pause before the next attempt, or `None` when the
    /// attempts, the operation's patience ([`Budget::give_up_after`]) or the
    /// sync's time are used up.
    pub fn failed(&mut self) -> Option<Duration> {
        self.failures += 1;
        if self.failures >= self.policy.max_attempts.max(1) {
            return None;
        }
        let pause = self.policy.delay(self.failures);
        let give_up = self
            .since
            .checked_add(self.give_up_after)
            .unwrap_or(self.deadline)
            .min(self.deadline);
        Instant::now()
            .checked_add(pause)
            .is_some_and(|at| at < give_up)
            .then_some(pause)
    }

    /// The operation moved forward (an upload's offset grew): its failures so far no
    /// longer count against it.
    pub fn progressed(&mut self) {
        self.failures = 0;
        self.since = Instant::now();
    }
}

/// Runs `op` until it succeeds, fails for good, or the attempts or time run out.
/// `on_retry` hears each transient failure with the pause that follows it, and again
/// with `None` when the pause is over and the next attempt begins: an attempt may take
/// long (a connect timeout), and "retrying in 0.1 s" must not stay on screen meanwhile.
pub async fn retry<T, F, Fut>(
    budget: impl Into<Budget>,
    deadline: Instant,
    mut on_retry: impl FnMut(&ClientError, Option<Duration>),
    mut op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempts = Attempts::new(budget, deadline);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() => match attempts.failed() {
                Some(pause) => {
                    on_retry(&e, Some(pause));
                    tokio::time::sleep(pause).await;
                    on_retry(&e, None);
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_exponentially_with_equal_jitter_and_a_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        assert_eq!(p.cap(1), Duration::from_millis(100));
        assert_eq!(p.cap(2), Duration::from_millis(200));
        assert_eq!(p.cap(4), Duration::from_millis(800));
        assert_eq!(p.cap(5), Duration::from_secs(1), "capped");
        assert_eq!(p.cap(60), Duration::from_secs(1), "no overflow");
        let draws: Vec<Duration> = (0..200).map(|_| p.delay(3)).collect();
        assert!(
            draws
                .iter()
                .all(|d| *d >= Duration::from_millis(200) && *d <= Duration::from_millis(400)),
            "within [cap/2, cap]: {draws:?}"
        );
        let distinct: std::collections::HashSet<_> = draws.iter().collect();
        assert!(distinct.len() > 100, "jittered, not fixed");
    }

    /// QA s31b R2: failures that come at once do not use up the default attempts before
    /// the default patience: a server restarting for 15 s, a dead spot of two minutes,
    /// are ridden out.
    #[test]
    fn the_default_attempts_outlast_the_default_patience() {
        let p = RetryPolicy::default();
        let least: Duration = (1..p.max_attempts).map(|n| p.cap(n) / 2).sum();
        assert!(least > DEFAULT_GIVE_UP_AFTER, "{least:?}");
        let by_sixth: Duration = (1..=6).map(|n| p.cap(n) / 2).sum();
        assert!(by_sixth >= Duration::from_secs(15), "{by_sixth:?}");
    }

    #[test]
    fn attempts_are_bounded_in_number_and_time() {
        let p = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        };
        let far = Instant::now() + Duration::from_secs(60);
        let mut a = Attempts::new(p, far);
        assert!(a.failed().is_some());
        assert!(a.failed().is_some());
        assert!(a.failed().is_none(), "third failure is the last attempt");
        let mut a = Attempts::new(p, far);
        a.failed();
        a.failed();
        a.progressed();
        assert!(a.failed().is_some(), "progress resets the count");
        let mut a = Attempts::new(p, Instant::now());
        assert!(a.failed().is_none(), "past the deadline");
    }

    #[test]
    fn only_transient_errors_are_retried() {
        let server = |status| ClientError::Server {
            status,
            code: "x".into(),
            message: "x".into(),
        };
        assert!(ClientError::Network("reset".into()).is_transient());
        // A certificate no attempt changes (QA s29a I8).
        for m in [
            "untrusted certificate at https://a.example: invalid peer certificate: UnknownIssuer",
            "BANGFU_CA_FILE=/x/ca.pem: no PEM certificate in it",
        ] {
            assert!(!ClientError::Network(m.into()).is_transient(), "{m}");
        }
        for s in [500, 502, 503, 408, 429] {
            assert!(server(s).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413, 422, 460] {
            assert!(!server(s).is_transient(), "{s}");
        }
    }

    /// However many attempts are left, an operation failing for longer than
    /// `give_up_after` is not tried again (a hung server costs a timeout per attempt);
    /// progress starts its patience afresh.
    #[test]
    fn attempts_give_up_after_failing_for_too_long() {
        let p = Budget {
            policy: RetryPolicy {
                max_attempts: 100,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(1),
            },
            give_up_after: Duration::from_millis(50),
        };
        let far = Instant::now() + Duration::from_secs(60);
        let mut a = Attempts::new(p, far);
        assert!(a.failed().is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            a.failed().is_none(),
            "failing for 60 ms of a 50 ms patience"
        );
        a.progressed();
        assert!(a.failed().is_some(), "progress starts the patience afresh");
        assert_eq!(
            Budget::from(RetryPolicy::default()).give_up_after,
            Duration::from_secs(120)
        );
    }

    #[tokio::test]
    async fn retry_stops_at_a_final_answer() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut calls = 0;
        let r: Result<()> = retry(
            p,
            deadline,
            |_, _| {},
            || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(ClientError::Network("cut".into()))
                    } else {
                        Err(ClientError::Server {
                            status: 403,
                            code: "forbidden".into(),
                            message: "no".into(),
                        })
                    }
                }
            },
        )
        .await;
        assert_eq!(calls, 3);
        assert_eq!(r.unwrap_err().status(), Some(403));
    }
}
