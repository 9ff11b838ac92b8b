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
    /// `registry` with a trailing slash (asked once per package a resolve looks at).
    registry: String,
    /// Whether a release-age setting needs publication times (see `wants_publish_times`).
    publish_times: bool,
}

impl NpmConfig {
    /// Load for a project directory and a request environment.
    pub fn load(project_dir: &Path, env: &HashMap<String, String>) -> NpmConfig {
        let values = hoard_proto::npmrc::layered(project_dir, env);
        let remote = values
            .get("hoard-remote-cache")
            .filter(|u| !u.is_empty())
            .map(|url| {
                let mode = values.get("hoard-remote-cache-mode").map(String::as_str);
                crate::remote::RemoteCache::open(url, mode, env).map(std::sync::Arc::new)
            });
        NpmConfig::assemble(values, remote)
    }

    fn assemble(
        values: HashMap<String, String>,
        remote: Option<Result<std::sync::Arc<crate::remote::RemoteCache>, String>>,
    ) -> NpmConfig {
        let get = |k: &str| values.get(k).map(String::as_str);
        let registry = with_slash(get("registry").unwrap_or(DEFAULT_REGISTRY));
        let publish_times = ["before", "min-release-age", "minimum-release-age"]
            .iter()
            .any(|k| get(k).is_some_and(|v| !v.is_empty() && v != "0" && v != "null"));
        NpmConfig {
            values,
            remote,
            registry,
            publish_times,
        }
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
        NpmConfig::assemble(pairs.into_iter().collect(), None)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Feed every setting (in key order) into `h`: two configurations that hash alike say the
    /// same.
    pub fn hash_into(&self, h: &mut blake3::Hasher) {
        let mut keys: Vec<&String> = self.values.keys().collect();
        keys.sort();
        for k in keys {
            // Each length first: no setting's bytes can pass for another's.
            for part in [k.as_bytes(), self.values[k].as_bytes()] {
                h.update(&(part.len() as u64).to_le_bytes());
                h.update(part);
            }
        }
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
        self.publish_times
    }

    /// The default registry, with a trailing slash.
    pub fn default_registry(&self) -> String {
        self.registry.clone()
    }

    /// The registry serving `name` (`@scope:registry` for scoped names).
    pub fn registry_for(&self, name: &str) -> String {
        self.registry_base(name).into_owned()
    }

    /// `registry_for`, borrowed when it is the default registry (no allocation per name).
    pub fn registry_base(&self, name: &str) -> std::borrow::Cow<'_, str> {
        match name.split_once('/') {
            Some((scope, _)) if name.starts_with('@') => self.registry_for_scope(scope).into(),
            _ => self.registry.as_str().into(),
        }
    }

    /// The registry of `scope` (`@s` or `s`): `@s:registry`, else the default one.
    pub fn registry_for_scope(&self, scope: &str) -> String {
        let scope = scope.trim_start_matches('@');
        match self.get(&format!("@{scope}:registry")) {
            Some(r) => with_slash(r),
            None => self.default_registry(),
        }
    }

    /// The `Authorization` header for `url`: the credentials of the longest matching
    /// `//host/path/:` key; top-level `_authToken`/`_auth` apply to the default registry.
    pub fn auth_for(&self, url: &str) -> Option<String> {
        let nerf = hoard_proto::npmrc::nerf_dart(url)?;
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
        let default_nerf = hoard_proto::npmrc::nerf_dart(&self.default_registry())?;
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
fn with_slash(s: &str) -> String {
    if s.ends_with('/') {
        s.to_string()
    } else {
        format!("{s}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoard_proto::npmrc::parse_npmrc;

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
