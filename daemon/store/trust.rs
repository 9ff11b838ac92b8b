//! Store files known whole without looking again: each one watched (inotify, Linux) from just
//! before a check found it whole, so that later installs link it without the per-file stat of
//! `Store::looks_whole`. Any write to the file's inode, through any of its hard links (an editor
//! in some project), any removal or replacement of its name in its shard folder (prune, verify,
//! a repair, a hand in the store), and any lost event (the kernel's queue overflowed) ends the
//! trust; the next install looks at the file again.
//!
//! Limits, said where they are documented (store-format.md): a write through a shared memory map
//! raises no event (the background scrub is the backstop for it, as it is for a daemon that was
//! not running); at most `cap` files are watched, a quarter of the user's inotify watches (an
//! IDE's file watcher needs the rest), and never more than `MAX_WATCHED`. Other platforms trust
//! nothing: every install checks every file.
//!
//! Must not: judge a file itself (the caller's check does, with the store's rule), block an
//! install (adoption runs on its own thread after the install linked), or trust a file whose
//! watch began after the check that found it whole.

use std::sync::Arc;

use rustc_hash::FxHashSet;

/// A content file: its BLAKE3 hash and which variant (executable or not).
pub type Key = ([u8; 32], bool);

/// The files trusted at one moment (what one linking run skips the check for).
pub type Trusted = Arc<FxHashSet<Key>>;

/// At most this many files are watched, whatever the kernel allows (each pins an inode in the
/// kernel's cache).
#[cfg(target_os = "linux")]
const MAX_WATCHED: usize = 131_072;

#[cfg(target_os = "linux")]
pub use linux::Trust;

#[cfg(not(target_os = "linux"))]
pub use other::Trust;

#[cfg(not(target_os = "linux"))]
mod other {
    use super::{Key, Trusted};

    /// No way to hear about writes here: nothing is trusted.
    pub struct Trust;

    impl Trust {
        pub fn new(_files: &std::path::Path, _enabled: bool) -> Trust {
            Trust
        }
        pub fn snapshot(&self) -> Trusted {
            Trusted::default()
        }
        pub fn adopt(&self, _files: Vec<(Key, u64)>, _whole: &dyn Fn(&Key, u64) -> bool) {}
        pub fn count(&self) -> u64 {
            0
        }
        pub fn has_room(&self) -> bool {
            false
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::OsStr;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex, MutexGuard};

    use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
    use rustc_hash::FxHashMap;
    use tracing::{debug, info};

    use super::{Key, MAX_WATCHED, Trusted};

    /// What a watch is on.
    #[derive(Clone, Copy)]
    enum Target {
        File(Key),
        /// A shard folder (`files/<2 hex>`), by its first hash byte.
        Shard(u8),
    }

    #[derive(Default)]
    struct Inner {
        /// Opened at the first adoption (a daemon that never links holds no instance).
        ino: Option<Inotify>,
        targets: FxHashMap<WatchDescriptor, Target>,
        files: FxHashMap<Key, WatchDescriptor>,
        shards: FxHashMap<u8, WatchDescriptor>,
        trusted: Trusted,
        /// The kernel refused another watch (the user's limit): adopt nothing more until a reset.
        full: bool,
    }

    /// The store's trusted files (see the module's documentation).
    pub struct Trust {
        files: PathBuf,
        enabled: bool,
        cap: usize,
        inner: Mutex<Inner>,
    }

    impl Trust {
        /// Trust for the content files under `files` (`<store>/v1/files`); `enabled: false`
        /// (`HOARD_TRUST_WATCHED=0`) trusts nothing.
        pub fn new(files: &Path, enabled: bool) -> Trust {
            Trust {
                files: files.to_path_buf(),
                enabled,
                cap: cap(),
                inner: Mutex::new(Inner::default()),
            }
        }

