//! npm's CLI habits (issue #17): `hoard install <pkg>` and `hoard i -D <pkg>` add as npm does;
//! run, exec and install exit with the script's own status (128 + n for a signal), compared with
//! npm itself when it is on PATH; `ls` and `why` show workspaces and read node_modules when the
//! lockfile is gone; the summary line says only what happened; errors point where the fault is.

use std::process::Command;

use serde_json::{Value, json};

use crate::context::*;
use crate::registry::*;

fn manifest(ctx: &TestContext) -> Value {
    serde_json::from_slice(&std::fs::read(ctx.project.join("package.json")).unwrap()).unwrap()
}

#[test]
fn install_with_names_adds_them_as_npm_install_does() {
    let reg = Registry::start();
    reg.publish(Pkg::new("ms", "2.1.3"));
    reg.publish(Pkg::new("left-pad", "1.3.0"));
    reg.publish(Pkg::new("chalk", "4.1.2"));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0"}));
    let out = ctx.run(&["install", "ms"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Asked for, so nothing to report about the lockfile being behind package.json.
    assert!(!stderr(&out).contains("resolving"), "{}", stderr(&out));
    // One package: no plural, and no "0 downloaded" or "0 from the store".
    let last = stderr(&out).lines().last().unwrap().to_string();
    assert!(
        last.starts_with("1 package: 1 added; 1 downloaded ("),
        "{last}"
    );
    assert!(
        !last.contains("from the store") && !last.contains(" 0 "),
        "{last}"
    );
    ctx.ok(&["i", "-D", "-E", "left-pad"]);
    ctx.ok(&["install", "--save-optional", "chalk"]);
    let m = manifest(&ctx);
    assert_eq!(m["dependencies"], json!({"ms": "^2.1.3"}));
    assert_eq!(m["devDependencies"], json!({"left-pad": "1.3.0"}));
    assert_eq!(m["optionalDependencies"], json!({"chalk": "^4.1.2"}));
    for name in ["ms", "left-pad", "chalk"] {
        assert!(
            ctx.project.join("node_modules").join(name).is_dir(),
            "{name}"
        );
    }
    // Without names, `install` installs (and -D alone changes nothing).
    let out = ctx.ok(&["install", "-D"]);
    assert_eq!(manifest(&ctx), m, "{out}");
}

/// The exit code of `npm <args>` in `dir`, when npm is on PATH.
fn npm_code(dir: &std::path::Path, args: &[&str]) -> Option<i32> {
    if !which("npm") {
        return None;
    }
    let out = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .env("npm_config_update_notifier", "false")
        .env("npm_config_audit", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_cache", dir.join(".npm-cache"))
        .env("npm_config_offline", "true")
        .output()
        .unwrap();
    // npm dies of the script's signal itself: a shell reports 128 + n either way.
    use std::os::unix::process::ExitStatusExt;
    Some(
        out.status
            .code()
            .or(out.status.signal().map(|s| 128 + s))
            .unwrap_or(-1),
    )
}

#[test]
fn run_exec_and_install_exit_as_the_script_did() {
    let ctx = TestContext::new();
    let scripts = json!({"fail": "exit 4", "sig": "kill -TERM $$", "ok": "true",
                         "postinstall": "exit 3"});
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "scripts": scripts}));
    let cases: [(&[&str], i32); 5] = [
        (&["run", "fail"], 4),
        (&["run", "sig"], 143),
        (&["run", "ok"], 0),
        (&["exec", "--", "sh", "-c", "exit 5"], 5),
        (&["install"], 3),
    ];
    let npm_dir = ctx.root.path().join("npm-side");
    std::fs::create_dir_all(&npm_dir).unwrap();
    write_json(&npm_dir.join("package.json"), &manifest(&ctx));
    for (args, want) in cases {
        let out = ctx.run(args);
        assert_eq!(
            out.status.code(),
            Some(want),
            "hoard {args:?}: {}",
            stderr(&out)
        );
        if want != 0 {
            assert!(
                stderr(&out).contains("app@1.0.0") || args[0] == "exec",
                "{}",
                stderr(&out)
            );
        }
        // npm, on the same package.json, exits alike.
        if let Some(code) = npm_code(&npm_dir, args) {
            assert_eq!(code, want, "npm {args:?}");
        }
    }
    if !which("npm") {
        eprintln!("npm is not on PATH: exit codes checked against npm's recorded behaviour only");
    }
}

