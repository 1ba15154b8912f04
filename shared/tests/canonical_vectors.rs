//! Checks the canonical-bytes test vectors in `tests/vectors/*.json`.
//!
//! Each vector holds a signed record as JSON, the canonical bytes (as UTF-8 text and as
//! hex), their SHA-256 and the Ed25519 signature made with a fixed 32-byte seed. A client
//! in another language reproduces them with a JCS (RFC 8785) library, SHA-256 and
//! Ed25519: see `docs/canonical-form.md`.
//!
//! `BANGFU_WRITE_VECTORS=1 cargo test -p bangfu-shared --test canonical_vectors` rewrites
//! the files from the records below (only when the format deliberately changes).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

use bangfu_shared::VisitKind;
use bangfu_shared::visit::*;
use chrono::{TimeZone, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use uuid::Uuid;

/// The fixed test seed: bytes 0x00, 0x01, … 0x1f.
fn seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    for (i, b) in s.iter_mut().enumerate() {
        *b = i as u8;
    }
    s
}

#[derive(Debug, Serialize, Deserialize)]
struct Vector {
    name: String,
    description: String,
    seed_hex: String,
    public_key_hex: String,
    signed_record: serde_json::Value,
    canonical_utf8: String,
    canonical_hex: String,
    sha256: String,
    signature_hex: String,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vectors")
}

fn h(byte: u8) -> String {
    sha256_hex(&[byte])
}

/// The vector records: one device's chain of five records.
fn records() -> Vec<(&'static str, &'static str, RecordEnvelope)> {
    let t = |d, hh, mm| Utc.with_ymd_and_hms(2026, 3, d, hh, mm, 0).unwrap();
    let id = |n: u128| Uuid::from_u128(0x0195_5a3c_0000_7000_8000_0000_0000_0000 | n);
    let base = |seq: i64, record_type, created_at| RecordEnvelope {
        v: FORMAT_VERSION,
        id: id(seq as u128),
        record_type,
        device_id: 42,
        seq,
        prev_sha256: ZERO_HASH.into(),
        author_helper_id: 1001,
        household_id: 5001,
        created_at,
        visit: None,
        target_id: None,
        reason: None,
    };

    let mut phone = base(1, RecordType::Visit, t(2, 9, 5));
    let mut call = VisitBody::new(VisitKind::Phone, t(2, 9, 0));
    call.policies = vec![PolicyArea::Medical];
    call.problems = vec!["慢性病药费负担重".into()];
    phone.visit = Some(call);

    let mut home = base(2, RecordType::Visit, t(10, 16, 40));
    let mut v = VisitBody::new(VisitKind::Home, t(10, 15, 30));
    v.policies = vec![
        PolicyArea::Education,
        PolicyArea::Medical,
        PolicyArea::SocialSecurity,
    ];
    v.problems = vec!["屋顶漏雨".into(), "孙子上学路远".into()];
    v.help = vec!["协助办理慢病卡".into()];
    v.support = vec!["介绍到镇上合作社务工".into()];
    v.deliveries = vec![
        Delivery {
            item: "大米 25kg".into(),
            value_fen: 15000,
            occasion: None,
        },
        Delivery {
            item: "月饼".into(),
            value_fen: 8850,
            occasion: Some(Occasion::Zhongqiu),
        },
    ];
    v.family_changes = vec![FamilyChange {
        kind: FamilyChangeKind::Birth,
        name: "张小宝".into(),
    }];
    v.notes = Some("户主说：\"药按时吃了\"\n下次带血压计。\tTab 与 \\ 反斜杠".into());
    v.photos = vec![
        PhotoRef {
            sha256: h(1),
            bytes: 183_204,
            width: 1600,
            height: 1200,
        },
        PhotoRef {
            sha256: h(2),
            bytes: 201_777,
            width: 1200,
            height: 1600,
        },
    ];
    v.household_signature = Some(HouseholdSignature::Drawn { image_sha256: h(3) });
    home.visit = Some(v.clone());

    let mut witnessed = base(3, RecordType::Visit, t(20, 11, 0));
    let mut w = VisitBody::new(VisitKind::Home, t(20, 10, 15));
    w.household_signature = Some(HouseholdSignature::Witness {
        name: "李村医".into(),
        role: "村公证人".into(),
        reason: "户主卧床，无法签字".into(),
        image_sha256: None,
    });
    w.deliveries = vec![Delivery {
        item: "降压药".into(),
        value_fen: 3200,
        occasion: None,
    }];
    witnessed.visit = Some(w);

    let mut amendment = base(4, RecordType::Amendment, t(11, 8, 0));
    let mut fixed = v;
    fixed.deliveries[1].value_fen = 9850;
    amendment.visit = Some(fixed);
    amendment.target_id = Some(id(2));
    amendment.reason = Some("月饼金额填错".into());

    let mut void = base(5, RecordType::Void, t(21, 7, 30));
    void.target_id = Some(id(3));
    void.reason = Some("录入到了错误的户".into());

    let mut out = vec![
        (
            "01-phone-call",
            "A phone call: the smallest visit record, first in the device chain.",
            phone,
        ),
        (
            "02-home-visit-drawn",
            "A home visit with photos, deliveries, a family change, escapes in notes and a drawn household signature.",
            home,
        ),
        (
            "03-home-visit-witness",
            "A home visit signed by a village notary because the household cannot sign.",
            witnessed,
        ),
        (
            "04-amendment",
            "An amendment of record 2 carrying the whole corrected visit.",
            amendment,
        ),
        ("05-void", "A void of record 3 with its reason.", void),
    ];
    let mut prev = ZERO_HASH.to_string();
    for (_, _, r) in &mut out {
        r.prev_sha256 = prev;
        prev = r.record_sha256().unwrap();
    }
    out
}

