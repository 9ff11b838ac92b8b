//! Opt-in tests against the real npm registry: `cargo test --test it network -- --ignored`
//! (they need the network and npm on PATH). For each real project: hoard's set of name@version equals npm's from the
//! same package.json, `npm ls --all` finds nothing missing/invalid/extraneous in hoard's tree,
//! `npm ci` accepts hoard's lockfile, and the project's own command works from node_modules.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::context::*;

/// name@version of every installed package in a v2/v3 lock.
fn lock_set(dir: &Path) -> BTreeSet<String> {
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.join("package-lock.json")).unwrap()).unwrap();
    v["packages"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, e)| !k.is_empty() && e.get("link").is_none())
        .map(|(k, e)| {
            let name = e["name"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| k.rsplit("node_modules/").next().unwrap().to_string());
            format!("{name}@{}", e["version"].as_str().unwrap_or(""))
        })
        .collect()
}

fn npm(dir: &Path, args: &[&str], cache: &Path) -> std::process::Output {
    run_with_timeout(
        Command::new("npm")
            .args(args)
            .current_dir(dir)
            .env("npm_config_cache", cache)
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false")
            .env("npm_config_update_notifier", "false"),
        Duration::from_secs(600),
    )
}

/// `require` (or `import`, for ESM-only packages) every top-level dependency from the project.
fn load_every_dependency(ctx: &TestContext, pkg: &Value, name: &str) {
    let mut deps: Vec<String> = Vec::new();
    for section in ["dependencies", "devDependencies"] {
        if let Some(o) = pkg[section].as_object() {
            deps.extend(o.keys().filter(|k| !k.starts_with("@types/")).cloned());
        }
    }
    // ESM first, CommonJS second. vitest refuses to load outside its own runner: for it the
    // check is that it resolves.
    let script = format!(
        "import {{ createRequire }} from 'node:module';\n\
         const require = createRequire(import.meta.url + '/../package.json');\n\
         const deps = {};\n\
         for (const d of deps) {{\n\
           try {{ await import(d); }} catch (e) {{\n\
             try {{ require(d); }} catch (e2) {{\n\
               if (d === 'vitest') {{ import.meta.resolve(d); continue; }}\n\
               console.error(d + ': ' + e.message + ' / ' + e2.message); process.exit(1);\n\
             }}\n\
           }}\n\
         }}\n\
         console.log('loaded ' + deps.length);\n",
        serde_json::to_string(&deps).unwrap()
    );
    std::fs::write(ctx.project.join("load-all.mjs"), script).unwrap();
    let out = run_with_timeout(
        Command::new("node")
            .arg("load-all.mjs")
            .current_dir(&ctx.project),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{name}: loading the dependencies failed: {}",
        stderr(&out)
    );
}

/// `npm ls --all` finds nothing missing, invalid or extraneous in the project's node_modules.
/// One exception, in the linked layouts only: npm marks a package's *optional* peer linked beside
/// it in a store as extraneous (its own `install-strategy=linked` does the same, since such a
/// link is reached only by an optional peer edge). Each such mark is checked to be exactly that.
fn npm_ls_is_clean(ctx: &TestContext, cache: &Path, name: &str, layout: &str) {
    let ls = npm(&ctx.project, &["ls", "--all"], cache);
    let text = String::from_utf8_lossy(&ls.stdout).to_string() + &stderr(&ls);
    // Optional dependencies for other platforms (fsevents) show as UNMET OPTIONAL, as with npm.
    let linked = layout != "hoisted";
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| {
            ["missing", "invalid", "extraneous", "UNMET DEPENDENCY"]
                .iter()
                .any(|b| l.contains(b))
        })
        .filter(|l| !(linked && l.contains(" extraneous -> ")))
        .collect();
    assert!(
        ls.status.success() && problems.is_empty(),
        "{name} ({layout}): npm ls reports problems:\n{}",
        problems.join("\n")
    );
    if linked {
        let json = npm(&ctx.project, &["ls", "--all", "--json", "--long"], cache);
        let tree: Value = serde_json::from_slice(&json.stdout).expect("npm ls --json");
        let mut not_optional_peers = Vec::new();
        let mut marked = 0;
        let mut todo = vec![&tree];
        while let Some(parent) = todo.pop() {
            let Some(deps) = parent["dependencies"].as_object() else {
                continue;
            };
            for (dep, child) in deps {
                if child["extraneous"] == true {
                    marked += 1;
                    if parent["peerDependenciesMeta"][dep]["optional"] != true {
                        not_optional_peers.push(format!("{dep} under {}", parent["name"]));
                    }
                }
                todo.push(child);
            }
        }
        assert!(
            not_optional_peers.is_empty(),
            "{name} ({layout}): extraneous, and not an optional peer: {not_optional_peers:?}"
        );
        eprintln!("{name} ({layout}): npm ls clean but for {marked} optional-peer links");
    }
}

