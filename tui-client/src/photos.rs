//! Photos and signature images: checked, downscaled and stored content-addressed.
//!
//! A helper's phone photo is 3–12 MB; the village has little bandwidth. Every photo is
//! decoded (a file that is not an image is refused with a clear message and never
//! attached), turned upright from its EXIF orientation, downscaled to a longest edge of
//! [`Limits::max_edge`] and re-encoded as JPEG. The stored file is named by the SHA-256
//! of its bytes, which is the hash the helper's signature covers; storing the same photo
//! twice is harmless. Files are written to a temporary name, synced and renamed, so a
//! crash never leaves a half file under a hash name.

use std::io::{Cursor, Write as _};
use std::path::{Path, PathBuf};

use bangfu_shared::visit::sha256_hex;
use image::{DynamicImage, GenericImageView, ImageDecoder as _, ImageReader};

use crate::config::{DataDir, Limits};
use crate::error::{ClientError, Result};

/// The shorter edge a photo must have, in pixels: a thumbnail or a placeholder shows
/// nothing of a visit (a phone camera's photo has 1,000 or more).
pub const MIN_PHOTO_EDGE: u32 = 100;

/// What kind of image a stored file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Jpeg,
    Png,
}

impl MediaType {
    /// The MIME type, as stored and later uploaded.
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
        }
    }

    /// Parses a MIME type read back from the store.
    pub fn from_mime(s: &str) -> Option<Self> {
        match s {
            "image/jpeg" => Some(MediaType::Jpeg),
            "image/png" => Some(MediaType::Png),
            _ => None,
        }
    }
}

/// A file in the content-addressed image store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    pub sha256: String,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    pub media_type: MediaType,
}

/// The content-addressed image store under `photos/` in the data directory.
#[derive(Debug, Clone)]
pub struct PhotoStore {
    dir: PathBuf,
    tmp: PathBuf,
    limits: Limits,
}

impl PhotoStore {
    /// The store inside `data` (the directories must exist: [`DataDir::ensure`]).
    pub fn new(data: &DataDir, limits: Limits) -> Self {
        PhotoStore {
            dir: data.photos_dir(),
            tmp: data.tmp_dir(),
            limits,
        }
    }

