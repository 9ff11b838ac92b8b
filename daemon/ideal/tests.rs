//! Placement cases, each a small registry and the node_modules paths npm gives it (worked out
//! from arborist's rules and checked against npm 11 on the same metadata where npm was at hand).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::json;

use super::build::{BuildError, Builder, Source};
use super::place::Options;
use crate::registry::compact::Packument;
use crate::registry::packument::Manifest;
use crate::spec::Spec;

/// A registry in memory: name → versions (the highest is `latest`).
struct Mem(HashMap<String, Packument>);

fn reg(pkgs: &[(&str, &str, serde_json::Value)]) -> Mem {
    let mut by: BTreeMap<String, Vec<Manifest>> = BTreeMap::new();
    for (name, version, extra) in pkgs {
        let mut m = json!({"name": name, "version": version,
                           "dist": {"tarball": format!("http://r/{name}-{version}.tgz")}});
        if let Some(o) = extra.as_object() {
            for (k, v) in o {
                m[k] = v.clone();
            }
        }
        let m: Manifest = serde_json::from_value(m).unwrap();
        by.entry(name.to_string()).or_default().push(m);
    }
    let mut out = HashMap::new();
    for (name, ms) in by {
        let mut p = Packument::from_manifests(&name, BTreeMap::new(), ms);
        let top = p.sorted[0].raw.to_string();
        p.dist_tags.insert("latest".into(), top);
        out.insert(name, p);
    }
    Mem(out)
}

impl Source for Mem {
    async fn manifest(
        &self,
        name: &str,
        spec: &Spec,
    ) -> Result<Arc<Manifest>, super::graph::LoadError> {
        let (name, spec) = match spec {
            Spec::Alias { name, spec } => (name.as_str(), &**spec),
            s => (name, s),
        };
        let p = self.0.get(name).ok_or(format!("{name} not found"))?;
        Ok(crate::pick::pick(p, spec, None, None, None).ok_or(format!("no version of {name}"))?)
    }
    fn local_manifest(&self, dir: &str) -> Result<Arc<Manifest>, String> {
        Err(format!("no directory {dir}"))
    }
}

/// Build for a root package.json; "location name@version" lines, sorted.
async fn tree(mem: &Mem, root: serde_json::Value) -> Result<Vec<String>, BuildError> {
    let m: Manifest = serde_json::from_value(root.clone()).unwrap();
    let mut b = Builder::new(mem, Arc::new(m), &root, vec![], Options::default(), false);
    b.build().await?;
    let g = &b.g;
    let mut out: Vec<String> = (1..g.nodes.len())
        .filter(|&i| g.in_tree(i))
        .map(|i| format!("{} {}", g.location(i), g.pkg_id(i)))
        .collect();
    out.sort();
    Ok(out)
}

#[tokio::test]
async fn a_peer_set_goes_where_its_peers_resolve() {
    // The Jest+Babel+webpack case: eslint's ajv@6 takes the root; schema-utils needs ajv@8 and
    // ajv-keywords (peer ajv ^8), so both nest under schema-utils, together.
    let mem = reg(&[
        (
            "eslint",
            "8.0.0",
            json!({"dependencies": {"ajv": "^6.0.0"}}),
        ),
        (
            "schema-utils",
            "4.0.0",
            json!({"dependencies": {"ajv": "^8.9.0", "ajv-keywords": "^5.1.0"}}),
        ),
        ("ajv", "6.12.6", json!({})),
        ("ajv", "8.17.1", json!({})),
        (
            "ajv-keywords",
            "5.1.0",
            json!({"peerDependencies": {"ajv": "^8.8.2"}}),
        ),
        (
            "ajv-keywords",
            "3.5.2",
            json!({"peerDependencies": {"ajv": "^6.9.1"}}),
        ),
    ]);
    let got = tree(
        &mem,
        json!({"name": "app", "dependencies": {"eslint": "^8", "schema-utils": "^4"}}),
    )
    .await
    .unwrap();
    assert_eq!(
        got,
        [
            "node_modules/ajv ajv@6.12.6",
            "node_modules/eslint eslint@8.0.0",
            "node_modules/schema-utils schema-utils@4.0.0",
            "node_modules/schema-utils/node_modules/ajv ajv@8.17.1",
            "node_modules/schema-utils/node_modules/ajv-keywords ajv-keywords@5.1.0",
        ]
    );
}

#[tokio::test]
async fn a_newer_version_replaces_one_every_dependent_accepts() {
    let mem = reg(&[
        ("a", "1.0.0", json!({"dependencies": {"c": "^1.0.0"}})),
        ("b", "1.0.0", json!({"dependencies": {"c": "^1.1.0"}})),
        ("c", "1.0.0", json!({})),
        ("c", "1.1.0", json!({})),
    ]);
    // `latest` is 1.1.0 here, so a's c is 1.1.0 from the start; pin latest lower to force the
    // REPLACE path: a gets 1.0.0 first, then b's ^1.1.0 replaces it at the root.
    let mut mem = mem;
    mem.0
        .get_mut("c")
        .unwrap()
        .dist_tags
        .insert("latest".into(), "1.0.0".into());
    let got = tree(
        &mem,
        json!({"name": "app", "dependencies": {"a": "1", "b": "1"}}),
    )
    .await
    .unwrap();
    assert_eq!(
        got,
        [
            "node_modules/a a@1.0.0",
            "node_modules/b b@1.0.0",
            "node_modules/c c@1.1.0"
        ]
    );
}

