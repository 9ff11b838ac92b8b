//! `store verify` and `store prune` as the service runs them. Verify takes the store for itself
//! (installs wait, and the client hears that verify is waiting and for what), marks the projects
//! that link a damaged package stale, and with `repair` downloads those packages again at once.
//! Prune runs beside installs (the store protects what they use) and never waits for them; one
//! upkeep operation runs at a time.
//!
//! Must not: decide what is damaged or unused (the store does), or change a project beyond
//! marking it stale.

use std::sync::Arc;
use std::time::Instant;

use hoard_proto::v1::{
    PhaseProgress, StoreProblem, StorePruneEvent, StorePruneSummary, StoreVerifyEvent,
    StoreVerifySummary, store_prune_event, store_verify_event,
};
use tokio::sync::{Mutex, RwLock, mpsc};
use tonic::Status;
use tracing::{info, warn};

use crate::error::HoardError;
use crate::registry::http::Http;
use crate::store::Store;
use crate::store::index::DroppedPackage;
use crate::store::verify::VerifyReport;

type Tx<T> = mpsc::Sender<Result<T, Status>>;

/// What upkeep needs of the daemon.
pub struct Upkeep {
    pub store: Arc<Store>,
    pub http: Arc<Http>,
    /// Installs hold it shared; verify exclusively.
    pub installs: Arc<RwLock<()>>,
    /// One upkeep operation at a time.
    pub one_at_a_time: Arc<Mutex<()>>,
}

impl Upkeep {
    /// Run `store verify`, streaming its events to `tx`.
    pub async fn verify(&self, dry_run: bool, repair: bool, tx: Tx<StoreVerifyEvent>) {
        let send = |e: store_verify_event::Event| Ok(StoreVerifyEvent { event: Some(e) });
        let _one = self.one_at_a_time.lock().await;
        let _excl = match self.installs.try_write() {
            Ok(g) => g,
            Err(_) => {
                let why = "waiting for the installs in flight to finish".to_string();
                let _ = tx.send(send(store_verify_event::Event::Waiting(why))).await;
                self.installs.write().await
            }
        };
        let started = Instant::now();
        let report = self.verify_blocking(dry_run, tx.clone()).await;
        let msg = match report {
            Ok(report) => {
                let mut summary = summary_of(&report, started);
                if !dry_run {
                    summary.stale_projects = mark_stale(&report.stale_projects);
                }
                if repair && !dry_run {
                    self.repair(&report.dropped, &mut summary).await;
                }
                Ok(StoreVerifyEvent {
                    event: Some(store_verify_event::Event::Summary(summary)),
                })
            }
            Err(e) => Err(Status::from(e)),
        };
        let _ = tx.send(msg).await;
    }

    async fn verify_blocking(
        &self,
        dry_run: bool,
        tx: Tx<StoreVerifyEvent>,
    ) -> crate::error::Result<VerifyReport> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let send = |e: store_verify_event::Event| {
                let _ = tx.blocking_send(Ok(StoreVerifyEvent { event: Some(e) }));
            };
            let mut report = store.verify(
                dry_run,
                |done, total| {
                    send(store_verify_event::Event::Progress(PhaseProgress {
                        phase: 0,
                        done,
                        total,
                        bytes: 0,
                        finished: done == total,
                        package: None,
                    }))
                },
                |path, packages, kind, detail| {
                    send(store_verify_event::Event::Problem(StoreProblem {
                        path,
                        packages,
                        kind: kind.into(),
                        detail,
                    }))
                },
            )?;
            let slots = check_slots(&store, &report.bad_inodes, dry_run, |p| {
                send(store_verify_event::Event::Problem(p))
            })?;
            report.slots_checked = slots.checked;
            report.slots_damaged = slots.damaged.len() as u64;
            for p in slots.stale {
                if !report.stale_projects.contains(&p) {
                    report.stale_projects.push(p);
                }
            }
            Ok(report)
        })
        .await
        .map_err(HoardError::from)?
    }

    /// Download every dropped package again (public registries; a package that needs a token
    /// comes back with the next install of its project, which has the project's .npmrc).
    async fn repair(&self, dropped: &[DroppedPackage], summary: &mut StoreVerifySummary) {
        let mut repaired = 0;
        for d in dropped {
            let Some(t) = d.tarball() else { continue };
            match self.store.refetch(&t, &self.http).await {
                Ok(_) => repaired += 1,
                Err(e) => summary.repair_failures.push(format!("{}: {e}", d.pkg_id)),
            }
        }
        summary.packages_repaired = Some(repaired);
    }

    /// Run `store prune`, streaming its events to `tx`.
    pub async fn prune(&self, dry_run: bool, tx: Tx<StorePruneEvent>) {
        let _one = self.one_at_a_time.lock().await;
        let started = Instant::now();
        let store = self.store.clone();
        let tx2 = tx.clone();
        let r = tokio::task::spawn_blocking(move || {
            let roots = slot_roots(&store)?;
            store.prune(dry_run, roots, |p| {
                let _ = tx2.blocking_send(Ok(StorePruneEvent {
                    event: Some(store_prune_event::Event::DroppedProject(p)),
                }));
            })
        })
        .await;
        let msg = match r {
            Ok(Ok(rep)) => Ok(StorePruneEvent {
                event: Some(store_prune_event::Event::Summary(StorePruneSummary {
                    projects_dropped: rep.projects_dropped,
                    packages_removed: rep.packages_removed,
                    files_removed: rep.files_removed,
                    bytes_freed: rep.bytes_freed,
                    millis: started.elapsed().as_millis() as u64,
                    projects_kept: rep.projects_kept,
                    files_kept_linked: Some(rep.files_kept_linked),
                    slots_removed: Some(rep.slots_removed),
                })),
            }),
            Ok(Err(e)) => Err(Status::from(e)),
            Err(e) => Err(Status::from(HoardError::from(e))),
        };
        let _ = tx.send(msg).await;
    }
}