#[test]
fn ls_and_why_show_workspaces_and_read_node_modules_without_a_lockfile() {
    let reg = Registry::start();
    reg.publish(Pkg::new("ms", "2.0.0"));
    reg.publish(Pkg::new("ms", "2.1.3"));
    reg.publish(Pkg::new("left-pad", "1.3.0"));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(
        &json!({"name": "mono", "private": true, "workspaces": ["packages/*"],
                              "devDependencies": {"left-pad": "1.3.0"}}),
    );
    for (dir, pkg) in [
        (
            "packages/a",
            json!({"name": "a", "version": "1.0.0", "dependencies": {"ms": "^2.1.3"}}),
        ),
        (
            "packages/b",
            json!({"name": "b", "version": "2.0.0",
                              "dependencies": {"a": "^1.0.0", "ms": "2.0.0"}}),
        ),
    ] {
        std::fs::create_dir_all(ctx.project.join(dir)).unwrap();
        write_json(&ctx.project.join(dir).join("package.json"), &pkg);
    }
    ctx.ok(&["install"]);
    let want_ls = format!(
        "mono {}\n\
         ├── a@1.0.0 -> ./packages/a\n\
         │   └── ms@2.1.3\n\
         ├── b@2.0.0 -> ./packages/b\n\
         │   ├── a@1.0.0 -> ./packages/a\n\
         │   │   └── ms@2.1.3\n\
         │   └── ms@2.0.0\n\
         └── left-pad@1.3.0\n",
        ctx.project.canonicalize().unwrap().display()
    );
    assert_eq!(ctx.ok(&["ls", "--all"]), want_ls);
    let why = ctx.ok(&["why", "ms"]);
    assert!(
        why.contains(
            "ms@2.1.3 (node_modules/ms)\n  required by workspace a@1.0.0 (packages/a) (^2.1.3)"
        ),
        "{why}"
    );
    assert!(why.contains("ms@2.0.0 (packages/b/node_modules/ms)\n  required by workspace b@2.0.0 (packages/b) (2.0.0)"), "{why}");
    let why = ctx.ok(&["why", "a"]);
    assert!(
        why.starts_with("a@1.0.0 -> ./packages/a (node_modules/a)\n"),
        "{why}"
    );
    assert!(
        why.contains("required by workspace b@2.0.0 (packages/b) (^1.0.0)"),
        "{why}"
    );
    // No lockfile: hoard's copy in node_modules; then node_modules itself.
    std::fs::remove_file(ctx.project.join("package-lock.json")).unwrap();
    assert_eq!(ctx.ok(&["ls", "--all"]), want_ls);
    std::fs::remove_file(ctx.project.join("node_modules/.hoard-lock.json")).unwrap();
    assert_eq!(ctx.ok(&["ls", "--all"]), want_ls);
    assert!(
        ctx.ok(&["why", "ms"])
            .contains("required by workspace b@2.0.0")
    );
}

#[test]
fn a_trailing_comma_is_reported_at_the_comma() {
    let ctx = TestContext::new();
    std::fs::write(
        ctx.project.join("package.json"),
        "{\n  \"name\": \"app\",\n  \"dependencies\": {},\n}\n",
    )
    .unwrap();
    let out = ctx.run(&["install"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("package.json:3:21: invalid JSON: trailing comma"),
        "{err}"
    );
}
