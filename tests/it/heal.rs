//! A store and daemon that heal themselves (issue #20), each tried by doing the damage for
//! real: store files deleted, rewritten and written to; garbage and empty indexes, before start-up
//! and under a running daemon; a download that stalls mid-body; a full disk (a small tmpfs,
//! where the machine allows mounting one; skipped aloud where it does not); the daemon killed
//! mid-install; Ctrl-C while linking; another user's `daemon stop`; the store's permissions.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::context::*;
use crate::registry::*;

/// The store path of a (non-executable) file with these bytes.
fn content_path(ctx: &TestContext, body: &[u8]) -> PathBuf {
    let hex = blake3::hash(body).to_hex().to_string();
    ctx.store.join("v1/files").join(&hex[..2]).join(&hex[2..])
}

/// A second project folder beside the context's own, with these dependencies.
fn other_project(ctx: &TestContext, name: &str, deps: Value) -> PathBuf {
    let dir = ctx.root.path().canonicalize().unwrap().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    write_json(
        &dir.join("package.json"),
        &json!({"name": name, "version": "1.0.0", "dependencies": deps}),
    );
    dir
}

/// A registry holding `a@1.0.0` (one file, `index.js` = `body`) and the `extra` packages
/// (likewise), and a project depending on `a` only, installed.
fn installed_a(body: &[u8], extra: &[(&str, &[u8])]) -> (Registry, TestContext) {
    let reg = Registry::start();
    reg.publish(Pkg::new("a", "1.0.0").file("index.js", body, 0o644));
    for (name, body) in extra {
        reg.publish(Pkg::new(name, "1.0.0").file("index.js", body, 0o644));
    }
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "p", "version": "1.0.0", "dependencies": {"a": "1.0.0"}}));
    ctx.ok(&["install"]);
    (reg, ctx)
}

/// Write `bytes` over a (read-only) store file in place, as a stray write through a hard link
/// would.
fn overwrite(file: &Path, bytes: &[u8]) {
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(file, bytes).unwrap();
}

