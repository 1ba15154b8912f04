//! A visit form as the helper types it: free text that may not parse yet, kept as a
//! draft after every change so a killed process loses at most the keystrokes in the
//! field being edited. [`VisitDraft::to_body`] turns it into a [`VisitBody`] or names
//! the field that is wrong.
//!
//! List fields take one entry per `;` (or `；`); deliveries are `ITEM:YUAN[:OCCASION]`
//! and family changes `KIND:NAME` — the same syntax as the headless command's flags.

use bangfu_shared::VisitKind;
use bangfu_shared::visit::{
    Delivery, FamilyChange, FamilyChangeKind, HouseholdSignature, Occasion, PhotoRef, PolicyArea,
    VisitBody, parse_yuan,
};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::local_offset;
use crate::error::{ClientError, Result};
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
        }
    }

    /// A form pre-filled from an existing visit, to correct it.
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
                    o.code()
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
            .map(|c| format!("{}:{}", c.kind.code(), c.name))
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
        d
    }

    /// The household's signature as the form stands, if it is complete.
    pub fn household_signature(&self) -> Option<HouseholdSignature> {
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
                filled.then(|| HouseholdSignature::Witness {
                    name: self.witness_name.trim().to_string(),
                    role: self.witness_role.trim().to_string(),
                    reason: self.witness_reason.trim().to_string(),
                    image_sha256: None,
                })
            }
        }
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

    /// What still stops the helper from signing, in the helper's terms; `None` when ready.
    pub fn missing(&self) -> Option<ClientError> {
        match self.to_body() {
            Err(e) => Some(e),
            Ok(body) => body.ready_to_sign().err().map(ClientError::from),
        }
    }
}

/// Splits a list field on `;`, `；` or newlines, dropping empty entries.
pub fn split_list(s: &str) -> Vec<String> {
    s.split([';', '；', '\n'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses `ITEM:YUAN[:OCCASION]` (full-width `：` accepted): `月饼:88:中秋`.
pub fn parse_delivery(s: &str) -> Result<Delivery> {
    let bad = |m: String| ClientError::Field {
        field: "deliveries",
        message: m,
    };
    let parts: Vec<&str> = s.split([':', '：']).map(str::trim).collect();
    let (item, yuan, occasion) = match parts.as_slice() {
        [item, yuan] => (item.to_string(), *yuan, None),
        [rest @ .., yuan, occ] if !rest.is_empty() && occ.parse::<Occasion>().is_ok() => {
            (rest.join(":"), *yuan, occ.parse::<Occasion>().ok())
        }
        [rest @ .., yuan] if rest.len() >= 2 => (rest.join(":"), *yuan, None),
        _ => {
            return Err(bad(format!(
                "`{s}`: write ITEM:YUAN or ITEM:YUAN:OCCASION, e.g. 月饼:88:中秋"
            )));
        }
    };
    if item.is_empty() {
        return Err(bad(format!("`{s}`: the item is missing")));
    }
    let value_fen = parse_yuan(yuan).map_err(|e| bad(e.to_string()))?;
    Ok(Delivery {
        item,
        value_fen,
        occasion,
    })
}

/// Parses `KIND:NAME` (`birth:张小宝`, `出生:张小宝`).
pub fn parse_family_change(s: &str) -> Result<FamilyChange> {
    let bad = |m: String| ClientError::Field {
        field: "family_changes",
        message: m,
    };
    let (kind, name) = s
        .split_once([':', '：'])
        .ok_or_else(|| bad(format!("`{s}`: write KIND:NAME, e.g. birth:张小宝")))?;
    let kind: FamilyChangeKind = kind
        .parse()
        .map_err(|e: bangfu_shared::visit::VisitError| bad(e.to_string()))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(bad(format!("`{s}`: the person's name is missing")));
    }
    Ok(FamilyChange {
        kind,
        name: name.to_string(),
    })
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
    let t = s.trim();
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
        message: format!("`{s}` is not a time: write 2026-03-01 08:30"),
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

    #[test]
    fn home_visit_draft_needs_a_household_signature() {
        let mut d = VisitDraft::new(1, VisitKind::Home, Utc::now());
        assert!(matches!(d.missing(), Some(ClientError::Visit(_))));
        d.signature_method = SignatureMethod::Witness;
        d.witness_name = "王五".into();
        d.witness_role = "村公证人".into();
        d.witness_reason = "户主不识字".into();
        assert!(d.missing().is_none());
        d.kind = VisitKind::Phone;
        assert!(d.to_body().unwrap().household_signature.is_none());
    }

    #[test]
    fn amending_round_trips_the_body() {
        let mut d = VisitDraft::new(9, VisitKind::Phone, Utc::now());
        d.problems = "a; b".into();
        d.deliveries = "米:50:春节; 油:20".into();
        d.family_changes = "death:赵六".into();
        d.notes = "x".into();
        let body = d.to_body().unwrap();
        let again = VisitDraft::amending(Uuid::now_v7(), 9, &body)
            .to_body()
            .unwrap();
        assert_eq!(again, body);
    }
}
