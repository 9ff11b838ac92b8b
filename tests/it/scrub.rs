//! The background scrub: an edit that escapes into the store through a hard link is found while
//! the daemon is idle, the original comes back, and every project that used the file has it
//! again (hoisted projects relinked, global-layout slots repaired).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::json;

use crate::context::*;
use crate::registry::*;

#[test]
fn an_edit_through_a_hard_link_is_undone_in_the_store_and_every_project() {
    let reg = Registry::start();
    let original = b"module.exports = 'ms';\n";
    reg.publish(Pkg::new("ms", "2.1.3").file("index.js", original, 0o644));
    let ctx = TestContext::new()
        .with_registry(&reg.url)
        .env("HOARD_SCRUB_SECS", "1");
    ctx.write_project(&json!({"name": "a", "dependencies": {"ms": "2"}}));
    ctx.ok(&["install"]);
    let root = ctx.root.path().canonicalize().unwrap();
    let mut others = Vec::new();
    for (name, layout) in [("b", "hoisted"), ("c", "global")] {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        write_json(
            &dir.join("package.json"),
            &json!({"name": name, "dependencies": {"ms": "2"}}),
        );
        let out = ctx
            .hoard()
            .current_dir(&dir)
            .args(["install", "--layout", layout])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        others.push(dir);
    }
    // The editor: make the linked file writable, then append to it.
    let edited = ctx.project.join("node_modules/ms/index.js");
    std::fs::set_permissions(&edited, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = original.to_vec();
    bytes.extend_from_slice(b"console.log('debugging');\n");
    std::fs::write(&edited, &bytes).unwrap();
    let everywhere = [
        edited.clone(),
        others[0].join("node_modules/ms/index.js"),
        others[1].join("node_modules/ms/index.js"),
    ];
    assert!(
        everywhere
            .iter()
            .all(|f| std::fs::read(f).unwrap() == bytes),
        "the edit spread through the store"
    );
    let restored = eventually(Duration::from_secs(60), || {
        everywhere
            .iter()
            .all(|f| std::fs::read(f).is_ok_and(|b| b == original))
    });
    assert!(restored, "the originals are back: {}", ctx.log());
    for f in &everywhere {
        let mode = std::fs::metadata(f).unwrap().permissions().mode();
        assert_eq!(mode & 0o222, 0, "{} is read-only again", f.display());
    }
    let log = ctx.log();
    assert!(log.contains("the original is back"), "{log}");
    for p in [&ctx.project, &others[0], &others[1]] {
        assert!(
            log.contains(&p.display().to_string()),
            "{} named: {log}",
            p.display()
        );
    }
    assert!(
        log.contains("files_per_sec"),
        "the rate is in the log: {log}"
    );
    // The store is whole again.
    ctx.assert_store_whole();
}

/// A restarted daemon trusts nothing (its watches died with the old one); while idle, the scrub
/// watches and checks again the files of registered projects, so the next install links them
/// without a check as it would have before the restart. Files no registered project uses
/// (a package since removed) are left for an install that links them.
#[cfg(target_os = "linux")]
#[test]
fn a_restarted_daemon_trusts_the_files_of_registered_projects_again_while_idle() {
    let reg = Registry::start();
    reg.publish(Pkg::new("a", "1.0.0").file("index.js", b"module.exports = 'a';", 0o644));
    reg.publish(Pkg::new("b", "1.0.0").file("index.js", b"module.exports = 'b';", 0o644));
    let ctx = TestContext::new()
        .with_registry(&reg.url)
        .env("HOARD_SCRUB_SECS", "1");
    ctx.write_project(&json!({"name": "p", "dependencies": {"a": "1.0.0", "b": "1.0.0"}}));
    ctx.ok(&["install"]);
    ctx.write_project(&json!({"name": "p", "dependencies": {"a": "1.0.0"}}));
    ctx.ok(&["install"]);
    // a's and b's index.js and package.json: b is still in the store, but no project uses it.
    assert!(eventually(Duration::from_secs(30), || ctx.trusted_files() == 4));
    ctx.ok(&["daemon", "stop"]);
    let logged = ctx.log().len();
    let warmed = "scrub: store files watched and trusted";
    assert!(
        eventually(Duration::from_secs(30), || {
            // `store status` starts the daemon again.
            ctx.trusted_files() >= 2 && ctx.log().get(logged..).is_some_and(|l| l.contains(warmed))
        }),
        "a restarted daemon never trusted the project's files again: {}",
        ctx.log()
    );
    assert_eq!(ctx.trusted_files(), 2, "only a's files: {}", ctx.log());
}