        fn lock(&self) -> MutexGuard<'_, Inner> {
            self.inner.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// The files trusted now, after every event the kernel has queued (a write that
        /// finished before this call ends its file's trust).
        pub fn snapshot(&self) -> Trusted {
            let mut inner = self.lock();
            inner.drain();
            inner.trusted.clone()
        }

        /// How many files are trusted now.
        pub fn count(&self) -> u64 {
            let mut inner = self.lock();
            inner.drain();
            inner.trusted.len() as u64
        }

        /// Whether more files can be adopted: trust is on, the kernel has not refused a watch,
        /// and fewer than `cap` files are watched.
        pub fn has_room(&self) -> bool {
            let inner = self.lock();
            self.enabled && !inner.full && inner.files.len() < self.cap
        }

        /// Watch each of `files` (key, size) not watched yet, then check it with `whole`; those
        /// it finds whole are trusted from now on. Blocking; call off the executor.
        pub fn adopt(&self, files: Vec<(Key, u64)>, whole: &dyn Fn(&Key, u64) -> bool) {
            if !self.enabled || files.is_empty() {
                return;
            }
            let started = std::time::Instant::now();
            // Events from before this adoption (the repair that wrote one of these files) would
            // otherwise end the trust it is about to give.
            self.lock().drain();
            let mut fresh: Vec<Key> = Vec::new();
            for (key, size) in files {
                let mut inner = self.lock();
                if inner.files.contains_key(&key) {
                    continue;
                }
                if inner.full || inner.files.len() >= self.cap {
                    break;
                }
                let Some(wd) = inner.watch(&self.files, &key) else {
                    continue;
                };
                drop(inner);
                // Watched first, then checked: a write after the watch began is heard, one
                // before it is seen by the check.
                let ok = whole(&key, size);
                let mut inner = self.lock();
                if ok {
                    fresh.push(key);
                } else {
                    inner.forget_watch(&wd);
                }
                if fresh.len() >= 4096 {
                    inner.publish(&mut fresh);
                }
            }
            let mut inner = self.lock();
            inner.publish(&mut fresh);
            debug!(
                trusted = inner.trusted.len(),
                millis = started.elapsed().as_millis() as u64,
                "store files watched"
            );
        }
    }

    /// A quarter of the user's inotify watches, at most `MAX_WATCHED`.
    fn cap() -> usize {
        let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(8192);
        (limit / 4).min(MAX_WATCHED)
    }

    const FILE_EVENTS: WatchMask = WatchMask::MODIFY.union(WatchMask::DONT_FOLLOW);
    const SHARD_EVENTS: WatchMask = WatchMask::DELETE
        .union(WatchMask::MOVED_FROM)
        .union(WatchMask::MOVED_TO)
        .union(WatchMask::DELETE_SELF)
        .union(WatchMask::MOVE_SELF)
        .union(WatchMask::ONLYDIR);

    impl Inner {
        /// Watch `key`'s content file (and its shard folder, first). None when it cannot be
        /// watched (gone, or the kernel's limit: then nothing more is adopted).
        fn watch(&mut self, files: &Path, key: &Key) -> Option<WatchDescriptor> {
            if self.ino.is_none() {
                match Inotify::init() {
                    Ok(i) => self.ino = Some(i),
                    Err(e) => {
                        info!(error = %e, "cannot watch store files; each is checked before it is linked");
                        self.full = true;
                        return None;
                    }
                }
            }
            let shard = key.0[0];
            let dir = files.join(format!("{shard:02x}"));
            if !self.shards.contains_key(&shard) {
                let wd = self.add(&dir, SHARD_EVENTS)?;
                self.shards.insert(shard, wd.clone());
                self.targets.insert(wd, Target::Shard(shard));
            }
            let name = super::super::shards::Name::of(&key.0, key.1);
            let wd = self.add(&dir.join(name.as_str()), FILE_EVENTS)?;
            self.targets.insert(wd.clone(), Target::File(*key));
            self.files.insert(*key, wd.clone());
            Some(wd)
        }

