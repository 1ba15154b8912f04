//! A visit form as the helper types it: free text that may not parse yet, kept as a
//! draft after every change so a killed process loses at most the keystrokes in the
//! field being edited. [`VisitDraft::to_body`] turns it into a [`VisitBody`] or names
//! the field that is wrong.
//!
//! List fields take one entry per `;` (or `；`); deliveries are `ITEM:YUAN[:OCCASION]`
//! and family changes `KIND:NAME` — the same syntax as the headless command's flags.
//! Times and amounts accept the full-width digits and punctuation a Chinese input method
//! types ([`half_width`]).
//!
//! An amendment starts from the original's content and its household signature. That
//! signature attests the time, the kind, the deliveries and the family changes
//! ([`attested_changes`]): once one of them differs, the carried-over signature lapses
//! and the household (or the witness) must sign again.
//!
//! A mark stands for the person who made it ([`same_signer`]): a witness's mark carried
//! over from the original serves only that witness (same name and role), never a
//! renamed or different one ([`mark_relabelled`]). The TUI form, the headless
//! `visit amend` and [`crate::client::Client::record_visit`] all apply this one rule.

use bangfu_shared::VisitKind;
use bangfu_shared::visit::{
    Delivery, FamilyChange, FamilyChangeKind, HouseholdSignature, Occasion, PhotoRef, PolicyArea,
    VisitBody, parse_yuan,
};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::local_offset;
use crate::error::{ClientError, FieldProblem, Result};
use crate::signature_pad::SignaturePad;

/// How the household signs, while the form is being filled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureMethod {
    /// Drawn on the signature pad.
    #[default]
    Pad,
    /// A photo of the signed paper card.
    PaperCard,
    /// A witness or the village notary.
    Witness,
}

/// An unfinished visit form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitDraft {
    pub id: Uuid,
    pub household_id: i64,
    /// Set when this form corrects an earlier visit (an amendment).
    #[serde(default)]
    pub amends: Option<Uuid>,
    pub kind: VisitKind,
    /// Local time (UTC+8) as typed: `2026-03-01 08:30`.
    pub at: String,
    pub policies: Vec<PolicyArea>,
    pub problems: String,
    pub help: String,
    pub support: String,
    pub deliveries: String,
    pub family_changes: String,
    pub notes: String,
    /// Why an amendment corrects the original.
    #[serde(default)]
    pub reason: String,
    pub photos: Vec<PhotoRef>,
    pub signature_method: SignatureMethod,
    /// Hash of the drawn signature PNG or of the signed card's photo, once accepted.
    #[serde(default)]
    pub signature_image: Option<String>,
    /// The strokes on the pad, so an interrupted signature is not lost.
    #[serde(default)]
    pub pad: Option<SignaturePad>,
    pub witness_name: String,
    pub witness_role: String,
    pub witness_reason: String,
    /// An amendment's original content, as the household signed it: its signature is
    /// carried over only while what it attests is unchanged ([`Self::resign_needed`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_content: Option<Box<VisitBody>>,
}

impl VisitDraft {
    /// A new form for `household_id` at `now`.
    pub fn new(household_id: i64, kind: VisitKind, now: DateTime<Utc>) -> Self {
        VisitDraft {
            id: Uuid::now_v7(),
            household_id,
            amends: None,
            kind,
            at: format_local(now),
            policies: Vec::new(),
            problems: String::new(),
            help: String::new(),
            support: String::new(),
            deliveries: String::new(),
            family_changes: String::new(),
            notes: String::new(),
            reason: String::new(),
            photos: Vec::new(),
            signature_method: SignatureMethod::Pad,
            signature_image: None,
            pad: None,
            witness_name: String::new(),
            witness_role: String::new(),
            witness_reason: String::new(),
            signed_content: None,
        }
    }

