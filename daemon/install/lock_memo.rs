//! The tree of the last package-lock.json an install used as it is, kept by the bytes it came
//! from. Reading a lockfile back into a tree is a pure function of the lockfile, package.json,
//! the workspaces' package.json files and npm's settings; `rm -rf node_modules && hoard install`
//! (or `git checkout` back to the commit last installed) asks for it again with the same bytes,
//! and then gets a copy of the tree instead of parsing, building and checking it again (~10 ms
//! of a 1,300-package warm install of ~200 ms, measured in `bench/`).
//!
//! Must not: keep more than one tree (its memory stays bounded), or hand one out for inputs that
//! differ in any byte or setting. Only trees the lockfile gave as they are (no mismatch with
//! package.json) are kept.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::project::Project;
use crate::registry::config::NpmConfig;
use crate::tree::Tree;

/// What identifies a lockfile's tree: BLAKE3 over everything `lockfile::tree_from_lock` and
/// `lockfile::mismatches` read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Key(blake3::Hash);

impl Key {
    /// The key of the lockfile `lock_bytes` of `project` (in its canonical folder `dir`) read
    /// with the settings `cfg`.
    pub(super) fn of(dir: &Path, project: &Project, lock_bytes: &[u8], cfg: &NpmConfig) -> Key {
        let mut h = blake3::Hasher::new();
        // Each part with its length first: no part's bytes can pass for another's.
        let mut part = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        part(b"hoard-lock-memo-v1");
        part(dir.as_os_str().as_encoded_bytes());
        part(&project.pkg_bytes);
        part(lock_bytes);
        let workspaces = &project.workspaces;
        part(&(workspaces.len() as u64).to_le_bytes());
        for (dir, _, bytes) in workspaces {
            part(dir.as_bytes());
            part(bytes);
        }
        cfg.hash_into(&mut h);
        Key(h.finalize())
    }
}

struct Entry {
    key: Key,
    lock: Arc<Value>,
    tree: Tree,
}

/// The one kept entry (the daemon's; shared by every project).
#[derive(Default)]
pub(super) struct LockMemo(Mutex<Option<Entry>>);

impl LockMemo {
    /// The parsed lockfile and a copy of its tree, if `key` is the one kept.
    pub(super) fn get(&self, key: Key) -> Option<(Arc<Value>, Tree)> {
        let kept = self.0.lock().ok()?;
        let e = kept.as_ref().filter(|e| e.key == key)?;
        Some((e.lock.clone(), e.tree.clone()))
    }

    /// Keep `tree`, read from `lock` as it is, for `key` (replacing what was kept).
    pub(super) fn put(&self, key: Key, lock: Arc<Value>, tree: &Tree) {
        let entry = Entry {
            key,
            lock,
            tree: tree.clone(),
        };
        // The old entry is freed after the lock is let go.
        let old = self.0.lock().ok().and_then(|mut kept| kept.replace(entry));
        drop(old);
    }
}

/// One install's use of the memo: its key, and the tree the memo had for it.
pub(super) struct Lookup {
    pub(super) key: Key,
    pub(super) tree: Option<Tree>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(cfg: &NpmConfig) -> blake3::Hash {
        let mut h = blake3::Hasher::new();
        cfg.hash_into(&mut h);
        h.finalize()
    }

    #[test]
    fn settings_hash_alike_only_when_they_say_the_same() {
        let pairs = |v: &[(&str, &str)]| {
            NpmConfig::from_pairs(v.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        };
        let a = pairs(&[("registry", "https://a.example/"), ("omit", "dev")]);
        let same = pairs(&[("omit", "dev"), ("registry", "https://a.example/")]);
        let other_registry = pairs(&[("registry", "https://b.example/"), ("omit", "dev")]);
        let one_more = pairs(&[
            ("registry", "https://a.example/"),
            ("omit", "dev"),
            ("x", ""),
        ]);
        assert_eq!(hash(&a), hash(&same));
        for different in [&other_registry, &one_more] {
            assert_ne!(hash(&a), hash(different));
        }
        // One setting's value cannot pass for two settings.
        let two = pairs(&[("a", "1"), ("b", "2")]);
        let one = pairs(&[("a", "1\nb=2")]);
        let glued = pairs(&[("a", "1b"), ("", "2")]);
        assert_ne!(hash(&two), hash(&one));
        assert_ne!(hash(&two), hash(&glued));
    }

    #[test]
    fn one_tree_is_kept_and_only_its_own_key_gets_it() {
        let memo = LockMemo::default();
        let key = |s: &[u8]| Key(blake3::hash(s));
        let lock = Arc::new(serde_json::json!({"lockfileVersion": 3}));
        let tree = Tree::default();
        assert!(memo.get(key(b"a")).is_none());
        memo.put(key(b"a"), lock.clone(), &tree);
        assert!(memo.get(key(b"a")).is_some());
        assert!(memo.get(key(b"b")).is_none());
        memo.put(key(b"b"), lock, &tree);
        assert!(memo.get(key(b"a")).is_none(), "only the last tree is kept");
        assert!(memo.get(key(b"b")).is_some());
    }
}
