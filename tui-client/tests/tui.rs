//! The terminal UI rendered to ratatui's `TestBackend` at 80×24, driven by key and
//! mouse actions through `update`, over a real store in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod common;

use bangfu_client::app::{Action, App, Clock, Overlay, Screen, SyncEvent};
use bangfu_client::i18n::Lang;
use bangfu_client::sync::{SyncPhase, SyncProgress, SyncReport};
use bangfu_client::ui::{self, buffer_text};
use bangfu_client::{Client, DataDir, Limits};
use bangfu_shared::VisitKind;
use bangfu_shared::visit::HouseholdSignature;
use common::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::style::Color;

fn fixture(lang: Lang) -> AppFixture {
    app_fixture(lang)
}

fn terminal(w: u16, h: u16) -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(w, h)).unwrap()
}

fn draw(app: &App) -> String {
    let mut t = terminal(80, 24);
    t.draw(|f| ui::render(app, f)).unwrap();
    buffer_text(t.backend().buffer())
}

fn keys(app: &mut App, s: &str) {
    for c in s.chars() {
        app.update(Action::Char(c));
    }
}

/// Moves the form's focus until `label` is on the highlighted row.
fn focus(app: &mut App, field: bangfu_client::app::form::Field) {
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

#[test]
fn households_list_at_80x24_marks_the_overdue_household() {
    let fx = fixture(Lang::Zh);
    let mut t = terminal(80, 24);
    t.draw(|f| ui::render(&fx.app, f)).unwrap();
    let text = buffer_text(t.backend().buffer());
    assert!(text.contains("我的帮扶户 (3)"), "{text}");
    for name in ["张三", "李四", "王五", "上次入户", "下次应访"] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert!(
        text.contains("!逾期"),
        "never visited households are overdue:\n{text}"
    );
    assert!(
        text.lines().last().unwrap().contains("n 新走访"),
        "help line"
    );
    // The overdue mark is red.
    let buf = t.backend().buffer();
    let red = buf
        .content
        .iter()
        .any(|c| c.symbol() == "逾" && c.fg == Color::Red);
    assert!(red, "overdue is shown in red");
}

#[test]
fn english_interface_with_lang_en() {
    let fx = fixture(Lang::En);
    let text = draw(&fx.app);
    assert!(
        text.contains("My households (3)") && text.contains("!OVERDUE"),
        "{text}"
    );
    assert!(text.contains("Enter detail"));
}

#[test]
fn household_detail_shows_members_cause_measures_and_due() {
    let mut fx = fixture(Lang::Zh);
    fx.app.update(Action::Enter);
    let text = draw(&fx.app);
    for s in [
        "帮扶户详情",
        "张三之妻",
        "因病",
        "产业扶持",
        "入户 ≤2026-04-30",
        "逾期",
        "走访记录",
    ] {
        assert!(text.contains(s), "{s} missing:\n{text}");
    }
    fx.app.update(Action::Back);
    assert_eq!(fx.app.screen, Screen::Households);
}

#[test]
fn visit_form_renders_every_section_at_80x24() {
    let mut fx = fixture(Lang::Zh);
    fx.app.update(Action::Char('n'));
    let text = draw(&fx.app);
    for s in [
        "新走访（帮扶实录）",
        "方式",
        "●入户",
        "○电话",
        "时间",
        "2026-03-15 10:00",
        "[ ]教育",
        "[ ]社保",
        "发现问题",
        "帮",
        "扶",
        "送",
        "家庭变化",
        "备注",
        "照片",
        "农户签字",
        "‹签字板›",
        "✗ 未签",
    ] {
        assert!(text.contains(s), "{s} missing:\n{text}");
    }
    assert!(
        text.lines().last().unwrap().contains("Ctrl+S"),
        "help line:\n{text}"
    );
}

#[test]
fn keys_fill_and_sign_a_phone_call() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Down); // 李四
    app.update(Action::Char('n'));
    app.update(Action::Right); // kind → phone
    app.update(Action::Next); // time
    app.update(Action::Next); // policies
    keys(app, "25"); // medical, social security
    app.update(Action::Next);
    keys(app, "药费负担重；孙子上学远");
    app.update(Action::Next);
    keys(app, "协助办慢病卡");
    focus(app, bangfu_client::app::form::Field::Deliveries);
    app.update(Action::Paste("大米:150; 月饼:88:中秋".into()));
    focus(app, bangfu_client::app::form::Field::Family);
    keys(app, "出生:张小宝");
    let text = draw(app);
    assert!(
        text.contains("●电话") && text.contains("[x]医疗") && text.contains("[x]社保"),
        "{text}"
    );
    assert!(
        !text.contains("农户签字"),
        "a phone call has no household signature"
    );
    app.update(Action::Sign);
    assert_eq!(
        app.screen,
        Screen::Households,
        "signing returns to the list"
    );
    let status = app.status.clone().unwrap();
    assert!(
        !status.error && status.text.contains("已签名保存"),
        "{status:?}"
    );

    let rows = app
        .runtime()
        .block_on(app.client().visits(None, 10))
        .unwrap();
    let body = rows[0].current.signed.record.visit.clone().unwrap();
    assert_eq!(body.kind, VisitKind::Phone);
    assert_eq!(
        body.problems,
        vec!["药费负担重".to_string(), "孙子上学远".to_string()]
    );
    assert_eq!(body.delivered_fen(), 15000 + 8800);
    assert_eq!(body.family_changes.len(), 1);
    let text = draw(&fx.app);
    assert!(
        text.contains("2026-03-15"),
        "last phone call shown in the list:\n{text}"
    );
}

