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
            let parent = target.parent().unwrap_or(&self.dir);
            std::fs::create_dir_all(parent).map_err(|e| ClientError::io(parent, e))?;
            std::fs::create_dir_all(&self.tmp).map_err(|e| ClientError::io(&self.tmp, e))?;
            let tmp = self
                .tmp
                .join(format!("{sha256}.{}.part", std::process::id()));
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(bytes)?;
                f.sync_all()?;
                std::fs::rename(&tmp, &target)?;
                // Make the rename durable before the record that names the file commits.
                #[cfg(unix)]
                std::fs::File::open(parent)?.sync_all()?;
                Ok(())
            };
            write().map_err(|e| ClientError::io(&target, e))?;
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
        decode_bytes(&bytes, self.limits).map_err(|reason| ClientError::NotAnImage {
            path: path.into(),
            reason,
        })
    }
}

/// Decodes JPEG or PNG bytes, upright, refusing decompression bombs.
fn decode_bytes(bytes: &[u8], limits: Limits) -> std::result::Result<DynamicImage, String> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if reader.format().is_none() {
        return Err("unknown file type, expected a JPEG or PNG photo".into());
    }
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(4));
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(format!("{w}×{h} pixels is too large"));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Shrinks so the longest edge is at most `max_edge`; smaller images are kept as they are.
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
        let img = decode_bytes(&bytes, store.limits)
            .map_err(|reason| ClientError::NotAnImage { path, reason })?;
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
