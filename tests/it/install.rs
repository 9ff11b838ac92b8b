//! Installing: npm semantics (ranges, tags, aliases, nesting, peers, optional, dev, os), the
//! lockfile, incremental and no-op re-installs, layouts, link methods, bins, scripts, errors.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::context::*;
use crate::registry::*;

fn lock(ctx: &TestContext) -> Value {
    serde_json::from_slice(&std::fs::read(ctx.project.join("package-lock.json")).unwrap()).unwrap()
}

fn version_at(dir: &Path, loc: &str) -> Option<String> {
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.join(loc).join("package.json")).ok()?).ok()?;
    v["version"].as_str().map(String::from)
}

/// Pin the top-level d to 1.1.0 in the project's lockfile by hand (as if locked earlier).
fn pin_d_to_1_1_0(ctx: &TestContext, reg: &Registry) {
    let mut l = lock(ctx);
    let entry = &mut l["packages"]["node_modules/d"];
    entry["version"] = json!("1.1.0");
    entry["resolved"] = json!(format!("{}d/-/d-1.1.0.tgz", reg.url));
    entry["integrity"] = json!(sri(&Pkg::new("d", "1.1.0").pack()));
    write_json(&ctx.project.join("package-lock.json"), &l);
}

/// A small ecosystem: conflicting versions, tags, peers, optional and platform packages.
fn ecosystem() -> Registry {
    let reg = Registry::start();
    reg.publish(Pkg::new("a", "1.0.0"));
    reg.publish(Pkg::new("a", "1.2.0"));
    reg.publish(Pkg::new("a", "2.0.0"));
    reg.publish(Pkg::new("a", "2.1.0-beta.1"));
    reg.tag("a", "latest", "1.2.0");
    reg.tag("a", "next", "2.1.0-beta.1");
    reg.publish(Pkg::new("b", "1.0.0").dep("a", "^2.0.0"));
    reg.publish(Pkg::new("c", "1.0.0").dep("a", "^1.0.0").dep("d", "~1.1.0"));
    reg.publish(Pkg::new("d", "1.1.0"));
    reg.publish(Pkg::new("d", "1.1.5"));
    reg.publish(Pkg::new("d", "1.2.0"));
    reg.publish(
        Pkg::new("tool", "3.0.0")
            .file("bin/cli.js", b"#!/usr/bin/env node\nconsole.log('tool ok')\n", 0o644)
            .bin(json!({"tool": "bin/cli.js", "../evil": "bin/cli.js", "escape": "../../../etc/passwd"})),
    );
    reg.publish(Pkg::new("plugin", "1.0.0").peer("host", "^2.0.0"));
    reg.publish(Pkg::new("host", "1.0.0"));
    reg.publish(Pkg::new("host", "2.3.0"));
    reg.publish(Pkg::new("winonly", "1.0.0").os(&["win32"]));
    reg.publish(Pkg::new("d", "1.1.6").optional("winonly", "1.0.0"));
    reg.tag("d", "latest", "1.2.0");
    reg.publish(Pkg::new("devdep", "1.0.0"));
    reg
}

#[test]
fn installs_like_npm_with_nesting_tags_aliases_and_bins() {
    let reg = ecosystem();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({
        "name": "app", "version": "1.0.0",
        "dependencies": {"a": "^1.0.0", "b": "1.0.0", "c": "*", "tool": "latest", "aliased": "npm:a@2.0.0", "plugin": "1"},
        "optionalDependencies": {"winonly": "1.0.0", "missing-optional": "^1.0.0"},
        "devDependencies": {"devdep": "^1.0.0"}
    }));
    let out = ctx.ok(&["--json", "install"]);
    let s = summary(&out);
    assert_eq!(s["up_to_date"], false);
    let p = &ctx.project;
    // `latest` (1.2.0) satisfies ^1.0.0 and wins.
    assert_eq!(version_at(p, "node_modules/a").as_deref(), Some("1.2.0"));
    // b needs a@^2: nested under b, like npm.
    assert_eq!(
        version_at(p, "node_modules/b/node_modules/a").as_deref(),
        Some("2.0.0")
    );
    // c's a@^1 dedupes to the root copy; d~1.1.0 picks the highest 1.1.x (1.1.6).
    assert!(!p.join("node_modules/c/node_modules/a").exists());
    assert_eq!(version_at(p, "node_modules/d").as_deref(), Some("1.1.6"));
    // Alias installs the real package under the alias name.
    let aliased: Value = serde_json::from_slice(
        &std::fs::read(p.join("node_modules/aliased/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(aliased["name"], "a");
    assert_eq!(aliased["version"], "2.0.0");
    // Peer dependency installed automatically, at a version matching the peer range.
    assert_eq!(version_at(p, "node_modules/host").as_deref(), Some("2.3.0"));
    // Optional: wrong platform and 404 are skipped with a note.
    assert!(!p.join("node_modules/winonly").exists());
    assert!(out.contains("missing-optional"), "{out}");
    assert_eq!(
        version_at(p, "node_modules/devdep").as_deref(),
        Some("1.0.0")
    );
    // Bins: linked, executable, names reduced, escaping targets dropped.
    let bin = p.join("node_modules/.bin/tool");
    assert_eq!(
        std::fs::read_link(&bin).unwrap(),
        Path::new("../tool/bin/cli.js")
    );
    assert!(
        std::fs::metadata(&bin).unwrap().permissions().mode() & 0o111 != 0,
        "bin target executable"
    );
    assert!(p.join("node_modules/.bin/evil").exists());
    assert!(!p.join("node_modules/.bin/escape").exists());
    // Lockfile v3 with resolved + integrity for every package, and npm's flags.
    let l = lock(&ctx);
    assert_eq!(l["lockfileVersion"], 3);
    for (k, v) in l["packages"].as_object().unwrap() {
        if k.is_empty() {
            continue;
        }
        assert!(
            v["resolved"]
                .as_str()
                .is_some_and(|r| r.starts_with(&reg.url)),
            "{k}: {v}"
        );
        assert!(
            v["integrity"]
                .as_str()
                .is_some_and(|i| i.starts_with("sha512-")),
            "{k}: {v}"
        );
    }
    assert_eq!(l["packages"]["node_modules/devdep"]["dev"], true);
    assert_eq!(l["packages"]["node_modules/host"]["peer"], true);
    assert_eq!(l["packages"]["node_modules/aliased"]["name"], "a");
    assert_eq!(
        l["packages"]["node_modules/winonly"]["optional"], true,
        "platform-skipped optional stays in the lock"
    );
    assert_eq!(l["packages"][""]["dependencies"]["a"], "^1.0.0");

    // A second install is a no-op answered from the state file.
    let s2 = summary(&ctx.ok(&["--json", "install"]));
    assert_eq!(s2["up_to_date"], true, "{s2}");
}

#[test]
fn lockfile_is_followed_and_ci_is_strict() {
    let reg = ecosystem();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "dependencies": {"d": "^1.1.0"}}));
    ctx.ok(&["install"]);
    assert_eq!(
        version_at(&ctx.project, "node_modules/d").as_deref(),
        Some("1.2.0")
    );
    // Pin d to 1.1.0 in the lock by hand (as if locked earlier); install keeps it.
    pin_d_to_1_1_0(&ctx, &reg);
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    let meta_before = reg.count("/d");
    ctx.ok(&["ci"]);
    assert_eq!(
        version_at(&ctx.project, "node_modules/d").as_deref(),
        Some("1.1.0")
    );
    assert_eq!(
        reg.count("/d"),
        meta_before,
        "a lockfile install needs no metadata"
    );
    // `hoard update d` moves within the range.
    ctx.ok(&["update", "d"]);
    assert_eq!(
        version_at(&ctx.project, "node_modules/d").as_deref(),
        Some("1.2.0")
    );
    // A lock that no longer matches package.json fails `ci`, naming the mismatch.
    ctx.write_project(&json!({"name": "app", "dependencies": {"d": "^1.1.0", "a": "^1.0.0"}}));
    let out = ctx.run(&["ci"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("dependencies.a"), "{}", stderr(&out));
    // `install` re-resolves and keeps d where the lock had it.
    ctx.ok(&["install"]);
    assert_eq!(
        version_at(&ctx.project, "node_modules/a").as_deref(),
        Some("1.2.0")
    );
    assert_eq!(
        version_at(&ctx.project, "node_modules/d").as_deref(),
        Some("1.2.0")
    );
}

