//! Sharing packages with a registry, as npm's publish, login, whoami and logout do it:
//! `publish` (the packed tarball in npm's publish document, PUT to the package's registry) and
//! `account` (the CouchDB user call that gives a token, `/-/whoami`, token removal). The client
//! writes and removes the token lines in the user's .npmrc; the daemon only talks HTTP.
//!
//! Must not: write files, or keep credentials beyond one request.

pub mod account;
pub mod lookup;
pub mod publish;

use serde_json::Value;

use crate::error::HoardError;

/// A registry's answer that is not a success, as an error naming the URL and what the
/// registry said (`error`/`reason` of its JSON body); 401 and 403 say which .npmrc line
/// gives credentials.
pub(crate) fn refused(
    url: &str,
    status: u16,
    body: &[u8],
    what: &str,
    had_auth: bool,
) -> HoardError {
    let said = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            (v.get("error").or_else(|| v.get("reason")))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    if status == 401 || status == 403 {
        let host = crate::registry::http::host_path(url);
        return HoardError::Auth {
            url: url.to_string(),
            status,
            hint: format!(
                "{what} was refused ({said}){}. Log in with `hoard login --registry {}`, or put \
                 a token for this registry in .npmrc as `//{host}/:_authToken=${{NPM_TOKEN}}`",
                if had_auth {
                    "; the configured credentials were not accepted"
                } else {
                    ""
                },
                registry_root(url)
            ),
        };
    }
    HoardError::Registry(format!("{url} answered {status} to {what}: {said}"))
}

/// The registry root of an API URL (everything before `-/` or the package path), for hints.
fn registry_root(url: &str) -> String {
    match url.find("/-/") {
        Some(i) => url[..=i].to_string(),
        None => url.to_string(),
    }
}
