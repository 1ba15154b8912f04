//! Pack files: whole small files (a photo sent in one request) appended to one large
//! file, each behind a header naming its SHA-256 and length, as Haystack stores photos.
//!
//! One file per photo cost a new inode, a rename and two fsyncs (the file's and its
//! directory's) per photo. Appending to a pack costs one write, and concurrent writers
//! share one `fdatasync` (group commit, as for the database's log): a writer whose bytes
//! a running sync does not cover waits for it and runs the next, which covers every
//! entry written meanwhile.
//!
//! Entries are written into space made ready ahead of them, with direct I/O. A write
//! that grows a file costs the kernel a block allocation and a new page-cache page per
//! 4 KiB, and its `fdatasync` must write the inode too; a buffered write copies the
//! photo into the page cache first. So a background thread writes zeros ahead of the
//! tail (1 MiB at first, doubling to 32 MiB) and syncs them, and each entry, padded to
//! 4 KiB, overwrites that space with `O_DIRECT`: the device reads the photo from the
//! request's own buffer, and the `fdatasync` is a cache flush. Measured on the reference
//! VM, a 100 KB photo costs ~45 µs of CPU and ~140 µs until durable this way, against
//! ~110 µs and ~270 µs appended through the page cache. Where the filesystem refuses
//! direct I/O (tmpfs) the same entries are written through the page cache.
//!
//! Packs are self-describing, so the index (hash → place) is rebuilt when the store
//! opens; nothing else records where a file is. A pack is synced before the next one is
//! begun, so only the newest can end in a write a power cut tore: when opening, every
//! entry of the newest pack is checked against its hash and the pack is cut back to the
//! last whole one (the zeros made ready past it are cut too, and made again). An entry
//! is only ever acknowledged after the sync that covers it.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

/// The start of every entry: `MAGIC`, the SHA-256 of the body (32 bytes), the body's
/// length (u64, little-endian), then the body.
const MAGIC: &[u8; 4] = b"BFP1";
const HEADER: u64 = 4 + 32 + 8;
/// Entries begin at multiples of this (direct I/O wants offsets, lengths and buffers
/// aligned to the device's block; 4 KiB suits every block size). Packs written before
/// entries were aligned hold them back to back; both read the same.
const ALIGN: u64 = 4096;
/// Past this size a pack is synced and closed, and the next one begun: bounds what the
/// check on opening reads.
const DEFAULT_PACK_LIMIT: u64 = 256 << 20;
/// The first space made ready in a pack; each later stretch doubles, up to
/// [`MOST_AHEAD`], so a small store holds little unused space.
const FIRST_AHEAD: u64 = 1 << 20;
const MOST_AHEAD: u64 = 32 << 20;
/// Zeros written per call while making space ready.
const ZERO_CHUNK: usize = 1 << 20;

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
    /// Through the page cache: syncs, and writes where direct I/O is refused.
    file: Arc<File>,
    /// The same file opened with `O_DIRECT`, where the filesystem allows it.
    direct: Option<Arc<File>>,
    /// Where the next entry goes (a multiple of [`ALIGN`]).
    len: u64,
    /// The file is written (zeros or entries) and synced up to here: entries below it
    /// overwrite space that exists.
    ready: u64,
    /// Space is being made ready past `ready` (by [`Tail::extender`]).
    extending: bool,
    /// Making space ready failed: entries go past `ready`, growing the file.
    no_room_ahead: bool,
    extender: Option<std::thread::JoinHandle<()>>,
}

/// The tail and the signal that space was made ready.
#[derive(Debug, Default)]
struct TailLock {
    tail: Mutex<Option<Tail>>,
    ready: Condvar,
}

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
    tail: Arc<TailLock>,
    /// Held while a sync runs: those waiting for it wait on the lock.
    synced: Mutex<Synced>,
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
        .mode(0o600)
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

/// The space to make ready past `ready`: doubling from [`FIRST_AHEAD`] to
/// [`MOST_AHEAD`].
fn stretch(ready: u64) -> u64 {
    ready.clamp(FIRST_AHEAD, MOST_AHEAD)
}

