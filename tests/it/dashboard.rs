//! `hoard ui`: the daemon's web dashboard. Who it admits (the token, the Host header, no CORS,
//! read-only), its live event stream during a real install, and what it shows in a real
//! browser (headless Chromium, driven over the DevTools protocol): the store's totals, the
//! projects and their status, install scripts awaiting approval, and the tree, search and "why"
//! of a real project from the corpus, checked against the package-lock.json npm wrote for it.
//! Screenshots are kept in `target/tmp/artifacts/`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::Browser;
use crate::context::*;
use crate::corpus::{copy_dir, corpus_dir, load_registry};
use crate::registry::*;

/// `hoard ui --no-open` in `dir`: the address it prints, and the port.
fn open_ui(ctx: &TestContext, dir: &Path) -> (String, u16) {
    let out = ctx.ok(&["--json", "-C", dir.to_str().unwrap(), "ui", "--no-open"]);
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let url = v["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (url, v["port"].as_u64().unwrap() as u16)
}

/// One raw HTTP/1.1 exchange: (status code, headers lower-cased, body).
fn http(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, head.to_ascii_lowercase(), body.to_string())
}

fn token_of(url: &str) -> String {
    url.split("token=").nth(1).unwrap().to_string()
}

fn small_registry(reg: &Registry) {
    reg.publish(Pkg::new("uifix-lib", "1.0.0"));
    reg.publish(Pkg::new("uifix-lib", "1.1.0"));
    reg.publish(
        Pkg::new("uifix-build", "2.0.0")
            .dep("uifix-lib", "^1.0.0")
            .script("postinstall", "echo built > built.txt"),
    );
}

#[test]
fn the_dashboard_admits_only_its_token_and_host_and_streams_installs() {
    let reg = Registry::start();
    small_registry(&reg);
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0",
                              "dependencies": {"uifix-build": "^2.0.0"}}));
    ctx.ok(&["install"]);
    let (url, port) = open_ui(&ctx, &ctx.project);
    let token = token_of(&url);
    let with_token = format!("/?token={token}");

    // No token, a wrong one, or a foreign Host (DNS rebinding): 403, and nothing else said.
    let cookie = format!("hoard_ui_{port}={token}");
    let foreign = format!("evil.example:{port}");
    let refused: [(&str, &[(&str, &str)]); 8] = [
        ("/", &[]),
        ("/?token=0000", &[]),
        ("/events", &[]),
        ("/static/app.js", &[]),
        (&with_token, &[("Host", "evil.example")]),
        (&with_token, &[("Host", &foreign)]),
        (&with_token, &[("Host", "127.0.0.1")]),
        ("/", &[("Cookie", &cookie), ("Host", "rebound.example")]),
    ];
    for (target, headers) in refused {
        let (code, _, body) = http(port, "GET", target, headers);
        assert_eq!(code, 403, "{target} {headers:?}: {body}");
        assert!(!body.contains("uifix"), "{body}");
    }
    // The token in the URL: a cookie, and the same page without the token.
    let (code, head, _) = http(port, "GET", &format!("/project?path=x&token={token}"), &[]);
    assert_eq!(code, 303);
    assert!(
        head.contains(&format!(
            "set-cookie: hoard_ui_{port}={token}; path=/; httponly; samesite=strict"
        )),
        "{head}"
    );
    assert!(head.contains("location: /project?path=x\r\n"), "{head}");
    let (code, head, body) = http(
        port,
        "GET",
        "/",
        &[("Cookie", &cookie), ("Origin", "http://evil.example")],
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains(&ctx.store.canonicalize().unwrap().display().to_string()),
        "{body}"
    );
    assert!(!head.contains("access-control-"), "no CORS header: {head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(head.contains("referrer-policy: no-referrer"), "{head}");
    let (code, _, _) = http(
        port,
        "GET",
        "/",
        &[("Cookie", &cookie), ("Host", &format!("localhost:{port}"))],
    );
    assert_eq!(code, 200);
    // Read-only, and only projects this store serves.
    let (code, _, _) = http(port, "POST", "/", &[("Cookie", &cookie)]);
    assert_eq!(code, 405);
    let (code, _, body) = http(port, "GET", "/project?path=%2Fetc", &[("Cookie", &cookie)]);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("not a project this store serves"), "{body}");

    // The live stream sees an install another client runs, start to finish.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    while r.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
        line.clear();
    }
    let install = ctx.spawn(&["install", "--force"]);
    let dir = ctx.project.canonicalize().unwrap().display().to_string();
    let mut seen = Vec::new();
    loop {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "the stream ended early: {seen:?}"
        );
        let Some(data) = line.trim().strip_prefix("data: ") else {
            continue;
        };
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["project"], json!(dir), "{v}");
        let kind = v["type"].as_str().unwrap().to_string();
        if kind == "progress" {
            seen.push(format!("progress {}", v["phase"].as_str().unwrap()));
        } else {
            seen.push(kind.clone());
        }
        if kind == "finished" {
            assert!(v["message"].as_str().unwrap().contains("added"), "{v}");
            break;
        }
    }
    let out = wait_output(install, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        seen.first().map(String::as_str),
        Some("started"),
        "{seen:?}"
    );
    for want in ["progress link", "summary", "finished"] {
        assert!(seen.iter().any(|s| s == want), "{want} in {seen:?}");
    }
}