/// The files in the store's quarantine folders.
fn quarantined(ctx: &TestContext) -> Vec<PathBuf> {
    std::fs::read_dir(ctx.store.join("v1/quarantine"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|e| e.path())
        .collect()
}

fn no_staging_in(project: &Path) {
    let nm = project.join("node_modules");
    assert!(
        !nm.join(".hoard-staging").exists(),
        "a staging folder was left in {}",
        nm.display()
    );
}

#[test]
fn a_deleted_store_file_is_downloaded_again_when_a_project_needs_it() {
    let (reg, ctx) = installed_a(b"module.exports = 'a';", &[]);
    let file = content_path(&ctx, b"module.exports = 'a';");
    std::fs::remove_file(&file).unwrap();
    let before = reg.count(&Registry::tarball_path("a", "1.0.0"));

    let second = other_project(&ctx, "second", json!({"a": "1.0.0"}));
    let out = ctx.ok(&["-C", second.to_str().unwrap(), "--json", "install"]);
    let summary = summary(&out);
    assert_eq!(summary["repaired"], 1, "{out}");
    assert_eq!(summary["downloaded"], 1, "the repair is a download: {out}");
    assert_eq!(summary["reused"], 0, "{out}");
    assert!(summary["bytes_downloaded"].as_u64().unwrap() > 0, "{out}");
    let linked = std::fs::read(second.join("node_modules/a/index.js")).unwrap();
    assert_eq!(linked, b"module.exports = 'a';");
    assert!(file.exists(), "the store file is back");
    assert_eq!(reg.count(&Registry::tarball_path("a", "1.0.0")), before + 1);
    no_staging_in(&second);
    ctx.assert_store_whole();
}

#[test]
fn a_rewritten_store_file_is_quarantined_and_every_project_gets_the_right_bytes() {
    let body: &[u8] = b"the right bytes";
    let (_reg, ctx) = installed_a(body, &[]);
    // Rewritten in place: the project's hard link shows the bad bytes too.
    let file = content_path(&ctx, body);
    overwrite(&file, b"bad");
    assert_eq!(
        std::fs::read(ctx.project.join("node_modules/a/index.js")).unwrap(),
        b"bad"
    );

    let dry = ctx.run(&["store", "verify", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(4), "damage left: {}", stderr(&dry));
    let out = ctx.run(&["store", "verify"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(1),
        "damage found and dealt with: {text}"
    );
    assert!(text.contains("a@1.0.0"), "names the package: {text}");
    assert!(text.contains("marked stale"), "{text}");
    let quarantined = quarantined(&ctx);
    assert_eq!(quarantined.len(), 1, "the bad file is kept aside");
    assert_eq!(std::fs::read(&quarantined[0]).unwrap(), b"bad");

    let out = ctx.ok(&["--json", "install"]);
    assert_eq!(summary(&out)["up_to_date"], false, "{out}");
    assert_eq!(
        std::fs::read(ctx.project.join("node_modules/a/index.js")).unwrap(),
        body
    );
    let second = other_project(&ctx, "second", json!({"a": "1.0.0"}));
    ctx.ok(&["-C", second.to_str().unwrap(), "install"]);
    assert_eq!(
        std::fs::read(second.join("node_modules/a/index.js")).unwrap(),
        body
    );
    ctx.assert_store_whole();
}

/// The store files the daemon watches whole (`store status`), once it watches at least `n`:
/// it starts watching after the install answered, on a thread of its own.
#[cfg(target_os = "linux")]
fn trusted_at_least(ctx: &TestContext, n: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let trusted = ctx.trusted_files();
        if trusted >= n {
            return trusted;
        }
        assert!(
            Instant::now() < deadline,
            "never watched {n} files: {trusted} trusted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue #12's editor (chmod, then append, through a project's hard link) after the daemon
/// trusts the store file: the write ends the trust, so the next project is not linked to the
/// edited bytes (the check finds it and the package is repaired), and the repaired file is
/// trusted again.
#[cfg(target_os = "linux")]
#[test]
fn an_edit_through_a_project_ends_the_trust_in_that_store_file() {
    let body: &[u8] = b"module.exports = 'trusted';";
    let (_reg, ctx) = installed_a(body, &[]);
    // index.js and package.json.
    assert_eq!(trusted_at_least(&ctx, 2), 2);
    let edited = ctx.project.join("node_modules/a/index.js");
    std::fs::set_permissions(&edited, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&edited)
        .unwrap();
    std::io::Write::write_all(&mut f, b"// edited").unwrap();
    drop(f);
    assert_eq!(ctx.trusted_files(), 1, "only package.json is trusted still");

    let second = other_project(&ctx, "second", json!({"a": "1.0.0"}));
    let out = ctx.ok(&["-C", second.to_str().unwrap(), "--json", "install"]);
    assert_eq!(summary(&out)["repaired"], 1, "{out}");
    assert_eq!(
        std::fs::read(second.join("node_modules/a/index.js")).unwrap(),
        body
    );
    assert_eq!(
        trusted_at_least(&ctx, 2),
        2,
        "the repaired file is watched again"
    );
    let third = other_project(&ctx, "third", json!({"a": "1.0.0"}));
    ctx.ok(&["-C", third.to_str().unwrap(), "install"]);
    assert_eq!(
        std::fs::read(third.join("node_modules/a/index.js")).unwrap(),
        body
    );
    no_staging_in(&second);
    ctx.assert_store_whole();
}

#[test]
fn verify_repair_downloads_the_damaged_package_at_once() {
    let (reg, ctx) = installed_a(b"aaa", &[]);
    std::fs::remove_file(content_path(&ctx, b"aaa")).unwrap();
    let before = reg.count(&Registry::tarball_path("a", "1.0.0"));
    let out = ctx.run(&["--json", "store", "verify", "--repair"]);
    let summary = summary(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(1), "{summary}");
    assert_eq!(summary["packages_repaired"], 1, "{summary}");
    assert_eq!(reg.count(&Registry::tarball_path("a", "1.0.0")), before + 1);
    assert!(content_path(&ctx, b"aaa").exists());
}

/// Damage the index (with the daemon stopped), then check that the next install works, the
/// damaged index is kept aside, and prune keeps every file the first project links.
fn index_damage_is_survived(damage: impl FnOnce(&Path)) {
    let reg = Registry::start();
    reg.publish(Pkg::new("a", "1.0.0").file("index.js", b"a-body", 0o644));
    reg.publish(Pkg::new("b", "1.0.0").file("index.js", b"b-body", 0o644));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "p", "version": "1.0.0",
                              "dependencies": {"a": "1.0.0", "b": "1.0.0"}}));
    ctx.ok(&["install"]);
    ctx.ok(&["daemon", "stop"]);
    damage(&ctx.store.join("v1/index.sqlite"));

    let second = other_project(&ctx, "second", json!({"a": "1.0.0"}));
    let out = ctx.run(&["-C", second.to_str().unwrap(), "install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("kept as"),
        "the client is told: {}",
        stderr(&out)
    );
    let aside: Vec<_> = std::fs::read_dir(ctx.store.join("v1"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("index.sqlite.broken-")
        })
        .collect();
    assert!(!aside.is_empty(), "the damaged index is kept aside");
    // Told once.
    let again = ctx.run(&["-C", second.to_str().unwrap(), "install", "--force"]);
    assert!(!stderr(&again).contains("kept as"), "{}", stderr(&again));

    // The first project is still known, and prune deletes nothing it links.
    let status: Value = serde_json::from_str(&ctx.ok(&["--json", "store", "status"])).unwrap();
    assert_eq!(status["projects"], 2, "{status}");
    ctx.ok(&["store", "prune"]);
    for body in [&b"a-body"[..], b"b-body"] {
        assert!(
            content_path(&ctx, body).exists(),
            "prune kept a linked file"
        );
    }
    assert_eq!(
        std::fs::read(ctx.project.join("node_modules/b/index.js")).unwrap(),
        b"b-body"
    );
    ctx.ok(&["install", "--force"]);
}

#[test]
fn a_garbage_index_is_set_aside_and_a_new_one_started() {
    index_damage_is_survived(|index| {
        std::fs::write(index, vec![0x5a; 8192]).unwrap();
    });
}

#[test]
fn an_empty_index_is_set_aside_too() {
    index_damage_is_survived(|index| {
        std::fs::write(index, b"").unwrap();
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", index.display()));
        }
    });
}

#[test]
fn a_stalled_download_holds_up_no_other_install_nor_prune_nor_stop() {
    let reg = Registry::start();
    reg.publish(Pkg::new("slow", "1.0.0").file("big.js", &vec![b'x'; 200_000], 0o644));
    reg.publish(Pkg::new("quick", "1.0.0").file("index.js", b"quick", 0o644));
    let gate = Gate::new();
    reg.fault(
        &Registry::tarball_path("slow", "1.0.0"),
        Fault {
            stall: Some((64, gate.clone())),
            ..Default::default()
        },
    );
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "p", "version": "1.0.0", "dependencies": {"slow": "1"}}));
    let stalled = ctx.spawn(&["install"]);
    let stall_began = Instant::now();
    assert!(
        eventually(Duration::from_secs(30), || reg
            .count(&Registry::tarball_path("slow", "1.0.0"))
            > 0),
        "the stalled download started"
    );
    let second = other_project(&ctx, "second", json!({"quick": "1"}));
    let t = Instant::now();
    ctx.ok(&["-C", second.to_str().unwrap(), "install"]);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    let t = Instant::now();
    ctx.ok(&["store", "prune"]);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "prune: {:?}",
        t.elapsed()
    );
    // Long enough for the stalled install to say what it waits for.
    std::thread::sleep(Duration::from_secs(12).saturating_sub(stall_began.elapsed()));
    let t = Instant::now();
    ctx.ok(&["daemon", "stop"]);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "stop: {:?}",
        t.elapsed()
    );
    let out = wait_output(stalled, Duration::from_secs(30));
    assert!(!out.status.success(), "the stalled install did not finish");
    let err = stderr(&out);
    assert!(
        err.contains("still downloading") && err.contains("slow@1.0.0"),
        "{err}"
    );
    assert!(err.contains("daemon is stopping"), "{err}");
    gate.open();
}

