//! Where uploaded files live. One interface, [`BlobStore`]: uploads are appended to
//! (tus), then committed under their SHA-256. The default is a local directory; an
//! S3-compatible object store implements the same trait (an upload maps to a multipart
//! upload whose parts are the appended chunks, `commit` completes it under the
//! content-addressed key), so the services above never see which one is in use.

use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

/// Something that can be read and seeked, for image checks on a blocking thread.
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// Appends the chunks of one PATCH; `finish` makes them durable and returns the new length.
#[async_trait::async_trait]
pub trait UploadWriter: Send {
    async fn write(&mut self, chunk: &[u8]) -> io::Result<()>;
    async fn finish(self: Box<Self>) -> io::Result<u64>;
}

/// Storage of uploads in progress and of complete, content-addressed blobs.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Creates an empty upload.
    async fn create_upload(&self, upload: &str) -> io::Result<()>;
    /// Bytes held for an upload (the tus offset): the truth after any crash.
    async fn upload_len(&self, upload: &str) -> io::Result<u64>;
    /// A writer appending at `offset`, which must be the current length.
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
}

/// The default store: `DATA_DIR/uploads/<id>` while uploading, `DATA_DIR/blobs/ab/abcd…`
/// once verified.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store under `root` (created if missing).
    pub fn new(root: &Path) -> io::Result<LocalStore> {
        std::fs::create_dir_all(root.join("uploads"))?;
        std::fs::create_dir_all(root.join("blobs"))?;
        Ok(LocalStore {
            root: root.to_path_buf(),
        })
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

/// Bytes are gathered in memory and written with one blocking call per MiB (and one at
/// the end, with the fsync): a thread hand-off per network chunk cost more than the
/// writing. Memory stays bounded by the buffer, whatever the file's size.
struct LocalWriter {
    path: PathBuf,
    len: u64,
    buf: Vec<u8>,
}

/// Bytes gathered before a write to disk.
const WRITE_BUFFER: usize = 1 << 20;

impl LocalWriter {
    /// Appends the buffer to the file (checking it still ends where the buffer begins),
    /// optionally making it durable.
    async fn flush(&mut self, durable: bool) -> io::Result<()> {
        let path = self.path.clone();
        let bytes = std::mem::take(&mut self.buf);
        let expected = self.len - bytes.len() as u64;
        let mut bytes = tokio::task::spawn_blocking(move || -> io::Result<Vec<u8>> {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new().append(true).open(&path)?;
            let have = file.metadata()?.len();
            if have != expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("the upload holds {have} bytes, expected {expected}"),
                ));
            }
            file.write_all(&bytes)?;
            if durable {
                file.sync_data()?;
            }
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
    async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(chunk);
        self.len += chunk.len() as u64;
        if self.buf.len() >= WRITE_BUFFER {
            self.flush(false).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> io::Result<u64> {
        self.flush(true).await?;
        Ok(self.len)
    }
}

#[async_trait::async_trait]
impl BlobStore for LocalStore {
    async fn create_upload(&self, upload: &str) -> io::Result<()> {
        tokio::fs::File::create(self.upload_path(upload)?)
            .await
            .map(drop)
    }

    async fn upload_len(&self, upload: &str) -> io::Result<u64> {
        Ok(tokio::fs::metadata(self.upload_path(upload)?).await?.len())
    }

    async fn append(&self, upload: &str, offset: u64) -> io::Result<Box<dyn UploadWriter>> {
        let path = self.upload_path(upload)?;
        let len = tokio::fs::metadata(&path).await?.len();
        if len != offset {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("offset {offset} is not the upload's length {len}"),
            ));
        }
        Ok(Box::new(LocalWriter {
            path,
            len,
            buf: Vec::new(),
        }))
    }

    async fn truncate(&self, upload: &str, len: u64) -> io::Result<()> {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(self.upload_path(upload)?)
            .await?;
        file.set_len(len).await?;
        file.sync_data().await
    }

    fn open_upload(&self, upload: &str) -> io::Result<Box<dyn ReadSeek>> {
        Ok(Box::new(std::io::BufReader::new(std::fs::File::open(
            self.upload_path(upload)?,
        )?)))
    }

    async fn commit(&self, upload: &str, sha256: &str) -> io::Result<()> {
        let target = self.blob_path(sha256)?;
        let source = self.upload_path(upload)?;
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            let dir = target.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            std::fs::rename(&source, &target)?;
            std::fs::File::open(dir)?.sync_all()
        })
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
        tokio::fs::read(self.blob_path(sha256)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn append_resume_truncate_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let id = "0123abcd-0000";
        store.create_upload(id).await.unwrap();
        let mut w = store.append(id, 0).await.unwrap();
        w.write(b"hello ").await.unwrap();
        assert_eq!(w.finish().await.unwrap(), 6);
        assert!(
            store.append(id, 0).await.is_err(),
            "a stale offset is refused"
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
}