/// Every package folder under node_modules with its version, in order.
fn versions_under(nm: &Path) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut stack = vec![nm.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.join("package.json").is_file() {
                let rel = p.strip_prefix(nm).unwrap().display().to_string();
                out.push((rel.clone(), version_at(nm, &rel).unwrap_or_default()));
            }
            if p.join("node_modules").is_dir() {
                stack.push(p.join("node_modules"));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_lockfile_read_again_gives_its_tree_and_any_change_is_seen() {
    let reg = ecosystem();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "dependencies": {"d": "^1.1.0", "c": "1.0.0"}}));
    let nm = ctx.project.join("node_modules");
    let again = || {
        std::fs::remove_dir_all(&nm).unwrap();
        ctx.ok(&["install"]);
    };
    let taken = || {
        let line = "package-lock.json is unchanged since its tree was read";
        ctx.log().matches(line).count()
    };
    ctx.ok(&["install"]);
    let resolved = versions_under(&nm);
    assert!(
        resolved.contains(&("c/node_modules/d".into(), "1.1.6".into())),
        "{resolved:?}"
    );
    // The first install from the lockfile reads it; the next finds it unchanged.
    again();
    assert_eq!(taken(), 0);
    again();
    assert_eq!(taken(), 1);
    assert_eq!(versions_under(&nm), resolved);
    // The lockfile changes (d pinned to 1.1.0 by hand): the new lock is read and followed.
    pin_d_to_1_1_0(&ctx, &reg);
    again();
    assert_eq!(taken(), 1);
    assert_eq!(
        version_at(&ctx.project, "node_modules/d").as_deref(),
        Some("1.1.0")
    );
    again();
    assert_eq!(taken(), 2);
    assert_eq!(
        version_at(&ctx.project, "node_modules/d").as_deref(),
        Some("1.1.0")
    );
    // A setting changes (the project's .npmrc): read again, then taken again.
    std::fs::write(ctx.project.join(".npmrc"), "fund=false\n").unwrap();
    again();
    assert_eq!(taken(), 2);
    again();
    assert_eq!(taken(), 3);
    // package.json changes: c is gone, and the lockfile with it.
    ctx.write_project(&json!({"name": "app", "dependencies": {"d": "^1.1.0"}}));
    again();
    assert_eq!(taken(), 3);
    assert!(!nm.join("c").exists());
    assert!(lock(&ctx)["packages"].get("node_modules/c").is_none());
    assert!(lock(&ctx)["packages"].get("node_modules/d").is_some());
}

#[test]
fn incremental_reinstall_touches_only_what_changed() {
    let reg = ecosystem();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "dependencies": {"a": "^1.0.0", "d": "1.1.0"}}));
    ctx.ok(&["install"]);
    let a_index = ctx.project.join("node_modules/a/index.js");
    let ino_before = std::fs::metadata(&a_index)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    ctx.write_project(
        &json!({"name": "app", "dependencies": {"a": "^1.0.0", "d": "1.2.0", "devdep": "1"}}),
    );
    let s = summary(&ctx.ok(&["--json", "install"]));
    assert_eq!(s["added"], 2, "{s}");
    assert_eq!(s["unchanged"], 1, "{s}");
    let ino_after = std::fs::metadata(&a_index)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    assert_eq!(ino_before, ino_after);
    assert_eq!(
        version_at(&ctx.project, "node_modules/d").as_deref(),
        Some("1.2.0")
    );
    // Remove: package.json edited, folder gone, lock updated.
    ctx.ok(&["remove", "d"]);
    assert!(!ctx.project.join("node_modules/d").exists());
    assert!(lock(&ctx)["packages"].get("node_modules/d").is_none());
    // The removed folder is deleted in the background; that must not spoil the next no-op.
    let trash = ctx.project.join("node_modules/.hoard-trash");
    assert!(eventually(Duration::from_secs(10), || std::fs::read_dir(
        &trash
    )
    .map(|r| r.count() == 0)
    .unwrap_or(true)));
    let s = summary(&ctx.ok(&["--json", "install"]));
    assert_eq!(s["up_to_date"], true, "{s}");
    // A package deleted by hand is noticed (node_modules changed) and restored.
    std::fs::remove_dir_all(ctx.project.join("node_modules/a")).unwrap();
    ctx.ok(&["install"]);
    assert!(a_index.exists());
}

