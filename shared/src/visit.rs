//! Visit records (帮扶实录), their signed envelope and the canonical signing bytes.
//!
//! This module is the ONE definition of what a helper's device signs. A record is made
//! on a device, possibly weeks before it reaches the server, so the server and every
//! client (in any language) must turn the same record into the same bytes. The form is
//! written up in `docs/canonical-form.md`; in short:
//!
//! ```text
//! canonical_bytes = b"bangfu-visit-v1\n" || JCS(record)
//! record_sha256   = lowercase_hex(SHA-256(canonical_bytes))
//! signature       = Ed25519(device_key, canonical_bytes)      (64 bytes, lowercase hex)
//! ```
//!
//! `JCS` is the JSON Canonicalization Scheme (RFC 8785) over a value domain that keeps
//! it trivial: objects with ASCII snake_case keys sorted, no whitespace, strings as UTF-8
//! with only `"` `\` and control characters escaped, and integers only (|n| ≤ 2^53−1):
//! money is in fen, times are RFC 3339 UTC strings with whole seconds and a `Z`, hashes
//! are lowercase hex, ids are lowercase hyphenated UUIDs. Absent optional fields are
//! omitted, empty lists are written as `[]`.
//!
//! Records are immutable and chained per device: each carries its device's sequence
//! number and the SHA-256 of that device's previous record (all zeros for the first), so
//! a server receiving them (issue 4) can detect gaps, reordering and rewritten history.
//! A correction is an `amendment` record that points at the original and carries the
//! whole corrected visit; a mistake is withdrawn by a `void` record with a reason.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::VisitKind;

/// Domain-separation prefix of the canonical bytes: a signature over a visit record can
/// never be replayed as a signature over anything else the device signs.
pub const CANONICAL_PREFIX: &[u8] = b"bangfu-visit-v1\n";

/// The version of the record format, carried in every record as `v`.
pub const FORMAT_VERSION: u32 = 1;

/// `prev_sha256` of a device's first record.
pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The largest integer the canonical form carries (2^53 − 1), so that every JSON
/// implementation, including ones that read numbers as doubles, reads it exactly.
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// Why a record or a piece of user input is not a valid visit record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VisitError {
    /// A structural rule of the record format is broken (for example a void without a target).
    #[error("invalid record: {0}")]
    Invalid(String),
    /// The canonical form cannot carry this value (a float, a too-large integer).
    #[error("not canonical: {0}")]
    NotCanonical(String),
    /// A home visit lacks the household's signature (or a witness) and so stays a draft.
    #[error("a home visit needs the household's signature or a witness before it can be signed")]
    MissingHouseholdSignature,
    /// A money amount typed by a person does not parse as yuan.
    #[error("`{0}` is not an amount in yuan (e.g. 50 or 12.50)")]
    BadAmount(String),
    /// A code typed by a person (occasion, family change, policy) is unknown.
    #[error("unknown {kind} `{value}` (known: {known})")]
    UnknownCode {
        kind: &'static str,
        value: String,
        known: String,
    },
    /// A free text of the record is too long or holds a control character.
    #[error("invalid record: {0}")]
    Text(#[from] TextError),
    /// A signed time lies outside [`TIME_YEARS`] in China's calendar. `china` is the time
    /// as the helper reads it (China time), not in UTC: `2100-12-31T16:00:00Z is
    /// outside 2000–2100` read as a contradiction (QA s28a F10).
    #[error("invalid record: {what} {china} (China time) is outside the years {first}–{last}")]
    OutOfYears {
        what: &'static str,
        china: String,
        first: i32,
        last: i32,
    },
}

/// Why a free text is refused ([`check_text`]), naming its field (`what`): kept apart so
/// a client can say it in the helper's language.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("an entry of {what} has {count} characters, over the limit of {max}")]
    TooLong {
        what: String,
        count: usize,
        max: usize,
    },
    #[error("an entry of {what} holds the control character U+{code:04X}")]
    ControlCharacter { what: String, code: u32 },
}

macro_rules! labelled_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal, { $($(#[$vmeta:meta])* $variant:ident = $code:literal / $zh:literal / $en:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in the order forms show them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable code used on the wire and on the command line.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            /// The Chinese label shown to helpers.
            pub fn label_zh(self) -> &'static str {
                match self { $($name::$variant => $zh),+ }
            }

            /// The English label (`--lang en`).
            pub fn label_en(self) -> &'static str {
                match self { $($name::$variant => $en),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = VisitError;
            /// Accepts the code, the Chinese label or the English label.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let t = s.trim();
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.code() == t || v.label_zh() == t || v.label_en().eq_ignore_ascii_case(t))
                    .ok_or_else(|| VisitError::UnknownCode {
                        kind: $kind,
                        value: s.to_string(),
                        // Both names, so a helper typing Chinese reads what to type.
                        known: $name::ALL
                            .iter()
                            .map(|v| format!("{} {}", v.label_zh(), v.code()))
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            }
        }
    };
}

labelled_enum!(
    /// What a record is: a visit, a correction of one, or its withdrawal.
    RecordType, "record type", {
        Visit = "visit" / "走访" / "visit",
        Amendment = "amendment" / "更正" / "amendment",
        Void = "void" / "作废" / "void",
    }
);

