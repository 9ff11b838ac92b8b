//! npm-pick-manifest: which version of a packument npm installs for a range or tag (the `latest`
//! tag when it satisfies, else the highest satisfying, preferring non-deprecated versions whose
//! engines fit; a previous lockfile's versions first), whether a manifest fits this platform, and
//! the error when nothing satisfies.
//!
//! Must not: fetch anything or place packages.

use std::sync::Arc;

use crate::registry::compact::Packument;
use crate::registry::packument::Manifest;
use crate::semver_npm::Range;
use crate::spec::Spec;

/// What `os`/`cpu`/`libc` fields are compared against.
pub fn platform_ok(m: &Manifest) -> bool {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        o => o,
    };
    let cpu = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "x86" => "ia32",
        a => a,
    };
    let libc = if cfg!(target_env = "musl") {
        "musl"
    } else {
        "glibc"
    };
    // npm-install-checks: `any`, negations (`!win32`), and positive entries.
    let fits = |list: &[String], value: &str| {
        if list.is_empty() || (list.len() == 1 && list[0] == "any") {
            return true;
        }
        let mut negated = 0;
        let mut matched = false;
        for entry in list {
            match entry.strip_prefix('!') {
                Some(test) => {
                    negated += 1;
                    if test == value {
                        return false;
                    }
                }
                None => matched |= entry == value,
            }
        }
        matched || negated == list.len()
    };
    fits(&m.os, os) && fits(&m.cpu, cpu) && (os != "linux" || fits(&m.libc, libc))
}

pub fn engine_ok(node_engine: Option<&str>, node: Option<&semver::Version>) -> bool {
    match (node, node_engine) {
        (Some(v), Some(r)) => Range::parse(r)
            .map(|r| r.satisfies_including_prerelease(v))
            .unwrap_or(true),
        _ => true,
    }
}

/// Whether the `i`th version was published by `before` (ms); npm lets a version with no
/// recorded time pass.
fn in_time(p: &Packument, i: usize, before: Option<i64>) -> bool {
    match (before, p.sorted[i].published) {
        (Some(b), Some(t)) => t <= b,
        _ => true,
    }
}

/// npm-pick-manifest: the version of `p` that npm would pick for `spec`, among the versions
/// published by `before` (ms since the epoch; the release-age cooldown) when it is given.
/// Without preferences or a cutoff the answer is remembered in the packument (a warm resolve
/// asks the same questions again).
pub fn pick(
    p: &Packument,
    spec: &Spec,
    node: Option<&semver::Version>,
    preferred: Option<&[String]>,
    before: Option<i64>,
) -> Option<Arc<Manifest>> {
    let key = match spec {
        Spec::Range(r) if preferred.is_none() && before.is_none() => Some((false, r)),
        Spec::Tag(t) if before.is_none() => Some((true, t)),
        _ => None,
    };
    let Some((tag, raw)) = key else {
        return pick_anew(p, spec, node, preferred, before);
    };
    if let Some(answer) = p.remembered_pick(tag, raw, node) {
        return answer;
    }
    let answer = pick_anew(p, spec, node, preferred, before);
    p.remember_pick(tag, raw, node, answer.clone());
    answer
}

fn pick_anew(
    p: &Packument,
    spec: &Spec,
    node: Option<&semver::Version>,
    preferred: Option<&[String]>,
    before: Option<i64>,
) -> Option<Arc<Manifest>> {
    match spec {
        Spec::Tag(tag) => {
            let ver = p.dist_tags.get(tag)?;
            let i = p.sorted.iter().position(|e| &*e.raw == ver)?;
            if in_time(p, i, before) {
                return p.manifest_at(i);
            }
            // A tag too young: the newest version up to it that is old enough, as npm does.
            pick(p, &Spec::Range(format!("<={ver}")), node, None, before)
        }
        Spec::Range(r) => {
            let range = Range::parse(r)?;
            if let Some(pref) = preferred {
                let mut best: Option<usize> = None;
                for v in pref {
                    if let Some(i) = p.sorted.iter().position(|e| &*e.raw == v)
                        && range.satisfies(&p.sorted[i].version)
                        && best.is_none_or(|b| i < b)
                    {
                        best = Some(i);
                    }
                }
                if let Some(i) = best {
                    return p.manifest_at(i);
                }
            }
            if let Some(i) = p.latest()
                && (range.is_any() || range.satisfies(&p.sorted[i].version))
                && !p.sorted[i].deprecated
                && p.sorted[i].engine_ok(node)
                && in_time(p, i, before)
            {
                return p.manifest_at(i);
            }
            // Highest satisfying, ranked: not deprecated and engine ok > engine ok > not
            // deprecated > any.
            let mut best: Option<(u8, usize)> = None;
            for (i, e) in p.sorted.iter().enumerate() {
                if !range.satisfies(&e.version) || !in_time(p, i, before) {
                    continue;
                }
                let eng = e.engine_ok(node);
                let nodep = !e.deprecated;
                let rank = match (nodep && eng, eng, nodep) {
                    (true, _, _) => 3,
                    (_, true, _) => 2,
                    (_, _, true) => 1,
                    _ => 0,
                };
                // `sorted` is highest first: the first of the best rank wins.
                if best.is_none_or(|(r, _)| rank > r) {
                    best = Some((rank, i));
                    if rank == 3 {
                        break;
                    }
                }
            }
            p.manifest_at(best?.1)
        }
        _ => None,
    }
}

