//! npm's semver range semantics (node-semver), on top of the `semver` crate's version parser:
//! comparators, x-ranges, tilde, caret (with the 0.x rules), hyphen ranges, `||`, whitespace
//! variants, `v`/`=` prefixes, and the prerelease rule (a prerelease version matches only a
//! comparator set that names a prerelease of the same major.minor.patch). Ranges are read in
//! node-semver's *loose* mode, as npm reads them (`^1.2.3foo` is `^1.2.3-foo`, `0.0.0-*` is
//! `0.0.0--`, tokens that are not comparators are dropped).
//!
//! Build metadata is ignored in comparisons, as in node-semver. Must not: pick versions (that
//! is resolve.rs's policy); this module only answers "does V satisfy R".

use std::cmp::Ordering;

use semver::{BuildMetadata, Prerelease, Version};

/// Parse a version as npm does (leading `v`/`=` and surrounding whitespace allowed).
pub fn parse_version(s: &str) -> Option<Version> {
    let s = s.trim();
    let s = s.strip_prefix('=').unwrap_or(s).trim_start();
    let s = s
        .strip_prefix('v')
        .or_else(|| s.strip_prefix('V'))
        .unwrap_or(s);
    Version::parse(s).ok()
}

/// Compare ignoring build metadata.
pub fn cmp(a: &Version, b: &Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| a.pre.cmp(&b.pre))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparator {
    op: Op,
    v: Version,
}

impl Comparator {
    fn test(&self, v: &Version) -> bool {
        let o = cmp(v, &self.v);
        match self.op {
            Op::Lt => o == Ordering::Less,
            Op::Le => o != Ordering::Greater,
            Op::Gt => o == Ordering::Greater,
            Op::Ge => o != Ordering::Less,
            Op::Eq => o == Ordering::Equal,
        }
    }
}

/// A parsed npm range: a union of comparator sets. An empty set matches every version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    sets: Vec<Vec<Comparator>>,
}

/// A partial version: missing or `x`/`*` parts are None.
#[derive(Debug, Clone)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    pre: Prerelease,
}

fn ver(major: u64, minor: u64, patch: u64, pre: Prerelease) -> Version {
    Version {
        major,
        minor,
        patch,
        pre,
        build: BuildMetadata::EMPTY,
    }
}

/// `-0`: the lowest prerelease, used for exclusive upper bounds so prereleases of the next
/// version do not match.
fn zero() -> Prerelease {
    Prerelease::new("0").unwrap_or(Prerelease::EMPTY)
}

fn is_x(s: &str) -> bool {
    s == "x" || s == "X" || s == "*"
}

fn parse_num(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        // node-semver (loose) accepts leading zeros in ranges.
        return s.trim_start_matches('0').parse().ok().or(Some(0));
    }
    s.parse().ok()
}

fn parse_partial(s: &str) -> Option<Partial> {
    let s = s.trim();
    let s = s.strip_prefix('=').unwrap_or(s);
    let s = s
        .strip_prefix('v')
        .or_else(|| s.strip_prefix('V'))
        .unwrap_or(s);
    if s.is_empty() {
        return Some(Partial {
            major: None,
            minor: None,
            patch: None,
            pre: Prerelease::EMPTY,
        });
    }
    // Split off build (+...) and prerelease (-...) from the patch part.
    let s = s.split('+').next().unwrap_or(s);
    let (core, pre) = split_prerelease(s);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut nums = [None, None, None];
    let mut seen_x = false;
    for (i, p) in parts.iter().enumerate() {
        if is_x(p) {
            seen_x = true;
            continue;
        }
        if seen_x {
            // `1.x.3`: node-semver treats everything after an x as x.
            continue;
        }
        nums[i] = Some(parse_num(p)?);
    }
    let pre = match pre {
        Some(p) if nums[2].is_some() => loose_prerelease(p)?,
        Some(_) => return None,
        None => Prerelease::EMPTY,
    };
    Some(Partial {
        major: nums[0],
        minor: nums[1],
        patch: nums[2],
        pre,
    })
}

