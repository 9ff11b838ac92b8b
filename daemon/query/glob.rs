//! The part of minimatch `:path()` needs: `/`-separated patterns with `**` (any number of
//! folders), `*` and `?` within one name, and `[...]` classes; as in minimatch's defaults, `*`
//! and `**` do not match names that start with a dot unless the pattern does.
//!
//! Must not: touch the filesystem.

/// Whether `path` matches `pattern` (both absolute, `/`-separated).
pub fn matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let s: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    segments(&p, &s)
}

fn segments(p: &[&str], s: &[&str]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((&"**", rest)) => (0..=s.len())
            .any(|k| s[..k].iter().all(|n| !n.starts_with('.')) && segments(rest, &s[k..])),
        Some((first, rest)) => match s.split_first() {
            Some((name, more)) => {
                (!name.starts_with('.') || first.starts_with('.'))
                    && name_matches(first.as_bytes(), name.as_bytes())
                    && segments(rest, more)
            }
            None => false,
        },
    }
}

fn name_matches(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|k| name_matches(&p[1..], &s[k..])),
        Some(b'?') => !s.is_empty() && name_matches(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(close) = p.iter().skip(2).position(|&c| c == b']').map(|i| i + 2) else {
                return s.first() == Some(&b'[') && name_matches(&p[1..], &s[1..]);
            };
            let Some(&c) = s.first() else { return false };
            let mut class = &p[1..close];
            let negate = matches!(class.first(), Some(b'!' | b'^'));
            if negate {
                class = &class[1..];
            }
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && name_matches(&p[close + 1..], &s[1..])
        }
        Some(b'\\') if p.len() > 1 => s.first() == Some(&p[1]) && name_matches(&p[2..], &s[1..]),
        Some(&c) => s.first() == Some(&c) && name_matches(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs_match_like_minimatch() {
        assert!(matches(
            "/p/node_modules/@babel/*",
            "/p/node_modules/@babel/core"
        ));
        assert!(!matches(
            "/p/node_modules/@babel/*",
            "/p/node_modules/@babel/core/node_modules/x"
        ));
        assert!(matches(
            "/p/node_modules/**",
            "/p/node_modules/a/node_modules/b"
        ));
        assert!(matches("/p/**/b", "/p/node_modules/a/node_modules/b"));
        assert!(!matches("/p/node_modules/*", "/p/node_modules/.bin"));
        assert!(matches("/p/node_modules/[ab]*", "/p/node_modules/bar"));
        assert!(matches("/p/packages/a", "/p/packages/a"));
    }
}