fn make_vector(name: &str, description: &str, record: &RecordEnvelope) -> Vector {
    let key = SigningKey::from_bytes(&seed());
    let bytes = record.canonical_bytes().unwrap();
    Vector {
        name: name.into(),
        description: description.into(),
        seed_hex: hex::encode(seed()),
        public_key_hex: hex::encode(key.verifying_key().to_bytes()),
        signed_record: serde_json::to_value(SignedRecord {
            record: record.clone(),
            signature: hex::encode(key.sign(&bytes).to_bytes()),
        })
        .unwrap(),
        canonical_utf8: String::from_utf8(bytes.clone()).unwrap(),
        canonical_hex: hex::encode(&bytes),
        sha256: sha256_hex(&bytes),
        signature_hex: hex::encode(key.sign(&bytes).to_bytes()),
    }
}

#[test]
fn vectors_match_the_files() {
    let write = std::env::var_os("BANGFU_WRITE_VECTORS").is_some();
    let expected = records();
    for (name, description, record) in &expected {
        let path = dir().join(format!("{name}.json"));
        let fresh = make_vector(name, description, record);
        if write {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&path, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
        }
        let stored: Vector =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            stored.canonical_utf8, fresh.canonical_utf8,
            "{name}: canonical bytes changed"
        );
        assert_eq!(stored.canonical_hex, fresh.canonical_hex, "{name}");
        assert_eq!(stored.sha256, fresh.sha256, "{name}");
        assert_eq!(stored.signature_hex, fresh.signature_hex, "{name}");
        assert_eq!(stored.signed_record, fresh.signed_record, "{name}");
    }
}

/// What another client does: parse the record JSON, canonicalise it as plain JSON
/// (not through our Rust types), hash, verify the signature with the public key.
#[test]
fn vectors_reproduce_from_plain_json() {
    let mut files: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 5);
    let mut prev = ZERO_HASH.to_string();
    for path in files {
        let v: Vector = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut bytes = CANONICAL_PREFIX.to_vec();
        bytes.extend(
            canonical_json(&v.signed_record["record"])
                .unwrap()
                .into_bytes(),
        );
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            v.canonical_utf8,
            "{}",
            v.name
        );
        assert_eq!(hex::encode(&bytes), v.canonical_hex);
        assert_eq!(sha256_hex(&bytes), v.sha256);

        let key = ed25519_dalek::VerifyingKey::from_bytes(
            &hex::decode(&v.public_key_hex).unwrap().try_into().unwrap(),
        )
        .unwrap();
        let sig =
            Signature::from_bytes(&hex::decode(&v.signature_hex).unwrap().try_into().unwrap());
        key.verify(&bytes, &sig).unwrap();
        assert_eq!(v.signed_record["signature"], v.signature_hex.as_str());

        // Typed parsing gives the same bytes and a valid, correctly chained record.
        let typed: SignedRecord = serde_json::from_value(v.signed_record.clone()).unwrap();
        typed.record.validate().unwrap();
        assert_eq!(typed.record.canonical_bytes().unwrap(), bytes);
        assert_eq!(typed.record.prev_sha256, prev, "{}: chain", v.name);
        prev = v.sha256.clone();
    }
}

#[test]
fn a_changed_byte_breaks_the_signature() {
    let (_, _, record) = &records()[1];
    let key = SigningKey::from_bytes(&seed());
    let sig = key.sign(&record.canonical_bytes().unwrap());
    let mut tampered = record.clone();
    if let Some(v) = tampered.visit.as_mut() {
        v.deliveries[0].value_fen += 1;
    }
    assert!(
        key.verifying_key()
            .verify(&tampered.canonical_bytes().unwrap(), &sig)
            .is_err()
    );
}