/// npm's lockfile entries as the dashboard labels them: location → `name@version`.
fn npm_labels(lock: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (loc, e) in lock["packages"].as_object().unwrap() {
        if loc.is_empty() || !loc.contains("node_modules/") {
            continue;
        }
        let name = loc.rsplit_once("node_modules/").unwrap().1;
        let version = e["version"].as_str().unwrap();
        let label = match e["name"].as_str() {
            Some(real) if real != name => format!("{name}@npm:{real}@{version}"),
            _ => format!("{name}@{version}"),
        };
        out.insert(loc.clone(), label);
    }
    out
}

/// Who depends on each location in npm's lockfile (Node's lookup from each dependent).
fn npm_dependents(lock: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let pkgs = lock["packages"].as_object().unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, e) in pkgs {
        for field in ["dependencies", "optionalDependencies", "peerDependencies"] {
            for name in e[field].as_object().into_iter().flat_map(|m| m.keys()) {
                let mut base = from.clone();
                let target = loop {
                    let cand = if base.is_empty() {
                        format!("node_modules/{name}")
                    } else {
                        format!("{base}/node_modules/{name}")
                    };
                    if pkgs.contains_key(&cand) {
                        break Some(cand);
                    }
                    if base.is_empty() {
                        break None;
                    }
                    base = match base.rfind("/node_modules/") {
                        Some(i) => base[..i].to_string(),
                        None => String::new(),
                    };
                };
                if let Some(t) = target {
                    out.entry(t).or_default().insert(from.clone());
                }
            }
        }
    }
    out
}

