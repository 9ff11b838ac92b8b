//! `hoard publish`, `login`, `whoami` and `logout`. The daemon talks to the registry; the client
//! runs publish's lifecycle scripts (prepublishOnly, prepack, prepare, then postpack, publish,
//! postpublish) and keeps the user's .npmrc (`$npm_config_userconfig`, else `~/.npmrc`): login
//! writes `//<host>/<path>/:_authToken=<token>` (and `@scope:registry` with `--scope`), logout
//! removes the token line.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use hoard_proto::v1;

use crate::cli::Cli;
use crate::commands::pack::lifecycle;
use crate::context::{connect, project_dir, request_env};

pub struct PublishArgs<'a> {
    pub tag: Option<&'a str>,
    pub access: Option<&'a str>,
    pub dry_run: bool,
}

pub async fn publish(cli: &Cli, a: PublishArgs<'_>) -> Result<u8> {
    let dir = project_dir(cli)?;
    if !a.dry_run {
        for event in ["prepublishOnly", "prepack", "prepare"] {
            lifecycle(&dir, event, cli.json, "publish")?;
        }
    }
    let mut conn = connect(cli).await?;
    let r = conn
        .client
        .publish(v1::PublishRequest {
            package_dir: dir.display().to_string(),
            env: request_env(),
            tag: a.tag.map(String::from),
            access: a.access.map(String::from),
            dry_run: a.dry_run,
        })
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    if !a.dry_run {
        for event in ["postpack", "publish", "postpublish"] {
            lifecycle(&dir, event, cli.json, "publish")?;
        }
    }
    let p = r.pack.unwrap_or_default();
    if cli.json {
        let out = serde_json::json!({
            "id": format!("{}@{}", p.name, p.version), "name": p.name, "version": p.version,
            "registry": r.registry, "tag": r.tag, "access": r.access, "size": p.size,
            "unpackedSize": p.unpacked_size, "shasum": p.shasum, "integrity": p.integrity,
            "filename": p.filename, "entryCount": p.files.len(), "dryRun": a.dry_run,
            "files": p.files.iter().map(|f| serde_json::json!({"path": f.path, "size": f.size, "mode": f.mode})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    eprintln!(
        "Publishing to {} with tag {} and {} access{}",
        r.registry,
        r.tag,
        r.access.as_deref().unwrap_or("default"),
        if a.dry_run { " (dry-run)" } else { "" }
    );
    println!("+ {}@{}", p.name, p.version);
    Ok(0)
}

/// Which registry an account command is about, as the client's npm configuration says.
fn registry_of(dir: &Path, registry: Option<&str>, scope: Option<&str>) -> String {
    let with_slash = |r: &str| {
        if r.ends_with('/') {
            r.to_string()
        } else {
            format!("{r}/")
        }
    };
    if let Some(r) = registry {
        return with_slash(r);
    }
    let cfg = hoard_proto::npmrc::layered(dir, &request_env());
    if let Some(s) = scope
        && let Some(r) = cfg.get(&format!("@{}:registry", s.trim_start_matches('@')))
    {
        return with_slash(r);
    }
    with_slash(
        cfg.get("registry")
            .map_or("https://registry.npmjs.org/", String::as_str),
    )
}

/// The `.npmrc` key of `registry`'s token: `//host/path/:_authToken`.
fn token_key(registry: &str) -> Result<String> {
    let nerf = hoard_proto::npmrc::nerf_dart(registry)
        .ok_or_else(|| anyhow!("`{registry}` is not a registry URL (http:// or https://)"))?;
    Ok(format!("{nerf}:_authToken"))
}

/// The user's .npmrc: `$npm_config_userconfig`, else `~/.npmrc`.
fn user_npmrc() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("npm_config_userconfig").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .ok_or_else(|| anyhow!("no HOME: cannot find the user's .npmrc"))?;
    Ok(PathBuf::from(home).join(".npmrc"))
}

/// Set (or with None remove) `key` in the user's .npmrc, keeping every other line.
fn set_user_setting(key: &str, value: Option<&str>) -> Result<PathBuf> {
    let path = user_npmrc()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading `{}`", path.display())),
    };
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.split_once('=').is_none_or(|(k, _)| k.trim() != key))
        .map(String::from)
        .collect();
    if let Some(v) = value {
        lines.push(format!("{key}={v}"));
    }
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(&path, out).with_context(|| format!("writing `{}`", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(path)
}

/// One answer: from the terminal (a password without echo), else a line of stdin.
fn ask(prompt: &str, secret: bool) -> Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        if secret {
            return Ok(rpassword::prompt_password(prompt)?);
        }
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn login(cli: &Cli, registry: Option<&str>, scope: Option<&str>) -> Result<u8> {
    let dir = project_dir(cli).unwrap_or_else(|_| PathBuf::from("."));
    let registry = registry_of(&dir, registry, scope);
    eprintln!("Log in on {registry}");
    let username = ask("Username: ", false)?;
    let password = ask("Password: ", true)?;
    let email = ask("Email: (this IS public) ", false)?;
    let mut conn = connect(cli).await?;
    let r = conn
        .client
        .login(v1::LoginRequest {
            registry: registry.clone(),
            username: username.clone(),
            password,
            email,
        })
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    let path = set_user_setting(&token_key(&registry)?, Some(&r.token))?;
    if let Some(s) = scope {
        let s = s.trim_start_matches('@');
        set_user_setting(&format!("@{s}:registry"), Some(&registry))?;
    }
    eprintln!(
        "Logged in as {username} on {registry} (token saved in `{}`).",
        path.display()
    );
    Ok(0)
}

pub async fn whoami(cli: &Cli, registry: Option<&str>, scope: Option<&str>) -> Result<u8> {
    let dir = project_dir(cli)?;
    let mut conn = connect(cli).await?;
    let r = conn
        .client
        .whoami(v1::WhoamiRequest {
            project_dir: dir.display().to_string(),
            env: request_env(),
            registry: registry.map(String::from),
            scope: scope.map(String::from),
        })
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    println!("{}", r.username);
    Ok(0)
}

pub async fn logout(cli: &Cli, registry: Option<&str>, scope: Option<&str>) -> Result<u8> {
    let dir = project_dir(cli)?;
    let mut conn = connect(cli).await?;
    let r = conn
        .client
        .logout(v1::LogoutRequest {
            project_dir: dir.display().to_string(),
            env: request_env(),
            registry: registry.map(String::from),
            scope: scope.map(String::from),
        })
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    let path = set_user_setting(&token_key(&r.registry)?, None)?;
    eprintln!(
        "Logged out of {}{} (removed from `{}`).",
        r.registry,
        if r.revoked {
            "; the registry revoked the token"
        } else {
            ""
        },
        path.display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_are_keyed_as_npm_keys_them() {
        let key = |r| super::token_key(r).unwrap();
        assert_eq!(
            key("http://127.0.0.1:4873/"),
            "//127.0.0.1:4873/:_authToken"
        );
        assert_eq!(key("https://r.example/npm/"), "//r.example/npm/:_authToken");
        assert_eq!(key("https://r.example"), "//r.example/:_authToken");
        assert!(super::token_key("r.example").is_err());
    }
}
