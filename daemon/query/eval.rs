//! Evaluating a parsed selector against an actual tree, the way arborist's
//! `query-selector-all.js` does: each part of a selector filters the results so far (the whole
//! inventory right after a combinator), combinators relate the results on their two sides
//! through dependency edges (not folders), and `:is`/`:has`/`:not` evaluate their nested lists.
//! npm's quirks are kept where they change answers (`.dev` also matches anything with a dev
//! edge anywhere above it; `:root` inside `:is()`/`:not()` matches nothing).
//!
//! Must not: fetch (outdated versions and advisories come in as maps), or format output.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

use super::QueryError;
use super::actual::{EdgeType, Graph, Node};
use super::selector::{Lookup, Matcher, Part, Pseudo, Selector, SelectorList, VulnFilter};
use crate::semver_npm::{self, Range};

/// One advisory, as the bulk advisory endpoint describes it.
#[derive(Debug, Clone)]
pub struct Advisory {
    pub vulnerable_versions: String,
    pub severity: String,
    pub cwe: Vec<String>,
    pub raw: Value,
}

/// What the registry knows, fetched before evaluation for the names in the tree.
#[derive(Debug, Default)]
pub struct Known {
    /// Every published version of a name (for `:outdated`).
    pub versions: HashMap<String, Vec<String>>,
    /// Advisories by name (for `:vuln`).
    pub advisories: HashMap<String, Vec<Advisory>>,
}

pub struct Eval<'a> {
    pub g: &'a mut Graph,
    known: &'a Known,
    inventory: Vec<usize>,
    /// npm's `queryContext` of the items that carry one.
    pub context: HashMap<usize, Value>,
}

fn err(code: &'static str, message: String) -> QueryError {
    QueryError { code, message }
}

/// JavaScript truthiness of a JSON value.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn operator(op: &str, attr: &Value, value: &str, insensitive: bool) -> bool {
    let attr = match attr {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return false,
    };
    let attr = if insensitive {
        attr.to_lowercase()
    } else {
        attr
    };
    match op {
        "=" => attr == value,
        "~=" => attr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| w == value),
        "*=" => attr.contains(value),
        "|=" => attr.starts_with(&format!("{value}-")),
        "^=" => attr.starts_with(value),
        "$=" => attr.ends_with(value),
        _ => false,
    }
}

/// npm's attributeMatch: existence, or the operator against the value (any element of an
/// array).
pub fn attribute_match(m: &Matcher, obj: &Value) -> bool {
    let field = obj.get(&m.attribute);
    if m.operator.is_empty() {
        return truthy(field);
    }
    let value = if m.insensitive {
        m.value.to_lowercase()
    } else {
        m.value.clone()
    };
    let empty = Value::String(String::new());
    match field {
        Some(Value::Array(items)) => items.iter().any(|x| {
            let a = if truthy(Some(x)) { x } else { &empty };
            operator(&m.operator, a, &value, m.insensitive) && truthy(Some(x))
        }),
        other => {
            let a = other.filter(|v| truthy(Some(v))).unwrap_or(&empty);
            operator(&m.operator, a, &value, m.insensitive)
        }
    }
}

/// `obj[prop] || []`, flat-mapped as JavaScript's flatMap does (arrays spread one level).
fn step(objs: Vec<Value>, prop: &str) -> Vec<Value> {
    let mut out = vec![];
    for o in objs {
        let v = match &o {
            Value::Object(m) => m.get(prop).cloned(),
            Value::Array(a) => prop.parse::<usize>().ok().and_then(|i| a.get(i).cloned()),
            _ => None,
        };
        match v {
            Some(Value::Array(a)) => out.extend(a),
            Some(v) if truthy(Some(&v)) => out.push(v),
            _ => {}
        }
    }
    out
}

fn flatten(objs: Vec<Value>) -> Vec<Value> {
    objs.into_iter()
        .flat_map(|o| match o {
            Value::Array(a) => a,
            o => vec![o],
        })
        .collect()
}

