//! `hoard query` (issue #22, part 4): npm's dependency selectors answered by the daemon, checked
//! against `npm query` itself on the same hoard-installed tree (when npm is on PATH), and the
//! Tree and Why RPCs a tool reads the same tree through.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::context::*;
use crate::registry::*;

/// A project with prod, dev, optional, peer and optional-peer edges, a nested copy, an alias,
/// a workspace, and then (by hand) a missing, an invalid and an extraneous package.
fn project() -> (Registry, TestContext) {
    project_with(&[])
}

fn project_with(install_args: &[&str]) -> (Registry, TestContext) {
    let reg = Registry::start();
    let lic = |p: Pkg, l: &str| p.meta("license", json!(l));
    reg.publish(lic(Pkg::new("ms", "2.1.3"), "MIT").meta("keywords", json!(["time", "ms"])));
    reg.publish(lic(Pkg::new("ms", "1.0.0"), "MIT"));
    reg.publish(
        lic(Pkg::new("debug", "4.3.4"), "MIT")
            .dep("ms", "^2.1.1")
            .meta("engines", json!({"node": ">=6.0"})),
    );
    reg.publish(
        lic(Pkg::new("old-debug", "1.0.0"), "BSD-3-Clause")
            .dep("ms", "^1.0.0")
            .meta("description", json!("an older parser of things")),
    );
    reg.publish(lic(Pkg::new("react", "18.2.0"), "MIT").dep("loose-envify", "^1.1.0"));
    reg.publish(lic(Pkg::new("loose-envify", "1.4.0"), "MIT").dep("js-tokens", "^4.0.0"));
    reg.publish(lic(Pkg::new("js-tokens", "4.0.0"), "MIT"));
    reg.publish(
        lic(Pkg::new("react-dom", "18.2.0"), "MIT")
            .dep("loose-envify", "^1.1.0")
            .peer("react", "^18.2.0"),
    );
    reg.publish(
        lic(Pkg::new("plugin", "1.0.0"), "ISC")
            .peer("react", "^18.0.0")
            .peer("typescript", ">=4")
            .meta(
                "peerDependenciesMeta",
                json!({"typescript": {"optional": true}}),
            )
            .script("test", "tap")
            .meta("engines", json!({"node": ">=14"})),
    );
    reg.publish(lic(Pkg::new("typescript", "5.0.0"), "Apache-2.0"));
    reg.publish(
        lic(Pkg::new("left-pad", "1.3.0"), "WTFPL").meta("deprecated", json!("use padStart")),
    );
    reg.publish(lic(Pkg::new("opt", "1.0.0"), "MIT").dep("js-tokens", "4"));
    reg.publish(
        lic(Pkg::new("jest-ish", "1.0.0"), "MIT")
            .dep("debug", "^4.0.0")
            .dep("chalk", "^4"),
    );
    reg.publish(lic(Pkg::new("chalk", "4.1.2"), "MIT"));
    let ctx = TestContext::new().with_registry(&reg.url);
    std::fs::create_dir_all(ctx.project.join("packages/w")).unwrap();
    write_json(
        &ctx.project.join("packages/w/package.json"),
        &json!({"name": "w", "version": "0.1.0", "dependencies": {"left-pad": "^1.0.0"},
                "devDependencies": {"ms": "^2.0.0"}}),
    );
    ctx.write_project(&json!({
        "name": "app", "version": "1.0.0", "private": true, "license": "MIT",
        "workspaces": ["packages/*"],
        "dependencies": {"debug": "^4.3.0", "old-debug": "1.0.0", "react": "^18.2.0",
                         "react-dom": "^18.2.0", "tok": "npm:js-tokens@^4.0.0", "w": "*"},
        "devDependencies": {"plugin": "^1.0.0", "jest-ish": "^1.0.0"},
        "optionalDependencies": {"opt": "^1.0.0"}
    }));
    let mut args = vec!["install"];
    args.extend(install_args);
    ctx.ok(&args);
    (reg, ctx)
}

