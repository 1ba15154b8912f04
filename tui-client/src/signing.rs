//! The device's Ed25519 key: made on first login, kept as a 32-byte seed in a file only
//! the user can read (0600), registered with the server, and used to sign every record's
//! canonical bytes (see `bangfu_shared::visit`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use bangfu_shared::report::SheetSubmission;
use bangfu_shared::visit::{RecordEnvelope, SignedRecord};
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

use crate::config::set_mode;
use crate::error::{ClientError, Result};

/// The device's signing key. Its `Debug` never prints the secret.
pub struct DeviceKey {
    key: SigningKey,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("public_key", &self.public_key_base64())
            .finish_non_exhaustive()
    }
}

impl DeviceKey {
    /// A key from a known seed (test vectors, benchmarks).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        DeviceKey {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| ClientError::Key {
            path: PathBuf::new(),
            reason: format!("no randomness: {e}"),
        })?;
        Ok(DeviceKey::from_seed(seed))
    }

    /// Loads the key at `path`, or makes one and writes it there with mode 0600.
    /// Returns whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool)> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| ClientError::Key {
                    path: path.into(),
                    reason: format!("expected 32 bytes, found {}", bytes.len()),
                })?;
                Ok((DeviceKey::from_seed(seed), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = DeviceKey::generate()?;
                key.write_new(path)?;
                Ok((key, true))
            }
            Err(e) => Err(ClientError::io(path, e)),
        }
    }

    /// Loads an existing key; a device that never logged in has none.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(ClientError::NotLoggedIn);
        }
        Self::load_or_create(path).map(|(k, _)| k)
    }

    fn write_new(&self, path: &Path) -> Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| ClientError::io(path, e))?;
        file.write_all(&self.key.to_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| ClientError::io(path, e))?;
        set_mode(path, 0o600)
    }

    /// The public key as the server's `RegisterDevice` wants it: base64, standard, padded.
    pub fn public_key_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key.verifying_key().to_bytes())
    }

    /// The raw public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs an attendance-sheet submission: Ed25519 (hex) over
    /// [`SheetSubmission::signing_bytes`], replacing any signature it had.
    pub fn sign_sheet(&self, mut submission: SheetSubmission) -> SheetSubmission {
        submission.signature = String::new();
        submission.signature = hex::encode(self.key.sign(&submission.signing_bytes()).to_bytes());
        submission
    }

    /// Signs a record's canonical bytes after checking its structure.
    pub fn sign(&self, record: RecordEnvelope) -> Result<SignedRecord> {
        record.validate()?;
        let bytes = record.canonical_bytes()?;
        let signature = hex::encode(self.key.sign(&bytes).to_bytes());
        Ok(SignedRecord { record, signature })
    }
}

/// Checks a signed record against a public key (32 raw bytes): the structure, then the
/// Ed25519 signature over the canonical bytes.
pub fn verify(record: &SignedRecord, public_key: &[u8; 32]) -> Result<()> {
    record.record.validate()?;
    let bad = |reason: &str| ClientError::Refused(format!("record {}: {reason}", record.record.id));
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| bad("invalid public key"))?;
    let sig_bytes: [u8; 64] = hex::decode(&record.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("signature is not 64 hex bytes"))?;
    key.verify(
        &record.record.canonical_bytes()?,
        &Signature::from_bytes(&sig_bytes),
    )
    .map_err(|_| bad("signature does not match"))
}