labelled_enum!(
    /// Policies explained during a visit (seed 001 §二(一)1).
    PolicyArea, "policy", {
        Education = "education" / "教育" / "education",
        Medical = "medical" / "医疗" / "medical",
        Housing = "housing" / "住房" / "housing",
        Finance = "finance" / "金融" / "finance",
        SocialSecurity = "social_security" / "社保" / "social security",
    }
);

labelled_enum!(
    /// Festivals on which condolence gifts are delivered (seed 001 §二(一)3).
    Occasion, "occasion", {
        Duanwu = "duanwu" / "端午" / "Dragon Boat",
        Zhongqiu = "zhongqiu" / "中秋" / "Mid-Autumn",
        Chongyang = "chongyang" / "重阳" / "Double Ninth",
        Yuandan = "yuandan" / "元旦" / "New Year",
        Chunjie = "chunjie" / "春节" / "Spring Festival",
    }
);

labelled_enum!(
    /// Family changes a helper records (seed 004 第三十七条).
    FamilyChangeKind, "family change", {
        Birth = "birth" / "出生" / "birth",
        MoveIn = "move_in" / "迁入" / "move-in",
        MarriageIn = "marriage_in" / "婚入" / "marriage-in",
        Death = "death" / "死亡" / "death",
        MoveOut = "move_out" / "迁出" / "move-out",
        MarriageOut = "marriage_out" / "婚出" / "marriage-out",
    }
);

/// Something delivered (送): goods, medicine or a festival gift, with its value in fen
/// so sums are exact and the canonical form carries no decimals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    pub item: String,
    pub value_fen: i64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::some"
    )]
    pub occasion: Option<Occasion>,
}

/// A change in the household's members seen during the visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyChange {
    pub kind: FamilyChangeKind,
    pub name: String,
}

/// A photo attached to a visit, named by the SHA-256 of the stored (downscaled JPEG)
/// file, so the signature covers the exact image the server will receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotoRef {
    pub sha256: String,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
}

/// How the household signed (双签字, seed 001 §四(三)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum HouseholdSignature {
    /// Drawn on the device's signature pad; the hash is of the rendered PNG.
    Drawn { image_sha256: String },
    /// A photo of the paper card (精准帮扶责任卡) signed by the household.
    PaperCard { image_sha256: String },
    /// The household cannot sign: a witness or the village notary signs instead.
    Witness {
        name: String,
        role: String,
        reason: String,
        /// The witness's drawn signature, when there is one.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "strict::some"
        )]
        image_sha256: Option<String>,
    },
}

impl HouseholdSignature {
    /// The hash of the signature image this signature rests on, if any.
    pub fn image_sha256(&self) -> Option<&str> {
        match self {
            HouseholdSignature::Drawn { image_sha256 }
            | HouseholdSignature::PaperCard { image_sha256 } => Some(image_sha256),
            HouseholdSignature::Witness { image_sha256, .. } => image_sha256.as_deref(),
        }
    }

    /// Whether the household's side of 双签字 is a mark someone made: a drawn signature,
    /// the signed paper card, or the witness's own drawn mark. A witness named without a
    /// mark (accepted from records signed before clients required it) is a name the
    /// helper typed, no signature of anyone, so it never meets a policy that asks for
    /// both signatures (QA s26a F4).
    pub fn is_marked(&self) -> bool {
        self.image_sha256().is_some()
    }
}

/// What happened on one visit or call: the content of the 帮扶实录.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitBody {
    pub kind: VisitKind,
    #[serde(with = "utc_seconds")]
    pub at: DateTime<Utc>,
    /// Policies explained.
    pub policies: Vec<PolicyArea>,
    /// Problems found (including 两不愁三保障 gaps).
    pub problems: Vec<String>,
    /// 帮: help with policies and daily difficulties.
    pub help: Vec<String>,
    /// 扶: motivation, skills, income paths.
    pub support: Vec<String>,
    /// 送: goods, medicine, festival gifts.
    pub deliveries: Vec<Delivery>,
    pub family_changes: Vec<FamilyChange>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::some"
    )]
    pub notes: Option<String>,
    pub photos: Vec<PhotoRef>,
    /// Required for home visits; a phone call has none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::some"
    )]
    pub household_signature: Option<HouseholdSignature>,
}

impl VisitBody {
    /// Whether the household's signature meets 双签字 ([`HouseholdSignature::is_marked`]):
    /// what the server's attendance and the field client's own count both judge by.
    pub fn household_signed(&self) -> bool {
        self.household_signature
            .as_ref()
            .is_some_and(HouseholdSignature::is_marked)
    }

    /// An empty visit of `kind` at `at` (whole seconds), for forms to fill.
    pub fn new(kind: VisitKind, at: DateTime<Utc>) -> Self {
        VisitBody {
            kind,
            at: truncate_to_seconds(at),
            policies: Vec::new(),
            problems: Vec::new(),
            help: Vec::new(),
            support: Vec::new(),
            deliveries: Vec::new(),
            family_changes: Vec::new(),
            notes: None,
            photos: Vec::new(),
            household_signature: None,
        }
    }

