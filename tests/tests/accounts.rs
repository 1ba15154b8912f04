//! Getting back in (QA s29b J2): a helper who forgot their password or lost their
//! phone gets a reset code from their town office; anyone changes their own password;
//! the server's command line sets an office's; a lost phone's device is revoked, and
//! what it signs is refused. Every test runs on SQLite and, with TEST_DATABASE_URL, on
//! PostgreSQL.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::db_test;
use bangfu_shared::Role;
use bangfu_shared::sync::AckStatus;
use bangfu_tests::scenario::{Field, HELPER};
use bangfu_tests::{PASSWORD, TestDb, office};
use reqwest::StatusCode;
use serde_json::json;

/// The helper's id and their town, as the county office sees them.
async fn helper_and_town(f: &Field) -> (i64, i64) {
    let h = helpers_household(f).await;
    (
        h["first_helper"]["id"].as_i64().unwrap(),
        h["town"]["id"].as_i64().unwrap(),
    )
}

/// The helper's household, as the county office sees it.
async fn helpers_household(f: &Field) -> serde_json::Value {
    let (_, page) = f.w.get(Some(&f.county), "/households?per_page=100").await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["first_helper"]["phone"] == HELPER)
        .unwrap()
        .clone()
}

async fn login(f: &Field, password: &str) -> StatusCode {
    let body = json!({ "username": HELPER, "password": password });
    f.w.post_json(None, "/auth/login", &body).await.0
}

