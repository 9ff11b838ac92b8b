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

#[test]
fn what_only_a_skipped_optional_needs_is_skipped_too() {
    let reg = Registry::start();
    // chokidar@2's shape: an optional fsevents for darwin only, which needs bindings (→
    // file-uri-to-path) and nan; nan is also needed by a package that is installed.
    reg.publish(Pkg::new("file-uri-to-path", "1.0.0"));
    reg.publish(Pkg::new("bindings", "1.5.0").dep("file-uri-to-path", "1.0.0"));
    reg.publish(Pkg::new("nan", "2.22.0"));
    reg.publish(
        Pkg::new("fsevents", "1.2.13")
            .os(&["darwin"])
            .dep("bindings", "^1.5.0")
            .dep("nan", "^2.12.1"),
    );
    reg.publish(Pkg::new("chokidar", "2.1.8").optional("fsevents", "^1.2.7"));
    reg.publish(Pkg::new("native-user", "1.0.0").dep("nan", "^2.0.0"));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0",
                              "dependencies": {"chokidar": "^2.1.8", "native-user": "1"}}));
    let installed = |ctx: &TestContext| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(ctx.project.join("node_modules"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| !n.starts_with('.'))
            .collect();
        v.sort();
        v
    };
    for round in ["resolved", "from the lockfile"] {
        ctx.ok(&["install"]);
        assert_eq!(
            installed(&ctx),
            ["chokidar", "nan", "native-user"],
            "{round}"
        );
        // The lockfile keeps them all, as npm's does (they install on macOS).
        let lock: Value =
            serde_json::from_slice(&std::fs::read(ctx.project.join("package-lock.json")).unwrap())
                .unwrap();
        for name in ["fsevents", "bindings", "file-uri-to-path"] {
            let e = &lock["packages"][format!("node_modules/{name}")];
            assert_eq!(
                e["optional"],
                json!(true),
                "{name} in the lockfile ({round})"
            );
        }
        std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    }
}

