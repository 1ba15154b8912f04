//! The capture side as a helper meets it: leaving a form, reopening drafts, amending a
//! signed visit, times, photos, and the messages that tell the helper what happened.
//! Driven through `App::update` over a real store; screens rendered on `TestBackend`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod common;

use bangfu_client::app::form::Field;
use bangfu_client::app::{Action, App, Overlay, Screen, SyncEvent};
use bangfu_client::draft::{SignatureMethod, VisitDraft};
use bangfu_client::i18n::Lang;
use bangfu_client::ui::{self, buffer_text};
use bangfu_client::{Client, ClientError};
use bangfu_shared::VisitKind;
use bangfu_shared::visit::{Delivery, HouseholdSignature, VisitBody};
use chrono::{DateTime, Duration, Utc};
use common::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use sea_orm::ConnectionTrait as _;

fn fixture(lang: Lang) -> AppFixture {
    app_fixture(lang)
}

fn draw_at(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| ui::render(app, f)).unwrap();
    buffer_text(t.backend().buffer())
}

fn draw(app: &App) -> String {
    draw_at(app, 80, 24)
}

fn keys(app: &mut App, s: &str) {
    for c in s.chars() {
        app.update(Action::Char(c));
    }
}

fn focus(app: &mut App, field: Field) {
    for _ in 0..20 {
        if let Screen::Form(f) = &app.screen
            && f.focus == field
        {
            return;
        }
        app.update(Action::Next);
    }
    panic!("field {field:?} not reachable");
}

fn form(app: &App) -> &bangfu_client::app::form::FormState {
    match &app.screen {
        Screen::Form(f) => f,
        other => panic!("not on the form: {other:?}"),
    }
}

fn status(app: &App) -> String {
    app.status
        .as_ref()
        .map(|s| s.text.clone())
        .unwrap_or_default()
}

fn client(app: &App) -> Client {
    app.client().clone()
}

fn exec(app: &App, sql: &str) {
    let db = app.client().store().connection().clone();
    app.runtime().block_on(db.execute_unprepared(sql)).unwrap();
}

/// Makes every draft save fail, as a full disk would.
fn break_draft_saves(app: &App) {
    exec(
        app,
        "CREATE TRIGGER no_insert BEFORE INSERT ON drafts BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
         CREATE TRIGGER no_update BEFORE UPDATE ON drafts BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    );
}

fn drafts(app: &App) -> Vec<VisitDraft> {
    app.runtime().block_on(client(app).drafts()).unwrap()
}

/// A signature PNG stored in the client, as the pad would leave it.
fn stored_signature(app: &App, dir: &std::path::Path, name: &str, w: u32) -> String {
    let png = std::fs::read(write_png(&dir.join(name), w, 40)).unwrap();
    app.runtime()
        .block_on(client(app).attach_signature_png(&png))
        .unwrap()
}

/// A signed home visit of household 1 an hour ago (09:00 local), with a drawn signature.
fn signed_home_visit(fx: &AppFixture) -> (uuid::Uuid, String) {
    let sig = stored_signature(&fx.app, fx.dir.path(), "sig.png", 120);
    let mut body = VisitBody::new(VisitKind::Home, now() - Duration::hours(1));
    body.deliveries.push(Delivery {
        item: "大米".into(),
        value_fen: 15000,
        occasion: None,
    });
    body.household_signature = Some(HouseholdSignature::Drawn {
        image_sha256: sig.clone(),
    });
    let r = fx
        .app
        .runtime()
        .block_on(client(&fx.app).record_visit(1, body, None, None, now()))
        .unwrap();
    (r.record.id, sig)
}

// 1. Leaving the form says "saved" only when a save happened, and never discards edits
//    after a failed save.

#[test]
fn esc_on_an_untouched_new_form_does_not_claim_a_saved_draft() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    app.update(Action::Back);
    assert_eq!(app.screen, Screen::Households);
    assert!(!status(app).contains("草稿已保存"), "{:?}", app.status);
    assert!(drafts(app).is_empty(), "nothing was typed, nothing kept");

    // With an edit, the draft is saved and the helper is told.
    app.update(Action::Char('n'));
    focus(app, Field::Notes);
    keys(app, "门口有狗");
    app.update(Action::Back);
    assert!(status(app).contains("草稿已保存"), "{:?}", app.status);
    assert_eq!(drafts(app)[0].notes, "门口有狗");
}

