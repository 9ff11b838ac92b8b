//! npm's configuration files as both binaries read them: `.npmrc` text (the ini subset npm
//! uses, `${VAR}` expansion from the request's environment, `key[]=` lists) and the layering of
//! npm's sources for a project: `npm_config_*` variables over the project's `.npmrc` over the
//! user's `~/.npmrc`. The daemon reads install settings from it; the client, the few that `hoard
//! run` needs (`script-shell`, `node-options`, `if-present`, `ignore-scripts`).
//!
//! Must not: read anything but the two .npmrc files.

use std::collections::HashMap;
use std::path::Path;

/// npm's "nerf dart": `https://host:port/path/x` → `//host:port/path/` (query and file
/// stripped to the directory): the key prefix credentials are kept under in .npmrc (the
/// daemon reads them, `hoard login` writes them).
pub fn nerf_dart(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let dir = match rest.rfind('/') {
        Some(i) => &rest[..=i],
        None => return Some(format!("//{rest}/")),
    };
    Some(format!("//{dir}"))
}

/// Expand `${VAR}` (and `${VAR?}`) from `env`; unknown variables expand to "" as npm does.
pub fn expand(value: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = after[..end].trim_end_matches('?');
                out.push_str(env.get(name).map(String::as_str).unwrap_or(""));
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parse .npmrc text into key/value pairs (ini subset npm uses: `key=value`, `;`/`#` comments,
/// optional quotes).
pub fn parse_npmrc(text: &str, env: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty()
            || line.starts_with(';')
            || line.starts_with('#')
            || line.starts_with('[')
        {
            continue;
        }
        // A bare `key` is `key=true`, as npm's ini parser reads it.
        let (k, v) = line.split_once('=').unwrap_or((line, "true"));
        let k = expand(k.trim(), env);
        let mut v = v.trim();
        if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            v = &v[1..v.len() - 1];
        }
        out.push((k, expand(v, env)));
    }
    out
}

/// `key[]=a` lines of one file joined into one value (newline-separated).
pub fn with_lists(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in pairs {
        match k.strip_suffix("[]") {
            Some(key) => match out.iter_mut().find(|(k2, _)| k2 == key) {
                Some((_, acc)) => {
                    acc.push('\n');
                    acc.push_str(&v);
                }
                None => out.push((key.to_string(), v)),
            },
            None => out.push((k, v)),
        }
    }
    out
}

/// Every setting for `project_dir` under `env`, higher-priority sources already applied.
pub fn layered(project_dir: &Path, env: &HashMap<String, String>) -> HashMap<String, String> {
    let mut values = HashMap::new();
    if let Some(home) = env.get("HOME") {
        let user = Path::new(home).join(".npmrc");
        if let Ok(text) = std::fs::read_to_string(&user) {
            values.extend(with_lists(parse_npmrc(&text, env)));
        }
    }
    if let Ok(text) = std::fs::read_to_string(project_dir.join(".npmrc")) {
        values.extend(with_lists(parse_npmrc(&text, env)));
    }
    for (k, v) in env {
        let lower = k.to_ascii_lowercase();
        if let Some(key) = lower.strip_prefix("npm_config_") {
            if key.is_empty() {
                continue;
            }
            // npm maps `_` to `-` in env keys except for leading underscores (`_auth`).
            let key = if let Some(stripped) = key.strip_prefix('_') {
                format!("_{}", stripped.replace('_', "-"))
            } else {
                key.replace('_', "-")
            };
            values.insert(key, v.clone());
        }
    }
    values
}
