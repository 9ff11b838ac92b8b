//! Case-insensitive filesystems (macOS's default APFS, Windows' NTFS, ext4 with casefold): two
//! package folders whose names differ only in case would be one folder there, and so would two
//! files of one package (`README.md` and `readme.md`). Package folders that collide are refused
//! before anything changes, naming both; colliding files are folded as npm's tar extraction
//! leaves them: one file, with the first entry's name and the last entry's content.
//!
//! Must not: probe the filesystem (platform.rs does), or link anything.

use std::collections::HashMap;

use super::Plan;
use crate::error::{HoardError, Result};
use crate::store::index::FileEntry;

/// The files of a package as a case-insensitive folder holds them after extraction: for each
/// name that differs only in case from an earlier one, the earlier name with the later content.
pub fn fold_files(files: &[FileEntry]) -> Vec<FileEntry> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<FileEntry> = Vec::with_capacity(files.len());
    for f in files {
        match index.get(&f.path.to_lowercase()) {
            Some(&i) => {
                let name = std::mem::take(&mut out[i].path);
                out[i] = FileEntry {
                    path: name,
                    ..f.clone()
                };
            }
            None => {
                index.insert(f.path.to_lowercase(), out.len());
                out.push(f.clone());
            }
        }
    }
    out
}

/// Folder locations that are one folder when case is ignored: (first, second), in plan order.
pub fn collisions<'a>(locations: impl IntoIterator<Item = &'a str>) -> Vec<(&'a str, &'a str)> {
    let mut seen: HashMap<String, &'a str> = HashMap::new();
    let mut out = vec![];
    for loc in locations {
        match seen.get(&loc.to_lowercase()) {
            Some(&first) if first != loc => out.push((first, loc)),
            Some(_) => {}
            None => {
                seen.insert(loc.to_lowercase(), loc);
            }
        }
    }
    out
}

/// Refuse a plan whose package folders would collide on a case-insensitive filesystem.
pub fn refuse_collisions(project: &std::path::Path, plan: &Plan) -> Result<()> {
    let locations = plan
        .packages
        .iter()
        .map(|p| p.location.as_str())
        .chain(plan.links.iter().map(|l| l.location.as_str()));
    let found = collisions(locations);
    let Some((a, b)) = found.first() else {
        return Ok(());
    };
    let short = |loc: &str| {
        loc.rsplit("node_modules/")
            .next()
            .unwrap_or(loc)
            .to_string()
    };
    Err(HoardError::InvalidInput(format!(
        "`{}` and `{}` differ only in case, and `{}` is on a case-insensitive filesystem, where \
         `{a}` and `{b}` are one folder: one would overwrite the other. Install one of them \
         under another name with an alias in package.json (e.g. \"{}-2\": \"npm:{}@<range>\")",
        short(a),
        short(b),
        project.display(),
        short(b).to_lowercase(),
        short(b)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, byte: u8) -> FileEntry {
        FileEntry {
            path: path.into(),
            hash: [byte; 32],
            size: byte as u64,
            executable: false,
        }
    }

    #[test]
    fn colliding_files_keep_the_first_name_and_the_last_content() {
        let out = fold_files(&[f("README.md", 1), f("index.js", 2), f("readme.md", 3)]);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].path.as_str(), out[0].hash[0]), ("README.md", 3));
        assert_eq!(out[1].path, "index.js");
        let same = fold_files(&[f("a", 1), f("b", 2)]);
        assert_eq!(same.len(), 2);
    }

    #[test]
    fn folders_that_differ_only_in_case_are_found() {
        let c = collisions([
            "node_modules/JSONStream",
            "node_modules/a",
            "node_modules/jsonstream",
            "node_modules/a/node_modules/B",
            "node_modules/b",
        ]);
        assert_eq!(c, [("node_modules/JSONStream", "node_modules/jsonstream")]);
    }
}
