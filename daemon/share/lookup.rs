//! `hoard view` and `hoard search`: a package's registry document, narrowed to the versions a
//! spec names (npm view's data: the document's fields with each version's manifest over them),
//! and the registry's search endpoint (`/-/v1/search`).
//!
//! Must not: cache (these always ask the registry, as npm does), or format for a terminal.

use reqwest::Method;
use serde_json::{Map, Value};

use super::refused;
use crate::error::{HoardError, Result};
use crate::registry::config::NpmConfig;
use crate::registry::http::Http;

/// npm view's data for `spec` (`name`, `name@tag`, `name@range`, `name@version`): one object per
/// matching version, oldest first.
pub async fn view(http: &Http, cfg: &NpmConfig, spec: &str) -> Result<Vec<Value>> {
    let (name, want) = match spec.get(1..).and_then(|s| s.find('@')) {
        Some(i) => (&spec[..=i], &spec[i + 2..]),
        None => (spec, ""),
    };
    if name.is_empty() {
        return Err(HoardError::InvalidInput(
            "`hoard view` needs a package name".into(),
        ));
    }
    let registry = cfg.registry_for(name);
    let url = format!("{registry}{}", name.replacen('/', "%2f", 1));
    let auth = cfg.auth_for(&registry);
    let (status, body) = http.send(Method::GET, &url, auth.as_deref(), None).await?;
    if status == 404 {
        return Err(HoardError::NotFound(format!(
            "{name} is not in the registry {registry} (404)"
        )));
    }
    if !(200..300).contains(&status) {
        return Err(refused(
            &url,
            status,
            &body,
            &format!("viewing {name}"),
            auth.is_some(),
        ));
    }
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|e| HoardError::Registry(format!("{url} answered with invalid JSON: {e}")))?;
    let versions = doc
        .get("versions")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let tags = doc
        .get("dist-tags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let tag = if want.is_empty() { "latest" } else { want };
    let mut picked: Vec<(semver::Version, String)> =
        if let Some(v) = tags.get(tag).and_then(Value::as_str) {
            vec![(
                semver::Version::parse(v).unwrap_or(semver::Version::new(0, 0, 0)),
                v.to_string(),
            )]
        } else {
            let range = crate::semver_npm::Range::parse(want).ok_or_else(|| {
                HoardError::InvalidInput(format!(
                    "`{want}` is neither a dist-tag of {name} nor a range"
                ))
            })?;
            versions
                .keys()
                .filter_map(|v| Some((semver::Version::parse(v).ok()?, v.clone())))
                .filter(|(v, _)| range.satisfies(v))
                .collect()
        };
    picked.sort();
    if picked.is_empty() {
        return Err(HoardError::NotFound(format!(
            "no version of {name} matches `{want}`"
        )));
    }
    let mut base: Map<String, Value> = doc.as_object().cloned().unwrap_or_default();
    base.remove("readme");
    base.remove("_attachments");
    base.insert(
        "versions".into(),
        Value::Array(versions.keys().map(|k| Value::String(k.clone())).collect()),
    );
    Ok(picked
        .into_iter()
        .filter_map(|(_, v)| {
            let manifest = versions.get(&v)?.as_object()?;
            let mut o = base.clone();
            for (k, val) in manifest {
                if k != "readme" {
                    o.insert(k.clone(), val.clone());
                }
            }
            Some(Value::Object(o))
        })
        .collect())
}

/// The registry's search results for `text` (at most `size`): its `objects[].package`.
pub async fn search(
    http: &Http,
    cfg: &NpmConfig,
    text: &str,
    size: u32,
) -> Result<(String, Vec<Value>)> {
    let registry = cfg.default_registry();
    let q = percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC);
    let url = format!("{registry}-/v1/search?text={q}&size={size}");
    let auth = cfg.auth_for(&registry);
    let (status, body) = http.send(Method::GET, &url, auth.as_deref(), None).await?;
    if status == 404 || status == 405 || status == 501 {
        return Err(HoardError::NotFound(format!(
            "the registry {registry} has no search endpoint (/-/v1/search answered {status})"
        )));
    }
    if !(200..300).contains(&status) {
        return Err(refused(&url, status, &body, "searching", auth.is_some()));
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| HoardError::Registry(format!("{url} answered with invalid JSON: {e}")))?;
    let found = (v
        .get("objects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten())
    .filter_map(|o| o.get("package").cloned())
    .collect();
    Ok((registry, found))
}