/// Runs the field client on the data directory `data` with `input` on its standard
/// input.
async fn client(data: &std::path::Path, args: Vec<String>, input: String) -> std::process::Output {
    use std::io::Write;
    let data = data.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(bangfu_tests::client_binary())
            .arg("--data-dir")
            .arg(&data)
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// `bangfu login` on `data` as the helper.
async fn client_login(f: &Field, data: &std::path::Path) -> std::process::Output {
    client_login_with(f, data, format!("{PASSWORD}\n")).await
}

/// `bangfu login` on `data` as the helper, `input` on standard input.
async fn client_login_with(
    f: &Field,
    data: &std::path::Path,
    input: String,
) -> std::process::Output {
    let args = ["login", "--server", &f.origin, "--username", HELPER];
    let mut args: Vec<String> = args.map(String::from).to_vec();
    args.push("--password-stdin".into());
    client(data, args, input).await
}

/// An enrolled helper's code resets their password: asked without `reset`, the office
/// is told of it; the old password works until the code is used; then the new one
/// does, and every session of the account ends (the lost phone's too).
async fn helper_reset(t: &TestDb) {
    let f = Field::new(t).await;
    let (helper, town) = helper_and_town(&f).await;
    office(t, &f.w, "dongcheng", Role::TownOffice, town).await;
    let office_token = f.w.login("dongcheng").await;
    let ask = |query: String| {
        let (w, token) = (&f.w, &office_token);
        async move {
            w.post_json(
                Some(token),
                &format!("/enrollment/codes?format=json&helper={helper}{query}"),
                &json!({}),
            )
            .await
        }
    };
    let (status, body) = ask(String::new()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("reset=true"),
        "{body}"
    );
    let (status, body) = ask("&reset=true".into()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = body[0]["code"].as_str().unwrap().to_string();
    let (status, _) = f.w.get(Some(&f.token), "/me").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "their session holds until the code is used"
    );

    let enroll = json!({ "username": HELPER, "code": code, "new_password": "a new password 1" });
    let (status, body) = f.w.post_json(None, "/auth/enroll", &enroll).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(login(&f, "a new password 1").await, StatusCode::OK);
    assert_eq!(login(&f, PASSWORD).await, StatusCode::UNAUTHORIZED);
    let (status, _) = f.w.get(Some(&f.token), "/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old session ended");
    // A helper who remembers their password after all cancels a pending reset code by
    // logging in: the slip no longer takes the account (QA s29c K3).
    let (status, body) = ask("&reset=true".into()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let slip = body[0]["code"].as_str().unwrap().to_string();
    assert_eq!(login(&f, "a new password 1").await, StatusCode::OK);
    let takeover = json!({ "username": HELPER, "code": slip, "new_password": "taken over 9" });
    let (status, _) = f.w.post_json(None, "/auth/enroll", &takeover).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the slip died with the login"
    );
    // `reset` alone resets no one.
    let (status, body) =
        f.w.post_json(
            Some(&office_token),
            "/enrollment/codes?format=json&reset=true",
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
db_test!(
    a_town_office_resets_a_helpers_forgotten_password,
    helper_reset
);

/// Anyone changes their own password by proving the current one; their other sessions
/// end, the one asking goes on; a wrong current password changes nothing. The
/// server's command line sets any account's password.
async fn own_password(t: &TestDb) {
    let f = Field::new(t).await;
    let elsewhere = f.w.login(HELPER).await;
    let change = |current: &'static str| {
        let body = json!({ "current_password": current, "new_password": "another password 2" });
        let (w, token) = (&f.w, &f.token);
        async move { w.post_json(Some(token), "/auth/password", &body).await }
    };
    let (status, body) = change("not my password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_credentials");
    // Said as the current password, not a username (QA s29c K10).
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("current_password"),
        "{body}"
    );
    assert_eq!(login(&f, PASSWORD).await, StatusCode::OK, "unchanged");
    // The same password again changes nothing and ends no session (QA s30a L4).
    let body = json!({ "current_password": PASSWORD, "new_password": PASSWORD });
    let (status, body) = f.w.post_json(Some(&f.token), "/auth/password", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("same"), "{body}");
    assert_eq!(f.w.get(Some(&elsewhere), "/me").await.0, StatusCode::OK);
    let (status, body) = change(PASSWORD).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(f.w.get(Some(&f.token), "/me").await.0, StatusCode::OK);
    assert_eq!(
        f.w.get(Some(&elsewhere), "/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(login(&f, "another password 2").await, StatusCode::OK);

    let acct = bangfu_server::services::auth::set_password(
        &t.db,
        &f.w.settings,
        HELPER,
        "set by the server 3",
    )
    .await
    .unwrap();
    assert_eq!(acct.username, HELPER);
    assert_eq!(login(&f, "set by the server 3").await, StatusCode::OK);
    // Ended in the database (a running server trusts what it cached for a few
    // seconds more, as for any revocation by another process).
    assert!(
        bangfu_server::services::auth::authenticate(&t.db, &f.token, None)
            .await
            .is_err(),
        "its sessions ended"
    );
}
db_test!(
    a_password_is_changed_by_its_owner_or_set_by_the_server,
    own_password
);

/// A lost phone's device is revoked by its helper's town office (another town's office
/// does not find it); what it signs is refused from then on.
async fn lost_phone(t: &TestDb) {
    let mut f = Field::two_towns(t, |_| {}).await;
    let (_, town) = helper_and_town(&f).await;
    office(t, &f.w, "dongcheng", Role::TownOffice, town).await;
    let (_, all) = f.w.get(Some(&f.county), "/households?per_page=100").await;
    let other_town = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["town"]["id"] != town)
        .unwrap()["town"]["id"]
        .as_i64()
        .unwrap();
    office(t, &f.w, "xigang", Role::TownOffice, other_town).await;
    let device = f.device.device_id;
    let revoke = |who: String| {
        let w = &f.w;
        async move {
            let token = w.login(&who).await;
            w.post_json(
                Some(&token),
                &format!("/devices/{device}/revoke"),
                &json!({}),
            )
            .await
            .0
        }
    };
    assert_eq!(revoke("xigang".into()).await, StatusCode::NOT_FOUND);
    // The office finds the helper's devices by the helper's id; another town's cannot.
    let (helper, _) = helper_and_town(&f).await;
    let listed = |who: &'static str| {
        let w = &f.w;
        async move {
            let token = w.login(who).await;
            w.get(Some(&token), &format!("/devices?helper={helper}"))
                .await
        }
    };
    let (status, theirs) = listed("dongcheng").await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    assert_eq!(theirs[0]["id"], device, "{theirs}");
    assert_eq!(listed("xigang").await.0, StatusCode::NOT_FOUND);
    let call = f.device.phone_call(f.household);
    assert_eq!(
        f.push(std::slice::from_ref(&call)).await.acks[0].status,
        AckStatus::Accepted
    );
    assert_eq!(revoke("dongcheng".into()).await, StatusCode::NO_CONTENT);
    // Revoked already is said as such, and the office sees what it revoked and when
    // (QA s29c K12).
    assert_eq!(revoke("dongcheng".into()).await, StatusCode::CONFLICT);
    let (status, theirs) = listed("dongcheng").await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    assert!(theirs[0]["revoked_at"].is_string(), "{theirs}");
    // With what each sent, so the office tells the lost phone from the one in use
    // (QA s30a L3).
    assert_eq!(theirs[0]["last_seq"], call.record.seq, "{theirs}");
    assert!(theirs[0]["records"].as_u64().unwrap() >= 1, "{theirs}");
    assert!(theirs[0]["last_record_at"].is_string(), "{theirs}");
    // The lost phone's session ended with its key: it downloads nothing more and
    // registers no new key (QA s29c K1).
    let (status, _) = f.w.get(Some(&f.token), "/households").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) =
        f.w.post_json(
            Some(&f.token),
            "/devices",
            &json!({ "public_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "label": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Logged in again, what the revoked key signs is refused.
    f.token = f.w.login(HELPER).await;
    let after = f.device.phone_call(f.household);
    let ack = &f.push(std::slice::from_ref(&after)).await.acks[0];
    assert_eq!(ack.status, AckStatus::Rejected, "{ack:?}");
    assert_eq!(
        ack.reason_code.as_deref(),
        Some(bangfu_shared::sync::reason_code::DEVICE_NOT_REGISTERED)
    );
    // Its reason says revoked, not "never registered" (QA s31a S2).
    let reason = ack.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("was revoked"), "{reason}");
    // The town office sees the lost phone still sending (QA s29c K13).
    let office_token = f.w.login("dongcheng").await;
    let (_, anomalies) = f.w.get(Some(&office_token), "/sync/anomalies").await;
    let seen = anomalies
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["kind"] == "refused" && a["device_id"] == device && a["seq"] == after.record.seq
        })
        .unwrap_or_else(|| panic!("no refused anomaly for the revoked device: {anomalies}"));
    assert!(
        seen["detail"].as_str().unwrap().contains("was revoked"),
        "{seen}"
    );
    let (_, devices) = f.w.get(Some(&f.token), "/devices").await;
    assert_eq!(devices, json!([]), "the helper's list no longer shows it");
    // Found again, the phone registering its old key is told it was revoked (K2).
    use base64::Engine as _;
    let old_key =
        base64::engine::general_purpose::STANDARD.encode(f.device.key.verifying_key().to_bytes());
    let (status, body) =
        f.w.post_json(
            Some(&f.token),
            "/devices",
            &json!({ "public_key": old_key, "label": "找回的手机" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "device_revoked");
}
db_test!(
    a_lost_phones_device_is_revoked_by_the_town_office,
    lost_phone
);

/// QA s29c K14: a helper changes their password from the field client; a wrong current
/// password is said as such, in Chinese.
async fn from_the_client(t: &TestDb) {
    let f = Field::new(t).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("device");
    let run = |args: Vec<String>, input: String| client(&data, args, input);
    let logged_in = client_login(&f, &data).await;
    assert!(
        logged_in.status.success(),
        "{}",
        String::from_utf8_lossy(&logged_in.stderr)
    );
    let change = |current: &str| {
        run(
            vec!["password".into(), "--password-stdin".into()],
            format!("{current}\nchanged in the field 5\n"),
        )
    };
    // A login with only spaces for a password is not sent as a wrong try (QA s30c N2).
    let spaces = client_login_with(&f, &dir.path().join("other"), "   \n".into()).await;
    let err = String::from_utf8_lossy(&spaces.stderr).to_string();
    assert!(
        !spaces.status.success() && err.contains("标准输入没有密码"),
        "{err}"
    );
    // A line missing or the same password twice: said in Chinese, nothing sent.
    let short = run(
        vec!["password".into(), "--password-stdin".into()],
        format!("{PASSWORD}\n"),
    )
    .await;
    let err = String::from_utf8_lossy(&short.stderr).to_string();
    assert!(
        !short.status.success() && err.contains("第二行（新密码）"),
        "{err}"
    );
    let same = run(
        vec!["password".into(), "--password-stdin".into()],
        format!("{PASSWORD}\n{PASSWORD}\n"),
    )
    .await;
    let err = String::from_utf8_lossy(&same.stderr).to_string();
    assert!(
        !same.status.success() && err.contains("新密码与当前密码相同"),
        "{err}"
    );
    let wrong = change("not it").await;
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr).to_string();
    assert!(err.contains("当前密码不对"), "{err}");
    let done = change(PASSWORD).await;
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(String::from_utf8_lossy(&done.stdout).contains("密码已修改"));
    assert_eq!(login(&f, "changed in the field 5").await, StatusCode::OK);
}
db_test!(
    a_helper_changes_their_password_from_the_field_client,
    from_the_client
);

/// QA s30a L2: a found phone whose device was revoked learns it at its next login and
/// from then on says so: its sync does not loop on "log in again", and it signs no
/// visit the server would refuse.
async fn found_phone(t: &TestDb) {
    let f = Field::new(t).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("phone");
    let out = client_login(&f, &data).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let household = helpers_household(&f).await["id"].as_i64().unwrap();
    let (helper, _) = helper_and_town(&f).await;
    let (_, devices) =
        f.w.get(Some(&f.county), &format!("/devices?helper={helper}"))
            .await;
    let newest = devices
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_i64())
        .max()
        .unwrap();
    let (status, body) =
        f.w.post_json(
            Some(&f.county),
            &format!("/devices/{newest}/revoke"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let visit = || {
        let args = [
            "visit",
            "new",
            "--household",
            &household.to_string(),
            "--kind",
            "phone",
        ];
        let mut args: Vec<String> = args.map(String::from).to_vec();
        args.extend(["--problem".into(), "找回后记录".into()]);
        client(&data, args, String::new())
    };
    // Before it knows, the phone still records offline, as any phone out of signal.
    assert!(visit().await.status.success());
    let sync = || client(&data, vec!["sync".into()], String::new());
    let first = sync().await;
    assert!(!first.status.success());
    let out = client_login(&f, &data).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("已被乡镇扶贫办停用"), "{err}");
    // From then on it says so, offline too, and signs nothing more; its sync does not
    // promise to go on next time (QA s30c N2).
    for out in [sync().await, visit().await] {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            err.contains("已被乡镇扶贫办停用") && !err.contains("请重新登录（"),
            "{err}"
        );
        assert!(!err.contains("从中断处继续"), "{err}");
    }
    // The call that can never arrive makes no window done; the list says why.
    let list = client(
        &data,
        vec!["households".into(), "--json".into()],
        String::new(),
    )
    .await;
    assert!(list.status.success());
    assert!(String::from_utf8_lossy(&list.stderr).contains("已被乡镇扶贫办停用"));
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == household)
        .unwrap();
    assert!(row["last_phone_call"].is_null(), "{row}");
}
db_test!(
    a_found_phone_once_told_it_was_revoked_stops_signing,
    found_phone
);

