//! Showing install events: a progress line on a terminal, plain lines otherwise, one JSON object
//! per line with `--json`, only errors with `--quiet`.
//!
//! Must not: decide anything about the install; it only displays.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use hoard_proto::v1::{self, InstallSummary, install_event::Event};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tty,
    Plain,
    Json,
    Quiet,
}

impl Mode {
    pub fn pick(json: bool, quiet: bool) -> Mode {
        if json {
            Mode::Json
        } else if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Tty
        } else {
            Mode::Plain
        }
    }
}

pub fn phase_name(p: i32) -> &'static str {
    match v1::Phase::try_from(p).unwrap_or(v1::Phase::Unspecified) {
        v1::Phase::Resolve => "resolve",
        v1::Phase::Fetch => "fetch",
        v1::Phase::Link => "link",
        v1::Phase::Scripts => "scripts",
        v1::Phase::Unspecified => "work",
    }
}

pub fn link_name(m: i32) -> &'static str {
    match v1::LinkMethod::try_from(m).unwrap_or(v1::LinkMethod::Auto) {
        v1::LinkMethod::Auto => "auto",
        v1::LinkMethod::Reflink => "reflink",
        v1::LinkMethod::Hardlink => "hardlink",
        v1::LinkMethod::Copy => "copy",
    }
}

/// `; N from the team cache`, or nothing when the team cache served none.
fn team_cache(s: &InstallSummary) -> String {
    match s.from_remote_cache.unwrap_or(0) {
        0 => String::new(),
        n => format!("; {n} from the team cache"),
    }
}

/// `n thing` or `n things`.
pub fn count(n: u64, thing: &str) -> String {
    format!("{n} {thing}{}", if n == 1 { "" } else { "s" })
}

/// The last line of an install that changed something: what changed, where the packages came
/// from (only the sources that gave any), the link method and the time.
pub fn summary_line(s: &InstallSummary) -> String {
    let changed: Vec<String> = [
        ("added", s.added),
        ("removed", s.removed),
        ("unchanged", s.unchanged),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(w, n)| format!("{n} {w}"))
    .collect();
    let mut sources = Vec::new();
    if s.downloaded > 0 {
        sources.push(format!(
            "{} downloaded ({})",
            s.downloaded,
            bytes(s.bytes_downloaded)
        ));
    }
    if let Some(n) = s.from_remote_cache.filter(|n| *n > 0) {
        sources.push(format!("{n} from the team cache"));
    }
    if s.reused > 0 {
        sources.push(format!("{} from the store", s.reused));
    }
    if let Some(n) = s.repaired.filter(|n| *n > 0) {
        sources.push(format!("{n} repaired (store files were missing)"));
    }
    let mut line = format!(
        "{}: {}",
        count(s.total_packages, "package"),
        if changed.is_empty() {
            "nothing changed".into()
        } else {
            changed.join(", ")
        }
    );
    if !sources.is_empty() {
        line.push_str("; ");
        line.push_str(&sources.join(", "));
    }
    line.push_str(&format!(
        "; {} in {:.2} s",
        link_name(s.link_method),
        s.total_millis as f64 / 1000.0
    ));
    line
}

pub fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MB", n as f64 / 1_048_576.0)
    } else if n >= 1 << 10 {
        format!("{:.1} kB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

pub struct Renderer {
    mode: Mode,
    verbose: bool,
    bar: Option<ProgressBar>,
    deprecated: Vec<String>,
    /// `hoard fetch`: the summary says what came into the store.
    pub fetch_only: bool,
}

pub fn json_line(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
}

pub fn summary_json(s: &InstallSummary) -> serde_json::Value {
    json!({
        "type": "summary",
        "added": s.added, "removed": s.removed, "unchanged": s.unchanged,
        "downloaded": s.downloaded, "reused": s.reused, "bytes_downloaded": s.bytes_downloaded,
        "metadata_bytes_downloaded": s.metadata_bytes_downloaded.unwrap_or(0),
        "repaired": s.repaired.unwrap_or(0), "prepared": s.prepared.unwrap_or(false),
        "from_remote_cache": s.from_remote_cache.unwrap_or(0),
        "link_method": link_name(s.link_method), "up_to_date": s.up_to_date,
        "total_packages": s.total_packages, "files_linked": s.files_linked,
        "lockfile_written": s.lockfile_written, "total_millis": s.total_millis,
        "timings": s.timings.iter().map(|t| json!({"phase": phase_name(t.phase), "millis": t.millis})).collect::<Vec<_>>(),
        "scripts": s.scripts.iter().map(|x| json!({"package": x.package, "version": x.version, "event": x.event, "command": x.command, "path": x.path, "root": x.is_root})).collect::<Vec<_>>(),
        "denied_scripts": s.denied_scripts.iter().map(|x| json!({"package": x.package, "version": x.version, "event": x.event, "command": x.command, "explicit": x.explicit.unwrap_or(false)})).collect::<Vec<_>>(),
    })
}

/// OperationState as the JSON lines spell it.
pub fn state_name(s: i32) -> &'static str {
    match v1::OperationState::try_from(s).unwrap_or(v1::OperationState::Unspecified) {
        v1::OperationState::Queued => "queued",
        v1::OperationState::Running => "running",
        v1::OperationState::Finished => "finished",
        v1::OperationState::Unspecified => "unspecified",
    }
}

/// Outcome as the JSON lines spell it.
pub fn outcome_name(o: i32) -> &'static str {
    match v1::Outcome::try_from(o).unwrap_or(v1::Outcome::Unspecified) {
        v1::Outcome::Ok => "ok",
        v1::Outcome::Failed => "failed",
        v1::Outcome::Cancelled => "cancelled",
        v1::Outcome::Unspecified => "unspecified",
    }
}

