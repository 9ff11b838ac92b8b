//! Manifest types: the fields of a version's registry metadata hoard uses, parsed leniently
//! (old versions on the registry carry every kind of malformed field; a bad field of one version
//! must not make the whole package unusable).
//!
//! Must not: do I/O.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Deserialize `T`, falling back to its default when the value has another shape. Goes through
/// `serde_json::Value`: only for small, rare fields.
fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned + Default,
{
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).unwrap_or_default())
}

/// `engines`: ranges by engine (`{"node": ">=18"}`), or npm's old array form (`["node >= 0.8"]`),
/// which npm copies into the lockfile as it is and checks nothing against.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Engines {
    Map(BTreeMap<String, String>),
    List(Vec<String>),
}

impl Default for Engines {
    fn default() -> Engines {
        Engines::Map(BTreeMap::new())
    }
}

impl Engines {
    /// The range for `engine` (none in the array form).
    pub fn get(&self, engine: &str) -> Option<&String> {
        match self {
            Engines::Map(m) => m.get(engine),
            Engines::List(_) => None,
        }
    }

    /// Nothing to write: an empty map (an array is written even when empty, as npm does).
    pub fn is_empty(&self) -> bool {
        matches!(self, Engines::Map(m) if m.is_empty())
    }

    /// Read from a JSON value: a map's string values, an array's strings, else nothing.
    pub fn from_json(v: Option<&Value>) -> Engines {
        match v {
            Some(Value::Array(a)) => Engines::List(
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
            ),
            other => Engines::Map(str_map(other)),
        }
    }
}

/// `engines` in either form; any other shape reads as none (as `lenient_map` does).
fn engines<'de, D: Deserializer<'de>>(d: D) -> Result<Engines, D::Error> {
    Ok(Engines::from_json(Some(&Value::deserialize(d)?)))
}

