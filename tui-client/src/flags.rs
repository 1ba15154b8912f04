//! The server's per-record flags (`docs/sync-protocol.md`, "Flags"), as the helper must
//! see them.
//!
//! A push acknowledgement and a pulled record carry `flags`: anomalies the server
//! recorded and shows the town office. They never make the server drop a record, so a
//! record can be "synced" and still not count for attendance; only the flags say so.
//! The client stores the codes as received (`records.sync_flags`) and reads them here.
//! A code this version does not know (a newer server) is kept and shown as it is,
//! never dropped: the helper and the office must see the same thing.

use serde::Serialize;

/// The codes of the flags that keep a visit out of the attendance count
/// ([`Flag::stops_counting`]); the store's queries filter on them.
pub const STOPS_COUNTING: [&str; 6] = [
    "clock_ahead",
    "clock_behind",
    "dated_after_signing",
    "photo_reused",
    "missing_evidence",
    "outside_pairing",
];

/// One flag the server set on a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub enum Flag {
    /// The device's clock was ahead of the server's when the record was signed: the
    /// visit does not count until it is amended with a correct clock.
    ClockAhead,
    /// The record claims to be signed before its device was registered: the clock was
    /// set back, so when the visit happened is unknown; it does not count until amended
    /// with a correct clock.
    ClockBehind,
    /// The visit's time is after the record was signed (a mistyped time or a clock
    /// behind): it does not count until the time is amended.
    DatedAfterSigning,
    /// Signed more than the county's late-entry limit (default 7 days) after the visit:
    /// it counts, but the town office sees it was entered late.
    EnteredLate,
    /// This device's record chain does not link up on the server: the office sees it.
    ChainBreak,
    /// Another record of this device already had this sequence number: the office sees it.
    SeqReused,
    /// Signed, by the device's clock, before the device's record before it: the clock
    /// went back between them. It counts; the office sees it.
    ClockWentBack,
    /// A photo of the visit was used first by another visit (by arrival at the server):
    /// the visit does not count (照片已用于其他走访). The server's judgement of the moment:
    /// it goes when that other visit is voided, and the next pull says so.
    PhotoReused,
    /// Set by the device, not the server: a home visit with fewer photos (or without the
    /// household's signature) than the county's policy asks. The server does not count
    /// it (缺少照片) and says so only in its reports, so the device says so at once.
    MissingEvidence,
    /// Set by the device, not the server: the visit is dated on a day its author was
    /// not paired with the household, by the pairings the device last downloaded (a
    /// visit signed offline after the pairing ended). The server does not count it
    /// (走访时未与该户结对) and says so only in its reports, so the device says so too.
    OutsidePairing,
    /// A flag this version does not know, by its code.
    Other(String),
}

impl Flag {
    /// Reads a stored or received code.
    pub fn parse(code: &str) -> Flag {
        match code {
            "clock_ahead" => Flag::ClockAhead,
            "clock_behind" => Flag::ClockBehind,
            "dated_after_signing" => Flag::DatedAfterSigning,
            "entered_late" => Flag::EnteredLate,
            "chain_break" => Flag::ChainBreak,
            "seq_reused" => Flag::SeqReused,
            "clock_went_back" => Flag::ClockWentBack,
            "photo_reused" => Flag::PhotoReused,
            "missing_evidence" => Flag::MissingEvidence,
            "outside_pairing" => Flag::OutsidePairing,
            other => Flag::Other(other.to_string()),
        }
    }

    /// The server's code.
    pub fn code(&self) -> &str {
        match self {
            Flag::ClockAhead => "clock_ahead",
            Flag::ClockBehind => "clock_behind",
            Flag::DatedAfterSigning => "dated_after_signing",
            Flag::EnteredLate => "entered_late",
            Flag::ChainBreak => "chain_break",
            Flag::SeqReused => "seq_reused",
            Flag::ClockWentBack => "clock_went_back",
            Flag::PhotoReused => "photo_reused",
            Flag::MissingEvidence => "missing_evidence",
            Flag::OutsidePairing => "outside_pairing",
            Flag::Other(code) => code,
        }
    }

    /// Whether the flag keeps the visit out of the attendance count (the helper has to
    /// amend it). An unknown flag is not assumed to: it is shown, not interpreted.
    pub fn stops_counting(&self) -> bool {
        STOPS_COUNTING.contains(&self.code())
    }

    /// Whether an amendment (a newer version of the visit) settles the flag, so it no
    /// longer concerns the visit once an amendment carries the current content. The
    /// server judges a visit by its newest version; the others stay on the record.
    pub fn settled_by_amendment(&self) -> bool {
        self.stops_counting()
    }
}

impl From<Flag> for String {
    fn from(f: Flag) -> String {
        f.code().to_string()
    }
}

/// The flags that concern a visit: all of its current version's, and of its other
/// records (the original under an amendment, earlier amendments, a void) those an
/// amendment does not settle. In order, without repeats.
pub fn visit_flags<'a>(
    current: impl IntoIterator<Item = &'a str>,
    others: impl IntoIterator<Item = &'a str>,
) -> Vec<Flag> {
    let mut out: Vec<Flag> = Vec::new();
    let others = others
        .into_iter()
        .map(Flag::parse)
        .filter(|f| !f.settled_by_amendment());
    for f in current.into_iter().map(Flag::parse).chain(others) {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_kept() {
        for code in [
            "clock_ahead",
            "clock_behind",
            "dated_after_signing",
            "entered_late",
            "chain_break",
            "seq_reused",
            "clock_went_back",
            "photo_reused",
            "missing_evidence",
            "outside_pairing",
            "photo_from_the_future",
        ] {
            assert_eq!(Flag::parse(code).code(), code);
        }
        assert_eq!(
            Flag::parse("photo_from_the_future"),
            Flag::Other("photo_from_the_future".into())
        );
        assert_eq!(
            serde_json::to_value(Flag::DatedAfterSigning).unwrap(),
            serde_json::json!("dated_after_signing")
        );
    }

    /// An amendment that corrected the time leaves the original's "does not count"
    /// behind, but the office still sees the late entry and the chain problem.
    #[test]
    fn an_amendment_settles_what_stops_counting_only() {
        let flags = visit_flags(
            [],
            [
                "dated_after_signing",
                "entered_late",
                "chain_break",
                "entered_late",
            ],
        );
        assert_eq!(flags, vec![Flag::EnteredLate, Flag::ChainBreak]);
        let flags = visit_flags(["clock_ahead", "new_flag"], ["clock_ahead"]);
        assert_eq!(
            flags,
            vec![Flag::ClockAhead, Flag::Other("new_flag".into())]
        );
        assert!(flags[0].stops_counting() && !flags[1].stops_counting());
    }
}
