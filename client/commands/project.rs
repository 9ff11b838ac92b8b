//! `hoard init` and `hoard version`: a project's package.json, written and bumped as npm does
//! (`npm init -y`'s fields; `npm version`'s increments, package-lock.json's version, the
//! preversion/version/postversion scripts, and a git commit and `v<version>` tag in a git
//! working tree, through the `git` on PATH as npm uses it).
//!
//! Must not: talk to the daemon or a registry.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};

use crate::cli::Cli;
use crate::commands::pack::lifecycle;

/// npm's name for a folder: `node-` and `.js`/`-js` dropped, spaces made dashes, lower case.
fn nice_name(dir: &Path) -> String {
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut n = base.strip_prefix("node-").unwrap_or(&base).to_string();
    for suffix in [".js", "-js"] {
        if let Some(s) = n.strip_suffix(suffix) {
            n = s.to_string();
        }
    }
    n.split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
        .to_lowercase()
}

/// The indentation package.json uses (npm keeps it when it rewrites the file).
fn indent_of(text: &str) -> String {
    text.lines()
        .nth(1)
        .map(|l| {
            l.chars()
                .take_while(|c| c.is_whitespace())
                .collect::<String>()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "  ".into())
}

fn write_json(path: &Path, v: &Value, indent: &str) -> Result<()> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser)?;
    buf.push(b'\n');
    std::fs::write(path, buf).with_context(|| format!("writing `{}`", path.display()))
}

