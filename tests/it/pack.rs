//! `hoard pack` lists the same files as `npm pack --dry-run --json` (issue #14, point 3), for
//! three real packages (tests/fixtures/pack, recorded by its record.sh) with a repository's
//! clutter added, each under the rules npm reads: package.json's `files`, `.npmignore` (also
//! in a subfolder), `.gitignore` alone, and npm's defaults and always-included files. npm is
//! run at test time, so its answer is never a stale copy; skipped (and said) without npm.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::context::{TestContext, skip, stderr, which, write_json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pack")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn put(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// What a package's repository holds besides the package.
fn clutter(dir: &Path) {
    for (rel, body) in [
        (".git/HEAD", "ref: refs/heads/main\n"),
        (".git/config", "[core]\n"),
        ("node_modules/dep/index.js", "x"),
        ("node_modules/.package-lock.json", "{}"),
        ("package-lock.json", "{}"),
        ("yarn.lock", ""),
        (".npmrc", "registry=http://example.invalid/\n"),
        (".DS_Store", ""),
        ("test/index.test.js", "test"),
        ("test/fixtures/.DS_Store", ""),
        ("coverage/lcov.info", "TN:"),
        ("docs/guide.md", "# guide"),
        ("docs/guide.md.orig", "old"),
        (".eslintrc.json", "{}"),
        ("npm-debug.log", "log"),
        (".github/workflows/ci.yml", "on: push"),
        ("README.md~", "backup"),
        ("CHANGELOG.md", "# changes"),
        ("scripts/build.sh", "#!/bin/sh\n"),
        ("keep.log", "kept by a negation"),
        ("debug.log", "dropped"),
    ] {
        put(dir, rel, body);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let s = dir.join("scripts/build.sh");
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o775)).unwrap();
        std::os::unix::fs::symlink("index.js", dir.join("linked.js")).unwrap();
    }
}

/// A package that bundles `a` (whose `files`, subfolder .npmignore and dependencies `b`,
/// hoisted, and `c`, nested, count; `b`'s optional `e` too), a linked `linked` (all its ignore
/// files count), and `d`, a dev dependency npm will not bundle; `f` is installed but not a
/// dependency.
fn bundled(dir: &Path) {
    let pkg = serde_json::json!({"name": "bundler", "version": "1.0.0",
        "dependencies": {"a": "1", "linked": "1"}, "devDependencies": {"d": "1"},
        "bundleDependencies": ["a", "linked", "d"]});
    put(dir, "package.json", &pkg.to_string());
    put(dir, "index.js", "x");
    let m = |n: &str, extra: &str| format!("{{\"name\":\"{n}\",\"version\":\"1.0.0\"{extra}}}");
    let nm = "node_modules";
    put(
        dir,
        &format!("{nm}/a/package.json"),
        &m(
            "a",
            ",\"files\":[\"lib\"],\"dependencies\":{\"b\":\"1\",\"c\":\"1\"}",
        ),
    );
    put(dir, &format!("{nm}/a/lib/x.js"), "x");
    put(dir, &format!("{nm}/a/lib/sub/secret.js"), "s");
    put(dir, &format!("{nm}/a/lib/sub/.npmignore"), "secret.js\n");
    put(dir, &format!("{nm}/a/test/t.js"), "t");
    put(dir, &format!("{nm}/a/README.md"), "r");
    put(dir, &format!("{nm}/a/.npmignore"), "lib\n");
    put(dir, &format!("{nm}/a/{nm}/c/package.json"), &m("c", ""));
    put(dir, &format!("{nm}/a/{nm}/c/index.js"), "c");
    put(dir, &format!("{nm}/a/{nm}/c/.DS_Store"), "c");
    put(
        dir,
        &format!("{nm}/b/package.json"),
        &m("b", ",\"optionalDependencies\":{\"e\":\"1\"}"),
    );
    put(dir, &format!("{nm}/b/index.js"), "b");
    put(dir, &format!("{nm}/b/.npmignore"), "b\n");
    put(dir, &format!("{nm}/b/package-lock.json"), "{}");
    for n in ["d", "e", "f"] {
        put(dir, &format!("{nm}/{n}/package.json"), &m(n, ""));
    }
    let src = dir.with_file_name("linked-src");
    put(&src, "package.json", &m("linked", ""));
    put(&src, ".npmignore", "lib/no.js\n");
    put(&src, "lib/no.js", "y");
    put(&src, "lib/yes.js", "y");
    put(&src, ".DS_Store", "z");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&src, dir.join(nm).join("linked")).unwrap();
}

fn without_files_field(dir: &Path) {
    let pj = dir.join("package.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&pj).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("files");
    write_json(&pj, &v);
}

/// (path, size, mode) of each file `npm pack --dry-run --json` lists.
fn npm_files(dir: &Path, cache: &Path) -> BTreeSet<(String, u64, u64)> {
    let out = Command::new("npm")
        .args(["pack", "--dry-run", "--json", "--ignore-scripts"])
        .env("npm_config_cache", cache)
        .env("npm_config_update_notifier", "false")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "npm pack: {}", stderr(&out));
    files_of(&serde_json::from_slice(&out.stdout).unwrap())
}

