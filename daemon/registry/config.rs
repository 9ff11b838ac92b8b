//! npm configuration as it applies to one install request: the project's `.npmrc`, the user's
//! `~/.npmrc` and `npm_config_*` variables, all taken from the request's environment (never
//! the daemon's own). Answers: which registry serves a package, and which credentials go with
//! a URL.
//!
//! Precedence is npm's: environment > project .npmrc > user .npmrc > defaults.
//! Must not: do I/O beyond reading the two .npmrc files.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;

pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org/";

#[derive(Debug, Clone, Default)]
pub struct NpmConfig {
    /// Key → value, later sources already overridden by earlier (higher-priority) ones.
    values: HashMap<String, String>,
    /// The team's remote tarball cache (`hoard-remote-cache`), or why it cannot be used.
    remote: Option<Result<std::sync::Arc<crate::remote::RemoteCache>, String>>,
}

/// Expand `${VAR}` (and `${VAR?}`) from `env`; unknown variables expand to "" as npm does.
fn expand(value: &str, env: &HashMap<String, String>) -> String {
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
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
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

impl NpmConfig {
    /// Load for a project directory and a request environment.
    pub fn load(project_dir: &Path, env: &HashMap<String, String>) -> NpmConfig {
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
        let remote = values
            .get("hoard-remote-cache")
            .filter(|u| !u.is_empty())
            .map(|url| {
                let mode = values.get("hoard-remote-cache-mode").map(String::as_str);
                crate::remote::RemoteCache::open(url, mode, env).map(std::sync::Arc::new)
            });
        NpmConfig { values, remote }
    }

    /// The remote tarball cache this request uses; an error when `hoard-remote-cache` is set
    /// but unusable.
    pub fn remote_cache(
        &self,
    ) -> Result<Option<std::sync::Arc<crate::remote::RemoteCache>>, String> {
        match &self.remote {
            None => Ok(None),
            Some(Ok(r)) => Ok(Some(r.clone())),
            Some(Err(e)) => Err(e.clone()),
        }
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> NpmConfig {
        NpmConfig {
            values: pairs.into_iter().collect(),
            remote: None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// A boolean setting: `key=true` or a bare `key`; None when unset.
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key).map(|v| v == "true" || v.is_empty())
    }

    /// A list setting: `key[]=a` lines of one file, or one value of comma-separated items (npm
    /// accepts both).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split([',', '\n'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether resolution needs each version's publication time (a release-age cooldown is
    /// set), so the full packument must be fetched: the abbreviated one has no `time`.
    pub fn wants_publish_times(&self) -> bool {
        ["before", "min-release-age", "minimum-release-age"]
            .iter()
            .any(|k| {
                self.get(k)
                    .is_some_and(|v| !v.is_empty() && v != "0" && v != "null")
            })
    }

    /// The default registry, with a trailing slash.
    pub fn default_registry(&self) -> String {
        with_slash(self.get("registry").unwrap_or(DEFAULT_REGISTRY))
    }

    /// The registry serving `name` (`@scope:registry` for scoped names).
    pub fn registry_for(&self, name: &str) -> String {
        if name.starts_with('@')
            && let Some((scope, _)) = name.split_once('/')
            && let Some(r) = self.get(&format!("{scope}:registry"))
        {
            return with_slash(r);
        }
        self.default_registry()
    }

    /// The `Authorization` header for `url`: the credentials of the longest matching
    /// `//host/path/:` key; top-level `_authToken`/`_auth` apply to the default registry.
    pub fn auth_for(&self, url: &str) -> Option<String> {
        let nerf = nerf_dart(url)?;
        // Try "//host/a/b/", then "//host/a/", then "//host/".
        let mut prefix = nerf.as_str();
        loop {
            if let Some(h) = self.auth_under(prefix) {
                return Some(h);
            }
            let trimmed = prefix.trim_end_matches('/');
            match trimmed.rfind('/') {
                Some(i) if i > 1 => prefix = &prefix[..=i],
                _ => break,
            }
        }
        let default_nerf = nerf_dart(&self.default_registry())?;
        if nerf.starts_with(&default_nerf) {
            if let Some(t) = self.get("_authToken") {
                return Some(format!("Bearer {t}"));
            }
            if let Some(a) = self.get("_auth") {
                return Some(format!("Basic {a}"));
            }
        }
        None
    }

    fn auth_under(&self, prefix: &str) -> Option<String> {
        if let Some(t) = self.get(&format!("{prefix}:_authToken")) {
            return Some(format!("Bearer {t}"));
        }
        if let Some(a) = self.get(&format!("{prefix}:_auth")) {
            return Some(format!("Basic {a}"));
        }
        if let (Some(u), Some(p)) = (
            self.get(&format!("{prefix}:username")),
            self.get(&format!("{prefix}:_password")),
        ) {
            let pass = base64::engine::general_purpose::STANDARD
                .decode(p)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_else(|| p.to_string());
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{pass}"));
            return Some(format!("Basic {token}"));
        }
        None
    }
}

/// One file's pairs with `key[]=value` lines gathered into `key` (items joined by newlines).
fn with_lists(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
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

fn with_slash(s: &str) -> String {
    if s.ends_with('/') {
        s.to_string()
    } else {
        format!("{s}/")
    }
}

/// npm's "nerf dart": `https://host:port/path/x` → `//host:port/path/` (query and file
/// stripped to the directory).
fn nerf_dart(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let dir = match rest.rfind('/') {
        Some(i) => &rest[..=i],
        None => return Some(format!("//{rest}/")),
    };
    Some(format!("//{dir}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_registries_and_tokens() {
        let env: HashMap<String, String> = [("NPM_TOKEN".to_string(), "s3cret".to_string())].into();
        let text = "registry=https://r.example.com/npm\n@corp:registry=https://corp.example.com/\n\
                    //corp.example.com/:_authToken=${NPM_TOKEN}\n; comment\n";
        let cfg = NpmConfig::from_pairs(parse_npmrc(text, &env));
        assert_eq!(cfg.registry_for("react"), "https://r.example.com/npm/");
        assert_eq!(cfg.registry_for("@corp/ui"), "https://corp.example.com/");
        assert_eq!(
            cfg.auth_for("https://corp.example.com/@corp/ui/-/ui-1.0.0.tgz")
                .as_deref(),
            Some("Bearer s3cret")
        );
        assert_eq!(cfg.auth_for("https://r.example.com/npm/react"), None);
    }

    #[test]
    fn env_overrides_files() {
        let env: HashMap<String, String> = [
            (
                "npm_config_registry".to_string(),
                "http://127.0.0.1:1/".to_string(),
            ),
            ("HOME".to_string(), "/nonexistent".to_string()),
        ]
        .into();
        let cfg = NpmConfig::load(Path::new("/nonexistent"), &env);
        assert_eq!(cfg.default_registry(), "http://127.0.0.1:1/");
    }
}
