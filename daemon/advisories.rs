//! Advisories in npm's bulk format (`POST /-/npm/v1/security/advisories/bulk` with
//! `{"<name>": ["<version>", …]}`, answered with `{"<name>": [{id, url, title, severity,
//! vulnerable_versions, cwe, …}]}`): which installed versions they affect, how severe, whether
//! they are malware, and the version that fixes each (npm audit's `fixAvailable`: the lowest
//! unaffected version within the ranges that ask for the package, else above them).
//!
//! Must not: fetch anything (callers send the body and bring the answer and the packuments).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::registry::compact::Packument;
use crate::semver_npm::Range;

/// npm's severities, lowest first.
pub const SEVERITIES: [&str; 5] = ["info", "low", "moderate", "high", "critical"];

/// The rank of a severity (`low` = 1); unknown words rank as `info`.
pub fn rank(severity: &str) -> usize {
    SEVERITIES
        .iter()
        .position(|s| s.eq_ignore_ascii_case(severity))
        .unwrap_or(0)
}

/// `audit-level` as npm reads it: the lowest severity that counts; `none`: no severity does.
pub fn level(setting: &str) -> Result<Option<usize>, String> {
    match setting.trim() {
        "none" => Ok(None),
        s if SEVERITIES.contains(&s) => Ok(Some(rank(s))),
        other => Err(format!(
            "the setting audit-level={other} is not one of info, low, moderate, high, critical, \
             none"
        )),
    }
}

/// One advisory as the endpoint sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct Raw {
    #[serde(default)]
    pub id: u64,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub vulnerable_versions: String,
    #[serde(default)]
    pub cwe: Vec<String>,
}

impl Raw {
    /// Malicious code: CWE-506 (Embedded Malicious Code), as GitHub's malware advisories carry,
    /// or npm's "Malware in <name>" title.
    pub fn malware(&self) -> bool {
        self.cwe.iter().any(|c| c == "CWE-506") || self.title.starts_with("Malware in")
    }

    pub fn affects(&self, version: &semver::Version) -> bool {
        Range::parse(&self.vulnerable_versions).is_some_and(|r| r.satisfies(version))
    }
}

/// The bulk advisory endpoint of the registry at `registry_url` (ending in `/`).
pub fn bulk_endpoint(registry_url: &str) -> String {
    format!("{registry_url}-/npm/v1/security/advisories/bulk")
}

/// The request body for `installed` (name → versions).
pub fn request_body(installed: &BTreeMap<String, BTreeSet<String>>) -> Vec<u8> {
    serde_json::to_vec(installed).unwrap_or_default()
}

/// The endpoint's answer.
pub fn parse(body: &[u8]) -> Result<BTreeMap<String, Vec<Raw>>, String> {
    serde_json::from_slice(body).map_err(|e| format!("the advisory answer is not valid: {e}"))
}

/// The fix for `version` of a package with `advisories`: (within every range in `ranges`,
/// above them). Versions are taken from the packument, lowest first, above `version`.
pub fn fixes(
    p: &Packument,
    version: &semver::Version,
    advisories: &[Raw],
    ranges: &[String],
) -> (Option<String>, Option<String>) {
    let ranges: Vec<Range> = ranges.iter().filter_map(|r| Range::parse(r)).collect();
    let mut within = None;
    let mut outside = None;
    for e in p.sorted.iter().rev() {
        if e.version <= *version
            || !e.version.pre.is_empty()
            || advisories.iter().any(|a| a.affects(&e.version))
        {
            continue;
        }
        if outside.is_none() {
            outside = Some(e.raw.to_string());
        }
        if ranges.iter().all(|r| r.satisfies(&e.version)) {
            within = Some(e.raw.to_string());
            break;
        }
    }
    if within.is_some() {
        outside = None;
    }
    (within, outside)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packument() -> Packument {
        let doc = serde_json::json!({"name": "x", "versions": {
            "1.0.0": {"name": "x", "version": "1.0.0"}, "1.0.1": {"name": "x", "version": "1.0.1"},
            "1.1.0": {"name": "x", "version": "1.1.0"}, "2.0.0": {"name": "x", "version": "2.0.0"}}});
        Packument::parse(doc.to_string().as_bytes()).unwrap()
    }

    fn adv(range: &str) -> Raw {
        Raw {
            id: 1,
            url: String::new(),
            title: "Prototype pollution".into(),
            severity: "high".into(),
            vulnerable_versions: range.into(),
            cwe: vec!["CWE-1321".into()],
        }
    }

    #[test]
    fn fixes_prefer_the_lowest_unaffected_version_within_the_ranges() {
        let p = packument();
        let v = semver::Version::new(1, 0, 0);
        assert_eq!(
            fixes(&p, &v, &[adv("<1.0.1")], &["^1.0.0".into()]),
            (Some("1.0.1".into()), None)
        );
        assert_eq!(
            fixes(&p, &v, &[adv("<1.1.0")], &["~1.0.0".into()]),
            (None, Some("1.1.0".into()))
        );
        assert_eq!(fixes(&p, &v, &[adv("*")], &["^1".into()]), (None, None));
    }

    #[test]
    fn severities_levels_and_malware() {
        assert!(rank("critical") > rank("high") && rank("moderate") > rank("low"));
        assert_eq!(level("moderate"), Ok(Some(2)));
        assert_eq!(level("none"), Ok(None));
        assert!(level("severe").unwrap_err().contains("audit-level=severe"));
        let mut a = adv("*");
        assert!(!a.malware());
        a.cwe.push("CWE-506".into());
        assert!(a.malware());
        assert!(adv("<1.0.1").affects(&semver::Version::new(1, 0, 0)));
        assert!(!adv("<1.0.1").affects(&semver::Version::new(1, 0, 1)));
    }
}