    /// Whether the helper may sign this visit now: a home visit needs the household's
    /// signature (or a witness) first (双签字); a phone call needs nothing more.
    pub fn ready_to_sign(&self) -> Result<(), VisitError> {
        if self.kind == VisitKind::Home && self.household_signature.is_none() {
            return Err(VisitError::MissingHouseholdSignature);
        }
        self.validate()?;
        // One picture listed twice would pass for two photos of the visit. Checked when
        // signing, not in `validate`: records signed before the rule stay readable.
        let mut seen = std::collections::HashSet::new();
        if !self.photos.iter().all(|p| seen.insert(p.sha256.as_str())) {
            return Err(VisitError::Invalid(
                "the same photo appears twice in a visit".into(),
            ));
        }
        Ok(())
    }

    /// Holds every text of the record to [`MAX_ITEM_CHARS`] (a remark to
    /// [`MAX_NOTES_CHARS`]) and refuses control characters other than line breaks and
    /// tabs: a record is printed on sheets and shown on small screens, and a NUL or an
    /// escape sequence there is damage, not content.
    fn check_texts(&self) -> Result<(), VisitError> {
        let lists = [
            ("problems", &self.problems),
            ("help", &self.help),
            ("support", &self.support),
        ];
        for (what, items) in lists {
            for item in items {
                check_text(item, what, MAX_ITEM_CHARS)?;
            }
        }
        for d in &self.deliveries {
            check_text(&d.item, "deliveries", MAX_ITEM_CHARS)?;
        }
        for c in &self.family_changes {
            check_text(&c.name, "family_changes", MAX_ITEM_CHARS)?;
        }
        if let Some(notes) = &self.notes {
            check_text(notes, "notes", MAX_NOTES_CHARS)?;
        }
        if let Some(HouseholdSignature::Witness {
            name, role, reason, ..
        }) = &self.household_signature
        {
            for text in [name, role, reason] {
                check_text(text, "witness", MAX_ITEM_CHARS)?;
            }
        }
        Ok(())
    }

    /// Holds each list of the record to [`MAX_LIST_ENTRIES`] and its photos to
    /// [`MAX_VISIT_PHOTOS`]: a record is one visit's card, and a list of a hundred
    /// thousand entries is not one; unbounded, every check and every report that reads
    /// the record would cost as much as its sender chose (QA s23c F6, F7).
    fn check_counts(&self) -> Result<(), VisitError> {
        let counts = [
            ("policies", self.policies.len(), MAX_LIST_ENTRIES),
            ("problems", self.problems.len(), MAX_LIST_ENTRIES),
            ("help", self.help.len(), MAX_LIST_ENTRIES),
            ("support", self.support.len(), MAX_LIST_ENTRIES),
            ("deliveries", self.deliveries.len(), MAX_LIST_ENTRIES),
            (
                "family_changes",
                self.family_changes.len(),
                MAX_LIST_ENTRIES,
            ),
            ("photos", self.photos.len(), MAX_VISIT_PHOTOS),
        ];
        match counts.into_iter().find(|(_, n, max)| n > max) {
            Some((what, n, max)) => Err(VisitError::Invalid(format!(
                "{what}: at most {max} entries in a visit, got {n}"
            ))),
            None => Ok(()),
        }
    }

    /// Checks the rules every stored visit satisfies, signed or not.
    pub fn validate(&self) -> Result<(), VisitError> {
        let invalid = |m: &str| Err(VisitError::Invalid(m.to_string()));
        check_time(&self.at, "the visit time")?;
        self.check_counts()?;
        self.check_texts()?;
        // Each policy area once: the record is a list of what was explained, and a
        // county counting areas explained must not count one twice.
        if let Some((i, p)) = self
            .policies
            .iter()
            .enumerate()
            .find(|(i, p)| self.policies[..*i].contains(p))
        {
            return Err(VisitError::Invalid(format!(
                "policies[{i}]: {} is listed twice",
                p.code()
            )));
        }
        for d in &self.deliveries {
            if d.item.trim().is_empty() {
                return invalid("a delivery needs an item");
            }
            if !(0..=MAX_SAFE_INTEGER).contains(&d.value_fen) {
                return invalid("a delivery's value must be between 0 and 2^53-1 fen");
            }
        }
        for c in &self.family_changes {
            if c.name.trim().is_empty() {
                return invalid("a family change needs the person's name");
            }
        }
        for p in &self.photos {
            check_hash(&p.sha256, "photo sha256")?;
        }
        match &self.household_signature {
            Some(HouseholdSignature::Witness {
                name,
                role,
                reason,
                image_sha256,
            }) => {
                if name.trim().is_empty() || role.trim().is_empty() || reason.trim().is_empty() {
                    return invalid(
                        "a witness needs a name, a role and the reason the household cannot sign",
                    );
                }
                if let Some(h) = image_sha256 {
                    check_hash(h, "witness image_sha256")?;
                }
            }
            Some(
                HouseholdSignature::Drawn { image_sha256 }
                | HouseholdSignature::PaperCard { image_sha256 },
            ) => {
                check_hash(image_sha256, "household signature image_sha256")?;
            }
            None => {}
        }
        if self.kind == VisitKind::Phone && self.household_signature.is_some() {
            return invalid("a phone call carries no household signature");
        }
        Ok(())
    }

