//! The signing keys a registry publishes at `/-/npm/v1/keys` (npm's format: keyid, keytype,
//! scheme, an SPKI public key in base64, and an optional expiry), fetched once per registry and
//! kept in memory for an hour and on disk (`<store>/v1/metadata/keys-<hash>.json`) for offline
//! use. A registry that answers 404 publishes no keys: nothing of it can be verified, as npm
//! treats it.
//!
//! Must not: verify signatures (`crate::signatures` does).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;

use super::config::NpmConfig;
use super::http::{Http, Lane};
use crate::error::{HoardError, Result};

/// How long fetched keys are used before asking again.
const FRESH: Duration = Duration::from_secs(3600);

/// DER prefix of an ECDSA P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, BIT STRING
/// of 66 bytes); the 65-byte uncompressed point follows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// One published key.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub keyid: String,
    /// ms since the epoch; signatures on versions published at or after it are invalid.
    pub expires: Option<i64>,
    /// The uncompressed P-256 point, or None for a key type hoard cannot use.
    pub point: Option<Vec<u8>>,
    pub keytype: String,
}

#[derive(Deserialize)]
struct KeysDoc {
    #[serde(default)]
    keys: Vec<RawKey>,
}

#[derive(Deserialize)]
struct RawKey {
    #[serde(default)]
    keyid: String,
    #[serde(default)]
    keytype: String,
    #[serde(default)]
    expires: Option<String>,
    #[serde(default)]
    key: String,
}

/// Parse a keys document.
pub fn parse(body: &[u8]) -> std::result::Result<Vec<SigningKey>, String> {
    let doc: KeysDoc = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(doc
        .keys
        .into_iter()
        .map(|k| SigningKey {
            point: base64::engine::general_purpose::STANDARD
                .decode(k.key.trim())
                .ok()
                .and_then(|der| {
                    let point = der.strip_prefix(&P256_SPKI_PREFIX[..])?;
                    (point.len() == 65 && point[0] == 4).then(|| point.to_vec())
                }),
            expires: k.expires.as_deref().and_then(super::compact::parse_time),
            keyid: k.keyid,
            keytype: k.keytype,
        })
        .collect())
}

type Cached = (Instant, Option<Arc<Vec<SigningKey>>>);

/// Signatures already verified (a hash of keyid, message and signature), so versions that
/// resolve again in later installs are not verified again.
const VERIFIED_MAX: usize = 100_000;

/// Keys by registry URL.
pub struct Keys {
    http: Arc<Http>,
    dir: PathBuf,
    cache: Mutex<HashMap<String, Cached>>,
    verified: Mutex<std::collections::HashSet<[u8; 16]>>,
}

impl Keys {
    pub fn new(http: Arc<Http>, dir: PathBuf) -> Keys {
        Keys {
            http,
            dir,
            cache: Mutex::new(HashMap::new()),
            verified: Mutex::new(std::collections::HashSet::new()),
        }
    }

    fn verified_key(keyid: &str, message: &str, sig: &str) -> [u8; 16] {
        let mut h = blake3::Hasher::new();
        for part in [keyid, message, sig] {
            h.update(part.as_bytes());
            h.update(&[0]);
        }
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        out
    }

    /// Whether this signature was verified before.
    pub fn was_verified(&self, keyid: &str, message: &str, sig: &str) -> bool {
        let k = Self::verified_key(keyid, message, sig);
        self.verified.lock().is_ok_and(|v| v.contains(&k))
    }

    /// Remember a verified signature (forgotten all at once past a bound).
    pub fn remember_verified(&self, keyid: &str, message: &str, sig: &str) {
        let k = Self::verified_key(keyid, message, sig);
        if let Ok(mut v) = self.verified.lock() {
            if v.len() >= VERIFIED_MAX {
                v.clear();
            }
            v.insert(k);
        }
    }

    fn disk_path(&self, registry: &str) -> PathBuf {
        let h = blake3::hash(registry.as_bytes()).to_hex();
        self.dir.join(format!("keys-{}.json", &h[..16]))
    }

    /// The keys `registry` (with a trailing slash) publishes; None when it publishes none.
    /// `offline`: the disk copy only.
    pub async fn of(
        &self,
        registry: &str,
        cfg: &NpmConfig,
        offline: bool,
    ) -> Result<Option<Arc<Vec<SigningKey>>>> {
        if let Some((at, keys)) = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(registry).cloned())
            && (at.elapsed() < FRESH || offline)
        {
            return Ok(keys);
        }
        let path = self.disk_path(registry);
        let url = format!("{registry}-/npm/v1/keys");
        let body = if offline {
            tokio::fs::read(&path).await.ok()
        } else {
            let what = format!("the signing keys of {registry}");
            match self
                .http
                .get(
                    Lane::Metadata,
                    &url,
                    cfg.auth_for(&url).as_deref(),
                    None,
                    &what,
                )
                .await
            {
                Ok((resp, _permit)) => {
                    let b = resp
                        .bytes()
                        .await
                        .map_err(|e| HoardError::Registry(format!("reading {url}: {e}")))?;
                    let _ = crate::atomic::write_atomic(&path, &b);
                    Some(b.to_vec())
                }
                Err(HoardError::NotFound(_)) => None,
                // Unreachable now: the last keys seen, if any.
                Err(e) => match tokio::fs::read(&path).await {
                    Ok(b) => Some(b),
                    Err(_) => return Err(e),
                },
            }
        };
        let keys = match body {
            Some(b) => Some(Arc::new(parse(&b).map_err(|e| {
                HoardError::Registry(format!("{url} is not a keys document: {e}"))
            })?)),
            None => None,
        };
        if let Ok(mut c) = self.cache.lock() {
            c.insert(registry.to_string(), (Instant::now(), keys.clone()));
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_npm_keys_documents() {
        // npm's published key (the ECDSA P-256 one), as the registry serves it.
        let doc = br#"{"keys":[{"expires":"2025-01-29T00:00:00.000Z","keyid":"SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA","keytype":"ecdsa-sha2-nistp256","scheme":"ecdsa-sha2-nistp256","key":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1Olb3zMAFFxXKHiIkQO5cJ3Yhl5i6UPp+IhuteBJbuHcA5UogKo0EWtlWwW6KSaKoTNEYL7JlCQiVnkhBktUgg=="},
                       {"expires":null,"keyid":"other","keytype":"ed25519","key":"AAAA"}]}"#;
        let keys = parse(doc).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].point.as_ref().map(Vec::len), Some(65));
        assert_eq!(keys[0].expires, Some(1_738_108_800_000));
        assert!(keys[1].point.is_none() && keys[1].expires.is_none());
    }
}
