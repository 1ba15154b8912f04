//! Where uploaded files live. One interface, [`BlobStore`]: uploads are appended to
//! (tus), then committed under their SHA-256. The default is a local directory; an
//! S3-compatible object store implements the same trait (an upload maps to a multipart
//! upload whose parts are the appended chunks, `commit` completes it under the
//! content-addressed key), so the services above never see which one is in use.

pub mod packs;

use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use packs::{EntryBuf, Packs};

/// Something that can be read and seeked, for image checks on a blocking thread.
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// Appends the chunks of one PATCH. Nothing is promised until `finish`,
/// `finish_as_blob` or `abandon`: a store may keep the chunks in memory until then.
#[async_trait::async_trait]
pub trait UploadWriter: Send {
    async fn write(&mut self, chunk: &[u8]) -> io::Result<()>;
    /// Told how many bytes the request is still to send, before the first `write`, so
    /// a store that gathers them can make room once instead of growing chunk by chunk.
    fn expect(&mut self, _remaining: u64) {}
    /// Makes the appended bytes durable; returns the upload's new length.
    async fn finish(self: Box<Self>) -> io::Result<u64>;
    /// The upload is whole and its bytes were verified as they streamed in: makes them
    /// durable and moves them to the content address `sha256` in one step (for a file
    /// sent in one request, one trip to the disk instead of three).
    async fn finish_as_blob(self: Box<Self>, sha256: &str) -> io::Result<u64>;
    /// Drops what this writer was given (a chunk whose checksum failed); returns the
    /// upload's length after it, which is the offset the writer started at.
    async fn abandon(self: Box<Self>) -> io::Result<u64>;
}

/// The error of a write that finds the upload holding another number of bytes than
/// the offset it was asked to append at (a concurrent or repeated PATCH): tus 409.
#[derive(Debug, thiserror::Error)]
#[error("the upload holds {held} bytes, not the {expected} this write starts at")]
pub struct OffsetMoved {
    pub held: u64,
    pub expected: u64,
}

/// The bytes an upload holds, when `e` says the offset moved.
pub fn offset_moved(e: &io::Error) -> Option<u64> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<OffsetMoved>())
        .map(|m| m.held)
}

/// Storage of uploads in progress and of complete, content-addressed blobs.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Bytes held for an upload (the tus offset): the truth after any crash. An upload
    /// nothing was written to yet holds 0 bytes (stores create uploads lazily).
    async fn upload_len(&self, upload: &str) -> io::Result<u64>;
    /// A writer appending at `offset`, which must be the upload's length (checked when
    /// the bytes are written: a mismatch is an [`OffsetMoved`] error).
    async fn append(&self, upload: &str, offset: u64) -> io::Result<Box<dyn UploadWriter>>;
    /// Cuts an upload back to `len` bytes (a chunk whose checksum failed is dropped).
    async fn truncate(&self, upload: &str, len: u64) -> io::Result<()>;
    /// Opens an upload's bytes for reading (called on a blocking thread).
    fn open_upload(&self, upload: &str) -> io::Result<Box<dyn ReadSeek>>;
    /// Moves a verified upload to its content address.
    async fn commit(&self, upload: &str, sha256: &str) -> io::Result<()>;
    /// Forgets an upload.
    async fn discard(&self, upload: &str) -> io::Result<()>;
    /// A complete blob's bytes.
    async fn read_blob(&self, sha256: &str) -> io::Result<Vec<u8>>;
    /// Puts a blob found missing or damaged out of the way (kept aside for whoever
    /// looks into it, not served), so the same file uploaded again is the one read.
    async fn set_aside(&self, sha256: &str) -> io::Result<()>;
}

/// The default store: `DATA_DIR/uploads/<id>` while uploading; once verified, a file
/// that arrived whole in one request is appended to a pack in `DATA_DIR/packs` (see
/// [`packs`]), any other is moved to `DATA_DIR/blobs/ab/abcd…`.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    packs: Arc<Packs>,
}

