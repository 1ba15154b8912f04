//! The device's Ed25519 key: made on first login, kept as a 32-byte seed in a file only
//! the user can read (0600), registered with the server, and used to sign every record's
//! canonical bytes (see `bangfu_shared::visit`).
//!
//! The file appears whole or not at all: the seed is written to a temporary file in the
//! same directory (0600 from its creation), synced, renamed over `device.key`, and the
//! directory synced. Files left by older versions, which wrote in place, may be short
//! (0–31 bytes) after a kill during the first login; such a key was never registered
//! (login registers the key only after the file was written and synced) and never
//! signed anything, so login replaces it, and every other use says to log in again.
//!
//! A key other users of the computer can read is refused with the command that makes
//! it private, rather than used silently: the library has no channel for a warning
//! (the TUI owns the terminal), and a copied key signs records in the helper's name.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use bangfu_shared::report::SheetSubmission;
use bangfu_shared::visit::{RecordEnvelope, SignedRecord};
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

use crate::error::{ClientError, Result};

/// Bytes of the seed a key file holds.
const SEED_LEN: usize = 32;

/// Refuses a key file that other users can read (see the module documentation).
fn ensure_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| ClientError::io(path, e))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(ClientError::Key {
                path: path.into(),
                reason: format!(
                    "other users of this computer can read it (mode {mode:03o}), and it signs \
                     records in your name; make it private with `chmod 600 {}` and try again",
                    path.display()
                ),
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

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
    /// Returns whether it was created. A short file (a first login killed while the key
    /// was written, see the module documentation) is replaced by a new key.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool)> {
        match std::fs::read(path) {
            Ok(bytes) if bytes.len() < SEED_LEN => {
                let key = DeviceKey::generate()?;
                key.write(path)?;
                Ok((key, true))
            }
            Ok(bytes) => Ok((Self::from_file(path, &bytes)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = DeviceKey::generate()?;
                key.write(path)?;
                Ok((key, true))
            }
            Err(e) => Err(ClientError::io(path, e)),
        }
    }

    /// Loads an existing key; a device that never logged in has none.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) if bytes.len() < SEED_LEN => Err(ClientError::Key {
                path: path.into(),
                reason: format!(
                    "the file holds {} of its {SEED_LEN} bytes: it was cut off while a login \
                     was creating it, so the key was never registered with the server. \
                     Run `bangfu login` again: it makes and registers a new key",
                    bytes.len()
                ),
            }),
            Ok(bytes) => Self::from_file(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ClientError::NotLoggedIn),
            Err(e) => Err(ClientError::io(path, e)),
        }
    }

    /// The key in `bytes`, read from `path`, once the file is known to be private.
    fn from_file(path: &Path, bytes: &[u8]) -> Result<Self> {
        let seed: [u8; SEED_LEN] = bytes.try_into().map_err(|_| ClientError::Key {
            path: path.into(),
            reason: format!(
                "expected {SEED_LEN} bytes, found {}: this is not a key this version wrote; \
                 move it away and run `bangfu login` again to make a new one",
                bytes.len()
            ),
        })?;
        ensure_private(path)?;
        Ok(DeviceKey::from_seed(seed))
    }

    /// Writes the seed to `path` atomically (see the module documentation).
    fn write(&self, path: &Path) -> Result<()> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "device.key".into());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            // 0600 before the seed goes in, a leftover temporary file included.
            let mut file = crate::config::create_private(&tmp)?;
            file.write_all(&self.key.to_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)?;
            // Make the rename durable before the key is registered with the server.
            #[cfg(unix)]
            std::fs::File::open(dir)?.sync_all()?;
            Ok(())
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            ClientError::io(path, e)
        })
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

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_new_key_is_a_whole_private_file_with_nothing_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let (key, created) = DeviceKey::load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(std::fs::read(&path).unwrap().len(), SEED_LEN);
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("device.key")]);
        let (again, created) = DeviceKey::load_or_create(&path).unwrap();
        assert!(!created, "the second login keeps the key");
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(
            DeviceKey::load(&path).unwrap().public_key(),
            key.public_key()
        );
    }

    /// A first login killed right after an older version created the file left it
    /// short; every later login used to fail on it.
    #[test]
    fn a_key_file_cut_off_at_creation_is_replaced_at_login_and_explained_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 1, 31] {
            let path = dir.path().join(format!("device-{len}.key"));
            std::fs::write(&path, vec![7u8; len]).unwrap();
            let err = DeviceKey::load(&path).unwrap_err().to_string();
            assert!(
                err.contains(&format!("holds {len} of its 32 bytes"))
                    && err.contains("never registered")
                    && err.contains("bangfu login"),
                "{err}"
            );
            let (key, created) = DeviceKey::load_or_create(&path).unwrap();
            assert!(created, "login makes a new key");
            assert_eq!(std::fs::read(&path).unwrap(), key.key.to_bytes().to_vec());
            #[cfg(unix)]
            assert_eq!(mode(&path), 0o600);
            assert_eq!(
                DeviceKey::load(&path).unwrap().public_key(),
                key.public_key()
            );
        }
    }

    #[test]
    fn a_key_file_too_long_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        std::fs::write(&path, [1u8; 33]).unwrap();
        #[cfg(unix)]
        chmod(&path, 0o600);
        let err = DeviceKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("expected 32 bytes, found 33"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), vec![1u8; 33], "untouched");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_others_can_read_is_refused_with_the_command_that_fixes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let (key, _) = DeviceKey::load_or_create(&path).unwrap();
        for m in [0o644, 0o640, 0o604] {
            chmod(&path, m);
            for err in [
                DeviceKey::load(&path).unwrap_err(),
                DeviceKey::load_or_create(&path).unwrap_err(),
            ] {
                let err = err.to_string();
                assert!(
                    err.contains(&format!("mode {m:03o}")) && err.contains("chmod 600"),
                    "{err}"
                );
            }
            assert_eq!(
                mode(&path),
                m,
                "the library does not change it behind the user"
            );
        }
        chmod(&path, 0o600);
        assert_eq!(
            DeviceKey::load(&path).unwrap().public_key(),
            key.public_key()
        );
    }
}
