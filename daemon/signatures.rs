//! Registry signatures, checked as npm's pacote checks them: each `dist.signatures` entry is an
//! ECDSA P-256 / SHA-256 signature (DER, base64) over `<name>@<version>:<integrity>`, by a key
//! the registry publishes (`registry::keys`). A key that expired before the version was
//! published does not vouch for it (a version with no recorded time counts as published on
//! 2015-01-01, npm's cut-off). Also the provenance check npm can make without sigstore: an
//! attestation's in-toto subject must name the package (`pkg:npm/<name>@<version>`) and carry
//! the tarball's SHA-512.
//!
//! Uses `ring` (already linked for TLS) for the ECDSA verification.
//! Must not: fetch anything (callers bring the keys, signatures and attestation bundles).

use base64::Engine;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

use crate::registry::keys::SigningKey;
use crate::registry::packument::DistSignature;

/// npm's stand-in publication time when a packument records none.
const MISSING_TIME_CUTOFF_MS: i64 = 1_420_070_400_000;

/// `verify-signatures` in .npmrc.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// A missing signature is an error too.
    Require,
    /// A missing signature is a warning (the default); a bad one fails.
    Warn,
    Off,
}

impl Mode {
    pub fn from_setting(v: Option<&str>) -> Result<Mode, String> {
        match v.map(str::trim) {
            None | Some("") | Some("warn") => Ok(Mode::Warn),
            Some("require") | Some("true") => Ok(Mode::Require),
            Some("off") | Some("false") => Ok(Mode::Off),
            Some(other) => Err(format!(
                "the setting verify-signatures={other} is not one of warn, require, off"
            )),
        }
    }
}

/// What one version's signatures say.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Verified,
    /// No signature, while the registry publishes keys.
    Missing,
    /// npm's words for what is wrong (names the package, version and keyid).
    Invalid(String),
}

/// One version to check.
pub struct Signed<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub integrity: Option<&'a str>,
    pub signatures: &'a [DistSignature],
    /// ms since the epoch.
    pub published: Option<i64>,
}

/// Remembers signatures verified before (`registry::keys::Keys` implements it).
pub trait Seen {
    fn was_verified(&self, keyid: &str, message: &str, sig: &str) -> bool;
    fn remember_verified(&self, keyid: &str, message: &str, sig: &str);
}

impl Seen for crate::registry::keys::Keys {
    fn was_verified(&self, keyid: &str, message: &str, sig: &str) -> bool {
        crate::registry::keys::Keys::was_verified(self, keyid, message, sig)
    }
    fn remember_verified(&self, keyid: &str, message: &str, sig: &str) {
        crate::registry::keys::Keys::remember_verified(self, keyid, message, sig)
    }
}

/// Check `s` against `keys`, skipping the ECDSA work for signatures `seen` verified before.
pub fn check_seen(s: &Signed<'_>, keys: &[SigningKey], seen: &dyn Seen) -> Check {
    let message = format!("{}@{}:{}", s.name, s.version, s.integrity.unwrap_or(""));
    let known = !s.signatures.is_empty()
        && s.signatures.iter().all(|sig| {
            keys.iter()
                .any(|k| k.keyid == sig.keyid && k.expires.is_none())
                && seen.was_verified(&sig.keyid, &message, &sig.sig)
        });
    if known {
        return Check::Verified;
    }
    let c = check(s, keys);
    if c == Check::Verified {
        for sig in s.signatures {
            seen.remember_verified(&sig.keyid, &message, &sig.sig);
        }
    }
    c
}

/// Whether checking `sigs` needs the version's publication time (a key that signed it expires).
pub fn needs_time(sigs: &[DistSignature], keys: &[SigningKey]) -> bool {
    sigs.iter().any(|s| {
        keys.iter()
            .any(|k| k.keyid == s.keyid && k.expires.is_some())
    })
}

pub fn check(s: &Signed<'_>, keys: &[SigningKey]) -> Check {
    if s.signatures.is_empty() {
        return Check::Missing;
    }
    let id = format!("{}@{}", s.name, s.version);
    let message = format!("{id}:{}", s.integrity.unwrap_or(""));
    for sig in s.signatures {
        let Some(key) = keys.iter().find(|k| k.keyid == sig.keyid) else {
            return Check::Invalid(format!(
                "{id} has a registry signature with keyid: {} but no corresponding public key \
                 can be found",
                sig.keyid
            ));
        };
        let published = s.published.unwrap_or(MISSING_TIME_CUTOFF_MS);
        if let Some(expires) = key.expires
            && published >= expires
        {
            return Check::Invalid(format!(
                "{id} has a registry signature with keyid: {} but the corresponding public key \
                 has expired {}",
                sig.keyid,
                crate::cooldown::time_text(expires)
            ));
        }
        let Some(point) = &key.point else {
            return Check::Invalid(format!(
                "{id} has a registry signature with keyid: {} whose key type `{}` hoard cannot \
                 verify",
                sig.keyid, key.keytype
            ));
        };
        let der = base64::engine::general_purpose::STANDARD
            .decode(sig.sig.trim())
            .unwrap_or_default();
        let ok = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
            .verify(message.as_bytes(), &der)
            .is_ok();
        if !ok {
            return Check::Invalid(format!(
                "{id} has an invalid registry signature with keyid: {} and signature: {}",
                sig.keyid, sig.sig
            ));
        }
    }
    Check::Verified
}

