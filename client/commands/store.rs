//! The store family: `hoard store status | verify | prune | path`, asked of the daemon (which
//! owns the store).
//!
//! Must not: open the store itself.

use anyhow::{Result, anyhow, bail};
use hoard_proto::v1;
use serde_json::json;

use crate::cli::{Cli, StoreAction};
use crate::connect::Connection;
use crate::context::connect;
use crate::render::{self, json_line};

/// Run one `hoard store` action.
pub async fn store(cli: &Cli, action: &StoreAction) -> Result<u8> {
    let mut conn = connect(cli).await?;
    match action {
        StoreAction::Path => {
            println!("{}", conn.hello.store_path);
            Ok(0)
        }
        StoreAction::Status => status(cli, &mut conn).await,
        StoreAction::Verify { dry_run, repair } => verify(cli, &mut conn, *dry_run, *repair).await,
        StoreAction::Prune { dry_run } => prune(cli, &mut conn, *dry_run).await,
    }
}

fn err(s: tonic::Status) -> anyhow::Error {
    anyhow!("{}", s.message())
}

/// `hoard store status`.
async fn status(cli: &Cli, conn: &mut Connection) -> Result<u8> {
    let s = conn
        .client
        .store_status(v1::StoreStatusRequest {})
        .await
        .map_err(err)?
        .into_inner();
    if cli.json {
        json_line(
            json!({"store": s.store_path, "bytes": s.bytes, "files": s.files, "packages": s.packages, "projects": s.projects, "metadata_bytes": s.metadata_bytes, "format_version": s.format_version, "trusted_files": s.trusted_files.unwrap_or(0)}),
        );
    } else {
        println!(
            "store: {} (format v{})\nsize: {} in {} files\npackages: {}\nprojects: {}\nmetadata cache: {}\nwatched whole: {} files",
            s.store_path,
            s.format_version,
            render::bytes(s.bytes),
            s.files,
            s.packages,
            s.projects,
            render::bytes(s.metadata_bytes),
            s.trusted_files.unwrap_or(0)
        );
    }
    Ok(0)
}

/// `hoard store verify`, with fsck's exit codes: 0 clean, 1 damage dealt with, 4 damage left.
async fn verify(cli: &Cli, conn: &mut Connection, dry_run: bool, repair: bool) -> Result<u8> {
    let repair = Some(repair);
    let mut stream = conn
        .client
        .store_verify(v1::StoreVerifyRequest { dry_run, repair })
        .await
        .map_err(err)?
        .into_inner();
    let mut bad = 0;
    let mut summary = None;
    while let Some(ev) = stream.message().await.map_err(err)? {
        use v1::store_verify_event::Event as E;
        match ev.event {
            Some(E::Waiting(why)) if !cli.json && !cli.quiet => eprintln!("store verify: {why}"),
            Some(E::Problem(p)) => {
                bad += 1;
                if cli.json {
                    json_line(
                        json!({"type": "problem", "path": p.path, "kind": p.kind, "packages": p.packages, "detail": p.detail}),
                    );
                } else {
                    eprintln!(
                        "{}: {} ({}){}",
                        p.kind,
                        p.path,
                        p.detail,
                        if p.packages.is_empty() {
                            String::new()
                        } else {
                            format!("; used by {}", p.packages.join(", "))
                        }
                    );
                }
            }
            Some(E::Summary(s)) => summary = Some(s),
            _ => {}
        }
    }
    let Some(s) = summary else {
        bail!("the daemon ended `store verify` without a summary; see `hoard daemon logs`");
    };
    let slots_damaged = s.slots_removed.unwrap_or(0);
    let damaged = bad > 0 || s.bad_files > 0 || s.packages_removed > 0 || slots_damaged > 0;
    let left = damaged && (dry_run || !s.repair_failures.is_empty());
    if cli.json {
        json_line(json!({"type": "summary", "files_checked": s.files_checked,
            "packages_checked": s.packages_checked, "bad_files": s.bad_files,
            "packages_removed": s.packages_removed, "millis": s.millis,
            "quarantine": s.quarantine, "stale_projects": s.stale_projects,
            "packages_repaired": s.packages_repaired, "repair_failures": s.repair_failures,
            "slots_checked": s.slots_checked, "slots_damaged": slots_damaged,
            "damaged": damaged, "repaired": damaged && !left}));
    } else {
        print_verify_summary(&s, damaged, dry_run);
    }
    Ok(match (damaged, left) {
        (false, _) => 0,
        (true, false) => 1,
        (true, true) => 4,
    })
}

fn print_verify_summary(s: &v1::StoreVerifySummary, damaged: bool, dry_run: bool) {
    println!(
        "checked {} files of {} packages in {} ms: {} bad files, {} packages use damaged or \
         missing files",
        s.files_checked, s.packages_checked, s.millis, s.bad_files, s.packages_removed
    );
    if let Some(n) = s.slots_checked.filter(|&n| n > 0) {
        let bad = s.slots_removed.unwrap_or(0);
        let what = if dry_run {
            "damaged"
        } else {
            "damaged and removed"
        };
        println!("checked {n} global-layout slots: {bad} {what}");
    }
    if !damaged {
        println!("the store is whole");
        return;
    }
    if dry_run {
        println!("nothing was changed (--dry-run); run `hoard store verify` to deal with it");
        return;
    }
    if let Some(q) = &s.quarantine {
        println!("damaged files were moved to {q}");
    }
    for p in &s.stale_projects {
        println!("marked stale (its next install relinks): {p}");
    }
    match s.packages_repaired {
        Some(n) => println!("downloaded again: {n} packages"),
        None => println!("the next install that needs those packages downloads them again"),
    }
    for f in &s.repair_failures {
        println!("could not download again: {f}");
    }
}

/// `hoard store prune`.
async fn prune(cli: &Cli, conn: &mut Connection, dry_run: bool) -> Result<u8> {
    let mut stream = conn
        .client
        .store_prune(v1::StorePruneRequest { dry_run })
        .await
        .map_err(err)?
        .into_inner();
    while let Some(ev) = stream.message().await.map_err(err)? {
        use v1::store_prune_event::Event as E;
        match ev.event {
            Some(E::DroppedProject(p)) => {
                if cli.json {
                    json_line(json!({"type": "dropped_project", "path": p}));
                } else if !cli.quiet {
                    eprintln!("dropped project {p} (its node_modules is gone)");
                }
            }
            Some(E::Summary(s)) => {
                if cli.json {
                    json_line(
                        json!({"type": "summary", "projects_dropped": s.projects_dropped, "projects_kept": s.projects_kept, "packages_removed": s.packages_removed, "files_removed": s.files_removed, "bytes_freed": s.bytes_freed, "millis": s.millis, "slots_removed": s.slots_removed}),
                    );
                } else {
                    println!(
                        "{}removed {} packages, {} global-layout slots and {} files, freed {} \
                         ({} projects kept, {} dropped)",
                        if dry_run { "would have " } else { "" },
                        s.packages_removed,
                        s.slots_removed.unwrap_or(0),
                        s.files_removed,
                        render::bytes(s.bytes_freed),
                        s.projects_kept,
                        s.projects_dropped
                    );
                }
            }
            _ => {}
        }
    }
    Ok(0)
}
