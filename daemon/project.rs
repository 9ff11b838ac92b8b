//! A project on disk: its package.json (read with file/line/column errors, edited by `add` and
//! `remove` preserving key order and indentation), workspace members, and the fingerprint of
//! every install input used for no-op detection.
//!
//! Must not: resolve or link.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::error::{HoardError, Result};
use crate::lockfile;
use crate::registry::packument::Manifest;

pub struct Project {
    pub dir: PathBuf,
    pub pkg_json: Value,
    pub pkg_bytes: Vec<u8>,
    pub manifest: Arc<Manifest>,
    /// (folder relative to the project, manifest, raw bytes) of each workspace member.
    pub workspaces: Vec<(String, Arc<Manifest>, Vec<u8>)>,
}

impl Project {
    /// The project as package-lock.json's root entry (`packages[""]`) describes it, for `hoard
    /// fetch` where only the lockfile is present. Workspace members are left out.
    pub fn from_lock_root(dir: &Path, lock: &Value) -> Result<Project> {
        let root = lock
            .get("packages")
            .and_then(|p| p.get(""))
            .filter(|r| r.is_object())
            .ok_or_else(|| {
                HoardError::Lockfile(format!(
                    "{}: no root entry (`packages[\"\"]`, lockfileVersion 2 or 3); `hoard fetch` \
                     needs one",
                    dir.join(lockfile::FILE).display()
                ))
            })?;
        let mut manifest = Manifest::from_json("", root);
        if manifest.name.is_empty() {
            manifest.name = lock
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("project")
                .to_string();
        }
        Ok(Project {
            dir: dir.to_path_buf(),
            pkg_json: root.clone(),
            pkg_bytes: serde_json::to_vec(root).unwrap_or_default(),
            manifest: Arc::new(manifest),
            workspaces: Vec::new(),
        })
    }

    pub fn load(dir: &Path) -> Result<Project> {
        let path = dir.join("package.json");
        let Some((pkg_json, pkg_bytes)) = lockfile::parse_json_file(&path)? else {
            return Err(HoardError::InvalidInput(format!(
                "no package.json in `{}`; create one (`npm init -y`) or pass the project \
                 directory with -C",
                dir.display()
            )));
        };
        if !pkg_json.is_object() {
            return Err(HoardError::InvalidInput(format!(
                "{}: the top level must be a JSON object",
                path.display()
            )));
        }
        let mut manifest = Manifest::from_json("", &pkg_json);
        if manifest.name.is_empty() {
            manifest.name = dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
        }
        let mut workspaces = Vec::new();
        for ws in workspace_dirs(dir, &pkg_json)? {
            let wpath = dir.join(&ws).join("package.json");
            if let Some((v, bytes)) = lockfile::parse_json_file(&wpath)? {
                let m = Manifest::from_json("", &v);
                if m.name.is_empty() {
                    return Err(HoardError::InvalidInput(format!(
                        "{}: a workspace member needs a `name`",
                        wpath.display()
                    )));
                }
                workspaces.push((ws, Arc::new(m), bytes));
            }
        }
        Ok(Project {
            dir: dir.to_path_buf(),
            pkg_json,
            pkg_bytes,
            manifest: Arc::new(manifest),
            workspaces,
        })
    }

    pub fn workspace_map(&self) -> HashMap<String, Arc<Manifest>> {
        self.workspaces
            .iter()
            .map(|(d, m, _)| (d.clone(), m.clone()))
            .collect()
    }
}

/// How package.json is formatted, read as npm reads it (json-parse-even-better-errors): the
/// line break right after the opening brace and the indentation of the next line; `{}` alone
/// gets two spaces; a file that starts `{"` on one line has neither (and stays on one line).
fn detect_format(bytes: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}');
    let body = text.trim_start();
    let empty = ["{}", "[]"].iter().find_map(|e| body.strip_prefix(e));
    if text.len() == body.len()
        && let Some(rest) = empty
        && rest.chars().all(|c| c == '\r' || c == '\n')
    {
        let eol = if rest.is_empty() { "\n" } else { rest };
        return (eol.to_string(), "  ".to_string());
    }
    let Some(after) = body.strip_prefix(['{', '[']) else {
        return (String::new(), String::new());
    };
    let eol_len = after
        .char_indices()
        .find(|(_, c)| *c != '\r' && *c != '\n')
        .map_or(after.len(), |(i, _)| i);
    let eol = &after[..eol_len];
    if eol.is_empty() || !eol.ends_with('\n') {
        return (String::new(), String::new());
    }
    let indent: String = after[eol_len..]
        .chars()
        .take_while(|c| c.is_whitespace())
        .collect();
    (eol.to_string(), indent)
}

/// Serialize `v` as npm saves package.json: the original's indentation and line breaks, and a
/// final line break (none for a file on one line).
pub fn render_like(v: &Value, original: &[u8]) -> Result<Vec<u8>> {
    let (eol, indent) = if original.is_empty() {
        ("\n".to_string(), "  ".to_string())
    } else {
        detect_format(original)
    };
    let err = |e: serde_json::Error| HoardError::Internal(format!("serializing package.json: {e}"));
    let text = if indent.is_empty() {
        serde_json::to_string(v).map_err(err)?
    } else {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        serde::Serialize::serialize(v, &mut ser).map_err(err)?;
        String::from_utf8(out).map_err(|e| HoardError::Internal(e.to_string()))?
    };
    Ok(format!("{text}\n").replace('\n', &eol).into_bytes())
}