impl LocalStore {
    /// A store under `root` (created if missing, with the 256 directories blobs are
    /// spread over, so naming a blob never waits for a mkdir). Reads the packs' headers
    /// to find their files, and checks the newest pack's files against their hashes.
    /// Every directory is made private to the server's user (see [`private_dir`]).
    pub fn new(root: &Path) -> io::Result<LocalStore> {
        private_dir(root)?;
        create_private_dir_all(&root.join("uploads"))?;
        for shard in 0..=255u8 {
            create_private_dir_all(&root.join("blobs").join(format!("{shard:02x}")))?;
        }
        create_private_dir_all(&root.join("packs"))?;
        Ok(LocalStore {
            root: root.to_path_buf(),
            packs: Arc::new(Packs::open(&root.join("packs"))?),
        })
    }

    /// How many fsyncs the packs did, for the benchmark's figures.
    pub fn pack_fsyncs(&self) -> u64 {
        self.packs.fsyncs()
    }

    fn upload_path(&self, upload: &str) -> io::Result<PathBuf> {
        if upload.is_empty() || !upload.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad upload id"));
        }
        Ok(self.root.join("uploads").join(upload))
    }

    /// The path of a blob (hex SHA-256 only).
    pub fn blob_path(&self, sha256: &str) -> io::Result<PathBuf> {
        if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad sha256"));
        }
        Ok(self.root.join("blobs").join(&sha256[..2]).join(sha256))
    }
}

/// A data directory held by one serving process: two servers appending photos to the
/// same packs and renumbering the same feed would damage both (QA s26b F10). Released
/// when dropped, or when the process ends however it ends (an advisory file lock).
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Takes the data directory `dir` for this server, or says that another process
/// serves from it. The lock file (`server.lock`) is empty and private.
pub fn lock_data_dir(dir: &Path) -> io::Result<DataDirLock> {
    let path = dir.join("server.lock");
    create_private_file(&path)?;
    let file = std::fs::OpenOptions::new().write(true).open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "another bangfu-server is already serving from {}: stop it first, or give this one its own --data-dir",
                dir.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Makes `dir` (and any missing parent) a directory only the server's user can enter:
/// it holds the SQLite database and the households' photos and signatures, personal
/// data no other local account may read. A directory made by an earlier version (or by
/// hand) that others can enter is restricted to mode 0700, with a warning naming only
/// the directory. If that fails (the directory belongs to another user) the warning
/// says so and the server starts anyway: refusing would take the service down on an
/// upgrade for what the operator can fix.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    create_private_dir_all(dir)?;
    restrict(dir, 0o700, "a data directory")
}

/// Makes the file `file` readable and writable by the server's user only (0600) when
/// others may read it (the SQLite database and its `-wal` and `-shm` files hold the
/// households' personal data, and the umask made them 0644), warning as [`private_dir`]
/// does and starting anyway when it cannot. A file that does not exist is left alone.
pub fn private_file(file: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(file) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(_) => restrict(file, 0o600, "a data file"),
    }
}

/// Creates `file` with mode 0600 (on Unix) if it does not exist, leaving an existing
/// one as it is: a file SQLite is about to create is made private before it holds a
/// byte, and SQLite gives the `-wal` and `-shm` files it makes the database file's mode.
pub fn create_private_file(file: &Path) -> io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(file).map(drop)
}

/// Sets `path` (`what`, for the log) to `private` when others may read or enter it,
/// with a warning naming only the path; when that fails (it belongs to another user)
/// the warning says so and the server starts anyway.
fn restrict(path: &Path, private: u32, what: &str) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            match std::fs::set_permissions(path, std::fs::Permissions::from_mode(private)) {
                Ok(()) => tracing::warn!(
                    path = %path.display(),
                    was = format!("{:o}", mode & 0o777),
                    "{what} was open to other local users; it is now {private:o}"
                ),
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    was = format!("{:o}", mode & 0o777),
                    error = %e,
                    "{what} is open to other local users and could not be restricted; \
                     make it {private:o} and owned by the server's user"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, private, what);
    Ok(())
}

