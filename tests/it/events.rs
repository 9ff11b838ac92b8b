//! The `--json` lines are a contract (proto/events.schema.json, version 1): every line the
//! install family prints, in success, warnings, no-ops, fetches and failures, must validate, and
//! each kind of line must have been seen. A field added to the output without the schema fails
//! here (the schema allows no unknown fields).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::context::*;
use crate::registry::*;

fn validator() -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/events.schema.json");
    let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(schema["x-version"], "1");
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

/// Validate every stdout line of `hoard --json <args>`; the `type`s seen.
fn check(v: &jsonschema::Validator, ctx: &TestContext, args: &[&str]) -> BTreeSet<String> {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let out = ctx.run(&full);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("hoard {args:?}: not JSON ({e}): {line}"));
        let errors: Vec<String> = v.iter_errors(&value).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "hoard {args:?}: {line}\n  {}",
            errors.join("\n  ")
        );
        seen.insert(value["type"].as_str().unwrap_or("").to_string());
    }
    seen
}

#[test]
fn every_json_line_of_the_install_family_follows_the_schema() {
    let v = validator();
    let reg = Registry::start();
    reg.publish(Pkg::new("a", "1.0.0"));
    reg.publish(Pkg::new("a", "1.1.0"));
    reg.publish(Pkg::new("built", "1.0.0").script("postinstall", "echo built"));
    let mut old = Pkg::new("old", "1.0.0");
    old.deprecated = Some("use new".into());
    reg.publish(old);
    reg.publish(Pkg::new("plugin", "1.0.0").peer("host", "^1"));
    reg.publish(Pkg::new("host", "1.0.0"));
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(&json!({"name": "app", "version": "1.0.0",
        "dependencies": {"a": "1.0.0", "built": "1", "old": "1", "plugin": "1", "host": "1"},
        "scripts": {"postinstall": "echo root"}}));
    let mut seen = BTreeSet::new();
    for args in [
        &["install"][..],
        &["install"],
        &["add", "a@^1.1.0"],
        &["update", "a"],
        &["remove", "old"],
        &["ci"],
        &["fetch"],
        &["install", "--package-lock-only"],
        &["add", "no-such-package"],
    ] {
        seen.extend(check(&v, &ctx, args));
    }
    for kind in ["progress", "warning", "summary", "error"] {
        assert!(seen.contains(kind), "no `{kind}` line was seen: {seen:?}");
    }
}
