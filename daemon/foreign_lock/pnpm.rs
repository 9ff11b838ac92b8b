//! pnpm-lock.yaml: every key of `packages` names a package and its version: `/name/1.2.3`
//! (v5), `/name@1.2.3(peer@x)` (v6) or `name@1.2.3(peer@x)` (v9, whose `snapshots` repeat them).
//!
//! Must not: read anything but the keys (pnpm's own dependency maps are layout, not versions).

use yaml_rust2::{Yaml, YamlLoader};

/// (name, version) of every package the file locks.
pub fn pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not YAML ({e})"))?;
    let doc = docs.first().ok_or("an empty file")?;
    let version = match &doc["lockfileVersion"] {
        Yaml::String(s) => s.clone(),
        Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        _ => return Err("no lockfileVersion".into()),
    };
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| format!("lockfileVersion `{version}`"))?;
    if !(5..=9).contains(&major) {
        return Err(format!(
            "lockfileVersion {version} (hoard reads 5.x to 9.x)"
        ));
    }
    let mut out = Vec::new();
    for section in ["packages", "snapshots"] {
        let Some(h) = doc[section].as_hash() else {
            continue;
        };
        for key in h.keys().filter_map(Yaml::as_str) {
            if let Some(p) = key_pair(key, major) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// A `packages` key as (name, version); None for a key that is not a registry package.
fn key_pair(key: &str, major: u32) -> Option<(String, String)> {
    let key = key.strip_prefix('/').unwrap_or(key);
    // Peer suffixes: `(react@18.2.0)` from v6 on, `_react@18.2.0` in v5.
    let key = key.split('(').next().unwrap_or(key);
    if major < 6 {
        let (name, version) = key.rsplit_once('/')?;
        let version = version.split('_').next().unwrap_or(version);
        return Some((name.to_string(), version.to_string()));
    }
    let (name, version) = super::split_name(key)?;
    Some((name.to_string(), version.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_of_the_format_names_its_packages() {
        let v9 = "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      a:\n        specifier: ^1.0.0\n        version: 1.0.0\npackages:\n  a@1.0.0:\n    resolution: {integrity: sha512-x}\n  '@s/b@2.0.0':\n    resolution: {integrity: sha512-y}\n  c@3.0.0(a@1.0.0):\n    resolution: {integrity: sha512-z}\nsnapshots:\n  a@1.0.0: {}\n";
        let mut p = pairs(v9).unwrap();
        p.sort();
        p.dedup();
        assert_eq!(
            p,
            [("@s/b", "2.0.0"), ("a", "1.0.0"), ("c", "3.0.0")]
                .map(|(n, v)| (n.to_string(), v.to_string()))
        );
        let v6 = "lockfileVersion: '6.0'\npackages:\n  /a@1.0.0:\n    dev: false\n  /@s/b@2.0.0(a@1.0.0):\n    dev: true\n";
        assert_eq!(pairs(v6).unwrap().len(), 2);
        assert!(
            pairs(v6)
                .unwrap()
                .contains(&("@s/b".into(), "2.0.0".into()))
        );
        let v5 = "lockfileVersion: 5.4\npackages:\n  /a/1.0.0:\n    dev: false\n  /@s/b/2.0.0_a@1.0.0:\n    dev: false\n";
        assert!(
            pairs(v5)
                .unwrap()
                .contains(&("@s/b".into(), "2.0.0".into()))
        );
        assert!(pairs("lockfileVersion: '3'\n").unwrap_err().contains("3"));
    }
}