#[test]
fn a_daemon_killed_mid_install_is_exit_3() {
    let reg = Registry::start();
    reg.publish(Pkg::new("a", "1.0.0").file("index.js", b"a", 0o644));
    let ctx = TestContext::new()
        .with_registry(&reg.url)
        .env("HOARD_FAILPOINT_INSTALL_HOLD_MS", "20000");
    ctx.write_project(&json!({"name": "p", "version": "1.0.0", "dependencies": {"a": "1"}}));
    let child = ctx.spawn(&["install"]);
    assert!(
        eventually(Duration::from_secs(30), || ctx
            .log()
            .contains("install began")),
        "the install began"
    );
    let pid = ctx.daemon_pid().expect("a daemon runs");
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let out = wait_output(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn the_store_is_private() {
    let ctx = TestContext::new();
    ctx.ok(&["daemon", "start"]);
    let mode = std::fs::metadata(&ctx.store).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o700, "store root mode {mode:o}");
}

/// Mount a tmpfs of `size` at `dir` (root only). Err says why it cannot be done here.
fn mount_tmpfs(dir: &Path, size: &str) -> Result<(), String> {
    if !is_root() {
        return Err("mounting a small tmpfs needs root".into());
    }
    let out = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(dir)
        .output()
        .map_err(|e| format!("running mount: {e}"))?;
    if !out.status.success() {
        return Err(format!("mount failed: {}", stderr(&out).trim()));
    }
    Ok(())
}

/// `len` bytes that do not compress (xorshift), carrying on from `seed`.
fn noise(seed: &mut u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 17;
            *seed ^= *seed << 5;
            *seed as u8
        })
        .collect()
}

