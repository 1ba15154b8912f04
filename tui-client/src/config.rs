//! Where the client keeps its data and the limits it applies to input files.
//!
//! Everything lives under one data directory (default: the user's data directory +
//! `bangfu`), created with mode 0700 because it holds the device's private key, the
//! session token and households' personal data.

use std::path::{Path, PathBuf};

use chrono::FixedOffset;

use crate::error::{ClientError, Result};

/// Paths inside the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Uses `root` (created on [`DataDir::ensure`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    /// The default: `$XDG_DATA_HOME/bangfu` (or the platform's equivalent).
    pub fn default_location() -> Result<Self> {
        dirs::data_dir()
            .map(|d| DataDir::new(d.join("bangfu")))
            .ok_or_else(|| {
                ClientError::Refused(
                    "no user data directory on this system: pass --data-dir".into(),
                )
            })
    }

    /// Creates the directory tree with private permissions: the root, `photos/` and
    /// `tmp/` are 0700 whatever the umask (photos of households and partial downloads
    /// are personal data too), made so again if an earlier version left them open.
    pub fn ensure(&self) -> Result<()> {
        for dir in [self.root.clone(), self.photos_dir(), self.tmp_dir()] {
            std::fs::create_dir_all(&dir).map_err(|e| ClientError::io(&dir, e))?;
            set_mode(&dir, 0o700)?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite store.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("bangfu.sqlite3")
    }

    /// The lock a sync holds while it runs (see `Client::sync`).
    pub fn sync_lock_path(&self) -> PathBuf {
        self.root.join("sync.lock")
    }

    /// The device's Ed25519 private key (32-byte seed, mode 0600).
    pub fn key_path(&self) -> PathBuf {
        self.root.join("device.key")
    }

    /// Content-addressed images: `photos/ab/abcdef….jpg|png`.
    pub fn photos_dir(&self) -> PathBuf {
        self.root.join("photos")
    }

    /// Scratch space on the same file system, for atomic writes by rename.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}

/// Sets Unix permission bits; a no-op elsewhere.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| ClientError::io(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Makes the file `path` the user's alone (0600 on Unix): created so when missing (an
/// existing file keeps its bytes), tightened when the umask or an earlier version left it
/// open to others. For the store, whose -wal and -shm files SQLite creates with the
/// database file's mode.
pub fn private_file(path: &Path) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).map_err(|e| ClientError::io(path, e))?;
    set_mode(path, 0o600)
}

/// Creates (or truncates) `path` for writing as a file only the user can read: mode
/// 0600 on Unix, also when a leftover file of that name had another.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Limits applied to photos and signature images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Input files larger than this are refused before decoding (phone photos are 3–12 MB).
    pub max_photo_bytes: u64,
    /// Longest edge of the stored photo, in pixels (saves the helper's bandwidth).
    pub max_edge: u32,
    /// JPEG quality of stored photos.
    pub jpeg_quality: u8,
    /// Decoded images above this many pixels are refused (a decompression bomb guard).
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_photo_bytes: 30 * 1024 * 1024,
            max_edge: 1600,
            jpeg_quality: 82,
            max_pixels: 120_000_000,
        }
    }
}

/// The time zone forms are filled in and dates are judged in: China Standard Time.
/// Fixed rather than the machine's zone, because the policy windows are Chinese
/// calendar months wherever the device's clock is set.
pub fn local_offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| chrono::Utc.fix())
}

use chrono::Offset as _;