    /// A form pre-filled from an existing visit, to correct it. Occasions and family
    /// changes are written in the Chinese words the helper types (`中秋`, `出生`), which
    /// parse back to the same codes.
    pub fn amending(original_id: Uuid, household_id: i64, body: &VisitBody) -> Self {
        let join = |v: &[String]| v.join("; ");
        let mut d = VisitDraft::new(household_id, body.kind, body.at);
        d.amends = Some(original_id);
        d.policies = body.policies.clone();
        d.problems = join(&body.problems);
        d.help = join(&body.help);
        d.support = join(&body.support);
        d.deliveries = body
            .deliveries
            .iter()
            .map(|x| match x.occasion {
                Some(o) => format!(
                    "{}:{}:{}",
                    x.item,
                    bangfu_shared::visit::format_yuan(x.value_fen),
                    o.label_zh()
                ),
                None => format!(
                    "{}:{}",
                    x.item,
                    bangfu_shared::visit::format_yuan(x.value_fen)
                ),
            })
            .collect::<Vec<_>>()
            .join("; ");
        d.family_changes = body
            .family_changes
            .iter()
            .map(|c| format!("{}:{}", c.kind.label_zh(), c.name))
            .collect::<Vec<_>>()
            .join("; ");
        d.notes = body.notes.clone().unwrap_or_default();
        d.photos = body.photos.clone();
        match &body.household_signature {
            Some(HouseholdSignature::Drawn { image_sha256 }) => {
                d.signature_method = SignatureMethod::Pad;
                d.signature_image = Some(image_sha256.clone());
            }
            Some(HouseholdSignature::PaperCard { image_sha256 }) => {
                d.signature_method = SignatureMethod::PaperCard;
                d.signature_image = Some(image_sha256.clone());
            }
            Some(HouseholdSignature::Witness {
                name,
                role,
                reason,
                image_sha256,
            }) => {
                d.signature_method = SignatureMethod::Witness;
                d.witness_name = name.clone();
                d.witness_role = role.clone();
                d.witness_reason = reason.clone();
                d.signature_image = image_sha256.clone();
            }
            None => {}
        }
        if body.household_signature.is_some() {
            d.signed_content = Some(Box::new(body.clone()));
        }
        d
    }

    /// The household's signature as the form stands, if it is complete and still attests
    /// the content: an amendment's carried-over signature lapses once the time, kind,
    /// deliveries or family changes differ from what the household signed.
    pub fn household_signature(&self) -> Option<HouseholdSignature> {
        if self.resign_needed().is_empty() {
            self.entered_signature()
        } else {
            None
        }
    }

