//! npm's install-script policy (npm 11.19, RFC npm/rfcs#868), so a project approved with npm
//! installs the same with hoard and back again: package.json's top-level `allowScripts`
//! (`"pkg": true`, pinned `"pkg@1.2.3": true`, version sets `"pkg@1.0.0 || 2.0.0"`, denials
//! `"pkg": false`, which always win), `.npmrc`'s `allow-scripts=a,b` (used only when package.json
//! has no entries), `dangerously-allow-all-scripts`, `strict-allow-scripts` and
//! `ignore-scripts` (which wins over all). hoard's older `hoard.allowScripts` is read as a
//! fallback, with a warning. Also the edits `npm install-scripts approve|deny|prune` make.
//!
//! A registry package is identified by the name and version in its registry tarball URL (the
//! lockfile's `resolved`), never by what its own package.json claims; a lockfile entry without
//! `resolved` has a name but no trusted version, so pins never match it (a deny still does).
//!
//! Must not: read files or run anything.

use serde_json::{Map, Value};

use crate::registry::config::NpmConfig;

/// Who a package is, for the policy.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The registry name (never an alias).
    pub name: String,
    /// The version, when a registry tarball URL vouches for it.
    pub version: Option<String>,
    /// The lockfile's `resolved` (a URL, `file:…`), possibly empty.
    pub resolved: String,
    pub registry: bool,
}

impl Identity {
    /// The identity of a package npm would trust: name and version from a registry tarball
    /// URL, else the name the dependency edges give and no version.
    pub fn of(real_name: &str, version: &str, resolved: &str) -> Identity {
        let registry = resolved.is_empty() || crate::tree::is_registry_resolved(resolved);
        let from_url =
            registry && !resolved.is_empty() && tarball_names(resolved, real_name, version);
        Identity {
            name: real_name.to_string(),
            version: from_url.then(|| version.to_string()),
            resolved: resolved.to_string(),
            registry,
        }
    }
}

/// Whether a registry URL's file is `<base>-<version>.tgz` of `name` (npm's versionFromTgz).
fn tarball_names(url: &str, name: &str, version: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    let file = url.rsplit('/').next().unwrap_or("");
    file.strip_suffix(".tgz")
        .and_then(|f| f.strip_prefix(base))
        .and_then(|f| f.strip_prefix('-'))
        .is_some_and(|v| v == version)
}

/// What a policy key names.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    /// `pkg` or `pkg@*`.
    Name(String),
    /// `pkg@1.2.3`, or exact versions joined by `||`.
    Versions(String, Vec<String>),
    /// A tarball URL or `file:` path, matched against `resolved` as written.
    Source(String),
    /// A git repository (`github:u/r`, a git URL), with a commit prefix the locked commit
    /// must start with.
    Git {
        repo: String,
        commit: Option<String>,
    },
    /// Parses, but npm matches nothing with it (an alias).
    Nothing,
}

/// Why npm drops a key (with a warning).
fn parse_key(key: &str) -> Result<Key, String> {
    if let Some(git) = crate::git::GitSpec::parse(key) {
        let g = git.map_err(|e| format!("ignoring unparseable entry \"{key}\": {e}"))?;
        return Ok(Key::Git {
            repo: g.repo(),
            commit: g.committish.clone(),
        });
    }
    if ["file:", "/", "./", "../", "http://", "https://"]
        .iter()
        .any(|p| key.starts_with(p))
    {
        return Ok(Key::Source(key.to_string()));
    }
    let at = if let Some(rest) = key.strip_prefix('@') {
        rest.find('@').map(|i| i + 1)
    } else {
        key.find('@')
    };
    let (name, spec) = match at {
        Some(i) => (&key[..i], key[i + 1..].trim()),
        None => (key, ""),
    };
    if name.is_empty() || crate::spec::validate_name(name).is_err() {
        return Err(format!("ignoring unparseable entry \"{key}\""));
    }
    if spec.is_empty() || spec == "*" {
        return Ok(Key::Name(name.to_string()));
    }
    if spec.starts_with("npm:") {
        return Ok(Key::Nothing);
    }
    let parts: Vec<&str> = spec.split("||").map(str::trim).collect();
    let versions: Option<Vec<String>> = parts
        .iter()
        .map(|p| {
            let p = p.strip_prefix('v').unwrap_or(p);
            semver::Version::parse(p).ok().map(|v| v.to_string())
        })
        .collect();
    if let Some(v) = versions {
        return Ok(Key::Versions(name.to_string(), v));
    }
    if crate::semver_npm::Range::parse(spec).is_some() {
        Err(format!(
            "ignoring \"{key}\" — semver ranges (^, ~, >=, <) are not allowed; use exact \
             versions joined by \"||\" instead"
        ))
    } else {
        Err(format!(
            "ignoring \"{key}\" — dist-tag specs (@latest, @next, ...) are not allowed; use \
             exact versions joined by \"||\", or the bare package name, instead"
        ))
    }
}

