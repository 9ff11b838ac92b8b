//! A team's remote cache of package tarballs, on a storage engine the team already runs, through
//! Apache OpenDAL (Redis, S3 and S3-compatible servers, WebDAV, plain HTTP for reading, a
//! shared folder). Entries are keyed by the tarball's SHA-512 (`<root>/sha512/<hex>.tgz`), so
//! nothing read from the cache is trusted: the store's import checks it against the integrity
//! the lockfile or the registry gave, and a mismatch is rejected and fetched from the registry.
//!
//! Configured per request, npm-style: `hoard-remote-cache=<url>` in .npmrc (or
//! `npm_config_hoard_remote_cache`), `hoard-remote-cache-mode=read-write|read-only`; credentials
//! from the backend's usual variables in the client's environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`; a Redis
//! password in the URL). Never required: the first failure turns the cache off for the rest of
//! the install, with one warning, and the registry serves everything.
//!
//! Must not: import or judge tarballs (the store does), or read the daemon's own environment.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opendal::Operator;

/// How long one cache operation may take before the cache counts as down.
const TIMEOUT: Duration = Duration::from_secs(5);

/// How long the first contact may take: a server that is not there costs an install this much.
const PROBE: Duration = Duration::from_secs(2);

pub struct RemoteCache {
    op: Operator,
    /// The configured URL (credentials removed), for messages.
    pub url: String,
    pub writable: bool,
    down: AtomicBool,
    /// What went wrong, to tell the user once per install.
    problems: Mutex<Vec<String>>,
    /// Tarballs the cache served that proved whole (the store counts them).
    pub hits: std::sync::atomic::AtomicU64,
    /// Whether the first contact succeeded (made once, by the first operation).
    reachable: tokio::sync::OnceCell<bool>,
}

impl std::fmt::Debug for RemoteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCache")
            .field("url", &self.url)
            .field("writable", &self.writable)
            .finish()
    }
}

/// The cache key of a tarball with this SHA-512 digest.
pub fn key(sha512: &[u8]) -> String {
    format!("sha512/{}.tgz", hex::encode(sha512))
}

/// The URL without its password, for messages.
fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

