//! Which packages an install leaves out because an optional dependency cannot be installed
//! here, as npm's arborist decides (`optional-set.js`, `gather-dep-set.js`): for each optional
//! package that does not fit this platform, the set reaching up through non-optional edges to
//! the optional boundary, plus every dependency that only that set needs. They stay in the
//! lockfile; they are not fetched, linked or run ("inert" in npm).
//!
//! Must not: do I/O or change the tree.

use std::collections::HashSet;

use crate::tree::{EdgeKind, Tree};

fn optional_edge(k: EdgeKind) -> bool {
    matches!(k, EdgeKind::Optional | EdgeKind::PeerOptional)
}

/// Every node left out of this install: the optional sets of the optional nodes whose
/// os/cpu/libc exclude this platform.
pub fn inert(tree: &Tree) -> HashSet<usize> {
    let incoming = incoming(tree);
    let mut inert: HashSet<usize> = HashSet::new();
    for (i, n) in tree.nodes.iter().enumerate().skip(1) {
        if n.optional && !n.platform_ok && !inert.contains(&i) {
            let set = optional_set(tree, &incoming, i, &inert);
            inert.extend(set);
        }
    }
    inert
}

/// (from, edge kind) of every edge into each node.
fn incoming(tree: &Tree) -> Vec<Vec<(usize, EdgeKind)>> {
    let mut inc = vec![Vec::new(); tree.nodes.len()];
    for (from, n) in tree.nodes.iter().enumerate() {
        for e in &n.edges {
            if let Some(to) = e.to {
                inc[to].push((from, e.kind));
            }
        }
    }
    inc
}

/// npm's `optionalSet(node)`: up through non-optional edges in, then the dependencies only the
/// set needs (edges from nodes already inert do not count).
fn optional_set(
    tree: &Tree,
    incoming: &[Vec<(usize, EdgeKind)>],
    node: usize,
    inert: &HashSet<usize>,
) -> HashSet<usize> {
    let mut boundary = vec![node];
    let mut in_boundary: HashSet<usize> = HashSet::from([node]);
    let mut k = 0;
    while k < boundary.len() {
        for &(from, kind) in &incoming[boundary[k]] {
            if !optional_edge(kind) && from != 0 && in_boundary.insert(from) {
                boundary.push(from);
            }
        }
        k += 1;
    }
    // gatherDepSet(boundary, edge => !boundary.has(edge.to) && !edge.from.inert)
    let counts = |from: usize, to: usize| !in_boundary.contains(&to) && !inert.contains(&from);
    let mut deps: Vec<usize> = boundary.clone();
    let mut in_deps: HashSet<usize> = in_boundary.clone();
    let mut k = 0;
    while k < deps.len() {
        let from = deps[k];
        for e in &tree.nodes[from].edges {
            if let Some(to) = e.to
                && counts(from, to)
                && in_deps.insert(to)
            {
                deps.push(to);
            }
        }
        k += 1;
    }
    let mut changed = true;
    while changed && !in_deps.is_empty() {
        changed = false;
        let members: Vec<usize> = in_deps.iter().copied().collect();
        for dep in members {
            let outside = incoming[dep]
                .iter()
                .any(|&(from, _)| !in_deps.contains(&from) && counts(from, dep));
            if outside {
                in_deps.remove(&dep);
                changed = true;
            }
        }
    }
    in_deps
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::registry::packument::Manifest;
    use crate::tree::{Edge, Node, NodeKind};

    /// A tree from (name, platform_ok) nodes and (from, to, kind) edges; flags computed.
    fn tree(nodes: &[(&str, bool)], edges: &[(usize, usize, EdgeKind)]) -> Tree {
        let mut t = Tree::default();
        t.nodes.push(Node::new(
            "root".into(),
            String::new(),
            None,
            NodeKind::Root,
            Arc::new(Manifest::default()),
            true,
        ));
        for (name, ok) in nodes {
            let kind = NodeKind::Package {
                real_name: name.to_string(),
                version: "1.0.0".into(),
                resolved: format!("https://r/{name}/-/{name}-1.0.0.tgz"),
                integrity: None,
            };
            let loc = format!("node_modules/{name}");
            t.nodes.push(Node::new(
                name.to_string(),
                loc,
                Some(0),
                kind,
                Arc::new(Manifest::default()),
                *ok,
            ));
        }
        for &(from, to, kind) in edges {
            let name = t.nodes[to].name.clone();
            t.nodes[from].edges.push(Edge {
                name,
                spec: "*".into(),
                kind,
                to: Some(to),
            });
        }
        t.compute_flags();
        t
    }

    #[test]
    fn a_skipped_optional_takes_what_only_it_needs() {
        use EdgeKind::*;
        // root → chokidar → (optional) fsevents ✗ → bindings → file-uri-to-path; fsevents → nan;
        // root → nan-user → nan (so nan stays).
        let t = tree(
            &[
                ("chokidar", true),
                ("fsevents", false),
                ("bindings", true),
                ("file-uri-to-path", true),
                ("nan", true),
                ("nan-user", true),
            ],
            &[
                (0, 1, Prod),
                (1, 2, Optional),
                (2, 3, Prod),
                (3, 4, Prod),
                (2, 5, Prod),
                (0, 6, Prod),
                (6, 5, Prod),
            ],
        );
        let got: HashSet<&str> = inert(&t)
            .iter()
            .map(|&i| t.nodes[i].name.as_str())
            .collect();
        assert_eq!(
            got,
            HashSet::from(["fsevents", "bindings", "file-uri-to-path"])
        );
    }

    #[test]
    fn the_set_reaches_up_to_the_optional_boundary() {
        use EdgeKind::*;
        // root → (optional) wrapper → native ✗ (a plain dependency): both go, with native's dep.
        let t = tree(
            &[
                ("wrapper", true),
                ("native", false),
                ("helper", true),
                ("shared", true),
            ],
            &[
                (0, 1, Optional),
                (1, 2, Prod),
                (2, 3, Prod),
                (0, 4, Prod),
                (2, 4, Prod),
            ],
        );
        let got: HashSet<&str> = inert(&t)
            .iter()
            .map(|&i| t.nodes[i].name.as_str())
            .collect();
        assert_eq!(got, HashSet::from(["wrapper", "native", "helper"]));
        // A platform misfit that is not optional is not inert (the install fails elsewhere).
        let t = tree(&[("native", false)], &[(0, 1, Prod)]);
        assert!(inert(&t).is_empty());
    }
}