#[test]
fn a_failed_draft_save_keeps_the_form_open_with_the_error() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    break_draft_saves(app);
    focus(app, Field::Notes);
    keys(app, "门口有狗");

    app.update(Action::Back);
    assert!(matches!(app.screen, Screen::Form(_)), "stays on the form");
    let s = app.status.clone().unwrap();
    assert!(s.error && s.text.contains("草稿未保存"), "{s:?}");
    assert!(!s.text.contains("草稿已保存"), "{s:?}");
    assert_eq!(
        form(app).draft.notes,
        "门口有狗",
        "the edits are still there"
    );

    app.update(Action::Quit);
    assert!(!app.quit, "Ctrl+C does not drop unsaved edits silently");
    assert!(status(app).contains("草稿未保存"), "{:?}", app.status);
    // Asked twice, the helper chooses to leave.
    app.update(Action::Quit);
    assert!(app.quit);
}

// 2. An old draft is not reopened silently with its old time.

#[test]
fn n_asks_before_continuing_a_draft_from_another_day() {
    let mut fx = fixture(Lang::Zh);
    let mut old = VisitDraft::new(1, VisitKind::Home, now() - Duration::days(2));
    old.notes = "上次没写完".into();
    fx.app
        .runtime()
        .block_on(client(&fx.app).save_draft(&old))
        .unwrap();
    let app = &mut fx.app;

    app.update(Action::Char('n'));
    assert!(
        matches!(app.overlay, Some(Overlay::ResumeDraft { .. })),
        "{:?}",
        app.screen
    );
    let text = draw(app);
    assert!(text.contains("继续 03-13 的草稿"), "{text}");
    assert!(text.contains("y 继续") && text.contains("n 新建"), "{text}");

    // n: a fresh form at today's time.
    app.update(Action::Char('n'));
    let f = form(app);
    assert_eq!(f.draft.at, "2026-03-15 10:00");
    assert!(f.draft.notes.is_empty());
    assert_ne!(f.draft.id, old.id);
    app.update(Action::Back);

    // y: the old draft, with its old time in plain view.
    app.update(Action::Char('n'));
    app.update(Action::Char('y'));
    let f = form(app);
    assert_eq!(
        (f.draft.id, f.draft.at.as_str()),
        (old.id, "2026-03-13 10:00")
    );
    assert_eq!(f.focus, Field::Time, "the old time is where the cursor is");
    assert!(draw(app).contains("2026-03-13 10:00"));
}

#[test]
fn a_draft_from_today_reopens_without_asking() {
    let mut fx = fixture(Lang::Zh);
    let mut d = VisitDraft::new(1, VisitKind::Home, now() - Duration::hours(2));
    d.notes = "早上的".into();
    fx.app
        .runtime()
        .block_on(client(&fx.app).save_draft(&d))
        .unwrap();
    fx.app.update(Action::Char('n'));
    assert!(fx.app.overlay.is_none());
    assert_eq!(form(&fx.app).draft.id, d.id);
}

// 3. An amendment that changes what the household signed for needs a new signature.

#[test]
fn amending_the_date_clears_the_household_signature_until_signed_again() {
    let mut fx = fixture(Lang::Zh);
    let (visit_id, sig) = signed_home_visit(&fx);
    let app = &mut fx.app;
    app.update(Action::Char('h'));
    app.update(Action::Char('a'));
    assert_eq!(form(app).draft.amends, Some(visit_id));
    assert!(draw(app).contains("✓ 已签"));

    focus(app, Field::Time);
    app.update(Action::Backspace);
    keys(app, "5"); // 09:00 → 09:05
    let text = draw(app);
    assert!(text.contains("✗ 未签"), "{text}");
    assert!(
        text.contains("✗ 未签 · 内容已改须重签"),
        "the form says why:\n{text}"
    );
    focus(app, Field::Reason);
    keys(app, "时间记错");
    app.update(Action::Sign);
    assert!(matches!(app.screen, Screen::Form(_)), "not signed");
    assert!(status(app).contains("须农户重新签字"), "{:?}", app.status);

    // A new drawing from the household signs the changed content.
    let again = stored_signature(app, fx.dir.path(), "sig2.png", 140);
    if let Screen::Form(f) = &mut app.screen {
        f.draft.signature_image = Some(again.clone());
    }
    assert!(draw(app).contains("✓ 已签"));
    app.update(Action::Sign);
    assert_eq!(
        app.screen,
        Screen::History { household_id: None },
        "{:?}",
        app.status
    );
    let row = &app.runtime().block_on(client(app).visits(None, 5)).unwrap()[0];
    let body = row.current.signed.record.visit.clone().unwrap();
    assert_eq!(
        body.household_signature,
        Some(HouseholdSignature::Drawn {
            image_sha256: again
        })
    );
    assert_ne!(Some(sig), None::<String>);
}