/// Split `1.2.3-beta` / `1.2.3beta` (loose: the hyphen is optional) into core and prerelease.
fn split_prerelease(s: &str) -> (&str, Option<&str>) {
    if let Some(i) = s.find('-') {
        return (&s[..i], Some(&s[i..]));
    }
    // Loose `1.2.3foo`: letters straight after the third number start a prerelease.
    let dots: Vec<usize> = s.match_indices('.').map(|(i, _)| i).collect();
    if dots.len() == 2 {
        let patch_start = dots[1] + 1;
        if let Some(off) = s[patch_start..].find(|c: char| !c.is_ascii_digit())
            && off > 0
            && !is_x(&s[patch_start..])
        {
            return (&s[..patch_start + off], Some(&s[patch_start + off..]));
        }
    }
    (s, None)
}

/// node-semver's loose prerelease: `-?ident(.ident)*`, where `*` stands for nothing (its
/// replaceStars), numeric identifiers may carry leading zeros (`01` is 1), and a lone `-` is an
/// identifier (`0.0.0-*` reads as `0.0.0--`).
fn loose_prerelease(raw: &str) -> Option<Prerelease> {
    let s = raw.replace('*', "");
    let body = match s.strip_prefix('-') {
        Some("") => "-",
        Some(rest) => rest,
        None => s.as_str(),
    };
    let mut idents = Vec::new();
    for id in body.split('.') {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return None;
        }
        if id.bytes().all(|b| b.is_ascii_digit()) {
            let trimmed = id.trim_start_matches('0');
            idents.push(if trimmed.is_empty() { "0" } else { trimmed }.to_string());
        } else {
            idents.push(id.to_string());
        }
    }
    Prerelease::new(&idents.join(".")).ok()
}

fn push(set: &mut Vec<Comparator>, op: Op, v: Version) {
    set.push(Comparator { op, v });
}

/// `>=` bound and `<` bound for an x-range like `1.2.x`.
fn x_range(p: &Partial, set: &mut Vec<Comparator>) {
    match (p.major, p.minor, p.patch) {
        (None, _, _) => {} // any
        (Some(m), None, _) => {
            push(set, Op::Ge, ver(m, 0, 0, Prerelease::EMPTY));
            push(set, Op::Lt, ver(m + 1, 0, 0, zero()));
        }
        (Some(m), Some(n), None) => {
            push(set, Op::Ge, ver(m, n, 0, Prerelease::EMPTY));
            push(set, Op::Lt, ver(m, n + 1, 0, zero()));
        }
        (Some(m), Some(n), Some(pa)) => push(set, Op::Eq, ver(m, n, pa, p.pre.clone())),
    }
}

fn tilde(p: &Partial, set: &mut Vec<Comparator>) {
    match (p.major, p.minor, p.patch) {
        (None, _, _) => {}
        (Some(m), None, _) => {
            push(set, Op::Ge, ver(m, 0, 0, Prerelease::EMPTY));
            push(set, Op::Lt, ver(m + 1, 0, 0, zero()));
        }
        (Some(m), Some(n), None) => {
            push(set, Op::Ge, ver(m, n, 0, Prerelease::EMPTY));
            push(set, Op::Lt, ver(m, n + 1, 0, zero()));
        }
        (Some(m), Some(n), Some(pa)) => {
            push(set, Op::Ge, ver(m, n, pa, p.pre.clone()));
            push(set, Op::Lt, ver(m, n + 1, 0, zero()));
        }
    }
}

fn caret(p: &Partial, set: &mut Vec<Comparator>) {
    match (p.major, p.minor, p.patch) {
        (None, _, _) => {}
        (Some(m), None, _) => {
            push(set, Op::Ge, ver(m, 0, 0, Prerelease::EMPTY));
            push(set, Op::Lt, ver(m + 1, 0, 0, zero()));
        }
        (Some(m), Some(n), None) => {
            push(set, Op::Ge, ver(m, n, 0, Prerelease::EMPTY));
            if m == 0 {
                push(set, Op::Lt, ver(0, n + 1, 0, zero()));
            } else {
                push(set, Op::Lt, ver(m + 1, 0, 0, zero()));
            }
        }
        (Some(m), Some(n), Some(pa)) => {
            push(set, Op::Ge, ver(m, n, pa, p.pre.clone()));
            let upper = if m != 0 {
                ver(m + 1, 0, 0, zero())
            } else if n != 0 {
                ver(0, n + 1, 0, zero())
            } else {
                ver(0, 0, pa + 1, zero())
            };
            push(set, Op::Lt, upper);
        }
    }
}

