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
