//! Stage 5 of an install: the scripts policy. A dependency's install scripts (`preinstall`,
//! `install`, `postinstall`, or node-gyp's implicit `install` when it has `binding.gyp`) run only
//! when package.json allows them (`"hoard": {"allowScripts": {"<name>": true}}`); allowed
//! packages become real copies (their scripts write into their folder). The scripts are listed
//! for the client, which runs them after linking, dependencies before dependents, then the
//! root's own lifecycle scripts.
//!
//! Must not: run anything.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hoard_proto::v1::{DeniedScript, Script};

use super::context::{Run, blocking};
use super::inputs::Inputs;
use crate::linker::{self, Layout};
use crate::project::Project;
use crate::registry::packument::Manifest;
use crate::store::{Store, StoredPackage};
use crate::tree::{Node, Tree};

/// Root lifecycle scripts npm runs after a plain `npm install` has linked node_modules, in
/// order. (`preinstall` runs before: the client runs it before it sends the request.)
const ROOT_EVENTS: [&str; 6] = [
    "install",
    "postinstall",
    "prepublish",
    "preprepare",
    "prepare",
    "postprepare",
];

/// What the policy decided.
pub(super) struct Scripts {
    /// Nodes whose packages are copied, not linked.
    pub copies: HashSet<usize>,
    /// Allowed dependency scripts, in the order they run.
    pub allowed: Vec<Script>,
    pub denied: Vec<DeniedScript>,
}

/// Apply the policy to every stored package; warns once about denied scripts.
pub(super) async fn policy(
    run: &Run<'_>,
    inputs: &Inputs,
    tree: &Tree,
    stored: &HashMap<usize, Arc<StoredPackage>>,
) -> Scripts {
    let allow = inputs.project.allowed_scripts();
    let mut out = Scripts {
        copies: HashSet::new(),
        allowed: Vec::new(),
        denied: Vec::new(),
    };
    let mut allowed: Vec<(usize, Script)> = Vec::new();
    for (&i, p) in stored {
        let n = &tree.nodes[i];
        let scripts = blocking(|| package_install_scripts(&run.installer.store, p, &n.manifest));
        if scripts.is_empty() {
            continue;
        }
        if allow.get(n.real_name()).copied().unwrap_or(false) {
            out.copies.insert(i);
            let path = inputs.dir.join(match inputs.layout {
                Layout::Isolated => linker::plan::isolated_dir(n),
                Layout::Global => linker::global::local_dir(n),
                Layout::Hoisted => n.location.clone(),
            });
            for (event, command) in scripts {
                allowed.push((i, script(n, &path.display().to_string(), event, command)));
            }
        } else {
            out.denied
                .extend(scripts.into_iter().map(|(event, command)| DeniedScript {
                    package: n.real_name().to_string(),
                    version: n.version().to_string(),
                    event,
                    command,
                }));
        }
    }
    warn_denied(run, &out.denied).await;
    // Dependencies before dependents: deeper folders first.
    allowed.sort_by_key(|(i, s)| {
        (
            Reverse(tree.nodes[*i].depth()),
            tree.nodes[*i].location.clone(),
            ROOT_EVENTS.iter().position(|e| *e == s.event),
        )
    });
    out.allowed = allowed.into_iter().map(|(_, s)| s).collect();
    out
}

fn script(n: &Node, path: &str, event: String, command: String) -> Script {
    Script {
        package: n.real_name().to_string(),
        version: n.version().to_string(),
        // Where the package's folder is in this layout.
        path: path.to_string(),
        event,
        command,
        is_root: false,
    }
}

async fn warn_denied(run: &Run<'_>, denied: &[DeniedScript]) {
    if denied.is_empty() {
        return;
    }
    let mut names: Vec<String> = denied.iter().map(|d| d.package.clone()).collect();
    names.dedup();
    let msg = format!(
        "install scripts of {} were not run; to allow them add to package.json: \
         \"hoard\": {{\"allowScripts\": {{\"{}\": true}}}}",
        names.join(", "),
        names[0]
    );
    run.em.warn("script-denied", "", msg).await;
}

/// The project's own lifecycle scripts that run after the install, in order.
pub(super) fn root_scripts(project: &Project) -> Vec<Script> {
    let mut out = Vec::new();
    for event in ROOT_EVENTS {
        if let Some(cmd) = project.manifest.scripts.get(event) {
            out.push(Script {
                package: project.manifest.name.clone(),
                version: project.manifest.version.clone(),
                path: project.dir.display().to_string(),
                event: event.to_string(),
                command: cmd.clone(),
                is_root: true,
            });
        }
    }
    out
}

/// (event, command) of a package's install scripts, in order; node-gyp's implicit
/// `install` when binding.gyp exists and no install/preinstall script is given.
fn package_install_scripts(
    store: &Store,
    p: &StoredPackage,
    m: &Manifest,
) -> Vec<(String, String)> {
    let has_gyp = p.files.iter().any(|f| f.path == "binding.gyp");
    if !m.install_scripts() && !has_gyp {
        return vec![];
    }
    let scripts: HashMap<String, String> = p
        .files
        .iter()
        .find(|f| f.path == "package.json")
        .and_then(|f| std::fs::read(store.content_path(f)).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("scripts").cloned())
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default();
    let mut out = Vec::new();
    for event in ["preinstall", "install", "postinstall"] {
        if let Some(c) = scripts.get(event) {
            out.push((event.to_string(), c.clone()));
        } else if event == "install" && has_gyp && !scripts.contains_key("preinstall") {
            out.push((event.to_string(), "node-gyp rebuild".to_string()));
        }
    }
    out
}
