//! String order as npm sorts names and paths (`@isaacs/string-locale-compare` with the `en`
//! locale, i.e. ICU collation): punctuation before digits before letters, letters compared
//! without case first (lowercase wins a tie), a prefix before the longer string.
//!
//! Placement order depends on it (the queue is sorted by depth then path, peer sets and tasks by
//! name). Must not: allocate per comparison beyond what the iterators need.

use std::cmp::Ordering;

/// ICU root order of the ASCII punctuation and symbols that can appear in package names and
/// paths; other ASCII sorts after them and before digits.
const PUNCT: &[u8] = b" _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";

/// Primary weight of each ASCII byte: punctuation (in ICU's order) < other ASCII < digits <
/// letters, letters without case.
const WEIGHTS: [u8; 128] = {
    let mut w = [0u8; 128];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        w[c] = if b.is_ascii_digit() {
            170 + (b - b'0')
        } else if b.is_ascii_alphabetic() {
            190 + (b.to_ascii_lowercase() - b'a')
        } else {
            40 + b / 2
        };
        c += 1;
    }
    let mut i = 0;
    while i < PUNCT.len() {
        w[PUNCT[i] as usize] = 1 + i as u8;
        i += 1;
    }
    w
};

fn primary(c: u8) -> u8 {
    if c < 128 { WEIGHTS[c as usize] } else { 250 }
}

/// Compare two strings the way `localeCompare(a, b, 'en')` does for ASCII names and paths.
pub fn locale_cmp(a: &str, b: &str) -> Ordering {
    let pa = a.bytes().map(primary);
    let pb = b.bytes().map(primary);
    match pa.cmp(pb) {
        Ordering::Equal => {}
        o => return o,
    }
    // Tertiary: lowercase before uppercase, first difference wins.
    for (x, y) in a.bytes().zip(b.bytes()) {
        if x != y {
            return match (x.is_ascii_lowercase(), y.is_ascii_lowercase()) {
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                _ => x.cmp(&y),
            };
        }
    }
    a.len().cmp(&b.len())
}

/// A key whose plain ordering is `locale_cmp`'s (for sorting many times without comparing
/// strings char by char).
pub fn sort_key(s: &str) -> Vec<u8> {
    let mut k: Vec<u8> = s.bytes().map(primary).collect();
    k.push(0);
    k.extend(s.bytes().map(|b| u8::from(b.is_ascii_uppercase())));
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order `new Intl.Collator('en').compare` gives (node 20) for these strings.
    #[test]
    fn matches_node_intl_collator() {
        let want = [
            "_a",
            "-a",
            ".a",
            "@a",
            "@babel/code-frame",
            "@babel/core",
            "@types/node",
            "/a",
            "~a",
            "$a",
            "0a",
            "a",
            "A",
            "a_b",
            "a-b",
            "a!b",
            "a.b",
            "a@b",
            "a/b",
            "a+b",
            "a0",
            "a1",
            "a10",
            "a2",
            "ab",
            "b",
            "babel",
            "babel-core",
            "z",
            "Z",
        ];
        let mut got = want.to_vec();
        got.reverse();
        got.sort_by(|a, b| locale_cmp(a, b));
        assert_eq!(got, want);
        let mut by_key = want.to_vec();
        by_key.reverse();
        by_key.sort_by_key(|s| sort_key(s));
        assert_eq!(by_key, want);
    }
}
