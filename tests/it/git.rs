//! Git dependencies (issue #14, point 1): every spec form npm-package-arg reads installs from a
//! real `git daemon` on 127.0.0.1 and from file URLs, picks what the committish or `semver:`
//! range names, locks as npm locks (`resolved` with the commit, no integrity; checked against
//! npm's own lockfile where npm can reach the repository), installs again from the lockfile
//! with the server gone, and a bad ref or repository fails naming both. The hosted shortcuts
//! (`github:`, `gitlab:`, `bitbucket:`, `u/r`) and hosted URLs reach the local repositories
//! through git's own `url.<base>.insteadOf` in the test HOME's .gitconfig, the way a user
//! points git at a mirror. Skipped (and said) without git.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::context::{TestContext, eventually, skip, stderr, which};
use crate::registry::{Pkg, Registry};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.test")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.test")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository's history, and the commit of each point in it.
struct History {
    v1_0: String,
    v1_1: String,
    main: String,
    next: String,
}

fn commit(work: &Path, version: &str, says: &str) -> String {
    let pkg = json!({"name": "gitpkg", "version": version, "main": "index.js",
        "dependencies": {"dep": "^1.0.0"}});
    std::fs::write(work.join("package.json"), pkg.to_string()).unwrap();
    std::fs::write(
        work.join("index.js"),
        format!("module.exports = {says:?};\n"),
    )
    .unwrap();
    // What npm-packlist leaves out must stay out of the packed git dependency too.
    std::fs::write(work.join(".npmignore"), "notes.txt\n").unwrap();
    std::fs::write(work.join("notes.txt"), "not packed").unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", says]);
    git(work, &["rev-parse", "HEAD"])
}

/// A bare repository at `bare`: v1.0.0 (lightweight tag), v1.1.0 (annotated tag), `main` one
/// commit past it (HEAD), and a branch `next` at 2.0.0 from v1.1.0.
fn make_repo(work: &Path, bare: &Path) -> History {
    std::fs::create_dir_all(work).unwrap();
    git(work, &["init", "-q", "-b", "main"]);
    let v1_0 = commit(work, "1.0.0", "v1.0.0");
    git(work, &["tag", "v1.0.0"]);
    let v1_1 = commit(work, "1.1.0", "v1.1.0");
    git(work, &["tag", "-a", "v1.1.0", "-m", "1.1.0"]);
    git(work, &["checkout", "-q", "-b", "next"]);
    let next = commit(work, "2.0.0", "next");
    git(work, &["checkout", "-q", "main"]);
    let main = commit(work, "1.1.0", "main");
    std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
    let (w, b) = (work.display().to_string(), bare.display().to_string());
    git(work, &["clone", "-q", "--bare", &w, &b]);
    History {
        v1_0,
        v1_1,
        main,
        next,
    }
}

/// `git daemon` serving `base` on 127.0.0.1, stopped when dropped.
struct GitServer {
    child: Child,
    url: String,
}

