//! The dashboard's HTML pieces: escaping, the page frame (header, stylesheet, script), numbers
//! and times as people read them. Pages are rendered on the server; the one script only adds
//! live install progress and filtering as you type.
//!
//! Must not: gather data.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Text made safe for HTML content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// A query-string value, percent-encoded (and so also safe inside an attribute).
pub fn url_part(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// The link to a project's page (and, with `why`, to why a package is in it).
pub fn project_href(dir: &str) -> String {
    format!("/project?path={}", url_part(dir))
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// A Unix time as "3 min ago", with the UTC date and time in its title.
pub fn when(unix: i64, now: i64) -> String {
    let ago = (now - unix).max(0);
    let rel = match ago {
        0..60 => "just now".to_string(),
        60..3600 => format!("{} min ago", ago / 60),
        3600..86400 => format!("{} h ago", ago / 3600),
        _ => format!("{} days ago", ago / 86400),
    };
    let exact = jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    format!("<time datetime=\"{exact}\" title=\"{exact}\">{rel}</time>")
}

pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A whole page: `title` in the head and the header, `body` below.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · hoard</title><link rel=\"stylesheet\" href=\"/static/style.css\">\
         <script src=\"/static/app.js\" defer></script></head>\
         <body data-live=\"off\"><header><a href=\"/\" class=\"brand\">hoard</a> \
         <span class=\"sub\">{t}</span><span id=\"live-state\" title=\"live install events\">\
         </span></header><main>{body}\
         <section id=\"live\"><h2>Installs now</h2><ul id=\"live-list\"><li class=\"quiet\">\
         No install since this page opened.</li></ul></section></main></body></html>\n",
        t = esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_encoding_leave_no_markup() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(url_part("/a b/@s/x&y=\"z\""), "/a%20b/%40s/x%26y%3D%22z%22");
        assert_eq!(bytes(1536), "1.5 kB");
        assert_eq!(bytes(3 << 30), "3.0 GB");
    }
}
