//! The compact packument: what resolution and the lockfile need of a package's metadata, kept
//! as one byte buffer of per-version manifests (compact JSON with only hoard's fields, parsed
//! only when a version is looked at) and an index of versions, highest first, with the two facts
//! picking needs of every candidate (deprecated, `engines.node`). The same bytes, behind a small
//! header, are the on-disk metadata cache: a warm read is one small file, not a registry document.
//!
//! Must not: do I/O (the registry module reads and writes the bytes) or pick versions
//! (resolve.rs does).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::packument::Manifest;
use super::reduce::Compacted;
#[cfg(test)]
use super::reduce::INSTALL_SCRIPTS;
use crate::semver_npm::Range;

/// First line of a cache file; a file without it (an older format) is ignored and refetched.
const MAGIC: &[u8] = b"hoard-packument 5\n";

/// One version in the index.
#[derive(Debug)]
pub struct VersionEntry {
    pub version: semver::Version,
    /// The version string as the registry spells it (the key of its `versions` object).
    pub raw: Box<str>,
    pub deprecated: bool,
    /// `engines.node`, when the version declares one.
    pub node_engine: Option<Box<str>>,
    /// When it was published (ms since the epoch), from the document's `time` object.
    pub published: Option<i64>,
    start: u32,
    len: u32,
    /// `node_engine` parsed, the first time picking asks (`None`: no usable range).
    engine: OnceLock<Option<Range>>,
}

impl VersionEntry {
    /// Whether `node` fits this version's `engines.node` (npm-pick-manifest's engine check:
    /// prereleases included; no node, no range or a range that does not parse: it fits).
    pub fn engine_ok(&self, node: Option<&semver::Version>) -> bool {
        let (Some(node), Some(raw)) = (node, self.node_engine.as_deref()) else {
            return true;
        };
        let range = self.engine.get_or_init(|| Range::parse(raw));
        range
            .as_ref()
            .is_none_or(|r| r.satisfies_including_prerelease(node))
    }
}

/// A package's metadata, compact. Versions that are not valid semver are left out, as npm
/// ignores them.
#[derive(Debug)]
pub struct Packument {
    pub name: String,
    pub dist_tags: BTreeMap<String, String>,
    /// Valid versions, highest first.
    pub sorted: Vec<VersionEntry>,
    /// Whether the document carried publication times (the abbreviated form does not).
    pub has_time: bool,
    /// Where the `latest` tag's version is in `sorted`.
    latest: Option<usize>,
    blob: Bytes,
    parsed: Mutex<HashMap<usize, Arc<Manifest>>>,
    /// npm-pick-manifest's answers so far (`pick::pick` without a lockfile's preferences or a
    /// cooldown): a pure function of this document, the spec and the Node version.
    picks: Mutex<Picks>,
}

/// Remembered picks, for one Node version at a time (another clears them).
#[derive(Debug, Default)]
struct Picks {
    node: Option<semver::Version>,
    ranges: HashMap<Box<str>, Option<Arc<Manifest>>, rustc_hash::FxBuildHasher>,
    tags: HashMap<Box<str>, Option<Arc<Manifest>>, rustc_hash::FxBuildHasher>,
}

/// What the registry module keeps beside a cached packument to revalidate it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CacheMeta {
    pub fetched_at: u64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    #[serde(flatten)]
    meta: CacheMeta,
    name: String,
    dist_tags: BTreeMap<String, String>,
    #[serde(default)]
    has_time: bool,
    /// (version, start, len, deprecated, engines.node, published ms), highest first.
    versions: Vec<VersionRow>,
}

type VersionRow = (String, u32, u32, bool, Option<String>, Option<i64>);

/// A `Manifest` as compact bytes at the end of `blob` (tests build packuments from manifests).
#[cfg(test)]
fn compact(raw: String, mut m: Manifest, blob: &mut Vec<u8>) -> Option<Compacted> {
    let version = crate::semver_npm::parse_version(&raw)?;
    // Only the scripts that make a package an install-script package matter here.
    m.scripts
        .retain(|k, _| INSTALL_SCRIPTS.contains(&k.as_str()));
    let json = serde_json::to_vec(&m).ok()?;
    let start = blob.len() as u32;
    blob.extend_from_slice(&json);
    Some(Compacted {
        version,
        raw,
        start,
        len: json.len() as u32,
        deprecated: m.deprecated.is_some(),
        node_engine: m.engines.get("node").cloned(),
        published: None,
    })
}