    /// The limits this store applies.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Where the file with this hash lives (whether or not it exists).
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("xx");
        self.dir.join(prefix).join(sha256)
    }

    /// Whether the file with this hash is on the device at its registered size: a
    /// cheap check, each sync, that a synced visit's image was not lost (a full
    /// [`PhotoStore::verify`] reads every byte).
    pub fn holds(&self, sha256: &str, bytes: u64) -> bool {
        std::fs::metadata(self.path_of(sha256)).is_ok_and(|m| m.len() == bytes)
    }

    /// The hashes of the images written to the store since `since` (a failed save's,
    /// for [`crate::Client::forget_unused_images_since`]).
    pub fn stored_since(&self, since: std::time::SystemTime) -> Vec<String> {
        let Ok(prefixes) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        prefixes
            .flatten()
            .filter_map(|d| std::fs::read_dir(d.path()).ok())
            .flat_map(|files| files.flatten())
            .filter(|f| {
                f.metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|at| at >= since)
            })
            .filter_map(|f| f.file_name().to_str().map(str::to_string))
            .collect()
    }

    /// Whether the file with this hash is stored and intact.
    pub fn verify(&self, sha256: &str) -> bool {
        std::fs::read(self.path_of(sha256)).is_ok_and(|b| sha256_hex(&b) == sha256)
    }

    /// Checks, downsizes, re-encodes and stores a photo from `path`. `min_edge`: the
    /// shorter edge the picture must keep once downsized ([`MIN_PHOTO_EDGE`] for a visit
    /// photo; a signature's crop may be a thin strip).
    pub fn import_photo(&self, path: &Path, min_edge: u32) -> Result<StoredImage> {
        let img = self.decode_file(path)?;
        let (width, height) = img.dimensions();
        let img = downscale(img, self.limits.max_edge);
        if img.width().min(img.height()) < min_edge {
            return Err(ClientError::PhotoTooSmall {
                path: path.into(),
                width,
                height,
                min: min_edge,
            });
        }
        let mut out = Vec::new();
        let encoder =
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, self.limits.jpeg_quality);
        on_white(&img)
            .write_with_encoder(encoder)
            .map_err(|e| ClientError::NotAnImage {
                path: path.into(),
                reason: format!("cannot encode JPEG: {e}"),
            })?;
        let (width, height) = img.dimensions();
        self.put(&out, width, height, MediaType::Jpeg)
    }

    /// Stores an image that is already the bytes to keep (a rendered signature PNG, or
    /// a photo of the signed paper card after [`PhotoStore::import_photo`]).
    pub fn put_png(&self, png: &[u8]) -> Result<StoredImage> {
        let img =
            image::load_from_memory_with_format(png, image::ImageFormat::Png).map_err(|e| {
                ClientError::NotAnImage {
                    path: "signature.png".into(),
                    reason: e.to_string(),
                }
            })?;
        let (w, h) = img.dimensions();
        self.put(png, w, h, MediaType::Png)
    }

    /// Stores an image received from the server (a recovered record's photo or
    /// signature), after checking it is a JPEG or PNG; its hash names it.
    pub fn put_received(&self, bytes: &[u8]) -> Result<StoredImage> {
        let not_image = |reason: String| ClientError::NotAnImage {
            path: format!("server image {}", sha256_hex(bytes)).into(),
            reason,
        };
        let reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| not_image(e.to_string()))?;
        let media_type = match reader.format() {
            Some(image::ImageFormat::Jpeg) => MediaType::Jpeg,
            Some(image::ImageFormat::Png) => MediaType::Png,
            _ => return Err(not_image("not a JPEG or PNG".into())),
        };
        let (width, height) = reader
            .into_dimensions()
            .map_err(|e| not_image(e.to_string()))?;
        self.put(bytes, width, height, media_type)
    }

    fn put(
        &self,
        bytes: &[u8],
        width: u32,
        height: u32,
        media_type: MediaType,
    ) -> Result<StoredImage> {
        let sha256 = sha256_hex(bytes);
        let target = self.path_of(&sha256);
        if !self.verify(&sha256) {
            // Photos of households and their signatures are personal data: directories
            // 0700 and files 0600 whatever the umask (QA s23 F5).
            let parent = target.parent().unwrap_or(&self.dir);
            for dir in [parent, &self.tmp] {
                std::fs::create_dir_all(dir).map_err(|e| ClientError::io(dir, e))?;
                crate::config::set_mode(dir, 0o700)?;
            }
            let tmp = self
                .tmp
                .join(format!("{sha256}.{}.part", std::process::id()));
            let write = || -> std::io::Result<()> {
                let mut f = crate::config::create_private(&tmp)?;
                f.write_all(bytes)?;
                f.sync_all()?;
                std::fs::rename(&tmp, &target)?;
                // Make the rename durable before the record that names the file commits.
                #[cfg(unix)]
                std::fs::File::open(parent)?.sync_all()?;
                Ok(())
            };
            write().map_err(|e| {
                // A part left by a failed write (a full disk) would only fill it more
                // (QA s26b F6).
                let _ = std::fs::remove_file(&tmp);
                ClientError::io(&target, e)
            })?;
        }
        Ok(StoredImage {
            sha256,
            bytes: bytes.len() as u64,
            width,
            height,
            media_type,
        })
    }

    fn decode_file(&self, path: &Path) -> Result<DynamicImage> {
        let meta = std::fs::metadata(path).map_err(|e| ClientError::io(path, e))?;
        if !meta.is_file() {
            return Err(ClientError::NotAnImage {
                path: path.into(),
                reason: "not a regular file".into(),
            });
        }
        if meta.len() > self.limits.max_photo_bytes {
            return Err(ClientError::PhotoTooLarge {
                path: path.into(),
                size_mb: meta.len() as f64 / 1_048_576.0,
                limit_mb: self.limits.max_photo_bytes as f64 / 1_048_576.0,
            });
        }
        let bytes = std::fs::read(path).map_err(|e| ClientError::io(path, e))?;
        decode_bytes(&bytes, self.limits).map_err(|problem| problem.into_error(path, self.limits))
    }
}

/// Why bytes could not be decoded as a photo. Each asks the helper for something else
/// (another file, the whole file, a smaller picture), so each keeps its own message.
#[derive(Debug)]
enum DecodeProblem {
    /// Not a JPEG or PNG at all (text, random bytes, a format this client does not take).
    NotAnImage(String),
    /// A JPEG or PNG cut short or damaged.
    Damaged(String),
    /// A real picture with more pixels than the limit.
    TooManyPixels { width: u32, height: u32 },
}