#[test]
fn a_home_visit_without_signature_stays_a_draft_and_reopens() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    focus(app, bangfu_client::app::form::Field::Notes);
    keys(app, "门口有狗");
    app.update(Action::Sign);
    let status = app.status.clone().unwrap();
    assert!(
        status.error && status.text.contains("保留为草稿"),
        "{status:?}"
    );
    assert!(matches!(app.screen, Screen::Form(_)), "the form stays open");
    app.update(Action::Back);
    app.update(Action::Char('d'));
    let text = draw(app);
    assert!(text.contains("草稿 (1)") && text.contains("张三"), "{text}");
    // What stops signing is cut with "…" when it does not fit (L1), not mid-word.
    let row = text.lines().find(|l| l.contains("张三")).unwrap();
    assert!(row.contains("入户走访须先由农户"), "{row}");
    assert!(
        row.trim_end()
            .trim_end_matches('│')
            .trim_end()
            .ends_with('…'),
        "{row}"
    );
    app.update(Action::Back);
    app.update(Action::Char('n'));
    match &app.screen {
        Screen::Form(f) => assert_eq!(f.draft.notes, "门口有狗", "the draft is reopened"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn signature_pad_draws_with_the_mouse_and_signs_the_home_visit() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    focus(app, bangfu_client::app::form::Field::Signature);
    app.update(Action::Enter);
    assert!(matches!(app.overlay, Some(Overlay::Pad(_))));
    let (canvas, _) = ui::pad_canvas((80, 24));
    // An empty pad cannot be accepted.
    app.update(Action::Enter);
    assert!(app.status.as_ref().unwrap().error);
    // Draw a zigzag through real crossterm mouse events mapped by Action::from_event.
    let mouse = |kind, col, row| {
        Event::Mouse(MouseEvent {
            kind,
            column: col,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    let (x0, y0) = (canvas.x + 5, canvas.y + 2);
    let mut events = vec![mouse(MouseEventKind::Down(MouseButton::Left), x0, y0)];
    for i in 1..20u16 {
        events.push(mouse(
            MouseEventKind::Drag(MouseButton::Left),
            x0 + i * 2,
            y0 + (i % 4) * 2,
        ));
    }
    events.push(mouse(MouseEventKind::Up(MouseButton::Left), x0 + 40, y0));
    events.push(mouse(MouseEventKind::Down(MouseButton::Left), 0, 0)); // outside: ignored
    for e in events {
        app.update(Action::from_event(e).unwrap());
    }
    let mut t = terminal(80, 24);
    t.draw(|f| ui::render(app, f)).unwrap();
    let text = buffer_text(t.backend().buffer());
    assert!(text.contains("农户签字板"), "{text}");
    assert!(text.contains('█'), "ink on the pad:\n{text}");
    assert!(text.lines().last().unwrap().contains("u 撤销"));
    let ink = t
        .backend()
        .buffer()
        .cell((x0, y0))
        .unwrap()
        .symbol()
        .to_string();
    assert_eq!(ink, "█");

    app.update(Action::Enter); // accept
    assert!(app.overlay.is_none());
    let text = draw(app);
    assert!(text.contains("✓ 已签"), "{text}");
    app.update(Action::Sign);
    assert_eq!(app.screen, Screen::Households, "{:?}", app.status);
    let photos = app.client().photos().clone();
    let rows = app
        .runtime()
        .block_on(app.client().visits(None, 10))
        .unwrap();
    let body = rows[0].current.signed.record.visit.clone().unwrap();
    match body.household_signature {
        Some(HouseholdSignature::Drawn { image_sha256 }) => {
            assert!(photos.verify(&image_sha256));
            let png = std::fs::read(photos.path_of(&image_sha256)).unwrap();
            assert_eq!(image::guess_format(&png).unwrap(), image::ImageFormat::Png);
        }
        other => panic!("{other:?}"),
    }
}

/// A photo cut short (copied off the phone while it was still being written) is
/// refused in the chooser with the reason, not attached with a grey bottom.
#[test]
fn the_file_chooser_refuses_a_photo_cut_short() {
    let mut fx = fixture(Lang::Zh);
    let dir = fx.app.last_dir.clone();
    let whole = std::fs::read(write_jpeg(&dir.join("whole.jpg"), 640, 480)).unwrap();
    std::fs::write(dir.join("a-half.jpg"), &whole[..whole.len() / 2]).unwrap();
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    focus(app, bangfu_client::app::form::Field::Photos);
    app.update(Action::Enter);
    app.update(Action::Down); // a-half.jpg (after the data/ directory)
    app.update(Action::Enter);
    let status = app.status.clone().unwrap();
    assert!(
        status.error
            && status
                .text
                .starts_with("照片文件不完整或已损坏（可能仍在复制中），未添加：")
            && status.text.ends_with("a-half.jpg"),
        "{status:?}"
    );
    assert!(
        matches!(app.overlay, Some(Overlay::Chooser(_))),
        "chooser stays open"
    );
}

#[test]
fn the_file_chooser_refuses_a_text_file_and_attaches_a_photo_with_a_thumbnail() {
    let mut fx = fixture(Lang::Zh);
    let dir = fx.app.last_dir.clone();
    // Named as a photo, but text: listed, and refused when chosen. A file not named
    // as a picture is not offered at all (QA s30d P4).
    std::fs::write(dir.join("a-notes.jpg"), "not a photo").unwrap();
    std::fs::write(dir.join("a-notes.txt"), "not a photo").unwrap();
    write_jpeg(&dir.join("b-photo.jpg"), 640, 480);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    focus(app, bangfu_client::app::form::Field::Photos);
    app.update(Action::Enter);
    let text = draw(app);
    assert!(
        text.contains("选择照片文件") && text.contains("a-notes.jpg") && text.contains("▸ data/"),
        "{text}"
    );
    assert!(!text.contains("a-notes.txt"), "{text}");
    app.update(Action::Down); // a-notes.jpg (after the data/ directory)
    app.update(Action::Enter);
    let status = app.status.clone().unwrap();
    assert!(
        status.error && status.text.starts_with("不是可读的图片"),
        "{status:?}"
    );
    assert!(
        matches!(app.overlay, Some(Overlay::Chooser(_))),
        "chooser stays open"
    );
    app.update(Action::Down);
    app.update(Action::Enter);
    assert!(app.overlay.is_none(), "{:?}", app.status);
    let mut t = terminal(80, 24);
    t.draw(|f| ui::render(app, f)).unwrap();
    let text = buffer_text(t.backend().buffer());
    assert!(text.contains("1 ◀ 1/1 ▶"), "{text}");
    assert!(text.contains('▀'), "half-block thumbnail:\n{text}");
    assert!(text.contains("640×480"));
}

#[test]
fn the_file_chooser_filters_as_you_type_and_opens_a_typed_path() {
    let mut fx = fixture(Lang::Zh);
    let dir = fx.app.last_dir.clone();
    let camera = dir.join("DCIM");
    std::fs::create_dir(&camera).unwrap();
    for i in 1..=30 {
        std::fs::write(camera.join(format!("IMG_{i:04}.png")), "not a photo").unwrap();
    }
    write_jpeg(&camera.join("IMG_0031.jpg"), 320, 240);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    focus(app, bangfu_client::app::form::Field::Photos);
    app.update(Action::Enter);

    // A path typed from the root: the listing is not filtered by it.
    let missing = dir.join("no-such-folder");
    keys(app, &missing.display().to_string());
    let text = draw(app);
    assert!(text.contains("前往："), "{text}");
    app.update(Action::Enter);
    let status = app.status.clone().unwrap();
    assert!(
        status.error
            && status.text.contains("找不到文件或目录")
            && status.text.contains("no-such-folder"),
        "{status:?}"
    );
    for _ in 0.."no-such-folder".len() {
        app.update(Action::Backspace);
    }
    keys(app, "DCIM");
    app.update(Action::Enter);
    let text = draw(app);
    assert!(
        text.contains("IMG_0001.png") && !text.contains("IMG_0031.jpg"),
        "30 files fill the dialog:\n{text}"
    );

    // Typing filters the 31 names down to the one photo, case ignored.
    keys(app, "jpg");
    let text = draw(app);
    assert!(
        text.contains("筛选：jpg") && text.contains("IMG_0031.jpg"),
        "{text}"
    );
    assert!(!text.contains("IMG_0001.png"), "{text}");
    keys(app, "x");
    assert!(draw(app).contains("没有名称含此文字的文件"));
    app.update(Action::Backspace);
    app.update(Action::Enter);
    assert!(app.overlay.is_none(), "{:?}", app.status);
    assert_eq!(app.last_dir, camera, "the next chooser starts in DCIM");
    let text = draw(app);
    assert!(text.contains("320×240"), "{text}");
}

#[test]
fn history_voids_a_visit_with_a_reason() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    app.update(Action::Right);
    app.update(Action::Sign);
    app.update(Action::Char('h'));
    let text = draw(app);
    assert!(
        text.contains("走访记录") && text.contains("仅本地"),
        "{text}"
    );
    app.update(Action::Char('v'));
    keys(app, "录错户");
    app.update(Action::Backspace);
    keys(app, "户了");
    let text = draw(app);
    assert!(text.contains("作废原因：录错户了"), "{text}");
    app.update(Action::Enter);
    let text = draw(app);
    assert!(
        text.contains("已作废") && text.contains("录错户了"),
        "{text}"
    );
    // Amend a void visit: refused with a message, no panic, in the CLI's Chinese words
    // (not `已作废: <id>`).
    app.update(Action::Char('a'));
    let status = app.status.clone().unwrap();
    assert!(status.error, "{status:?}");
    assert_eq!(status.text, "此走访已作废，不能更正");
}

#[test]
fn the_event_loop_runs_on_a_test_backend() {
    let mut fx = fixture(Lang::Zh);
    let mut t = terminal(80, 24);
    let key = |c| Event::Key(KeyEvent::new(c, KeyModifiers::NONE));
    let mut script = vec![
        key(KeyCode::Char('n')),
        key(KeyCode::Right),
        Event::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL)),
        Event::Resize(100, 30),
        key(KeyCode::Char('q')),
    ]
    .into_iter();
    bangfu_client::tui::event_loop(&mut t, &mut fx.app, || Ok(script.next())).unwrap();
    assert!(fx.app.quit);
    assert_eq!(fx.app.size, (100, 30));
    let visits = fx
        .app
        .runtime()
        .block_on(fx.app.client().visits(None, 10))
        .unwrap();
    assert_eq!(visits.len(), 1, "Ctrl+S signed the phone call");
}

#[test]
fn no_panic_on_any_key_at_any_size() {
    let mut fx = fixture(Lang::Zh);
    let actions = [
        Action::Char('n'),
        Action::Enter,
        Action::Char('x'),
        Action::Char('1'),
        Action::Char(' '),
        Action::Left,
        Action::Right,
        Action::Home,
        Action::End,
        Action::PageDown,
        Action::PageUp,
        Action::Backspace,
        Action::Delete,
        Action::Paste("粘贴\n多行\ttext".into()),
        Action::MouseDown { col: 30, row: 10 },
        Action::MouseDrag { col: 65, row: 20 },
        Action::MouseDrag { col: 500, row: 500 },
        Action::MouseUp,
        Action::Next,
        Action::Prev,
        Action::Up,
        Action::Down,
        Action::Char('h'),
        Action::Char('s'),
        Action::Char('d'),
        Action::Char('a'),
        Action::Char('v'),
        Action::Char('u'),
        Action::Char('c'),
        Action::Tick,
        Action::Sign,
        Action::Back,
    ];
    let sizes = [
        (0u16, 0u16),
        (1, 1),
        (20, 5),
        (59, 15),
        (60, 16),
        (80, 24),
        (132, 43),
    ];
    let mut step = 0usize;
    for round in 0..6 {
        for (i, a) in actions.iter().enumerate() {
            let (w, h) = sizes[(i + round) % sizes.len()];
            fx.app.update(Action::Resize {
                width: w,
                height: h,
            });
            // A pseudo-random walk through the actions, deterministic.
            step = (step * 31 + i * 7 + round) % actions.len();
            fx.app.update(actions[step].clone());
            fx.app.update(a.clone());
            fx.app.quit = false;
            let mut t = terminal(w, h);
            t.draw(|f| ui::render(&fx.app, f)).unwrap();
        }
    }
}

#[test]
fn an_unregistered_device_shows_the_login_screen() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let client = rt
        .block_on(Client::open(DataDir::new(dir.path()), Limits::default()))
        .unwrap();
    let mut app = App::new(client, rt, Lang::Zh, Clock::Fixed(now()), (80, 24));
    assert!(matches!(app.screen, Screen::Login(_)));
    app.update(Action::Next);
    keys(&mut app, "13800000000");
    app.update(Action::Next);
    keys(&mut app, "pw");
    let text = draw(&app);
    assert!(
        text.contains("首次登录")
            && text.contains("13800000000")
            && text.contains("••")
            && !text.contains("pw_"),
        "{text}"
    );
    // No server on this port: a clear network error, still on the login screen.
    if let Screen::Login(f) = &mut app.screen {
        f.server = "http://127.0.0.1:9".into();
    }
    app.update(Action::Enter);
    assert!(matches!(app.screen, Screen::Login(_)));
    assert!(
        app.status.as_ref().unwrap().text.contains("网络不通"),
        "{:?}",
        app.status
    );
}

/// Records a phone call from the households screen (n, phone, Ctrl+S).
fn phone_call(app: &mut App) {
    app.update(Action::Char('n'));
    app.update(Action::Right);
    app.update(Action::Sign);
}

#[test]
fn a_running_sync_shows_a_progress_bar_with_records_and_bytes() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.apply_sync_event(SyncEvent::Progress(SyncProgress {
        phase: SyncPhase::Uploading,
        records_done: 3,
        records_total: 10,
        bytes_done: 1_048_576,
        bytes_total: 4 * 1_048_576,
        pulled: 0,
        files_done: 0,
        files_total: 0,
        bytes_received: 0,
        retry: None,
        retry_zh: None,
    }));
    assert!(app.sync.running);
    let mut t = terminal(80, 24);
    t.draw(|f| ui::render(app, f)).unwrap();
    let text = buffer_text(t.backend().buffer());
    let status_row = text.lines().nth(22).unwrap();
    assert!(
        status_row.contains("上传照片")
            && status_row.contains("记录 3/10")
            && status_row.contains("1.0/4.0 MB"),
        "{text}"
    );
    // The bar is filled to (3/10 + 1/4) / 2 = 27.5 %: about 22 of 80 cells.
    let buf = t.backend().buffer();
    let filled = (0..80)
        .filter(|x| {
            let cell = &buf[(*x, 22)];
            cell.symbol() == "█" || cell.bg == Color::Green
        })
        .count();
    assert!((18..=26).contains(&filled), "{filled} cells filled");

    // A weak link: the bar says it is retrying.
    app.apply_sync_event(SyncEvent::Progress(SyncProgress {
        phase: SyncPhase::Uploading,
        records_done: 3,
        records_total: 10,
        bytes_done: 1_048_576,
        bytes_total: 4 * 1_048_576,
        pulled: 0,
        files_done: 0,
        files_total: 0,
        bytes_received: 0,
        retry: Some("network: reset (retrying in 1.2 s)".into()),
        retry_zh: Some("网络中断（1.2 秒后重试）".into()),
    }));
    // Retrying, without blaming the network: the note says why (a server still
    // receiving the last run's upload is not a weak link, QA s25d F8).
    let text = draw(app);
    assert!(
        text.contains("· 重试中") && !text.contains("网络不稳"),
        "{text}"
    );

    // Photos of a re-installed device coming back: the bytes move while a file
    // arrives (QA s31b R4).
    app.apply_sync_event(SyncEvent::Progress(SyncProgress {
        phase: SyncPhase::Downloading,
        records_done: 10,
        records_total: 10,
        bytes_done: 4 * 1_048_576,
        bytes_total: 4 * 1_048_576,
        pulled: 12,
        files_done: 1,
        files_total: 3,
        bytes_received: 1_572_864,
        retry: None,
        retry_zh: None,
    }));
    let text = draw(app);
    assert!(
        text.contains("下载照片") && text.contains("↓ 1/3 1.5 MB"),
        "{text}"
    );
    // Nothing sent this run: no `记录 0/0 · 照片 0/0 KB` beside it (QA s32c W1).
    app.apply_sync_event(SyncEvent::Progress(SyncProgress {
        phase: SyncPhase::Downloading,
        records_done: 0,
        records_total: 0,
        bytes_done: 0,
        bytes_total: 0,
        pulled: 12,
        files_done: 0,
        files_total: 21,
        bytes_received: 40_000,
        retry: None,
        retry_zh: None,
    }));
    let text = draw(app);
    assert!(text.contains("下载照片 · ↓ 0/21 40 KB"), "{text}");
    assert!(!text.contains("0/0"), "{text}");

    app.apply_sync_event(SyncEvent::Finished(Ok(SyncReport {
        synced: 10,
        ..SyncReport::default()
    })));
    assert!(!app.sync.running);
    let text = draw(app);
    assert!(text.contains("同步完成：已同步 10"), "{text}");
}

