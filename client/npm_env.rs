//! The environment npm gives a script beyond PATH and the lifecycle names (@npmcli/run-script's
//! `package-envs.js` and @npmcli/config's `set-envs.js`): `npm_package_*` from the package's
//! name, version, `config`, `engines` and `bin`; `npm_config_*` for the npm settings in effect;
//! `npm_config_local_prefix`, `npm_execpath`, `npm_node_execpath` and `NODE`.
//!
//! Must not: run anything.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

/// npm's flattening of package.json fields into `npm_package_*` (`config.port` →
/// `npm_package_config_port`, arrays by index, `false`/`null` as empty).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Null | Value::Bool(false) => out.push((prefix.to_string(), String::new())),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}_{i}"), x, out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                flatten(&format!("{prefix}_{k}"), x, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// `npm_package_*` for a package.json.
pub fn package(pkg: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for key in ["name", "version", "config", "engines", "bin"] {
        if let Some(v) = pkg.get(key) {
            flatten(&format!("npm_package_{key}"), v, &mut out);
        }
    }
    out
}

/// `npm_config_*` for the settings in effect that differ from npm's defaults (not scoped
/// registries, credentials or private keys; `false` as empty, as npm exports it).
pub fn config(settings: &HashMap<String, String>) -> Vec<(String, String)> {
    let default = |k: &str| {
        crate::npm_defaults::DEFAULTS
            .iter()
            .find(|(d, _)| *d == k)
            .map(|(_, v)| *v)
    };
    let mut out: Vec<(String, String)> = settings
        .iter()
        .filter(|(k, _)| !k.starts_with(['/', '@', '_']) && !k.contains(":_"))
        .filter(|(k, v)| {
            let v = if v.is_empty() { "true" } else { v.as_str() };
            default(k) != Some(v) && !(default(k) == Some("") && v == "false")
        })
        .map(|(k, v)| {
            let value = if v == "false" {
                String::new()
            } else {
                v.clone()
            };
            (
                format!("npm_config_{}", k.replace('-', "_").to_lowercase()),
                value,
            )
        })
        .collect();
    out.sort();
    out
}

/// `npm_config_local_prefix`, `npm_execpath` (this hoard), and node's path as npm gives it.
pub fn tools(root: &Path, path_var: &std::ffi::OsStr) -> Vec<(String, String)> {
    let mut out = vec![(
        "npm_config_local_prefix".to_string(),
        root.display().to_string(),
    )];
    if let Ok(me) = std::env::current_exe() {
        out.push(("npm_execpath".into(), me.display().to_string()));
    }
    let node = std::env::split_paths(path_var)
        .map(|d| d.join("node"))
        .find(|p| p.is_file());
    if let Some(node) = node {
        let node = node.display().to_string();
        out.push(("npm_node_execpath".into(), node.clone()));
        out.push(("NODE".into(), node));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn package_fields_flatten_as_npm_flattens_them() {
        let pkg = json!({"name": "a", "version": "1.0.0", "config": {"port": 8080, "x": {"y": false}},
                         "engines": {"node": ">=18"}, "bin": {"a": "cli.js"}, "scripts": {"t": "x"}});
        let env: HashMap<String, String> = package(&pkg).into_iter().collect();
        assert_eq!(env["npm_package_config_port"], "8080");
        assert_eq!(env["npm_package_config_x_y"], "");
        assert_eq!(env["npm_package_engines_node"], ">=18");
        assert_eq!(env["npm_package_bin_a"], "cli.js");
        assert!(!env.contains_key("npm_package_scripts_t"));
        let s = HashMap::from([
            ("fund".to_string(), "false".to_string()),
            ("audit".to_string(), "true".to_string()),
            ("save-exact".to_string(), "true".to_string()),
            ("//r/:_authToken".to_string(), "secret".to_string()),
            ("@s:registry".to_string(), "x".to_string()),
        ]);
        assert_eq!(
            config(&s),
            [
                ("npm_config_fund".to_string(), String::new()),
                ("npm_config_save_exact".to_string(), "true".to_string())
            ]
        );
    }
}
