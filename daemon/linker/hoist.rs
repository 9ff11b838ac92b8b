//! pnpm's hoisting for the layouts that do not hoist by themselves (isolated and global): every
//! package is also reachable from the hidden `node_modules/.hoard/node_modules` (pnpm's
//! `hoist-pattern=*`), which lies on Node's lookup path of every package under
//! `node_modules/.hoard/`, so packages that use what they do not declare still load; and the
//! packages whose names match `public-hoist-pattern` are linked at the top of node_modules too,
//! for the tools that look there (eslint plugins, prettier plugins).
//!
//! Must not: touch the filesystem (it plans links).

use std::collections::HashSet;

use super::PlannedLink;
use crate::store::StoredPackage;
use crate::tree::Tree;

/// The hidden folder every package is hoisted into.
pub const HIDDEN: &str = "node_modules/.hoard/node_modules";

/// A symlink at `loc` (project-relative) to `target`: absolute targets stay absolute, the
/// project's own folders are linked relatively.
pub fn link_to(loc: &str, target: &str) -> PlannedLink {
    let text = if target.starts_with('/') {
        target.to_string()
    } else {
        let parent = loc.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        super::relative(parent, target)
    };
    PlannedLink {
        location: loc.to_string(),
        target: text,
    }
}

/// Stored packages, the shallowest copy of each name first.
fn by_depth(
    tree: &Tree,
    stored: &std::collections::HashMap<usize, std::sync::Arc<StoredPackage>>,
) -> Vec<usize> {
    let mut v: Vec<usize> = stored.keys().copied().collect();
    v.sort_by_key(|&i| (tree.nodes[i].depth(), tree.nodes[i].location.clone()));
    v
}

/// Links for the hidden folder (every name not in `direct`, once) and for the top of
/// node_modules (names matching `public` that are not direct). `home` says where a node is.
pub fn links(
    tree: &Tree,
    stored: &std::collections::HashMap<usize, std::sync::Arc<StoredPackage>>,
    home: &dyn Fn(usize) -> Option<String>,
    direct: &HashSet<&str>,
    public: &[String],
) -> Vec<PlannedLink> {
    let mut out = Vec::new();
    let mut hidden: HashSet<&str> = direct.clone();
    let mut top: HashSet<&str> = direct.clone();
    for i in by_depth(tree, stored) {
        let name = tree.nodes[i].name.as_str();
        let Some(target) = home(i) else { continue };
        if hidden.insert(name) {
            out.push(link_to(&format!("{HIDDEN}/{name}"), &target));
        }
        if public.iter().any(|p| pattern_match(p, name)) && top.insert(name) {
            out.push(link_to(&format!("node_modules/{name}"), &target));
        }
    }
    out
}

/// pnpm's hoist patterns: `*` matches any run of characters (`/` included), the rest literally;
/// a pattern starting with `!` never matches here (pnpm's negations only subtract).
pub fn pattern_match(pattern: &str, name: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|i| m(rest, &s[i..])),
            Some((c, rest)) => s.first() == Some(c) && m(rest, &s[1..]),
        }
    }
    !pattern.starts_with('!') && m(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_pnpm_matches_them() {
        assert!(pattern_match("*eslint*", "@typescript-eslint/parser"));
        assert!(pattern_match("*eslint*", "eslint"));
        assert!(pattern_match("prettier", "prettier"));
        assert!(!pattern_match("prettier", "prettier-plugin-x"));
        assert!(pattern_match("@types/*", "@types/node"));
        assert!(!pattern_match("!*eslint*", "eslint"));
    }
}
