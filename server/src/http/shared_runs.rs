//! Identical office reads in flight run once. An office clicking "PDF" three times, or
//! three offices of one county asking for its report together, queued three renders for
//! the one office-read slot; actix-web does not drop a request whose client has gone,
//! so each ran to its end and the offices behind them were answered 503 (QA s28a F6).
//! A request identical to one still running (same report, same parameters, the caller's
//! access already checked) now waits for that run's answer instead of queueing its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{HttpResponse, ResponseError};
use futures_util::future::{BoxFuture, FutureExt, Shared};

use crate::error::ApiError;

/// A rendered answer: what is sent, once per request that shares it.
#[derive(Debug)]
pub struct Rendered {
    pub content_type: String,
    /// The `Content-Disposition` file name, for a file.
    pub filename: Option<String>,
    pub body: Vec<u8>,
}

impl Rendered {
    pub fn response(&self) -> HttpResponse {
        let mut resp = HttpResponse::Ok();
        resp.content_type(self.content_type.clone());
        if let Some(name) = &self.filename {
            resp.insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"{name}\""),
            ));
        }
        resp.body(self.body.clone())
    }
}

type Outcome = Result<Arc<Rendered>, Arc<ApiError>>;
type Run = Shared<BoxFuture<'static, Outcome>>;

/// The runs in flight of one server, by key. Per server, not per process: two servers
/// in one process (the tests) hold different databases under the same ids.
#[derive(Clone, Default)]
pub struct SharedRuns(Arc<Mutex<HashMap<String, Run>>>);

impl SharedRuns {
    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Run>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Answers with the run of `key` in flight, or starts `job` as that run. `key` must
    /// name everything the answer depends on; the caller's right to it is checked
    /// before.
    pub async fn run_once(
        &self,
        key: String,
        job: impl Future<Output = Result<Rendered, ApiError>> + Send + 'static,
    ) -> HttpResponse {
        let run = {
            let mut runs = self.runs();
            match runs.get(&key) {
                Some(run) => run.clone(),
                None => {
                    let (all, forget) = (self.clone(), key.clone());
                    let run = async move {
                        let out = job.await.map(Arc::new).map_err(Arc::new);
                        // Finished: a later request is a new run, on the data as it is.
                        all.runs().remove(&forget);
                        out
                    }
                    .boxed()
                    .shared();
                    runs.insert(key, run.clone());
                    run
                }
            }
        };
        match run.await {
            Ok(rendered) => rendered.response(),
            Err(e) => e.error_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn identical_requests_in_flight_share_one_run_and_a_later_one_runs_again() {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let job = || async {
            RUNS.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Ok(Rendered {
                content_type: "text/plain".into(),
                filename: None,
                body: b"report".to_vec(),
            })
        };
        let key = || "test|shared".to_string();
        let runs = SharedRuns::default();
        let answers =
            futures_util::future::join_all((0..3).map(|_| runs.run_once(key(), job()))).await;
        assert!(answers.iter().all(|a| a.status() == 200));
        assert_eq!(RUNS.load(Ordering::SeqCst), 1, "three requests, one run");
        runs.run_once(key(), job()).await;
        assert_eq!(
            RUNS.load(Ordering::SeqCst),
            2,
            "a request after it ended runs anew"
        );
        let failed = runs
            .run_once("test|failed".into(), async { Err(ApiError::ReportsBusy) })
            .await;
        assert_eq!(failed.status(), 503);
        assert!(failed.headers().contains_key("Retry-After"));
    }
}