/// An RFC 3339 time (`2021-01-01T00:00:00.000Z`) as ms since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// Where the version `latest` names is in `sorted`.
fn latest_index(dist_tags: &BTreeMap<String, String>, sorted: &[VersionEntry]) -> Option<usize> {
    let latest = dist_tags.get("latest")?;
    sorted.iter().position(|e| &*e.raw == latest)
}

impl Packument {
    /// Where the `latest` tag's version is in `sorted` (found once, when the packument is made).
    pub fn latest(&self) -> Option<usize> {
        self.latest
    }

    /// Parse a registry document (full or abbreviated).
    pub fn parse(body: &[u8]) -> serde_json::Result<Packument> {
        let d = super::reduce::reduce(body)?;
        Ok(Self::assemble(
            d.name,
            d.dist_tags,
            d.versions,
            d.blob,
            d.has_time,
        ))
    }

    /// A packument from manifests in memory (tests).
    #[cfg(test)]
    pub fn from_manifests(
        name: &str,
        dist_tags: BTreeMap<String, String>,
        manifests: impl IntoIterator<Item = Manifest>,
    ) -> Packument {
        let mut blob = Vec::new();
        let versions = manifests
            .into_iter()
            .filter_map(|m| compact(m.version.clone(), m, &mut blob))
            .collect();
        Self::assemble(name.to_string(), dist_tags, versions, blob, false)
    }

    /// The packument of `versions`, whose compact bytes are in `blob` (in any order).
    fn assemble(
        name: String,
        dist_tags: BTreeMap<String, String>,
        mut versions: Vec<Compacted>,
        blob: Vec<u8>,
        has_time: bool,
    ) -> Packument {
        versions.sort_by(|a, b| crate::semver_npm::cmp(&b.version, &a.version));
        let sorted = versions
            .into_iter()
            .map(|c| VersionEntry {
                version: c.version,
                raw: c.raw.into_boxed_str(),
                deprecated: c.deprecated,
                node_engine: c.node_engine.map(String::into_boxed_str),
                published: c.published,
                start: c.start,
                len: c.len,
                engine: OnceLock::new(),
            })
            .collect::<Vec<_>>();
        Packument {
            latest: latest_index(&dist_tags, &sorted),
            name,
            dist_tags,
            sorted,
            has_time,
            blob: Bytes::from(blob),
            parsed: Mutex::new(HashMap::new()),
            picks: Mutex::default(),
        }
    }

    /// The manifest of the `i`th version of `sorted` (parsed once, then shared).
    pub fn manifest_at(&self, i: usize) -> Option<Arc<Manifest>> {
        if let Ok(p) = self.parsed.lock()
            && let Some(m) = p.get(&i)
        {
            return Some(m.clone());
        }
        let e = self.sorted.get(i)?;
        let bytes = self
            .blob
            .get(e.start as usize..(e.start as usize + e.len as usize))?;
        let m = Arc::new(serde_json::from_slice::<Manifest>(bytes).ok()?);
        if let Ok(mut p) = self.parsed.lock() {
            return Some(p.entry(i).or_insert(m).clone());
        }
        Some(m)
    }

    /// The remembered pick for a range (`tag` false) or dist-tag `spec` under Node `node`:
    /// `Some(answer)` when it was picked before.
    pub fn remembered_pick(
        &self,
        tag: bool,
        spec: &str,
        node: Option<&semver::Version>,
    ) -> Option<Option<Arc<Manifest>>> {
        let picks = self.picks.lock().ok()?;
        if picks.node.as_ref() != node {
            return None;
        }
        let map = if tag { &picks.tags } else { &picks.ranges };
        map.get(spec).cloned()
    }

    /// Remember what `pick` answered for a range or dist-tag under Node `node`.
    pub fn remember_pick(
        &self,
        tag: bool,
        spec: &str,
        node: Option<&semver::Version>,
        answer: Option<Arc<Manifest>>,
    ) {
        let Ok(mut picks) = self.picks.lock() else {
            return;
        };
        if picks.node.as_ref() != node {
            *picks = Picks {
                node: node.cloned(),
                ..Picks::default()
            };
        }
        let map = if tag {
            &mut picks.tags
        } else {
            &mut picks.ranges
        };
        map.insert(spec.into(), answer);
    }

