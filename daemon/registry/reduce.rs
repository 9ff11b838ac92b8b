//! Reducing a registry document (full or abbreviated packument) to what the compact packument
//! keeps, in one pass over its bytes: each version's kept members are copied as written into one
//! shared buffer, with the facts picking needs of every version read on the way (deprecated,
//! `engines.node`, the publication time). Nothing else of the document is held: keys and
//! strings are borrowed from it, and whatever is not kept is skipped without being built.
//!
//! Must not: do I/O, sort or index versions (compact.rs assembles the packument), or parse a
//! version into a `Manifest` (that happens when one is looked at).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::packument::{Key, Loose, lenient_map, loose_members};

/// The keys of a version object `Manifest` reads; the compact form keeps their values as the
/// registry wrote them and leaves the rest out. `bundledDependencies` is `Manifest`'s alias of
/// `bundleDependencies` (the first of the two is kept). A test keeps this list in step with
/// `Manifest`'s fields.
pub(super) const KEPT: [&str; 22] = [
    "name",
    "version",
    "dependencies",
    "optionalDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "devDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "bin",
    "directories",
    "dist",
    "os",
    "cpu",
    "libc",
    "engines",
    "deprecated",
    "hasInstallScript",
    "license",
    "funding",
    "scripts",
    "workspaces",
];

/// The scripts that make a package an install-script package: the only ones kept.
pub(super) const INSTALL_SCRIPTS: [&str; 3] = ["preinstall", "install", "postinstall"];

/// The members of `dist` that `Dist` reads.
const DIST_KEPT: [&str; 5] = [
    "tarball",
    "integrity",
    "shasum",
    "signatures",
    "attestations",
];

/// One version, reduced: its compact bytes are `blob[start..start + len]` of the buffer it was
/// written into.
pub(super) struct Compacted {
    pub version: semver::Version,
    pub raw: String,
    pub start: u32,
    pub len: u32,
    pub deprecated: bool,
    pub node_engine: Option<String>,
    pub published: Option<i64>,
}

/// A document, reduced.
pub(super) struct Reduced {
    pub name: String,
    pub dist_tags: BTreeMap<String, String>,
    /// The versions that are valid semver, in document order.
    pub versions: Vec<Compacted>,
    /// Every version's compact bytes, back to back.
    pub blob: Vec<u8>,
    /// Whether the document carried publication times (the abbreviated form does not).
    pub has_time: bool,
}

/// Reduce a registry document; an error when it is not JSON, or not an object whose
/// `versions` (when present and not null) is an object.
pub(super) fn reduce(body: &[u8]) -> serde_json::Result<Reduced> {
    let mut blob = Vec::with_capacity(body.len() / 8);
    let mut de = serde_json::Deserializer::from_slice(body);
    let d = DocumentSeed { blob: &mut blob }.deserialize(&mut de)?;
    de.end()?;
    let mut versions = d.versions;
    for c in &mut versions {
        c.published = d
            .time
            .get(c.raw.as_str())
            .and_then(|t| super::compact::parse_time(t));
    }
    blob.shrink_to_fit();
    Ok(Reduced {
        name: d.name,
        dist_tags: d.dist_tags,
        versions,
        blob,
        has_time: !d.time.is_empty(),
    })
}

/// The document's `time`, borrowed: as `lenient_map` reads a map (string members only, the
/// later of two wins, a non-object is empty).
struct Times<'de>(HashMap<Cow<'de, str>, Cow<'de, str>, rustc_hash::FxBuildHasher>);

impl<'de> Deserialize<'de> for Times<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Times<'de>, D::Error> {
        let mut out = HashMap::default();
        loose_members(d, |k, v| {
            out.insert(k, v);
        })?;
        Ok(Times(out))
    }
}

/// `engines.node` as `lenient_map` reads `engines`: the last string member named `node`.
fn node_engine(engines: &RawValue) -> Option<String> {
    let mut node = None;
    let mut d = serde_json::Deserializer::from_str(engines.get());
    loose_members(&mut d, |k, v| {
        if k == "node" {
            node = Some(v);
        }
    })
    .ok()?;
    node.map(Cow::into_owned)
}