        fn add(&mut self, path: &Path, mask: WatchMask) -> Option<WatchDescriptor> {
            let ino = self.ino.as_mut()?;
            match ino.watches().add(path, mask) {
                Ok(wd) => Some(wd),
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                    info!(
                        watched = self.files.len(),
                        "the inotify watch limit is reached; further store files are checked before each link"
                    );
                    self.full = true;
                    None
                }
                Err(_) => None,
            }
        }

        /// Trust the keys of `fresh` still watched (an event may have ended one meanwhile).
        fn publish(&mut self, fresh: &mut Vec<Key>) {
            if fresh.is_empty() {
                return;
            }
            let still: Vec<Key> = (fresh.drain(..))
                .filter(|k| self.files.contains_key(k))
                .collect();
            Arc::make_mut(&mut self.trusted).extend(still);
        }

        /// Read every queued event and end the trust each one touches.
        fn drain(&mut self) {
            let mut buf = [0u8; 16 * 1024];
            loop {
                let Some(ino) = self.ino.as_mut() else { return };
                let events = match ino.read_events(&mut buf) {
                    Ok(events) => events,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                    Err(_) => return self.reset("the watch could not be read"),
                };
                let todo: Vec<(WatchDescriptor, EventMask, Option<String>)> = events
                    .map(|ev| {
                        let name = ev.name.and_then(OsStr::to_str).map(str::to_owned);
                        (ev.wd, ev.mask, name)
                    })
                    .collect();
                if todo.is_empty() {
                    return;
                }
                for (wd, mask, name) in todo {
                    if mask.contains(EventMask::Q_OVERFLOW) {
                        return self.reset("events were lost");
                    }
                    self.handle(&wd, mask, name.as_deref());
                    if self.ino.is_none() {
                        return;
                    }
                }
            }
        }

        fn handle(&mut self, wd: &WatchDescriptor, mask: EventMask, name: Option<&str>) {
            match self.targets.get(wd).copied() {
                None => {}
                Some(Target::File(key)) if mask.contains(EventMask::IGNORED) => {
                    // The kernel dropped the watch (the inode is gone).
                    self.targets.remove(wd);
                    self.files.remove(&key);
                    self.untrust(&key);
                }
                Some(Target::File(_)) => self.forget_watch(wd),
                Some(Target::Shard(_))
                    if mask.intersects(
                        EventMask::IGNORED | EventMask::DELETE_SELF | EventMask::MOVE_SELF,
                    ) =>
                {
                    self.reset("a shard folder was removed or moved")
                }
                Some(Target::Shard(shard)) => {
                    // A name that left or arrived: the file under it may be another inode now.
                    if let Some(key) = name.and_then(|n| key_of(shard, n))
                        && let Some(wd) = self.files.get(&key).cloned()
                    {
                        self.forget_watch(&wd);
                    }
                }
            }
        }

        /// Stop watching (and trusting) the file watched by `wd`.
        fn forget_watch(&mut self, wd: &WatchDescriptor) {
            if let Some(Target::File(key)) = self.targets.remove(wd) {
                self.files.remove(&key);
                self.untrust(&key);
                if let Some(ino) = self.ino.as_mut() {
                    let _ = ino.watches().remove(wd.clone());
                }
            }
        }

        fn untrust(&mut self, key: &Key) {
            if self.trusted.contains(key) {
                Arc::make_mut(&mut self.trusted).remove(key);
            }
        }

        /// Trust nothing and watch nothing (closing the instance drops every watch).
        fn reset(&mut self, why: &str) {
            debug!(why, trusted = self.trusted.len(), "store file trust reset");
            *self = Inner::default();
        }
    }