impl Key {
    /// Whether this key covers `id`; `fail_closed` (a deny) matches a registry package whose
    /// version cannot be trusted.
    fn matches(&self, id: &Identity, fail_closed: bool) -> bool {
        match self {
            Key::Name(n) => id.registry && *n == id.name,
            Key::Versions(n, vs) => {
                id.registry
                    && *n == id.name
                    && match &id.version {
                        Some(v) => vs.iter().any(|x| x == v),
                        None => fail_closed,
                    }
            }
            Key::Source(s) => !id.registry && *s == id.resolved,
            Key::Git { repo, commit } => git_matches(repo, commit.as_deref(), &id.resolved),
            Key::Nothing => false,
        }
    }

    /// Whether the key is about this package at all, whatever version (npm's keyTargetsNode).
    fn targets(&self, id: &Identity) -> bool {
        match self {
            Key::Name(n) | Key::Versions(n, _) => id.registry && *n == id.name,
            Key::Source(s) => !id.registry && *s == id.resolved,
            Key::Git { repo, .. } => git_matches(repo, None, &id.resolved),
            Key::Nothing => false,
        }
    }
}

/// arborist's matchGit: the same repository, and a locked commit that starts with the key's
/// committish when it names one (a longer key never matches a shorter commit).
fn git_matches(repo: &str, commit: Option<&str>, resolved: &str) -> bool {
    let Some(locked) = crate::git::locked(resolved) else {
        return false;
    };
    locked.repo() == repo
        && match commit {
            None => true,
            Some(c) => locked
                .committish
                .as_deref()
                .is_some_and(|l| l.starts_with(c)),
        }
}

/// Where the policy came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    PackageJson,
    /// hoard's own older field, `hoard.allowScripts`.
    HoardField,
    Npmrc,
    None,
}

/// The policy for one project and request.
#[derive(Debug, Clone)]
pub struct Policy {
    entries: Vec<(Key, bool)>,
    pub source: Source,
    /// Entries npm ignores, and the fallback's notice.
    pub warnings: Vec<String>,
    /// `ignore-scripts`: no dependency script runs and nothing is reported.
    pub ignore: bool,
    /// `dangerously-allow-all-scripts`.
    pub allow_all: bool,
    /// `strict-allow-scripts`: an unreviewed script fails the install.
    pub strict: bool,
}

/// What the policy says of one package.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Allowed,
    Denied,
    Unreviewed,
}