#[test]
fn amending_only_the_notes_keeps_the_household_signature() {
    let mut fx = fixture(Lang::Zh);
    let (_, sig) = signed_home_visit(&fx);
    let app = &mut fx.app;
    app.update(Action::Char('h'));
    app.update(Action::Char('a'));
    focus(app, Field::Notes);
    keys(app, "补记");
    focus(app, Field::Reason);
    keys(app, "补充");
    assert!(draw(app).contains("✓ 已签"));
    app.update(Action::Sign);
    assert!(!matches!(app.screen, Screen::Form(_)), "{:?}", app.status);
    let row = &app.runtime().block_on(client(app).visits(None, 5)).unwrap()[0];
    let body = row.current.signed.record.visit.clone().unwrap();
    assert_eq!(
        body.household_signature,
        Some(HouseholdSignature::Drawn { image_sha256: sig })
    );
}

#[test]
fn record_visit_refuses_an_amendment_of_deliveries_under_the_old_signature() {
    let fx = fixture(Lang::Zh);
    let (visit_id, _) = signed_home_visit(&fx);
    let c = client(&fx.app);
    let row = fx
        .app
        .runtime()
        .block_on(c.original_visit(visit_id))
        .unwrap();
    let mut body = row.current.signed.record.visit.clone().unwrap();
    body.deliveries[0].value_fen = 50000;
    let err = fx
        .app
        .runtime()
        .block_on(c.record_visit(
            1,
            body.clone(),
            Some((visit_id, Some("改金额".into()))),
            None,
            now(),
        ))
        .unwrap_err();
    assert!(matches!(err, ClientError::ResignNeeded(_)), "{err}");
    // Changing what the household did not sign for is fine.
    let mut body = row.current.signed.record.visit.clone().unwrap();
    body.problems.push("补记".into());
    fx.app
        .runtime()
        .block_on(c.record_visit(
            1,
            body,
            Some((visit_id, Some("补记问题".into()))),
            None,
            now(),
        ))
        .unwrap();
}

// 4. A visit in the future is refused, and never counts as a last contact.

#[test]
fn a_visit_time_in_the_future_is_refused_in_the_form_and_the_core() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    app.update(Action::Right); // phone call: nothing else is needed
    focus(app, Field::Time);
    for _ in 0..5 {
        app.update(Action::Backspace);
    }
    keys(app, "11:00");
    let text = draw(app);
    assert!(text.contains("晚于当前时间"), "{text}");
    app.update(Action::Sign);
    assert!(matches!(app.screen, Screen::Form(_)));
    assert!(status(app).contains("晚于当前时间"), "{:?}", app.status);

    // Five minutes ahead is a clock difference, not a future visit.
    for _ in 0..5 {
        app.update(Action::Backspace);
    }
    keys(app, "10:05");
    app.update(Action::Sign);
    assert_eq!(app.screen, Screen::Households, "{:?}", app.status);

    let c = client(app);
    let body = VisitBody::new(VisitKind::Phone, now() + Duration::hours(1));
    let err = app
        .runtime()
        .block_on(c.record_visit(2, body, None, None, now()))
        .unwrap_err();
    assert!(matches!(err, ClientError::FutureTime { .. }), "{err}");
}

#[test]
fn a_future_visit_is_not_a_last_contact() {
    let fx = fixture(Lang::Zh);
    let c = client(&fx.app);
    let rt = fx.app.runtime();
    let later: DateTime<Utc> = now() + Duration::days(30);
    // Written by a device whose clock ran a month ahead.
    rt.block_on(c.record_visit(
        2,
        VisitBody::new(VisitKind::Phone, later),
        None,
        None,
        later,
    ))
    .unwrap();
    let households = rt.block_on(c.households(now())).unwrap();
    let h = households
        .iter()
        .find(|h| h.detail.summary.id == 2)
        .unwrap();
    assert_eq!(
        h.last_phone, None,
        "a call next month is not this month's call"
    );
    let households = rt.block_on(c.households(later)).unwrap();
    let h = households
        .iter()
        .find(|h| h.detail.summary.id == 2)
        .unwrap();
    assert_eq!(h.last_phone, Some(later));
}

