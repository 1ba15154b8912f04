//! tus termination: a client ends an unfinished upload it will never finish (`DELETE`),
//! so its place under the account's limit is freed now, not at its expiry (QA s25a F12).
//! Only the owner ends it, a complete upload stays, and one with a PATCH in progress is
//! left whole. A PATCH gone silent does not hold its upload for ever either.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::db_test;
use bangfu_shared::visit::sha256_hex;
use bangfu_tests::TestDb;
use bangfu_tests::field::{jpeg, tus_create, tus_patch, tus_request};
use bangfu_tests::scenario::Field;
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `DELETE` of a tus upload, as `token`.
async fn terminate(f: &Field, url: &str, token: &str) -> reqwest::Response {
    tus_request(&f.w.http, Method::DELETE, url, token).await
}

async fn head_status(f: &Field, url: &str) -> StatusCode {
    tus_request(&f.w.http, Method::HEAD, url, &f.token)
        .await
        .status()
}

/// The status of a creation of an upload of `bytes`, as the helper.
async fn create_status(f: &Field, bytes: &[u8]) -> StatusCode {
    let sha = sha256_hex(bytes);
    tus_create(&f.w.http, &f.origin, &f.token, bytes.len(), &sha)
        .await
        .0
}

/// Where the local store keeps an unfinished upload's bytes.
fn partial_file(f: &Field, url: &str) -> std::path::PathBuf {
    let id = url.rsplit('/').next().unwrap();
    f.w.settings.data_dir.join("files").join("uploads").join(id)
}

async fn error_of(resp: reqwest::Response) -> serde_json::Value {
    resp.json().await.unwrap()
}

db_test!(a_terminated_upload_is_gone_and_frees_its_place, terminated);

/// Two unfinished uploads fill a limit of two; ending one (after part of it was sent)
/// removes its row and bytes, answers 404 to HEAD and PATCH after, and lets a new
/// upload be created. Nobody else ends it, and OPTIONS says the server can.
async fn terminated(t: &TestDb) {
    let f = Field::with(t, |s| s.max_unfinished_uploads = 2).await;
    let options =
        f.w.http
            .request(reqwest::Method::OPTIONS, f.w.server.url("/files"))
            .send()
            .await
            .unwrap();
    let extensions = options.headers()["tus-extension"].to_str().unwrap();
    assert!(
        extensions.split(',').any(|e| e == "termination"),
        "{extensions}"
    );

    let (photo, other, third) = (jpeg(30, 1), jpeg(30, 2), jpeg(30, 3));
    let url = f.create_upload(&photo).await;
    let sent = tus_patch(&f.w.http, &url, &f.token, 0, photo[..1000].to_vec())
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::NO_CONTENT);
    assert!(partial_file(&f, &url).exists(), "the part sent is held");
    f.create_upload(&other).await;
    assert_eq!(
        create_status(&f, &third).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Not the caller's: another helper, an office account, no tus version.
    let (stranger, _) = f.second_helper(t).await;
    let resp = terminate(&f, &url, &stranger).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "another helper's");
    assert_eq!(error_of(resp).await["error"], "not_found");
    let resp = terminate(&f, &url, &f.county).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "an office account");
    let resp =
        f.w.http
            .delete(&url)
            .bearer_auth(&f.token)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::PRECONDITION_FAILED, "no tus");
    assert_eq!(head_status(&f, &url).await, StatusCode::OK, "still there");

    let resp = terminate(&f, &url, &f.token).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(resp.headers()["tus-resumable"], "1.0.0");
    assert!(!partial_file(&f, &url).exists(), "its bytes went too");
    assert_eq!(head_status(&f, &url).await, StatusCode::NOT_FOUND);
    let resp = tus_patch(&f.w.http, &url, &f.token, 1000, photo[1000..].to_vec())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        terminate(&f, &url, &f.token).await.status(),
        StatusCode::NOT_FOUND,
        "ended once"
    );
    let status = create_status(&f, &third).await;
    assert_eq!(status, StatusCode::CREATED, "the terminated upload's place");
    // The file ended is a new upload when created again, not the one ended: refused
    // here because the account is at its limit again.
    let status = create_status(&f, &photo).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "not handed back");
}

db_test!(a_complete_upload_is_not_terminated, complete);