impl DecodeProblem {
    /// The client error for the file at `path`.
    fn into_error(self, path: &Path, limits: Limits) -> ClientError {
        let path = path.into();
        match self {
            DecodeProblem::NotAnImage(reason) => ClientError::NotAnImage { path, reason },
            DecodeProblem::Damaged(reason) => ClientError::PhotoDamaged { path, reason },
            DecodeProblem::TooManyPixels { width, height } => ClientError::PhotoTooManyPixels {
                path,
                width,
                height,
                max_pixels: limits.max_pixels,
            },
        }
    }

    /// The English reason, for the places that only say "not an image".
    fn reason(&self) -> String {
        match self {
            DecodeProblem::NotAnImage(r) | DecodeProblem::Damaged(r) => r.clone(),
            DecodeProblem::TooManyPixels { width, height } => {
                format!("{width}×{height} pixels is too large")
            }
        }
    }
}

/// Decodes JPEG or PNG bytes, upright, refusing decompression bombs and files cut short.
fn decode_bytes(bytes: &[u8], limits: Limits) -> std::result::Result<DynamicImage, DecodeProblem> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeProblem::NotAnImage(e.to_string()))?;
    let format = reader.format();
    if !matches!(
        format,
        Some(image::ImageFormat::Jpeg | image::ImageFormat::Png)
    ) {
        return Err(DecodeProblem::NotAnImage(
            "unknown file type, expected a JPEG or PNG photo".into(),
        ));
    }
    // The decoders fill a missing tail with grey rather than fail: check the end first.
    if !ends_complete(bytes, format) {
        return Err(DecodeProblem::Damaged(
            "the file stops before its end".into(),
        ));
    }
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(4));
    reader.limits(image_limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| DecodeProblem::Damaged(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    let too_many = DecodeProblem::TooManyPixels { width, height };
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(too_many);
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        // Within the pixel limit but too deep (16-bit RGBA) to fit the memory limit.
        image::ImageError::Limits(_) => too_many,
        other => DecodeProblem::Damaged(other.to_string()),
    })?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Whether a JPEG or PNG file runs to its end marker. A photo copied off a phone while
/// it was still being written, or a transfer cut short, lacks it; the decoders would
/// paint the missing rows grey without an error.
fn ends_complete(bytes: &[u8], format: Option<image::ImageFormat>) -> bool {
    match format {
        Some(image::ImageFormat::Jpeg) => jpeg_reaches_eoi(bytes),
        Some(image::ImageFormat::Png) => png_reaches_iend(bytes),
        _ => true,
    }
}

/// Walks a JPEG's segments and entropy-coded data to its end-of-image marker (FF D9).
/// Walking rather than looking at the last two bytes: a thumbnail's EOI inside the EXIF
/// segment does not count, and data a phone appends after the EOI (zero padding, a
/// maker's trailer, a second picture) does not make the photo incomplete.
fn jpeg_reaches_eoi(b: &[u8]) -> bool {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut i = 2;
    while i + 1 < b.len() {
        if b[i] != 0xFF {
            i += 1; // a stray byte between segments: decoders skip it too
            continue;
        }
        match b[i + 1] {
            0xD9 => return true,
            // A fill byte, or a marker without a length (TEM, RSTn).
            0xFF | 0x00 | 0x01 | 0xD0..=0xD7 => i += 1,
            marker => {
                let Some(len) = b
                    .get(i + 2..i + 4)
                    .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                else {
                    return false;
                };
                i += 2 + len;
                if marker == 0xDA {
                    i = skip_entropy_coded(b, i);
                }
            }
        }
    }
    false
}

/// The index of the next marker after a scan's entropy-coded data starting at `i` (or
/// the end): there a 0xFF is followed by 0x00 (a stuffed byte) or a restart marker.
fn skip_entropy_coded(b: &[u8], mut i: usize) -> usize {
    while i + 1 < b.len() {
        if b[i] == 0xFF && !matches!(b[i + 1], 0x00 | 0xD0..=0xD7 | 0xFF) {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// Walks a PNG's chunks to its whole IEND chunk.
fn png_reaches_iend(b: &[u8]) -> bool {
    let mut i = 8; // the signature
    while let Some(head) = b.get(i..i + 8) {
        if &head[4..8] == b"IEND" {
            return b.len() >= i + 12; // with its CRC
        }
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        i = match i.checked_add(12).and_then(|n| n.checked_add(len)) {
            Some(next) => next,
            None => return false,
        };
    }
    false
}

/// The image's colours on a white ground: JPEG has no transparency, and a signature
/// scanned or drawn as a PNG with a see-through background would otherwise turn black.
fn on_white(img: &DynamicImage) -> image::RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let a = u16::from(a);
        let blend = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([blend(r), blend(g), blend(b)])
    })
}

