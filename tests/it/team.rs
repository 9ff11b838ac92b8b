//! Beyond one machine: the team's remote tarball cache on a real Redis server (Debian's
//! redis-server, started here on 127.0.0.1; skipped with a printed reason when it is not
//! installed), and on a shared folder; `hoard fetch`. Two daemons with separate stores stand for
//! two machines.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::context::*;
use crate::registry::*;

/// A port of 127.0.0.1 nothing listens on.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A redis-server on a free port of 127.0.0.1, stopped when dropped.
struct Redis {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start(test: &str) -> Option<Redis> {
        if !which("redis-server") {
            skip(
                test,
                "redis-server is not installed (apt-get install redis-server)",
            );
            return None;
        }
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let r = Redis {
            port,
            child,
            _dir: dir,
        };
        assert!(
            eventually(Duration::from_secs(10), || r.cli(&["PING"]) == "PONG"),
            "redis-server did not answer"
        );
        Some(r)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    fn keys(&self) -> Vec<String> {
        self.cli(&["--scan", "--pattern", "*sha512*"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A machine: its own daemon and store, this project, and the cache in its .npmrc.
fn machine(reg: &Registry, deps: &Value, cache: &str) -> TestContext {
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": deps}));
    std::fs::write(
        ctx.project.join(".npmrc"),
        format!("hoard-remote-cache={cache}\n"),
    )
    .unwrap();
    ctx
}

fn tarball_requests(reg: &Registry, names: &[String]) -> usize {
    names
        .iter()
        .map(|n| reg.count(&Registry::tarball_path(n, "1.0.0")))
        .sum()
}

fn warnings(out: &str, code: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "warning" && v["code"] == code)
        .map(|v| v["message"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_second_machine_installs_from_the_team_cache_and_rejects_a_tampered_entry() {
    let test = "a_second_machine_installs_from_the_team_cache_and_rejects_a_tampered_entry";
    let Some(redis) = Redis::start(test) else {
        return;
    };
    let (reg, names, deps) = numbered_packages(8);
    let first = machine(&reg, &deps, &redis.url());
    let s = summary(&first.ok(&["--json", "install"]));
    assert_eq!(s["downloaded"], 8);
    assert_eq!(tarball_requests(&reg, &names), 8);
    assert_eq!(
        redis.keys().len(),
        8,
        "every tarball went to the team cache"
    );

    // A second machine, cold: zero tarball requests to the registry.
    let second = machine(&reg, &deps, &redis.url());
    std::fs::copy(
        first.project.join("package-lock.json"),
        second.project.join("package-lock.json"),
    )
    .unwrap();
    let s = summary(&second.ok(&["--json", "install"]));
    assert_eq!(s["from_remote_cache"], 8);
    assert_eq!(
        tarball_requests(&reg, &names),
        8,
        "nothing came from the registry"
    );
    for n in &names {
        let body =
            std::fs::read_to_string(second.project.join("node_modules").join(n).join("index.js"));
        assert_eq!(body.unwrap(), *n);
    }
    second.assert_store_whole();

    // A tampered entry is rejected, fetched from the registry and reported; the cache heals.
    let victim = redis.keys()[0].clone();
    assert_eq!(redis.cli(&["SET", &victim, "not a tarball"]), "OK");
    let third = machine(&reg, &deps, &redis.url());
    let out = third.ok(&["--json", "install"]);
    let w = warnings(&out, "remote-cache");
    assert_eq!(w.len(), 1, "{out}");
    assert!(
        w[0].contains("bad copy of p") && w[0].contains("rejected") && w[0].contains(&redis.url()),
        "{}",
        w[0]
    );
    assert_eq!(summary(&out)["from_remote_cache"], 7);
    assert_eq!(tarball_requests(&reg, &names), 9);
    third.assert_store_whole();
    let fourth = machine(&reg, &deps, &redis.url());
    let s = summary(&fourth.ok(&["--json", "install"]));
    assert_eq!(s["from_remote_cache"], 8, "the bad entry was replaced");
    assert_eq!(tarball_requests(&reg, &names), 9);
}

#[test]
fn the_cache_server_killed_mid_install_leaves_the_install_to_the_registry() {
    let test = "the_cache_server_killed_mid_install_leaves_the_install_to_the_registry";
    let Some(mut redis) = Redis::start(test) else {
        return;
    };
    let (reg, names, deps) = numbered_packages(8);
    // p0's tarball is held until the cache server is gone.
    let gate = Gate::new();
    reg.fault(
        &Registry::tarball_path("p0", "1.0.0"),
        Fault {
            gate: Some(gate.clone()),
            ..Default::default()
        },
    );
    let ctx = machine(&reg, &deps, &redis.url());
    let child = ctx
        .hoard()
        .args(["--json", "install"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || redis.keys().len() == 7),
        "the other seven reached the cache"
    );
    redis.kill();
    gate.open();
    let out = wait_output(child, Duration::from_secs(120));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary(&text)["downloaded"], 8);
    let w = warnings(&text, "remote-cache");
    assert_eq!(w.len(), 1, "one warning: {text}");
    assert!(w[0].contains("failed while writing"), "{}", w[0]);
    assert_eq!(tarball_requests(&reg, &names), 8);

    // With the server gone from the start: installs as usual, one warning.
    let other = machine(&reg, &deps, &redis.url());
    let out = other.ok(&["--json", "install"]);
    assert_eq!(warnings(&out, "remote-cache").len(), 1, "{out}");
    assert!(warnings(&out, "remote-cache")[0].contains("failed while connecting"));
}

#[test]
fn a_shared_folder_cache_read_only_machines_and_bad_settings() {
    let (reg, names, deps) = numbered_packages(3);
    let shared = tempfile::tempdir().unwrap();
    let url = format!("file://{}", shared.path().display());
    let first = machine(&reg, &deps, &url);
    first.ok(&["install"]);
    // A read-only machine reads the cache and writes nothing to it.
    let reader = machine(&reg, &deps, &url);
    std::fs::write(
        reader.project.join(".npmrc"),
        format!("hoard-remote-cache={url}\nhoard-remote-cache-mode=read-only\n"),
    )
    .unwrap();
    let s = summary(&reader.ok(&["--json", "install"]));
    assert_eq!(s["from_remote_cache"], 3);
    assert_eq!(tarball_requests(&reg, &names), 3);
    // A setting hoard cannot use is an error naming it.
    let bad = machine(&reg, &deps, "ftp://cache.example/npm");
    let out = bad.run(&["install"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("hoard-remote-cache=ftp://cache.example/npm"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn hoard_fetch_fills_the_store_from_the_lockfile_alone_then_install_offline_works() {
    let (reg, names, deps) = numbered_packages(5);
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": deps}));
    ctx.ok(&["install", "--package-lock-only"]);
    // A Docker layer: only the lockfile.
    let pkg = std::fs::read(ctx.project.join("package.json")).unwrap();
    std::fs::remove_file(ctx.project.join("package.json")).unwrap();
    let out = ctx.run(&["fetch"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("5 packages in the store: 5 downloaded"),
        "{}",
        stderr(&out)
    );
    assert!(
        !ctx.project.join("node_modules").exists(),
        "fetch links nothing"
    );
    assert_eq!(tarball_requests(&reg, &names), 5);
    // Then the install, with no network at all: in the same lockfile-only folder...
    drop(reg);
    let s = summary(&ctx.ok(&["--json", "install", "--offline"]));
    assert_eq!(s["added"], 5);
    assert_eq!(s["downloaded"], 0);
    for n in &names {
        let file = ctx.project.join("node_modules").join(n).join("index.js");
        assert!(file.exists(), "{}", file.display());
    }
    assert!(
        !ctx.project.join("package.json").exists(),
        "no package.json was made up"
    );
    // ...and once the rest of the project is there.
    std::fs::write(ctx.project.join("package.json"), pkg).unwrap();
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    let s = summary(&ctx.ok(&["--json", "install", "--offline"]));
    assert_eq!(
        (s["added"].as_u64(), s["downloaded"].as_u64()),
        (Some(5), Some(0))
    );
    // Without a lockfile, fetch says what it needs.
    let empty = TestContext::new();
    let out = empty.run(&["fetch"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("package-lock.json"),
        "{}",
        stderr(&out)
    );
}

/// An S3-compatible server: moto's, from PyPI, installed once into the target folder
/// (`python3 -m venv` + pip); None (the test skipped, saying why) when that cannot be done.
struct S3Server {
    port: u16,
    child: Child,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_server(test: &str) -> Option<S3Server> {
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("moto-venv");
    let bin = venv.join("bin/moto_server");
    if !bin.exists() {
        if !which("python3") {
            skip(
                test,
                "python3 is not installed (the S3-compatible test server is moto, from PyPI)",
            );
            return None;
        }
        eprintln!(
            "{test}: installing moto[server] from PyPI into {} (once)",
            venv.display()
        );
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "moto[server]"])
                .status()
                .is_ok_and(|s| s.success());
        if !ok || !bin.exists() {
            let _ = std::fs::remove_dir_all(&venv);
            skip(
                test,
                "could not install moto[server] from PyPI (needs python3-venv and the network)",
            );
            return None;
        }
    }
    let port = free_port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let server = S3Server { port, child };
    // Create the bucket (moto takes an unsigned PUT).
    let created = eventually(Duration::from_secs(30), || {
        use std::io::{Read, Write};
        let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = c.write_all(b"PUT /team-cache HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200")
    });
    assert!(created, "moto_server did not create the bucket");
    Some(server)
}

#[test]
fn two_machines_share_tarballs_through_an_s3_bucket() {
    let test = "two_machines_share_tarballs_through_an_s3_bucket";
    let Some(s3) = moto_server(test) else { return };
    let (reg, names, deps) = numbered_packages(4);
    let aws = |ctx: TestContext| {
        ctx.env("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{}", s3.port))
            .env("AWS_ACCESS_KEY_ID", "team")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_REGION", "us-east-1")
    };
    let first = aws(machine(&reg, &deps, "s3://team-cache/npm"));
    first.ok(&["install"]);
    let second = aws(machine(&reg, &deps, "s3://team-cache/npm"));
    let s = summary(&second.ok(&["--json", "install"]));
    assert_eq!(s["from_remote_cache"], 4);
    assert_eq!(
        tarball_requests(&reg, &names),
        4,
        "the second machine asked the registry for none"
    );
    second.assert_store_whole();
}