fn summary_of(r: &VerifyReport, started: Instant) -> StoreVerifySummary {
    StoreVerifySummary {
        files_checked: r.files_checked,
        packages_checked: r.packages_checked,
        bad_files: r.bad_files,
        packages_removed: r.packages_removed,
        millis: started.elapsed().as_millis() as u64,
        quarantine: r.quarantine.as_ref().map(|q| q.display().to_string()),
        stale_projects: vec![],
        packages_repaired: None,
        repair_failures: vec![],
        slots_checked: Some(r.slots_checked),
        slots_removed: Some(r.slots_damaged),
    }
}

/// Every slot a registered project links (the roots prune keeps).
fn slot_roots(store: &Store) -> crate::error::Result<Vec<String>> {
    Ok((store.index.projects()?.iter())
        .flat_map(|p| crate::linker::state::slots_linked(std::path::Path::new(p), store))
        .collect())
}

/// What checking the global-layout slots found.
struct SlotCheck {
    checked: u64,
    damaged: Vec<String>,
    /// Registered projects that link a damaged slot.
    stale: Vec<String>,
}

/// Check every slot (after the content files: `bad_inodes` are the damaged ones); unless a dry
/// run, remove the damaged slots. Reports each through `on_problem`. Blocking.
fn check_slots(
    store: &Store,
    bad_inodes: &std::collections::HashSet<u64>,
    dry_run: bool,
    mut on_problem: impl FnMut(StoreProblem),
) -> crate::error::Result<SlotCheck> {
    let names = store.slot_names()?;
    let mut damaged = Vec::new();
    for name in &names {
        if let Some(detail) = store.slot_problem(name, bad_inodes) {
            on_problem(StoreProblem {
                path: store.layout.virtual_root.join(name).display().to_string(),
                packages: vec![],
                kind: "slot-damaged".into(),
                detail,
            });
            damaged.push(name.clone());
        }
    }
    let mut stale = Vec::new();
    if !damaged.is_empty() {
        for p in store.index.projects()? {
            let path = std::path::Path::new(&p);
            let reach = store.slot_closure(crate::linker::state::slots_linked(path, store));
            if damaged.iter().any(|d| reach.contains(d)) {
                stale.push(p);
            }
        }
    }
    if !dry_run {
        for name in &damaged {
            store.remove_slot(name)?;
        }
    }
    Ok(SlotCheck {
        checked: names.len() as u64,
        damaged,
        stale,
    })
}

/// At start-up, before any install: `Store::check_unsynced` for this boot, then the global-layout
/// slots that hard-link a damaged file; the projects that link what was dropped are marked
/// stale, and the next client hears which packages come again. Blocking.
pub fn check_after_restart(store: &Store) -> crate::error::Result<()> {
    let boot = crate::platform::boot_id();
    let check = store.check_unsynced(boot.as_deref())?;
    if check.packages_checked == 0 {
        return Ok(());
    }
    info!(
        packages = check.packages_checked,
        files = check.files_checked,
        dropped = check.dropped.len(),
        "checked the files of packages not yet synced to disk when the machine stopped"
    );
    if check.dropped.is_empty() {
        return Ok(());
    }
    let mut stale = check.stale_projects;
    if !check.bad_inodes.is_empty() {
        for p in check_slots(store, &check.bad_inodes, false, |_| {})?.stale {
            if !stale.contains(&p) {
                stale.push(p);
            }
        }
    }
    let marked = mark_stale(&stale);
    let shown: Vec<&str> = check.dropped.iter().take(5).map(String::as_str).collect();
    let more = check.dropped.len().saturating_sub(shown.len());
    let mut text = format!(
        "the machine stopped before {} package(s) written just before were safely on disk; \
         {} of them had damaged files and are downloaded again as installs need them: {}{}",
        check.packages_checked,
        check.dropped.len(),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
    if let Some(q) = &check.quarantine {
        text.push_str(&format!(
            "; the damaged files were kept in `{}`",
            q.display()
        ));
    }
    if !marked.is_empty() {
        text.push_str(&format!(
            "; these projects are installed again in full by their next install: {}",
            marked.join(", ")
        ));
    }
    warn!("{text}");
    store.add_notice("store-unsynced-damaged", text);
    Ok(())
}

/// Mark projects stale (their next install relinks everything); returns those marked.
fn mark_stale(projects: &[String]) -> Vec<String> {
    let mut marked = Vec::new();
    for p in projects {
        match crate::linker::state::mark_stale(std::path::Path::new(p)) {
            Ok(()) => {
                info!(project = %p, "marked stale: it links a damaged package");
                marked.push(p.clone());
            }
            Err(e) => warn!(project = %p, error = %e, "could not mark the project stale"),
        }
    }
    marked
}