    /// What an amendment changed of the content its carried-over household signature
    /// attests (codes as in [`attested_changes`]); empty when nothing, or when the
    /// household has signed again.
    pub fn resign_needed(&self) -> Vec<&'static str> {
        let Some(signed) = &self.signed_content else {
            return Vec::new();
        };
        let carried = self.entered_signature();
        if carried.is_none() || carried != signed.household_signature {
            return Vec::new();
        }
        let mut changed = Vec::new();
        if self.kind != signed.kind {
            changed.push("kind");
        }
        if !parse_local_time(&self.at).is_ok_and(|t| same_minute(t, signed.at)) {
            changed.push("at");
        }
        let deliveries: Result<Vec<Delivery>> = split_list(&self.deliveries)
            .iter()
            .map(|s| parse_delivery(s))
            .collect();
        if !deliveries.is_ok_and(|d| same_deliveries(&d, &signed.deliveries)) {
            changed.push("deliveries");
        }
        let family: Result<Vec<FamilyChange>> = split_list(&self.family_changes)
            .iter()
            .map(|s| parse_family_change(s))
            .collect();
        if !family.is_ok_and(|f| same_family(&f, &signed.family_changes)) {
            changed.push("family_changes");
        }
        changed
    }

    /// The household's signature as entered on the form, before any check of what it
    /// attests.
    fn entered_signature(&self) -> Option<HouseholdSignature> {
        if self.kind == VisitKind::Phone {
            return None;
        }
        match self.signature_method {
            SignatureMethod::Pad => self
                .signature_image
                .clone()
                .map(|h| HouseholdSignature::Drawn { image_sha256: h }),
            SignatureMethod::PaperCard => self
                .signature_image
                .clone()
                .map(|h| HouseholdSignature::PaperCard { image_sha256: h }),
            SignatureMethod::Witness => {
                let filled = [&self.witness_name, &self.witness_role, &self.witness_reason]
                    .iter()
                    .all(|s| !s.trim().is_empty());
                if !filled {
                    return None;
                }
                let witness = HouseholdSignature::Witness {
                    name: self.witness_name.trim().to_string(),
                    role: self.witness_role.trim().to_string(),
                    reason: self.witness_reason.trim().to_string(),
                    image_sha256: self.signature_image.clone(),
                };
                // A mark carried over from the original is that witness's only: renamed
                // (or another role), the witness must draw anew.
                if self.mark_relabelled() {
                    return None;
                }
                // The witness signs on the pad like the household would: a name typed by
                // the helper alone is no mark of anyone. An amendment of a visit recorded
                // before this rule keeps its unmarked witness as it was.
                let carried = self
                    .signed_content
                    .as_ref()
                    .is_some_and(|b| b.household_signature.as_ref() == Some(&witness));
                (self.signature_image.is_some() || carried).then_some(witness)
            }
        }
    }

    /// Whether the form carries the original's mark (its signature image) for a signer
    /// other than the one who made it: the witness was renamed or replaced after an
    /// amendment was opened. The form then reads 未签 until the new signer draws.
    pub fn mark_relabelled(&self) -> bool {
        let Some(signed) = self
            .signed_content
            .as_ref()
            .and_then(|b| b.household_signature.as_ref())
        else {
            return false;
        };
        if self.kind == VisitKind::Phone || self.signature_image.is_none() {
            return false;
        }
        let image = self.signature_image.clone().unwrap_or_default();
        let now = match self.signature_method {
            SignatureMethod::Pad => HouseholdSignature::Drawn {
                image_sha256: image,
            },
            SignatureMethod::PaperCard => HouseholdSignature::PaperCard {
                image_sha256: image,
            },
            SignatureMethod::Witness => HouseholdSignature::Witness {
                name: self.witness_name.trim().to_string(),
                role: self.witness_role.trim().to_string(),
                reason: self.witness_reason.trim().to_string(),
                image_sha256: Some(image),
            },
        };
        mark_relabelled(signed, &now)
    }

    /// The local (UTC+8) date of the visit time as typed, if it parses.
    pub fn visit_day(&self) -> Option<chrono::NaiveDate> {
        parse_local_time(&self.at).ok().map(crate::client::today)
    }

    /// What stops the draft from being signed, the hardest to fix first: with a
    /// household whose pairing `ended`, a day outside the helper's pairing (no signature
    /// makes that visit the helper's; QA s23a F2), then what [`VisitDraft::missing`] says.
    pub fn blocker(
        &self,
        ended: Option<&crate::client::EndedHousehold>,
        now: DateTime<Utc>,
    ) -> Option<ClientError> {
        let outside = ended.and_then(|h| h.check(self.visit_day()?).err());
        outside.or_else(|| self.missing(now))
    }

    /// The visit this form describes; an error names the field to fix. The household
    /// signature may still be missing (the draft then cannot be signed yet).
    pub fn to_body(&self) -> Result<VisitBody> {
        let mut body = VisitBody::new(self.kind, parse_local_time(&self.at)?);
        body.policies = self.policies.clone();
        body.problems = split_list(&self.problems);
        body.help = split_list(&self.help);
        body.support = split_list(&self.support);
        body.deliveries = split_list(&self.deliveries)
            .iter()
            .map(|s| parse_delivery(s))
            .collect::<Result<_>>()?;
        body.family_changes = split_list(&self.family_changes)
            .iter()
            .map(|s| parse_family_change(s))
            .collect::<Result<_>>()?;
        body.notes = Some(self.notes.trim().to_string()).filter(|n| !n.is_empty());
        body.photos = self.photos.clone();
        body.household_signature = self.household_signature();
        body.validate()?;
        Ok(body)
    }

    /// What still stops the helper from signing at `now`, in the helper's terms; `None`
    /// when ready.
    pub fn missing(&self, now: DateTime<Utc>) -> Option<ClientError> {
        let body = match self.to_body() {
            Err(e) => return Some(e),
            Ok(body) => body,
        };
        if let Err(e) = crate::client::check_not_future(body.at, now) {
            return Some(e);
        }
        match body.ready_to_sign() {
            Err(bangfu_shared::visit::VisitError::MissingHouseholdSignature)
                if self.mark_relabelled() =>
            {
                Some(ClientError::SignerChanged)
            }
            Err(bangfu_shared::visit::VisitError::MissingHouseholdSignature) => {
                let changed = self.resign_needed();
                Some(if changed.is_empty() {
                    bangfu_shared::visit::VisitError::MissingHouseholdSignature.into()
                } else {
                    ClientError::ResignNeeded(changed)
                })
            }
            Err(e) => Some(e.into()),
            Ok(()) if self.amends.is_some() && self.reason.trim().is_empty() => {
                Some(ClientError::AmendmentReasonMissing)
            }
            Ok(()) => None,
        }
    }
}

