//! `hoard login` (npm's legacy login: `PUT /-/user/org.couchdb.user:<name>` with the password
//! gives a token), `hoard whoami` (`GET /-/whoami`) and `hoard logout` (`DELETE
//! /-/user/token/<token>`).
//!
//! Must not: store the token (the client writes it to the user's .npmrc) or log the password.

use reqwest::Method;
use serde_json::{Value, json};

use super::refused;
use crate::error::{HoardError, Result};
use crate::registry::config::NpmConfig;
use crate::registry::http::Http;

/// Log `user` in to `registry` (with a trailing slash); the token it gives.
pub async fn login(
    http: &Http,
    registry: &str,
    user: &str,
    password: &str,
    email: &str,
) -> Result<String> {
    if user.is_empty() || password.is_empty() {
        return Err(HoardError::InvalidInput(
            "logging in needs a username and a password".into(),
        ));
    }
    let url = format!(
        "{registry}-/user/org.couchdb.user:{}",
        percent_encoding::utf8_percent_encode(user, percent_encoding::NON_ALPHANUMERIC)
    );
    let body = json!({
        "_id": format!("org.couchdb.user:{user}"),
        "name": user,
        "password": password,
        "email": email,
        "type": "user",
        "roles": [],
        "date": jiff::Timestamp::now().to_string(),
    });
    let (status, answer) = http
        .send(Method::PUT, &url, None, Some(body.to_string().into_bytes()))
        .await?;
    if !(200..300).contains(&status) {
        return Err(refused(
            &url,
            status,
            &answer,
            &format!("logging in as `{user}`"),
            false,
        ));
    }
    let v: Value = serde_json::from_slice(&answer).unwrap_or_default();
    v.get("token")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            HoardError::Registry(format!(
                "{url} accepted the login but gave no token; this registry may only support \
                 web login (`npm login`)"
            ))
        })
}

/// Who `registry` says the configured credentials belong to.
pub async fn whoami(http: &Http, cfg: &NpmConfig, registry: &str) -> Result<String> {
    let url = format!("{registry}-/whoami");
    let auth = cfg.auth_for(registry);
    if auth.is_none() {
        return Err(HoardError::Auth {
            url: registry.to_string(),
            status: 401,
            hint: format!(
                "not logged in (ENEEDAUTH): no credentials for this registry in .npmrc; run \
                 `hoard login --registry {registry}`"
            ),
        });
    }
    let (status, answer) = http.send(Method::GET, &url, auth.as_deref(), None).await?;
    if !(200..300).contains(&status) {
        return Err(refused(&url, status, &answer, "whoami", true));
    }
    let v: Value = serde_json::from_slice(&answer).unwrap_or_default();
    v.get("username")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| HoardError::Registry(format!("{url} answered without a username")))
}

/// Revoke the token the configuration holds for `registry` (the registry forgets it); a
/// registry that cannot revoke tokens (404) is not an error: the client still removes it.
pub async fn logout(http: &Http, cfg: &NpmConfig, registry: &str) -> Result<bool> {
    let Some(auth) = cfg.auth_for(registry) else {
        return Err(HoardError::InvalidInput(format!(
            "not logged in to {registry}: no credentials for it in .npmrc"
        )));
    };
    let Some(token) = auth.strip_prefix("Bearer ") else {
        // Basic credentials: nothing to revoke at the registry.
        return Ok(false);
    };
    let url = format!(
        "{registry}-/user/token/{}",
        percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC)
    );
    let (status, answer) = http.send(Method::DELETE, &url, Some(&auth), None).await?;
    match status {
        200..300 => Ok(true),
        404 | 405 | 501 => Ok(false),
        _ => Err(refused(&url, status, &answer, "logging out", true)),
    }
}