fn check_project_with(name: &str, pkg: Value, command: &[&str], extra: impl Fn(&TestContext)) {
    let ctx = TestContext::new();
    let npm_dir = ctx.root.path().join("npm");
    let cache = ctx.root.path().join("npm-cache");
    write_json(&npm_dir.join("package.json"), &pkg);
    ctx.write_project(&pkg);
    let out = npm(
        &npm_dir,
        &["install", "--ignore-scripts", "--no-audit", "--no-fund"],
        &cache,
    );
    assert!(out.status.success(), "npm install {name}: {}", stderr(&out));
    let out = ctx.run(&["install"]);
    assert!(
        out.status.success(),
        "hoard install {name}: {}",
        stderr(&out)
    );
    let theirs = lock_set(&npm_dir);
    let ours = lock_set(&ctx.project);
    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(&ours).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "{name}: {} packages (npm {}); only hoard: {only_ours:?}; only npm: {only_theirs:?}",
        ours.len(),
        theirs.len()
    );
    assert!(
        ours.len() >= 250,
        "{name}: expected a real project, got {} packages",
        ours.len()
    );
    // The same node_modules paths, versions and flags as npm's own lockfile.
    let read = |d: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(d.join("package-lock.json")).unwrap()).unwrap()
    };
    let placement = crate::corpus::diff(&read(&npm_dir), &read(&ctx.project));
    assert!(
        placement.is_empty(),
        "{name}: node_modules differs from npm's:\n{}",
        placement.join("\n")
    );
    eprintln!("{name}: {} packages, placed as npm places them", ours.len());
    npm_ls_is_clean(&ctx, &cache, name, "hoisted");
    // Every top-level dependency loads and the project's own command runs from
    // node_modules/.bin, in the isolated, the global and the hoisted layout.
    for layout in ["isolated", "global", "hoisted"] {
        let out = ctx.run(&["install", "--layout", layout]);
        assert!(
            out.status.success(),
            "hoard install --layout {layout} {name}: {}",
            stderr(&out)
        );
        if layout == "global" {
            npm_ls_is_clean(&ctx, &cache, name, layout);
        }
        load_every_dependency(&ctx, &pkg, name);
        let out = run_with_timeout(
            ctx.hoard().args(["exec"]).args(command),
            Duration::from_secs(300),
        );
        assert!(
            out.status.success(),
            "{name} ({layout}): {command:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        extra(&ctx);
    }
    // npm ci accepts the lock hoard wrote.
    std::fs::remove_dir_all(ctx.project.join("node_modules")).unwrap();
    let out = npm(
        &ctx.project,
        &["ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        &cache,
    );
    assert!(
        out.status.success(),
        "{name}: npm ci rejected hoard's lockfile: {}",
        stderr(&out)
    );
}

#[test]
#[ignore = "needs the npm registry: cargo test --test it network -- --ignored"]
fn react_vite_project_matches_npm() {
    check_project_with(
        "react-vite",
        json!({"name": "react-vite", "version": "1.0.0", "private": true, "type": "module",
               "scripts": {"build": "vite build"},
               "allowScripts": {"esbuild": true},
               "dependencies": {"react": "^18.3.1", "react-dom": "^18.3.1", "react-router-dom": "^6.26.0"},
               "devDependencies": {"vite": "^5.4.0", "@vitejs/plugin-react": "^4.3.1", "typescript": "~5.5.4",
                                   "eslint": "^8.57.0", "@types/react": "^18.3.3", "@types/react-dom": "^18.3.0",
                                   "eslint-plugin-react": "^7.35.0", "vitest": "^2.0.5",
                                   // Pinned: the registry mirror here lags on the newest rollup's
                                   // platform packages, which breaks npm's own lockfile too.
                                   "rollup": "~4.24.0"}}),
        &["tsc", "--version"],
        |ctx| {
            // esbuild's platform binary came through optionalDependencies; its allowed
            // postinstall ran; `vite build` bundles a React page.
            let out = ctx.run(&["exec", "esbuild", "--version"]);
            assert!(out.status.success(), "esbuild: {}", stderr(&out));
            std::fs::write(ctx.project.join("index.html"), "<!doctype html><div id=root></div><script type=module src=/src/main.jsx></script>\n").unwrap();
            std::fs::create_dir_all(ctx.project.join("src")).unwrap();
            std::fs::write(ctx.project.join("src/main.jsx"), "import React from 'react';\nimport { createRoot } from 'react-dom/client';\ncreateRoot(document.getElementById('root')).render(<h1>hoard</h1>);\n").unwrap();
            std::fs::write(ctx.project.join("vite.config.js"), "import react from '@vitejs/plugin-react';\nexport default { plugins: [react()] };\n").unwrap();
            let out = ctx.run(&["run", "build"]);
            assert!(
                out.status.success(),
                "vite build: {}{}",
                String::from_utf8_lossy(&out.stdout),
                stderr(&out)
            );
            assert!(ctx.project.join("dist/index.html").exists());
        },
    );
}

#[test]
#[ignore = "needs the npm registry: cargo test --test it network -- --ignored"]
fn express_api_matches_npm() {
    check_project_with(
        "express-api",
        json!({"name": "express-api", "version": "1.0.0", "private": true,
               "dependencies": {"express": "^4.19.2", "mongoose": "^8.5.0", "jsonwebtoken": "^9.0.2", "cors": "^2.8.5",
                                "helmet": "^7.1.0", "morgan": "^1.10.0", "dotenv": "^16.4.5", "winston": "^3.13.0", "joi": "^17.13.0"},
               "devDependencies": {"nodemon": "^3.1.4", "supertest": "^7.0.0", "mocha": "^10.7.0", "chai": "^4.4.1", "eslint": "^8.57.0"}}),
        &["mocha", "--version"],
        |ctx| {
            // The project's own test command: mocha + supertest against an express app.
            std::fs::create_dir_all(ctx.project.join("test")).unwrap();
            std::fs::write(
                ctx.project.join("test/app.test.js"),
                "const express = require('express');\nconst request = require('supertest');\n\
                 const { expect } = require('chai');\n\
                 describe('api', () => { it('answers', async () => {\n\
                   const app = express(); app.get('/x', (q, r) => r.json({ ok: true }));\n\
                   const res = await request(app).get('/x'); expect(res.body.ok).to.equal(true);\n\
                 }); });\n",
            )
            .unwrap();
            let out = ctx.run(&["exec", "mocha"]);
            assert!(
                out.status.success(),
                "mocha: {}{}",
                String::from_utf8_lossy(&out.stdout),
                stderr(&out)
            );
        },
    );
}

#[test]
#[ignore = "needs the npm registry: cargo test --test it network -- --ignored"]
fn jest_babel_webpack_matches_npm() {
    check_project_with(
        "jest-babel-webpack",
        json!({"name": "jbw", "version": "1.0.0", "private": true,
               "dependencies": {"lodash": "^4.17.21"},
               "devDependencies": {"jest": "^29.7.0", "babel-jest": "^29.7.0", "@babel/core": "^7.25.0", "@babel/preset-env": "^7.25.0",
                                   "webpack": "^5.93.0", "webpack-cli": "^5.1.4", "babel-loader": "^9.1.3"}}),
        &["jest", "--version"],
        |ctx| {
            // The project's own test and build commands: jest through babel-jest, and webpack.
            std::fs::write(ctx.project.join("babel.config.js"), "module.exports = { presets: [['@babel/preset-env', { targets: { node: 'current' } }]] };\n").unwrap();
            std::fs::write(
                ctx.project.join("sum.js"),
                "import _ from 'lodash';\nexport const sum = (a, b) => _.add(a, b);\n",
            )
            .unwrap();
            std::fs::write(
                ctx.project.join("sum.test.js"),
                "import { sum } from './sum';\ntest('adds', () => expect(sum(1, 2)).toBe(3));\n",
            )
            .unwrap();
            let out = ctx.run(&["exec", "jest"]);
            assert!(
                out.status.success(),
                "jest: {}{}",
                String::from_utf8_lossy(&out.stdout),
                stderr(&out)
            );
            let out = ctx.run(&[
                "exec",
                "webpack",
                "--mode",
                "production",
                "--entry",
                "./sum.js",
                "-o",
                "dist",
            ]);
            assert!(
                out.status.success(),
                "webpack: {}{}",
                String::from_utf8_lossy(&out.stdout),
                stderr(&out)
            );
            assert!(ctx.project.join("dist/main.js").exists());
        },
    );
}

/// The corpus (tests/corpus) against the live registry: npm and hoard each write a lockfile for
/// every project (`--package-lock-only`) at the same moment, and every node_modules path must
/// carry the same name@version and flags. Drift in the registry shows up here as a diff, not as a
/// user's broken build. HOARD_CORPUS=a,b limits it to some projects.
#[test]
#[ignore = "needs the npm registry: cargo test --test it network -- --ignored"]
fn corpus_matches_npm_on_the_live_registry() {
    use crate::corpus::{copy_dir, corpus_dir, diff};
    let ctx = TestContext::new();
    let cache = ctx.home.join("npm-cache");
    let only: Option<Vec<String>> = std::env::var("HOARD_CORPUS")
        .ok()
        .map(|v| v.split(',').map(String::from).collect());
    let mut dirs: Vec<_> = std::fs::read_dir(corpus_dir().join("projects"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            only.as_ref()
                .is_none_or(|o| o.iter().any(|n| p.ends_with(n)))
        })
        .collect();
    dirs.sort();
    let mut failures = Vec::new();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let (a, b) = (
            ctx.home.join("npm").join(&name),
            ctx.home.join("hoard").join(&name),
        );
        copy_dir(&dir, &a);
        copy_dir(&dir, &b);
        let by_npm = npm(
            &a,
            &["install", "--package-lock-only", "--ignore-scripts"],
            &cache,
        );
        let by_hoard = ctx
            .hoard()
            .args(["-C", b.to_str().unwrap(), "install", "--package-lock-only"])
            .output()
            .unwrap();
        match (by_npm.status.success(), by_hoard.status.success()) {
            (true, true) => {
                let read = |d: &Path| -> Value {
                    serde_json::from_slice(&std::fs::read(d.join("package-lock.json")).unwrap())
                        .unwrap()
                };
                let d = diff(&read(&a), &read(&b));
                eprintln!("{name}: {} paths differ", d.len());
                failures.extend(d.into_iter().map(|l| format!("{name}: {l}")));
            }
            (false, false) => eprintln!("{name}: both refuse"),
            (n, h) => failures.push(format!(
                "{name}: npm {} / hoard {}\n{}{}",
                if n { "installs" } else { "refuses" },
                if h { "installs" } else { "refuses" },
                String::from_utf8_lossy(&by_npm.stderr),
                stderr(&by_hoard)
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