#[test]
fn add_edits_package_json_preserving_its_format() {
    let reg = ecosystem();
    let ctx = TestContext::new().with_registry(&reg.url);
    std::fs::write(
        ctx.project.join("package.json"),
        "{\n    \"name\": \"app\",\n    \"scripts\": {\"x\": \"true\"},\n    \"dependencies\": {\n        \"d\": \"^1.0.0\"\n    }\n}\n",
    )
    .unwrap();
    ctx.ok(&["add", "a", "tool@^3"]);
    ctx.ok(&["add", "-D", "-E", "devdep"]);
    let text = std::fs::read_to_string(ctx.project.join("package.json")).unwrap();
    assert!(text.contains("\n    \"scripts\""), "indent kept: {text}");
    assert!(
        text.find("\"scripts\"").unwrap() < text.find("\"dependencies\"").unwrap(),
        "key order kept: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["dependencies"]["a"], "^1.2.0");
    assert_eq!(v["dependencies"]["tool"], "^3.0.0");
    assert_eq!(v["devDependencies"]["devdep"], "1.0.0");
    assert!(ctx.project.join("node_modules/tool").exists());
}

#[test]
fn omit_dev_and_isolated_layout() {
    let reg = ecosystem();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "dependencies": {"b": "1.0.0", "tool": "3"}, "devDependencies": {"devdep": "1"}}));
    ctx.ok(&["install", "--omit", "dev"]);
    assert!(!ctx.project.join("node_modules/devdep").exists());
    assert!(ctx.project.join("node_modules/b").exists());
    // Lock still records dev deps (npm does).
    assert!(lock(&ctx)["packages"].get("node_modules/devdep").is_some());

    ctx.ok(&["install", "--layout", "isolated"]);
    let b = ctx.project.join("node_modules/b");
    assert!(
        std::fs::symlink_metadata(&b)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // b's dependencies are its siblings inside .hoard, where Node finds them from b's real path.
    assert_eq!(
        version_at(&ctx.project, "node_modules/.hoard/b@1.0.0/node_modules/a").as_deref(),
        Some("2.0.0"),
        "b sees its own a"
    );
    assert!(
        ctx.project
            .join("node_modules/.hoard/b@1.0.0/node_modules/b/index.js")
            .exists()
    );
    assert!(ctx.project.join("node_modules/.bin/tool").exists());
    if which("node") {
        let out = run_with_timeout(
            std::process::Command::new("node")
                .current_dir(&ctx.project)
                .args(["-e", "console.log(require('b').version + ' ' + require(require.resolve('a', {paths:[require.resolve('b')]})).version)"]),
            Duration::from_secs(30),
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "1.0.0 2.0.0",
            "{}",
            stderr(&out)
        );
    } else {
        skip(
            "omit_dev_and_isolated_layout (the require() check)",
            "node is not on PATH",
        );
    }
    // And back to hoisted.
    ctx.ok(&["install"]);
    assert!(
        !std::fs::symlink_metadata(&b)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!ctx.project.join("node_modules/.hoard").exists());
}

#[test]
fn scripts_are_denied_by_default_and_run_by_the_client_when_allowed() {
    let reg = Registry::start();
    reg.publish(
        Pkg::new("builder", "1.0.0")
            .file("build.sh", b"echo built > built.txt\n", 0o644)
            .script(
                "postinstall",
                "sh build.sh && echo \"$npm_lifecycle_event $npm_package_name\" > env.txt",
            ),
    );
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": {"builder": "1"}, "scripts": {"postinstall": "echo root > root.txt"}}));
    let out = ctx.run(&["install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("allowScripts"),
        "denial explains how to allow: {}",
        stderr(&out)
    );
    assert!(!ctx.project.join("node_modules/builder/built.txt").exists());
    assert!(
        ctx.project.join("root.txt").exists(),
        "the project's own scripts run"
    );
    let l = lock(&ctx);
    assert_eq!(
        l["packages"]["node_modules/builder"]["hasInstallScript"],
        true
    );

    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": {"builder": "1"}, "allowScripts": {"builder": true}}));
    ctx.ok(&["install"]);
    let dir = ctx.project.join("node_modules/builder");
    assert_eq!(
        std::fs::read_to_string(dir.join("built.txt"))
            .unwrap()
            .trim(),
        "built"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("env.txt")).unwrap().trim(),
        "postinstall builder"
    );
    // Scripts ran on copies: the store's file has one link only.
    let md = std::fs::metadata(dir.join("build.sh")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::nlink(&md), 1);
    // In the isolated layout the script runs in the package's own folder there.
    ctx.ok(&["install", "--layout", "isolated"]);
    let iso = ctx
        .project
        .join("node_modules/.hoard/builder@1.0.0/node_modules/builder");
    assert_eq!(
        std::fs::read_to_string(iso.join("built.txt"))
            .unwrap()
            .trim(),
        "built"
    );
}

