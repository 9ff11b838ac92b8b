//! Git dependencies with build scripts, readied as npm readies them before packing: when the
//! checkout's package.json has `prepare` (or `build`, `preinstall`, `install`, `postinstall`,
//! `prepack`, or workspaces) and the project's script policy (`crate::allow_scripts`, with
//! npm's git keys: `"github:u/r": true`, `"github:u/r#<sha prefix>": true`, or the URL) allows
//! that repository, `hoard install` runs in the checkout (dev dependencies included, no
//! lockfile written), which also runs its root lifecycle scripts, `prepare` among them. A
//! repository already being prepared further up is not prepared again (npm's
//! `_PACOTE_NO_PREPARE_`), so git dependencies that need each other cannot loop.
//!
//! Must not: decide anything but whether and how to prepare; the git cache packs the result.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;

use super::inputs::Inputs;
use crate::allow_scripts::{Identity, Policy};

/// The environment variable that carries the `resolved` of each git dependency being prepared
/// (one per line) through the nested installs.
pub const NO_PREPARE_ENV: &str = "_HOARD_NO_PREPARE_";

/// The scripts that make npm install a git dependency's dependencies before packing it.
const BUILD_SCRIPTS: [&str; 6] = [
    "postinstall",
    "build",
    "preinstall",
    "install",
    "prepack",
    "prepare",
];

pub(super) struct GitPrepare {
    policy: Policy,
    store_root: PathBuf,
    env: HashMap<String, String>,
    /// Repositories being prepared further up (this install runs inside one's checkout).
    seen: Vec<String>,
}

/// The preparer for one install of `inputs`' project.
pub(super) fn for_install(store_root: &Path, inputs: &Inputs) -> Arc<dyn crate::git::Prepare> {
    let seen = inputs
        .env
        .get(NO_PREPARE_ENV)
        .map(|s| s.lines().map(String::from).collect())
        .unwrap_or_default();
    Arc::new(GitPrepare {
        policy: Policy::load(&inputs.project.pkg_json, &inputs.cfg),
        store_root: store_root.to_path_buf(),
        env: inputs.env.clone(),
        seen,
    })
}

/// `hoard`, beside this `hoardd`.
fn client_binary() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("finding hoardd's own path: {e}"))?;
    Ok(me.with_file_name(format!("hoard{}", std::env::consts::EXE_SUFFIX)))
}

/// The last lines of a failed run's output.
fn tail(out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}

impl crate::git::Prepare for GitPrepare {
    fn wanted(&self, manifest: &Value, resolved: &str) -> bool {
        let scripts = manifest.get("scripts").and_then(Value::as_object);
        let builds = scripts.is_some_and(|s| BUILD_SCRIPTS.iter().any(|k| s.contains_key(*k)))
            || manifest.get("workspaces").is_some();
        let field = |k: &str| manifest.get(k).and_then(Value::as_str).unwrap_or_default();
        let id = Identity::of(field("name"), field("version"), resolved);
        builds && !self.seen.iter().any(|r| r == resolved) && self.policy.runs(&id, false)
    }

    fn run(&self, dir: &Path, resolved: &str) -> Result<(), String> {
        let client = client_binary()?;
        let mut seen = self.seen.clone();
        seen.push(resolved.to_string());
        let out = Command::new(&client)
            .arg("--store-dir")
            .arg(&self.store_root)
            .args(["install", "--no-package-lock"])
            .current_dir(dir)
            .envs(&self.env)
            .env(NO_PREPARE_ENV, seen.join("\n"))
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("running `{}`: {e}", client.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`hoard install` (with its `prepare` script) failed in the checkout:\n{}",
                tail(&out)
            ))
        }
    }
}
