//! A local npm registry for tests: packages are built from a spec (files, dependencies, bins),
//! packed into real gzipped tarballs with real integrity, and served over HTTP/1.1 on
//! 127.0.0.1 with per-path request counters and fault injection (status codes, delays, slow or
//! truncated bodies, wrong integrity, hostile tarballs).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

/// What a path does instead of answering normally.
#[derive(Clone, Debug, Default)]
pub struct Fault {
    /// Answer with this status this many times first.
    pub status: Option<(u16, usize)>,
    /// Wait before answering.
    pub delay: Option<Duration>,
    /// Send the body in chunks of this size with this pause between them.
    pub throttle: Option<(usize, Duration)>,
    /// Require this Authorization header (else 401).
    pub require_auth: Option<String>,
    /// Hold every answer until the gate is opened (60 s at most).
    pub gate: Option<Arc<Gate>>,
    /// Send the head and this many body bytes, then stall until the gate opens (60 s at most).
    pub stall: Option<(usize, Arc<Gate>)>,
}

/// A gate the test opens: requests wait at it, so a race is forced instead of hoped for.
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: std::sync::Condvar,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    fn wait(&self) {
        let g = self.open.lock().unwrap();
        let _ = self
            .cv
            .wait_timeout_while(g, Duration::from_secs(60), |open| !*open)
            .unwrap();
    }
}

#[derive(Clone, Debug)]
pub struct Pkg {
    pub name: String,
    pub version: String,
    pub deps: BTreeMap<String, String>,
    pub optional_deps: BTreeMap<String, String>,
    pub peer_deps: BTreeMap<String, String>,
    pub files: Vec<(String, Vec<u8>, u32)>,
    pub bin: Option<Value>,
    pub scripts: BTreeMap<String, String>,
    pub os: Vec<String>,
    pub cpu: Vec<String>,
    /// Use these bytes as the tarball instead of packing `files`.
    pub raw_tarball: Option<Vec<u8>>,
    /// Advertise this integrity instead of the real one.
    pub fake_integrity: Option<String>,
    pub deprecated: Option<String>,
    /// Further package.json fields (license, funding, engines…), in the tarball and packument.
    pub extra: serde_json::Map<String, Value>,
    /// Publication time (RFC 3339) for the packument's `time` object.
    pub published: Option<String>,
    /// How the registry signs this version.
    pub signing: Signing,
    /// Serve a provenance attestation for it (`Some(true)`: with a wrong subject digest).
    pub attest: Option<bool>,
}

/// How the test registry signs a version's `<name>@<version>:<integrity>`.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Signing {
    /// With the registry's key (the default).
    #[default]
    Signed,
    /// No `dist.signatures`.
    Unsigned,
    /// A valid-looking signature over other bytes.
    Tampered,
    /// Signed by a key the keys endpoint does not list.
    UnknownKey,
}

/// An RFC 3339 time `hours` hours before now.
pub fn hours_ago(hours: f64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let t = jiff::Timestamp::from_millisecond(((now - hours * 3600.0) * 1000.0) as i64).unwrap();
    t.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string()
}

impl Pkg {
    pub fn new(name: &str, version: &str) -> Pkg {
        Pkg {
            name: name.into(),
            version: version.into(),
            deps: BTreeMap::new(),
            optional_deps: BTreeMap::new(),
            peer_deps: BTreeMap::new(),
            files: vec![(
                "index.js".into(),
                format!("module.exports = {{ name: {name:?}, version: {version:?} }};\n")
                    .into_bytes(),
                0o644,
            )],
            bin: None,
            scripts: BTreeMap::new(),
            os: vec![],
            cpu: vec![],
            raw_tarball: None,
            fake_integrity: None,
            deprecated: None,
            extra: serde_json::Map::new(),
            published: None,
            signing: Signing::Signed,
            attest: None,
        }
    }
    /// Set a further package.json field.
    pub fn meta(mut self, key: &str, value: Value) -> Pkg {
        self.extra.insert(key.into(), value);
        self
    }

