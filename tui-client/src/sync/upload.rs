//! One file to the server over tus 1.0 (core, creation, creation-with-upload, checksum,
//! termination), resuming from the last byte the server holds.
//!
//! The first chunk travels with the creation (tus creation-with-upload), so a photo
//! that fits in one chunk takes one request. The upload URL is saved in the store as
//! soon as the server creates it, so a sync killed mid-file continues the same upload
//! next time (and a creation cut before its answer is found again by the file's hash).
//! Before sending more, the uploader asks the server's offset (`HEAD`) and sends from
//! there in chunks (`PATCH`), each with its SHA-256 in `Upload-Checksum`: a chunk cut
//! off mid-way is dropped by the server, so a cut costs at most one chunk. After a cut
//! the chunk size halves (down to [`MIN_CHUNK`]) so a link that only carries a little
//! at a time still gets the file through; steady success doubles it back.
//!
//! 409 (the offset moved: a PATCH whose answer was lost, or one still finishing on
//! the server) and 460 (the chunk arrived damaged) are answered by asking the offset
//! again; 404 (the upload is gone: discarded or failed) by creating a new one. A
//! `PATCH` answered as a success whose offset did not move took nothing (a proxy
//! dropping bodies): it counts as a failed attempt — ask the offset, back off — never
//! as progress, so a peer that always answers so ends the upload within its attempts
//! instead of the same chunk being resent forever.
//!
//! 429 `too_many_uploads` (the account holds as many unfinished uploads as the server
//! allows) is not retried: nothing was sent, and the file is [`Uploaded::Deferred`] to
//! the next sync, where the uploads this device left unfinished are resumed first.
//!
//! Every other refusal is final for this file only: 413 (over the server's limit), 422
//! (the finished file did not match its SHA-256 or is not a JPEG/PNG), and any other
//! 4xx but 401 (400, 403 or 415 from the server or a proxy in between, a 404 to the
//! creation itself). The file is reported [`Uploaded::Refused`] and its saved upload URL
//! forgotten, so the sync goes on with the other files, the pull and the downloads, and
//! the next sync tries the file afresh. 401 ends the sync (log in again); transient
//! failures are retried; what is left (the store, an answer this version cannot read,
//! an upload `Location` on another host than the server's) ends the sync.
//!
//! A file given up on this device (gone, or no longer the file its record signed:
//! [`Uploaded::Damaged`]) has its unfinished upload ended on the server (tus termination,
//! [`abandon`]), so it does not hold one of the account's places until it expires.
//!
//! The bearer token goes to the server's origin only ([`ApiClient::follows`]): a saved
//! upload URL on another origin (saved by an earlier version, which followed any
//! `Location`) is forgotten and the file starts afresh.

use std::time::Instant;

use bangfu_shared::visit::sha256_hex;

use super::retry::Attempts;
use super::{Reporter, SyncOptions};
use crate::api::{ApiClient, STALLED};
use crate::error::{ClientError, Result};
use crate::store::Store;

/// The smallest chunk a weak link falls back to.
pub const MIN_CHUNK: usize = 16 * 1024;

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uploaded {
    /// The server has the whole file (now, or already had it).
    Complete {
        /// Bytes this call sent in successful `PATCH`es.
        sent: u64,
        /// The server's offset when this call first asked (> 0: a resumed upload).
        resumed_from: u64,
    },
    /// The server (or a proxy) refused the file for good (413, 422, another 4xx); the
    /// reason is for the helper.
    Refused(String),
    /// The file on this device no longer has the hash its record signed: nothing was
    /// sent, and sending it again cannot help.
    Damaged,
    /// The server takes no new upload from this account for now (429
    /// [`TOO_MANY_UPLOADS`]: the account holds as many unfinished uploads as it may, on
    /// this device or another). Nothing was sent and nothing is wrong with the file:
    /// retrying within the run cannot help, the next sync offers it again. The server's
    /// words, for the helper.
    Deferred(String),
}

/// The server's code for a creation refused because the account holds too many
/// unfinished uploads (docs/sync-protocol.md §4).
pub const TOO_MANY_UPLOADS: &str = "too_many_uploads";

/// The server's code for a request to an upload while another request's bytes are
/// still arriving (a killed run's PATCH the server has not seen end): waited out, not
/// counted as a failure (QA s25c F3).
pub const UPLOAD_IN_PROGRESS: &str = "upload_in_progress";