#[test]
fn errors_name_the_package_and_what_to_do() {
    let reg = ecosystem();
    reg.publish(Pkg::new("private", "1.0.0"));
    reg.fault(
        "/private",
        Fault {
            require_auth: Some("Bearer t0ken".into()),
            ..Default::default()
        },
    );
    let ctx = TestContext::new().with_registry(&reg.url);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"nope-not-here": "1"}), "nope-not-here"),
        (
            json!({"a": "^9.0.0"}),
            "no version of `a` satisfies `^9.0.0`",
        ),
        (json!({"private": "1"}), "_authToken"),
        (
            json!({"gitdep": "git+file:///nonexistent/repo.git"}),
            "git dependency `git+file:///nonexistent/repo.git`",
        ),
    ];
    for (deps, needle) in cases {
        ctx.write_project(&json!({"name": "app", "dependencies": deps}));
        let out = ctx.run(&["install"]);
        assert_eq!(out.status.code(), Some(1), "{deps}");
        assert!(stderr(&out).contains(needle), "{deps}: {}", stderr(&out));
        assert!(
            !ctx.project.join("node_modules").exists(),
            "nothing installed on failure"
        );
    }
    let out = ctx.run(&["install", "--offline"]);
    assert_eq!(out.status.code(), Some(1));
    std::fs::write(
        ctx.project.join("package.json"),
        "{\n  \"name\": \"x\",\n  \"dependencies\": {,}\n}\n",
    )
    .unwrap();
    let out = ctx.run(&["install"]);
    assert!(
        stderr(&out).contains("package.json:3:"),
        "file:line:col: {}",
        stderr(&out)
    );
    // The token from .npmrc (with ${ENV} expansion) is sent to its registry.
    let host = reg.url.trim_start_matches("http:");
    std::fs::write(
        ctx.project.join(".npmrc"),
        format!("{host}:_authToken=${{MY_TOKEN}}\n"),
    )
    .unwrap();
    ctx.write_project(&json!({"name": "app", "dependencies": {"private": "1"}}));
    let out = run_with_timeout(
        ctx.hoard().env("MY_TOKEN", "t0ken").arg("install"),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        reg.auth_seen("/private")
            .contains(&Some("Bearer t0ken".into()))
    );
}

#[test]
fn offline_installs_from_the_store_only() {
    let reg = ecosystem();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "dependencies": {"c": "1"}}));
    ctx.ok(&["install"]);
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    std::fs::remove_file(ctx.project.join("package-lock.json")).unwrap();
    drop(reg);
    ctx.ok(&["install", "--offline"]);
    assert!(ctx.project.join("node_modules/c").exists());
}

/// The metadata fetched online is in the disk cache once the daemon has stopped (the cache is
/// written behind the install, and the daemon waits for those writes before it exits), so a
/// new daemon installs offline from it.
#[test]
fn offline_after_a_daemon_restart_resolves_from_the_metadata_fetched_before() {
    let reg = ecosystem();
    // Each write waits 300 ms: they are still queued when the daemon is asked to stop.
    let ctx = TestContext::new()
        .with_registry(&reg.url)
        .env("HOARD_FAILPOINT_METADATA_WRITE_DELAY_MS", "300");
    ctx.write_project(&json!({"name": "app", "dependencies": {"c": "1"}}));
    ctx.ok(&["install"]);
    ctx.ok(&["daemon", "stop"]);
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    std::fs::remove_file(ctx.project.join("package-lock.json")).unwrap();
    drop(reg);
    ctx.ok(&["install", "--offline"]);
    assert!(ctx.project.join("node_modules/c").exists());
}

/// The metadata writer's temp files in the store's `tmp/`.
fn metadata_temps(ctx: &TestContext) -> Vec<String> {
    let tmp = ctx.store.join("v1/tmp");
    let names = std::fs::read_dir(&tmp).into_iter().flatten().flatten();
    let names = names.map(|e| e.file_name().to_string_lossy().into_owned());
    names.filter(|n| n.starts_with("metadata-")).collect()
}

#[test]
fn a_metadata_write_cut_short_by_a_kill_leaves_nothing_once_the_next_daemon_starts() {
    let reg = ecosystem();
    // Each write waits 2 s between its temp file and the rename: one is half done for a while.
    let ctx = TestContext::new()
        .with_registry(&reg.url)
        .env("HOARD_FAILPOINT_METADATA_WRITE_DELAY_MS", "2000");
    ctx.write_project(&json!({"name": "app", "dependencies": {"c": "1"}}));
    ctx.ok(&["install"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metadata_temps(&ctx).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = ctx.daemon_pid().expect("the daemon runs");
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(ctx.wait_daemon_gone(Duration::from_secs(10)));
    assert!(
        !metadata_temps(&ctx).is_empty(),
        "the kill left a temp file"
    );
    let metadata = std::fs::read_dir(ctx.store.join("v1/metadata")).unwrap();
    for e in metadata.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            name.ends_with(".pk2") || name.starts_with("keys-"),
            "only whole cache files in metadata/: {name}"
        );
    }
    ctx.ok(&["daemon", "start"]);
    assert_eq!(metadata_temps(&ctx), Vec::<String>::new());
}

#[test]
fn cross_device_falls_back_to_copy_with_a_warning() {
    let shm = Path::new("/dev/shm");
    let same_dev = |a: &Path, b: &Path| {
        std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(a).unwrap())
            == std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(b).unwrap())
    };
    let reg = ecosystem();
    let ctx = TestContext::new().with_registry(&reg.url);
    if !shm.is_dir() || same_dev(shm, &ctx.store) {
        return skip(
            "cross_device_falls_back_to_copy_with_a_warning",
            "no second filesystem at /dev/shm",
        );
    }
    let proj = tempfile::tempdir_in(shm).unwrap();
    write_json(
        &proj.path().join("package.json"),
        &json!({"name": "x", "dependencies": {"a": "1"}}),
    );
    let out = run_with_timeout(
        ctx.hoard()
            .current_dir(proj.path())
            .args(["--json", "install"]),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(summary(&text)["link_method"], "copy");
    assert!(text.contains("EXDEV"), "one warning says why: {text}");
    let f = proj.path().join("node_modules/a/index.js");
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o644,
        "copies are ordinary files"
    );
}

