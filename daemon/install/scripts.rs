//! Stage 5 of an install: the scripts policy. A dependency's install scripts (`preinstall`,
//! `install`, `postinstall`, or node-gyp's implicit `install` when it has `binding.gyp`) run only
//! when npm's policy allows them (`crate::allow_scripts`: package.json's `allowScripts`, which
//! npm reads too); allowed packages become real copies (their scripts write into their folder).
//! One deliberate difference from npm: a script no entry covers is not run (npm runs it with a
//! notice); hoard names it in the same kind of notice, with the command that approves it, and
//! `strict-allow-scripts` makes it an error before anything is linked. The scripts are listed for
//! the client, which runs them after linking, dependencies before dependents, then the root's own
//! lifecycle scripts.
//!
//! Must not: run anything.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hoard_proto::v1::{DeniedScript, Script};

use super::context::{Run, blocking};
use super::inputs::Inputs;
use crate::allow_scripts::{Identity, Policy, Verdict};
use crate::error::{HoardError, Result};
use crate::linker::{self, Layout};
use crate::registry::packument::Manifest;
use crate::store::{Store, StoredPackage};
use crate::tree::{Node, NodeKind, Tree};

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
    /// Scripts not run: denied by an entry (`explicit`) or unreviewed.
    pub denied: Vec<DeniedScript>,
}

/// The policy's identity of a tree node.
pub fn identity(n: &Node) -> Identity {
    let resolved = match &n.kind {
        NodeKind::Package { resolved, .. } => resolved.as_str(),
        _ => "",
    };
    Identity::of(n.real_name(), n.version(), resolved)
}

/// Apply the policy to every stored package; tells the user once about unreviewed scripts, or
/// fails under `strict-allow-scripts`.
pub(super) async fn policy(
    run: &Run<'_>,
    inputs: &Inputs,
    tree: &Tree,
    stored: &HashMap<usize, Arc<StoredPackage>>,
) -> Result<Scripts> {
    let policy = Policy::load(&inputs.project.pkg_json, &inputs.cfg);
    let mut out = Scripts {
        copies: HashSet::new(),
        allowed: Vec::new(),
        denied: Vec::new(),
    };
    if policy.ignore {
        return Ok(out);
    }
    for w in &policy.warnings {
        run.em.warn("allow-scripts", "", w.clone()).await;
    }
    let mut allowed: Vec<(usize, Script)> = Vec::new();
    for (&i, p) in stored {
        let n = &tree.nodes[i];
        let scripts = blocking(|| package_install_scripts(&run.installer.store, p, &n.manifest));
        // A git dependency's `prepare` ran (or not) when it was packed; listed when it did not.
        let prepare = match &n.kind {
            NodeKind::Package { resolved, .. } => {
                blocking(|| git_prepare_script(&run.installer.store, p, resolved))
            }
            _ => None,
        };
        if scripts.is_empty() && prepare.is_none() || n.in_bundle {
            continue;
        }
        let id = identity(n);
        let runs = policy.runs(&id, n.in_bundle);
        if runs && scripts.is_empty() {
            continue;
        }
        if runs {
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
            let explicit = policy.verdict(&id, n.in_bundle) == Verdict::Denied;
            out.denied
                .extend(
                    scripts
                        .into_iter()
                        .chain(prepare)
                        .map(|(event, command)| DeniedScript {
                            package: n.real_name().to_string(),
                            version: n.version().to_string(),
                            event,
                            command,
                            explicit: Some(explicit),
                        }),
                );
        }
    }
    out.denied
        .sort_by(|a, b| (&a.package, &a.version).cmp(&(&b.package, &b.version)));
    let unreviewed = unreviewed_lines(&out.denied);
    if policy.strict && !unreviewed.is_empty() {
        return Err(HoardError::InvalidInput(format!(
            "strict-allow-scripts: {} package(s) have install scripts not covered by \
             allowScripts:\n{}\nRun `hoard install-scripts approve <pkg>` to allow them, or \
             `hoard install-scripts deny <pkg>` to skip them.",
            unreviewed.len(),
            unreviewed.join("\n")
        )));
    }
    notice_unreviewed(run, &out.denied, &unreviewed).await;
    // Dependencies before dependents: deeper folders first.
    allowed.sort_by_key(|(i, s)| {
        (
            Reverse(tree.nodes[*i].depth()),
            tree.nodes[*i].location.clone(),
            ROOT_EVENTS.iter().position(|e| *e == s.event),
        )
    });
    out.allowed = allowed.into_iter().map(|(_, s)| s).collect();
    Ok(out)
}

/// A git dependency's `prepare` script, if it has one (run, when allowed, as it is packed).
pub fn git_prepare_script(
    store: &Store,
    p: &StoredPackage,
    resolved: &str,
) -> Option<(String, String)> {
    if !crate::git::is_git_resolved(resolved) {
        return None;
    }
    let cmd = stored_scripts(store, p).remove("prepare")?;
    Some(("prepare".to_string(), cmd))
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

/// `  name@version (event: command; event: command)` per unreviewed package, as npm lists them.
fn unreviewed_lines(denied: &[DeniedScript]) -> Vec<String> {
    let mut lines: Vec<(String, Vec<String>)> = Vec::new();
    for d in denied.iter().filter(|d| d.explicit != Some(true)) {
        let label = format!("{}@{}", d.package, d.version);
        let event = format!("{}: {}", d.event, d.command);
        match lines.last_mut() {
            Some((l, events)) if *l == label => {
                if !events.contains(&event) {
                    events.push(event)
                }
            }
            _ => lines.push((label, vec![event])),
        }
    }
    lines
        .into_iter()
        .map(|(l, e)| format!("  {l} ({})", e.join("; ")))
        .collect()
}

/// npm's notice about scripts no entry covers (explicit denials stay silent).
async fn notice_unreviewed(run: &Run<'_>, denied: &[DeniedScript], lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let first = denied.iter().find(|d| d.explicit != Some(true));
    let package = match (lines.len(), first) {
        (1, Some(d)) => format!("{}@{}", d.package, d.version),
        _ => String::new(),
    };
    let msg = format!(
        "{} {} install scripts not yet covered by allowScripts; hoard did not run them:\n{}\n\
         Run `hoard install-scripts ls` to review, or `hoard install-scripts approve <pkg>` to \
         allow.",
        lines.len(),
        if lines.len() == 1 {
            "package has"
        } else {
            "packages have"
        },
        lines.join("\n")
    );
    run.em.warn("script-denied", &package, msg).await;
}

/// The project's own lifecycle scripts that run after the install, in order (none under
/// `ignore-scripts`).
pub(super) fn root_scripts(inputs: &Inputs) -> Vec<Script> {
    let project = &inputs.project;
    let mut out = Vec::new();
    if inputs.cfg.flag("ignore-scripts").unwrap_or(false) {
        return out;
    }
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
pub fn package_install_scripts(
    store: &Store,
    p: &StoredPackage,
    m: &Manifest,
) -> Vec<(String, String)> {
    let has_gyp = p.files.iter().any(|f| f.path == "binding.gyp");
    if !m.install_scripts() && !has_gyp {
        return vec![];
    }
    let scripts = stored_scripts(store, p);
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

/// The `scripts` of a stored package's package.json (empty when it has none or cannot be read).
fn stored_scripts(store: &Store, p: &StoredPackage) -> HashMap<String, String> {
    p.files
        .iter()
        .find(|f| f.path == "package.json")
        .and_then(|f| std::fs::read(store.content_path(f)).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("scripts").cloned())
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default()
}