/// `n` rounded up to a multiple of [`ALIGN`].
fn align_up(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

/// A SHA-256 in hex as its 32 bytes.
pub fn sha_bytes(sha256: &str) -> Option<[u8; 32]> {
    hex::decode(sha256).ok()?.try_into().ok()
}

/// A buffer whose bytes `start..start + len` begin at an address aligned for direct I/O
/// (found with `align_offset`, so no unsafe allocation is needed).
struct Aligned {
    bytes: Vec<u8>,
    start: usize,
    len: usize,
}

/// A buffer with room for `len` bytes from its first address aligned for direct I/O,
/// holding zeros up to that address; and where that address is.
fn aligned_vec(len: usize) -> (Vec<u8>, usize) {
    let align = ALIGN as usize;
    let mut bytes: Vec<u8> = Vec::with_capacity(len.saturating_add(align));
    let start = bytes.as_ptr().align_offset(align).min(align);
    bytes.resize(start, 0);
    (bytes, start)
}

/// The bytes an entry of a `body`-byte file takes: header, body and padding.
fn entry_size(body: usize) -> usize {
    usize::try_from(align_up(HEADER + body as u64)).unwrap_or(usize::MAX)
}

/// An entry's header: magic, the file's SHA-256, its length.
fn header(sha: &[u8; 32], body: usize) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[..4].copy_from_slice(MAGIC);
    h[4..36].copy_from_slice(sha);
    h[36..].copy_from_slice(&(body as u64).to_le_bytes());
    h
}

impl Aligned {
    /// `len` bytes (a multiple of [`ALIGN`]) made by `fill`, zeros past what it writes.
    fn new(len: usize, fill: impl FnOnce(&mut Vec<u8>)) -> Aligned {
        let (mut bytes, start) = aligned_vec(len);
        fill(&mut bytes);
        bytes.resize(start + len, 0);
        Aligned { bytes, start, len }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }

    /// Whether the address suits direct I/O (`align_offset` may decline to say).
    fn is_aligned(&self) -> bool {
        self.as_slice().as_ptr().align_offset(ALIGN as usize) == 0
    }
}

/// The bytes of one file, gathered where its pack entry can be written from: after room
/// for the entry's header, at a direct-I/O alignment, once [`EntryBuf::reserve_entry`]
/// was told the file's size. Why: a photo received whole is then stored without
/// copying it again, and its buffer is never regrown chunk by chunk (together ~3 copies
/// of each photo, and the allocator's work for each regrowth).
#[derive(Debug, Default)]
pub struct EntryBuf {
    bytes: Vec<u8>,
    /// Where the body begins in `bytes` (0 without room for a header).
    body: usize,
}

impl EntryBuf {
    /// An empty buffer; it grows as bytes come, with no room for a header.
    pub fn new() -> EntryBuf {
        EntryBuf::default()
    }

    /// Makes room, once and while empty, for a body of up to `len` bytes and the entry
    /// around it, so that many bytes arrive without a reallocation.
    pub fn reserve_entry(&mut self, len: usize) {
        if !self.is_empty() {
            return;
        }
        let (mut bytes, start) = aligned_vec(entry_size(len));
        self.body = start + HEADER as usize;
        bytes.resize(self.body, 0);
        self.bytes = bytes;
    }

    /// Appends `chunk` to the body.
    pub fn extend_from_slice(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
    }

    /// The body gathered so far.
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.body..]
    }

    /// Bytes of body gathered.
    pub fn len(&self) -> usize {
        self.bytes.len() - self.body
    }

    /// Whether no body was gathered yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the body, keeping the memory (and the room for a header).
    pub fn clear(&mut self) {
        self.bytes.truncate(self.body);
    }

    /// The entry for file `sha`: header written into the room before the body and zeros
    /// after it, in place when the buffer was reserved for it (and still aligned);
    /// otherwise copied as [`entry_bytes`] does.
    fn into_entry(mut self, sha: &[u8; 32]) -> Aligned {
        let len = self.len();
        let Some(start) = self.body.checked_sub(HEADER as usize) else {
            return entry_bytes(sha, self.body());
        };
        let size = entry_size(len);
        let fits = self.bytes.capacity() >= start + size;
        if !fits || self.bytes[start..].as_ptr().align_offset(ALIGN as usize) != 0 {
            return entry_bytes(sha, self.body());
        }
        self.bytes[start..self.body].copy_from_slice(&header(sha, len));
        self.bytes.resize(start + size, 0);
        Aligned {
            bytes: self.bytes,
            start,
            len: size,
        }
    }
}

