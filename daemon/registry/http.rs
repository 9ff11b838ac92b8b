//! The daemon's one HTTP client: connection reuse (HTTP/2 where the server offers it, rustls),
//! bounded concurrency, timeouts, and bounded retries with backoff on 5xx, 429 and connection
//! errors. Maps 401/403/404 to errors that say what to do.
//!
//! Must not: parse bodies or know about packages beyond the label it is given for messages.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

use crate::error::{HoardError, Result};

pub struct Http {
    client: reqwest::Client,
    metadata_permits: Arc<Semaphore>,
    tarball_permits: Arc<Semaphore>,
    retries: u32,
}

/// Which transfers a request competes with. Metadata has its own lane, so downloads started
/// at pick time never make resolution wait for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Metadata,
    Tarball,
}

/// Result of a conditional GET.
pub enum Fetched {
    Fresh(reqwest::Response, OwnedSemaphorePermit),
    NotModified,
}

impl Http {
    /// `metadata` and `tarballs`: concurrent transfers allowed in each lane.
    pub fn new(metadata: usize, tarballs: usize) -> Result<Http> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("hoard/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| HoardError::Internal(format!("building the HTTP client: {e}")))?;
        Ok(Http {
            client,
            metadata_permits: Arc::new(Semaphore::new(metadata)),
            tarball_permits: Arc::new(Semaphore::new(tarballs)),
            retries: 3,
        })
    }

    /// GET `url` and return the response once its status is a success. `what` names the
    /// package for messages. The permit bounds concurrent transfers: hold it while reading the
    /// body.
    pub async fn get(
        &self,
        lane: Lane,
        url: &str,
        auth: Option<&str>,
        accept: Option<&str>,
        what: &str,
    ) -> Result<(reqwest::Response, OwnedSemaphorePermit)> {
        match self
            .get_conditional(lane, url, auth, accept, None, None, what)
            .await?
        {
            Fetched::Fresh(r, p) => Ok((r, p)),
            Fetched::NotModified => Err(HoardError::Registry(format!(
                "{url} answered 304 Not Modified to an unconditional request"
            ))),
        }
    }

    /// GET with optional `If-None-Match` / `If-Modified-Since`.
    #[allow(clippy::too_many_arguments)]
    pub async fn get_conditional(
        &self,
        lane: Lane,
        url: &str,
        auth: Option<&str>,
        accept: Option<&str>,
        etag: Option<&str>,
        last_modified: Option<&str>,
        what: &str,
    ) -> Result<Fetched> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let permits = match lane {
                Lane::Metadata => &self.metadata_permits,
                Lane::Tarball => &self.tarball_permits,
            };
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| HoardError::Internal("HTTP client closed".into()))?;
            let mut req = self.client.get(url);
            if let Some(a) = auth {
                req = req.header(reqwest::header::AUTHORIZATION, a);
            }
            if let Some(a) = accept {
                req = req.header(reqwest::header::ACCEPT, a);
            }
            if let Some(e) = etag {
                req = req.header(reqwest::header::IF_NONE_MATCH, e);
            }
            if let Some(l) = last_modified {
                req = req.header(reqwest::header::IF_MODIFIED_SINCE, l);
            }
            debug!(url, attempt, "GET");
            let outcome = req.send().await;
            let retryable_msg = match outcome {
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::NOT_MODIFIED {
                        return Ok(Fetched::NotModified);
                    }
                    if status.is_success() {
                        return Ok(Fetched::Fresh(resp, permit));
                    }
                    if status == StatusCode::NOT_FOUND {
                        return Err(HoardError::NotFound(format!(
                            "{what} was not found at {url} (404). Check the name and version; \
                             for a private package, check the registry configured in .npmrc"
                        )));
                    }
                    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                        return Err(HoardError::Auth {
                            url: url.to_string(),
                            status: status.as_u16(),
                            hint: format!(
                                "{what} needs credentials{}. Put a token for this registry in \
                                 .npmrc as `//{}/:_authToken=${{NPM_TOKEN}}` (project or ~/.npmrc)",
                                if auth.is_some() {
                                    " and the configured token was refused"
                                } else {
                                    " and none is configured"
                                },
                                host_path(url)
                            ),
                        });
                    }
                    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        format!("{url} answered {status}")
                    } else {
                        return Err(HoardError::Registry(format!(
                            "{url} answered {status} while fetching {what}"
                        )));
                    }
                }
                Err(e) => format!("{url}: {}", error_chain(&e)),
            };
            drop(permit);
            if attempt > self.retries {
                return Err(HoardError::Registry(format!(
                    "could not fetch {what}: {retryable_msg} (after {attempt} attempts). Is the \
                     registry reachable? Use --offline to install from the store only"
                )));
            }
            warn!(attempt, "{retryable_msg}; retrying");
            tokio::time::sleep(Duration::from_millis(100 * 3u64.pow(attempt - 1))).await;
        }
    }
}

impl Http {
    /// POST a JSON body (the bulk advisory endpoint). `Ok(None)` when the registry has no such
    /// endpoint (404, 405, 501).
    pub async fn post_json(
        &self,
        url: &str,
        auth: Option<&str>,
        body: Vec<u8>,
        what: &str,
    ) -> Result<Option<bytes::Bytes>> {
        let (status, b) = self
            .send(reqwest::Method::POST, url, auth, Some(body))
            .await
            .map_err(|e| HoardError::Registry(format!("asking for {what}: {e}")))?;
        match status {
            404 | 405 | 501 => Ok(None),
            200..300 => Ok(Some(b)),
            _ => Err(HoardError::Registry(format!(
                "{url} answered {status} when asked for {what}"
            ))),
        }
    }
}

impl Http {
    /// One request whose answer the caller judges (publishing, logging in): its status and
    /// body. Only a failure to reach `url` is an error here.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        auth: Option<&str>,
        json_body: Option<Vec<u8>>,
    ) -> Result<(u16, bytes::Bytes)> {
        let _permit = self
            .metadata_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HoardError::Internal("HTTP client closed".into()))?;
        let mut req = self
            .client
            .request(method.clone(), url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = json_body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        if let Some(a) = auth {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        debug!(url, %method, "request");
        let resp = req
            .send()
            .await
            .map_err(|e| HoardError::Registry(format!("{method} {url}: {}", error_chain(&e))))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| HoardError::Registry(format!("reading the answer of {url}: {e}")))?;
        Ok((status, body))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// `host[:port]/path` of a URL's registry root, for .npmrc hints.
pub fn host_path(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split('/').next().unwrap_or(rest).to_string()
}
