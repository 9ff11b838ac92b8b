//! Questions about a project's installed tree: the Query RPC (npm's dependency selectors, the
//! set `npm query` answers, printed as npm prints it), Tree (every folder with flags and
//! edges) and Why (the chains of edges that put a package there). All three read node_modules
//! as npm's arborist reads it (actual.rs).
//!
//! Must not: change the project, or decide installs.

mod actual;
mod eval;
mod glob;
mod selector;
mod spec_type;

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::path::Path;

use hoard_proto::v1;
use serde_json::{Map, Value};

use crate::error::{HoardError, Result};
use crate::install::{Installer, blocking};
use crate::registry::Network;
use crate::registry::config::NpmConfig;
use actual::Graph;
use eval::{Advisory, Eval, Known};
use selector::{Part, Pseudo, SelectorList};

/// A selector npm refuses, with npm's error code.
#[derive(Debug, Clone)]
pub struct QueryError {
    pub code: &'static str,
    pub message: String,
}

fn selector_error(selector: &str, e: QueryError) -> HoardError {
    HoardError::InvalidSelector {
        selector: selector.to_string(),
        code: e.code,
        message: e.message,
    }
}

/// The first of these lockfiles' `packages` (npm's hidden lockfile gives npm `resolved` the
/// same way).
fn lock_packages(dir: &Path, files: &[&str]) -> Option<Map<String, Value>> {
    files.iter().find_map(|rel| {
        let v: Value = serde_json::from_slice(&std::fs::read(dir.join(rel)).ok()?).ok()?;
        v.get("packages")?.as_object().cloned()
    })
}

/// The tree to answer from: node_modules as npm reads it, or, for a layout npm does not read
/// (isolated, global) and when asked (`--package-lock-only`), package-lock.json's tree.
fn load(dir: &Path, lock_only: bool) -> Result<Graph> {
    let hoisted = crate::linker::state::read_state(dir)
        .is_none_or(|s| s.layout == crate::linker::Layout::Hoisted);
    if lock_only || !hoisted {
        let Some(lock) = lock_packages(
            dir,
            &[crate::lockfile::FILE, "node_modules/.hoard-lock.json"],
        ) else {
            return Err(HoardError::InvalidInput(format!(
                "`{}` has no package-lock.json to read the tree from; run `hoard install` first",
                dir.display()
            )));
        };
        // Asked for the lockfile's tree: its entries, as npm reads them. Another layout: the
        // lockfile's shape, with each package.json read from where the package is.
        return actual::load_virtual(dir, &lock, !lock_only);
    }
    let lock = lock_packages(
        dir,
        &["node_modules/.hoard-lock.json", crate::lockfile::FILE],
    );
    actual::load(dir, lock.as_ref())
}

/// Which registry questions a selector asks (`:outdated`, `:vuln`), nested ones included.
fn asks(list: &SelectorList) -> (bool, bool) {
    let mut out = (false, false);
    for sel in &list.0 {
        for part in &sel.0 {
            let Part::Pseudo(p) = part else { continue };
            let inner = match p {
                Pseudo::Outdated(_) => {
                    out.0 = true;
                    continue;
                }
                Pseudo::Vuln(_) => {
                    out.1 = true;
                    continue;
                }
                Pseudo::Is(l) | Pseudo::Not(l) | Pseudo::Has(l) => asks(l),
                _ => continue,
            };
            out = (out.0 || inner.0, out.1 || inner.1);
        }
    }
    out
}

/// Evaluate `selector` on the graph and render npm's items, sorted and deduplicated as `npm
/// query` does.
fn evaluate(
    g: &mut Graph,
    list: &SelectorList,
    known: &Known,
) -> Result<Vec<v1::QueryItem>, QueryError> {
    let mut ev = Eval::new(g, known);
    let mut found = ev.all(list)?;
    // npm compares locations as strings; a `:missing` item has none, which reads "undefined".
    let key = |n: &actual::Node| {
        if n.missing {
            "undefined".to_string()
        } else {
            n.location.clone()
        }
    };
    found.sort_by(|&a, &b| {
        crate::ideal::collate::locale_cmp(&key(&ev.g.nodes[a]), &key(&ev.g.nodes[b]))
    });
    let mut seen = HashSet::new();
    let mut out = vec![];
    for i in found {
        let t = ev.g.target(i);
        let loc = ev.g.nodes[t].location.clone();
        if !loc.is_empty() && !seen.insert(loc) {
            continue;
        }
        out.push(item(&ev, i));
    }
    Ok(out)
}

