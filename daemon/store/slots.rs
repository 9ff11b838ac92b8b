//! The global layout's slots as the store keeps them (`v1/virtual/node_modules/.store/<slot>`):
//! listing them, which slots a set of roots keeps (following the symlinks between slots),
//! whether a slot is whole, and removing one (renamed into `tmp/` first, so a slot is never seen
//! half-removed either).
//!
//! Must not: build slots (the linker does) or read a project's files (callers name the roots).

use crate::platform;
use std::collections::HashSet;
use std::path::Path;

use super::layout::CONTENT_MTIME;
use super::{Store, read_dir};
use crate::error::{HoardError, Result};

impl Store {
    /// Every slot folder's name.
    pub fn slot_names(&self) -> Result<Vec<String>> {
        let root = &self.layout.virtual_root;
        if !root.is_dir() {
            return Ok(vec![]);
        }
        let mut names: Vec<String> = read_dir(root)?
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(String::from))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The slot a symlink's text points into, if it points into this store's slots.
    pub fn slot_of_target(&self, text: &Path) -> Option<String> {
        let rest = text.strip_prefix(&self.layout.virtual_root).ok()?;
        Some(rest.components().next()?.as_os_str().to_str()?.to_string())
    }

    /// `roots` and every slot they reach through the symlinks inside slots.
    pub fn slot_closure(&self, roots: impl IntoIterator<Item = String>) -> HashSet<String> {
        let mut keep: HashSet<String> = HashSet::new();
        let mut todo: Vec<String> = roots.into_iter().collect();
        while let Some(s) = todo.pop() {
            if !keep.insert(s.clone()) {
                continue;
            }
            let nm = self.layout.virtual_root.join(&s).join("node_modules");
            for link in slot_links(&nm) {
                let Ok(text) = std::fs::read_link(&link) else {
                    continue;
                };
                // `../../<slot>/node_modules/<name>` (scoped: one more `..`).
                let target = link.parent().map(|p| p.join(&text)).unwrap_or(text);
                let dep = self.slot_of_target(&lexical(&target));
                if let Some(d) = dep.filter(|d| !keep.contains(d)) {
                    todo.push(d);
                }
            }
        }
        keep
    }

    /// What is wrong with slot `name`, if anything: its package folder is missing, a symlink
    /// beside it leads nowhere, or one of its files was written to (its mode or mtime is not
    /// a content file's) or is one of `bad_inodes` (content files verify found damaged).
    pub fn slot_problem(&self, name: &str, bad_inodes: &HashSet<u64>) -> Option<String> {
        let nm = self.layout.virtual_root.join(name).join("node_modules");
        let mut has_package = false;
        for entry in slot_entries(&nm) {
            let Ok(md) = std::fs::symlink_metadata(&entry) else {
                continue;
            };
            if md.file_type().is_symlink() {
                if std::fs::metadata(&entry).is_err() {
                    return Some(format!("`{}` leads nowhere", entry.display()));
                }
            } else if md.is_dir() {
                has_package = true;
                if let Some(p) = changed_file(&entry, bad_inodes) {
                    return Some(p);
                }
            }
        }
        (!has_package).then(|| format!("`{}` holds no package folder", nm.display()))
    }

    /// Remove slot `name` (a project linking it relinks it with its next install).
    pub fn remove_slot(&self, name: &str) -> Result<()> {
        let from = self.layout.virtual_root.join(name);
        let to = self.layout.new_staging_dir()?.join("slot");
        std::fs::rename(&from, &to).map_err(|e| HoardError::io("removing slot", &from, e))?;
        if let Some(dir) = to.parent() {
            std::fs::remove_dir_all(dir).map_err(|e| HoardError::io("removing", dir, e))?;
        }
        Ok(())
    }
}

/// `p` with `.` and `..` worked out without asking the filesystem.
fn lexical(p: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The entries of a slot's `node_modules` (scope folders opened).
fn slot_entries(nm: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for p in read_dir(nm).unwrap_or_default() {
        let scoped = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('@'));
        if scoped && !p.is_symlink() {
            out.extend(read_dir(&p).unwrap_or_default());
        } else {
            out.push(p);
        }
    }
    out
}

/// The symlinks of a slot's `node_modules`.
fn slot_links(nm: &Path) -> Vec<std::path::PathBuf> {
    slot_entries(nm)
        .into_iter()
        .filter(|p| p.is_symlink())
        .collect()
}

/// The first file under `dir` that is no longer a pristine content file.
fn changed_file(dir: &Path, bad_inodes: &HashSet<u64>) -> Option<String> {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for p in read_dir(&d).unwrap_or_default() {
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if md.is_dir() {
                todo.push(p);
            } else if md.is_file()
                && (platform::mode(&md) & 0o222 != 0
                    || platform::mtime(&md) != CONTENT_MTIME
                    || (!bad_inodes.is_empty()
                        && platform::identity(&p, &md)
                            .is_ok_and(|id| bad_inodes.contains(&id.inode))))
            {
                return Some(format!("`{}` was changed after it was linked", p.display()));
            }
        }
    }
    None
}