/// QA s32c W8: a run the server's ended session stopped (a revoked device's, an expired
/// login) does not promise that the next sync goes on by itself.
#[test]
fn a_sync_stopped_by_an_ended_session_says_to_log_in_not_that_it_resumes() {
    use bangfu_client::app::SyncStopped;
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.apply_sync_event(SyncEvent::Finished(Err(SyncStopped {
        text: Lang::Zh.error(&bangfu_client::ClientError::SessionExpired),
        resumes: false,
    })));
    let status = app.status.clone().unwrap();
    assert!(
        status.text.starts_with("同步中断：") && !status.text.contains("下次同步将继续"),
        "{status:?}"
    );
    assert!(status.text.contains("登录"), "{status:?}");
    app.apply_sync_event(SyncEvent::Finished(Err("network".into())));
    let status = app.status.clone().unwrap();
    assert!(status.text.contains("下次同步将继续"), "{status:?}");
}

/// The sync result says how many visits the server flagged as not counting, first (the
/// status line is one row) and as a warning; nothing when there are none.
#[test]
fn the_sync_result_counts_the_visits_that_do_not_count() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.apply_sync_event(SyncEvent::Finished(Ok(SyncReport {
        synced: 3,
        not_counted: 2,
        ..SyncReport::default()
    })));
    let status = app.status.clone().unwrap();
    assert!(status.error, "{status:?}");
    assert!(
        status
            .text
            .starts_with("⚠ 2 条走访不计入考勤，请查看原因并更正 · 同步完成：已同步 3"),
        "{status:?}"
    );
    let text = draw(app);
    assert!(
        text.contains("⚠ 2 条走访不计入考勤，请查看原因并更正"),
        "{text}"
    );

    app.apply_sync_event(SyncEvent::Finished(Ok(SyncReport {
        synced: 3,
        ..SyncReport::default()
    })));
    let status = app.status.clone().unwrap();
    assert!(
        !status.error && !status.text.contains("不计入"),
        "{status:?}"
    );
}

/// Marks record `id` synced with the town office's review `note`, as a pull that
/// brought the note stores it.
fn return_for_correction(app: &App, id: uuid::Uuid, note: &str) {
    let db = app.client().store().connection().clone();
    app.runtime()
        .block_on(async {
            use sea_orm::ConnectionTrait as _;
            db.execute_unprepared(&format!(
                "UPDATE records SET sync_state = 'synced', review_note = '{note}' WHERE id = '{id}'"
            ))
            .await
        })
        .unwrap();
}

/// A sync that brought a town office's review note says so first (the helper would
/// otherwise find it only in the history), and the amendment form shows the note it
/// answers, read-only.
#[test]
fn a_review_note_is_announced_and_shown_in_the_amendment_form() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.apply_sync_event(SyncEvent::Finished(Ok(SyncReport {
        synced: 1,
        returned_for_correction: 1,
        ..SyncReport::default()
    })));
    let status = app.status.clone().unwrap();
    assert!(status.error, "{status:?}");
    assert!(
        status
            .text
            .starts_with("✎ 1 条走访被乡镇退回，请更正 · 同步完成"),
        "{status:?}"
    );

    phone_call(app);
    phone_call(app);
    let id = app
        .runtime()
        .block_on(app.client().visits(None, 10))
        .unwrap()[0]
        .visit_id;
    return_for_correction(app, id, "照片与农户家不符，请核实");
    app.update(Action::Char('h'));
    app.history_selected = app.history.iter().position(|v| v.visit_id == id).unwrap();
    app.update(Action::Char('a'));
    assert!(matches!(app.screen, Screen::Form(_)), "{:?}", app.screen);
    let text = draw(app);
    assert!(
        text.contains("✎ 乡镇审核意见：照片与农户家不符，请核实"),
        "{text}"
    );
    // A correction of a visit without a note shows none.
    app.update(Action::Back);
    let fresh = app.history.iter().position(|v| v.review.is_none()).unwrap();
    app.history_selected = fresh;
    app.update(Action::Char('a'));
    assert!(!draw(app).contains("乡镇审核意见"));
}

#[test]
fn each_visit_shows_its_sync_state_and_a_rejection_shows_the_reason() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    phone_call(app);
    phone_call(app);
    phone_call(app);
    let ids: Vec<String> = app
        .runtime()
        .block_on(app.client().visits(None, 10))
        .unwrap()
        .iter()
        .map(|v| v.visit_id.to_string())
        .collect();
    let db = app.client().store().connection().clone();
    app.runtime()
        .block_on(async {
            use sea_orm::ConnectionTrait as _;
            db.execute_unprepared(&format!(
                "UPDATE records SET sync_state = 'rejected', sync_reason = '签名与记录不符：签名后被改动' WHERE id = '{}'",
                ids[0]
            ))
            .await?;
            db.execute_unprepared(&format!(
                "UPDATE records SET sync_state = 'awaiting_photos' WHERE id = '{}'",
                ids[1]
            ))
            .await
        })
        .unwrap();
    app.update(Action::Char('h'));
    let text = draw(app);
    assert!(
        text.contains("被拒") && text.contains("待传照片") && text.contains("仅本地"),
        "{text}"
    );
    app.history_selected = app
        .history
        .iter()
        .position(|v| v.visit_id.to_string() == ids[0])
        .unwrap();
    let text = draw(app);
    assert!(
        text.contains("被拒：签名与记录不符：签名后被改动"),
        "{text}"
    );
    // The title counts what is left, each record once: waiting to go, and refused
    // (not sent again by itself); the household's detail screen marks it too.
    app.update(Action::Back);
    let text = draw(app);
    assert!(
        text.lines().next().unwrap().contains("待同步 2 · 被拒 1"),
        "{text}"
    );
    app.update(Action::Enter);
    assert!(draw(app).contains("被拒"));
}

#[test]
fn s_syncs_in_the_background_and_a_failure_leaves_the_records_local() {
    let mut fx = fixture(Lang::En);
    let app = &mut fx.app;
    phone_call(app);
    app.update(Action::Char('s'));
    assert!(app.sync.running, "started");
    app.update(Action::Char('s'));
    assert!(app.sync.running, "one sync at a time");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.sync.running && std::time::Instant::now() < deadline {
        app.update(Action::Tick);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!app.sync.running, "finished");
    let status = app.status.clone().unwrap();
    assert!(status.error, "{status:?}");
    assert!(
        status.text.contains("sync stopped") && status.text.contains("network"),
        "{status:?}"
    );
    app.update(Action::Char('h'));
    let text = draw(app);
    assert!(text.contains("local only"), "{text}");
}

/// A second helper's sheet for 2026Q1 with two rows, one visit on the first.
fn second_helper_with_sheet(lang: Lang) -> AppFixture {
    let fx = fixture(lang);
    let client = fx.app.client().clone();
    fx.app
        .runtime()
        .block_on(become_second_helper_with_sheet(&client));
    fx
}

#[test]
fn a_second_helper_remarks_signs_and_queues_the_sheet_offline() {
    let mut fx = second_helper_with_sheet(Lang::Zh);
    let app = &mut fx.app;
    assert!(draw(app).contains("a 考勤表"), "help line names the sheet");
    app.update(Action::Char('a'));
    assert_eq!(app.screen, Screen::Sheet);
    let text = draw(app);
    for s in [
        "考勤表 2026Q1",
        "未提交",
        "序号",
        "贫困户姓名",
        "第一帮扶责任人",
        "帮扶记录",
        "备注",
        "张三",
        "李四",
        "黄志强",
        "01-10入户",
        "e/Enter 备注",
        // The selected row's own-visit windows, signed with the sheet (QA s22b F2).
        "第二帮扶责任人走访：1月已走访；2月未走访",
    ] {
        assert!(text.contains(s), "{s} missing:\n{text}");
    }
    // The second row's remark.
    app.update(Action::Down);
    app.update(Action::Char('e'));
    assert!(matches!(app.overlay, Some(Overlay::Remark { .. })));
    keys(app, "未见记录");
    let typing = draw(app);
    assert!(typing.contains("未见记录_"));
    // The dialog names whose remark it is (QA s31c T10).
    assert!(typing.contains("备注 · 李四"), "{typing}");
    app.update(Action::Enter);
    assert!(app.overlay.is_none());
    let text = draw(app);
    assert!(
        text.contains("备注已保存") && text.contains("未见记录"),
        "{text}"
    );

    // Sign and queue, after a confirmation; any other key cancels.
    app.update(Action::Char('S'));
    let confirm = draw(app);
    assert!(confirm.contains("签名提交"), "{confirm}");
    // The quarter runs to March 31: said before it is frozen early (QA s32c W3).
    assert!(
        confirm.contains("本季度尚未结束（至3月31日）") && confirm.contains("迟报"),
        "{confirm}"
    );
    app.update(Action::Char('n'));
    assert!(app.overlay.is_none());
    let client = app.client().clone();
    let q: bangfu_shared::report::Quarter = "2026Q1".parse().unwrap();
    assert!(
        app.runtime()
            .block_on(client.store().pending_submissions())
            .unwrap()
            .is_empty()
    );
    app.update(Action::Char('S'));
    app.update(Action::Char('y'));
    let text = draw(app);
    assert!(text.contains("待提交"), "{text}");
    let pending = app
        .runtime()
        .block_on(client.store().pending_submissions())
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].submission.quarter, q);
    assert_eq!(pending[0].submission.remarks, vec![(2, "未见记录".into())]);
    assert_eq!(pending[0].submission.signature.len(), 128);

    // The server's answers as the screen shows them.
    for (state, shown) in [
        (
            bangfu_client::store::SubmissionState::Submitted { version: 2 },
            "已提交第2版",
        ),
        (
            bangfu_client::store::SubmissionState::Rejected {
                reason: "签名不符".into(),
            },
            "被拒：签名不符",
        ),
    ] {
        app.runtime()
            .block_on(client.store().answer_submission(pending[0].id, &state))
            .unwrap();
        app.update(Action::Back);
        app.update(Action::Char('a'));
        let text = draw(app);
        assert!(text.contains(shown), "{shown}:\n{text}");
    }
}