/// One entry as written: header, body, zeros up to the next multiple of [`ALIGN`].
fn entry_bytes(sha: &[u8; 32], body: &[u8]) -> Aligned {
    Aligned::new(entry_size(body.len()), |b| {
        b.extend_from_slice(&header(sha, body.len()));
        b.extend_from_slice(body);
    })
}

impl Tail {
    /// Pack `number` (created if missing) as the tail: opened through the page cache
    /// and, where the filesystem allows, with `O_DIRECT`; entries go at its end, with
    /// no space made ready yet.
    fn open(dir: &Path, number: u32) -> io::Result<Tail> {
        let path = dir.join(pack_name(number));
        // The households' photos and signatures: the server's user's alone (QA s23d F7).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        let direct = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .ok()
            .map(Arc::new);
        let len = file.metadata()?.len();
        Ok(Tail {
            number,
            file: Arc::new(file),
            direct,
            len,
            ready: len,
            extending: false,
            no_room_ahead: false,
            extender: None,
        })
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
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
            if number == newest {
                cut_back(&path, whole)?;
            }
        }
        let mut tail = Tail::open(dir, newest)?;
        let packs = Packs {
            dir: dir.to_path_buf(),
            limit,
            index: RwLock::new(index),
            tail: Arc::new(TailLock::default()),
            synced: Mutex::new(Synced {
                number: newest,
                upto: tail.len,
            }),
            fsyncs: AtomicU64::new(0),
            _owner: owner,
        };
        packs.make_room(&mut tail);
        *lock(&packs.tail.tail)? = Some(tail);
        Ok(packs)
    }

    /// Writes `bytes` (whose SHA-256 the caller verified) unless the packs hold that
    /// file already, and returns once it is on disk. Blocking (a direct write waits for
    /// the device): call it on a blocking thread, or use [`Packs::store`].
    pub fn put(&self, sha: &[u8; 32], bytes: &[u8]) -> io::Result<()> {
        self.put_entry(sha, bytes.len() as u64, &entry_bytes(sha, bytes))
    }

    fn put_entry(&self, sha: &[u8; 32], len: u64, entry: &Aligned) -> io::Result<()> {
        let (number, end) = self.place(sha, len, entry)?;
        self.sync_upto(number, end)
    }

    /// [`Packs::put`] of the body of `buf` on a blocking thread, written from `buf`
    /// itself when it was reserved for the entry (see [`EntryBuf`]).
    pub async fn store(self: &Arc<Self>, sha: [u8; 32], buf: EntryBuf) -> io::Result<()> {
        let packs = self.clone();
        tokio::task::spawn_blocking(move || {
            let len = buf.len() as u64;
            packs.put_entry(&sha, len, &buf.into_entry(&sha))
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Writes the entry unless the packs hold the file already; returns the pack and
    /// the end of the entry, for [`Packs::sync_upto`]. Entries are written one at a
    /// time, in the order of their places, so a sync of the tail covers every entry
    /// below the tail's length.
    fn place(&self, sha: &[u8; 32], len: u64, entry: &Aligned) -> io::Result<(u32, u64)> {
        let mut guard = lock(&self.tail.tail)?;
        if let Some(e) = self.read_index()?.get(sha).copied() {
            return Ok((e.pack, e.offset + e.len));
        }
        let size = entry.len as u64;
        loop {
            let tail = guard
                .as_mut()
                .ok_or_else(|| io::Error::other("the packs are closed"))?;
            if tail.len >= self.limit && !tail.extending {
                self.begin_next(tail)?;
            }
            if tail.len + size <= tail.ready || tail.no_room_ahead {
                break;
            }
            if !tail.extending {
                self.extend(tail, size);
            }
            guard = self
                .tail
                .ready
                .wait(guard)
                .map_err(|_| io::Error::other("pack lock poisoned"))?;
        }
        let tail = guard
            .as_mut()
            .ok_or_else(|| io::Error::other("the packs are closed"))?;
        let at = tail.len;
        write_entry(tail, entry, at)?;
        tail.len = at + size;
        self.index
            .write()
            .map_err(|_| io::Error::other("pack index poisoned"))?
            .insert(
                *sha,
                Entry {
                    pack: tail.number,
                    offset: at + HEADER,
                    len,
                },
            );
        self.make_room(tail);
        Ok((tail.number, tail.len))
    }

    /// Syncs the full tail pack and begins the next: the full pack is durable before
    /// any entry goes to the next, so only the newest pack can hold a torn write.
    fn begin_next(&self, tail: &mut Tail) -> io::Result<()> {
        tail.file.sync_data()?;
        // Space is not being made ready (`extending` is off): a zero-filler left is done.
        *tail = Tail::open(&self.dir, tail.number + 1)?;
        sync_dir(&self.dir)?;
        Ok(())
    }

    /// Begins making space ready when less than half the last stretch is left.
    fn make_room(&self, tail: &mut Tail) {
        let ahead = tail.ready.saturating_sub(tail.len);
        let wanted = !tail.extending && !tail.no_room_ahead && tail.ready < self.limit;
        if wanted && ahead < stretch(tail.ready) / 2 {
            self.extend(tail, 0);
        }
    }

    /// Writes zeros past the tail's ready space on a thread of its own, at least
    /// `needed` bytes, then syncs them (the file's new size with them) and says so.
    fn extend(&self, tail: &mut Tail, needed: u64) {
        if let Some(done) = tail.extender.take() {
            let _ = done.join();
        }
        let from = tail.ready.max(tail.len);
        // Doubling, but not far past the pack's limit (the zeros past its last entry
        // are cut when the store next opens).
        let stretch = stretch(tail.ready).min(self.limit.saturating_sub(from));
        let stretch = align_up(stretch).max(align_up(needed));
        let (number, file, direct) = (tail.number, tail.file.clone(), tail.direct.clone());
        let shared = self.tail.clone();
        tail.extending = true;
        let spawned = std::thread::Builder::new()
            .name("pack-ahead".into())
            .spawn(move || {
                let made = write_zeros(&file, direct.as_deref(), from, from + stretch)
                    .and_then(|()| file.sync_data());
                // Waiters are woken even if the lock was poisoned (they then fail on it).
                let mut guard = shared.tail.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(tail) = guard.as_mut().filter(|t| t.number == number) {
                    tail.extending = false;
                    match made {
                        Ok(()) => tail.ready = from + stretch,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot make space ready in a photo pack");
                            tail.no_room_ahead = true;
                        }
                    }
                }
                drop(guard);
                shared.ready.notify_all();
            });
        match spawned {
            Ok(handle) => tail.extender = Some(handle),
            Err(_) => {
                tail.extending = false;
                tail.no_room_ahead = true;
            }
        }
    }

    /// Returns once pack `number` is on disk up to `end`: at once if a sync covered it,
    /// else after waiting for the running sync and, if that one did not cover it,
    /// running the next (which covers every entry written until then).
    fn sync_upto(&self, number: u32, end: u64) -> io::Result<()> {
        let mut synced = lock(&self.synced)?;
        if synced.number > number || (synced.number == number && synced.upto >= end) {
            return Ok(());
        }
        let (file, tail_number, len) = {
            let guard = lock(&self.tail.tail)?;
            let tail = guard
                .as_ref()
                .ok_or_else(|| io::Error::other("the packs are closed"))?;
            if tail.number > number {
                // Closed (and synced) when the next pack was begun; the newer pack's
                // own entries are covered only by a sync of that pack.
                return Ok(());
            }
            (tail.file.clone(), tail.number, tail.len)
        };
        file.sync_data()?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        *synced = Synced {
            number: tail_number,
            upto: len,
        };
        Ok(())
    }

    fn read_index(&self) -> io::Result<std::sync::RwLockReadGuard<'_, HashMap<[u8; 32], Entry>>> {
        self.index
            .read()
            .map_err(|_| io::Error::other("pack index poisoned"))
    }

    /// Drops `sha` from the index: its packed copy was found damaged, and the same file
    /// stored again must be written anew, not taken as held. (After a restart the scan
    /// finds the damaged copy again until a new one is written after it, which the
    /// scan then prefers; a read meanwhile finds it damaged and forgets it again.)
    pub fn forget(&self, sha: &[u8; 32]) -> io::Result<()> {
        self.index
            .write()
            .map_err(|_| io::Error::other("pack index poisoned"))?
            .remove(sha);
        Ok(())
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

impl Drop for Packs {
    /// Waits for space being made ready: its zeros must not land after the next owner
    /// of the directory has cut the pack back and written entries there.
    fn drop(&mut self) {
        let handle = self
            .tail
            .tail
            .lock()
            .ok()
            .and_then(|mut t| t.as_mut().and_then(|t| t.extender.take()));
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// Writes one entry at `at`: directly when it overwrites ready space and the buffer is
/// aligned, else through the page cache (a direct write the filesystem refuses is
/// written so too, and direct I/O is not tried again in this pack).
fn write_entry(tail: &mut Tail, entry: &Aligned, at: u64) -> io::Result<()> {
    let fits = at + entry.len as u64 <= tail.ready;
    if let Some(direct) = tail.direct.as_ref().filter(|_| fits && entry.is_aligned()) {
        match direct.write_all_at(entry.as_slice(), at) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => tail.direct = None,
            Err(e) => return Err(e),
        }
    }
    tail.file.write_all_at(entry.as_slice(), at)
}

/// Writes zeros over `from..to` of a pack, directly where possible.
fn write_zeros(file: &File, direct: Option<&File>, from: u64, to: u64) -> io::Result<()> {
    let zeros = Aligned::new(ZERO_CHUNK, |_| {});
    let mut at = from;
    let mut direct = direct.filter(|_| zeros.is_aligned());
    while at < to {
        let n = usize::try_from((to - at).min(ZERO_CHUNK as u64)).map_err(io::Error::other)?;
        let chunk = &zeros.as_slice()[..n];
        match direct.map(|d| d.write_all_at(chunk, at)) {
            Some(Ok(())) => {}
            Some(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => {
                direct = None;
                file.write_all_at(chunk, at)?;
            }
            Some(Err(e)) => return Err(e),
            None => file.write_all_at(chunk, at)?,
        }
        at += n as u64;
    }
    Ok(())
}

/// Cuts the newest pack back to its whole entries (`whole`, where the scan stopped),
/// which drops a torn entry and the zeros made ready past the last one, and pads it to
/// [`ALIGN`] with zeros for the next entry.
fn cut_back(path: &Path, whole: u64) -> io::Result<()> {
    let len = std::fs::metadata(path)?.len();
    let next = align_up(whole);
    if len == next && whole == next {
        return Ok(());
    }
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(whole)?;
    file.set_len(next)?;
    file.sync_all()
}

/// Reads the entries of one pack into `index` and returns where the whole entries end:
/// at the zeros past the last one or the end of the file, or where a header or body is
/// cut short. With `verify`, an entry whose body does not match its hash is left out of
/// the index, and the scan goes on past it. An entry follows the
/// one before it directly (packs written before entries were aligned) or at the next
/// multiple of [`ALIGN`], past zeros.
fn scan(
    path: &Path,
    number: u32,
    verify: bool,
    index: &mut HashMap<[u8; 32], Entry>,
) -> io::Result<u64> {
    let total = std::fs::metadata(path)?.len();
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let (mut at, mut end) = (0u64, 0u64);
    // Where a run of entries not matching their hashes began, if nothing good follows:
    // a torn last write, whose space the next entry takes.
    let mut bad_from: Option<u64> = None;
    let mut header = [0u8; HEADER as usize];
    while at + HEADER <= total {
        reader.read_exact(&mut header)?;
        if !header.starts_with(MAGIC) && at % ALIGN != 0 {
            // Padding: the next entry, if any, begins at the next aligned place.
            let next = align_up(at);
            if next + HEADER > total {
                break;
            }
            // The header just read may reach past `next` (an entry ending fewer than
            // HEADER bytes before it): the seek goes back then (QA s22a F1, which
            // overflowed here and kept the server from starting).
            let (to, read) = (
                i64::try_from(next).map_err(io::Error::other)?,
                i64::try_from(at + HEADER).map_err(io::Error::other)?,
            );
            reader.seek_relative(to - read)?;
            at = next;
            reader.read_exact(&mut header)?;
        }
        let (magic, rest) = header.split_at(4);
        let (sha, len) = rest.split_at(32);
        let len = u64::from_le_bytes(len.try_into().map_err(io::Error::other)?);
        let body = at + HEADER;
        if magic != MAGIC || len > total - body {
            break;
        }
        let sha: [u8; 32] = sha.try_into().map_err(io::Error::other)?;
        let start = at;
        if verify {
            let mut hasher = Sha256::new();
            let copied = io::copy(&mut (&mut reader).take(len), &mut HashWriter(&mut hasher))?;
            if copied != len {
                break;
            }
            if hasher.finalize().as_slice() != sha {
                // Whole but not what its header names: a torn last write, or a damaged
                // entry among good ones. Left out of the index either way, and the scan
                // goes on: cutting the pack here would drop every entry after it, files
                // the database holds as stored (QA s26d F2). A read of it finds it gone
                // and its device is asked for it again.
                tracing::warn!(
                    pack = number,
                    offset = body,
                    "a packed file does not match its hash (a torn last write, or damage): left out of the index"
                );
                bad_from.get_or_insert(start);
                at = body + len;
                end = at;
                continue;
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
        end = at;
        bad_from = None;
    }
    Ok(bad_from.unwrap_or(end))
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

    /// Where the next entry goes.
    fn tail_len(packs: &Packs) -> u64 {
        packs.tail.tail.lock().unwrap().as_ref().unwrap().len
    }

    /// The bytes an entry of a `body`-byte file takes, as a pack offset.
    fn entry_size(body: usize) -> u64 {
        super::entry_size(body) as u64
    }

    /// Writes through the page cache only, as on a filesystem without direct I/O.
    fn buffered_only(packs: &Packs) {
        packs.tail.tail.lock().unwrap().as_mut().unwrap().direct = None;
    }

    #[test]
    fn files_come_back_after_reopening_and_are_stored_once() {
        for direct in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let packs = Packs::open(dir.path()).unwrap();
            if !direct {
                buffered_only(&packs);
            }
            let (a, b) = (b"first photo".to_vec(), vec![7u8; 100_000]);
            packs.put(&sha(&a), &a).unwrap();
            packs.put(&sha(&b), &b).unwrap();
            packs.put(&sha(&a), &a).unwrap();
            assert_eq!(packs.get(&sha(&a)).unwrap().unwrap(), a);
            assert_eq!(packs.get(&sha(b"absent")).unwrap(), None);
            assert_eq!(
                tail_len(&packs),
                entry_size(a.len()) + entry_size(b.len()),
                "a is held once"
            );
            drop(packs);
            let packs = Packs::open(dir.path()).unwrap();
            assert_eq!(packs.get(&sha(&b)).unwrap().unwrap(), b, "index rebuilt");
            assert_eq!(packs.get(&sha(&a)).unwrap().unwrap(), a);
        }
    }

    /// The packs hold the households' photos: 0600 whatever the umask (QA s23d F7).
    #[test]
    fn pack_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::open(dir.path()).unwrap();
        let photo = b"a photo".to_vec();
        packs.put(&sha(&photo), &photo).unwrap();
        for name in [pack_name(0), "lock".to_string()] {
            let mode = std::fs::metadata(dir.path().join(&name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn space_is_made_ready_ahead_and_its_zeros_cut_when_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::open(dir.path()).unwrap();
        let files: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 60_000]).collect();
        for f in &files {
            packs.put(&sha(f), f).unwrap();
        }
        let used = tail_len(&packs);
        assert_eq!(used, 40 * entry_size(60_000));
        let path = dir.path().join(pack_name(0));
        let ready = packs.tail.tail.lock().unwrap().as_ref().unwrap().ready;
        assert!(
            ready > used,
            "space ready past the last entry: {ready} > {used}"
        );
        drop(packs);
        assert!(std::fs::metadata(&path).unwrap().len() > used);
        let packs = Packs::open(dir.path()).unwrap();
        assert_eq!(
            tail_len(&packs),
            used,
            "the zeros are cut, the entries kept"
        );
        for f in &files {
            assert_eq!(&packs.get(&sha(f)).unwrap().unwrap(), f);
        }
        let next = vec![99u8; 5000];
        packs.put(&sha(&next), &next).unwrap();
        drop(packs);
        let packs = Packs::open(dir.path()).unwrap();
        assert_eq!(packs.get(&sha(&next)).unwrap().unwrap(), next);
        assert_eq!(tail_len(&packs), used + entry_size(5000));
    }

    /// Entries ending in every place near a block's end, those fewer than HEADER bytes
    /// before it included (a body of 4009 to 4051 bytes, and as much past whole blocks:
    /// about one photo in a hundred), are found again when the store is reopened.
    #[test]
    fn entries_ending_just_before_a_block_boundary_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::open(dir.path()).unwrap();
        let sizes: Vec<usize> = (4000..4060).chain([45_007, 8105, 8147]).collect();
        let files: Vec<Vec<u8>> = sizes
            .iter()
            .map(|n| (0..*n).map(|i| (i % 251) as u8 ^ (*n as u8)).collect())
            .collect();
        for f in &files {
            packs.put(&sha(f), f).unwrap();
        }
        drop(packs);
        for verify in [false, true] {
            let mut index = HashMap::new();
            let path = dir.path().join(pack_name(0));
            let end = scan(&path, 0, verify, &mut index).unwrap();
            assert_eq!(index.len(), files.len(), "verify={verify}");
            assert_eq!(end % ALIGN, (HEADER + 8147) % ALIGN, "ends after the last");
        }
        let packs = Packs::open(dir.path()).unwrap();
        for f in &files {
            assert_eq!(
                &packs.get(&sha(f)).unwrap().unwrap(),
                f,
                "{} bytes",
                f.len()
            );
        }
        let next = vec![7u8; 100];
        packs.put(&sha(&next), &next).unwrap();
        drop(packs);
        let packs = Packs::open(dir.path()).unwrap();
        assert_eq!(packs.get(&sha(&next)).unwrap().unwrap(), next);
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
        let b_at = entry_size(5000);
        // A power cut in the middle of b's body: its last blocks never left the zeros.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0u8; 100], b_at + HEADER + 4900)
            .unwrap();
        let packs = Packs::open(dir.path()).unwrap();
        assert_eq!(packs.get(&sha(&a)).unwrap().unwrap(), a);
        assert_eq!(packs.get(&sha(&b)).unwrap(), None, "the torn file is gone");
        assert_eq!(tail_len(&packs), b_at, "the next entry goes where b was");
        // A file cut short by a crash while the file grew (no space made ready).
        packs.put(&sha(&b), &b).unwrap();
        drop(packs);
        file.set_len(b_at + HEADER + 10).unwrap();
        let packs = Packs::open(dir.path()).unwrap();
        assert_eq!(packs.get(&sha(&b)).unwrap(), None);
        packs.put(&sha(&b), &b).unwrap();
        assert_eq!(packs.get(&sha(&b)).unwrap().unwrap(), b, "sent again, kept");
        drop(packs);
        let packs = Packs::open(dir.path()).unwrap();
        assert_eq!(packs.get(&sha(&b)).unwrap().unwrap(), b);
        assert_eq!(packs.get(&sha(&a)).unwrap().unwrap(), a);
    }

    /// QA s26d F2: a damaged entry among good ones (one byte flipped in its body) is
    /// left out, not taken for a torn end: the entries after it survive a restart.
    #[test]
    fn a_damaged_entry_in_the_middle_does_not_cut_the_pack() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::open(dir.path()).unwrap();
        let files: Vec<Vec<u8>> = (1..=3u8).map(|n| vec![n; 5000]).collect();
        for f in &files {
            packs.put(&sha(f), f).unwrap();
        }
        drop(packs);
        let path = dir.path().join(pack_name(0));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xffu8], entry_size(5000) + HEADER + 10)
            .unwrap();
        let packs = Packs::open(dir.path()).unwrap();
        assert_eq!(packs.get(&sha(&files[0])).unwrap().unwrap(), files[0]);
        assert_eq!(packs.get(&sha(&files[1])).unwrap(), None, "left out");
        assert_eq!(packs.get(&sha(&files[2])).unwrap().unwrap(), files[2]);
        assert_eq!(tail_len(&packs), 3 * entry_size(5000), "nothing cut");
    }

    /// Writes `files` back to back, as packs were written before entries were aligned.
    fn unaligned_pack(path: &Path, files: &[Vec<u8>]) {
        let mut out = Vec::new();
        for f in files {
            out.extend_from_slice(MAGIC);
            out.extend_from_slice(&sha(f));
            out.extend_from_slice(&(f.len() as u64).to_le_bytes());
            out.extend_from_slice(f);
        }
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn packs_written_back_to_back_are_read_and_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let old: Vec<Vec<u8>> = vec![vec![3u8; 1001], vec![4u8; 777], vec![5u8; 5000]];
        unaligned_pack(&dir.path().join(pack_name(0)), &old);
        let packs = Packs::open(dir.path()).unwrap();
        for f in &old {
            assert_eq!(&packs.get(&sha(f)).unwrap().unwrap(), f);
        }
        let new = vec![6u8; 3000];
        packs.put(&sha(&new), &new).unwrap();
        drop(packs);
        let packs = Packs::open(dir.path()).unwrap();
        for f in old.iter().chain([&new]) {
            assert_eq!(&packs.get(&sha(f)).unwrap().unwrap(), f);
        }
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
        // A sync is running (its lock is held) while four puts write.
        let running = packs.synced.lock().unwrap();
        let writers: Vec<_> = files
            .iter()
            .cloned()
            .map(|f| {
                let packs = packs.clone();
                std::thread::spawn(move || packs.put(&sha(&f), &f).unwrap())
            })
            .collect();
        while tail_len(&packs) < 4 * entry_size(1000) {
            std::thread::yield_now();
        }
        drop(running);
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(packs.fsyncs(), 1, "the first to sync covered all four");
    }

    /// `bytes` in an [`EntryBuf`], reserved for their entry or not, fed in chunks.
    fn gathered(bytes: &[u8], reserved: bool) -> EntryBuf {
        let mut buf = EntryBuf::new();
        if reserved {
            buf.reserve_entry(bytes.len());
        }
        for chunk in bytes.chunks(300) {
            buf.extend_from_slice(chunk);
        }
        buf
    }

    #[test]
    fn an_entry_gathered_in_place_is_the_entry_a_copy_makes() {
        let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let expected = entry_bytes(&sha(&body), &body);
        for reserved in [true, false] {
            let buf = gathered(&body, reserved);
            assert_eq!(buf.body(), body.as_slice());
            let entry = buf.into_entry(&sha(&body));
            assert_eq!(
                entry.as_slice(),
                expected.as_slice(),
                "reserved: {reserved}"
            );
            assert!(entry.is_aligned());
        }
        // Reserved for less than arrived: the buffer grew and lost its alignment or its
        // room, and the entry is copied out correctly all the same.
        let mut small = EntryBuf::new();
        small.reserve_entry(100);
        small.extend_from_slice(&body);
        assert_eq!(
            small.into_entry(&sha(&body)).as_slice(),
            expected.as_slice()
        );
        // Cleared, it gathers the next bytes after the same room.
        let mut again = gathered(&body, true);
        again.clear();
        assert!(again.is_empty());
        again.extend_from_slice(&body[..5000]);
        let five = entry_bytes(&sha(&body[..5000]), &body[..5000]);
        assert_eq!(
            again.into_entry(&sha(&body[..5000])).as_slice(),
            five.as_slice()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn photos_stored_while_a_sync_runs_share_the_next_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Arc::new(Packs::open(dir.path()).unwrap());
        let files: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 1000]).collect();
        let running = packs.synced.lock().unwrap();
        let writers: Vec<_> = files
            .iter()
            .cloned()
            .map(|f| {
                let packs = packs.clone();
                // Half gathered where their entries are written from, half not.
                let buf = gathered(&f, f[0] % 2 == 0);
                tokio::spawn(async move { packs.store(sha(&f), buf).await.unwrap() })
            })
            .collect();
        // The test's own thread waits (the stores run on the runtime's workers).
        while tail_len(&packs) < 4 * entry_size(1000) {
            std::thread::yield_now();
        }
        drop(running);
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(packs.fsyncs(), 1, "the first to sync covered all four");
        // A file stored again is found, not written twice.
        packs
            .store(sha(&files[0]), gathered(&files[0], true))
            .await
            .unwrap();
        assert_eq!(tail_len(&packs), 4 * entry_size(1000));
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
