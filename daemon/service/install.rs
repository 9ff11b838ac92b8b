//! The Install RPC's body, as an operation: queued (saying what it waits for) → running →
//! progress → one `finished` event that always comes and tells the truth (OK, FAILED or
//! CANCELLED, the summary or the error, what became of a cancel), then the stream's status as
//! before. Also what comes after an install: remembering it for work ahead, the Watch and
//! dashboard events, giving memory back once the daemon is idle.
//!
//! Must not: install (the installer does), or decide the point of no return (the gate does).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hoard_proto::v1::{
    InstallEvent, InstallRequest, InstallSummary, OperationError, OperationFinished, Outcome,
    install_event, watch_event,
};
use tokio::sync::mpsc;
use tonic::Status;
use tracing::{Instrument, info, warn};

use super::{Daemon, InFlight, failpoint_install_hold};
use crate::error::HoardError;
use crate::operations::{Op, cancel_note};

type Tx = mpsc::Sender<Result<InstallEvent, Status>>;

/// Run the install of `r` as operation `op`, sending its events to `client`.
pub(super) fn spawn(
    d: Arc<Daemon>,
    r: InstallRequest,
    op: Arc<Op>,
    client: Tx,
    guard: InFlight,
    span: tracing::Span,
) {
    tokio::spawn(
        async move {
            let _guard = guard;
            let key = op.project.clone();
            let (tx, forwarded) = tee(client, d.live.clone(), key.clone(), op.clone());
            let result = run(&d, r, &op, &tx, &key).await;
            let end = conclude(&d, &op, &tx, result).await;
            let (kind, message) = (watch_event::Kind::InstallFinished, end.message.clone());
            d.emit_watch(&key, kind, message, Some(&op.id), Some(end.outcome));
            d.operations.done(&op);
            // The dashboard hears "finished" after every event the client got.
            drop(tx);
            let _ = forwarded.await;
            // The client has its answer: free what the install kept for now.
            tokio::task::spawn_blocking(crate::memory::free_deferred);
            d.emit_live(&key, kind, &end.message);
            if end.worked {
                give_back_when_idle(d.clone());
            }
        }
        .instrument(span),
    );
}

/// Once the daemon has been idle for `memory::IDLE` after an install (no request in flight,
/// none seen meanwhile), hand its free memory back to the OS, or keep it as a warm reserve
/// (`memory::reserve_bytes`) until it has been idle for `memory::LONG_IDLE`. Installs that
/// follow each other closely keep their pages: faulting them back in costs a warm resolve
/// about an eighth of its time.
fn give_back_when_idle(d: Arc<Daemon>) {
    tokio::spawn(async move {
        let idle = |for_: std::time::Duration| {
            d.in_flight.load(std::sync::atomic::Ordering::SeqCst) == 0 && d.idle_for() >= for_
        };
        tokio::time::sleep(crate::memory::IDLE).await;
        // This install's own guard is dropped by now; any other request counts as activity.
        if !idle(crate::memory::IDLE) {
            return;
        }
        let reserve = crate::memory::reserve_bytes();
        let purged =
            tokio::task::spawn_blocking(move || crate::memory::give_back_unless_within(reserve))
                .await
                .unwrap_or(true);
        if purged {
            return;
        }
        tokio::time::sleep(crate::memory::LONG_IDLE - crate::memory::IDLE).await;
        if idle(crate::memory::LONG_IDLE) {
            let _ = tokio::task::spawn_blocking(crate::memory::give_back).await;
        }
    });
}

/// Wait for the project and for store maintenance (saying so), then install.
async fn run(
    d: &Arc<Daemon>,
    r: InstallRequest,
    op: &Arc<Op>,
    tx: &Tx,
    key: &Path,
) -> Result<InstallSummary, HoardError> {
    let stopped = || {
        if d.shutdown.is_cancelled() {
            HoardError::Stopping("the daemon is stopping; run the install again".into())
        } else {
            HoardError::Cancelled("while queued".into())
        }
    };
    let lock = d.project_lock(key);
    let _ = tx.send(Ok(op.queued(d.operations.ahead_of(op)))).await;
    let _project = tokio::select! {
        g = lock.lock() => g,
        _ = op.token.cancelled() => return Err(stopped()),
    };
    let _shared = match d.upkeep.installs.try_read() {
        Ok(g) => g,
        Err(_) => {
            let _ = tx
                .send(Ok(op.queued(vec!["store-maintenance".into()])))
                .await;
            tokio::select! {
                g = d.upkeep.installs.read() => g,
                _ = op.token.cancelled() => return Err(stopped()),
            }
        }
    };
    let _ = tx.send(Ok(op.running())).await;
    let started = watch_event::Kind::InstallStarted;
    d.emit_watch(key, started, String::new(), Some(&op.id), None);
    d.emit_live(key, watch_event::Kind::InstallStarted, "");
    info!(project = %key.display(), operation = %op.id, "install began (project locked)");
    if let Some(hold) = failpoint_install_hold() {
        tokio::time::sleep(hold).await;
    }
    let asked = r.clone();
    let result = d
        .installer
        .run(r, tx.clone(), op.token.clone(), op.gate.clone())
        .await;
    let result = match result {
        Err(HoardError::Cancelled(_)) if d.shutdown.is_cancelled() => Err(stopped()),
        other => other,
    };
    if let (Ok(_), Some(a)) = (&result, d.ahead.get())
        && asked.package_lock_only != Some(true)
    {
        let (a, dir) = (a.clone(), key.to_path_buf());
        let _ = tokio::task::spawn_blocking(move || a.remember(&dir, &asked)).await;
    }
    // Logged before the client hears the outcome, while the project lock is held.
    info!(project = %key.display(), "install ended (project lock released next)");
    result
}

