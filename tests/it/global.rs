//! The global layout (`--layout global`): packages built once as slots in the store, projects
//! linking them; what Node finds from inside a slot; packages that must stay in the project;
//! kill -9 while slots are built; prune and verify of slots.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::context::*;
use crate::registry::*;

/// Where slots live in a test's store.
fn slots_root(ctx: &TestContext) -> PathBuf {
    ctx.store.join("v1/virtual/node_modules/.store")
}

fn slot_names(ctx: &TestContext) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(slots_root(ctx))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn link_text(p: &Path) -> String {
    std::fs::read_link(p)
        .unwrap_or_else(|e| panic!("{} is not a symlink: {e}", p.display()))
        .display()
        .to_string()
}

/// Run `node -e <js>` in `dir`; its trimmed stdout.
fn node(dir: &Path, js: &str) -> String {
    let out = run_with_timeout(
        std::process::Command::new("node")
            .current_dir(dir)
            .args(["-e", js]),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "node -e {js}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// a@1/a@2; b needs a@2; c needs a@1; user requires `a` without declaring it (it gets it
/// through b); plugin peers on host@2; tool has a bin.
fn registry() -> Registry {
    let reg = Registry::start();
    reg.publish(Pkg::new("a", "1.0.0"));
    reg.publish(Pkg::new("a", "2.0.0"));
    reg.publish(Pkg::new("b", "1.0.0").dep("a", "^2.0.0"));
    reg.publish(Pkg::new("c", "1.0.0").dep("a", "^1.0.0"));
    reg.publish(Pkg::new("user", "1.0.0").dep("b", "1").file(
        "index.js",
        b"module.exports = 'user sees a@' + require('a').version;\n",
        0o644,
    ));
    reg.publish(Pkg::new("plugin", "1.0.0").peer("host", "^2.0.0").file(
        "index.js",
        b"module.exports = require('host').version;\n",
        0o644,
    ));
    reg.publish(Pkg::new("host", "2.3.0"));
    reg.publish(
        Pkg::new("tool", "3.0.0")
            .file(
                "bin/cli.js",
                b"#!/usr/bin/env node\nconsole.log('tool ok')\n",
                0o644,
            )
            .bin(json!({"tool": "bin/cli.js"})),
    );
    reg
}

fn project(ctx: &TestContext, name: &str, pkg: Value) -> PathBuf {
    let dir = ctx.root.path().canonicalize().unwrap().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    write_json(&dir.join("package.json"), &pkg);
    dir
}

/// `hoard --json <args>` in `dir`; its summary.
fn install_in(ctx: &TestContext, dir: &Path, args: &[&str]) -> Value {
    let out = ctx
        .hoard()
        .current_dir(dir)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    summary(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn projects_link_shared_slots_keyed_by_their_whole_closure() {
    let reg = registry();
    let ctx = TestContext::new().with_registry(&reg.url);
    let deps = json!({"b": "1", "c": "1", "user": "1", "plugin": "1", "host": "2", "tool": "3"});
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": deps}));
    ctx.ok(&["install", "--layout", "global"]);
    let nm = ctx.project.join("node_modules");
    let b = link_text(&nm.join("b"));
    let root = slots_root(&ctx).display().to_string();
    assert!(b.starts_with(&format!("{root}/b@1.0.0-")), "{b}");
    assert!(b.ends_with("/node_modules/b"), "{b}");
    // Store files stay read-only and are the store's own (hard links).
    let index = Path::new(&b).join("index.js");
    let md = std::fs::metadata(&index).unwrap();
    assert_eq!(md.permissions().mode() & 0o222, 0, "read-only");
    assert!(md.nlink() >= 2, "a hard link of the content file");
    assert!(nm.join(".bin/tool").exists());
    // Nothing but links, .bin and the hidden folder in node_modules.
    assert!(!nm.join("a").exists(), "a is not a direct dependency");
    assert!(nm.join(".hoard/node_modules/a").exists(), "fallback folder");

    if which("node") {
        let js = "const r = (n, from) => require(require.resolve(n, {paths: [require.resolve(from)]})); \
                  console.log([r('a', 'b').version, r('a', 'c').version, require('user'), \
                  require('plugin')].join(' '))";
        assert_eq!(
            node(&ctx.project, js),
            "2.0.0 1.0.0 user sees a@2.0.0 2.3.0"
        );
        let out = run_with_timeout(
            &mut std::process::Command::new(nm.join(".bin/tool")),
            Duration::from_secs(30),
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tool ok");
    }
    if which("npm") {
        let out = std::process::Command::new("npm")
            .args(["ls", "--all"])
            .current_dir(&ctx.project)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "npm ls --all: {}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
    } else {
        skip("npm ls part", "npm is not installed");
    }

    // A second project with the same closure for b links the very same slot: nothing built.
    let other = project(
        &ctx,
        "other",
        json!({"name": "o", "dependencies": {"b": "1"}}),
    );
    let s = install_in(&ctx, &other, &["install", "--layout", "global"]);
    assert_eq!(link_text(&other.join("node_modules/b")), b);
    assert_eq!(s["added"], 0, "{s}");
    // A third whose b gets another a (an override) has another closure, so another slot.
    let third = project(
        &ctx,
        "third",
        json!({"name": "t", "dependencies": {"b": "1"}, "overrides": {"a": "1.0.0"}}),
    );
    install_in(&ctx, &third, &["install", "--layout", "global"]);
    let b3 = link_text(&third.join("node_modules/b"));
    assert_ne!(b3, b, "another closure, another slot");
    if which("node") {
        let js =
            "console.log(require(require.resolve('a', {paths: [require.resolve('b')]})).version)";
        assert_eq!(node(&third, js), "1.0.0");
        assert_eq!(node(&other, js), "2.0.0", "the first slot is untouched");
    }

    // Up to date, then again from nothing but the lockfile and the store, then back to hoisted.
    let s = summary(&ctx.ok(&["--json", "install", "--layout", "global"]));
    assert_eq!(s["up_to_date"], true, "{s}");
    std::fs::remove_dir_all(&nm).unwrap();
    let s = summary(&ctx.ok(&["--json", "install", "--layout", "global"]));
    assert_eq!(s["added"], 0, "every slot was there: {s}");
    assert_eq!(link_text(&nm.join("b")), b);
    ctx.ok(&["install", "--layout", "hoisted"]);
    let md = std::fs::symlink_metadata(nm.join("b")).unwrap();
    assert!(md.is_dir(), "hoisted again: a real folder");
    assert!(nm.join("a/package.json").exists());
}

#[test]
fn the_layout_comes_from_the_flag_package_json_or_npmrc() {
    let reg = registry();
    let ctx = TestContext::new().with_registry(&reg.url);
    let is_link = |ctx: &TestContext| {
        std::fs::symlink_metadata(ctx.project.join("node_modules/b"))
            .unwrap()
            .file_type()
            .is_symlink()
    };
    ctx.write_project(
        &json!({"name": "app", "dependencies": {"b": "1"}, "hoard": {"layout": "global"}}),
    );
    ctx.ok(&["install"]);
    assert!(is_link(&ctx), "package.json says global");
    ctx.ok(&["install", "--layout", "hoisted"]);
    assert!(!is_link(&ctx), "the flag wins");

    ctx.write_project(&json!({"name": "app", "dependencies": {"b": "1"}}));
    std::fs::write(ctx.project.join(".npmrc"), "layout=global\n").unwrap();
    ctx.ok(&["install"]);
    assert!(is_link(&ctx), ".npmrc says global");
    std::fs::remove_file(ctx.project.join(".npmrc")).unwrap();

    ctx.write_project(
        &json!({"name": "app", "dependencies": {"b": "1"}, "hoard": {"layout": "flat"}}),
    );
    let out = ctx.run(&["install"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("flat") && err.contains("package.json") && err.contains("global"),
        "{err}"
    );
}

#[test]
fn packages_whose_scripts_run_stay_in_the_project_with_their_dependents() {
    let reg = registry();
    reg.publish(
        Pkg::new("built", "1.0.0")
            .dep("a", "2")
            .script("postinstall", "echo built > built.txt"),
    );
    reg.publish(Pkg::new("needs-built", "1.0.0").dep("built", "1").file(
        "index.js",
        b"module.exports = require('built/package.json').name;\n",
        0o644,
    ));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(
        &json!({"name": "app", "dependencies": {"needs-built": "1", "b": "1"},
                              "allowScripts": {"built": true}}),
    );
    ctx.ok(&["install", "--layout", "global"]);
    let local = ctx
        .project
        .join("node_modules/.hoard/node_modules/.store/built@1.0.0/node_modules/built");
    let md = std::fs::symlink_metadata(&local).unwrap();
    assert!(md.is_dir(), "a real folder in the project");
    assert_eq!(
        std::fs::read_to_string(local.join("built.txt"))
            .unwrap()
            .trim(),
        "built",
        "its script ran in the project's copy"
    );
    let nb = std::fs::canonicalize(ctx.project.join("node_modules/needs-built")).unwrap();
    assert!(
        nb.starts_with(&ctx.project),
        "its dependent stays too: {}",
        nb.display()
    );
    let names = slot_names(&ctx);
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("built@") || n.starts_with("needs-built@")),
        "no shared slot for them: {names:?}"
    );
    assert!(names.iter().any(|n| n.starts_with("a@2.0.0-")), "{names:?}");
    if which("node") {
        assert_eq!(
            node(&ctx.project, "console.log(require('needs-built'))"),
            "built"
        );
    }
}

#[test]
fn an_undeclared_dependency_outside_the_closure_is_found_through_hoard_run() {
    let reg = registry();
    reg.publish(Pkg::new("sloppy", "1.0.0").file(
        "index.js",
        b"module.exports = require('host').version;\n",
        0o644,
    ));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(
        &json!({"name": "app", "dependencies": {"sloppy": "1", "host": "2"},
        "scripts": {"check": "node -e \"console.log('host ' + require('sloppy'))\""}}),
    );
    ctx.ok(&["install", "--layout", "global"]);
    if !which("node") {
        return skip("hoard run part", "node is not installed");
    }
    let out = ctx.ok(&["run", "check"]);
    assert!(out.contains("host 2.3.0"), "{out}");
}

#[test]
fn a_daemon_killed_while_building_slots_leaves_none_half_built() {
    let (reg, names, deps) = numbered_packages(8);
    let ctx = TestContext::new()
        .with_registry(&reg.url)
        .env("HOARD_FAILPOINT_LINK_HOLD_MS", "400");
    ctx.write_project(&json!({"name": "app", "dependencies": deps}));
    let child = ctx.spawn(&["install", "--layout", "global"]);
    assert!(
        eventually(Duration::from_secs(30), || !slot_names(&ctx).is_empty()),
        "slots began to appear"
    );
    let pid = ctx.daemon_pid().expect("a daemon runs");
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = wait_output(child, Duration::from_secs(30));
    let made = slot_names(&ctx);
    assert!(made.len() < names.len(), "killed midway: {made:?}");
    for s in &made {
        let pkg = slots_root(&ctx).join(s).join("node_modules");
        let name = s.split('@').next().unwrap();
        assert!(
            pkg.join(name).join("package.json").exists()
                && pkg.join(name).join("index.js").exists(),
            "slot {s} is whole"
        );
    }
    ctx.ok(&["install", "--layout", "global"]);
    for n in &names {
        let f = ctx.project.join("node_modules").join(n).join("index.js");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), *n);
    }
    ctx.assert_store_whole();
    let tmp: Vec<_> = std::fs::read_dir(ctx.store.join("v1/tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "no staging left: {tmp:?}");
}

#[test]
fn prune_drops_unlinked_slots_and_verify_replaces_a_damaged_one() {
    let reg = registry();
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "dependencies": {"b": "1"}}));
    ctx.ok(&["install", "--layout", "global"]);
    let gone = project(
        &ctx,
        "gone",
        json!({"name": "g", "dependencies": {"c": "1"}}),
    );
    install_in(&ctx, &gone, &["install", "--layout", "global"]);
    let before = slot_names(&ctx);
    assert!(
        before.iter().any(|s| s.starts_with("c@1.0.0-")),
        "{before:?}"
    );
    // A project that crashed mid-install (no state file) still protects what it links.
    std::fs::remove_file(ctx.project.join("node_modules/.hoard-state.json")).unwrap();
    std::fs::remove_dir_all(&gone).unwrap();
    let out = ctx.ok(&["--json", "store", "prune"]);
    assert_eq!(summary(&out)["slots_removed"], 2, "c and a@1: {out}");
    let after = slot_names(&ctx);
    assert!(
        after.iter().any(|s| s.starts_with("b@1.0.0-"))
            && after.iter().any(|s| s.starts_with("a@2.0.0-")),
        "{after:?}"
    );
    assert_eq!(after.len(), 2, "{after:?}");

    // An editor that makes a file writable and appends to it writes into the slot.
    ctx.ok(&["install", "--layout", "global"]);
    let file = ctx.project.join("node_modules/b/index.js");
    let original = std::fs::read(&file).unwrap();
    let real = std::fs::canonicalize(&file).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut edited = original.clone();
    edited.extend_from_slice(b"// edited\n");
    std::fs::write(&real, &edited).unwrap();
    let out = ctx.run(&["--json", "store", "verify"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("slot-damaged"), "{text}");
    let s = summary(&text);
    assert_eq!(s["slots_damaged"], 1, "{s}");
    let stale: Vec<String> = serde_json::from_value(s["stale_projects"].clone()).unwrap();
    assert_eq!(stale, [ctx.project.display().to_string()]);
    ctx.ok(&["install", "--layout", "global"]);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        original,
        "the original is back"
    );
    ctx.assert_store_whole();
}