/// `npm query <selector>` in `dir`, offline: None when npm is not on PATH.
fn npm_query(dir: &Path, selector: &str) -> Option<Vec<Value>> {
    npm_query_with(dir, selector, &[])
}

fn npm_query_with(dir: &Path, selector: &str, flags: &[&str]) -> Option<Vec<Value>> {
    if !which("npm") {
        return None;
    }
    let out = Command::new("npm")
        .arg("query")
        .args(flags)
        .arg(selector)
        .current_dir(dir)
        .env("npm_config_update_notifier", "false")
        .env("npm_config_offline", "true")
        .env("npm_config_userconfig", dir.join(".npmrc-none"))
        .env("npm_config_cache", dir.join(".npm-cache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "npm query {selector}: {}",
        stderr(&out)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn hoard_query(ctx: &TestContext, selector: &str) -> Vec<Value> {
    hoard_query_with(ctx, selector, &[])
}

fn hoard_query_with(ctx: &TestContext, selector: &str, flags: &[&str]) -> Vec<Value> {
    let mut args = vec!["query"];
    args.extend(flags);
    args.push(selector);
    let out = ctx.run(&args);
    assert!(
        out.status.success(),
        "hoard query {selector}: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `location|pkgid` of each item, in order.
fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| format!("{}|{}", i["location"].as_str().unwrap_or("-"), i["pkgid"]))
        .collect()
}

/// An item with its `from` list sorted (npm's order there follows its loader's timing), and
/// without `resolved` (npm reads it from its own hidden lockfile, which a hoard install does not
/// write; hoard lends it from its lockfile).
fn stable(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("resolved");
    }
    if let Some(Value::Array(from)) = v.get_mut("from") {
        from.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    }
    v
}

const SELECTORS: &[&str] = &[
    "*",
    ":root > *",
    ":root > .dev",
    ".prod",
    ".dev",
    ".optional",
    ".peer",
    ".workspace",
    ".workspace > *",
    "#ms",
    "#tok",
    "#react ~ *",
    "#react-dom > *",
    ":root .peer",
    "[name^=js]",
    "[license=mit i]",
    "[license|=BSD]",
    "[keywords~=time]",
    "[description*=parser]",
    ":attr(engines, [node])",
    ":attr(scripts, [test=tap])",
    ":has(> #js-tokens)",
    ":has(.peer)",
    ":is(#react, #debug) > *",
    ":not(.dev)",
    ":not(:root)",
    ":is(:root)",
    ":empty",
    ":link",
    ":private",
    ":deduped",
    ":missing",
    ":invalid",
    ":extraneous",
    ":semver(^2.0.0)",
    ":semver(1.0.0, [version], gtr)",
    ":semver(>=4, :attr(engines, [node]))",
    ":type(alias)",
    ":type(directory)",
    ":type(registry)",
    ":path(node_modules/*)",
    ".dev:not(.peer)",
    ":missing, #left-pad",
];

#[test]
fn query_answers_what_npm_query_answers_on_the_same_tree() {
    let (_reg, ctx) = project();
    let nm = ctx.project.join("node_modules");
    // Missing (chalk, which jest-ish needs), invalid (js-tokens claims 3.0.0), extraneous.
    std::fs::remove_dir_all(nm.join("chalk")).unwrap();
    let tokens = nm.join("js-tokens/package.json");
    let mut t: Value = serde_json::from_slice(&std::fs::read(&tokens).unwrap()).unwrap();
    t["version"] = json!("3.0.0");
    std::fs::write(&tokens, t.to_string()).unwrap();
    std::fs::create_dir_all(nm.join("stray")).unwrap();
    std::fs::write(
        nm.join("stray/package.json"),
        r#"{"name":"stray","version":"9.9.9","dependencies":{"gone":"^1"}}"#,
    )
    .unwrap();

    // What the tree must give, whatever npm says (so the test means something without npm).
    let h = |s: &str| ids(&hoard_query(&ctx, s));
    // npm's `.dev` is any node with a dev edge, or a dev-flagged dependent, anywhere above it:
    // debug (needed by the dev jest-ish) and react (a peer of the dev plugin) count.
    assert_eq!(
        h(":root > .dev"),
        [
            "node_modules/debug|\"debug@4.3.4\"",
            "node_modules/jest-ish|\"jest-ish@1.0.0\"",
            "node_modules/plugin|\"plugin@1.0.0\"",
            "node_modules/react|\"react@18.2.0\""
        ]
    );
    assert_eq!(h("#tok"), ["node_modules/tok|\"tok@npm:js-tokens@3.0.0\""]);
    assert!(
        h(":invalid")
            .iter()
            .any(|i| i.starts_with("node_modules/js-tokens|"))
    );
    let missing: BTreeSet<String> = hoard_query(&ctx, ":missing")
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        missing,
        BTreeSet::from(["chalk".to_string(), "gone".to_string()])
    );
    assert_eq!(h(":extraneous"), ["node_modules/stray|\"stray@9.9.9\""]);
    assert!(h("#ms").len() >= 2, "ms is installed twice: {:?}", h("#ms"));

    let Some(_) = npm_query(&ctx.project, "#ms") else {
        skip(
            "query_answers_what_npm_query_answers_on_the_same_tree",
            "npm is not on PATH, so hoard query was checked on its own only",
        );
        return;
    };
    let mut differ = vec![];
    for s in SELECTORS {
        let npm = npm_query(&ctx.project, s).unwrap();
        let ours = hoard_query(&ctx, s);
        if ids(&npm) != ids(&ours) {
            differ.push(format!(
                "{s}:\n  npm:   {:?}\n  hoard: {:?}",
                ids(&npm),
                ids(&ours)
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    // Whole items, as npm prints them (from-lists compared as sets).
    for s in ["*", ":missing"] {
        let npm: Vec<Value> = npm_query(&ctx.project, s)
            .unwrap()
            .into_iter()
            .map(stable)
            .collect();
        let ours: Vec<Value> = hoard_query(&ctx, s).into_iter().map(stable).collect();
        for (a, b) in npm.iter().zip(&ours) {
            assert_eq!(a, b, "{s}");
        }
    }
}

/// Layouts whose node_modules is not npm's shape are answered from package-lock.json's tree
/// with each package.json read where it is: the same answers npm gives for the same project
/// installed hoisted. `--package-lock-only` answers from the lock entries, as npm does.
#[test]
fn other_layouts_and_package_lock_only_answer_from_the_lockfile_tree() {
    let (_reg, isolated) = project_with(&["--layout", "isolated"]);
    let (_reg2, hoisted) = project();
    let test = "other_layouts_and_package_lock_only_answer_from_the_lockfile_tree";
    // Without npm: the isolated tree answers as the hoisted one does.
    let same = [
        ":root > *",
        "#ms",
        "[keywords~=time]",
        ":attr(scripts, [test=tap])",
        ".peer",
    ];
    for s in same {
        assert_eq!(
            ids(&hoard_query(&isolated, s)),
            ids(&hoard_query(&hoisted, s)),
            "{s}"
        );
    }
    if npm_query(&isolated.project, "*").is_none() {
        return skip(
            test,
            "npm is not on PATH, so hoard query was checked on its own only",
        );
    }
    let mut differ = vec![];
    for s in SELECTORS.iter().filter(|s| !s.contains(":path")) {
        let npm = npm_query(&hoisted.project, s).unwrap();
        let ours = hoard_query(&isolated, s);
        if ids(&npm) != ids(&ours) {
            differ.push(format!(
                "isolated {s}:\n  npm:   {:?}\n  hoard: {:?}",
                ids(&npm),
                ids(&ours)
            ));
        }
        let npm = npm_query_with(&hoisted.project, s, &["--package-lock-only"]).unwrap();
        let ours = hoard_query_with(&hoisted, s, &["--package-lock-only"]);
        if ids(&npm) != ids(&ours) {
            differ.push(format!(
                "lock-only {s}:\n  npm:   {:?}\n  hoard: {:?}",
                ids(&npm),
                ids(&ours)
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

#[test]
fn a_bad_selector_is_refused_with_npms_reason() {
    let reg = Registry::start();
    reg.publish(Pkg::new("ms", "2.1.3"));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0", "dependencies": {"ms": "^2"}}));
    ctx.ok(&["install"]);
    for (selector, words) in [
        (":nope", "`:nope` is not a supported pseudo selector"),
        (".devv", "`.devv` is not a supported dependency type"),
        ("ms", "`ms` is not a supported selector"),
        ("[name", "not closed"),
        (
            ":semver(not-a-range!)",
            "not a valid semver version or range",
        ),
    ] {
        let out = ctx.run(&["query", selector]);
        assert!(!out.status.success(), "{selector}");
        let err = stderr(&out);
        assert!(err.contains(words), "{selector}: {err}");
        assert!(err.contains(selector), "names the selector: {err}");
    }
    assert_eq!(ids(&hoard_query(&ctx, "#nothing")), Vec::<String>::new());
    assert!(
        !ctx.run(&["query", "#nothing", "--expect-results"])
            .status
            .success()
    );
}

#[test]
fn tree_and_why_rpcs_describe_the_installed_tree() {
    let (_reg, ctx) = project();
    let sock = ctx.socket();
    let dir = ctx.project.canonicalize().unwrap().display().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tree, shallow, why, missing) = rt.block_on(async {
        let ch = hoard_proto::uds_channel(&sock, Duration::from_secs(5))
            .await
            .unwrap();
        let mut c = hoard_proto::v1::hoard_client::HoardClient::new(ch);
        let tree = c
            .tree(hoard_proto::v1::TreeRequest {
                project_dir: dir.clone(),
                depth: None,
            })
            .await
            .unwrap()
            .into_inner();
        let shallow = c
            .tree(hoard_proto::v1::TreeRequest {
                project_dir: dir.clone(),
                depth: Some(1),
            })
            .await
            .unwrap()
            .into_inner();
        let why = c
            .why(hoard_proto::v1::WhyRequest {
                project_dir: dir.clone(),
                package: "js-tokens".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let missing = c
            .why(hoard_proto::v1::WhyRequest {
                project_dir: dir.clone(),
                package: "not-installed".into(),
            })
            .await
            .unwrap_err();
        (tree, shallow, why, missing)
    });
    let node = |loc: &str| tree.nodes.iter().find(|n| n.location == loc).unwrap();
    assert_eq!(tree.nodes[0].location, "");
    let debug_ms = node("node_modules/old-debug/node_modules/ms");
    assert_eq!((debug_ms.version.as_str(), debug_ms.depth), ("1.0.0", 2));
    assert!(node("node_modules/plugin").dev);
    assert!(node("node_modules/opt").optional);
    assert_eq!(
        node("node_modules/w").link_target.as_deref(),
        Some("packages/w")
    );
    let plugin = node("node_modules/plugin");
    let ts = plugin
        .edges
        .iter()
        .find(|e| e.name == "typescript")
        .unwrap();
    assert_eq!(
        (ts.r#type.as_str(), ts.to.as_deref(), ts.missing),
        ("peerOptional", None, false)
    );
    assert!(shallow.nodes.iter().all(|n| n.depth <= 1));
    assert!(shallow.nodes.len() < tree.nodes.len());
    // js-tokens: through `tok` (an alias edge from the root) and through loose-envify.
    let t = &why.targets[0];
    assert_eq!(t.location, "node_modules/js-tokens");
    let firsts: BTreeSet<(String, String)> = t
        .chains
        .iter()
        .map(|c| (c.steps[0].from_location.clone(), c.steps[0].r#type.clone()))
        .collect();
    assert!(
        firsts.contains(&("node_modules/loose-envify".into(), "prod".into())),
        "{firsts:?}"
    );
    let via_envify = t
        .chains
        .iter()
        .find(|c| c.steps[0].from_location == "node_modules/loose-envify")
        .unwrap();
    assert_eq!(via_envify.steps.last().unwrap().from_location, "");
    assert_eq!(missing.code(), tonic::Code::NotFound);
}