#[test]
fn the_sheet_screen_in_english_and_without_a_sheet() {
    let mut fx = fixture(Lang::En);
    fx.app.update(Action::Char('a'));
    assert!(draw(&fx.app).contains("No attendance sheet"));
    // Keys on an empty sheet do nothing harmful.
    for a in [
        Action::Enter,
        Action::Char('e'),
        Action::Down,
        Action::Right,
    ] {
        fx.app.update(a);
    }
    fx.app.update(Action::Char('S'));
    assert!(fx.app.overlay.is_none(), "nothing to sign");
    assert_eq!(fx.app.screen, Screen::Sheet);

    let mut fx = second_helper_with_sheet(Lang::En);
    fx.app.update(Action::Char('a'));
    let text = draw(&fx.app);
    for s in [
        "Attendance sheet 2026Q1",
        "not submitted",
        "Household",
        "Remark",
    ] {
        assert!(text.contains(s), "{s} missing:\n{text}");
    }
}

/// Gives the pulled 2026Q1 sheet a submitted version 1 with the server's check of it
/// (`reviewed_rows_match`), as a sync after the submission stores it.
fn set_review_check(app: &App, matched: Option<bool>) {
    let client = app.client().clone();
    app.runtime().block_on(async {
        let q = "2026Q1".parse().unwrap();
        let mut sheet = client.store().sheet(q).await.unwrap().unwrap();
        sheet.submitted_version = Some(1);
        sheet.reviewed_rows_match = matched;
        client.store().save_sheet(&sheet).await.unwrap();
    });
}

/// The sheet screen after the sheets are read again, and its buffer.
fn reopen_sheet(app: &mut App) -> (String, ratatui::buffer::Buffer) {
    app.update(Action::Back);
    app.update(Action::Char('a'));
    assert_eq!(app.screen, Screen::Sheet);
    let mut t = terminal(80, 24);
    t.draw(|f| ui::render(app, f)).unwrap();
    let buf = t.backend().buffer().clone();
    (buffer_text(&buf), buf)
}

/// The server's check of the last submitted version reaches the second helper on the
/// sheet screen: a version frozen on rows that changed after the review is a red
/// warning that asks to sign again (S, which makes a new version), then says the new
/// signing waits for the sync; a version frozen on the rows reviewed says so in green;
/// a version the server could not check shows nothing.
#[test]
fn the_sheet_screen_says_whether_the_submitted_version_froze_the_rows_reviewed() {
    let mut fx = second_helper_with_sheet(Lang::Zh);
    let app = &mut fx.app;

    set_review_check(app, None);
    let (text, _) = reopen_sheet(app);
    assert!(text.contains("已提交第1版"), "{text}");
    assert!(
        !text.contains("审阅") && !text.contains('⚠'),
        "nothing to say:\n{text}"
    );

    set_review_check(app, Some(false));
    let (text, buf) = reopen_sheet(app);
    // Under the title, above the table: the warning in red, then how to sign again.
    let lines: Vec<&str> = text.lines().collect();
    let title = lines
        .iter()
        .position(|l| l.contains("考勤表 2026Q1"))
        .unwrap();
    assert_eq!(
        lines[title + 1].trim(),
        "⚠ 第1版冻结的数据与您审阅时不同（审阅后有变化）：请核对后重新签名提交",
        "{text}"
    );
    assert_eq!(
        lines[title + 2].trim(),
        "→ 按 S 重新签名提交（提交为新版本，原版本保留）",
        "{text}"
    );
    assert!(lines[title + 3].contains('┌'), "then the table:\n{text}");
    assert!(
        buf.content
            .iter()
            .any(|c| c.symbol() == "变" && c.fg == Color::Red),
        "the warning is red"
    );
    // The rows are still there to check.
    for s in ["张三", "李四", "01-10入户"] {
        assert!(text.contains(s), "{s} missing:\n{text}");
    }

    set_review_check(app, Some(true));
    let (text, buf) = reopen_sheet(app);
    assert!(text.contains("第1版已按您审阅的数据冻结"), "{text}");
    assert!(!text.contains('⚠'), "{text}");
    assert!(
        buf.content
            .iter()
            .any(|c| c.symbol() == "冻" && c.fg == Color::Green)
    );

    // Signing again, as the warning asks: the existing flow queues a new version.
    set_review_check(app, Some(false));
    reopen_sheet(app);
    app.update(Action::Char('S'));
    app.update(Action::Char('y'));
    let (text, _) = reopen_sheet(app);
    assert!(text.contains("待提交"), "{text}");
    assert!(
        text.contains(
            "⚠ 第1版冻结的数据与您审阅时不同（审阅后有变化）：已重新签名，待同步提交新版本"
        ) && !text.contains("请核对后")
            && !text.contains("按 S 重新签名"),
        "{text}"
    );
    let client = app.client().clone();
    let pending = app
        .runtime()
        .block_on(client.store().pending_submissions())
        .unwrap();
    assert_eq!(pending.len(), 1);
    let reviewed = app
        .runtime()
        .block_on(client.sheet("2026Q1".parse().unwrap()))
        .unwrap()
        .sheet
        .rows_sha256();
    assert_eq!(
        pending[0].submission.rows_sha256.as_deref(),
        Some(reviewed.as_str()),
        "signed on the rows shown"
    );
}

#[test]
fn the_review_check_in_english() {
    let mut fx = second_helper_with_sheet(Lang::En);
    set_review_check(&fx.app, Some(false));
    let (text, _) = reopen_sheet(&mut fx.app);
    assert!(
        text.contains("⚠ Version 1 changed after your review: check the rows and sign again"),
        "{text}"
    );
    assert!(text.contains("→ press S to sign again"), "{text}");
    set_review_check(&fx.app, Some(true));
    let (text, _) = reopen_sheet(&mut fx.app);
    assert!(
        text.contains("Version 1 was frozen on the rows you reviewed"),
        "{text}"
    );
}

#[test]
fn the_sheet_screen_survives_any_key_at_any_size() {
    let mut fx = second_helper_with_sheet(Lang::Zh);
    fx.app.update(Action::Char('a'));
    let actions = [
        Action::Down,
        Action::Up,
        Action::Right,
        Action::Left,
        Action::PageDown,
        Action::End,
        Action::Home,
        Action::Char('e'),
        Action::Char('x'),
        Action::Backspace,
        Action::Paste("多行\n粘贴".into()),
        Action::Enter,
        Action::Char('S'),
        Action::Char('q'),
        Action::Char('a'),
        Action::Sign,
        Action::Back,
        Action::Next,
    ];
    for a in actions {
        fx.app.quit = false;
        fx.app.update(a);
        for (w, h) in [(80, 24), (60, 16), (20, 5), (1, 1), (200, 60)] {
            let mut t = terminal(w, h);
            t.draw(|f| ui::render(&fx.app, f)).unwrap();
        }
    }
}

/// The server's flags on a synced visit reach the helper: the history row says the
/// visit does not count (in red), the selected visit's lines say why and what to do,
/// a flag this version does not know is shown by its code, and the household's detail
/// screen marks it too.
#[test]
fn history_shows_the_servers_flags_and_what_to_do() {
    use bangfu_shared::sync::{Ack, AckStatus};
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    phone_call(app);
    let visit = app
        .runtime()
        .block_on(app.client().visits(None, 10))
        .unwrap()[0]
        .visit_id;
    let ack = Ack {
        id: visit,
        status: AckStatus::Accepted,
        reason: None,
        reason_code: None,
        missing_blobs: vec![],
        flags: vec![
            "dated_after_signing".into(),
            "sent_by_a_newer_server".into(),
        ],
    };
    app.runtime()
        .block_on(app.client().store().apply_acks(&[ack]))
        .unwrap();
    app.update(Action::Char('h'));
    let mut t = terminal(80, 24);
    t.draw(|f| ui::render(app, f)).unwrap();
    let text = buffer_text(t.backend().buffer());
    for s in [
        "已同步⚠不计入",
        "⚠时间晚于签名时间，不计入考勤：请更正时间",
        "⚠服务器标记：sent_by_a_newer_server",
    ] {
        assert!(text.contains(s), "{s} missing:\n{text}");
    }
    // Narrower, the mark alone stands whole in the state column.
    for (w, h) in [(60, 16), (78, 24), (79, 24)] {
        let mut small = terminal(w, h);
        small.draw(|f| ui::render(app, f)).unwrap();
        let narrow = buffer_text(small.backend().buffer());
        assert!(narrow.contains("⚠不计入"), "{w}×{h}:\n{narrow}");
    }
    let red = t
        .backend()
        .buffer()
        .content
        .iter()
        .any(|c| c.symbol() == "计" && c.fg == Color::Red);
    assert!(red, "a visit that does not count is shown in red");

    app.update(Action::Back);
    app.update(Action::Enter);
    let text = draw(app);
    assert!(text.contains("已同步 · ⚠时间晚于签名·不计入"), "{text}");

    let mut fx = fixture(Lang::En);
    phone_call(&mut fx.app);
    let visit = fx
        .app
        .runtime()
        .block_on(fx.app.client().visits(None, 10))
        .unwrap()[0]
        .visit_id;
    let ack = Ack {
        id: visit,
        status: AckStatus::Accepted,
        reason: None,
        reason_code: None,
        missing_blobs: vec![],
        flags: vec!["entered_late".into()],
    };
    fx.app
        .runtime()
        .block_on(fx.app.client().store().apply_acks(&[ack]))
        .unwrap();
    fx.app.update(Action::Char('h'));
    let text = draw(&fx.app);
    assert!(
        text.contains("⚠entered late") && text.contains("the town office sees it was"),
        "{text}"
    );
}

