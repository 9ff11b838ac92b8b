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

    /// A supply-chain check refused the install (a registry signature, an advisory).
    #[error("{0}")]
    Refused(String),

    #[error("{0}")]
    Lockfile(String),

    #[error("{0}")]
    PermissionDenied(String),

    #[error("the install was cancelled ({0})")]
    Cancelled(String),

    #[error("{0}")]
    Internal(String),

    /// An error shared by every request that joined one coalesced operation.
    #[error("{0}")]
    Shared(std::sync::Arc<HoardError>),
}

pub type Result<T, E = HoardError> = std::result::Result<T, E>;

impl HoardError {
    /// An I/O error on `path`, with what was being done.
    /// A full disk (or quota) becomes `NoSpace`, which says so in plain words.
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        if matches!(
            source.raw_os_error(),
            Some(libc::ENOSPC) | Some(libc::EDQUOT)
        ) {
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
            HoardError::InvalidInput(_) | HoardError::Lockfile(_) => Code::InvalidArgument,
            HoardError::NotFound(_) => Code::NotFound,
            HoardError::Auth { .. } => Code::Unauthenticated,
            HoardError::PermissionDenied(_) => Code::PermissionDenied,
            HoardError::Offline(_) | HoardError::Registry(_) => Code::Unavailable,
            HoardError::Integrity { .. } | HoardError::HostileTarball { .. } => Code::DataLoss,
            HoardError::Resolve(_) | HoardError::Refused(_) => Code::FailedPrecondition,
            HoardError::Cancelled(_) => Code::Cancelled,
            HoardError::NoSpace { .. } => Code::ResourceExhausted,
            HoardError::IndexBroken { .. } => Code::Unavailable,
            HoardError::Io { .. } | HoardError::Index { .. } | HoardError::Internal(_) => {
                Code::Internal
            }
        }
    }
}

impl From<HoardError> for Status {
    fn from(e: HoardError) -> Self {
        Status::new(e.code(), e.to_string())
    }
}