/// The document's top level: `name`, `dist-tags`, `versions` (reduced into `blob` as it is
/// read) and `time`; everything else (the readme, maintainers, …) is skipped. A repeated one
/// of these four is an error, as it was when the document was read into a derived struct.
struct DocumentSeed<'b> {
    blob: &'b mut Vec<u8>,
}

struct Document<'de> {
    name: String,
    dist_tags: BTreeMap<String, String>,
    versions: Vec<Compacted>,
    time: HashMap<Cow<'de, str>, Cow<'de, str>, rustc_hash::FxBuildHasher>,
}

/// `dist-tags`, read by `lenient_map`.
struct Lenient(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Lenient, D::Error> {
        lenient_map(d).map(Lenient)
    }
}

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_> {
    type Value = Document<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Document<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_> {
    type Value = Document<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a packument object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Document<'de>, A::Error> {
        let mut name = None;
        let mut dist_tags = None;
        let mut versions = None;
        let mut time = None;
        while let Some(key) = a.next_key::<Key<'de>>()? {
            match &*key.0 {
                "name" => {
                    once(&name, "name")?;
                    name = Some(a.next_value::<Loose>()?.into_string());
                }
                "dist-tags" => {
                    once(&dist_tags, "dist-tags")?;
                    dist_tags = Some(a.next_value::<Lenient>()?.0);
                }
                "versions" => {
                    once(&versions, "versions")?;
                    versions = Some(a.next_value_seed(VersionsSeed {
                        blob: &mut *self.blob,
                    })?);
                }
                "time" => {
                    once(&time, "time")?;
                    time = Some(a.next_value::<Times<'de>>()?.0);
                }
                _ => {
                    a.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Document {
            name: name.unwrap_or_default(),
            dist_tags: dist_tags.unwrap_or_default(),
            versions: versions.unwrap_or_default(),
            time: time.unwrap_or_default(),
        })
    }
}

/// An error for a top-level field seen twice.
fn once<T, E: de::Error>(seen: &Option<T>, field: &'static str) -> Result<(), E> {
    match seen {
        Some(_) => Err(E::duplicate_field(field)),
        None => Ok(()),
    }
}

/// The registry's `versions` object (or null), reduced one version at a time as it is read.
/// A key that is not valid semver is skipped unread, as npm ignores such versions.
struct VersionsSeed<'b> {
    blob: &'b mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for VersionsSeed<'_> {
    type Value = Vec<Compacted>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Compacted>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for VersionsSeed<'_> {
    type Value = Vec<Compacted>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of versions")
    }
    fn visit_unit<E>(self) -> Result<Vec<Compacted>, E> {
        Ok(Vec::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Vec<Compacted>, A::Error> {
        let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0));
        while let Some(key) = a.next_key::<Key<'de>>()? {
            let Some(version) = crate::semver_npm::parse_version(&key.0) else {
                a.next_value::<IgnoredAny>()?;
                continue;
            };
            let facts = a.next_value_seed(VersionSeed {
                blob: &mut *self.blob,
            })?;
            if let Some((start, len)) = facts.span {
                out.push(Compacted {
                    version,
                    raw: key.0.into_owned(),
                    start,
                    len,
                    deprecated: facts.deprecated,
                    node_engine: facts.node_engine,
                    published: None,
                });
            }
        }
        Ok(out)
    }
}

/// What reading one version gave: where its compact bytes are (None: not an object, nothing
/// written) and the two facts the index holds for every version.
#[derive(Default)]
struct VersionFacts {
    span: Option<(u32, u32)>,
    deprecated: bool,
    node_engine: Option<String>,
}