    pub fn signing(mut self, s: Signing) -> Pkg {
        self.signing = s;
        self
    }
    /// Serve a provenance attestation; `wrong_digest` makes its subject name other bytes.
    pub fn attest(mut self, wrong_digest: bool) -> Pkg {
        self.attest = Some(wrong_digest);
        self
    }
    /// Published `hours` hours ago.
    pub fn age_hours(mut self, hours: f64) -> Pkg {
        self.published = Some(hours_ago(hours));
        self
    }
    pub fn dep(mut self, n: &str, r: &str) -> Pkg {
        self.deps.insert(n.into(), r.into());
        self
    }
    pub fn optional(mut self, n: &str, r: &str) -> Pkg {
        self.optional_deps.insert(n.into(), r.into());
        self
    }
    pub fn peer(mut self, n: &str, r: &str) -> Pkg {
        self.peer_deps.insert(n.into(), r.into());
        self
    }
    pub fn file(mut self, path: &str, body: &[u8], mode: u32) -> Pkg {
        self.files.retain(|(p, _, _)| p != path);
        self.files.push((path.into(), body.to_vec(), mode));
        self
    }
    pub fn bin(mut self, b: Value) -> Pkg {
        self.bin = Some(b);
        self
    }
    pub fn script(mut self, event: &str, cmd: &str) -> Pkg {
        self.scripts.insert(event.into(), cmd.into());
        self
    }
    pub fn os(mut self, os: &[&str]) -> Pkg {
        self.os = os.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn raw(mut self, tarball: Vec<u8>) -> Pkg {
        self.raw_tarball = Some(tarball);
        self
    }
    pub fn fake_integrity(mut self, sri: &str) -> Pkg {
        self.fake_integrity = Some(sri.into());
        self
    }

    fn manifest(&self) -> Value {
        let mut m = json!({"name": self.name, "version": self.version});
        if !self.deps.is_empty() {
            m["dependencies"] = json!(self.deps);
        }
        if !self.optional_deps.is_empty() {
            m["optionalDependencies"] = json!(self.optional_deps);
        }
        if !self.peer_deps.is_empty() {
            m["peerDependencies"] = json!(self.peer_deps);
        }
        if let Some(b) = &self.bin {
            m["bin"] = b.clone();
        }
        if !self.scripts.is_empty() {
            m["scripts"] = json!(self.scripts);
        }
        if !self.os.is_empty() {
            m["os"] = json!(self.os);
        }
        if !self.cpu.is_empty() {
            m["cpu"] = json!(self.cpu);
        }
        for (k, v) in &self.extra {
            m[k] = v.clone();
        }
        m
    }

    /// A real npm-style tarball: `package/` prefix, package.json first.
    pub fn pack(&self) -> Vec<u8> {
        let mut entries: Vec<(String, Vec<u8>, u32)> = vec![(
            "package.json".into(),
            serde_json::to_vec_pretty(&self.manifest()).unwrap(),
            0o644,
        )];
        entries.extend(self.files.iter().cloned());
        tarball(
            &entries
                .iter()
                .map(|(p, b, m)| (format!("package/{p}"), b.clone(), *m))
                .collect::<Vec<_>>(),
        )
    }
}

/// Gzipped tar of regular files with the given paths (not validated: tests build hostile ones).
pub fn tarball(entries: &[(String, Vec<u8>, u32)]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (path, body, mode) in entries {
        tar.extend(raw_header(path, body.len() as u64, *mode, b'0', ""));
        tar.extend(body);
        tar.extend(vec![0u8; (512 - body.len() % 512) % 512]);
    }
    tar.extend(vec![0u8; 1024]);
    gzip(&tar)
}

/// A GNU long-name entry followed by a regular file (for paths beyond ustar's limits).
pub fn long_name_entry(path: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut name = path.as_bytes().to_vec();
    name.push(0);
    out.extend(raw_header(
        "././@LongLink",
        name.len() as u64,
        0o644,
        b'L',
        "",
    ));
    out.extend(&name);
    out.extend(vec![0u8; (512 - name.len() % 512) % 512]);
    out.extend(raw_header(
        "package/placeholder",
        body.len() as u64,
        0o644,
        b'0',
        "",
    ));
    out.extend(body);
    out.extend(vec![0u8; (512 - body.len() % 512) % 512]);
    out
}

/// Gzip a raw tar stream built from headers and bodies, adding the end marker.
pub fn finish_tar(mut tar: Vec<u8>) -> Vec<u8> {
    tar.extend(vec![0u8; 1024]);
    gzip(&tar)
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A ustar header with arbitrary name, type and link name.
pub fn raw_header(path: &str, size: u64, mode: u32, typeflag: u8, link: &str) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    // ustar: up to 155 bytes of prefix + 100 of name, split at a '/'.
    let (prefix, name) = if path.len() <= 100 {
        ("", path)
    } else {
        let cut = path[..=155.min(path.len() - 1)]
            .rfind('/')
            .filter(|&i| path.len() - i - 1 <= 100)
            .expect("path too long for ustar; use long_name_entry");
        (&path[..cut], &path[cut + 1..])
    };
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    let put_octal = |h: &mut Vec<u8>, off: usize, len: usize, v: u64| {
        let s = format!("{:0width$o}\0", v, width = len - 1);
        h[off..off + len].copy_from_slice(s.as_bytes());
    };
    put_octal(&mut h, 100, 8, mode as u64);
    put_octal(&mut h, 108, 8, 0);
    put_octal(&mut h, 116, 8, 0);
    put_octal(&mut h, 124, 12, size);
    put_octal(&mut h, 136, 12, 0);
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    let s = format!("{:06o}\0 ", sum);
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// A registry with `n` packages `p0`, `p1`… at 1.0.0, each one `index.js` holding its own
/// name, with their names and the `dependencies` object naming them all.
pub fn numbered_packages(n: usize) -> (Registry, Vec<String>, Value) {
    let reg = Registry::start();
    let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    for name in &names {
        reg.publish(Pkg::new(name, "1.0.0").file("index.js", name.as_bytes(), 0o644));
    }
    let deps: serde_json::Map<String, Value> =
        names.iter().map(|n| (n.clone(), json!("1"))).collect();
    (reg, names, Value::Object(deps))
}

pub fn sri(bytes: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(bytes))
    )
}