#[test]
fn concurrent_installs_into_one_project_are_serialized() {
    let reg = ecosystem();
    // Each install stays 300 ms inside the project's lock: without the lock they would overlap.
    let ctx = TestContext::new()
        .with_registry(&reg.url)
        .env("HOARD_FAILPOINT_INSTALL_HOLD_MS", "300");
    ctx.write_project(&json!({"name": "app", "dependencies": {"b": "1", "c": "1", "tool": "3"}}));
    ctx.ok(&["daemon", "start"]);
    let kids: Vec<_> = (0..4)
        .map(|i| {
            let mut c = ctx.hoard();
            c.args(["install", "--force"]);
            if i % 2 == 1 {
                c.args(["--layout", "isolated"]);
            }
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for k in kids {
        let out = wait_output(k, Duration::from_secs(60));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // The daemon's log: each install finished before the next one started.
    let log = ctx.log();
    let events: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            if l.contains("install began (project locked)") {
                Some("started")
            } else if l.contains("install ended (project lock released next)") {
                Some("finished")
            } else {
                None
            }
        })
        .collect();
    assert_eq!(events.len(), 8, "{log}");
    for pair in events.chunks(2) {
        assert_eq!(
            pair,
            ["started", "finished"],
            "installs overlapped: {events:?}"
        );
    }
    // Whatever won last, the tree is complete and consistent.
    ctx.ok(&["install"]);
    assert!(ctx.project.join("node_modules/.bin/tool").exists());
    // b (first alphabetically) puts a@2 at the top; c's a@^1 nests, as npm places them.
    assert_eq!(
        version_at(&ctx.project, "node_modules/a").as_deref(),
        Some("2.0.0")
    );
    assert_eq!(
        version_at(&ctx.project, "node_modules/c/node_modules/a").as_deref(),
        Some("1.2.0")
    );
}

#[test]
fn a_project_of_another_user_is_refused() {
    if let Err(why) = can_act_as_nobody() {
        return skip("a_project_of_another_user_is_refused", &why);
    }
    let reg = ecosystem();
    let ctx = TestContext::new().with_registry(&reg.url);
    // The user (uid 65534) owns the store and home; the project belongs to root but is readable.
    for d in [
        ctx.root.path().to_path_buf(),
        ctx.home.clone(),
        ctx.store.clone(),
    ] {
        std::os::unix::fs::chown(&d, Some(65534), Some(65534)).unwrap();
    }
    ctx.write_project(&json!({"name": "app", "dependencies": {"a": "1"}}));
    std::fs::set_permissions(&ctx.project, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut c = ctx.hoard_as_nobody();
    c.arg("install");
    let out = run_with_timeout(&mut c, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("belongs to uid 0"),
        "{}",
        stderr(&out)
    );
    assert!(!ctx.project.join("node_modules").exists());
}

#[test]
fn workspaces_are_linked_and_their_deps_hoisted() {
    let reg = ecosystem();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "mono", "private": true, "workspaces": ["packages/*"], "dependencies": {"d": "1.1.0"}}));
    write_json(
        &ctx.project.join("packages/web/package.json"),
        &json!({"name": "@mono/web", "version": "0.1.0", "dependencies": {"a": "^1.0.0", "@mono/util": "*"}}),
    );
    write_json(
        &ctx.project.join("packages/util/package.json"),
        &json!({"name": "@mono/util", "version": "0.2.0", "dependencies": {"b": "1.0.0"}}),
    );
    ctx.ok(&["install"]);
    let web = ctx.project.join("node_modules/@mono/web");
    assert!(
        std::fs::symlink_metadata(&web)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::canonicalize(&web).unwrap(),
        ctx.project.join("packages/web").canonicalize().unwrap()
    );
    assert!(
        ctx.project.join("node_modules/a").exists(),
        "workspace deps hoisted"
    );
    assert!(ctx.project.join("node_modules/b").exists());
    let l = lock(&ctx);
    assert_eq!(l["packages"]["node_modules/@mono/web"]["link"], true);
    assert_eq!(l["packages"]["packages/web"]["name"], "@mono/web");
    // The lock installs again as it is.
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    ctx.ok(&["ci"]);
    assert!(web.exists());
}

#[test]
fn watch_streams_manifest_and_install_events() {
    let reg = ecosystem();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "dependencies": {"a": "1"}}));
    ctx.ok(&["daemon", "start"]);
    let sock = ctx.socket();
    let project = ctx.project.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let kinds = rt.block_on(async {
        let channel = hoard_proto::uds_channel(&sock, std::time::Duration::from_secs(5))
            .await
            .expect("connect");
        let mut client = hoard_proto::v1::hoard_client::HoardClient::new(channel);
        let mut stream = client
            .watch(hoard_proto::v1::WatchRequest {
                project_dir: project.display().to_string(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert_eq!(
            first.kind,
            hoard_proto::v1::watch_event::Kind::Watching as i32
        );
        write_json(
            &project.join("package.json"),
            &json!({"name": "app", "dependencies": {"a": "1", "d": "1"}}),
        );
        let mut kinds = vec![];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut installed = false;
        while let Ok(Ok(Some(ev))) = tokio::time::timeout_at(deadline, stream.message()).await {
            kinds.push(ev.kind);
            if ev.kind == hoard_proto::v1::watch_event::Kind::ManifestChanged as i32 && !installed {
                installed = true;
                let ctx_install = tokio::process::Command::new(HOARD)
                    .current_dir(&project)
                    .env("HOARD_STORE_DIR", ctx.store.clone())
                    .env("XDG_RUNTIME_DIR", ctx.runtime.clone())
                    .env("HOME", ctx.home.clone())
                    .env("npm_config_registry", reg.url.clone())
                    .env("HOARD_DAEMON_BIN", HOARDD)
                    .arg("--quiet")
                    .arg("install")
                    .status();
                assert!(ctx_install.await.unwrap().success());
            }
            if ev.kind == hoard_proto::v1::watch_event::Kind::InstallFinished as i32 {
                break;
            }
        }
        kinds
    });
    use hoard_proto::v1::watch_event::Kind;
    assert!(kinds.contains(&(Kind::ManifestChanged as i32)), "{kinds:?}");
    assert!(kinds.contains(&(Kind::InstallStarted as i32)), "{kinds:?}");
    assert!(kinds.contains(&(Kind::InstallFinished as i32)), "{kinds:?}");
}

#[test]
fn ctrl_c_cancels_the_install_in_the_daemon() {
    let reg = Registry::start();
    reg.publish(Pkg::new("slow", "1.0.0").file("big.bin", &vec![1u8; 256 * 1024], 0o644));
    let tarball = Registry::tarball_path("slow", "1.0.0");
    reg.fault(
        &tarball,
        Fault {
            throttle: Some((1024, Duration::from_millis(100))),
            ..Default::default()
        },
    );
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "dependencies": {"slow": "1"}}));
    ctx.ok(&["daemon", "start"]);
    let child = ctx.spawn(&["install"]);
    assert!(eventually(Duration::from_secs(20), || reg.count(&tarball) > 0));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = wait_output(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("cancelled"), "{}", stderr(&out));
    assert!(
        eventually(Duration::from_secs(10), || ctx.log().contains("cancelled")),
        "the daemon saw the cancellation: {}",
        ctx.log()
    );
    assert!(ctx.daemon_pid().is_some(), "the daemon keeps running");
    assert!(!ctx.project.join("node_modules/slow").exists());
}