/// The package URL an attestation's subject must name: `pkg:npm/<name>@<version>`, the scope's
/// `@` written `%40` (npm-package-arg's toPurl).
pub fn purl(name: &str, version: &str) -> String {
    let name = match name.strip_prefix('@') {
        Some(rest) => format!("%40{rest}"),
        None => name.to_string(),
    };
    format!("pkg:npm/{name}@{version}")
}

/// Check a registry's attestations document (`{"attestations": [{predicateType, bundle}]}`)
/// against the package: every statement's first subject must be its purl with the SHA-512 of
/// its integrity. Returns the predicate types seen.
pub fn check_attestations(
    doc: &[u8],
    name: &str,
    version: &str,
    integrity: &str,
) -> Result<Vec<String>, String> {
    let id = format!("{name}@{version}");
    let v: serde_json::Value = serde_json::from_slice(doc)
        .map_err(|e| format!("{id}: the attestations are not JSON: {e}"))?;
    let list = v["attestations"]
        .as_array()
        .ok_or_else(|| format!("{id}: the attestations document has no `attestations` list"))?;
    let want = crate::store::integrity::Sri::parse(Some(integrity), None)
        .sha512
        .map(hex::encode)
        .ok_or_else(|| format!("{id}: its integrity `{integrity}` is not a sha512 hash"))?;
    let mut types = Vec::new();
    for a in list {
        let payload = a["bundle"]["dsseEnvelope"]["payload"]
            .as_str()
            .unwrap_or("");
        let statement: serde_json::Value = base64::engine::general_purpose::STANDARD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                format!("{id}: an attestation's DSSE payload is not an in-toto statement")
            })?;
        let subject = &statement["subject"][0];
        let (sname, sdigest) = (
            subject["name"].as_str().unwrap_or(""),
            subject["digest"]["sha512"].as_str().unwrap_or(""),
        );
        if sname != purl(name, version) {
            return Err(format!(
                "{id} package name and version (PURL): {} doesn't match what was signed: {sname}",
                purl(name, version)
            ));
        }
        if sdigest != want {
            return Err(format!(
                "{id} package integrity (hex digest): {want} doesn't match what was signed: {sdigest}"
            ));
        }
        types.push(a["predicateType"].as_str().unwrap_or("").to_string());
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    fn keypair() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
    }

    fn sign(k: &EcdsaKeyPair, msg: &str) -> String {
        let sig = k.sign(&SystemRandom::new(), msg.as_bytes()).unwrap();
        base64::engine::general_purpose::STANDARD.encode(sig.as_ref())
    }

    #[test]
    fn verifies_flags_tampering_unknown_keys_and_expiry() {
        let kp = keypair();
        let key = SigningKey {
            keyid: "k1".into(),
            expires: Some(2_000_000_000_000),
            point: Some(kp.public_key().as_ref().to_vec()),
            keytype: "ecdsa-sha2-nistp256".into(),
        };
        let sigs = vec![DistSignature {
            keyid: "k1".into(),
            sig: sign(&kp, "a@1.0.0:sha512-xyz"),
        }];
        let mut s = Signed {
            name: "a",
            version: "1.0.0",
            integrity: Some("sha512-xyz"),
            signatures: &sigs,
            published: Some(1_900_000_000_000),
        };
        let keys = [key];
        assert_eq!(check(&s, &keys), Check::Verified);
        s.integrity = Some("sha512-other");
        assert!(
            matches!(check(&s, &keys), Check::Invalid(m) if m.contains("invalid registry signature with keyid: k1"))
        );
        s.integrity = Some("sha512-xyz");
        s.published = Some(2_100_000_000_000);
        assert!(matches!(check(&s, &keys), Check::Invalid(m) if m.contains("has expired")));
        s.published = None;
        assert_eq!(check(&s, &keys), Check::Verified);
        let other = vec![DistSignature {
            keyid: "k2".into(),
            sig: sigs[0].sig.clone(),
        }];
        s.signatures = &other;
        assert!(
            matches!(check(&s, &keys), Check::Invalid(m) if m.contains("no corresponding public key"))
        );
        s.signatures = &[];
        assert_eq!(check(&s, &keys), Check::Missing);
    }

    #[test]
    fn attestation_subjects_must_name_the_package_and_its_digest() {
        // A whole SHA-512: 64 zero bytes, and one that differs in its last byte.
        let sri = |last: u8| {
            let mut d = [0u8; 64];
            d[63] = last;
            format!(
                "sha512-{}",
                base64::engine::general_purpose::STANDARD.encode(d)
            )
        };
        let integrity = sri(0);
        let statement = serde_json::json!({"subject": [{"name": "pkg:npm/%40s/p@1.0.0",
            "digest": {"sha512": "0".repeat(128)}}]});
        let doc = serde_json::json!({"attestations": [{"predicateType": "https://slsa.dev/provenance/v1",
            "bundle": {"dsseEnvelope": {"payload": base64::engine::general_purpose::STANDARD.encode(statement.to_string())}}}]});
        let bytes = doc.to_string().into_bytes();
        assert_eq!(
            check_attestations(&bytes, "@s/p", "1.0.0", &integrity).unwrap(),
            ["https://slsa.dev/provenance/v1"]
        );
        assert!(
            check_attestations(&bytes, "@s/p", "1.0.1", &integrity)
                .unwrap_err()
                .contains("PURL")
        );
        assert!(
            check_attestations(&bytes, "@s/p", "1.0.0", &sri(1))
                .unwrap_err()
                .contains("hex digest")
        );
    }
}
