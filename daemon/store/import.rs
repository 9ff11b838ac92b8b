//! One streaming pass over a package tarball: bytes → integrity hashes ∥ gunzip ∥ tar entries →
//! each regular file hashed with BLAKE3 and held in memory (small files, up to a budget per
//! tarball) or written under `tmp/`; after the whole tarball has verified, held files are written
//! into `files/` whole (unnamed, then named) and staged ones renamed there, read-only. A tarball
//! whose bytes are all in memory may instead be verified first, unpacked whole (`gunzip.rs`) and
//! its files written from that buffer (`import_whole`).
//!
//! Owns the hardening rules for hostile tarballs (see `Limits`). Must not: touch the index (the
//! caller commits rows after this returns), hold more than `HELD_PER_IMPORT` bytes of a streamed
//! tarball in memory (a whole one is held as its caller allowed), or follow any path that comes
//! from the archive outside the package root.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::HoardError;
use crate::store::index::FileEntry;
use crate::store::integrity::{Sri, TarballDigests, TarballHasher};
use crate::store::layout::Layout;
use crate::store::shards::Shards;

/// Caps that make a tarball hostile. Defaults are far above any real npm package.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Total decompressed bytes of the tar stream.
    pub max_unpacked: u64,
    /// Decompressed/compressed ratio, enforced once more than `ratio_floor` bytes were unpacked.
    pub max_ratio: u64,
    pub ratio_floor: u64,
    /// Path components below the package root.
    pub max_depth: usize,
    /// Bytes of a path below the package root.
    pub max_path_len: usize,
    /// Regular files in one package.
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_unpacked: 1 << 30,
            max_ratio: 200,
            ratio_floor: 64 << 20,
            max_depth: 64,
            max_path_len: 1024,
            max_files: 200_000,
        }
    }
}

/// What went wrong, before the caller adds package and URL.
#[derive(Debug)]
pub enum ImportError {
    /// The byte source failed (network); the import may be retried.
    Source(io::Error),
    /// The archive is corrupt or hostile; retrying will not help.
    Hostile(String),
    /// The bytes do not match the expected integrity.
    Integrity { expected: String, actual: String },
    /// Local filesystem trouble.
    Local(HoardError),
}

/// The result of a successful import: files are in `files/`, read-only.
#[derive(Debug)]
pub struct Imported {
    pub files: Vec<FileEntry>,
    /// Which of `files` this import wrote into `files/` (aligned with `files`); false for a
    /// file that was there already (another package's, or an earlier import's).
    pub created: Vec<bool>,
    pub digests: TarballDigests,
    pub unpacked_size: u64,
    pub compressed_size: u64,
}

/// Marks errors that came from the byte source rather than the archive.
#[derive(Debug)]
struct SourceError(io::Error);
impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for SourceError {}

/// Hashes and counts compressed bytes as they are read. Errors of the inner reader are tagged
/// as source errors.
struct HashingReader<R> {
    inner: R,
    hasher: TarballHasher,
    count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self
            .inner
            .read(buf)
            .map_err(|e| io::Error::other(SourceError(e)))?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Counts decompressed bytes and stops a decompression bomb.
struct CappedReader<R> {
    inner: R,
    unpacked: u64,
    limits: Limits,
    compressed: std::rc::Rc<std::cell::Cell<u64>>,
}

#[derive(Debug)]
struct BombError(String);
impl std::fmt::Display for BombError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BombError {}

impl Limits {
    /// Why `unpacked` bytes from `compressed` make a decompression bomb, if they do.
    fn bomb(&self, unpacked: u64, compressed: u64) -> Option<String> {
        if unpacked > self.max_unpacked {
            return Some(format!(
                "it unpacks to more than {} MiB",
                self.max_unpacked >> 20
            ));
        }
        if unpacked > self.ratio_floor && unpacked / compressed.max(1) > self.max_ratio {
            return Some(format!(
                "its compression ratio exceeds {}:1 (a decompression bomb?)",
                self.max_ratio
            ));
        }
        None
    }
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.unpacked += n as u64;
        if let Some(why) = self.limits.bomb(self.unpacked, self.compressed.get()) {
            return Err(io::Error::other(BombError(why)));
        }
        Ok(n)
    }
}