/// `create_dir_all`, with mode 0700 for every directory it creates (on Unix).
/// Creates `dir` and its missing parents, each readable by the server's user only
/// (0700); existing ones are left as they are.
pub(crate) fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Bytes are gathered in memory and written with one blocking call per MiB, and one at
/// the end that also syncs (and, for a verified whole file, renames): a thread hand-off
/// per network chunk or per file operation cost more than the writing. Memory stays
/// bounded by the buffer, whatever the file's size.
struct LocalWriter {
    store: LocalStore,
    path: PathBuf,
    /// The upload's length when this writer began.
    start: u64,
    /// The upload's length once the buffer is written.
    len: u64,
    buf: EntryBuf,
}

/// Bytes gathered before a write to disk.
const WRITE_BUFFER: usize = 1 << 20;

/// Appends `bytes` to the file at `path` (created if missing), which must hold
/// `expected` bytes; then syncs it if `durable`, and moves it to `target` (syncing the
/// target's directory) if one is given.
fn append_blocking(
    path: &Path,
    expected: u64,
    bytes: &[u8],
    durable: bool,
    target: Option<&Path>,
) -> io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.append(true).create(true);
    // An upload's bytes are a household's photo: private from the first byte.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(path)?;
    let held = file.metadata()?.len();
    if held != expected {
        return Err(io::Error::other(OffsetMoved { held, expected }));
    }
    file.write_all(bytes)?;
    if durable || target.is_some() {
        file.sync_data()?;
    }
    if let Some(target) = target {
        move_synced(path, target)?;
    }
    Ok(())
}

/// A hex SHA-256 as the 32 bytes packs are keyed by.
fn sha_of(sha256: &str) -> io::Result<[u8; 32]> {
    packs::sha_bytes(sha256)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad sha256"))
}

/// Checks that an upload whose bytes all arrived in memory has none on disk (a stale
/// offset is refused as in [`append_blocking`]), and removes its empty file if one was
/// made.
fn unused_upload(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > 0 => Err(io::Error::other(OffsetMoved {
            held: m.len(),
            expected: 0,
        })),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Renames `from` to `to`, creating and syncing `to`'s directory, so the name survives
/// a power cut.
fn move_synced(from: &Path, to: &Path) -> io::Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    // The shard directories exist from the start (`LocalStore::new`); one removed since
    // is made again.
    if let Err(e) = std::fs::rename(from, to) {
        if e.kind() != io::ErrorKind::NotFound || !from.exists() {
            return Err(e);
        }
        std::fs::create_dir_all(dir)?;
        std::fs::rename(from, to)?;
    }
    std::fs::File::open(dir)?.sync_all()
}

impl LocalWriter {
    /// Writes the buffer out on a blocking thread (see [`append_blocking`]).
    async fn flush(&mut self, durable: bool, target: Option<PathBuf>) -> io::Result<()> {
        let path = self.path.clone();
        let bytes = std::mem::take(&mut self.buf);
        let expected = self.len - bytes.len() as u64;
        let mut bytes = tokio::task::spawn_blocking(move || -> io::Result<EntryBuf> {
            append_blocking(&path, expected, bytes.body(), durable, target.as_deref())?;
            Ok(bytes)
        })
        .await
        .map_err(io::Error::other)??;
        bytes.clear();
        self.buf = bytes;
        Ok(())
    }
}

#[async_trait::async_trait]
impl UploadWriter for LocalWriter {
    fn expect(&mut self, remaining: u64) {
        // A file that will be held whole (no more than the buffer's size) is gathered
        // as its pack entry; a bigger one grows and writes out the buffer as before.
        if let Ok(room) = usize::try_from(remaining)
            && room <= WRITE_BUFFER
        {
            self.buf.reserve_entry(room);
        }
    }

