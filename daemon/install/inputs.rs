//! Stage 1 of an install: everything it depends on, read once. Checks the project directory
//! (absolute, the caller's own), applies package.json edits, reads npm's settings and the
//! lockfile, and fingerprints all of it (the no-op check compares that fingerprint with the
//! state file's). Also the request's proto enums as the daemon's own types.
//!
//! Must not: resolve, download or touch node_modules.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hoard_proto::v1::{self, InstallRequest};
use serde_json::Value;

use super::context::{Run, blocking};
use super::edit;
use super::lock_memo::{Key, LockMemo, Lookup};
use crate::error::{HoardError, Result};
use crate::linker::Layout;
use crate::linker::method::{Method, Requested};
use crate::lockfile;
use crate::project::Project;
use crate::registry::Network;
use crate::registry::config::NpmConfig;

/// What an install starts from.
pub(super) struct Inputs {
    /// The project root, canonical.
    pub dir: PathBuf,
    /// The device the project is on (for the link method memory).
    pub dev: u64,
    pub env: HashMap<String, String>,
    pub cfg: NpmConfig,
    pub network: Network,
    /// `--package-lock-only` (flag or npm setting): write the lockfile and nothing else.
    pub lock_only: bool,
    /// `hoard fetch`: fill the store from package-lock.json; nothing is linked or written.
    pub fetch_only: bool,
    /// package.json (after this request's edits) and the workspaces'.
    pub project: Project,
    pub lock_path: PathBuf,
    /// package-lock.json's bytes, if there is one.
    pub lock_raw: Option<Vec<u8>>,
    /// package-lock.json as JSON: parsed by `parse_lock`, only once the install needs it (the
    /// no-op check needs only the bytes); shared with the lock memo.
    pub lock: Option<Arc<Value>>,
    /// The node_modules layout: the request's `--layout`, else the project's setting.
    pub layout: Layout,
    /// Fingerprint of everything above that decides the result.
    pub hash: String,
}

impl Inputs {
    pub fn lock_bytes(&self) -> Option<&[u8]> {
        self.lock_raw.as_deref()
    }

    /// Parse package-lock.json (an error names the file, line and column).
    pub fn parse_lock(&mut self) -> Result<()> {
        let Some(bytes) = &self.lock_raw else {
            return Ok(());
        };
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| lockfile::json_error(&self.lock_path, bytes, &e))?;
        self.lock = Some(Arc::new(v));
        Ok(())
    }

    /// `parse_lock`, unless `memo` keeps the tree of these very inputs: then the lockfile it
    /// parsed is taken, with a copy of that tree. None when there is no lockfile to read or the
    /// request does not take the lockfile as it is (`update`).
    pub fn parse_lock_remembered(
        &mut self,
        memo: &LockMemo,
        req: &InstallRequest,
    ) -> Result<Option<Lookup>> {
        let Some(bytes) = self.lock_raw.as_deref() else {
            return Ok(None);
        };
        if req.update_all || !req.update.is_empty() {
            self.parse_lock()?;
            return Ok(None);
        }
        let key = Key::of(&self.dir, &self.project, bytes, &self.cfg);
        if let Some((lock, tree)) = memo.get(key) {
            tracing::info!(
                lockfile = %self.lock_path.display(),
                "package-lock.json is unchanged since its tree was read: using that tree"
            );
            self.lock = Some(lock);
            return Ok(Some(Lookup {
                key,
                tree: Some(tree),
            }));
        }
        self.parse_lock()?;
        Ok(Some(Lookup { key, tree: None }))
    }
}

/// Read the inputs of `run`'s request (applying its package.json edits first).
pub(super) async fn read(run: &Run<'_>) -> Result<Inputs> {
    let req = run.req;
    let (dir, dev) = own_project_dir(req)?;
    let env: HashMap<String, String> = req.env.clone();
    // Loaded once, with npm's settings applied to the request (`with_settings`).
    let cfg = run.settings.cfg.clone();
    cfg.remote_cache().map_err(HoardError::InvalidInput)?;
    let network = network_of(req.network);
    let lock_only =
        req.package_lock_only == Some(true) || cfg.get("package-lock-only") == Some("true");
    let fetch_only = req.fetch_only == Some(true);
    let lock_path = dir.join(lockfile::FILE);
    let lock_raw = blocking(|| match std::fs::read(&lock_path) {
        // `package-lock=false`: npm neither reads nor writes it.
        _ if run.settings.ignore_lockfile => Ok(None),
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(HoardError::io("reading", &lock_path, e)),
    })?;
    // Without package.json, a lockfile's root entry stands in (`hoard fetch`, or an install in
    // a folder that holds only package-lock.json, as a Docker layer does).
    let lock_alone = lock_raw.is_some()
        && req.add.is_empty()
        && req.remove.is_empty()
        && !dir.join("package.json").exists();
    let mut project = if fetch_only || lock_alone {
        fetch_project(&dir, &lock_path, lock_raw.as_deref())?
    } else {
        blocking(|| Project::load(&dir))?
    };
    if !req.add.is_empty() || !req.remove.is_empty() {
        edit::apply(run, &project, &cfg, network).await?;
        project = blocking(|| Project::load(&dir))?;
    }
    let layout = layout(req, &project, &cfg)?;
    let hash = blocking(|| fingerprint(&project, lock_raw.as_deref(), req, &run.settings));
    Ok(Inputs {
        layout,
        dir,
        dev,
        env,
        cfg,
        network,
        lock_only,
        fetch_only,
        project,
        lock_path,
        lock_raw,
        lock: None,
        hash,
    })
}

