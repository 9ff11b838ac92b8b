//! `hoard pack`: the package in this folder as the tarball npm would publish. The client runs
//! its `prepack` and `prepare` scripts (then `postpack`), as npm does, unless `--dry-run` or
//! `ignore-scripts`; the daemon decides the files and writes the tarball. `--json` prints
//! `npm pack --json`'s array.

use std::path::Path;

use anyhow::{Result, anyhow};
use hoard_proto::v1;
use serde_json::json;

use crate::cli::Cli;

use crate::context::{connect, project_dir};
use crate::scripts::{self, ScriptRun};

/// Run the package's `event` script (for `npm_command`), if it has one and scripts are not
/// ignored.
pub fn lifecycle(dir: &Path, event: &str, quiet_stdout: bool, npm_command: &str) -> Result<()> {
    let pj = dir.join("package.json");
    let pkg: serde_json::Value = std::fs::read(&pj)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| anyhow!("cannot read `{}`", pj.display()))?;
    if scripts::Settings::load(dir).ignore_scripts {
        return Ok(());
    }
    let Some(cmd) = pkg
        .pointer(&format!("/scripts/{event}"))
        .and_then(|c| c.as_str())
    else {
        return Ok(());
    };
    let field = |k: &str| pkg.get(k).and_then(|v| v.as_str()).unwrap_or("");
    scripts::run(&ScriptRun {
        dir,
        root: dir,
        package: field("name"),
        version: field("version"),
        event,
        command: cmd,
        npm_command,
        args: &[],
        quiet_stdout,
    })
}

pub async fn pack(cli: &Cli, dry_run: bool, destination: Option<&Path>) -> Result<u8> {
    let dir = project_dir(cli)?;
    if !dry_run {
        lifecycle(&dir, "prepack", cli.json, "pack")?;
        lifecycle(&dir, "prepare", cli.json, "pack")?;
    }
    let dest = match destination {
        Some(d) => std::path::absolute(d)?,
        None => std::env::current_dir()?,
    };
    let mut conn = connect(cli).await?;
    let r = conn
        .client
        .pack(v1::PackRequest {
            package_dir: dir.display().to_string(),
            dry_run,
            destination: Some(dest.display().to_string()),
        })
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    if !dry_run {
        lifecycle(&dir, "postpack", cli.json, "pack")?;
    }
    let mut files: Vec<&v1::PackedFile> = r.files.iter().collect();
    files.sort_by(|a, b| (a.path.to_lowercase(), &a.path).cmp(&(b.path.to_lowercase(), &b.path)));
    if cli.json {
        let out = json!([{
            "id": format!("{}@{}", r.name, r.version),
            "name": r.name,
            "version": r.version,
            "size": r.size,
            "unpackedSize": r.unpacked_size,
            "shasum": r.shasum,
            "integrity": r.integrity,
            "filename": r.filename,
            "files": files.iter().map(|f| json!({"path": f.path, "size": f.size, "mode": f.mode})).collect::<Vec<_>>(),
            "entryCount": r.files.len(),
            "bundled": [],
        }]);
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    eprintln!("package: {}@{}", r.name, r.version);
    eprintln!("Tarball Contents");
    for f in &files {
        eprintln!("{:>8} {}", human(f.size), f.path);
    }
    eprintln!("Tarball Details");
    eprintln!("name:          {}", r.name);
    eprintln!("version:       {}", r.version);
    eprintln!("filename:      {}", r.filename);
    eprintln!("package size:  {}", human(r.size));
    eprintln!("unpacked size: {}", human(r.unpacked_size));
    eprintln!("shasum:        {}", r.shasum);
    eprintln!("integrity:     {}", r.integrity);
    eprintln!("total files:   {}", r.files.len());
    println!("{}", r.filename);
    Ok(0)
}

/// npm's sizes: bytes below 1 kB, then kB and MB with one decimal.
fn human(n: u64) -> String {
    match n {
        0..1000 => format!("{n}B"),
        1000..1_000_000 => format!("{:.1}kB", n as f64 / 1000.0),
        _ => format!("{:.1}MB", n as f64 / 1_000_000.0),
    }
}
