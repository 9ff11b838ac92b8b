//! Live installs for the dashboard: the events every install sends its client, copied to a
//! broadcast channel by the service, and served to browsers as Server-Sent Events (one JSON
//! object per event, with the field names of the CLI's `--json` lines plus `project`).
//!
//! Must not: slow an install down (nothing is copied while no browser listens) or hold one up
//! (a browser that lags loses events; it never blocks the sender).

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, Sse};
use futures_util::Stream;
use hoard_proto::v1::{InstallEvent, install_event};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// What happened to an install of `project`.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub project: PathBuf,
    pub kind: LiveKind,
}

#[derive(Debug, Clone)]
pub enum LiveKind {
    Started,
    /// One of the events the install sent its client.
    Event(Box<InstallEvent>),
    /// The install ended: "up to date", "N added, M removed" or "failed: …".
    Finished(String),
}

pub type LiveSender = broadcast::Sender<LiveEvent>;

/// A new channel (a browser more than `256` events behind skips ahead).
pub fn channel() -> LiveSender {
    broadcast::channel(256).0
}

/// Whether anyone listens (the service copies install events only then).
pub fn listened(tx: &LiveSender) -> bool {
    tx.receiver_count() > 0
}

fn phase_name(p: i32) -> String {
    hoard_proto::v1::Phase::try_from(p)
        .map(|p| {
            p.as_str_name()
                .trim_start_matches("PHASE_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// The JSON a browser gets for `e`.
pub fn to_json(e: &LiveEvent) -> Value {
    let project = e.project.display().to_string();
    let mut v = match &e.kind {
        LiveKind::Started => json!({"type": "started"}),
        LiveKind::Finished(m) => json!({"type": "finished", "message": m}),
        LiveKind::Event(ev) => match &ev.event {
            Some(install_event::Event::Progress(p)) => json!({
                "type": "progress", "phase": phase_name(p.phase), "done": p.done,
                "total": p.total, "bytes": p.bytes, "finished": p.finished}),
            Some(install_event::Event::Warning(w)) => json!({
                "type": "warning", "code": w.code, "package": w.package, "message": w.message}),
            Some(install_event::Event::Info(m)) => json!({"type": "info", "message": m}),
            Some(install_event::Event::Summary(s)) => json!({
                "type": "summary", "added": s.added, "removed": s.removed,
                "total_packages": s.total_packages, "up_to_date": s.up_to_date,
                "total_millis": s.total_millis,
                "denied_scripts": s.denied_scripts.len()}),
            // Operation states are not shown (the tee does not send them here).
            Some(install_event::Event::Operation(_) | install_event::Event::Finished(_)) | None => {
                json!({"type": "info", "message": ""})
            }
        },
    };
    v["project"] = Value::String(project);
    v
}

/// The `/events` stream: every install's events from now on, and a comment every 15 s that
/// also counts as activity (`touch`), so the daemon stays up while a dashboard is open.
pub fn sse(
    tx: &LiveSender,
    touch: Arc<dyn Fn() + Send + Sync>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    let mut rx = tx.subscribe();
    let stream = async_stream(move |out| async move {
        let mut tick = tokio::time::interval(Duration::from_secs(15));
        loop {
            let ev = tokio::select! {
                r = rx.recv() => match r {
                    Ok(e) => Event::default().event("install").data(to_json(&e).to_string()),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        Event::default().event("lagged").data(n.to_string())
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    touch();
                    Event::default().comment("still here")
                }
            };
            if out.send(Ok(ev)).await.is_err() {
                break;
            }
        }
    });
    Sse::new(stream)
}

/// A stream fed by a task: `body` sends into the channel; the stream ends when it returns or
/// the reader goes away.
fn async_stream<T, F, Fut>(body: F) -> tokio_stream::wrappers::ReceiverStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(body(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoard_proto::v1::PhaseProgress;

    #[test]
    fn events_carry_the_cli_json_names_and_the_project() {
        let e = LiveEvent {
            project: PathBuf::from("/p"),
            kind: LiveKind::Event(Box::new(InstallEvent {
                event: Some(install_event::Event::Progress(PhaseProgress {
                    phase: hoard_proto::v1::Phase::Fetch as i32,
                    done: 2,
                    total: 5,
                    bytes: 10,
                    finished: false,
                    package: None,
                })),
            })),
        };
        assert_eq!(
            to_json(&e),
            json!({"type": "progress", "phase": "fetch", "done": 2, "total": 5, "bytes": 10,
                   "finished": false, "project": "/p"})
        );
        let f = LiveEvent {
            project: PathBuf::from("/p"),
            kind: LiveKind::Finished("up to date".into()),
        };
        assert_eq!(to_json(&f)["type"], "finished");
    }
}
