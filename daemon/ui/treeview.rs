//! A project's dependency tree as HTML: the tree as `npm ls --all` draws it (each package
//! expanded once, later occurrences marked "deduped" and linked to the first), the flat list of
//! every package with search, and "why is this here" (`npm explain`): the chains of dependents
//! from a package back to the project.
//!
//! Must not: read files (it renders a `Tree` it is given).

use std::collections::HashSet;
use std::fmt::Write;

use super::html::{esc, url_part};
use crate::tree::{EdgeKind, Node, NodeKind, Tree};

/// How deep the tree is drawn before "…" (a cycle-free tree of thousands stays readable).
const MAX_DEPTH: usize = 40;

/// The node a link or a workspace stands for: a workspace link leads to its member's folder.
fn follow(tree: &Tree, i: usize) -> usize {
    if let NodeKind::Link { target } = &tree.nodes[i].kind
        && let Some(j) = tree.nodes.iter().position(|n| &n.location == target)
    {
        return j;
    }
    i
}

/// `name@version`, with the real name for an alias (`b@npm:a@1.0.0`).
pub fn label(n: &Node) -> String {
    match &n.kind {
        NodeKind::Package {
            real_name, version, ..
        } if *real_name != n.name => {
            format!("{}@npm:{}@{}", n.name, real_name, version)
        }
        NodeKind::Link { target } => format!("{} → {}", n.name, target),
        _ => format!("{}@{}", n.name, n.version()),
    }
}

/// npm's flags, as short words.
fn flags(n: &Node) -> Vec<&'static str> {
    let mut f = Vec::new();
    if n.dev {
        f.push("dev");
    }
    if n.optional {
        f.push("optional");
    }
    if n.dev_optional && !n.dev && !n.optional {
        f.push("devOptional");
    }
    if n.peer {
        f.push("peer");
    }
    if n.extraneous {
        f.push("extraneous");
    }
    if !n.platform_ok {
        f.push("skipped here");
    }
    f
}

fn flag_html(n: &Node) -> String {
    flags(n)
        .into_iter()
        .map(|f| format!(" <span class=\"flag\">{f}</span>"))
        .collect()
}

fn kind_word(k: EdgeKind) -> &'static str {
    match k {
        EdgeKind::Prod => "dependency",
        EdgeKind::Dev => "dev dependency",
        EdgeKind::Optional => "optional dependency",
        EdgeKind::Peer => "peer dependency",
        EdgeKind::PeerOptional => "optional peer dependency",
    }
}

/// An anchor id for a node (its lockfile location).
fn anchor(n: &Node) -> String {
    if n.location.is_empty() {
        "root".into()
    } else {
        format!("at-{}", n.location.replace(['/', '@'], "_"))
    }
}

/// The tree from the root, `npm ls --all` style.
pub fn tree_html(tree: &Tree, why_base: &str) -> String {
    let mut out = String::from("<ul class=\"tree\">");
    let mut seen = HashSet::from([0usize]);
    for e in &tree.root().edges {
        edge_html(tree, e, 1, &mut seen, why_base, &mut out);
    }
    out.push_str("</ul>");
    out
}

fn edge_html(
    tree: &Tree,
    e: &crate::tree::Edge,
    depth: usize,
    seen: &mut HashSet<usize>,
    why_base: &str,
    out: &mut String,
) {
    let Some(to) = e.to else {
        let _ = write!(
            out,
            "<li class=\"missing\" data-name=\"{n}\">{n}@{s} <span class=\"flag\">not installed \
             ({k})</span></li>",
            n = esc(&e.name),
            s = esc(&e.spec),
            k = kind_word(e.kind)
        );
        return;
    };
    let i = follow(tree, to);
    let n = &tree.nodes[to];
    let first = seen.insert(i);
    let children: Vec<&crate::tree::Edge> = tree.nodes[i].edges.iter().collect();
    let _ = write!(
        out,
        "<li data-name=\"{name}\"{id}>",
        name = esc(&n.name),
        id = if first {
            format!(" id=\"{}\"", anchor(&tree.nodes[i]))
        } else {
            String::new()
        }
    );
    let text = format!(
        "<span class=\"pkg\">{}</span>{} <a class=\"why\" href=\"{}{}\">why?</a>",
        esc(&label(n)),
        flag_html(&tree.nodes[i]),
        esc(why_base),
        url_part(&tree.nodes[i].location)
    );
    if !first {
        let _ = write!(
            out,
            "{text} <a class=\"deduped\" href=\"#{}\">deduped</a></li>",
            anchor(&tree.nodes[i])
        );
    } else if children.is_empty() {
        let _ = write!(out, "{text}</li>");
    } else if depth >= MAX_DEPTH {
        let _ = write!(out, "{text} …</li>");
    } else {
        let open = if depth == 1 { " open" } else { "" };
        let _ = write!(out, "<details{open}><summary>{text}</summary><ul>");
        for c in children {
            edge_html(tree, c, depth + 1, seen, why_base, out);
        }
        out.push_str("</ul></details></li>");
    }
}

