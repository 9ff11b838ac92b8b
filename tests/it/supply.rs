//! Supply-chain safety: the release-age cooldown (npm's and pnpm's settings), script approvals
//! shared with npm (`allowScripts`), registry signatures and provenance, advisories. All against
//! the test registry, which records publication times, signs with its own P-256 key and serves
//! `/-/npm/v1/keys` and the bulk advisory endpoint.

use std::path::Path;

use serde_json::{Value, json};

use crate::context::*;
use crate::registry::*;

fn installed_version(dir: &Path, name: &str) -> Option<String> {
    let v: Value = serde_json::from_slice(
        &std::fs::read(dir.join("node_modules").join(name).join("package.json")).ok()?,
    )
    .ok()?;
    v["version"].as_str().map(String::from)
}

/// `young` has an old 1.0.0 and 1.1.0, and a 1.2.0 (latest) published two hours ago.
fn aging_registry() -> Registry {
    let reg = Registry::start();
    reg.publish(Pkg::new("young", "1.0.0").age_hours(24.0 * 30.0));
    reg.publish(Pkg::new("young", "1.1.0").age_hours(24.0 * 3.0));
    reg.publish(Pkg::new("young", "1.2.0").age_hours(2.0));
    reg.publish(Pkg::new("fresh", "2.0.0").age_hours(1.0));
    reg.publish(Pkg::new("fresh", "2.0.1").age_hours(0.5));
    reg.publish(Pkg::new("undated", "1.0.0"));
    reg
}

#[test]
fn npm_days_and_pnpm_minutes_make_the_same_pick_and_excludes_are_exempt() {
    let reg = aging_registry();
    for (rc, want) in [
        ("", "1.2.0"),
        ("min-release-age=1\n", "1.1.0"),
        ("minimum-release-age=1440\n", "1.1.0"),
        ("min-release-age=7\n", "1.0.0"),
        (
            "min-release-age=1\nmin-release-age-exclude[]=you*\n",
            "1.2.0",
        ),
        (
            "minimum-release-age=1440\nminimum-release-age-exclude[]=young\n",
            "1.2.0",
        ),
    ] {
        let ctx = TestContext::new().with_registry(&reg.url);
        ctx.write_project(&json!({"name": "app", "version": "1.0.0",
                                  "dependencies": {"young": "^1.0.0", "undated": "1"}}));
        std::fs::write(ctx.project.join(".npmrc"), rc).unwrap();
        ctx.ok(&["install"]);
        assert_eq!(
            installed_version(&ctx.project, "young").as_deref(),
            Some(want),
            "with {rc:?}"
        );
        // A version the registry gives no time for passes, as in npm.
        assert_eq!(
            installed_version(&ctx.project, "undated").as_deref(),
            Some("1.0.0")
        );
    }
    // The flags and the environment set the same thing.
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(
        &json!({"name": "app", "version": "1.0.0", "dependencies": {"young": "^1.0.0"}}),
    );
    ctx.ok(&["install", "--min-release-age", "1"]);
    assert_eq!(
        installed_version(&ctx.project, "young").as_deref(),
        Some("1.1.0")
    );
    let ctx = TestContext::new()
        .with_registry(&reg.url)
        .env("npm_config_minimum_release_age", "1440");
    ctx.write_project(
        &json!({"name": "app", "version": "1.0.0", "dependencies": {"young": "latest"}}),
    );
    ctx.ok(&["install"]);
    // `latest` is too young: the newest version up to it that is old enough, as npm does.
    assert_eq!(
        installed_version(&ctx.project, "young").as_deref(),
        Some("1.1.0")
    );
}

