//! Requests built to hurt the server or reach what is not the caller's: oversized and
//! concurrent login guesses, sequence numbers chosen to blow up the office's anomaly
//! view, page numbers past a 64-bit offset, and downloads of a photo by its hash alone.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use std::time::Duration;

use bangfu_server::db_test;
use bangfu_shared::visit::{MAX_SAFE_INTEGER, sha256_hex};
use bangfu_tests::field::{Device, jpeg, png, tus_create, tus_offset, upload};
use bangfu_tests::scenario::Field;
use bangfu_tests::{PASSWORD, TestDb, World, enroll_directly};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The fixture town (东城镇) and a generated one (西港镇); 黄志强, first helper of
/// 田晓东 in 东城镇, logged in with a registered device; and the first helper of 西港镇
/// (see [`other_town_helper`]) enrolled.
async fn field(t: &TestDb) -> Field {
    let f = Field::two_towns(t, |_| {}).await;
    enroll_directly(t, &f.w, other_town_helper(&f)).await;
    f
}

/// A first helper of 西港镇, not paired with any household of 东城镇.
fn other_town_helper(f: &Field) -> &str {
    &f.other_town().rows[0].first.phone
}

/// A login or enrollment with a megabyte username, or a password or code over 1 KiB, is
/// refused at once with 400 naming the field, and costs the account nothing: the
/// throttle does not count it against the real user.
async fn oversized_credentials(t: &TestDb) {
    let w = World::new(t).await;
    let huge = "a".repeat(1_000_000);
    let long = "p".repeat(1_025);
    let cases = [
        (
            "/auth/login",
            json!({ "username": huge, "password": "x" }),
            "username",
        ),
        (
            "/auth/login",
            json!({ "username": "admin", "password": long }),
            "password",
        ),
        (
            "/auth/enroll",
            json!({ "username": huge, "code": "ABCD", "new_password": "long enough" }),
            "username",
        ),
        (
            "/auth/enroll",
            json!({ "username": "13800000000", "code": long, "new_password": "long enough" }),
            "code",
        ),
        (
            "/auth/enroll",
            json!({ "username": "13800000000", "code": "ABCD", "new_password": long }),
            "new_password",
        ),
    ];
    for (path, body, field) in &cases {
        for _ in 0..3 {
            let (status, answer) = w.post_json(None, path, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {field}: {answer}");
            assert_eq!(answer["error"], "bad_request");
            let message = answer["message"].as_str().unwrap();
            assert!(
                message.starts_with(&format!("{field} is too long")),
                "{message}"
            );
        }
    }
    // Six oversized passwords for admin would have locked admin out had they counted.
    let (status, _) = w
        .post_json(
            None,
            "/auth/login",
            &json!({ "username": "admin", "password": long }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    w.login("admin").await;
    // The limits themselves are allowed: a 64-character username is merely unknown.
    let (status, answer) = w
        .post_json(
            None,
            "/auth/login",
            &json!({ "username": "a".repeat(64), "password": "p".repeat(1_024) }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
}
db_test!(
    oversized_credentials_are_refused_with_400,
    oversized_credentials
);

/// Guesses sent all at once are counted as they start: of twenty wrong passwords fired
/// together at one account, at most five are checked, the rest are refused with 429,
/// and the right password is refused afterwards too.
async fn concurrent_guesses(t: &TestDb) {
    let w = World::new(t).await;
    let url = w.server.url("/auth/login");
    let guesses: Vec<_> = (0..20)
        .map(|i| {
            let (http, url) = (w.http.clone(), url.clone());
            let body = json!({ "username": "admin", "password": format!("guess-{i}") });
            tokio::spawn(async move {
                let resp = http.post(url).json(&body).send().await.unwrap();
                let status = resp.status();
                (status, resp.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for g in guesses {
        answers.push(g.await.unwrap());
    }
    let checked = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::TOO_MANY_REQUESTS && b["error"] == "too_many_attempts")
        .count();
    assert!(checked <= 5, "{checked} guesses were checked: {answers:?}");
    assert_eq!(checked + refused, 20, "{answers:?}");
    let (status, body) = w
        .post_json(
            None,
            "/auth/login",
            &json!({ "username": "admin", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}
db_test!(concurrent_guesses_cannot_pass_the_limit, concurrent_guesses);

/// A device may claim any sequence number up to 2^53−1. A jump leaves one gap entry
/// per run of missing numbers, not one per number, and the office's view answers at
/// once.
async fn huge_gaps(t: &TestDb) {
    let mut f = field(t).await;
    let first = f.device.phone_call(f.household);
    f.device.seq = 999_999_999;
    let billionth = f.device.phone_call(f.household);
    f.device.seq = MAX_SAFE_INTEGER - 1;
    let last = f.device.phone_call(f.household);
    f.push(&[first, billionth, last]).await;
    let county = f.w.login("county").await;
    let (status, anomalies) = tokio::time::timeout(
        Duration::from_secs(10),
        f.w.get(Some(&county), "/sync/anomalies"),
    )
    .await
    .unwrap_or_else(|_| panic!("the anomalies view did not answer within 10 s"));
    assert_eq!(status, StatusCode::OK, "{anomalies}");
    let gaps: Vec<&Value> = anomalies
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "gap")
        .collect();
    let ranges: Vec<(i64, i64)> = gaps
        .iter()
        .map(|g| (g["seq"].as_i64().unwrap(), g["seq_to"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        ranges,
        [(2, 999_999_999), (1_000_000_001, MAX_SAFE_INTEGER - 1)],
        "{anomalies}"
    );
    assert!(gaps.iter().all(|g| g["device_id"] == f.device.device_id));
    assert_eq!(
        gaps[0]["detail"],
        "records 2 to 999999999 of this device (999999998) have not arrived"
    );
}
db_test!(a_huge_sequence_jump_is_one_gap_entry, huge_gaps);

/// Page numbers whose offset does not fit the database's 64-bit OFFSET are a 400
/// naming `page`, not a crashed request; a merely large page is an empty one.
async fn huge_pages(t: &TestDb) {
    let w = World::new(t).await;
    let admin = w.login("admin").await;
    for query in [
        "page=9223372036854775809&per_page=1",
        "page=18446744073709551615&per_page=1",
        "page=18446744073709551615",
        "page=36893488147419104&per_page=500",
    ] {
        let (status, body) = w.get(Some(&admin), &format!("/households?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"], "bad_request");
        assert!(
            body["message"].as_str().unwrap().starts_with("page "),
            "{query}: {body}"
        );
    }
    for query in ["page=9223372036854775808&per_page=1", "page=1000000"] {
        let (status, body) = w.get(Some(&admin), &format!("/households?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(body["items"].as_array().map(Vec::len), Some(0), "{body}");
    }
    // Zero is refused, naming the parameter, not read as 1; a page larger than the
    // server serves is refused the same way, not cut to 500 without a word (a client
    // asking for "all" in one page would miss the rest, QA s23 F4).
    for (query, name) in [
        ("page=0", "page: "),
        ("per_page=0", "per_page: "),
        ("per_page=501", "per_page: "),
        ("per_page=100000", "per_page: "),
        ("per_page=18446744073709551615", "per_page: "),
    ] {
        let (status, body) = w.get(Some(&admin), &format!("/households?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"], "bad_request", "{query}: {body}");
        assert!(
            body["message"].as_str().unwrap().starts_with(name),
            "{query}: {body}"
        );
    }
    let (status, body) = w.get(Some(&admin), "/households?per_page=100000").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"], "per_page: 1 to 500 households a page, got 100000",
        "{body}"
    );
    let (status, body) = w.get(Some(&admin), "/households?per_page=500").await;
    assert_eq!(status, StatusCode::OK, "the largest page is served: {body}");
    assert_eq!(body["per_page"], 500, "{body}");
    let (status, _) = w.get(Some(&admin), "/me").await;
    assert_eq!(status, StatusCode::OK, "the server still serves");
}
db_test!(a_page_past_a_64_bit_offset_is_a_bad_request, huge_pages);

/// Knowing a photo's hash is not enough to download it: a helper of another town who
/// declares the hash in an upload (sending nothing, or being told the server has the
/// file) still gets 404. The helper who sent the bytes reads them back before any
/// record names them, and the county office through the record that does.
async fn blob_by_hash(t: &TestDb) {
    let mut f = field(t).await;
    let (photo, sig) = (jpeg(30, 7), png(7));
    let sha = sha256_hex(&photo);
    let path = format!("/blobs/{sha}");
    assert_eq!(
        upload(&f.w.http, &f.origin, &f.token, &photo).await,
        StatusCode::NO_CONTENT
    );
    let (status, bytes) = f.w.get_bytes(&f.token, &path).await;
    assert_eq!(
        (status, bytes),
        (StatusCode::OK, photo.clone()),
        "the uploader reads back its own upload before any record names it"
    );

    let other = f.w.login(other_town_helper(&f)).await;
    let (status, _) = f.w.get_bytes(&other, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a stranger without a claim");
    // Declaring the hash with a wrong length leaves an unfinished upload.
    let (status, _) = tus_create(&f.w.http, &f.origin, &other, photo.len() + 1, &sha).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = f.w.get_bytes(&other, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an unfinished declaration");
    // With the right length the server holds the file, but does not take the
    // declaration for it: the stranger has to send the bytes.
    let (status, url) = tus_create(&f.w.http, &f.origin, &other, photo.len(), &sha).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        tus_offset(&f.w.http, &url.unwrap(), &other).await,
        0,
        "no upload finished on the strength of a hash"
    );
    let (status, _) = f.w.get_bytes(&other, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a declaration without bytes");

    // Once a record names the photo, its scope decides.
    let visit = f.device.home_visit(f.household, &photo, &sig);
    f.push(&[visit]).await;
    let county = f.w.login("county").await;
    let (status, bytes) = f.w.get_bytes(&county, &path).await;
    assert_eq!((status, bytes), (StatusCode::OK, photo.clone()));
    let (status, _) = f.w.get_bytes(&other, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another town's record");

    // A record of the stranger's own naming the hash opens nothing either (hashes are
    // on every record a helper or office reads), though the record is stored.
    let (_, me) = f.w.get(Some(&other), "/me").await;
    let other_id = me["helper"]["id"].as_i64().unwrap();
    let mut device = Device::register(&f.w, &other, other_id).await;
    let (_, page) = f.w.get(Some(&other), "/households").await;
    let theirs = page["items"][0]["id"].as_i64().unwrap();
    let claim = device.home_visit(theirs, &photo, &png(8));
    let (status, body) =
        f.w.post_json(Some(&other), "/sync/push", &json!({ "records": [claim] }))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(body["acks"][0]["status"], "rejected", "{body}");
    let (status, _) = f.w.get_bytes(&other, &path).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a record naming a file its helper never sent"
    );
    let (status, bytes) = f.w.get_bytes(&county, &path).await;
    assert_eq!(
        (status, bytes),
        (StatusCode::OK, photo.clone()),
        "the sender's record still opens it to the office"
    );
    // Sending the bytes proves holding them.
    assert_eq!(
        upload(&f.w.http, &f.origin, &other, &photo).await,
        StatusCode::NO_CONTENT
    );
    let (status, bytes) = f.w.get_bytes(&other, &path).await;
    assert_eq!((status, bytes), (StatusCode::OK, photo));
}
db_test!(a_photo_hash_alone_does_not_open_the_photo, blob_by_hash);

/// A login to an account not enrolled yet is answered and throttled as a wrong
/// password: after five such answers for one phone from one address the sixth login is
/// refused with 429. Enrolling is throttled apart, so the helper can still enroll with
/// their code.
async fn enrollment_required_is_throttled(t: &TestDb) {
    use bangfu_tests::scenario::{SECOND_HELPER, fixture_ledger};
    let w = World::new(t).await;
    fixture_ledger(t, &w).await;
    let login = json!({ "username": SECOND_HELPER, "password": "any password" });
    for i in 0..5 {
        let (status, body) = w.post_json(None, "/auth/login", &login).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}: {body}");
        assert_eq!(body["error"], "invalid_credentials", "attempt {i}");
    }
    let (status, body) = w.post_json(None, "/auth/login", &login).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_attempts");
    let enroll = json!({ "username": SECOND_HELPER, "code": "ZZZZZ-ZZZZZ", "new_password": "a good password" });
    let (status, body) = w.post_json(None, "/auth/enroll", &enroll).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}
db_test!(
    logins_to_accounts_not_enrolled_are_throttled_like_wrong_passwords,
    enrollment_required_is_throttled
);

/// Pushes over 4 MiB take one of the server's large-body slots from before their body
/// is read until they are answered, so a burst of them cannot take the server's memory
/// (QA s23c F12: six 30 MiB pushes of one account took it to 3 GB). They all still go
/// through, one slot per core at most at once.
async fn large_pushes_take_turns(t: &TestDb) {
    use bangfu_server::services::cpu_slots::{CpuSlots, LARGE_BODY};
    use bangfu_shared::VisitKind;
    use bangfu_shared::visit::{RecordType, VisitBody};
    let mut f = Field::new(t).await;
    let notes = "入户了解生产生活情况，".repeat(400);
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let records: Vec<_> = (0..500)
            .map(|_| {
                let mut v = VisitBody::new(VisitKind::Phone, chrono::Utc::now());
                v.notes = Some(notes.clone());
                f.device
                    .sign(f.household, RecordType::Visit, Some(v), None, None)
            })
            .collect();
        let body = serde_json::to_vec(&json!({ "records": records })).unwrap();
        assert!(body.len() > LARGE_BODY, "{} bytes", body.len());
        bodies.push(body);
    }
    let pushes: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            tokio::spawn(
                f.w.http
                    .post(f.w.server.url("/sync/push"))
                    .bearer_auth(&f.token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send(),
            )
        })
        .collect();
    for push in pushes {
        let resp = push.await.unwrap().unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["acks"].as_array().unwrap().len(), 500);
    }
    let peak = CpuSlots::large_bodies().peak();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    assert!((1..=cores).contains(&peak), "peak {peak} of {cores} slots");
}
db_test!(large_pushes_take_turns_for_memory, large_pushes_take_turns);

/// Opens a connection and sends a request head declaring `length` bytes of JSON body,
/// then `start` of it, and nothing more.
async fn silent_body(
    f: &Field,
    path: &str,
    token: Option<&str>,
    length: usize,
    start: &[u8],
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let mut conn = tokio::net::TcpStream::connect(f.w.server.addr)
        .await
        .unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /api/v1{path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n",
        f.w.server.addr
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(start).await.unwrap();
    conn.flush().await.unwrap();
    conn
}

/// What a connection is answered within `wait`.
async fn answer_of(conn: &mut tokio::net::TcpStream, wait: Duration) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut answer = vec![0u8; 2048];
    let n = tokio::time::timeout(wait, conn.read(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("no answer within {wait:?}"))
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).to_string()
}

/// QA s32b V2, V3: a body that goes silent is ended after `upload_idle_secs` with a 408
/// `body_idle`, as an upload's is: an unauthenticated login body no longer holds its
/// connection for ever, and silent large pushes no longer hold the large-body slots
/// every other large push waits for (they were answered "the database is busy").
async fn silent_bodies(t: &TestDb) {
    use bangfu_server::services::cpu_slots::LARGE_BODY;
    let f = Field::with(t, |s| s.upload_idle_secs = 1).await;
    let mut login = silent_body(&f, "/auth/login", None, 1000, b"{").await;
    let answer = answer_of(&mut login, Duration::from_secs(20)).await;
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.contains("body_idle"),
        "{answer}"
    );
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut stalled = Vec::new();
    for _ in 0..cores {
        stalled.push(
            silent_body(
                &f,
                "/sync/push",
                Some(&f.token),
                LARGE_BODY + 1000,
                b"{\"records\":[",
            )
            .await,
        );
    }
    // A large push behind them goes through once they are ended.
    let mut body = b"{\"records\":[".to_vec();
    body.resize(LARGE_BODY + 1000, b' ');
    body.extend_from_slice(b"]}");
    let resp =
        f.w.http
            .post(f.w.server.url("/sync/push"))
            .bearer_auth(&f.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    for mut conn in stalled {
        let answer = answer_of(&mut conn, Duration::from_secs(20)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
}
db_test!(a_silent_body_is_ended_and_holds_nothing, silent_bodies);
