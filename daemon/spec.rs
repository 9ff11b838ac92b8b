//! Dependency specs as npm (npm-package-arg) reads them: ranges, exact versions, dist-tags,
//! `npm:` aliases, tarball URLs, `file:` directories and tarballs, `link:`, `workspace:`, and git
//! repositories (`crate::git::spec`). Also validates package names before any path is built
//! from them.
//!
//! Must not: fetch anything.

use crate::error::{HoardError, Result};
use crate::git::GitSpec;
use crate::semver_npm::Range;

#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// A semver range (including exact versions and `*`).
    Range(String),
    /// A dist-tag such as `latest` or `next`.
    Tag(String),
    /// `npm:real-name@spec`: install `real-name` under the dependency's name.
    Alias { name: String, spec: Box<Spec> },
    /// A remote tarball.
    Tarball(String),
    /// A local directory (`file:../x`), linked as a symlink like npm does.
    Directory(String),
    /// A local tarball file.
    LocalTarball(String),
    /// `link:path` (pnpm/yarn): always a symlink.
    Link(String),
    /// `workspace:` (pnpm/yarn protocol): a workspace member.
    Workspace(String),
    /// A git repository (`github:u/r#v1`, `git+https://…`, `u/r`).
    Git(Box<GitSpec>),
}

/// Validate an npm package name (the rules of validate-npm-package-name for new packages,
/// relaxed to accept legacy names with capitals) so it can be used as a path.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(HoardError::InvalidInput(format!(
            "invalid package name `{name}`: {why}"
        )))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 214 {
        return bad("it is longer than 214 characters");
    }
    let (scope, base) = match name.strip_prefix('@') {
        Some(rest) => match rest.split_once('/') {
            Some((s, b)) => (Some(s), b),
            None => return bad("a scoped name needs a `/`"),
        },
        None => (None, name),
    };
    for part in scope.into_iter().chain(std::iter::once(base)) {
        if part.is_empty() || part == "." || part == ".." {
            return bad("a name part is empty, `.` or `..`");
        }
        if part.starts_with('.') || part.starts_with('_') && scope.is_none() && part == base {
            return bad("it starts with `.` or `_`");
        }
        if part.contains('/') || part.contains('\\') || part.contains('\0') {
            return bad("it contains a path separator");
        }
        if part.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("it contains white space or control characters");
        }
    }
    if name.contains(':') {
        return bad("it contains `:`");
    }
    // npm's blacklist: a folder named like this would break node_modules (or a web server).
    if scope.is_none()
        && (base.eq_ignore_ascii_case("node_modules") || base.eq_ignore_ascii_case("favicon.ico"))
    {
        return bad("npm does not allow this name");
    }
    Ok(())
}

/// What follows `npm:` in an alias: `name@spec` or `name` (scoped names keep their leading
/// `@`), as (name, spec); the spec is empty when none is given.
pub fn split_alias(rest: &str) -> (String, &str) {
    match rest.strip_prefix('@') {
        Some(r) => match r.split_once('@') {
            Some((n, sp)) => (format!("@{n}"), sp),
            None => (rest.to_string(), ""),
        },
        None => match rest.split_once('@') {
            Some((n, sp)) => (n.to_string(), sp),
            None => (rest.to_string(), ""),
        },
    }
}

impl Spec {
    /// Parse the spec of dependency `dep_name` (used in messages).
    pub fn parse(dep_name: &str, raw: &str) -> Result<Spec> {
        Ok(Spec::parse_with_range(dep_name, raw)?.0)
    }