    /// Every file hash the visit refers to: photos, then the household signature image.
    pub fn referenced_hashes(&self) -> Vec<String> {
        let signature = self
            .household_signature
            .as_ref()
            .and_then(|s| s.image_sha256());
        let mut seen = std::collections::HashSet::new();
        // Each file once, though named twice (a photo also given as the signature
        // image): the server lists what it lacks, and links a record to a file, once.
        self.photos
            .iter()
            .map(|p| p.sha256.as_str())
            .chain(signature)
            .filter(|h| seen.insert(*h))
            .map(str::to_string)
            .collect()
    }

    /// Sum of all deliveries, in fen.
    pub fn delivered_fen(&self) -> i64 {
        self.deliveries.iter().map(|d| d.value_fen).sum()
    }
}

/// The signed unit: everything sync (issue 4) needs to accept a record from a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordEnvelope {
    /// Format version, [`FORMAT_VERSION`].
    pub v: u32,
    /// UUIDv7 made on the device: unique without a server, sortable by creation.
    #[serde(deserialize_with = "strict::uuid")]
    pub id: Uuid,
    pub record_type: RecordType,
    /// The server's id of the registered device key that signs this record.
    pub device_id: i64,
    /// 1, 2, 3… per device, no gaps.
    pub seq: i64,
    /// `record_sha256` of this device's previous record; [`ZERO_HASH`] for the first.
    pub prev_sha256: String,
    /// The helper who made the visit.
    pub author_helper_id: i64,
    pub household_id: i64,
    /// When the record was signed (device clock).
    #[serde(with = "utc_seconds")]
    pub created_at: DateTime<Utc>,
    /// The visit: present for `visit` and `amendment` (the whole corrected visit).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::some"
    )]
    pub visit: Option<VisitBody>,
    /// The original `visit` record an `amendment` or `void` refers to.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::some_uuid"
    )]
    pub target_id: Option<Uuid>,
    /// Why: required for `void`, optional for `amendment`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::some"
    )]
    pub reason: Option<String>,
}

impl RecordEnvelope {
    /// Checks the structural rules of the format. A home visit (or its amendment) must
    /// carry the household's signature: an unsigned one is a draft, never a record.
    pub fn validate(&self) -> Result<(), VisitError> {
        let invalid = |m: &str| Err(VisitError::Invalid(m.to_string()));
        if self.v != FORMAT_VERSION {
            return invalid("unsupported format version");
        }
        if self.id.is_nil() {
            return invalid("the record id is nil");
        }
        // A UUIDv7 (the format's id): unique without a server and sortable by creation.
        if self.id.get_version_num() != 7 {
            return Err(VisitError::Invalid(format!(
                "id: a UUIDv7 is expected, this one is version {}",
                self.id.get_version_num()
            )));
        }
        if self.seq < 1 || self.seq > MAX_SAFE_INTEGER {
            return invalid("seq must be between 1 and 2^53-1");
        }
        for (n, name) in [
            (self.device_id, "device_id"),
            (self.author_helper_id, "author_helper_id"),
            (self.household_id, "household_id"),
        ] {
            if !(0..=MAX_SAFE_INTEGER).contains(&n) {
                return Err(VisitError::Invalid(format!("{name} out of range")));
            }
        }
        check_hash(&self.prev_sha256, "prev_sha256")?;
        check_time(&self.created_at, "created_at")?;
        if self.seq == 1 && self.prev_sha256 != ZERO_HASH {
            return invalid("the first record of a device chains to the zero hash");
        }
        if let Some(reason) = &self.reason {
            check_text(reason, "reason", MAX_ITEM_CHARS)?;
        }
        let has_reason = self.reason.as_deref().is_some_and(|r| !r.trim().is_empty());
        match self.record_type {
            RecordType::Visit => {
                if self.visit.is_none() || self.target_id.is_some() {
                    return invalid("a visit record carries a visit and no target");
                }
            }
            RecordType::Amendment => {
                if self.visit.is_none() || self.target_id.is_none() {
                    return invalid(
                        "an amendment carries the corrected visit and the original's id",
                    );
                }
            }
            RecordType::Void => {
                if self.visit.is_some() || self.target_id.is_none() || !has_reason {
                    return invalid(
                        "a void record carries the original's id and a reason, and no visit",
                    );
                }
            }
        }
        if self.target_id == Some(self.id) {
            return invalid("a record cannot refer to itself");
        }
        if let Some(visit) = &self.visit {
            visit.ready_to_sign()?;
        }
        Ok(())
    }

    /// The exact bytes the device key signs: [`CANONICAL_PREFIX`] then canonical JSON.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, VisitError> {
        let value =
            serde_json::to_value(self).map_err(|e| VisitError::NotCanonical(e.to_string()))?;
        let mut out = CANONICAL_PREFIX.to_vec();
        out.extend_from_slice(canonical_json(&value)?.as_bytes());
        Ok(out)
    }

    /// Lowercase hex SHA-256 of the canonical bytes: the record's content hash, which the
    /// device's next record chains to.
    pub fn record_sha256(&self) -> Result<String, VisitError> {
        Ok(sha256_hex(&self.canonical_bytes()?))
    }
}

