//! Every refusal of a pushed record carries a stable `reason_code` beside its English
//! `reason`, so a client can say it in the helper's language: one record per check of
//! the protocol (docs/sync-protocol.md, section 3), and the conflict.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use bangfu_server::db_test;
use bangfu_shared::sync::{Ack, AckStatus, PushResponse, reason_code};
use bangfu_shared::visit::{RecordType, SignedRecord};
use bangfu_tests::TestDb;
use bangfu_tests::field::Device;
use bangfu_tests::scenario::Field;

/// The second helper signed in with their own device, and their households.
async fn second_helper(t: &TestDb, f: &Field) -> (String, Device, Vec<i64>) {
    let (token, device) = f.second_helper(t).await;
    let (_, mine) = f.w.get(Some(&token), "/households").await;
    let households = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_i64().unwrap())
        .collect();
    (token, device, households)
}

async fn push_as(f: &Field, token: &str, records: &[SignedRecord]) -> Vec<Ack> {
    let (status, body) =
        f.w.post_json(
            Some(token),
            "/sync/push",
            &serde_json::json!({ "records": records }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    // On the wire as documented: `reason_code` beside `reason`.
    for ack in body["acks"].as_array().unwrap() {
        if ack["status"] == "rejected" || ack["status"] == "conflict" {
            assert!(ack["reason_code"].is_string(), "{ack}");
            assert!(ack["reason"].is_string(), "{ack}");
        } else {
            assert!(ack.get("reason_code").is_none(), "{ack}");
        }
    }
    serde_json::from_value::<PushResponse>(body).unwrap().acks
}

/// Asserts each ack is refused (`status`) with `code`, and that its English reason
/// (read by other clients) is still there and contains `words`.
fn assert_refused(acks: &[Ack], expected: &[(AckStatus, &str, &str)]) {
    assert_eq!(acks.len(), expected.len(), "{acks:?}");
    for (ack, (status, code, words)) in acks.iter().zip(expected) {
        assert_eq!(ack.status, *status, "{ack:?}");
        assert_eq!(ack.reason_code.as_deref(), Some(*code), "{ack:?}");
        let reason = ack.reason.as_deref().unwrap_or_default();
        assert!(reason.contains(words), "{code}: {reason}");
    }
}

db_test!(every_refusal_carries_its_reason_code, reason_codes);
async fn reason_codes(t: &TestDb) {
    let mut f = Field::two_towns(t, |_| {}).await;
    let h = f.household;

    // The three the helper meets most: a record altered after signing, one for a
    // household never paired with the helper, and a void of another helper's visit.
    let mut forged = f.device.phone_call(h);
    if let Some(v) = forged.record.visit.as_mut() {
        v.notes = Some("签名后改过的内容".into());
    }
    let unpaired = f.device.phone_call(f.other_town().household);
    let acks = f.push(&[forged, unpaired]).await.acks;
    assert_refused(
        &acks,
        &[
            (
                AckStatus::Rejected,
                reason_code::SIGNATURE_MISMATCH,
                "signature does not match",
            ),
            (
                AckStatus::Rejected,
                reason_code::HOUSEHOLD_NEVER_PAIRED,
                "never been paired",
            ),
        ],
    );

    let call = f.device.phone_call(h);
    let ok = f.push(std::slice::from_ref(&call)).await.acks;
    assert_eq!(ok[0].status, AckStatus::Accepted, "{ok:?}");
    assert_eq!(
        (ok[0].reason.as_deref(), ok[0].reason_code.as_deref()),
        (None, None)
    );

    let (second, mut s, theirs) = second_helper(t, &f).await;
    let void = s.sign(
        h,
        RecordType::Void,
        None,
        Some(call.record.id),
        Some("误录"),
    );
    let acks = push_as(&f, &second, &[void]).await;
    assert_refused(
        &acks,
        &[(
            AckStatus::Rejected,
            reason_code::TARGET_OTHER_HELPER,
            "another helper",
        )],
    );

    // The other checks, in the protocol's order.
    let mut invalid = f.device.phone_call(h);
    invalid.record.v = 999;
    let mut stranger = Device {
        device_id: 999_999,
        ..Device::register(&f.w, &f.token, f.device.helper_id).await
    };
    let unregistered = stranger.phone_call(h);
    // Signed by the helper's own device, in the second helper's name.
    let mut impostor = Device {
        helper_id: s.helper_id,
        key: f.device.key.clone(),
        device_id: f.device.device_id,
        seq: f.device.seq,
        prev: f.device.prev.clone(),
    };
    let not_theirs = impostor.phone_call(h);
    let mut garbled = f.device.phone_call(h);
    garbled.signature = "不是十六进制".into();
    let acks = f
        .push(&[invalid, unregistered, not_theirs, garbled])
        .await
        .acks;
    assert_refused(
        &acks,
        &[
            (
                AckStatus::Rejected,
                reason_code::INVALID_RECORD,
                "invalid record",
            ),
            (
                AckStatus::Rejected,
                reason_code::DEVICE_NOT_REGISTERED,
                "not registered",
            ),
            (
                AckStatus::Rejected,
                reason_code::AUTHOR_NOT_HELPER,
                "author",
            ),
            (
                AckStatus::Rejected,
                reason_code::BAD_SIGNATURE_ENCODING,
                "hex",
            ),
        ],
    );

    // An amendment of an amendment; a void naming a visit of another household; a
    // different record under a known id.
    let mut fixed = call.record.visit.clone().unwrap();
    fixed.notes = Some("更正".into());
    let amend = f.device.sign(
        h,
        RecordType::Amendment,
        Some(fixed.clone()),
        Some(call.record.id),
        None,
    );
    let chained = f.device.sign(
        h,
        RecordType::Amendment,
        Some(fixed),
        Some(amend.record.id),
        None,
    );
    let acks = f.push(&[amend, chained]).await.acks;
    assert_eq!(acks[0].status, AckStatus::Accepted, "{acks:?}");
    assert_refused(
        &acks[1..],
        &[(
            AckStatus::Rejected,
            reason_code::TARGET_NOT_A_VISIT,
            "not a visit",
        )],
    );

    let other = *theirs
        .iter()
        .find(|&&o| o != h)
        .expect("a second household");
    let own = s.phone_call(h);
    let moved = s.sign(
        other,
        RecordType::Void,
        None,
        Some(own.record.id),
        Some("误录"),
    );
    let acks = push_as(&f, &second, &[own, moved]).await;
    assert_eq!(acks[0].status, AckStatus::Accepted, "{acks:?}");
    assert_refused(
        &acks[1..],
        &[(
            AckStatus::Rejected,
            reason_code::TARGET_OTHER_HOUSEHOLD,
            "household",
        )],
    );

    let resigned = Device::resign(&mut f.device, call);
    let acks = f.push(&[resigned]).await.acks;
    assert_refused(
        &acks,
        &[(
            AckStatus::Conflict,
            reason_code::CONFLICT,
            "different record",
        )],
    );
}
