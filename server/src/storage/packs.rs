//! Pack files: whole small files (a photo sent in one request) appended to one large
//! file, each behind a header naming its SHA-256 and length, as Haystack stores photos.
//!
//! One file per photo cost a new inode, a rename and two fsyncs (the file's and its
//! directory's) per photo. Appending to a pack costs one write, and concurrent writers
//! share one `fdatasync` (group commit, as for the database's log): a writer whose bytes
//! a running sync does not cover waits for it and runs the next, which covers every
//! append made meanwhile. The append is a write into the page cache, made in place
//! ([`Packs::place`]); the waiting is async ([`Packs::sync_upto`]), and only the fsync
//! itself goes to a blocking thread, so a photo costs no thread hand-off of its own
//! when another's sync covers it.
//!
//! Packs are self-describing, so the index (hash → place) is rebuilt when the store
//! opens; nothing else records where a file is. A pack is synced before the next one is
//! begun, so only the newest can end in a write a power cut tore: when opening, every
//! entry of the newest pack is checked against its hash and the pack is cut back to the
//! last whole one. An entry is only ever acknowledged after the sync that covers it.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// The start of every entry: `MAGIC`, the SHA-256 of the body (32 bytes), the body's
/// length (u64, little-endian), then the body.
const MAGIC: &[u8; 4] = b"BFP1";
const HEADER: u64 = 4 + 32 + 8;
/// Past this size a pack is synced and closed, and the next one begun: bounds what the
/// check on opening reads.
const DEFAULT_PACK_LIMIT: u64 = 256 << 20;

/// Where one file's bytes are.
#[derive(Debug, Clone, Copy)]
struct Entry {
    pack: u32,
    /// Of the body, past the header.
    offset: u64,
    len: u64,
}

/// The pack being appended to.
#[derive(Debug)]
struct Tail {
    number: u32,
    file: Arc<File>,
    len: u64,
}

/// A sync to run: the tail pack's file, and its number and length when taken.
type ToSync = (Arc<File>, (u32, u64));

/// How far the newest pack is known to be on disk.
#[derive(Debug)]
struct Synced {
    number: u32,
    upto: u64,
}

/// The packs of one directory; see the module documentation.
#[derive(Debug)]
pub struct Packs {
    dir: PathBuf,
    limit: u64,
    index: RwLock<HashMap<[u8; 32], Entry>>,
    tail: Mutex<Tail>,
    /// Held while a sync runs (async: those waiting for it wait as tasks, not threads).
    synced: tokio::sync::Mutex<Synced>,
    fsyncs: AtomicU64,
    /// Held while open: one process at a time appends to a directory's packs.
    _owner: File,
}

/// How long opening waits for another process (or a store being dropped) to let go of
/// the packs.
const OWNER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Takes the directory's lock file, waiting up to [`OWNER_WAIT`].
fn take_ownership(dir: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("lock"))?;
    let deadline = std::time::Instant::now() + OWNER_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "the photo packs in {} are in use by another process",
                        dir.display()
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> io::Result<MutexGuard<'_, T>> {
    m.lock().map_err(|_| io::Error::other("pack lock poisoned"))
}

fn pack_name(number: u32) -> String {
    format!("{number:08}.pack")
}

fn pack_number(name: &str) -> Option<u32> {
    name.strip_suffix(".pack")
        .filter(|n| n.len() == 8)
        .and_then(|n| n.parse().ok())
}

/// A SHA-256 in hex as its 32 bytes.
pub fn sha_bytes(sha256: &str) -> Option<[u8; 32]> {
    hex::decode(sha256).ok()?.try_into().ok()
}

impl Packs {
    /// Opens (or creates) the packs under `dir`, rebuilding the index and cutting a torn
    /// end off the newest pack.
    pub fn open(dir: &Path) -> io::Result<Packs> {
        Packs::open_with_limit(dir, DEFAULT_PACK_LIMIT)
    }