/// A record with the device's Ed25519 signature over its canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRecord {
    pub record: RecordEnvelope,
    /// 64-byte Ed25519 signature, lowercase hex.
    pub signature: String,
}

/// Lowercase hex SHA-256 of `bytes` (photos, signature images, canonical bytes).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Drops the fractional seconds the canonical form does not carry.
pub fn truncate_to_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

fn check_hash(h: &str, what: &str) -> Result<(), VisitError> {
    if h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(VisitError::Invalid(format!(
            "{what} must be 64 lowercase hex digits"
        )))
    }
}

/// Serialises `value` as canonical JSON (RFC 8785 over integers only): keys sorted,
/// no whitespace, minimal string escaping. Floats and integers beyond ±(2^53−1) are
/// refused rather than rounded.
pub fn canonical_json(value: &serde_json::Value) -> Result<String, VisitError> {
    let mut out = String::new();
    write_canonical(value, &mut out)?;
    Ok(out)
}

fn write_canonical(value: &serde_json::Value, out: &mut String) -> Result<(), VisitError> {
    use serde_json::Value;
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let ok = n.as_i64().is_some_and(|i| i.abs() <= MAX_SAFE_INTEGER)
                || n.as_u64().is_some_and(|u| u <= MAX_SAFE_INTEGER as u64);
            if !ok {
                return Err(VisitError::NotCanonical(format!(
                    "number {n} is not an integer within ±(2^53-1)"
                )));
            }
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sort by UTF-16 code units as RFC 8785 says; identical to byte order for the
            // ASCII keys this format uses, and still right for any other key.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out)?;
                }
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parses an amount typed in yuan ("50", "12.5", "12.50", "¥8") into fen, exactly.
pub fn parse_yuan(s: &str) -> Result<i64, VisitError> {
    let bad = || VisitError::BadAmount(s.to_string());
    let t = s
        .trim()
        .trim_start_matches(['¥', '￥'])
        .trim_end_matches('元')
        .trim();
    let (whole, frac) = match t.split_once('.') {
        Some((w, f)) => (w, f),
        None => (t, ""),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().map_err(|_| bad())?
    };
    let fen = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)?;
    if fen > MAX_SAFE_INTEGER {
        return Err(bad());
    }
    Ok(fen)
}

/// Formats fen as yuan with two decimals ("12.50").
pub fn format_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// The longest entry of a visit's lists (a problem, a help given, a delivery's item…),
/// in characters: a paragraph, far beyond what a card's line holds.
pub const MAX_ITEM_CHARS: usize = 1000;

/// The most entries one list of a visit may hold (problems found, help given, family
/// changes…): far more than a card has lines.
pub const MAX_LIST_ENTRIES: usize = 200;

/// The most photos one visit may carry.
pub const MAX_VISIT_PHOTOS: usize = 50;

/// The longest remark (`notes`) of a visit, in characters.
pub const MAX_NOTES_CHARS: usize = 4000;

/// Refuses a text over `max` characters or holding a control character other than a
/// line break or a tab, or a bidirectional override (which makes a text display as
/// another: a name or label that reads differently on screen than it sorts and
/// matches), naming the field. Every free text the server keeps goes through it.
pub fn check_text(text: &str, what: &str, max: usize) -> Result<(), TextError> {
    let count = text.chars().count();
    if count > max {
        return Err(TextError::TooLong {
            what: what.to_string(),
            count,
            max,
        });
    }
    if let Some(c) = text.chars().find(|c| {
        (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }) {
        return Err(TextError::ControlCharacter {
            what: what.to_string(),
            code: u32::from(c),
        });
    }
    Ok(())
}

/// The years a signed time may fall in, the range report quarters use. A device clock
/// set to year 0 or 9999 (RFC 3339 allows both, and an offset can push them past the
/// four-digit years every store and report can read back) is a mistake to refuse with
/// the record, not a time to keep.
pub const TIME_YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// Refuses a time outside [`TIME_YEARS`], naming `what`. The year is China's (UTC+8),
/// the calendar every visit's date and quarter is read in: 2000-01-01 00:30 in Beijing
/// is in range, 2100-12-31 23:30 UTC (2101 in Beijing) is not (QA s26c F5).
fn check_time(t: &DateTime<Utc>, what: &'static str) -> Result<(), VisitError> {
    use chrono::Datelike;
    let china = t.checked_add_signed(chrono::Duration::hours(8));
    if china.is_some_and(|c| TIME_YEARS.contains(&c.year())) {
        return Ok(());
    }
    Err(VisitError::OutOfYears {
        what,
        china: china.map_or_else(
            || utc_seconds::format(t),
            |c| c.format("%Y-%m-%d %H:%M:%S").to_string(),
        ),
        first: *TIME_YEARS.start(),
        last: *TIME_YEARS.end(),
    })
}

/// Times in the canonical form: RFC 3339, UTC, whole seconds, `Z`.
/// Strict readers for the signed types. The canonical form has one spelling of each
/// value (no `null`, ids in lower case with hyphens); a record spelt otherwise would
/// parse into a value whose canonical bytes differ from the bytes signed, and be
/// refused as altered after signing when nothing was. Read strictly, it is refused as
/// malformed, naming the field and the form to write.
mod strict {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};
    use uuid::Uuid;

    /// An optional field that, when present, holds a value: `null` is refused (absent
    /// is the canonical way to say "none").
    pub fn some<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        T::deserialize(d).map(Some)
    }

    /// An id in the canonical form: lower-case hexadecimal with hyphens.
    pub fn uuid<'de, D: Deserializer<'de>>(d: D) -> Result<Uuid, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        let id = Uuid::parse_str(&text).map_err(D::Error::custom)?;
        let canonical = id.hyphenated().to_string();
        if canonical != text {
            return Err(D::Error::custom(format!(
                "{text:?} is not in the canonical id form: write it as {canonical}"
            )));
        }
        Ok(id)
    }

    /// An optional id, present: as [`uuid`].
    pub fn some_uuid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
        uuid(d).map(Some)
    }
}

