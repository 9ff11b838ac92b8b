//! The install-scripts family: `install-scripts ls|approve|deny|prune` (also `approve-scripts`
//! and `deny-scripts`, as npm names them) and `approve-builds`, the one-by-one picker over the
//! same RPC. Output follows npm's `install-scripts` command.
//!
//! Must not: edit package.json itself (the daemon writes what npm would write).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, anyhow};
use hoard_proto::v1::{self, InstallScriptsAction as Action, ScriptVerdict};
use serde_json::json;

use crate::cli::{ApproveArgs, Cli, DenyArgs, ScriptsAction};
use crate::context::{connect, project_dir, request_env};
use crate::render::json_line;

/// One InstallScripts call.
async fn call(
    cli: &Cli,
    action: Action,
    packages: &[String],
    all: bool,
    pin: Option<bool>,
    dry_run: bool,
) -> Result<v1::InstallScriptsResponse> {
    let mut conn = connect(cli).await?;
    let r = conn
        .client
        .install_scripts(v1::InstallScriptsRequest {
            project_dir: project_dir(cli)?.display().to_string(),
            action: action as i32,
            packages: packages.to_vec(),
            all,
            pin,
            dry_run,
            env: request_env(),
        })
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    for w in &r.warnings {
        if cli.json {
            json_line(json!({"type": "warning", "message": w}));
        } else {
            eprintln!("hoard: warning: {w}");
        }
    }
    Ok(r)
}

/// `hoard install-scripts <action>`.
pub async fn install_scripts(cli: &Cli, action: &ScriptsAction) -> Result<u8> {
    match action {
        ScriptsAction::Ls => ls(cli).await,
        ScriptsAction::Approve(a) => approve(cli, a).await,
        ScriptsAction::Deny(d) => deny(cli, d).await,
        ScriptsAction::Prune { dry_run } => {
            let r = call(cli, Action::Prune, &[], false, None, *dry_run).await?;
            print_changes(cli, &r, if *dry_run { "Would prune" } else { "Pruned" });
            if r.changes.is_empty() && !cli.json {
                println!("No stale allowScripts entries.");
            }
            Ok(0)
        }
    }
}

pub async fn approve(cli: &Cli, a: &ApproveArgs) -> Result<u8> {
    let pin = a.no_allow_scripts_pin.then_some(false);
    let r = call(cli, Action::Approve, &a.packages, a.all, pin, a.dry_run).await?;
    print_changes(cli, &r, "Approved");
    if a.all && r.changes.is_empty() && !cli.json {
        println!("No packages with unreviewed install scripts.");
    }
    Ok(0)
}

pub async fn deny(cli: &Cli, d: &DenyArgs) -> Result<u8> {
    let r = call(cli, Action::Deny, &d.packages, d.all, None, d.dry_run).await?;
    print_changes(cli, &r, "Denied");
    if d.all && r.changes.is_empty() && !cli.json {
        println!("No packages with unreviewed install scripts.");
    }
    Ok(0)
}

async fn ls(cli: &Cli) -> Result<u8> {
    let r = call(cli, Action::Ls, &[], false, None, false).await?;
    if cli.json {
        for p in &r.packages {
            let verdict = match ScriptVerdict::try_from(p.verdict) {
                Ok(ScriptVerdict::Allowed) => "allowed",
                Ok(ScriptVerdict::Denied) => "denied",
                _ => "unreviewed",
            };
            let scripts: serde_json::Map<String, serde_json::Value> = p
                .scripts
                .iter()
                .map(|s| (s.event.clone(), json!(s.command)))
                .collect();
            json_line(
                json!({"type": "package", "name": p.name, "version": p.version,
                             "location": p.location, "verdict": verdict, "scripts": scripts}),
            );
        }
        return Ok(0);
    }
    let pending = unreviewed(&r);
    if pending.is_empty() {
        println!("No packages with unreviewed install scripts.");
        return Ok(0);
    }
    println!(
        "{} {} install scripts not yet covered by allowScripts:",
        pending.len(),
        if pending.len() == 1 {
            "package has"
        } else {
            "packages have"
        }
    );
    for p in &pending {
        println!("  {}@{} ({})", p.name, p.version, events(p));
    }
    println!(
        "\nRun `hoard install-scripts approve <pkg>` to allow, or `hoard install-scripts deny \
         <pkg>` to deny."
    );
    Ok(0)
}

/// Unreviewed packages, one per name@version.
fn unreviewed(r: &v1::InstallScriptsResponse) -> Vec<&v1::ScriptPackage> {
    let mut out: Vec<&v1::ScriptPackage> = r
        .packages
        .iter()
        .filter(|p| p.verdict == ScriptVerdict::Unreviewed as i32)
        .collect();
    out.dedup_by(|a, b| a.name == b.name && a.version == b.version);
    out
}

fn events(p: &v1::ScriptPackage) -> String {
    p.scripts
        .iter()
        .map(|s| format!("{}: {}", s.event, s.command))
        .collect::<Vec<_>>()
        .join("; ")
}

/// npm's report: `Approved <name>:` then `  <change> <key>` lines, per package.
fn print_changes(cli: &Cli, r: &v1::InstallScriptsResponse, verb: &str) {
    if cli.json {
        for c in &r.changes {
            json_line(
                json!({"type": "change", "package": c.package, "key": c.key, "change": c.change,
                             "written": r.written}),
            );
        }
        return;
    }
    let mut last = "";
    for c in &r.changes {
        if c.package != last {
            println!("{verb} {}:", c.package);
            last = &c.package;
        }
        println!("  {} {}", c.change, c.key);
    }
}

/// `hoard approve-builds`: each unreviewed package with its scripts, then a question; the
/// answers become one approve and one deny. Answers come from the terminal, or one per line
/// from a pipe.
pub async fn approve_builds(cli: &Cli) -> Result<u8> {
    let r = call(cli, Action::Ls, &[], false, None, false).await?;
    let pending = unreviewed(&r);
    if pending.is_empty() {
        println!("No packages with unreviewed install scripts.");
        return Ok(0);
    }
    let tty = std::io::stdin().is_terminal();
    let mut lines = std::io::stdin().lock().lines();
    let (mut yes, mut no) = (Vec::new(), Vec::new());
    for p in &pending {
        println!("\n{}@{}  ({})", p.name, p.version, p.location);
        for s in &p.scripts {
            println!("  {}: {}", s.event, s.command);
        }
        print!("Allow its install scripts? [y]es / [n]o, decide later / [d]eny / [q]uit: ");
        std::io::stdout().flush()?;
        let Some(answer) = lines.next().transpose()? else {
            if !tty {
                println!();
            }
            break;
        };
        match answer.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => yes.push(p.name.clone()),
            "d" | "deny" => no.push(p.name.clone()),
            "q" | "quit" => break,
            _ => {}
        }
    }
    println!();
    if !yes.is_empty() {
        let r = call(cli, Action::Approve, &yes, false, None, false).await?;
        print_changes(cli, &r, "Approved");
    }
    if !no.is_empty() {
        let r = call(cli, Action::Deny, &no, false, None, false).await?;
        print_changes(cli, &r, "Denied");
    }
    if yes.is_empty() && no.is_empty() {
        println!("Nothing changed.");
    } else {
        println!("Run `hoard install` to run the approved scripts.");
    }
    Ok(0)
}
