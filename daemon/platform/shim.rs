//! The three bin shims npm writes on Windows instead of a symlink (its `cmd-shim` package,
//! version 8): `<bin>.cmd` for cmd.exe, `<bin>.ps1` for PowerShell and `<bin>` (a sh script for
//! Git Bash, MSYS and Cygwin), byte for byte as cmd-shim writes them. The interpreter comes
//! from the target's `#!` line (`#!/usr/bin/env node`, `#!/usr/bin/env -S A=1 node --flag`,
//! `#!/usr/bin/python3 -u`); a target without one is run directly.
//!
//! Pure text: the Windows linker writes these files; the logic is tested on every platform.
//! Must not: touch the filesystem.

// Written only by the Windows linker (platform::link_bin); tested on every platform.
#![cfg_attr(unix, allow(dead_code))]

/// The three shim texts for one bin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shims {
    /// `<bin>`: the sh script.
    pub sh: String,
    /// `<bin>.cmd`.
    pub cmd: String,
    /// `<bin>.ps1`.
    pub ps1: String,
}

/// What a `#!` line names: `VAR=value ` assignments (after `/usr/bin/env [-S]`), the program
/// and the rest of the line (with its leading space), as cmd-shim's regular expression splits it.
#[derive(Debug, PartialEq, Eq)]
struct Shebang<'a> {
    vars: &'a str,
    prog: &'a str,
    args: &'a str,
}

fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// The program and the rest: `([^ \t]+)(.*)`.
fn plain(s: &str) -> Option<Shebang<'_>> {
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    (end > 0).then(|| Shebang {
        vars: "",
        prog: &s[..end],
        args: &s[end..],
    })
}

/// `^#!\s*(?:\/usr\/bin\/env\s+(?:-S\s+)?((?:[^ \t=]+=[^ \t=]+\s+)*))?([^ \t]+)(.*)$`
fn shebang(line: &str) -> Option<Shebang<'_>> {
    let rest = line.strip_prefix("#!")?.trim_start_matches(is_space);
    if let Some(after) = rest.strip_prefix("/usr/bin/env")
        && after.starts_with(is_space)
    {
        let mut s = after.trim_start_matches(is_space);
        if let Some(a) = s.strip_prefix("-S")
            && a.starts_with(is_space)
        {
            s = a.trim_start_matches(is_space);
        }
        // `NAME=value` words, each followed by whitespace, while a program still follows.
        let vars_start = s;
        loop {
            let word_end = s.find(is_space).unwrap_or(s.len());
            let word = &s[..word_end];
            let is_var = word
                .split_once('=')
                .is_some_and(|(k, v)| !k.is_empty() && !v.is_empty() && !v.contains('='));
            let next = s[word_end..].trim_start_matches(is_space);
            if !is_var || word_end == s.len() || next.is_empty() || next.starts_with('\t') {
                break;
            }
            s = next;
        }
        let vars = &vars_start[..vars_start.len() - s.len()];
        if let Some(sb) = plain(s) {
            return Some(Shebang { vars, ..sb });
        }
    }
    plain(rest)
}

/// cmd-shim's `convertToSetCommands`: `@SET NAME=value` lines, `$VAR`/`${VAR}` as `%VAR%`.
fn set_commands(vars: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![];
    for decl in vars.split(' ') {
        let mut it = decl.split('=');
        let key = it.next().unwrap_or("");
        let value = it.next().unwrap_or("");
        match pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(p) => p.1 = value,
            None => pairs.push((key, value)),
        }
    }
    pairs
        .into_iter()
        .filter(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
        .map(|(k, v)| format!("@SET {}={}\r\n", k.trim(), percent_vars(v.trim())))
        .collect()
}

/// `$NAME` and `${NAME}` as cmd's `%NAME%`.
fn percent_vars(value: &str) -> String {
    let stop = |c: char| {
        matches!(
            c,
            '$' | '@' | '#' | '?' | '-' | ' ' | '\t' | '{' | '}' | ':'
        )
    };
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        let (braced, body) = match after.strip_prefix('{') {
            Some(b) => (true, b),
            None => (false, after),
        };
        let name_len = body.find(stop).unwrap_or(body.len());
        if name_len == 0 {
            out.push_str(&rest[..=i]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..i]);
        out.push('%');
        out.push_str(&body[..name_len]);
        out.push('%');
        let mut consumed = name_len;
        if braced && body[name_len..].starts_with('}') {
            consumed += 1;
        }
        rest = &body[consumed..];
    }
    out.push_str(rest);
    out
}

/// One leading and one trailing `"` removed (`.replace(/(^")|("$)/g, '')`).
fn unquote(s: &str) -> &str {
    let s = s.strip_prefix('"').unwrap_or(s);
    s.strip_suffix('"').unwrap_or(s)
}

const CMD_HEAD: &str = "@ECHO off\r\nGOTO start\r\n:find_dp0\r\nSET dp0=%~dp0\r\nEXIT /b\r\n:start\r\nSETLOCAL\r\nCALL :find_dp0\r\n";

const SH_HEAD: &str = "#!/bin/sh\nbasedir=$(dirname \"$(echo \"$0\" | sed -e 's,\\\\,/,g')\")\n\ncase `uname` in\n    *CYGWIN*|*MINGW*|*MSYS*)\n        if command -v cygpath > /dev/null 2>&1; then\n            basedir=`cygpath -w \"$basedir\"`\n        fi\n    ;;\nesac\n\n";

