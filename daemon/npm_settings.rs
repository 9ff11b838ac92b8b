//! Every npm setting that changes what install, ci, add, remove, update, run or exec do, and
//! what hoard does with it: honoured, moot (hoard already behaves as the setting asks, or the
//! setting is about something hoard does not do), or refused aloud: a warning naming the key
//! when it is set to anything but npm's default, or an error when going on would do what the
//! user asked npm not to do (`dry-run`, `global`, the `allow-*` limits). The README's table is
//! this table (a test keeps them the same, and checks it covers every setting npm's own
//! commands declare). `apply` turns the settings into the request's terms.
//!
//! Must not: read files (the caller gives the loaded configuration).

use hoard_proto::v1::{DependencyKind, InstallRequest, NetworkMode};

use crate::error::{HoardError, Result};
use crate::registry::config::NpmConfig;

/// What hoard does with one npm setting. (The descriptions are the README's; its test reads
/// them.)
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(test), allow(dead_code))]
pub enum Treatment {
    Honoured(&'static str),
    Moot(&'static str),
    /// Warned about (or, with `fail`, an error) when set to anything but `default`.
    Refused {
        default: &'static str,
        fail: bool,
        why: &'static str,
    },
}

use Treatment::*;

const fn refused(default: &'static str, why: &'static str) -> Treatment {
    Refused {
        default,
        fail: false,
        why,
    }
}

const fn fails(default: &'static str, why: &'static str) -> Treatment {
    Refused {
        default,
        fail: true,
        why,
    }
}

/// The table, in the README's order.
pub const KEYS: &[(&str, Treatment)] = &[
    (
        "registry",
        Honoured("the default registry; `@scope:registry` per scope"),
    ),
    (
        "node-version",
        Honoured("the Node.js version engines are checked against"),
    ),
    (
        "package-lock",
        Honoured("`false`: package-lock.json is neither read nor written"),
    ),
    (
        "package-lock-only",
        Honoured("resolve and write package-lock.json only"),
    ),
    (
        "omit-lockfile-registry-resolved",
        Honoured("no `resolved` for registry packages"),
    ),
    (
        "lockfile-version",
        refused("3", "hoard reads versions 1 to 3 and writes version 3"),
    ),
    (
        "save",
        refused("true", "`hoard add` always saves to package.json"),
    ),
    (
        "save-exact",
        Honoured("`hoard add` saves the exact version"),
    ),
    (
        "save-prefix",
        Honoured("`hoard add` saves `<prefix><version>`"),
    ),
    (
        "save-prod",
        Honoured("`hoard add` saves to dependencies (the default)"),
    ),
    ("save-dev", Honoured("`hoard add` saves to devDependencies")),
    (
        "save-optional",
        Honoured("`hoard add` saves to optionalDependencies"),
    ),
    (
        "save-peer",
        refused("false", "`hoard add` does not save to peerDependencies"),
    ),
    (
        "save-bundle",
        refused("false", "`hoard add` does not write bundleDependencies"),
    ),
    (
        "omit",
        Honoured("`dev`, `optional`, `peer` are left out of node_modules, kept in the lockfile"),
    ),
    ("include", Honoured("takes types back out of `omit`")),
    (
        "install-strategy",
        Honoured("`hoisted`, `nested`, `shallow`; `linked` is the isolated layout"),
    ),
    ("legacy-bundling", Honoured("as `install-strategy=nested`")),
    ("global-style", Honoured("as `install-strategy=shallow`")),
    (
        "legacy-peer-deps",
        Honoured("peer dependencies are ignored"),
    ),
    (
        "strict-peer-deps",
        Honoured("any peer conflict fails (ERESOLVE)"),
    ),
    ("force", Honoured("peer conflicts are accepted")),
    (
        "prefer-dedupe",
        Honoured("an existing copy is preferred to a newer one"),
    ),
    (
        "engine-strict",
        Honoured("a package whose `engines.node` excludes this Node.js fails the install"),
    ),
    (
        "os",
        refused("", "packages are checked against this machine's platform"),
    ),
    (
        "cpu",
        refused("", "packages are checked against this machine's platform"),
    ),
    (
        "libc",
        refused("", "packages are checked against this machine's platform"),
    ),
    (
        "install-links",
        refused("false", "`file:` folders are always linked, never packed"),
    ),
    (
        "bin-links",
        refused("true", "bins are always linked into node_modules/.bin"),
    ),
    (
        "ignore-scripts",
        Honoured("no lifecycle script runs, the project's own included"),
    ),
    (
        "foreground-scripts",
        Moot("scripts always run in the foreground, their output shown"),
    ),
    (
        "allow-scripts",
        Honoured("packages whose install scripts may run"),
    ),
    (
        "strict-allow-scripts",
        Honoured("an unreviewed install script fails the install"),
    ),
    (
        "dangerously-allow-all-scripts",
        Honoured("every install script runs"),
    ),
    (
        "allow-scripts-pin",
        Honoured("approvals are written as `name@version`"),
    ),
    (
        "script-shell",
        Honoured("the shell `hoard run` and lifecycle scripts use"),
    ),
    ("node-options", Honoured("NODE_OPTIONS for scripts")),
    (
        "if-present",
        Honoured("`hoard run` of a missing script exits 0"),
    ),
    (
        "before",
        Honoured("only versions published on or before the date"),
    ),
    (
        "min-release-age",
        Honoured("only versions at least this many days old"),
    ),
    (
        "min-release-age-exclude",
        Honoured("packages the release age does not apply to"),
    ),
    (
        "audit",
        Moot("hoard does not audit during an install; `hoard audit` does"),
    ),
    (
        "audit-level",
        Honoured("advisories at or above it fail the install and `hoard audit`"),
    ),
    ("fund", Moot("hoard prints no funding notice")),
    ("offline", Honoured("as `--offline`")),
    ("prefer-offline", Honoured("as `--prefer-offline`")),
    (
        "prefer-online",
        Moot("metadata older than 5 minutes is revalidated either way"),
    ),
    (
        "allow-directory",
        fails(
            "all",
            "hoard cannot limit which folder dependencies it installs",
        ),
    ),
    (
        "allow-file",
        fails(
            "all",
            "hoard cannot limit which tarball-file dependencies it installs",
        ),
    ),
    (
        "allow-git",
        Honoured(
            "`none`: no git dependency is fetched; `root`: only the project's and its \
             workspaces' own",
        ),
    ),
    (
        "allow-remote",
        fails(
            "all",
            "hoard cannot limit which URL dependencies it installs",
        ),
    ),
    (
        "dry-run",
        fails("false", "hoard cannot show an install without doing it"),
    ),
    (
        "global",
        fails(
            "false",
            "hoard installs into projects; use npm for global packages",
        ),
    ),
    ("workspaces", refused("", "hoard installs every workspace")),
    ("workspace", refused("", "hoard installs every workspace")),
    (
        "include-workspace-root",
        refused("false", "hoard installs every workspace"),
    ),
    (
        "package",
        refused(
            "",
            "`hoard exec` runs a bin of the project; `hoard dlx` takes the package",
        ),
    ),
    (
        "call",
        refused("", "`hoard exec` takes the command as arguments"),
    ),
    (
        "strict-ssl",
        refused("true", "TLS certificates are always verified"),
    ),
    (
        "proxy",
        refused("", "hoard does not use a proxy from npm's settings"),
    ),
    (
        "https-proxy",
        refused("", "hoard does not use a proxy from npm's settings"),
    ),
    (
        "noproxy",
        refused("", "hoard does not use a proxy from npm's settings"),
    ),
    (
        "ca",
        refused(
            "",
            "hoard trusts the system's and webpki's certificate authorities",
        ),
    ),
    (
        "cafile",
        refused(
            "",
            "hoard trusts the system's and webpki's certificate authorities",
        ),
    ),
    (
        "fetch-retries",
        refused("2", "hoard retries a failing request 3 times, with backoff"),
    ),
    (
        "fetch-timeout",
        refused(
            "300000",
            "hoard's timeouts are fixed (10 s to connect, 30 s between reads)",
        ),
    ),
    (
        "maxsockets",
        refused(
            "15",
            "hoard keeps up to 128 metadata and 128 tarball requests in flight",
        ),
    ),
];

/// npm's reading of a boolean-ish value (`key` alone means true).
fn normal(v: &str) -> &str {
    if v.is_empty() { "true" } else { v }
}

/// What `apply` decided beyond the request's own fields.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    /// `omit=optional` / `omit=peer` (dev is `InstallRequest.omit_dev`).
    pub omit_optional: bool,
    pub omit_peer: bool,
    /// `package-lock=false`: the lockfile is not read.
    pub ignore_lockfile: bool,
    /// One warning per refused setting that is set.
    pub warnings: Vec<String>,
    /// The configuration this was decided from, loaded once per request (the install's stages
    /// read it from here).
    pub cfg: NpmConfig,
}

impl Applied {
    /// What the no-op check must see change (beyond the request and the project's .npmrc).
    pub fn fingerprint(&self) -> String {
        format!(
            "omit-optional={} omit-peer={} ignore-lock={}",
            self.omit_optional, self.omit_peer, self.ignore_lockfile
        )
    }
}

/// Apply `cfg` to `req` (command-line flags, already in `req`, win where both speak); an error
/// for a setting hoard must not ignore.
pub fn apply(req: &mut InstallRequest, cfg: &NpmConfig) -> Result<Applied> {
    let mut out = Applied::default();
    for (key, t) in KEYS {
        let Refused { default, fail, why } = t else {
            continue;
        };
        let Some(v) = cfg.get(key) else {
            continue;
        };
        // A bare `key` is `true` for a boolean setting; for others it is empty.
        let boolean = matches!(*default, "true" | "false");
        let v = if boolean { normal(v) } else { v };
        if v == *default || (default.is_empty() && matches!(v, "" | "null" | "false")) {
            continue;
        }
        let msg = format!("npm setting `{key}={v}` is not supported by hoard: {why}");
        if *fail {
            return Err(HoardError::InvalidInput(format!(
                "{msg}; nothing was changed (remove the setting to install with hoard)"
            )));
        }
        out.warnings.push(format!("{msg}; it is ignored"));
    }
    let omit = cfg.list("omit");
    let include = cfg.list("include");
    let omitted = |t: &str| omit.iter().any(|o| o == t) && !include.iter().any(|i| i == t);
    req.omit_dev |= omitted("dev");
    out.omit_optional = omitted("optional");
    out.omit_peer = omitted("peer");
    if cfg.flag("package-lock") == Some(false) || cfg.get("package-lock") == Some("false") {
        req.no_lockfile = true;
        out.ignore_lockfile = true;
    }
    if !req.add.is_empty() {
        req.save_exact |= cfg.get("save-exact").map(normal) == Some("true");
        if req.add_kind == DependencyKind::Prod as i32 {
            if cfg.get("save-dev").map(normal) == Some("true") {
                req.add_kind = DependencyKind::Dev as i32;
            } else if cfg.get("save-optional").map(normal) == Some("true") {
                req.add_kind = DependencyKind::Optional as i32;
            }
        }
    }
    if req.network == NetworkMode::Online as i32 {
        if cfg.get("offline").map(normal) == Some("true") {
            req.network = NetworkMode::Offline as i32;
        } else if cfg.get("prefer-offline").map(normal) == Some("true") {
            req.network = NetworkMode::PreferOffline as i32;
        }
    }
    Ok(out)
}

/// npm's `install-strategy`, with its older spellings (`legacy-bundling`, `global-style`).
pub fn install_strategy(cfg: &NpmConfig) -> &str {
    if let Some(s) = cfg.get("install-strategy") {
        return s;
    }
    if cfg.get("legacy-bundling").map(normal) == Some("true") {
        "nested"
    } else if cfg.get("global-style").map(normal) == Some("true") {
        "shallow"
    } else {
        "hoisted"
    }
}

/// The README's table, rendered from `KEYS`.
#[cfg(test)]
fn readme_table() -> String {
    let mut out = String::from("| setting | hoard | what hoard does |\n| --- | --- | --- |\n");
    for (key, t) in KEYS {
        let (word, text) = match t {
            Honoured(w) => ("honoured", w.to_string()),
            Moot(w) => ("moot", w.to_string()),
            Refused {
                default,
                fail: false,
                why,
            } => ("warned", format!("{why} (warned unless `{default}`)")),
            Refused { default, why, .. } => (
                "refused",
                format!("{why} (the install stops unless `{default}`)"),
            ),
        };
        out.push_str(&format!("| `{key}` | {word} | {text} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_table_is_this_table() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let start = "<!-- npm-settings-table (daemon/npm_settings.rs) -->\n";
        let from = readme
            .find(start)
            .expect("the README has the table's marker")
            + start.len();
        let to = from + readme[from..].find("<!-- /npm-settings-table -->").unwrap();
        let want = readme_table();
        assert!(
            readme[from..to] == want,
            "the README's table should read:\n{want}"
        );
        let mut keys: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), KEYS.len(), "a key twice");
    }

    fn cfg(pairs: &[(&str, &str)]) -> NpmConfig {
        NpmConfig::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn refused_settings_warn_only_away_from_npm_defaults() {
        let mut req = InstallRequest::default();
        let a = apply(
            &mut req,
            &cfg(&[("bin-links", "true"), ("save", "false"), ("proxy", "")]),
        )
        .unwrap();
        assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
        assert!(a.warnings[0].contains("`save=false`"), "{:?}", a.warnings);
        let e = apply(&mut req, &cfg(&[("dry-run", "")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`dry-run=true`") && e.contains("nothing was changed"),
            "{e}"
        );
        assert!(apply(&mut req, &cfg(&[("allow-remote", "all")])).is_ok());
        assert!(apply(&mut req, &cfg(&[("allow-remote", "none")])).is_err());
        // A limit on connections is said to be ignored, npm's own default is not.
        let a = apply(&mut req, &cfg(&[("maxsockets", "4")])).unwrap();
        assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
        assert!(a.warnings[0].contains("`maxsockets=4`"), "{:?}", a.warnings);
        let a = apply(&mut req, &cfg(&[("maxsockets", "15")])).unwrap();
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    }

    #[test]
    fn omit_include_package_lock_save_and_network_settings_apply() {
        let mut req = InstallRequest {
            add: vec!["x".into()],
            ..Default::default()
        };
        let a = apply(
            &mut req,
            &cfg(&[
                ("omit", "dev\noptional\npeer"),
                ("include", "peer"),
                ("package-lock", "false"),
                ("save-exact", "true"),
                ("save-dev", ""),
                ("prefer-offline", "true"),
            ]),
        )
        .unwrap();
        assert!(req.omit_dev && a.omit_optional && !a.omit_peer);
        assert!(req.no_lockfile && a.ignore_lockfile && req.save_exact);
        assert_eq!(req.add_kind, DependencyKind::Dev as i32);
        assert_eq!(req.network, NetworkMode::PreferOffline as i32);
        assert_eq!(
            install_strategy(&cfg(&[("global-style", "true")])),
            "shallow"
        );
        assert_eq!(install_strategy(&cfg(&[("legacy-bundling", "")])), "nested");
    }
}
