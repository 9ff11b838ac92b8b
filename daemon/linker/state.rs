//! What an install leaves in node_modules to prove what node_modules holds: the state file
//! (`.hoard-state.json`: every package folder with its key, the symlinks, the bins, the slots,
//! the inputs hash), node_modules' mtime after the install (`.hoard-state.mtime`) and the hidden
//! copy of the lockfile (`.hoard-lock.json`). The no-op check and the incremental materializer
//! read them.
//!
//! Must not: change anything in node_modules but these three files (and, to mark a project
//! stale, the install prepared for it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::method::Method;
use super::{Layout, Plan, PlannedLink, rename};
use crate::error::{HoardError, Result};

pub const STATE_FILE: &str = ".hoard-state.json";

/// The folder an install prepared ahead of time is built in, inside node_modules (`swap`).
pub const NEXT: &str = ".hoard-next";

/// Where a prepared install of `project` is built: a stand-in project root whose `node_modules`
/// is the next node_modules.
pub fn prepared_root(project: &Path) -> PathBuf {
    project.join("node_modules").join(NEXT).join("root")
}

/// The state file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub layout: Layout,
    /// Hash of every input of the install (package.json, lockfile, options).
    pub inputs: String,
    pub link_method: String,
    pub packages: BTreeMap<String, String>,
    pub links: Vec<PlannedLink>,
    pub bin_links: Vec<(String, String, String)>,
    /// mtime (ns) of node_modules when the state was written.
    pub node_modules_mtime: i128,
    /// The global layout's slots this project links (folder names under `<store>/v1/virtual`):
    /// what keeps them from prune.
    #[serde(default)]
    pub slots: Vec<String>,
    /// Package folders and slots (the no-op check reports it without reading the rest).
    #[serde(default)]
    pub package_count: Option<u64>,
    /// BLAKE3 (hex) of package.json, package-lock.json and .npmrc as this install used them
    /// (absent files are left out): what "does this project need an install?" compares.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// The files whose content `State::files` records.
pub const INPUT_FILES: [&str; 3] = ["package.json", "package-lock.json", ".npmrc"];

/// `State::files` for these contents (None: the file is absent).
pub fn input_hashes(contents: [Option<&[u8]>; 3]) -> BTreeMap<String, String> {
    INPUT_FILES
        .iter()
        .zip(contents)
        .filter_map(|(name, c)| c.map(|b| (name.to_string(), blake3::hash(b).to_hex().to_string())))
        .collect()
}

/// The part of the state file the no-op check needs; read without building the rest (the
/// package map and the links of a big tree take longer to build than the check itself).
#[derive(Debug, Deserialize)]
pub struct StateHead {
    pub inputs: String,
    pub link_method: String,
    pub node_modules_mtime: i128,
    #[serde(default)]
    pub package_count: Option<u64>,
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

pub fn read_state_head(project: &Path) -> Option<StateHead> {
    let bytes = std::fs::read(state_path(project)).ok()?;
    let mut head: StateHead = serde_json::from_slice(&bytes).ok()?;
    head.node_modules_mtime = recorded_mtime(project, head.node_modules_mtime);
    Some(head)
}

/// A copy of the package-lock.json an install ended with, kept beside the state: with the
/// state it proves what node_modules holds, so a missing lockfile can be given back without
/// resolving or downloading (pnpm's and npm's trust in node_modules, for hoard's own folders).
pub const HIDDEN_LOCK: &str = ".hoard-lock.json";

/// Keep (or, when the install wrote no lockfile, drop) the hidden copy of the lockfile. Call
/// before `write_state`, which records node_modules' mtime.
pub fn write_hidden_lock(project: &Path, lock: Option<&[u8]>) -> Result<()> {
    let path = project.join("node_modules").join(HIDDEN_LOCK);
    match lock {
        Some(bytes) => crate::atomic::write_atomic(&path, bytes),
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(HoardError::io("removing", &path, e))
            }
            _ => Ok(()),
        },
    }
}

pub fn read_hidden_lock(project: &Path) -> Option<Vec<u8>> {
    std::fs::read(project.join("node_modules").join(HIDDEN_LOCK)).ok()
}

/// Remove the state file: from here on node_modules is in flux.
pub fn remove_state(project: &Path) -> Result<()> {
    let sp = state_path(project);
    match std::fs::remove_file(&sp) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(HoardError::io("removing", &sp, e)),
    }
}

