//! A field device for tests: an Ed25519 key registered with the server, a hash chain of
//! signed records, real JPEG photos, tus uploads, and a proxy that cuts connections.

use bangfu_shared::VisitKind;
use bangfu_shared::visit::{
    HouseholdSignature, PhotoRef, RecordEnvelope, RecordType, SignedRecord, VisitBody, ZERO_HASH,
    sha256_hex,
};
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use rand::Rng;
use reqwest::StatusCode;
use std::io::Cursor;

/// A registered device that signs records in sequence.
pub struct Device {
    pub key: SigningKey,
    pub device_id: i64,
    pub helper_id: i64,
    pub seq: i64,
    pub prev: String,
}

impl Device {
    /// Generates a key and registers it for the account of `token`.
    /// Registers a new device key for the helper signed in with `token`, as a device in
    /// the field for a long time: its registration is dated 2000-01-01, so the records
    /// of past visits a test signs at their time are not "signed before the device was
    /// registered" (`clock_behind`).
    pub async fn register(w: &crate::World, token: &str, helper_id: i64) -> Device {
        let device = Device::register_today(&w.http, &w.server.base, token, helper_id).await;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let long_ago = chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z")
            .expect("a date")
            .to_utc();
        bangfu_server::entities::device::Entity::update_many()
            .col_expr(
                bangfu_server::entities::device::Column::CreatedAt,
                Expr::value(long_ago),
            )
            .filter(bangfu_server::entities::device::Column::Id.eq(device.device_id))
            .exec(&w.db)
            .await
            .expect("date the registration back");
        device
    }

    /// Registers a new device key, registered now: the records it signs must claim a
    /// time from now on (its clock may not read earlier than its registration).
    pub async fn register_today(
        http: &reqwest::Client,
        base: &str,
        token: &str,
        helper_id: i64,
    ) -> Device {
        let key = SigningKey::from_bytes(&rand::rng().random::<[u8; 32]>());
        let public_key =
            base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
        let resp = http
            .post(format!("{base}/devices"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "public_key": public_key, "label": "测试设备" }))
            .send()
            .await
            .expect("register device");
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: serde_json::Value = resp.json().await.expect("device json");
        Device {
            key,
            device_id: body["id"].as_i64().expect("device id"),
            helper_id,
            seq: 0,
            prev: ZERO_HASH.to_string(),
        }
    }

    /// Signs the next record of this device's chain, as a helper does right after the
    /// visit: at the visit's time when it lies in the past (a scenario of last quarter's
    /// visits is not "entered late"), else now.
    pub fn sign(
        &mut self,
        household_id: i64,
        record_type: RecordType,
        visit: Option<VisitBody>,
        target: Option<uuid::Uuid>,
        reason: Option<&str>,
    ) -> SignedRecord {
        let now = chrono::Utc::now();
        let at = visit.as_ref().map_or(now, |v| v.at.min(now));
        self.sign_at(household_id, record_type, visit, target, reason, at)
    }

    /// As [`Device::sign`], with the device clock reading `created_at`.
    pub fn sign_at(
        &mut self,
        household_id: i64,
        record_type: RecordType,
        visit: Option<VisitBody>,
        target: Option<uuid::Uuid>,
        reason: Option<&str>,
        created_at: chrono::DateTime<chrono::Utc>,
    ) -> SignedRecord {
        self.seq += 1;
        let record = RecordEnvelope {
            v: bangfu_shared::visit::FORMAT_VERSION,
            id: uuid::Uuid::now_v7(),
            record_type,
            device_id: self.device_id,
            seq: self.seq,
            prev_sha256: self.prev.clone(),
            author_helper_id: self.helper_id,
            household_id,
            created_at: bangfu_shared::visit::truncate_to_seconds(created_at),
            visit,
            target_id: target,
            reason: reason.map(str::to_string),
        };
        let bytes = record.canonical_bytes().expect("canonical");
        self.prev = sha256_hex(&bytes);
        SignedRecord {
            signature: hex::encode(self.key.sign(&bytes).to_bytes()),
            record,
        }
    }

    /// Signs `other`'s content again as this device's next record but under the same id:
    /// a different record claiming an id the server already holds.
    pub fn resign(device: &mut Device, other: SignedRecord) -> SignedRecord {
        let mut r = device.sign(
            other.record.household_id,
            other.record.record_type,
            other.record.visit.clone(),
            other.record.target_id,
            other.record.reason.as_deref(),
        );
        r.record.id = other.record.id;
        if let Some(v) = r.record.visit.as_mut() {
            v.notes = Some("另一条记录".into());
        }
        let bytes = r.record.canonical_bytes().expect("canonical");
        r.signature = hex::encode(device.key.sign(&bytes).to_bytes());
        r
    }

    /// A signed home visit with one photo and a drawn household signature.
    pub fn home_visit(
        &mut self,
        household_id: i64,
        photo: &[u8],
        signature_png: &[u8],
    ) -> SignedRecord {
        self.home_visit_at(household_id, photo, signature_png, chrono::Utc::now())
    }

    /// [`Device::home_visit`] at `at` (signed then, when it lies in the past).
    pub fn home_visit_at(
        &mut self,
        household_id: i64,
        photo: &[u8],
        signature_png: &[u8],
        at: chrono::DateTime<chrono::Utc>,
    ) -> SignedRecord {
        let mut v = VisitBody::new(VisitKind::Home, at);
        v.problems.push("屋顶漏雨".into());
        v.photos.push(PhotoRef {
            sha256: sha256_hex(photo),
            bytes: photo.len() as u64,
            width: 64,
            height: 48,
        });
        v.household_signature = Some(HouseholdSignature::Drawn {
            image_sha256: sha256_hex(signature_png),
        });
        self.sign(household_id, RecordType::Visit, Some(v), None, None)
    }

    /// A signed phone call.
    pub fn phone_call(&mut self, household_id: i64) -> SignedRecord {
        let mut v = VisitBody::new(VisitKind::Phone, chrono::Utc::now());
        v.notes = Some("电话了解近况".into());
        self.sign(household_id, RecordType::Visit, Some(v), None, None)
    }
}

