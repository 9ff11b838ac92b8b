//! `hoard init` and `hoard version` (issue #14, point 3), each compared with what npm does in a
//! twin folder: the package.json `npm init -y` writes, and `npm version`'s bump, lockfile
//! version, git commit and tag. Skipped (and said) without npm or git.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::context::{TestContext, skip, stderr, which, write_json};

fn read(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn npm(dir: &Path, args: &[&str], cache: &Path) {
    let out = Command::new("npm")
        .args(args)
        .env("npm_config_cache", cache)
        .env("npm_config_update_notifier", "false")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "npm {args:?}: {}", stderr(&out));
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn init_writes_what_npm_init_y_writes() {
    if !which("npm") {
        return skip(
            "project::init_writes_what_npm_init_y_writes",
            "npm is not installed",
        );
    }
    let ctx = TestContext::new();
    let ours = ctx.home.join("twin/my-tool");
    let theirs = ctx.home.join("npm/my-tool");
    for d in [&ours, &theirs] {
        std::fs::create_dir_all(d).unwrap();
    }
    let out = ctx.run(&["-C", ours.to_str().unwrap(), "init", "-y"]);
    assert!(out.status.success(), "{}", stderr(&out));
    npm(&theirs, &["init", "-y"], &ctx.home.join("npm-cache"));
    assert_eq!(
        read(&ours.join("package.json")),
        read(&theirs.join("package.json"))
    );
}

#[test]
fn version_bumps_commits_and_tags_as_npm_version_does() {
    let test = "project::version_bumps_commits_and_tags_as_npm_version_does";
    if !which("npm") || !which("git") {
        return skip(test, "npm and git are needed");
    }
    let ctx = TestContext::new();
    let cache = ctx.home.join("npm-cache");
    let make = |name: &str| {
        let d = ctx.home.join(name);
        std::fs::create_dir_all(&d).unwrap();
        write_json(
            &d.join("package.json"),
            &json!({"name": "tool", "version": "1.2.3", "scripts": {
                "preversion": "echo pre >> order.txt",
                "version": "echo mid >> order.txt",
                "postversion": "echo post >> order.txt"}}),
        );
        write_json(
            &d.join("package-lock.json"),
            &json!({"name": "tool", "version": "1.2.3", "lockfileVersion": 3, "requires": true,
                "packages": {"": {"name": "tool", "version": "1.2.3"}}}),
        );
        std::fs::write(d.join(".gitignore"), "order.txt\n").unwrap();
        git(&d, &["init", "-q"]);
        git(&d, &["add", "-A"]);
        git(&d, &["commit", "-qm", "first"]);
        d
    };
    let (ours, theirs) = (make("ours"), make("theirs"));
    let env = [
        ("GIT_AUTHOR_NAME", "t"),
        ("GIT_AUTHOR_EMAIL", "t@example.com"),
        ("GIT_COMMITTER_NAME", "t"),
        ("GIT_COMMITTER_EMAIL", "t@example.com"),
    ];
    for what in ["minor", "prerelease", "patch", "3.0.0"] {
        let out = ctx
            .hoard()
            .envs(env)
            .args(["-C", ours.to_str().unwrap(), "version", what])
            .output()
            .unwrap();
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        let mut cmd = Command::new("npm");
        cmd.envs(env)
            .env("npm_config_cache", &cache)
            .current_dir(&theirs);
        let o = cmd.args(["version", what]).output().unwrap();
        assert!(o.status.success(), "npm version {what}: {}", stderr(&o));
        // npm prints each script's banner first; the last line is the new tag.
        let last = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .trim()
                .lines()
                .last()
                .map(String::from)
        };
        assert_eq!(last(&out.stdout), last(&o.stdout), "{what}");
        for f in ["package.json", "package-lock.json"] {
            assert_eq!(read(&ours.join(f)), read(&theirs.join(f)), "{what}: {f}");
        }
        for q in [
            &["log", "-1", "--format=%s"][..],
            &["tag", "--list"],
            &["status", "--porcelain"],
        ] {
            assert_eq!(git(&ours, q), git(&theirs, q), "{what}: git {q:?}");
        }
    }
    assert_eq!(
        std::fs::read_to_string(ours.join("order.txt")).unwrap(),
        std::fs::read_to_string(theirs.join("order.txt")).unwrap()
    );
    // A dirty tree is refused, and nothing changes.
    std::fs::write(ours.join(".gitignore"), "changed\n").unwrap();
    let out = ctx.run(&["-C", ours.to_str().unwrap(), "version", "patch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not clean"), "{}", stderr(&out));
    assert_eq!(read(&ours.join("package.json"))["version"], "3.0.0");
    // --no-git-tag-version bumps the files only.
    let out = ctx.run(&[
        "-C",
        ours.to_str().unwrap(),
        "version",
        "patch",
        "--no-git-tag-version",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read(&ours.join("package.json"))["version"], "3.0.1");
    assert!(!git(&ours, &["tag", "--list"]).contains("v3.0.1"));
}

#[test]
fn view_answers_as_npm_view_does() {
    use crate::registry::{Pkg, Registry};
    if !which("npm") {
        return skip(
            "project::view_answers_as_npm_view_does",
            "npm is not installed",
        );
    }
    let reg = Registry::start();
    for v in ["1.0.0", "1.1.0", "2.0.0"] {
        reg.publish(
            Pkg::new("viewed", v)
                .dep("left", "^1.0.0")
                .meta("description", json!("a package to look at"))
                .file("index.js", b"1", 0o644),
        );
    }
    reg.tag("viewed", "next", "2.0.0");
    reg.tag("viewed", "latest", "1.1.0");
    let ctx = TestContext::new().with_registry(&reg.url);
    std::fs::write(ctx.project.join("package.json"), "{}").unwrap();
    let cache = ctx.home.join("npm-cache");
    for args in [
        &["viewed", "version"][..],
        &["viewed@next", "version"],
        &["viewed", "dist-tags"],
        &["viewed", "versions"],
        &["viewed", "dependencies"],
        &["viewed", "description", "version"],
        &["viewed@^1", "version"],
        &["viewed@2.0.0", "dist.tarball"],
    ] {
        let ours = ctx
            .hoard()
            .arg("--json")
            .arg("view")
            .args(args)
            .output()
            .unwrap();
        assert!(ours.status.success(), "{args:?}: {}", stderr(&ours));
        let theirs = Command::new("npm")
            .arg("view")
            .args(args)
            .args(["--json", "--registry", &reg.url])
            .env("npm_config_cache", &cache)
            .env("npm_config_update_notifier", "false")
            .current_dir(&ctx.project)
            .output()
            .unwrap();
        assert!(
            theirs.status.success(),
            "npm view {args:?}: {}",
            stderr(&theirs)
        );
        let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap();
        assert_eq!(parse(&ours.stdout), parse(&theirs.stdout), "view {args:?}");
    }
    let out = ctx.run(&["view", "not-there"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not-there") && stderr(&out).contains("404"),
        "{}",
        stderr(&out)
    );
}