const PS1_HEAD: &str = "#!/usr/bin/env pwsh\n$basedir=Split-Path $MyInvocation.MyCommand.Definition -Parent\n\n$exe=\"\"\nif ($PSVersionTable.PSVersion -lt \"6.0\" -or $IsWindows) {\n  # Fix case when both the Windows and Linux builds of Node\n  # are installed in the same directory\n  $exe=\".exe\"\n}\n";

/// The shims for a bin whose target is `target` (relative to the `.bin` folder, `/`-separated,
/// e.g. `../pkg/bin/cli.js`) and whose content is `content` (None: unreadable).
pub fn shims(target: &str, content: Option<&str>) -> Shims {
    let first = content.map(|c| {
        let t = c.trim();
        let end = t.find('\n').unwrap_or(t.len());
        t[..end].trim_end_matches('\r')
    });
    let sb = first.and_then(shebang);
    let sh_target = target.replace('\\', "/");
    let win_target = target.replace('/', "\\");
    match sb {
        None => {
            let prog = format!("\"%dp0%\\{win_target}\"");
            let sh_prog = format!("\"$basedir/{sh_target}\"");
            Shims {
                cmd: format!("{CMD_HEAD}{prog}   %*\r\n"),
                sh: format!("{SH_HEAD}exec {sh_prog}   \"$@\"\n"),
                ps1: format!(
                    "{PS1_HEAD}# Support pipeline input\nif ($MyInvocation.ExpectingInput) {{\n  $input | & {sh_prog}   $args\n}} else {{\n  & {sh_prog}   $args\n}}\nexit $LASTEXITCODE\n"
                ),
            }
        }
        Some(Shebang { vars, prog, args }) => {
            let sh_prog = prog.replace('\\', "/");
            let long_prog = format!("\"%dp0%\\{prog}.exe\"");
            let sh_long = format!("\"$basedir/{prog}\"");
            let pwsh_long = format!("\"$basedir/{prog}$exe\"");
            let pwsh_prog = format!("\"{sh_prog}$exe\"");
            let target = format!("\"%dp0%\\{win_target}\"");
            let sh_target = format!("\"$basedir/{sh_target}\"");
            // cmd-shim trims the arguments before writing any of the three.
            let args = args.trim();
            let cmd = format!(
                "{CMD_HEAD}{}\r\nIF EXIST {long_prog} (\r\n  SET \"_prog={}\"\r\n) ELSE (\r\n  SET \"_prog={}\"\r\n  SET PATHEXT=%PATHEXT:;.JS;=;%\r\n)\r\n\r\nendLocal & goto #_undefined_# 2>NUL || title %COMSPEC% & \"%_prog%\" {args} {target} %*\r\n",
                set_commands(vars),
                unquote(&long_prog),
                unquote(prog),
            );
            let sh = format!(
                "{SH_HEAD}if [ -x {sh_long} ]; then\n  exec {vars}{sh_long} {args} {sh_target} \"$@\"\nelse \n  exec {vars}{sh_prog} {args} {sh_target} \"$@\"\nfi\n"
            );
            let ps1 = format!(
                "{PS1_HEAD}$ret=0\nif (Test-Path {pwsh_long}) {{\n  # Support pipeline input\n  if ($MyInvocation.ExpectingInput) {{\n    $input | & {pwsh_long} {args} {sh_target} $args\n  }} else {{\n    & {pwsh_long} {args} {sh_target} $args\n  }}\n  $ret=$LASTEXITCODE\n}} else {{\n  # Support pipeline input\n  if ($MyInvocation.ExpectingInput) {{\n    $input | & {pwsh_prog} {args} {sh_target} $args\n  }} else {{\n    & {pwsh_prog} {args} {sh_target} $args\n  }}\n  $ret=$LASTEXITCODE\n}}\nexit $ret\n"
            );
            Shims { sh, cmd, ps1 }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn shebangs_split_as_cmd_shim_splits_them() {
        let s = shebang("#!/usr/bin/env node").unwrap();
        assert_eq!((s.vars, s.prog, s.args), ("", "node", ""));
        let s = shebang("#!/usr/bin/env -S NODE_ENV=production A=$HOME node --flag x").unwrap();
        assert_eq!(
            (s.vars, s.prog, s.args),
            ("NODE_ENV=production A=$HOME ", "node", " --flag x")
        );
        let s = shebang("#! /usr/bin/python3 -u").unwrap();
        assert_eq!((s.vars, s.prog, s.args), ("", "/usr/bin/python3", " -u"));
        assert!(shebang("console.log(1)").is_none());
        assert_eq!(percent_vars("${HOME}/x:$PATH"), "%HOME%/x:%PATH%");
    }

    /// The shims npm's cmd-shim wrote for the fixture bins (tests/fixtures/cmd-shim, recorded
    /// by its record.js; `tests/it` checks the recording against the cmd-shim npm ships).
    #[test]
    fn shims_are_what_cmd_shim_writes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cmd-shim");
        let read = |p: &Path| {
            std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        let mut checked = 0;
        for entry in std::fs::read_dir(root.join("pkg/bin")).unwrap() {
            let bin = entry.unwrap().path();
            let name = bin.file_name().unwrap().to_string_lossy().into_owned();
            let target = format!("../pkg/bin/{name}");
            let got = shims(&target, Some(&read(&bin)));
            let expected = root.join("expected").join(&name);
            assert_eq!(got.sh, read(&expected), "{name}");
            let with = |ext: &str| expected.with_file_name(format!("{name}{ext}"));
            assert_eq!(got.cmd, read(&with(".cmd")), "{name}.cmd");
            assert_eq!(got.ps1, read(&with(".ps1")), "{name}.ps1");
            checked += 1;
        }
        assert!(checked >= 4, "fixtures: {checked}");
    }
}