/// Share the compressed byte count with the capped reader (both live on one thread).
struct SharedCount<R> {
    inner: HashingReader<R>,
    count: std::rc::Rc<std::cell::Cell<u64>>,
}
impl<R: Read> Read for SharedCount<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.inner.count);
        Ok(n)
    }
}

fn classify(e: io::Error) -> ImportError {
    if let Some(inner) = e.get_ref() {
        if let Some(src) = inner.downcast_ref::<SourceError>() {
            return ImportError::Source(io::Error::new(src.0.kind(), src.0.to_string()));
        }
        if let Some(b) = inner.downcast_ref::<BombError>() {
            return ImportError::Hostile(b.0.clone());
        }
    }
    ImportError::Hostile(format!("corrupt archive ({e})"))
}

/// Normalize a tar entry path: strip the first component (as npm does: it is usually
/// `package/` but not always), reject anything that could escape or is absurd.
pub fn entry_path(raw: &[u8], limits: &Limits) -> std::result::Result<Option<String>, String> {
    let s = std::str::from_utf8(raw).map_err(|_| "a path is not valid UTF-8".to_string())?;
    if s.starts_with('/') || s.starts_with('\\') {
        return Err(format!("absolute path `{s}`"));
    }
    if s.contains('\0') {
        return Err("a path contains a NUL byte".into());
    }
    let mut parts = Vec::new();
    for (i, comp) in s.split('/').enumerate() {
        if comp == ".." {
            return Err(format!("path `{s}` contains `..`"));
        }
        if comp.contains('\\') {
            return Err(format!("path `{s}` contains a backslash"));
        }
        if i == 0 || comp.is_empty() || comp == "." {
            continue;
        }
        parts.push(comp);
    }
    if parts.is_empty() {
        return Ok(None);
    }
    if parts.len() > limits.max_depth {
        return Err(format!(
            "path `{s}` is deeper than {} components",
            limits.max_depth
        ));
    }
    let joined = parts.join("/");
    if joined.len() > limits.max_path_len {
        return Err(format!(
            "a path is longer than {} bytes",
            limits.max_path_len
        ));
    }
    Ok(Some(joined))
}

/// Bytes of one tarball's files held in memory until it has verified; past this, files are
/// staged under `tmp/`. A held file needs no staging folder, rename or delete: it is written
/// unnamed and named in its shard once whole (`Shards::create_whole`). Deletes matter: a file
/// system without a journal scans past every recently freed inode when it allocates one.
const HELD_PER_IMPORT: u64 = 4 << 20;
/// A file larger than this is always staged.
const HELD_FILE_MAX: u64 = 1 << 20;

/// Where a file's bytes wait for the tarball to verify.
enum Body {
    /// In memory.
    Held(Vec<u8>),
    /// Staged file number n in the staging directory.
    Staged(usize),
    /// `len` bytes at `start` of a tarball unpacked whole (`import_whole`).
    In { start: usize, len: usize },
}

struct Pending {
    body: Body,
    entry: FileEntry,
}

/// The staging directory of one import, held open so files are created and moved relative to
/// it (no walk of the store's path per file); removed whatever happens.
struct StagingDir {
    path: PathBuf,
    dir: crate::platform::Dir,
}

impl StagingDir {
    fn open(path: PathBuf) -> Result<StagingDir, HoardError> {
        let dir = crate::platform::Dir::open(&path)
            .map_err(|e| HoardError::io("opening staging directory", &path, e))?;
        Ok(StagingDir { path, dir })
    }

    /// Create staged file number `n`, already with its final mode (the fd stays writable).
    fn create(&self, n: usize, mode: u32) -> io::Result<std::fs::File> {
        self.dir.create(&n.to_string(), mode)
    }