pub mod utc_seconds {
    use super::*;
    use serde::{Deserializer, Serializer};

    /// Formats as `2026-03-01T08:30:00Z`, dropping any fraction of a second.
    pub fn format(t: &DateTime<Utc>) -> String {
        truncate_to_seconds(*t).to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Serde serializer for `#[serde(with = "utc_seconds")]`.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    /// Accepts only the canonical form, the one [`format`] writes and signatures cover.
    /// Another RFC 3339 spelling of the same instant (an offset, a fraction) would be
    /// read as a different byte string than the one signed, and fail as a forged
    /// signature; refused here, it names the form to write instead.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    /// Parses a time in the canonical form, or says what to write instead.
    pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
        let shown: String = s.chars().take(40).collect();
        let t = DateTime::parse_from_rfc3339(s).map_err(|_| {
            format!(
                "\"{shown}\" is not a time: write a time in RFC 3339 in UTC, whole \
                 seconds, ending in Z (for example 2026-03-01T08:30:00Z)"
            )
        })?;
        let t = t.with_timezone(&Utc);
        let canonical = format(&t);
        if canonical != s {
            return Err(format!(
                "\"{shown}\" is not in the canonical time form: write it as {canonical} \
                 (UTC, whole seconds, ending in Z; signatures cover that form)"
            ));
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 8, 30, 0).unwrap()
    }

    fn envelope(record_type: RecordType) -> RecordEnvelope {
        RecordEnvelope {
            v: 1,
            id: Uuid::parse_str("01950000-0000-7000-8000-000000000001").unwrap(),
            record_type,
            device_id: 7,
            seq: 1,
            prev_sha256: ZERO_HASH.into(),
            author_helper_id: 3,
            household_id: 11,
            created_at: at(),
            visit: Some(VisitBody::new(VisitKind::Phone, at())),
            target_id: None,
            reason: None,
        }
    }