/// Shrinks so the longest edge is at most `max_edge`; smaller images are kept as they are.
pub fn downscale(img: DynamicImage, max_edge: u32) -> DynamicImage {
    let (w, h) = img.dimensions();
    if w.max(h) <= max_edge {
        return img;
    }
    // `thumbnail` averages areas: fast on 12-megapixel input and free of aliasing.
    img.thumbnail(max_edge, max_edge)
}

/// A picture for a text terminal: each cell shows two pixels stacked, with the upper
/// half block `▀` in the top colour over the bottom colour as background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HalfBlocks {
    /// Columns.
    pub width: u16,
    /// Terminal rows (each is two pixel rows).
    pub height: u16,
    /// Row-major `(top, bottom)` RGB pairs, `width × height` of them.
    pub cells: Vec<([u8; 3], [u8; 3])>,
}

impl HalfBlocks {
    /// Renders the stored image `sha256` to fit in `cols × rows` cells, keeping its
    /// aspect ratio (a terminal cell is about twice as tall as wide).
    pub fn from_store(store: &PhotoStore, sha256: &str, cols: u16, rows: u16) -> Result<Self> {
        let path = store.path_of(sha256);
        let bytes = std::fs::read(&path).map_err(|e| ClientError::io(&path, e))?;
        let img = decode_bytes(&bytes, store.limits).map_err(|p| ClientError::NotAnImage {
            path,
            reason: p.reason(),
        })?;
        Ok(Self::from_image(&img, cols, rows))
    }

