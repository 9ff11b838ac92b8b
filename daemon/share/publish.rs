//! `hoard publish`: the package packed as `npm pack` packs it (`crate::pack`), wrapped in npm's
//! publish document (libnpmpublish: the manifest with `_id` and `dist`, the dist-tag, `access`,
//! the tarball base64 in `_attachments`) and PUT to its registry: `publishConfig.registry`, else
//! the scope's registry, else `registry`; `publishConfig.tag` and `.access` apply as npm applies
//! them.
//!
//! Must not: run scripts (the client's), or publish a package marked private.

use std::path::Path;

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use super::refused;
use crate::error::{HoardError, Result};
use crate::pack::Packed;
use crate::registry::config::NpmConfig;
use crate::registry::http::Http;

/// What was (or, for a dry run, would be) published.
pub struct Published {
    pub pack: Packed,
    pub registry: String,
    pub tag: String,
    pub access: Option<String>,
}

/// What the request asks for, beside the package.
pub struct Options<'a> {
    pub tag: Option<&'a str>,
    pub access: Option<&'a str>,
    pub dry_run: bool,
}

/// Publish the package in `dir`.
pub async fn publish(
    http: &Http,
    cfg: &NpmConfig,
    dir: &Path,
    o: Options<'_>,
) -> Result<Published> {
    let d = dir.to_path_buf();
    let pack = tokio::task::spawn_blocking(move || crate::pack::pack(&d))
        .await
        .map_err(|e| HoardError::Internal(format!("packing: {e}")))??;
    let m = &pack.manifest;
    if m.get("private").and_then(Value::as_bool) == Some(true) {
        return Err(HoardError::InvalidInput(format!(
            "{} is marked private (\"private\": true in package.json); remove that to publish it",
            pack.name
        )));
    }
    let pc = m.get("publishConfig").cloned().unwrap_or_default();
    let pc_str = |k: &str| pc.get(k).and_then(Value::as_str).map(str::to_string);
    let registry = match pc_str("registry") {
        Some(r) if r.ends_with('/') => r,
        Some(r) => format!("{r}/"),
        None => cfg.registry_for(&pack.name),
    };
    let tag = (o.tag.map(str::to_string))
        .or_else(|| pc_str("tag"))
        .or_else(|| cfg.get("tag").map(str::to_string))
        .unwrap_or_else(|| "latest".into());
    if crate::semver_npm::Range::parse(&tag).is_some() {
        return Err(HoardError::InvalidInput(format!(
            "the tag `{tag}` is a semver range, which npm refuses as a dist-tag; pick a name \
             such as `next` or `beta`"
        )));
    }
    let access = (o.access.map(str::to_string))
        .or_else(|| pc_str("access"))
        .or_else(|| cfg.get("access").map(str::to_string));
    match access.as_deref() {
        None | Some("public") => {}
        Some("restricted") if pack.name.starts_with('@') => {}
        Some("restricted") => {
            return Err(HoardError::InvalidInput(format!(
                "{} is not scoped: only scoped packages can be restricted (use --access public)",
                pack.name
            )));
        }
        Some(other) => {
            return Err(HoardError::InvalidInput(format!(
                "--access must be `public` or `restricted`, not `{other}`"
            )));
        }
    }
    let auth = cfg.auth_for(&registry);
    if auth.is_none() && !o.dry_run {
        return Err(HoardError::Auth {
            url: registry.clone(),
            status: 401,
            hint: format!(
                "publishing {} needs you to be logged in (ENEEDAUTH): run `hoard login \
                 --registry {registry}`, or put a token in .npmrc as `//{}/:_authToken=${{NPM_TOKEN}}`",
                pack.name,
                crate::registry::http::host_path(&registry)
            ),
        });
    }
    let published = Published {
        registry,
        tag,
        access,
        pack,
    };
    if o.dry_run {
        return Ok(published);
    }
    let escaped = published.pack.name.replacen('/', "%2f", 1);
    let url = format!("{}{escaped}", published.registry);
    let body = document(&published).to_string().into_bytes();
    let (status, answer) = http
        .send(Method::PUT, &url, auth.as_deref(), Some(body))
        .await?;
    if !(200..300).contains(&status) {
        let what = format!(
            "publishing {}@{}",
            published.pack.name, published.pack.version
        );
        return Err(refused(&url, status, &answer, &what, true));
    }
    Ok(published)
}

/// libnpmpublish's document for `p`.
fn document(p: &Published) -> Value {
    let (name, version) = (&p.pack.name, &p.pack.version);
    let tarball_name = format!("{name}-{version}.tgz");
    let mut manifest = p.pack.manifest.clone();
    manifest["_id"] = json!(format!("{name}@{version}"));
    manifest["dist"] = json!({
        "integrity": p.pack.integrity,
        "shasum": p.pack.shasum,
        "tarball": format!("{}{name}/-/{tarball_name}", p.registry),
    });
    let data = base64::engine::general_purpose::STANDARD.encode(&p.pack.tarball);
    json!({
        "_id": name,
        "name": name,
        "description": manifest.get("description").cloned().unwrap_or(Value::Null),
        "dist-tags": { p.tag.clone(): version },
        "versions": { version.clone(): manifest },
        "access": p.access,
        "_attachments": {
            tarball_name: {
                "content_type": "application/octet-stream",
                "data": data,
                "length": p.pack.tarball.len(),
            }
        }
    })
}