// 5. Photos: no duplicates in a record; a photo of another visit is flagged.

#[test]
fn a_photo_already_used_by_another_visit_is_flagged_in_the_form() {
    let mut fx = fixture(Lang::Zh);
    let photo = write_jpeg(&fx.dir.path().join("p.jpg"), 320, 240);
    let c = client(&fx.app);
    let rt = fx.app.runtime().clone();
    let p = rt.block_on(c.attach_photo(&photo)).unwrap();
    let mut call = VisitBody::new(VisitKind::Phone, now() - Duration::days(1));
    call.photos.push(p);
    rt.block_on(c.record_visit(2, call, None, None, now()))
        .unwrap();

    let app = &mut fx.app;
    app.update(Action::Char('n'));
    focus(app, Field::Photos);
    app.update(Action::Enter);
    keys(app, "p.jpg");
    app.update(Action::Enter);
    assert!(app.overlay.is_none(), "{:?}", app.status);
    let s = app.status.clone().unwrap();
    assert!(
        s.error && s.text.contains("已用于") && s.text.contains("03-14"),
        "{s:?}"
    );
    assert_eq!(
        form(app).draft.photos.len(),
        1,
        "still attached: the helper decides"
    );
}

#[test]
fn a_signature_image_already_on_another_visit_is_flagged_in_the_form() {
    let mut fx = fixture(Lang::Zh);
    let card = write_jpeg(&fx.dir.path().join("card.jpg"), 600, 400);
    let c = client(&fx.app);
    let rt = fx.app.runtime().clone();
    let hash = rt.block_on(c.attach_card_photo(&card)).unwrap();
    let mut visit = VisitBody::new(VisitKind::Home, now() - Duration::days(1));
    visit.household_signature = Some(HouseholdSignature::PaperCard { image_sha256: hash });
    rt.block_on(c.record_visit(2, visit, None, None, now()))
        .unwrap();

    let app = &mut fx.app;
    app.update(Action::Char('n'));
    focus(app, Field::Signature);
    app.update(Action::Right); // the signed paper card
    app.update(Action::Enter);
    keys(app, "card.jpg");
    app.update(Action::Enter);
    assert!(app.overlay.is_none(), "{:?}", app.status);
    let s = app.status.clone().unwrap();
    assert!(
        s.error && s.text.contains("⚠ 此签字图片已用于 03-14 的另一次走访"),
        "{s:?}"
    );
}

/// A draft saved with a photo that another visit takes afterwards: reopening it says so,
/// and Ctrl+S warns first; a second Ctrl+S signs all the same.
#[test]
fn a_reopened_draft_whose_photo_was_used_since_warns_before_signing() {
    let mut fx = fixture(Lang::Zh);
    let photo = write_jpeg(&fx.dir.path().join("p.jpg"), 320, 240);
    let sig = stored_signature(&fx.app, fx.dir.path(), "sig.png", 120);
    let c = client(&fx.app);
    let rt = fx.app.runtime().clone();
    let p = rt.block_on(c.attach_photo(&photo)).unwrap();
    let mut draft = VisitDraft::new(1, VisitKind::Home, now() - Duration::minutes(30));
    draft.photos.push(p.clone());
    draft.signature_image = Some(sig);
    rt.block_on(c.save_draft(&draft)).unwrap();
    let mut call = VisitBody::new(VisitKind::Phone, now() - Duration::days(1));
    call.photos.push(p);
    rt.block_on(c.record_visit(2, call, None, None, now()))
        .unwrap();

    let app = &mut fx.app;
    app.update(Action::Char('n'));
    assert_eq!(form(app).draft.id, draft.id, "today's draft reopens");
    assert!(
        status(app).contains("⚠ 此照片已用于 03-14"),
        "{:?}",
        app.status
    );
    app.update(Action::Sign);
    assert!(matches!(app.screen, Screen::Form(_)), "warned, not signed");
    assert!(
        status(app).contains("此照片已用于 03-14") && status(app).contains("再按 Ctrl+S"),
        "{:?}",
        app.status
    );
    app.update(Action::Sign);
    assert_eq!(app.screen, Screen::Households, "{:?}", app.status);
    assert!(drafts(app).is_empty());
}

#[test]
fn the_photo_panel_of_a_new_form_says_no_photo_not_unsigned() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    let text = draw_at(app, 120, 40);
    assert!(text.contains("│尚无照片"), "{text}");
    assert!(!text.contains("│未签"), "{text}");
    focus(app, Field::Signature);
    assert!(draw_at(app, 120, 40).contains("│未签"));
}