fn primitive(op: &str, p: &Partial, set: &mut Vec<Comparator>) -> Option<()> {
    let any_x = p.patch.is_none();
    if p.major.is_none() {
        // `>*` and `<*` match nothing; `>=*`, `<=*` match anything.
        if op == "<" || op == ">" {
            push(set, Op::Lt, ver(0, 0, 0, zero()));
        }
        return Some(());
    }
    let m = p.major?;
    if !any_x {
        let v = ver(m, p.minor.unwrap_or(0), p.patch.unwrap_or(0), p.pre.clone());
        let o = match op {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "=" | "" => Op::Eq,
            _ => return None,
        };
        push(set, o, v);
        return Some(());
    }
    let n = p.minor;
    match op {
        ">" => match n {
            None => push(set, Op::Ge, ver(m + 1, 0, 0, Prerelease::EMPTY)),
            Some(n) => push(set, Op::Ge, ver(m, n + 1, 0, Prerelease::EMPTY)),
        },
        ">=" => push(set, Op::Ge, ver(m, n.unwrap_or(0), 0, Prerelease::EMPTY)),
        "<" => push(set, Op::Lt, ver(m, n.unwrap_or(0), 0, zero())),
        "<=" => match n {
            None => push(set, Op::Lt, ver(m + 1, 0, 0, zero())),
            Some(n) => push(set, Op::Lt, ver(m, n + 1, 0, zero())),
        },
        "=" | "" => x_range(p, set),
        _ => return None,
    }
    Some(())
}

/// Split an operator prefix off a token.
fn split_op(tok: &str) -> (&str, &str) {
    for op in [">=", "<=", ">", "<", "=", "~>", "~", "^"] {
        if let Some(rest) = tok.strip_prefix(op) {
            return (op, rest);
        }
    }
    ("", tok)
}

/// Join operators separated from their version by spaces (`>= 1.2.3` → `>=1.2.3`).
fn tokens(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut pending_op: Option<String> = None;
    for t in s.split_whitespace() {
        if let Some(op) = pending_op.take() {
            out.push(format!("{op}{t}"));
            continue;
        }
        if matches!(t, ">=" | "<=" | ">" | "<" | "=" | "~" | "^" | "~>") {
            pending_op = Some(t.to_string());
            continue;
        }
        out.push(t.to_string());
    }
    if let Some(op) = pending_op {
        out.push(op);
    }
    out
}

fn parse_set(s: &str) -> Option<Vec<Comparator>> {
    let mut set = Vec::new();
    let toks = tokens(s);
    // Hyphen range: `a - b`.
    if toks.len() == 3 && toks[1] == "-" {
        let from = parse_partial(&toks[0])?;
        let to = parse_partial(&toks[2])?;
        if let Some(m) = from.major {
            push(
                &mut set,
                Op::Ge,
                ver(
                    m,
                    from.minor.unwrap_or(0),
                    from.patch.unwrap_or(0),
                    if from.patch.is_some() {
                        from.pre.clone()
                    } else {
                        Prerelease::EMPTY
                    },
                ),
            );
        }
        match (to.major, to.minor, to.patch) {
            (None, _, _) => {}
            (Some(m), None, _) => push(&mut set, Op::Lt, ver(m + 1, 0, 0, zero())),
            (Some(m), Some(n), None) => push(&mut set, Op::Lt, ver(m, n + 1, 0, zero())),
            (Some(m), Some(n), Some(p)) => push(&mut set, Op::Le, ver(m, n, p, to.pre.clone())),
        }
        return Some(set);
    }
    // Loose mode: tokens that are not comparators are dropped; a set left with none is no set.
    let mut valid = 0;
    for tok in toks {
        let (op, rest) = split_op(&tok);
        let Some(p) = parse_partial(rest) else {
            continue;
        };
        let before = set.clone();
        let ok = match op {
            "~" | "~>" => {
                tilde(&p, &mut set);
                true
            }
            "^" => {
                caret(&p, &mut set);
                true
            }
            "" => {
                x_range(&p, &mut set);
                true
            }
            _ => primitive(op, &p, &mut set).is_some(),
        };
        if ok {
            valid += 1;
        } else {
            set = before;
        }
    }
    (valid > 0 || s.trim().is_empty()).then_some(set)
}

impl Range {
    /// Parse an npm range. `None` when it is not a range (npm then treats the spec as a
    /// dist-tag).
    pub fn parse(s: &str) -> Option<Range> {
        let sets: Vec<_> = s.split("||").filter_map(parse_set).collect();
        (!sets.is_empty()).then_some(Range { sets })
    }