/// One entry of `versions`, written to the end of `blob` as a compact object of the kept
/// members, copied as written (of `dist` and `scripts` only the members `Dist` reads and the
/// install scripts).
struct VersionSeed<'b> {
    blob: &'b mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for VersionSeed<'_> {
    type Value = VersionFacts;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<VersionFacts, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for VersionSeed<'_> {
    type Value = VersionFacts;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a version object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<VersionFacts, A::Error> {
        let mut facts = VersionFacts::default();
        let mut obj = ObjectOut::open(self.blob);
        let mut seen = 0u32;
        while let Some(key) = a.next_key::<Key<'de>>()? {
            let Some(i) = KEPT.iter().position(|k| *k == key.0) else {
                a.next_value::<IgnoredAny>()?;
                continue;
            };
            // `bundledDependencies` and `bundleDependencies` are one field.
            let bit = 1u32
                << if KEPT[i] == "bundledDependencies" {
                    i - 1
                } else {
                    i
                };
            if seen & bit != 0 {
                a.next_value::<IgnoredAny>()?;
                continue;
            }
            seen |= bit;
            let keep: &'static [&'static str] = match KEPT[i] {
                "scripts" => &INSTALL_SCRIPTS,
                "dist" => &DIST_KEPT,
                name => {
                    let value = a.next_value::<&'de RawValue>()?;
                    match name {
                        // A string, whatever it says, as `Manifest` reads it.
                        "deprecated" => facts.deprecated = value.get().starts_with('"'),
                        "engines" => facts.node_engine = node_engine(value),
                        _ => {}
                    }
                    obj.member(name, value.get().as_bytes());
                    continue;
                }
            };
            a.next_value_seed(KeptMembers {
                obj: &mut obj,
                key: KEPT[i],
                keep,
            })?;
        }
        facts.span = Some(obj.close());
        Ok(facts)
    }
    fn visit_unit<E>(self) -> Result<VersionFacts, E> {
        Ok(VersionFacts::default())
    }
    fn visit_bool<E>(self, _: bool) -> Result<VersionFacts, E> {
        Ok(VersionFacts::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<VersionFacts, E> {
        Ok(VersionFacts::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<VersionFacts, E> {
        Ok(VersionFacts::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<VersionFacts, E> {
        Ok(VersionFacts::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<VersionFacts, E> {
        Ok(VersionFacts::default())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<VersionFacts, A::Error> {
        while a.next_element::<IgnoredAny>()?.is_some() {}
        Ok(VersionFacts::default())
    }
}

/// A JSON object being written at the end of a buffer: `{`, its members, `}`.
struct ObjectOut<'b> {
    out: &'b mut Vec<u8>,
    start: usize,
}

impl<'b> ObjectOut<'b> {
    fn open(out: &'b mut Vec<u8>) -> ObjectOut<'b> {
        let start = out.len();
        out.push(b'{');
        ObjectOut { out, start }
    }

    /// Append `"key":` (after a comma unless it is the first member). A kept key is plain
    /// ASCII: no escaping needed.
    fn key(&mut self, key: &str) {
        if self.out.len() > self.start + 1 {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn member(&mut self, key: &str, value: &[u8]) {
        self.key(key);
        self.out.extend_from_slice(value);
    }

    /// Close the object: (where it starts, its length).
    fn close(self) -> (u32, u32) {
        self.out.push(b'}');
        (self.start as u32, (self.out.len() - self.start) as u32)
    }
}

/// The value of `dist` or `scripts`, written as member `key` of `obj` with only the members
/// named in `keep` (the first of a repeated one), or not written at all when it is not an
/// object or keeps none of them.
struct KeptMembers<'o, 'b> {
    obj: &'o mut ObjectOut<'b>,
    key: &'static str,
    keep: &'static [&'static str],
}

impl<'de> DeserializeSeed<'de> for KeptMembers<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeptMembers<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        let mark = self.obj.out.len();
        self.obj.key(self.key);
        let mut inner = ObjectOut::open(self.obj.out);
        let mut seen = 0u32;
        while let Some(k) = a.next_key::<Key<'de>>()? {
            match self.keep.iter().position(|n| *n == k.0) {
                Some(i) if seen & (1 << i) == 0 => {
                    seen |= 1 << i;
                    let v = a.next_value::<&'de RawValue>()?;
                    inner.member(self.keep[i], v.get().as_bytes());
                }
                _ => {
                    a.next_value::<IgnoredAny>()?;
                }
            }
        }
        if seen == 0 {
            inner.out.truncate(mark);
        } else {
            inner.close();
        }
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        while a.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}
