//! Git dependency specs as npm-package-arg and hosted-git-info read them: the hosted shortcuts
//! (`github:u/r`, `gitlab:g/sub/r`, `bitbucket:u/r`, bare `u/r`), hosted URLs
//! (`https://github.com/u/r.git`, `git+ssh://git@github.com/u/r.git`, `git@github.com:u/r`), and
//! any other git URL (`git+https://`, `git+http://`, `git+ssh://`, `git://`, `git+file://`),
//! each with an optional `#` fragment: a committish, `semver:<range>`, and `path:<folder>`,
//! joined by `::`. Also what npm writes back: the lockfile's `resolved`
//! (`git+ssh://git@github.com/u/r.git#<sha>` for hosted repositories, the spec with the commit
//! for others) and the spec `hoard add` saves.
//!
//! Must not: run git or touch the filesystem.

/// A hosting service hosted-git-info knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    GitHub,
    GitLab,
    Bitbucket,
}

impl Host {
    fn domain(self) -> &'static str {
        match self {
            Host::GitHub => "github.com",
            Host::GitLab => "gitlab.com",
            Host::Bitbucket => "bitbucket.org",
        }
    }

    fn shortcut(self) -> &'static str {
        match self {
            Host::GitHub => "github",
            Host::GitLab => "gitlab",
            Host::Bitbucket => "bitbucket",
        }
    }

    fn of_domain(d: &str) -> Option<Host> {
        let d = d.strip_prefix("www.").unwrap_or(d).to_ascii_lowercase();
        [Host::GitHub, Host::GitLab, Host::Bitbucket]
            .into_iter()
            .find(|h| h.domain() == d)
    }

    fn of_shortcut(s: &str) -> Option<Host> {
        [Host::GitHub, Host::GitLab, Host::Bitbucket]
            .into_iter()
            .find(|h| h.shortcut() == s)
    }
}

/// A repository on a hosting service: `user` may hold GitLab's subgroups (`group/sub`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosted {
    pub host: Host,
    pub user: String,
    pub project: String,
}

impl Hosted {
    /// The URLs npm clones from, in the order it tries them: https, then ssh.
    pub fn clone_urls(&self) -> [String; 2] {
        let (d, u, p) = (self.host.domain(), &self.user, &self.project);
        [
            format!("https://{d}/{u}/{p}.git"),
            format!("git@{d}:{u}/{p}.git"),
        ]
    }

    /// `git+ssh://git@github.com/u/r.git`: hosted-git-info's `sshurl`, what npm locks.
    pub fn ssh_url(&self) -> String {
        format!(
            "git+ssh://git@{}/{}/{}.git",
            self.host.domain(),
            self.user,
            self.project
        )
    }

    /// `github:u/r`: the shortcut npm saves into package.json.
    pub fn shortcut(&self) -> String {
        format!("{}:{}/{}", self.host.shortcut(), self.user, self.project)
    }
}

/// A parsed git dependency spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSpec {
    /// The spec as written (for messages).
    pub raw: String,
    pub hosted: Option<Hosted>,
    /// For a repository that is not hosted: the URL git fetches (`git+` taken off), and the
    /// spec without its fragment (what `resolved` starts with).
    url: String,
    base: String,
    /// A branch, tag or commit (`None`: the remote's HEAD; never with `range`).
    pub committish: Option<String>,
    /// `semver:<range>`: the highest tag that satisfies it.
    pub range: Option<String>,
    /// `path:<folder>`: the package is this folder of the repository.
    pub subdir: Option<String>,
}