/// A JSON value reduced to what the hot fields need, without building a tree: strings (borrowed
/// from the document unless they had escapes) and booleans are kept, anything else is skipped
/// in place.
pub(super) enum Loose<'de> {
    Str(Cow<'de, str>),
    Bool(bool),
    Other,
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Loose<'de>, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose<'de>, E> {
        Ok(Loose::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Loose<'de>, E> {
        Ok(Loose::Str(Cow::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Loose<'de>, E> {
        Ok(Loose::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Loose<'de>, E> {
        Ok(Loose::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Loose<'de>, E> {
        Ok(Loose::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Loose<'de>, E> {
        Ok(Loose::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Loose<'de>, E> {
        Ok(Loose::Other)
    }
    fn visit_none<E: de::Error>(self) -> Result<Loose<'de>, E> {
        Ok(Loose::Other)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Loose<'de>, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Loose<'de>, A::Error> {
        while a.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Loose<'de>, A::Error> {
        while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Loose<'de>, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

impl Loose<'_> {
    /// The string, or "" for any other shape.
    pub(super) fn into_string(self) -> String {
        match self {
            Loose::Str(s) => s.into_owned(),
            _ => String::new(),
        }
    }
}

/// A string, or "" for any other shape.
pub(super) fn loose_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Loose::deserialize(d)?.into_string())
}

/// Some string, or None for any other shape.
pub(super) fn loose_opt_string<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    Ok(match Loose::deserialize(d)? {
        Loose::Str(s) => Some(s.into_owned()),
        _ => None,
    })
}

/// A boolean, or false for any other shape.
fn loose_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(matches!(Loose::deserialize(d)?, Loose::Bool(true)))
}

/// An object key, borrowed from the document unless it had escapes.
pub(super) struct Key<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Hand each string member of an object to `each`, in document order (members with other
/// values are skipped in place); any other shape has none. Borrowed from the document where
/// it allows.
pub(super) fn loose_members<'de, D, F>(d: D, each: F) -> Result<(), D::Error>
where
    D: Deserializer<'de>,
    F: FnMut(Cow<'de, str>, Cow<'de, str>),
{
    d.deserialize_any(MembersVisitor(each))
}

struct MembersVisitor<F>(F);

impl<'de, F: FnMut(Cow<'de, str>, Cow<'de, str>)> Visitor<'de> for MembersVisitor<F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map of strings")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut a: A) -> Result<(), A::Error> {
        while let Some(k) = a.next_key::<Key<'de>>()? {
            if let Loose::Str(v) = a.next_value()? {
                (self.0)(k.0, v);
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        while a.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A string→string map where non-string values are dropped (a later member wins over an
/// earlier one of the same name) and a non-map is empty.
pub(super) fn lenient_map<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    let mut out = BTreeMap::new();
    loose_members(d, |k, v| {
        out.insert(k.into_owned(), v.into_owned());
    })?;
    Ok(out)
}

/// A list of strings that may also be given as one string.
fn string_list<'de, D>(d: D) -> Result<Vec<String>, D::Error>
where
    D: Deserializer<'de>,
{
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_string()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(x) = a.next_element::<Loose>()? {
                if let Loose::Str(s) = x {
                    out.push(s.into_owned());
                }
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(vec![])
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(vec![])
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(vec![])
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(vec![])
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(vec![])
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(vec![])
        }
    }
    d.deserialize_any(V)
}

/// A struct whose fields are all lenient; any non-object becomes the default.
fn loose_struct<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<T, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(a))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<T, A::Error> {
            while a.next_element::<IgnoredAny>()?.is_some() {}
            Ok(T::default())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<T, E> {
            Ok(T::default())
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Dist {
    #[serde(default, deserialize_with = "loose_string")]
    pub tarball: String,
    #[serde(
        default,
        deserialize_with = "loose_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub integrity: Option<String>,
    #[serde(
        default,
        deserialize_with = "loose_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub shasum: Option<String>,
    /// The registry's ECDSA signatures over `<name>@<version>:<integrity>`.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub signatures: Vec<DistSignature>,
    /// Where the registry keeps this version's attestations (provenance, publish).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub attestations: Option<DistAttestations>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DistSignature {
    #[serde(default, deserialize_with = "loose_string")]
    pub keyid: String,
    #[serde(default, deserialize_with = "loose_string")]
    pub sig: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DistAttestations {
    #[serde(default, deserialize_with = "loose_string")]
    pub url: String,
    #[serde(default, deserialize_with = "lenient")]
    pub provenance: Option<Provenance>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    #[serde(rename = "predicateType", default, deserialize_with = "loose_string")]
    pub predicate_type: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PeerMeta {
    #[serde(default, deserialize_with = "loose_bool")]
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
    #[serde(default, deserialize_with = "loose_string")]
    pub name: String,
    #[serde(default, deserialize_with = "loose_string")]
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
    #[serde(default, deserialize_with = "loose_struct")]
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
        deserialize_with = "engines",
        skip_serializing_if = "Engines::is_empty"
    )]
    pub engines: Engines,
    #[serde(
        default,
        deserialize_with = "loose_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub deprecated: Option<String>,
    #[serde(
        default,
        deserialize_with = "loose_bool",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub has_install_script: bool,
    #[serde(
        default,
        deserialize_with = "loose_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub license: Option<String>,
    /// Written to the lockfile as npm writes it (any non-empty value).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "serde_json::Value::is_null"
    )]
    pub funding: serde_json::Value,
    #[serde(
        default,
        deserialize_with = "lenient_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub scripts: BTreeMap<String, String>,
    /// The package's own `workspaces`, as it declares them: npm copies them into its lockfile
    /// entry (nothing else reads them).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "serde_json::Value::is_null"
    )]
    pub workspaces: serde_json::Value,
    /// What the resolver derived from this manifest (its dependency edges, specs parsed), kept
    /// so the next resolve does not derive it again. Not part of the manifest's value.
    #[serde(skip)]
    pub derived: Derived,
}

/// A slot for what another module derives from a manifest, filled once. It is not part of the
/// manifest's value: never serialized, always equal, and empty in a clone. (Typed as `Any` so
/// this module need not know the resolver's types.)
#[derive(Default)]
pub struct Derived(std::sync::OnceLock<std::sync::Arc<dyn std::any::Any + Send + Sync>>);

impl Derived {
    /// The value in the slot, made by `make` the first time; `None` if the slot holds another
    /// type.
    pub fn get_or_init<T: Send + Sync + 'static>(
        &self,
        make: impl FnOnce() -> T,
    ) -> Option<std::sync::Arc<T>> {
        let any = self.0.get_or_init(|| std::sync::Arc::new(make()));
        any.clone().downcast::<T>().ok()
    }
}

impl Clone for Derived {
    fn clone(&self) -> Derived {
        Derived::default()
    }
}

impl PartialEq for Derived {
    fn eq(&self, _: &Derived) -> bool {
        true
    }
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Derived(..)"
        } else {
            "Derived"
        })
    }
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

    /// Whether `bundled()` would name anything (without building the list).
    pub fn bundles_any(&self) -> bool {
        match &self.bundle_dependencies {
            serde_json::Value::Bool(true) => !self.dependencies.is_empty(),
            serde_json::Value::Array(a) => a.iter().any(serde_json::Value::is_string),
            _ => false,
        }
    }

    /// Whether `name` is in `bundleDependencies` (without building the list).
    pub fn bundles(&self, name: &str) -> bool {
        match &self.bundle_dependencies {
            serde_json::Value::Bool(true) => self.dependencies.contains_key(name),
            serde_json::Value::Array(a) => a.iter().any(|x| x.as_str() == Some(name)),
            _ => false,
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

pub fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => vec![],
    }
}

