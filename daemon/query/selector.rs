//! npm's dependency selector syntax (`npm query`), parsed into the flat sequences arborist
//! evaluates: `*`, `#name`, `.dev`-style dependency types, `[attr op value i]`, pseudo-classes
//! (`:root`, `:has(…)`, `:attr(…)`, `:semver(…)`, …) and the combinators ` `, `>` and `~`,
//! comma-separated.
//!
//! The parse mirrors what @npmcli/query makes of postcss-selector-parser's AST: a selector is a
//! sequence of simple parts and combinators in source order (arborist walks it left to right),
//! `:is`/`:has`/`:not` hold nested selector lists, and `:attr`, `:semver`, `:path`, `:type`,
//! `:outdated` and `:vuln` keep their arguments in the pre-digested form arborist reads.
//!
//! Must not: look at a tree (eval.rs does).

use super::QueryError;

/// `a, b, c`: each selector's results are collected into one set.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectorList(pub Vec<Selector>);

/// One comma-separated selector: its parts in source order.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector(pub Vec<Part>);

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Universal,
    /// `#name`: css's id, npm's package name.
    Id(String),
    /// `.dev`: css's class, npm's dependency type (checked when evaluated, as npm does).
    Class(String),
    Attribute(Matcher),
    /// A bare word (`react`): parsed, and refused when evaluated, as npm does.
    Tag(String),
    Combinator(char),
    Pseudo(Pseudo),
}

/// An attribute test (`[name^=@babel i]`); `operator` is empty for an existence test.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matcher {
    pub attribute: String,
    pub operator: String,
    pub value: String,
    pub insensitive: bool,
}

/// A step of an `:attr()` lookup: a property name, or "flatten the arrays found so far"
/// (npm's `arrayDelimiter`, from a nested `:attr`).
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Prop(String),
    Flatten,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Pseudo {
    /// Pseudo-classes without arguments (`:root`, `:empty`, …) by name, without the colon.
    Plain(String),
    Not(SelectorList),
    Is(SelectorList),
    Has(SelectorList),
    Attr {
        lookup: Vec<Lookup>,
        matcher: Matcher,
    },
    Semver {
        value: Option<String>,
        func: Option<String>,
        lookup: Vec<Lookup>,
        matcher: Matcher,
    },
    Path(Option<String>),
    Type(Option<String>),
    Outdated(Option<String>),
    Vuln(Vec<VulnFilter>),
}

/// One `[severity=high][cwe=79]` group of `:vuln(…)`; groups are alternatives.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VulnFilter {
    pub severity: Vec<String>,
    pub cwe: Vec<String>,
}

fn err(message: String) -> QueryError {
    QueryError {
        code: "EQUERYPARSE",
        message,
    }
}

/// Parse a whole query. An empty query is an empty list (npm answers `[]`).
pub fn parse(query: &str) -> Result<SelectorList, QueryError> {
    let mut p = Parser {
        s: query.as_bytes(),
        src: query,
        i: 0,
    };
    let list = p.list()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(err(format!(
            "unexpected `{}` at position {} of `{query}`",
            p.rest_char(),
            p.i + 1
        )));
    }
    Ok(list)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

