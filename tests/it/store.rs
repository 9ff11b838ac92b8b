//! The content-addressed store: integrity, hostile tarballs, bombs, coalescing, crash safety,
//! read-only files, verify and prune.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::context::*;
use crate::registry::*;

fn store_status(ctx: &TestContext) -> Value {
    serde_json::from_str(&ctx.ok(&["--json", "store", "status"])).unwrap()
}

fn project_with(ctx: &TestContext, deps: Value) {
    ctx.write_project(&json!({"name": "p", "version": "1.0.0", "dependencies": deps}));
}

/// Install must fail naming `needle`, leave no package in the store and nothing in node_modules.
fn assert_rejected(reg: &Registry, pkg: Pkg, needle: &str) {
    let name = pkg.name.clone();
    reg.publish(pkg);
    let ctx = TestContext::new().with_registry(&reg.url);
    project_with(&ctx, json!({ name.clone(): "*" }));
    let out = ctx.run(&["install"]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "install of {name} must fail: {err}"
    );
    assert!(
        err.contains(needle),
        "error for {name} should mention {needle:?}: {err}"
    );
    assert!(err.contains(&name), "error names the package: {err}");
    assert_eq!(
        store_status(&ctx)["packages"],
        0,
        "nothing committed for {name}"
    );
    assert!(!ctx.project.join("node_modules").join(&name).exists());
    // tmp/ holds no leftovers.
    let tmp = ctx.store.join("v1/tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "staging left behind in {}",
        tmp.display()
    );
}

#[test]
fn integrity_mismatch_is_rejected_with_both_digests() {
    let reg = Registry::start();
    let wrong = sri(b"something else");
    assert_rejected(
        &reg,
        Pkg::new("tampered", "1.0.0").fake_integrity(&wrong),
        "integrity check failed",
    );
    let ctx = TestContext::new().with_registry(&reg.url);
    project_with(&ctx, json!({"tampered": "1.0.0"}));
    let err = stderr(&ctx.run(&["install"]));
    assert!(err.contains(&wrong), "expected digest named: {err}");
    assert!(
        err.contains(&Registry::tarball_path("tampered", "1.0.0")),
        "URL named: {err}"
    );
}

#[test]
fn truncated_gzip_is_rejected() {
    let reg = Registry::start();
    let full = Pkg::new("trunc", "1.0.0")
        .file("data.txt", &vec![b'x'; 100_000], 0o644)
        .pack();
    let cut = full[..full.len() / 2].to_vec();
    assert_rejected(&reg, Pkg::new("trunc", "1.0.0").raw(cut), "corrupt archive");
}

#[test]
fn hostile_tarballs_are_rejected_whole() {
    let reg = Registry::start();
    let good = |p: &str| (p.to_string(), b"ok".to_vec(), 0o644u32);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "abs-path",
            tarball(&[
                good("package/package.json"),
                ("/tmp/evil".into(), b"x".to_vec(), 0o644),
            ]),
            "absolute path",
        ),
        (
            "dot-dot",
            tarball(&[
                good("package/package.json"),
                ("package/../../evil".into(), b"x".to_vec(), 0o644),
            ]),
            "`..`",
        ),
        (
            "sym-link",
            finish_tar(
                [
                    raw_header("package/package.json", 0, 0o644, b'0', ""),
                    raw_header("package/link", 0, 0o777, b'2', "/etc/passwd"),
                ]
                .concat(),
            ),
            "symlink",
        ),
        (
            "hard-link",
            finish_tar(
                [
                    raw_header("package/package.json", 0, 0o644, b'0', ""),
                    raw_header("package/link", 0, 0o644, b'1', "package/package.json"),
                ]
                .concat(),
            ),
            "hard link",
        ),
        (
            "char-dev",
            finish_tar(raw_header("package/dev", 0, 0o644, b'3', "")),
            "unsupported type",
        ),
        (
            "fifo",
            finish_tar(raw_header("package/fifo", 0, 0o644, b'6', "")),
            "unsupported type",
        ),
        (
            "too-deep",
            tarball(&[(
                format!("package/{}f", "a/".repeat(70)),
                b"x".to_vec(),
                0o644,
            )]),
            "deeper than",
        ),
        (
            "too-long",
            finish_tar(long_name_entry(
                &format!("package/{}", "x".repeat(1100)),
                b"x",
            )),
            "longer than",
        ),
    ];
    for (name, bytes, needle) in cases {
        assert_rejected(&reg, Pkg::new(name, "1.0.0").raw(bytes), needle);
    }
}