impl<'a> Eval<'a> {
    pub fn new(g: &'a mut Graph, known: &'a Known) -> Eval<'a> {
        let inventory = g.inventory.clone();
        Eval {
            g,
            known,
            inventory,
            context: HashMap::new(),
        }
    }

    /// Every match of `list` from the root, in first-found order.
    pub fn all(&mut self, list: &SelectorList) -> Result<Vec<usize>, QueryError> {
        let inv = self.inventory.clone();
        self.list(list, &inv, Some(0))
    }

    fn list(
        &mut self,
        list: &SelectorList,
        initial: &[usize],
        scope: Option<usize>,
    ) -> Result<Vec<usize>, QueryError> {
        let mut seen = HashSet::new();
        let mut out = vec![];
        for (k, sel) in list.0.iter().enumerate() {
            let start = if k == 0 { initial.to_vec() } else { vec![] };
            for i in self.selector(sel, initial, start, scope)? {
                if seen.insert(i) {
                    out.push(i);
                }
            }
        }
        Ok(out)
    }

    fn selector(
        &mut self,
        sel: &Selector,
        initial: &[usize],
        mut current: Vec<usize>,
        scope: Option<usize>,
    ) -> Result<Vec<usize>, QueryError> {
        let mut pending: Option<char> = None;
        for (k, part) in sel.0.iter().enumerate() {
            if let Part::Combinator(c) = part {
                if !matches!(c, '>' | ' ' | '~') {
                    return Err(err(
                        "EQUERYNOSELECTOR",
                        format!("`{c}` is not a supported combinator (use `>`, `~` or a space)"),
                    ));
                }
                pending = Some(*c);
                continue;
            }
            let input = if k == 0 {
                initial.to_vec()
            } else if matches!(sel.0[k - 1], Part::Combinator(_)) {
                self.inventory.clone()
            } else {
                current.clone()
            };
            let next = self.part(part, input, scope)?;
            current = match pending.take() {
                Some(c) => self.combine(c, &current, next),
                None => next,
            };
        }
        Ok(current)
    }

    fn node(&self, i: usize) -> &Node {
        &self.g.nodes[i]
    }

    fn part(
        &mut self,
        part: &Part,
        input: Vec<usize>,
        scope: Option<usize>,
    ) -> Result<Vec<usize>, QueryError> {
        Ok(match part {
            Part::Universal => input,
            Part::Id(name) => input
                .into_iter()
                .filter(|&i| self.node(i).name == *name || self.node(i).package_name() == name)
                .collect(),
            Part::Class(c) => self.dep_type(c, input)?,
            Part::Attribute(m) => input
                .into_iter()
                .filter(|&i| attribute_match(m, &self.node(i).package))
                .collect(),
            Part::Tag(t) => {
                return Err(err(
                    "EQUERYNOSELECTOR",
                    format!("`{t}` is not a supported selector (a package name is written `#{t}`)"),
                ));
            }
            Part::Combinator(_) => input,
            Part::Pseudo(p) => self.pseudo(p, input, scope)?,
        })
    }

    fn dep_type(&self, class: &str, input: Vec<usize>) -> Result<Vec<usize>, QueryError> {
        let by_type = |t: EdgeType| -> Vec<usize> {
            input
                .iter()
                .copied()
                .filter(|&i| self.flag(i, t) || self.edge_is_type(i, t, &mut HashSet::new()))
                .collect()
        };
        Ok(match class {
            "prod" => input.into_iter().filter(|&i| !self.node(i).dev).collect(),
            "dev" => by_type(EdgeType::Dev),
            "optional" => by_type(EdgeType::Optional),
            "peer" => by_type(EdgeType::Peer),
            "workspace" => input
                .into_iter()
                .filter(|&i| self.node(i).is_workspace)
                .collect(),
            "bundled" => input.into_iter().filter(|&i| self.in_bundle(i)).collect(),
            _ => {
                return Err(err(
                    "EQUERYNODEPTYPE",
                    format!(
                        "`.{class}` is not a supported dependency type (use .prod, .dev, \
                         .optional, .peer, .workspace or .bundled)"
                    ),
                ));
            }
        })
    }

    fn flag(&self, i: usize, t: EdgeType) -> bool {
        let n = self.node(i);
        match t {
            EdgeType::Dev => n.dev,
            EdgeType::Optional => n.optional,
            EdgeType::Peer => n.peer,
            _ => false,
        }
    }

    /// npm's edgeIsType: an edge of that type into the node, or into anything above it, or a
    /// source flagged so.
    fn edge_is_type(&self, i: usize, t: EdgeType, seen: &mut HashSet<usize>) -> bool {
        for &e in &self.node(i).edges_in {
            if !seen.insert(e) {
                continue;
            }
            let edge = &self.g.edges[e];
            if edge.kind == t || self.flag(edge.from, t) || self.edge_is_type(edge.from, t, seen) {
                return true;
            }
        }
        false
    }

    /// arborist's getBundler: the package whose bundle ships this one, if any.
    fn bundler(&self, i: usize, path: &mut Vec<usize>) -> Option<usize> {
        if path.contains(&i) {
            return None;
        }
        path.push(i);
        let parent = self.node(i).parent?;
        if let Some(b) = self.bundler(parent, path) {
            return Some(b);
        }
        let bd = self.node(parent).package.get("bundleDependencies");
        if let Some(Value::Array(names)) = bd
            && names.iter().any(|n| n.as_str() == Some(&self.node(i).name))
        {
            return Some(parent);
        }
        for &e in &self.node(i).edges_in {
            let from = self.g.edges[e].from;
            if self.bundler(from, path) == Some(parent) {
                return Some(parent);
            }
        }
        None
    }

    fn combine(&self, c: char, prev: &[usize], next: Vec<usize>) -> Vec<usize> {
        match c {
            '>' => {
                let prev: Vec<usize> = prev.to_vec();
                next.into_iter()
                    .filter(|&n| self.has_parent(n, &prev))
                    .collect()
            }
            ' ' => next
                .into_iter()
                .filter(|&n| self.has_ascendant(n, prev, &mut HashSet::new()))
                .collect(),
            _ => {
                let mut parents = vec![];
                for &p in prev {
                    for &e in &self.node(p).edges_in {
                        parents.push(self.g.edges[e].from);
                    }
                }
                let prev: HashSet<usize> = prev.iter().copied().collect();
                next.into_iter()
                    .filter(|n| !prev.contains(n) && self.has_parent(*n, &parents))
                    .collect()
            }
        }
    }

    /// npm's hasParent: a dependency edge from one of `compare` (links read as their
    /// targets), or a link to this tree top placed in one of them.
    fn has_parent(&self, n: usize, compare: &[usize]) -> bool {
        let node = self.node(n);
        for &c in compare {
            let c = self.g.target(c);
            if node.is_top()
                && !node.is_root
                && node.fs_parent == Some(c)
                && node
                    .links_in
                    .iter()
                    .any(|&l| self.node(l).parent == Some(c))
            {
                return true;
            }
            if node.edges_in.iter().any(|&e| self.g.edges[e].from == c) {
                return true;
            }
        }
        false
    }

    fn has_ascendant(&self, n: usize, compare: &[usize], seen: &mut HashSet<usize>) -> bool {
        if self.has_parent(n, compare) {
            return true;
        }
        let node = self.node(n);
        if node.is_top()
            && let Some(p) = node.fs_parent
            && self.has_ascendant(p, compare, &mut HashSet::new())
        {
            return true;
        }
        for &e in &node.edges_in {
            if !seen.insert(e) {
                continue;
            }
            if self.has_ascendant(self.g.edges[e].from, compare, seen) {
                return true;
            }
        }
        node.links_in
            .iter()
            .any(|&l| self.has_ascendant(l, compare, seen))
    }

    fn pseudo(
        &mut self,
        p: &Pseudo,
        input: Vec<usize>,
        scope: Option<usize>,
    ) -> Result<Vec<usize>, QueryError> {
        let keep = |f: &dyn Fn(&Node) -> bool| -> Vec<usize> {
            input
                .iter()
                .copied()
                .filter(|&i| f(&self.g.nodes[i]))
                .collect()
        };
        Ok(match p {
            Pseudo::Plain(name) => match name.as_str() {
                // The root of the scope node; inside :is()/:not() npm's scope is not a tree
                // node, so nothing is the root there.
                "root" => keep(&|n| scope.is_some() && n.is_root),
                "scope" => input.into_iter().filter(|&i| Some(i) == scope).collect(),
                "empty" => keep(&|n| n.edges_out.is_empty()),
                "extraneous" => keep(&|n| n.extraneous),
                "private" => keep(&|n| truthy(n.package.get("private"))),
                "link" => keep(&|n| n.is_link() || (n.is_top() && !n.is_root)),
                "overridden" => vec![],
                "deduped" => input
                    .into_iter()
                    .filter(|&i| self.node(self.g.target(i)).edges_in.len() > 1)
                    .collect(),
                "invalid" => input
                    .into_iter()
                    .filter(|&i| self.node(i).edges_in.iter().any(|&e| self.invalid(e)))
                    .collect(),
                "missing" => self.missing(),
                _ => {
                    return Err(err(
                        "EQUERYNOPSEUDO",
                        format!("`:{name}` is not a supported pseudo selector."),
                    ));
                }
            },
            Pseudo::Is(list) => self.list(list, &input, None)?,
            Pseudo::Not(list) => {
                let out: HashSet<usize> = self.list(list, &input, None)?.into_iter().collect();
                input.into_iter().filter(|i| !out.contains(i)).collect()
            }
            Pseudo::Has(list) => {
                let mut found = vec![];
                for i in input {
                    if !self.list(list, &[i], Some(i))?.is_empty() {
                        found.push(i);
                    }
                }
                found
            }
            Pseudo::Attr { lookup, matcher } => keep(&|n| attr_lookup(&n.package, lookup, matcher)),
            Pseudo::Semver {
                value,
                func,
                lookup,
                matcher,
            } => self.semver(input, value.as_deref(), func.as_deref(), lookup, matcher)?,
            Pseudo::Path(pattern) => match pattern {
                None => input,
                Some(p) => {
                    let root = self.g.nodes[0].realpath.clone();
                    let pattern = absolute(&root, p);
                    keep(&|n| super::glob::matches(&pattern, &n.realpath.to_string_lossy()))
                }
            },
            Pseudo::Type(t) => match t {
                None => input,
                Some(t) => {
                    let mut out = vec![];
                    for i in input {
                        for &e in &self.node(i).edges_in {
                            let edge = &self.g.edges[e];
                            let ty = super::spec_type::of(&edge.spec);
                            let registry = super::spec_type::is_registry(&edge.spec);
                            if (t == "registry" && registry) || ty == t {
                                out.extend(edge.to);
                            }
                        }
                    }
                    out
                }
            },
            Pseudo::Outdated(kind) => self.outdated(input, kind.as_deref().unwrap_or("any")),
            Pseudo::Vuln(filters) => self.vuln(input, filters),
        })
    }

    /// Whether node `i` ships inside another package's bundle.
    pub fn in_bundle(&self, i: usize) -> bool {
        self.bundler(i, &mut vec![]).is_some()
    }

    /// arborist's Edge#invalid: a target whose version the spec does not accept.
    pub fn invalid(&self, e: usize) -> bool {
        let edge = &self.g.edges[e];
        let Some(to) = edge.to else { return false };
        let node = self.node(to);
        let from = self.node(edge.from);
        if edge.kind.peer() && node.parent == Some(edge.from) && !from.is_top() {
            return false; // PEER LOCAL, not INVALID
        }
        if node.name != edge.name {
            return true;
        }
        !super::spec_type::accepts(&edge.spec, node.package_name(), node.version())
    }

    /// `:missing`: a made-up node for each required edge nothing satisfies.
    fn missing(&mut self) -> Vec<usize> {
        let mut out = vec![];
        for i in self.inventory.clone() {
            for e in self.g.nodes[i].edges_out.clone() {
                let edge = &self.g.edges[e];
                if edge.to.is_some() || edge.kind.optional() {
                    continue;
                }
                let package = super::actual::normalize_package(
                    serde_json::json!({"name": edge.name, "version": edge.spec}),
                );
                // A fresh node: every flag still set, as arborist's defaults are.
                self.g.nodes.push(Node {
                    name: edge.name.clone(),
                    package,
                    edges_in: vec![e],
                    missing: true,
                    dev: true,
                    optional: true,
                    peer: true,
                    extraneous: true,
                    ..Node::default()
                });
                let id = self.g.nodes.len() - 1;
                self.context
                    .insert(id, serde_json::json!({"missing": true}));
                out.push(id);
            }
        }
        out
    }

    fn semver(
        &self,
        input: Vec<usize>,
        value: Option<&str>,
        func: Option<&str>,
        lookup: &[Lookup],
        matcher: &Matcher,
    ) -> Result<Vec<usize>, QueryError> {
        let Some(value) = value else {
            return Ok(input);
        };
        let value_version = semver_npm::parse_version(value).filter(|_| strict_version(value));
        let value_range = Range::parse(value);
        if value_version.is_none() && value_range.is_none() {
            return Err(err(
                "EQUERYINVALIDSEMVER",
                format!("`{value}` is not a valid semver version or range"),
            ));
        }
        if let Some(f) = func
            && !SEMVER_FUNCS.contains(&f)
        {
            return Err(err(
                "EQUERYINVALIDOPERATOR",
                format!("`semver.{f}` is not a supported operator."),
            ));
        }
        let check = |obj: &Value| -> bool {
            if !matcher.operator.is_empty() && !attribute_match(matcher, obj) {
                return false;
            }
            let Some(attr) = obj.get(&matcher.attribute).and_then(Value::as_str) else {
                return false;
            };
            semver_test(attr, value, func.unwrap_or("infer"))
        };
        Ok(input
            .into_iter()
            .filter(|&i| {
                let pkg = &self.node(i).package;
                if lookup.is_empty() {
                    return check(pkg);
                }
                // As npm does: only the first property of the lookup is followed.
                let mut objs = vec![pkg.clone()];
                for l in lookup {
                    match l {
                        Lookup::Flatten => objs = flatten(objs),
                        Lookup::Prop(p) => {
                            objs = step(objs, p);
                            if objs.iter().all(|o| !truthy(Some(o))) {
                                return false;
                            }
                            return objs.iter().any(&check);
                        }
                    }
                }
                false
            })
            .collect())
    }

    fn outdated(&mut self, input: Vec<usize>, kind: &str) -> Vec<usize> {
        let mut out = vec![];
        for i in input {
            let n = self.node(i);
            if n.is_root || truthy(n.package.get("private")) {
                continue;
            }
            let Some(current) = semver_npm::parse_version(n.version()) else {
                continue;
            };
            let mut all: Vec<(semver::Version, &String)> = self
                .known
                .versions
                .get(&n.name)
                .map(|v| {
                    v.iter()
                        .filter_map(|s| Some((semver_npm::parse_version(s)?, s)))
                        .collect()
                })
                .unwrap_or_default();
            all.sort_by(|a, b| semver_npm::cmp(&a.0, &b.0));
            let mut ctx = serde_json::json!({
                "versions": all.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>()
            });
            let greater: Vec<&(semver::Version, &String)> = all
                .iter()
                .filter(|(v, _)| semver_npm::cmp(v, &current).is_gt())
                .collect();
            let hit = match kind {
                _ if greater.is_empty() => false,
                "any" => true,
                "major" | "minor" | "patch" => {
                    greater.iter().any(|(v, _)| diff(&current, v) == kind)
                }
                "in-range" | "out-of-range" => {
                    let want = kind == "in-range";
                    let mut found = vec![];
                    for &e in &n.edges_in {
                        let edge = &self.g.edges[e];
                        let range = Range::parse(&edge.spec);
                        let vs: Vec<&str> = greater
                            .iter()
                            .filter(|(v, _)| range.as_ref().is_some_and(|r| r.satisfies(v)) == want)
                            .map(|(_, s)| s.as_str())
                            .collect();
                        if !vs.is_empty() {
                            found.push(serde_json::json!({
                                "from": self.node(edge.from).location,
                                "versions": vs,
                            }));
                        }
                    }
                    let key = if want { "inRange" } else { "outOfRange" };
                    ctx["outdated"] = serde_json::json!({ key: found });
                    !found.is_empty()
                }
                _ => false,
            };
            self.context.insert(i, ctx);
            if hit {
                out.push(i);
            }
        }
        out
    }

    fn vuln(&mut self, input: Vec<usize>, filters: &[VulnFilter]) -> Vec<usize> {
        let mut out = vec![];
        for i in input {
            let n = self.node(i);
            let Some(list) = self.known.advisories.get(&n.name) else {
                continue;
            };
            let version = n.version().to_string();
            let hits: Vec<Value> = list
                .iter()
                .filter(|a| {
                    Range::parse(&a.vulnerable_versions)
                        .zip(Range::parse(&version))
                        .is_some_and(|(r, v)| r.intersects(&v))
                })
                .filter(|a| {
                    filters.is_empty()
                        || filters.iter().any(|f| {
                            let sev = f.severity.is_empty()
                                || f.severity.iter().any(|s| s == "*" || *s == a.severity);
                            let cwe = f.cwe.is_empty()
                                || if f.cwe.iter().any(|c| c == "*") {
                                    !a.cwe.is_empty()
                                } else {
                                    f.cwe.iter().all(|c| a.cwe.contains(&format!("CWE-{c}")))
                                };
                            sev && cwe
                        })
                })
                .map(|a| a.raw.clone())
                .collect();
            if !hits.is_empty() {
                self.context
                    .insert(i, serde_json::json!({ "advisories": hits }));
                out.push(i);
            }
        }
        out
    }
}