/// How long to wait before asking again about an upload still receiving another
/// request's bytes, and how many such waits a file takes before they count as failures:
/// together longer than the server holds an upload for a silent connection (30 s).
const IN_PROGRESS_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);
const IN_PROGRESS_WAITS: u32 = 25;

/// Uploads `bytes` (whose SHA-256 is `sha256`) in chunks of at most
/// `opts.chunk_bytes`, retrying under `opts.retry` until `deadline`.
pub async fn upload(
    api: &ApiClient,
    store: &Store,
    sha256: &str,
    bytes: &[u8],
    opts: &SyncOptions,
    deadline: Instant,
    reporter: &mut Reporter<'_>,
) -> Result<Uploaded> {
    let (max_chunk, checksum) = (opts.chunk_bytes, opts.checksum);
    if sha256_hex(bytes) != sha256 {
        abandon(api, store, sha256).await?;
        return Ok(Uploaded::Damaged);
    }
    let length = bytes.len() as u64;
    let max_chunk = max_chunk.max(MIN_CHUNK);
    let mut chunk = max_chunk;
    let mut url = store.upload_url(sha256).await?;
    if url.as_deref().is_some_and(|u| !api.follows(u)) {
        store.forget_upload(sha256).await?;
        url = None;
    }
    // The offset the server reported last, if nothing since may have moved it.
    let mut offset: Option<u64> = None;
    // Where this file stands in the progress report.
    let mut reported: u64 = 0;
    let mut resumed_from: Option<u64> = None;
    let mut sent: u64 = 0;
    let mut successes_in_a_row = 0u32;
    let mut attempts = Attempts::new(opts.budget(), deadline);
    let mut waits = 0u32;
    loop {
        let step: Result<u64> = async {
            let u = match &url {
                Some(u) => u.clone(),
                None => {
                    // The first chunk travels with the creation (creation-with-upload).
                    let first = bytes.get(..chunk.min(bytes.len())).unwrap_or_default();
                    let n = first.len() as u64;
                    let created = api
                        .tus_create(sha256, length, first.to_vec(), checksum)
                        .await?;
                    store.save_upload(sha256, &created.url, length).await?;
                    url = Some(created.url.clone());
                    // The server took the chunk unless it already held (some of) the file.
                    let took = created.offset == n;
                    if took {
                        sent += n;
                    }
                    if resumed_from.is_none() {
                        resumed_from = Some(if took { 0 } else { created.offset });
                    }
                    offset = Some(created.offset);
                    created.url
                }
            };
            let at = match offset.take() {
                Some(o) => o,
                None => api.tus_head(&u).await?,
            };
            if resumed_from.is_none() {
                resumed_from = Some(at);
            }
            reporter.file_at(&mut reported, at.min(length));
            if at >= length {
                return Ok(at);
            }
            let start = usize::try_from(at).unwrap_or(bytes.len()).min(bytes.len());
            let end = start.saturating_add(chunk).min(bytes.len());
            let body = bytes.get(start..end).unwrap_or_default().to_vec();
            let n = body.len() as u64;
            let next = api.tus_patch(&u, at, body, checksum).await?;
            sent += n;
            offset = Some(next);
            reporter.file_at(&mut reported, next.min(length));
            Ok(next)
        }
        .await;
        match step {
            Ok(at) if at >= length => {
                store.forget_upload(sha256).await?;
                return Ok(Uploaded::Complete {
                    sent,
                    resumed_from: resumed_from.unwrap_or(0),
                });
            }
            Ok(_) => {
                attempts.progressed();
                successes_in_a_row += 1;
                if successes_in_a_row >= 4 && chunk < max_chunk {
                    chunk = chunk.saturating_mul(2).min(max_chunk);
                    successes_in_a_row = 0;
                }
            }
            Err(e) => {
                successes_in_a_row = 0;
                offset = None;
                match e.status() {
                    Some(404) if url.is_some() => {
                        // The upload is gone from the server: start another.
                        store.forget_upload(sha256).await?;
                        url = None;
                    }
                    Some(401) => return Err(ClientError::SessionExpired),
                    // A 429 like no other: it frees when uploads finish or expire, not
                    // with time, so it ends this file's turn instead of being retried.
                    Some(429) if is_code(&e, TOO_MANY_UPLOADS) => {
                        return Ok(Uploaded::Deferred(e.to_string()));
                    }
                    // Another request's bytes still arriving: wait, then ask again.
                    Some(409) if is_code(&e, UPLOAD_IN_PROGRESS) && waits < IN_PROGRESS_WAITS => {
                        waits += 1;
                        reporter.retrying(&e, Some(IN_PROGRESS_PAUSE));
                        tokio::time::sleep(IN_PROGRESS_PAUSE).await;
                        reporter.retrying(&e, None);
                        continue;
                    }
                    Some(409 | 460) => {}
                    // Took nothing: ask the offset again (`offset` is cleared) and back off.
                    _ if is_stalled(&e) => {}
                    // A smaller chunk helps a link that breaks mid-body, not a server
                    // that cannot be reached or is down (QA s25c F7).
                    _ if e.is_transient() => {
                        if cut_mid_way(&e) {
                            chunk = (chunk / 2).max(MIN_CHUNK);
                        }
                    }
                    // Final for this file, not for the sync (see the module documentation).
                    Some(400..=499) => {
                        store.forget_upload(sha256).await?;
                        return Ok(Uploaded::Refused(e.to_string()));
                    }
                    _ => return Err(e),
                }
                match attempts.failed() {
                    Some(pause) => {
                        reporter.retrying(&e, Some(pause));
                        tokio::time::sleep(pause).await;
                        reporter.retrying(&e, None);
                    }
                    None => return Err(e),
                }
            }
        }
    }
}

