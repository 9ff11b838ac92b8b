//! `hoard ui`: the local web dashboard the daemon serves on 127.0.0.1 (a random port), started
//! by the first Dashboard RPC and kept for the daemon's life. It shows the store, the projects
//! it serves, a project's tree with search and "why", install scripts awaiting approval, and
//! installs as they happen. Every request must carry the per-session token and a Host naming
//! this listener (`guard`); the dashboard is read-only.
//!
//! This file owns the listener, the routes and what they may see. `data` gathers, `pages`,
//! `treeview` and `html` render, `live` streams events, `guard` admits.
//!
//! Must not: change the store or a project, or answer anyone without the token.

mod data;
mod guard;
mod html;
mod live;
mod pages;
mod treeview;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hoard_proto::v1;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::error::{HoardError, Result};
use crate::install::Installer;
use crate::store::Store;

pub use live::{LiveEvent, LiveKind, LiveSender, channel as live_channel, listened};

/// What the dashboard reads from.
pub struct Sources {
    pub installer: Arc<Installer>,
    pub store: Arc<Store>,
    pub store_path: PathBuf,
    pub live: LiveSender,
    /// Marks the daemon active (it stays up while a dashboard is open).
    pub touch: Arc<dyn Fn() + Send + Sync>,
}

/// A running dashboard.
pub struct Dashboard {
    pub port: u16,
    pub token: String,
    src: Sources,
    /// Projects `hoard ui` was run in (shown even before their first install here).
    shown: Mutex<BTreeSet<PathBuf>>,
    env: HashMap<String, String>,
}

fn new_token() -> Result<String> {
    let mut b = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| HoardError::Internal("no randomness for the dashboard's token".into()))?;
    Ok(hex::encode(b))
}

impl Dashboard {
    /// Bind 127.0.0.1 on a free port and serve until `stop`.
    pub async fn start(src: Sources, stop: CancellationToken) -> Result<Arc<Dashboard>> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| HoardError::Internal(format!("binding the dashboard to {addr}: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| HoardError::Internal(format!("the dashboard's address: {e}")))?
            .port();
        let dash = Arc::new(Dashboard {
            port,
            token: new_token()?,
            src,
            shown: Mutex::new(BTreeSet::new()),
            env: std::env::vars().collect(),
        });
        let gate = Arc::new(guard::Gate {
            port,
            token: dash.token.clone(),
        });
        let app = Router::new()
            .route("/", get(overview))
            .route("/project", get(project))
            .route("/events", get(events))
            .route("/static/app.js", get(script))
            .route("/static/style.css", get(style))
            .with_state(dash.clone())
            .layer(axum::middleware::from_fn_with_state(gate, guard::guard));
        info!(port, "dashboard listening on 127.0.0.1");
        tokio::spawn(
            async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
                if let Err(e) = served {
                    warn!(error = %e, "the dashboard stopped");
                }
            }
            .instrument(info_span!("dashboard", port)),
        );
        Ok(dash)
    }

    /// Show `dir` from now on.
    pub fn show(&self, dir: PathBuf) {
        self.shown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dir);
    }

    /// The address to open: the overview, or `project`'s page; with the token.
    pub fn url(&self, project: Option<&Path>) -> String {
        let page = match project {
            Some(p) => format!("{}&", html::project_href(&p.display().to_string())),
            None => "/?".into(),
        };
        format!("http://127.0.0.1:{}{page}token={}", self.port, self.token)
    }

    fn shown(&self) -> Vec<PathBuf> {
        self.shown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Whether the dashboard may show `dir`: a project the store serves, or one `hoard ui` named.
    fn may_show(&self, dir: &Path) -> bool {
        self.shown().iter().any(|p| p == dir)
            || self
                .src
                .store
                .projects
                .all()
                .iter()
                .any(|p| Path::new(p) == dir)
    }
}

fn failure(code: StatusCode, msg: String) -> Response {
    let body = html::page(
        "error",
        &format!("<p class=\"error\">{}</p>", html::esc(&msg)),
    );
    (code, Html(body)).into_response()
}

async fn overview(State(d): State<Arc<Dashboard>>) -> Response {
    (d.src.touch)();
    let span = info_span!("dashboard.overview");
    let d2 = d.clone();
    let view = tokio::task::spawn_blocking(move || {
        data::store_view(&d2.src.store, &d2.src.store_path, &d2.shown())
    })
    .instrument(span)
    .await;
    match view {
        Ok(Ok(v)) => Html(pages::overview(&v)).into_response(),
        Ok(Err(e)) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
struct ProjectQuery {
    path: String,
    #[serde(default)]
    q: String,
    why: Option<String>,
}

async fn project(State(d): State<Arc<Dashboard>>, Query(q): Query<ProjectQuery>) -> Response {
    (d.src.touch)();
    let dir = PathBuf::from(&q.path);
    if !dir.is_absolute() || !d.may_show(&dir) {
        return failure(
            StatusCode::NOT_FOUND,
            format!(
                "`{}` is not a project this store serves; run `hoard ui` in it to show it here",
                q.path
            ),
        );
    }
    let span = info_span!("dashboard.project", project = %dir.display());
    let (d2, dir2) = (d.clone(), dir.clone());
    let view = tokio::task::spawn_blocking(move || data::project_view(&dir2, &d2.env))
        .instrument(span.clone())
        .await;
    let view = match view {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return failure(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let scripts = d
        .src
        .installer
        .install_scripts(v1::InstallScriptsRequest {
            project_dir: dir.display().to_string(),
            action: v1::InstallScriptsAction::Ls as i32,
            env: d.env.clone(),
            ..Default::default()
        })
        .instrument(span)
        .await
        .map_err(|e| e.to_string());
    let ask = pages::Ask {
        q: &q.q,
        why: q.why.as_deref(),
    };
    Html(pages::project(&view, scripts, &ask)).into_response()
}

async fn events(State(d): State<Arc<Dashboard>>) -> impl IntoResponse {
    (d.src.touch)();
    live::sse(&d.src.live, d.src.touch.clone())
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/app.js"),
    )
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/style.css"),
    )
}