    /// The manifest of `version` (spelled as the registry does).
    #[cfg(test)]
    pub fn manifest(&self, version: &str) -> Option<Arc<Manifest>> {
        let i = self.sorted.iter().position(|e| &*e.raw == version)?;
        self.manifest_at(i)
    }

    /// Approximate bytes held in memory (for the hot cache's budget).
    pub fn mem_size(&self) -> usize {
        let parsed = self.parsed.lock().map(|p| p.len()).unwrap_or(0);
        let picks = (self.picks.lock())
            .map(|p| p.ranges.len() + p.tags.len())
            .unwrap_or(0);
        self.blob.len()
            + self.sorted.len() * (std::mem::size_of::<VersionEntry>() + 24)
            + parsed * 1024
            + picks * 64
            + 256
    }

    /// The on-disk form: magic line, header JSON line, the manifests' bytes.
    pub fn encode(&self, meta: &CacheMeta) -> Vec<u8> {
        let header = Header {
            meta: meta.clone(),
            name: self.name.clone(),
            dist_tags: self.dist_tags.clone(),
            has_time: self.has_time,
            versions: self
                .sorted
                .iter()
                .map(|e| {
                    (
                        e.raw.to_string(),
                        e.start,
                        e.len,
                        e.deprecated,
                        e.node_engine.as_deref().map(str::to_string),
                        e.published,
                    )
                })
                .collect(),
        };
        let mut out = MAGIC.to_vec();
        // A struct of strings and numbers always serializes.
        out.extend(serde_json::to_vec(&header).unwrap_or_default());
        out.push(b'\n');
        out.extend_from_slice(&self.blob);
        out
    }