/// `hoard init [-y]`: package.json with npm's defaults (an existing one keeps its fields).
pub fn init(dir: &Path) -> Result<u8> {
    let path = dir.join("package.json");
    let existing: Map<String, Value> = match std::fs::read_to_string(&path) {
        Ok(t) => serde_json::from_str(&t)
            .with_context(|| format!("`{}` is not valid JSON", path.display()))?,
        Err(_) => Map::new(),
    };
    let defaults = json!({
        "name": nice_name(dir),
        "version": "1.0.0",
        "description": "",
        "main": "index.js",
        "scripts": { "test": "echo \"Error: no test specified\" && exit 1" },
        "keywords": [],
        "author": "",
        "license": "ISC",
        "type": "commonjs",
    });
    let mut out = Map::new();
    for (k, v) in defaults.as_object().into_iter().flatten() {
        out.insert(
            k.clone(),
            existing.get(k).cloned().unwrap_or_else(|| v.clone()),
        );
    }
    for (k, v) in &existing {
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let v = Value::Object(out);
    write_json(&path, &v, "  ")?;
    println!(
        "Wrote to {}:\n\n{}\n",
        path.display(),
        serde_json::to_string_pretty(&v)?
    );
    Ok(0)
}

/// npm version's increments (node-semver's `inc`).
pub fn bump(current: &semver::Version, what: &str, preid: Option<&str>) -> Result<semver::Version> {
    use semver::{BuildMetadata, Prerelease, Version};
    let pre = |s: &str| Prerelease::new(s).map_err(|e| anyhow!("prerelease `{s}`: {e}"));
    let first_pre = || pre(&preid.map_or("0".to_string(), |p| format!("{p}.0")));
    let is_pre = !current.pre.is_empty();
    let mut v = Version::new(current.major, current.minor, current.patch);
    match what {
        "major" => {
            if !(is_pre && current.minor == 0 && current.patch == 0) {
                v = Version::new(v.major + 1, 0, 0);
            }
        }
        "minor" => {
            if !(is_pre && current.patch == 0) {
                v = Version::new(v.major, v.minor + 1, 0);
            }
        }
        "patch" => {
            if !is_pre {
                v.patch += 1;
            }
        }
        "premajor" | "preminor" | "prepatch" => {
            v = match what {
                "premajor" => Version::new(v.major + 1, 0, 0),
                "preminor" => Version::new(v.major, v.minor + 1, 0),
                _ => Version::new(v.major, v.minor, v.patch + 1),
            };
            v.pre = first_pre()?;
        }
        "prerelease" => {
            if !is_pre {
                v.patch += 1;
                v.pre = first_pre()?;
            } else {
                let parts: Vec<&str> = current.pre.as_str().split('.').collect();
                let same_id = preid.is_none_or(|p| parts.first() == Some(&p));
                let next = match (same_id, parts.last().and_then(|l| l.parse::<u64>().ok())) {
                    (true, Some(n)) => {
                        let mut p = parts[..parts.len() - 1].to_vec();
                        let n = (n + 1).to_string();
                        p.push(&n);
                        p.join(".")
                    }
                    (true, None) => format!("{}.0", current.pre),
                    (false, _) => format!("{}.0", preid.unwrap_or("0")),
                };
                v.pre = pre(&next)?;
            }
        }
        explicit => {
            let e = explicit.strip_prefix('v').unwrap_or(explicit);
            return Version::parse(e).map_err(|_| {
                anyhow!(
                    "`{explicit}` is neither a version nor one of major, minor, patch, premajor, \
                     preminor, prepatch, prerelease"
                )
            });
        }
    }
    v.build = BuildMetadata::EMPTY;
    Ok(v)
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub struct VersionArgs<'a> {
    pub what: Option<&'a str>,
    pub preid: Option<&'a str>,
    pub no_git_tag_version: bool,
    pub allow_same_version: bool,
}

/// `hoard version <what>`: bump, run the scripts, commit and tag; prints `v<new>`.
pub fn version(cli: &Cli, dir: &Path, a: VersionArgs<'_>) -> Result<u8> {
    let path = dir.join("package.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading `{}`", path.display()))?;
    let mut pkg: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing `{}`", path.display()))?;
    let name = pkg["name"].as_str().unwrap_or("").to_string();
    let Some(what) = a.what else {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ name: pkg["version"] }))?
        );
        return Ok(0);
    };
    let current = pkg["version"].as_str().unwrap_or("0.0.0");
    let current = semver::Version::parse(current)
        .map_err(|_| anyhow!("`{}` has no valid version (`{current}`)", path.display()))?;
    let new = bump(&current, what, a.preid)?;
    if new == current && !a.allow_same_version {
        bail!("version not changed: {new} (use --allow-same-version)");
    }
    let settings = crate::scripts::Settings::load(dir);
    let tag_git = !a.no_git_tag_version
        && settings
            .values
            .get("git-tag-version")
            .is_none_or(|v| v != "false")
        && Command::new("git")
            .args(["rev-parse", "--is-inside-work-tree"])
            .current_dir(dir)
            .output()
            .is_ok_and(|o| o.status.success());
    if tag_git {
        // npm refuses a dirty tree (untracked files aside).
        let dirty: Vec<String> = git(dir, &["status", "--porcelain"])?
            .lines()
            .filter(|l| !l.starts_with("??"))
            .map(String::from)
            .collect();
        if !dirty.is_empty() {
            bail!("Git working directory not clean:\n{}", dirty.join("\n"));
        }
    }
    lifecycle(dir, "preversion", cli.json, "version")?;
    pkg["version"] = json!(new.to_string());
    write_json(&path, &pkg, &indent_of(&text))?;
    let lock_path = dir.join("package-lock.json");
    let mut files = vec!["package.json"];
    if let Ok(lt) = std::fs::read_to_string(&lock_path)
        && let Ok(mut lock) = serde_json::from_str::<Value>(&lt)
    {
        lock["version"] = json!(new.to_string());
        if let Some(root) = lock.pointer_mut("/packages/") {
            root["version"] = json!(new.to_string());
        }
        write_json(&lock_path, &lock, &indent_of(&lt))?;
        files.push("package-lock.json");
    }
    lifecycle(dir, "version", cli.json, "version")?;
    let prefix = settings
        .values
        .get("tag-version-prefix")
        .cloned()
        .unwrap_or_else(|| "v".into());
    let tag = format!("{prefix}{new}");
    if tag_git {
        let message = (settings.values.get("message").cloned())
            .unwrap_or_else(|| "%s".into())
            .replace("%s", &new.to_string());
        let mut add = vec!["add"];
        add.extend(files.iter());
        git(dir, &add)?;
        git(dir, &["commit", "-m", &message])?;
        git(dir, &["tag", &tag, "-m", &message])?;
    }
    lifecycle(dir, "postversion", cli.json, "version")?;
    println!("{tag}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::bump;

    fn b(v: &str, what: &str, preid: Option<&str>) -> String {
        bump(&semver::Version::parse(v).unwrap(), what, preid)
            .unwrap()
            .to_string()
    }

    #[test]
    fn increments_are_node_semvers() {
        assert_eq!(b("1.2.3", "major", None), "2.0.0");
        assert_eq!(b("1.2.3", "minor", None), "1.3.0");
        assert_eq!(b("1.2.3", "patch", None), "1.2.4");
        assert_eq!(b("2.0.0-rc.1", "major", None), "2.0.0");
        assert_eq!(b("1.3.0-rc.1", "minor", None), "1.3.0");
        assert_eq!(b("1.2.4-rc.1", "patch", None), "1.2.4");
        assert_eq!(b("1.2.3", "premajor", Some("beta")), "2.0.0-beta.0");
        assert_eq!(b("1.2.3", "preminor", None), "1.3.0-0");
        assert_eq!(b("1.2.3", "prerelease", None), "1.2.4-0");
        assert_eq!(b("1.2.4-beta.1", "prerelease", None), "1.2.4-beta.2");
        assert_eq!(b("1.2.4-beta.1", "prerelease", Some("rc")), "1.2.4-rc.0");
        assert_eq!(b("1.2.3", "v3.0.0", None), "3.0.0");
        assert!(bump(&semver::Version::parse("1.0.0").unwrap(), "huge", None).is_err());
    }

    #[test]
    fn folder_names_become_npm_names() {
        assert_eq!(
            super::nice_name(std::path::Path::new("/x/node-My App.js")),
            "my-app"
        );
        assert_eq!(super::nice_name(std::path::Path::new("/x/tool")), "tool");
    }
}