struct Inner {
    packages: BTreeMap<String, Vec<Pkg>>,
    tarballs: HashMap<String, Vec<u8>>,
    dist_tags: HashMap<String, BTreeMap<String, String>>,
    faults: HashMap<String, Fault>,
    counts: HashMap<String, usize>,
    log: Vec<(String, Option<String>)>,
    /// Recorded packuments served as they are (`{registry}/` stands for this registry's URL).
    raw: HashMap<String, Arc<str>>,
    /// The registry's signing key, and whether `/-/npm/v1/keys` lists it (with an expiry).
    key: Arc<ring::signature::EcdsaKeyPair>,
    keys_served: bool,
    key_expires: Option<String>,
    /// Advisories by package name, served by the bulk advisory endpoint.
    advisories: HashMap<String, Vec<Value>>,
    /// Bodies POSTed to the advisory endpoint.
    pub advisory_requests: Vec<Value>,
}

/// The test registry's keyid.
pub const KEYID: &str = "SHA256:hoard-test-registry";

fn new_key() -> ring::signature::EcdsaKeyPair {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

fn sign(key: &ring::signature::EcdsaKeyPair, msg: &str) -> String {
    let sig = key
        .sign(&ring::rand::SystemRandom::new(), msg.as_bytes())
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(sig.as_ref())
}

/// The keys document, as npm's registry serves it (SPKI DER in base64).
fn keys_doc(inner: &Inner) -> Value {
    use ring::signature::KeyPair;
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    spki.extend_from_slice(inner.key.public_key().as_ref());
    json!({"keys": [{
        "expires": inner.key_expires,
        "keyid": KEYID,
        "keytype": "ecdsa-sha2-nistp256",
        "scheme": "ecdsa-sha2-nistp256",
        "key": base64::engine::general_purpose::STANDARD.encode(spki),
    }]})
}

/// A registry attestations document whose in-toto subject names `purl` and `sha512_hex`.
fn attestations_doc(purl: &str, sha512_hex: &str) -> Value {
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": purl, "digest": {"sha512": sha512_hex}}],
        "predicateType": "https://slsa.dev/provenance/v1",
    });
    json!({"attestations": [{
        "predicateType": "https://slsa.dev/provenance/v1",
        "bundle": {"dsseEnvelope": {
            "payload": base64::engine::general_purpose::STANDARD.encode(statement.to_string()),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": "", "keyid": ""}]}}
    }]})
}

/// A running registry. Dropping it stops accepting connections.
pub struct Registry {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    stop: Arc<AtomicBool>,
}

impl Registry {
    pub fn start() -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test registry");
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/");
        let inner = Arc::new(Mutex::new(Inner {
            packages: BTreeMap::new(),
            tarballs: HashMap::new(),
            dist_tags: HashMap::new(),
            faults: HashMap::new(),
            counts: HashMap::new(),
            log: Vec::new(),
            raw: HashMap::new(),
            key: Arc::new(new_key()),
            keys_served: true,
            key_expires: None,
            advisories: HashMap::new(),
            advisory_requests: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (i2, s2, u2) = (inner.clone(), stop.clone(), url.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let i3 = i2.clone();
                let u3 = u2.clone();
                std::thread::spawn(move || serve_conn(conn, i3, &u3));
            }
        });
        Registry { url, inner, stop }
    }

    pub fn tarball_path(name: &str, version: &str) -> String {
        let base = name.rsplit('/').next().unwrap_or(name);
        format!("/{name}/-/{base}-{version}.tgz")
    }

    /// Publish a package version. The latest published version becomes `latest` unless a
    /// dist-tag was set explicitly.
    pub fn publish(&self, p: Pkg) {
        let bytes = p.raw_tarball.clone().unwrap_or_else(|| p.pack());
        let mut g = self.inner.lock().unwrap();
        g.tarballs
            .insert(Self::tarball_path(&p.name, &p.version), bytes);
        let tags = g.dist_tags.entry(p.name.clone()).or_default();
        tags.insert("latest".into(), p.version.clone());
        let list = g.packages.entry(p.name.clone()).or_default();
        list.retain(|x| x.version != p.version);
        list.push(p);
    }

    /// The bytes served at a tarball path.
    pub fn tarball_bytes(&self, path: &str) -> Vec<u8> {
        self.inner.lock().unwrap().tarballs[path].clone()
    }

    /// Serve these bytes at a tarball path (`/name/-/name-1.0.0.tgz`).
    pub fn publish_tarball(&self, path: &str, bytes: Vec<u8>) {
        self.inner
            .lock()
            .unwrap()
            .tarballs
            .insert(path.into(), bytes);
    }

    /// Serve a recorded packument (JSON text) for `name`.
    pub fn publish_raw(&self, name: &str, json: Arc<str>) {
        self.inner.lock().unwrap().raw.insert(name.into(), json);
    }

    pub fn tag(&self, name: &str, tag: &str, version: &str) {
        self.inner
            .lock()
            .unwrap()
            .dist_tags
            .entry(name.into())
            .or_default()
            .insert(tag.into(), version.into());
    }

    /// Stop serving `/-/npm/v1/keys` (404), as registries without signing keys do.
    pub fn without_keys(&self) {
        self.inner.lock().unwrap().keys_served = false;
    }

    /// The signing key does not expire (again).
    pub fn inner_reset_key_expiry(&self) {
        self.inner.lock().unwrap().key_expires = None;
    }

    /// List the signing key as expired at `time` (RFC 3339).
    pub fn expire_key(&self, time: &str) {
        self.inner.lock().unwrap().key_expires = Some(time.to_string());
    }

    /// Serve an advisory (npm's bulk format: id, url, title, severity, vulnerable_versions,
    /// cwe) for `name`.
    pub fn advisory(&self, name: &str, advisory: Value) {
        self.inner
            .lock()
            .unwrap()
            .advisories
            .entry(name.into())
            .or_default()
            .push(advisory);
    }

    /// How many times the bulk advisory endpoint was asked.
    pub fn advisory_requests(&self) -> Vec<Value> {
        self.inner.lock().unwrap().advisory_requests.clone()
    }

    pub fn fault(&self, path: &str, f: Fault) {
        self.inner.lock().unwrap().faults.insert(path.into(), f);
    }

    /// Requests seen for `path` (e.g. `/a` or a tarball path).
    pub fn count(&self, path: &str) -> usize {
        self.inner
            .lock()
            .unwrap()
            .counts
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Authorization headers seen, by path.
    pub fn auth_seen(&self, path: &str) -> Vec<Option<String>> {
        self.inner
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, a)| a.clone())
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://").trim_end_matches('/'));
    }
}