/// Mark a project stale: without its state file, its next install relinks every package (and
/// never answers "up to date"); an install prepared for it goes too.
pub fn mark_stale(project: &Path) -> Result<()> {
    let next = project.join("node_modules").join(NEXT);
    if next.exists() {
        std::fs::remove_dir_all(&next).map_err(|e| HoardError::io("removing", &next, e))?;
    }
    remove_state(project)
}

pub fn state_path(project: &Path) -> PathBuf {
    project.join("node_modules").join(STATE_FILE)
}

pub fn read_state(project: &Path) -> Option<State> {
    let bytes = std::fs::read(state_path(project)).ok()?;
    let mut state: State = serde_json::from_slice(&bytes).ok()?;
    state.node_modules_mtime = recorded_mtime(project, state.node_modules_mtime);
    Some(state)
}

/// The global-layout slots a project links: those its state names, else (no state, as after a
/// crash or a verify) those its node_modules' symlinks point into.
pub fn slots_linked(project: &Path, store: &crate::store::Store) -> Vec<String> {
    // An install prepared ahead of time links its slots too.
    let prepared = read_state(&prepared_root(project)).map(|s| s.slots);
    let mut out = prepared.unwrap_or_default();
    if let Some(s) = read_state(project) {
        out.extend(s.slots);
        return out;
    }
    let nm = project.join("node_modules");
    let mut dirs = vec![nm.clone(), nm.join(".hoard").join("node_modules")];
    dirs.extend(
        (std::fs::read_dir(nm.join(".hoard"))
            .into_iter()
            .flatten()
            .flatten())
        .map(|e| e.path().join("node_modules")),
    );
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let scoped = e.file_name().to_string_lossy().starts_with('@');
            match std::fs::read_link(&p) {
                Ok(text) => out.extend(store.slot_of_target(&text)),
                Err(_) if scoped => dirs.push(p),
                Err(_) => {}
            }
        }
    }
    out
}

pub fn dir_mtime(p: &Path) -> i128 {
    std::fs::metadata(p)
        .map(|m| crate::platform::mtime_ns(&m))
        .unwrap_or(-1)
}

/// Write the state file (last step of an install).
pub fn write_state(
    project: &Path,
    plan: &Plan,
    inputs: &str,
    method: Option<Method>,
    files: BTreeMap<String, String>,
) -> Result<()> {
    let state = State {
        version: 1,
        layout: plan.layout,
        inputs: inputs.to_string(),
        link_method: method.map(|m| m.as_str().to_string()).unwrap_or_default(),
        packages: plan
            .packages
            .iter()
            .map(|p| (p.location.clone(), p.key.clone()))
            .collect(),
        links: plan.links.clone(),
        bin_links: plan.bin_links.clone(),
        node_modules_mtime: 0,
        slots: plan.slots.iter().map(|s| s.dir.clone()).collect(),
        package_count: Some(plan.package_count() as u64),
        files,
    };
    store_state(project, state)
}

/// Beside the state file: node_modules' mtime (ns, decimal) as the last install left it.
pub const MTIME_FILE: &str = ".hoard-state.mtime";

/// Write `state` as the project's state file, then record node_modules' mtime as it is after
/// that write (in `MTIME_FILE`, overwritten in place: no directory entry changes, so the mtime
/// recorded is what the next install will see).
pub fn store_state(project: &Path, state: State) -> Result<()> {
    let nm = project.join("node_modules");
    let path = state_path(project);
    let tmp = nm.join(format!("{STATE_FILE}.tmp"));
    let stamp = nm.join(MTIME_FILE);
    if !stamp.exists() {
        std::fs::write(&stamp, b"").map_err(|e| HoardError::io("writing", &stamp, e))?;
    }
    let bytes = serde_json::to_vec(&state).map_err(|e| HoardError::Internal(e.to_string()))?;
    std::fs::write(&tmp, &bytes).map_err(|e| HoardError::io("writing", &tmp, e))?;
    rename(&tmp, &path)?;
    record_mtime(project)
}

/// Put a state file already written elsewhere (a prepared install's) in place, and record
/// node_modules' mtime.
pub fn adopt_state(project: &Path, from: &Path) -> Result<()> {
    let nm = project.join("node_modules");
    let stamp = nm.join(MTIME_FILE);
    if !stamp.exists() {
        std::fs::write(&stamp, b"").map_err(|e| HoardError::io("writing", &stamp, e))?;
    }
    rename(from, &state_path(project))?;
    record_mtime(project)
}