    /// Move staged file `n` to `dest` unless `dest` exists. Ok(false): it existed (same name,
    /// same bytes), and the staged file is left to be removed with the directory.
    fn move_to(&self, n: usize, dest: &Path) -> io::Result<bool> {
        match self.dir.rename_noreplace_to(&n.to_string(), dest) {
            // A filesystem without an atomic no-replace rename: look, then rename.
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                if dest.exists() {
                    return Ok(false);
                }
                crate::platform::rename(&self.path.join(n.to_string()), dest)?;
                Ok(true)
            }
            other => other,
        }
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The staging directory of one import, made when the first file needs it; and the number
/// of the next staged file (names are never reused: a duplicate entry must not overwrite a
/// later file).
struct Staging<'a> {
    layout: &'a Layout,
    dir: Option<StagingDir>,
    next: usize,
}

impl Staging<'_> {
    /// The staging directory and a new file number in it.
    fn slot(&mut self) -> std::result::Result<(&StagingDir, usize), ImportError> {
        let n = self.next;
        self.next += 1;
        let dir = match self.dir.take() {
            Some(dir) => dir,
            None => {
                let path = self.layout.new_staging_dir().map_err(ImportError::Local)?;
                StagingDir::open(path).map_err(ImportError::Local)?
            }
        };
        Ok((self.dir.insert(dir), n))
    }
}

/// Import one tarball read from `source`. Blocks: call from a blocking thread.
pub fn import(
    source: impl Read,
    expected: &Sri,
    (layout, shards): (&Layout, &Shards),
    limits: &Limits,
) -> std::result::Result<Imported, ImportError> {
    let mut staging = Staging {
        layout,
        dir: None,
        next: 0,
    };

    let count = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let mut raw = SharedCount {
        inner: HashingReader {
            inner: source,
            hasher: TarballHasher::for_expected(expected),
            count: 0,
        },
        count: count.clone(),
    };
    let gz = flate2::read::GzDecoder::new(&mut raw);
    let mut capped = CappedReader {
        inner: gz,
        unpacked: 0,
        limits: limits.clone(),
        compressed: count,
    };
    let pending = stage_entries(&mut capped, &mut staging, limits)?;
    // Read what follows the tar end marker so the gzip trailer (CRC) is checked and every
    // compressed byte is hashed.
    io::copy(&mut capped, &mut io::sink()).map_err(classify)?;
    let unpacked_size = capped.unpacked;
    drop(capped);
    io::copy(&mut raw, &mut io::sink()).map_err(classify)?;
    let compressed_size = raw.inner.count;
    let digests = raw.inner.hasher.finish();
    if let Err((expected, actual)) = digests.verify(expected) {
        return Err(ImportError::Integrity { expected, actual });
    }
    let (files, created) = commit(pending.files, &mut staging, shards, &[])?;
    Ok(Imported {
        files,
        created,
        digests,
        unpacked_size,
        compressed_size,
    })
}

/// Import one tarball whose compressed bytes are all in `body`: checked against `expected`
/// before a byte of it is unpacked, then unpacked whole (`gunzip`) when the gzip trailer says
/// it unpacks to at most `unpacked_max` bytes, and its files written from that one buffer
/// (nothing held apart or staged). Anything else (a larger tarball, one that does not unpack
/// whole, or what its trailer says) goes the streaming way of `import`, which says what is
/// wrong with it. Blocks: call from a blocking thread.
pub fn import_whole(
    body: &[u8],
    expected: &Sri,
    (layout, shards): (&Layout, &Shards),
    limits: &Limits,
    unpacked_max: usize,
) -> std::result::Result<Imported, ImportError> {
    let streaming = || import(body, expected, (layout, shards), limits);
    // A trailer that claims a bomb is left to the streaming way, which says so.
    let Some(claimed) = super::gunzip::claimed_size(body)
        .filter(|&n| n <= unpacked_max && limits.bomb(n as u64, body.len() as u64).is_none())
    else {
        return streaming();
    };
    let mut hasher = TarballHasher::for_expected(expected);
    hasher.update(body);
    let digests = hasher.finish();
    if let Err((expected, actual)) = digests.verify(expected) {
        return Err(ImportError::Integrity { expected, actual });
    }
    let Some(tar) = super::gunzip::gunzip(body, claimed) else {
        return streaming();
    };
    let mut staging = Staging {
        layout,
        dir: None,
        next: 0,
    };
    let pending = entries_in(&tar, limits)?;
    let (files, created) = commit(pending.files, &mut staging, shards, &tar)?;
    Ok(Imported {
        files,
        created,
        digests,
        unpacked_size: tar.len() as u64,
        compressed_size: body.len() as u64,
    })
}