#[test]
fn decompression_bomb_is_capped_with_bounded_memory() {
    // 1 GiB of zeros in one file, about 1 MB compressed.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&raw_header("package/package.json", 2, 0o644, b'0', ""))
        .unwrap();
    enc.write_all(b"{}").unwrap();
    enc.write_all(&[0u8; 510]).unwrap();
    enc.write_all(&raw_header("package/zeros", 1 << 30, 0o644, b'0', ""))
        .unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        enc.write_all(&chunk).unwrap();
    }
    enc.write_all(&[0u8; 1024]).unwrap();
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 4 << 20, "bomb is {} bytes", bomb.len());
    let reg = Registry::start();
    assert_rejected(
        &reg,
        Pkg::new("bomb", "1.0.0").raw(bomb.clone()),
        "decompression bomb",
    );
    // The daemon's peak memory stayed small (the tarball is streamed, never buffered whole).
    reg.publish(Pkg::new("bomb2", "1.0.0").raw(bomb));
    let ctx = TestContext::new().with_registry(&reg.url);
    project_with(&ctx, json!({"bomb2": "*"}));
    assert_eq!(ctx.run(&["install"]).status.code(), Some(1));
    let pid = ctx.daemon_pid().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        hwm_kb < 200 * 1024,
        "daemon peak RSS {hwm_kb} kB while rejecting a 1 GiB bomb"
    );
}

