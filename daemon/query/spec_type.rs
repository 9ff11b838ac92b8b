//! What npm-package-arg calls a dependency spec's type (`:type()`), and whether an installed
//! version satisfies a spec (arborist's depValid, for `:invalid`).
//!
//! Must not: fetch, or parse specs for installing (spec.rs does that).

use crate::semver_npm::{self, Range};

/// npa's `type`: version, range, tag, alias, git, remote, file or directory.
pub fn of(spec: &str) -> &'static str {
    let s = spec.trim();
    if s.starts_with("npm:") {
        return "alias";
    }
    let path_like = s.starts_with("file:")
        || s.starts_with("./")
        || s.starts_with("../")
        || s.starts_with('/')
        || s.starts_with("~/");
    if path_like {
        let p = s.strip_prefix("file:").unwrap_or(s);
        return if p.ends_with(".tgz") || p.ends_with(".tar.gz") || p.ends_with(".tar") {
            "file"
        } else {
            "directory"
        };
    }
    if crate::git::spec::looks_like_git(s) {
        return "git";
    }
    if s.starts_with("http://") || s.starts_with("https://") {
        return "remote";
    }
    if s.is_empty() {
        return "range";
    }
    let bare = s
        .strip_prefix('v')
        .or_else(|| s.strip_prefix('='))
        .unwrap_or(s);
    if semver::Version::parse(bare.trim()).is_ok() {
        return "version";
    }
    if Range::parse(s).is_some() {
        return "range";
    }
    "tag"
}

/// npa's `registry` flag: versions, ranges, tags, and aliases of those.
pub fn is_registry(spec: &str) -> bool {
    match of(spec) {
        "version" | "range" | "tag" => true,
        "alias" => {
            let (_, sub) = crate::spec::split_alias(spec.trim().trim_start_matches("npm:"));
            matches!(of(sub), "version" | "range" | "tag")
        }
        _ => false,
    }
}

/// arborist's depValid, for what a tree read from disk can tell: ranges and versions by
/// semver (loose, as npm reads them), aliases by name and range, anything else accepted.
pub fn accepts(spec: &str, name: &str, version: &str) -> bool {
    let s = spec.trim();
    match of(s) {
        "version" | "range" => {
            let r = if s.is_empty() { "*" } else { s };
            semver_npm::satisfies(version, r)
        }
        "alias" => {
            let (real, sub) = crate::spec::split_alias(s.trim_start_matches("npm:"));
            real == name && accepts(sub, name, version)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_types_follow_npm_package_arg() {
        assert_eq!(of("^1.2.3"), "range");
        assert_eq!(of("1.2.3"), "version");
        assert_eq!(of(""), "range");
        assert_eq!(of("latest"), "tag");
        assert_eq!(of("npm:react@^18"), "alias");
        assert_eq!(of("file:../x"), "directory");
        assert_eq!(of("file:x.tgz"), "file");
        assert_eq!(of("github:a/b"), "git");
        assert_eq!(of("a/b#main"), "git");
        assert_eq!(of("https://x/y.tgz"), "remote");
        assert!(is_registry("npm:@s/x@1"));
        assert!(!is_registry("file:../x"));
        assert!(accepts("^1.0.0", "a", "1.2.0"));
        assert!(!accepts("^2.0.0", "a", "1.2.0"));
        assert!(accepts("npm:b@^1", "b", "1.0.0"));
    }
}