impl GitServer {
    fn start(base: &Path, probe: &str) -> GitServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("git")
            .arg("daemon")
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon");
        let url = format!("git://127.0.0.1:{port}/");
        let server = GitServer { child, url };
        let probe = format!("{}{probe}", server.url);
        let up = eventually(Duration::from_secs(20), || {
            Command::new("git")
                .args(["ls-remote", &probe])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        assert!(up, "git daemon did not answer at {probe}");
        server
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test HOME's .gitconfig: the hosts the specs name are `base` (a git daemon or a
/// folder), as `url.<base>.insteadOf` says.
fn point_hosts_at(ctx: &TestContext, base: &str) {
    let mut cfg = String::new();
    for (prefix, host) in [
        ("github", "github.com"),
        ("gitlab", "gitlab.com"),
        ("bitbucket", "bitbucket.org"),
        ("example", "git.example.test"),
    ] {
        cfg.push_str(&format!(
            "[url \"{base}{prefix}/\"]\n\tinsteadOf = https://{host}/\n\tinsteadOf = \
             git@{host}:\n\tinsteadOf = ssh://git@{host}/\n"
        ));
    }
    std::fs::write(ctx.home.join(".gitconfig"), cfg).unwrap();
}

struct Fixture {
    reg: Registry,
    root: tempfile::TempDir,
    hist: History,
}

impl Fixture {
    /// The same repository under each host's folder (`github/u/r.git`, `gitlab/g/sub/r.git`,
    /// `bitbucket/u/r.git`, `example/u/r.git`) and at `u/r.git`.
    fn new() -> Fixture {
        let reg = Registry::start();
        reg.publish(Pkg::new("dep", "1.0.0"));
        let root = tempfile::tempdir().unwrap();
        let srv = root.path().join("srv");
        let hist = make_repo(&root.path().join("work"), &srv.join("u/r.git"));
        for to in [
            "github/u/r.git",
            "gitlab/g/sub/r.git",
            "bitbucket/u/r.git",
            "example/u/r.git",
        ] {
            let dest = srv.join(to);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            let (from, d) = (
                srv.join("u/r.git").display().to_string(),
                dest.display().to_string(),
            );
            git(root.path(), &["clone", "-q", "--bare", &from, &d]);
        }
        Fixture { reg, root, hist }
    }

    fn srv(&self) -> PathBuf {
        self.root.path().join("srv")
    }
}

fn read(ctx: &TestContext, rel: &str) -> String {
    let p = ctx.project.join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn lock(ctx: &TestContext) -> Value {
    serde_json::from_str(&read(ctx, "package-lock.json")).unwrap()
}

fn says(ctx: &TestContext, dep: &str) -> String {
    let js = read(ctx, &format!("node_modules/{dep}/index.js"));
    js.split('"').nth(1).unwrap_or_default().to_string()
}

/// Every form, with what each must install and lock. `direct` is how the repository is
/// reached without a host: the git daemon's URL or a `git+file://` one.
fn every_form(f: &Fixture, direct: &str) -> Vec<(&'static str, String, &'static str, String)> {
    let h = &f.hist;
    let gh = "git+ssh://git@github.com/u/r.git";
    vec![
        (
            "a",
            "github:u/r#next".into(),
            "next",
            format!("{gh}#{}", h.next),
        ),
        (
            "b",
            "u/r#v1.0.0".into(),
            "v1.0.0",
            format!("{gh}#{}", h.v1_0),
        ),
        (
            "c",
            "gitlab:g/sub/r#semver:^1.0.0".into(),
            "v1.1.0",
            format!("git+ssh://git@gitlab.com/g/sub/r.git#{}", h.v1_1),
        ),
        (
            "d",
            "bitbucket:u/r".into(),
            "main",
            format!("git+ssh://git@bitbucket.org/u/r.git#{}", h.main),
        ),
        (
            "e",
            "https://github.com/u/r.git#v1.1.0".into(),
            "v1.1.0",
            format!("{gh}#{}", h.v1_1),
        ),
        (
            "f",
            "git+https://git.example.test/u/r.git#next".into(),
            "next",
            format!("git+https://git.example.test/u/r.git#{}", h.next),
        ),
        (
            "g",
            format!("git+ssh://git@git.example.test/u/r.git#{}", &h.v1_0[..10]),
            "v1.0.0",
            format!("git+ssh://git@git.example.test/u/r.git#{}", h.v1_0),
        ),
        (
            "h",
            format!("{direct}u/r.git#semver:~1.0.0"),
            "v1.0.0",
            format!("{direct}u/r.git#{}", h.v1_0),
        ),
        (
            "i",
            format!("{direct}u/r.git#{}", h.next),
            "next",
            format!("{direct}u/r.git#{}", h.next),
        ),
    ]
}

fn check_installed(ctx: &TestContext, forms: &[(&str, String, &str, String)]) {
    let l = lock(ctx);
    for (dep, spec, expect, resolved) in forms {
        assert_eq!(says(ctx, dep), *expect, "{dep}: {spec}");
        let entry = &l["packages"][format!("node_modules/{dep}")];
        assert_eq!(entry["resolved"], json!(resolved), "{dep}: {spec}");
        assert!(
            entry.get("integrity").is_none(),
            "npm locks no integrity for git: {entry}"
        );
        assert_eq!(l["packages"][""]["dependencies"][dep], json!(spec));
    }
    // The git package's own registry dependency, and npm-packlist's rules.
    assert!(ctx.project.join("node_modules/dep/package.json").is_file());
    assert!(!ctx.project.join("node_modules/a/notes.txt").exists());
    assert!(ctx.project.join("node_modules/a/package.json").is_file());
}

fn install_every_form(f: &Fixture, ctx: &TestContext, direct: &str) {
    let forms = every_form(f, direct);
    let deps: serde_json::Map<String, Value> = forms
        .iter()
        .map(|(d, s, _, _)| (d.to_string(), json!(s)))
        .collect();
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": deps}));
    ctx.ok(&["install"]);
    check_installed(ctx, &forms);
}

#[test]
fn every_git_spec_form_installs_from_a_git_daemon() {
    if !which("git") {
        return skip(
            "every_git_spec_form_installs_from_a_git_daemon",
            "git is not installed",
        );
    }
    let f = Fixture::new();
    let server = GitServer::start(&f.srv(), "u/r.git");
    let ctx = TestContext::new().with_registry(&f.reg.url);
    point_hosts_at(&ctx, &server.url);
    let direct = server.url.clone();
    install_every_form(&f, &ctx, &direct);

    // Locked: again with the server gone, from the store's git cache, node_modules removed.
    drop(server);
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    ctx.ok(&["ci"]);
    check_installed(&ctx, &every_form(&f, &direct));
    ctx.assert_store_whole();
}

#[test]
fn every_git_spec_form_installs_from_file_urls() {
    if !which("git") {
        return skip(
            "every_git_spec_form_installs_from_file_urls",
            "git is not installed",
        );
    }
    let f = Fixture::new();
    let ctx = TestContext::new().with_registry(&f.reg.url);
    let base = format!("file://{}/", f.srv().display());
    point_hosts_at(&ctx, &base);
    install_every_form(&f, &ctx, &format!("git+{base}"));

    // A lockfile made elsewhere installs into a fresh store: the locked commits, although
    // `next` has moved on since.
    let work = f.root.path().join("work");
    git(&work, &["checkout", "-q", "next"]);
    commit(&work, "2.1.0", "next moved");
    let bare = f.srv().join("github/u/r.git");
    git(&work, &["push", "-q", &bare.display().to_string(), "next"]);
    let again = TestContext::new().with_registry(&f.reg.url);
    point_hosts_at(&again, &base);
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(ctx.project.join(file), again.project.join(file)).unwrap();
    }
    again.ok(&["install"]);
    assert_eq!(
        says(&again, "a"),
        "next",
        "the locked commit, not the branch's new one"
    );
    assert_eq!(lock(&again), lock(&ctx));
    // The branch's new commit comes with `hoard update`, as with npm.
    ctx.ok(&["install"]);
    assert_eq!(says(&ctx, "a"), "next");
    ctx.ok(&["update", "a"]);
    assert_eq!(says(&ctx, "a"), "next moved");
    assert_eq!(says(&ctx, "b"), "v1.0.0");
}

#[test]
fn a_bad_git_ref_or_repository_fails_naming_both() {
    if !which("git") {
        return skip(
            "a_bad_git_ref_or_repository_fails_naming_both",
            "git is not installed",
        );
    }
    let f = Fixture::new();
    let ctx = TestContext::new().with_registry(&f.reg.url);
    point_hosts_at(&ctx, &format!("file://{}/", f.srv().display()));
    let missing = f.root.path().join("nowhere/r.git");
    for (spec, names) in [
        (
            "github:u/r#no-such-branch",
            vec!["github.com/u/r", "no-such-branch"],
        ),
        ("github:u/r#semver:^9.0.0", vec!["github.com/u/r", "^9.0.0"]),
        ("github:u/r#abcdef12", vec!["github.com/u/r", "abcdef12"]),
        (
            &format!("git+file://{}", missing.display()),
            vec![missing.to_str().unwrap()],
        ),
    ] {
        ctx.write_project(&json!({"name": "app", "dependencies": {"x": spec}}));
        let out = ctx.run(&["install"]);
        let err = stderr(&out);
        assert_ne!(out.status.code(), Some(0), "{spec}: {err}");
        for n in names {
            assert!(err.contains(n), "{spec}: `{n}` not in: {err}");
        }
        assert!(!ctx.project.join("node_modules").exists(), "{spec}");
        assert!(!ctx.project.join("package-lock.json").exists(), "{spec}");
    }
}

#[test]
fn hoard_add_of_a_git_spec_saves_it_as_npm_does() {
    if !which("git") {
        return skip(
            "hoard_add_of_a_git_spec_saves_it_as_npm_does",
            "git is not installed",
        );
    }
    let f = Fixture::new();
    let ctx = TestContext::new().with_registry(&f.reg.url);
    point_hosts_at(&ctx, &format!("file://{}/", f.srv().display()));
    ctx.write_project(&json!({"name": "app", "version": "1.0.0"}));
    ctx.ok(&["add", "u/r#next"]);
    ctx.ok(&["add", "alias@git+https://git.example.test/u/r.git#v1.0.0"]);
    let pkg: Value = serde_json::from_str(&read(&ctx, "package.json")).unwrap();
    assert_eq!(
        pkg["dependencies"],
        json!({"gitpkg": "github:u/r#next", "alias": "git+https://git.example.test/u/r.git#v1.0.0"})
    );
    assert_eq!(says(&ctx, "gitpkg"), "next");
    assert_eq!(says(&ctx, "alias"), "v1.0.0");
}

/// npm's own lockfile for the forms npm fetches with git alone (not the hosted ones, which npm
/// first tries as tarballs from the host's web API), from the same repositories.
#[test]
fn git_dependencies_lock_as_npm_locks_them() {
    if !which("git") || !which("npm") {
        return skip(
            "git_dependencies_lock_as_npm_locks_them",
            "needs git and npm",
        );
    }
    let f = Fixture::new();
    let server = GitServer::start(&f.srv(), "u/r.git");
    let file = format!("git+file://{}/", f.srv().display());
    let h = &f.hist;
    let deps = json!({
        "a": format!("{file}u/r.git#next"),
        "b": format!("{file}u/r.git#semver:^1.0.0"),
        "c": format!("{}u/r.git#v1.0.0", server.url),
        "d": format!("{}u/r.git", server.url),
        "e": format!("{file}u/r.git#{}", &h.v1_0[..12]),
    });
    let ctx = TestContext::new().with_registry(&f.reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": deps}));
    ctx.ok(&["install", "--package-lock-only"]);
    let npm_dir = f.root.path().join("npm");
    std::fs::create_dir_all(&npm_dir).unwrap();
    std::fs::copy(
        ctx.project.join("package.json"),
        npm_dir.join("package.json"),
    )
    .unwrap();
    let out = Command::new("npm")
        .args([
            "install",
            "--package-lock-only",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
        ])
        .current_dir(&npm_dir)
        .env("npm_config_registry", &f.reg.url)
        .env("npm_config_cache", f.root.path().join("npm-cache"))
        .env("HOME", f.root.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "npm: {}", stderr(&out));
    let npm: Value =
        serde_json::from_str(&std::fs::read_to_string(npm_dir.join("package-lock.json")).unwrap())
            .unwrap();
    let ours = lock(&ctx);
    for key in [
        "node_modules/a",
        "node_modules/b",
        "node_modules/c",
        "node_modules/d",
        "node_modules/e",
        "node_modules/dep",
    ] {
        assert!(
            ours["packages"][key]["resolved"].is_string(),
            "{key}: {ours}"
        );
        for field in ["version", "resolved", "integrity"] {
            assert_eq!(
                ours["packages"][key][field], npm["packages"][key][field],
                "{key}.{field}: hoard {} npm {}",
                ours["packages"][key], npm["packages"][key]
            );
        }
    }
}

/// A repository whose package is built by its `prepare` script from a dev dependency (the
/// built file is git-ignored, as build output is), at `<srv>/github/u/<name>.git`.
fn built_repo(f: &Fixture, name: &str, prepare: &str) {
    let work = f.root.path().join(format!("work-{name}"));
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    let pkg = json!({"name": name, "version": "1.0.0", "main": "lib/index.js", "files": ["lib"],
        "devDependencies": {"devdep": "^1.0.0"}, "scripts": {"prepare": prepare}});
    std::fs::write(work.join("package.json"), pkg.to_string()).unwrap();
    std::fs::write(work.join(".gitignore"), "lib/\nnode_modules/\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "init"]);
    let bare = f.srv().join(format!("github/u/{name}.git"));
    git(
        &work,
        &["clone", "-q", "--bare", ".", &bare.display().to_string()],
    );
}

#[test]
fn a_git_dependency_is_prepared_only_when_its_scripts_are_allowed() {
    if !which("git") {
        return skip(
            "a_git_dependency_is_prepared_only_when_its_scripts_are_allowed",
            "git is not installed",
        );
    }
    let f = Fixture::new();
    f.reg.publish(Pkg::new("devdep", "1.0.0"));
    let build = "mkdir -p lib && test -f node_modules/devdep/package.json && \
                 echo \"module.exports = 'built';\" > lib/index.js";
    built_repo(&f, "built", build);
    built_repo(&f, "broken", "echo the build broke >&2; exit 3");
    let ctx = TestContext::new().with_registry(&f.reg.url);
    point_hosts_at(&ctx, &format!("file://{}/", f.srv().display()));
    let built = ctx.project.join("node_modules/built");

    // Not allowed: packed as it is in git (no lib/), and the user is told why.
    ctx.write_project(&json!({"name": "app", "dependencies": {"built": "github:u/built"}}));
    let out = ctx.run(&["install"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(built.join("package.json").is_file());
    assert!(!built.join("lib").exists(), "prepared without approval");
    let err = stderr(&out);
    assert!(err.contains("built@1.0.0 (prepare:"), "{err}");

    // Approved (npm's key for a hosted repository): its dev dependencies are installed in the
    // checkout and `prepare` runs; neither leaks into the project.
    let out = ctx.ok(&["install-scripts", "approve", "built"]);
    let pkg: Value = serde_json::from_str(&read(&ctx, "package.json")).unwrap();
    let key = pkg["allowScripts"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    assert!(key.starts_with("github:u/built#"), "{key} ({out})");
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    ctx.ok(&["install"]);
    assert_eq!(
        read(&ctx, "node_modules/built/lib/index.js").trim(),
        "module.exports = 'built';"
    );
    assert!(!ctx.project.join("node_modules/devdep").exists());
    let locked = lock(&ctx)["packages"]["node_modules/built"].clone();
    assert!(locked.get("integrity").is_none(), "{locked}");

    // A failing prepare fails the install, naming the repository and showing its output.
    ctx.write_project(
        &json!({"name": "app", "dependencies": {"broken": "github:u/broken"},
        "allowScripts": {"github:u/broken": true}}),
    );
    let out = ctx.run(&["install"]);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("github.com/u/broken") && err.contains("the build broke"),
        "{err}"
    );
    ctx.assert_store_whole();
}

#[test]
fn allow_git_limits_which_git_dependencies_are_fetched() {
    if !which("git") {
        return skip(
            "allow_git_limits_which_git_dependencies_are_fetched",
            "git is not installed",
        );
    }
    let f = Fixture::new();
    f.reg
        .publish(Pkg::new("wrapper", "1.0.0").dep("inner", "github:u/r#v1.0.0"));
    let ctx = TestContext::new().with_registry(&f.reg.url);
    point_hosts_at(&ctx, &format!("file://{}/", f.srv().display()));
    let npmrc = ctx.project.join(".npmrc");
    let own = json!({"name": "app", "dependencies": {"a": "github:u/r#next"}});
    let deep = json!({"name": "app", "dependencies": {"a": "github:u/r#next", "wrapper": "1"}});
    for (setting, pkg, refused) in [
        ("none", &own, Some("allow-git=none")),
        ("root", &deep, Some("allow-git=root")),
        ("root", &own, None),
        ("all", &deep, None),
    ] {
        std::fs::write(&npmrc, format!("allow-git={setting}\n")).unwrap();
        ctx.write_project(pkg);
        let _ = std::fs::remove_file(ctx.project.join("package-lock.json"));
        let out = ctx.run(&["install"]);
        let err = stderr(&out);
        match refused {
            Some(needle) => {
                assert_ne!(out.status.code(), Some(0), "{setting}: {err}");
                assert!(err.contains(needle), "{setting}: {err}");
            }
            None => {
                assert_eq!(out.status.code(), Some(0), "{setting}: {err}");
                assert_eq!(says(&ctx, "a"), "next");
            }
        }
    }
    assert_eq!(says(&ctx, "inner"), "v1.0.0");
    // A lockfile's git dependency is not fetched under allow-git=none either.
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    let fresh = TestContext::new().with_registry(&f.reg.url);
    point_hosts_at(&fresh, &format!("file://{}/", f.srv().display()));
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(ctx.project.join(file), fresh.project.join(file)).unwrap();
    }
    std::fs::write(fresh.project.join(".npmrc"), "allow-git=none\n").unwrap();
    let out = fresh.run(&["ci"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("allow-git=none"), "{}", stderr(&out));
}