/// A household whose pairing ended (the server's list dropped it) leaves the list to
/// visit for a labelled section, keeps its name in the history and the drafts, and its
/// draft dated after the pairing is refused with a Chinese message that says why.
#[test]
fn a_household_whose_pairing_ended_is_set_apart_and_keeps_its_name() {
    use chrono::TimeZone as _;
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Down); // 王五 (南村 sorts before 西村)
    phone_call(app);
    app.update(Action::Char('n')); // a draft for 王五, dated today (2026-03-15)
    app.update(Action::Right);
    app.update(Action::Back);
    let drafts = app.runtime().block_on(app.client().drafts()).unwrap();
    assert_eq!(drafts.len(), 1);

    // The server's list of 2026-03-12 (a sync) no longer has 王五.
    let client = app.client().clone();
    app.runtime()
        .block_on(async {
            let identity = client.identity().await?;
            let mut listed = default_households();
            listed.truncate(2);
            let mut s = snapshot(listed);
            s.server_time = chrono::Utc.with_ymd_and_hms(2026, 3, 12, 2, 0, 0).unwrap();
            client.install_login(&identity, &s).await
        })
        .unwrap();
    app.apply_sync_event(SyncEvent::Finished(Ok(SyncReport::default())));
    let text = draw(app);
    assert!(text.contains("我的帮扶户 (2)"), "{text}");
    assert!(
        text.contains("已结束结对 (1)")
            && text.contains("王五  南村  2025-01-01 至 2026-03-12")
            && text.contains("本机获知于 2026-03-12"),
        "{text}"
    );
    // Its call of the 15th, after the last day the device can vouch for, does not
    // count: the line says so (QA s23a F13).
    assert!(text.contains("本机获知于 2026-03-12  ⚠不计入"), "{text}");
    assert!(
        text.contains("其走访记录（h）可更正、作废，草稿（d）可在结对期内签名"),
        "{text}"
    );
    // Where the whole hint does not fit, a shorter one, not one cut mid-word (QA s31c
    // T10).
    app.lang = Lang::En;
    let mut t = terminal(60, 24);
    t.draw(|f| ui::render(app, f)).unwrap();
    let narrow = buffer_text(t.backend().buffer());
    assert!(
        narrow.contains("visits (h): amend or void; drafts (d): sign")
            && !narrow.contains("signed if"),
        "{narrow}"
    );
    app.lang = Lang::Zh;

    app.update(Action::Char('h'));
    let text = draw(app);
    assert!(
        text.contains("2026-03-15 10:00 王五")
            && text.contains("王五：已结束结对（本机获知于 2026-03-12）"),
        "the history keeps the name:\n{text}"
    );
    app.update(Action::Back);

    app.update(Action::Char('d'));
    let text = draw(app);
    assert!(text.contains("王五户已结束结对"), "{text}");
    app.update(Action::Enter);
    app.update(Action::Sign);
    let status = app.status.clone().unwrap();
    assert!(
        status.error
            && status
                .text
                .contains("走访日期 2026-03-15 不在您的结对期（2025-01-01 至 2026-03-12）内"),
        "{status:?}"
    );
    assert!(matches!(app.screen, Screen::Form(_)), "the form stays open");
}

/// A town office's review note pulled for a visit marks it in the history (✎待改) and
/// says the note in full on the selected visit, in Chinese.
#[test]
fn history_shows_a_town_office_review_note() {
    use bangfu_shared::sync::{AckStatus, PullResponse, ServerRecord};
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    phone_call(app);
    let visit = app
        .runtime()
        .block_on(app.client().visits(None, 10))
        .unwrap()[0]
        .visit_id;
    let stored = app
        .runtime()
        .block_on(app.client().store().record(visit))
        .unwrap()
        .unwrap();
    let page = PullResponse {
        records: vec![ServerRecord {
            signed: stored.signed,
            status: AckStatus::Accepted,
            missing_blobs: vec![],
            flags: vec![],
            received_at: chrono::Utc::now(),
            review: Some("通话内容过简，请补充".into()),
            family_changes: vec![bangfu_shared::sync::DecidedChange {
                kind: "death".into(),
                name: "田老汉".into(),
                status: "rejected".into(),
                note: Some("户籍无此人，请核实".into()),
            }],
        }],
        households: None,
        policy: None,
        evidence_history: Vec::new(),
        exit_cuts_history: Vec::new(),
        visits_history: Vec::new(),
        cursor: 1,
        more: false,
    };
    app.runtime()
        .block_on(app.client().store().apply_pull_page(&page))
        .unwrap();
    app.update(Action::Char('h'));
    let mut t = terminal(80, 24);
    t.draw(|f| ui::render(app, f)).unwrap();
    let text = buffer_text(t.backend().buffer());
    for s in [
        "✎待改",
        "乡镇审核意见：通话内容过简，请补充（请更正此次走访）",
        "家庭变化「死亡：田老汉」未通过：户籍无此人，请核实",
    ] {
        assert!(text.contains(s), "{s} missing:\n{text}");
    }
}

/// A witness visit recorded an hour before the fixture's now, its mark stored.
fn witness_visit(app: &App, dir: &std::path::Path) -> uuid::Uuid {
    let png = std::fs::read(write_png(&dir.join("mark.png"), 200, 80)).unwrap();
    let client = app.client();
    let mark = app
        .runtime()
        .block_on(client.attach_signature_png(&png))
        .unwrap();
    let mut body = bangfu_shared::visit::VisitBody::new(
        VisitKind::Home,
        common::now() - chrono::Duration::hours(1),
    );
    body.problems = vec!["屋顶漏雨".into()];
    body.household_signature = Some(HouseholdSignature::Witness {
        name: "李见证".into(),
        role: "村干部".into(),
        reason: "户主外出".into(),
        image_sha256: Some(mark),
    });
    app.runtime()
        .block_on(client.record_visit(1, body, None, None, common::now()))
        .unwrap()
        .record
        .id
}

#[test]
fn renaming_the_witness_in_an_amendment_drops_the_old_mark() {
    use bangfu_client::app::form::Field;
    let mut fx = fixture(Lang::Zh);
    let dir = fx.dir.path().to_path_buf();
    let app = &mut fx.app;
    witness_visit(app, &dir);
    app.update(Action::Char('h'));
    app.update(Action::Char('a'));
    assert!(matches!(app.screen, Screen::Form(_)), "{:?}", app.status);
    focus(app, Field::Reason);
    keys(app, "核实见证人身份");
    assert!(draw(app).contains("✓ 已签"));
    focus(app, Field::WitnessName);
    for _ in 0..3 {
        app.update(Action::Backspace);
    }
    keys(app, "王五");
    let text = draw(app);
    assert!(
        text.contains("✗ 未签 · 见证人已") && text.contains("✗见证人已更换"),
        "{text}"
    );
    assert!(
        !text.contains('▀'),
        "the old mark is not shown as theirs:\n{text}"
    );
    app.update(Action::Sign);
    assert!(matches!(app.screen, Screen::Form(_)));
    let status = app.status.as_ref().unwrap();
    assert!(
        status.error && status.text.contains("见证人已更换"),
        "{status:?}"
    );
    let rows = app
        .runtime()
        .block_on(app.client().visits(None, 10))
        .unwrap();
    assert_eq!((rows.len(), rows[0].amendments), (1, 0));
    // The library refuses the relabelled mark too, whatever the caller.
    let Screen::Form(form) = &app.screen else {
        unreachable!()
    };
    let mut body = form.draft.to_body().unwrap();
    let original = rows[0].current.signed.record.visit.clone().unwrap();
    let Some(HouseholdSignature::Witness { image_sha256, .. }) = original.household_signature
    else {
        panic!("a witness visit")
    };
    body.household_signature = Some(HouseholdSignature::Witness {
        name: "王五".into(),
        role: "村干部".into(),
        reason: "户主外出".into(),
        image_sha256,
    });
    let refused = app.runtime().block_on(app.client().record_visit(
        1,
        body,
        Some((rows[0].visit_id, Some("换人".into()))),
        None,
        common::now(),
    ));
    assert!(
        matches!(refused, Err(bangfu_client::ClientError::SignerChanged)),
        "{refused:?}"
    );
}

/// A remark written after the last submission is said beside the state, and a signing
/// identical to the submission queued or frozen is refused, naming it.
#[test]
fn the_sheet_says_unsubmitted_remarks_and_refuses_an_identical_submission() {
    use bangfu_client::store::SubmissionState;
    let mut fx = second_helper_with_sheet(Lang::Zh);
    let app = &mut fx.app;
    let wide = |app: &App| {
        let mut t = terminal(120, 30);
        t.draw(|f| ui::render(app, f)).unwrap();
        buffer_text(t.backend().buffer())
    };
    let submit = |app: &mut App| {
        app.update(Action::Char('S'));
        app.update(Action::Char('y'));
    };
    let client = app.client().clone();
    let pending = |app: &App| {
        app.runtime()
            .block_on(client.store().pending_submissions())
            .unwrap()
    };
    app.update(Action::Char('a'));
    app.update(Action::Down);
    app.update(Action::Char('e'));
    keys(app, "未见记录");
    app.update(Action::Enter);
    submit(app);
    assert!(!wide(app).contains("有未提交的修改"));
    submit(app);
    let status = app.status.clone().unwrap();
    assert!(
        status.error
            && status
                .text
                .contains("与已签名待同步的提交相同，无需重新提交"),
        "{status:?}"
    );
    assert_eq!(pending(app).len(), 1);

    let id = pending(app)[0].id;
    app.runtime()
        .block_on(
            client
                .store()
                .answer_submission(id, &SubmissionState::Submitted { version: 1 }),
        )
        .unwrap();
    app.update(Action::Back);
    app.update(Action::Char('a'));
    submit(app);
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .contains("与第1版相同，无需重新提交"),
        "{:?}",
        app.status
    );
    assert!(pending(app).is_empty());

    app.update(Action::Char('e'));
    keys(app, "提交后修改");
    app.update(Action::Enter);
    let text = wide(app);
    assert!(
        text.contains("已提交第1版 · 有未提交的修改（按 S 重新提交）"),
        "{text}"
    );
    submit(app);
    assert_eq!(pending(app).len(), 1);
    assert!(!wide(app).contains("有未提交的修改"));
}

/// The line of the buffer that shows `name` (a household's row).
fn row_of(text: &str, name: &str) -> String {
    text.lines()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
        .to_string()
}

/// An overdue household's row names the window it missed that began first, and its
/// detail names every window missed in the quarter in full. On 2026-03-15 under Laizhou
/// 2018: a first helper's home visit every 2 months (January to February missed), a call
/// every month (January and February missed); a second helper's home visit every month
/// (January and February missed).
#[test]
fn the_overdue_mark_names_the_missed_window_in_the_list_and_the_detail() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    let text = draw(app);
    assert!(row_of(&text, "张三").contains("!逾期 1–2月"), "{text}");
    assert!(row_of(&text, "李四").contains("!逾期 1–2月"), "{text}");
    let wang = row_of(&text, "王五");
    assert!(
        wang.contains("!逾期 1月") && !wang.contains("1–2月"),
        "{text}"
    );
    // A narrow window still has room for the window.
    let mut t = terminal(60, 16);
    t.draw(|f| ui::render(app, f)).unwrap();
    let narrow = buffer_text(t.backend().buffer());
    assert!(row_of(&narrow, "张三").contains("!逾期 1–2月"), "{narrow}");

    // The detail: each requirement with the window it missed.
    app.selected = app
        .households
        .iter()
        .position(|h| h.detail.summary.head_name == "李四")
        .unwrap();
    app.update(Action::Enter);
    let text = draw(app);
    for s in [
        "逾期：2026年1–2月未入户",
        "逾期：2026年1月未通话",
        "逾期：2026年2月未通话",
    ] {
        assert!(text.contains(s), "{s} missing:\n{text}");
    }
    // A call this month: March is done, and January and February stay missed, as the
    // server's sheet has them (M7).
    app.update(Action::Back);
    app.selected = 0;
    assert_eq!(app.households[0].detail.summary.head_name, "张三");
    phone_call(app);
    app.update(Action::Char('h'));
    app.update(Action::Back);
    assert!(row_of(&draw(app), "张三").contains("!逾期 1–2月"));
    app.selected = 0;
    app.update(Action::Enter);
    let text = draw(app);
    for s in [
        "电话 ≤2026-03-31 ✓",
        "逾期：2026年1–2月未入户",
        "逾期：2026年1月未通话",
        "逾期：2026年2月未通话",
    ] {
        assert!(text.contains(s), "{s} missing:\n{text}");
    }

    // English.
    let fx = fixture(Lang::En);
    let text = draw(&fx.app);
    assert!(row_of(&text, "张三").contains("!OVERDUE Jan–Feb"), "{text}");
}

