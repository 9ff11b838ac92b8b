//! Long operations (installs) as the API shows them: each has an id, a state (queued, running,
//! finished), its latest progress, an outcome that is the truth, and a cancel gate that makes
//! "cancelled" and "too late" exclusive: a cancel either wins before the point of no return
//! (the project untouched) or is refused after it (the install completes). Attached clients
//! get the operation's events from here.
//!
//! Must not: run installs, or know about gRPC transport (service.rs streams what this keeps).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hoard_proto::v1::{
    self, InstallEvent, OperationFinished, OperationState, OperationUpdate, PhaseProgress,
    install_event::Event,
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// How many finished operations ListOperations and AttachOperation still know.
const KEEP_FINISHED: usize = 32;

const OPEN: u8 = 0;
const CANCELLED: u8 = 1;
const NO_RETURN: u8 = 2;

/// The point of no return, shared by the operation and the install running it: the first of
/// "cancel" and "pass" wins.
#[derive(Debug, Default)]
pub struct Gate(AtomicU8);

impl Gate {
    /// Ask to cancel: true when the cancel wins (or had already won).
    pub fn cancel(&self) -> bool {
        match self
            .0
            .compare_exchange(OPEN, CANCELLED, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
            Err(now) => now == CANCELLED,
        }
    }

    /// The install is about to change the project: true when it may (no cancel came first).
    pub fn pass(&self) -> bool {
        match self
            .0
            .compare_exchange(OPEN, NO_RETURN, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
            Err(now) => now == NO_RETURN,
        }
    }

    pub fn passed(&self) -> bool {
        self.0.load(Ordering::SeqCst) == NO_RETURN
    }
}

/// What a client's stream ends with when a cancel was refused or took effect.
pub fn cancel_note(gate: &Gate, asked: bool, outcome: v1::Outcome) -> Option<String> {
    if !asked {
        return None;
    }
    Some(match (outcome, gate.passed()) {
        (v1::Outcome::Ok, true) => {
            "too late to cancel: linking had begun, so the install completed".into()
        }
        (v1::Outcome::Cancelled, _) => {
            "cancelled before anything changed: node_modules and package-lock.json are \
             untouched"
                .into()
        }
        _ => "the operation ended before the cancel took effect".into(),
    })
}

struct State {
    state: OperationState,
    waiting_for: Vec<String>,
    progress: Option<PhaseProgress>,
    finished: Option<OperationFinished>,
    finished_at: Option<SystemTime>,
}