/// Whether two household signatures come from the same signer: the household itself
/// (drawn, or on the paper card: the same method), or the same witness (name and role,
/// trimmed). The reason the household could not sign says nothing about who signed.
pub fn same_signer(a: &HouseholdSignature, b: &HouseholdSignature) -> bool {
    use HouseholdSignature::*;
    match (a, b) {
        (Drawn { .. }, Drawn { .. }) | (PaperCard { .. }, PaperCard { .. }) => true,
        (
            Witness {
                name: n1, role: r1, ..
            },
            Witness {
                name: n2, role: r2, ..
            },
        ) => n1.trim() == n2.trim() && r1.trim() == r2.trim(),
        _ => false,
    }
}

/// Whether `new` rests on the same image as `signed` (an amendment's original signature)
/// while naming another signer: one person's mark relabelled as someone else's, which
/// the double signature exists to prevent. Such an amendment needs a new mark.
pub fn mark_relabelled(signed: &HouseholdSignature, new: &HouseholdSignature) -> bool {
    signed.image_sha256().is_some()
        && signed.image_sha256() == new.image_sha256()
        && !same_signer(signed, new)
}

/// What `new` changed of the content a household signature on `signed` attests: `kind`,
/// `at` (to the minute, as forms show it), `deliveries`, `family_changes` (each as a
/// set: order is not content). The helper's own findings and notes are not attested.
pub fn attested_changes(signed: &VisitBody, new: &VisitBody) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if signed.kind != new.kind {
        changed.push("kind");
    }
    if !same_minute(signed.at, new.at) {
        changed.push("at");
    }
    if !same_deliveries(&signed.deliveries, &new.deliveries) {
        changed.push("deliveries");
    }
    if !same_family(&signed.family_changes, &new.family_changes) {
        changed.push("family_changes");
    }
    changed
}

fn same_minute(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    a.timestamp().div_euclid(60) == b.timestamp().div_euclid(60)
}