/// `npm <args>` in `dir` against the test registry, hermetic (its own cache and user config);
/// None when npm is not on PATH.
fn npm_with(dir: &std::path::Path, reg: &Registry, args: &[&str]) -> Option<std::process::Output> {
    if !which("npm") {
        return None;
    }
    let userconfig = dir.join(".npmrc-user");
    std::fs::write(&userconfig, "").unwrap();
    let out = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .env("npm_config_registry", &reg.url)
        .env("npm_config_userconfig", &userconfig)
        .env("npm_config_cache", dir.join(".npm-cache"))
        .env("npm_config_update_notifier", "false")
        .env("npm_config_audit", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_ignore_scripts", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "npm {args:?}: {}", stderr(&out));
    Some(out)
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn installed_names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("node_modules"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn add_and_remove_write_the_lockfile_npm_writes() {
    let test = "habits::add_and_remove_write_the_lockfile_npm_writes";
    let reg = Registry::start();
    reg.publish(
        Pkg::new("a", "1.0.0")
            .meta("license", json!("MIT"))
            .meta("funding", json!({"url": "https://example.com/sponsor"}))
            .meta("engines", json!({"node": ">=8"}))
            .file("cli.js", b"#!/usr/bin/env node\n", 0o755)
            .bin(json!({"a": "cli.js"})),
    );
    let mut b = Pkg::new("b", "2.0.0")
        .meta("license", json!("ISC"))
        .dep("c", "^1.0.0");
    b.deprecated = Some("use c directly".into());
    reg.publish(b);
    reg.publish(Pkg::new("c", "1.1.0").meta("license", json!("Apache-2.0")));
    reg.publish(Pkg::new("d", "1.0.0").script("postinstall", "echo built"));
    reg.publish(Pkg::new("left-pad", "1.3.0").meta("license", json!("WTFPL")));
    let ctx = TestContext::new().with_registry(&reg.url);
    let npm_dir = ctx.root.path().join("npm-side");
    std::fs::create_dir_all(&npm_dir).unwrap();
    let pkg = json!({"name": "app", "version": "1.0.0",
                     "dependencies": {"a": "^1.0.0", "b": "^2.0.0", "d": "1.0.0"}});
    write_json(&npm_dir.join("package.json"), &pkg);
    if npm_with(&npm_dir, &reg, &["install"]).is_none() {
        skip(
            test,
            "npm is not on PATH (the lockfiles are compared with npm's own)",
        );
        return;
    }
    // hoard starts from npm's lockfile and package.json.
    for f in ["package.json", "package-lock.json"] {
        std::fs::copy(npm_dir.join(f), ctx.project.join(f)).unwrap();
    }
    let lock = read(&ctx.project.join("package-lock.json"));
    for field in [
        "\"funding\"",
        "\"deprecated\"",
        "\"engines\"",
        "\"bin\"",
        "\"license\"",
        "\"hasInstallScript\"",
    ] {
        assert!(lock.contains(field), "npm's lockfile has {field}");
    }
    ctx.ok(&["install"]);
    assert_eq!(
        read(&ctx.project.join("package-lock.json")),
        lock,
        "install keeps npm's lock"
    );
    for (npm_args, hoard_args) in [
        (&["install", "left-pad"][..], &["add", "left-pad"][..]),
        (&["uninstall", "left-pad"][..], &["remove", "left-pad"][..]),
    ] {
        npm_with(&npm_dir, &reg, npm_args);
        ctx.ok(hoard_args);
        for f in ["package.json", "package-lock.json"] {
            assert_eq!(
                read(&ctx.project.join(f)),
                read(&npm_dir.join(f)),
                "{f} after hoard {hoard_args:?} / npm {npm_args:?}"
            );
        }
    }
    assert_eq!(
        read(&ctx.project.join("package-lock.json")),
        lock,
        "a round trip restores it"
    );
}

#[test]
fn a_lockfile_entry_nothing_needs_is_not_installed_and_install_drops_it() {
    let reg = Registry::start();
    reg.publish(Pkg::new("safer", "2.1.2"));
    reg.publish(Pkg::new("encoding", "0.1.13").dep("safer", "^2.0.0"));
    reg.publish(Pkg::new("encoding-user", "1.0.0"));
    let mut fetchy = Pkg::new("fetchy", "2.7.0").peer("encoding", "^0.1.0");
    fetchy = fetchy.meta(
        "peerDependenciesMeta",
        json!({"encoding": {"optional": true}}),
    );
    reg.publish(fetchy);
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0",
                              "dependencies": {"fetchy": "2.7.0"}}));
    ctx.ok(&["install", "--package-lock-only"]);
    // An older lockfile that carries the optional peer (as axios's does).
    let mut lock: Value =
        serde_json::from_str(&read(&ctx.project.join("package-lock.json"))).unwrap();
    let entry = |name: &str, version: &str| {
        let path = Registry::tarball_path(name, version);
        let tgz = reg.tarball_bytes(&path);
        json!({"version": version, "resolved": format!("{}{}", reg.url.trim_end_matches('/'), path),
               "integrity": sri(&tgz), "peer": true})
    };
    lock["packages"]["node_modules/encoding"] = entry("encoding", "0.1.13");
    lock["packages"]["node_modules/encoding"]["dependencies"] = json!({"safer": "^2.0.0"});
    lock["packages"]["node_modules/safer"] = entry("safer", "2.1.2");
    let with_peer = serde_json::to_string_pretty(&lock).unwrap() + "\n";
    std::fs::write(ctx.project.join("package-lock.json"), &with_peer).unwrap();

    ctx.ok(&["ci"]);
    assert_eq!(installed_names(&ctx.project), ["fetchy"]);
    assert_eq!(
        read(&ctx.project.join("package-lock.json")),
        with_peer,
        "ci never writes"
    );
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    ctx.ok(&["install"]);
    assert_eq!(installed_names(&ctx.project), ["fetchy"]);
    let after: Value = serde_json::from_str(&read(&ctx.project.join("package-lock.json"))).unwrap();
    assert!(
        after["packages"].get("node_modules/encoding").is_none(),
        "{after}"
    );
    assert!(
        after["packages"].get("node_modules/safer").is_none(),
        "{after}"
    );

    // npm, from the same files, does the same.
    let npm_dir = ctx.root.path().join("npm-side");
    std::fs::create_dir_all(&npm_dir).unwrap();
    std::fs::copy(
        ctx.project.join("package.json"),
        npm_dir.join("package.json"),
    )
    .unwrap();
    std::fs::write(npm_dir.join("package-lock.json"), &with_peer).unwrap();
    if npm_with(&npm_dir, &reg, &["ci"]).is_some() {
        assert_eq!(installed_names(&npm_dir), ["fetchy"]);
        std::fs::remove_dir_all(npm_dir.join("node_modules")).unwrap();
        npm_with(&npm_dir, &reg, &["install"]);
        assert_eq!(installed_names(&npm_dir), ["fetchy"]);
        let npm_lock: Value =
            serde_json::from_str(&read(&npm_dir.join("package-lock.json"))).unwrap();
        assert_eq!(
            npm_lock["packages"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            after["packages"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>()
        );
    }
}

/// The setting names in the README's table of npm settings.
fn readme_settings() -> Vec<String> {
    let readme = read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    let from = readme.find("<!-- npm-settings-table").expect("the table");
    let to = readme
        .find("<!-- /npm-settings-table -->")
        .expect("its end");
    readme[from..to]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(String::from)
        .collect()
}

#[test]
fn the_settings_table_covers_every_setting_npm_commands_declare() {
    let test = "habits::the_settings_table_covers_every_setting_npm_commands_declare";
    if !which("npm") || !which("node") {
        skip(
            test,
            "npm and node are not on PATH (the list comes from npm's own commands)",
        );
        return;
    }
    let root = Command::new("npm").args(["root", "-g"]).output().unwrap();
    let commands =
        std::path::Path::new(String::from_utf8_lossy(&root.stdout).trim()).join("npm/lib/commands");
    let script = "const d = process.argv[1]; const out = new Set();\
        for (const c of ['install', 'ci', 'uninstall', 'update', 'run', 'exec']) {\
          for (const p of require(d + '/' + c + '.js').params || []) out.add(p) }\
        console.log(JSON.stringify([...out]))";
    let out = Command::new("node")
        .args(["-e", script])
        .arg(&commands)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let params: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(params.len() > 30, "{params:?}");
    let table = readme_settings();
    let missing: Vec<&String> = params.iter().filter(|p| !table.contains(p)).collect();
    assert!(
        missing.is_empty(),
        "npm settings missing from the README's table: {missing:?}"
    );
}

#[test]
fn npm_settings_are_honoured_or_refused_aloud() {
    let reg = Registry::start();
    reg.publish(Pkg::new("lib", "1.0.0"));
    reg.publish(Pkg::new("lib", "1.1.0"));
    reg.publish(Pkg::new("opt", "1.0.0"));
    reg.publish(Pkg::new("mid", "1.0.0").dep("leaf", "^1.0.0"));
    reg.publish(Pkg::new("leaf", "1.0.0"));
    reg.publish(Pkg::new("future", "1.0.0").meta("engines", json!({"node": ">=999"})));
    reg.publish(Pkg::new("host", "1.0.0"));
    reg.publish(Pkg::new("host", "2.0.0"));
    reg.publish(Pkg::new("plugin", "1.0.0").peer("host", "^1.0.0"));
    let fresh = |npmrc: &str, pkg: Value| {
        let ctx = TestContext::new().with_registry(&reg.url);
        ctx.write_project(&pkg);
        std::fs::write(ctx.project.join(".npmrc"), npmrc).unwrap();
        ctx
    };
    let app = |deps: Value| json!({"name": "app", "version": "1.0.0", "dependencies": deps});

    // Warned: named once, and the install goes on.
    let ctx = fresh(
        "save=false\nbin-links=true\n",
        app(json!({"lib": "^1.0.0"})),
    );
    let out = ctx.run(&["install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out)
            .matches("npm setting `save=false` is not supported")
            .count(),
        1,
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("bin-links"),
        "npm's default is not warned about"
    );
    // Refused: nothing is changed.
    for rc in ["dry-run=true\n", "allow-remote=none\n", "global\n"] {
        let ctx = fresh(rc, app(json!({"lib": "^1.0.0"})));
        let out = ctx.run(&["install"]);
        assert_eq!(out.status.code(), Some(1), "{rc}");
        let key = rc.split(['=', '\n']).next().unwrap();
        assert!(
            stderr(&out).contains(&format!("npm setting `{key}")),
            "{rc}: {}",
            stderr(&out)
        );
        assert!(
            !ctx.project.join("node_modules").exists()
                && !ctx.project.join("package-lock.json").exists(),
            "{rc}"
        );
    }
    // package-lock=false: the lockfile is neither read nor written.
    let ctx = fresh("", app(json!({"lib": "^1.0.0"})));
    let lock = json!({"name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
        "packages": {"": {"name": "app", "version": "1.0.0", "dependencies": {"lib": "^1.0.0"}},
                     "node_modules/lib": {"version": "1.0.0"}}});
    write_json(&ctx.project.join("package-lock.json"), &lock);
    let before = read(&ctx.project.join("package-lock.json"));
    std::fs::write(ctx.project.join(".npmrc"), "package-lock=false\n").unwrap();
    ctx.ok(&["install"]);
    assert_eq!(installed_version(&ctx, "lib"), "1.1.0");
    assert_eq!(read(&ctx.project.join("package-lock.json")), before);
    // save-prefix, save-exact.
    for (rc, want) in [
        ("save-prefix=~\n", "~1.1.0"),
        ("save-exact=true\n", "1.1.0"),
        ("", "^1.1.0"),
    ] {
        let ctx = fresh(rc, json!({"name": "app", "version": "1.0.0"}));
        ctx.ok(&["add", "lib"]);
        assert_eq!(manifest(&ctx)["dependencies"]["lib"], json!(want), "{rc}");
    }
    // omit=optional (include takes it back), and install-strategy's older spelling.
    let pkg = json!({"name": "app", "version": "1.0.0", "dependencies": {"mid": "1"},
                     "optionalDependencies": {"opt": "1"}});
    let ctx = fresh("omit=optional\n", pkg.clone());
    ctx.ok(&["install"]);
    assert!(!ctx.project.join("node_modules/opt").exists());
    assert!(ctx.project.join("node_modules/leaf").exists(), "hoisted");
    let ctx = fresh(
        "omit=optional\ninclude=optional\nlegacy-bundling=true\n",
        pkg,
    );
    ctx.ok(&["install"]);
    assert!(ctx.project.join("node_modules/opt").exists());
    assert!(
        ctx.project
            .join("node_modules/mid/node_modules/leaf")
            .exists(),
        "nested"
    );
    // force: a peer conflict npm refuses (ERESOLVE) is accepted.
    let conflict = app(json!({"host": "2", "plugin": "1"}));
    let ctx = fresh("", conflict.clone());
    let out = ctx.run(&["install"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ERESOLVE"), "{}", stderr(&out));
    let ctx = fresh("force=true\n", conflict);
    ctx.ok(&["install"]);
    assert_eq!(installed_version(&ctx, "host"), "2.0.0");
    // install-strategy=shallow: only direct dependencies at the top.
    let ctx = fresh("install-strategy=shallow\n", app(json!({"mid": "1"})));
    ctx.ok(&["install"]);
    assert!(
        ctx.project
            .join("node_modules/mid/node_modules/leaf")
            .exists(),
        "shallow"
    );
    assert!(!ctx.project.join("node_modules/leaf").exists(), "shallow");
    // engine-strict.
    let ctx = fresh("node-version=20.0.0\n", app(json!({"future": "1"})));
    ctx.ok(&["install"]);
    let ctx = fresh(
        "node-version=20.0.0\nengine-strict=true\n",
        app(json!({"future": "1"})),
    );
    let out = ctx.run(&["install"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("future@1.0.0 wants node >=999")
            && stderr(&out).contains("engine-strict"),
        "{}",
        stderr(&out)
    );
    // offline=true: nothing from the network.
    let ctx = fresh("offline=true\n", app(json!({"lib": "^1.0.0"})));
    let out = ctx.run(&["install"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("offline"), "{}", stderr(&out));
    // The run family: script-shell, node-options, if-present, ignore-scripts.
    let scripts = json!({"name": "app", "version": "1.0.0", "scripts": {
        "pretest": "echo pre > pre.txt", "test": "echo \"$BASH_VERSION|$NODE_OPTIONS\" > out.txt"}});
    let ctx = fresh(
        "script-shell=bash\nnode-options=--max-old-space-size=100\nignore-scripts=true\n",
        scripts.clone(),
    );
    ctx.ok(&["run", "test"]);
    let out = read(&ctx.project.join("out.txt"));
    let (bash, opts) = out.trim().split_once('|').unwrap();
    assert!(!bash.is_empty(), "bash ran it: {out}");
    assert_eq!(opts, "--max-old-space-size=100");
    assert!(
        !ctx.project.join("pre.txt").exists(),
        "ignore-scripts: no pre-script"
    );
    assert_eq!(ctx.run(&["run", "missing"]).status.code(), Some(1));
    let ctx = fresh("if-present=true\n", scripts);
    assert_eq!(ctx.run(&["run", "missing"]).status.code(), Some(0));
}

fn installed_version(ctx: &TestContext, name: &str) -> String {
    let v: Value = serde_json::from_str(&read(
        &ctx.project
            .join("node_modules")
            .join(name)
            .join("package.json"),
    ))
    .unwrap();
    v["version"].as_str().unwrap().to_string()
}

#[test]
fn the_isolated_layout_hoists_into_a_hidden_folder_and_publicly_by_pattern() {
    let reg = Registry::start();
    reg.publish(Pkg::new("eslint-import-resolver-node", "0.3.9"));
    reg.publish(Pkg::new("import-helper", "1.0.0").dep("eslint-import-resolver-node", "^0.3.0"));
    // Requires what it does not declare (it gets there through import-helper).
    reg.publish(
        Pkg::new("eslint-plugin-import", "2.31.0")
            .dep("import-helper", "1")
            .file(
                "index.js",
                b"module.exports = require('eslint-import-resolver-node').name;\n",
                0o644,
            ),
    );
    for (rc, public) in [("", false), ("public-hoist-pattern[]=*resolver*\n", true)] {
        let ctx = TestContext::new().with_registry(&reg.url);
        ctx.write_project(&json!({"name": "app", "version": "1.0.0",
                                  "dependencies": {"eslint-plugin-import": "^2.0.0"}}));
        std::fs::write(
            ctx.project.join(".npmrc"),
            format!("install-strategy=linked\n{rc}"),
        )
        .unwrap();
        ctx.ok(&["install"]);
        let nm = ctx.project.join("node_modules");
        assert!(
            nm.join(".hoard/eslint-plugin-import@2.31.0").is_dir(),
            "isolated ({rc:?})"
        );
        let hidden = nm.join(".hoard/node_modules/eslint-import-resolver-node/package.json");
        assert!(hidden.exists(), "hidden hoist ({rc:?})");
        assert_eq!(
            nm.join("eslint-import-resolver-node").exists(),
            public,
            "{rc:?}"
        );
        if which("node") {
            let out = Command::new("node")
                .args(["-p", "require('eslint-plugin-import')"])
                .current_dir(&ctx.project)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "eslint-import-resolver-node"
            );
        }
    }
}

#[test]
fn scripts_get_the_environment_npm_gives_them() {
    let ctx = TestContext::new();
    let pkg = json!({"name": "app", "version": "1.2.3",
        "config": {"port": 8080, "flags": {"verbose": false}},
        "engines": {"node": ">=18"}, "bin": {"app": "cli.js"},
        "scripts": {"dump": "env | grep -E '^(npm_package_|npm_config_(fund|audit|save_exact|local_prefix)=|npm_lifecycle_)' | sort > env.txt"}});
    ctx.write_project(&pkg);
    let rc = "fund=false\naudit=true\nsave-exact=true\n";
    std::fs::write(ctx.project.join(".npmrc"), rc).unwrap();
    ctx.ok(&["run", "dump"]);
    let dir = ctx.project.canonicalize().unwrap().display().to_string();
    let hoard = read(&ctx.project.join("env.txt")).replace(&dir, "<dir>");
    for want in [
        "npm_config_fund=\n",
        "npm_config_local_prefix=<dir>\n",
        "npm_config_save_exact=true\n",
        "npm_lifecycle_event=dump\n",
        "npm_package_bin_app=cli.js\n",
        "npm_package_config_flags_verbose=\n",
        "npm_package_config_port=8080\n",
        "npm_package_engines_node=>=18\n",
        "npm_package_json=<dir>/package.json\n",
        "npm_package_name=app\n",
        "npm_package_version=1.2.3\n",
    ] {
        assert!(hoard.contains(want), "{want:?} in\n{hoard}");
    }
    assert!(
        !hoard.contains("npm_config_audit"),
        "npm's default is not exported:\n{hoard}"
    );
    // npm, on the same files, gives the same.
    let npm_dir = ctx.root.path().join("npm-side");
    std::fs::create_dir_all(&npm_dir).unwrap();
    write_json(&npm_dir.join("package.json"), &pkg);
    std::fs::write(npm_dir.join(".npmrc"), rc).unwrap();
    if npm_code(&npm_dir, &["run", "dump"]) == Some(0) {
        let d = npm_dir.canonicalize().unwrap().display().to_string();
        let npm = read(&npm_dir.join("env.txt")).replace(&d, "<dir>");
        assert_eq!(hoard, npm);
    }
}

#[test]
fn npm_defaults_hoard_carries_are_the_ones_npm_has() {
    let test = "habits::npm_defaults_hoard_carries_are_the_ones_npm_has";
    if !which("npm") || !which("node") {
        skip(
            test,
            "npm and node are not on PATH (the defaults are compared with npm's own)",
        );
        return;
    }
    let src =
        read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("client/npm_defaults.rs"));
    let (table, machine) = src.split_once("pub const MACHINE_DEPENDENT").unwrap();
    let pairs: std::collections::BTreeMap<String, String> = table
        .lines()
        .filter_map(|l| l.trim().strip_prefix("(\""))
        .filter_map(|l| l.split_once("\", \""))
        .map(|(k, rest)| (k.to_string(), rest.trim_end_matches("\"),").to_string()))
        .collect();
    let machine: Vec<&str> = machine
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"'))
        .filter_map(|l| l.strip_suffix("\","))
        .collect();
    let root = Command::new("npm").args(["root", "-g"]).output().unwrap();
    let defs = std::path::Path::new(String::from_utf8_lossy(&root.stdout).trim())
        .join("npm/node_modules/@npmcli/config/lib/definitions/definitions.js");
    let script = "const d = require(process.argv[1]); const out = {};\
        for (const [k, v] of Object.entries(d)) { const x = v.default; let s;\
          if (x === null || x === undefined) s = ''; else if (typeof x === 'boolean' || typeof x === 'number') s = String(x);\
          else if (typeof x === 'string') s = x; else if (Array.isArray(x) && x.length === 0) s = ''; else continue;\
          if (s.includes('\\n') || s.length > 40 || k.startsWith('_')) continue; out[k] = s }\
        console.log(JSON.stringify(out))";
    let out = Command::new("node")
        .args(["-e", script])
        .arg(&defs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let npm: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&out.stdout).unwrap();
    let npm: std::collections::BTreeMap<String, String> = npm
        .into_iter()
        .filter(|(k, _)| !machine.contains(&k.as_str()))
        .collect();
    assert_eq!(pairs, npm, "client/npm_defaults.rs against the npm on PATH");
}

/// (setting, treatment, npm's default) of every warned or refused row of the README's table.
fn refused_rows() -> Vec<(String, String, String)> {
    let readme = read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    let from = readme.find("<!-- npm-settings-table").unwrap();
    let to = readme.find("<!-- /npm-settings-table -->").unwrap();
    readme[from..to]
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let key = cells.first()?.strip_prefix("| `")?.strip_suffix('`')?;
            let word = *cells.get(1)?;
            let default = cells.get(2)?.rsplit_once("unless `")?.1.split('`').next()?;
            matches!(word, "warned" | "refused").then(|| (key.into(), word.into(), default.into()))
        })
        .collect()
}

#[test]
fn every_warned_setting_is_named_and_every_refused_one_stops_the_install() {
    let rows = refused_rows();
    assert!(rows.len() > 20, "{rows:?}");
    let reg = Registry::start();
    reg.publish(Pkg::new("lib", "1.0.0"));
    for (key, word, default) in rows {
        // Some value other than npm's default.
        let value = match default.as_str() {
            "true" => "false".to_string(),
            "false" => "true".to_string(),
            "all" => "none".to_string(),
            "" => "something".to_string(),
            n => match n.parse::<u64>() {
                Ok(n) => (n.saturating_sub(1)).to_string(),
                Err(_) => format!("{n}x"),
            },
        };
        let ctx = TestContext::new().with_registry(&reg.url);
        ctx.write_project(
            &json!({"name": "app", "version": "1.0.0", "dependencies": {"lib": "1"}}),
        );
        std::fs::write(ctx.project.join(".npmrc"), format!("{key}={value}\n")).unwrap();
        let out = ctx.run(&["install"]);
        let said = format!("npm setting `{key}={value}` is not supported");
        assert_eq!(
            stderr(&out).matches(&said).count(),
            1,
            "{key}={value}: {}",
            stderr(&out)
        );
        if word == "refused" {
            assert_eq!(out.status.code(), Some(1), "{key}");
            assert!(
                !ctx.project.join("node_modules").exists(),
                "{key}: nothing installed"
            );
        } else {
            assert!(out.status.success(), "{key}: {}", stderr(&out));
            assert!(ctx.project.join("node_modules/lib").exists(), "{key}");
        }
    }
}

#[test]
fn omit_lockfile_registry_resolved_leaves_resolved_out() {
    let reg = Registry::start();
    reg.publish(Pkg::new("lib", "1.0.0"));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": {"lib": "1"}}));
    std::fs::write(
        ctx.project.join(".npmrc"),
        "omit-lockfile-registry-resolved=true\n",
    )
    .unwrap();
    ctx.ok(&["install"]);
    let lock = read(&ctx.project.join("package-lock.json"));
    assert!(!lock.contains("\"resolved\""), "{lock}");
    assert!(lock.contains("\"integrity\""), "{lock}");
    // Installed again from that lockfile, from the registry configured now.
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    ctx.ok(&["ci"]);
    assert!(ctx.project.join("node_modules/lib/package.json").exists());
}

#[test]
fn projects_status_and_json_ls_and_why_for_tools() {
    let reg = Registry::start();
    reg.publish(Pkg::new("leaf", "1.0.0"));
    reg.publish(Pkg::new("mid", "1.0.0").dep("leaf", "^1.0.0"));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": {"mid": "1"}}));
    let out = ctx.run(&["status"]);
    assert_eq!(out.status.code(), Some(1), "not installed yet");
    ctx.ok(&["install"]);
    assert_eq!(ctx.ok(&["status"]).trim(), "in sync");
    let pj = ctx.project.join("package.json");
    // A real edit (the content is what counts, not the mtime).
    let edited = std::fs::read_to_string(&pj).unwrap()
        + "
";
    std::fs::write(&pj, edited).unwrap();
    let out = ctx.run(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "needs install: package.json changed since the last install"
    );
    let line = ctx.ok(&["--json", "projects"]);
    let v: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(
        v["path"],
        json!(ctx.project.canonicalize().unwrap().display().to_string())
    );
    assert_eq!(v["sync_state"], "SYNC_STATE_NEEDS_INSTALL");
    assert_eq!(v["packages"], 2);
    // ls and why as JSON.
    let ls: Value = serde_json::from_str(&ctx.ok(&["--json", "ls", "--all"])).unwrap();
    assert_eq!(ls["dependencies"]["mid"]["version"], "1.0.0");
    assert_eq!(
        ls["dependencies"]["mid"]["dependencies"]["leaf"]["location"],
        "node_modules/leaf"
    );
    let why: Value = serde_json::from_str(&ctx.ok(&["--json", "why", "leaf"])).unwrap();
    assert_eq!(why[0]["version"], "1.0.0");
    assert_eq!(why[0]["dependents"][0]["name"], "mid");
    assert_eq!(why[0]["dependents"][0]["spec"], "^1.0.0");
}
