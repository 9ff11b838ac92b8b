//! The list of projects a store serves, kept in `<store>/v1/projects.txt` (one absolute path a
//! line) beside the index, so that it survives the loss of the index: a rebuilt index learns the
//! projects back from it, and prune keeps protecting what they link.
//!
//! Must not: know which packages a project uses (the index does); it is only the list.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::Result;

pub struct ProjectList {
    path: PathBuf,
    known: Mutex<BTreeSet<String>>,
}

impl ProjectList {
    /// Read the list at `path` (an absent file is an empty list).
    pub fn open(path: &Path) -> ProjectList {
        let known = std::fs::read_to_string(path)
            .map(|t| {
                t.lines()
                    .filter(|l| l.starts_with('/'))
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        ProjectList {
            path: path.to_path_buf(),
            known: Mutex::new(known),
        }
    }

    pub fn all(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    /// Add projects; the file is rewritten only when the list changed.
    pub fn add(&self, projects: impl IntoIterator<Item = String>) -> Result<()> {
        let mut known = self.lock();
        let before = known.len();
        known.extend(projects);
        if known.len() == before {
            return Ok(());
        }
        self.write(&known)
    }

    /// Forget projects (prune drops those whose node_modules is gone).
    pub fn remove(&self, projects: &[String]) -> Result<()> {
        let mut known = self.lock();
        let before = known.len();
        for p in projects {
            known.remove(p);
        }
        if known.len() == before {
            return Ok(());
        }
        self.write(&known)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, known: &BTreeSet<String>) -> Result<()> {
        let mut text = String::new();
        for p in known {
            text.push_str(p);
            text.push('\n');
        }
        crate::atomic::write_atomic(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_survives_a_reopen_and_forgets_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("projects.txt");
        let list = ProjectList::open(&path);
        list.add(["/b".to_string(), "/a".to_string()]).unwrap();
        list.add(["/a".to_string()]).unwrap();
        assert_eq!(ProjectList::open(&path).all(), ["/a", "/b"]);
        list.remove(&["/a".to_string()]).unwrap();
        assert_eq!(ProjectList::open(&path).all(), ["/b"]);
    }
}