fn same_deliveries(a: &[Delivery], b: &[Delivery]) -> bool {
    let key = |v: &[Delivery]| {
        let mut k: Vec<(String, i64, Option<&'static str>)> = v
            .iter()
            .map(|d| {
                (
                    d.item.trim().to_string(),
                    d.value_fen,
                    d.occasion.map(|o| o.code()),
                )
            })
            .collect();
        k.sort();
        k
    };
    key(a) == key(b)
}

fn same_family(a: &[FamilyChange], b: &[FamilyChange]) -> bool {
    let key = |v: &[FamilyChange]| {
        let mut k: Vec<(&'static str, String)> = v
            .iter()
            .map(|c| (c.kind.code(), c.name.trim().to_string()))
            .collect();
        k.sort();
        k
    };
    key(a) == key(b)
}

/// Splits a list field on `;`, `；` or newlines, dropping empty entries.
pub fn split_list(s: &str) -> Vec<String> {
    s.split([';', '；', '\n'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// What an error repeats of the text typed: enough to find it, not a pasted page
/// (QA s22b F7: a 1,000-character entry echoed whole pushed the form off the screen).
fn echo(s: &str) -> String {
    const MAX: usize = 30;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let cut: String = s.chars().take(MAX).collect();
    format!("{cut}…")
}

/// Parses `ITEM:YUAN[:OCCASION]` (full-width `：` and digits accepted): `月饼:88:中秋`.
pub fn parse_delivery(s: &str) -> Result<Delivery> {
    let bad = |problem: FieldProblem| ClientError::Field {
        field: "deliveries",
        problem,
    };
    let parts: Vec<&str> = s.split([':', '：']).map(str::trim).collect();
    // `中秋节` as people write it, for the code's `中秋` (QA s29c K7).
    let occasion_of = |occ: &str| {
        occ.parse::<Occasion>().or_else(|e| {
            occ.strip_suffix('节')
                .map_or(Err(e.clone()), |o| o.parse().map_err(|_| e))
        })
    };
    let is_amount = |t: &str| parse_yuan(&half_width(t)).is_ok();
    let (item, yuan, occasion) = match parts.as_slice() {
        [item, yuan] => (item.to_string(), *yuan, None),
        [rest @ .., yuan, occ] if !rest.is_empty() && occasion_of(occ).is_ok() => {
            (rest.join(":"), *yuan, occasion_of(occ).ok())
        }
        // An amount then something that is neither an amount nor an occasion: the
        // occasion is what was not understood, said with the ones there are.
        [rest @ .., yuan, occ] if !rest.is_empty() && is_amount(yuan) && !is_amount(occ) => {
            return Err(bad(FieldProblem::Rule(
                occasion_of(occ)
                    .err()
                    .unwrap_or(bangfu_shared::visit::VisitError::BadAmount(echo(s))),
            )));
        }
        [rest @ .., yuan] if rest.len() >= 2 => (rest.join(":"), *yuan, None),
        _ => return Err(bad(FieldProblem::DeliveryFormat(echo(s)))),
    };
    if item.is_empty() {
        return Err(bad(FieldProblem::ItemMissing(echo(s))));
    }
    let value_fen = parse_yuan(&half_width(yuan)).map_err(|e| bad(FieldProblem::Rule(e)))?;
    Ok(Delivery {
        item,
        value_fen,
        occasion,
    })
}

/// Parses `KIND:NAME` (`birth:张小宝`, `出生:张小宝`).
pub fn parse_family_change(s: &str) -> Result<FamilyChange> {
    let bad = |problem: FieldProblem| ClientError::Field {
        field: "family_changes",
        problem,
    };
    let (kind, name) = s
        .split_once([':', '：'])
        .ok_or_else(|| bad(FieldProblem::FamilyFormat(echo(s))))?;
    let kind: FamilyChangeKind = kind.parse().map_err(|e| bad(FieldProblem::Rule(e)))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(bad(FieldProblem::NameMissing(echo(s))));
    }
    Ok(FamilyChange {
        kind,
        name: name.to_string(),
    })
}

/// Full-width digits and punctuation as a Chinese input method types them (`０-９`,
/// `－`, `：`, `．`, the ideographic space) turned into their ASCII forms, for times and
/// amounts.
pub fn half_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
            '－' => '-',
            '：' => ':',
            '．' => '.',
            '\u{3000}' => ' ',
            other => other,
        })
        .collect()
}

/// Formats a time for forms and lists: UTC+8, minutes.
pub fn format_local(t: DateTime<Utc>) -> String {
    t.with_timezone(&local_offset())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Parses a time typed by the helper: `2026-03-01 08:30` (UTC+8), with `T` or seconds,
/// or a full RFC 3339 time with its own offset.
pub fn parse_local_time(s: &str) -> Result<DateTime<Utc>> {
    let wide = half_width(s);
    let t = wide.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, fmt)
            && let Some(dt) = local_offset().from_local_datetime(&naive).single()
        {
            return Ok(dt.with_timezone(&Utc));
        }
    }
    Err(ClientError::Field {
        field: "at",
        problem: FieldProblem::NotATime(echo(s)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_parse_with_and_without_occasion() {
        let d = parse_delivery("月饼：88.5：中秋").unwrap();
        assert_eq!(
            (d.item.as_str(), d.value_fen, d.occasion),
            ("月饼", 8850, Some(Occasion::Zhongqiu))
        );
        let d = parse_delivery("rice 25kg:150").unwrap();
        assert_eq!((d.value_fen, d.occasion), (15000, None));
        assert!(parse_delivery("rice").is_err());
        assert!(
            parse_delivery("rice:abc")
                .unwrap_err()
                .to_string()
                .contains("abc")
        );
        assert!(parse_delivery(":5").is_err());
        // 中秋节 as written is 中秋; an occasion not known is named as the occasion, with
        // the ones there are, not as an amount (QA s29c K7).
        let d = parse_delivery("米:50:中秋节").unwrap();
        assert_eq!(d.occasion, Some(Occasion::Zhongqiu));
        let e = parse_delivery("米:50:国庆").unwrap_err().to_string();
        assert!(e.contains("国庆") && e.contains("zhongqiu"), "{e}");
        assert!(!e.contains("amount"), "{e}");
    }

    #[test]
    fn full_width_digits_and_punctuation_are_accepted() {
        let t = parse_local_time("２０２６－０３－０１\u{3000}０８：３０").unwrap();
        assert_eq!(t, parse_local_time("2026-03-01 08:30").unwrap());
        let d = parse_delivery("月饼：８８．５：中秋").unwrap();
        assert_eq!((d.value_fen, d.occasion), (8850, Some(Occasion::Zhongqiu)));
    }

    #[test]
    fn family_changes_parse_codes_and_chinese() {
        assert_eq!(
            parse_family_change("出生:张小宝").unwrap().kind,
            FamilyChangeKind::Birth
        );
        assert_eq!(parse_family_change("move_out: 李四").unwrap().name, "李四");
        assert!(parse_family_change("adopted:x").is_err());
    }

    #[test]
    fn local_time_is_utc_plus_eight() {
        let t = parse_local_time("2026-03-01 08:30").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-01T00:30:00+00:00");
        assert_eq!(format_local(t), "2026-03-01 08:30");
        assert!(parse_local_time("yesterday").is_err());
    }

    /// QA s23a F2: a draft of an ended household dated after the pairing says so first;
    /// a signature would not make it signable.
    #[test]
    fn a_draft_dated_outside_an_ended_pairing_says_so_before_what_it_lacks() {
        use crate::app::testing::{HELPER_ID, household};
        let now = Utc::now();
        let d = VisitDraft::new(1, VisitKind::Home, now);
        let day = crate::client::today(now);
        let mut detail = household(1, "张三", "东村");
        for p in &mut detail.pairings {
            p.valid_to = Some(day);
        }
        let ended = crate::client::EndedHousehold::new(detail, HELPER_ID, day);
        assert!(matches!(
            d.blocker(Some(&ended), now),
            Some(ClientError::OutsidePairing { .. })
        ));
        assert!(
            matches!(d.blocker(None, now), Some(ClientError::Visit(_))),
            "a current household: the missing signature"
        );
    }

    #[test]
    fn home_visit_draft_needs_a_household_signature() {
        let mut d = VisitDraft::new(1, VisitKind::Home, Utc::now());
        assert!(matches!(d.missing(Utc::now()), Some(ClientError::Visit(_))));
        d.signature_method = SignatureMethod::Witness;
        d.witness_name = "王五".into();
        d.witness_role = "村公证人".into();
        d.witness_reason = "户主不识字".into();
        assert!(
            d.missing(Utc::now()).is_some(),
            "the witness has not signed on the pad yet"
        );
        d.signature_image = Some("ab".repeat(32));
        assert!(d.missing(Utc::now()).is_none());
        assert!(matches!(
            d.household_signature(),
            Some(HouseholdSignature::Witness {
                image_sha256: Some(_),
                ..
            })
        ));
        d.kind = VisitKind::Phone;
        assert!(d.to_body().unwrap().household_signature.is_none());
    }

    #[test]
    fn amending_keeps_the_witness_mark_and_an_old_unmarked_witness() {
        let witness = |image: Option<String>| HouseholdSignature::Witness {
            name: "王五".into(),
            role: "村公证人".into(),
            reason: "户主不识字".into(),
            image_sha256: image,
        };
        let mut body = VisitBody::new(VisitKind::Home, Utc::now());
        for sig in [witness(Some("cd".repeat(32))), witness(None)] {
            body.household_signature = Some(sig.clone());
            let d = VisitDraft::amending(Uuid::now_v7(), 1, &body);
            assert_eq!(d.household_signature(), Some(sig));
        }
    }

    #[test]
    fn a_renamed_or_replaced_witness_does_not_keep_the_old_mark() {
        let mut body = VisitBody::new(VisitKind::Home, Utc::now() - chrono::Duration::hours(1));
        body.household_signature = Some(HouseholdSignature::Witness {
            name: "李见证".into(),
            role: "村干部".into(),
            reason: "户主外出".into(),
            image_sha256: Some("cd".repeat(32)),
        });
        let mut d = VisitDraft::amending(Uuid::now_v7(), 1, &body);
        d.reason = "核实见证人".into();
        d.witness_reason = "户主住院".into();
        assert!(
            d.missing(Utc::now()).is_none(),
            "the reason is not the signer"
        );
        for (name, role) in [("王五", "村干部"), ("李见证", "村公证人")] {
            d.witness_name = name.into();
            d.witness_role = role.into();
            assert!(d.mark_relabelled());
            assert_eq!(d.household_signature(), None);
            assert!(matches!(
                d.missing(Utc::now()),
                Some(ClientError::SignerChanged)
            ));
        }
        // The new witness draws: the new mark is theirs.
        d.signature_image = Some("ef".repeat(32));
        assert!(!d.mark_relabelled());
        assert!(d.missing(Utc::now()).is_none());
    }

    #[test]
    fn same_signer_compares_the_person_not_the_reason() {
        let w = |name: &str, role: &str, reason: &str| HouseholdSignature::Witness {
            name: name.into(),
            role: role.into(),
            reason: reason.into(),
            image_sha256: Some("ab".repeat(32)),
        };
        let drawn = HouseholdSignature::Drawn {
            image_sha256: "ab".repeat(32),
        };
        assert!(same_signer(
            &w("李", "村干部", "a"),
            &w(" 李 ", "村干部", "b")
        ));
        assert!(!same_signer(
            &w("李", "村干部", "a"),
            &w("王", "村干部", "a")
        ));
        assert!(mark_relabelled(&drawn, &w("李", "村干部", "a")));
        assert!(!mark_relabelled(&drawn, &drawn));
    }

    #[test]
    fn an_amendment_is_not_ready_to_sign_without_its_reason() {
        let body = VisitBody::new(VisitKind::Phone, Utc::now() - chrono::Duration::hours(1));
        let mut d = VisitDraft::amending(Uuid::now_v7(), 9, &body);
        assert!(matches!(
            d.missing(Utc::now()),
            Some(ClientError::AmendmentReasonMissing)
        ));
        d.reason = "时间记错".into();
        assert!(d.missing(Utc::now()).is_none());
    }

    #[test]
    fn amending_round_trips_the_body() {
        let mut d = VisitDraft::new(9, VisitKind::Phone, Utc::now());
        d.problems = "a; b".into();
        d.deliveries = "米:50:春节; 油:20".into();
        d.family_changes = "death:赵六".into();
        d.notes = "x".into();
        let body = d.to_body().unwrap();
        let amending = VisitDraft::amending(Uuid::now_v7(), 9, &body);
        assert_eq!(amending.deliveries, "米:50.00:春节; 油:20.00");
        assert_eq!(amending.family_changes, "死亡:赵六");
        assert_eq!(amending.to_body().unwrap(), body);
    }
}
