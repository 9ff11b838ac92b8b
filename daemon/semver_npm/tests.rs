//! The range table: every (range, version) pair in table.tsv was answered by node-semver itself
//! (gen-table.js, loose mode as npm reads ranges; regenerate with
//! `SEMVER=/usr/lib/node_modules/npm/node_modules/semver node gen-table.js > table.tsv`).

use super::*;

#[test]
fn node_semver_table() {
    let table = include_str!("table.tsv");
    let mut cases = 0;
    let mut failures = Vec::new();
    for line in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut cols = line.split('\t');
        let (Some(r), Some(v), Some(want)) = (cols.next(), cols.next(), cols.next()) else {
            panic!("malformed table line {line:?}");
        };
        cases += 1;
        let range = Range::parse(r);
        let got = match (&range, parse_version(v)) {
            (None, _) => "invalid".to_string(),
            (Some(range), Some(ver)) => range.satisfies(&ver).to_string(),
            (Some(_), None) => "false".to_string(),
        };
        if got != want {
            failures.push(format!(
                "{r:?} vs {v}: node-semver says {want}, we say {got}"
            ));
        }
    }
    assert!(cases >= 300, "table too small: {cases}");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn non_ranges_are_tags() {
    for tag in ["latest", "next", "beta", "canary-2"] {
        assert!(Range::parse(tag).is_none(), "{tag} parsed as a range");
    }
}

#[test]
fn intersects_like_node_semver() {
    let cases = [
        ("^1.2.3", "1.x", true),
        ("^1.2.3", "^2", false),
        ("*", "^2", true),
        (">=1.0.0 <2.0.0", ">=2.0.0", false),
        (">=1.0.0 <=2.0.0", ">=2.0.0", true),
        ("1.2.3", "^1", true),
        ("1.2.3", "^2 || 1.2.x", true),
        ("~1.2.0", "1.3.0", false),
    ];
    for (a, b, want) in cases {
        let (ra, rb) = (Range::parse(a).unwrap(), Range::parse(b).unwrap());
        assert_eq!(ra.intersects(&rb), want, "{a} ∩ {b}");
        assert_eq!(rb.intersects(&ra), want, "{b} ∩ {a}");
    }
}