#[test]
fn sixteen_concurrent_installs_download_once() {
    let reg = Registry::start();
    reg.publish(Pkg::new("shared", "1.0.0").file("lib.js", &vec![b'y'; 50_000], 0o644));
    let tarball = Registry::tarball_path("shared", "1.0.0");
    // The download is held until every install has asked for the package: each one either
    // joins the download in flight or (were coalescing broken) asks the registry itself.
    let gate = Gate::new();
    reg.fault(
        &tarball,
        Fault {
            gate: Some(gate.clone()),
            ..Default::default()
        },
    );
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.ok(&["daemon", "start"]);
    let mut children = Vec::new();
    for i in 0..16 {
        let dir = ctx.root.path().join(format!("proj{i}"));
        write_json(
            &dir.join("package.json"),
            &json!({"name": format!("p{i}"), "dependencies": {"shared": "^1.0.0"}}),
        );
        children.push(
            ctx.hoard()
                .current_dir(&dir)
                .arg("install")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    let joined = eventually(Duration::from_secs(60), || {
        ctx.log()
            .matches("joining an import already under way")
            .count()
            >= 15
    });
    let asked = reg.count(&tarball);
    gate.open();
    for c in children {
        let out = wait_output(c, Duration::from_secs(60));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(
        joined,
        "the installs did not join one download ({asked} requests reached the registry):\n{}",
        ctx.log()
    );
    assert_eq!(
        reg.count(&tarball),
        1,
        "one download for 16 concurrent installs"
    );
    assert_eq!(reg.count("/shared"), 1, "one metadata fetch too");
    for i in 0..16 {
        assert!(
            ctx.root
                .path()
                .join(format!("proj{i}/node_modules/shared/lib.js"))
                .exists()
        );
    }
    assert_eq!(store_status(&ctx)["projects"], 16);
}

#[test]
fn kill_9_during_import_leaves_a_consistent_store() {
    let reg = Registry::start();
    // Many files, trickling in: the daemon is killed in the middle of the import. Files over
    // 1 MiB are staged in tmp/ as they arrive (smaller ones are held in memory until the
    // tarball has verified), so the kill lands while files are being staged.
    let mut p = Pkg::new("many", "1.0.0");
    for i in 0..40 {
        p = p.file(
            &format!("f/{i}.js"),
            format!("// {i}\n{}", "z".repeat((1 << 20) + i)).as_bytes(),
            0o644,
        );
    }
    reg.publish(p);
    let tarball = Registry::tarball_path("many", "1.0.0");
    reg.fault(
        &tarball,
        Fault {
            throttle: Some((1024, Duration::from_millis(20))),
            ..Default::default()
        },
    );
    let ctx = TestContext::new().with_registry(&reg.url);
    project_with(&ctx, json!({"many": "1.0.0"}));
    let child = ctx.spawn(&["install"]);
    assert!(eventually(Duration::from_secs(20), || reg.count(&tarball) > 0));
    // Wait until the import has written some files to tmp/, then kill.
    let tmp = ctx.store.join("v1/tmp");
    assert!(
        eventually(Duration::from_secs(20), || {
            std::fs::read_dir(&tmp)
                .map(|rd| {
                    rd.flatten().any(|d| {
                        std::fs::read_dir(d.path())
                            .map(|x| x.count() > 5)
                            .unwrap_or(false)
                    })
                })
                .unwrap_or(false)
        }),
        "import never started writing"
    );
    let pid = ctx.daemon_pid().unwrap();
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let out = wait_output(child, Duration::from_secs(30));
    assert_ne!(out.status.code(), Some(0));
    assert!(ctx.wait_daemon_gone(Duration::from_secs(10)));
    // Restart: leftovers cleaned, nothing half-indexed, verify clean.
    reg.fault(&tarball, Fault::default());
    let v: Value = serde_json::from_str(
        ctx.ok(&["--json", "store", "verify"])
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(v["bad_files"], 0, "{v}");
    assert_eq!(v["packages_removed"], 0, "{v}");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "tmp/ cleaned at start-up"
    );
    assert_eq!(store_status(&ctx)["packages"], 0);
    ctx.ok(&["install"]);
    assert!(ctx.project.join("node_modules/many/f/39.js").exists());
}

#[test]
fn store_files_are_read_only_and_edits_do_not_reach_the_store() {
    let reg = Registry::start();
    reg.publish(Pkg::new("victim", "1.0.0").file("index.js", b"original\n", 0o644));
    let ctx = TestContext::new().with_registry(&reg.url);
    project_with(&ctx, json!({"victim": "1.0.0"}));
    // Another project shares the same store file.
    let other = ctx.root.path().join("other");
    write_json(
        &other.join("package.json"),
        &json!({"name": "o", "dependencies": {"victim": "1.0.0"}}),
    );
    let drop_privileges = is_root();
    if drop_privileges && let Err(why) = can_act_as_nobody() {
        // Root ignores file modes, so the write would succeed: nothing to test here.
        return skip(
            "store_files_are_read_only_and_edits_do_not_reach_the_store",
            &why,
        );
    }
    if drop_privileges {
        // Run as an ordinary user: root ignores file modes.
        for d in [
            ctx.root.path().to_path_buf(),
            ctx.home.clone(),
            ctx.store.clone(),
            ctx.project.clone(),
            other.clone(),
        ] {
            std::os::unix::fs::chown(&d, Some(65534), Some(65534)).unwrap();
        }
    }
    let as_user = |cmd: &mut std::process::Command| {
        if drop_privileges {
            cmd.uid(65534).gid(65534);
        }
    };
    let hoard = || {
        if drop_privileges {
            ctx.hoard_as_nobody()
        } else {
            ctx.hoard()
        }
    };
    for dir in [&ctx.project, &other] {
        let mut c = hoard();
        c.current_dir(dir).arg("install");
        let out = run_with_timeout(&mut c, Duration::from_secs(60));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let installed = ctx.project.join("node_modules/victim/index.js");
    let mode = std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444, "hard-linked files are read-only");
    // A package writing to its own file fails instead of changing every project.
    let mut w = std::process::Command::new("sh");
    w.arg("-c")
        .arg(format!("echo hacked >> '{}'", installed.display()));
    as_user(&mut w);
    let out = run_with_timeout(&mut w, Duration::from_secs(10));
    assert!(!out.status.success(), "the write must fail");
    assert_eq!(
        std::fs::read(other.join("node_modules/victim/index.js")).unwrap(),
        b"original\n"
    );
    // With copies the write succeeds and stays local.
    let mut c = hoard();
    c.args(["install", "--link", "copy", "--force"]);
    assert!(
        run_with_timeout(&mut c, Duration::from_secs(60))
            .status
            .success()
    );
    let mut w = std::process::Command::new("sh");
    w.arg("-c")
        .arg(format!("echo hacked >> '{}'", installed.display()));
    as_user(&mut w);
    assert!(
        run_with_timeout(&mut w, Duration::from_secs(10))
            .status
            .success()
    );
    assert_eq!(
        std::fs::read(other.join("node_modules/victim/index.js")).unwrap(),
        b"original\n"
    );
    let mut v = ctx.hoard();
    v.args(["--json", "store", "verify"]);
    as_user(&mut v);
    let out = run_with_timeout(&mut v, Duration::from_secs(60));
    let last: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["bad_files"], 0, "{last}");
}

#[test]
fn verify_repairs_and_prune_frees() {
    let reg = Registry::start();
    reg.publish(Pkg::new("keep", "1.0.0").file("k.js", b"keep", 0o644));
    reg.publish(Pkg::new("gone", "1.0.0").file("g.js", b"gone-file-body", 0o644));
    let ctx = TestContext::new().with_registry(&reg.url);
    project_with(&ctx, json!({"keep": "1.0.0", "gone": "1.0.0"}));
    ctx.ok(&["install"]);
    let st = store_status(&ctx);
    assert_eq!(st["packages"], 2);
    assert_eq!(st["projects"], 1);
    // Corrupt one content file behind the store's back.
    let victim = blake3::hash(b"keep").to_hex().to_string();
    let path = ctx
        .store
        .join("v1/files")
        .join(&victim[..2])
        .join(&victim[2..]);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&path, b"evil").unwrap();
    let out = ctx.run(&["--json", "store", "verify"]);
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let problem = lines
        .iter()
        .find(|l| l["type"] == "problem")
        .expect("a problem is reported");
    assert_eq!(problem["kind"], "hash-mismatch");
    assert!(
        problem["packages"].to_string().contains("keep@1.0.0"),
        "{problem}"
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["packages_removed"], 1, "{summary}");
    assert_eq!(store_status(&ctx)["packages"], 1);
    // The next install fetches it again.
    let before = reg.count(&Registry::tarball_path("keep", "1.0.0"));
    ctx.ok(&["install", "--force"]);
    assert_eq!(
        reg.count(&Registry::tarball_path("keep", "1.0.0")),
        before + 1
    );
    let v: Value = serde_json::from_str(
        ctx.ok(&["--json", "store", "verify"])
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(v["bad_files"], 0);

    // Prune: remove `gone` from the project, then the project itself.
    ctx.ok(&["remove", "gone"]);
    let p: Value = serde_json::from_str(
        ctx.ok(&["--json", "store", "prune"])
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(p["packages_removed"], 1, "{p}");
    assert!(p["bytes_freed"].as_u64().unwrap() > 0);
    let gone = blake3::hash(b"gone-file-body").to_hex().to_string();
    assert!(
        !ctx.store
            .join("v1/files")
            .join(&gone[..2])
            .join(&gone[2..])
            .exists()
    );
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    let p: Value = serde_json::from_str(
        ctx.ok(&["--json", "store", "prune"])
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(p["projects_dropped"], 1, "{p}");
    assert_eq!(store_status(&ctx)["packages"], 0);
}

#[test]
fn odd_but_valid_tarballs_import() {
    let reg = Registry::start();
    // No `package/` prefix, no directory entries, a duplicate entry (the last one wins).
    let t = tarball(&[
        (
            "node-v1/package.json".into(),
            br#"{"name":"odd","version":"1.0.0"}"#.to_vec(),
            0o644,
        ),
        ("node-v1/lib/deep/x.js".into(), b"first".to_vec(), 0o600),
        ("node-v1/lib/deep/x.js".into(), b"second".to_vec(), 0o777),
        // A file after a duplicate keeps its own content.
        ("node-v1/z.js".into(), b"zzz".to_vec(), 0o644),
    ]);
    reg.publish(Pkg::new("odd", "1.0.0").raw(t));
    let ctx = TestContext::new().with_registry(&reg.url);
    project_with(&ctx, json!({"odd": "1.0.0"}));
    ctx.ok(&["install"]);
    let f = ctx.project.join("node_modules/odd/lib/deep/x.js");
    assert_eq!(std::fs::read(&f).unwrap(), b"second");
    assert_eq!(
        std::fs::read(ctx.project.join("node_modules/odd/z.js")).unwrap(),
        b"zzz"
    );
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o555,
        "executable bit kept, read-only"
    );
}
