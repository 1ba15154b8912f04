//! The one error type of the shared crate: a value that does not parse.

/// What went wrong turning text into a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharedError {
    /// A code such as a role or status name that this version does not know.
    #[error("unknown {kind} `{value}`")]
    UnknownCode { kind: &'static str, value: String },
    /// A value of a domain list (a visit kind, a role) that is not on it: said with
    /// the values there are, in both names (QA s29c K7).
    #[error("unknown {kind} `{value}` (known: {known})")]
    UnknownValue {
        kind: &'static str,
        value: String,
        known: String,
    },
    /// A policy preset name that is not shipped.
    #[error("unknown policy preset `{0}` (known: laizhou-2018, xigang-2019)")]
    UnknownPreset(String),
    /// A policy whose numbers make no sense (for example a window that does not divide a year).
    #[error("invalid policy: {0}")]
    InvalidPolicy(String),
}