/// Every regular file of an unpacked tar, as a range of it, hashed (the rules of
/// `stage_entries`: the same paths, types and counts are refused).
fn entries_in(tar: &[u8], limits: &Limits) -> std::result::Result<PendingFiles, ImportError> {
    let mut pending = PendingFiles::default();
    let mut archive = tar::Archive::new(io::Cursor::new(tar));
    for entry in archive.entries_with_seek().map_err(classify)? {
        let entry = entry.map_err(classify)?;
        let Some((path, executable)) = kept_file(&entry, limits)? else {
            continue;
        };
        let start = usize::try_from(entry.raw_file_position()).unwrap_or(usize::MAX);
        let len = usize::try_from(entry.size()).unwrap_or(usize::MAX);
        let Some(bytes) = start.checked_add(len).and_then(|end| tar.get(start..end)) else {
            return Err(ImportError::Hostile(format!(
                "corrupt archive (entry `{path}` runs past the end of the archive)"
            )));
        };
        let item = Pending {
            body: Body::In { start, len },
            entry: FileEntry {
                path,
                hash: *blake3::hash(bytes).as_bytes(),
                size: len as u64,
                executable,
            },
        };
        pending.add(item, limits)?;
    }
    Ok(pending)
}

/// The files staged so far, one per path.
#[derive(Default)]
struct PendingFiles {
    files: Vec<Pending>,
    by_path: HashMap<String, usize>,
}

impl PendingFiles {
    /// Duplicate entries: the last one wins, as with `tar x` and npm (the earlier file stays
    /// staged and goes with the directory).
    fn add(&mut self, item: Pending, limits: &Limits) -> std::result::Result<(), ImportError> {
        if let Some(&i) = self.by_path.get(&item.entry.path) {
            self.files[i] = item;
            return Ok(());
        }
        if self.files.len() >= limits.max_files {
            return Err(ImportError::Hostile(format!(
                "more than {} files",
                limits.max_files
            )));
        }
        self.by_path
            .insert(item.entry.path.clone(), self.files.len());
        self.files.push(item);
        Ok(())
    }
}

/// Read every tar entry, holding or staging each regular file (hashed as it is read).
fn stage_entries(
    tar_stream: impl Read,
    staging: &mut Staging<'_>,
    limits: &Limits,
) -> std::result::Result<PendingFiles, ImportError> {
    let mut pending = PendingFiles::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut held = 0u64;
    let mut archive = tar::Archive::new(tar_stream);
    for entry in archive.entries().map_err(classify)? {
        let mut entry = entry.map_err(classify)?;
        let Some((path, executable)) = kept_file(&entry, limits)? else {
            continue;
        };
        let announced = entry.size();
        let (body, hash, size) =
            if announced <= HELD_FILE_MAX && held + announced <= HELD_PER_IMPORT {
                let bytes = hold_file(&mut entry, announced)?;
                held += bytes.len() as u64;
                let (hash, size) = (*blake3::hash(&bytes).as_bytes(), bytes.len() as u64);
                (Body::Held(bytes), hash, size)
            } else {
                let (dir, n) = staging.slot()?;
                let (hash, size) = stage_file(&mut entry, dir, n, executable, &mut buf)?;
                (Body::Staged(n), hash, size)
            };
        let item = Pending {
            body,
            entry: FileEntry {
                path,
                hash,
                size,
                executable,
            },
        };
        pending.add(item, limits)?;
    }
    Ok(pending)
}

