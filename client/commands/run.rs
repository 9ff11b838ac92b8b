//! The run family: `run` (a package.json script), `exec` (a bin from node_modules/.bin) and
//! `dlx` (a package's bin, installed into a cache folder of the store's, not the project).
//!
//! Must not: change the project.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::install::{request, send};
use crate::cli::{Cli, InstallFlags};
use crate::context::store_dir;
use crate::scripts;

/// `hoard run <script> [args]`.
pub fn run_script(project: &Path, script: &str, args: &[String]) -> Result<u8> {
    scripts::run_named(project, script, args)?;
    Ok(0)
}

/// `hoard exec <bin> [args]`: the bin's exit code.
pub fn exec(project: &Path, bin: &str, args: &[String]) -> Result<u8> {
    scripts::exec_bin(project, bin, args)
}

/// `hoard dlx pkg[@range] args`: install into a cache folder keyed by the spec, then run its bin.
pub async fn dlx(cli: &Cli, package: &str, args: &[String]) -> Result<u8> {
    let store = store_dir(cli)?;
    let key = blake3::hash(package.as_bytes()).to_hex();
    let dir = store.join("dlx").join(&key[..16]);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating `{}`", dir.display()))?;
    let pj = dir.join("package.json");
    if !pj.exists() {
        std::fs::write(&pj, b"{\"name\":\"hoard-dlx\",\"private\":true}\n")
            .with_context(|| format!("writing `{}`", pj.display()))?;
        let mut req = request(&dir, &InstallFlags::default())?;
        req.add = vec![package.to_string()];
        if let Err(e) = send(cli, req, true).await {
            let _ = std::fs::remove_file(&pj);
            return Err(e);
        }
    }
    let name = match package.strip_prefix('@') {
        Some(r) => format!("@{}", r.split('@').next().unwrap_or(r)),
        None => package.split('@').next().unwrap_or(package).to_string(),
    };
    let bin_dir = dir.join("node_modules/.bin");
    let base = name.rsplit('/').next().unwrap_or(&name).to_string();
    let bin = if bin_dir.join(&base).exists() {
        base
    } else {
        // The package's only bin, whatever its name.
        let bins: Vec<String> = std::fs::read_dir(&bin_dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        match bins.as_slice() {
            [one] => one.clone(),
            [] => bail!("{package} has no bin to run"),
            many => bail!(
                "{package} has several bins ({}); run one with `hoard exec -C {} <bin>`",
                many.join(", "),
                dir.display()
            ),
        }
    };
    let code = std::process::Command::new(crate::platform::bin_file(&bin_dir, &bin))
        .args(args)
        .env("PATH", scripts::path_with_bins(&dir, &dir))
        .envs(scripts::node_path(&dir))
        .status()
        .with_context(|| format!("running `{bin}`"))?;
    Ok(scripts::exit_code(code))
}
