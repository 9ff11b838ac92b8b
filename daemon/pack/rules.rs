//! The patterns of npm's ignore files, matched as ignore-walk matches them: minimatch with
//! `matchBase`, `dot`, `nocase` and `flipNegate`, brace expansion, `*`, `?`, `[...]`
//! classes, `**`, and partial matching (could anything below this folder match?).
//!
//! Must not: touch the filesystem.

/// One line of an ignore file (or a rule npm-packlist injects).
#[derive(Debug, Clone)]
pub struct Rule {
    /// `!pattern`: a match includes instead of excluding.
    pub negate: bool,
    /// Each brace alternative, split on `/` (a leading `/` gives an empty first part, a
    /// trailing one an empty last part).
    parts: Vec<Vec<String>>,
}

impl Rule {
    pub fn parse(line: &str) -> Rule {
        let line = line.trim();
        let bangs = line.chars().take_while(|&c| c == '!').count();
        let pattern = &line[bangs..];
        let parts = expand_braces(pattern)
            .into_iter()
            .map(|alt| {
                // minimatch splits on runs of slashes.
                let mut segs: Vec<String> = Vec::new();
                let pieces: Vec<&str> = alt.split('/').collect();
                for (i, p) in pieces.iter().enumerate() {
                    if p.is_empty() && i != 0 && i != pieces.len() - 1 {
                        continue;
                    }
                    segs.push(p.to_string());
                }
                // `**/**` is `**`.
                segs.dedup_by(|a, b| a == "**" && b == "**");
                segs
            })
            .collect();
        Rule {
            negate: bangs % 2 == 1,
            parts,
        }
    }

    /// Whether the rule's pattern (its negation aside) matches `path`; with `partial`, whether
    /// it could match something below `path`.
    pub fn matches(&self, path: &str, partial: bool) -> bool {
        if path == "/" && partial {
            return true;
        }
        let file: Vec<&str> = split_slashes(path);
        let base = file
            .iter()
            .rev()
            .find(|s| !s.is_empty())
            .copied()
            .unwrap_or("");
        self.parts.iter().any(|p| {
            if p.len() == 1 {
                // matchBase: a pattern without a slash is matched against the basename.
                match_one(&[base], p, partial)
            } else {
                match_one(&file, p, partial)
            }
        })
    }

    /// ignore-walk's "relative rule": some alternative is one name (or one name and a `/`).
    pub fn is_relative(&self) -> bool {
        self.parts.iter().any(|p| {
            let last_empty = p.last().is_some_and(|s| s.is_empty());
            p.len() <= if last_empty { 2 } else { 1 }
        })
    }
}

/// `path` split as minimatch splits it (runs of `/` are one; leading and trailing give "").
fn split_slashes(path: &str) -> Vec<&str> {
    let pieces: Vec<&str> = path.split('/').collect();
    let n = pieces.len();
    pieces
        .into_iter()
        .enumerate()
        .filter(|(i, p)| !p.is_empty() || *i == 0 || *i == n - 1)
        .map(|(_, p)| p)
        .collect()
}

/// minimatch's matchOne, with `dot: true`.
fn match_one(file: &[&str], pattern: &[String], partial: bool) -> bool {
    let (mut fi, mut pi) = (0, 0);
    while fi < file.len() && pi < pattern.len() {
        let (p, f) = (pattern[pi].as_str(), file[fi]);
        if p == "**" {
            if pi + 1 == pattern.len() {
                return file[fi..].iter().all(|s| *s != "." && *s != "..");
            }
            let mut fr = fi;
            while fr < file.len() {
                if match_one(&file[fr..], &pattern[pi + 1..], partial) {
                    return true;
                }
                if file[fr] == "." || file[fr] == ".." {
                    break;
                }
                fr += 1;
            }
            return partial && fr == file.len();
        }
        if !segment_matches(p, f) {
            return false;
        }
        fi += 1;
        pi += 1;
    }
    if fi == file.len() && pi == pattern.len() {
        true
    } else if fi == file.len() {
        partial
    } else {
        fi == file.len() - 1 && file[fi].is_empty()
    }
}

/// One name against one pattern segment, ignoring case; `*` and `?` never match `/`, and a
/// wildcard never matches `.` or `..` as a whole name.
fn segment_matches(p: &str, f: &str) -> bool {
    if p.is_empty() || f.is_empty() {
        return p == f;
    }
    let magic = p.contains(['*', '?', '[']);
    if !magic {
        return unescape(p).eq_ignore_ascii_case(f);
    }
    if f == "." || f == ".." {
        return false;
    }
    let p: Vec<char> = p.chars().collect();
    let f: Vec<char> = f.chars().collect();
    glob(&p, &f)
}