/// Characters that end a name (`#a.b` is the id `a` and the class `b`, as in css).
fn ends_word(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b'#' | b'.'
                | b'['
                | b']'
                | b':'
                | b','
                | b'>'
                | b'~'
                | b'+'
                | b'('
                | b')'
                | b'*'
                | b'"'
                | b'\''
        )
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn rest_char(&self) -> char {
        self.src[self.i..].chars().next().unwrap_or(' ')
    }

    fn ws(&mut self) -> bool {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
        self.i > start
    }

    fn list(&mut self) -> Result<SelectorList, QueryError> {
        let mut out = vec![];
        loop {
            let sel = self.selector()?;
            if !sel.0.is_empty() {
                out.push(sel);
            }
            if self.peek() == Some(b',') {
                self.i += 1;
                continue;
            }
            return Ok(SelectorList(out));
        }
    }

    /// Parts up to `,`, `)` or the end; whitespace between two parts is the descendant
    /// combinator unless another combinator stands there.
    fn selector(&mut self) -> Result<Selector, QueryError> {
        let mut parts = vec![];
        self.ws();
        loop {
            let had_ws = self.ws();
            match self.peek() {
                None | Some(b',') | Some(b')') => return Ok(Selector(parts)),
                Some(c @ (b'>' | b'~' | b'+')) => {
                    self.i += 1;
                    parts.push(Part::Combinator(c as char));
                    self.ws();
                    continue;
                }
                _ => {}
            }
            if had_ws && !matches!(parts.last(), None | Some(Part::Combinator(_))) {
                parts.push(Part::Combinator(' '));
            }
            parts.push(self.part()?);
        }
    }

    fn word(&mut self) -> String {
        self.escaped_until(ends_word)
    }

    /// Characters up to one `stop` accepts; a backslash takes the next character as it is.
    fn escaped_until(&mut self, stop: fn(u8) -> bool) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c == b'\\' {
                self.i += 1;
                if let Some(ch) = self.src[self.i..].chars().next() {
                    out.push(ch);
                    self.i += ch.len_utf8();
                }
                continue;
            }
            if stop(c) {
                break;
            }
            let ch = self.rest_char();
            out.push(ch);
            self.i += ch.len_utf8();
        }
        out
    }

    fn part(&mut self) -> Result<Part, QueryError> {
        let at = self.i;
        let c = self.peek().unwrap_or(b' ');
        let part = match c {
            b'*' => {
                self.i += 1;
                Part::Universal
            }
            b'#' | b'.' => {
                self.i += 1;
                let w = self.word();
                if w.is_empty() {
                    return Err(err(format!(
                        "`{}` at position {} must be followed by a name",
                        c as char,
                        at + 1
                    )));
                }
                if c == b'#' {
                    Part::Id(w)
                } else {
                    Part::Class(w)
                }
            }
            b'[' => Part::Attribute(self.attribute()?),
            b':' => {
                self.i += 1;
                // `::x` is a pseudo-element in css; npm has none.
                let name = self.word();
                let args = if self.peek() == Some(b'(') {
                    Some(self.args()?)
                } else {
                    None
                };
                Part::Pseudo(pseudo(&name, args)?)
            }
            _ => {
                let w = self.word();
                if w.is_empty() {
                    return Err(err(format!(
                        "unexpected `{}` at position {}",
                        self.rest_char(),
                        at + 1
                    )));
                }
                Part::Tag(w)
            }
        };
        Ok(part)
    }

    /// `[attr]`, `[attr op value]`, `[attr op "value" i]`.
    fn attribute(&mut self) -> Result<Matcher, QueryError> {
        let open = self.i;
        self.i += 1;
        self.ws();
        let mut m = Matcher {
            attribute: self.attr_name(),
            ..Matcher::default()
        };
        self.ws();
        for op in ["~=", "|=", "^=", "$=", "*=", "="] {
            if self.src[self.i..].starts_with(op) {
                m.operator = op.to_string();
                self.i += op.len();
                break;
            }
        }
        if !m.operator.is_empty() {
            self.ws();
            m.value = match self.peek() {
                Some(q @ (b'"' | b'\'')) => self.quoted(q)?,
                _ => self.attr_value(),
            };
            self.ws();
            if matches!(self.peek(), Some(b'i' | b'I')) {
                m.insensitive = true;
                self.i += 1;
                self.ws();
            } else if matches!(self.peek(), Some(b's' | b'S')) {
                self.i += 1;
                self.ws();
            }
        }
        if m.attribute.is_empty() || self.peek() != Some(b']') {
            return Err(err(format!(
                "the attribute selector at position {} is not closed or has no name (expected \
                 `[name]` or `[name=value]`)",
                open + 1
            )));
        }
        self.i += 1;
        Ok(m)
    }

    fn attr_name(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c == b'\\' {
                self.i += 1;
                continue;
            }
            if c.is_ascii_whitespace()
                || matches!(c, b']' | b'=' | b'~' | b'|' | b'^' | b'$' | b'*')
            {
                break;
            }
            let ch = self.rest_char();
            out.push(ch);
            self.i += ch.len_utf8();
        }
        out
    }

    fn attr_value(&mut self) -> String {
        self.escaped_until(|c| c.is_ascii_whitespace() || c == b']')
    }

    fn quoted(&mut self, q: u8) -> Result<String, QueryError> {
        let open = self.i;
        self.i += 1;
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c == q {
                self.i += 1;
                return Ok(out);
            }
            if c == b'\\' {
                self.i += 1;
            }
            let ch = self.rest_char();
            out.push(ch);
            self.i += ch.len_utf8();
        }
        Err(err(format!(
            "the quoted string at position {} is not closed",
            open + 1
        )))
    }

    /// The raw text between `(` and its matching `)`.
    fn args(&mut self) -> Result<String, QueryError> {
        let open = self.i;
        self.i += 1;
        let start = self.i;
        let mut depth = 0usize;
        let mut quote: Option<u8> = None;
        while let Some(c) = self.peek() {
            self.i += 1;
            match (quote, c) {
                (_, b'\\') => self.i += 1,
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, b'"' | b'\'') => quote = Some(c),
                (None, b'(' | b'[') => depth += 1,
                (None, b']') => depth = depth.saturating_sub(1),
                (None, b')') if depth == 0 => return Ok(self.src[start..self.i - 1].to_string()),
                (None, b')') => depth -= 1,
                _ => {}
            }
        }
        Err(err(format!(
            "the parenthesis at position {} is not closed",
            open + 1
        )))
    }
}