    /// `parse`, with the range a registry spec (or an alias of one) was read as: the caller
    /// needs it, and parsing it twice cost a warm resolve a few percent.
    pub fn parse_with_range(dep_name: &str, raw: &str) -> Result<(Spec, Option<Range>)> {
        let s = raw.trim();
        if let Some(rest) = s.strip_prefix("npm:") {
            // The alias is the folder name in node_modules: it must be a valid name itself.
            validate_name(dep_name)?;
            let (name, spec) = split_alias(rest);
            validate_name(&name)?;
            let (inner, range) =
                Spec::parse_with_range(&name, if spec.is_empty() { "*" } else { spec })?;
            if matches!(inner, Spec::Alias { .. }) {
                return Err(HoardError::InvalidInput(format!(
                    "dependency `{dep_name}`: nested npm: aliases are not allowed (`{raw}`)"
                )));
            }
            let alias = Spec::Alias {
                name,
                spec: Box::new(inner),
            };
            return Ok((alias, range));
        }
        if let Some(p) = s.strip_prefix("workspace:") {
            return Ok((Spec::Workspace(p.to_string()), None));
        }
        if let Some(p) = s.strip_prefix("link:") {
            return Ok((Spec::Link(p.to_string()), None));
        }
        if let Some(p) = s.strip_prefix("file:") {
            let local = if is_tarball_path(p) {
                Spec::LocalTarball(p.to_string())
            } else {
                Spec::Directory(p.to_string())
            };
            return Ok((local, None));
        }
        if let Some(git) = GitSpec::parse(s) {
            return git
                .map(|g| (Spec::Git(Box::new(g)), None))
                .map_err(|e| HoardError::InvalidInput(format!("dependency `{dep_name}`: {e}")));
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            return Ok((Spec::Tarball(s.to_string()), None));
        }
        if s.starts_with("./") || s.starts_with("../") || s.starts_with('/') || s.starts_with("~/")
        {
            let local = if is_tarball_path(s) {
                Spec::LocalTarball(s.to_string())
            } else {
                Spec::Directory(s.to_string())
            };
            return Ok((local, None));
        }
        if s.is_empty() {
            return Ok((Spec::Range("*".into()), Range::parse("*")));
        }
        if let Some(range) = Range::parse(s) {
            return Ok((Spec::Range(s.into()), Some(range)));
        }
        if s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Ok((Spec::Tag(s.to_string()), None));
        }
        Err(HoardError::InvalidInput(format!(
            "dependency `{dep_name}`: `{raw}` is not a valid version range, dist-tag, alias, URL \
             or path"
        )))
    }
}

fn is_tarball_path(p: &str) -> bool {
    p.ends_with(".tgz") || p.ends_with(".tar.gz") || p.ends_with(".tar")
}

/// Split a command-line package argument (`react@^18`, `@types/node@20`, `alias@npm:x@1`, `x`)
/// into (name, spec).
pub fn split_arg(arg: &str) -> Result<(String, String)> {
    let (name, spec) = if let Some(rest) = arg.strip_prefix('@') {
        match rest.split_once('@') {
            Some((n, s)) => (format!("@{n}"), s.to_string()),
            None => (arg.to_string(), String::new()),
        }
    } else {
        match arg.split_once('@') {
            Some((n, s)) => (n.to_string(), s.to_string()),
            None => (arg.to_string(), String::new()),
        }
    };
    validate_name(&name)?;
    Ok((name, spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_npm_specs() {
        assert_eq!(
            Spec::parse("a", "^1.2.3").unwrap(),
            Spec::Range("^1.2.3".into())
        );
        assert_eq!(Spec::parse("a", "").unwrap(), Spec::Range("*".into()));
        assert_eq!(
            Spec::parse("a", "latest").unwrap(),
            Spec::Tag("latest".into())
        );
        assert_eq!(
            Spec::parse("a", "npm:@scope/b@^2").unwrap(),
            Spec::Alias {
                name: "@scope/b".into(),
                spec: Box::new(Spec::Range("^2".into()))
            }
        );
        assert_eq!(
            Spec::parse("a", "npm:b").unwrap(),
            Spec::Alias {
                name: "b".into(),
                spec: Box::new(Spec::Range("*".into()))
            }
        );
        assert!(matches!(
            Spec::parse("a", "file:../x").unwrap(),
            Spec::Directory(_)
        ));
        assert!(matches!(
            Spec::parse("a", "file:x.tgz").unwrap(),
            Spec::LocalTarball(_)
        ));
        assert!(matches!(
            Spec::parse("a", "https://h/x.tgz").unwrap(),
            Spec::Tarball(_)
        ));
        for git in [
            "github:u/r",
            "git+https://github.com/u/r.git",
            "u/r",
            "u/r#v1",
            "git+file:///tmp/r.git#main",
        ] {
            assert!(
                matches!(Spec::parse("dep", git).unwrap(), Spec::Git(_)),
                "{git}"
            );
        }
        let e = Spec::parse("dep", "u/r#a::b").unwrap_err().to_string();
        assert!(e.contains("dep") && e.contains("u/r#a::b"), "{e}");
    }

    #[test]
    fn names_are_validated() {
        for ok in ["react", "@types/node", "lodash.merge", "JSONStream"] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "",
            "../evil",
            "@scope",
            "a/b",
            ".hidden",
            "@s/..",
            "with space",
            "node_modules",
            "NODE_MODULES",
            "favicon.ico",
        ] {
            assert!(validate_name(bad).is_err(), "{bad} accepted");
        }
        let alias = Spec::parse("node_modules", "npm:react@18").unwrap_err();
        assert!(alias.to_string().contains("`node_modules`"), "{alias}");
        assert_eq!(
            split_arg("@types/node@20").unwrap(),
            ("@types/node".into(), "20".into())
        );
        assert_eq!(split_arg("react").unwrap(), ("react".into(), "".into()));
    }
}