/// A finished upload is a file the server keeps: `DELETE` is refused with a conflict
/// saying so, and the file stays downloadable.
async fn complete(t: &TestDb) {
    let f = Field::new(t).await;
    let photo = jpeg(30, 5);
    let url = f.create_upload(&photo).await;
    let done = tus_patch(&f.w.http, &url, &f.token, 0, photo.clone())
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);

    let resp = terminate(&f, &url, &f.token).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let body = error_of(resp).await;
    assert_eq!(body["error"], "conflict", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("the upload is complete") && message.contains("keeps the file"),
        "{message}"
    );
    assert_eq!(head_status(&f, &url).await, StatusCode::OK);
    let (status, bytes) =
        f.w.get_bytes(&f.token, &format!("/blobs/{}", sha256_hex(&photo)))
            .await;
    assert_eq!((status, bytes == photo), (StatusCode::OK, true));
}

db_test!(an_upload_being_sent_is_not_terminated, busy);

/// While a PATCH is receiving bytes the upload is busy: `DELETE` answers 409
/// `upload_in_progress` (not a busy database, QA s25d F7) and removes nothing; once
/// the PATCH ends, the upload is ended.
async fn busy(t: &TestDb) {
    let f = Field::new(t).await;
    let photo = jpeg(30, 6);
    let url = f.create_upload(&photo).await;
    let patch = silent_patch(&f, &url, &photo).await;

    let resp = terminate(&f, &url, &f.token).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert_eq!(error_of(resp).await["error"], "upload_in_progress");

    drop(patch);
    let mut status = StatusCode::CONFLICT;
    for _ in 0..100 {
        status = terminate(&f, &url, &f.token).await.status();
        if status != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, StatusCode::NO_CONTENT, "once the PATCH ended");
    assert_eq!(head_status(&f, &url).await, StatusCode::NOT_FOUND);
}

/// A PATCH of `photo` to `url` that sends its headers and the first 100 bytes, then
/// goes silent with its connection open (a phone gone out of coverage), once the server
/// holds the upload for it.
async fn silent_patch(f: &Field, url: &str, photo: &[u8]) -> tokio::net::TcpStream {
    // A probe takes the upload for an instant: a PATCH arriving then is refused "in
    // progress" and never holds it, so it is sent again.
    for _ in 0..5 {
        let patch = open_patch(f, url, photo).await;
        if wait_busy(f, url, photo.len()).await {
            return patch;
        }
    }
    panic!("the PATCH never started");
}

/// [`silent_patch`] without waiting for the server to take it up.
async fn open_patch(f: &Field, url: &str, photo: &[u8]) -> tokio::net::TcpStream {
    let path = url.trim_start_matches(&f.origin).to_string();
    let mut patch = tokio::net::TcpStream::connect(f.w.server.addr)
        .await
        .unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
        f.w.server.addr,
        f.token,
        photo.len()
    );
    patch.write_all(head.as_bytes()).await.unwrap();
    patch.write_all(&photo[..100]).await.unwrap();
    patch.flush().await.unwrap();
    patch
}

db_test!(a_silent_connection_does_not_hold_its_upload, silent);

/// QA s25c F2: a PATCH whose connection goes silent without closing is taken as cut
/// after `upload_idle_secs`: the bytes it brought are kept and the client's next
/// request resumes from them, instead of "in progress" for as long as the dead
/// connection stays open.
async fn silent(t: &TestDb) {
    let f = Field::with(t, |s| s.upload_idle_secs = 1).await;
    let photo = jpeg(30, 8);
    let url = f.create_upload(&photo).await;
    // Not waited for as busy: on a loaded machine the second of silence may pass first.
    let mut dead = open_patch(&f, &url, &photo).await;
    let mut offset = 0;
    for _ in 0..200 {
        offset = bangfu_tests::field::tus_offset(&f.w.http, &url, &f.token).await;
        if offset == 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(offset, 100, "the bytes before the silence are kept");
    // Answered as a timeout a client retries, not as the file refused (QA s25d F1).
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), dead.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.contains("upload_idle"),
        "{answer}"
    );
    let resp = tus_patch(&f.w.http, &url, &f.token, 100, photo[100..].to_vec())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, bytes) =
        f.w.get_bytes(&f.token, &format!("/blobs/{}", sha256_hex(&photo)))
            .await;
    assert_eq!((status, bytes == photo), (StatusCode::OK, true));
}