/// The request's project directory, canonical, with its device; refused unless it is absolute
/// and belongs to the caller (or the caller is root).
/// `hoard fetch`'s project: package.json when there is one, else the lockfile's root entry.
fn fetch_project(dir: &Path, lock_path: &Path, lock: Option<&[u8]>) -> Result<Project> {
    let Some(bytes) = lock else {
        return Err(HoardError::Lockfile(format!(
            "`hoard fetch` fills the store from package-lock.json, and `{}` has none",
            dir.display()
        )));
    };
    if dir.join("package.json").exists() {
        return blocking(|| Project::load(dir));
    }
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| lockfile::json_error(lock_path, bytes, &e))?;
    Project::from_lock_root(dir, &v)
}

fn own_project_dir(req: &InstallRequest) -> Result<(PathBuf, u64)> {
    let dir = project_dir(&req.project_dir)?;
    let md =
        blocking(|| std::fs::metadata(&dir)).map_err(|e| HoardError::io("reading", &dir, e))?;
    // Windows has no owner uid: the profile's ACLs decide who may write there.
    if let Some(owner) = crate::platform::owner(&md)
        && owner != req.peer_uid
        && req.peer_uid != 0
    {
        return Err(HoardError::PermissionDenied(format!(
            "project directory `{}` belongs to uid {owner}, not to you (uid {}); hoard installs \
             only into your own projects",
            dir.display(),
            req.peer_uid
        )));
    }
    let device = crate::platform::device(&dir, &md);
    Ok((dir, device))
}

/// Fingerprint of everything an install depends on.
pub(super) fn fingerprint(
    project: &Project,
    lock_bytes: Option<&[u8]>,
    req: &InstallRequest,
    settings: &crate::npm_settings::Applied,
) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"hoard-inputs-v1\0");
    h.update(&project.pkg_bytes);
    h.update(b"\0lock\0");
    h.update(lock_bytes.unwrap_or(b""));
    for (dir, _, bytes) in &project.workspaces {
        h.update(dir.as_bytes());
        h.update(bytes);
    }
    h.update(
        format!(
            "\0{}\0{:?}\0{}",
            req.omit_dev,
            requested_layout(req).map(Layout::as_str),
            req.link_method
        )
        .as_bytes(),
    );
    if let Ok(npmrc) = std::fs::read(project.dir.join(".npmrc")) {
        h.update(&npmrc);
    }
    h.update(settings.fingerprint().as_bytes());
    h.finalize().to_hex().to_string()
}

/// A request's project directory, canonical: it must be an absolute path to an existing
/// folder. (Install, `outdated` and `Watch` all check it here.)
pub fn project_dir(raw: &str) -> Result<PathBuf> {
    let p = Path::new(raw);
    if !p.is_absolute() {
        return Err(HoardError::InvalidInput(format!(
            "project_dir `{raw}` must be an absolute path"
        )));
    }
    blocking(|| std::fs::canonicalize(p)).map_err(|e| {
        HoardError::InvalidInput(format!("project directory `{raw}` cannot be used: {e}"))
    })
}

pub(super) fn network_of(mode: i32) -> Network {
    match v1::NetworkMode::try_from(mode).unwrap_or(v1::NetworkMode::Online) {
        v1::NetworkMode::Online => Network::Online,
        v1::NetworkMode::PreferOffline => Network::PreferOffline,
        v1::NetworkMode::Offline => Network::Offline,
    }
}

pub(super) fn requested_method(req: &InstallRequest) -> Requested {
    match v1::LinkMethod::try_from(req.link_method).unwrap_or(v1::LinkMethod::Auto) {
        v1::LinkMethod::Auto => Requested::Auto,
        v1::LinkMethod::Reflink => Requested::Exactly(Method::Reflink),
        v1::LinkMethod::Hardlink => Requested::Exactly(Method::Hardlink),
        v1::LinkMethod::Copy => Requested::Exactly(Method::Copy),
    }
}