/// QA s31b R7: `bangfu visit list` cut at its limit says so, and how to see the rest;
/// a whole list says nothing more.
async fn cut_list(t: &TestDb) {
    let f = Field::new(t).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("phone");
    assert!(client_login(&f, &data).await.status.success());
    let household = helpers_household(&f).await["id"]
        .as_i64()
        .unwrap()
        .to_string();
    for n in 0..3 {
        let args = ["visit", "new", "--household", &household, "--kind", "phone"];
        let mut args: Vec<String> = args.map(String::from).to_vec();
        args.extend(["--problem".into(), format!("第{n}次")]);
        assert!(client(&data, args, String::new()).await.status.success());
    }
    let list = |limit: &str| {
        let args = ["visit", "list", "--limit", limit]
            .map(String::from)
            .to_vec();
        client(&data, args, String::new())
    };
    let cut = list("2").await;
    let (out, err) = (
        String::from_utf8_lossy(&cut.stdout).to_string(),
        String::from_utf8_lossy(&cut.stderr).to_string(),
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        err.contains("仅列出最近 2 条走访") && err.contains("--limit"),
        "{err}"
    );
    let whole = list("3").await;
    assert_eq!(String::from_utf8_lossy(&whole.stdout).lines().count(), 3);
    assert!(
        !String::from_utf8_lossy(&whole.stderr).contains("仅列出"),
        "a whole list says nothing more"
    );
}
db_test!(a_cut_visit_list_says_so, cut_list);