/// One operation.
pub struct Op {
    pub id: String,
    pub kind: &'static str,
    pub project: PathBuf,
    pub started: SystemTime,
    /// Cancels the install (a client cancel, the client going away, the daemon stopping).
    pub token: CancellationToken,
    pub gate: Arc<Gate>,
    cancel_asked: AtomicBool,
    state: Mutex<State>,
    /// Events for attached clients; dropped once the operation is done (a finished operation
    /// keeps only its `finished`, not a channel's buffer).
    events: Mutex<Option<broadcast::Sender<InstallEvent>>>,
    /// When the last progress with a package name went out (rate limit).
    last_named: Mutex<Option<Instant>>,
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Op {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn cancel_asked(&self) -> bool {
        self.cancel_asked.load(Ordering::SeqCst)
    }

    /// The update event for the current state.
    pub fn update(&self) -> InstallEvent {
        let s = self.lock();
        InstallEvent {
            event: Some(Event::Operation(OperationUpdate {
                operation_id: self.id.clone(),
                state: s.state as i32,
                waiting_for: s.waiting_for.clone(),
            })),
        }
    }

    /// Queued, waiting for `what`.
    pub fn queued(&self, what: Vec<String>) -> InstallEvent {
        self.lock().waiting_for = what;
        self.update()
    }

    pub fn running(&self) -> InstallEvent {
        {
            let mut s = self.lock();
            s.state = OperationState::Running;
            s.waiting_for.clear();
        }
        self.update()
    }

    /// Keep what an attaching client needs, and decide whether a progress event goes out: a
    /// progress naming a package is dropped when another went out less than 100 ms ago.
    pub fn observe(&self, ev: &InstallEvent) -> bool {
        if let Some(Event::Progress(p)) = &ev.event {
            if p.package.is_some() && !p.finished {
                let mut last = match self.last_named.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                let now = Instant::now();
                if last.is_some_and(|t| now.duration_since(t).as_millis() < 100) {
                    return false;
                }
                *last = Some(now);
            }
            self.lock().progress = Some(p.clone());
        }
        if let Some(tx) = self.events.lock().ok().and_then(|g| g.clone())
            && tx.receiver_count() > 0
        {
            let _ = tx.send(ev.clone());
        }
        true
    }

    /// The terminal event, recorded (attached clients get it through `observe`, in order).
    pub fn finish(&self, f: OperationFinished) -> InstallEvent {
        {
            let mut s = self.lock();
            s.state = OperationState::Finished;
            s.progress = None;
            s.finished = Some(f.clone());
            s.finished_at = Some(SystemTime::now());
        }
        InstallEvent {
            event: Some(Event::Finished(f)),
        }
    }

    pub fn finished(&self) -> Option<OperationFinished> {
        self.lock().finished.clone()
    }

    /// Events from now on (None once the operation is done), and what an attaching client is
    /// shown first.
    pub fn attach(&self) -> (Option<broadcast::Receiver<InstallEvent>>, Vec<InstallEvent>) {
        let rx = (self.events.lock().ok()).and_then(|g| g.as_ref().map(|tx| tx.subscribe()));
        let s = self.lock();
        let mut first = vec![];
        if let Some(f) = &s.finished {
            first.push(InstallEvent {
                event: Some(Event::Finished(f.clone())),
            });
            return (rx, first);
        }
        drop(s);
        first.push(self.update());
        if let Some(p) = self.lock().progress.clone() {
            first.push(InstallEvent {
                event: Some(Event::Progress(p)),
            });
        }
        (rx, first)
    }

    pub fn info(&self) -> v1::OperationInfo {
        let s = self.lock();
        v1::OperationInfo {
            operation_id: self.id.clone(),
            kind: self.kind.into(),
            project_dir: self.project.display().to_string(),
            state: s.state as i32,
            started_unix_millis: millis(self.started),
            progress: s.progress.clone(),
            outcome: s.finished.as_ref().map(|f| f.outcome),
            finished_unix_millis: s.finished_at.map(millis),
            cancel_requested: self.cancel_asked(),
            past_point_of_no_return: self.gate.passed(),
            waiting_for: s.waiting_for.clone(),
        }
    }
}

/// Every operation this daemon runs, and the recently finished ones.
#[derive(Default)]
pub struct Operations {
    inner: Mutex<Inner>,
    next: AtomicU64,
}

#[derive(Default)]
struct Inner {
    running: Vec<Arc<Op>>,
    finished: VecDeque<Arc<Op>>,
}

/// Why an operation could not be registered.
#[derive(Debug)]
pub enum Refused {
    BadId(String),
    Duplicate(String),
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Operations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Register a new operation (queued) with the client's id or a generated one.
    pub fn start(
        &self,
        kind: &'static str,
        project: &Path,
        id: Option<String>,
        token: CancellationToken,
    ) -> Result<Arc<Op>, Refused> {
        let id = match id {
            Some(id) if !valid_id(&id) => return Err(Refused::BadId(id)),
            Some(id) => id,
            None => format!(
                "op-{}-{}",
                millis(SystemTime::now()),
                self.next.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let mut inner = self.lock();
        if inner.running.iter().any(|o| o.id == id) {
            return Err(Refused::Duplicate(id));
        }
        let op = Arc::new(Op {
            id,
            kind,
            project: project.to_path_buf(),
            started: SystemTime::now(),
            token,
            gate: Arc::new(Gate::default()),
            cancel_asked: AtomicBool::new(false),
            state: Mutex::new(State {
                state: OperationState::Queued,
                waiting_for: vec![],
                progress: None,
                finished: None,
                finished_at: None,
            }),
            events: Mutex::new(Some(broadcast::channel(256).0)),
            last_named: Mutex::new(None),
        });
        inner.running.push(op.clone());
        Ok(op)
    }

    /// Move a finished operation to the recent list (attached clients' streams then end).
    pub fn done(&self, op: &Arc<Op>) {
        if let Ok(mut g) = op.events.lock() {
            *g = None;
        }
        let mut inner = self.lock();
        inner.running.retain(|o| !Arc::ptr_eq(o, op));
        inner.finished.push_front(op.clone());
        inner.finished.truncate(KEEP_FINISHED);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Op>> {
        let inner = self.lock();
        (inner.running.iter())
            .chain(inner.finished.iter())
            .find(|o| o.id == id)
            .cloned()
    }

    /// The running operations on `project` other than `op` (what a queued one waits for).
    pub fn ahead_of(&self, op: &Op) -> Vec<String> {
        let inner = self.lock();
        inner
            .running
            .iter()
            .take_while(|o| o.id != op.id)
            .filter(|o| o.project == op.project)
            .map(|o| o.id.clone())
            .collect()
    }

    pub fn list(&self) -> Vec<v1::OperationInfo> {
        let inner = self.lock();
        (inner.running.iter())
            .chain(inner.finished.iter())
            .map(|o| o.info())
            .collect()
    }

    /// A client's cancel.
    pub fn cancel(&self, id: &str) -> Option<v1::CancelOperationResponse> {
        let op = self.get(id)?;
        op.cancel_asked.store(true, Ordering::SeqCst);
        let resp = |cancelled: bool, state: &str, message: String| v1::CancelOperationResponse {
            cancelled,
            state: state.into(),
            message,
        };
        if op.finished().is_some() {
            return Some(resp(
                false,
                "finished",
                "the operation has already finished".into(),
            ));
        }
        if op.gate.cancel() {
            let state = if op.lock().state == OperationState::Queued {
                "queued"
            } else {
                "running"
            };
            op.token.cancel();
            return Some(resp(
                true,
                state,
                "cancelled: the project is left untouched".into(),
            ));
        }
        Some(resp(
            false,
            "past-point-of-no-return",
            "too late to cancel: linking has begun, so the install will complete".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_and_the_point_of_no_return_exclude_each_other() {
        let g = Gate::default();
        assert!(g.cancel());
        assert!(!g.pass(), "a cancelled install may not pass");
        let g = Gate::default();
        assert!(g.pass());
        assert!(!g.cancel(), "a passed install may not be cancelled");
        assert!(g.pass() && g.passed());
    }

    #[test]
    fn ids_are_unique_while_running_and_kept_after() {
        let ops = Operations::default();
        let t = CancellationToken::new();
        let a = ops
            .start("install", Path::new("/p"), Some("a".into()), t.clone())
            .unwrap();
        assert!(matches!(
            ops.start("install", Path::new("/p"), Some("a".into()), t.clone()),
            Err(Refused::Duplicate(_))
        ));
        assert!(matches!(
            ops.start("install", Path::new("/p"), Some("a b".into()), t.clone()),
            Err(Refused::BadId(_))
        ));
        let b = ops.start("install", Path::new("/p"), None, t).unwrap();
        assert_eq!(ops.ahead_of(&b), vec!["a".to_string()]);
        a.finish(OperationFinished {
            operation_id: "a".into(),
            outcome: v1::Outcome::Ok as i32,
            ..Default::default()
        });
        ops.done(&a);
        assert!(ops.get("a").is_some_and(|o| o.finished().is_some()));
        assert_eq!(ops.list().len(), 2);
        let r = ops.cancel("a").unwrap();
        assert_eq!((r.cancelled, r.state.as_str()), (false, "finished"));
    }
}