const SEMVER_FUNCS: &[&str] = &[
    "infer",
    "eq",
    "neq",
    "gt",
    "gte",
    "lt",
    "lte",
    "gtr",
    "ltr",
    "satisfies",
    "intersects",
];

/// node-semver's `valid` without loose mode: a plain `1.2.3[-pre][+build]`.
fn strict_version(s: &str) -> bool {
    let s = s.trim();
    let s = s
        .strip_prefix('v')
        .or_else(|| s.strip_prefix('='))
        .unwrap_or(s);
    semver::Version::parse(s).is_ok()
}

/// The `:semver` test of one attribute value, with npm's inference of the function.
fn semver_test(attr: &str, value: &str, func: &str) -> bool {
    let attr_version = semver_npm::parse_version(attr).filter(|_| strict_version(attr));
    let attr_range = Range::parse(attr);
    if attr_version.is_none() && attr_range.is_none() {
        return false;
    }
    let value_version = semver_npm::parse_version(value).filter(|_| strict_version(value));
    let func = match func {
        "infer" => match (value_version.is_some(), attr_version.is_some()) {
            (true, true) => "eq",
            (false, false) => "intersects",
            _ => "satisfies",
        },
        f => f,
    };
    let as_range = |s: &str| Range::parse(s);
    match func {
        "eq" | "neq" | "gt" | "gte" | "lt" | "lte" => {
            let (Some(a), Some(b)) = (&attr_version, &value_version) else {
                return false;
            };
            let o = semver_npm::cmp(a, b);
            match func {
                "eq" => o.is_eq(),
                "neq" => o.is_ne(),
                "gt" => o.is_gt(),
                "gte" => o.is_ge(),
                "lt" => o.is_lt(),
                _ => o.is_le(),
            }
        }
        "gtr" | "ltr" | "satisfies" => {
            let (v, r) = match (&value_version, &attr_version) {
                (Some(v), _) => (v, as_range(attr)),
                (None, Some(v)) => (v, as_range(value)),
                (None, None) => return false,
            };
            let Some(r) = r else { return false };
            match func {
                "satisfies" => r.satisfies(v),
                "gtr" => r.outside(v, true),
                _ => r.outside(v, false),
            }
        }
        _ => match (as_range(attr), as_range(value)) {
            (Some(a), Some(b)) => a.intersects(&b),
            _ => false,
        },
    }
}

