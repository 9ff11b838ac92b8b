//! The daemon's error type, and the one place where domain errors become `tonic::Status`.
//!
//! Every variant says what failed, on which path, package or URL, and (where there is one) what
//! the user can do. Must not: format for a terminal or decide exit codes (the client does that).

use std::path::PathBuf;

use tonic::{Code, Status};

/// Errors of every daemon module. Variants carry the path/package/URL they are about.
#[derive(Debug, thiserror::Error)]
pub enum HoardError {
    #[error("{context} `{path}`: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "no space left on the filesystem of `{path}` ({context}); free some space (`hoard store \
         prune` removes what no project uses) and run the command again"
    )]
    NoSpace {
        context: &'static str,
        path: PathBuf,
    },

    #[error(
        "the store index `{path}` is damaged ({detail}); the next install sets it aside and \
         starts a new one (or restart the daemon: `hoard daemon restart`)"
    )]
    IndexBroken { path: PathBuf, detail: String },

    #[error("store index at `{path}`: {source}")]
    Index {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("{0}")]
    InvalidInput(String),

    /// A `hoard query` selector npm would refuse too; `code` is npm's (`EQUERYNOPSEUDO`, …).
    #[error("invalid selector `{selector}`: {message}")]
    InvalidSelector {
        selector: String,
        code: &'static str,
        message: String,
    },

    #[error("{0}")]
    NotFound(String),

    #[error("{0}")]
    Registry(String),

    #[error("registry `{url}` answered {status}: {hint}")]
    Auth {
        url: String,
        status: u16,
        hint: String,
    },

    #[error("{0}")]
    Offline(String),

    #[error(
        "integrity check failed for {package} from {url}: expected {expected}, got {actual}; the \
         download was discarded (nothing entered the store). If the registry is right, the lockfile \
         is stale: run `hoard update {name}`"
    )]
    Integrity {
        package: String,
        name: String,
        url: String,
        expected: String,
        actual: String,
    },

    #[error("tarball of {package} from {url} rejected: {reason}")]
    HostileTarball {
        package: String,
        url: String,
        reason: String,
    },

    #[error("{0}")]
    Resolve(String),

    /// A git dependency that could not be had: the repository (as the spec names it) and why.
    #[error("git dependency `{repo}`: {message}")]
    Git { repo: String, message: String },

    /// Dependencies that could not be resolved: all of them, not only the first.
    #[error("{}", unresolved_message(.0))]
    Unresolvable(Vec<Unresolved>),

    /// A supply-chain check refused the install (a registry signature, an advisory).
    #[error("{0}")]
    Refused(String),

    #[error("{0}")]
    Lockfile(String),

    #[error("{0}")]
    PermissionDenied(String),

    #[error("the install was cancelled ({0})")]
    Cancelled(String),

    /// The daemon is stopping: what was under way ended without changing anything.
    #[error("{0}")]
    Stopping(String),

    #[error("{0}")]
    Internal(String),

    /// An error shared by every request that joined one coalesced operation.
    #[error("{0}")]
    Shared(std::sync::Arc<HoardError>),
}

pub type Result<T, E = HoardError> = std::result::Result<T, E>;

/// One dependency a resolution could not have.
#[derive(Debug, Clone)]
pub struct Unresolved {
    pub package: String,
    /// The range (or spec) it was wanted with.
    pub range: String,
    /// Its stable reason (`NO_MATCHING_VERSION`, `PACKAGE_NOT_FOUND`, …).
    pub reason: &'static str,
    pub message: String,
    /// Who wants it (`name@version`, or the project).
    pub wanted_by: Vec<String>,
}

fn unresolved_message(list: &[Unresolved]) -> String {
    let one = |u: &Unresolved| {
        let by: Vec<String> = u
            .wanted_by
            .iter()
            .map(|w| {
                if w.is_empty() || w == "@" {
                    "the project".into()
                } else {
                    w.clone()
                }
            })
            .collect();
        format!("{} (required by {})", u.message, by.join(", "))
    };
    match list {
        [u] => one(u),
        _ => format!(
            "{} dependencies could not be resolved:\n  - {}",
            list.len(),
            list.iter().map(one).collect::<Vec<_>>().join("\n  - ")
        ),
    }
}

/// The domain every `ErrorInfo` names.
pub const ERROR_DOMAIN: &str = "hoard.dev";

impl HoardError {
    /// An I/O error on `path`, with what was being done.
    /// A full disk (or quota) becomes `NoSpace`, which says so in plain words.
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        if crate::platform::is_no_space(&source) {
            return HoardError::NoSpace {
                context,
                path: path.into(),
            };
        }
        HoardError::Io {
            context,
            path: path.into(),
            source,
        }
    }

    pub fn index(path: impl Into<PathBuf>, source: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{DatabaseCorrupt, DiskFull, NotADatabase};
        match source.sqlite_error_code() {
            Some(DiskFull) => {
                return HoardError::NoSpace {
                    context: "writing the store index",
                    path: path.into(),
                };
            }
            Some(NotADatabase) | Some(DatabaseCorrupt) => {
                return HoardError::IndexBroken {
                    path: path.into(),
                    detail: source.to_string(),
                };
            }
            _ => {}
        }
        HoardError::Index {
            path: path.into(),
            source,
        }
    }
}

impl From<tokio::task::JoinError> for HoardError {
    fn from(e: tokio::task::JoinError) -> Self {
        HoardError::Internal(format!("a worker task failed: {e}"))
    }
}

impl HoardError {
    /// The damaged index behind this error, if that is what it is (through shared errors too).
    pub fn broken_index(&self) -> Option<&std::path::Path> {
        match self {
            HoardError::IndexBroken { path, .. } => Some(path),
            HoardError::Shared(inner) => inner.broken_index(),
            _ => None,
        }
    }

    /// The gRPC code for this error.
    pub fn code(&self) -> Code {
        match self {
            HoardError::Shared(inner) => inner.code(),
            HoardError::InvalidInput(_)
            | HoardError::Lockfile(_)
            | HoardError::InvalidSelector { .. } => Code::InvalidArgument,
            HoardError::NotFound(_) => Code::NotFound,
            HoardError::Auth { .. } => Code::Unauthenticated,
            HoardError::PermissionDenied(_) => Code::PermissionDenied,
            // An offline miss is not transient: retrying does not help (FAILED_PRECONDITION).
            HoardError::Offline(_) => Code::FailedPrecondition,
            HoardError::Registry(_) => Code::Unavailable,
            HoardError::Unresolvable(list) => match list.first().map(|u| u.reason) {
                Some("PACKAGE_NOT_FOUND") => Code::NotFound,
                Some("REGISTRY_UNAVAILABLE") => Code::Unavailable,
                Some("AUTH_REQUIRED") => Code::Unauthenticated,
                _ => Code::FailedPrecondition,
            },
            HoardError::Integrity { .. } | HoardError::HostileTarball { .. } => Code::DataLoss,
            HoardError::Resolve(_) | HoardError::Refused(_) | HoardError::Git { .. } => {
                Code::FailedPrecondition
            }
            HoardError::Cancelled(_) => Code::Cancelled,
            HoardError::Stopping(_) => Code::Unavailable,
            HoardError::NoSpace { .. } => Code::ResourceExhausted,
            HoardError::IndexBroken { .. } => Code::Unavailable,
            HoardError::Io { .. } | HoardError::Index { .. } | HoardError::Internal(_) => {
                Code::Internal
            }
        }
    }
}

impl HoardError {
    /// The stable, machine-readable reason (`ErrorInfo.reason`); the proto lists them all.
    pub fn reason(&self) -> &'static str {
        match self {
            HoardError::Shared(inner) => inner.reason(),
            HoardError::Io { .. } => "IO_ERROR",
            HoardError::NoSpace { .. } => "NO_SPACE",
            HoardError::IndexBroken { .. } => "STORE_INDEX_BROKEN",
            HoardError::Index { .. } => "STORE_INDEX_ERROR",
            HoardError::InvalidInput(_) => "INVALID_INPUT",
            HoardError::InvalidSelector { .. } => "INVALID_SELECTOR",
            HoardError::NotFound(_) => "PACKAGE_NOT_FOUND",
            HoardError::Registry(_) => "REGISTRY_UNAVAILABLE",
            HoardError::Auth { .. } => "AUTH_REQUIRED",
            HoardError::Offline(_) => "OFFLINE_MISS",
            HoardError::Integrity { .. } => "INTEGRITY_MISMATCH",
            HoardError::HostileTarball { .. } => "HOSTILE_TARBALL",
            HoardError::Resolve(m) if m.starts_with("ERESOLVE") => "ERESOLVE",
            HoardError::Resolve(_) => "RESOLUTION_FAILED",
            HoardError::Git { .. } => "GIT_FAILED",
            HoardError::Unresolvable(list) => match list.as_slice() {
                [first, rest @ ..] if rest.iter().all(|u| u.reason == first.reason) => first.reason,
                _ => "RESOLUTION_FAILED",
            },
            HoardError::Refused(_) => "REFUSED",
            HoardError::Lockfile(_) => "LOCKFILE_MISMATCH",
            HoardError::PermissionDenied(_) => "PERMISSION_DENIED",
            HoardError::Cancelled(_) => "CANCELLED",
            HoardError::Stopping(_) => "DAEMON_STOPPING",
            HoardError::Internal(_) => "INTERNAL",
        }
    }

    /// `ErrorInfo.metadata`: the path, package, URL and range the error is about.
    pub fn metadata(&self) -> std::collections::HashMap<String, String> {
        let mut m = std::collections::HashMap::new();
        match self {
            HoardError::Shared(inner) => return inner.metadata(),
            HoardError::Io { path, .. }
            | HoardError::NoSpace { path, .. }
            | HoardError::IndexBroken { path, .. }
            | HoardError::Index { path, .. } => {
                m.insert("path".into(), path.display().to_string());
            }
            HoardError::InvalidSelector { selector, code, .. } => {
                m.insert("selector".into(), selector.clone());
                m.insert("npm_code".into(), code.to_string());
            }
            HoardError::Git { repo, .. } => {
                m.insert("url".into(), repo.clone());
            }
            HoardError::Auth { url, status, .. } => {
                m.insert("url".into(), url.clone());
                m.insert("http_status".into(), status.to_string());
            }
            HoardError::Integrity { package, url, .. }
            | HoardError::HostileTarball { package, url, .. } => {
                m.insert("package".into(), package.clone());
                m.insert("url".into(), url.clone());
            }
            HoardError::Unresolvable(list) => {
                if let Some(u) = list.first() {
                    m.insert("package".into(), u.package.clone());
                    m.insert("range".into(), u.range.clone());
                }
                let all: Vec<&str> = list.iter().map(|u| u.package.as_str()).collect();
                m.insert("packages".into(), all.join(","));
            }
            _ => {}
        }
        m
    }
}

/// The one place domain errors become statuses: the code, the message, and
/// `google.rpc.Status` details (`grpc-status-details-bin`): an `ErrorInfo` with the stable
/// reason and metadata, and for a resolution every dependency it could not have as a
/// `PreconditionFailure` violation (type: reason, subject: package, description: message).
impl From<HoardError> for Status {
    fn from(e: HoardError) -> Self {
        use tonic_types::{ErrorDetails, PreconditionViolation, StatusExt};
        let mut details = ErrorDetails::with_error_info(e.reason(), ERROR_DOMAIN, e.metadata());
        if let HoardError::Unresolvable(list) = &e {
            let violations = list
                .iter()
                .map(|u| PreconditionViolation::new(u.reason, &u.package, &u.message))
                .collect::<Vec<_>>();
            details.set_precondition_failure(violations);
        }
        Status::with_error_details(e.code(), e.to_string(), details)
    }
}
