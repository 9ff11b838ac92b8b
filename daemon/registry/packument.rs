//! Packument and manifest types: the fields of registry metadata hoard uses, parsed leniently
//! (old versions on the registry carry every kind of malformed field; a bad field of one version
//! must not make the whole package unusable).
//!
//! Must not: do I/O.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

/// Deserialize `T`, falling back to its default when the value has another shape.
fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned + Default,
{
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).unwrap_or_default())
}

/// A string→string map where non-string values are dropped.
fn lenient_map<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    let v = serde_json::Value::deserialize(d)?;
    let mut out = BTreeMap::new();
    if let serde_json::Value::Object(m) = v {
        for (k, v) in m {
            if let serde_json::Value::String(s) = v {
                out.insert(k, s);
            }
        }
    }
    Ok(out)
}

/// A list of strings that may also be given as one string.
fn string_list<'de, D>(d: D) -> Result<Vec<String>, D::Error>
where
    D: Deserializer<'de>,
{
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::String(s) => vec![s],
        serde_json::Value::Array(a) => a
            .into_iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    })
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Dist {
    #[serde(default, deserialize_with = "lenient")]
    pub tarball: String,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub integrity: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub shasum: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PeerMeta {
    #[serde(default, deserialize_with = "lenient")]
    pub optional: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Directories {
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub bin: Option<String>,
}

/// One version of a package, as the registry (or a package.json) describes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default, deserialize_with = "lenient")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient")]
    pub version: String,
    #[serde(
        default,
        deserialize_with = "lenient_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub dependencies: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "lenient_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub optional_dependencies: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "lenient_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub peer_dependencies: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub peer_dependencies_meta: BTreeMap<String, PeerMeta>,
    #[serde(
        default,
        deserialize_with = "lenient_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub dev_dependencies: BTreeMap<String, String>,
    #[serde(
        default,
        alias = "bundledDependencies",
        deserialize_with = "lenient",
        skip_serializing_if = "serde_json::Value::is_null"
    )]
    pub bundle_dependencies: serde_json::Value,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "serde_json::Value::is_null"
    )]
    pub bin: serde_json::Value,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub directories: Option<Directories>,
    #[serde(default, deserialize_with = "lenient")]
    pub dist: Dist,
    #[serde(
        default,
        deserialize_with = "string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub os: Vec<String>,
    #[serde(
        default,
        deserialize_with = "string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cpu: Vec<String>,
    #[serde(
        default,
        deserialize_with = "string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub libc: Vec<String>,
    #[serde(
        default,
        deserialize_with = "lenient_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub engines: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub deprecated: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub has_install_script: bool,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub license: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub scripts: BTreeMap<String, String>,
}

impl Manifest {
    /// `bundleDependencies` as a list of names (`true` means all dependencies).
    pub fn bundled(&self) -> Vec<String> {
        match &self.bundle_dependencies {
            serde_json::Value::Bool(true) => self.dependencies.keys().cloned().collect(),
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        }
    }

    /// Whether it has preinstall/install/postinstall scripts (per the registry's flag or the
    /// scripts themselves).
    pub fn install_scripts(&self) -> bool {
        self.has_install_script
            || ["preinstall", "install", "postinstall"]
                .iter()
                .any(|k| self.scripts.contains_key(*k))
    }
}

/// A package's metadata document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Packument {
    #[serde(default, deserialize_with = "lenient")]
    pub name: String,
    #[serde(rename = "dist-tags", default, deserialize_with = "lenient_map")]
    pub dist_tags: BTreeMap<String, String>,
    #[serde(default)]
    pub versions: HashMap<String, Arc<Manifest>>,
    /// Parsed versions, highest first (built by `prepared`).
    #[serde(skip)]
    pub sorted: Vec<(semver::Version, String)>,
}

impl Packument {
    /// Sort versions for picking. Versions that are not valid semver are ignored, as npm does.
    pub fn prepared(mut self) -> Packument {
        let mut sorted: Vec<(semver::Version, String)> = self
            .versions
            .keys()
            .filter_map(|v| crate::semver_npm::parse_version(v).map(|p| (p, v.clone())))
            .collect();
        sorted.sort_by(|a, b| crate::semver_npm::cmp(&b.0, &a.0));
        self.sorted = sorted;
        self
    }
}
