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
        ("min-release-age=1\nmin-release-age-exclude[]=you*\n", "1.2.0"),
        ("minimum-release-age=1440\nminimum-release-age-exclude[]=young\n", "1.2.0"),
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
        assert_eq!(installed_version(&ctx.project, "undated").as_deref(), Some("1.0.0"));
    }
    // The flags and the environment set the same thing.
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": {"young": "^1.0.0"}}));
    ctx.ok(&["install", "--min-release-age", "1"]);
    assert_eq!(installed_version(&ctx.project, "young").as_deref(), Some("1.1.0"));
    let ctx = TestContext::new()
        .with_registry(&reg.url)
        .env("npm_config_minimum_release_age", "1440");
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": {"young": "latest"}}));
    ctx.ok(&["install"]);
    // `latest` is too young: the newest version up to it that is old enough, as npm does.
    assert_eq!(installed_version(&ctx.project, "young").as_deref(), Some("1.1.0"));
}

#[test]
fn nothing_old_enough_is_an_error_naming_package_range_cutoff_and_versions() {
    let reg = aging_registry();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": {"fresh": "^2.0.0"}}));
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
    assert!(stderr(&out).contains("min-release-age=a week"), "{}", stderr(&out));
}

#[test]
fn a_locked_version_younger_than_the_cooldown_warns_and_fails_hoard_ci() {
    let reg = aging_registry();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": {"young": "^1.0.0"}}));
    ctx.ok(&["install"]);
    assert_eq!(installed_version(&ctx.project, "young").as_deref(), Some("1.2.0"));
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
    assert_eq!(installed_version(&ctx.project, "young").as_deref(), Some("1.2.0"));
    let out = ctx.run(&["ci"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("young@1.2.0") && err.contains("hoard ci"), "{err}");
}