/// The store's `tmp/` empties (an import still ending removes its staging when it does).
fn assert_tmp_empties(ctx: &TestContext) {
    let tmp = ctx.store.join("v1/tmp");
    assert!(
        eventually(Duration::from_secs(20), || std::fs::read_dir(&tmp)
            .map(|d| d.count())
            .unwrap_or(0)
            == 0),
        "tmp/ is emptied"
    );
}

/// Give the tmpfs mounted on the store room again.
fn grow_store(ctx: &TestContext) {
    let grown = std::process::Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&ctx.store)
        .status()
        .unwrap();
    assert!(grown.success());
}

#[test]
fn a_full_disk_is_an_error_that_names_it_and_the_daemon_carries_on() {
    let ctx = TestContext::new();
    if let Err(why) = mount_tmpfs(&ctx.store, "3m") {
        skip(
            "a_full_disk_is_an_error_that_names_it_and_the_daemon_carries_on",
            &why,
        );
        return;
    }
    ctx.unmount_when_done(ctx.store.clone());
    // 12 MB that does not compress, in two packages.
    let reg = Registry::start();
    reg.publish(Pkg::new("big1", "1.0.0").file("blob.bin", &noise(&mut 7, 6_000_000), 0o644));
    reg.publish(Pkg::new("big2", "1.0.0").file("blob.bin", &noise(&mut 11, 6_000_000), 0o644));
    let ctx = ctx.with_registry(&reg.url);
    ctx.write_project(&json!({"name": "p", "version": "1.0.0",
                              "dependencies": {"big1": "1", "big2": "1"}}));
    let t = Instant::now();
    let out = ctx.run(&["install"]);
    assert!(t.elapsed() < Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no space left"), "{}", stderr(&out));
    eprintln!("install on a full disk: {}", stderr(&out));
    // An import of the other package may still be ending: its staging goes when it does.
    assert_tmp_empties(&ctx);
    let tmp = ctx.store.join("v1/tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0),
        0,
        "tmp/ is empty"
    );
    no_staging_in(&ctx.project);
    // The daemon still answers, and stops when asked.
    ctx.ok(&["daemon", "status"]);
    ctx.ok(&["daemon", "stop"]);

    // Room again: the install works, with a daemon started on the once-full filesystem.
    grow_store(&ctx);
    ctx.ok(&["install"]);
    assert_eq!(
        std::fs::metadata(ctx.project.join("node_modules/big2/blob.bin"))
            .unwrap()
            .len(),
        6_000_000
    );
}

/// The same with many small files, which an import holds in memory and writes whole once the
/// tarball has verified (not staged): a full disk there is the same clear error.
#[test]
fn a_full_disk_while_writing_small_files_is_an_error_that_names_it() {
    let ctx = TestContext::new();
    if let Err(why) = mount_tmpfs(&ctx.store, "3m") {
        skip(
            "a_full_disk_while_writing_small_files_is_an_error_that_names_it",
            &why,
        );
        return;
    }
    ctx.unmount_when_done(ctx.store.clone());
    // 2 x 3.6 MB that does not compress, in files of 90 kB (each package fits what an import
    // holds in memory: 4 MiB).
    let pkg = |name: &str, mut seed: u32| {
        let mut p = Pkg::new(name, "1.0.0");
        for i in 0..40 {
            p = p.file(&format!("part{i}.bin"), &noise(&mut seed, 90_000), 0o644);
        }
        p
    };
    let reg = Registry::start();
    reg.publish(pkg("small1", 7));
    reg.publish(pkg("small2", 11));
    let ctx = ctx.with_registry(&reg.url);
    ctx.write_project(&json!({"name": "p", "version": "1.0.0",
                              "dependencies": {"small1": "1", "small2": "1"}}));
    let out = ctx.run(&["install"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no space left"), "{}", stderr(&out));
    assert_tmp_empties(&ctx);
    no_staging_in(&ctx.project);
    ctx.ok(&["daemon", "stop"]);
    grow_store(&ctx);
    ctx.ok(&["install"]);
    assert_eq!(
        std::fs::metadata(ctx.project.join("node_modules/small2/part39.bin"))
            .unwrap()
            .len(),
        90_000
    );
    ctx.ok(&["store", "verify"]);
}

#[test]
fn a_daemon_started_on_a_full_disk_says_why_it_cannot_run() {
    let ctx = TestContext::new();
    if let Err(why) = mount_tmpfs(&ctx.store, "64k") {
        skip(
            "a_daemon_started_on_a_full_disk_says_why_it_cannot_run",
            &why,
        );
        return;
    }
    ctx.unmount_when_done(ctx.store.clone());
    // Fill what little there is.
    let filler = ctx.store.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 1 << 20]);
    let out = ctx.run(&["daemon", "start"]);
    let err = stderr(&out);
    eprintln!("daemon start on a full disk: {:?} {err}", out.status.code());
    if out.status.success() {
        // It found room after all: it must still answer and stop.
        ctx.ok(&["daemon", "stop"]);
        return;
    }
    assert!(err.contains("space"), "the reason is given: {err}");
    assert_ne!(out.status.code(), Some(101), "no panic: {err}");
}

#[test]
fn a_store_file_written_to_is_caught_before_it_is_linked_again() {
    let body: &[u8] = b"original bytes";
    let (_reg, ctx) = installed_a(body, &[]);
    // Same size, other bytes: only the time of the write gives it away.
    let file = content_path(&ctx, body);
    overwrite(&file, b"tampered bytes");

    let second = other_project(&ctx, "second", json!({"a": "1.0.0"}));
    let out = ctx.ok(&["-C", second.to_str().unwrap(), "--json", "install"]);
    assert_eq!(summary(&out)["repaired"], 1, "{out}");
    assert_eq!(
        std::fs::read(second.join("node_modules/a/index.js")).unwrap(),
        body
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        body,
        "the store has the right bytes again"
    );
    no_staging_in(&second);
}

/// The store index's `unsynced` list: (package, boot) rows whose content files were not yet
/// synced to disk. Read with the daemon stopped or idle.
fn unsynced(ctx: &TestContext) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(ctx.store.join("v1/index.sqlite")).unwrap();
    let mut stmt = db
        .prepare("SELECT p.pkg_id, u.boot FROM unsynced u JOIN packages p ON p.id = u.package_id")
        .unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

/// List `pkg_id`'s row in `unsynced` as committed in `boot` (the daemon stopped).
fn mark_unsynced(ctx: &TestContext, pkg_id: &str, boot: &str) {
    let db = rusqlite::Connection::open(ctx.store.join("v1/index.sqlite")).unwrap();
    let n = db
        .execute(
            "INSERT INTO unsynced(package_id, boot) SELECT id, ?2 FROM packages WHERE pkg_id = ?1",
            [pkg_id, boot],
        )
        .unwrap();
    assert_eq!(n, 1, "{pkg_id} has a row");
}

/// Bytes lost to a power cut: same size, same mtime, other content (so only a re-hash can
/// tell; the check before linking compares size and time).
fn lose_bytes(file: &Path) {
    let md = std::fs::metadata(file).unwrap();
    overwrite(file, &vec![0u8; md.len() as usize]);
    let f = std::fs::File::options().write(true).open(file).unwrap();
    f.set_modified(md.modified().unwrap()).unwrap();
    std::fs::set_permissions(file, md.permissions()).unwrap();
}

/// Rows are committed before their files are synced (the sync waits for the daemon to be idle,
/// off the install's path). After a machine restart, the daemon re-hashes the files of the
/// rows still listed from the earlier boot before it serves anyone: a damaged file is
/// quarantined, its package downloaded again, and a project that links it installed again.
#[cfg(target_os = "linux")]
#[test]
fn files_not_yet_synced_when_the_machine_stopped_are_checked_at_start_up() {
    let body: &[u8] = b"bytes that were still in the page cache";
    let (_reg, ctx) = installed_a(body, &[("b", b"b's bytes, safely on disk")]);
    let second = other_project(&ctx, "second", json!({"b": "1.0.0"}));
    ctx.ok(&["-C", second.to_str().unwrap(), "install"]);
    ctx.ok(&["daemon", "stop"]);
    assert_eq!(
        unsynced(&ctx),
        vec![],
        "a clean stop syncs and empties the list"
    );

    // The machine lost power before the sync: a's file lost its bytes, b's did not.
    mark_unsynced(&ctx, "a@1.0.0", "an-earlier-boot");
    mark_unsynced(&ctx, "b@1.0.0", "an-earlier-boot");
    let file = content_path(&ctx, body);
    lose_bytes(&file);

    let third = other_project(&ctx, "third", json!({"a": "1.0.0", "b": "1.0.0"}));
    let out = ctx.run(&["-C", third.to_str().unwrap(), "install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let told = stderr(&out);
    assert!(
        told.contains("a@1.0.0") && told.contains("machine stopped") && !told.contains("b@1.0.0"),
        "the client is told which package comes again: {told}"
    );
    assert_eq!(
        std::fs::read(third.join("node_modules/a/index.js")).unwrap(),
        body
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        body,
        "the store has the bytes again"
    );
    let quarantined = quarantined(&ctx);
    assert_eq!(quarantined.len(), 1, "only a's file is kept aside");
    let log = ctx.log();
    assert!(log.contains("not yet synced to disk"), "{log}");

    // The first project linked the damaged file: its next install relinks it.
    let out = ctx.ok(&["--json", "install"]);
    assert_eq!(summary(&out)["up_to_date"], false, "{out}");
    assert_eq!(
        std::fs::read(ctx.project.join("node_modules/a/index.js")).unwrap(),
        body
    );
    ctx.assert_store_whole();
}

/// Rows listed by this boot (a daemon killed before it synced) are not re-hashed: the page
/// cache still holds their files. The daemon syncs them once idle and empties the list.
#[cfg(target_os = "linux")]
#[test]
fn rows_left_unsynced_by_a_daemon_of_this_boot_are_synced_once_it_is_idle() {
    let (_reg, ctx) = installed_a(b"a-body", &[]);
    ctx.ok(&["daemon", "stop"]);
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    mark_unsynced(&ctx, "a@1.0.0", boot.trim());
    ctx.ok(&["store", "status"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !unsynced(&ctx).is_empty() {
        assert!(
            Instant::now() < deadline,
            "still listed: {:?}",
            unsynced(&ctx)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !ctx.store.join("v1/quarantine").exists(),
        "nothing was set aside"
    );
    let log = ctx.log();
    assert!(
        !log.contains("not yet synced"),
        "no re-hash at start-up: {log}"
    );
}

/// Ctrl-C while linking comes after the point of no return (issue #22): the daemon refuses
/// the cancel and completes the install, and the client says so (the project is never left
/// half old, half new). A second Ctrl-C stops the client from waiting; the daemon still
/// completes.
#[test]
fn ctrl_c_while_linking_is_too_late_and_the_install_completes() {
    for presses in [1, 2] {
        let (reg, names, deps) = numbered_packages(8);
        let (ctx, release_path) = TestContext::new().with_registry(&reg.url).hold_linking();
        ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": deps}));
        let child = ctx.spawn(&["install"]);
        let staging = ctx.project.join("node_modules/.hoard-staging");
        assert!(
            eventually(Duration::from_secs(30), || staging.exists()),
            "linking began"
        );
        // The first press: the client asks the daemon to cancel, and the daemon refuses.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        assert!(
            eventually(Duration::from_secs(30), || ctx
                .log()
                .contains("state=past-point-of-no-return")),
            "the daemon heard the cancel while linking:\n{}",
            ctx.log()
        );
        if presses == 2 {
            // The second press stops waiting: the client leaves while linking is still held.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let out = wait_output(child, Duration::from_secs(30));
            assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
            std::fs::write(&release_path, b"").unwrap();
        } else {
            std::fs::write(&release_path, b"").unwrap();
            let out = wait_output(child, Duration::from_secs(30));
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(0), "{err}");
            assert!(err.contains("too late to cancel"), "{err}");
        }
        // Whole either way: every package, and the state that says the install finished.
        assert!(
            eventually(Duration::from_secs(30), || ctx
                .run(&["status"])
                .status
                .success()),
            "the install completed"
        );
        for n in &names {
            assert!(ctx.project.join("node_modules").join(n).exists(), "{n}");
        }
        no_staging_in(&ctx.project);
    }
}

#[test]
fn an_index_damaged_under_a_running_daemon_is_set_aside_and_the_install_retried() {
    index_damaged_while_running(true);
}

#[test]
fn an_index_damaged_while_its_log_holds_every_page_is_caught_too() {
    index_damaged_while_running(false);
}

/// Garbage over the index while a daemon runs; with `checkpointed`, the daemon was restarted
/// first, so SQLite reads the file itself (else every page is still in its write-ahead log).
fn index_damaged_while_running(checkpointed: bool) {
    let (_reg, ctx) = installed_a(b"a-body", &[("c", b"c-body")]);
    if checkpointed {
        // A daemon whose index lives in the file alone (checkpointed at the last stop).
        ctx.ok(&["daemon", "stop"]);
        ctx.ok(&["daemon", "start"]);
    }
    std::fs::write(ctx.store.join("v1/index.sqlite"), vec![0x5a; 8192]).unwrap();

    let second = other_project(&ctx, "second", json!({"a": "1.0.0", "c": "1.0.0"}));
    let out = ctx.run(&["-C", second.to_str().unwrap(), "install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("retrying with a new daemon"),
        "{}",
        stderr(&out)
    );
    assert!(
        std::fs::read_dir(ctx.store.join("v1"))
            .unwrap()
            .flatten()
            .any(|e| e
                .file_name()
                .to_string_lossy()
                .starts_with("index.sqlite.broken-")),
        "the damaged index is kept aside"
    );
    assert_eq!(
        std::fs::read(second.join("node_modules/c/index.js")).unwrap(),
        b"c-body"
    );
    ctx.ok(&["store", "prune"]);
    assert!(
        content_path(&ctx, b"a-body").exists(),
        "prune kept a linked file"
    );
    assert_eq!(
        std::fs::read(ctx.project.join("node_modules/a/index.js")).unwrap(),
        b"a-body"
    );
}

#[test]
fn another_users_daemon_stop_says_whose_store_it_is() {
    if let Err(why) = can_act_as_nobody() {
        skip("another_users_daemon_stop_says_whose_store_it_is", &why);
        return;
    }
    let ctx = TestContext::new();
    ctx.ok(&["daemon", "start"]);
    std::fs::set_permissions(ctx.root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = ctx.hoard_as_nobody();
    cmd.current_dir("/").args(["daemon", "stop"]);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("belongs to uid 0"),
        "{}",
        stderr(&out)
    );
    assert!(ctx.daemon_pid().is_some(), "the owner's daemon runs on");
}

#[test]
fn the_summary_counts_tarball_and_metadata_bytes_apart() {
    let reg = Registry::start();
    reg.publish(Pkg::new("a", "1.0.0").file("index.js", &vec![b'a'; 4000], 0o644));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "p", "version": "1.0.0", "dependencies": {"a": "1.0.0"}}));
    let s = summary(&ctx.ok(&["--json", "install"]));
    let tarball = Pkg::new("a", "1.0.0")
        .file("index.js", &vec![b'a'; 4000], 0o644)
        .pack()
        .len() as u64;
    assert_eq!(s["bytes_downloaded"].as_u64(), Some(tarball), "{s}");
    assert!(s["metadata_bytes_downloaded"].as_u64().unwrap() > 0, "{s}");
}

#[test]
fn a_shard_folder_removed_under_a_running_daemon_comes_back() {
    let (_reg, ctx) = installed_a(b"shard body", &[]);
    let file = content_path(&ctx, b"shard body");
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
    for name in ["second", "third"] {
        let dir = other_project(&ctx, name, json!({"a": "1.0.0"}));
        ctx.ok(&["-C", dir.to_str().unwrap(), "install"]);
        assert_eq!(
            std::fs::read(dir.join("node_modules/a/index.js")).unwrap(),
            b"shard body"
        );
    }
    assert!(file.exists(), "the shard and its file are back");
}
