//! The metadata disk cache's writer: packuments fetched from the network are encoded and
//! written to `<store>/v1/metadata` by one thread of the lowest priority (nice 19 on Linux),
//! not by the install that fetched them. A cold install keeps both cores busy; the cache's
//! writes then wait until the install's own work is done instead of taking their share of it.
//! A packument waiting here is in the hot cache meanwhile (or is fetched again: the disk cache
//! is only a cache). `flush` waits for every queued write (the daemon calls it before it exits,
//! so `hoard install --offline` after a restart finds what was fetched). Each file is written
//! under the store's `tmp/` and renamed into place, so what a kill leaves half-written is
//! removed with the rest of `tmp/` when the next daemon starts. (Older builds wrote the temp
//! file beside the entry; the thread removes any such leftover before its first write.)
//!
//! Must not: decide what is cached, read the cache, or make a caller wait for a write.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::compact::{CacheMeta, Packument};

/// Writes queued beyond this many are done by the caller itself: the queue holds packuments
/// the hot cache may have let go, and must not grow without bound when the disk is slow.
const QUEUED_MAX: usize = 4096;

struct Job {
    path: PathBuf,
    packument: Arc<Packument>,
    meta: CacheMeta,
}

/// Temp names in the store's `tmp/`: `metadata-<pid>-<n>`, never the same twice in one daemon
/// (a write done by its caller can run beside the thread's).
struct Temps {
    dir: PathBuf,
    next: AtomicU64,
}

impl Temps {
    fn next(&self) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (self.dir).join(format!("metadata-{}-{n}", std::process::id()))
    }
}

/// Writes queued and not yet done, with a condition to wait for none.
#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    none: Condvar,
}

impl Pending {
    fn add(&self) -> usize {
        let mut n = self.count.lock().unwrap_or_else(|p| p.into_inner());
        *n += 1;
        *n
    }

    fn done(&self) {
        let mut n = self.count.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.none.notify_all();
        }
    }
}

pub struct DiskWrites {
    /// `None` when the writer thread could not be started (writes are then done inline).
    queue: Option<Sender<Job>>,
    pending: Arc<Pending>,
    temps: Arc<Temps>,
}

impl DiskWrites {
    /// A writer whose temp files go in `tmp_dir` (the store's `tmp/`: same filesystem as the
    /// cache, emptied at start-up). Its thread first removes from `cache_dir` the temp files
    /// that builds which wrote them there left behind (see `sweep_old_temps`).
    pub fn new(tmp_dir: PathBuf, cache_dir: PathBuf) -> DiskWrites {
        let pending = Arc::new(Pending::default());
        let temps = Arc::new(Temps {
            dir: tmp_dir,
            next: AtomicU64::new(0),
        });
        let (tx, rx) = channel();
        let (p, t) = (pending.clone(), temps.clone());
        // The sweep counts as a pending write: `flush` waits for it too.
        pending.add();
        let started = std::thread::Builder::new()
            .name("hoard-metadata-writer".into())
            .spawn(move || {
                lower_priority();
                sweep_old_temps(&cache_dir);
                p.done();
                writer(rx, &p, &t)
            });
        if started.is_err() {
            pending.done();
        }
        DiskWrites {
            queue: started.ok().map(|_| tx),
            pending,
            temps,
        }
    }

    /// Write `packument` (with `meta`) to `path` soon. Never blocks on the disk unless the
    /// queue is full or there is no writer thread (then it writes at once).
    pub fn write(&self, path: PathBuf, packument: Arc<Packument>, meta: CacheMeta) {
        let mut job = Job {
            path,
            packument,
            meta,
        };
        if let Some(tx) = &self.queue {
            if self.pending.add() <= QUEUED_MAX {
                match tx.send(job) {
                    Ok(()) => return,
                    Err(back) => job = back.0,
                }
            }
            // Not queued after all: it is done here, below.
            self.pending.done();
        }
        job.run(&self.temps, None);
    }