#[test]
fn run_exec_and_dlx() {
    let reg = Registry::start();
    reg.publish(
        Pkg::new("greeter", "1.0.0")
            .file("bin/greet.sh", b"#!/bin/sh\necho \"hello $1\"\n", 0o644)
            .bin(json!({"greeter": "bin/greet.sh"})),
    );
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({
        "name": "app", "version": "2.0.0", "dependencies": {"greeter": "1"},
        "scripts": {"pretest": "echo pre > pre.txt", "test": "greeter \"$npm_package_name\" > out.txt; echo \"$@\" >> out.txt"}
    }));
    ctx.ok(&["install"]);
    ctx.ok(&["run", "test", "--", "extra"]);
    assert!(ctx.project.join("pre.txt").exists(), "pre-script ran");
    assert_eq!(
        std::fs::read_to_string(ctx.project.join("out.txt")).unwrap(),
        "hello app\nextra\n"
    );
    let out = ctx.ok(&["exec", "greeter", "world"]);
    assert_eq!(out, "hello world\n");
    let out = ctx.run(&["run", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("available: pretest, test"),
        "{}",
        stderr(&out)
    );
    // dlx: from the store into a cached folder, nothing added to the project.
    let other = ctx.root.path().join("elsewhere");
    std::fs::create_dir_all(&other).unwrap();
    let out = run_with_timeout(
        ctx.hoard()
            .current_dir(&other)
            .args(["dlx", "greeter@1", "dlx"]),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello dlx\n");
    assert!(!other.join("package.json").exists());
}

#[test]
fn tarball_url_and_file_tarball_dependencies() {
    let reg = ecosystem();
    reg.publish(Pkg::new("remote", "1.0.0").dep("a", "^1.0.0"));
    let ctx = TestContext::new().with_registry(&reg.url);
    let vendor = ctx.project.join("vendor");
    std::fs::create_dir_all(&vendor).unwrap();
    std::fs::write(
        vendor.join("local-2.0.0.tgz"),
        Pkg::new("local", "2.0.0").pack(),
    )
    .unwrap();
    let url = format!("{}remote/-/remote-1.0.0.tgz", reg.url);
    ctx.write_project(&json!({"name": "app", "dependencies": {"remote": url, "local": "file:vendor/local-2.0.0.tgz"}}));
    ctx.ok(&["install"]);
    assert_eq!(
        version_at(&ctx.project, "node_modules/remote").as_deref(),
        Some("1.0.0")
    );
    assert_eq!(
        version_at(&ctx.project, "node_modules/local").as_deref(),
        Some("2.0.0")
    );
    assert_eq!(
        version_at(&ctx.project, "node_modules/a").as_deref(),
        Some("1.2.0"),
        "its deps resolved"
    );
    let l = lock(&ctx);
    assert_eq!(
        l["packages"]["node_modules/remote"]["resolved"],
        url.as_str()
    );
    assert_eq!(
        l["packages"]["node_modules/local"]["resolved"],
        "file:vendor/local-2.0.0.tgz"
    );
    assert!(
        l["packages"]["node_modules/local"]["integrity"]
            .as_str()
            .unwrap()
            .starts_with("sha512-")
    );
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    ctx.ok(&["ci"]);
    assert_eq!(
        version_at(&ctx.project, "node_modules/local").as_deref(),
        Some("2.0.0")
    );
}

#[test]
fn outdated_lists_current_wanted_latest() {
    let reg = ecosystem();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "dependencies": {"a": "~1.0.0", "d": "^1.1.0"}, "devDependencies": {"devdep": "1"}}));
    ctx.ok(&["install"]);
    let out = ctx.run(&["--json", "outdated"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "outdated packages exist: {}",
        stderr(&out)
    );
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["name"], "a");
    assert_eq!(rows[0]["current"], "1.0.0");
    assert_eq!(rows[0]["wanted"], "1.0.0");
    assert_eq!(rows[0]["latest"], "1.2.0");
}

/// A loop-mounted XFS image with reflink support, unmounted on drop.
struct XfsMount {
    dir: std::path::PathBuf,
}

