//! Bounds on CPU- and memory-heavy jobs running at once: password hashes, full image
//! decodes, large push bodies and an office's heavy reads.
//!
//! Each argon2id hash holds its memory cost (19 MiB by default) for its whole run, and
//! every login, enrollment and password change is one. Unbounded, a burst of logins
//! (fifty helpers at a quarter's end, or anyone sending requests) ran them all at once
//! on the blocking pool: 50 concurrent logins took the server to 600 MiB, and the pool's
//! 512 threads would allow 10 GiB. A full decode of an uploaded image holds its pixels,
//! up to [`crate::services::uploads::MAX_DECODED_BYTES`]. Both are pure CPU, so running
//! more of them than there are cores finishes none sooner: with one slot per core,
//! memory stays at a few jobs' worth and the rest wait their turn, asynchronously. A
//! request that waits longer than [`WAIT`] is told the server is busy (503 with
//! `Retry-After`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

use crate::error::{ApiError, ApiResult};

/// How long a hash may wait for a slot before its request is answered 503.
pub const WAIT: Duration = Duration::from_secs(20);

/// Slots for CPU-heavy work on the blocking pool, with the highest number that ever ran
/// at once (for tests and the benchmark's figures).
#[derive(Debug)]
pub struct CpuSlots {
    slots: Semaphore,
    size: usize,
    running: AtomicUsize,
    peak: AtomicUsize,
    wait: Duration,
    /// The answer when the wait runs out.
    busy: fn() -> ApiError,
}

impl CpuSlots {
    /// `n` slots (at least one); a job waits at most `wait` for one.
    pub fn new(n: usize, wait: Duration) -> CpuSlots {
        CpuSlots {
            slots: Semaphore::new(n.max(1)),
            size: n.max(1),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            wait,
            busy: || ApiError::Busy,
        }
    }

    /// The server's slots for password hashes: one per core.
    pub fn passwords() -> &'static CpuSlots {
        static SLOTS: OnceLock<CpuSlots> = OnceLock::new();
        SLOTS.get_or_init(per_core)
    }

    /// The server's slots for reading an upload back and decoding it: one per core.
    pub fn image_checks() -> &'static CpuSlots {
        static SLOTS: OnceLock<CpuSlots> = OnceLock::new();
        SLOTS.get_or_init(per_core)
    }

    /// The server's slots for an office's heavy reads: a town or county report, a ledger
    /// export. Each reconciles a whole town or county (about 100 MB and a second or
    /// more of CPU for 30,000 households); unbounded, four offices looping them took a
    /// 2-core server's field pushes from 55 to 16 a second and its memory to 838 MB (QA
    /// s27a F2, F3). Half the cores, at least one: the field's pushes keep the rest.
    pub fn office_reads() -> &'static CpuSlots {
        static SLOTS: OnceLock<CpuSlots> = OnceLock::new();
        SLOTS.get_or_init(|| CpuSlots {
            busy: || ApiError::ReportsBusy,
            ..CpuSlots::new(half_the_cores(), WAIT)
        })
    }

    /// The server's slots for large push bodies (over [`LARGE_BODY`]), held from before
    /// the body is read until the push is answered: one such push takes about twelve
    /// times its body in memory, and six 30 MiB pushes of one account took the server to
    /// 3 GB (QA s23c F12). One per core; honest pushes are far smaller.
    pub fn large_bodies() -> &'static CpuSlots {
        static SLOTS: OnceLock<CpuSlots> = OnceLock::new();
        SLOTS.get_or_init(|| CpuSlots {
            busy: || ApiError::PushesBusy,
            ..per_core()
        })
    }

    /// Takes a slot for async work, waiting at most the slots' wait (then [`ApiError::
    /// Busy`], 503 with `Retry-After`); the slot is given back when the guard drops.
    pub async fn hold(&'static self) -> ApiResult<Held> {
        let permit = tokio::time::timeout(self.wait, self.slots.acquire())
            .await
            .map_err(|_| (self.busy)())?
            .map_err(|e| ApiError::Internal(format!("slots: {e}")))?;
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Ok(Held {
            _permit: permit,
            slots: self,
        })
    }

    /// How many slots there are (tests hold them all to see who waits).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `job` on the blocking pool once a slot is free. The slot is held until the
    /// job ends, even if the request that asked is cancelled meanwhile (its hash runs
    /// on, and must still count).
    pub async fn run<T: Send + 'static>(
        &'static self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> ApiResult<T> {
        let permit = tokio::time::timeout(self.wait, self.slots.acquire())
            .await
            .map_err(|_| (self.busy)())?
            .map_err(|e| ApiError::Internal(format!("hash slots: {e}")))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            let out = job();
            self.running.fetch_sub(1, Ordering::SeqCst);
            out
        })
        .await
        .map_err(|e| ApiError::Internal(format!("hashing: {e}")))
    }

    /// The most jobs that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// A push body larger than this takes a [`CpuSlots::large_bodies`] slot.
pub const LARGE_BODY: usize = 4 << 20;

/// A slot taken by [`CpuSlots::hold`].
pub struct Held {
    _permit: tokio::sync::SemaphorePermit<'static>,
    slots: &'static CpuSlots,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.slots.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Half the machine's cores, at least one.
fn half_the_cores() -> usize {
    (std::thread::available_parallelism().map_or(2, |n| n.get()) / 2).max(1)
}

fn per_core() -> CpuSlots {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    CpuSlots::new(cores, WAIT)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn leaked(n: usize, wait: Duration) -> &'static CpuSlots {
        Box::leak(Box::new(CpuSlots::new(n, wait)))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_jobs_run_at_once_than_there_are_slots_and_every_one_finishes() {
        let slots = leaked(2, Duration::from_secs(30));
        let jobs: Vec<_> = (0..12)
            .map(|i| {
                tokio::spawn(slots.run(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    i * 2
                }))
            })
            .collect();
        let mut done = Vec::new();
        for j in jobs {
            done.push(j.await.unwrap().unwrap());
        }
        assert_eq!(done, (0..12).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(slots.peak(), 2, "twelve jobs, two slots");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_cannot_get_a_slot_in_time_is_a_busy_server() {
        let slots = leaked(1, Duration::from_millis(50));
        let long = tokio::spawn(slots.run(|| std::thread::sleep(Duration::from_millis(500))));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let refused = slots.run(|| ()).await;
        assert!(matches!(refused, Err(ApiError::Busy)), "{refused:?}");
        long.await.unwrap().unwrap();
        assert!(
            slots.run(|| ()).await.is_ok(),
            "free again once the job ended"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_request_keeps_its_slot_until_its_hash_ends() {
        let slots = leaked(1, Duration::from_secs(30));
        let cancelled = tokio::spawn(slots.run(|| std::thread::sleep(Duration::from_millis(200))));
        tokio::time::sleep(Duration::from_millis(30)).await;
        cancelled.abort();
        let next = slots.run(|| ());
        next.await.unwrap();
        assert_eq!(
            slots.peak(),
            1,
            "the next job waited for the cancelled one's hash"
        );
    }
}