/// A visit the town office returned for correction marks its household's row
/// (`✎待更正`) and detail without the helper reading the sync's status line, until the
/// amendment is signed.
#[test]
fn a_household_with_a_visit_returned_for_correction_is_marked_until_amended() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    phone_call(app);
    assert!(!draw(app).contains("待更正"));
    let id = app
        .runtime()
        .block_on(app.client().visits(Some(1), 10))
        .unwrap()[0]
        .visit_id;
    return_for_correction(app, id, "通话时长过短，请补充内容");
    // The sync that brought the note.
    app.apply_sync_event(SyncEvent::Finished(Ok(SyncReport {
        returned_for_correction: 1,
        ..SyncReport::default()
    })));
    app.status = None;
    let text = draw(app);
    assert!(row_of(&text, "张三").contains("✎待更正"), "{text}");
    assert!(!row_of(&text, "李四").contains("待更正"), "{text}");
    assert!(!row_of(&text, "王五").contains("待更正"), "{text}");
    // The mark is yellow, beside the overdue one.
    let buf = {
        let mut t = terminal(80, 24);
        t.draw(|f| ui::render(app, f)).unwrap();
        t.backend().buffer().clone()
    };
    assert!(
        buf.content
            .iter()
            .any(|c| c.symbol() == "待" && c.fg == Color::Yellow),
        "{text}"
    );
    app.selected = 0;
    app.update(Action::Enter);
    let text = draw(app);
    assert!(text.contains("1 条走访被乡镇退回待更正"), "{text}");
    app.update(Action::Back);

    // Amended: the mark goes.
    app.update(Action::Char('h'));
    app.history_selected = app.history.iter().position(|v| v.visit_id == id).unwrap();
    app.update(Action::Char('a'));
    assert!(matches!(app.screen, Screen::Form(_)), "{:?}", app.status);
    focus(app, bangfu_client::app::form::Field::Reason);
    keys(app, "补充通话内容");
    app.update(Action::Sign);
    assert!(!matches!(app.screen, Screen::Form(_)), "{:?}", app.status);
    while app.screen != Screen::Households {
        app.update(Action::Back);
    }
    let text = draw(app);
    assert!(!text.contains("待更正"), "{text}");
}

/// Gives the pulled 2026Q1 sheet's first row a long village name and `records` visits
/// (its records text then runs over many lines), and the second row a long remark.
fn lengthen_sheet(app: &App, records: usize) {
    let client = app.client().clone();
    app.runtime().block_on(async {
        let q = "2026Q1".parse().unwrap();
        let mut sheet = client.store().sheet(q).await.unwrap().unwrap();
        let first = sheet.rows[0].records[0].clone();
        sheet.rows[0].village = "东山镇新华村".into();
        sheet.rows[0].records = (0..records)
            .map(|i| {
                let mut r = first.clone();
                r.record_id = format!("r{i}");
                r.date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
                    + chrono::Duration::days(i as i64 % 90);
                r
            })
            .collect();
        sheet.rows[1].village = "西岭村".into();
        sheet.rows[1].remark = Some("户主外出务工，电话回访为主，已与村委核实情况".into());
        client.store().save_sheet(&sheet).await.unwrap();
    });
}

/// The sheet's columns are as wide as their text while it fits: a village name comes
/// whole beside a long remark (a cut one ends in "…"), at 80 and at 60 columns.
#[test]
fn the_sheet_columns_fit_their_text_and_cut_only_with_an_ellipsis() {
    let mut fx = second_helper_with_sheet(Lang::Zh);
    lengthen_sheet(&fx.app, 3);
    let (text, _) = reopen_sheet(&mut fx.app);
    let zhang = row_of(&text, "张三");
    assert!(zhang.contains("东山镇新华村"), "{text}");
    let li = row_of(&text, "李四");
    assert!(li.contains("西岭村") && li.contains("户主外出务"), "{text}");
    assert!(
        li.contains('…'),
        "the remark is cut with an ellipsis:\n{text}"
    );
    // The first helper's name comes whole too.
    assert!(zhang.contains("黄志强"), "{text}");
    let mut t = terminal(60, 16);
    t.draw(|f| ui::render(&fx.app, f)).unwrap();
    let narrow = buffer_text(t.backend().buffer());
    assert!(row_of(&narrow, "张三").contains("东山镇新华村"), "{narrow}");
    // The keys of the sheet's tasks before Esc and q, which a narrow line cuts (QA s32c
    // W6).
    assert!(narrow.contains("Tab 详情"), "{narrow}");
}

/// The selected row's summary is whole (household, village, first helper, records,
/// remark) and, longer than its pane, scrolls with the list keys after Tab: ↑/↓ a line,
/// PgUp/PgDn a page, Home/End to either end; Tab gives the keys back to the rows.
#[test]
fn a_long_sheet_summary_scrolls_with_the_list_keys() {
    let mut fx = second_helper_with_sheet(Lang::Zh);
    lengthen_sheet(&fx.app, 90);
    let (text, _) = reopen_sheet(&mut fx.app);
    let app = &mut fx.app;
    assert!(text.contains("东山镇新华村 · 第一帮扶责任人："), "{text}");
    assert!(text.contains("↕ 1–") && text.contains("Tab 滚动"), "{text}");
    assert!(
        !text.contains("备注："),
        "the remark is below the pane:\n{text}"
    );
    assert!(
        text.contains("Tab 详情"),
        "the help line names Tab:\n{text}"
    );

    app.update(Action::Next);
    let text = draw(app);
    assert!(text.contains("滚动详情"), "{text}");
    app.update(Action::Down);
    assert_eq!(
        app.sheet_selected, 0,
        "the arrows scroll the summary, not the rows"
    );
    assert_eq!(app.sheet_scroll, 1);
    let text = draw(app);
    assert!(!text.contains("东山镇新华村 · 第一帮扶责任人："), "{text}");
    assert!(text.contains("↕ 2–"), "{text}");
    app.update(Action::End);
    let text = draw(app);
    assert!(text.contains("备注："), "the end of the summary:\n{text}");
    let end = app.sheet_scroll;
    app.update(Action::Down);
    assert_eq!(app.sheet_scroll, end, "no scrolling past the end");
    app.update(Action::PageUp);
    assert!(app.sheet_scroll < end);
    app.update(Action::Home);
    assert_eq!(app.sheet_scroll, 0);
    app.update(Action::PageDown);
    assert!(app.sheet_scroll > 1, "a page: {}", app.sheet_scroll);

    // Tab: the arrows move through the rows again, and a row's summary starts at its top.
    app.update(Action::Next);
    app.update(Action::Down);
    assert_eq!((app.sheet_selected, app.sheet_scroll), (1, 0));
    let text = draw(app);
    assert!(text.contains("西岭村 · 第一帮扶责任人："), "{text}");
    assert!(
        text.contains("备注：户主外出务工，电话回访为主，已与村委核实情况"),
        "the remark whole in the summary:\n{text}"
    );
    assert!(
        !text.contains("↕"),
        "a short summary does not scroll:\n{text}"
    );
}

/// 附件3 numbers its own rows 1 to n: a second helper whose households are the ledger's
/// 6th and 7th sees 1 and 2 under 序号, as on the printed sheet.
#[test]
fn the_sheet_numbers_its_own_rows_not_the_ledgers() {
    let mut fx = second_helper_with_sheet(Lang::Zh);
    let client = fx.app.client().clone();
    fx.app.runtime().block_on(async {
        let q = "2026Q1".parse().unwrap();
        let mut sheet = client.store().sheet(q).await.unwrap().unwrap();
        sheet.rows[0].seq = 6;
        sheet.rows[1].seq = 7;
        client.store().save_sheet(&sheet).await.unwrap();
    });
    let (text, _) = reopen_sheet(&mut fx.app);
    let number = |name: &str| {
        let row = row_of(&text, name);
        row.trim_start_matches('│')
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(number("张三"), "1", "{text}");
    assert_eq!(number("李四"), "2", "{text}");
}

/// A visit voided after the sheet was submitted changes its rows: the header says the
/// data changed since the submitted version (not only remarks), at 80 columns, and
/// `data_changed` says so to `sheet show --json`'s reader.
#[test]
fn the_sheet_says_when_its_data_changed_since_the_submitted_version() {
    use bangfu_client::store::SubmissionState;
    let mut fx = second_helper_with_sheet(Lang::Zh);
    let app = &mut fx.app;
    let client = app.client().clone();
    app.update(Action::Char('a'));
    app.update(Action::Char('S'));
    app.update(Action::Char('y'));
    let pending = app
        .runtime()
        .block_on(client.store().pending_submissions())
        .unwrap();
    assert_eq!(pending.len(), 1);
    app.runtime()
        .block_on(
            client
                .store()
                .answer_submission(pending[0].id, &SubmissionState::Submitted { version: 1 }),
        )
        .unwrap();
    app.update(Action::Back);
    app.update(Action::Char('a'));
    assert!(!draw(app).contains("数据已变化"), "{}", draw(app));

    // The first helper voids the visit; the next pull brings the changed rows.
    let quarter = "2026Q1".parse().unwrap();
    let mut sheet = app
        .runtime()
        .block_on(client.store().sheet(quarter))
        .unwrap()
        .unwrap();
    for r in &mut sheet.rows[0].records {
        r.counts = false;
        r.reason = Some("已作废".into());
    }
    app.runtime()
        .block_on(client.store().save_sheet(&sheet))
        .unwrap();
    app.update(Action::Back);
    app.update(Action::Char('a'));
    let text = draw(app);
    assert!(
        text.contains("已提交第1版 · 数据已变化，需重新提交（按 S）"),
        "{text}"
    );
    let view = app.runtime().block_on(client.sheet(quarter)).unwrap();
    assert!(view.data_changed());
    // At 60 columns the header gives up the helper's name before the instruction
    // (QA s21b F8).
    let mut t = terminal(60, 20);
    t.draw(|f| ui::render(app, f)).unwrap();
    let narrow = buffer_text(t.backend().buffer());
    assert!(
        narrow.contains("已提交第1版 · 数据已变化，需重新提交（按 S）"),
        "{narrow}"
    );
    // In English at 72 columns the key stays in view too (QA s21d D5).
    app.lang = Lang::En;
    let mut t = terminal(72, 20);
    t.draw(|f| ui::render(app, f)).unwrap();
    let english = buffer_text(t.backend().buffer());
    assert!(
        english.contains("data changed since: S to resubmit"),
        "{english}"
    );
}

/// A new visit dated in a quarter that has ended is said before signing, with the key
/// first so it shows at 80 columns; a second Ctrl+S signs. A date before the helper's
/// pairing with the household began is refused, the draft kept.
#[test]
fn signing_warns_about_an_ended_quarter_and_refuses_a_date_before_the_pairing() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    let set_time = |app: &mut App, at: &str| {
        if let Screen::Form(f) = &mut app.screen {
            f.draft.at = at.into();
        }
    };
    app.update(Action::Down);
    app.update(Action::Char('n'));
    app.update(Action::Right); // kind → phone
    set_time(app, "2024-12-20 10:00");
    app.update(Action::Sign); // warned: an ended quarter
    app.update(Action::Sign);
    assert!(matches!(app.screen, Screen::Form(_)), "refused, not signed");
    let status = app.status.clone().unwrap();
    assert!(
        status.error
            && status
                .text
                .contains("不在您与王五户的结对期（2025-01-01 起）内"),
        "{status:?}"
    );

    set_time(app, "2025-12-20 10:00");
    app.update(Action::Sign);
    assert!(matches!(app.screen, Screen::Form(_)), "warned, not signed");
    let text = draw(app);
    assert!(
        text.contains("⚠ 再按 Ctrl+S 仍签名：走访日期 2025-12-20 在已结束的2025年第4季度"),
        "{text}"
    );
    app.update(Action::Sign);
    assert_eq!(
        app.screen,
        Screen::Households,
        "signed at the second Ctrl+S"
    );
}

