//! The system `git`, run for one cached repository: list a remote's refs (`ls-remote`, as
//! @npmcli/git's `revs` does), pick the commit a committish or `semver:` range names, fetch
//! commits into a bare cache repository, and check one out into a folder. git never prompts
//! (`GIT_TERMINAL_PROMPT=0`, ssh in batch mode unless `GIT_SSH_COMMAND` says otherwise): the
//! daemon has no terminal to ask on.
//!
//! Must not: pack or import anything. Every call blocks (run it off the async threads).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use super::spec::{GitSpec, is_full_sha};
use crate::error::{HoardError, Result};
use crate::semver_npm::{Range, parse_version};

/// A remote's refs: `HEAD`, `refs/heads/…`, `refs/tags/…` (annotated tags peeled).
#[derive(Debug, Default)]
pub struct Refs {
    pub by_name: BTreeMap<String, String>,
}

fn git(args: &[&str], cwd: Option<&Path>) -> std::io::Result<Output> {
    let mut c = Command::new("git");
    c.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "echo")
        .stdin(std::process::Stdio::null());
    if std::env::var_os("GIT_SSH_COMMAND").is_none() {
        c.env("GIT_SSH_COMMAND", "ssh -oBatchMode=yes");
    }
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    c.output()
}

fn failure(repo: &str, what: &str, out: std::io::Result<Output>) -> HoardError {
    let message = match out {
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let first_fatal = err
                .lines()
                .find(|l| l.starts_with("fatal:") || l.starts_with("error:"));
            let line = first_fatal.or_else(|| err.lines().rev().find(|l| !l.trim().is_empty()));
            format!("{what} failed ({})", line.unwrap_or("no message").trim())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
            "{what} needs `git`, which is not on the daemon's PATH; install git and restart the \
             daemon (`hoard daemon restart`)"
        ),
        Err(e) => format!("{what} failed: {e}"),
    };
    HoardError::Git {
        repo: repo.to_string(),
        message,
    }
}

/// Run git, and fail naming `repo` and `what` unless it succeeds.
fn run(repo: &str, what: &str, args: &[&str], cwd: Option<&Path>) -> Result<Output> {
    match git(args, cwd) {
        Ok(o) if o.status.success() => Ok(o),
        other => Err(failure(repo, what, other)),
    }
}

/// The refs of the first of the spec's URLs that answers, and that URL; when none does, each
/// URL's failure.
pub fn ls_remote(spec: &GitSpec) -> Result<(Refs, String)> {
    let mut failures = Vec::new();
    for url in spec.clone_urls() {
        match git(&["ls-remote", url.as_str()], None) {
            Ok(o) if o.status.success() => {
                return Ok((parse_refs(&String::from_utf8_lossy(&o.stdout)), url));
            }
            other => failures.push(failure(
                &spec.repo(),
                &format!("`git ls-remote {url}`"),
                other,
            )),
        }
    }
    let mut messages = failures.into_iter().map(|e| match e {
        HoardError::Git { message, .. } => message,
        e => e.to_string(),
    });
    let first = messages
        .next()
        .unwrap_or_else(|| "no URL to clone from".into());
    let all = messages.fold(first, |all, m| format!("{all}; then {m}"));
    Err(HoardError::Git {
        repo: spec.repo(),
        message: format!("{all}; check the URL, and that git can reach it from this machine"),
    })
}

fn parse_refs(out: &str) -> Refs {
    let mut refs = Refs::default();
    let mut peeled = Vec::new();
    for line in out.lines() {
        let Some((sha, name)) = line.split_once('\t') else {
            continue;
        };
        match name.strip_suffix("^{}") {
            Some(tag) => peeled.push((tag.to_string(), sha.to_string())),
            None => {
                refs.by_name.insert(name.to_string(), sha.to_string());
            }
        }
    }
    // An annotated tag names the tag object; the commit is its peeled line.
    refs.by_name.extend(peeled);
    refs
}

/// What the spec picks from `refs`: the commit, or `None` when the committish may be an
/// abbreviated commit the refs do not show (looked up after a fetch).
pub fn pick(spec: &GitSpec, refs: &Refs) -> Result<Option<String>> {
    let repo = spec.repo();
    if let Some(range) = &spec.range {
        return pick_range(&repo, range, refs).map(Some);
    }
    let Some(c) = spec.committish.as_deref() else {
        return match refs.by_name.get("HEAD") {
            Some(sha) => Ok(Some(sha.clone())),
            None => Err(HoardError::Git {
                repo,
                message: "the repository has no HEAD (is it empty?); name a branch or tag after \
                          `#`"
                .into(),
            }),
        };
    };
    for name in [
        format!("refs/tags/{c}"),
        format!("refs/heads/{c}"),
        c.to_string(),
    ] {
        if let Some(sha) = refs.by_name.get(&name) {
            return Ok(Some(sha.clone()));
        }
    }
    if is_full_sha(c) {
        return Ok(Some(c.to_ascii_lowercase()));
    }
    if c.len() >= 4 && c.chars().all(|ch| ch.is_ascii_hexdigit()) {
        return Ok(None);
    }
    Err(no_such_ref(&repo, c))
}

pub fn no_such_ref(repo: &str, c: &str) -> HoardError {
    HoardError::Git {
        repo: repo.to_string(),
        message: format!(
            "no branch, tag or commit named `{c}`; check the ref after `#` in package.json"
        ),
    }
}