fn error_of(e: &HoardError) -> OperationError {
    OperationError {
        code: e.code() as i32,
        reason: e.reason().into(),
        message: e.to_string(),
        metadata: e.metadata(),
    }
}

/// How an install ended, for Watch and the dashboard.
struct Ended {
    /// "up to date", "N added, M removed" or "failed: …".
    message: String,
    outcome: Outcome,
    /// Something was built by this request (memory is given back after).
    worked: bool,
}

/// Send the outcome: the summary (as before) or the error status, preceded by the `finished`
/// event.
async fn conclude(
    d: &Arc<Daemon>,
    op: &Arc<Op>,
    tx: &Tx,
    result: Result<InstallSummary, HoardError>,
) -> Ended {
    let asked = op.cancel_asked();
    let finished = |outcome: Outcome, summary, error| OperationFinished {
        operation_id: op.id.clone(),
        outcome: outcome as i32,
        summary,
        error,
        cancel: cancel_note(&op.gate, asked, outcome),
    };
    match result {
        Ok(summary) => {
            let m = if summary.up_to_date {
                "up to date".to_string()
            } else {
                format!("{} added, {} removed", summary.added, summary.removed)
            };
            // A swapped-in install was built ahead of time: this request allocated nothing
            // worth trimming, and the trim would compete with the client for the CPU.
            let worked = !summary.up_to_date && summary.prepared != Some(true);
            let ev = InstallEvent {
                event: Some(install_event::Event::Summary(summary.clone())),
            };
            let _ = tx.send(Ok(ev)).await;
            let f = finished(Outcome::Ok, Some(summary), None);
            let _ = tx.send(Ok(op.finish(f))).await;
            Ended {
                message: m,
                outcome: Outcome::Ok,
                worked,
            }
        }
        Err(e) => {
            let outcome = match &e {
                HoardError::Cancelled(_) | HoardError::Stopping(_) => Outcome::Cancelled,
                _ => Outcome::Failed,
            };
            warn!(error = %e, operation = %op.id, "install did not complete");
            let m = format!("failed: {e}");
            let f = finished(outcome, None, Some(error_of(&e)));
            let _ = tx.send(Ok(op.finish(f))).await;
            let status = if e.broken_index().is_some() {
                d.index_broken(&e);
                broken_index_status(&e)
            } else {
                Status::from(e)
            };
            let _ = tx.send(Err(status)).await;
            Ended {
                message: m,
                outcome,
                worked: false,
            }
        }
    }
}

/// The store index was found damaged: it is set aside and the daemon restarts; the client
/// starts a new daemon and sends the install again.
fn broken_index_status(e: &HoardError) -> Status {
    let path = e.broken_index().map(|p| p.display().to_string());
    let mut status = Status::new(
        e.code(),
        format!(
            "the store index `{}` is damaged; it was set aside and the daemon restarts with a \
             new one",
            path.unwrap_or_default()
        ),
    );
    status
        .metadata_mut()
        .insert(hoard_proto::RETRY_METADATA_KEY, "1".parse().expect("ascii"));
    status
}

/// The install's event sender: each event is kept by the operation (for attached clients,
/// with named progress rate-limited), copied to the dashboard's live channel while a browser
/// listens, and sent to the client, in order. The handle ends once every sender is dropped
/// and every event is forwarded; a client that went away stops only its own copy.
fn tee(
    client: Tx,
    live: crate::ui::LiveSender,
    project: PathBuf,
    op: Arc<Op>,
) -> (Tx, tokio::task::JoinHandle<()>) {
    let (tx, mut rx): (Tx, _) = mpsc::channel(256);
    let handle = tokio::spawn(async move {
        let mut client = Some(client);
        while let Some(item) = rx.recv().await {
            if let Ok(ev) = &item {
                if !op.observe(ev) {
                    continue;
                }
                let operational = matches!(
                    ev.event,
                    Some(install_event::Event::Operation(_) | install_event::Event::Finished(_))
                );
                if !operational && crate::ui::listened(&live) {
                    let _ = live.send(crate::ui::LiveEvent {
                        project: project.clone(),
                        kind: crate::ui::LiveKind::Event(Box::new(ev.clone())),
                    });
                }
            }
            if let Some(c) = &client
                && c.send(item).await.is_err()
            {
                client = None;
            }
        }
    });
    (tx, handle)
}
