//! The hard-link floor of a hoisted install: rebuild a finished node_modules from another copy of
//! it with nothing but the system calls any hard-linking installer must make (one `mkdir` per
//! folder, one `linkat` per file, one `symlink` per link), spread over the cores. No lockfile is
//! read, nothing is checked, nothing is staged: what is left is the file system's own cost.
//! bench/run.py times it as the tool `link-floor`, interleaved with hoard and bun, so a warm
//! install's figure can be read against it.
//!
//! `cargo bench --bench link_floor -- <reference node_modules> <new node_modules> [threads] [--check]`
//!
//! The reference is walked before the clock starts (an installer knows its tree from its
//! lockfile), and each of its folders is opened then, so a file is linked from its folder by its
//! short name (as hoard links from a store shard it holds open). With `--check`, each file is
//! also stat'ed before it is linked, once per file, as hoard's linker checks that a store file
//! is whole (store-format.md). Each package folder directly under node_modules (or under a
//! scope folder) is one unit of work, with everything nested in it; the units go to the threads
//! biggest first, as hoard's linker orders its work. Prints the timed part in milliseconds.
//! Must not: be used to install anything (it trusts the reference completely).

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// One entry to make, relative to the new node_modules, in an order where a folder comes before
/// what is in it.
enum Entry {
    Dir(CString),
    /// (the reference folder it is in, as an index into `Reference::dirs`; its name there; the
    /// new name).
    File(usize, CString, CString),
    Symlink(CString, CString),
}

/// The reference's folders, held open (`O_PATH`) for the timed part.
struct Reference {
    dirs: Vec<std::fs::File>,
}

impl Reference {
    fn open(&mut self, dir: &Path) -> usize {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(dir)
            .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()));
        self.dirs.push(f);
        self.dirs.len() - 1
    }
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("a path without NUL")
}

/// Everything in `root/rel` (named relative to `root`), folders before their contents; each
/// folder of the reference is opened on the way.
fn walk(root: &Path, rel: &Path, refs: &mut Reference, out: &mut Vec<Entry>) {
    let dir = root.join(rel);
    let here = refs.open(&dir);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("a readable entry"))
        .collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let r = rel.join(e.file_name());
        let t = e.file_type().expect("a file type");
        if t.is_symlink() {
            let target = std::fs::read_link(e.path()).expect("a readable link");
            out.push(Entry::Symlink(cstr(&target), cstr(&r)));
        } else if t.is_dir() {
            out.push(Entry::Dir(cstr(&r)));
            walk(root, &r, refs, out);
        } else {
            out.push(Entry::File(here, cstr(Path::new(&e.file_name())), cstr(&r)));
        }
    }
}

/// The units of work: each package folder (with its subtree), biggest first; and the folders
/// made before any unit starts (node_modules' scope folders and `.bin`'s links are units too).
fn units(src: &Path, refs: &mut Reference) -> (Vec<Entry>, Vec<Vec<Entry>>) {
    let mut first = Vec::new();
    let mut units = Vec::new();
    let mut tops: Vec<PathBuf> = Vec::new();
    for e in std::fs::read_dir(src).expect("a reference node_modules") {
        let e = e.expect("an entry");
        let name = PathBuf::from(e.file_name());
        let is_scope =
            e.file_name().as_bytes().starts_with(b"@") && e.file_type().is_ok_and(|t| t.is_dir());
        if is_scope {
            first.push(Entry::Dir(cstr(&name)));
            for s in std::fs::read_dir(e.path()).expect("a scope folder") {
                tops.push(name.join(s.expect("an entry").file_name()));
            }
        } else {
            tops.push(name);
        }
    }
    for top in tops {
        let mut unit = Vec::new();
        let meta = std::fs::symlink_metadata(src.join(&top)).expect("a top entry");
        if meta.is_dir() {
            unit.push(Entry::Dir(cstr(&top)));
            walk(src, &top, refs, &mut unit);
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(src.join(&top)).expect("a readable link");
            unit.push(Entry::Symlink(cstr(&target), cstr(&top)));
        } else {
            let at = refs.open(src);
            unit.push(Entry::File(at, cstr(&top), cstr(&top)));
        }
        units.push(unit);
    }
    units.sort_by_key(|u| std::cmp::Reverse(u.len()));
    (first, units)
}

fn make(dst: libc::c_int, refs: &Reference, check: bool, e: &Entry) {
    // SAFETY (all three calls): NUL-terminated paths that live through the call; `dst` and the
    // reference's folders are open folders.
    let rc = match e {
        Entry::Dir(p) => unsafe { libc::mkdirat(dst, p.as_ptr(), 0o755) },
        Entry::File(dir, name, to) => {
            let from = refs.dirs[*dir].as_raw_fd();
            if check {
                let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
                let flags = libc::AT_SYMLINK_NOFOLLOW;
                if unsafe { libc::fstatat(from, name.as_ptr(), st.as_mut_ptr(), flags) } != 0 {
                    panic!("stat: {}", std::io::Error::last_os_error());
                }
            }
            unsafe { libc::linkat(from, name.as_ptr(), dst, to.as_ptr(), 0) }
        }
        Entry::Symlink(target, at) => unsafe { libc::symlinkat(target.as_ptr(), dst, at.as_ptr()) },
    };
    if rc != 0 {
        panic!("{}", std::io::Error::last_os_error());
    }
}

fn main() {
    let all: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let check = all.iter().any(|a| a == "--check");
    let args: Vec<&String> = all.iter().filter(|a| !a.starts_with("--")).collect();
    let (Some(src), Some(dst)) = (args.first(), args.get(1)) else {
        eprintln!(
            "usage: link_floor <reference node_modules> <new node_modules> [threads] [--check]"
        );
        std::process::exit(2);
    };
    let threads: usize = args
        .get(2)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let src = std::fs::canonicalize(src).expect("the reference node_modules");
    raise_fd_limit();
    let mut refs = Reference { dirs: Vec::new() };
    let (first, units) = units(&src, &mut refs);
    let t0 = Instant::now();
    std::fs::create_dir(dst).unwrap_or_else(|e| panic!("mkdir {dst}: {e}"));
    let dir = std::fs::File::open(dst).expect("the new node_modules");
    let fd = dir.as_raw_fd();
    for e in &first {
        make(fd, &refs, check, e);
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(unit) = units.get(i) else { break };
                    for e in unit {
                        make(fd, &refs, check, e);
                    }
                }
            });
        }
    });
    let entries: usize = first.len() + units.iter().map(Vec::len).sum::<usize>();
    println!(
        "{:.1} ms for {entries} entries on {threads} threads{}",
        t0.elapsed().as_secs_f64() * 1000.0,
        if check {
            ", each file stat'ed first"
        } else {
            ""
        }
    );
}

/// One descriptor per reference folder: raise the soft limit to the hard one.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit to fill and then pass back.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