    /// Read the on-disk form; None when it is another format or damaged.
    pub fn decode(bytes: Vec<u8>) -> Option<(CacheMeta, Packument)> {
        let bytes = Bytes::from(bytes);
        let rest = bytes.strip_prefix(MAGIC)?;
        let nl = rest.iter().position(|&b| b == b'\n')?;
        let header: Header = serde_json::from_slice(&rest[..nl]).ok()?;
        let blob = bytes.slice(MAGIC.len() + nl + 1..);
        let mut sorted = Vec::with_capacity(header.versions.len());
        for (raw, start, len, deprecated, node, published) in header.versions {
            if start as usize + len as usize > blob.len() {
                return None;
            }
            sorted.push(VersionEntry {
                version: crate::semver_npm::parse_version(&raw)?,
                raw: raw.into_boxed_str(),
                deprecated,
                node_engine: node.map(String::into_boxed_str),
                published,
                start,
                len,
                engine: OnceLock::new(),
            });
        }
        let p = Packument {
            latest: latest_index(&header.dist_tags, &sorted),
            name: header.name,
            dist_tags: header.dist_tags,
            sorted,
            has_time: header.has_time,
            blob,
            parsed: Mutex::new(HashMap::new()),
            picks: Mutex::default(),
        };
        Some((header.meta, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &[u8] = br#"{
      "name": "pkg", "dist-tags": {"latest": "1.2.0"}, "readme": "long text that is dropped",
      "versions": {
        "1.0.0": {"name": "pkg", "version": "1.0.0", "dependencies": {"a": "^1"},
                  "scripts": {"test": "jest", "postinstall": "node x"},
                  "dist": {"tarball": "https://r/pkg-1.0.0.tgz", "integrity": "sha512-a"}},
        "1.2.0": {"name": "pkg", "version": "1.2.0", "engines": {"node": ">=18"},
                  "deprecated": "use 2", "dist": {"tarball": "https://r/pkg-1.2.0.tgz"}},
        "not-semver": {"name": "pkg", "version": "not-semver"},
        "1.1.0-beta.1": {"name": "pkg", "version": "1.1.0-beta.1"}
      },
      "time": {"modified": "2021-01-03T00:00:00.000Z", "1.0.0": "2021-01-01T00:00:00.000Z",
               "1.2.0": "not a time"}
    }"#;

    #[test]
    fn parses_sorts_and_reads_versions_lazily() {
        let p = Packument::parse(DOC).unwrap();
        let order: Vec<&str> = p.sorted.iter().map(|e| &*e.raw).collect();
        assert_eq!(order, ["1.2.0", "1.1.0-beta.1", "1.0.0"]);
        assert!(p.sorted[0].deprecated && !p.sorted[2].deprecated);
        assert_eq!(p.sorted[0].node_engine.as_deref(), Some(">=18"));
        let m = p.manifest("1.0.0").unwrap();
        assert_eq!(m.dependencies["a"], "^1");
        assert_eq!(m.scripts.keys().collect::<Vec<_>>(), ["postinstall"]);
        assert!(m.install_scripts());
        assert!(Arc::ptr_eq(&m, &p.manifest("1.0.0").unwrap()));
        assert!(p.manifest("not-semver").is_none());
    }

    #[test]
    fn the_disk_form_round_trips_and_rejects_other_formats() {
        let p = Packument::parse(DOC).unwrap();
        let meta = CacheMeta {
            fetched_at: 7,
            etag: Some("\"e\"".into()),
            last_modified: None,
        };
        let bytes = p.encode(&meta);
        assert!(bytes.len() < DOC.len());
        let (m2, p2) = Packument::decode(bytes.clone()).unwrap();
        assert_eq!((m2.fetched_at, m2.etag), (7, Some("\"e\"".to_string())));
        assert_eq!(p2.dist_tags["latest"], "1.2.0");
        assert_eq!(p2.sorted.len(), 3);
        assert!(p.has_time && p2.has_time);
        let times: Vec<Option<i64>> = p2.sorted.iter().map(|e| e.published).collect();
        assert_eq!(times, [None, None, Some(1_609_459_200_000)]);
        assert_eq!(
            *p2.manifest("1.0.0").unwrap(),
            *p.manifest("1.0.0").unwrap()
        );
        assert!(Packument::decode(DOC.to_vec()).is_none());
        let mut cut = bytes;
        cut.truncate(cut.len() - 10);
        assert!(Packument::decode(cut).is_none());
    }

    /// The version as the old path read it: the whole object into a `Manifest`, scripts cut to
    /// the install scripts.
    fn as_manifest(v: &serde_json::Value) -> Manifest {
        let mut m: Manifest = serde_json::from_value(v.clone()).unwrap();
        m.scripts
            .retain(|k, _| INSTALL_SCRIPTS.contains(&k.as_str()));
        m
    }

    /// Parse a document holding `version` and check its compact form reads back as the whole
    /// object does, index facts included.
    fn reads_back_as_whole(version: serde_json::Value) -> Arc<Manifest> {
        let doc = serde_json::json!({"name": "pkg", "versions": {"1.0.0": version}});
        let p = Packument::parse(&serde_json::to_vec(&doc).unwrap()).unwrap();
        let m = p.manifest("1.0.0").unwrap();
        assert_eq!(*m, as_manifest(&version));
        assert_eq!(p.sorted[0].deprecated, m.deprecated.is_some());
        assert_eq!(
            p.sorted[0].node_engine.as_deref(),
            m.engines.get("node").map(|s| &**s)
        );
        m
    }

    #[test]
    fn every_manifest_field_survives_compaction() {
        use super::super::packument::{
            Directories, Dist, DistAttestations, DistSignature, Engines, PeerMeta, Provenance,
        };
        let map = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        // A struct literal without `..Default::default()`: a new field of `Manifest` does not
        // compile here until it is filled in, and then fails until `KEPT` keeps it.
        let full = Manifest {
            name: "pkg".into(),
            version: "1.0.0".into(),
            dependencies: map("a", "^1"),
            optional_dependencies: map("b", "^2"),
            peer_dependencies: map("c", "^3"),
            peer_dependencies_meta: BTreeMap::from([("c".into(), PeerMeta { optional: true })]),
            dev_dependencies: map("d", "^4"),
            bundle_dependencies: serde_json::json!(["a"]),
            bin: serde_json::json!({"pkg": "cli.js"}),
            directories: Some(Directories {
                bin: Some("bin".into()),
            }),
            dist: Dist {
                tarball: "https://r/pkg-1.0.0.tgz".into(),
                integrity: Some("sha512-x".into()),
                shasum: Some("ab".into()),
                signatures: vec![DistSignature {
                    keyid: "k".into(),
                    sig: "s".into(),
                }],
                attestations: Some(DistAttestations {
                    url: "https://r/att".into(),
                    provenance: Some(Provenance::default()),
                }),
            },
            os: vec!["linux".into()],
            cpu: vec!["x64".into()],
            libc: vec!["glibc".into()],
            engines: Engines::Map(map("node", ">=18")),
            deprecated: Some("use 2".into()),
            has_install_script: true,
            license: Some("MIT".into()),
            funding: serde_json::json!("https://fund"),
            scripts: map("install", "node-gyp rebuild"),
            workspaces: serde_json::json!(["packages/*"]),
            // Not part of the value (never serialized), so not in `KEPT`.
            derived: Default::default(),
        };
        let mut v = serde_json::to_value(&full).unwrap();
        v["readme"] = serde_json::json!("dropped");
        v["scripts"]["test"] = serde_json::json!("dropped too");
        assert_eq!(*reads_back_as_whole(v), full);
    }

    #[test]
    fn odd_shapes_read_back_as_the_whole_object_reads_them() {
        for v in [
            serde_json::json!({"name": 7, "version": "1.0.0", "dependencies": ["a"],
                "engines": ["node >= 4"], "deprecated": false, "bin": "cli.js",
                "scripts": "not an object", "dist": "nope", "os": "linux",
                "bundledDependencies": true, "peerDependenciesMeta": {"x": "yes"}}),
            serde_json::json!({"version": "1.0.0", "engines": {"node": 18, "npm": ">=7"},
                "deprecated": "", "scripts": {"postinstall": "x", "preinstall": 1},
                "dependencies": {"a": "^1", "b": null}, "directories": []}),
            serde_json::json!({"version": "1.0.0", "hé": {"k": "v"}, "scripts": {}}),
        ] {
            reads_back_as_whole(v);
        }
    }

    #[test]
    fn a_version_that_is_not_an_object_is_left_out() {
        let doc = br#"{"name": "pkg", "versions": {"1.0.0": "gone", "1.1.0": [1],
                       "1.2.0": {"version": "1.2.0", "name": "pkg", "name": "dup",
                                 "dep\u0065ndencies": {"a": "^1"}}}}"#;
        let p = Packument::parse(doc).unwrap();
        let order: Vec<&str> = p.sorted.iter().map(|e| &*e.raw).collect();
        assert_eq!(order, ["1.2.0"]);
        let m = p.manifest("1.2.0").unwrap();
        assert_eq!(m.name, "pkg", "the first of a repeated key");
        assert_eq!(m.dependencies["a"], "^1", "a key spelled with escapes");
    }