    /// Wait until every queued write is done, or `limit` has passed; whether none is left.
    pub fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut n = self.pending.count.lock().unwrap_or_else(|p| p.into_inner());
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            n = match self.pending.none.wait_timeout(n, left) {
                Ok((n, _)) => n,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}

impl Job {
    /// Write it through a temp file named by `temps`; `pause` (tests only) between the temp
    /// file's write and its rename.
    fn run(self, temps: &Temps, pause: Option<Duration>) {
        let tmp = temps.next();
        let bytes = self.packument.encode(&self.meta);
        write_disk(&tmp, &self.path, &bytes, pause);
    }
}

/// The writer thread's loop: each job in turn until the sender is gone.
fn writer(rx: Receiver<Job>, pending: &Pending, temps: &Temps) {
    let delay = failpoint_write_delay();
    for job in rx {
        job.run(temps, delay);
        pending.done();
    }
}

/// Builds before the temp files moved to `tmp/` wrote each cache file through a temp file
/// beside it, `<32 hex>.tmp<pid>`; one a kill left there was never removed. Remove those
/// (nothing else in `dir` is named so). Returns how many were removed.
fn sweep_old_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let old_temp = (path.extension().and_then(|x| x.to_str()))
            .and_then(|x| x.strip_prefix("tmp"))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if old_temp && entry.file_type().is_ok_and(|t| t.is_file()) {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "removing an old metadata temp file")
                }
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, dir = %dir.display(), "removed metadata temp files older builds left");
    }
    removed
}

/// For tests only: `HOARD_FAILPOINT_METADATA_WRITE_DELAY_MS` makes every write wait that long
/// between its temp file and the rename, so that a daemon that did not wait for its writes
/// before exiting would lose them, and a kill leaves a temp file.
fn failpoint_write_delay() -> Option<Duration> {
    std::env::var("HOARD_FAILPOINT_METADATA_WRITE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
}

/// This thread at nice 19: it runs when the install's threads leave a core free.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on this thread's own id; a failure only leaves its priority.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

/// Write `bytes` to `path` through the temporary file `tmp` and a rename (a reader never sees
/// half a file). A failure leaves no cache entry, which only costs a fetch later, and no temp
/// file.
fn write_disk(tmp: &Path, path: &Path, bytes: &[u8], pause: Option<Duration>) {
    let written = std::fs::write(tmp, bytes);
    if let Some(d) = pause {
        std::thread::sleep(d);
    }
    if written.is_err() || std::fs::rename(tmp, path).is_err() {
        let _ = std::fs::remove_file(tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_write_is_on_disk_after_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let writes = DiskWrites::new(tmp.path().to_path_buf(), dir.path().to_path_buf());
        let doc = r#"{"name":"a","versions":{"1.0.0":{"name":"a","version":"1.0.0"}}}"#;
        let p = Arc::new(Packument::parse(doc.as_bytes()).unwrap());
        let paths: Vec<PathBuf> = (0..50)
            .map(|i| dir.path().join(format!("{i}.pk2")))
            .collect();
        for path in &paths {
            writes.write(path.clone(), p.clone(), CacheMeta::default());
        }
        assert!(writes.flush(Duration::from_secs(30)));
        for path in &paths {
            let bytes = std::fs::read(path).unwrap();
            assert_eq!(bytes, p.encode(&CacheMeta::default()), "{}", path.display());
        }
        // Nothing left behind but the files themselves.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), paths.len());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_write_that_cannot_be_renamed_into_place_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let writes = DiskWrites::new(tmp.path().to_path_buf(), tmp.path().to_path_buf());
        let doc = r#"{"name":"a","versions":{"1.0.0":{"name":"a","version":"1.0.0"}}}"#;
        let p = Arc::new(Packument::parse(doc.as_bytes()).unwrap());
        let nowhere = tmp.path().join("no such folder").join("a.pk2");
        writes.write(nowhere.clone(), p, CacheMeta::default());
        assert!(writes.flush(Duration::from_secs(30)));
        assert!(!nowhere.exists());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn temp_files_older_builds_left_in_the_cache_folder_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let hex = "0123456789abcdef0123456789abcdef";
        let kept = [
            format!("{hex}.pk2"),
            "keys-0123456789abcdef.json".to_string(),
            "x.tmp".to_string(),
            "y.tmp12a".to_string(),
        ];
        for name in &kept {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("z.tmp99")).unwrap();
        std::fs::write(dir.path().join(format!("{hex}.tmp4242")), b"half").unwrap();
        let writes = DiskWrites::new(tmp.path().to_path_buf(), dir.path().to_path_buf());
        assert!(writes.flush(Duration::from_secs(30)));
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want: Vec<String> = kept.to_vec();
        want.push("z.tmp99".into());
        want.sort();
        assert_eq!(left, want);
    }
}