    /// Renders an image to fit in `cols × rows` cells.
    pub fn from_image(img: &DynamicImage, cols: u16, rows: u16) -> Self {
        let (w, h) = img.dimensions();
        let (max_w, max_h) = (u32::from(cols.max(1)), u32::from(rows.max(1)) * 2);
        let scale = f64::min(
            max_w as f64 / w.max(1) as f64,
            max_h as f64 / h.max(1) as f64,
        );
        let tw = ((w as f64 * scale).round() as u32).clamp(1, max_w);
        let th = ((h as f64 * scale).round() as u32).clamp(2, max_h);
        let small = img.thumbnail_exact(tw, th).to_rgb8();
        let rows_out = th.div_ceil(2);
        let mut cells = Vec::with_capacity((tw * rows_out) as usize);
        for r in 0..rows_out {
            for c in 0..tw {
                let top = small.get_pixel(c, r * 2).0;
                let bottom = if r * 2 + 1 < th {
                    small.get_pixel(c, r * 2 + 1).0
                } else {
                    top
                };
                cells.push((top, bottom));
            }
        }
        HalfBlocks {
            width: tw as u16,
            height: rows_out as u16,
            cells,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

    use super::*;

    /// A real JPEG of a busy picture, as a camera would write it.
    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 5 % 256) as u8,
                ((x ^ y) & 0xff) as u8,
            ])
        });
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
            .unwrap();
        out
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    fn store(dir: &Path) -> PhotoStore {
        let data = DataDir::new(dir);
        data.ensure().unwrap();
        PhotoStore::new(&data, Limits::default())
    }

    /// A write that fails (here: a directory where the file goes; in the field, a full
    /// card) leaves no part file behind to fill the device further (QA s26b F6).
    #[test]
    fn a_failed_write_leaves_no_part_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let sig = png(300, 100);
        let target = store.path_of(&sha256_hex(&sig));
        std::fs::create_dir_all(target.join("in-the-way")).unwrap();
        assert!(store.put_png(&sig).is_err());
        let left: Vec<_> = std::fs::read_dir(&store.tmp).unwrap().flatten().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// Stored photos and signatures are the user's alone, whatever the umask: files
    /// 0600, their directories 0700 (QA s23 F5).
    #[cfg(unix)]
    #[test]
    fn stored_images_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let src = dir.path().join("photo.jpg");
        std::fs::write(&src, jpeg(800, 600)).unwrap();
        let photo = store.import_photo(&src, MIN_PHOTO_EDGE).unwrap();
        let signature = store.put_png(&png(300, 100)).unwrap();
        for img in [&photo, &signature] {
            let file = store.path_of(&img.sha256);
            assert_eq!(mode(&file), 0o600, "{}", file.display());
            let shard = file.parent().unwrap();
            assert_eq!(mode(shard), 0o700, "{}", shard.display());
        }
        for d in ["", "photos", "tmp"] {
            let d = dir.path().join(d);
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
    }

    /// The first half of a real JPEG (a photo copied off the phone while it was still
    /// being written) is refused as damaged, and nothing is stored.
    #[test]
    fn a_jpeg_cut_in_half_is_refused_as_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let whole = jpeg(800, 600);
        let half = dir.path().join("half.jpg");
        std::fs::write(&half, &whole[..whole.len() / 2]).unwrap();
        // The decoder alone takes it: that is why the end is checked.
        assert!(image::load_from_memory(&whole[..whole.len() / 2]).is_ok());
        let err = store.import_photo(&half, MIN_PHOTO_EDGE).unwrap_err();
        assert!(matches!(err, ClientError::PhotoDamaged { .. }), "{err:?}");
        assert_eq!(
            crate::i18n::Lang::Zh.error(&err),
            format!(
                "照片文件不完整或已损坏（可能仍在复制中），未添加：{}",
                half.display()
            )
        );
        assert!(err.to_string().contains("incomplete or damaged"), "{err}");
        let stored = std::fs::read_dir(dir.path().join("photos"))
            .unwrap()
            .count();
        assert_eq!(stored, 0, "nothing was stored");
        // The whole file is taken.
        let full = dir.path().join("full.jpg");
        std::fs::write(&full, &whole).unwrap();
        assert!(store.import_photo(&full, MIN_PHOTO_EDGE).is_ok());
    }

    /// What a phone writes after the end marker (zero padding, a maker's trailer) does
    /// not make a photo incomplete; an EOI inside the EXIF thumbnail does not end it.
    #[test]
    fn the_end_marker_is_found_by_walking_the_segments() {
        let whole = jpeg(320, 240);
        assert!(jpeg_reaches_eoi(&whole));
        let mut padded = whole.clone();
        padded.extend([0u8; 64]);
        assert!(jpeg_reaches_eoi(&padded));
        let mut trailer = whole.clone();
        trailer.extend(b"SEFHtrailer data of a phone maker");
        assert!(jpeg_reaches_eoi(&trailer));
        // Cut anywhere before the end: incomplete, even after an APP1 holding FF D9.
        let mut with_thumb = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00];
        with_thumb.extend(&whole[2..]);
        assert!(jpeg_reaches_eoi(&with_thumb));
        assert!(!jpeg_reaches_eoi(&with_thumb[..with_thumb.len() - 2]));
        for cut in [3, whole.len() / 4, whole.len() * 3 / 4, whole.len() - 1] {
            assert!(!jpeg_reaches_eoi(&whole[..cut]), "cut at {cut}");
        }
        // A PNG must reach its IEND chunk.
        let p = png(200, 150);
        assert!(png_reaches_iend(&p));
        for cut in [8, p.len() / 2, p.len() - 4] {
            assert!(!png_reaches_iend(&p[..cut]), "cut at {cut}");
        }
    }

    /// A real picture with too many pixels says its size and the limit, not "unreadable".
    #[test]
    fn a_picture_with_too_many_pixels_names_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        // A 30000×20000 frame header over a small picture's data: the size is read
        // from the header and refused before anything is decoded.
        let mut bytes = jpeg(320, 240);
        let sof = bytes
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("a baseline JPEG");
        bytes[sof + 5..sof + 9].copy_from_slice(&[0x4E, 0x20, 0x75, 0x30]); // h 20000, w 30000
        let big = dir.path().join("bigdim.jpg");
        std::fs::write(&big, &bytes).unwrap();
        let err = store.import_photo(&big, MIN_PHOTO_EDGE).unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::PhotoTooManyPixels {
                    width: 30000,
                    height: 20000,
                    ..
                }
            ),
            "{err:?}"
        );
        let zh = crate::i18n::Lang::Zh.error(&err);
        assert!(
            zh.starts_with("照片 30000×20000 像素，太大（上限 12000 万像素），未添加：")
                && zh.ends_with("bigdim.jpg"),
            "{zh}"
        );
        let en = crate::i18n::Lang::En.error(&err);
        assert!(
            en.starts_with("30000×20000 pixels is too large for a photo (at most 120 megapixels)"),
            "{en}"
        );
    }

    /// A file that is no JPEG or PNG is still told to choose one.
    #[test]
    fn text_is_still_not_an_image() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let txt = dir.path().join("notes.jpg");
        std::fs::write(&txt, "这不是照片").unwrap();
        let err = store.import_photo(&txt, MIN_PHOTO_EDGE).unwrap_err();
        assert!(matches!(err, ClientError::NotAnImage { .. }), "{err:?}");
    }
}