/// node-semver's `diff` reduced to what `:outdated(kind)` asks: major, minor or patch.
fn diff(a: &semver::Version, b: &semver::Version) -> &'static str {
    if a.major != b.major {
        "major"
    } else if a.minor != b.minor {
        "minor"
    } else if a.patch != b.patch {
        "patch"
    } else {
        "prerelease"
    }
}

/// `:attr(a, b, [c])`: walk the properties, then test the matcher on what is found.
fn attr_lookup(pkg: &Value, lookup: &[Lookup], matcher: &Matcher) -> bool {
    let mut objs = vec![pkg.clone()];
    for l in lookup {
        match l {
            Lookup::Flatten => {
                objs = flatten(objs);
                continue;
            }
            Lookup::Prop(p) => objs = step(objs, p),
        }
        if objs.iter().all(|o| !truthy(Some(o))) {
            return false;
        }
    }
    objs.iter().any(|o| attribute_match(matcher, o))
}

/// `path.resolve(root, pattern)` with `/` separators.
fn absolute(root: &Path, pattern: &str) -> String {
    let joined = if pattern.starts_with('/') {
        pattern.to_string()
    } else {
        format!("{}/{pattern}", root.to_string_lossy())
    };
    format!("/{}", super::actual::resolve_dots(&joined, &['/']))
}