/// The commit of the highest tag (`v1.2.3` or `1.2.3`) within `range`.
fn pick_range(repo: &str, range: &str, refs: &Refs) -> Result<String> {
    let r = Range::parse(range).ok_or_else(|| HoardError::Git {
        repo: repo.to_string(),
        message: format!("`{range}` is not a valid semver range"),
    })?;
    let mut best: Option<(semver::Version, &String)> = None;
    for (name, sha) in &refs.by_name {
        let Some(tag) = name.strip_prefix("refs/tags/") else {
            continue;
        };
        let Some(v) = parse_version(tag.trim_start_matches(['v', '='])) else {
            continue;
        };
        if r.satisfies(&v) && best.as_ref().is_none_or(|(b, _)| v > *b) {
            best = Some((v, sha));
        }
    }
    best.map(|(_, sha)| sha.clone())
        .ok_or_else(|| HoardError::Git {
            repo: repo.to_string(),
            message: format!("no tag's version satisfies `semver:{range}`"),
        })
}

/// A bare repository that caches one remote's commits.
pub struct Bare<'a> {
    pub dir: &'a Path,
    pub repo: String,
}

impl Bare<'_> {
    fn arg_dir(&self) -> String {
        format!("--git-dir={}", self.dir.display())
    }

    pub fn init(&self) -> Result<()> {
        if self.dir.join("HEAD").is_file() {
            return Ok(());
        }
        let d = self.dir.display().to_string();
        run(
            &self.repo,
            "creating the cache repository",
            &["init", "-q", "--bare", &d],
            None,
        )?;
        Ok(())
    }

    /// The full commit `rev` names here, if the cache has it.
    pub fn commit(&self, rev: &str) -> Option<String> {
        let spec = format!("{rev}^{{commit}}");
        let o = git(
            &[&self.arg_dir(), "rev-parse", "-q", "--verify", &spec],
            None,
        )
        .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    /// Fetch every branch and tag of `url`.
    pub fn fetch_all(&self, url: &str) -> Result<()> {
        let what = format!("`git fetch {url}`");
        run(
            &self.repo,
            &what,
            &[
                &self.arg_dir(),
                "fetch",
                "-q",
                "--force",
                "--prune",
                url,
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
            ],
            None,
        )?;
        Ok(())
    }

    /// Fetch one commit by its id (servers that allow it: reachable but not a branch or tag).
    pub fn fetch_commit(&self, url: &str, sha: &str) -> bool {
        git(&[&self.arg_dir(), "fetch", "-q", url, sha], None).is_ok_and(|o| o.status.success())
    }

    /// Check out `sha` into `dest` (a new folder), with its submodules.
    pub fn checkout(&self, sha: &str, dest: &Path) -> Result<()> {
        let (src, d) = (self.dir.display().to_string(), dest.display().to_string());
        run(
            &self.repo,
            "cloning from the cache",
            &["clone", "-q", "--shared", "--no-checkout", &src, &d],
            None,
        )?;
        run(
            &self.repo,
            &format!("checking out {sha}"),
            &["-c", "advice.detachedHead=false", "checkout", "-q", sha],
            Some(dest),
        )?;
        if dest.join(".gitmodules").is_file() {
            run(
                &self.repo,
                "updating submodules",
                &["submodule", "update", "-q", "--init", "--recursive"],
                Some(dest),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> GitSpec {
        GitSpec::parse(s).unwrap().unwrap()
    }

    #[test]
    fn picks_like_npm() {
        let refs = parse_refs(
            "aaaa000000000000000000000000000000000000\tHEAD\n\
             aaaa000000000000000000000000000000000000\trefs/heads/main\n\
             bbbb000000000000000000000000000000000000\trefs/heads/next\n\
             cccc000000000000000000000000000000000000\trefs/tags/v1.0.0\n\
             dddd000000000000000000000000000000000000\trefs/tags/v1.2.0\n\
             eeee000000000000000000000000000000000000\trefs/tags/v1.2.0^{}\n\
             ffff000000000000000000000000000000000000\trefs/tags/2.0.0\n",
        );
        let at = |s: &str| pick(&spec(s), &refs).unwrap();
        assert_eq!(
            at("u/r").unwrap(),
            "aaaa000000000000000000000000000000000000"
        );
        assert_eq!(
            at("u/r#next").unwrap(),
            "bbbb000000000000000000000000000000000000"
        );
        assert_eq!(
            at("u/r#v1.0.0").unwrap(),
            "cccc000000000000000000000000000000000000"
        );
        // Annotated: the peeled commit, not the tag object.
        assert_eq!(
            at("u/r#semver:^1").unwrap(),
            "eeee000000000000000000000000000000000000"
        );
        assert_eq!(
            at("u/r#semver:*").unwrap(),
            "ffff000000000000000000000000000000000000"
        );
        assert_eq!(at("u/r#abcd12"), None);
        let e = pick(&spec("u/r#nope"), &refs).unwrap_err().to_string();
        assert!(e.contains("`nope`") && e.contains("github.com/u/r"), "{e}");
        let e = pick(&spec("u/r#semver:^3"), &refs).unwrap_err().to_string();
        assert!(e.contains("^3"), "{e}");
    }
}