pub(super) fn method_to_proto(m: Method) -> v1::LinkMethod {
    match m {
        Method::Reflink => v1::LinkMethod::Reflink,
        Method::Hardlink => v1::LinkMethod::Hardlink,
        Method::Copy => v1::LinkMethod::Copy,
    }
}

/// The layout the request insists on: any but the zero value, or the zero value (hoisted) when
/// `layout_forced` says the user asked for it.
fn requested_layout(req: &InstallRequest) -> Option<Layout> {
    let asked = v1::Layout::try_from(req.layout).unwrap_or(v1::Layout::Hoisted);
    if asked == v1::Layout::Hoisted && req.layout_forced != Some(true) {
        return None;
    }
    Some(match asked {
        v1::Layout::Hoisted => Layout::Hoisted,
        v1::Layout::Isolated => Layout::Isolated,
        v1::Layout::Global => Layout::Global,
    })
}

/// The layout of this install: the request's, else package.json's `"hoard": {"layout": …}`,
/// else `layout=` in npm's settings (.npmrc), else hoisted. A setting hoard does not know is an
/// error naming where it was found.
fn layout(req: &InstallRequest, project: &Project, cfg: &NpmConfig) -> Result<Layout> {
    if let Some(l) = requested_layout(req) {
        return Ok(l);
    }
    let from_pkg = project.pkg_json.get("hoard").and_then(|h| h.get("layout"));
    if let Some(v) = from_pkg {
        return v.as_str().and_then(Layout::parse).ok_or_else(|| {
            HoardError::InvalidInput(format!(
                "`hoard.layout` in {} is {v}; use \"hoisted\", \"isolated\" or \"global\"",
                project.dir.join("package.json").display()
            ))
        });
    }
    match cfg.get("layout") {
        // npm's own isolated layout.
        None if crate::npm_settings::install_strategy(cfg) == "linked" => Ok(Layout::Isolated),
        None => Ok(Layout::Hoisted),
        Some(v) => Layout::parse(v).ok_or_else(|| {
            HoardError::InvalidInput(format!(
                "the npm setting `layout={v}` (from .npmrc or npm_config_layout) is not a \
                 layout; use hoisted, isolated or global"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let p = Project::load(dir.path()).unwrap();
        (dir, p)
    }

    #[test]
    fn the_fingerprint_changes_with_each_input_and_only_with_them() {
        let pkg = r#"{"name":"app","dependencies":{"a":"1"}}"#;
        let (_d, p) = project(&[("package.json", pkg)]);
        let req = InstallRequest::default();
        let base = fingerprint(&p, Some(b"lock"), &req, &Default::default());
        assert_eq!(
            base,
            fingerprint(&p, Some(b"lock"), &req, &Default::default()),
            "stable"
        );
        assert_ne!(
            base,
            fingerprint(&p, Some(b"other lock"), &req, &Default::default())
        );
        assert_ne!(base, fingerprint(&p, None, &req, &Default::default()));
        let omit = InstallRequest {
            omit_dev: true,
            ..Default::default()
        };
        assert_ne!(
            base,
            fingerprint(&p, Some(b"lock"), &omit, &Default::default())
        );
        let isolated = InstallRequest {
            layout: v1::Layout::Isolated as i32,
            ..Default::default()
        };
        assert_ne!(
            base,
            fingerprint(&p, Some(b"lock"), &isolated, &Default::default())
        );
        // Options that do not change the result do not change the fingerprint.
        let quiet = InstallRequest {
            peer_uid: 1234,
            ..Default::default()
        };
        assert_eq!(
            base,
            fingerprint(&p, Some(b"lock"), &quiet, &Default::default())
        );

        let (_d2, p2) = project(&[("package.json", pkg), (".npmrc", "legacy-peer-deps=true\n")]);
        let omit_optional = crate::npm_settings::Applied {
            omit_optional: true,
            ..Default::default()
        };
        assert_ne!(
            base,
            fingerprint(&p, Some(b"lock"), &req, &omit_optional),
            "omit=optional counts"
        );
        assert_ne!(
            base,
            fingerprint(&p2, Some(b"lock"), &req, &Default::default()),
            ".npmrc counts"
        );
        let (_d3, p3) = project(&[("package.json", r#"{"name":"app","dependencies":{"a":"2"}}"#)]);
        assert_ne!(
            base,
            fingerprint(&p3, Some(b"lock"), &req, &Default::default()),
            "package.json counts"
        );
    }

    #[test]
    fn a_relative_project_dir_is_refused_by_name() {
        let req = InstallRequest {
            project_dir: "some/where".into(),
            ..Default::default()
        };
        let err = own_project_dir(&req).unwrap_err().to_string();
        assert!(
            err.contains("some/where") && err.contains("absolute"),
            "{err}"
        );
    }
}