/// Waits until a PATCH holds the upload at `url` (of `length` bytes): a probe past its
/// length is refused as a PATCH in progress rather than as a wrong offset, and takes
/// nothing either way.
async fn wait_busy(f: &Field, url: &str, length: usize) -> bool {
    // Up to 4 s: a loaded 2-core machine may take a while to start the PATCH.
    for _ in 0..200 {
        let probe = tus_patch(&f.w.http, url, &f.token, length as u64 + 1, vec![0])
            .await
            .unwrap();
        let body = error_of(probe).await;
        if body["error"] == "upload_in_progress" {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

db_test!(the_files_path_names_delete_among_its_methods, allow);

/// A method `/files/{id}` does not answer gets a 405 naming DELETE with HEAD and PATCH,
/// and the API's description lists DELETE there.
async fn allow(t: &TestDb) {
    let f = Field::new(t).await;
    let url = f.create_upload(&jpeg(30, 7)).await;
    let resp = tus_request(&f.w.http, Method::PUT, &url, &f.token).await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "HEAD, PATCH, DELETE");
    let (status, doc) = f.w.get(None, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let delete = &doc["paths"]["/api/v1/files/{id}"]["delete"];
    assert!(delete["responses"]["409"].is_object(), "{delete}");
}

db_test!(
    a_duplicate_upload_left_by_a_killed_run_holds_no_place,
    duplicate
);

/// QA s25c F1: a run killed while its creation-with-upload was still arriving, and the
/// next run's creation of the same file (which found no upload yet, so made another):
/// once the first is stored, the second is discarded, and an unfinished upload of a
/// file the server holds never counts toward the account's limit.
async fn duplicate(t: &TestDb) {
    use base64::Engine;

    let f = Field::with(t, |s| s.max_unfinished_uploads = 2).await;
    let photo = jpeg(30, 9);
    let sha = sha256_hex(&photo);
    let mut first = tokio::net::TcpStream::connect(f.w.server.addr)
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/files HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Tus-Resumable: 1.0.0\r\nUpload-Length: {len}\r\nUpload-Metadata: sha256 {}\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: {len}\r\n\r\n",
        f.w.server.addr,
        f.token,
        base64::engine::general_purpose::STANDARD.encode(&sha),
        len = photo.len()
    );
    first.write_all(head.as_bytes()).await.unwrap();
    first.write_all(&photo[..1000]).await.unwrap();
    first.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let second = f.create_upload(&photo).await;
    first.write_all(&photo[1000..]).await.unwrap();
    let mut answer = vec![0u8; 256];
    let n = first.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(
        !answer.contains(second.trim_start_matches(&f.origin)),
        "{answer}"
    );
    assert_eq!(head_status(&f, &second).await, StatusCode::NOT_FOUND);
    assert!(!partial_file(&f, &second).exists());

    // One left from before, of a file the account has since sent whole by another
    // upload, is not counted either.
    use bangfu_server::entities::{blob, upload};
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let account = f.w.get(Some(&f.token), "/me").await.1["account_id"]
        .as_i64()
        .unwrap();
    let other = jpeg(30, 10);
    let leftover = f.create_upload(&other).await;
    let sent = |sha: String, len: usize| upload::ActiveModel {
        id: Set(format!("{:032x}", len)),
        sha256: Set(Some(sha)),
        length: Set(len as i64),
        status: Set("complete".into()),
        account_id: Set(account),
        created_at: Set(chrono::Utc::now()),
        completed_at: Set(Some(chrono::Utc::now())),
    };
    upload::Entity::insert(sent(sha256_hex(&other), other.len()))
        .exec(&t.db)
        .await
        .unwrap();
    let one = f.create_upload(&jpeg(30, 11)).await;
    assert_eq!(
        create_status(&f, &jpeg(30, 12)).await,
        StatusCode::CREATED,
        "{leftover} holds no place"
    );
    // A file the server holds that this account never sent frees nothing: naming its
    // hash with other lengths opens no uploads past the limit (QA s25d F2).
    let ended = terminate(&f, &one, &f.token).await;
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let theirs = jpeg(30, 13);
    blob::Entity::insert(blob::ActiveModel {
        sha256: Set(sha256_hex(&theirs)),
        size: Set(theirs.len() as i64),
        content_type: Set("image/jpeg".into()),
        created_at: Set(chrono::Utc::now()),
    })
    .exec(&t.db)
    .await
    .unwrap();
    let named = |len: usize| {
        let sha = sha256_hex(&theirs);
        let (http, origin, token) = (f.w.http.clone(), f.origin.clone(), f.token.clone());
        async move { tus_create(&http, &origin, &token, len, &sha).await.0 }
    };
    assert_eq!(named(theirs.len() + 1).await, StatusCode::CREATED);
    assert_eq!(named(theirs.len() + 2).await, StatusCode::TOO_MANY_REQUESTS);
}
