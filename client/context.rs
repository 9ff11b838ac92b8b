//! What every command needs: the store and project directories, a connection to the daemon
//! (started if need be), the environment forwarded for npm's settings, and the error that maps
//! to exit code 3.
//!
//! Must not: know any one command.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};

use crate::cli::Cli;
use crate::connect::{self, ConnectError};

/// Exit code 3 for a daemon we cannot reach.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Unreachable(pub ConnectError);

pub fn store_dir(cli: &Cli) -> Result<PathBuf> {
    let s = match &cli.store_dir {
        Some(s) => s.clone(),
        None => hoard_proto::default_store_dir().ok_or_else(|| {
            anyhow!("no store directory: set HOME or HOARD_STORE_DIR, or pass --store-dir")
        })?,
    };
    // Private from the start: private packages and their metadata live there.
    crate::platform::create_private_dir(&s)
        .with_context(|| format!("creating the store directory `{}`", s.display()))?;
    std::fs::canonicalize(&s).with_context(|| format!("resolving `{}`", s.display()))
}

pub fn project_dir(cli: &Cli) -> Result<PathBuf> {
    let d = match &cli.dir {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("reading the current directory")?,
    };
    std::fs::canonicalize(&d).with_context(|| format!("project directory `{}`", d.display()))
}

pub async fn connect(cli: &Cli) -> Result<connect::Connection> {
    let store = store_dir(cli)?;
    connect::connect(&store, cli.verbose)
        .await
        .map_err(|e| Unreachable(e).into())
}

/// The environment the daemon reads npm configuration from.
pub fn request_env() -> HashMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| {
            let l = k.to_ascii_lowercase();
            l.starts_with("npm_config_")
                || matches!(k.as_str(), "HOME" | "PATH")
                || k.contains("TOKEN")
                || k.contains("NPM")
                // The remote cache's credentials (`hoard-remote-cache=s3://…`).
                || k.starts_with("AWS_")
                // The git dependencies being prepared further up (a nested install).
                || k == "_HOARD_NO_PREPARE_"
        })
        .collect()
}