// 6. The detail screen shows a visit signed from it.

#[test]
fn the_detail_screen_lists_a_visit_signed_from_it() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Enter);
    assert!(app.history.is_empty());
    app.update(Action::Char('n'));
    app.update(Action::Right);
    app.update(Action::Sign);
    assert_eq!(app.screen, Screen::Detail { household_id: 1 });
    assert_eq!(app.history.len(), 1, "the new call is listed");
}

// 7. The sync result stays on screen after the key press that delivers it.

#[test]
fn the_sync_result_survives_the_key_press_that_delivers_it() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('s'));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.sync.running && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        app.update(Action::Down);
    }
    assert!(!app.sync.running);
    assert!(status(app).contains("同步中断"), "{:?}", app.status);
    // The next key press dismisses it as usual.
    app.update(Action::Down);
    assert!(app.status.is_none());
    app.apply_sync_event(SyncEvent::Finished(Err("x".into())));
}

// 8. Only `y` submits the attendance sheet.

#[test]
fn enter_does_not_submit_the_sheet() {
    let fx = fixture(Lang::Zh);
    let c = client(&fx.app);
    fx.app
        .runtime()
        .block_on(become_second_helper_with_sheet(&c));
    let mut fx = fx;
    let app = &mut fx.app;
    app.update(Action::Char('a'));
    app.update(Action::Char('S'));
    assert!(matches!(app.overlay, Some(Overlay::ConfirmSubmit { .. })));
    app.update(Action::Enter);
    assert!(app.overlay.is_none(), "any other key cancels");
    let pending = app
        .runtime()
        .block_on(c.store().pending_submissions())
        .unwrap();
    assert!(pending.is_empty(), "Enter did not sign the sheet");
}

// 11. An amendment supersedes its original even when the clock went backwards.

#[test]
fn an_amendment_supersedes_the_original_after_the_clock_went_back() {
    let fx = fixture(Lang::Zh);
    let c = client(&fx.app);
    let rt = fx.app.runtime();
    let call = VisitBody::new(VisitKind::Phone, now() - Duration::days(3));
    let original = rt
        .block_on(c.record_visit(2, call.clone(), None, None, now()))
        .unwrap();
    let mut first = call.clone();
    first.notes = Some("第一次更正".into());
    // The device clock was set back a day before the correction.
    let back = now() - Duration::days(1);
    let a1 = rt
        .block_on(c.record_visit(
            2,
            first,
            Some((original.record.id, Some("补备注".into()))),
            None,
            back,
        ))
        .unwrap();
    let row = rt.block_on(c.original_visit(original.record.id)).unwrap();
    assert_eq!(row.current.signed.record.id, a1.record.id);
    // A later correction of the same device wins although its clock reads earlier still.
    let mut second = call;
    second.notes = Some("第二次更正".into());
    let a2 = rt
        .block_on(c.record_visit(
            2,
            second,
            Some((original.record.id, Some("再补备注".into()))),
            None,
            back - Duration::hours(1),
        ))
        .unwrap();
    let row = rt.block_on(c.original_visit(original.record.id)).unwrap();
    assert_eq!(row.current.signed.record.id, a2.record.id);
}

// 12. Strokes on the pad survive Ctrl+C.

#[test]
fn strokes_on_the_open_pad_are_kept_when_the_app_is_quit() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    focus(app, Field::Signature);
    app.update(Action::Enter);
    assert!(matches!(app.overlay, Some(Overlay::Pad(_))));
    let (canvas, _) = ui::pad_canvas((80, 24));
    app.update(Action::MouseDown {
        col: canvas.x + 3,
        row: canvas.y + 2,
    });
    for i in 1..10 {
        app.update(Action::MouseDrag {
            col: canvas.x + 3 + i,
            row: canvas.y + 2 + i % 3,
        });
    }
    app.update(Action::Quit);
    assert!(app.quit);
    let saved = drafts(app);
    assert_eq!(saved.len(), 1);
    let pad = saved[0].pad.clone().expect("the strokes are in the draft");
    assert!(pad.point_count() >= 10, "{}", pad.point_count());
    assert_eq!(saved[0].signature_method, SignatureMethod::Pad);
}

// 9. The form scrolls at the smallest supported size and always says whether it can be signed.