    /// Real packuments (the bench mirror's cache, `bench/.work/mirror`, or the folder in
    /// `HOARD_PACKUMENT_DIR`): every version's compact form reads back as the whole object.
    /// Opt-in: `cargo test --bin hoardd -- --ignored real_packuments`.
    #[test]
    #[ignore]
    fn real_packuments_read_back_as_whole() {
        let dir = std::env::var("HOARD_PACKUMENT_DIR").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/bench/.work/mirror").to_string()
        });
        let mut files = vec![std::path::PathBuf::from(&dir)];
        let (mut docs, mut versions) = (0, 0);
        while let Some(p) = files.pop() {
            if p.is_dir() {
                files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            // The mirror's files: a content-type line, then the body.
            let Some(nl) = bytes.iter().position(|&b| b == b'\n') else {
                continue;
            };
            if !bytes.starts_with(b"application/json") && !bytes.starts_with(b"application/vnd") {
                continue;
            }
            let body = &bytes[nl + 1..];
            let whole: serde_json::Value = serde_json::from_slice(body).unwrap();
            let p = Packument::parse(body).unwrap();
            for (i, e) in p.sorted.iter().enumerate() {
                let m = p.manifest_at(i).unwrap();
                let v = &whole["versions"][&*e.raw];
                assert_eq!(*m, as_manifest(v), "{}@{}", p.name, e.raw);
                assert_eq!(e.deprecated, m.deprecated.is_some());
                assert_eq!(
                    e.node_engine.as_deref(),
                    m.engines.get("node").map(|s| &**s)
                );
                versions += 1;
            }
            docs += 1;
        }
        eprintln!("{docs} packuments, {versions} versions read back as whole from {dir}");
        assert!(
            docs > 0,
            "no packuments in {dir}: run bench/run.sh once, or set HOARD_PACKUMENT_DIR"
        );
    }
}