pub const DEP_SECTIONS: [&str; 4] = [
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
];

/// Set `name` to `spec` in `section`, removing it from the other install sections (as npm
/// does). Existing keys keep their position; new keys are appended and the section sorted
/// like npm sorts it.
pub fn set_dependency(pkg: &mut Value, section: &str, name: &str, spec: &str) {
    let Some(obj) = pkg.as_object_mut() else {
        return;
    };
    for s in DEP_SECTIONS {
        if s != section
            && s != "peerDependencies"
            && let Some(Value::Object(m)) = obj.get_mut(s)
        {
            m.shift_remove(name);
        }
    }
    let entry = obj
        .entry(section.to_string())
        .or_insert_with(|| Value::Object(Default::default()));
    if let Value::Object(m) = entry {
        m.insert(name.to_string(), Value::String(spec.to_string()));
        m.sort_keys();
    }
    // Drop sections left empty by the move.
    for s in DEP_SECTIONS {
        if s != section
            && obj
                .get(s)
                .and_then(Value::as_object)
                .is_some_and(|m| m.is_empty())
        {
            obj.shift_remove(s);
        }
    }
}

/// Remove `name` from every dependency section; false when it was in none.
pub fn remove_dependency(pkg: &mut Value, name: &str) -> bool {
    let Some(obj) = pkg.as_object_mut() else {
        return false;
    };
    let mut found = false;
    for s in DEP_SECTIONS {
        if let Some(Value::Object(m)) = obj.get_mut(s) {
            found |= m.shift_remove(name).is_some();
        }
    }
    found
}

/// Workspace member directories matched by the root's `workspaces` field (`dir/*` globs and
/// plain paths), relative to the project root, sorted.
pub fn workspace_dirs(project: &Path, root: &serde_json::Value) -> Result<Vec<String>> {
    let patterns: Vec<String> = match root.get("workspaces") {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Some(serde_json::Value::Object(o)) => o
            .get("packages")
            .and_then(|p| p.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        _ => vec![],
    };
    let mut out = Vec::new();
    for pat in patterns {
        let pat = pat.trim_start_matches("./").trim_end_matches('/');
        if pat.contains("..") {
            return Err(HoardError::InvalidInput(format!(
                "workspace pattern `{pat}` in {}/package.json leaves the project",
                project.display()
            )));
        }
        if let Some(dir) = pat.strip_suffix("/*").or_else(|| pat.strip_suffix("/**")) {
            let base = project.join(dir);
            if let Ok(rd) = std::fs::read_dir(&base) {
                for e in rd.flatten() {
                    if e.path().join("package.json").is_file() {
                        out.push(format!("{dir}/{}", e.file_name().to_string_lossy()));
                    }
                }
            }
        } else if project.join(pat).join("package.json").is_file() {
            out.push(pat.to_string());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_json_is_written_as_npm_writes_it() {
        let v = serde_json::json!({"name": "x", "dependencies": {"a": "1"}});
        let r = |orig: &str| String::from_utf8(render_like(&v, orig.as_bytes()).unwrap()).unwrap();
        // Indented: its indent and a final newline even when the original had none.
        assert_eq!(
            r("{\n\t\"name\": \"x\"\n}"),
            "{\n\t\"name\": \"x\",\n\t\"dependencies\": {\n\t\t\"a\": \"1\"\n\t}\n}\n"
        );
        // CRLF stays CRLF.
        assert!(r("{\r\n  \"name\": \"x\"\r\n}\r\n").ends_with("}\r\n"));
        assert_eq!(
            r("{\r\n  \"name\": \"x\"\r\n}\r\n").matches("\r\n").count(),
            6
        );
        // One line stays one line, with no newline added.
        assert_eq!(
            r("{\"name\":\"x\"}\n"),
            "{\"name\":\"x\",\"dependencies\":{\"a\":\"1\"}}"
        );
        // `{}` gets npm's two spaces.
        assert!(r("{}").starts_with("{\n  \"name\""));
    }

    #[test]
    fn edits_keep_order_and_indent() {
        let original = b"{\n    \"name\": \"x\",\n    \"dependencies\": {\n        \"b\": \"1\"\n    },\n    \"scripts\": {}\n}\n";
        let mut v: Value = serde_json::from_slice(original).unwrap();
        set_dependency(&mut v, "dependencies", "a", "^2.0.0");
        let out = String::from_utf8(render_like(&v, original).unwrap()).unwrap();
        assert!(out.starts_with("{\n    \"name\""), "{out}");
        let a = out.find("\"a\"").unwrap();
        let b = out.find("\"b\"").unwrap();
        let scripts = out.find("\"scripts\"").unwrap();
        assert!(a < b && b < scripts, "{out}");
        assert!(out.ends_with("}\n"));
        set_dependency(&mut v, "devDependencies", "a", "^2.0.0");
        assert!(v["dependencies"].get("a").is_none());
        assert!(remove_dependency(&mut v, "a"));
        assert!(!remove_dependency(&mut v, "a"));
    }
}
