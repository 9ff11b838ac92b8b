//! Other package managers' lockfiles, read for the versions they lock: with no
//! package-lock.json, `pnpm-lock.yaml` (v5, v6, v9), `yarn.lock` (v1 and berry) or `bun.lock`
//! (text) gives, for each registry package, the versions the team had; the resolver then
//! prefers them wherever they still satisfy the range (npm reads yarn.lock the same way), so
//! the install keeps those versions and resolves only what the file does not cover. Git,
//! tarball, file and workspace entries are left to package.json's specs.
//!
//! Must not: write anything, or decide placement (npm's tree is still built by `ideal`).

mod bun;
mod pnpm;
mod yarn;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{HoardError, Result};

/// Which file the versions came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pnpm,
    YarnClassic,
    YarnBerry,
    Bun,
}

impl Kind {
    pub fn file(self) -> &'static str {
        match self {
            Kind::Pnpm => "pnpm-lock.yaml",
            Kind::YarnClassic | Kind::YarnBerry => "yarn.lock",
            Kind::Bun => "bun.lock",
        }
    }
}

/// The versions a foreign lockfile locks: name → versions (each once).
#[derive(Debug)]
pub struct Locked {
    pub kind: Kind,
    pub path: PathBuf,
    pub versions: HashMap<String, Vec<String>>,
}

impl Locked {
    /// How many name@version pairs it gives.
    pub fn count(&self) -> usize {
        self.versions.values().map(Vec::len).sum()
    }
}

/// The first foreign lockfile in `dir` (pnpm-lock.yaml, then yarn.lock, then bun.lock), read.
/// None when there is none. Blocking.
pub fn read(dir: &Path) -> Result<Option<Locked>> {
    for file in ["pnpm-lock.yaml", "yarn.lock", "bun.lock"] {
        let path = dir.join(file);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(HoardError::io("reading", &path, e)),
        };
        let bad = |why: String| {
            HoardError::Lockfile(format!(
                "cannot read `{}`: {why}; fix or delete it (hoard then resolves afresh)",
                path.display()
            ))
        };
        let (kind, pairs) = match file {
            "pnpm-lock.yaml" => (Kind::Pnpm, pnpm::pairs(&text).map_err(bad)?),
            "yarn.lock" if yarn::is_berry(&text) => {
                (Kind::YarnBerry, yarn::berry_pairs(&text).map_err(bad)?)
            }
            "yarn.lock" => (Kind::YarnClassic, yarn::classic_pairs(&text).map_err(bad)?),
            _ => (Kind::Bun, bun::pairs(&text).map_err(bad)?),
        };
        return Ok(Some(Locked {
            kind,
            path,
            versions: collect(pairs),
        }));
    }
    Ok(None)
}

/// Registry pairs only (a version that is plain semver), each once, per name.
fn collect(pairs: Vec<(String, String)>) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (name, version) in pairs {
        if name.is_empty() || semver::Version::parse(&version).is_err() {
            continue;
        }
        let v = out.entry(name).or_default();
        if !v.contains(&version) {
            v.push(version);
        }
    }
    out
}

/// `name@rest` split at the `@` that ends the name (a scope's leading `@` is part of it).
pub(crate) fn split_name(s: &str) -> Option<(&str, &str)> {
    let at = s[1.min(s.len())..].find('@')? + 1.min(s.len());
    Some((&s[..at], &s[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_after_their_scope() {
        assert_eq!(split_name("a@1.0.0"), Some(("a", "1.0.0")));
        assert_eq!(split_name("@s/a@^1"), Some(("@s/a", "^1")));
        assert_eq!(split_name("@s/a@npm:1.0.0"), Some(("@s/a", "npm:1.0.0")));
        assert_eq!(split_name("a"), None);
        assert_eq!(split_name(""), None);
    }

    #[test]
    fn only_registry_versions_are_kept_once() {
        let v = collect(vec![
            ("a".into(), "1.0.0".into()),
            ("a".into(), "1.0.0".into()),
            ("a".into(), "2.0.0-rc.1".into()),
            ("b".into(), "github:x/y#abc".into()),
            ("c".into(), "file:../c".into()),
        ]);
        assert_eq!(v["a"], vec!["1.0.0", "2.0.0-rc.1"]);
        assert!(!v.contains_key("b") && !v.contains_key("c"));
    }
}
