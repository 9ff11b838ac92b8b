//! Subresource Integrity (SRI) strings as npm uses them: parsing, picking the strongest
//! algorithm, and a hasher that computes every digest hoard records in one pass.
//!
//! Must not: read files or the network; it only hashes bytes it is given.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::Digest as _;

/// A parsed SRI value (`sha512-<b64> sha1-<b64> …`) plus npm's legacy hex `shasum`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sri {
    pub sha512: Option<Vec<u8>>,
    pub sha1: Option<Vec<u8>>,
}

impl Sri {
    /// Parse an `integrity` string and/or a hex `shasum`. Unknown algorithms (sha256, sha384)
    /// are ignored; npm's registry always offers sha512 or sha1.
    pub fn parse(integrity: Option<&str>, shasum: Option<&str>) -> Sri {
        let mut sri = Sri::default();
        for token in integrity.unwrap_or("").split_whitespace() {
            let Some((algo, rest)) = token.split_once('-') else {
                continue;
            };
            // Options after `?` are allowed by the SRI grammar.
            let b64 = rest.split('?').next().unwrap_or("");
            let Ok(bytes) = STANDARD.decode(b64) else {
                continue;
            };
            match algo {
                "sha512" if bytes.len() == 64 => sri.sha512 = Some(bytes),
                "sha1" if bytes.len() == 20 => sri.sha1 = Some(bytes),
                _ => {}
            }
        }
        if sri.sha1.is_none()
            && let Some(hex) = shasum
            && let Ok(bytes) = hex::decode(hex.trim())
            && bytes.len() == 20
        {
            sri.sha1 = Some(bytes);
        }
        sri
    }

    pub fn is_empty(&self) -> bool {
        self.sha512.is_none() && self.sha1.is_none()
    }

    /// `sha512-<b64>` if a sha512 digest is known.
    pub fn sha512_sri(&self) -> Option<String> {
        self.sha512
            .as_ref()
            .map(|d| format!("sha512-{}", STANDARD.encode(d)))
    }

    pub fn sha1_hex(&self) -> Option<String> {
        self.sha1.as_ref().map(hex::encode)
    }

    /// The strongest digest as an SRI string, for messages and lockfiles.
    pub fn strongest(&self) -> Option<String> {
        self.sha512_sri().or_else(|| {
            self.sha1
                .as_ref()
                .map(|d| format!("sha1-{}", STANDARD.encode(d)))
        })
    }
}

/// Computes the digests of a tarball in one pass: always sha512 (the store's key), and sha1
/// only when that is what the tarball is checked against (an `expected` without sha512): sha1
/// is ~a third of the hashing time and otherwise goes unused.
pub struct TarballHasher {
    sha512: sha2::Sha512,
    sha1: Option<sha1::Sha1>,
}

/// Digests of a whole tarball.
#[derive(Debug, Clone)]
pub struct TarballDigests {
    pub sha512: Vec<u8>,
    /// Computed only when the tarball was checked by sha1 (see `TarballHasher::for_expected`).
    pub sha1: Option<Vec<u8>>,
}

impl TarballHasher {
    /// A hasher for a tarball that `expected` will be checked against.
    pub fn for_expected(expected: &Sri) -> TarballHasher {
        TarballHasher {
            sha512: sha2::Sha512::default(),
            sha1: expected.sha512.is_none().then(sha1::Sha1::default),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.sha512.update(bytes);
        if let Some(sha1) = &mut self.sha1 {
            sha1.update(bytes);
        }
    }

    pub fn finish(self) -> TarballDigests {
        TarballDigests {
            sha512: self.sha512.finalize().to_vec(),
            sha1: self.sha1.map(|h| h.finalize().to_vec()),
        }
    }
}

impl TarballDigests {
    pub fn sha512_sri(&self) -> String {
        format!("sha512-{}", STANDARD.encode(&self.sha512))
    }

    /// Lowercase hex sha1, when it was computed; empty otherwise (the index's `sha1` column).
    pub fn sha1_hex(&self) -> String {
        self.sha1.as_deref().map(hex::encode).unwrap_or_default()
    }

    /// Check against `expected` with the strongest algorithm present (sha512 beats sha1).
    /// Returns `Err((expected, actual))` as SRI strings on a mismatch. An empty `expected`
    /// passes (nothing to check against; tarball URLs without integrity).
    pub fn verify(&self, expected: &Sri) -> Result<(), (String, String)> {
        if let Some(want) = &expected.sha512 {
            if *want != self.sha512 {
                return Err((
                    format!("sha512-{}", STANDARD.encode(want)),
                    self.sha512_sri(),
                ));
            }
            return Ok(());
        }
        if let Some(want) = &expected.sha1
            && self.sha1.as_ref() != Some(want)
        {
            let actual = match &self.sha1 {
                Some(got) => format!("sha1-{}", STANDARD.encode(got)),
                None => "sha1 not computed".to_string(),
            };
            return Err((format!("sha1-{}", STANDARD.encode(want)), actual));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strongest_algorithm_wins() {
        // Nothing expected: both digests are computed.
        let mut h = TarballHasher::for_expected(&Sri::default());
        h.update(b"hello");
        let d = h.finish();
        let good512 = d.sha512_sri();
        let bad_sha1 = format!("sha1-{}", STANDARD.encode([0u8; 20]));
        // sha512 right, sha1 wrong: sha512 decides.
        let sri = Sri::parse(Some(&format!("{bad_sha1} {good512}")), None);
        assert!(d.verify(&sri).is_ok());
        // only a wrong sha1: fails.
        let sri = Sri::parse(Some(&bad_sha1), None);
        let (want, got) = d.verify(&sri).unwrap_err();
        assert!(want.starts_with("sha1-") && got.starts_with("sha1-"));
        // shasum hex used when no integrity.
        let sri = Sri::parse(None, Some(&d.sha1_hex()));
        assert!(d.verify(&sri).is_ok());
        assert!(Sri::parse(Some("md5-xxxx"), None).is_empty());
    }

    #[test]
    fn sha1_is_computed_only_when_it_is_what_is_checked() {
        let mut all = TarballHasher::for_expected(&Sri::default());
        all.update(b"hello");
        let all = all.finish();
        let by_sha1 = Sri::parse(None, Some(&all.sha1_hex()));
        let by_sha512 = Sri::parse(Some(&all.sha512_sri()), None);
        let digests = |expected: &Sri| {
            let mut h = TarballHasher::for_expected(expected);
            h.update(b"hel");
            h.update(b"lo");
            h.finish()
        };
        let checked_by_sha512 = digests(&by_sha512);
        assert_eq!(checked_by_sha512.sha1, None);
        assert_eq!(checked_by_sha512.sha1_hex(), "");
        assert_eq!(checked_by_sha512.sha512, all.sha512);
        assert!(checked_by_sha512.verify(&by_sha512).is_ok());
        let checked_by_sha1 = digests(&by_sha1);
        assert_eq!(checked_by_sha1.sha1, all.sha1);
        assert!(checked_by_sha1.verify(&by_sha1).is_ok());
        // A sha1 that was not computed never passes for one.
        let (_, got) = checked_by_sha512.verify(&by_sha1).unwrap_err();
        assert_eq!(got, "sha1 not computed");
    }
}