    /// The key of content file `name` in shard folder `shard` (`Name::of` read back).
    pub(super) fn key_of(shard: u8, name: &str) -> Option<Key> {
        let (hex, exec) = match name.strip_suffix("-exec") {
            Some(h) => (h, true),
            None => (name, false),
        };
        if hex.len() != 62 {
            return None;
        }
        let mut hash = [0u8; 32];
        hash[0] = shard;
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).ok()?;
            hash[i + 1] = u8::from_str_radix(s, 16).ok()?;
        }
        Some((hash, exec))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::store::shards::Name;

    /// A content file with these bytes in a `files/` folder under `root` (read-only, as the
    /// store makes them); its key and path.
    fn content(root: &Path, body: &[u8]) -> (Key, PathBuf) {
        let hash = *blake3::hash(body).as_bytes();
        let dir = root.join(format!("{:02x}", hash[0]));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(Name::of(&hash, false).as_str());
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        ((hash, false), path)
    }

    fn trusting(root: &Path, files: &[(Key, PathBuf)]) -> Trust {
        let t = Trust::new(root, true);
        let sized: Vec<(Key, u64)> = (files.iter())
            .map(|(k, p)| (*k, std::fs::metadata(p).unwrap().len()))
            .collect();
        // The check: the size still matches (what `Store` passes is size and mtime).
        t.adopt(sized, &|k, size| {
            let (_, p) = files.iter().find(|(x, _)| x == k).unwrap();
            std::fs::metadata(p).is_ok_and(|m| m.len() == size)
        });
        t
    }

    #[test]
    fn a_write_through_another_hard_link_ends_the_trust_of_that_file_only() {
        let tmp = tempfile::tempdir().unwrap();
        let files = [content(tmp.path(), b"one"), content(tmp.path(), b"two")];
        let t = trusting(tmp.path(), &files);
        let before = t.snapshot();
        assert!(before.contains(&files[0].0) && before.contains(&files[1].0));
        // An editor in a project: chmod, then append, through the project's link.
        let project_file = tmp.path().join("index.js");
        std::fs::hard_link(&files[0].1, &project_file).unwrap();
        std::fs::set_permissions(&project_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&project_file)
            .unwrap();
        std::io::Write::write_all(&mut f, b" edited").unwrap();
        let after = t.snapshot();
        assert!(
            !after.contains(&files[0].0),
            "the edited file is checked again"
        );
        assert!(after.contains(&files[1].0), "the other one stays trusted");
        assert!(
            before.contains(&files[0].0),
            "a run's snapshot does not change under it"
        );
        assert_eq!(t.count(), 1);
    }

    #[test]
    fn a_name_replaced_or_removed_in_its_shard_ends_its_trust() {
        let tmp = tempfile::tempdir().unwrap();
        let files = [content(tmp.path(), b"three"), content(tmp.path(), b"four")];
        let t = trusting(tmp.path(), &files);
        assert_eq!(t.count(), 2);
        // Replaced by another inode (a repair, or a hand in the store): no write to the
        // watched inode, but the name changed.
        let other = tmp.path().join("other");
        std::fs::write(&other, b"xxxxx").unwrap();
        std::fs::rename(&other, &files[0].1).unwrap();
        assert!(!t.snapshot().contains(&files[0].0));
        std::fs::remove_file(&files[1].1).unwrap();
        assert_eq!(t.count(), 0, "a removed file is not trusted");
    }

    #[test]
    fn a_file_the_check_rejects_is_not_trusted_and_a_disabled_trust_trusts_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (key, _) = content(tmp.path(), b"five");
        let t = Trust::new(tmp.path(), true);
        t.adopt(vec![(key, 4)], &|_, _| false);
        assert_eq!(t.count(), 0);
        t.adopt(vec![(key, 4)], &|_, _| true);
        assert_eq!(t.count(), 1, "adopted once the check passes");
        let off = Trust::new(tmp.path(), false);
        off.adopt(vec![(key, 4)], &|_, _| true);
        assert_eq!(off.count(), 0);
    }

    #[test]
    fn names_read_back_as_keys() {
        let hash = *blake3::hash(b"six").as_bytes();
        for exec in [false, true] {
            let name = Name::of(&hash, exec);
            assert_eq!(linux::key_of(hash[0], name.as_str()), Some((hash, exec)));
        }
        assert_eq!(linux::key_of(1, "not-a-content-file"), None);
    }
}