/// Every package, by location, with its flags: the rows the search filters. `q` (a name or part
/// of one, any case) keeps the matching rows only.
pub fn table_html(tree: &Tree, q: &str, why_base: &str) -> (String, usize) {
    let q = q.trim().to_ascii_lowercase();
    let mut out = String::from(
        "<table id=\"packages\"><thead><tr><th>package</th><th>location</th><th>flags</th>\
         <th></th></tr></thead><tbody>",
    );
    let mut shown = 0;
    for n in tree.nodes.iter().skip(1) {
        if matches!(n.kind, NodeKind::Workspace) {
            continue;
        }
        let hay = format!("{} {}", n.name, n.real_name()).to_ascii_lowercase();
        let hidden = !q.is_empty() && !hay.contains(&q);
        if !hidden {
            shown += 1;
        }
        let _ = write!(
            out,
            "<tr data-name=\"{hay}\"{hide}><td class=\"pkg\">{label}</td><td>{loc}</td>\
             <td>{flags}</td><td><a class=\"why\" href=\"{base}{u}\">why?</a></td></tr>",
            base = esc(why_base),
            hay = esc(&hay),
            hide = if hidden { " hidden" } else { "" },
            label = esc(&label(n)),
            loc = esc(&n.location),
            flags = flags(n).join(" "),
            u = url_part(&n.location),
        );
    }
    out.push_str("</tbody></table>");
    (out, shown)
}

/// Why the package at `location` is installed: who depends on it, with which range and kind,
/// and in turn who depends on them, up to the project (each dependent explained once).
pub fn why_html(tree: &Tree, location: &str) -> Option<String> {
    let target = tree.nodes.iter().position(|n| n.location == location)?;
    let mut incoming: Vec<Vec<(usize, usize)>> = vec![Vec::new(); tree.nodes.len()];
    for (from, n) in tree.nodes.iter().enumerate() {
        for (k, e) in n.edges.iter().enumerate() {
            if let Some(to) = e.to {
                incoming[follow(tree, to)].push((from, k));
                if to != follow(tree, to) {
                    incoming[to].push((from, k));
                }
            }
        }
    }
    let mut out = format!(
        "<div id=\"why\"><h3>Why is <span class=\"pkg\">{}</span> here?</h3>",
        esc(&label(&tree.nodes[target]))
    );
    let _ = write!(
        out,
        "<p class=\"where\">{}{}</p>",
        esc(&tree.nodes[target].location),
        flag_html(&tree.nodes[target])
    );
    let mut seen = HashSet::from([target]);
    out.push_str("<ul class=\"why\">");
    dependents_html(tree, &incoming, target, &mut seen, 0, &mut out);
    out.push_str("</ul></div>");
    Some(out)
}

fn dependents_html(
    tree: &Tree,
    incoming: &[Vec<(usize, usize)>],
    node: usize,
    seen: &mut HashSet<usize>,
    depth: usize,
    out: &mut String,
) {
    for &(from, k) in &incoming[node] {
        let e = &tree.nodes[from].edges[k];
        let who = if from == 0 {
            "the project".to_string()
        } else {
            esc(&label(&tree.nodes[from]))
        };
        let _ = write!(
            out,
            "<li>{kind} <code>{name}@{spec}</code> of <span class=\"pkg\">{who}</span>",
            kind = kind_word(e.kind),
            name = esc(&e.name),
            spec = esc(&e.spec),
        );
        if from != 0 && depth < MAX_DEPTH {
            if seen.insert(from) {
                out.push_str(" <ul>");
                dependents_html(tree, incoming, from, seen, depth + 1, out);
                out.push_str("</ul>");
            } else {
                out.push_str(" <span class=\"flag\">(explained above)</span>");
            }
        }
        out.push_str("</li>");
    }
}
