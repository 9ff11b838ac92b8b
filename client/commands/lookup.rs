//! `hoard view <spec> [field...]` and `hoard search <words>`: asked of the daemon, printed as
//! npm prints them (a field's value alone; `field = value` for several; a summary otherwise;
//! `--json` for JSON).

use anyhow::{Result, anyhow};
use hoard_proto::v1;
use serde_json::Value;

use crate::cli::Cli;
use crate::context::{connect, project_dir, request_env};

/// `a.b.c` of `v` (a number indexes an array).
fn field<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, key| match cur {
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => cur.get(key),
    })
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

pub async fn view(cli: &Cli, spec: &str, fields: &[String]) -> Result<u8> {
    let dir = project_dir(cli).unwrap_or_else(|_| std::path::PathBuf::from("."));
    let mut conn = connect(cli).await?;
    let r = conn
        .client
        .view(v1::ViewRequest {
            project_dir: std::path::absolute(&dir)?.display().to_string(),
            env: request_env(),
            spec: spec.to_string(),
        })
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    let found: Vec<Value> = (r.versions_json.iter())
        .map(|j| serde_json::from_str(j))
        .collect::<Result<_, _>>()?;
    let label = |v: &Value| format!("{}@{}", plain(&v["name"]), plain(&v["version"]));
    if fields.is_empty() {
        let last = found
            .last()
            .ok_or_else(|| anyhow!("nothing found for {spec}"))?;
        if cli.json {
            println!("{}", serde_json::to_string_pretty(last)?);
        } else {
            summary(last);
        }
        return Ok(0);
    }
    let pick = |v: &Value| -> Value {
        if fields.len() == 1 {
            return field(v, &fields[0]).cloned().unwrap_or(Value::Null);
        }
        let m = fields
            .iter()
            .filter_map(|f| Some((f.clone(), field(v, f)?.clone())));
        Value::Object(m.collect())
    };
    if cli.json {
        let vals: Vec<Value> = found.iter().map(pick).collect();
        let out = if vals.len() == 1 {
            vals[0].clone()
        } else {
            Value::Array(vals)
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    for v in &found {
        let prefix = if found.len() > 1 {
            format!("{} ", label(v))
        } else {
            String::new()
        };
        if fields.len() == 1 {
            if let Some(x) = field(v, &fields[0]) {
                println!("{prefix}{}", plain(x));
            }
        } else {
            for f in fields {
                if let Some(x) = field(v, f) {
                    println!("{prefix}{f} = {}", plain(x));
                }
            }
        }
    }
    Ok(0)
}

/// npm view's summary of one version.
fn summary(v: &Value) {
    let s = |k: &str| field(v, k).map(plain).unwrap_or_default();
    let deps = v
        .get("dependencies")
        .and_then(Value::as_object)
        .map_or(0, |d| d.len());
    let versions = v
        .get("versions")
        .and_then(Value::as_array)
        .map_or(0, |a| a.len());
    let license = field(v, "license")
        .map(plain)
        .unwrap_or_else(|| "Proprietary".into());
    println!(
        "{}@{} | {license} | deps: {} | versions: {versions}",
        s("name"),
        s("version"),
        if deps == 0 {
            "none".into()
        } else {
            deps.to_string()
        }
    );
    for line in [s("description"), s("homepage")] {
        if !line.is_empty() {
            println!("{line}");
        }
    }
    println!(
        "\ndist\n.tarball: {}\n.shasum: {}\n.integrity: {}",
        s("dist.tarball"),
        s("dist.shasum"),
        s("dist.integrity")
    );
    if let Some(d) = v
        .get("dependencies")
        .and_then(Value::as_object)
        .filter(|d| !d.is_empty())
    {
        println!("\ndependencies:");
        for (k, r) in d {
            println!("{k}: {}", plain(r));
        }
    }
    if let Some(t) = v.get("dist-tags").and_then(Value::as_object) {
        println!("\ndist-tags:");
        for (k, r) in t {
            println!("{k}: {}", plain(r));
        }
    }
    let published = field(v, &format!("time.{}", s("version")))
        .map(plain)
        .unwrap_or_default();
    if !published.is_empty() {
        println!("\npublished {published}");
    }
}

pub async fn search(cli: &Cli, words: &[String], size: Option<u32>) -> Result<u8> {
    let dir = project_dir(cli).unwrap_or_else(|_| std::path::PathBuf::from("."));
    let mut conn = connect(cli).await?;
    let r = conn
        .client
        .search(v1::SearchRequest {
            project_dir: std::path::absolute(&dir)?.display().to_string(),
            env: request_env(),
            text: words.join(" "),
            size,
        })
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    let found: Vec<Value> = (r.packages_json.iter())
        .map(|j| serde_json::from_str(j))
        .collect::<Result<_, _>>()?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(0);
    }
    if found.is_empty() {
        eprintln!("No matches found for \"{}\"", words.join(" "));
        return Ok(0);
    }
    for p in &found {
        let s = |k: &str| field(p, k).map(plain).unwrap_or_default();
        println!(
            "{}\n{}\nVersion {} published {} by {}",
            s("name"),
            s("description"),
            s("version"),
            s("date"),
            s("publisher.username")
        );
        if let Some(k) = p
            .get("keywords")
            .and_then(Value::as_array)
            .filter(|k| !k.is_empty())
        {
            let k: Vec<String> = k.iter().map(plain).collect();
            println!("Keywords: {}", k.join(" "));
        }
        println!();
    }
    Ok(0)
}