#[test]
fn nothing_old_enough_is_an_error_naming_package_range_cutoff_and_versions() {
    let reg = aging_registry();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(
        &json!({"name": "app", "version": "1.0.0", "dependencies": {"fresh": "^2.0.0"}}),
    );
    std::fs::write(ctx.project.join(".npmrc"), "min-release-age=1\n").unwrap();
    let out = ctx.run(&["install"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    for part in [
        "`fresh`",
        "`^2.0.0`",
        "published before",
        "min-release-age=1",
        "2.0.1 (",
        "2.0.0 (",
    ] {
        assert!(err.contains(part), "missing {part:?} in: {err}");
    }
    assert!(!ctx.project.join("node_modules").exists());
    assert!(!ctx.project.join("package-lock.json").exists());
    // A value that is not a number names the setting.
    std::fs::write(ctx.project.join(".npmrc"), "min-release-age=a week\n").unwrap();
    let out = ctx.run(&["install"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("min-release-age=a week"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_locked_version_younger_than_the_cooldown_warns_and_fails_hoard_ci() {
    let reg = aging_registry();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(
        &json!({"name": "app", "version": "1.0.0", "dependencies": {"young": "^1.0.0"}}),
    );
    ctx.ok(&["install"]);
    assert_eq!(
        installed_version(&ctx.project, "young").as_deref(),
        Some("1.2.0")
    );
    std::fs::write(ctx.project.join(".npmrc"), "min-release-age=1\n").unwrap();
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    let out = ctx.ok(&["--json", "install"]);
    let warned = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|v| {
            v["type"] == "warning"
                && v["code"] == "too-young"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("young@1.2.0") && m.contains("min-release-age=1"))
        });
    assert!(warned, "no too-young warning in:\n{out}");
    // Installed as locked.
    assert_eq!(
        installed_version(&ctx.project, "young").as_deref(),
        Some("1.2.0")
    );
    let out = ctx.run(&["ci"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("young@1.2.0") && err.contains("hoard ci"),
        "{err}"
    );
}

/// `pinned` 1.0.0 and 1.1.0, `denied` and `unrev`, each with a postinstall that leaves a file.
fn scripts_registry() -> Registry {
    let reg = Registry::start();
    for (name, version) in [
        ("pinned", "1.0.0"),
        ("pinned", "1.1.0"),
        ("denied", "1.0.0"),
        ("unrev", "1.0.0"),
    ] {
        reg.publish(Pkg::new(name, version).script("postinstall", "echo ran > ran.txt"));
    }
    reg.tag("pinned", "latest", "1.0.0");
    reg
}

fn ran(ctx: &TestContext, name: &str) -> bool {
    ctx.project
        .join("node_modules")
        .join(name)
        .join("ran.txt")
        .exists()
}

fn allow_scripts(ctx: &TestContext) -> Value {
    let v: Value =
        serde_json::from_slice(&std::fs::read(ctx.project.join("package.json")).unwrap()).unwrap();
    v["allowScripts"].clone()
}

#[test]
fn npm_allow_scripts_run_pinned_skip_denied_and_name_unreviewed() {
    let reg = scripts_registry();
    let ctx = TestContext::new().with_registry(&reg.url);
    let deps = |pinned: &str| {
        json!({"name": "app", "version": "1.0.0",
            "dependencies": {"pinned": pinned, "denied": "1", "unrev": "1"},
            "allowScripts": {"pinned@1.0.0": true, "denied": false}})
    };
    ctx.write_project(&deps("1.0.0"));
    let out = ctx.run(&["install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        ran(&ctx, "pinned"),
        "the approved pinned version's script runs"
    );
    assert!(!ran(&ctx, "denied") && !ran(&ctx, "unrev"));
    assert!(!err.contains("denied@"), "a denial is silent: {err}");
    assert!(
        err.contains("unrev@1.0.0 (postinstall: echo ran > ran.txt)")
            && err.contains("hoard install-scripts approve <pkg>"),
        "the unreviewed one is named with the command that approves it: {err}"
    );

    // strict-allow-scripts: an unreviewed script fails the install before anything changes.
    std::fs::write(ctx.project.join(".npmrc"), "strict-allow-scripts=true\n").unwrap();
    let lock_before = std::fs::read(ctx.project.join("package-lock.json")).unwrap();
    let out = ctx.run(&["install", "--force"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("strict-allow-scripts") && err.contains("unrev@1.0.0"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(ctx.project.join("package-lock.json")).unwrap(),
        lock_before
    );
    std::fs::remove_file(ctx.project.join(".npmrc")).unwrap();

    // After an upgrade the pin no longer applies...
    ctx.write_project(&deps("^1.1.0"));
    ctx.ok(&["install"]);
    let ls = ctx.ok(&["install-scripts", "ls"]);
    assert!(
        ls.contains("pinned@1.1.0 (postinstall: echo ran > ran.txt)"),
        "{ls}"
    );
    assert!(
        ls.contains("unrev@1.0.0") && !ls.contains("denied@"),
        "{ls}"
    );
    assert!(!ran(&ctx, "pinned"), "1.1.0 is unreviewed");
    // ...until `install-scripts approve` rewrites the entry as npm does.
    let out = ctx.ok(&["install-scripts", "approve", "pinned"]);
    assert!(
        out.contains("Approved pinned:") && out.contains("removed-stale pinned@1.0.0"),
        "{out}"
    );
    assert_eq!(
        allow_scripts(&ctx),
        json!({"denied": false, "pinned@1.1.0": true})
    );
    let order: Vec<String> = allow_scripts(&ctx)
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(order, ["denied", "pinned@1.1.0"]);
    ctx.ok(&["install"]);
    assert!(ran(&ctx, "pinned"));
    // Denials survive `approve --all`; the unreviewed one gets its pin.
    ctx.ok(&["install-scripts", "approve", "--all"]);
    assert_eq!(
        allow_scripts(&ctx),
        json!({"denied": false, "pinned@1.1.0": true, "unrev@1.0.0": true})
    );
    // An approval never overrides a denial.
    let out = ctx.run(&["approve-scripts", "denied"]);
    assert!(
        stderr(&out).contains("denied is denied"),
        "{}",
        stderr(&out)
    );
    assert_eq!(allow_scripts(&ctx)["denied"], false);
    // Deny is name-only and drops the pins.
    ctx.ok(&["deny-scripts", "unrev"]);
    assert_eq!(
        allow_scripts(&ctx),
        json!({"denied": false, "pinned@1.1.0": true, "unrev": false})
    );
}

#[test]
fn prune_ignore_scripts_allow_all_and_the_older_hoard_field() {
    let reg = scripts_registry();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0",
        "dependencies": {"pinned": "1.0.0", "unrev": "1"},
        "hoard": {"allowScripts": {"unrev": true}}}));
    let out = ctx.run(&["install"]);
    assert!(out.status.success());
    assert!(ran(&ctx, "unrev"), "the older field still allows");
    assert!(
        stderr(&out).contains("top-level \"allowScripts\""),
        "{}",
        stderr(&out)
    );
    // The first edit moves it to npm's field.
    ctx.ok(&["install-scripts", "approve", "pinned"]);
    assert_eq!(
        allow_scripts(&ctx),
        json!({"unrev": true, "pinned@1.0.0": true})
    );
    // prune: entries for packages that are not installed go; dry-run writes nothing.
    let mut pkg: Value =
        serde_json::from_slice(&std::fs::read(ctx.project.join("package.json")).unwrap()).unwrap();
    pkg["allowScripts"]["ghost"] = json!(true);
    pkg["allowScripts"]["pinned@0.9.0"] = json!(true);
    write_json(&ctx.project.join("package.json"), &pkg);
    let out = ctx.ok(&["install-scripts", "prune", "--dry-run"]);
    assert!(
        out.contains("ghost") && out.contains("pinned@0.9.0"),
        "{out}"
    );
    assert!(allow_scripts(&ctx).get("ghost").is_some());
    ctx.ok(&["install-scripts", "prune"]);
    assert_eq!(
        allow_scripts(&ctx),
        json!({"unrev": true, "pinned@1.0.0": true})
    );

    // ignore-scripts wins over every approval, and the project's own scripts.
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    std::fs::write(ctx.project.join(".npmrc"), "ignore-scripts=true\n").unwrap();
    let out = ctx.run(&["install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!ran(&ctx, "pinned") && !ran(&ctx, "unrev"));
    // dangerously-allow-all-scripts runs everything, denied ones included.
    let mut pkg: Value =
        serde_json::from_slice(&std::fs::read(ctx.project.join("package.json")).unwrap()).unwrap();
    pkg["allowScripts"] = json!({"unrev": false});
    write_json(&ctx.project.join("package.json"), &pkg);
    std::fs::write(
        ctx.project.join(".npmrc"),
        "dangerously-allow-all-scripts=true\n",
    )
    .unwrap();
    ctx.ok(&["install"]);
    assert!(ran(&ctx, "pinned") && ran(&ctx, "unrev"));
}

#[test]
fn approve_builds_asks_package_by_package() {
    let reg = scripts_registry();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0",
        "dependencies": {"pinned": "1.0.0", "denied": "1", "unrev": "1"}}));
    ctx.ok(&["install"]);
    let mut child = ctx
        .hoard()
        .arg("approve-builds")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    // In name order: denied, pinned, unrev.
    child.stdin.take().unwrap().write_all(b"d\ny\nn\n").unwrap();
    let out = wait_output(child, std::time::Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("pinned@1.0.0") && text.contains("postinstall: echo ran > ran.txt"),
        "{text}"
    );
    assert_eq!(
        allow_scripts(&ctx),
        json!({"pinned@1.0.0": true, "denied": false})
    );
}

/// The same project approved with npm's own command and with hoard's: the same field.
#[test]
fn hoard_writes_what_npm_install_scripts_writes() {
    if !which("npm") {
        return skip(
            "hoard_writes_what_npm_install_scripts_writes",
            "npm is not installed",
        );
    }
    let version = std::process::Command::new("npm")
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let parts: Vec<u64> = version.split('.').filter_map(|p| p.parse().ok()).collect();
    if parts.len() < 2 || (parts[0], parts[1]) < (11, 19) {
        return skip(
            "hoard_writes_what_npm_install_scripts_writes",
            &format!("npm {version} has no install-scripts command (11.19 added it)"),
        );
    }
    let reg = scripts_registry();
    let start = json!({"name": "app", "version": "1.0.0",
        "dependencies": {"pinned": "1.0.0", "denied": "1", "unrev": "1"},
        "allowScripts": {"pinned@1.0.0": true, "denied": false}});
    let steps: [&[&str]; 3] = [
        &["approve", "pinned"],
        &["approve", "--all"],
        &["deny", "unrev"],
    ];
    // npm, with its cache and config kept inside the test's own folders.
    let npm_dir = tempfile::tempdir().unwrap();
    write_json(&npm_dir.path().join("package.json"), &start);
    let npm = |args: &[&str]| {
        let out = std::process::Command::new("npm")
            .args(args)
            .current_dir(npm_dir.path())
            .env("npm_config_registry", &reg.url)
            .env("npm_config_cache", npm_dir.path().join(".cache"))
            .env("npm_config_userconfig", npm_dir.path().join(".npmrc-user"))
            .env("npm_config_omit_lockfile_registry_resolved", "false")
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false")
            .output()
            .unwrap();
        assert!(out.status.success(), "npm {args:?}: {}", stderr(&out));
    };
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&start);
    npm(&["install", "--ignore-scripts"]);
    ctx.ok(&["install"]);
    // An upgrade, so the first approval rewrites a stale pin.
    let mut upgraded = start.clone();
    upgraded["dependencies"]["pinned"] = json!("^1.1.0");
    write_json(&npm_dir.path().join("package.json"), &upgraded);
    ctx.write_project(&upgraded);
    npm(&["install", "--ignore-scripts"]);
    ctx.ok(&["install"]);
    for step in steps {
        let mut args = vec!["install-scripts"];
        args.extend_from_slice(step);
        npm(&args);
        ctx.ok(&args);
        let theirs: Value =
            serde_json::from_slice(&std::fs::read(npm_dir.path().join("package.json")).unwrap())
                .unwrap();
        let ours = allow_scripts(&ctx);
        assert_eq!(ours, theirs["allowScripts"], "after {args:?}");
        let order = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            order(&ours),
            order(&theirs["allowScripts"]),
            "after {args:?}"
        );
    }
}

fn install_err(ctx: &TestContext) -> String {
    let out = ctx.run(&["install"]);
    assert!(!out.status.success(), "the install should fail");
    assert!(
        !ctx.project.join("node_modules").exists(),
        "nothing was linked"
    );
    assert!(
        !ctx.project.join("package-lock.json").exists(),
        "no lockfile was written"
    );
    stderr(&out)
}

#[test]
fn registry_signatures_are_checked_and_a_bad_one_always_fails() {
    let reg = Registry::start();
    reg.publish(Pkg::new("good", "1.0.0"));
    reg.publish(Pkg::new("tampered", "1.0.0").signing(Signing::Tampered));
    reg.publish(Pkg::new("stranger", "1.0.0").signing(Signing::UnknownKey));
    reg.publish(Pkg::new("old", "1.0.0").age_hours(24.0 * 20.0));
    reg.publish(Pkg::new("late", "1.0.0").age_hours(24.0 * 2.0));
    reg.publish(Pkg::new("unsigned", "1.0.0").signing(Signing::Unsigned));
    let project = |deps: Value| json!({"name": "app", "version": "1.0.0", "dependencies": deps});

    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&project(json!({"good": "1", "old": "1", "late": "1"})));
    let out = ctx.ok(&["--json", "install"]);
    assert!(
        !out.contains("signature"),
        "all verified, nothing said: {out}"
    );
    assert_eq!(reg.count("/-/npm/v1/keys"), 1);

    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&project(json!({"good": "1", "tampered": "1"})));
    let err = install_err(&ctx);
    for part in [
        "tampered@1.0.0",
        "invalid registry signature",
        KEYID,
        reg.url.as_str(),
    ] {
        assert!(err.contains(part), "missing {part:?} in: {err}");
    }
    // Even with verify-signatures=warn spelled out: a bad signature always fails.
    std::fs::write(ctx.project.join(".npmrc"), "verify-signatures=warn\n").unwrap();
    install_err(&ctx);

    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&project(json!({"stranger": "1"})));
    let err = install_err(&ctx);
    assert!(err.contains("stranger@1.0.0 has a registry signature with keyid: SHA256:unknown but no corresponding public key"), "{err}");

    // A key that expired before a version was published does not vouch for it.
    reg.expire_key(&hours_ago(24.0 * 10.0));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&project(json!({"old": "1"})));
    ctx.ok(&["install"]);
    let ctx2 = TestContext::new().with_registry(&reg.url);
    ctx2.write_project(&project(json!({"late": "1"})));
    let err = install_err(&ctx2);
    assert!(
        err.contains("late@1.0.0") && err.contains("has expired"),
        "{err}"
    );
    reg.inner_reset_key_expiry();

    // Missing: a warning by default, an error under `require`, nothing under `off`.
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&project(json!({"unsigned": "1"})));
    let out = ctx.run(&["install"]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("unsigned@1.0.0") && stderr(&out).contains("no registry signature"),
        "{}",
        stderr(&out)
    );
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&project(json!({"unsigned": "1"})));
    std::fs::write(ctx.project.join(".npmrc"), "verify-signatures=require\n").unwrap();
    let err = install_err(&ctx);
    assert!(err.contains("verify-signatures=require"), "{err}");
    std::fs::write(ctx.project.join(".npmrc"), "verify-signatures=off\n").unwrap();
    let out = ctx.run(&["install"]);
    assert!(
        out.status.success() && !stderr(&out).contains("signature"),
        "{}",
        stderr(&out)
    );

    // A registry that publishes no keys: nothing to verify against, as npm treats it.
    reg.without_keys();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&project(json!({"tampered": "1"})));
    ctx.ok(&["install"]);
}