impl Policy {
    /// The policy of a project (`pkg_json`, its package.json) under npm configuration `cfg`.
    pub fn load(pkg_json: &Value, cfg: &NpmConfig) -> Policy {
        let mut warnings = Vec::new();
        let mut read = |obj: &Map<String, Value>, label: &str| -> Vec<(Key, bool)> {
            let mut out = Vec::new();
            for (k, v) in obj {
                let Some(allow) = v.as_bool() else {
                    warnings.push(format!(
                        "{label}: ignoring \"{k}\" — the value must be true or false"
                    ));
                    continue;
                };
                match parse_key(k) {
                    Ok(key) => out.push((key, allow)),
                    Err(w) => warnings.push(format!("{label}: {w}")),
                }
            }
            out
        };
        let mut source = Source::None;
        let mut entries = Vec::new();
        if let Some(o) = pkg_json.get("allowScripts").and_then(Value::as_object)
            && !o.is_empty()
        {
            entries = read(o, "package.json allowScripts");
            source = Source::PackageJson;
        } else if let Some(o) = pkg_json
            .get("hoard")
            .and_then(|h| h.get("allowScripts"))
            .and_then(Value::as_object)
            && !o.is_empty()
        {
            entries = read(o, "package.json hoard.allowScripts");
            source = Source::HoardField;
        }
        let rc = cfg.list("allow-scripts");
        if !rc.is_empty() {
            if source == Source::None {
                let obj: Map<String, Value> =
                    rc.iter().map(|n| (n.clone(), Value::Bool(true))).collect();
                entries = read(&obj, ".npmrc allow-scripts");
                source = Source::Npmrc;
            } else {
                warnings.push(
                    ".npmrc allow-scripts setting is being ignored because package.json declares \
                     its own allowScripts field"
                        .to_string(),
                );
            }
        }
        if source == Source::HoardField {
            warnings.push(
                "package.json's \"hoard\": {\"allowScripts\"} is read as a fallback; move its \
                 entries to the top-level \"allowScripts\" field, which npm reads too (`hoard \
                 install-scripts approve <pkg>` writes there)"
                    .to_string(),
            );
        }
        Policy {
            entries,
            source,
            warnings,
            ignore: cfg.flag("ignore-scripts").unwrap_or(false),
            allow_all: cfg.flag("dangerously-allow-all-scripts").unwrap_or(false),
            strict: cfg.flag("strict-allow-scripts").unwrap_or(false),
        }
    }

    /// What the entries say of `id` (a deny wins over any allow); bundled packages are never
    /// covered. `ignore-scripts` and `dangerously-allow-all-scripts` are the caller's to apply.
    pub fn verdict(&self, id: &Identity, in_bundle: bool) -> Verdict {
        if in_bundle {
            return Verdict::Unreviewed;
        }
        let mut allow = false;
        for (key, value) in &self.entries {
            if key.matches(id, !*value) {
                if !*value {
                    return Verdict::Denied;
                }
                allow = true;
            }
        }
        if allow {
            Verdict::Allowed
        } else {
            Verdict::Unreviewed
        }
    }

    /// Whether this package's scripts run in an install.
    pub fn runs(&self, id: &Identity, in_bundle: bool) -> bool {
        !self.ignore
            && !in_bundle
            && (self.allow_all || self.verdict(id, in_bundle) == Verdict::Allowed)
    }
}

/// One edit of the field, in npm's words.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub key: String,
    pub change: &'static str,
}

fn is_single_pin(key: &str) -> bool {
    matches!(parse_key(key), Ok(Key::Versions(_, v)) if v.len() == 1)
}

fn is_name_only(key: &str) -> bool {
    matches!(parse_key(key), Ok(Key::Name(_)))
}

fn targets(key: &str, id: &Identity) -> bool {
    parse_key(key).is_ok_and(|k| k.targets(id))
}

/// The name-only key of a package: its name; for a hosted git repository its shortcut
/// (`github:u/r`, as npm writes it); else its `resolved` (a tarball, file or other git URL).
fn name_key(id: &Identity) -> String {
    if id.registry {
        id.name.clone()
    } else if let Some((name, _)) = hosted_git_keys(&id.resolved) {
        name
    } else {
        id.resolved.clone()
    }
}

/// A hosted git dependency's keys, as npm writes them: `github:u/r`, and `github:u/r#<sha>`.
fn hosted_git_keys(resolved: &str) -> Option<(String, String)> {
    let g = crate::git::locked(resolved)?;
    let name = g.hosted.as_ref()?.shortcut();
    let pin = match &g.committish {
        Some(c) => format!("{name}#{c}"),
        None => name.clone(),
    };
    Some((name, pin))
}