/// npm's QuerySelectorItem for node `i`, and the proto's view of it.
fn item(ev: &Eval, i: usize) -> v1::QueryItem {
    let g = &*ev.g;
    let t = g.target(i);
    let n = &g.nodes[t];
    let locs = |ids: Vec<usize>| -> Vec<String> {
        ids.into_iter()
            .map(|j| g.nodes[j].location.clone())
            .collect()
    };
    let from = locs(n.edges_in.iter().map(|&e| g.edges[e].from).collect());
    let to = locs(n.edges_out.iter().filter_map(|&e| g.edges[e].to).collect());
    let in_bundle = ev.in_bundle(t);
    let mut json = n.package.as_object().cloned().unwrap_or_default();
    let path = |p: &Path| {
        if n.missing {
            Value::Null
        } else {
            Value::String(p.to_string_lossy().into_owned())
        }
    };
    json.insert("pkgid".into(), n.pkgid().into());
    if !n.missing {
        json.insert("location".into(), n.location.clone().into());
    }
    json.insert("path".into(), path(&n.path));
    json.insert("realpath".into(), path(&n.realpath));
    json.insert(
        "resolved".into(),
        n.resolved.clone().map_or(Value::Null, Value::String),
    );
    json.insert("from".into(), from.clone().into());
    json.insert("to".into(), to.clone().into());
    json.insert("dev".into(), n.dev.into());
    json.insert("inBundle".into(), in_bundle.into());
    // npm computes `deduped` before it fills `from`, so it always prints false.
    json.insert("deduped".into(), false.into());
    json.insert("overridden".into(), false.into());
    json.insert(
        "queryContext".into(),
        ev.context
            .get(&i)
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    );
    v1::QueryItem {
        name: n.package_name().to_string(),
        version: n.version().to_string(),
        location: n.location.clone(),
        pkgid: n.pkgid(),
        dev: n.dev,
        optional: n.optional,
        peer: n.peer,
        extraneous: n.extraneous,
        in_bundle,
        from,
        to,
        resolved: n.resolved.clone(),
        npm_json: Value::Object(json).to_string(),
    }
}

impl Installer {
    /// The Query RPC.
    pub async fn query(&self, req: v1::QueryRequest) -> Result<v1::QueryResponse> {
        let dir = crate::install::project_dir(&req.project_dir)?;
        let selector = req.selector.clone();
        let list = selector::parse(&selector).map_err(|e| selector_error(&selector, e))?;
        let (outdated, vuln) = asks(&list);
        let d = dir.clone();
        let lock_only = req.package_lock_only == Some(true);
        let mut g = blocking(move || load(&d, lock_only))?;
        let mut known = Known::default();
        if outdated || vuln {
            let cfg = blocking({
                let d = dir.clone();
                let env = req.env.clone();
                move || NpmConfig::load(&d, &env)
            });
            let names: BTreeSet<String> = g
                .nodes
                .iter()
                .skip(1)
                .filter(|n| !n.is_link())
                .map(|n| n.name.clone())
                .collect();
            if outdated {
                known.versions = self.versions_of(&names, &cfg).await;
            }
            if vuln {
                known.advisories = self.advisories_of(&g, &cfg).await?;
            }
        }
        let items = blocking(move || evaluate(&mut g, &list, &known))
            .map_err(|e| selector_error(&selector, e))?;
        Ok(v1::QueryResponse { items })
    }

    /// Every version of each name, as `:outdated` needs (a name the registry cannot answer
    /// for has none, as npm logs and goes on).
    async fn versions_of(
        &self,
        names: &BTreeSet<String>,
        cfg: &NpmConfig,
    ) -> std::collections::HashMap<String, Vec<String>> {
        let fetches = names.iter().map(|name| async move {
            let p = self.registry.packument(name, cfg, Network::Online).await;
            let versions = p
                .map(|p| p.sorted.iter().map(|v| v.raw.to_string()).collect())
                .unwrap_or_else(|e| {
                    tracing::warn!(%name, error = %e, "query: no versions for :outdated");
                    vec![]
                });
            (name.clone(), versions)
        });
        futures_util::future::join_all(fetches)
            .await
            .into_iter()
            .collect()
    }