/// "no version of X satisfying R is old enough": the cutoff, and the versions that satisfy the
/// range but were published after it (newest first, at most 8).
pub fn too_young_message(
    p: &Packument,
    name: &str,
    spec: &Spec,
    cooldown: &crate::cooldown::Cooldown,
) -> Option<String> {
    let range = match spec {
        Spec::Range(r) => Range::parse(r)?,
        Spec::Tag(t) => Range::parse(&format!("<={}", p.dist_tags.get(t)?))?,
        _ => return None,
    };
    let young: Vec<String> = p
        .sorted
        .iter()
        .filter(|e| range.satisfies(&e.version))
        .filter_map(|e| {
            let t = e.published.filter(|t| *t > cooldown.cutoff_ms)?;
            Some(format!("{} ({})", e.raw, crate::cooldown::time_text(t)))
        })
        .take(8)
        .collect();
    if young.is_empty() {
        return None;
    }
    let raw = match spec {
        Spec::Range(r) | Spec::Tag(r) => r.as_str(),
        _ => "",
    };
    Some(format!(
        "no version of `{name}` satisfying `{raw}` was published before {} ({}); too young: {}; \
         wait, relax the setting, or add `{name}` to min-release-age-exclude",
        cooldown.cutoff_text(),
        cooldown.setting,
        young.join(", ")
    ))
}

/// "no version of X satisfies R": the error names the stable versions nearest the range (the
/// twelve closest to the first version the range names, in order; the newest when it names
/// none), never prereleases.
pub fn no_version_message(p: &Packument, name: &str, spec: &Spec) -> String {
    let raw = match spec {
        Spec::Range(r) | Spec::Tag(r) => r.clone(),
        other => format!("{other:?}"),
    };
    let stable: Vec<&crate::registry::compact::VersionEntry> = p
        .sorted
        .iter()
        .filter(|e| e.version.pre.is_empty())
        .collect();
    let mut near: Vec<&crate::registry::compact::VersionEntry> = match named_version(&raw) {
        Some(target) => {
            // `stable` is highest first: the twelve around where the target would stand.
            let at = stable
                .iter()
                .position(|e| e.version <= target)
                .unwrap_or(stable.len());
            let from = at.saturating_sub(6);
            stable[from..(from + 12).min(stable.len())].to_vec()
        }
        None => stable.iter().take(12).copied().collect(),
    };
    near.reverse();
    let more = stable.len() > near.len();
    format!(
        "no version of `{name}` satisfies `{raw}`; {} versions near it: {}; dist-tags: {}",
        if more { "stable" } else { "all stable" },
        near.iter().map(|e| &*e.raw).collect::<Vec<_>>().join(", "),
        p.dist_tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The first version a range names (`~1.5.0` → 1.5.0, `>=2` → 2.0.0), missing parts as 0.
fn named_version(range: &str) -> Option<semver::Version> {
    let start = range.find(|c: char| c.is_ascii_digit())?;
    let token: String = range[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = token
        .split('.')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some(semver::Version::new(major, minor, patch))
}

#[cfg(test)]
mod message_tests {
    use super::*;

    #[test]
    fn a_remembered_pick_is_for_one_node_version_and_never_for_preferences() {
        let mut versions = serde_json::Map::new();
        versions.insert(
            "1.0.0".into(),
            serde_json::json!({"name": "p", "version": "1.0.0"}),
        );
        versions.insert(
            "1.1.0".into(),
            serde_json::json!({"name": "p", "version": "1.1.0", "engines": {"node": ">=20"}}),
        );
        let doc = serde_json::json!({"name": "p", "dist-tags": {"latest": "1.1.0"}, "versions": versions});
        let p = Packument::parse(doc.to_string().as_bytes()).unwrap();
        let range = Spec::Range("^1".into());
        let (v18, v20) = (
            semver::Version::new(18, 0, 0),
            semver::Version::new(20, 0, 0),
        );
        let picked = |node: &semver::Version, pref: Option<&[String]>| {
            pick(&p, &range, Some(node), pref, None).map(|m| m.version.clone())
        };
        for _ in 0..2 {
            assert_eq!(picked(&v18, None).as_deref(), Some("1.0.0"));
            assert_eq!(picked(&v20, None).as_deref(), Some("1.1.0"));
        }
        let old = ["1.0.0".to_string()];
        assert_eq!(picked(&v20, Some(&old)).as_deref(), Some("1.0.0"));
        assert_eq!(picked(&v20, None).as_deref(), Some("1.1.0"));
    }

    #[test]
    fn a_missed_range_lists_the_stable_versions_near_it() {
        let mut versions = serde_json::Map::new();
        for v in [
            "1.4.0",
            "1.4.1",
            "1.6.0",
            "2.0.0",
            "3.0.0-canary.1",
            "19.0.0",
            "19.1.0-nightly",
        ] {
            versions.insert(v.into(), serde_json::json!({"name": "p", "version": v}));
        }
        for i in 0..20 {
            let v = format!("{}.0.0", 4 + i);
            versions.insert(v.clone(), serde_json::json!({"name": "p", "version": v}));
        }
        let doc = serde_json::json!({"name": "p", "dist-tags": {"latest": "19.0.0"}, "versions": versions});
        let p = Packument::parse(doc.to_string().as_bytes()).unwrap();
        let msg = no_version_message(&p, "p", &Spec::Range("~1.5.0".into()));
        assert!(
            msg.contains("stable versions near it: 1.4.0, 1.4.1, 1.6.0, 2.0.0, 4.0.0,"),
            "{msg}"
        );
        assert!(
            !msg.contains("canary") && !msg.contains("nightly") && !msg.contains("19.0.0,"),
            "{msg}"
        );
    }
}