impl XfsMount {
    fn new(under: &Path) -> Result<XfsMount, String> {
        if !is_root() {
            return Err("needs root to mount a loop device".into());
        }
        if !which_path("mkfs.xfs") {
            return Err("mkfs.xfs not found (apt-get install xfsprogs)".into());
        }
        let img = under.join("xfs.img");
        let dir = under.join("xfs");
        std::fs::create_dir_all(&dir).unwrap();
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(400 << 20).unwrap();
        let run = |cmd: &mut std::process::Command| {
            let o = cmd.output().map_err(|e| e.to_string())?;
            if o.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&o.stderr).to_string())
            }
        };
        run(std::process::Command::new("mkfs.xfs")
            .args(["-q", "-m", "reflink=1", "-f"])
            .arg(&img))?;
        run(std::process::Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&dir))
        .map_err(|e| format!("mount failed: {e}"))?;
        Ok(XfsMount { dir })
    }
}

impl Drop for XfsMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

fn which_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .chain(["/usr/sbin".into(), "/sbin".into()])
                .any(|d| d.join(bin).exists())
        })
        .unwrap_or(false)
}

#[test]
fn reflinks_on_xfs_keep_the_store_safe_and_reflink_on_ext4_is_refused() {
    let reg = ecosystem();
    let base = TestContext::new();
    let xfs = match XfsMount::new(base.root.path()) {
        Ok(m) => m,
        Err(why) => {
            return skip(
                "reflinks_on_xfs_keep_the_store_safe_and_reflink_on_ext4_is_refused",
                &format!("no reflink filesystem: {why}"),
            );
        }
    };
    // Store and project both on XFS.
    let mut ctx = TestContext::new().with_registry(&reg.url);
    ctx.store = xfs.dir.join("store");
    ctx.project = xfs.dir.join("project");
    std::fs::create_dir_all(&ctx.store).unwrap();
    ctx.write_project(&json!({"name": "app", "dependencies": {"tool": "3", "a": "1"}}));
    let s = summary(&ctx.ok(&["--json", "install"]));
    assert_eq!(s["link_method"], "reflink", "{s}");
    let f = ctx.project.join("node_modules/a/index.js");
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o644,
        "reflinks are the project's own files"
    );
    std::fs::write(&f, b"edited").unwrap();
    let v: Value = serde_json::from_str(
        ctx.ok(&["--json", "store", "verify"])
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        v["bad_files"], 0,
        "an edit through a reflink does not reach the store: {v}"
    );
    assert!(
        std::fs::metadata(ctx.project.join("node_modules/.bin/tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o111
            != 0
    );
    ctx.ok(&["daemon", "stop"]);
    drop(ctx);

    // On ext4 an explicit reflink is an error that says why and what to do.
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "dependencies": {"a": "1"}}));
    let out = ctx.run(&["install", "--link", "reflink"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--link auto"), "{}", stderr(&out));
    drop(xfs);
}

#[test]
fn the_project_preinstall_runs_before_linking_and_postinstall_after() {
    let reg = Registry::start();
    reg.publish(Pkg::new("a", "1.0.0"));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": {"a": "1"},
        "scripts": {"preinstall": "test -e node_modules/a && echo after > pre.txt || echo before > pre.txt",
                    "postinstall": "test -e node_modules/a && echo after > post.txt || echo before > post.txt"}}));
    let out = ctx.run(&["install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |f: &str| std::fs::read_to_string(ctx.project.join(f)).unwrap();
    assert_eq!(
        read("pre.txt").trim(),
        "before",
        "npm runs preinstall before reifying"
    );
    assert_eq!(read("post.txt").trim(), "after");
    assert!(ctx.project.join("node_modules/a").exists());
    // --ignore-scripts runs neither.
    std::fs::remove_file(ctx.project.join("pre.txt")).unwrap();
    ctx.ok(&["install", "--ignore-scripts", "--force"]);
    assert!(!ctx.project.join("pre.txt").exists());
}

#[test]
fn a_file_directory_dependency_gets_its_own_dependencies() {
    let reg = Registry::start();
    reg.publish(Pkg::new("a", "1.0.0"));
    reg.publish(Pkg::new("b", "2.0.0"));
    let ctx = TestContext::new().with_registry(&reg.url);
    write_json(
        &ctx.project.join("lib/package.json"),
        &json!({"name": "lib", "version": "0.1.0", "dependencies": {"b": "^2.0.0"}}),
    );
    ctx.write_project(&json!({"name": "app", "version": "1.0.0",
        "dependencies": {"a": "1", "lib": "file:lib"}}));
    let out = ctx.run(&["install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let l = lock(&ctx);
    assert_eq!(l["packages"]["node_modules/lib"]["link"], true, "{l:#}");
    assert_eq!(l["packages"]["node_modules/lib"]["resolved"], "lib");
    assert_eq!(l["packages"]["node_modules/b"]["version"], "2.0.0", "{l:#}");
    assert!(ctx.project.join("node_modules/b/package.json").exists());
    assert!(
        std::fs::symlink_metadata(ctx.project.join("node_modules/lib"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_matching_node_modules_gives_the_lockfile_back_without_store_or_network() {
    let reg = ecosystem();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "dependencies": {"a": "^1.0.0", "c": "1"}}));
    ctx.ok(&["install"]);
    let lock_path = ctx.project.join("package-lock.json");
    let lock_bytes = std::fs::read(&lock_path).unwrap();
    // No lockfile, a new empty store, a stopped daemon: only node_modules is left.
    ctx.ok(&["daemon", "stop"]);
    std::fs::remove_file(&lock_path).unwrap();
    std::fs::rename(&ctx.store, ctx.root.path().join("old-store")).unwrap();
    std::fs::create_dir(&ctx.store).unwrap();
    let requests = |r: &Registry| {
        ["/a", "/c", "/d", &Registry::tarball_path("a", "1.2.0")]
            .iter()
            .map(|p| r.count(p))
            .sum::<usize>()
    };
    let before = requests(&reg);
    let s = summary(&ctx.ok(&["--json", "install"]));
    assert_eq!(s["up_to_date"], true, "{s}");
    assert_eq!(s["lockfile_written"], true, "{s}");
    assert_eq!(std::fs::read(&lock_path).unwrap(), lock_bytes);
    assert_eq!(requests(&reg), before, "nothing may be fetched");
    // Now it is the ordinary no-op.
    let s = summary(&ctx.ok(&["--json", "install"]));
    assert_eq!(s["up_to_date"], true, "{s}");
    // node_modules changed by hand: not trusted, resolved and fetched again.
    std::fs::remove_file(&lock_path).unwrap();
    std::fs::remove_dir_all(ctx.project.join("node_modules/a")).unwrap();
    let s = summary(&ctx.ok(&["--json", "install"]));
    assert_eq!(s["up_to_date"], false, "{s}");
    assert!(requests(&reg) > before);
    assert_eq!(
        version_at(&ctx.project, "node_modules/a").as_deref(),
        Some("1.2.0")
    );
    assert_eq!(std::fs::read(&lock_path).unwrap(), lock_bytes);
}

#[test]
fn watch_reports_each_save_once_with_the_file_and_what_it_means() {
    use hoard_proto::v1::watch_event::{Change, Kind};
    let reg = ecosystem();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "dependencies": {"a": "1"}}));
    ctx.ok(&["install"]);
    let sock = ctx.socket();
    let project = ctx.project.canonicalize().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let channel = hoard_proto::uds_channel(&sock, Duration::from_secs(5))
            .await
            .expect("connect");
        let mut client = hoard_proto::v1::hoard_client::HoardClient::new(channel);
        let mut stream = client
            .watch(hoard_proto::v1::WatchRequest {
                project_dir: project.display().to_string(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert_eq!(first.kind, Kind::Watching as i32);
        // Drain until quiet for `quiet`, or the deadline.
        async fn gather(
            stream: &mut tonic::Streaming<hoard_proto::v1::WatchEvent>,
            quiet: Duration,
        ) -> Vec<hoard_proto::v1::WatchEvent> {
            let mut out = vec![];
            while let Ok(Ok(Some(e))) = tokio::time::timeout(quiet, stream.message()).await {
                out.push(e);
            }
            out
        }
        // One save: one event, naming the file, with its hash and what it means.
        let text = "{\n  \"name\": \"app\",\n  \"dependencies\": {\"a\": \"1\", \"d\": \"1\"}\n}\n";
        std::fs::write(project.join("package.json"), text).unwrap();
        let got = gather(&mut stream, Duration::from_millis(1500)).await;
        assert_eq!(got.len(), 1, "{got:?}");
        let e = &got[0];
        assert_eq!(e.kind, Kind::ManifestChanged as i32);
        assert_eq!(
            e.file.as_deref(),
            Some(project.join("package.json").to_str().unwrap())
        );
        assert_eq!(e.change, Some(Change::Modified as i32));
        assert_eq!(
            e.blake3.as_deref(),
            Some(blake3::hash(text.as_bytes()).to_hex().as_str())
        );
        assert_eq!(e.self_caused, Some(false));
        assert_eq!(
            e.sync_state,
            Some(hoard_proto::v1::SyncState::NeedsInstall as i32)
        );
        assert_eq!(
            e.sync_reason.as_deref(),
            Some("package.json changed since the last install")
        );
        // The same bytes again: nothing.
        std::fs::write(project.join("package.json"), text).unwrap();
        assert!(
            gather(&mut stream, Duration::from_millis(800))
                .await
                .is_empty()
        );
        // An install: its lockfile write is marked as the daemon's own.
        let out = tokio::process::Command::new(HOARD)
            .current_dir(&project)
            .env("HOARD_STORE_DIR", ctx.store.clone())
            .env("XDG_RUNTIME_DIR", ctx.runtime.clone())
            .env("HOME", ctx.home.clone())
            .env("npm_config_registry", reg.url.clone())
            .env("HOARD_DAEMON_BIN", HOARDD)
            .args(["--quiet", "install"])
            .status()
            .await
            .unwrap();
        assert!(out.success());
        let got = gather(&mut stream, Duration::from_millis(1500)).await;
        let lock: Vec<_> = got
            .iter()
            .filter(|e| e.kind == Kind::LockfileChanged as i32)
            .collect();
        assert_eq!(lock.len(), 1, "{got:?}");
        assert_eq!(lock[0].self_caused, Some(true), "{got:?}");
        // The daemon stopping says so.
        let _ = client
            .shutdown(hoard_proto::v1::ShutdownRequest {
                reason: "test".into(),
            })
            .await;
        let got = gather(&mut stream, Duration::from_secs(5)).await;
        assert!(
            got.iter().any(|e| e.kind == Kind::DaemonStopping as i32),
            "{got:?}"
        );
    });
}

/// The metadata prefetch does not walk a peer's range into a package that a dependency edge
/// reaches too: a plugin's `host: ">=1"` beside the root's `host@^1` picks host 2 alone, and host
/// 2's dependency (which the tree never uses) is not fetched. The plugin's tarball is held
/// 1.5 s so that a walk that did go on would have had the time to (it did before the change).
#[test]
fn a_peer_range_does_not_prefetch_the_dependencies_of_a_version_the_tree_does_not_use() {
    let reg = Registry::start();
    reg.publish(Pkg::new("one-dep", "1.0.0"));
    reg.publish(Pkg::new("two-dep", "1.0.0"));
    reg.publish(Pkg::new("host", "1.0.0").dep("one-dep", "^1"));
    reg.publish(Pkg::new("host", "2.0.0").dep("two-dep", "^1"));
    reg.publish(Pkg::new("plugin", "1.0.0").peer("host", ">=1"));
    reg.fault(
        &Registry::tarball_path("plugin", "1.0.0"),
        Fault {
            delay: Some(Duration::from_millis(1500)),
            ..Fault::default()
        },
    );
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "dependencies": {"host": "^1", "plugin": "^1"}}));
    ctx.ok(&["install"]);
    assert_eq!(
        version_at(&ctx.project, "node_modules/host").as_deref(),
        Some("1.0.0")
    );
    assert_eq!(reg.count("/one-dep"), 1);
    assert_eq!(
        reg.count("/two-dep"),
        0,
        "the dependency of host 2, which only the plugin's peer range picks, was fetched"
    );
}
