//! A record the server refused is shown in the helper's language: the text of the
//! server's `reason_code` saying what happened and what to do, and the server's own
//! words for a code this version does not know or a server that sends none.

#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod common;

use std::path::Path;
use std::process::{Command, Output};

use bangfu_client::Client;
use bangfu_client::app::{Action, App};
use bangfu_client::i18n::Lang;
use bangfu_client::ui::{self, buffer_text};
use bangfu_shared::sync::{Ack, AckStatus, reason_code};
use common::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use uuid::Uuid;

const ALTERED: &str = "the signature does not match the record: it was altered after signing or signed by another key";
const NEWER: &str = "refused for a reason this version does not know";
const HELD: &str = "the server holds a different record under this id; it was not overwritten";

fn refused(id: Uuid, status: AckStatus, reason: &str, code: Option<&str>) -> Ack {
    Ack {
        id,
        status,
        reason: Some(reason.into()),
        reason_code: code.map(str::to_string),
        missing_blobs: vec![],
        flags: vec![],
    }
}

/// The server's answers for three records: altered after signing (a known code), a
/// code from a newer server, and a conflict from a server before codes.
fn answers(ids: &[Uuid]) -> Vec<Ack> {
    vec![
        refused(
            ids[0],
            AckStatus::Rejected,
            ALTERED,
            Some(reason_code::SIGNATURE_MISMATCH),
        ),
        refused(
            ids[1],
            AckStatus::Rejected,
            NEWER,
            Some("sent_by_a_newer_server"),
        ),
        refused(ids[2], AckStatus::Conflict, HELD, None),
    ]
}

/// Draws the app wide enough that no line of the selected visit wraps.
fn draw_wide(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(200, 40)).unwrap();
    t.draw(|f| ui::render(app, f)).unwrap();
    buffer_text(t.backend().buffer())
}

fn select(app: &mut App, id: Uuid) -> String {
    app.history_selected = app.history.iter().position(|v| v.visit_id == id).unwrap();
    draw_wide(app)
}

#[test]
fn a_refused_visit_says_in_chinese_what_happened_and_what_to_do() {
    let mut fx = app_fixture(Lang::Zh);
    let app = &mut fx.app;
    for _ in 0..3 {
        app.update(Action::Char('n'));
        app.update(Action::Right);
        app.update(Action::Sign);
    }
    let mut ids: Vec<Uuid> = app
        .runtime()
        .block_on(app.client().visits(None, 10))
        .unwrap()
        .iter()
        .map(|v| v.visit_id)
        .collect();
    ids.sort();
    app.runtime()
        .block_on(app.client().store().apply_acks(&answers(&ids)))
        .unwrap();
    // The code is stored with the refusal.
    let v = app
        .runtime()
        .block_on(app.client().store().visit(ids[0]))
        .unwrap()
        .unwrap();
    assert_eq!(
        v.sync_reason_code.as_deref(),
        Some(reason_code::SIGNATURE_MISMATCH)
    );
    assert_eq!(v.sync_reason.as_deref(), Some(ALTERED));

    app.update(Action::Char('h'));
    let text = select(app, ids[0]);
    assert!(
        text.contains("被拒：记录签名后被改动，服务器拒收：请运行 bangfu verify 检查本机数据"),
        "{text}"
    );
    assert!(
        !text.contains("signature does not match"),
        "no English for a known code:\n{text}"
    );
    // A code this version does not know: the server's words.
    let text = select(app, ids[1]);
    assert!(text.contains(&format!("被拒：{NEWER}")), "{text}");
    // A server from before codes: its words too.
    let text = select(app, ids[2]);
    assert!(text.contains(&format!("冲突：{HELD}")), "{text}");

    // In English the server's own words stand.
    let mut fx = app_fixture(Lang::En);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    app.update(Action::Right);
    app.update(Action::Sign);
    let id = app
        .runtime()
        .block_on(app.client().visits(None, 10))
        .unwrap()[0]
        .visit_id;
    let ack = refused(
        id,
        AckStatus::Rejected,
        ALTERED,
        Some(reason_code::SIGNATURE_MISMATCH),
    );
    app.runtime()
        .block_on(app.client().store().apply_acks(&[ack]))
        .unwrap();
    app.update(Action::Char('h'));
    let text = select(app, id);
    assert!(text.contains(ALTERED), "{text}");
}

