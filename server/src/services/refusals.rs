//! Refused records as the town office sees them. A sequence number of a device with no
//! stored record is a `gap`, which alone reads "has not arrived": the office cannot tell
//! a device that never synced from one whose record the server refused (a forged or
//! altered record, a household never paired). A refusal of a record signed by one of the
//! caller's own devices is therefore kept as a `refused` anomaly, shown for as long as
//! no record holds its number, and the gap says how many of its numbers were refused
//! (QA s25a F4).

use std::collections::{HashMap, HashSet};

use bangfu_shared::sync::DeviceAnomaly;
use bangfu_shared::visit::RecordEnvelope;
use sea_orm::Set;

use crate::entities::device_anomaly;

/// The anomaly kind of a refused record.
pub const REFUSED: &str = "refused";

/// Characters of the refusal's reason kept in the anomaly's detail.
const DETAIL_CHARS: usize = 300;

/// The `refused` anomaly of a refused record, when the caller may speak for its device:
/// the device is registered to the caller's account (`own_device`) and the record names
/// the caller's helper as its author. A record naming another account's device says
/// nothing about that device; a sequence number below 1 names no place in a chain.
pub fn anomaly(
    env: &RecordEnvelope,
    code: &str,
    reason: &str,
    own_device: bool,
    helper_id: Option<i64>,
) -> Option<device_anomaly::ActiveModel> {
    if !own_device || Some(env.author_helper_id) != helper_id || env.seq < 1 {
        return None;
    }
    let reason: String = reason.chars().take(DETAIL_CHARS).collect();
    Some(device_anomaly::ActiveModel {
        device_id: Set(env.device_id),
        helper_id: Set(env.author_helper_id),
        kind: Set(REFUSED.to_string()),
        device_seq: Set(env.seq),
        detail: Set(format!(
            "record {} of this device was refused ({code}): {reason}",
            env.seq
        )),
        detected_at: Set(crate::services::now()),
        ..Default::default()
    })
}

/// Devices with a `refused` anomaly among `anomalies`: the stored sequence numbers of
/// these are what [`settle`] needs.
pub fn devices_refused(anomalies: &[DeviceAnomaly]) -> HashSet<i64> {
    anomalies
        .iter()
        .filter(|a| a.kind == REFUSED)
        .map(|a| a.device_id)
        .collect()
}

/// Drops the `refused` anomalies whose number a stored record now holds (`stored`:
/// device and sequence number), keeps the latest of several refusals of one number, and
/// says on each gap how many of its numbers the server refused.
pub fn settle(anomalies: &mut Vec<DeviceAnomaly>, stored: &HashSet<(i64, i64)>) {
    let mut latest: HashMap<(i64, i64), usize> = HashMap::new();
    for (i, a) in anomalies.iter().enumerate() {
        if a.kind == REFUSED && !stored.contains(&(a.device_id, a.seq)) {
            latest.insert((a.device_id, a.seq), i);
        }
    }
    let mut i = 0;
    anomalies.retain(|a| {
        let keep = a.kind != REFUSED || latest.get(&(a.device_id, a.seq)) == Some(&i);
        i += 1;
        keep
    });
    for gap in anomalies.iter_mut().filter(|a| a.kind == "gap") {
        let last = gap.seq_to.unwrap_or(gap.seq);
        let refused = latest
            .keys()
            .filter(|(d, s)| *d == gap.device_id && (gap.seq..=last).contains(s))
            .count();
        match refused {
            0 => {}
            1 if gap.seq == last => gap
                .detail
                .push_str(": the server refused it (see `refused`)"),
            n => gap
                .detail
                .push_str(&format!(": the server refused {n} of them (see `refused`)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        kind: &str,
        device: i64,
        seq: i64,
        seq_to: Option<i64>,
        detail: &str,
    ) -> DeviceAnomaly {
        DeviceAnomaly {
            device_id: device,
            helper_id: 1,
            kind: kind.into(),
            seq,
            seq_to,
            detail: detail.into(),
            detected_at: chrono::Utc::now(),
            household_id: None,
            visit_date: None,
        }
    }

    #[test]
    fn a_refusal_shows_while_its_number_is_missing_once_and_on_its_gap() {
        let mut list = vec![
            entry(REFUSED, 7, 3, None, "first refusal"),
            entry(REFUSED, 7, 3, None, "second refusal"),
            entry(REFUSED, 7, 5, None, "since stored"),
            entry(REFUSED, 8, 9, None, "other device"),
            entry(
                "gap",
                7,
                2,
                Some(4),
                "records 2 to 4 of this device (3) have not arrived",
            ),
            entry(
                "gap",
                8,
                9,
                Some(9),
                "record 9 of this device has not arrived",
            ),
            entry(
                "gap",
                8,
                20,
                Some(20),
                "record 20 of this device has not arrived",
            ),
        ];
        settle(&mut list, &HashSet::from([(7, 5)]));
        let details: Vec<&str> = list.iter().map(|a| a.detail.as_str()).collect();
        assert_eq!(
            details,
            [
                "second refusal",
                "other device",
                "records 2 to 4 of this device (3) have not arrived: the server refused 1 of them (see `refused`)",
                "record 9 of this device has not arrived: the server refused it (see `refused`)",
                "record 20 of this device has not arrived",
            ]
        );
    }
}
