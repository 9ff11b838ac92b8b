//! Installs done before they are asked for: after a project's lockfile changes (as after a
//! `git checkout`), the daemon prepares the next global-layout node_modules, `Watch` streams
//! hear "out of date" then "ready", and the install the user runs only swaps it in, with no
//! request to the registry.

use std::time::Duration;

use hoard_proto::v1::watch_event::Kind;
use serde_json::json;

use crate::context::*;
use crate::registry::*;

#[test]
fn a_checkout_is_installed_ahead_and_the_install_only_swaps_it_in() {
    let reg = Registry::start();
    for i in 0..10 {
        let n = format!("p{i}");
        reg.publish(Pkg::new(&n, "1.0.0").file(
            "index.js",
            format!("module.exports = '{n}';\n").as_bytes(),
            0o644,
        ));
    }
    let ctx = TestContext::new()
        .with_registry(&reg.url)
        .env("HOARD_AHEAD_PROJECTS", "32")
        .env("HOARD_AHEAD_SETTLE_MS", "100");
    // "Branch B": another checkout's package.json and lockfile.
    let other = ctx.root.path().canonicalize().unwrap().join("branch-b");
    std::fs::create_dir_all(&other).unwrap();
    let deps_b = json!({"p5": "1", "p6": "1", "p7": "1", "p8": "1", "p9": "1"});
    write_json(
        &other.join("package.json"),
        &json!({"name": "app", "dependencies": deps_b, "hoard": {"layout": "global"}}),
    );
    let out = ctx
        .hoard()
        .current_dir(&other)
        .args(["install", "--package-lock-only"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    ctx.write_project(&json!({"name": "app", "dependencies": {"p0": "1", "p1": "1", "p2": "1"}, "hoard": {"layout": "global"}}));
    // A tool's cache in node_modules, which every install keeps.
    let cache = ctx.project.join("node_modules/.cache/tool/data");
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    std::fs::write(&cache, "cached").unwrap();
    ctx.ok(&["install"]);
    let sock = ctx.socket();
    let project = ctx.project.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let kinds = rt.block_on(async {
        let channel = hoard_proto::uds_channel(&sock, Duration::from_secs(5))
            .await
            .expect("connect");
        let mut client = hoard_proto::v1::hoard_client::HoardClient::new(channel);
        let req = hoard_proto::v1::WatchRequest {
            project_dir: project.display().to_string(),
            ..Default::default()
        };
        let mut stream = client.watch(req).await.unwrap().into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert_eq!(first.kind, Kind::Watching as i32);
        // The checkout: both files change.
        for f in ["package.json", "package-lock.json"] {
            std::fs::copy(other.join(f), project.join(f)).unwrap();
        }
        let mut kinds = vec![];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while let Ok(Ok(Some(ev))) = tokio::time::timeout_at(deadline, stream.message()).await {
            kinds.push(ev.kind);
            if ev.kind == Kind::NodeModulesReady as i32 {
                assert!(ev.message.contains("5 packages ready"), "{}", ev.message);
                break;
            }
        }
        kinds
    });
    assert!(
        kinds.contains(&(Kind::NodeModulesOutOfDate as i32)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(Kind::NodeModulesReady as i32)),
        "{kinds:?}: {}",
        ctx.log()
    );
    let nm = ctx.project.join("node_modules");
    assert!(
        nm.join("p0").exists(),
        "the old node_modules stays until the install"
    );

    let requests = || {
        (0..10)
            .map(|i| {
                let n = format!("p{i}");
                reg.count(&format!("/{n}")) + reg.count(&Registry::tarball_path(&n, "1.0.0"))
            })
            .sum::<usize>()
    };
    let before = requests();
    let s = summary(&ctx.ok(&["--json", "install"]));
    assert_eq!(s["prepared"], true, "{s}");
    let after = requests();
    assert_eq!(before, after, "no request to the registry");
    for i in 5..10 {
        let f = nm.join(format!("p{i}/index.js"));
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            format!("module.exports = 'p{i}';\n")
        );
    }
    assert!(!nm.join("p0").exists(), "the old packages went");
    assert!(
        !nm.join(".hoard-next").exists(),
        "the prepared folder is used up"
    );
    assert_eq!(std::fs::read_to_string(&cache).unwrap(), "cached");
    let leftovers: Vec<_> = std::fs::read_dir(&ctx.project)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".hoard"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let s = summary(&ctx.ok(&["--json", "install"]));
    assert_eq!(s["up_to_date"], true, "the swapped-in state holds: {s}");
}

#[test]
fn a_project_that_opts_out_is_not_prepared() {
    let reg = Registry::start();
    for n in ["a", "b", "c"] {
        reg.publish(Pkg::new(n, "1.0.0"));
    }
    let ctx = TestContext::new()
        .with_registry(&reg.url)
        .env("HOARD_AHEAD_PROJECTS", "32")
        .env("HOARD_AHEAD_SETTLE_MS", "100");
    let out_pkg = |deps: serde_json::Value| json!({"name": "app", "dependencies": deps, "hoard": {"prepare": false}});
    ctx.write_project(&out_pkg(json!({"a": "1"})));
    ctx.ok(&["install"]);
    let watched = ctx.root.path().canonicalize().unwrap().join("watched");
    std::fs::create_dir_all(&watched).unwrap();
    write_json(
        &watched.join("package.json"),
        &json!({"name": "w", "dependencies": {"a": "1"}}),
    );
    let out = ctx
        .hoard()
        .current_dir(&watched)
        .arg("install")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Both change at once; only the project that did not opt out is prepared.
    ctx.write_project(&out_pkg(json!({"a": "1", "b": "1"})));
    write_json(
        &watched.join("package.json"),
        &json!({"name": "w", "dependencies": {"a": "1", "c": "1"}}),
    );
    let c_tarball = Registry::tarball_path("c", "1.0.0");
    assert!(
        eventually(Duration::from_secs(30), || reg.count(&c_tarball) > 0),
        "the watched project was prepared: {}",
        ctx.log()
    );
    assert!(
        eventually(Duration::from_secs(30), || ctx
            .log()
            .contains("prepared the next install")),
        "{}",
        ctx.log()
    );
    assert_eq!(
        reg.count("/b"),
        0,
        "the project that opted out was left alone"
    );
}

#[test]
fn a_new_daemon_watches_the_projects_the_last_one_did() {
    let reg = Registry::start();
    for n in ["a", "b"] {
        reg.publish(Pkg::new(n, "1.0.0"));
    }
    let ctx = TestContext::new()
        .with_registry(&reg.url)
        .env("HOARD_AHEAD_PROJECTS", "32")
        .env("HOARD_AHEAD_SETTLE_MS", "100");
    ctx.write_project(&json!({"name": "app", "dependencies": {"a": "1"}}));
    ctx.ok(&["install"]);
    ctx.ok(&["daemon", "stop"]);
    ctx.ok(&["daemon", "start"]);
    ctx.write_project(&json!({"name": "app", "dependencies": {"a": "1", "b": "1"}}));
    let b = Registry::tarball_path("b", "1.0.0");
    assert!(
        eventually(Duration::from_secs(30), || reg.count(&b) > 0),
        "the new daemon prepared the changed project: {}",
        ctx.log()
    );
}