fn packument(inner: &Inner, name: &str, base_url: &str) -> Option<Value> {
    let list = inner.packages.get(name)?;
    let mut versions = serde_json::Map::new();
    let mut time = serde_json::Map::new();
    for p in list {
        let mut m = p.manifest();
        let path = Registry::tarball_path(&p.name, &p.version);
        let bytes = inner.tarballs.get(&path)?;
        let integrity = p.fake_integrity.clone().unwrap_or_else(|| sri(bytes));
        m["dist"] = json!({
            "tarball": format!("{}{}", base_url.trim_end_matches('/'), path),
            "integrity": integrity,
        });
        let message = format!("{}@{}:{}", p.name, p.version, integrity);
        let signature = |keyid: &str, key: &ring::signature::EcdsaKeyPair, msg: &str| json!([{"keyid": keyid, "sig": sign(key, msg)}]);
        match p.signing {
            Signing::Signed => m["dist"]["signatures"] = signature(KEYID, &inner.key, &message),
            Signing::Unsigned => {}
            Signing::Tampered => {
                m["dist"]["signatures"] = signature(KEYID, &inner.key, &format!("{message}x"))
            }
            Signing::UnknownKey => {
                m["dist"]["signatures"] = signature("SHA256:unknown", &new_key(), &message)
            }
        }
        if p.attest.is_some() {
            m["dist"]["attestations"] = json!({
                "url": format!("{base_url}-/npm/v1/attestations/{}@{}", p.name, p.version),
                "provenance": {"predicateType": "https://slsa.dev/provenance/v1"},
            });
        }
        if let Some(d) = &p.deprecated {
            m["deprecated"] = json!(d);
        }
        if let Some(t) = &p.published {
            time.insert(p.version.clone(), json!(t));
        }
        if p.scripts
            .keys()
            .any(|k| ["preinstall", "install", "postinstall"].contains(&k.as_str()))
        {
            m["hasInstallScript"] = json!(true);
        }
        versions.insert(p.version.clone(), m);
    }
    let mut doc = json!({
        "name": name,
        "dist-tags": inner.dist_tags.get(name).cloned().unwrap_or_default(),
        "versions": versions,
    });
    if !time.is_empty() {
        time.insert("modified".into(), json!(hours_ago(0.0)));
        doc["time"] = Value::Object(time);
    }
    Some(doc)
}