#[tokio::test]
async fn a_package_only_peers_ask_for_gets_a_version_they_all_accept() {
    let mem = reg(&[
        ("p1", "1.0.0", json!({"peerDependencies": {"x": ">=1.2.0"}})),
        ("p2", "1.0.0", json!({"peerDependencies": {"x": "~1.4.0"}})),
        ("x", "1.0.0", json!({})),
        ("x", "1.4.0", json!({})),
        ("x", "1.6.0", json!({})),
        ("x", "2.0.0", json!({})),
    ]);
    let got = tree(
        &mem,
        json!({"name": "app", "dependencies": {"p1": "1", "p2": "1"}}),
    )
    .await
    .unwrap();
    assert_eq!(
        got,
        [
            "node_modules/p1 p1@1.0.0",
            "node_modules/p2 p2@1.0.0",
            "node_modules/x x@1.4.0"
        ]
    );
}

#[tokio::test]
async fn a_peer_conflict_with_the_root_is_eresolve_naming_both_sides() {
    let mem = reg(&[
        ("react", "17.0.2", json!({})),
        ("react", "18.3.1", json!({})),
        (
            "rtl",
            "14.0.0",
            json!({"peerDependencies": {"react": "^18.0.0"}}),
        ),
    ]);
    let err = tree(
        &mem,
        json!({"name": "app", "version": "1.0.0",
               "dependencies": {"react": "^17.0.2"}, "devDependencies": {"rtl": "^14"}}),
    )
    .await
    .unwrap_err();
    let BuildError::Eresolve(msg) = err;
    assert!(msg.contains("Found: react@17.0.2"), "{msg}");
    assert!(
        msg.contains("peer react@\"^18.0.0\" from rtl@14.0.0"),
        "{msg}"
    );
}

#[tokio::test]
async fn nested_overrides_apply_only_below_their_package() {
    let mem = reg(&[
        ("a", "1.0.0", json!({"dependencies": {"b": "^1.0.0"}})),
        ("c", "1.0.0", json!({"dependencies": {"b": "^1.0.0"}})),
        ("b", "1.2.0", json!({})),
        ("b", "2.0.0", json!({})),
    ]);
    let got = tree(
        &mem,
        json!({"name": "app", "dependencies": {"a": "1", "c": "1"},
               "overrides": {"a": {"b": "2.0.0"}}}),
    )
    .await
    .unwrap();
    assert_eq!(
        got,
        [
            "node_modules/a a@1.0.0",
            "node_modules/b b@2.0.0",
            "node_modules/c c@1.0.0",
            "node_modules/c/node_modules/b b@1.2.0",
        ]
    );
}

#[tokio::test]
async fn edges_kept_from_a_resolve_without_overrides_do_not_hide_a_later_override() {
    // The manifests (and the edges kept in them) are shared by both resolves, as the
    // daemon's packument cache shares them between installs.
    let mem = reg(&[
        ("a", "1.0.0", json!({"dependencies": {"b": "^1.0.0"}})),
        ("b", "1.2.0", json!({})),
        ("b", "2.0.0", json!({})),
    ]);
    let plain = json!({"name": "app", "dependencies": {"a": "1"}});
    let overridden = json!({"name": "app", "dependencies": {"a": "1"},
                            "overrides": {"b": "2.0.0"}});
    let want_plain = ["node_modules/a a@1.0.0", "node_modules/b b@1.2.0"];
    let want_overridden = ["node_modules/a a@1.0.0", "node_modules/b b@2.0.0"];
    assert_eq!(tree(&mem, plain.clone()).await.unwrap(), want_plain);
    assert_eq!(
        tree(&mem, overridden.clone()).await.unwrap(),
        want_overridden
    );
    assert_eq!(tree(&mem, plain).await.unwrap(), want_plain);
    assert_eq!(tree(&mem, overridden).await.unwrap(), want_overridden);
}

#[tokio::test]
async fn a_dependency_cycle_that_would_nest_forever_becomes_a_link() {
    // a@1 → b@1 → a@2 → b@2 → a@1: npm links the inner a@1 to the outer one.
    let mem = reg(&[
        ("a", "1.0.0", json!({"dependencies": {"b": "1.0.0"}})),
        ("a", "2.0.0", json!({"dependencies": {"b": "2.0.0"}})),
        ("b", "1.0.0", json!({"dependencies": {"a": "2.0.0"}})),
        ("b", "2.0.0", json!({"dependencies": {"a": "1.0.0"}})),
    ]);
    let got = tree(&mem, json!({"name": "app", "dependencies": {"a": "1.0.0"}}))
        .await
        .unwrap();
    assert!(
        got.contains(&"node_modules/a a@1.0.0".to_string()),
        "{got:?}"
    );
    assert!(
        got.contains(&"node_modules/b b@1.0.0".to_string()),
        "{got:?}"
    );
    assert!(
        got.contains(&"node_modules/b/node_modules/a a@2.0.0".to_string()),
        "{got:?}"
    );
}