/// Ends the server's unfinished upload of a file this device gives up (gone from the
/// device, or no longer the file its record signed), if one was started: it would hold
/// one of the account's places for unfinished uploads until it expired (QA s25a F12).
/// The saved URL is forgotten once the server holds no such upload (ended, gone, or
/// complete), or refuses for good (a server without termination); a failure that may
/// pass (no link, the server busy, the session expired) keeps it, so the next sync,
/// giving the file up again, ends it then. Only the store's errors are returned: the
/// sync goes on either way.
pub async fn abandon(api: &ApiClient, store: &Store, sha256: &str) -> Result<()> {
    let Some(url) = store.upload_url(sha256).await? else {
        return Ok(());
    };
    let ended = !api.follows(&url)
        || match api.tus_terminate(&url).await {
            Ok(()) => true,
            Err(e) => {
                !e.is_transient() && e.status() != Some(401) && !is_code(&e, UPLOAD_IN_PROGRESS)
            }
        };
    if ended {
        store.forget_upload(sha256).await?;
    }
    Ok(())
}

/// A connection that broke off or went unanswered while a chunk was on the way, as
/// opposed to one never made or a server's own failure.
fn cut_mid_way(e: &ClientError) -> bool {
    matches!(e, ClientError::Network(m) if !m.starts_with("cannot reach"))
}

/// A `PATCH` that succeeded without moving the offset ([`ApiClient::tus_patch`]).
fn is_stalled(e: &ClientError) -> bool {
    is_code(e, STALLED)
}

/// Whether `e` is a server answer with the stable code `wanted`.
fn is_code(e: &ClientError, wanted: &str) -> bool {
    matches!(e, ClientError::Server { code, .. } if code == wanted)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]
mod tests {
    //! The uploader against a misbehaving peer: a loopback tus endpoint that answers
    //! the way a broken proxy or a filtering gateway does. The real server's answers
    //! are tested end to end in `tests/tests/client_sync.rs` and `client_robustness.rs`.

    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    use std::sync::{Arc, Mutex};

    /// QA s25c F7: a server that cannot be reached, or answers 5xx, does not shrink the
    /// chunks; a link that breaks while one is on the way does.
    #[test]
    fn only_a_link_cut_mid_way_halves_the_chunk() {
        use super::{ClientError, cut_mid_way};
        let net = |m: &str| ClientError::Network(m.into());
        assert!(cut_mid_way(&net(
            "connection to http://h:1 broke off: reset"
        )));
        assert!(cut_mid_way(&net("no answer from http://h:1: timed out")));
        assert!(!cut_mid_way(&net("cannot reach http://h:1: refused")));
        let busy = ClientError::Server {
            status: 503,
            code: "busy".into(),
            message: String::new(),
        };
        assert!(!cut_mid_way(&busy));
    }
    use std::time::Duration;

    use super::*;
    use crate::sync::{Reporter, RetryPolicy};