    fn open_with_limit(dir: &Path, limit: u64) -> io::Result<Packs> {
        std::fs::create_dir_all(dir)?;
        let owner = take_ownership(dir)?;
        let mut numbers: Vec<u32> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok()?.file_name().to_str().and_then(pack_number))
            .collect();
        numbers.sort_unstable();
        let mut index = HashMap::new();
        let newest = numbers.last().copied().unwrap_or(0);
        for &number in &numbers {
            let path = dir.join(pack_name(number));
            let whole = scan(&path, number, number == newest, &mut index)?;
            if number == newest && whole < std::fs::metadata(&path)?.len() {
                let file = std::fs::OpenOptions::new().write(true).open(&path)?;
                file.set_len(whole)?;
                file.sync_all()?;
            }
        }
        let (file, len) = open_pack(dir, newest)?;
        Ok(Packs {
            dir: dir.to_path_buf(),
            limit,
            index: RwLock::new(index),
            tail: Mutex::new(Tail {
                number: newest,
                file,
                len,
            }),
            synced: tokio::sync::Mutex::new(Synced {
                number: newest,
                upto: len,
            }),
            fsyncs: AtomicU64::new(0),
            _owner: owner,
        })
    }

    /// Appends `bytes` (whose SHA-256 the caller verified) unless the packs hold that
    /// file already, and returns once it is on disk. Blocking: call off the async
    /// workers (or use [`Packs::place`] and [`Packs::sync_upto`]).
    pub fn put(&self, sha: &[u8; 32], bytes: &[u8]) -> io::Result<()> {
        let (number, end) = self.place(sha, bytes)?;
        let synced = self.synced.blocking_lock();
        self.sync_locked(synced, number, end)
    }

    /// Appends `bytes` (whose SHA-256 the caller verified) unless the packs hold that
    /// file already; returns the pack and the end of its entry, for [`Packs::sync_upto`].
    /// A write into the page cache, short enough for an async worker; once a pack (every
    /// 256 MiB) it also syncs the full pack and begins the next.
    pub fn place(&self, sha: &[u8; 32], bytes: &[u8]) -> io::Result<(u32, u64)> {
        let mut tail = lock(&self.tail)?;
        let held = self.read_index()?.get(sha).copied();
        match held {
            Some(e) => Ok((e.pack, e.offset + e.len)),
            None => self.append(&mut tail, sha, bytes),
        }
    }

    /// Writes one entry at the end of the tail pack (beginning a new pack when it is
    /// full); returns the pack and the end of the entry.
    fn append(&self, tail: &mut Tail, sha: &[u8; 32], bytes: &[u8]) -> io::Result<(u32, u64)> {
        if tail.len >= self.limit {
            // The full pack is made durable before any entry goes to the next, so only
            // the newest pack can hold a torn write.
            tail.file.sync_data()?;
            let number = tail.number + 1;
            let (file, len) = open_pack(&self.dir, number)?;
            sync_dir(&self.dir)?;
            *tail = Tail { number, file, len };
        }
        let mut header = [0u8; HEADER as usize];
        header[..4].copy_from_slice(MAGIC);
        header[4..36].copy_from_slice(sha);
        header[36..].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        // Header and body written apart, so the body is not copied into a new buffer
        // first. A failed write leaves `len` where it was: the next entry overwrites the
        // rest (and a torn entry fails its hash check on opening).
        tail.file.write_all_at(&header, tail.len)?;
        tail.file.write_all_at(bytes, tail.len + HEADER)?;
        let placed = Entry {
            pack: tail.number,
            offset: tail.len + HEADER,
            len: bytes.len() as u64,
        };
        tail.len += HEADER + bytes.len() as u64;
        self.index
            .write()
            .map_err(|_| io::Error::other("pack index poisoned"))?
            .insert(*sha, placed);
        Ok((tail.number, tail.len))
    }

    /// Returns once pack `number` is on disk up to `end`: at once if a sync covered it,
    /// else after waiting for the running sync and, if that one did not cover it, running
    /// the next (which covers everything appended until then) on a blocking thread.
    pub async fn sync_upto(&self, number: u32, end: u64) -> io::Result<()> {
        let mut synced = self.synced.lock().await;
        let Some(file) = self.to_sync(&synced, number, end)? else {
            return Ok(());
        };
        let (tail_number, len) = file.1;
        tokio::task::spawn_blocking(move || file.0.sync_data())
            .await
            .map_err(io::Error::other)??;
        self.synced_to(&mut synced, tail_number, len);
        Ok(())
    }

    /// [`Packs::sync_upto`] on the calling thread, with the sync lock taken.
    fn sync_locked(
        &self,
        mut synced: tokio::sync::MutexGuard<'_, Synced>,
        number: u32,
        end: u64,
    ) -> io::Result<()> {
        let Some((file, (tail_number, len))) = self.to_sync(&synced, number, end)? else {
            return Ok(());
        };
        file.sync_data()?;
        self.synced_to(&mut synced, tail_number, len);
        Ok(())
    }

    /// The tail pack to sync and what the sync will cover, or `None` if a sync covered
    /// pack `number` up to `end` already.
    fn to_sync(&self, synced: &Synced, number: u32, end: u64) -> io::Result<Option<ToSync>> {
        if synced.number > number || (synced.number == number && synced.upto >= end) {
            return Ok(None);
        }
        let tail = lock(&self.tail)?;
        if tail.number > number {
            // Closed (and synced) when the next pack was begun; the newer pack's own
            // entries are covered only by a sync of that pack.
            return Ok(None);
        }
        Ok(Some((tail.file.clone(), (tail.number, tail.len))))
    }

    fn synced_to(&self, synced: &mut Synced, number: u32, upto: u64) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        *synced = Synced { number, upto };
    }

    fn read_index(&self) -> io::Result<std::sync::RwLockReadGuard<'_, HashMap<[u8; 32], Entry>>> {
        self.index
            .read()
            .map_err(|_| io::Error::other("pack index poisoned"))
    }

    /// The bytes of the file `sha`, if a pack holds it, checked against the hash.
    /// Blocking.
    pub fn get(&self, sha: &[u8; 32]) -> io::Result<Option<Vec<u8>>> {
        let Some(e) = self.read_index()?.get(sha).copied() else {
            return Ok(None);
        };
        let file = File::open(self.dir.join(pack_name(e.pack)))?;
        let mut bytes = vec![0; usize::try_from(e.len).map_err(io::Error::other)?];
        file.read_exact_at(&mut bytes, e.offset)?;
        if Sha256::digest(&bytes).as_slice() != sha {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a packed file does not match its hash",
            ));
        }
        Ok(Some(bytes))
    }

    /// How many fsyncs the packs did (fewer than puts when puts share them).
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }
}

