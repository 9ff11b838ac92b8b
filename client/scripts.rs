//! Running package scripts in the user's own environment: lifecycle scripts the daemon lists
//! after an install (it never runs package code itself), `hoard run` and `hoard exec`.
//!
//! Environment as npm sets it: PATH with every `node_modules/.bin` from the package up to the
//! project, `npm_lifecycle_event`, `npm_lifecycle_script`, `npm_package_name`,
//! `npm_package_version`, `npm_package_json`, `npm_command`, `INIT_CWD`; and, in a project
//! installed with the global layout, `NODE_PATH` ending with its hidden fallback folder
//! (`node_modules/.hoard/node_modules`) and its node_modules, which Node consults only after its
//! own lookup failed.
//! Must not: talk to the daemon.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// PATH with `node_modules/.bin` of `dir` and each ancestor up to `root` prepended.
pub fn path_with_bins(dir: &Path, root: &Path) -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        dirs.push(d.join("node_modules/.bin"));
        if d == root {
            break;
        }
        cur = d.parent();
    }
    let mut all: Vec<PathBuf> = dirs;
    if let Some(p) = std::env::var_os("PATH") {
        all.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(all).unwrap_or_default()
}

/// `NODE_PATH` for a project whose packages live outside its node_modules tree (the isolated
/// and global layouts, which have `node_modules/.hoard`): the caller's own NODE_PATH, then the
/// project's node_modules (direct dependencies), then the global layout's fallback folder
/// (everything else). None for a hoisted node_modules.
pub fn node_path(root: &Path) -> Option<(&'static str, std::ffi::OsString)> {
    if !root.join("node_modules/.hoard").is_dir() {
        return None;
    }
    let fallback = root.join("node_modules/.hoard/node_modules");
    let mut all: Vec<PathBuf> = std::env::var_os("NODE_PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    all.push(root.join("node_modules"));
    all.push(fallback);
    Some(("NODE_PATH", std::env::join_paths(all).ok()?))
}

/// Run the project's `preinstall` script, if it has one (before the install request is sent).
pub fn run_root_preinstall(project: &Path, announce: bool, quiet_stdout: bool) -> Result<()> {
    let path = project.join("package.json");
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(()); // the daemon reports a missing package.json with its own message
    };
    let Ok(pkg) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(());
    };
    let Some(cmd) = pkg["scripts"]["preinstall"].as_str() else {
        return Ok(());
    };
    let name = pkg["name"].as_str().unwrap_or_default();
    let version = pkg["version"].as_str().unwrap_or_default();
    if announce {
        eprintln!("> {name}@{version} preinstall: {cmd}");
    }
    run(&ScriptRun {
        dir: project,
        root: project,
        package: name,
        version,
        event: "preinstall",
        command: cmd,
        npm_command: "install",
        args: &[],
        quiet_stdout,
    })
}

pub struct ScriptRun<'a> {
    pub dir: &'a Path,
    pub root: &'a Path,
    pub package: &'a str,
    pub version: &'a str,
    pub event: &'a str,
    pub command: &'a str,
    pub npm_command: &'a str,
    pub args: &'a [String],
    /// Send the script's standard output to stderr (under `--json`, stdout carries only the
    /// JSON lines).
    pub quiet_stdout: bool,
}

/// The npm settings scripts run under, read as npm reads them (the project's and the user's
/// .npmrc, `npm_config_*`).
pub struct Settings {
    /// `script-shell` (default `sh`; `%ComSpec%` on Windows).
    pub shell: String,
    /// `node-options`, given to scripts as NODE_OPTIONS.
    pub node_options: Option<String>,
    /// `if-present`: `hoard run` of a missing script exits 0.
    pub if_present: bool,
    /// `ignore-scripts`: `hoard run <name>` runs only `<name>`, not pre/post scripts.
    pub ignore_scripts: bool,
    /// Every setting in effect (exported to scripts as `npm_config_*`).
    pub values: std::collections::HashMap<String, String>,
}

impl Settings {
    pub fn load(project: &Path) -> Settings {
        let env: std::collections::HashMap<String, String> = std::env::vars().collect();
        let v = hoard_proto::npmrc::layered(project, &env);
        let on = |k: &str| v.get(k).is_some_and(|x| x == "true" || x.is_empty());
        Settings {
            shell: v
                .get("script-shell")
                .filter(|s| !s.is_empty() && *s != "null")
                .cloned()
                .unwrap_or_else(crate::platform::default_shell),
            node_options: v.get("node-options").filter(|s| !s.is_empty()).cloned(),
            if_present: on("if-present"),
            ignore_scripts: on("ignore-scripts"),
            values: v.clone(),
        }
    }
}

