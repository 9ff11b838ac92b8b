//! Package bins: `bin` (a string or a map) and `directories.bin`, normalized the way npm does
//! (npm-normalize-package-bin): names reduced to a plain file name, targets kept inside the
//! package; anything that would escape is dropped.
//!
//! Must not: create links (the materializer does); this only computes names and targets.

use std::collections::BTreeMap;

use crate::registry::packument::Manifest;
use crate::store::index::FileEntry;

/// Reduce a bin name to a safe file name: last path segment; empty, `.` and `..` dropped.
pub fn clean_name(name: &str) -> Option<String> {
    let unified = name.replace('\\', "/");
    let base = unified.rsplit('/').next().unwrap_or("").trim();
    if base.is_empty() || base == "." || base == ".." || base.contains('\0') {
        return None;
    }
    Some(base.to_string())
}

/// Normalize a bin target to a relative path inside the package (`..` that would leave the
/// package root, absolute paths and NULs are refused).
pub fn clean_target(target: &str) -> Option<String> {
    let unified = target.replace('\\', "/");
    let mut parts: Vec<&str> = Vec::new();
    for comp in unified.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c if c.contains('\0') => return None,
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

/// name → target for the `bin` field. `pkg_name` is the name the package is installed under
/// (a string `bin` is named after it, without scope).
pub fn normalized(pkg_name: &str, m: &Manifest) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match &m.bin {
        serde_json::Value::String(t) => {
            let base = if m.name.is_empty() { pkg_name } else { &m.name };
            let base = base.rsplit('/').next().unwrap_or(base);
            if let (Some(n), Some(t)) = (clean_name(base), clean_target(t)) {
                out.insert(n, t);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if let (Some(n), Some(t)) = (clean_name(k), v.as_str().and_then(clean_target)) {
                    out.insert(n, t);
                }
            }
        }
        _ => {}
    }
    out
}

/// Bins including `directories.bin` (every file directly in that folder), which needs the
/// package's file list.
pub fn with_directories(
    pkg_name: &str,
    m: &Manifest,
    files: &[FileEntry],
) -> BTreeMap<String, String> {
    let mut out = normalized(pkg_name, m);
    if m.bin.is_null()
        && let Some(dir) = m
            .directories
            .as_ref()
            .and_then(|d| d.bin.as_deref())
            .and_then(clean_target)
    {
        let prefix = format!("{dir}/");
        for f in files {
            if let Some(rest) = f.path.strip_prefix(&prefix)
                && !rest.contains('/')
                && let Some(n) = clean_name(rest)
            {
                out.insert(n, f.path.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_targets_cannot_escape() {
        assert_eq!(clean_name("../../evil").as_deref(), Some("evil"));
        assert_eq!(clean_name("a\\b").as_deref(), Some("b"));
        assert_eq!(clean_name(".."), None);
        assert_eq!(clean_target("./bin/x.js").as_deref(), Some("bin/x.js"));
        assert_eq!(clean_target("bin/../x.js").as_deref(), Some("x.js"));
        assert_eq!(clean_target("../../etc/passwd"), None);
        assert_eq!(clean_target("/abs/x").as_deref(), Some("abs/x"));
        let m = Manifest {
            name: "@scope/tool".into(),
            bin: serde_json::json!("cli.js"),
            ..Default::default()
        };
        assert_eq!(
            normalized("@scope/tool", &m)
                .get("tool")
                .map(String::as_str),
            Some("cli.js")
        );
    }
}