#[test]
fn each_reason_code_has_chinese_text_and_unknown_ones_fall_back() {
    use reason_code::*;
    let codes = [
        INVALID_RECORD,
        DEVICE_NOT_REGISTERED,
        AUTHOR_NOT_HELPER,
        BAD_SIGNATURE_ENCODING,
        SIGNATURE_MISMATCH,
        HOUSEHOLD_NEVER_PAIRED,
        TARGET_NOT_A_VISIT,
        TARGET_OTHER_HELPER,
        TARGET_OTHER_HOUSEHOLD,
        CONFLICT,
        NOT_PROCESSED,
    ];
    for code in codes {
        let zh = Lang::Zh.refusal(Some(code), Some("server words"));
        assert!(
            !zh.contains("server words") && !zh.is_ascii(),
            "{code}: {zh}"
        );
    }
    assert!(
        Lang::Zh
            .refusal(Some(TARGET_OTHER_HELPER), None)
            .starts_with("只能更正或作废本人录入的走访")
    );
    assert!(
        Lang::Zh
            .refusal(Some(HOUSEHOLD_NEVER_PAIRED), None)
            .starts_with("您从未与该户结对，服务器拒收")
    );
    assert_eq!(
        Lang::Zh.refusal(Some("new_code"), Some("server words")),
        "server words"
    );
    assert_eq!(Lang::Zh.refusal(None, Some("server words")), "server words");
    assert_eq!(Lang::Zh.refusal(Some("new_code"), None), "new_code");
    assert_eq!(
        Lang::En.refusal(Some(SIGNATURE_MISMATCH), Some("server words")),
        "server words"
    );
}

fn bangfu(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bangfu"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

/// `visit list` says why a record was refused in Chinese by its code, the server's
/// words for an unknown code or none; `--json` carries both.
#[test]
fn visit_list_shows_a_refusal_in_chinese_by_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = runtime();
    let client: Client = rt.block_on(login(&data, bangfu_client::Limits::default()));
    let mut ids = Vec::new();
    for at in ["2026-03-10 09:30", "2026-03-11 09:30", "2026-03-12 09:30"] {
        let out = bangfu(
            &data,
            &[
                "--json",
                "visit",
                "new",
                "--household",
                "1",
                "--kind",
                "phone",
                "--at",
                at,
            ],
        );
        assert!(out.status.success(), "{out:?}");
        let signed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        ids.push(
            signed["record"]["record"]["id"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap(),
        );
    }
    rt.block_on(client.store().apply_acks(&answers(&ids)))
        .unwrap();
    rt.block_on(client.store().clone().close()).unwrap();

    let out = bangfu(&data, &["visit", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = |id: Uuid| {
        text.lines()
            .find(|l| l.starts_with(&id.to_string()))
            .unwrap_or_else(|| panic!("{id} missing:\n{text}"))
            .to_string()
    };
    let altered = line(ids[0]);
    assert!(
        altered.contains("被拒：记录签名后被改动，服务器拒收") && !altered.contains(ALTERED),
        "{altered}"
    );
    assert!(line(ids[1]).contains(&format!("被拒：{NEWER}")), "{text}");
    assert!(line(ids[2]).contains(&format!("冲突：{HELD}")), "{text}");
    assert!(
        text.contains(" 户 ") && text.contains("张照片") && !text.contains("household"),
        "the whole line in Chinese: {text}"
    );
    // In English, the line scripts have always read.
    let out = bangfu(&data, &["--lang", "en", "visit", "list"]);
    let en = String::from_utf8_lossy(&out.stdout);
    assert!(
        en.contains(&format!("REJECTED: {ALTERED}")) && en.contains(" photos "),
        "{en}"
    );

    let out = bangfu(&data, &["--json", "visit", "list"]);
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let of = |id: Uuid| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|v| v["visit_id"] == id.to_string())
            .unwrap()
            .clone()
    };
    assert_eq!(of(ids[0])["sync_reason_code"], "signature_mismatch");
    assert_eq!(of(ids[0])["sync_reason"], ALTERED);
    assert_eq!(of(ids[2])["sync_reason_code"], serde_json::Value::Null);
}

/// "Not processed" is no refusal: the record goes back to local, so the next sync sends
/// it again without `--retry-rejected`.
#[test]
fn a_record_the_server_did_not_process_is_sent_again() {
    let mut fx = app_fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    app.update(Action::Right);
    app.update(Action::Sign);
    let id = app
        .runtime()
        .block_on(app.client().visits(None, 10))
        .unwrap()[0]
        .visit_id;
    let ack = refused(
        id,
        AckStatus::Rejected,
        "not processed",
        Some(reason_code::NOT_PROCESSED),
    );
    let store = app.client().store();
    app.runtime().block_on(store.apply_acks(&[ack])).unwrap();
    let v = app.runtime().block_on(store.visit(id)).unwrap().unwrap();
    assert_eq!(v.sync, bangfu_client::store::SyncState::Local);
    let device = app
        .runtime()
        .block_on(app.client().identity())
        .unwrap()
        .device_id;
    let again = app
        .runtime()
        .block_on(store.records_to_push(device, false))
        .unwrap();
    assert!(
        again.iter().any(|r| r.signed.record.id == id),
        "pushed again at the next sync"
    );
}
