//! Photos from real generated files: good ones are downscaled and stored by hash; corrupt,
//! oversized and non-image files are refused with a clear message and not attached.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod common;

use bangfu_client::photos::HalfBlocks;
use bangfu_client::{ClientError, Limits};
use bangfu_shared::visit::sha256_hex;
use common::*;

#[test]
fn a_large_photo_is_downscaled_reencoded_and_stored_by_hash() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let src = write_jpeg(&dir.path().join("big.jpg"), 2400, 1800);
    rt.block_on(async {
        let c = login(&dir.path().join("data"), Limits::default()).await;
        let p = c.attach_photo(&src).await.unwrap();
        assert_eq!((p.width, p.height), (1600, 1200));
        let stored = std::fs::read(c.photos().path_of(&p.sha256)).unwrap();
        assert_eq!(sha256_hex(&stored), p.sha256);
        assert_eq!(stored.len() as u64, p.bytes);
        assert_eq!(
            image::guess_format(&stored).unwrap(),
            image::ImageFormat::Jpeg
        );
        assert!(c.store().has_file(&p.sha256).await.unwrap());
        // Storing again is harmless and gives the same reference.
        assert_eq!(c.attach_photo(&src).await.unwrap(), p);
        // Portrait PNG, small: kept at its size, re-encoded as JPEG.
        let png = write_png(&dir.path().join("small.png"), 300, 500);
        let q = c.attach_photo(&png).await.unwrap();
        assert_eq!((q.width, q.height), (300, 500));
        // A terminal thumbnail keeps the aspect ratio within the box.
        let t = HalfBlocks::from_store(c.photos(), &p.sha256, 26, 9).unwrap();
        assert_eq!(t.width, 24);
        assert_eq!(t.height, 9);
        assert_eq!(t.cells.len(), 24 * 9);
    });
}

#[test]
fn a_text_file_is_not_an_image() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("notes.jpg");
    std::fs::write(&txt, "这不是照片 — just some text\n").unwrap();
    rt.block_on(async {
        let c = login(&dir.path().join("data"), Limits::default()).await;
        let err = c.attach_photo(&txt).await.unwrap_err();
        assert!(matches!(err, ClientError::NotAnImage { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("notes.jpg")
                && msg.contains("not a readable image")
                && msg.contains("not attached"),
            "{msg}"
        );
    });
}

#[test]
fn a_corrupt_jpeg_is_refused() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let good = write_jpeg(&dir.path().join("good.jpg"), 640, 480);
    let mut bytes = std::fs::read(&good).unwrap();
    bytes.truncate(bytes.len() / 3); // a transfer cut short
    for b in bytes.iter_mut().skip(400).step_by(7) {
        *b = 0xff;
    }
    let bad = dir.path().join("cut.jpg");
    std::fs::write(&bad, &bytes).unwrap();
    rt.block_on(async {
        let c = login(&dir.path().join("data"), Limits::default()).await;
        let err = c.attach_photo(&bad).await.unwrap_err();
        // Cut short and scrambled: damaged, not "choose a JPEG" (it is one).
        assert!(matches!(err, ClientError::PhotoDamaged { .. }), "{err:?}");
        assert!(err.to_string().contains("cut.jpg"));
        // Nothing was stored.
        let stored: Vec<_> = walk(c.photos().path_of("00").parent().unwrap().parent().unwrap());
        assert!(stored.is_empty(), "{stored:?}");
    });
}

#[test]
fn a_picture_too_small_to_show_a_visit_is_refused() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let dot = write_png(&dir.path().join("dot.png"), 1, 1);
    let strip = write_jpeg(&dir.path().join("strip.jpg"), 800, 60);
    rt.block_on(async {
        let c = login(&dir.path().join("data"), Limits::default()).await;
        // A panorama too: downsized to the 1,600 pixel edge it would be 1600×80.
        let panorama = write_jpeg(&dir.path().join("panorama.jpg"), 8000, 400);
        for (path, size) in [(&dot, "1×1"), (&strip, "800×60"), (&panorama, "8000×400")] {
            let err = c.attach_photo(path).await.unwrap_err();
            assert!(matches!(err, ClientError::PhotoTooSmall { .. }), "{err:?}");
            let zh = bangfu_client::i18n::Lang::Zh.error(&err);
            assert!(
                zh.starts_with(&format!("照片太小（{size}，每边至少")),
                "{zh}"
            );
        }
        let stored: Vec<_> = walk(c.photos().path_of("00").parent().unwrap().parent().unwrap());
        assert!(stored.is_empty(), "nothing was stored: {stored:?}");
        // The smallest accepted picture.
        let edge = bangfu_client::photos::MIN_PHOTO_EDGE;
        let least = write_jpeg(&dir.path().join("least.jpg"), edge, edge);
        assert_eq!(c.attach_photo(&least).await.unwrap().width, edge);
        // A witness's signature cropped as a thin strip is no visit photo: it is kept.
        let signature = write_jpeg(&dir.path().join("signature.jpg"), 400, 60);
        assert!(c.attach_card_photo(&signature).await.is_ok());
    });
}

#[test]
fn a_file_over_the_limit_is_refused_before_decoding() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    // A real, decodable PNG of ~3 MB against a 1 MB limit.
    let huge = write_png(&dir.path().join("huge.png"), 1000, 1000);
    let noise: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let img = image::RgbImage::from_raw(1000, 1000, noise).unwrap();
    img.save(&huge).unwrap();
    assert!(std::fs::metadata(&huge).unwrap().len() > 1024 * 1024);
    let limits = Limits {
        max_photo_bytes: 1024 * 1024,
        ..Limits::default()
    };
    rt.block_on(async {
        let c = login(&dir.path().join("data"), limits).await;
        let err = c.attach_photo(&huge).await.unwrap_err();
        assert!(matches!(err, ClientError::PhotoTooLarge { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("over the 1 MB photo limit"), "{msg}");
    });
}

#[test]
fn a_missing_file_or_a_directory_is_a_clear_error() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = login(&dir.path().join("data"), Limits::default()).await;
        let err = c
            .attach_photo(&dir.path().join("nope.jpg"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nope.jpg"));
        let err = c.attach_photo(dir.path()).await.unwrap_err();
        assert!(err.to_string().contains("not a regular file"));
    });
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// A signature scanned as a PNG with a see-through background keeps a white ground in
/// the stored JPEG (a JPEG has no transparency: dropping it made the whole mark black).
#[test]
fn a_transparent_png_is_stored_on_white() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signature.png");
    // Transparent (and black underneath) except a dark stroke across the middle.
    let img = image::RgbaImage::from_fn(200, 100, |_, y| {
        if (45..55).contains(&y) {
            image::Rgba([20, 20, 20, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    img.save(&path).unwrap();
    rt.block_on(async {
        let c = login(&dir.path().join("data"), Limits::default()).await;
        let p = c.attach_photo(&path).await.unwrap();
        let bytes = std::fs::read(c.photos().path_of(&p.sha256)).unwrap();
        let stored = image::load_from_memory(&bytes).unwrap().to_rgb8();
        let ground = stored.get_pixel(10, 10).0;
        let stroke = stored.get_pixel(100, 50).0;
        assert!(
            ground.iter().all(|&v| v > 240),
            "the ground is white: {ground:?}"
        );
        assert!(
            stroke.iter().all(|&v| v < 60),
            "the stroke stays dark: {stroke:?}"
        );
    });
}
