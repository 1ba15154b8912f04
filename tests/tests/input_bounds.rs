//! Times and dates a server can store and read back: a device clock set to year 0 or
//! 9999, or a policy dated in year 10000, is refused with the field named, and nothing
//! stored can stop a helper's devices from pulling.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use bangfu_server::db_test;
use bangfu_shared::VisitKind;
use bangfu_shared::sync::{AckStatus, PullResponse, PushResponse};
use bangfu_shared::visit::{RecordType, SignedRecord, VisitBody};
use bangfu_tests::TestDb;
use bangfu_tests::scenario::Field;
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::json;

/// A record signed at a device time of year 10000 (UTC) or year 0, or describing a
/// visit then, is refused on its own; the batch's other record is stored, and the
/// helper's pull still works.
async fn far_times(t: &TestDb) {
    let mut f = Field::new(t).await;
    let h = f.household;
    let now = Utc::now();
    let phone = |at| {
        let mut v = VisitBody::new(VisitKind::Phone, at);
        v.notes = Some("电话了解近况".into());
        v
    };
    let records: Vec<SignedRecord> = vec![
        f.device
            .sign_at(h, RecordType::Visit, Some(phone(now)), None, None, now),
        f.device
            .sign_at(h, RecordType::Visit, Some(phone(now)), None, None, now),
        f.device
            .sign_at(h, RecordType::Visit, Some(phone(now)), None, None, now),
    ];
    // A device clock set to the edges of what RFC 3339 can write.
    let mut body = json!({ "records": records });
    body["records"][0]["record"]["created_at"] = json!("9999-12-31T23:59:59Z");
    body["records"][1]["record"]["visit"]["at"] = json!("0000-01-01T00:00:00Z");
    let (status, answer) = f.w.post_json(Some(&f.token), "/sync/push", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let acks = serde_json::from_value::<PushResponse>(answer).unwrap().acks;
    let statuses: Vec<AckStatus> = acks.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        [
            AckStatus::Rejected,
            AckStatus::Rejected,
            AckStatus::Accepted
        ],
        "{acks:?}"
    );
    assert_eq!(acks[0].reason_code.as_deref(), Some("invalid_record"));
    let reason = acks[0].reason.as_deref().unwrap();
    assert!(reason.contains("created_at"), "{reason}");
    let reason = acks[1].reason.as_deref().unwrap();
    assert!(reason.contains("visit time"), "{reason}");
    let (status, page) = f.w.get(Some(&f.token), "/sync/pull?cursor=0").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let page: PullResponse = serde_json::from_value(page).unwrap();
    let pulled: Vec<uuid::Uuid> = page.records.iter().map(|r| r.signed.record.id).collect();
    assert_eq!(
        pulled,
        [records[2].record.id],
        "only the good record is stored"
    );
    // The same instant spelt with an offset is not the form the signature covers: the
    // push is refused naming the field and the form to write, not as a forged signature.
    let mut body = json!({ "records": [records[0]] });
    let local = now.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
    body["records"][0]["record"]["created_at"] = json!(local.to_rfc3339());
    let (status, answer) = f.w.post_json(Some(&f.token), "/sync/push", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["acks"][0]["status"], "rejected", "{answer}");
    assert_eq!(
        answer["acks"][0]["reason_code"], "invalid_record",
        "{answer}"
    );
    let message = answer["acks"][0]["reason"].as_str().unwrap();
    assert!(
        message.contains("`records[0].record.created_at`")
            && message.contains("canonical time form")
            && message.contains(&bangfu_shared::visit::utc_seconds::format(&now)),
        "{message}"
    );
}
db_test!(records_timed_outside_2000_to_2100_are_refused, far_times);