fn finished_json(f: &v1::OperationFinished) -> serde_json::Value {
    let mut v = json!({"type": "finished", "operation_id": f.operation_id,
                       "outcome": outcome_name(f.outcome)});
    if let Some(c) = &f.cancel {
        v["cancel"] = json!(c);
    }
    if let Some(e) = &f.error {
        v["error"] = json!({"code": e.code, "reason": e.reason, "message": e.message});
    }
    v
}

impl Renderer {
    pub fn new(mode: Mode, verbose: bool) -> Renderer {
        let bar = (mode == Mode::Tty).then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(80));
            b
        });
        Renderer {
            mode,
            verbose,
            bar,
            deprecated: Vec::new(),
            fetch_only: false,
        }
    }

    /// A line for the user, above the progress bar when there is one.
    pub fn note(&self, s: &str) {
        self.line(s);
    }

    fn line(&self, s: &str) {
        match &self.bar {
            Some(b) => b.println(s),
            None => eprintln!("{s}"),
        }
    }

    pub fn event(&mut self, e: &Event) {
        match (self.mode, e) {
            (Mode::Json, Event::Progress(p)) => {
                let mut v = json!({"type": "progress", "phase": phase_name(p.phase), "done": p.done, "total": p.total, "bytes": p.bytes, "finished": p.finished});
                if let Some(pkg) = &p.package {
                    v["package"] = json!(pkg);
                }
                json_line(v)
            }
            (Mode::Json, Event::Operation(o)) => json_line(json!({
                "type": "operation", "operation_id": o.operation_id,
                "state": state_name(o.state), "waiting_for": o.waiting_for})),
            (Mode::Json, Event::Finished(f)) => json_line(finished_json(f)),
            (_, Event::Operation(o)) => {
                if !o.waiting_for.is_empty() {
                    self.line(&format!(
                        "waiting for {} (another install of this project, or store maintenance)",
                        o.waiting_for.join(", ")
                    ));
                }
            }
            (_, Event::Finished(_)) => {}
            (Mode::Json, Event::Warning(w)) => json_line(
                json!({"type": "warning", "code": w.code, "package": w.package, "message": w.message}),
            ),
            (Mode::Json, Event::Info(i)) => json_line(json!({"type": "info", "message": i})),
            (Mode::Json, Event::Summary(s)) => json_line(summary_json(s)),
            (Mode::Quiet, _) => {}
            (_, Event::Progress(p)) => {
                let mut msg = format!("{} {}/{}", phase_name(p.phase), p.done, p.total);
                if p.bytes > 0 {
                    msg.push_str(&format!(" ({})", bytes(p.bytes)));
                }
                if let Some(pkg) = &p.package {
                    msg.push_str(&format!(" {pkg}"));
                }
                match &self.bar {
                    Some(b) => b.set_message(msg),
                    None if p.finished && self.verbose => eprintln!("{msg}"),
                    None => {}
                }
            }
            (_, Event::Warning(w)) => {
                if w.code == "deprecated" && !self.verbose {
                    self.deprecated.push(w.package.clone());
                } else {
                    self.line(&format!("warn: {}", w.message));
                }
            }
            (_, Event::Info(i)) => self.line(i),
            (_, Event::Summary(_)) => {}
        }
    }

    pub fn finish(&mut self, s: Option<&InstallSummary>) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        let Some(s) = s else { return };
        if matches!(self.mode, Mode::Json | Mode::Quiet) {
            return;
        }
        if !self.deprecated.is_empty() {
            eprintln!(
                "warn: {} deprecated package{} (run with --verbose to list them)",
                self.deprecated.len(),
                if self.deprecated.len() == 1 { "" } else { "s" }
            );
        }
        let secs = s.total_millis as f64 / 1000.0;
        if self.fetch_only {
            eprintln!(
                "{} packages in the store: {} downloaded ({}{}), {} were there already; {:.2} s",
                s.total_packages,
                s.downloaded,
                bytes(s.bytes_downloaded),
                team_cache(s),
                s.reused,
                secs
            );
        } else if s.up_to_date {
            eprintln!(
                "up to date, {} packages ({:.0} ms)",
                s.total_packages, s.total_millis
            );
        } else if s.prepared == Some(true) {
            eprintln!(
                "{} packages: node_modules prepared ahead of time, swapped in ({} ms)",
                s.total_packages, s.total_millis
            );
        } else {
            let timings = if self.verbose {
                let t: Vec<String> = s
                    .timings
                    .iter()
                    .map(|t| format!("{} {} ms", phase_name(t.phase), t.millis))
                    .collect();
                format!(" [{}]", t.join(", "))
            } else {
                String::new()
            };
            eprintln!("{}{timings}", summary_line(s));
        }
    }
}