/// On the sheet screen, the sync result names what became of the sheet first, so it
/// shows at 80 columns after the not-counted warning and the summary (L1).
#[test]
fn on_the_sheet_screen_the_sync_result_says_the_sheet_first() {
    let mut fx = second_helper_with_sheet(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('a'));
    app.apply_sync_event(SyncEvent::Finished(Ok(SyncReport {
        not_counted: 1,
        sheets_submitted: vec![("2026Q1".parse().unwrap(), 3)],
        ..SyncReport::default()
    })));
    let status = app.status.clone().unwrap();
    assert!(
        status
            .text
            .starts_with("考勤表 2026Q1 已提交第3版 · ⚠ 1 条走访不计入考勤"),
        "{status:?}"
    );
    assert_eq!(status.text.matches("已提交第3版").count(), 1, "said once");
    assert!(draw(app).contains("考勤表 2026Q1 已提交第3版"));
    // At 60 columns the line keeps its start, the count of visits that do not count
    // included, and cuts the tallies (QA s22d F3).
    let mut t = terminal(60, 20);
    t.draw(|f| ui::render(app, f)).unwrap();
    let text = buffer_text(t.backend().buffer());
    assert!(
        text.contains("考勤表 2026Q1 已提交第3版 · ⚠ 1 条走访不计入"),
        "{text}"
    );
}

/// An app over a helper whose households the server lists as `households`.
fn app_listing(lang: Lang, households: Vec<bangfu_shared::api::HouseholdDetail>) -> AppFixture {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let client = rt.block_on(async {
        let client = login(&dir.path().join("data"), Limits::default()).await;
        let identity = client.identity().await.unwrap();
        client
            .install_login(&identity, &snapshot(households))
            .await
            .unwrap();
        client
    });
    let app = App::new(client, rt, lang, Clock::Fixed(now()), (80, 24));
    AppFixture { dir, app }
}

/// H2: a second helper who took the household over on 03-05 is not shown overdue for
/// February (the previous helper's): the row has no 逾期 and names April's visit, the
/// first window theirs whole; the detail says no 逾期 either.
#[test]
fn a_household_taken_over_this_month_is_not_overdue_before_the_takeover() {
    let mut listed = default_households();
    let from = chrono::NaiveDate::from_ymd_opt(2026, 3, 5);
    let mut before = listed[2].pairings[0].clone();
    before.id += 1;
    before.helper.id = HELPER_ID + 1;
    before.valid_to = from;
    listed[2].pairings[0].valid_from = from.unwrap();
    listed[2].pairings.push(before);
    let mut fx = app_listing(Lang::Zh, listed);
    let app = &mut fx.app;
    let text = draw(app);
    let wang = row_of(&text, "王五");
    assert!(
        !wang.contains("逾期") && wang.contains("入户 04-30"),
        "{text}"
    );
    assert!(row_of(&text, "张三").contains("!逾期"), "{text}");
    app.selected = app
        .households
        .iter()
        .position(|h| h.detail.summary.head_name == "王五")
        .unwrap();
    app.update(Action::Enter);
    let text = draw(app);
    assert!(
        !text.contains("逾期：") && text.contains("入户 ≤2026-04-30"),
        "{text}"
    );
}

/// M2: a household leaving on 03-20 owes nothing more (无应访, no date past its last
/// paired day), and its row says when it leaves beside 逾期, in full when there is
/// room and shorter at 80 columns (QA s20b M2: it is never left out there).
#[test]
fn the_list_marks_a_coming_exit_and_shows_nothing_due_past_it() {
    for (lang, width, leaves, nothing) in [
        (Lang::Zh, 100, "将于3月20日退出", "无应访"),
        (Lang::Zh, 80, "3月20日退出", "无应访"),
        (Lang::En, 100, "leaves 2026-03-20", "nothing due"),
        (Lang::En, 80, "out 3/20", "nothing due"),
        // QA s21b F7: narrower, the due column shortens before the exit is left out.
        (Lang::En, 72, "leaves 03-20", "none due"),
        (Lang::En, 66, "out 3/20", "none due"),
        (Lang::En, 60, "out 3/20", "none due"),
        (Lang::Zh, 60, "退3/20", "无应访"),
    ] {
        let mut listed = default_households();
        let exit = chrono::NaiveDate::from_ymd_opt(2026, 3, 20);
        listed[0].summary.exit_on = exit;
        listed[0].pairings[0].valid_to = exit;
        let mut fx = app_listing(lang, listed);
        let app = &mut fx.app;
        let mut t = terminal(width, 24);
        t.draw(|f| ui::render(app, f)).unwrap();
        let text = buffer_text(t.backend().buffer());
        let row = row_of(&text, "张三");
        assert!(
            row.contains(leaves) && row.contains(nothing) && row.contains('!'),
            "{text}"
        );
        assert!(row.trim_end().ends_with('│'), "{row:?}");
        assert!(!row_of(&text, "李四").contains("3月20日"), "{text}");
        assert!(!row_of(&text, "李四").contains("03-20"), "{text}");
        app.selected = 0;
        app.update(Action::Enter);
        let text = draw(app);
        assert!(
            !text.contains("≤2026-03-31") && !text.contains("≤2026-04-30"),
            "{text}"
        );
    }
}

/// QA s21d D4: a row whose windows are all done this period (`done this period`, the
/// due column's longest text) keeps its coming-exit mark at 72 columns in English: the
/// due column shortens to `done` before the exit is left out.
#[test]
fn a_done_row_keeps_its_exit_mark_in_a_narrow_english_list() {
    let mut listed = default_households();
    let exit = chrono::NaiveDate::from_ymd_opt(2026, 5, 20);
    listed[0].summary.exit_on = exit;
    listed[0].pairings[0].valid_to = exit;
    let fx = app_listing(Lang::En, listed);
    let client = fx.app.client().clone();
    let day = common::now() - chrono::Duration::days(5);
    for kind in [VisitKind::Home, VisitKind::Phone] {
        let mut body = bangfu_shared::visit::VisitBody::new(kind, day);
        if kind == VisitKind::Home {
            body.household_signature = Some(HouseholdSignature::Witness {
                name: "李见证".into(),
                role: "村干部".into(),
                reason: "户主外出".into(),
                image_sha256: None,
            });
        }
        fx.app
            .runtime()
            .block_on(client.record_visit(1, body, None, None, common::now()))
            .unwrap();
    }
    // A new app over the same store: the list as the helper opens it.
    let rt = fx.app.runtime().clone();
    let app = &App::new(client, rt, Lang::En, Clock::Fixed(now()), (80, 24));
    for width in [80, 72, 66] {
        let mut t = terminal(width, 24);
        t.draw(|f| ui::render(app, f)).unwrap();
        let text = buffer_text(t.backend().buffer());
        let row = row_of(&text, "张三");
        assert!(row.contains("done"), "{text}");
        assert!(
            row.contains("5/20") || row.contains("05-20"),
            "{width}: {text}"
        );
    }
}

#[test]
fn an_amendment_draft_keeps_its_whole_label_in_a_narrow_drafts_list() {
    for (lang, label) in [(Lang::Zh, "电话（更正）"), (Lang::En, "call (amendment)")] {
        let mut fx = fixture(lang);
        let app = &mut fx.app;
        phone_call(app);
        app.update(Action::Char('h'));
        app.history_selected = 0;
        app.update(Action::Char('a'));
        assert!(matches!(app.screen, Screen::Form(_)), "{:?}", app.screen);
        focus(app, bangfu_client::app::form::Field::Notes);
        keys(app, "x");
        app.update(Action::Back);
        app.update(Action::Back);
        app.update(Action::Char('d'));
        let mut t = terminal(60, 20);
        t.draw(|f| ui::render(app, f)).unwrap();
        let text = buffer_text(t.backend().buffer());
        let row = row_of(&text, "张三");
        assert!(row.contains(label), "{lang:?}: {row}\n{text}");
    }
}

#[test]
fn a_narrow_english_history_cuts_its_cells_with_an_ellipsis() {
    let mut fx = fixture(Lang::En);
    let app = &mut fx.app;
    phone_call(app);
    app.update(Action::Char('h'));
    let mut t = terminal(60, 20);
    t.draw(|f| ui::render(app, f)).unwrap();
    let text = buffer_text(t.backend().buffer());
    let row = row_of(&text, "张三");
    assert!(row.contains(" call "), "the short kind: {row}");
    assert!(row.contains("local on…│"), "the state cut with …: {row}");
    assert!(text.contains("Pho… Signa…"), "{text}");
    let status = text.lines().rev().nth(1).unwrap();
    assert!(
        status.starts_with("not synced yet") && status.ends_with('…'),
        "{status}"
    );
}

/// A typed path too long for the dialog keeps its end (the file's name) in view; a path
/// refused is replaced by the next one typed, not run on after it (QA s21d D6).
#[test]
fn a_long_typed_path_shows_its_end_and_a_refused_one_is_replaced_by_the_next() {
    let mut fx = fixture(Lang::Zh);
    let dir = fx.app.last_dir.clone();
    let deep = dir.join("a-very-long-folder-name-from-the-phone-camera-import-2026-12");
    std::fs::create_dir(&deep).unwrap();
    std::fs::write(deep.join("notes.txt"), "not a photo").unwrap();
    write_jpeg(&deep.join("IMG_0031.jpg"), 320, 240);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    focus(app, bangfu_client::app::form::Field::Photos);
    app.update(Action::Enter);
    keys(app, &deep.join("notes.txt").display().to_string());
    let text = draw(app);
    let typed = text.lines().find(|l| l.contains("前往：")).unwrap();
    assert!(
        typed.contains("前往：…") && typed.contains("2026-12/notes.txt▏"),
        "{typed}"
    );
    app.update(Action::Enter);
    assert!(app.status.clone().unwrap().error, "a text file is refused");
    keys(app, &deep.join("IMG_0031.jpg").display().to_string());
    app.update(Action::Enter);
    assert!(app.overlay.is_none(), "{:?}", app.status);
    assert!(draw(app).contains("320×240"));
}