impl Manifest {
    /// A manifest from a lock entry (or a package.json object): the fields hoard needs.
    pub fn from_json(name: &str, v: &Value) -> Manifest {
        Manifest {
            name: v
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(name)
                .to_string(),
            version: v
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            dependencies: str_map(v.get("dependencies")),
            optional_dependencies: str_map(v.get("optionalDependencies")),
            peer_dependencies: str_map(v.get("peerDependencies")),
            peer_dependencies_meta: v
                .get("peerDependenciesMeta")
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .map(|(k, m)| {
                            (
                                k.clone(),
                                PeerMeta {
                                    optional: m
                                        .get("optional")
                                        .and_then(Value::as_bool)
                                        .unwrap_or(false),
                                },
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            dev_dependencies: str_map(v.get("devDependencies")),
            bundle_dependencies: v
                .get("bundleDependencies")
                .or_else(|| v.get("bundledDependencies"))
                .cloned()
                .unwrap_or(Value::Null),
            bin: v.get("bin").cloned().unwrap_or(Value::Null),
            funding: v.get("funding").cloned().unwrap_or(Value::Null),
            directories: v
                .get("directories")
                .and_then(|d| d.get("bin"))
                .and_then(Value::as_str)
                .map(|b| Directories {
                    bin: Some(b.to_string()),
                }),
            dist: Dist {
                tarball: v
                    .get("resolved")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                integrity: v.get("integrity").and_then(Value::as_str).map(String::from),
                ..Default::default()
            },
            os: str_list(v.get("os")),
            cpu: str_list(v.get("cpu")),
            libc: str_list(v.get("libc")),
            engines: Engines::from_json(v.get("engines")),
            deprecated: v
                .get("deprecated")
                .and_then(Value::as_str)
                .map(String::from),
            has_install_script: v
                .get("hasInstallScript")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            license: v.get("license").and_then(Value::as_str).map(String::from),
            scripts: str_map(v.get("scripts")),
            workspaces: v.get("workspaces").cloned().unwrap_or(Value::Null),
            derived: Derived::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_fields_of_old_versions_do_not_break_the_packument() {
        let doc = br#"{
          "name": "old", "dist-tags": {"latest": "1.0.0", "weird": 3},
          "versions": {
            "0.0.1": {"name": "old", "version": "0.0.1", "dependencies": ["a", "b"],
                      "engines": ["node >= 0.4"], "license": {"type": "MIT"}, "deprecated": false,
                      "os": "linux", "dist": "nope", "hasInstallScript": "yes"},
            "1.0.0": {"name": "old", "version": "1.0.0", "dependencies": {"a": "^1", "b": 2},
                      "license": "MIT", "deprecated": "use new", "cpu": ["x64", 7],
                      "dist": {"tarball": "https://r/old-1.0.0.tgz", "integrity": "sha512-x", "shasum": null},
                      "peerDependenciesMeta": {"p": {"optional": true}}, "hasInstallScript": true}
          }
        }"#;
        let p = super::super::compact::Packument::parse(doc).unwrap();
        let old = p.manifest("0.0.1").unwrap();
        assert!(old.dependencies.is_empty());
        // npm's old array form is kept as written (the lockfile has it), and checks nothing.
        assert_eq!(old.engines, Engines::List(vec!["node >= 0.4".into()]));
        assert_eq!(old.engines.get("node"), None);
        assert_eq!(old.license, None);
        assert_eq!(old.deprecated, None);
        assert_eq!(old.os, vec!["linux".to_string()]);
        assert_eq!(old.dist, Dist::default());
        assert!(!old.has_install_script);
        let new = p.manifest("1.0.0").unwrap();
        assert_eq!(new.dependencies.len(), 1);
        assert_eq!(new.cpu, vec!["x64".to_string()]);
        assert_eq!(new.deprecated.as_deref(), Some("use new"));
        assert_eq!(new.dist.tarball, "https://r/old-1.0.0.tgz");
        assert_eq!(new.dist.shasum, None);
        assert!(new.peer_dependencies_meta["p"].optional);
        assert!(new.has_install_script);
        assert_eq!(p.dist_tags.len(), 1);
        assert_eq!(&*p.sorted[0].raw, "1.0.0");
    }
}
