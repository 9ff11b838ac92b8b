//! Part of stage 3: the registry signatures of a freshly resolved tree (`verify-signatures`:
//! `warn`, the default, `require` or `off`). Checked when a version's integrity is about to enter
//! package-lock.json: from then on the lockfile's integrity pins the bytes, and an install from
//! the lockfile fetches no metadata to check again. A bad signature always fails the install,
//! naming package, version, keyid and registry; a missing one (from a registry that publishes
//! keys) warns, or fails under `require`. Registries that publish no keys are skipped, as npm
//! skips them.
//!
//! The ECDSA work runs beside resolution (`Early`: a worker thread fed by the pick hook, so it
//! overlaps the network waits), and signatures verified by earlier installs are not verified
//! again; `check_tree` then only judges the final tree.
//!
//! Must not: change the tree, or fetch anything but the keys (and, for versions signed by a key
//! that expires, the full metadata with publication times).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::mpsc;

use super::context::{Run, blocking};
use super::inputs::Inputs;
use crate::error::{HoardError, Result};
use crate::registry::keys::SigningKey;
use crate::registry::packument::DistSignature;
use crate::registry::{Network, Registry};
use crate::signatures::{self, Check, Mode, Signed};
use crate::tree::{Node, NodeKind, Tree};

/// What one version brings to the check.
struct Claim {
    name: String,
    version: String,
    integrity: Option<String>,
    signatures: Vec<DistSignature>,
    published: Option<i64>,
}

impl Claim {
    fn of(n: &Node, published: Option<i64>) -> Claim {
        Claim {
            name: n.real_name().to_string(),
            version: n.version().to_string(),
            integrity: n.manifest.dist.integrity.clone(),
            signatures: n.manifest.dist.signatures.clone(),
            published,
        }
    }

    fn check(&self, keys: &[SigningKey], registry: &Registry) -> Check {
        let s = Signed {
            name: &self.name,
            version: &self.version,
            integrity: self.integrity.as_deref(),
            signatures: &self.signatures,
            published: self.published,
        };
        signatures::check_seen(&s, keys, &registry.keys)
    }
}

/// Results by (name, version, integrity).
type Results = HashMap<(String, String, Option<String>), Check>;

/// Signatures checked while resolution runs, for the default registry.
pub(super) struct Early {
    registry_url: String,
    tx: Option<mpsc::Sender<Claim>>,
    worker: Option<std::thread::JoinHandle<Results>>,
}

impl Early {
    /// Start the worker when signatures are checked and the default registry publishes keys.
    pub async fn start(run: &Run<'_>, inputs: &Inputs) -> Result<Option<Early>> {
        let mode = Mode::from_setting(inputs.cfg.get("verify-signatures"))
            .map_err(HoardError::InvalidInput)?;
        if mode == Mode::Off {
            return Ok(None);
        }
        let registry = run.installer.registry.clone();
        let url = inputs.cfg.default_registry();
        let offline = inputs.network == Network::Offline;
        let Some(keys) = registry.keys.of(&url, &inputs.cfg, offline).await? else {
            return Ok(None);
        };
        let (tx, rx) = mpsc::channel::<Claim>();
        let worker = std::thread::Builder::new()
            .name("hoard-signatures".into())
            .spawn(move || {
                let mut out = Results::new();
                for c in rx {
                    // A key that expires needs the publication time: judged at the end.
                    if signatures::needs_time(&c.signatures, &keys) {
                        continue;
                    }
                    let r = c.check(&keys, &registry);
                    out.insert((c.name, c.version, c.integrity), r);
                }
                out
            })
            .map_err(|e| HoardError::Internal(format!("starting the signature worker: {e}")))?;
        Ok(Some(Early {
            registry_url: url,
            tx: Some(tx),
            worker: Some(worker),
        }))
    }

    /// The pick hook: hands each picked registry version of the default registry to the worker.
    pub fn hook(&self, inputs: &Inputs) -> impl FnMut(&Node) + Send + Sync + 'static {
        let tx = self.tx.clone();
        let cfg = inputs.cfg.clone();
        let url = self.registry_url.clone();
        move |n: &Node| {
            let NodeKind::Package { resolved, .. } = &n.kind else {
                return;
            };
            if n.in_bundle
                || !crate::tree::is_registry_resolved(resolved)
                || cfg.registry_base(n.real_name()) != url.as_str()
            {
                return;
            }
            if let Some(tx) = &tx {
                let _ = tx.send(Claim::of(n, None));
            }
        }
    }

    /// The worker's results once it has checked everything handed to it.
    async fn finish(mut self) -> Results {
        self.tx.take();
        match self.worker.take() {
            Some(w) => blocking(move || w.join().unwrap_or_default()),
            None => Results::new(),
        }
    }
}