/// `npm install-scripts approve <name>`: `installed` are the installed copies of one package
/// (same name). Returns the changes and a warning (a denial blocks it, or no pin was possible).
pub fn approve(
    map: &mut Map<String, Value>,
    installed: &[Identity],
    pin: bool,
) -> (Vec<Change>, Option<String>) {
    let mut changes = Vec::new();
    let Some(sample) = installed.first() else {
        return (changes, None);
    };
    let name = name_key(sample);
    for id in installed {
        for (key, value) in map.iter() {
            if *value == Value::Bool(false) && targets(key, id) {
                let warning = if is_name_only(key) {
                    format!(
                        "{key} is denied; remove the entry from allowScripts to approve {name}."
                    )
                } else {
                    format!(
                        "{key} is a versioned deny; run `hoard install-scripts deny {name}` to \
                         widen the deny to all versions of {name}, or remove the entry to \
                         approve {name}."
                    )
                };
                return (changes, Some(warning));
            }
        }
    }
    let stale_pins = |map: &Map<String, Value>, keep: &dyn Fn(&str) -> bool| -> Vec<String> {
        map.iter()
            .filter(|(k, v)| {
                **v == Value::Bool(true)
                    && targets(k, sample)
                    && **k != name
                    && is_single_pin(k)
                    && !keep(k)
            })
            .map(|(k, _)| k.clone())
            .collect()
    };
    let add = |map: &mut Map<String, Value>, changes: &mut Vec<Change>, key: &str| {
        if map.get(key) != Some(&Value::Bool(true)) {
            map.insert(key.to_string(), Value::Bool(true));
            changes.push(Change {
                key: key.to_string(),
                change: "added",
            });
        }
    };
    let pinned: Vec<Option<String>> = installed
        .iter()
        .map(|id| match (&id.version, id.registry) {
            (Some(v), true) => Some(format!("{}@{v}", id.name)),
            (_, false) => Some(
                hosted_git_keys(&id.resolved).map_or_else(|| id.resolved.clone(), |(_, pin)| pin),
            ),
            (None, true) => None,
        })
        .collect();
    if !pin {
        for k in stale_pins(map, &|_| false) {
            map.shift_remove(&k);
        }
        add(map, &mut changes, &name);
        return (changes, None);
    }
    if pinned.iter().any(Option::is_none) {
        for k in stale_pins(map, &|_| false) {
            map.shift_remove(&k);
            changes.push(Change {
                key: k,
                change: "removed-pinned-allow",
            });
        }
        add(map, &mut changes, &name);
        let warning = (!changes.is_empty()).then(|| {
            format!(
                "{name}: approved by name (all versions) because its package-lock.json entry \
                 has no \"resolved\" URL, so no specific version can be pinned. Run `hoard \
                 install` to refresh the lockfile and enable pinning."
            )
        });
        return (changes, warning);
    }
    let keys: Vec<String> = pinned.into_iter().flatten().collect();
    for k in stale_pins(map, &|k| keys.iter().any(|x| x == k)) {
        map.shift_remove(&k);
        changes.push(Change {
            key: k,
            change: "removed-stale",
        });
    }
    for k in &keys {
        add(map, &mut changes, k);
    }
    if !keys.contains(&name) && map.get(&name) == Some(&Value::Bool(true)) {
        map.shift_remove(&name);
        changes.push(Change {
            key: name,
            change: "replaced-by-pin",
        });
    }
    (changes, None)
}

/// `npm install-scripts deny <name>`: always a name-only `false`; other entries for the package
/// go.
pub fn deny(map: &mut Map<String, Value>, id: &Identity) -> Vec<Change> {
    let name = name_key(id);
    let mut changes = Vec::new();
    let others: Vec<String> = map
        .keys()
        .filter(|k| targets(k, id) && **k != name)
        .cloned()
        .collect();
    for k in others {
        map.shift_remove(&k);
        changes.push(Change {
            key: k,
            change: "removed-pinned-allow",
        });
    }
    if map.get(&name) != Some(&Value::Bool(false)) {
        map.insert(name.clone(), Value::Bool(false));
        changes.push(Change {
            key: name,
            change: "added",
        });
    }
    changes
}