/// A signed visit naming twenty thousand photos is refused at once, naming the list and
/// its bound, and nothing of it is stored (QA s23c F6, F7: such a record took minutes
/// to check on the thread serving requests, and was then kept awaiting its photos).
async fn long_lists(t: &TestDb) {
    let mut f = Field::new(t).await;
    let now = Utc::now();
    let mut v = VisitBody::new(VisitKind::Phone, now);
    v.photos = (0..20_000)
        .map(|i| bangfu_shared::visit::PhotoRef {
            sha256: format!("{i:064x}"),
            bytes: 1000,
            width: 100,
            height: 100,
        })
        .collect();
    let record = f
        .device
        .sign_at(f.household, RecordType::Visit, Some(v), None, None, now);
    let body = json!({ "records": [record] });
    let (status, answer) = f.w.post_json(Some(&f.token), "/sync/push", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let acks = serde_json::from_value::<PushResponse>(answer).unwrap().acks;
    assert_eq!(acks[0].status, AckStatus::Rejected, "{acks:?}");
    assert_eq!(acks[0].reason_code.as_deref(), Some("invalid_record"));
    let reason = acks[0].reason.as_deref().unwrap();
    assert!(
        reason.contains("photos: at most 50 entries in a visit, got 20000"),
        "{reason}"
    );
    let (status, page) = f.w.get(Some(&f.token), "/sync/pull?cursor=0").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let page: PullResponse = serde_json::from_value(page).unwrap();
    assert!(page.records.is_empty(), "nothing stored");
}
db_test!(
    a_visit_listing_more_than_a_card_holds_is_refused,
    long_lists
);

/// Dates in office requests outside 2000–2100 are bad requests naming the field, and
/// nothing is stored.
async fn far_dates(t: &TestDb) {
    let f = Field::new(t).await;
    let (_, before) = f.w.get(Some(&f.county), "/policies").await;
    for valid_from in ["+10000-01-01", "1999-12-31"] {
        let (status, body) =
            f.w.post_json(
                Some(&f.county),
                "/policies",
                &json!({ "valid_from": valid_from, "preset": "xigang-2019" }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{valid_from}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("valid_from"),
            "{body}"
        );
    }
    let (_, after) = f.w.get(Some(&f.county), "/policies").await;
    assert_eq!(before, after, "no version stored");
    let (status, body) =
        f.w.get(Some(&f.county), "/policies/effective?date=%2B10000-01-01")
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) =
        f.w.post_bytes(
            &f.county,
            "/ledger/import?dry_run=true&effective_from=%2B10000-01-01",
            bangfu_tests::FIXTURE.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("effective_from"),
        "{body}"
    );
}
db_test!(
    office_dates_outside_2000_to_2100_are_bad_requests,
    far_dates
);

/// Requests a stock client can get wrong are answered with what is wrong: a compressed
/// body is a 415, an array where an object belongs says so, a negative pull cursor is
/// a 400, and a record whose text is endless or holds a NUL is refused on its own.
async fn malformed_requests(t: &TestDb) {
    let mut f = Field::new(t).await;
    let h = f.household;
    let push = f.w.server.url("/sync/push");
    let resp =
        f.w.http
            .post(&push)
            .bearer_auth(&f.token)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .body(vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0])
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("gzip"), "{body}");

    // A path asked with a method it does not answer: 405 naming the ones it does, not
    // a 404 saying the path does not exist.
    let resp =
        f.w.http
            .get(&push)
            .bearer_auth(&f.token)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "POST");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed", "{body}");
    let resp =
        f.w.http
            .delete(f.w.server.url("/policies"))
            .bearer_auth(&f.token)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "GET, HEAD, POST");
    // HEAD answers where GET does, with the headers and no body.
    let resp =
        f.w.http
            .head(f.w.server.url("/households"))
            .bearer_auth(&f.token)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.bytes().await.unwrap().is_empty());
    // U+0000, which PostgreSQL's text cannot hold, is a client's mistake on both backends.
    let (status, body) =
        f.w.post_json(
            None,
            "/auth/login",
            &json!({ "username": "town\u{0}1", "password": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("username"),
        "{body}"
    );
    let (status, body) = f.w.get(Some(&f.county), "/households?q=%00").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Another county's town, or none, has no policy here.
    for path in ["/policies/effective?town=999999", "/policies?town=999999"] {
        let (status, body) = f.w.get(Some(&f.county), path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    // A path id says what it should be; a login with a field it does not know is named.
    let (status, body) = f.w.get(Some(&f.county), "/households/abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "path: expected an id (a whole number), got `abc`"
    );
    let (status, body) =
        f.w.post_json(
            None,
            "/auth/login",
            &json!({ "username": "town1", "password": "x", "remember": true }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("remember"),
        "{body}"
    );
    // An office's town filter outside its scope is not found, as on every office list.
    let (status, body) = f.w.get(Some(&f.county), "/households?town=999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = f.w.get(Some(&f.token), "/sync/pushes").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a path it does not have");

    // A number parameter says what it should be.
    let (status, body) =
        f.w.get(Some(&f.token), "/sync/pull?cursor=0&limit=-5")
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "query parameter `limit`: expected a whole number (0 or more), got `-5`"
    );

    let (status, body) =
        f.w.post_json(Some(&f.token), "/sync/push", &json!([]))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("the body is an array") && message.contains("JSON object"),
        "{message}"
    );

    // A file announced over the limit is named as such, not as a request body.
    let resp =
        f.w.http
            .post(f.w.server.url("/files"))
            .bearer_auth(&f.token)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", "999999999999")
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("Upload-Length"),
        "{body}"
    );

    let (status, body) = f.w.get(Some(&f.token), "/sync/pull?cursor=-1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("cursor"),
        "{body}"
    );
    // A cursor the server never issued (its database restored from an older backup) is
    // answered from the start, with a cursor the server did issue, not "nothing new".
    let (status, body) =
        f.w.get(Some(&f.token), "/sync/pull?cursor=9007199254740991")
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body["households"].as_array().unwrap().is_empty(), "{body}");
    assert!(
        body["cursor"].as_i64().unwrap() < 9_007_199_254_740_991,
        "{body}"
    );

    // A field the server does not know is named, not taken for tampering: the signature
    // covers it, so the server could never check it.
    let known = f.device.phone_call(h);
    for (place, add) in [
        ("records[0].record.mood", json!({ "mood": "好" })),
        (
            "records[0].record.visit.mood",
            json!({ "visit": { "mood": "好" } }),
        ),
        ("records[0].pad", json!({})),
    ] {
        let mut rec = serde_json::to_value(&known).unwrap();
        if place == "records[0].pad" {
            rec["pad"] = json!("x");
        } else if let Some(v) = add.get("visit") {
            rec["record"]["visit"]["mood"] = v["mood"].clone();
        } else {
            rec["record"]["mood"] = add["mood"].clone();
        }
        // Refused on its own (it names its id), the place named (QA s25a F3).
        let (status, body) =
            f.w.post_json(Some(&f.token), "/sync/push", &json!({ "records": [rec] }))
                .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let ack = &body["acks"][0];
        assert_eq!(ack["status"], "rejected", "{body}");
        assert_eq!(ack["reason_code"], "invalid_record", "{body}");
        let reason = ack["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("`{place}`")) && reason.contains("unknown field"),
            "{reason}"
        );
    }
    // So is a value spelt other than canonically: it is malformed, not forged.
    let mut null_notes = serde_json::to_value(&known).unwrap();
    null_notes["record"]["visit"]["notes"] = serde_json::Value::Null;
    let (status, body) =
        f.w.post_json(
            Some(&f.token),
            "/sync/push",
            &json!({ "records": [null_notes] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["acks"][0]["status"], "rejected", "{body}");
    let reason = body["acks"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("`records[0].record.visit.notes`"),
        "{reason}"
    );
    // An id spelt otherwise names no record to answer: the push is refused whole.
    let mut upper_id = serde_json::to_value(&known).unwrap();
    upper_id["record"]["id"] = known.record.id.to_string().to_uppercase().into();
    let (status, body) =
        f.w.post_json(
            Some(&f.token),
            "/sync/push",
            &json!({ "records": [upper_id] }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("records[0].record.id"),
        "{body}"
    );

    let now = Utc::now();
    let mut long = VisitBody::new(VisitKind::Phone, now);
    long.problems = vec!["缺".repeat(200_000)];
    let mut nul = VisitBody::new(VisitKind::Phone, now);
    nul.notes = Some("电话\0了解".into());
    let good = VisitBody::new(VisitKind::Phone, now);
    let records: Vec<SignedRecord> = [long, nul, good]
        .into_iter()
        .map(|v| {
            f.device
                .sign_at(h, RecordType::Visit, Some(v), None, None, now)
        })
        .collect();
    let (status, answer) =
        f.w.post_json(Some(&f.token), "/sync/push", &json!({ "records": records }))
            .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let acks = serde_json::from_value::<PushResponse>(answer).unwrap().acks;
    let reasons: Vec<&str> = acks
        .iter()
        .map(|a| a.reason.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(acks[0].status, AckStatus::Rejected);
    assert!(
        reasons[0].contains("problems") && reasons[0].contains("200000"),
        "{reasons:?}"
    );
    assert!(
        !reasons[0].contains("invalid record: invalid record"),
        "{reasons:?}"
    );
    assert_eq!(acks[1].status, AckStatus::Rejected);
    assert!(
        reasons[1].contains("notes") && reasons[1].contains("U+0000"),
        "{reasons:?}"
    );
    assert_eq!(acks[2].status, AckStatus::Accepted, "{acks:?}");
}
db_test!(malformed_requests_are_named, malformed_requests);

/// A policy's `source` is printed on every report and listed to every office: like every
/// other free text it is refused (422 `invalid`, naming `source`) when it holds a control
/// character or a direction override or runs past the limit, and nothing is stored
/// (QA s23 F1).
async fn policy_source_bounds(t: &TestDb) {
    let f = Field::new(t).await;
    let (_, before) = f.w.get(Some(&f.county), "/policies").await;
    let long = "办".repeat(100_000);
    for source in [
        "县\u{0}办法",
        "县\u{7}办法",
        "县办法\u{202E}8102",
        long.as_str(),
    ] {
        let mut policy =
            serde_json::to_value(bangfu_shared::PolicyPreset::Laizhou2018.policy()).unwrap();
        policy["source"] = json!(source);
        let (status, body) =
            f.w.post_json(
                Some(&f.county),
                "/policies",
                &json!({ "valid_from": "2027-01-01", "policy": policy }),
            )
            .await;
        let shown: String = source.chars().take(10).collect();
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{shown:?}: {body}"
        );
        assert_eq!(body["error"], "invalid", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("source"),
            "{body}"
        );
    }
    let (_, after) = f.w.get(Some(&f.county), "/policies").await;
    assert_eq!(before, after, "no version stored");
    // At the limit, a document's title is kept as written.
    let title = "办".repeat(bangfu_shared::policy::MAX_SOURCE_CHARS);
    let mut policy =
        serde_json::to_value(bangfu_shared::PolicyPreset::Laizhou2018.policy()).unwrap();
    policy["source"] = json!(title);
    let (status, body) =
        f.w.post_json(
            Some(&f.county),
            "/policies",
            &json!({ "valid_from": "2027-01-01", "policy": policy }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["policy"]["source"], json!(title), "{body}");
}
db_test!(
    policy_source_is_held_to_the_free_text_rules,
    policy_source_bounds
);

/// Header edge cases of the tus endpoints and of JSON bodies (QA s23c F11): a tus
/// header sent twice is refused naming it (the server took the first `Upload-Offset`
/// or `Upload-Length` silently), `Content-Type` is compared as RFC 9110 compares media
/// types (`Application/Offset+Octet-Stream; x=y` was a 415), and a JSON body in UTF-16
/// or with a byte order mark says it must be UTF-8 (it read "expected value at line 1
/// column 1").
async fn header_edges(t: &TestDb) {
    use bangfu_shared::visit::sha256_hex;
    use bangfu_tests::field::{jpeg, tus_create, tus_offset};
    let f = Field::new(t).await;
    let files = f.w.server.url("/files");
    let photo = jpeg(30, 11);
    let sha = sha256_hex(&photo);
    let refused = |resp: reqwest::Response, header: &'static str| async move {
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{header}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "bad_request", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{header} is sent more than once")),
            "{message}"
        );
    };
    for twice in ["Upload-Length", "Upload-Metadata"] {
        let mut req =
            f.w.http
                .post(&files)
                .bearer_auth(&f.token)
                .header("Tus-Resumable", "1.0.0")
                .header("Upload-Length", photo.len().to_string())
                .header("Upload-Metadata", "filename YS5qcGc=");
        req = match twice {
            "Upload-Length" => req.header("Upload-Length", "7"),
            _ => req.header("Upload-Metadata", "filename Yi5qcGc="),
        };
        refused(req.send().await.unwrap(), twice).await;
    }

    let (status, url) = tus_create(&f.w.http, &f.origin, &f.token, photo.len(), &sha).await;
    assert_eq!(status, StatusCode::CREATED);
    let url = url.unwrap();
    let patch = |content_type: &'static str| {
        f.w.http
            .patch(&url)
            .bearer_auth(&f.token)
            .header("Tus-Resumable", "1.0.0")
            .header("Content-Type", content_type)
            .header("Upload-Offset", "0")
    };
    let resp = patch("application/offset+octet-stream")
        .header("Upload-Offset", "5")
        .body(photo[..5].to_vec())
        .send()
        .await
        .unwrap();
    refused(resp, "Upload-Offset").await;
    // Two lengths on a PATCH, likewise (QA s24c F7).
    let resp = patch("application/offset+octet-stream")
        .header("Upload-Length", photo.len().to_string())
        .header("Upload-Length", "7")
        .body(photo[..5].to_vec())
        .send()
        .await
        .unwrap();
    refused(resp, "Upload-Length").await;
    assert_eq!(
        tus_offset(&f.w.http, &url, &f.token).await,
        0,
        "nothing taken"
    );
    let resp = patch("Application/Offset+Octet-Stream; charset=binary")
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT, "the same media type");
    assert_eq!(
        tus_offset(&f.w.http, &url, &f.token).await,
        photo.len() as u64
    );

    // JSON in UTF-16 (with and without its mark) or with UTF-8's mark, to a public
    // endpoint and to an authenticated one.
    let login = r#"{"username":"admin","password":"test-password"}"#;
    let utf16 = |text: &str, mark: bool| {
        let mut out = if mark { vec![0xFF, 0xFE] } else { Vec::new() };
        out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        out
    };
    let bodies = [
        ("/auth/login", None, utf16(login, true)),
        ("/auth/login", None, utf16(login, false)),
        (
            "/auth/login",
            None,
            [&b"\xEF\xBB\xBF"[..], login.as_bytes()].concat(),
        ),
        (
            "/sync/push",
            Some(&f.token),
            utf16(r#"{"records":[]}"#, true),
        ),
    ];
    for (path, token, body) in bodies {
        let mut req =
            f.w.http
                .post(f.w.server.url(path))
                .header("Content-Type", "application/json")
                .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("the body must be JSON in UTF-8 without a byte order mark"),
            "{path}: {message}"
        );
    }
}
db_test!(
    tus_headers_and_json_encodings_are_read_strictly,
    header_edges
);