    /// Whether `v` satisfies the range (prereleases only where a comparator of the same set
    /// names a prerelease of the same major.minor.patch).
    pub fn satisfies(&self, v: &Version) -> bool {
        self.sets.iter().any(|set| {
            if !set.iter().all(|c| c.test(v)) {
                return false;
            }
            if v.pre.is_empty() {
                return true;
            }
            set.iter().any(|c| {
                !c.v.pre.is_empty()
                    && c.v.major == v.major
                    && c.v.minor == v.minor
                    && c.v.patch == v.patch
            })
        })
    }

    /// `satisfies` with prereleases always allowed (node-semver's includePrerelease), used for
    /// `engines` checks.
    pub fn satisfies_including_prerelease(&self, v: &Version) -> bool {
        self.sets.iter().any(|set| set.iter().all(|c| c.test(v)))
    }

    /// Whether some version could satisfy both ranges (node-semver's `intersects`, without its
    /// prerelease subtleties): used to match `overrides` keys such as `foo@^2` to an edge.
    pub fn intersects(&self, other: &Range) -> bool {
        self.sets.iter().any(|a| {
            other
                .sets
                .iter()
                .any(|b| satisfiable(a.iter().chain(b.iter())))
        })
    }

    /// node-semver's `gtr` (`above`) and `ltr`: whether `v` lies above (below) every version
    /// the range admits, by node-semver's `outside` rule.
    pub fn outside(&self, v: &Version, above: bool) -> bool {
        if self.satisfies(v) {
            return false;
        }
        let zero = Comparator {
            op: Op::Ge,
            v: Version::new(0, 0, 0),
        };
        let beyond = |a: &Version, b: &Version| {
            let o = cmp(a, b);
            if above { o.is_gt() } else { o.is_lt() }
        };
        let (comp, ecomp) = if above {
            (Op::Gt, Op::Ge)
        } else {
            (Op::Lt, Op::Le)
        };
        for set in &self.sets {
            let set: Vec<&Comparator> = if set.is_empty() {
                vec![&zero]
            } else {
                set.iter().collect()
            };
            let (mut high, mut low) = (set[0], set[0]);
            for c in &set {
                if beyond(&c.v, &high.v) {
                    high = c;
                } else if beyond(&low.v, &c.v) {
                    low = c;
                }
            }
            if high.op == comp || high.op == ecomp {
                return false;
            }
            let low_plain = low.op == Op::Eq || low.op == comp;
            if (low_plain && !beyond(v, &low.v)) || (low.op == ecomp && beyond(&low.v, v)) {
                return false;
            }
        }
        true
    }

    /// True for `*`, `""`, `x`: matches any release.
    pub fn is_any(&self) -> bool {
        self.sets.iter().any(|s| s.is_empty())
    }
}

/// Whether a conjunction of comparators admits some version.
fn satisfiable<'a>(cs: impl Iterator<Item = &'a Comparator>) -> bool {
    let mut lower: Option<(&Version, bool)> = None; // (bound, inclusive)
    let mut upper: Option<(&Version, bool)> = None;
    let mut exact: Vec<&Version> = Vec::new();
    for c in cs {
        let (lo, hi) = match c.op {
            Op::Ge => (Some((&c.v, true)), None),
            Op::Gt => (Some((&c.v, false)), None),
            Op::Le => (None, Some((&c.v, true))),
            Op::Lt => (None, Some((&c.v, false))),
            Op::Eq => {
                exact.push(&c.v);
                (Some((&c.v, true)), Some((&c.v, true)))
            }
        };
        if let Some((v, inc)) = lo
            && lower.is_none_or(|(l, li)| cmp(v, l).then((!inc).cmp(&!li)).is_gt())
        {
            lower = Some((v, inc));
        }
        if let Some((v, inc)) = hi
            && upper.is_none_or(|(u, ui)| cmp(v, u).then(inc.cmp(&ui)).is_lt())
        {
            upper = Some((v, inc));
        }
    }
    match (lower, upper) {
        (Some((l, li)), Some((u, ui))) => match cmp(l, u) {
            Ordering::Less => true,
            Ordering::Equal => li && ui,
            Ordering::Greater => false,
        },
        _ => true,
    }
}

/// Convenience: does version string `v` satisfy range string `r`?
pub fn satisfies(v: &str, r: &str) -> bool {
    match (parse_version(v), Range::parse(r)) {
        (Some(v), Some(r)) => r.satisfies(&v),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