/// Opens pack `number` for appending (created if missing); returns it and its length.
fn open_pack(dir: &Path, number: u32) -> io::Result<(Arc<File>, u64)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(pack_name(number)))?;
    let len = file.metadata()?.len();
    Ok((Arc::new(file), len))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads the entries of one pack into `index` and returns where the whole entries end:
/// at the end of the file, or where a header or body is cut short (or, if `verify`, a
/// body does not match its hash).
fn scan(
    path: &Path,
    number: u32,
    verify: bool,
    index: &mut HashMap<[u8; 32], Entry>,
) -> io::Result<u64> {
    let total = std::fs::metadata(path)?.len();
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut at = 0u64;
    let mut header = [0u8; HEADER as usize];
    while at + HEADER <= total {
        reader.read_exact(&mut header)?;
        let (magic, rest) = header.split_at(4);
        let (sha, len) = rest.split_at(32);
        let len = u64::from_le_bytes(len.try_into().map_err(io::Error::other)?);
        let body = at + HEADER;
        if magic != MAGIC || len > total - body {
            break;
        }
        let sha: [u8; 32] = sha.try_into().map_err(io::Error::other)?;
        if verify {
            let mut hasher = Sha256::new();
            let copied = io::copy(&mut (&mut reader).take(len), &mut HashWriter(&mut hasher))?;
            if copied != len || hasher.finalize().as_slice() != sha {
                break;
            }
        } else {
            reader.seek_relative(i64::try_from(len).map_err(io::Error::other)?)?;
        }
        index.insert(
            sha,
            Entry {
                pack: number,
                offset: body,
                len,
            },
        );
        at = body + len;
    }
    Ok(at)
}

