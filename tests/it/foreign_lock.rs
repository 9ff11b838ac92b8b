//! Other package managers' lockfiles (issue #14, point 2): a project with only a pnpm-lock.yaml
//! (v9 or v6), a yarn.lock (classic or berry) or a bun.lock, each written by the real tool
//! (tests/fixtures/foreign-locks/record.sh), installs the versions that tool installed, although
//! the registry now has a newer version of every one of them; without the lockfile the same
//! project gets the newer ones (so the comparison can fail).

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::context::{TestContext, stderr};
use crate::registry::Registry;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/foreign-locks")
}

/// The recorded registry documents, each with a version published after the lockfiles were
/// written: for every version the tools installed, `x.y.(z+1000)`, which every range that
/// accepted it accepts too (the new `latest` where the installed one was the latest).
fn registry_with_newer_versions() -> Registry {
    let installed: BTreeSet<String> = ["pnpm-v9", "pnpm-v6", "yarn-classic", "yarn-berry", "bun"]
        .iter()
        .flat_map(|k| {
            let f = fixtures().join(format!("{k}.expected"));
            let text = std::fs::read_to_string(f).unwrap();
            text.lines().map(String::from).collect::<Vec<_>>()
        })
        .collect();
    let reg = Registry::start();
    let f = std::fs::File::open(fixtures().join("registry.jsonl.gz")).unwrap();
    for line in std::io::BufReader::new(flate2::read::GzDecoder::new(f)).lines() {
        let mut doc: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let name = doc["name"].as_str().unwrap().to_string();
        for pair in installed
            .iter()
            .filter(|p| p.rsplit_once('@').unwrap().0 == name)
        {
            let version = pair.rsplit_once('@').unwrap().1;
            let v = semver::Version::parse(version).unwrap();
            let newer = format!("{}.{}.{}", v.major, v.minor, v.patch + 1000);
            let mut m = doc["versions"][version].clone();
            m["version"] = json!(newer);
            doc["versions"][&newer] = m;
            doc["time"][&newer] = json!("2026-11-01T00:00:00.000Z");
            if doc["dist-tags"]["latest"] == version {
                doc["dist-tags"]["latest"] = json!(newer);
            }
        }
        reg.publish_raw(&name, Arc::from(doc.to_string()));
    }
    reg
}

/// Every name@version package-lock.json records.
fn locked(project: &Path) -> BTreeSet<String> {
    let lock: Value =
        serde_json::from_slice(&std::fs::read(project.join("package-lock.json")).unwrap()).unwrap();
    let mut out = BTreeSet::new();
    for (path, e) in lock["packages"].as_object().unwrap() {
        if path.is_empty() {
            continue;
        }
        let name = path.rsplit_once("node_modules/").unwrap().1;
        out.insert(format!("{name}@{}", e["version"].as_str().unwrap()));
    }
    out
}

fn project(ctx: &TestContext, reg: &Registry, kind: &str, lock_name: Option<&str>) -> PathBuf {
    let dir = ctx.home.join(kind);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixtures().join("package.json"), dir.join("package.json")).unwrap();
    std::fs::write(dir.join(".npmrc"), format!("registry={}\n", reg.url)).unwrap();
    if let Some(name) = lock_name {
        std::fs::copy(fixtures().join(format!("{kind}.lock")), dir.join(name)).unwrap();
    }
    dir
}

fn install(ctx: &TestContext, dir: &Path) -> String {
    let out = ctx
        .hoard()
        .args([
            "-C",
            dir.to_str().unwrap(),
            "install",
            "--package-lock-only",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out))
}

#[test]
fn each_tools_lockfile_keeps_the_versions_that_tool_installed() {
    let reg = registry_with_newer_versions();
    let ctx = TestContext::new().with_registry(&reg.url);

    // Control: without a lockfile every package gets the newer version.
    let fresh = project(&ctx, &reg, "none", None);
    install(&ctx, &fresh);
    let got = locked(&fresh);
    assert!(
        got.iter()
            .all(|p| p.rsplit_once('.').unwrap().1.parse::<u64>().unwrap() >= 1000),
        "{got:?}"
    );

    for (kind, file, says) in [
        ("pnpm-v9", "pnpm-lock.yaml", "pnpm-lock.yaml"),
        ("pnpm-v6", "pnpm-lock.yaml", "pnpm-lock.yaml"),
        ("yarn-classic", "yarn.lock", "yarn.lock"),
        ("yarn-berry", "yarn.lock", "yarn.lock"),
        ("bun", "bun.lock", "bun.lock"),
    ] {
        let dir = project(&ctx, &reg, kind, Some(file));
        let text = install(&ctx, &dir);
        assert!(
            text.contains(&format!("versions {says} locks")),
            "{kind}: no word of the lockfile: {text}"
        );
        let expected: BTreeSet<String> =
            std::fs::read_to_string(fixtures().join(format!("{kind}.expected")))
                .unwrap()
                .lines()
                .map(String::from)
                .collect();
        assert_eq!(locked(&dir), expected, "{kind}");
    }
}

#[test]
fn a_lockfile_that_cannot_be_read_is_named_and_nothing_is_written() {
    let reg = registry_with_newer_versions();
    let ctx = TestContext::new().with_registry(&reg.url);
    let dir = project(&ctx, &reg, "broken", None);
    std::fs::write(
        dir.join("pnpm-lock.yaml"),
        "lockfileVersion: '9.0'\npackages: [\n",
    )
    .unwrap();
    let out = ctx
        .hoard()
        .args([
            "-C",
            dir.to_str().unwrap(),
            "install",
            "--package-lock-only",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("pnpm-lock.yaml") && err.contains("delete it"),
        "{err}"
    );
    assert!(!dir.join("package-lock.json").exists());
}