/// Whether `s` is a git spec at all (a cheap test before `GitSpec::parse`).
pub fn looks_like_git(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    [
        "git+",
        "git://",
        "github:",
        "gitlab:",
        "bitbucket:",
        "gist:",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
        || scp_like(s).is_some()
        || ((lower.starts_with("https://") || lower.starts_with("http://"))
            && hosted_of_url(s.split('#').next().unwrap_or(s)).is_some())
        || bare_shortcut(s.split('#').next().unwrap_or(s)).is_some()
}

/// `u/r` (npm reads it as `github:u/r`): two non-empty parts, not a path, not scoped.
fn bare_shortcut(s: &str) -> Option<(String, String)> {
    if s.starts_with('@') || s.starts_with('.') || s.starts_with('/') || s.contains(':') {
        return None;
    }
    let (u, r) = s.split_once('/')?;
    let ok = |p: &str| {
        !p.is_empty()
            && !p.contains('/')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (ok(u) && ok(r)).then(|| (u.to_string(), r.trim_end_matches(".git").to_string()))
}

/// `git@host:path` (scp-like ssh).
pub fn is_scp_like(s: &str) -> bool {
    scp_like(s).is_some()
}

/// `git@host:path` (scp-like ssh): (user@host, path).
fn scp_like(s: &str) -> Option<(&str, &str)> {
    let s = s.split('#').next().unwrap_or(s);
    if s.contains("://") {
        return None;
    }
    let (left, path) = s.split_once(':')?;
    let (user, host) = left.split_once('@')?;
    // npm-package-arg's test: a host with a dot (`name@github:u/r` is a name and a spec).
    (!user.is_empty() && host.contains('.') && !path.is_empty() && !host.contains('/'))
        .then_some((left, path))
}

/// A hosted repository from `<user>/<project>[.git]` (GitLab: more segments for subgroups).
fn hosted_path(host: Host, path: &str) -> Option<Hosted> {
    let path = path.trim_start_matches('/').trim_end_matches('/');
    // hosted-git-info's exclusions: registry-style and archive tarballs are not repositories.
    if path.contains("/-/") || path.ends_with(".tgz") || path.ends_with(".tar.gz") {
        return None;
    }
    let path = path.strip_suffix(".git").unwrap_or(path);
    let (user, project) = path.rsplit_once('/')?;
    let segments_ok = match host {
        Host::GitLab => !user.is_empty(),
        _ => !user.is_empty() && !user.contains('/'),
    };
    (segments_ok && !project.is_empty()).then(|| Hosted {
        host,
        user: user.to_string(),
        project: project.to_string(),
    })
}

/// A hosted repository from a URL (`https://github.com/u/r.git`, `git+ssh://git@github.com/u/r`,
/// `git://github.com/u/r`, `git@github.com:u/r.git`).
fn hosted_of_url(s: &str) -> Option<Hosted> {
    if let Some((left, path)) = scp_like(s) {
        let host = Host::of_domain(left.split_once('@')?.1)?;
        return hosted_path(host, path);
    }
    let rest = s.strip_prefix("git+").unwrap_or(s);
    let (scheme, after) = rest.split_once("://")?;
    if !matches!(
        scheme.to_ascii_lowercase().as_str(),
        "https" | "http" | "ssh" | "git"
    ) {
        return None;
    }
    let (authority, path) = after.split_once('/')?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // `git+ssh://git@github.com:u/r.git`: the scp form behind a scheme.
    if let Some((h, p)) = host_port.split_once(':')
        && !p.chars().all(|c| c.is_ascii_digit())
    {
        return hosted_path(Host::of_domain(h)?, &format!("{p}/{path}"));
    }
    let host = Host::of_domain(host_port.split(':').next()?)?;
    hosted_path(host, path)
}

impl GitSpec {
    /// Parse a git spec; `None` when it is not one. An error names what is wrong with one.
    pub fn parse(raw: &str) -> Option<Result<GitSpec, String>> {
        let s = raw.trim();
        if !looks_like_git(s) {
            return None;
        }
        let (body, fragment) = match s.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (s, None),
        };
        let lower = body.to_ascii_lowercase();
        if lower.starts_with("gist:") {
            return Some(Err(format!(
                "`{raw}`: gist dependencies are not supported; use the gist's git URL \
                 (git+https://gist.github.com/<id>.git)"
            )));
        }
        let hosted = match body.split_once(':') {
            Some((sc, path)) if Host::of_shortcut(&sc.to_ascii_lowercase()).is_some() => {
                let host = Host::of_shortcut(&sc.to_ascii_lowercase())?;
                match hosted_path(host, path) {
                    Some(h) => Some(h),
                    None => return Some(Err(format!("`{raw}`: expected {sc}:<user>/<repo>"))),
                }
            }
            _ => bare_shortcut(body)
                .map(|(user, project)| Hosted {
                    host: Host::GitHub,
                    user,
                    project,
                })
                .or_else(|| hosted_of_url(body)),
        };
        let url = if hosted.is_some() {
            String::new()
        } else {
            match plain_url(body) {
                Ok(u) => u,
                Err(e) => return Some(Err(format!("`{raw}`: {e}"))),
            }
        };
        let mut spec = GitSpec {
            raw: raw.to_string(),
            hosted,
            url,
            base: body.to_string(),
            committish: None,
            range: None,
            subdir: None,
        };
        if let Some(f) = fragment
            && let Err(e) = spec.read_fragment(f)
        {
            return Some(Err(format!("`{raw}`: {e}")));
        }
        Some(Ok(spec))
    }

    /// npm-package-arg's `setGitAttrs`: `::`-separated `semver:`, `path:` and a committish.
    fn read_fragment(&mut self, f: &str) -> Result<(), String> {
        for part in f.split("::").filter(|p| !p.is_empty()) {
            if let Some(r) = part.strip_prefix("semver:") {
                let r = percent_decode(r);
                if crate::semver_npm::Range::parse(&r).is_none() {
                    return Err(format!("`{r}` is not a valid semver range"));
                }
                self.range = Some(r);
            } else if let Some(p) = part.strip_prefix("path:") {
                let p = p.trim_matches('/');
                if p.split('/').any(|seg| seg == ".." || seg.is_empty()) {
                    return Err(format!("`path:{p}` must be a folder inside the repository"));
                }
                self.subdir = Some(p.to_string());
            } else if self.committish.is_some() {
                return Err("it names more than one committish".into());
            } else {
                self.committish = Some(part.to_string());
            }
        }
        if self.range.is_some() && self.committish.is_some() {
            return Err("it names both a committish and a semver range".into());
        }
        Ok(())
    }

    /// The URLs to try, in order.
    pub fn clone_urls(&self) -> Vec<String> {
        match &self.hosted {
            Some(h) => h.clone_urls().to_vec(),
            None => vec![self.url.clone()],
        }
    }

    /// The repository as messages and the cache name it: hosted ones by their ssh URL (as npm
    /// locks them), others by their URL.
    pub fn repo(&self) -> String {
        match &self.hosted {
            Some(h) => h.ssh_url(),
            None => self.base.clone(),
        }
    }

    /// What the lockfile's `resolved` says once the spec is at `sha`.
    pub fn resolved(&self, sha: &str) -> String {
        let mut frag = sha.to_string();
        if let Some(p) = &self.subdir {
            frag.push_str(&format!("::path:{p}"));
        }
        format!("{}#{frag}", self.repo())
    }

    /// What `hoard add` saves: hosted repositories as their shortcut (as npm saves them), others
    /// as written.
    pub fn saved(&self) -> String {
        match &self.hosted {
            Some(h) => match self.raw.split_once('#') {
                Some((_, f)) => format!("{}#{f}", h.shortcut()),
                None => h.shortcut(),
            },
            None => self.raw.trim().to_string(),
        }
    }

    /// The full commit the spec names, if it names one.
    pub fn commit(&self) -> Option<&str> {
        self.committish.as_deref().filter(|c| is_full_sha(c))
    }

    /// Whether a node locked at `resolved` is this spec's repository (arborist's dep-valid:
    /// the same repository, and the same commit when the spec names a full one; a branch, tag
    /// or range keeps the locked commit).
    pub fn accepts_resolved(&self, resolved: &str) -> bool {
        let Some(Ok(locked)) = GitSpec::parse(resolved) else {
            return false;
        };
        locked.repo() == self.repo()
            && locked.subdir == self.subdir
            && match self.commit() {
                Some(c) => locked.commit() == Some(c),
                None => locked.commit().is_some(),
            }
    }
}

pub fn is_full_sha(s: &str) -> bool {
    s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The URL git is given for a repository that is not hosted.
fn plain_url(body: &str) -> Result<String, String> {
    if scp_like(body).is_some() {
        return Ok(body.to_string());
    }
    let Some((scheme, rest)) = body.split_once("://") else {
        return Err("not a git URL".into());
    };
    let git_scheme = match scheme.to_ascii_lowercase().as_str() {
        "git" => "git".to_string(),
        s => match s.strip_prefix("git+") {
            Some(inner @ ("http" | "https" | "ssh" | "file" | "rsync" | "ftp")) => inner.into(),
            _ => return Err(format!("`{scheme}:` is not a git protocol npm supports")),
        },
    };
    // `git+ssh://git@host:path` is scp-like behind a scheme: git wants `git@host:path`.
    if git_scheme == "ssh"
        && let Some((authority, _)) = rest.split_once('/').or(Some((rest, "")))
        && let Some((_, p)) = authority.rsplit_once(':')
        && !p.is_empty()
        && !p.chars().all(|c| c.is_ascii_digit())
    {
        return Ok(rest.to_string());
    }
    if rest.is_empty() {
        return Err("the URL names no repository".into());
    }
    Ok(format!("{git_scheme}://{rest}"))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> GitSpec {
        GitSpec::parse(s).expect("a git spec").expect("valid")
    }

    #[test]
    fn hosted_forms_are_one_repository() {
        for s in [
            "github:u/r",
            "u/r",
            "git+https://github.com/u/r.git",
            "https://github.com/u/r.git",
            "https://github.com/u/r",
            "git+ssh://git@github.com/u/r.git",
            "git+ssh://git@github.com:u/r.git",
            "git://github.com/u/r.git",
            "git@github.com:u/r.git",
        ] {
            let g = p(s);
            assert_eq!(g.repo(), "git+ssh://git@github.com/u/r.git", "{s}");
            assert_eq!(g.saved(), "github:u/r", "{s}");
            assert_eq!(
                g.clone_urls(),
                ["https://github.com/u/r.git", "git@github.com:u/r.git"]
            );
        }
        assert_eq!(
            p("gitlab:g/sub/r").repo(),
            "git+ssh://git@gitlab.com/g/sub/r.git"
        );
        assert_eq!(p("bitbucket:u/r#v1").saved(), "bitbucket:u/r#v1");
    }

    #[test]
    fn plain_urls_keep_their_form() {
        let g = p("git+file:///tmp/repos/a.git#main");
        assert_eq!(g.clone_urls(), ["file:///tmp/repos/a.git"]);
        assert_eq!(g.committish.as_deref(), Some("main"));
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            g.resolved(sha),
            format!("git+file:///tmp/repos/a.git#{sha}")
        );
        assert_eq!(
            p("git://127.0.0.1:9418/a.git").clone_urls(),
            ["git://127.0.0.1:9418/a.git"]
        );
        assert_eq!(
            p("git+ssh://git@example.com:a/b.git").clone_urls(),
            ["git@example.com:a/b.git"]
        );
        assert_eq!(
            p("git+ssh://git@example.com:2222/a/b.git").clone_urls(),
            ["ssh://git@example.com:2222/a/b.git"]
        );
        assert_eq!(
            p("git+https://example.com/a.git").clone_urls(),
            ["https://example.com/a.git"]
        );
        // Not git: a tarball URL, a scoped name, a path, a range.
        for s in [
            "https://example.com/a.tgz",
            "@s/a",
            "./x/y",
            "^1.2.3",
            "file:x",
        ] {
            assert!(GitSpec::parse(s).is_none(), "{s}");
        }
    }

    #[test]
    fn fragments() {
        let g = p("github:u/r#semver:^1.2");
        assert_eq!((g.committish, g.range.as_deref()), (None, Some("^1.2")));
        let g = p("github:u/r#semver:%5E1.2::path:packages/a");
        assert_eq!(g.range.as_deref(), Some("^1.2"));
        assert_eq!(g.subdir.as_deref(), Some("packages/a"));
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            g.resolved(sha),
            format!("git+ssh://git@github.com/u/r.git#{sha}::path:packages/a")
        );
        for bad in [
            "u/r#a::b",
            "u/r#v1::semver:^1",
            "u/r#semver:nope!",
            "u/r#path:../x",
        ] {
            assert!(GitSpec::parse(bad).unwrap().is_err(), "{bad}");
        }
        assert!(GitSpec::parse("gist:abc").unwrap().is_err());
    }

    #[test]
    fn locked_commits_satisfy_like_arborist() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let locked = format!("git+ssh://git@github.com/u/r.git#{sha}");
        assert!(p("github:u/r").accepts_resolved(&locked));
        assert!(p("u/r#main").accepts_resolved(&locked));
        assert!(p(&format!("u/r#{sha}")).accepts_resolved(&locked));
        assert!(!p("u/r#1111111111111111111111111111111111111111").accepts_resolved(&locked));
        assert!(!p("github:u/other").accepts_resolved(&locked));
        assert!(!p("github:u/r").accepts_resolved("https://registry/x.tgz"));
    }
}