pub(super) async fn check_tree(
    run: &Run<'_>,
    inputs: &Inputs,
    tree: &Tree,
    early: Option<Early>,
) -> Result<()> {
    let mode = Mode::from_setting(inputs.cfg.get("verify-signatures"))
        .map_err(HoardError::InvalidInput)?;
    let mut done = match early {
        Some(e) => e.finish().await,
        None => Results::new(),
    };
    if mode == Mode::Off {
        return Ok(());
    }
    let mut by_registry: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, n) in tree.nodes.iter().enumerate() {
        if let NodeKind::Package {
            real_name,
            resolved,
            ..
        } = &n.kind
            && !n.in_bundle
            && crate::tree::is_registry_resolved(resolved)
        {
            let registry = inputs.cfg.registry_for(real_name);
            by_registry.entry(registry).or_default().push(i);
        }
    }
    let registry = &run.installer.registry;
    let offline = inputs.network == Network::Offline;
    for (url, nodes) in by_registry {
        let Some(keys) = registry.keys.of(&url, &inputs.cfg, offline).await? else {
            continue;
        };
        let mut checks: Vec<(String, Check)> = Vec::with_capacity(nodes.len());
        let mut rest: Vec<Claim> = Vec::new();
        for i in nodes {
            let n = &tree.nodes[i];
            let key = (
                n.real_name().to_string(),
                n.version().to_string(),
                n.manifest.dist.integrity.clone(),
            );
            if let Some(c) = done.remove(&key) {
                checks.push((format!("{}@{}", key.0, key.1), c));
                continue;
            }
            let published = if signatures::needs_time(&n.manifest.dist.signatures, &keys) {
                published(registry, inputs, n, offline).await
            } else {
                None
            };
            rest.push(Claim::of(n, published));
        }
        let reg = registry.clone();
        let keys2: Arc<Vec<SigningKey>> = keys.clone();
        checks.extend(blocking(move || {
            rest.iter()
                .map(|c| (format!("{}@{}", c.name, c.version), c.check(&keys2, &reg)))
                .collect::<Vec<_>>()
        }));
        report(run, &url, mode, checks).await?;
    }
    Ok(())
}

/// When `n`'s version was published (the full metadata, which has times).
async fn published(
    registry: &Arc<Registry>,
    inputs: &Inputs,
    n: &Node,
    offline: bool,
) -> Option<i64> {
    let net = if offline {
        Network::Offline
    } else {
        Network::PreferOffline
    };
    let p = registry
        .packument_with_times(n.real_name(), &inputs.cfg, net)
        .await
        .ok()?;
    p.sorted.iter().find(|e| *e.raw == *n.version())?.published
}

async fn report(
    run: &Run<'_>,
    registry: &str,
    mode: Mode,
    checks: Vec<(String, Check)>,
) -> Result<()> {
    let mut invalid: Vec<String> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for (id, c) in checks {
        match c {
            Check::Verified => {}
            Check::Missing => missing.push(id),
            Check::Invalid(why) => invalid.push(why),
        }
    }
    invalid.sort();
    missing.sort();
    missing.dedup();
    if !invalid.is_empty() {
        return Err(HoardError::Refused(format!(
            "{} package(s) from {registry} failed the registry signature check:\n  - {}\nSomeone \
             might have tampered with them since they were published on the registry; nothing \
             was installed. (`verify-signatures=off` in .npmrc turns the check off.)",
            invalid.len(),
            invalid.join("\n  - ")
        )));
    }
    if missing.is_empty() {
        return Ok(());
    }
    let msg = format!(
        "{} package(s) have no registry signature, but {registry} publishes signing keys: {}",
        missing.len(),
        missing.join(", ")
    );
    if mode == Mode::Require {
        return Err(HoardError::Refused(format!(
            "{msg}; `verify-signatures=require` refuses them"
        )));
    }
    run.em.warn("signature-missing", "", msg).await;
    Ok(())
}
