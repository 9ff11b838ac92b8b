//! The binary form of one package's file list, as the index keeps it (one blob per package in
//! `file_lists`; store-format.md describes the bytes).
//!
//! One row per package instead of one per file: a cold install of ~1,000 packages wrote ~27,000
//! file rows, each a B-tree insert with its key and a bound statement, which cost the index
//! writer ~100 ms of CPU; a warm install read them back row by row.
//!
//! Must not: touch SQLite or the files themselves; trust a blob (a damaged one is an error,
//! never a panic).

use std::collections::BTreeMap;

use super::index::FileEntry;

/// The first byte of every list: the version of this form.
const FORM: u8 = 1;

/// Flag bit: the file is executable (its content file is the `-exec` variant).
const EXECUTABLE: u8 = 1;

/// `files` as one blob, sorted by path (bytewise, as SQLite's `BINARY` collation ordered the
/// rows before), a path listed twice kept once with its last entry (as `INSERT OR REPLACE`
/// kept it).
pub fn encode(files: &[FileEntry]) -> Vec<u8> {
    let mut by_path: BTreeMap<&str, &FileEntry> = BTreeMap::new();
    for f in files {
        by_path.insert(&f.path, f);
    }
    let bytes: usize = by_path.keys().map(|p| p.len() + 44).sum();
    let mut out = Vec::with_capacity(bytes + 6);
    out.push(FORM);
    varint(&mut out, by_path.len() as u64);
    for f in by_path.values() {
        varint(&mut out, f.path.len() as u64);
        out.extend_from_slice(f.path.as_bytes());
        out.extend_from_slice(&f.hash);
        varint(&mut out, f.size);
        out.push(if f.executable { EXECUTABLE } else { 0 });
    }
    out
}

/// The entries of a blob `encode` made. An error says what is wrong with it.
pub fn decode(blob: &[u8]) -> Result<Vec<FileEntry>, String> {
    let mut r = Reader { blob, at: 0 };
    let form = r.byte()?;
    if form != FORM {
        return Err(format!("file list form {form}, expected {FORM}"));
    }
    let count = r.varint()?;
    // Each entry takes at least 35 bytes: a count past that is damage, not a reason to
    // reserve memory.
    if count > (blob.len() / 35) as u64 {
        return Err(format!(
            "file list claims {count} files in {} bytes",
            blob.len()
        ));
    }
    let mut files = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = r.varint()? as usize;
        let path = std::str::from_utf8(r.take(len)?)
            .map_err(|_| "a path in the file list is not UTF-8".to_string())?
            .to_string();
        let mut hash = [0u8; 32];
        hash.copy_from_slice(r.take(32)?);
        let size = r.varint()?;
        let flags = r.byte()?;
        files.push(FileEntry {
            path,
            hash,
            size,
            executable: flags & EXECUTABLE != 0,
        });
    }
    if r.at != blob.len() {
        return Err(format!("{} bytes after the file list", blob.len() - r.at));
    }
    Ok(files)
}

/// Whether the list in `blob` names a file with BLAKE3 `hash` (a damaged blob names none).
pub fn names_hash(blob: &[u8], hash: &[u8; 32]) -> bool {
    // A cheap look first: most lists do not hold the bytes at all.
    blob.windows(32).any(|w| w == hash)
        && decode(blob).is_ok_and(|files| files.iter().any(|f| &f.hash == hash))
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    blob: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.blob.len());
        let end = end.ok_or_else(|| "the file list ends early".to_string())?;
        let s = &self.blob[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a number in the file list is too long".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, seed: u8, size: u64, executable: bool) -> FileEntry {
        FileEntry {
            path: path.into(),
            hash: [seed; 32],
            size,
            executable,
        }
    }

    #[test]
    fn lists_read_back_sorted_with_the_last_of_a_repeated_path() {
        let files = vec![
            entry("package.json", 1, 120, false),
            entry("bin/cli.js", 2, 0, true),
            entry("lib/é.js", 3, 1 << 40, false),
            entry("package.json", 4, 130, false),
            entry("", 5, 127, false),
        ];
        let back = decode(&encode(&files)).unwrap();
        let want = vec![
            entry("", 5, 127, false),
            entry("bin/cli.js", 2, 0, true),
            entry("lib/é.js", 3, 1 << 40, false),
            entry("package.json", 4, 130, false),
        ];
        assert_eq!(back, want);
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
    }

    #[test]
    fn damaged_lists_are_errors() {
        let blob = encode(&[entry("a.js", 7, 300, false), entry("b.js", 8, 1, true)]);
        for cut in 0..blob.len() {
            assert!(decode(&blob[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        let mut other_form = blob.clone();
        other_form[0] = 9;
        assert!(decode(&other_form).unwrap_err().contains("form 9"));
        // A count far past what the bytes can hold.
        assert!(decode(&[FORM, 0xff, 0xff, 0xff, 0x7f]).is_err());
        assert!(
            decode(&[
                FORM, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ])
            .is_err()
        );
    }

    #[test]
    fn a_hash_is_found_only_where_a_file_has_it() {
        let blob = encode(&[entry("a.js", 7, 300, false)]);
        assert!(names_hash(&blob, &[7; 32]));
        assert!(!names_hash(&blob, &[8; 32]));
    }
}
