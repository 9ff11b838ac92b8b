//! The dashboard's two pages: the overview (the store, what sharing saves, the projects with
//! their last install and status) and a project (its status, install scripts awaiting approval,
//! search over its packages, why one is there, and its tree).
//!
//! Must not: gather data (it renders what `data` gathered).

use std::fmt::Write;

use hoard_proto::v1::{InstallScriptsResponse, ScriptVerdict};

use super::data::{ProjectView, StoreView};
use super::html::{bytes, esc, now, page, project_href, when};
use super::treeview;
use crate::linker::state::Freshness;

fn status_html(s: &Freshness) -> String {
    let (class, detail) = match s {
        Freshness::UpToDate => ("up", String::new()),
        Freshness::OutOfDate(why) => ("stale", format!(": {}", esc(why))),
        Freshness::NotInstalled => ("none", String::new()),
        Freshness::Gone => ("gone", String::new()),
    };
    format!(
        "<span class=\"status status-{class}\">{}{detail}</span>",
        s.word()
    )
}

/// The overview page.
pub fn overview(v: &StoreView) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<section id=\"store\"><h2>Store</h2><dl>\
         <dt>path</dt><dd><code>{path}</code></dd>\
         <dt>on disk</dt><dd id=\"store-bytes\" data-bytes=\"{bytes_n}\">{bytes} in \
         <span id=\"store-files\">{files}</span> files</dd>\
         <dt>packages</dt><dd id=\"store-packages\">{packages}</dd>\
         <dt>metadata cache</dt><dd>{meta}</dd>\
         <dt>saved by sharing</dt><dd id=\"store-saved\" data-bytes=\"{saved_n}\">{saved} \
         <span class=\"quiet\">(the projects link {linked} of package files; the store holds \
         them once)</span></dd></dl></section>",
        path = esc(&v.path.display().to_string()),
        bytes_n = v.bytes,
        bytes = bytes(v.bytes),
        files = v.files,
        packages = v.packages,
        meta = bytes(v.metadata_bytes),
        saved_n = v.saved_bytes(),
        saved = bytes(v.saved_bytes()),
        linked = bytes(v.linked_bytes),
    );
    b.push_str(
        "<section id=\"projects\"><h2>Projects</h2><table><thead><tr><th>project</th>\
         <th>last install</th><th>packages</th><th>status</th></tr></thead><tbody>",
    );
    let now = now();
    for p in &v.projects {
        let dir = p.path.display().to_string();
        let _ = write!(
            b,
            "<tr class=\"project\" data-path=\"{d}\"><td><a href=\"{href}\">{d}</a></td>\
             <td>{last}</td><td>{n}</td><td>{status}</td></tr>",
            d = esc(&dir),
            href = project_href(&dir),
            last = p
                .last_install
                .map(|t| when(t, now))
                .unwrap_or_else(|| "never".into()),
            n = p.packages,
            status = status_html(&p.status),
        );
    }
    if v.projects.is_empty() {
        b.push_str("<tr><td colspan=\"4\" class=\"quiet\">No project installed with this store yet.</td></tr>");
    }
    b.push_str("</tbody></table></section>");
    page("store and projects", &b)
}

/// What the page was asked: a search and a package to explain.
pub struct Ask<'a> {
    pub q: &'a str,
    pub why: Option<&'a str>,
}

/// A project's page. `scripts` is the InstallScripts answer (or why there is none).
pub fn project(
    v: &ProjectView,
    scripts: Result<InstallScriptsResponse, String>,
    ask: &Ask,
) -> String {
    let dir = v.dir.display().to_string();
    let title = if v.name.is_empty() {
        dir.clone()
    } else if v.version.is_empty() {
        v.name.clone()
    } else {
        format!("{}@{}", v.name, v.version)
    };
    let mut b = String::new();
    let _ = write!(
        b,
        "<section id=\"project\" data-path=\"{d}\"><h2>{t}</h2><p><code>{d}</code></p>\
         <p>{status}{how}</p></section>",
        d = esc(&dir),
        t = esc(&title),
        status = status_html(&v.status),
        how = v
            .installed_as
            .as_ref()
            .map(|(l, m)| format!(" · {} layout, {} links", esc(l), esc(m)))
            .unwrap_or_default(),
    );
    b.push_str(&scripts_html(scripts));
    let why_base = format!("{}&why=", project_href(&dir));
    match &v.tree {
        Err(e) => {
            let _ = write!(
                b,
                "<section id=\"tree\"><h2>Dependencies</h2><p class=\"error\">{}</p></section>",
                esc(e)
            );
        }
        Ok(tree) => {
            if let Some(loc) = ask.why {
                match treeview::why_html(tree, loc) {
                    Some(w) => b.push_str(&w),
                    None => {
                        let _ = write!(
                            b,
                            "<div id=\"why\"><p class=\"error\">Nothing is installed at <code>{}</code>.</p></div>",
                            esc(loc)
                        );
                    }
                }
            }
            let (table, shown) = treeview::table_html(tree, ask.q, &why_base);
            let total = tree.nodes.len().saturating_sub(1);
            let _ = write!(
                b,
                "<section id=\"search\"><h2>Packages</h2>\
                 <form method=\"get\" action=\"/project\"><input type=\"hidden\" name=\"path\" \
                 value=\"{d}\"><input type=\"search\" id=\"q\" name=\"q\" value=\"{q}\" \
                 placeholder=\"search by name\" autocomplete=\"off\"> <button>search</button>\
                 </form><p id=\"count\" data-total=\"{total}\">{shown} of {total} packages</p>\
                 {table}</section>",
                d = esc(&dir),
                q = esc(ask.q),
            );
            let _ = write!(
                b,
                "<section id=\"tree\"><h2>Dependency tree</h2>{}</section>",
                treeview::tree_html(tree, &why_base)
            );
        }
    }
    page(&title, &b)
}

fn scripts_html(scripts: Result<InstallScriptsResponse, String>) -> String {
    let mut b = String::from("<section id=\"scripts\"><h2>Install scripts awaiting approval</h2>");
    let r = match scripts {
        Ok(r) => r,
        Err(e) => {
            let _ = write!(b, "<p class=\"quiet\">{}</p></section>", esc(&e));
            return b;
        }
    };
    let waiting: Vec<_> = r
        .packages
        .iter()
        .filter(|p| p.verdict != ScriptVerdict::Allowed as i32)
        .collect();
    if waiting.is_empty() {
        b.push_str("<p class=\"quiet\">None: every installed package with install scripts is approved, or none has any.</p></section>");
        return b;
    }
    b.push_str(
        "<table><thead><tr><th>package</th><th>scripts</th><th>verdict</th></tr></thead><tbody>",
    );
    for p in waiting {
        let verdict = if p.verdict == ScriptVerdict::Denied as i32 {
            "denied"
        } else {
            "not reviewed"
        };
        let cmds: String = p
            .scripts
            .iter()
            .map(|s| {
                format!(
                    "<div><b>{}</b>: <code>{}</code></div>",
                    esc(&s.event),
                    esc(&s.command)
                )
            })
            .collect();
        let _ = write!(
            b,
            "<tr class=\"script\" data-name=\"{n}\"><td class=\"pkg\">{n}@{v}</td><td>{cmds}</td><td>{verdict}</td></tr>",
            n = esc(&p.name),
            v = esc(&p.version),
        );
    }
    b.push_str("</tbody></table><p class=\"quiet\">Approve with <code>hoard approve-scripts &lt;name&gt;</code> (or one by one with <code>hoard approve-builds</code>), then install again.</p></section>");
    b
}