fn files_of(v: &Value) -> BTreeSet<(String, u64, u64)> {
    v[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let (p, s, m) = (&f["path"], &f["size"], &f["mode"]);
            (
                p.as_str().unwrap().to_string(),
                s.as_u64().unwrap(),
                m.as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn hoard_pack_lists_what_npm_pack_lists() {
    if !which("npm") {
        skip(
            "pack::hoard_pack_lists_what_npm_pack_lists",
            "npm is not installed",
        );
        return;
    }
    let ctx = TestContext::new();
    let cache = ctx.home.join("npm-cache");
    let mut cases: Vec<(String, PathBuf)> = Vec::new();
    for name in ["ms", "chalk", "debug"] {
        // As published (each has `files`), with the clutter beside it.
        let dir = ctx.home.join(format!("{name}-files"));
        copy_dir(&fixture(name), &dir);
        clutter(&dir);
        cases.push((format!("{name} with files"), dir));
    }
    // chalk without `files`: a .npmignore at the top and one in a subfolder (the .gitignore
    // beside it is then not read).
    let dir = ctx.home.join("chalk-npmignore");
    copy_dir(&fixture("chalk"), &dir);
    clutter(&dir);
    without_files_field(&dir);
    put(
        &dir,
        ".npmignore",
        "# tests stay home\ntest/\ncoverage\n*.log\n!keep.log\n/scripts\n.github\n",
    );
    put(&dir, ".gitignore", "source\n");
    put(&dir, "docs/.npmignore", "guide.md\n");
    put(&dir, "docs/api.md", "api");
    cases.push(("chalk with .npmignore".into(), dir));
    // debug without `files`: a .gitignore alone is used.
    let dir = ctx.home.join("debug-gitignore");
    copy_dir(&fixture("debug"), &dir);
    clutter(&dir);
    without_files_field(&dir);
    put(&dir, ".gitignore", "coverage/\n*.log\ndocs\n");
    cases.push(("debug with .gitignore".into(), dir));
    // ms without `files` or any ignore file: npm's defaults alone.
    let dir = ctx.home.join("ms-defaults");
    copy_dir(&fixture("ms"), &dir);
    clutter(&dir);
    without_files_field(&dir);
    cases.push(("ms with defaults only".into(), dir));
    let dir = ctx.home.join("bundler");
    bundled(&dir);
    cases.push(("bundleDependencies".into(), dir));

    for (what, dir) in &cases {
        let want = npm_files(dir, &cache);
        let out = ctx
            .hoard()
            .args(["-C", dir.to_str().unwrap(), "--json", "pack", "--dry-run"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        let got = files_of(&serde_json::from_slice(&out.stdout).unwrap());
        assert_eq!(got, want, "{what}: hoard pack (left) vs npm pack (right)");
        assert!(!dir.join(format!("{}.tgz", "x")).exists());
    }
}

#[test]
fn the_tarball_unpacks_to_the_listed_files_with_npms_names_and_dates() {
    let ctx = TestContext::new();
    let dir = ctx.home.join("chalk");
    copy_dir(&fixture("chalk"), &dir);
    clutter(&dir);
    let dest = ctx.home.join("out");
    std::fs::create_dir_all(&dest).unwrap();
    let out = ctx
        .hoard()
        .args(["-C", dir.to_str().unwrap(), "pack", "--pack-destination"])
        .arg(&dest)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "chalk-4.1.2.tgz"
    );
    let tgz = std::fs::read(dest.join("chalk-4.1.2.tgz")).unwrap();
    let mut t = tar::Archive::new(flate2::read::GzDecoder::new(tgz.as_slice()));
    let mut names = BTreeSet::new();
    for e in t.entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(e.header().mtime().unwrap(), 499162500);
        let p = e.path().unwrap().display().to_string();
        let rel = p
            .strip_prefix("package/")
            .expect("under package/")
            .to_string();
        let on_disk = std::fs::read(dir.join(&rel)).unwrap();
        assert_eq!(e.header().size().unwrap(), on_disk.len() as u64, "{rel}");
        names.insert(rel);
    }
    let want: BTreeSet<String> = [
        "index.d.ts",
        "license",
        "package.json",
        "readme.md",
        "source/index.js",
        "source/templates.js",
        "source/util.js",
    ]
    .map(String::from)
    .into();
    assert_eq!(names, want);

    // A package.json without a version is refused, naming it.
    let bad = ctx.home.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("package.json"), "{\"name\": \"x\"}").unwrap();
    let out = ctx
        .hoard()
        .args(["-C", bad.to_str().unwrap(), "pack"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("package.json") && stderr(&out).contains("version"),
        "{}",
        stderr(&out)
    );
}