#[test]
fn the_form_scrolls_to_the_focused_field_at_60x16_and_keeps_the_sign_line() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    focus(app, Field::Signature);
    app.update(Action::Right);
    app.update(Action::Right);
    assert_eq!(form(app).draft.signature_method, SignatureMethod::Witness);
    focus(app, Field::WitnessReason);
    keys(app, "户主不识字");
    let text = draw_at(app, 60, 16);
    assert!(
        text.contains("不能签字原因") && text.contains("户主不识字"),
        "the focused field is in view:\n{text}"
    );
    assert!(
        text.contains("✗入户走访须先"),
        "why it cannot be signed:\n{text}"
    );

    focus(app, Field::WitnessName);
    keys(app, "王五");
    focus(app, Field::WitnessRole);
    keys(app, "村公证人");
    let mark = stored_signature(app, fx.dir.path(), "witness.png", 100);
    if let Screen::Form(f) = &mut app.screen {
        f.draft.signature_image = Some(mark);
    }
    let text = draw_at(app, 60, 16);
    assert!(
        text.contains("村公证人") && text.contains("✓ Ctrl+S"),
        "{text}"
    );

    focus(app, Field::Kind);
    let text = draw_at(app, 60, 16);
    assert!(
        text.contains("●入户") && text.contains("✓ Ctrl+S"),
        "{text}"
    );

    // The pairing ends (a sync) before the visit's day: the form still names the
    // household, and no longer says ✓ for a signing that would be refused (QA s23a F14).
    let household_id = form(app).draft.household_id;
    let at = form(app).draft.to_body().expect("a complete draft").at;
    let day = bangfu_client::client::today(at);
    let i = app
        .households
        .iter()
        .position(|h| h.detail.summary.id == household_id)
        .expect("the draft's household is listed");
    let mut detail = app.households.remove(i).detail;
    let head = detail.summary.head_name.clone();
    for p in &mut detail.pairings {
        p.valid_to = Some(day);
    }
    app.ended = vec![bangfu_client::client::EndedHousehold::new(
        detail, HELPER_ID, day,
    )];
    let text = draw_at(app, 60, 16);
    assert!(text.contains(&format!("· {head}")), "{text}");
    assert!(!text.contains("✓ Ctrl+S") && text.contains('✗'), "{text}");
}

// 13. The witness leaves a mark: drawn on the pad, stored like the household's drawing.

#[test]
fn a_witness_signs_on_the_pad_and_the_record_keeps_the_mark() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    focus(app, Field::Signature);
    app.update(Action::Right);
    app.update(Action::Right);
    for (field, text) in [
        (Field::WitnessName, "王五"),
        (Field::WitnessRole, "村公证人"),
        (Field::WitnessReason, "户主不识字"),
    ] {
        focus(app, field);
        keys(app, text);
    }
    let text = draw(app);
    assert!(
        text.contains("✗ 未签"),
        "typed names are not a mark:\n{text}"
    );
    app.update(Action::Sign);
    assert!(
        matches!(app.screen, Screen::Form(_)),
        "not signed without a mark"
    );

    focus(app, Field::Signature);
    app.update(Action::Enter);
    assert!(matches!(app.overlay, Some(Overlay::Pad(_))));
    assert!(draw(app).contains("见证人签字板"));
    let (canvas, _) = ui::pad_canvas((80, 24));
    app.update(Action::MouseDown {
        col: canvas.x + 4,
        row: canvas.y + 2,
    });
    for i in 1..12 {
        app.update(Action::MouseDrag {
            col: canvas.x + 4 + i * 2,
            row: canvas.y + 2 + i % 4,
        });
    }
    app.update(Action::MouseUp);
    app.update(Action::Enter);
    assert!(app.overlay.is_none(), "{:?}", app.status);
    assert_eq!(form(app).draft.signature_method, SignatureMethod::Witness);
    assert!(draw(app).contains("✓ 已签"));
    app.update(Action::Sign);
    assert_eq!(app.screen, Screen::Households, "{:?}", app.status);

    let photos = app.client().photos().clone();
    let row = &app.runtime().block_on(client(app).visits(None, 5)).unwrap()[0];
    match row
        .current
        .signed
        .record
        .visit
        .clone()
        .unwrap()
        .household_signature
    {
        Some(HouseholdSignature::Witness {
            name,
            image_sha256: Some(mark),
            ..
        }) => {
            assert_eq!(name, "王五");
            assert!(photos.verify(&mark), "the mark is stored and intact");
        }
        other => panic!("{other:?}"),
    }
}