    async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(chunk);
        self.len += chunk.len() as u64;
        if self.buf.len() >= WRITE_BUFFER {
            self.flush(false, None).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> io::Result<u64> {
        self.flush(true, None).await?;
        Ok(self.len)
    }

    async fn finish_as_blob(mut self: Box<Self>, sha256: &str) -> io::Result<u64> {
        if self.start == 0 && self.buf.len() as u64 == self.len {
            // The whole file is in memory: it goes to a pack, written directly into
            // space made ready and synced with whichever photos arrive meanwhile.
            let sha = sha_of(sha256)?;
            unused_upload(&self.path)?;
            let bytes = std::mem::take(&mut self.buf);
            self.store.packs.store(sha, bytes).await?;
            return Ok(self.len);
        }
        let target = self.store.blob_path(sha256)?;
        self.flush(true, Some(target)).await?;
        Ok(self.len)
    }

    async fn abandon(mut self: Box<Self>) -> io::Result<u64> {
        let unwritten = self.buf.len() as u64;
        if self.len - unwritten > self.start {
            self.store.truncate_path(&self.path, self.start).await?;
        }
        Ok(self.start)
    }
}

impl LocalStore {
    async fn truncate_path(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = tokio::fs::OpenOptions::new().write(true).open(path).await?;
        file.set_len(len).await?;
        file.sync_data().await
    }
}

#[async_trait::async_trait]
impl BlobStore for LocalStore {
    async fn upload_len(&self, upload: &str) -> io::Result<u64> {
        match tokio::fs::metadata(self.upload_path(upload)?).await {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    async fn append(&self, upload: &str, offset: u64) -> io::Result<Box<dyn UploadWriter>> {
        Ok(Box::new(LocalWriter {
            store: self.clone(),
            path: self.upload_path(upload)?,
            start: offset,
            len: offset,
            buf: EntryBuf::new(),
        }))
    }

    async fn truncate(&self, upload: &str, len: u64) -> io::Result<()> {
        self.truncate_path(&self.upload_path(upload)?, len).await
    }

    fn open_upload(&self, upload: &str) -> io::Result<Box<dyn ReadSeek>> {
        Ok(Box::new(std::io::BufReader::new(std::fs::File::open(
            self.upload_path(upload)?,
        )?)))
    }

    async fn commit(&self, upload: &str, sha256: &str) -> io::Result<()> {
        let target = self.blob_path(sha256)?;
        let source = self.upload_path(upload)?;
        tokio::task::spawn_blocking(move || move_synced(&source, &target))
            .await
            .map_err(io::Error::other)?
    }

    async fn discard(&self, upload: &str) -> io::Result<()> {
        match tokio::fs::remove_file(self.upload_path(upload)?).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    async fn read_blob(&self, sha256: &str) -> io::Result<Vec<u8>> {
        let path = self.blob_path(sha256)?;
        let sha = sha_of(sha256)?;
        let packs = self.packs.clone();
        // A file of its own first: a file uploaded again after its packed copy was
        // found damaged lands there (see `set_aside`).
        tokio::task::spawn_blocking(move || match std::fs::read(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => match packs.get(&sha)? {
                Some(bytes) => Ok(bytes),
                None => Err(e),
            },
            read => read,
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Moves the blob's own file, if any, to `DATA_DIR/damaged/<sha>`; a packed copy
    /// stays in its pack, out of the index, where a new upload of the file supersedes it.
    async fn set_aside(&self, sha256: &str) -> io::Result<()> {
        let path = self.blob_path(sha256)?;
        let aside = self.root.join("damaged");
        let target = aside.join(sha256);
        self.packs.forget(&sha_of(sha256)?)?;
        tokio::task::spawn_blocking(move || {
            create_private_dir_all(&aside)?;
            match std::fs::rename(&path, &target) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                moved => moved,
            }
        })
        .await
        .map_err(io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// The store's directories are the server user's alone, whatever the umask allowed.
    #[cfg(unix)]
    #[test]
    fn store_directories_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data").join("files");
        LocalStore::new(&root).unwrap();
        for d in [
            dir.path().join("data"),
            root.clone(),
            root.join("uploads"),
            root.join("blobs"),
            root.join("blobs").join("ab"),
            root.join("packs"),
        ] {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
    }

    /// A data directory others could enter (made by an earlier version) is tightened.
    #[cfg(unix)]
    #[test]
    fn an_open_data_directory_is_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        let fresh = dir.path().join("a").join("b");
        private_dir(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
    }

    #[tokio::test]
    async fn append_resume_truncate_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let id = "0123abcd-0000";
        assert_eq!(store.upload_len(id).await.unwrap(), 0, "created lazily");
        let mut w = store.append(id, 0).await.unwrap();
        w.write(b"hello ").await.unwrap();
        assert_eq!(w.finish().await.unwrap(), 6);
        let mut stale = store.append(id, 0).await.unwrap();
        stale.write(b"again").await.unwrap();
        let err = stale.finish().await.unwrap_err();
        assert_eq!(
            offset_moved(&err),
            Some(6),
            "a stale offset is refused: {err}"
        );
        let mut w = store.append(id, 6).await.unwrap();
        w.write(b"world!!").await.unwrap();
        w.finish().await.unwrap();
        store.truncate(id, 11).await.unwrap();
        assert_eq!(store.upload_len(id).await.unwrap(), 11);
        let sha = "a".repeat(64);
        store.commit(id, &sha).await.unwrap();
        assert_eq!(store.read_blob(&sha).await.unwrap(), b"hello world");
        assert!(store.upload_path("../etc").is_err());
        assert!(store.blob_path("../../x").is_err());
    }

    fn sha_hex(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    }

    #[tokio::test]
    async fn a_whole_file_in_one_request_goes_to_a_pack() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let mut w = store.append("beef", 0).await.unwrap();
        w.write(b"whole ").await.unwrap();
        w.write(b"file").await.unwrap();
        let sha = sha_hex(b"whole file");
        assert_eq!(w.finish_as_blob(&sha).await.unwrap(), 10);
        assert_eq!(store.read_blob(&sha).await.unwrap(), b"whole file");
        assert_eq!(store.upload_len("beef").await.unwrap(), 0, "no upload file");
        assert!(
            !store.blob_path(&sha).unwrap().exists(),
            "no file of its own"
        );
        drop(store);
        let reopened = LocalStore::new(dir.path()).unwrap();
        assert_eq!(reopened.read_blob(&sha).await.unwrap(), b"whole file");
    }

    #[tokio::test]
    async fn a_file_gathered_as_its_pack_entry_is_stored_or_resumed_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let photo: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
        let sha = sha_hex(&photo);
        // Told the size, sent whole: stored from the buffer it was gathered in.
        let mut w = store.append("cafe", 0).await.unwrap();
        w.expect(photo.len() as u64);
        for chunk in photo.chunks(16_384) {
            w.write(chunk).await.unwrap();
        }
        assert_eq!(w.finish_as_blob(&sha).await.unwrap(), 70_000);
        assert_eq!(store.read_blob(&sha).await.unwrap(), photo);
        // Told the size, cut short: what arrived is kept and the rest resumes after it.
        let other: Vec<u8> = photo.iter().map(|b| b ^ 0x5a).collect();
        let mut w = store.append("d00d", 0).await.unwrap();
        w.expect(other.len() as u64);
        w.write(&other[..30_000]).await.unwrap();
        assert_eq!(w.finish().await.unwrap(), 30_000);
        assert_eq!(store.upload_len("d00d").await.unwrap(), 30_000);
        let mut w = store.append("d00d", 30_000).await.unwrap();
        w.expect(40_000);
        w.write(&other[30_000..]).await.unwrap();
        let other_sha = sha_hex(&other);
        assert_eq!(w.finish_as_blob(&other_sha).await.unwrap(), 70_000);
        assert_eq!(store.read_blob(&other_sha).await.unwrap(), other);
        drop(store);
        let reopened = LocalStore::new(dir.path()).unwrap();
        assert_eq!(reopened.read_blob(&sha).await.unwrap(), photo);
        assert_eq!(reopened.read_blob(&other_sha).await.unwrap(), other);
    }

    #[tokio::test]
    async fn a_file_larger_than_the_buffer_is_moved_to_its_address() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let big = vec![5u8; WRITE_BUFFER + 10];
        let sha = sha_hex(&big);
        // A shard directory removed since the store opened is made again.
        std::fs::remove_dir(dir.path().join("blobs").join(&sha[..2])).unwrap();
        let mut w = store.append("f00d", 0).await.unwrap();
        w.write(&big).await.unwrap();
        assert_eq!(w.finish_as_blob(&sha).await.unwrap(), big.len() as u64);
        assert!(store.blob_path(&sha).unwrap().exists());
        assert!(store.read_blob(&sha).await.unwrap() == big);
        let missing = move_synced(&dir.path().join("nothing"), &store.blob_path(&sha).unwrap());
        assert!(
            missing.is_err(),
            "a missing source is an error, not a new directory"
        );
    }

    /// A copy set aside (found damaged) is neither served nor taken as held: the same
    /// file stored again, in a pack or a file of its own, is what is read.
    #[tokio::test]
    async fn a_copy_set_aside_gives_way_to_the_file_stored_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let big = vec![7u8; WRITE_BUFFER + 10];
        let small = b"a photo held whole in a pack".to_vec();
        for (id, bytes) in [("b1", &big), ("b2", &small)] {
            let sha = sha_hex(bytes);
            let mut w = store.append(id, 0).await.unwrap();
            w.write(bytes).await.unwrap();
            w.finish_as_blob(&sha).await.unwrap();
            store.set_aside(&sha).await.unwrap();
            let gone = store.read_blob(&sha).await.unwrap_err();
            assert_eq!(gone.kind(), io::ErrorKind::NotFound, "{id}");
            let mut w = store.append(&format!("{id}aa"), 0).await.unwrap();
            w.write(bytes).await.unwrap();
            w.finish_as_blob(&sha).await.unwrap();
            assert!(store.read_blob(&sha).await.unwrap() == *bytes, "{id}");
        }
        assert!(dir.path().join("damaged").join(sha_hex(&big)).exists());
    }

    #[tokio::test]
    async fn a_stale_whole_file_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let mut w = store.append("abba", 0).await.unwrap();
        w.write(b"part").await.unwrap();
        w.finish().await.unwrap();
        let mut stale = store.append("abba", 0).await.unwrap();
        stale.write(b"whole").await.unwrap();
        let err = stale.finish_as_blob(&sha_hex(b"whole")).await.unwrap_err();
        assert_eq!(offset_moved(&err), Some(4), "{err}");
    }

    #[tokio::test]
    async fn abandoned_bytes_are_dropped_whether_written_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let mut w = store.append("cafe", 0).await.unwrap();
        w.write(b"kept").await.unwrap();
        w.finish().await.unwrap();
        // Small: still in memory, nothing to undo.
        let mut w = store.append("cafe", 4).await.unwrap();
        w.write(b"bad chunk").await.unwrap();
        assert_eq!(w.abandon().await.unwrap(), 4);
        assert_eq!(store.upload_len("cafe").await.unwrap(), 4);
        // Larger than the buffer: partly on disk, cut back.
        let mut w = store.append("cafe", 4).await.unwrap();
        w.write(&vec![7u8; WRITE_BUFFER + 10]).await.unwrap();
        assert_eq!(w.abandon().await.unwrap(), 4);
        assert_eq!(store.upload_len("cafe").await.unwrap(), 4);
    }
}