impl RemoteCache {
    /// Open the cache `url` (`mode`: `read-write`, the default except for plain HTTP, or
    /// `read-only`) with credentials from `env`. Nothing is contacted yet.
    pub fn open(
        url: &str,
        mode: Option<&str>,
        env: &HashMap<String, String>,
    ) -> Result<RemoteCache, String> {
        let bad = |why: &str| format!("hoard-remote-cache={}: {why}", shown(url));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            bad("not a URL (write e.g. redis://host:6379/0 or s3://bucket/prefix)")
        })?;
        let read_only_by_default = matches!(scheme, "http" | "https");
        let op = match scheme {
            "redis" | "rediss" => {
                let (auth, hostpath) = match rest.rsplit_once('@') {
                    Some((a, h)) => (Some(a), h),
                    None => (None, rest),
                };
                let (host, path) = hostpath.split_once('/').unwrap_or((hostpath, ""));
                let mut parts = path.splitn(2, '/');
                let db: i64 = match parts.next().filter(|d| !d.is_empty()) {
                    Some(d) => d
                        .parse()
                        .map_err(|_| bad("the database must be a number"))?,
                    None => 0,
                };
                let root = parts.next().unwrap_or("hoard");
                let mut b = opendal::services::Redis::default()
                    .endpoint(&format!(
                        "{}://{host}",
                        if scheme == "rediss" { "rediss" } else { "tcp" }
                    ))
                    .db(db)
                    .root(&format!("/{root}"));
                if let Some(a) = auth {
                    let (user, pass) = a.split_once(':').unwrap_or(("", a));
                    if !user.is_empty() {
                        b = b.username(user);
                    }
                    b = b.password(pass);
                }
                Operator::new(b).map_err(|e| bad(&e.to_string()))?.finish()
            }
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let get = |k: &str| env.get(k).map(String::as_str).filter(|v| !v.is_empty());
                let mut b = opendal::services::S3::default()
                    .bucket(bucket)
                    .root(&format!("/{prefix}"))
                    .region(
                        get("AWS_REGION")
                            .or(get("AWS_DEFAULT_REGION"))
                            .unwrap_or("us-east-1"),
                    )
                    .disable_config_load()
                    .disable_ec2_metadata();
                if let Some(e) = get("AWS_ENDPOINT_URL_S3").or(get("AWS_ENDPOINT_URL")) {
                    b = b.endpoint(e);
                }
                match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
                    (Some(id), Some(secret)) => {
                        b = b.access_key_id(id).secret_access_key(secret);
                        if let Some(t) = get("AWS_SESSION_TOKEN") {
                            b = b.session_token(t);
                        }
                    }
                    _ => b = b.allow_anonymous(),
                }
                Operator::new(b).map_err(|e| bad(&e.to_string()))?.finish()
            }
            "file" => {
                let b = opendal::services::Fs::default().root(rest);
                Operator::new(b).map_err(|e| bad(&e.to_string()))?.finish()
            }
            "webdav+http" | "webdav+https" => {
                let proto = scheme.trim_start_matches("webdav+");
                let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                let b = opendal::services::Webdav::default()
                    .endpoint(&format!("{proto}://{host}"))
                    .root(&format!("/{path}"));
                Operator::new(b).map_err(|e| bad(&e.to_string()))?.finish()
            }
            "http" | "https" => {
                let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                let b = opendal::services::Http::default()
                    .endpoint(&format!("{scheme}://{host}"))
                    .root(&format!("/{path}"));
                Operator::new(b).map_err(|e| bad(&e.to_string()))?.finish()
            }
            other => {
                return Err(bad(&format!(
                    "the scheme `{other}` is not one hoard speaks (redis, rediss, s3, file, \
                     webdav+http(s), http(s))"
                )));
            }
        };
        let writable = match mode.map(str::trim) {
            None | Some("") => !read_only_by_default,
            Some("read-write") => true,
            Some("read-only") => false,
            Some(m) => {
                return Err(format!(
                    "hoard-remote-cache-mode={m} is not read-write or read-only"
                ));
            }
        };
        Ok(RemoteCache {
            op,
            url: shown(url),
            writable,
            down: AtomicBool::new(false),
            problems: Mutex::new(Vec::new()),
            hits: Default::default(),
            reachable: tokio::sync::OnceCell::new(),
        })
    }

    fn fail(&self, what: &str, e: impl std::fmt::Display) {
        if !self.down.swap(true, Ordering::Relaxed) {
            self.note(format!(
                "the remote cache {} failed while {what} ({e}); this install goes on from the \
                 registry without it",
                self.url
            ));
        }
    }

    /// Remember something to tell the user.
    pub fn note(&self, msg: String) {
        if let Ok(mut p) = self.problems.lock() {
            p.push(msg);
        }
    }

    /// What went wrong so far (taken: each is told once).
    pub fn take_problems(&self) -> Vec<String> {
        self.problems
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }

    /// One quick question first (a stat of a key that need not exist), so that a server that is
    /// not there costs `PROBE`, not a timeout per tarball.
    async fn usable(&self) -> bool {
        if self.down.load(Ordering::Relaxed) {
            return false;
        }
        let ok = *self
            .reachable
            .get_or_init(|| async {
                match tokio::time::timeout(PROBE, self.op.stat("sha512/probe")).await {
                    Ok(Ok(_)) => true,
                    Ok(Err(e)) if e.kind() == opendal::ErrorKind::NotFound => true,
                    Ok(Err(e)) => {
                        self.fail("connecting", e);
                        false
                    }
                    Err(_) => {
                        self.fail("connecting", format!("no answer in {} s", PROBE.as_secs()));
                        false
                    }
                }
            })
            .await;
        ok && !self.down.load(Ordering::Relaxed)
    }

    /// The tarball under `key`, if the cache has it (None also when the cache is down).
    pub async fn get(&self, key: &str) -> Option<bytes::Bytes> {
        if !self.usable().await {
            return None;
        }
        match tokio::time::timeout(TIMEOUT, self.op.read(key)).await {
            Ok(Ok(buf)) => Some(buf.to_bytes()),
            Ok(Err(e)) if e.kind() == opendal::ErrorKind::NotFound => None,
            Ok(Err(e)) => {
                self.fail("reading", e);
                None
            }
            Err(_) => {
                self.fail("reading", format!("no answer in {} s", TIMEOUT.as_secs()));
                None
            }
        }
    }

    /// Store a tarball under `key` (read-write caches only; failures only noted).
    pub async fn put(&self, key: &str, body: Vec<u8>) {
        if !self.writable || !self.usable().await {
            return;
        }
        match tokio::time::timeout(TIMEOUT, self.op.write(key, body)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => self.fail("writing", e),
            Err(_) => self.fail("writing", format!("no answer in {} s", TIMEOUT.as_secs())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_urls() {
        assert_eq!(key(&[0, 0, 0xab]), "sha512/0000ab.tgz");
        assert_eq!(shown("redis://:secret@host:6379/0"), "redis://host:6379/0");
        let env = HashMap::new();
        assert!(
            RemoteCache::open("redis://127.0.0.1:1/0", None, &env)
                .unwrap()
                .writable
        );
        assert!(
            !RemoteCache::open("https://cache.example/npm", None, &env)
                .unwrap()
                .writable
        );
        let e = RemoteCache::open("ftp://x/y", None, &env).unwrap_err();
        assert!(e.contains("hoard-remote-cache=ftp://x/y"), "{e}");
        let e = RemoteCache::open("redis://h/0", Some("sometimes"), &env).unwrap_err();
        assert!(e.contains("hoard-remote-cache-mode=sometimes"), "{e}");
    }
}