fn unescape(p: &str) -> String {
    let mut out = String::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

fn glob(p: &[char], f: &[char]) -> bool {
    match p.first() {
        None => f.is_empty(),
        Some('*') => (0..=f.len()).any(|k| glob(&p[1..], &f[k..])),
        Some('?') => !f.is_empty() && glob(&p[1..], &f[1..]),
        Some('\\') if p.len() > 1 => {
            !f.is_empty() && lower(p[1]) == lower(f[0]) && glob(&p[2..], &f[1..])
        }
        Some('[') => match class(p) {
            Some((set, negated, len)) => {
                let Some(&c) = f.first() else { return false };
                let hit = set.iter().any(|&(a, b)| {
                    let c = lower(c);
                    (lower(a)..=lower(b)).contains(&c)
                });
                hit != negated && glob(&p[len..], &f[1..])
            }
            None => !f.is_empty() && f[0] == '[' && glob(&p[1..], &f[1..]),
        },
        Some(&c) => !f.is_empty() && lower(c) == lower(f[0]) && glob(&p[1..], &f[1..]),
    }
}

/// A `[...]` class's ranges (inclusive).
type Ranges = Vec<(char, char)>;

/// A `[...]` class at the start of `p`: its ranges, whether it is negated (`!` or `^`), and
/// how many chars it spans.
fn class(p: &[char]) -> Option<(Ranges, bool, usize)> {
    let mut i = 1;
    let negated = matches!(p.get(1), Some('!') | Some('^'));
    if negated {
        i += 1;
    }
    let mut set = Vec::new();
    let start = i;
    while i < p.len() {
        if p[i] == ']' && i > start {
            return Some((set, negated, i + 1));
        }
        let c = if p[i] == '\\' && i + 1 < p.len() {
            i += 1;
            p[i]
        } else {
            p[i]
        };
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            set.push((c, p[i + 2]));
            i += 3;
        } else {
            set.push((c, c));
            i += 1;
        }
    }
    None
}

/// brace-expansion: `a{b,c}d` → `abd`, `acd`; `{1..3}` → 1, 2, 3; nested braces; a brace
/// without a comma or range stays as it is.
pub fn expand_braces(p: &str) -> Vec<String> {
    let chars: Vec<char> = p.chars().collect();
    let mut depth = 0;
    let mut open = None;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '{' => {
                if depth == 0 {
                    open = Some(i);
                }
                depth += 1;
            }
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0
                    && let Some(o) = open
                {
                    let inner: String = chars[o + 1..i].iter().collect();
                    let pre: String = chars[..o].iter().collect();
                    let post: String = chars[i + 1..].iter().collect();
                    let alts = alternatives(&inner);
                    if let Some(alts) = alts {
                        let mut out = Vec::new();
                        for a in alts {
                            for rest in expand_braces(&format!("{a}{post}")) {
                                out.push(format!("{pre}{rest}"));
                            }
                        }
                        return out;
                    }
                    // Not a set: keep it, expand what follows.
                    return expand_braces(&post)
                        .into_iter()
                        .map(|rest| format!("{pre}{{{inner}}}{rest}"))
                        .collect();
                }
            }
            _ => {}
        }
        i += 1;
    }
    vec![p.to_string()]
}

/// The alternatives of a brace's inside: split on top-level commas, or a numeric range.
fn alternatives(inner: &str) -> Option<Vec<String>> {
    if let Some((a, b)) = inner.split_once("..")
        && let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>())
    {
        let r: Vec<String> = if a <= b {
            (a..=b).map(|n| n.to_string()).collect()
        } else {
            (b..=a).rev().map(|n| n.to_string()).collect()
        };
        return Some(r);
    }
    let mut out = Vec::new();
    let (mut depth, mut cur) = (0, String::new());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                continue;
            }
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    (out.len() > 1).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rule: &str, path: &str) -> bool {
        Rule::parse(rule).matches(path, false)
    }

    #[test]
    fn patterns_match_as_minimatch_does_for_ignore_files() {
        assert!(m("*.orig", "/lib/a.orig"), "matchBase");
        assert!(m("node_modules", "node_modules"));
        assert!(m("/node_modules", "/node_modules"));
        assert!(!m("/node_modules", "/lib/node_modules"));
        assert!(m("**/.git", "/a/b/.git"));
        assert!(m("**/.git/**", "/.git/HEAD"));
        assert!(m(".*.swp", "/x/.a.swp"), "dot files match");
        assert!(
            m("/readme{,.*[^~$]}", "/README.md"),
            "nocase, braces, negated class"
        );
        assert!(m("/readme{,.*[^~$]}", "/readme"));
        assert!(!m("/readme{,.*[^~$]}", "/README.md~"));
        assert!(m("/.wafpickle-*", "/.wafpickle-7"));
        assert!(m("lib/", "lib/"), "a trailing slash matches a folder");
        assert!(!m("lib/", "lib"));
        assert!(m("*", "/anything"));
        assert!(Rule::parse("!dist").negate && !Rule::parse("!!dist").negate);
        assert!(Rule::parse("dist/").is_relative() && !Rule::parse("/a/b").is_relative());
    }

    #[test]
    fn partial_matches_say_whether_a_folder_may_hold_a_match() {
        let r = Rule::parse("/lib/**/*.js");
        assert!(r.matches("/lib", true));
        assert!(!r.matches("/lib", false));
        assert!(!r.matches("/src", true));
        assert!(r.matches("/lib/a/b.js", false));
    }

    #[test]
    fn braces_expand_like_brace_expansion() {
        assert_eq!(expand_braces("a{b,c}d"), ["abd", "acd"]);
        assert_eq!(expand_braces("{,x}y"), ["y", "xy"]);
        assert_eq!(expand_braces("f{1..3}"), ["f1", "f2", "f3"]);
        assert_eq!(expand_braces("{a,{b,c}}"), ["a", "b", "c"]);
        assert_eq!(expand_braces("no{brace}"), ["no{brace}"]);
    }
}
