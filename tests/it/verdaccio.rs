//! A registry people run (issue #14, points 3 and 4): Verdaccio, installed from the npm registry
//! into the target folder once and started on 127.0.0.1 with a temporary config and htpasswd.
//! A user publishes a scoped private package (with npm, and with `hoard login` + `hoard
//! publish`); hoard installs it with that user's token, is refused without one (naming the
//! registry and the .npmrc line that is missing), installs a public package through Verdaccio
//! proxying the test registry, and logs out.
//! Skipped, with the reason printed, when node or npm is missing or Verdaccio cannot be
//! installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::context::{TestContext, eventually, skip, stderr, which, write_json};
use crate::registry::{Pkg, Registry};

/// Verdaccio's node_modules, installed once (tests that need it wait for the first).
fn verdaccio_bin(test: &str) -> Option<PathBuf> {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("verdaccio");
    let bin = dir.join("node_modules/verdaccio/bin/verdaccio");
    if dir.join("ready").exists() {
        return Some(bin);
    }
    if !which("node") || !which("npm") {
        skip(
            test,
            "node and npm are not installed (Verdaccio runs on node)",
        );
        return None;
    }
    let _ = std::fs::create_dir_all(&dir);
    // verdaccio-audit asks for node-fetch by its `cjs` dist-tag, which a mirror serving only
    // `latest` lacks; every node-fetch in Verdaccio's tree is the CommonJS 2.x anyway.
    let _ = std::fs::write(
        dir.join("package.json"),
        "{\"private\": true, \"overrides\": {\"node-fetch\": \"^2.7.0\"}}\n",
    );
    let made = Command::new("npm")
        .args([
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "verdaccio@6",
        ])
        .current_dir(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if !made || !bin.exists() {
        skip(test, "could not install verdaccio@6 from the npm registry");
        return None;
    }
    let _ = std::fs::write(dir.join("ready"), "");
    Some(bin)
}

/// A running Verdaccio, stopped on drop.
struct Verdaccio {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Verdaccio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Verdaccio {
    /// Start Verdaccio with `@private/*` for authenticated users only and everything else
    /// proxied from `upstream`.
    fn start(bin: &Path, upstream: &str) -> Verdaccio {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "storage: {storage}\n\
                 auth:\n  htpasswd:\n    file: {htpasswd}\n    max_users: 10\n\
                 uplinks:\n  upstream:\n    url: {upstream}\n\
                 packages:\n  '@private/*':\n    access: $authenticated\n    publish: $authenticated\n\
                 \x20 '**':\n    access: $all\n    publish: $authenticated\n    proxy: upstream\n\
                 log: {{ type: stdout, format: pretty, level: warn }}\n",
                storage = dir.path().join("storage").display(),
                htpasswd = dir.path().join("htpasswd").display(),
            ),
        )
        .unwrap();
        for _ in 0..5 {
            let port = free_port();
            let url = format!("http://127.0.0.1:{port}/");
            let mut child = Command::new("node")
                .arg(bin)
                .args(["--config", config.to_str().unwrap()])
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start verdaccio");
            let up = eventually(Duration::from_secs(30), || {
                matches!(child.try_wait(), Ok(None))
                    && http("GET", &format!("{url}-/ping"), None, None).0 == 200
            });
            if up {
                return Verdaccio {
                    child,
                    url,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("verdaccio did not start");
    }

    /// Create user `name` (npm's adduser call); its token.
    fn add_user(&self, name: &str) -> String {
        let body = json!({"_id": format!("org.couchdb.user:{name}"), "name": name,
            "password": "secret-pass-1", "type": "user", "roles": [], "date": "2026-12-01T00:00:00Z"});
        let (status, text) = http(
            "PUT",
            &format!("{}-/user/org.couchdb.user:{name}", self.url),
            Some(&body),
            None,
        );
        assert!(status == 201 || status == 200, "adduser: {status} {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        v["token"].as_str().expect("a token").to_string()
    }

    fn host_path(&self) -> String {
        self.url.trim_start_matches("http:").to_string()
    }
}

/// A small blocking HTTP/1.0 call (so the answer is never chunked): (status, body).
fn http(method: &str, url: &str, body: Option<&Value>, token: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(mut s) = std::net::TcpStream::connect(host) else {
        return (0, String::new());
    };
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    // A body only when there is one (Verdaccio's parser refuses an empty JSON body on a GET).
    let (body, headers) = match body {
        Some(b) => {
            let b = b.to_string();
            let h = format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            );
            (b, h)
        }
        None => (String::new(), String::new()),
    };
    let req = format!("{method} /{path} HTTP/1.0\r\nHost: {host}\r\n{auth}{headers}\r\n{body}");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// Publish `@private/secret@1.0.0` to `v` as the user of `token`, with npm.
fn publish_private(ctx: &TestContext, v: &Verdaccio, token: &str) {
    let pkg = ctx.home.join("secret-src");
    std::fs::create_dir_all(&pkg).unwrap();
    write_json(
        &pkg.join("package.json"),
        &json!({"name": "@private/secret", "version": "1.0.0", "main": "index.js"}),
    );
    std::fs::write(pkg.join("index.js"), "module.exports = 'the secret';\n").unwrap();
    let rc = ctx.home.join("publisher.npmrc");
    std::fs::write(&rc, format!("{}:_authToken={token}\n", v.host_path())).unwrap();
    let out = Command::new("npm")
        .args([
            "publish",
            "--registry",
            &v.url,
            "--userconfig",
            rc.to_str().unwrap(),
        ])
        .current_dir(&pkg)
        .output()
        .unwrap();
    assert!(out.status.success(), "npm publish: {}", stderr(&out));
}

fn consumer(ctx: &TestContext, name: &str, deps: Value, npmrc: &str) -> PathBuf {
    let dir = ctx.home.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    write_json(
        &dir.join("package.json"),
        &json!({"name": name, "version": "1.0.0", "dependencies": deps}),
    );
    std::fs::write(dir.join(".npmrc"), npmrc).unwrap();
    dir
}

#[test]
fn a_private_package_on_verdaccio_installs_with_a_token_and_is_refused_without_one() {
    let test = "verdaccio::a_private_package_on_verdaccio_installs_with_a_token_and_is_refused_without_one";
    let Some(bin) = verdaccio_bin(test) else {
        return;
    };
    let upstream = Registry::start();
    let v = Verdaccio::start(&bin, &upstream.url);
    let ctx = TestContext::new().with_registry(&upstream.url);
    let alice = v.add_user("alice");
    publish_private(&ctx, &v, &alice);

    let scope = format!("@private:registry={}\n", v.url);
    let with_token = format!("{scope}{}:_authToken=${{ALICE_TOKEN}}\n", v.host_path());
    let dir = consumer(
        &ctx,
        "with-token",
        json!({"@private/secret": "^1.0.0"}),
        &with_token,
    );
    let out = ctx
        .hoard()
        .env("ALICE_TOKEN", &alice)
        .args(["-C", dir.to_str().unwrap(), "install"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let js = std::fs::read_to_string(dir.join("node_modules/@private/secret/index.js")).unwrap();
    assert_eq!(js, "module.exports = 'the secret';\n");
    let lock = std::fs::read_to_string(dir.join("package-lock.json")).unwrap();
    assert!(lock.contains("\"@private/secret\"") || lock.contains("node_modules/@private/secret"));

    // The same project without the token line: refused, saying where and what is missing. Each
    // refusal is tried with its own store and daemon: a daemon that fetched the package with
    // the token serves its metadata from cache for 5 minutes whatever token a project names
    // (as npm's cache does), which would hide the registry's answer.
    let ctx = TestContext::new().with_registry(&upstream.url);
    let dir = consumer(
        &ctx,
        "no-token",
        json!({"@private/secret": "^1.0.0"}),
        &scope,
    );
    let out = ctx
        .hoard()
        .args(["-C", dir.to_str().unwrap(), "install"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let wanted_line = format!("{}:_authToken=", v.host_path());
    assert!(
        err.contains(&v.url) || err.contains(v.url.trim_end_matches('/')),
        "{err}"
    );
    assert!(err.contains("401") || err.contains("403"), "{err}");
    assert!(
        err.contains(&wanted_line),
        "names the missing .npmrc line: {err}"
    );
    assert!(!dir.join("node_modules").exists() && !dir.join("package-lock.json").exists());

    // A wrong token is refused too, and said to be refused.
    let ctx = TestContext::new().with_registry(&upstream.url);
    let bad = format!("{scope}{}:_authToken=not-a-token\n", v.host_path());
    let dir = consumer(
        &ctx,
        "bad-token",
        json!({"@private/secret": "^1.0.0"}),
        &bad,
    );
    let out = ctx
        .hoard()
        .args(["-C", dir.to_str().unwrap(), "install"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
}

#[test]
fn verdaccio_as_a_proxy_of_the_test_registry_serves_hoard() {
    let test = "verdaccio::verdaccio_as_a_proxy_of_the_test_registry_serves_hoard";
    let Some(bin) = verdaccio_bin(test) else {
        return;
    };
    let upstream = Registry::start();
    upstream.publish(
        Pkg::new("upstream-only", "1.2.0")
            .dep("upstream-dep", "^2.0.0")
            .file("index.js", b"module.exports = 1;\n", 0o644),
    );
    upstream.publish(Pkg::new("upstream-dep", "2.1.0").file(
        "index.js",
        b"exports.x = 2;\n",
        0o644,
    ));
    let v = Verdaccio::start(&bin, &upstream.url);
    let ctx = TestContext::new().with_registry(&v.url);
    let dir = consumer(
        &ctx,
        "through-proxy",
        json!({"upstream-only": "^1.0.0"}),
        &format!("registry={}\n", v.url),
    );
    let out = ctx
        .hoard()
        .args(["-C", dir.to_str().unwrap(), "install"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.join("node_modules/upstream-dep/index.js").exists());
    // Verdaccio went to the test registry for both documents and tarballs.
    assert!(upstream.count("/upstream-only") >= 1);
    assert!(upstream.count(&Registry::tarball_path("upstream-dep", "2.1.0")) >= 1);
    let lock: Value =
        serde_json::from_slice(&std::fs::read(dir.join("package-lock.json")).unwrap()).unwrap();
    assert_eq!(
        lock["packages"]["node_modules/upstream-dep"]["version"],
        "2.1.0"
    );
}

fn hoard_with_input(ctx: &TestContext, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = ctx
        .hoard()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn hoard_logs_in_publishes_and_logs_out_against_verdaccio() {
    let test = "verdaccio::hoard_logs_in_publishes_and_logs_out_against_verdaccio";
    let Some(bin) = verdaccio_bin(test) else {
        return;
    };
    let upstream = Registry::start();
    let v = Verdaccio::start(&bin, &upstream.url);
    let ctx = TestContext::new().with_registry(&upstream.url);
    let project = ctx.project.to_str().unwrap().to_string();
    std::fs::write(ctx.project.join("package.json"), "{}").unwrap();

    // Login (npm's legacy login; the user is created): the token and the scope's registry
    // land in ~/.npmrc.
    let out = hoard_with_input(
        &ctx,
        &[
            "-C",
            &project,
            "login",
            "--registry",
            &v.url,
            "--scope",
            "@private",
        ],
        "alice\nsecret-pass-1\nalice@example.com\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let rc = std::fs::read_to_string(ctx.home.join(".npmrc")).unwrap();
    assert!(
        rc.contains(&format!("{}:_authToken=", v.host_path())),
        "{rc}"
    );
    assert!(rc.contains(&format!("@private:registry={}", v.url)), "{rc}");
    let whoami = ctx.run(&["-C", &project, "whoami", "--registry", &v.url]);
    assert!(whoami.status.success(), "{}", stderr(&whoami));
    assert_eq!(String::from_utf8_lossy(&whoami.stdout).trim(), "alice");

    // Publish as alice: the scope's registry comes from ~/.npmrc.
    let pkg = ctx.home.join("secret-src");
    std::fs::create_dir_all(&pkg).unwrap();
    let manifest = |version: &str| {
        json!({"name": "@private/secret", "version": version, "main": "index.js",
            "description": "a private package"})
    };
    write_json(&pkg.join("package.json"), &manifest("1.0.0"));
    std::fs::write(pkg.join("index.js"), "module.exports = 'the secret';\n").unwrap();
    std::fs::write(pkg.join("notes.orig"), "not published").unwrap();
    let publish = |extra: &[&str]| {
        let mut args = vec!["-C", pkg.to_str().unwrap(), "publish"];
        args.extend_from_slice(extra);
        ctx.run(&args)
    };
    let out = publish(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "+ @private/secret@1.0.0"
    );

    // The same version again is refused by the registry, and said so.
    let out = publish(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&v.url), "{}", stderr(&out));

    // A newer version under `next` leaves `latest` alone.
    write_json(&pkg.join("package.json"), &manifest("1.1.0"));
    let out = publish(&["--tag", "next"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = rc
        .lines()
        .find_map(|l| l.split_once(":_authToken=").map(|(_, t)| t.to_string()))
        .unwrap();
    let (status, doc) = http(
        "GET",
        &format!("{}@private%2fsecret", v.url),
        None,
        Some(&token),
    );
    assert_eq!(status, 200, "{doc}");
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["dist-tags"]["latest"], "1.0.0");
    assert_eq!(doc["dist-tags"]["next"], "1.1.0");

    // A project installs it with the saved credentials, and gets the published files only.
    let dir = consumer(&ctx, "consumer", json!({"@private/secret": "^1.0.0"}), "");
    let out = ctx.run(&["-C", dir.to_str().unwrap(), "install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let installed = dir.join("node_modules/@private/secret");
    assert!(installed.join("index.js").exists());
    assert!(!installed.join("notes.orig").exists());

    // Search finds it (Verdaccio's /-/v1/search, with the saved credentials).
    let out = ctx
        .hoard()
        .env("npm_config_registry", &v.url)
        .args(["-C", &project, "--json", "search", "secret"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        found
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "@private/secret"),
        "{found}"
    );

    // A private package.json is refused before anything is sent.
    let private = ctx.home.join("private-pkg");
    std::fs::create_dir_all(&private).unwrap();
    write_json(
        &private.join("package.json"),
        &json!({"name": "@private/never", "version": "1.0.0", "private": true}),
    );
    let out = ctx.run(&["-C", private.to_str().unwrap(), "publish"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("private"), "{}", stderr(&out));

    // Logout: the token line goes, and whoami says you are not logged in.
    let out = ctx.run(&["-C", &project, "logout", "--registry", &v.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rc = std::fs::read_to_string(ctx.home.join(".npmrc")).unwrap();
    assert!(!rc.contains(":_authToken="), "{rc}");
    let out = ctx.run(&["-C", &project, "whoami", "--registry", &v.url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not logged in"), "{}", stderr(&out));
}