/// Split pseudo-class arguments at top-level commas.
fn split_args(s: &str) -> Vec<String> {
    let mut out = vec![];
    let (mut depth, mut quote, mut start) = (0usize, None::<char>, 0);
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth = depth.saturating_sub(1),
            (None, ',') if depth == 0 => {
                out.push(s[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim().to_string());
    out
}

fn pseudo(name: &str, args: Option<String>) -> Result<Pseudo, QueryError> {
    let nested = |a: &Option<String>| parse(a.as_deref().unwrap_or(""));
    Ok(match name {
        "not" => Pseudo::Not(nested(&args)?),
        "is" => Pseudo::Is(nested(&args)?),
        "has" => Pseudo::Has(nested(&args)?),
        "attr" => {
            let (lookup, matcher) = attr_args(args.as_deref().unwrap_or(""))?;
            Pseudo::Attr { lookup, matcher }
        }
        "semver" => semver_args(args.as_deref().unwrap_or(""))?,
        "path" => Pseudo::Path(non_empty(args)),
        "type" => Pseudo::Type(non_empty(args)),
        "outdated" => Pseudo::Outdated(non_empty(args)),
        "vuln" => Pseudo::Vuln(vuln_args(args.as_deref().unwrap_or(""))?),
        _ => Pseudo::Plain(name.to_string()),
    })
}

fn non_empty(args: Option<String>) -> Option<String> {
    args.map(|a| unquote(a.trim()).to_string())
        .filter(|a| !a.is_empty())
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

fn attr_expected() -> QueryError {
    QueryError {
        code: "EQUERYATTR",
        message: "`:attr` pseudo-class expects an attribute matcher as the last value".into(),
    }
}

/// `:attr(engines, [node])`, `:attr(a, b, :attr([c=d]))`: property names, then a matcher
/// (a nested `:attr` flattens the arrays found so far, as npm's arrayDelimiter does).
fn attr_args(s: &str) -> Result<(Vec<Lookup>, Matcher), QueryError> {
    let mut args = split_args(s);
    let last = args.pop().unwrap_or_default();
    let mut lookup: Vec<Lookup> = args
        .into_iter()
        .filter(|a| !a.is_empty() && !a.starts_with(['[', ':']))
        .map(Lookup::Prop)
        .collect();
    if let Some(inner) = last
        .strip_prefix(":attr(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let (more, matcher) = attr_args(inner)?;
        lookup.push(Lookup::Flatten);
        lookup.extend(more);
        return Ok((lookup, matcher));
    }
    if !last.starts_with('[') {
        return Err(attr_expected());
    }
    let mut p = Parser {
        s: last.as_bytes(),
        src: &last,
        i: 0,
    };
    let matcher = p.attribute()?;
    Ok((lookup, matcher))
}

/// `:semver(<value>)`, `:semver(<value>, <attribute>)`, `:semver(<attribute>, <value>)`, each
/// with an optional third argument naming the node-semver function.
fn semver_args(s: &str) -> Result<Pseudo, QueryError> {
    let mut args = split_args(s);
    if args.len() == 1 && args[0].is_empty() {
        args.clear();
    }
    let func = if args.len() == 3 {
        Some(unquote(&args.pop().unwrap_or_default()).to_string())
    } else {
        None
    };
    let is_attr = |a: &str| a.starts_with('[') || a.starts_with(":attr(");
    let (value, attr) = match args.as_slice() {
        [] => (None, None),
        [v] => (Some(v.clone()), None),
        [a, b] if is_attr(a) => (Some(b.clone()), Some(a.clone())),
        [a, b] if is_attr(b) => (Some(a.clone()), Some(b.clone())),
        _ => {
            return Err(QueryError {
                code: "ESEMVERVALUE",
                message: "`:semver` pseudo-class expects a static value in the first or second \
                          position"
                    .into(),
            });
        }
    };
    let (lookup, matcher) = match attr {
        Some(a) => attr_args(&a)?,
        None => (
            vec![],
            Matcher {
                attribute: "version".into(),
                ..Matcher::default()
            },
        ),
    };
    Ok(Pseudo::Semver {
        value: value.map(|v| unquote(&v).to_string()),
        func,
        lookup,
        matcher,
    })
}

/// `:vuln([severity=high], [cwe=79][severity=critical])`: each argument is one filter.
fn vuln_args(s: &str) -> Result<Vec<VulnFilter>, QueryError> {
    let bad = |m: &str| QueryError {
        code: "EQUERYATTR",
        message: m.to_string(),
    };
    let mut out = vec![];
    for arg in split_args(s).into_iter().filter(|a| !a.is_empty()) {
        let mut f = VulnFilter::default();
        let mut p = Parser {
            s: arg.as_bytes(),
            src: &arg,
            i: 0,
        };
        while p.i < p.s.len() {
            p.ws();
            if p.peek() != Some(b'[') {
                return Err(bad(":vuln pseudo-class only accepts attribute matchers"));
            }
            let m = p.attribute()?;
            let (op, value) = if m.operator.is_empty() {
                ("=".to_string(), "*".to_string())
            } else {
                (m.operator, m.value)
            };
            if op != "=" {
                return Err(bad(
                    ":vuln pseudo-class attribute selector only accepts \"=\" operator",
                ));
            }
            match m.attribute.as_str() {
                "severity" => f.severity.push(value),
                "cwe" => f.cwe.push(value),
                _ => {
                    return Err(bad(
                        ":vuln pseudo-class only matches \"severity\" and \"cwe\" attributes",
                    ));
                }
            }
            p.ws();
        }
        out.push(f);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(q: &str) -> Vec<Part> {
        let l = parse(q).unwrap();
        assert_eq!(l.0.len(), 1, "{q}");
        l.0[0].0.clone()
    }

    #[test]
    fn combinators_and_descendants_are_told_apart() {
        assert_eq!(
            parts(":root > .dev"),
            vec![
                Part::Pseudo(Pseudo::Plain("root".into())),
                Part::Combinator('>'),
                Part::Class("dev".into())
            ]
        );
        assert_eq!(
            parts("#a  #b"),
            vec![
                Part::Id("a".into()),
                Part::Combinator(' '),
                Part::Id("b".into())
            ]
        );
        assert_eq!(parts("#@babel/core"), vec![Part::Id("@babel/core".into())]);
        assert_eq!(
            parts("#lodash.merge"),
            vec![Part::Id("lodash".into()), Part::Class("merge".into())]
        );
        assert_eq!(
            parts("#lodash\\.merge"),
            vec![Part::Id("lodash.merge".into())]
        );
        assert_eq!(parse("#a, .dev").unwrap().0.len(), 2);
    }

    #[test]
    fn attributes_and_pseudos_keep_their_arguments() {
        assert_eq!(
            parts("[name^=\"@babel\" i]"),
            vec![Part::Attribute(Matcher {
                attribute: "name".into(),
                operator: "^=".into(),
                value: "@babel".into(),
                insensitive: true
            })]
        );
        let Part::Pseudo(Pseudo::Attr { lookup, matcher }) =
            parts(":attr(scripts, [test~=tap])").remove(0)
        else {
            panic!()
        };
        assert_eq!(lookup, vec![Lookup::Prop("scripts".into())]);
        assert_eq!(matcher.value, "tap");
        let Part::Pseudo(Pseudo::Semver { value, func, .. }) =
            parts(":semver(>=1.2.3 <2, [version], gtr)").remove(0)
        else {
            panic!()
        };
        assert_eq!(value.as_deref(), Some(">=1.2.3 <2"));
        assert_eq!(func.as_deref(), Some("gtr"));
        let Part::Pseudo(Pseudo::Has(inner)) = parts(":has(> #a, .peer)").remove(0) else {
            panic!()
        };
        assert_eq!(inner.0.len(), 2);
        assert_eq!(inner.0[0].0[0], Part::Combinator('>'));
        assert!(parse("[name").is_err());
        assert!(parse(":has(#a").is_err());
    }
}