    /// A record spelt other than canonically is refused as malformed, naming the field,
    /// instead of parsing into a value whose bytes no longer match the signature.
    #[test]
    fn only_the_canonical_spelling_parses() {
        let good = serde_json::to_value(envelope(RecordType::Visit)).unwrap();
        assert!(serde_json::from_value::<RecordEnvelope>(good.clone()).is_ok());
        let spelt = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            edit(&mut v);
            serde_json::from_value::<RecordEnvelope>(v)
                .unwrap_err()
                .to_string()
        };
        let upper = spelt(&|v| v["id"] = "01950000-0000-7000-8000-00000000000A".into());
        assert!(upper.contains("canonical id form"), "{upper}");
        let simple = spelt(&|v| v["id"] = "01950000000070008000000000000001".into());
        assert!(
            simple.contains("01950000-0000-7000-8000-000000000001"),
            "{simple}"
        );
        let null = spelt(&|v| v["visit"]["notes"] = serde_json::Value::Null);
        assert!(null.contains("invalid type: null"), "{null}");
        let target = spelt(&|v| v["target_id"] = serde_json::Value::Null);
        assert!(target.contains("invalid type: null"), "{target}");
        let extra = spelt(&|v| v["mood"] = "好".into());
        assert!(extra.contains("unknown field `mood`"), "{extra}");
    }

    /// A file named as a photo and as the signature image is one file to send.
    #[test]
    fn each_referenced_file_is_listed_once() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let mut v = VisitBody::new(VisitKind::Home, at());
        for sha in [&a, &b] {
            v.photos.push(PhotoRef {
                sha256: sha.clone(),
                bytes: 1,
                width: 1,
                height: 1,
            });
        }
        v.household_signature = Some(HouseholdSignature::PaperCard {
            image_sha256: a.clone(),
        });
        assert_eq!(v.referenced_hashes(), vec![a, b]);
    }

    #[test]
    fn times_outside_the_report_years_are_refused() {
        let mut e = envelope(RecordType::Visit);
        assert_eq!(e.validate(), Ok(()));
        let far: DateTime<Utc> = DateTime::parse_from_rfc3339("9999-12-31T23:59:59-01:00")
            .unwrap()
            .with_timezone(&Utc);
        e.created_at = far;
        let err = e.validate().unwrap_err().to_string();
        assert!(err.contains("created_at"), "{err}");
        let mut e = envelope(RecordType::Visit);
        e.visit = Some(VisitBody::new(
            VisitKind::Phone,
            Utc.with_ymd_and_hms(1999, 12, 31, 15, 59, 59).unwrap(),
        ));
        let err = e.validate().unwrap_err().to_string();
        assert!(err.contains("visit time"), "{err}");
        // Years are China's (QA s26c F5): 00:30 on 2000-01-01 in Beijing is in range,
        // 00:30 on 2101-01-01 in Beijing is not, whatever the UTC year says.
        let at = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 16, 30, 0).unwrap();
        e.visit = Some(VisitBody::new(VisitKind::Phone, at(1999, 12, 31)));
        assert_eq!(e.validate(), Ok(()));
        e.visit = Some(VisitBody::new(VisitKind::Phone, at(2100, 12, 31)));
        // Said in China time, the calendar of the rule (QA s28a F10).
        assert_eq!(
            e.validate().unwrap_err().to_string(),
            "invalid record: the visit time 2101-01-01 00:30:00 (China time) is outside \
             the years 2000–2100"
        );
    }

    #[test]
    fn canonical_json_sorts_keys_and_escapes_minimally() {
        let v =
            serde_json::json!({"b": 1, "a": ["x\"\\\n\u{1}é中", -5], "c": {"z": null, "y": true}});
        assert_eq!(
            canonical_json(&v).unwrap(),
            "{\"a\":[\"x\\\"\\\\\\n\\u0001é中\",-5],\"b\":1,\"c\":{\"y\":true,\"z\":null}}"
        );
    }

    #[test]
    fn canonical_json_refuses_floats_and_huge_integers() {
        assert!(canonical_json(&serde_json::json!({"x": 1.5})).is_err());
        assert!(canonical_json(&serde_json::json!(9_007_199_254_740_992_i64)).is_err());
        assert!(canonical_json(&serde_json::json!(9_007_199_254_740_991_i64)).is_ok());
    }

    #[test]
    fn canonical_bytes_start_with_the_prefix_and_omit_absent_optionals() {
        let bytes = envelope(RecordType::Visit).canonical_bytes().unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("bangfu-visit-v1\n{\"author_helper_id\":3,"));
        assert!(!text.contains("target_id") && !text.contains("notes") && !text.contains("reason"));
        assert!(text.contains("\"at\":\"2026-03-01T08:30:00Z\""));
    }

    #[test]
    fn texts_over_their_limit_or_with_control_characters_are_refused() {
        let mut v = VisitBody::new(VisitKind::Phone, at());
        v.problems = vec!["缺".repeat(MAX_ITEM_CHARS)];
        v.notes = Some("第一行\n第二行\t完".into());
        assert_eq!(v.validate(), Ok(()));
        v.problems[0].push('缺');
        let err = v.validate().unwrap_err().to_string();
        assert!(err.contains("problems") && err.contains("1001"), "{err}");
        v.problems.clear();
        v.notes = Some("before\0after".into());
        let err = v.validate().unwrap_err().to_string();
        assert!(err.contains("notes") && err.contains("U+0000"), "{err}");
        v.notes = Some("字".repeat(MAX_NOTES_CHARS + 1));
        assert!(v.validate().unwrap_err().to_string().contains("notes"));
    }

    #[test]
    fn only_the_canonical_time_form_is_read() {
        let e = envelope(RecordType::Visit);
        let mut json = serde_json::to_value(&e).unwrap();
        let read = |json: &serde_json::Value| {
            serde_json::from_value::<RecordEnvelope>(json.clone()).map_err(|e| e.to_string())
        };
        assert_eq!(read(&json).unwrap(), e);
        for (sent, hint) in [
            (
                "2026-03-01T16:30:00+08:00",
                "write it as 2026-03-01T08:30:00Z",
            ),
            (
                "2026-03-01T08:30:00.250Z",
                "write it as 2026-03-01T08:30:00Z",
            ),
            ("2026-03-01t08:30:00z", "write it as 2026-03-01T08:30:00Z"),
            ("yesterday", "is not a time: write a time in RFC 3339"),
        ] {
            json["created_at"] = serde_json::json!(sent);
            let err = read(&json).unwrap_err();
            assert!(err.contains(sent) && err.contains(hint), "{sent}: {err}");
        }
    }

    #[test]
    fn round_trip_through_json_keeps_the_bytes() {
        let mut e = envelope(RecordType::Visit);
        e.created_at = at() + chrono::Duration::milliseconds(750);
        let json = serde_json::to_string(&e).unwrap();
        let back: RecordEnvelope = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.canonical_bytes().unwrap(),
            e.canonical_bytes().unwrap()
        );
    }

    /// A list longer than a card holds is refused naming the list (QA s23c F6: a
    /// hundred thousand photos took minutes to check).
    #[test]
    fn each_list_of_a_visit_is_bounded() {
        let photo = |i: usize| PhotoRef {
            sha256: format!("{i:064x}"),
            bytes: 10,
            width: 4,
            height: 3,
        };
        let mut v = VisitBody::new(VisitKind::Phone, at());
        v.photos = (0..MAX_VISIT_PHOTOS).map(photo).collect();
        assert_eq!(v.validate(), Ok(()));
        v.photos.push(photo(MAX_VISIT_PHOTOS));
        let e = v.validate().unwrap_err().to_string();
        assert!(e.contains("photos: at most 50"), "{e}");
        v.photos.clear();
        v.problems = vec!["缺水".to_string(); MAX_LIST_ENTRIES + 1];
        let e = v.validate().unwrap_err().to_string();
        assert!(
            e.contains("problems: at most 200 entries in a visit, got 201"),
            "{e}"
        );
    }

    #[test]
    fn a_photo_listed_twice_is_refused() {
        let photo = PhotoRef {
            sha256: "ab".repeat(32),
            bytes: 10,
            width: 4,
            height: 3,
        };
        let mut v = VisitBody::new(VisitKind::Phone, at());
        v.photos = vec![photo.clone()];
        assert_eq!(v.validate(), Ok(()));
        v.photos.push(photo);
        assert!(matches!(v.ready_to_sign(), Err(VisitError::Invalid(m)) if m.contains("twice")));
        assert_eq!(
            v.validate(),
            Ok(()),
            "a record signed before the rule stays readable"
        );
    }

    #[test]
    fn structure_is_checked() {
        assert_eq!(envelope(RecordType::Visit).validate(), Ok(()));
        let mut void = envelope(RecordType::Void);
        void.visit = None;
        void.target_id = Some(Uuid::now_v7());
        assert!(void.validate().is_err(), "a void needs a reason");
        void.reason = Some("录错户".into());
        assert_eq!(void.validate(), Ok(()));
        let mut home = envelope(RecordType::Visit);
        home.visit = Some(VisitBody::new(VisitKind::Home, at()));
        assert_eq!(home.validate(), Err(VisitError::MissingHouseholdSignature));
        let mut second = envelope(RecordType::Visit);
        second.seq = 2;
        second.prev_sha256 = "AB".repeat(32);
        assert!(second.validate().is_err(), "uppercase hex is not canonical");
        let mut twice = envelope(RecordType::Visit);
        if let Some(v) = twice.visit.as_mut() {
            v.policies = vec![PolicyArea::ALL[0], PolicyArea::ALL[1], PolicyArea::ALL[0]];
        }
        let e = twice.validate().unwrap_err().to_string();
        assert!(e.contains("policies[2]") && e.contains("twice"), "{e}");
        let mut v4 = envelope(RecordType::Visit);
        v4.id = Uuid::parse_str("9b2f6c1e-4a7d-4c3b-8e21-5f0a9d7c6b42").unwrap();
        let e = v4.validate().unwrap_err().to_string();
        assert!(e.contains("UUIDv7") && e.contains("version 4"), "{e}");
    }

    #[test]
    fn witness_needs_name_role_reason() {
        let mut b = VisitBody::new(VisitKind::Home, at());
        b.household_signature = Some(HouseholdSignature::Witness {
            name: "王五".into(),
            role: "村公证人".into(),
            reason: " ".into(),
            image_sha256: None,
        });
        assert!(b.ready_to_sign().is_err());
    }

    #[test]
    fn only_a_mark_meets_the_household_signature() {
        let mut b = VisitBody::new(VisitKind::Home, at());
        assert!(!b.household_signed());
        let witness = |image_sha256: Option<String>| HouseholdSignature::Witness {
            name: "王五".into(),
            role: "村公证人".into(),
            reason: "户主不识字".into(),
            image_sha256,
        };
        b.household_signature = Some(witness(None));
        assert!(!b.household_signed(), "a typed name is no one's signature");
        b.household_signature = Some(witness(Some("ab".repeat(32))));
        assert!(b.household_signed());
        b.household_signature = Some(HouseholdSignature::PaperCard {
            image_sha256: "cd".repeat(32),
        });
        assert!(b.household_signed());
    }

    #[test]
    fn yuan_parses_exactly() {
        assert_eq!(parse_yuan("50"), Ok(5000));
        assert_eq!(parse_yuan("12.5"), Ok(1250));
        assert_eq!(parse_yuan("¥0.05"), Ok(5));
        assert_eq!(parse_yuan("200元"), Ok(20000));
        for bad in ["", "1.234", "-3", "abc", "1e3", ".5"] {
            assert!(parse_yuan(bad).is_err(), "{bad}");
        }
        assert_eq!(format_yuan(1250), "12.50");
    }

    #[test]
    fn codes_accept_code_and_labels() {
        assert_eq!("中秋".parse::<Occasion>(), Ok(Occasion::Zhongqiu));
        assert_eq!("zhongqiu".parse::<Occasion>(), Ok(Occasion::Zhongqiu));
        assert_eq!("Spring Festival".parse::<Occasion>(), Ok(Occasion::Chunjie));
        assert_eq!(
            "move_out".parse::<FamilyChangeKind>(),
            Ok(FamilyChangeKind::MoveOut)
        );
        assert!(
            "清明"
                .parse::<Occasion>()
                .unwrap_err()
                .to_string()
                .contains("duanwu")
        );
    }
}