    /// Answers each request (method, path) with the status line, headers and body
    /// `answer` gives; records the methods seen.
    fn peer(
        answer: impl Fn(&str, &str) -> (&'static str, String, String) + Send + Sync + 'static,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, answer) = (seen.clone(), Arc::new(answer));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (log, answer) = (log.clone(), answer.clone());
                std::thread::spawn(move || {
                    let mut out = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let method = parts.next().unwrap_or_default().to_string();
                        let path = parts.next().unwrap_or_default().to_string();
                        let mut length = 0usize;
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            if h.trim().is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':')
                                && k.eq_ignore_ascii_case("content-length")
                            {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0u8; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        log.lock().unwrap().push(method.clone());
                        let (status, headers, text) = answer(&method, &path);
                        let reply = format!(
                            "HTTP/1.1 {status}\r\nTus-Resumable: 1.0.0\r\n{headers}\
                             Content-Length: {}\r\n\r\n{}",
                            text.len(),
                            if method == "HEAD" { "" } else { text.as_str() }
                        );
                        if out.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (format!("http://{addr}"), seen)
    }

    fn options(max_attempts: u32) -> SyncOptions {
        SyncOptions {
            chunk_bytes: MIN_CHUNK,
            retry: RetryPolicy {
                max_attempts,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
            },
            ..SyncOptions::default()
        }
    }

    async fn run(
        base: &str,
        opts: &SyncOptions,
        dir: &std::path::Path,
    ) -> (Result<Uploaded>, Store) {
        let store = Store::open(&dir.join("store.sqlite3")).await.unwrap();
        let api = ApiClient::new(base).unwrap();
        let bytes: Vec<u8> = (0..3 * MIN_CHUNK).map(|i| (i % 251) as u8).collect();
        let sha = sha256_hex(&bytes);
        let sink = |_: &super::super::SyncProgress| {};
        let mut reporter = Reporter::new(&sink);
        let deadline = Instant::now() + Duration::from_secs(60);
        let got = tokio::time::timeout(
            Duration::from_secs(20),
            upload(&api, &store, &sha, &bytes, opts, deadline, &mut reporter),
        )
        .await
        .expect("the upload ends instead of looping");
        (got, store)
    }

    /// A proxy that answers every PATCH 204 without taking the bytes: the uploader used
    /// to count that as progress and resend the same chunk forever.
    #[tokio::test]
    async fn a_peer_that_never_takes_a_chunk_ends_the_upload_within_its_attempts() {
        let (base, seen) = peer(|method, _| match method {
            "POST" => (
                "201 Created",
                "Location: /api/v1/files/1\r\nUpload-Offset: 0\r\n".into(),
                String::new(),
            ),
            _ => (
                "204 No Content",
                "Upload-Offset: 0\r\n".into(),
                String::new(),
            ),
        });
        let dir = tempfile::tempdir().unwrap();
        let (got, _) = run(&base, &options(4), dir.path()).await;
        let err = got.expect_err("no progress is a failure");
        assert!(
            matches!(&err, ClientError::Server { code, .. } if code == STALLED),
            "{err:?}"
        );
        assert!(err.to_string().contains("offset stayed at 0"), "{err}");
        let seen = seen.lock().unwrap().clone();
        let patches = seen.iter().filter(|m| *m == "PATCH").count();
        assert_eq!(patches, 4, "one PATCH per attempt: {seen:?}");
        assert_eq!(
            seen.iter().filter(|m| *m == "HEAD").count(),
            3,
            "the offset is asked again after each stalled PATCH: {seen:?}"
        );
    }

    /// A loopback listener standing for another host: counts the connections it gets.
    fn foreign_host() -> (String, Arc<Mutex<usize>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(0));
        let count = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                *count.lock().unwrap() += 1;
                drop(stream);
            }
        });
        (format!("http://{addr}"), hits)
    }

    /// A `Location` on another origin (a proxy rewriting answers, a tampered server)
    /// is not followed: the token never reaches it, the creation is not retried, the
    /// URL is not saved, and the error says why.
    #[tokio::test]
    async fn an_upload_sent_to_another_host_is_not_followed() {
        let (foreign, hits) = foreign_host();
        let location = format!("Location: {foreign}/api/v1/files/1\r\nUpload-Offset: 0\r\n");
        let (base, seen) = peer(move |_, _| ("201 Created", location.clone(), String::new()));
        let dir = tempfile::tempdir().unwrap();
        let (got, store) = run(&base, &options(8), dir.path()).await;
        let err = got.expect_err("a foreign Location ends the upload");
        assert!(
            matches!(&err, ClientError::Server { code, .. } if code == crate::api::FOREIGN_LOCATION),
            "{err:?}"
        );
        assert!(!err.is_transient(), "{err}");
        assert!(err.to_string().contains("another address"), "{err}");
        assert_eq!(*seen.lock().unwrap(), ["POST"], "not retried");
        assert_eq!(*hits.lock().unwrap(), 0, "nothing went to the other host");
        let bytes: Vec<u8> = (0..3 * MIN_CHUNK).map(|i| (i % 251) as u8).collect();
        assert_eq!(store.upload_url(&sha256_hex(&bytes)).await.unwrap(), None);
    }

    /// A saved upload URL on another origin (saved by a version that followed any
    /// `Location`) is dropped: the file starts afresh on the server.
    #[tokio::test]
    async fn a_saved_upload_url_on_another_host_is_dropped() {
        let (foreign, hits) = foreign_host();
        let (base, seen) = peer(|method, _| match method {
            "POST" => (
                "201 Created",
                format!(
                    "Location: /api/v1/files/1\r\nUpload-Offset: {}\r\n",
                    3 * MIN_CHUNK
                ),
                String::new(),
            ),
            _ => ("404 Not Found", String::new(), String::new()),
        });
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.sqlite3"))
            .await
            .unwrap();
        let bytes: Vec<u8> = (0..3 * MIN_CHUNK).map(|i| (i % 251) as u8).collect();
        store
            .save_upload(
                &sha256_hex(&bytes),
                &format!("{foreign}/api/v1/files/9"),
                bytes.len() as u64,
            )
            .await
            .unwrap();
        drop(store);
        let (got, _) = run(&base, &options(2), dir.path()).await;
        assert!(matches!(got, Ok(Uploaded::Complete { .. })), "{got:?}");
        assert_eq!(*seen.lock().unwrap(), ["POST"]);
        assert_eq!(*hits.lock().unwrap(), 0, "nothing went to the other host");
    }

    /// A refusal the uploader has no special case for is final for this file only: it
    /// comes back as `Refused` (the sync goes on), at once, without a saved upload URL.
    #[tokio::test]
    async fn any_other_refusal_is_final_for_the_file_not_the_sync() {
        let html = "<html><head><title>Request blocked</title></head><body>policy</body></html>";
        let cases: Vec<(&str, &'static str, String, &str)> = vec![
            (
                "POST",
                "403 Forbidden",
                html.into(),
                "403 Forbidden with an HTML page (“Request blocked”",
            ),
            (
                "POST",
                "404 Not Found",
                String::new(),
                "404 Not Found with no explanation",
            ),
            (
                "POST",
                "400 Bad Request",
                "bad metadata".into(),
                "400 Bad Request: bad metadata",
            ),
            (
                "PATCH",
                "415 Unsupported Media Type",
                String::new(),
                "415 Unsupported Media Type",
            ),
        ];
        for (refused, status, body, says) in cases {
            let (base, seen) = peer(move |method, _| {
                if method == refused {
                    return (status, String::new(), body.clone());
                }
                match method {
                    "POST" => (
                        "201 Created",
                        "Location: /api/v1/files/1\r\nUpload-Offset: 0\r\n".into(),
                        String::new(),
                    ),
                    _ => ("200 OK", "Upload-Offset: 0\r\n".into(), String::new()),
                }
            });
            let dir = tempfile::tempdir().unwrap();
            let (got, store) = run(&base, &options(8), dir.path()).await;
            match got {
                Ok(Uploaded::Refused(reason)) => {
                    assert!(reason.contains(says), "{status}: {reason}")
                }
                other => panic!("{status}: {other:?}"),
            }
            let seen = seen.lock().unwrap().clone();
            assert_eq!(
                seen.iter().filter(|m| *m == refused).count(),
                1,
                "{status} is not retried: {seen:?}"
            );
            let bytes: Vec<u8> = (0..3 * MIN_CHUNK).map(|i| (i % 251) as u8).collect();
            assert_eq!(
                store.upload_url(&sha256_hex(&bytes)).await.unwrap(),
                None,
                "{status}: the next sync starts the file afresh"
            );
        }
    }
}
