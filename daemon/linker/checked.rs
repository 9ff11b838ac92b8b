//! The store files one linking run has already found whole (`Store::looks_whole`), so that a
//! content file linked into many package folders (licenses, a version's unchanged files) is
//! stat'ed once per install instead of once per link.
//!
//! A file is remembered only after its check passed, or when this install's own import wrote
//! it (`StoredPackage::created_since`: nothing else can have touched it), so nothing older is
//! linked unchecked; two threads may both check the same file the first time. Must not:
//! outlive the run it belongs to (an edit made after this install must be seen by the next
//! one: at its end the files go to the store's `trust`, which watches each before it checks it
//! again), or judge files itself.

use std::sync::Mutex;

use rustc_hash::FxHashMap;

/// Shards of the set, picked by the hash's first byte (threads rarely meet on one lock).
const SHARDS: usize = 64;

/// The files judged whole in this run: BLAKE3 hash and which variant (executable or not), and
/// the size the index gives it.
pub struct Checked {
    shards: Vec<Mutex<FxHashMap<Key, u64>>>,
}

type Key = crate::store::trust::Key;

impl Default for Checked {
    fn default() -> Self {
        Checked {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Checked {
    fn shard(&self, hash: &[u8; 32]) -> &Mutex<FxHashMap<Key, u64>> {
        &self.shards[hash[0] as usize % SHARDS]
    }

    /// Whether this run already found content file `hash` (this variant) whole.
    pub fn known(&self, hash: &[u8; 32], executable: bool) -> bool {
        self.shard(hash)
            .lock()
            .map(|s| s.contains_key(&(*hash, executable)))
            .unwrap_or(false)
    }

    /// Remember that content file `hash` (this variant, `size` bytes) was just found whole, or
    /// written by this install.
    pub fn remember(&self, hash: &[u8; 32], executable: bool, size: u64) {
        if let Ok(mut s) = self.shard(hash).lock() {
            s.insert((*hash, executable), size);
        }
    }

    /// Every file remembered, with its size (the run is over).
    pub fn take(&self) -> Vec<(Key, u64)> {
        let mut all = Vec::new();
        for s in &self.shards {
            if let Ok(mut s) = s.lock() {
                all.extend(s.drain());
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_known_only_after_it_is_remembered_and_per_variant() {
        let c = Checked::default();
        let mut h = [7u8; 32];
        h[9] = 1;
        assert!(!c.known(&h, false));
        c.remember(&h, false, 3);
        assert!(c.known(&h, false));
        assert!(!c.known(&h, true), "the executable variant is another file");
        let mut other = h;
        other[31] = 2;
        assert!(!c.known(&other, false));
        assert_eq!(c.take(), vec![((h, false), 3)]);
        assert!(!c.known(&h, false), "taken");
    }
}