/// An entry's path below the package root and whether it is executable, when it is a regular
/// file to keep; None for what is skipped (folders, extension headers, the root itself); an
/// error for what makes the tarball hostile (bad paths, links, devices).
fn kept_file<R: Read>(
    entry: &tar::Entry<'_, R>,
    limits: &Limits,
) -> std::result::Result<Option<(String, bool)>, ImportError> {
    let path_bytes = entry.path_bytes();
    let path = entry_path(&path_bytes, limits).map_err(ImportError::Hostile)?;
    if !is_file(entry.header().entry_type(), &path_bytes)? {
        return Ok(None);
    }
    let executable = entry.header().mode().unwrap_or(0o644) & 0o111 != 0;
    Ok(path.map(|p| (p, executable)))
}

/// Whether an entry of this type is a file to keep; links and devices are refused.
fn is_file(kind: tar::EntryType, path_bytes: &[u8]) -> std::result::Result<bool, ImportError> {
    use tar::EntryType as T;
    match kind {
        T::Regular | T::Continuous => Ok(true),
        // Extended headers are consumed by the tar crate; anything else left is metadata we
        // have no use for.
        T::Directory | T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => Ok(false),
        T::Symlink | T::Link => Err(ImportError::Hostile(format!(
            "entry `{}` is a {} (npm packages may not contain links)",
            String::from_utf8_lossy(path_bytes),
            if kind == T::Symlink {
                "symlink"
            } else {
                "hard link"
            }
        ))),
        other => Err(ImportError::Hostile(format!(
            "entry `{}` has unsupported type {:?} (device, fifo or unknown)",
            String::from_utf8_lossy(path_bytes),
            other
        ))),
    }
}

/// Read one entry's bytes (the tar header announced `announced`) into memory.
fn hold_file(entry: &mut impl Read, announced: u64) -> std::result::Result<Vec<u8>, ImportError> {
    let mut bytes = Vec::with_capacity(announced as usize);
    entry
        .take(HELD_FILE_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(classify)?;
    Ok(bytes)
}

/// Copy one entry's bytes into staged file `n`, hashing them; (BLAKE3, size).
fn stage_file(
    entry: &mut impl Read,
    staging: &StagingDir,
    n: usize,
    executable: bool,
    buf: &mut [u8],
) -> std::result::Result<([u8; 32], u64), ImportError> {
    // The staged file's path, only for an error message.
    let local = |what: &'static str, e: io::Error| {
        ImportError::Local(HoardError::io(what, staging.path.join(n.to_string()), e))
    };
    let mut out = staging
        .create(n, if executable { 0o555 } else { 0o444 })
        .map_err(|e| local("creating", e))?;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    loop {
        let read = entry.read(buf).map_err(classify)?;
        if read == 0 {
            break;
        }
        hasher.update(&buf[..read]);
        out.write_all(&buf[..read])
            .map_err(|e| local("writing", e))?;
        size += read as u64;
    }
    // Every content file has the same mtime: another one means it was written to since.
    out.set_times(super::layout::content_times())
        .map_err(|e| local("setting the time of", e))?;
    crate::platform::durable(&out).map_err(|e| local("flushing", e))?;
    Ok((*hasher.finalize().as_bytes(), size))
}

