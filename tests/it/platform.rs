//! Where JavaScript developers work (issue #23), checked from Linux: the Windows bin shims are
//! still what npm's cmd-shim writes, the socket path fits macOS's limit whatever `$TMPDIR` is,
//! and a case-insensitive filesystem neither merges two packages silently nor fails on a
//! package with `README.md` and `readme.md`.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::context::*;
use crate::registry::*;

/// tests/fixtures/cmd-shim/expected is what the cmd-shim of the npm on this machine writes (the
/// unit test of daemon/platform/shim.rs compares hoard's shims with it).
#[test]
fn the_recorded_shims_are_what_npms_cmd_shim_writes() {
    let test = "the_recorded_shims_are_what_npms_cmd_shim_writes";
    if !which("node") || !which("npm") {
        return skip(test, "node and npm are not installed");
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cmd-shim");
    let out = tempfile::tempdir().unwrap();
    let run = Command::new("node")
        .arg(fixtures.join("record.js"))
        .arg(out.path())
        .output()
        .unwrap();
    if !run.status.success() {
        return skip(
            test,
            &format!("npm's own cmd-shim could not be loaded: {}", stderr(&run)),
        );
    }
    let expected = fixtures.join("expected");
    let mut compared = 0;
    for e in std::fs::read_dir(&expected).unwrap() {
        let name = e.unwrap().file_name();
        let want = std::fs::read(expected.join(&name)).unwrap();
        let got = std::fs::read(out.path().join(&name)).unwrap();
        assert!(
            want == got,
            "{}: cmd-shim now writes something else; run `node tests/fixtures/cmd-shim/record.js` \
             and make daemon/platform/shim.rs match",
            name.to_string_lossy()
        );
        compared += 1;
    }
    assert!(compared >= 19, "{compared} files");
}

/// A 100-character `$TMPDIR` (macOS's is long) and no `$XDG_RUNTIME_DIR`: the daemon still
/// starts, on a socket path shorter than macOS's 104 bytes.
#[test]
fn a_long_tmpdir_keeps_the_socket_path_short() {
    let ctx = TestContext::new();
    let mut long = ctx.root.path().to_path_buf();
    while long.as_os_str().len() < 100 {
        long.push("t");
    }
    let long = std::path::PathBuf::from(&long.to_string_lossy()[..100]);
    std::fs::create_dir_all(&long).unwrap();
    let hoard = |args: &[&str]| {
        let mut c = ctx.hoard();
        c.env_remove("XDG_RUNTIME_DIR")
            .env("TMPDIR", &long)
            .args(args);
        c.output().unwrap()
    };
    let out = hoard(&["daemon", "start"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = hoard(&["--json", "daemon", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let socket = status["socket"].as_str().unwrap().to_string();
    assert!(socket.len() < 104, "{socket}");
    assert!(socket.starts_with("/tmp/hoard-"), "{socket}");
    assert!(hoard(&["daemon", "stop"]).status.success());
}

fn case_registry() -> Registry {
    let reg = Registry::start();
    reg.publish(
        Pkg::new("docs", "1.0.0")
            .file("README.md", b"first", 0o644)
            .file("index.js", b"module.exports = 1", 0o644)
            .file("readme.md", b"second", 0o644),
    );
    reg.publish(Pkg::new("JSONStream", "1.3.5").file("index.js", b"upper", 0o644));
    reg.publish(Pkg::new("jsonstream", "1.0.3").file("index.js", b"lower", 0o644));
    reg
}

/// What a case-insensitive filesystem must get, checked in `dir`'s project.
fn check_case_handling(ctx: &TestContext) {
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": {"docs": "1"}}));
    ctx.ok(&["install"]);
    let docs = ctx.project.join("node_modules/docs");
    let names: Vec<String> = std::fs::read_dir(&docs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.eq_ignore_ascii_case("readme.md"))
        .collect();
    // As npm's extraction leaves it: one file, the first entry's name, the last one's bytes.
    assert_eq!(names, ["README.md"]);
    assert_eq!(std::fs::read(docs.join("README.md")).unwrap(), b"second");

    ctx.write_project(&json!({"name": "app", "version": "1.0.0",
        "dependencies": {"docs": "1", "JSONStream": "1.3.5", "jsonstream": "1.0.3"}}));
    let out = ctx.run(&["install"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for part in [
        "`JSONStream`",
        "`jsonstream`",
        "differ only in case",
        "npm:jsonstream@",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    // Refused before anything changed.
    assert!(!ctx.project.join("node_modules/JSONStream").exists());
    assert!(!ctx.project.join("node_modules/jsonstream").exists());
    assert!(docs.join("index.js").is_file());
}

/// The handling itself, with the daemon told to treat the project's filesystem as
/// case-insensitive (the files still land on a case-sensitive one, which shows the folding).
#[test]
fn case_collisions_are_folded_or_refused_when_the_filesystem_ignores_case() {
    let reg = case_registry();
    let ctx = TestContext::new()
        .with_registry(&reg.url)
        .env("HOARD_TEST_ASSUME_CASE_INSENSITIVE", "1");
    check_case_handling(&ctx);
}

/// The same on a real case-insensitive filesystem, made on a loop device: ext4 with casefold
/// when the kernel can mount one (CONFIG_UNICODE), else exFAT through FUSE (exfat-fuse, which
/// `tests/run.sh` installs; exFAT ignores case as NTFS and APFS do, and has neither hard links
/// nor symlinks, so files are copied). Needs root.
#[test]
fn a_real_case_insensitive_filesystem_gets_the_same_handling() {
    let test = "a_real_case_insensitive_filesystem_gets_the_same_handling";
    if !is_root() {
        return skip(
            test,
            "needs root to make and mount a filesystem on a loop device",
        );
    }
    let ctx = TestContext::new();
    let img = ctx.root.path().join("ci.img");
    let mnt = ctx.root.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let sh = |cmd: &str| Command::new("sh").args(["-c", cmd]).output().unwrap();
    let (i, m) = (img.display(), mnt.display());
    let casefold = sh(&format!(
        "truncate -s 64M {i} && mkfs.ext4 -q -O casefold {i} && mount -o loop {i} {m} && \
         mkdir {m}/project && chattr +F {m}/project"
    ));
    let (kind, unmount) = if casefold.status.success() {
        ("ext4 casefold", format!("umount {m}"))
    } else {
        let _ = sh(&format!("umount {m} 2>/dev/null; rm -f {i}"));
        let exfat = sh(&format!(
            "truncate -s 64M {i} && mkfs.exfat {i} >/dev/null && dev=$(losetup -f --show {i}) && \
             echo $dev > {i}.dev && mount.exfat-fuse $dev {m} && mkdir {m}/project"
        ));
        if !exfat.status.success() {
            return skip(
                test,
                &format!(
                    "no case-insensitive filesystem can be mounted here: ext4 casefold ({}), \
                     exFAT through FUSE ({})",
                    stderr(&casefold).lines().last().unwrap_or("").trim(),
                    stderr(&exfat).lines().last().unwrap_or("").trim()
                ),
            );
        }
        (
            "exFAT (FUSE)",
            format!("umount {m}; losetup -d $(cat {i}.dev)"),
        )
    };
    eprintln!("{test}: on {kind}");
    let project = mnt.join("project");
    let reg = case_registry();
    let mut ctx2 = TestContext::new().with_registry(&reg.url);
    ctx2.project = project.clone();
    // Unmounted whatever happens (a failed check must not leave a mount behind).
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert!(project.join("X").metadata().is_err());
        std::fs::write(project.join("Probe"), "").unwrap();
        assert!(project.join("probe").exists(), "{kind} ignores case");
        std::fs::remove_file(project.join("Probe")).unwrap();
        check_case_handling(&ctx2);
    }));
    drop(ctx2);
    let _ = sh(&unmount);
    if let Err(e) = checked {
        std::panic::resume_unwind(e);
    }
}
