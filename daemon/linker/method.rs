//! How one file gets from the store into node_modules: reflink, hardlink or copy.
//!
//! An explicit small state machine (after uv's): `auto` probes reflink → hardlink → copy on the
//! first file and keeps what worked; a failure after the method worked is a real error, except
//! EMLINK (too many links to one inode), which copies that file and warns once. Must not: decide
//! what to link (the plan does).

use std::io;
use std::path::Path;
use std::sync::Mutex;

use super::checked::Checked;
use crate::error::{HoardError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Reflink,
    Hardlink,
    Copy,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Reflink => "reflink",
            Method::Hardlink => "hardlink",
            Method::Copy => "copy",
        }
    }
}

/// What the request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    Auto,
    Exactly(Method),
}

/// Link with `m`. Copies and reflinks get normal writable modes (they are the project's own
/// files); hardlinks share the store's read-only inode.
pub fn link_with(m: Method, src: &Path, dst: &Path, executable: bool) -> io::Result<()> {
    match m {
        Method::Hardlink => std::fs::hard_link(src, dst),
        Method::Reflink => {
            reflink_copy::reflink(src, dst)?;
            set_mode(dst, executable)
        }
        Method::Copy => {
            std::fs::copy(src, dst)?;
            set_mode(dst, executable)
        }
    }
}

fn set_mode(p: &Path, executable: bool) -> io::Result<()> {
    crate::platform::set_mode(p, if executable { 0o755 } else { 0o644 })
}

fn why(e: &io::Error) -> &'static str {
    crate::platform::link_failure(e)
}

/// The link state of one install: the method once chosen, and warnings to show once.
pub struct LinkState {
    pub method: Method,
    /// The project's filesystem ignores case: a package's files that differ only in case are
    /// folded (`case::fold_files`) before linking.
    pub case_insensitive: bool,
    emlink_warned: Mutex<bool>,
    pub warnings: Mutex<Vec<String>>,
    /// Store files this run already found whole (each is checked once per install).
    pub checked: Checked,
    /// See `LinkOptions::fresh_since`.
    pub fresh_since: Option<std::time::Instant>,
    /// Store files trusted whole when this run began (`store::trust`): linked without a check.
    pub trusted: crate::store::trust::Trusted,
}

impl LinkState {
    /// Choose the method by linking the first file (`src` → `dst`). `remembered` is what an
    /// earlier probe found for the same store/project filesystem pair.
    pub fn probe(
        requested: Requested,
        remembered: Option<Method>,
        src: &Path,
        dst: &Path,
        executable: bool,
    ) -> Result<LinkState> {
        let mut warnings = Vec::new();
        let order: Vec<Method> = match (requested, remembered) {
            (Requested::Auto, Some(m)) => vec![m, Method::Copy],
            (Requested::Auto, None) => vec![Method::Reflink, Method::Hardlink, Method::Copy],
            (Requested::Exactly(Method::Reflink), _) => vec![Method::Reflink],
            (Requested::Exactly(Method::Hardlink), _) => vec![Method::Hardlink, Method::Copy],
            (Requested::Exactly(Method::Copy), _) => vec![Method::Copy],
        };
        let mut last_err = None;
        let mut failures: Vec<(Method, &'static str)> = Vec::new();
        for m in order {
            match link_with(m, src, dst, executable) {
                Ok(()) => {
                    let explicit_fallback = matches!(requested, Requested::Exactly(x) if x != m);
                    let auto_to_copy = requested == Requested::Auto && m == Method::Copy;
                    if (explicit_fallback || auto_to_copy)
                        && let Some((failed, reason)) = failures.last()
                    {
                        warnings.push(format!(
                            "linking with {} is not possible here: {reason}; files are copied \
                             instead (slower, uses more disk)",
                            failed.as_str()
                        ));
                    }
                    return Ok(LinkState {
                        method: m,
                        case_insensitive: false,
                        emlink_warned: Mutex::new(false),
                        warnings: Mutex::new(warnings),
                        checked: Checked::default(),
                        fresh_since: None,
                        trusted: Default::default(),
                    });
                }
                Err(e) => {
                    let _ = std::fs::remove_file(dst);
                    failures.push((m, why(&e)));
                    last_err = Some(e);
                }
            }
        }
        let e = last_err.unwrap_or_else(|| io::Error::other("no link method"));
        Err(HoardError::InvalidInput(format!(
            "cannot link `{}` to `{}` with {}: {} ({e}); try --link auto or --link copy",
            src.display(),
            dst.display(),
            match requested {
                Requested::Auto => "any method",
                Requested::Exactly(m) => m.as_str(),
            },
            why(&e)
        )))
    }

    /// A state for `m` without probing (nothing to link).
    pub fn probe_free(m: Method) -> LinkState {
        LinkState {
            method: m,
            case_insensitive: false,
            emlink_warned: Mutex::new(false),
            warnings: Mutex::new(Vec::new()),
            checked: Checked::default(),
            fresh_since: None,
            trusted: Default::default(),
        }
    }

    /// Link one file with the chosen method.
    pub fn link(&self, src: &Path, dst: &Path, executable: bool) -> Result<()> {
        match link_with(self.method, src, dst, executable) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EMLINK) => {
                if let Ok(mut w) = self.emlink_warned.lock()
                    && !*w
                {
                    *w = true;
                    if let Ok(mut ws) = self.warnings.lock() {
                        ws.push(format!(
                            "`{}` has too many hard links (EMLINK); such files are copied",
                            src.display()
                        ));
                    }
                }
                link_with(Method::Copy, src, dst, executable)
                    .map_err(|e| HoardError::io("copying a store file to", dst, e))
            }
            Err(e) => Err(HoardError::io(
                match self.method {
                    Method::Hardlink => "hard-linking a store file to",
                    Method::Reflink => "reflinking a store file to",
                    Method::Copy => "copying a store file to",
                },
                dst,
                e,
            )),
        }
    }
}