/// Verified: write every held file (from memory, or from `tar`, the tarball unpacked whole)
/// and move every staged file into the content-addressed tree, read-only.
fn commit(
    pending: Vec<Pending>,
    staging: &mut Staging<'_>,
    shards: &Shards,
    tar: &[u8],
) -> std::result::Result<(Vec<FileEntry>, Vec<bool>), ImportError> {
    let mut files = Vec::with_capacity(pending.len());
    let mut buf = Vec::new();
    for p in pending {
        let (hash, exec) = (&p.entry.hash, p.entry.executable);
        let held;
        let bytes: &[u8] = match p.body {
            Body::Staged(n) => {
                let made = move_in(n, &p.entry, staging, shards)?;
                files.push((p.entry, made));
                continue;
            }
            Body::Held(bytes) => {
                held = bytes;
                &held
            }
            // In range: `entries_in` checked it.
            Body::In { start, len } => &tar[start..start + len],
        };
        if let Ok(made) = shards.create_whole(hash, exec, bytes) {
            files.push((p.entry, made));
            continue;
        }
        // Not here (no unnamed files, a shard folder removed by hand, a full disk): staged and
        // moved the long way, which says what failed and where.
        if buf.is_empty() {
            buf = vec![0u8; 64 * 1024];
        }
        let (dir, n) = staging.slot()?;
        stage_file(&mut &bytes[..], dir, n, exec, &mut buf)?;
        let made = move_in(n, &p.entry, staging, shards)?;
        files.push((p.entry, made));
    }
    files.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    Ok(files.into_iter().unzip())
}

/// Move staged file `n` (holding `entry`) into the content-addressed tree, unless it is there;
/// whether it was moved (false: it was there).
fn move_in(
    n: usize,
    entry: &FileEntry,
    staging: &Staging<'_>,
    shards: &Shards,
) -> std::result::Result<bool, ImportError> {
    let Some(dir) = &staging.dir else {
        return Err(ImportError::Local(HoardError::Internal(
            "a staged file without a staging directory".into(),
        )));
    };
    // The common case relative to the open folders; anything else the long way.
    if let Ok(moved) = shards.move_in(&dir.dir, &n.to_string(), &entry.hash, entry.executable) {
        return Ok(moved);
    }
    let layout = staging.layout;
    let dest = layout.content_path(&entry.hash, entry.executable);
    let mut moved = dir.move_to(n, &dest);
    if matches!(&moved, Err(e) if e.kind() == io::ErrorKind::NotFound)
        && let Some(parent) = dest.parent()
    {
        // A shard folder removed by hand: make it again.
        layout.ensure_shard(parent).map_err(ImportError::Local)?;
        moved = dir.move_to(n, &dest);
    }
    moved.map_err(|e| {
        ImportError::Local(HoardError::io("moving a file into the store at", &dest, e))
    })
}

