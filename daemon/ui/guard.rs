//! Who may talk to the dashboard: a request is served only when its Host names this listener
//! (127.0.0.1 or localhost on its port, against DNS rebinding) and it carries the per-session
//! token, in the `token` query parameter (the URL `hoard ui` prints) or in the cookie the first
//! such request sets. Everything else gets 403. Also the headers every answer carries: a strict
//! content security policy, no referrer (the token must not leak), no caching, and never a CORS
//! header.
//!
//! Must not: read the store or any project (it only says yes or no).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// What the guard knows: the listener's port and the session's token.
pub struct Gate {
    pub port: u16,
    pub token: String,
}

/// The guard's answer to one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it.
    Pass,
    /// The token came in the URL: set the cookie and send the browser to the same page without
    /// it (so the token stays out of the address bar and history).
    PassAndForget {
        location: String,
    },
    Forbidden(&'static str),
}

impl Gate {
    pub fn cookie_name(&self) -> String {
        // Cookies are shared by every port of a host; the port keeps two daemons apart.
        format!("hoard_ui_{}", self.port)
    }

    /// Judge a request from its Host header, path, query and Cookie header.
    pub fn judge(
        &self,
        host: Option<&str>,
        path: &str,
        query: Option<&str>,
        cookies: Option<&str>,
    ) -> Verdict {
        if !self.host_ok(host) {
            return Verdict::Forbidden(
                "this dashboard answers only to http://127.0.0.1 or http://localhost on its port",
            );
        }
        if cookies.is_some_and(|c| self.cookie_ok(c)) {
            return Verdict::Pass;
        }
        let query = query.unwrap_or("");
        let mut rest = Vec::new();
        let mut good = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.strip_prefix("token=") {
                Some(t) => good |= same(t.as_bytes(), self.token.as_bytes()),
                None => rest.push(pair),
            }
        }
        if !good {
            return Verdict::Forbidden(
                "missing or wrong token: open the address `hoard ui` prints",
            );
        }
        let location = if rest.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", rest.join("&"))
        };
        Verdict::PassAndForget { location }
    }

    fn host_ok(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return false };
        let host = host.to_ascii_lowercase();
        [
            format!("127.0.0.1:{}", self.port),
            format!("localhost:{}", self.port),
        ]
        .contains(&host)
    }

    fn cookie_ok(&self, header: &str) -> bool {
        let name = self.cookie_name();
        header.split(';').any(|c| {
            c.trim()
                .split_once('=')
                .is_some_and(|(k, v)| k == name && same(v.as_bytes(), self.token.as_bytes()))
        })
    }
}

/// Equality that takes as long for every wrong guess of the same length.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The axum middleware around every route.
pub async fn guard(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    let verdict = {
        let h = req.headers();
        let text = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
        gate.judge(
            text(header::HOST),
            req.uri().path(),
            req.uri().query(),
            text(header::COOKIE),
        )
    };
    let mut resp = match verdict {
        Verdict::Forbidden(why) => {
            (StatusCode::FORBIDDEN, format!("403 Forbidden: {why}\n")).into_response()
        }
        _ if req.method() != Method::GET && req.method() != Method::HEAD => {
            // The dashboard only shows; changes are made with the CLI.
            (
                StatusCode::METHOD_NOT_ALLOWED,
                "405: the dashboard is read-only\n",
            )
                .into_response()
        }
        Verdict::PassAndForget { location } => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::SEE_OTHER;
            let cookie = format!(
                "{}={}; Path=/; HttpOnly; SameSite=Strict",
                gate.cookie_name(),
                gate.token
            );
            set(r.headers_mut(), header::SET_COOKIE, &cookie);
            set(r.headers_mut(), header::LOCATION, &location);
            r
        }
        Verdict::Pass => next.run(req).await,
    };
    secure(resp.headers_mut());
    resp
}

fn set(h: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// Headers on every answer, 403s included.
fn secure(h: &mut HeaderMap) {
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate {
            port: 4000,
            token: "abc123".into(),
        }
    }

    #[test]
    fn host_must_be_this_listener() {
        let g = gate();
        let ok = Some("token=abc123");
        for host in ["127.0.0.1:4000", "localhost:4000", "LOCALHOST:4000"] {
            assert!(
                matches!(
                    g.judge(Some(host), "/", ok, None),
                    Verdict::PassAndForget { .. }
                ),
                "{host}"
            );
        }
        for host in [
            None,
            Some("evil.example:4000"),
            Some("127.0.0.1:4001"),
            Some("127.0.0.1"),
            Some("localhost.evil.example:4000"),
        ] {
            assert!(
                matches!(
                    g.judge(host, "/", ok, Some("hoard_ui_4000=abc123")),
                    Verdict::Forbidden(_)
                ),
                "{host:?}"
            );
        }
    }

    #[test]
    fn the_token_comes_in_the_url_once_then_in_the_cookie() {
        let g = gate();
        let h = Some("127.0.0.1:4000");
        assert_eq!(
            g.judge(h, "/project", Some("path=%2Fa&token=abc123&q=x"), None),
            Verdict::PassAndForget {
                location: "/project?path=%2Fa&q=x".into()
            }
        );
        assert_eq!(
            g.judge(h, "/", Some("token=abc123"), None),
            Verdict::PassAndForget {
                location: "/".into()
            }
        );
        assert_eq!(
            g.judge(h, "/", None, Some("x=1; hoard_ui_4000=abc123")),
            Verdict::Pass
        );
        for (q, c) in [
            (None, None),
            (Some("token=abc12"), None),
            (Some("token=abc1234"), None),
            (Some("tokens=abc123"), None),
            (None, Some("hoard_ui_4001=abc123")),
            (None, Some("hoard_ui_4000=wrong0")),
        ] {
            assert!(
                matches!(g.judge(h, "/", q, c), Verdict::Forbidden(_)),
                "{q:?} {c:?}"
            );
        }
    }
}
