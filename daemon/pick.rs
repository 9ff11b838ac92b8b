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

/// npm-pick-manifest: the version of `p` that npm would pick for `spec`.
pub fn pick(
    p: &Packument,
    spec: &Spec,
    node: Option<&semver::Version>,
    preferred: Option<&[String]>,
) -> Option<Arc<Manifest>> {
    match spec {
        Spec::Tag(tag) => p.manifest(p.dist_tags.get(tag)?),
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
            if let Some(latest) = p.dist_tags.get("latest")
                && let Some(i) = p.sorted.iter().position(|e| &*e.raw == latest)
                && (range.is_any() || range.satisfies(&p.sorted[i].version))
                && !p.sorted[i].deprecated
                && engine_ok(p.sorted[i].node_engine.as_deref(), node)
            {
                return p.manifest_at(i);
            }
            // Highest satisfying, ranked: not deprecated and engine ok > engine ok > not
            // deprecated > any.
            let mut best: Option<(u8, usize)> = None;
            for (i, e) in p.sorted.iter().enumerate() {
                if !range.satisfies(&e.version) {
                    continue;
                }
                let eng = engine_ok(e.node_engine.as_deref(), node);
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

/// "no version of X satisfies R": the error names the stable versions nearest the range.
pub fn no_version_message(p: &Packument, name: &str, spec: &Spec) -> String {
    let raw = match spec {
        Spec::Range(r) | Spec::Tag(r) => r.clone(),
        other => format!("{other:?}"),
    };
    let mut versions: Vec<&str> = p
        .sorted
        .iter()
        .filter(|e| e.version.pre.is_empty())
        .take(12)
        .map(|e| &*e.raw)
        .collect();
    versions.reverse();
    format!(
        "no version of `{name}` satisfies `{raw}`; available: {}{}; dist-tags: {}",
        if p.sorted.len() > 12 { "…, " } else { "" },
        versions.join(", "),
        p.dist_tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