fn serve_conn(conn: TcpStream, inner: Arc<Mutex<Inner>>, base_url: &str) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone the connection"));
    let mut conn = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut auth = None;
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                match k.to_ascii_lowercase().as_str() {
                    "authorization" => auth = Some(v.trim().to_string()),
                    "content-length" => content_length = v.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut request_body = vec![0u8; content_length];
        if content_length > 0 {
            let _ = reader.read_exact(&mut request_body);
        }
        let raw_path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let path = raw_path.replace("%2f", "/").replace("%2F", "/");
        let (fault, body) = {
            let mut g = inner.lock().unwrap();
            *g.counts.entry(path.clone()).or_default() += 1;
            g.log.push((path.clone(), auth.clone()));
            let mut fault = g.faults.get(&path).cloned().unwrap_or_default();
            if let Some((code, n)) = fault.status
                && n > 0
            {
                g.faults.get_mut(&path).unwrap().status = Some((code, n - 1));
            } else {
                fault.status = None;
            }
            let body = if path == "/-/npm/v1/keys" {
                g.keys_served.then(|| {
                    (
                        serde_json::to_vec(&keys_doc(&g)).unwrap(),
                        "application/json",
                    )
                })
            } else if path == "/-/npm/v1/security/advisories/bulk" {
                let asked: Value = serde_json::from_slice(&request_body).unwrap_or(Value::Null);
                g.advisory_requests.push(asked.clone());
                let mut out = serde_json::Map::new();
                for name in asked
                    .as_object()
                    .map(|o| o.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
                {
                    if let Some(list) = g.advisories.get(&name) {
                        out.insert(name, json!(list));
                    }
                }
                Some((serde_json::to_vec(&out).unwrap(), "application/json"))
            } else if let Some(id) = path.strip_prefix("/-/npm/v1/attestations/") {
                let at = id.rfind('@').unwrap_or(0);
                let (name, version) = (&id[..at], &id[at + 1..]);
                let found = g
                    .packages
                    .get(name)
                    .and_then(|l| l.iter().find(|p| p.version == version));
                found.and_then(|p| {
                    let tgz = g.tarballs.get(&Registry::tarball_path(name, version))?;
                    let mut digest = hex::encode(sha2::Sha512::digest(tgz));
                    if p.attest == Some(true) {
                        digest = digest.replace(|c: char| c != '0', "0");
                    }
                    let purl = format!("pkg:npm/{}@{version}", name.replace('@', "%40"));
                    Some((
                        serde_json::to_vec(&attestations_doc(&purl, &digest)).unwrap(),
                        "application/json",
                    ))
                })
            } else if path.contains("/-/") {
                g.tarballs
                    .get(&path)
                    .cloned()
                    .map(|b| (b, "application/octet-stream"))
            } else {
                let name = path.trim_start_matches('/');
                match g.raw.get(name) {
                    Some(raw) => Some((
                        raw.replace("{registry}/", base_url).into_bytes(),
                        "application/json",
                    )),
                    None => packument(&g, name, base_url)
                        .map(|v| (serde_json::to_vec(&v).unwrap(), "application/json")),
                }
            };
            (fault, body)
        };
        if let Some(g) = &fault.gate {
            g.wait();
        }
        if let Some(d) = fault.delay {
            std::thread::sleep(d);
        }
        let (status, body, ctype) = if let Some(required) = &fault.require_auth
            && auth.as_deref() != Some(required.as_str())
        {
            (
                401u16,
                b"{\"error\":\"unauthorized\"}".to_vec(),
                "application/json",
            )
        } else if let Some((code, _)) = fault.status {
            (
                code,
                b"{\"error\":\"injected\"}".to_vec(),
                "application/json",
            )
        } else {
            match body {
                Some((b, t)) => (200, b, t),
                None => (
                    404,
                    b"{\"error\":\"not found\"}".to_vec(),
                    "application/json",
                ),
            }
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            body.len()
        );
        if conn.write_all(head.as_bytes()).is_err() {
            return;
        }
        if let Some((n, gate)) = &fault.stall {
            let n = (*n).min(body.len());
            if conn.write_all(&body[..n]).is_err() {
                return;
            }
            let _ = conn.flush();
            gate.wait();
            let _ = conn.write_all(&body[n..]);
            continue;
        }
        match fault.throttle {
            Some((chunk, pause)) => {
                for c in body.chunks(chunk) {
                    if conn.write_all(c).is_err() {
                        return;
                    }
                    let _ = conn.flush();
                    std::thread::sleep(pause);
                }
            }
            None => {
                if conn.write_all(&body).is_err() {
                    return;
                }
            }
        }
    }
}