    /// The default registry's advisories for the installed versions (`:vuln`).
    async fn advisories_of(
        &self,
        g: &Graph,
        cfg: &NpmConfig,
    ) -> Result<std::collections::HashMap<String, Vec<Advisory>>> {
        let mut asked: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for n in g.nodes.iter().skip(1).filter(|n| !n.is_link()) {
            asked
                .entry(n.name.clone())
                .or_default()
                .insert(n.version().to_string());
        }
        let endpoint = crate::advisories::bulk_endpoint(&cfg.default_registry());
        let body = self
            .registry
            .http
            .post_json(
                &endpoint,
                cfg.auth_for(&endpoint).as_deref(),
                crate::advisories::request_body(&asked),
                "advisories",
            )
            .await?;
        let Some(body) = body else {
            return Err(HoardError::Registry(format!(
                "{endpoint} has no advisory endpoint, so `:vuln` cannot be answered"
            )));
        };
        let answer: BTreeMap<String, Vec<Value>> = serde_json::from_slice(&body)
            .map_err(|e| HoardError::Registry(format!("{endpoint}: {e}")))?;
        Ok(answer
            .into_iter()
            .map(|(name, list)| {
                let advs = list
                    .into_iter()
                    .map(|raw| Advisory {
                        vulnerable_versions: raw["vulnerable_versions"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        severity: raw["severity"].as_str().unwrap_or("").to_string(),
                        cwe: raw["cwe"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|c| c.as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        raw,
                    })
                    .collect();
                (name, advs)
            })
            .collect())
    }
}

/// The Tree RPC.
pub fn tree(req: &v1::TreeRequest) -> Result<v1::TreeResponse> {
    let dir = crate::install::project_dir(&req.project_dir)?;
    let mut g = load(&dir, false)?;
    let known = Known::default();
    let ev = Eval::new(&mut g, &known);
    let g = &*ev.g;
    let mut order: Vec<usize> = (0..g.nodes.len()).collect();
    order.sort_by(|&a, &b| {
        crate::ideal::collate::locale_cmp(&g.nodes[a].location, &g.nodes[b].location)
    });
    let nodes = order
        .into_iter()
        .filter_map(|i| {
            let n = &g.nodes[i];
            let depth = n.location.matches("node_modules/").count() as u32;
            if req.depth.is_some_and(|d| depth > d) {
                return None;
            }
            let edges = n
                .edges_out
                .iter()
                .map(|&e| {
                    let edge = &g.edges[e];
                    v1::TreeEdge {
                        name: edge.name.clone(),
                        spec: edge.spec.clone(),
                        r#type: edge.kind.as_str().into(),
                        to: edge.to.map(|t| g.nodes[t].location.clone()),
                        invalid: ev.invalid(e),
                        missing: edge.to.is_none() && !edge.kind.optional(),
                    }
                })
                .collect();
            Some(v1::TreeNode {
                location: n.location.clone(),
                name: n.name.clone(),
                package_name: n.package_name().into(),
                version: n.version().into(),
                depth,
                dev: n.dev,
                optional: n.optional,
                peer: n.peer,
                extraneous: n.extraneous,
                in_bundle: ev.in_bundle(i),
                link_target: n.target.map(|t| g.nodes[t].location.clone()),
                edges,
            })
        })
        .collect();
    Ok(v1::TreeResponse { nodes })
}

/// The Why RPC.
pub fn why(req: &v1::WhyRequest) -> Result<v1::WhyResponse> {
    let dir = crate::install::project_dir(&req.project_dir)?;
    let g = load(&dir, false)?;
    let wanted = req.package.trim();
    let (name, range) = match wanted.rfind('@').filter(|&i| i > 0) {
        Some(i) => (&wanted[..i], Some(&wanted[i + 1..])),
        None => (wanted, None),
    };
    let targets: Vec<v1::WhyTarget> = g
        .nodes
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, n)| !n.is_link())
        .filter(|(_, n)| {
            n.location == wanted
                || ((n.name == name || n.package_name() == name)
                    && range.is_none_or(|r| crate::semver_npm::satisfies(n.version(), r)))
        })
        .map(|(i, n)| v1::WhyTarget {
            location: n.location.clone(),
            name: n.package_name().into(),
            version: n.version().into(),
            dev: n.dev,
            optional: n.optional,
            peer: n.peer,
            chains: chains(&g, i),
        })
        .collect();
    if targets.is_empty() {
        return Err(HoardError::NotFound(format!(
            "nothing installed in `{}` is `{wanted}`; `hoard ls` lists what is",
            dir.display()
        )));
    }
    Ok(v1::WhyResponse { targets })
}

/// For each edge into `i` (or into a link to it): that edge, then the shortest chain of edges
/// from its source back to the root.
fn chains(g: &Graph, i: usize) -> Vec<v1::WhyChain> {
    let step = |e: usize| {
        let edge = &g.edges[e];
        let from = &g.nodes[edge.from];
        v1::WhyStep {
            from_location: from.location.clone(),
            from_name: from.package_name().into(),
            from_version: from.version().into(),
            name: edge.name.clone(),
            spec: edge.spec.clone(),
            r#type: edge.kind.as_str().into(),
        }
    };
    let into = |n: usize| -> Vec<usize> {
        let mut v = g.nodes[n].edges_in.clone();
        for &l in &g.nodes[n].links_in {
            v.extend(g.nodes[l].edges_in.iter().copied());
        }
        v
    };
    into(i)
        .into_iter()
        .map(|first| {
            let mut steps = vec![step(first)];
            // Breadth-first from the edge's source to the root, over edges in.
            let start = g.edges[first].from;
            let mut prev: BTreeMap<usize, usize> = BTreeMap::new();
            let mut queue = VecDeque::from([start]);
            let mut seen = HashSet::from([start, i]);
            while let Some(n) = queue.pop_front() {
                if n == 0 {
                    break;
                }
                for e in into(n) {
                    let f = g.edges[e].from;
                    if seen.insert(f) {
                        prev.insert(f, e);
                        queue.push_back(f);
                    }
                }
            }
            // Walk back from the root to `start` along the recorded edges.
            let mut path = vec![];
            let mut cur = 0usize;
            while cur != start {
                let Some(&e) = prev.get(&cur) else {
                    path.clear();
                    break;
                };
                path.push(e);
                cur = g.edges[e].to.map_or(start, |t| g.target(t));
            }
            steps.extend(path.into_iter().rev().map(step));
            v1::WhyChain { steps }
        })
        .collect()
}