/// `npm install-scripts prune`: entries that match no installed package (`installed`, with
/// whether each has install scripts), or only packages without scripts, go. Unparseable keys
/// stay.
pub fn prune(map: &mut Map<String, Value>, installed: &[(Identity, bool)]) -> Vec<Change> {
    let mut changes = Vec::new();
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        let Ok(key) = parse_key(&k) else { continue };
        let matching: Vec<&(Identity, bool)> = installed
            .iter()
            .filter(|(id, _)| key.matches(id, false))
            .collect();
        let reason = if matching.is_empty() {
            "pruned (not installed)"
        } else if !matching.iter().any(|(_, scripts)| *scripts) {
            "pruned (no install scripts)"
        } else {
            continue;
        };
        map.shift_remove(&k);
        changes.push(Change {
            key: k,
            change: reason,
        });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reg(name: &str, version: &str) -> Identity {
        let base = name.rsplit('/').next().unwrap();
        Identity::of(
            name,
            version,
            &format!("https://registry.npmjs.org/{name}/-/{base}-{version}.tgz"),
        )
    }

    fn policy(v: Value) -> Policy {
        Policy::load(&json!({ "allowScripts": v }), &NpmConfig::default())
    }

    #[test]
    fn deny_wins_pins_match_exactly_and_ranges_are_dropped() {
        let p = policy(json!({
            "esbuild@0.25.0": true, "sharp": true, "sharp@1.0.0": false,
            "core-js@3.0.0 || 3.1.0": true, "bad@^1": true, "tagged@latest": true
        }));
        assert_eq!(
            p.verdict(&reg("esbuild", "0.25.0"), false),
            Verdict::Allowed
        );
        assert_eq!(
            p.verdict(&reg("esbuild", "0.25.1"), false),
            Verdict::Unreviewed
        );
        assert_eq!(p.verdict(&reg("sharp", "1.0.0"), false), Verdict::Denied);
        assert_eq!(p.verdict(&reg("sharp", "2.0.0"), false), Verdict::Allowed);
        assert_eq!(p.verdict(&reg("core-js", "3.1.0"), false), Verdict::Allowed);
        assert_eq!(p.verdict(&reg("bad", "1.0.0"), false), Verdict::Unreviewed);
        assert_eq!(
            p.verdict(&reg("tagged", "1.0.0"), false),
            Verdict::Unreviewed
        );
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
        // Bundled packages are never covered.
        assert_eq!(p.verdict(&reg("sharp", "2.0.0"), true), Verdict::Unreviewed);
        // No resolved URL: a pin cannot match, a versioned deny still does.
        let unpinned = Identity::of("sharp", "1.0.0", "");
        assert_eq!(p.verdict(&unpinned, false), Verdict::Denied);
        let unpinned = Identity::of("esbuild", "0.25.0", "");
        assert_eq!(p.verdict(&unpinned, false), Verdict::Unreviewed);
        // A tarball claiming another name does not get its allowance.
        let forged = Identity::of(
            "esbuild",
            "0.25.0",
            "https://evil.example/-/esbuild-0.25.0.tgz",
        );
        assert_eq!(p.verdict(&forged, false), Verdict::Unreviewed);
    }

    #[test]
    fn git_keys_match_like_arborist() {
        let sha = "abcdef0123456789abcdef0123456789abcdef01";
        let hosted = Identity::of(
            "x",
            "1.0.0",
            &format!("git+ssh://git@github.com/u/r.git#{sha}"),
        );
        let plain = Identity::of("x", "1.0.0", &format!("git+file:///srv/r.git#{sha}"));
        assert!(!hosted.registry && !plain.registry);
        let p = policy(json!({"github:u/r": true}));
        assert_eq!(p.verdict(&hosted, false), Verdict::Allowed);
        // The package's own name is not trusted for a git dependency.
        assert_eq!(
            policy(json!({"x": true})).verdict(&hosted, false),
            Verdict::Unreviewed
        );
        let p = policy(json!({"u/r#abcdef01": true, "git+file:///srv/r.git": true}));
        assert_eq!(p.verdict(&hosted, false), Verdict::Allowed);
        assert_eq!(p.verdict(&plain, false), Verdict::Allowed);
        let p = policy(json!({"github:u/r#abcdef02": true, "github:u/other": true}));
        assert_eq!(p.verdict(&hosted, false), Verdict::Unreviewed);
        let p = policy(json!({"https://github.com/u/r.git": true, "github:u/r#abc": false}));
        assert_eq!(p.verdict(&hosted, false), Verdict::Denied);
    }

    #[test]
    fn npmrc_list_applies_only_without_package_json_entries() {
        let cfg = NpmConfig::from_pairs([("allow-scripts".to_string(), "a,b".to_string())]);
        let p = Policy::load(&json!({}), &cfg);
        assert_eq!(p.source, Source::Npmrc);
        assert_eq!(p.verdict(&reg("b", "1.0.0"), false), Verdict::Allowed);
        let p = Policy::load(&json!({"allowScripts": {"c": true}}), &cfg);
        assert_eq!(p.verdict(&reg("b", "1.0.0"), false), Verdict::Unreviewed);
        assert_eq!(p.warnings.len(), 1);
        let p = Policy::load(
            &json!({"hoard": {"allowScripts": {"c": true}}}),
            &NpmConfig::default(),
        );
        assert_eq!(p.source, Source::HoardField);
        assert_eq!(p.verdict(&reg("c", "1.0.0"), false), Verdict::Allowed);
        assert!(p.warnings[0].contains("top-level"));
    }

    #[test]
    fn approve_pins_rewrites_stale_pins_and_never_overrides_a_deny() {
        let mut m = json!({"other": false, "scripty@1.0.0": true})
            .as_object()
            .unwrap()
            .clone();
        let (c, w) = approve(&mut m, &[reg("scripty", "1.1.0")], true);
        assert!(w.is_none());
        assert_eq!(
            Value::Object(m.clone()),
            json!({"other": false, "scripty@1.1.0": true})
        );
        assert_eq!(
            c.iter()
                .map(|c| (c.key.as_str(), c.change))
                .collect::<Vec<_>>(),
            [
                ("scripty@1.0.0", "removed-stale"),
                ("scripty@1.1.0", "added")
            ]
        );
        let order: Vec<&String> = m.keys().collect();
        assert_eq!(order, ["other", "scripty@1.1.0"]);
        // A name-only entry is replaced by the pin.
        let mut m = json!({"scripty": true}).as_object().unwrap().clone();
        approve(&mut m, &[reg("scripty", "1.1.0")], true);
        assert_eq!(Value::Object(m), json!({"scripty@1.1.0": true}));
        // Without a resolved URL: by name, with a warning.
        let mut m = json!({"scripty@1.0.0": true}).as_object().unwrap().clone();
        let (_, w) = approve(&mut m, &[Identity::of("scripty", "1.1.0", "")], true);
        assert_eq!(Value::Object(m), json!({"scripty": true}));
        assert!(w.unwrap().contains("no \"resolved\""));
        // Denials survive.
        let mut m = json!({"other": false}).as_object().unwrap().clone();
        let (c, w) = approve(&mut m, &[reg("other", "1.0.0")], true);
        assert!(c.is_empty() && w.unwrap().contains("other is denied"));
        // --no-allow-scripts-pin: name-only.
        let mut m = json!({"x@1.0.0": true}).as_object().unwrap().clone();
        approve(&mut m, &[reg("x", "2.0.0")], false);
        assert_eq!(Value::Object(m), json!({"x": true}));
    }

    #[test]
    fn deny_is_name_only_and_prune_drops_what_matches_nothing() {
        let mut m = json!({"a@1.0.0": true, "b": true})
            .as_object()
            .unwrap()
            .clone();
        deny(&mut m, &reg("a", "1.0.0"));
        assert_eq!(Value::Object(m.clone()), json!({"b": true, "a": false}));
        m.insert("gone".into(), json!(true));
        m.insert("c@1.0.0".into(), json!(true));
        m.insert("not a key!".into(), json!(true));
        let installed = [
            (reg("a", "1.0.0"), true),
            (reg("b", "1.0.0"), false),
            (reg("c", "2.0.0"), true),
        ];
        let c = prune(&mut m, &installed);
        assert_eq!(Value::Object(m), json!({"a": false, "not a key!": true}));
        assert_eq!(c.len(), 3);
    }
}