#[test]
fn audit_signatures_reports_verified_missing_invalid_and_attestations() {
    let reg = Registry::start();
    reg.publish(Pkg::new("good", "1.0.0").attest(false));
    reg.publish(Pkg::new("forged", "1.0.0").attest(true));
    reg.publish(Pkg::new("unsigned", "1.0.0").signing(Signing::Unsigned));
    reg.publish(Pkg::new("later", "1.0.0"));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0",
        "dependencies": {"good": "1", "forged": "1", "unsigned": "1", "later": "1"}}));
    ctx.ok(&["install"]);
    // The registry re-signs `later` badly after it was locked.
    reg.publish(Pkg::new("later", "1.0.0").signing(Signing::Tampered));
    let out = ctx.run(&["audit", "signatures"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for part in [
        "audited 4 packages",
        "2 packages have verified registry signatures",
        "1 package has a verified attestation",
        "1 package has a missing registry signature but the registry is providing signing keys",
        &format!("unsigned@1.0.0 ({})", reg.url),
        "1 package has an invalid registry signature",
        "later@1.0.0",
        "1 package has an invalid attestation",
        "forged@1.0.0",
        "doesn't match what was signed",
        "Someone might have tampered",
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
    let out = ctx.run(&["--json", "audit", "signatures"]);
    assert_eq!(out.status.code(), Some(1));
    let out = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let good = lines.iter().find(|l| l["name"] == "good").unwrap();
    assert_eq!(good["status"], "verified");
    assert_eq!(
        good["attestations"],
        json!(["https://slsa.dev/provenance/v1"])
    );
}

#[test]
fn audit_reports_advisories_with_fixes_and_the_install_gate_refuses_them() {
    let reg = Registry::start();
    for v in ["1.0.0", "1.0.1", "2.0.0"] {
        reg.publish(Pkg::new("vuln", v));
    }
    reg.tag("vuln", "latest", "1.0.0");
    reg.publish(Pkg::new("low", "1.0.0"));
    reg.publish(Pkg::new("evil", "1.0.0"));
    reg.advisory("vuln", json!({"id": 1001, "url": "https://github.com/advisories/GHSA-1", "title": "Prototype pollution in vuln",
        "severity": "high", "vulnerable_versions": "<1.0.1", "cwe": ["CWE-1321"]}));
    reg.advisory("low", json!({"id": 1002, "url": "https://github.com/advisories/GHSA-2", "title": "Slow regex in low",
        "severity": "low", "vulnerable_versions": "*", "cwe": ["CWE-1333"]}));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0",
        "dependencies": {"vuln": "~1.0.0", "low": "1"}}));
    // Without audit-level, installs ask nothing.
    ctx.ok(&["install"]);
    assert!(reg.advisory_requests().is_empty());
    let out = ctx.run(&["audit"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    for part in [
        "vuln  <1.0.1",
        "Severity: high",
        "Prototype pollution in vuln - https://github.com/advisories/GHSA-1",
        "fix available: 1.0.1 (`hoard update vuln`)",
        "node_modules/vuln",
        "No fix available",
        "2 vulnerabilities (1 low, 1 high)",
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
    assert_eq!(
        reg.advisory_requests()[0],
        json!({"low": ["1.0.0"], "vuln": ["1.0.0"]})
    );
    // --audit-level decides the exit code.
    assert_eq!(
        ctx.run(&["audit", "--audit-level", "critical"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        ctx.run(&["audit", "--audit-level", "high"]).status.code(),
        Some(1)
    );

    // audit-level in .npmrc: the install refuses versions at or above it, before linking.
    std::fs::write(ctx.project.join(".npmrc"), "audit-level=high\n").unwrap();
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    let out = ctx.run(&["install"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("vuln@1.0.0: high — Prototype pollution in vuln")
            && err.contains("fixed in 1.0.1"),
        "{err}"
    );
    assert!(!err.contains("low@1.0.0"), "below the level: {err}");
    assert!(!ctx.project.join("node_modules").exists());
    // audit=false turns the gate off.
    std::fs::write(
        ctx.project.join(".npmrc"),
        "audit-level=high\naudit=false\n",
    )
    .unwrap();
    ctx.ok(&["install"]);

    // Malware blocks whatever the level.
    reg.advisory("evil", json!({"id": 1003, "url": "https://github.com/advisories/GHSA-3", "title": "Malware in evil",
        "severity": "critical", "vulnerable_versions": ">=0", "cwe": ["CWE-506"]}));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": {"evil": "1"}}));
    std::fs::write(ctx.project.join(".npmrc"), "audit-level=none\n").unwrap();
    let out = ctx.run(&["install"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("evil@1.0.0: MALWARE"),
        "{}",
        stderr(&out)
    );
}
