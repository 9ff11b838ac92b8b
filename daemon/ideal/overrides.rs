//! npm's `overrides` as arborist's OverrideSet reads them: a tree of rules (`"foo"`,
//! `"foo@^2"`, nested objects with `"."` for the rule's own value, `$name` references to the
//! root's own dependency specs). Each tree node carries the rule set it was placed under; an edge
//! takes the nearest rule for its name whose key range intersects the edge's range.
//!
//! Must not: know about placement; it only answers "which rule applies here" and "what spec".

use serde_json::Value;

use crate::semver_npm::Range;
use crate::spec::Spec;

pub type RuleId = usize;

#[derive(Debug, Clone)]
pub struct Rule {
    pub parent: Option<RuleId>,
    /// The package name the rule is about (empty for the root set).
    pub name: String,
    /// The key as written (`foo@^2`), unique among siblings.
    pub key: String,
    /// The range part of the key (`*` when the key is a bare name).
    pub key_spec: String,
    /// The replacement spec (`.` of a nested object, else the key's own range).
    pub value: String,
    pub children: Vec<RuleId>,
}

#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub rules: Vec<Rule>,
}

/// Split an override key `name@range` (scoped names keep their leading `@`).
fn split_key(key: &str) -> (String, String) {
    let at = if let Some(rest) = key.strip_prefix('@') {
        rest.find('@').map(|i| i + 1)
    } else {
        key.find('@')
    };
    match at {
        Some(i) => {
            let spec = &key[i + 1..];
            (
                key[..i].to_string(),
                if spec.is_empty() { "*" } else { spec }.to_string(),
            )
        }
        None => (key.to_string(), "*".to_string()),
    }
}

impl Overrides {
    /// Build the rule tree from the root package.json's `overrides`, resolving `$name`
    /// references against the root's own dependencies. `None` when there are no overrides.
    pub fn from_root(pkg: &Value) -> Option<Overrides> {
        let o = pkg.get("overrides")?.as_object()?;
        if o.is_empty() {
            return None;
        }
        let mut set = Overrides::default();
        set.rules.push(Rule {
            parent: None,
            name: String::new(),
            key: String::new(),
            key_spec: String::new(),
            value: String::new(),
            children: vec![],
        });
        set.add_children(0, o, pkg);
        Some(set)
    }

    fn add_children(&mut self, parent: RuleId, o: &serde_json::Map<String, Value>, pkg: &Value) {
        for (key, v) in o {
            if key == "." {
                continue;
            }
            let (name, key_spec) = split_key(key);
            let own = match v {
                Value::String(s) => Some(s.clone()),
                Value::Object(m) => m.get(".").and_then(|x| x.as_str()).map(String::from),
                _ => None,
            };
            let value = match own.as_deref() {
                Some("") => "*".to_string(),
                Some(s) if s.starts_with('$') => reference(pkg, &s[1..]).unwrap_or(s.to_string()),
                Some(s) => s.to_string(),
                None => key_spec.clone(),
            };
            let id = self.rules.len();
            self.rules.push(Rule {
                parent: Some(parent),
                name,
                key: key.clone(),
                key_spec,
                value,
                children: vec![],
            });
            self.rules[parent].children.push(id);
            if let Value::Object(m) = v {
                self.add_children(id, m, pkg);
            }
        }
    }

    /// Rules visible from `set`: its children, then itself, then each ancestor's children and
    /// the ancestor itself, the nearest first (arborist's `ruleset`).
    fn ruleset(&self, set: RuleId) -> Vec<RuleId> {
        let mut out: Vec<RuleId> = Vec::new();
        let mut cur = Some(set);
        while let Some(s) = cur {
            for &k in &self.rules[s].children {
                if !out.iter().any(|&o| self.rules[o].key == self.rules[k].key) {
                    out.push(k);
                }
            }
            if self.rules[s].parent.is_some()
                && !out.iter().any(|&o| self.rules[o].key == self.rules[s].key)
            {
                out.push(s);
            }
            cur = self.rules[s].parent;
        }
        out
    }

    /// The rule an edge `name@spec` from a node under `set` falls under (or `set` itself).
    pub fn edge_rule(&self, set: RuleId, name: &str, spec: &str) -> RuleId {
        for r in self.ruleset(set) {
            let rule = &self.rules[r];
            if rule.name != name {
                continue;
            }
            if rule.key_spec == "*" {
                return r;
            }
            let inner = match Spec::parse(name, spec) {
                Ok(Spec::Alias { spec, .. }) => *spec,
                Ok(s) => s,
                Err(_) => return r,
            };
            match inner {
                Spec::Range(range) => {
                    if let (Some(a), Some(b)) = (Range::parse(&range), Range::parse(&rule.key_spec))
                        && a.intersects(&b)
                    {
                        return r;
                    }
                }
                _ => return r,
            }
        }
        set
    }

    /// The spec an edge named `name` really asks for under rule `rule`.
    pub fn spec_for<'a>(&'a self, rule: RuleId, name: &str, raw: &'a str) -> &'a str {
        let r = &self.rules[rule];
        if r.parent.is_some() && r.name == name && !r.value.is_empty() && r.value != "*" {
            &r.value
        } else {
            raw
        }
    }
}

/// `$name`: the root's own spec for `name` (dev, optional, prod, then peer, as arborist looks).
fn reference(pkg: &Value, name: &str) -> Option<String> {
    [
        "devDependencies",
        "optionalDependencies",
        "dependencies",
        "peerDependencies",
    ]
    .iter()
    .find_map(|s| pkg.get(s)?.get(name)?.as_str().map(String::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_rules_apply_below_their_parent_only() {
        let pkg = json!({
            "dependencies": {"debug": "^4"},
            "overrides": {"express": {"debug": "4.3.4"}, "semver": "7.5.4", "qs@^6": "$debug",
                          "foo": {".": "2.0.0", "bar": "1.0.0"}}
        });
        let o = Overrides::from_root(&pkg).unwrap();
        // From the root set: `semver` everywhere, `debug` untouched.
        let semver = o.edge_rule(0, "semver", "^6.0.0");
        assert_eq!(o.spec_for(semver, "semver", "^6.0.0"), "7.5.4");
        let debug = o.edge_rule(0, "debug", "^2.6.9");
        assert_eq!(o.spec_for(debug, "debug", "^2.6.9"), "^2.6.9");
        // Below express, debug is pinned.
        let express = o.edge_rule(0, "express", "^4.18.0");
        let d2 = o.edge_rule(express, "debug", "2.6.9");
        assert_eq!(o.spec_for(d2, "debug", "2.6.9"), "4.3.4");
        // A keyed range applies only where it intersects, and `$name` reads the root's spec.
        let qs = o.edge_rule(0, "qs", "^6.11.0");
        assert_eq!(o.spec_for(qs, "qs", "^6.11.0"), "^4");
        let qs5 = o.edge_rule(0, "qs", "^5.0.0");
        assert_eq!(o.spec_for(qs5, "qs", "^5.0.0"), "^5.0.0");
        // `.` is the rule's own value.
        let foo = o.edge_rule(0, "foo", "^1");
        assert_eq!(o.spec_for(foo, "foo", "^1"), "2.0.0");
    }
}