/// The state is already in place (a whole prepared node_modules was swapped in with its state):
/// record node_modules' mtime for it.
pub fn adopt_state_in_place(project: &Path) -> Result<()> {
    let stamp = project.join("node_modules").join(MTIME_FILE);
    if !stamp.exists() {
        std::fs::write(&stamp, b"").map_err(|e| HoardError::io("writing", &stamp, e))?;
    }
    record_mtime(project)
}

/// Overwrite `MTIME_FILE` in place with node_modules' mtime.
fn record_mtime(project: &Path) -> Result<()> {
    let nm = project.join("node_modules");
    let stamp = nm.join(MTIME_FILE);
    let now = dir_mtime(&nm).to_string();
    std::fs::write(&stamp, now.as_bytes()).map_err(|e| HoardError::io("writing", &stamp, e))
}

/// node_modules' mtime as the last install recorded it: `MTIME_FILE`, else (a state written
/// before it existed) the state's own field.
fn recorded_mtime(project: &Path, in_state: i128) -> i128 {
    std::fs::read_to_string(project.join("node_modules").join(MTIME_FILE))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(in_state)
}

/// node_modules was changed on purpose by something that keeps its content (a folder prepared
/// for the next install was added or removed beside it): when the state held before, record the
/// new mtime so that the no-op check still holds.
pub fn restamp(project: &Path, held_before: bool) -> Result<()> {
    if held_before && state_path(project).exists() {
        record_mtime(project)
    } else {
        Ok(())
    }
}

/// Whether the state file describes node_modules as it is (its recorded mtime still holds).
pub fn holds(project: &Path) -> bool {
    read_state_head(project)
        .is_some_and(|s| s.node_modules_mtime == dir_mtime(&project.join("node_modules")))
}

/// Whether a project's node_modules still matches what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    UpToDate,
    /// Out of date, and why.
    OutOfDate(String),
    /// No node_modules installed by hoard.
    NotInstalled,
    /// The folder or its package.json is gone.
    Gone,
}

impl Freshness {
    /// The API's sync state, and the reason when an install is needed.
    pub fn sync_state(self) -> (hoard_proto::v1::SyncState, String) {
        use hoard_proto::v1::SyncState;
        match self {
            Freshness::UpToDate => (SyncState::InSync, String::new()),
            Freshness::OutOfDate(why) => (SyncState::NeedsInstall, why),
            Freshness::NotInstalled => (SyncState::NotInstalled, String::new()),
            Freshness::Gone => (SyncState::Gone, String::new()),
        }
    }

    pub fn word(&self) -> &'static str {
        match self {
            Freshness::UpToDate => "up to date",
            Freshness::OutOfDate(_) => "out of date",
            Freshness::NotInstalled => "not installed",
            Freshness::Gone => "gone",
        }
    }
}

fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// A project's freshness, from the files the last install left: node_modules must not have
/// changed since (the mtime the state file recorded) and none of package.json,
/// package-lock.json and .npmrc may be newer than the state file.
pub fn freshness(dir: &Path) -> Freshness {
    if !dir.join("package.json").is_file() && !dir.join("package-lock.json").is_file() {
        return Freshness::Gone;
    }
    let Some(head) = read_state_head(dir) else {
        return Freshness::NotInstalled;
    };
    if head.node_modules_mtime != dir_mtime(&dir.join("node_modules")) {
        return Freshness::OutOfDate("node_modules changed since the last install".into());
    }
    if !head.files.is_empty() {
        // By content: a save in the same clock tick as the install is still seen.
        for file in INPUT_FILES {
            let now = std::fs::read(dir.join(file))
                .ok()
                .map(|b| blake3::hash(&b).to_hex().to_string());
            if now.as_ref() != head.files.get(file) {
                return Freshness::OutOfDate(format!("{file} changed since the last install"));
            }
        }
        return Freshness::UpToDate;
    }
    // A state file from before the hashes: by modification time.
    let Some(installed) = mtime(&state_path(dir)) else {
        return Freshness::NotInstalled;
    };
    for file in INPUT_FILES {
        if mtime(&dir.join(file)).is_some_and(|m| m > installed) {
            return Freshness::OutOfDate(format!("{file} changed since the last install"));
        }
    }
    Freshness::UpToDate
}