/// Hash an existing content file (for `store verify`).
pub fn hash_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_first_component_and_rejects_escapes() {
        let l = Limits::default();
        assert_eq!(
            entry_path(b"package/lib/a.js", &l).unwrap().as_deref(),
            Some("lib/a.js")
        );
        assert_eq!(
            entry_path(b"node-v1/index.js", &l).unwrap().as_deref(),
            Some("index.js")
        );
        assert_eq!(
            entry_path(b"package//./x.js", &l).unwrap().as_deref(),
            Some("x.js")
        );
        assert_eq!(entry_path(b"package/", &l).unwrap(), None);
        assert!(entry_path(b"/etc/passwd", &l).is_err());
        assert!(entry_path(b"package/../../x", &l).is_err());
        assert!(entry_path(b"package/a\\..\\b", &l).is_err());
        let deep = format!("package/{}", "a/".repeat(100));
        assert!(entry_path(deep.as_bytes(), &l).is_err());
    }

    /// One tar entry, written by hand so hostile names and types can be had.
    fn entry(name: &str, body: &[u8], mode: u32, kind: tar::EntryType, link: &str) -> Vec<u8> {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_size(body.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(kind);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(body);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    fn gz(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut tar = entries.concat();
        tar.extend_from_slice(&[0u8; 1024]);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&tar).unwrap();
        enc.finish().unwrap()
    }

    /// What an import gave, comparable across the two ways: its files, or its error's kind
    /// and (for a hostile archive) message.
    fn outcome(r: std::result::Result<Imported, ImportError>) -> String {
        match r {
            Ok(i) => {
                let files: Vec<String> = (i.files.iter())
                    .map(|f| {
                        let h = blake3::Hash::from(f.hash).to_hex();
                        format!("{} {} {} {}", f.path, &h[..16], f.size, f.executable)
                    })
                    .collect();
                format!("ok {} unpacked; {}", i.unpacked_size, files.join(", "))
            }
            Err(ImportError::Hostile(m)) => format!("hostile: {m}"),
            Err(ImportError::Integrity { .. }) => "integrity".into(),
            Err(ImportError::Source(e)) => format!("source: {e}"),
            Err(ImportError::Local(e)) => format!("local: {e}"),
        }
    }

    #[test]
    fn whole_and_streaming_imports_agree_on_good_and_hostile_tarballs() {
        use tar::EntryType as T;
        let dir = tempfile::tempdir().unwrap();
        let stores: Vec<(Layout, Shards)> = ["streamed", "whole"]
            .iter()
            .map(|n| {
                let layout = Layout::create(&dir.path().join(n)).unwrap();
                let shards = Shards::new(&layout.files);
                (layout, shards)
            })
            .collect();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let file = |n: &str, b: &[u8], mode| entry(n, b, mode, T::Regular, "");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "good",
                gz(&[
                    file("package/package.json", b"{}", 0o644),
                    file("package/bin/cli.js", b"#!/usr/bin/env node\n", 0o755),
                    file("package/lib/big.bin", &big, 0o644),
                    entry("package/lib", b"", 0o755, T::Directory, ""),
                    // A duplicate: the last one wins.
                    file("package/package.json", b"{\"v\":2}", 0o644),
                    file("package/empty", b"", 0o644),
                ]),
            ),
            ("absolute", gz(&[file("/etc/evil", b"x", 0o644)])),
            ("dot-dot", gz(&[file("package/../../evil", b"x", 0o644)])),
            (
                "symlink",
                gz(&[entry("package/l", b"", 0o777, T::Symlink, "/etc/passwd")]),
            ),
            (
                "hard link",
                gz(&[entry("package/l", b"", 0o644, T::Link, "package/a")]),
            ),
            ("device", gz(&[entry("package/d", b"", 0o644, T::Char, "")])),
            (
                "truncated",
                gz(&[file("package/a", &big, 0o644)])[..200].to_vec(),
            ),
        ];
        let mut lying = cases[0].1.clone();
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&100u32.to_le_bytes());
        let mut cases = cases;
        cases.push(("trailer claims too little", lying));
        for (what, body) in &cases {
            let none = Sri::parse(None, None);
            let (a, b) = (&stores[0], &stores[1]);
            let limits = Limits::default();
            let streamed = outcome(import(&body[..], &none, (&a.0, &a.1), &limits));
            let whole = outcome(import_whole(body, &none, (&b.0, &b.1), &limits, 32 << 20));
            assert_eq!(streamed, whole, "{what}");
            if *what == "good" {
                assert!(whole.contains("lib/big.bin") && whole.contains("bin/cli.js"));
                assert!(
                    whole.ends_with(" 7 false"),
                    "the last duplicate wins: {whole}"
                );
            } else {
                assert!(!whole.starts_with("ok"), "{what} was accepted: {whole}");
            }
        }
        // The good one took the whole way: every file a range of the unpacked tar.
        let tar = super::super::gunzip::gunzip(&cases[0].1, 32 << 20).unwrap();
        let pending = entries_in(&tar, &Limits::default()).unwrap();
        assert_eq!(pending.files.len(), 4);
        assert!(
            pending
                .files
                .iter()
                .all(|f| matches!(f.body, Body::In { .. }))
        );
        // An integrity mismatch is found before anything is unpacked, and nothing is written.
        let wrong = Sri::parse(Some(&format!("sha512-{}", "A".repeat(86) + "==")), None);
        let fresh = Layout::create(&dir.path().join("mismatch")).unwrap();
        let shards = Shards::new(&fresh.files);
        let r = import_whole(
            &cases[0].1,
            &wrong,
            (&fresh, &shards),
            &Limits::default(),
            32 << 20,
        );
        assert_eq!(outcome(r), "integrity");
        assert_eq!(std::fs::read_dir(&fresh.files).unwrap().count(), 0);
    }
}
