//! bun.lock (bun's text lockfile, JSON with trailing commas): every `packages` entry is an
//! array whose first item is `name@version` (or `name@workspace:…`, `name@github:…`).
//!
//! Must not: read bun.lockb (binary; `bun bun.lockb` prints it as yarn.lock, which hoard reads).

/// (name, version) of every package the file locks.
pub fn pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let v: serde_json::Value = serde_json::from_str(&strip_trailing_commas(text))
        .map_err(|e| format!("not JSON ({e})"))?;
    let packages = v["packages"].as_object().ok_or("no `packages`")?;
    let mut out = Vec::new();
    for entry in packages.values() {
        if let Some(id) = entry.get(0).and_then(|x| x.as_str())
            && let Some((name, version)) = super::split_name(id)
        {
            out.push((name.to_string(), version.to_string()));
        }
    }
    Ok(out)
}

/// JSON with the commas before `}` or `]` removed (outside strings), as bun writes it.
fn strip_trailing_commas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_str, mut escaped) = (false, false);
    let mut pending_comma: Option<usize> = None;
    for c in text.chars() {
        if in_str {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                pending_comma = None;
                in_str = true;
            }
            ',' => pending_comma = Some(out.len()),
            '}' | ']' => {
                if let Some(at) = pending_comma.take() {
                    out.remove(at);
                }
            }
            c if c.is_whitespace() => {}
            _ => pending_comma = None,
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_give_their_ids() {
        let t = r#"{
  "lockfileVersion": 1,
  "workspaces": { "": { "name": "app", "dependencies": { "a": "^1.0.0", }, }, },
  "packages": {
    "a": ["a@1.2.0", "", { "dependencies": { "b": "^2" } }, "sha512-x"],
    "@s/b": ["@s/b@2.0.1", "", {}, "sha512-y",],
    "w": ["w@workspace:packages/w"],
    "note": ["n@1.0.0", "", {}, "sha512-,]"],
  },
}"#;
        let mut p = pairs(t).unwrap();
        p.sort();
        assert_eq!(
            p,
            [
                ("@s/b", "2.0.1"),
                ("a", "1.2.0"),
                ("n", "1.0.0"),
                ("w", "workspace:packages/w")
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
        );
    }
}