/// A real JPEG of about `kib` KiB (noise compresses badly, so size tracks pixels).
pub fn jpeg(kib: usize, seed: u8) -> Vec<u8> {
    let side = ((kib * 1024) as f64 / 1.1).sqrt() as u32;
    let mut rng_state = u32::from(seed).wrapping_mul(2_654_435_761).max(1);
    let img = image::RgbImage::from_fn(side.max(8), side.max(8), |_, _| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 17;
        rng_state ^= rng_state << 5;
        let [a, b, c, _] = rng_state.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
        .expect("jpeg");
    out
}

/// A small PNG, standing in for a drawn signature.
pub fn png(seed: u8) -> Vec<u8> {
    let img = image::GrayImage::from_fn(40, 20, |x, y| {
        image::Luma([((x * 7 + y * 3) as u8).wrapping_add(seed)])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("png");
    out
}

/// tus: creates an upload for `bytes`, declaring their SHA-256; returns its URL.
pub async fn tus_create(
    http: &reqwest::Client,
    origin: &str,
    token: &str,
    len: usize,
    sha256: &str,
) -> (StatusCode, Option<String>) {
    let meta = format!(
        "sha256 {}",
        base64::engine::general_purpose::STANDARD.encode(sha256)
    );
    let resp = http
        .post(format!("{origin}/api/v1/files"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", len.to_string())
        .header("Upload-Metadata", meta)
        .send()
        .await
        .expect("tus create");
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(|l| format!("{origin}{l}"));
    (resp.status(), location)
}

/// tus creation-with-upload: creates an upload of `len` bytes declaring `sha256` and
/// sends `first` (the file's first bytes) in the same request.
pub async fn tus_create_with(
    http: &reqwest::Client,
    origin: &str,
    token: &str,
    len: usize,
    sha256: &str,
    first: Vec<u8>,
) -> reqwest::Result<reqwest::Response> {
    let meta = format!(
        "sha256 {}",
        base64::engine::general_purpose::STANDARD.encode(sha256)
    );
    http.post(format!("{origin}/api/v1/files"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", len.to_string())
        .header("Upload-Metadata", meta)
        .header("Content-Type", "application/offset+octet-stream")
        .body(first)
        .send()
        .await
}

/// The `Upload-Offset` and `Location` (made absolute with `origin`) of a tus answer.
pub fn tus_answer(resp: &reqwest::Response, origin: &str) -> (Option<u64>, Option<String>) {
    let h = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    (
        h("upload-offset").and_then(|v| v.parse().ok()),
        h("location").map(|l| format!("{origin}{l}")),
    )
}

/// tus: a request of `method` with no body (`HEAD`, `DELETE`) about the upload at `url`.
pub async fn tus_request(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
) -> reqwest::Response {
    http.request(method, url)
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .expect("tus request")
}

/// tus: the server's offset for an upload.
pub async fn tus_offset(http: &reqwest::Client, url: &str, token: &str) -> u64 {
    let resp = tus_request(http, reqwest::Method::HEAD, url, token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Upload-Offset")
}

/// tus: sends `chunk` at `offset`.
pub async fn tus_patch(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    offset: u64,
    chunk: Vec<u8>,
) -> reqwest::Result<reqwest::Response> {
    http.patch(url)
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", offset.to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .body(chunk)
        .send()
        .await
}

/// Sends the rest of `bytes` from the server's offset, as a tus client does after a
/// cut: a 409 (the cut request is still finishing on the server, or the offset moved)
/// is answered by asking the offset again. Returns the final status.
pub async fn tus_resume(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    bytes: &[u8],
) -> StatusCode {
    let mut status = StatusCode::CONFLICT;
    for _ in 0..50 {
        let offset = tus_offset(http, url, token).await;
        let rest = bytes.get(offset as usize..).unwrap_or_default().to_vec();
        status = tus_patch(http, url, token, offset, rest)
            .await
            .expect("patch")
            .status();
        if status != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    status
}

/// Uploads a whole file in one PATCH; returns the final status.
pub async fn upload(http: &reqwest::Client, origin: &str, token: &str, bytes: &[u8]) -> StatusCode {
    let (status, url) = tus_create(http, origin, token, bytes.len(), &sha256_hex(bytes)).await;
    assert_eq!(status, StatusCode::CREATED);
    let url = url.expect("Location");
    let offset = tus_offset(http, &url, token).await;
    if offset == bytes.len() as u64 {
        return StatusCode::NO_CONTENT;
    }
    tus_patch(http, &url, token, offset, bytes[offset as usize..].to_vec())
        .await
        .expect("patch")
        .status()
}

/// A loopback proxy to `target` that forwards at most `cut_after` bytes from the client
/// and then drops both connections — a mobile link dying mid-upload.
pub async fn cutting_proxy(target: std::net::SocketAddr, cut_after: usize) -> std::net::SocketAddr {
    cutting_proxy_paced(target, cut_after, std::time::Duration::ZERO).await
}

/// As [`cutting_proxy`], forwarding the client's bytes 8 KiB at a time, `pace` apart, as
/// a real link carries them over time. At loopback speed a client has pushed the whole
/// allowance before a server that answers early (a tus creation of a file it already
/// holds part of) has replied, and the cut would drop a reply that a real link delivers.
pub async fn cutting_proxy_paced(
    target: std::net::SocketAddr,
    cut_after: usize,
    pace: std::time::Duration,
) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("proxy bind");
    let addr = listener.local_addr().expect("proxy addr");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                continue;
            };
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = async {
                    let mut sent = 0;
                    let mut buf = vec![0u8; 8192];
                    while sent < cut_after {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n.min(cut_after - sent),
                        };
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent += n;
                        if !pace.is_zero() {
                            tokio::time::sleep(pace).await;
                        }
                    }
                };
                let down = tokio::io::copy(&mut sr, &mut cw);
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    addr
}