#[test]
fn the_dashboard_shows_the_store_projects_and_a_real_tree_in_chromium() {
    let test = "dashboard::the_dashboard_shows_the_store_projects_and_a_real_tree_in_chromium";
    let Some(mut b) = Browser::start(test) else {
        return;
    };
    let reg = Registry::start();
    load_registry(&reg);
    small_registry(&reg);
    let ctx = TestContext::new().with_registry(&reg.url);
    // A small project installed for real (a package whose install script awaits approval).
    ctx.write_project(&json!({"name": "app", "version": "1.0.0",
                              "dependencies": {"uifix-build": "^2.0.0"}}));
    ctx.ok(&["install"]);
    // A real project from the corpus, resolved as npm resolved it.
    let express = ctx.home.join("express-api");
    copy_dir(&corpus_dir().join("projects/express-api"), &express);
    let meta: Value =
        serde_json::from_slice(&std::fs::read(corpus_dir().join("meta.json")).unwrap()).unwrap();
    std::fs::write(
        express.join(".npmrc"),
        format!(
            "registry={}\nnode-version={}\n",
            reg.url,
            meta["node"].as_str().unwrap()
        ),
    )
    .unwrap();
    ctx.ok(&[
        "-C",
        express.to_str().unwrap(),
        "install",
        "--package-lock-only",
    ]);
    let npm: Value = serde_json::from_slice(
        &std::fs::read(corpus_dir().join("projects/express-api/npm-lock.json")).unwrap(),
    )
    .unwrap();

    // The project's page: the token leaves the address bar, the live stream connects.
    let (url, port) = open_ui(&ctx, &express);
    b.goto(&url);
    assert_eq!(b.eval("location.search.includes('token')"), json!(false));
    assert!(
        b.wait_for(
            "document.body.dataset.live === 'connected'",
            Duration::from_secs(20)
        ),
        "the page's script did not connect to /events"
    );
    // Every package of npm's lockfile, at npm's location, with npm's version.
    let rows = b.eval(
        "[...document.querySelectorAll('#packages tbody tr')]\
         .map(tr => [tr.cells[1].textContent, tr.cells[0].textContent])",
    );
    let shown: BTreeMap<String, String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().into(), r[1].as_str().unwrap().into()))
        .collect();
    let want = npm_labels(&npm);
    assert!(want.len() > 300, "{}", want.len());
    assert_eq!(shown, want);
    let total = want.len();
    assert_eq!(
        b.eval("document.getElementById('count').textContent"),
        json!(format!("{total} of {total} packages"))
    );
    // The tree: every direct dependency at the top, opened.
    let top = b.eval("[...document.querySelectorAll('ul.tree > li > details > summary > .pkg, ul.tree > li > .pkg')].map(e => e.textContent)");
    let direct: BTreeSet<String> = npm["packages"][""]["dependencies"]
        .as_object()
        .unwrap()
        .keys()
        .chain(
            npm["packages"][""]["devDependencies"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.keys()),
        )
        .map(|n| want[&format!("node_modules/{n}")].clone())
        .collect();
    let top: BTreeSet<String> = top
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().into())
        .collect();
    assert_eq!(top, direct);
    b.screenshot("dashboard-project-express-api");

    // Search as you type.
    b.eval("document.getElementById('q').focus()");
    b.type_text("mime");
    // The search matches names (an alias's and its package's), not versions.
    let matching = want
        .iter()
        .filter(|(loc, _)| {
            let e = &npm["packages"][loc.as_str()];
            loc.rsplit_once("node_modules/").unwrap().1.contains("mime")
                || e["name"].as_str().is_some_and(|n| n.contains("mime"))
        })
        .count();
    let visible = b.eval(
        "[...document.querySelectorAll('#packages tbody tr')].filter(tr => !tr.hidden).map(tr => tr.cells[0].textContent)",
    );
    let visible: Vec<&str> = visible
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        !visible.is_empty() && visible.iter().all(|l| l.contains("mime")),
        "{visible:?}"
    );
    assert_eq!(visible.len(), matching);
    assert_eq!(
        b.eval("document.getElementById('count').textContent"),
        json!(format!("{matching} of {total} packages"))
    );
    b.screenshot("dashboard-search");

    // Why is it here: a package several others need, as npm's lockfile says.
    let deps = npm_dependents(&npm);
    let (loc, from) = deps
        .iter()
        .filter(|(l, f)| f.len() >= 3 && !f.contains("") && l.matches("node_modules/").count() == 1)
        .max_by_key(|(_, f)| f.len())
        .expect("a package with several dependents");
    let click = format!(
        "[...document.querySelectorAll('#packages tbody tr')].find(tr => tr.cells[1].textContent === {}).querySelector('a.why').click()",
        json!(loc)
    );
    b.eval(&click);
    assert!(
        b.wait_for("document.getElementById('why')", Duration::from_secs(20)),
        "no why section"
    );
    b.wait_for(
        "document.readyState === 'complete'",
        Duration::from_secs(20),
    );
    let who = b.eval(
        "[...document.querySelectorAll('#why > ul.why > li > .pkg')].map(e => e.textContent)",
    );
    let who: BTreeSet<String> = who
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().into())
        .collect();
    let expected: BTreeSet<String> = from.iter().map(|f| want[f].clone()).collect();
    assert_eq!(who, expected, "why {loc}");
    b.screenshot("dashboard-why");

    // The overview: the store's numbers as `hoard store status` gives them, and the projects.
    b.goto(&format!("http://127.0.0.1:{port}/"));
    let status: Value =
        serde_json::from_str(ctx.ok(&["--json", "store", "status"]).trim()).unwrap();
    assert_eq!(
        b.eval("document.getElementById('store-packages').textContent"),
        json!(status["packages"].as_u64().unwrap().to_string())
    );
    assert_eq!(
        b.eval("document.getElementById('store-files').textContent"),
        json!(status["files"].as_u64().unwrap().to_string())
    );
    let app = ctx.project.canonicalize().unwrap().display().to_string();
    let row_status = |b: &mut Browser, dir: &str| {
        b.eval(&format!(
            "document.querySelector('tr.project[data-path=\"{dir}\"] .status')?.textContent"
        ))
    };
    assert_eq!(row_status(&mut b, &app), json!("up to date"));
    let ex = express.canonicalize().unwrap().display().to_string();
    assert_eq!(row_status(&mut b, &ex), json!("not installed"));
    b.screenshot("dashboard-overview");
    // A changed package.json makes the project out of date.
    let pj = ctx.project.join("package.json");
    // A real edit (the content is what counts, not the mtime).
    let edited = std::fs::read_to_string(&pj).unwrap()
        + "
";
    std::fs::write(&pj, edited).unwrap();
    b.goto(&format!("http://127.0.0.1:{port}/"));
    assert_eq!(
        row_status(&mut b, &app),
        json!("out of date: package.json changed since the last install")
    );

    // The small project's page: its install script awaits approval; an install shows live.
    b.eval(&format!(
        "document.querySelector('tr.project[data-path=\"{app}\"] a').click()"
    ));
    assert!(b.wait_for(
        "document.getElementById('scripts') && document.body.dataset.live === 'connected'",
        Duration::from_secs(20)
    ));
    let waiting =
        b.eval("[...document.querySelectorAll('#scripts tr.script')].map(tr => tr.textContent)");
    let waiting = waiting.as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let w = waiting[0].as_str().unwrap();
    assert!(
        w.contains("uifix-build@2.0.0")
            && w.contains("echo built > built.txt")
            && w.contains("not reviewed"),
        "{w}"
    );
    let install = ctx.spawn(&["install", "--force"]);
    assert!(
        b.wait_for(
            &format!("document.querySelector('#live-list li[data-project=\"{app}\"]')?.dataset.state === 'finished'"),
            Duration::from_secs(60)
        ),
        "the page did not see the install finish"
    );
    let text = b.eval(&format!(
        "document.querySelector('#live-list li[data-project=\"{app}\"]').textContent"
    ));
    assert!(text.as_str().unwrap().contains("added"), "{text}");
    b.screenshot("dashboard-live-install");
    assert!(
        wait_output(install, Duration::from_secs(60))
            .status
            .success()
    );
}