/// A paste longer than 备注 takes stops at its limit and says so; the form stays
/// usable (QA s22b F4).
#[test]
fn a_paste_past_a_fields_limit_stops_there_and_says_so() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    focus(app, bangfu_client::app::form::Field::Notes);
    app.update(Action::Paste("长文本测试".repeat(1000)));
    let status = app.status.clone().unwrap();
    assert!(
        status.error && status.text.contains("此栏最多 4000 字"),
        "{status:?}"
    );
    match &app.screen {
        Screen::Form(f) => assert_eq!(f.draft.notes.chars().count(), 4000),
        other => panic!("{other:?}"),
    }
    let text = draw(app);
    assert!(text.contains("长文本测试"), "{text}");
}

/// An overdue household leaving pairing soon, with nothing left due: in English at 60
/// columns the row keeps the overdue sign and the exit's day (QA s22b F8).
#[test]
fn an_overdue_row_with_nothing_due_keeps_its_exit_mark_in_a_narrow_english_list() {
    // In December, so the exit's mark is as wide as it gets (`out 12/20`).
    use chrono::TimeZone as _;
    let december = chrono::Utc.with_ymd_and_hms(2026, 12, 15, 2, 0, 0).unwrap();
    let mut listed = default_households();
    let day = december.date_naive() + chrono::Duration::days(5);
    listed[0].summary.exit_on = Some(day);
    listed[0].pairings[0].valid_to = Some(day);
    let fx = app_listing(Lang::En, listed);
    let rt = fx.app.runtime().clone();
    let app = &App::new(
        fx.app.client().clone(),
        rt,
        Lang::En,
        Clock::Fixed(december),
        (60, 20),
    );
    for width in [80, 60] {
        let mut t = terminal(width, 20);
        t.draw(|f| ui::render(app, f)).unwrap();
        let text = buffer_text(t.backend().buffer());
        let row = row_of(&text, "张三");
        assert!(row.contains('!'), "{width}: {text}");
        assert!(
            row.contains(&day.format("%-m/%d").to_string())
                || row.contains(&day.format("%m-%d").to_string()),
            "{width}: {row}\n{text}"
        );
    }
}

/// A row whose visit carries the sheet's marks explains them below it: (迟报) and
/// (补录) are two different things (QA s22b F9).
#[test]
fn the_sheet_summary_explains_the_marks_of_the_selected_row() {
    let mut fx = second_helper_with_sheet(Lang::Zh);
    let client = fx.app.client().clone();
    fx.app.runtime().block_on(async {
        let q = "2026Q1".parse().unwrap();
        let mut sheet = client.store().sheet(q).await.unwrap().unwrap();
        sheet.rows[0].records[0].late = true;
        sheet.rows[0].records[0].flags = vec!["entered_late".into()];
        client.store().save_sheet(&sheet).await.unwrap();
    });
    fx.app.update(Action::Char('a'));
    let mut t = terminal(100, 40);
    t.draw(|f| ui::render(&fx.app, f)).unwrap();
    let text = buffer_text(t.backend().buffer());
    assert!(text.contains("01-10入户(迟报)(补录)"), "{text}");
    assert!(
        text.contains("标记说明：(迟报) 上次报送考勤表后才收到的记录；(补录)"),
        "{text}"
    );
    // The rule the windows were judged by ends the summary, as on the printed sheet
    // (QA s24c F8).
    assert!(text.contains("考勤规则：考勤按自然月"), "{text}");
    // The row without marks has no legend.
    fx.app.update(Action::Down);
    let mut t = terminal(100, 40);
    t.draw(|f| ui::render(&fx.app, f)).unwrap();
    assert!(!buffer_text(t.backend().buffer()).contains("标记说明"));
}

/// The form's help line offers 1–5 only where they toggle policies (QA s22d F5).
#[test]
fn the_policy_keys_are_offered_on_the_policy_field_only() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    focus(app, bangfu_client::app::form::Field::Kind);
    let help = draw(app).lines().last().unwrap().to_string();
    assert!(!help.contains("1-5"), "{help}");
    focus(app, bangfu_client::app::form::Field::Policies);
    let help = draw(app).lines().last().unwrap().to_string();
    assert!(help.contains("1-5 勾选政策"), "{help}");
}

/// The sheet screen counts the stored quarters from the earliest: ← (the quarter
/// before) counts down (QA s22d F9).
#[test]
fn the_quarter_index_counts_up_with_the_quarters() {
    let mut fx = second_helper_with_sheet(Lang::Zh);
    let client = fx.app.client().clone();
    fx.app.runtime().block_on(async {
        let mut sheet = client
            .store()
            .sheet("2026Q1".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        sheet.quarter = "2025Q4".parse().unwrap();
        // Submitted: the sheet opens on the quarter running (an ended one still to
        // submit would open first).
        sheet.submitted_version = Some(1);
        client.store().save_sheet(&sheet).await.unwrap();
    });
    fx.app.update(Action::Char('a'));
    assert!(
        draw(&fx.app).contains("考勤表 2026Q1 · 刘帮扶 · (2/2)"),
        "{}",
        draw(&fx.app)
    );
    fx.app.update(Action::Left);
    assert!(
        draw(&fx.app).contains("考勤表 2025Q4 · 刘帮扶 · (1/2)"),
        "{}",
        draw(&fx.app)
    );
}

/// A helper whose every pairing has ended is told so, not to log in to download
/// (QA s22e F7).
#[test]
fn with_every_pairing_ended_the_list_says_so() {
    let mut listed = default_households();
    for h in &mut listed {
        h.pairings[0].valid_to = chrono::NaiveDate::from_ymd_opt(2026, 3, 10);
    }
    let fx = app_listing(Lang::Zh, listed);
    let text = draw(&fx.app);
    assert!(text.contains("目前没有结对中的帮扶户"), "{text}");
    assert!(!text.contains("请先联网登录"), "{text}");
}

/// QA s30c N2: a device that heard its key was revoked says so in the title, and opens
/// no visit form the server would refuse.
#[test]
fn a_revoked_device_says_so_and_opens_no_visit_form() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let client = rt.block_on(login(&dir.path().join("data"), Limits::default()));
    rt.block_on(client.store().set_device_revoked()).unwrap();
    let mut app = App::new(
        client,
        rt,
        Lang::Zh,
        bangfu_client::app::Clock::Fixed(now()),
        (80, 24),
    );
    let text = draw(&app);
    assert!(text.contains("本机已停用"), "{text}");
    app.update(Action::Char('n'));
    assert!(!matches!(app.screen, Screen::Form(_)));
    let text = draw(&app);
    assert!(text.contains("已被乡镇扶贫办停用"), "{text}");
}

/// QA s30d P1: a visit with more to say than the pane holds scrolls with Tab, down to
/// its record id; the pane grows with a short list.
#[test]
fn history_details_scroll_to_the_end() {
    let mut fx = fixture(Lang::Zh);
    let app = &mut fx.app;
    let household = app
        .runtime()
        .block_on(app.client().households(now()))
        .unwrap()[0]
        .detail
        .summary
        .id;
    let mut body = bangfu_shared::visit::VisitBody::new(VisitKind::Phone, now());
    body.notes = Some("户主腿脚不便，需要轮椅；孙子在镇中学读初二，成绩很好。".repeat(20));
    app.runtime()
        .block_on(
            app.client()
                .record_visit(household, body, None, None, now()),
        )
        .unwrap();
    app.update(Action::Char('h'));
    let text = draw(app);
    assert!(text.contains("↕ 1–"), "{text}");
    assert!(!text.contains("#1 · "), "{text}");
    for _ in 0..20 {
        if draw(app).contains("#1 · ") {
            break;
        }
        app.update(Action::Next);
    }
    let text = draw(app);
    assert!(text.contains("#1 · "), "the record id is reached: {text}");
}

/// QA s30d P2: in English at 80 columns every policy box is in sight, the ticked ones
/// marked.
#[test]
fn every_policy_box_shows_in_english_at_80_columns() {
    let mut fx = fixture(Lang::En);
    let app = &mut fx.app;
    app.update(Action::Char('n'));
    focus(app, bangfu_client::app::form::Field::Policies);
    keys(app, "45");
    let text = draw(app);
    assert!(text.contains("✓fin") && text.contains("✓soc"), "{text}");
    assert!(text.contains("·edu") && text.contains("·house"), "{text}");
}

/// QA s30d P3: a remark being typed survives the process: a new run on the same data
/// says so on the sheet, on its row, and `e` takes the text up again; Esc drops it.
#[test]
fn a_remark_being_typed_survives_a_killed_process() {
    let mut fx = second_helper_with_sheet(Lang::Zh);
    let (client, rt) = (fx.app.client().clone(), fx.app.runtime().clone());
    let app = &mut fx.app;
    app.update(Action::Char('a'));
    app.update(Action::Down);
    app.update(Action::Char('e'));
    keys(app, "未写完");
    // The process is gone here: a new interface on the same store.
    let mut again = App::new(
        client,
        rt,
        Lang::Zh,
        bangfu_client::app::Clock::Fixed(now()),
        (80, 24),
    );
    again.update(Action::Char('a'));
    let status = again.status.clone().map(|s| s.text).unwrap_or_default();
    assert!(status.contains("有未保存完的备注"), "{status}");
    assert_eq!(again.sheet_selected, 1, "its row is selected");
    // Another row's editor, left with Esc or Enter, does not throw it away (QA s30e Q1).
    again.update(Action::Up);
    again.update(Action::Char('e'));
    again.update(Action::Back);
    again.update(Action::Char('e'));
    keys(&mut again, "另一行");
    again.update(Action::Enter);
    again.update(Action::Down);
    again.update(Action::Char('e'));
    assert!(draw(&again).contains("未写完_"));
    again.update(Action::Back);
    again.update(Action::Char('e'));
    assert!(!draw(&again).contains("未写完"), "Esc dropped it");
}

/// QA s30d P4: the English history at 80 columns names its signature column and a
/// corrected visit's state whole.
#[test]
fn the_english_history_keeps_its_words_whole_at_80_columns() {
    let mut fx = fixture(Lang::En);
    let app = &mut fx.app;
    phone_call(app);
    let rows = app
        .runtime()
        .block_on(app.client().visits(None, 10))
        .unwrap();
    let (id, household) = (rows[0].visit_id, rows[0].household_id);
    let mut body = rows[0].current.signed.record.visit.clone().unwrap();
    body.notes = Some("called again".into());
    app.runtime()
        .block_on(app.client().record_visit(
            household,
            body,
            Some((id, Some("more said".into()))),
            None,
            now(),
        ))
        .unwrap();
    app.update(Action::Char('h'));
    let text = draw(app);
    assert!(
        text.contains("Signature") && text.contains("amended×1"),
        "{text}"
    );
}