/// Run one script with `<script-shell> -c`, output inherited. Errors name the package and the
/// script.
pub fn run(s: &ScriptRun<'_>) -> Result<()> {
    let settings = Settings::load(s.root);
    let mut line = s.command.to_string();
    for a in s.args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    let mut cmd = Command::new(&settings.shell);
    if let Some(o) = &settings.node_options {
        cmd.env("NODE_OPTIONS", o);
    }
    if s.quiet_stdout {
        cmd.stdout(std::io::stderr());
    }
    let pkg: serde_json::Value = std::fs::read(s.dir.join("package.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let path = path_with_bins(s.dir, s.root);
    cmd.envs(crate::npm_env::config(&settings.values))
        .envs(crate::npm_env::package(&pkg))
        .envs(crate::npm_env::tools(s.root, &path));
    crate::platform::shell_args(&mut cmd, &settings.shell, &line);
    let status = cmd
        .current_dir(s.dir)
        .env("PATH", &path)
        .envs(node_path(s.root))
        .env("npm_lifecycle_event", s.event)
        .env("npm_lifecycle_script", s.command)
        .env("npm_package_name", s.package)
        .env("npm_package_version", s.version)
        .env("npm_package_json", s.dir.join("package.json"))
        .env("npm_command", s.npm_command)
        .env(
            "npm_config_user_agent",
            concat!("hoard/", env!("CARGO_PKG_VERSION")),
        )
        .env("INIT_CWD", std::env::current_dir().unwrap_or_default())
        .status()
        .with_context(|| {
            format!(
                "starting `{} -c {line}` in `{}` (script-shell)",
                settings.shell,
                s.dir.display()
            )
        })?;
    if !status.success() {
        return Err(ScriptFailed {
            code: exit_code(status),
            message: format!(
                "the `{}` script of {} failed ({status}): {}",
                s.event,
                package_label(s.package, s.version),
                s.command
            ),
        }
        .into());
    }
    Ok(())
}

/// A script that failed: hoard exits with its status, as npm does (`code`, or 128 + the
/// signal that killed it).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ScriptFailed {
    pub code: u8,
    pub message: String,
}

/// The exit code a shell would report for `status`: its code, or 128 + the signal.
pub fn exit_code(status: std::process::ExitStatus) -> u8 {
    crate::platform::exit_code(status)
}

/// `name@version`, or the name alone when there is no version (a private root).
pub fn package_label(name: &str, version: &str) -> String {
    match (name.is_empty(), version.is_empty()) {
        (true, _) => "the project".into(),
        (false, true) => name.to_string(),
        (false, false) => format!("{name}@{version}"),
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `hoard run <name>`: pre<name>, <name>, post<name> from package.json.
pub fn run_named(project: &Path, name: &str, args: &[String]) -> Result<()> {
    let path = project.join("package.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading `{}`", path.display()))?;
    let pkg: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing `{}`", path.display()))?;
    let scripts = pkg.get("scripts").and_then(|s| s.as_object());
    let get = |k: &str| scripts.and_then(|s| s.get(k)).and_then(|v| v.as_str());
    let settings = Settings::load(project);
    let Some(main) = get(name) else {
        if settings.if_present {
            return Ok(());
        }
        let available: Vec<&str> = scripts
            .map(|s| s.keys().map(String::as_str).collect())
            .unwrap_or_default();
        bail!(
            "no script `{name}` in `{}`; available: {}",
            path.display(),
            if available.is_empty() {
                "none".into()
            } else {
                available.join(", ")
            }
        );
    };
    let pname = pkg.get("name").and_then(|v| v.as_str()).unwrap_or("");
    let pversion = pkg.get("version").and_then(|v| v.as_str()).unwrap_or("");
    let pre = format!("pre{name}");
    let post = format!("post{name}");
    // With ignore-scripts, npm runs the named script only.
    let (pre_cmd, post_cmd) = if settings.ignore_scripts {
        (None, None)
    } else {
        (get(&pre), get(&post))
    };
    for (event, cmd, a) in [
        (pre.as_str(), pre_cmd, &[][..]),
        (name, Some(main), args),
        (post.as_str(), post_cmd, &[][..]),
    ] {
        if let Some(cmd) = cmd {
            run(&ScriptRun {
                dir: project,
                root: project,
                package: pname,
                version: pversion,
                event,
                command: cmd,
                npm_command: "run-script",
                args: a,
                quiet_stdout: false,
            })?;
        }
    }
    Ok(())
}

/// `hoard exec <bin> [args]`: a bin from node_modules/.bin (or PATH) with the npm environment.
pub fn exec_bin(project: &Path, bin: &str, args: &[String]) -> Result<u8> {
    // A project's bin first (on Windows its `.cmd` shim, which PATH lookup would not find).
    let local = crate::platform::bin_file(&project.join("node_modules/.bin"), bin);
    let program = if local.is_file() {
        local.into_os_string()
    } else {
        bin.into()
    };
    let status = Command::new(program)
        .args(args)
        .env("PATH", path_with_bins(project, project))
        .envs(node_path(project))
        .status()
        .with_context(|| {
            format!(
                "cannot run `{bin}`: not in `{}` nor on PATH",
                project.join("node_modules/.bin").display()
            )
        })?;
    Ok(exit_code(status))
}
