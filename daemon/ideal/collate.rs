//! String order as npm sorts names and paths (`@isaacs/string-locale-compare` with the `en`
//! locale, i.e. ICU collation): punctuation before digits before letters, letters compared
//! without case first (lowercase wins a tie), a prefix before the longer string.
//!
//! Placement order depends on it (the queue is sorted by depth then path, peer sets and tasks by
//! name). Must not: allocate per comparison beyond what the iterators need.

use std::cmp::Ordering;

/// ICU root order of the ASCII punctuation and symbols that can appear in package names and
/// paths; anything not listed sorts after them and before digits.
const PUNCT: &str = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";

fn primary(c: char) -> (u8, u32) {
    if let Some(i) = PUNCT.find(c) {
        (0, i as u32)
    } else if c.is_ascii_digit() {
        (2, c as u32)
    } else if c.is_ascii_alphabetic() {
        (3, c.to_ascii_lowercase() as u32)
    } else if c.is_ascii() {
        (1, c as u32)
    } else {
        (4, c as u32)
    }
}

/// Compare two strings the way `localeCompare(a, b, 'en')` does for ASCII names and paths.
pub fn locale_cmp(a: &str, b: &str) -> Ordering {
    let pa = a.chars().map(primary);
    let pb = b.chars().map(primary);
    match pa.cmp(pb) {
        Ordering::Equal => {}
        o => return o,
    }
    // Tertiary: lowercase before uppercase, first difference wins.
    for (x, y) in a.chars().zip(b.chars()) {
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
    }
}