/// Feeds `io::copy` into a hasher.
struct HashWriter<'a>(&'a mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sha(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    #[test]
    fn files_come_back_after_reopening_and_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::open(dir.path()).unwrap();
        let (a, b) = (b"first photo".to_vec(), vec![7u8; 100_000]);
        packs.put(&sha(&a), &a).unwrap();
        packs.put(&sha(&b), &b).unwrap();
        packs.put(&sha(&a), &a).unwrap();
        assert_eq!(packs.get(&sha(&a)).unwrap().unwrap(), a);
        assert_eq!(packs.get(&sha(b"absent")).unwrap(), None);
        let size = std::fs::metadata(dir.path().join(pack_name(0)))
            .unwrap()
            .len();
        assert_eq!(
            size,
            2 * HEADER + (a.len() + b.len()) as u64,
            "a is held once"
        );
        drop(packs);
        let packs = Packs::open(dir.path()).unwrap();
        assert_eq!(packs.get(&sha(&b)).unwrap().unwrap(), b, "index rebuilt");
    }

    #[test]
    fn a_torn_end_is_cut_off_and_earlier_files_survive() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::open(dir.path()).unwrap();
        let (a, b) = (vec![1u8; 5000], vec![2u8; 5000]);
        packs.put(&sha(&a), &a).unwrap();
        packs.put(&sha(&b), &b).unwrap();
        drop(packs);
        let path = dir.path().join(pack_name(0));
        let full = std::fs::metadata(&path).unwrap().len();
        // A power cut in the middle of b's body.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(full - 100).unwrap();
        let packs = Packs::open(dir.path()).unwrap();
        assert_eq!(packs.get(&sha(&a)).unwrap().unwrap(), a);
        assert_eq!(packs.get(&sha(&b)).unwrap(), None, "the torn file is gone");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER + 5000);
        // b's blocks reached the disk as zeros: its hash does not match; cut off too.
        packs.put(&sha(&b), &b).unwrap();
        drop(packs);
        file.write_all_at(&[0u8; 64], HEADER + 5000 + HEADER + 10)
            .unwrap();
        let packs = Packs::open(dir.path()).unwrap();
        assert_eq!(packs.get(&sha(&b)).unwrap(), None);
        packs.put(&sha(&b), &b).unwrap();
        assert_eq!(packs.get(&sha(&b)).unwrap().unwrap(), b, "sent again, kept");
    }

    #[test]
    fn full_packs_are_closed_and_a_new_one_begun() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Arc::new(Packs::open_with_limit(dir.path(), 50_000).unwrap());
        let files: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 10_000]).collect();
        std::thread::scope(|s| {
            for chunk in files.chunks(8) {
                let packs = packs.clone();
                s.spawn(move || {
                    for f in chunk {
                        packs.put(&sha(f), f).unwrap();
                    }
                });
            }
        });
        for f in &files {
            assert_eq!(&packs.get(&sha(f)).unwrap().unwrap(), f);
        }
        let count = std::fs::read_dir(dir.path()).unwrap().count() - 1;
        assert!(
            count >= 10,
            "64 files of 10 kB in packs of 50 kB: {count} packs"
        );
        drop(packs);
        let packs = Packs::open(dir.path()).unwrap();
        assert!(files.iter().all(|f| packs.get(&sha(f)).unwrap().is_some()));
    }

    #[test]
    fn puts_waiting_for_a_sync_share_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Arc::new(Packs::open(dir.path()).unwrap());
        let files: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 1000]).collect();
        // A sync is running (its lock is held) while four puts append.
        let running = packs.synced.blocking_lock();
        let writers: Vec<_> = files
            .iter()
            .cloned()
            .map(|f| {
                let packs = packs.clone();
                std::thread::spawn(move || packs.put(&sha(&f), &f).unwrap())
            })
            .collect();
        while packs.tail.lock().unwrap().len < 4 * (HEADER + 1000) {
            std::thread::yield_now();
        }
        drop(running);
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(packs.fsyncs(), 1, "the first to sync covered all four");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn photos_placed_while_a_sync_runs_share_the_next_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Arc::new(Packs::open(dir.path()).unwrap());
        let files: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 1000]).collect();
        let running = packs.synced.lock().await;
        let writers: Vec<_> = files
            .iter()
            .cloned()
            .map(|f| {
                let packs = packs.clone();
                tokio::spawn(async move {
                    let (number, end) = packs.place(&sha(&f), &f).unwrap();
                    packs.sync_upto(number, end).await.unwrap();
                })
            })
            .collect();
        while packs.tail.lock().unwrap().len < 4 * (HEADER + 1000) {
            tokio::task::yield_now().await;
        }
        drop(running);
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(packs.fsyncs(), 1, "the first to sync covered all four");
        // A file placed again is found, not appended twice.
        let (_, end) = packs.place(&sha(&files[0]), &files[0]).unwrap();
        assert_eq!(end, HEADER + 1000);
        assert_eq!(packs.tail.lock().unwrap().len, 4 * (HEADER + 1000));
        drop(packs);
        let packs = Packs::open(dir.path()).unwrap();
        for f in &files {
            assert_eq!(packs.get(&sha(f)).unwrap().as_deref(), Some(f.as_slice()));
        }
    }

    #[test]
    fn one_store_at_a_time_appends() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::open(dir.path()).unwrap();
        let waiting = std::thread::spawn({
            let dir = dir.path().to_path_buf();
            move || Packs::open(&dir).map(drop)
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(packs);
        assert!(
            waiting.join().unwrap().is_ok(),
            "opened once the first let go"
        );
    }

    #[test]
    fn a_corrupted_file_is_refused_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::open(dir.path()).unwrap();
        let a = vec![9u8; 1000];
        packs.put(&sha(&a), &a).unwrap();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(pack_name(0)))
            .unwrap();
        file.write_all_at(b"rot", HEADER + 10).unwrap();
        let err = packs.get(&sha(&a)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
