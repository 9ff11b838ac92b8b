//! `TestContext`: a temp HOME, store, runtime dir and project, the real `hoard`/`hoardd`
//! binaries, and cleanup of every daemon the test started (also when the test fails).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const HOARD: &str = env!("CARGO_BIN_EXE_hoard");
pub const HOARDD: &str = env!("CARGO_BIN_EXE_hoardd");

pub struct TestContext {
    pub root: tempfile::TempDir,
    pub home: PathBuf,
    pub store: PathBuf,
    pub runtime: PathBuf,
    pub project: PathBuf,
    pub registry_url: Option<String>,
    pub extra_env: Vec<(String, String)>,
    /// Filesystems a test mounted inside `root`: unmounted when the context drops, after its
    /// daemon is gone and before `root` is removed (a mount point cannot be removed).
    mounts: std::sync::Mutex<Vec<PathBuf>>,
}

impl TestContext {
    pub fn new() -> TestContext {
        let root = tempfile::Builder::new()
            .prefix(&temp_prefix())
            .tempdir_in(std::env::temp_dir())
            .expect("temp dir");
        let r = root.path().canonicalize().unwrap();
        let ctx = TestContext {
            home: r.join("home"),
            store: r.join("store"),
            runtime: r.join("run"),
            project: r.join("project"),
            root,
            registry_url: None,
            extra_env: vec![],
            mounts: Default::default(),
        };
        for d in [&ctx.home, &ctx.store, &ctx.project] {
            std::fs::create_dir_all(d).unwrap();
        }
        ctx
    }

    /// Unmount `path` (a filesystem the test mounted inside this context) when the context
    /// drops: after its daemon is stopped, before the temp folder is removed.
    pub fn unmount_when_done(&self, path: PathBuf) {
        self.mounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(path);
    }

    pub fn with_registry(mut self, url: &str) -> TestContext {
        self.registry_url = Some(url.to_string());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> TestContext {
        self.extra_env.push((k.into(), v.into()));
        self
    }

    /// The daemon holds each package before linking it until the returned file exists: the
    /// test, not a timer, says when linking goes on (`HOARD_FAILPOINT_LINK_HOLD_UNTIL`).
    pub fn hold_linking(self) -> (TestContext, PathBuf) {
        let release = self.root.path().join("release-linking");
        let path = release.to_str().expect("a UTF-8 temp path").to_string();
        (self.env("HOARD_FAILPOINT_LINK_HOLD_UNTIL", &path), release)
    }

    /// `hoard` with this context's environment (nothing inherited but PATH).
    pub fn hoard(&self) -> Command {
        let mut c = Command::new(HOARD);
        self.apply_env(&mut c);
        c.current_dir(&self.project);
        c
    }

    /// `hoard` run as uid/gid 65534 (nobody), from binaries that user can reach, spawning that
    /// daemon if it needs one. Only after `can_act_as_nobody()` said yes.
    pub fn hoard_as_nobody(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let (hoard, hoardd) = shared_bins().expect("can_act_as_nobody() first");
        let mut c = Command::new(hoard);
        self.apply_env(&mut c);
        c.env("HOARD_DAEMON_BIN", hoardd)
            .current_dir(&self.project)
            .uid(65534)
            .gid(65534);
        c
    }

    pub fn hoardd(&self) -> Command {
        let mut c = Command::new(HOARDD);
        self.apply_env(&mut c);
        c
    }

    fn apply_env(&self, c: &mut Command) {
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("HOARD_STORE_DIR", &self.store)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("HOARD_IDLE_TIMEOUT", "120")
            .env("HOARD_DAEMON_BIN", HOARDD)
            .env("HOARD_LOG", "debug")
            // Background work off unless a test turns it on (tests/it/ahead.rs, scrub.rs):
            // each test then sees only what it does itself.
            .env("HOARD_AHEAD_PROJECTS", "0")
            .env("HOARD_SCRUB_SECS", "0")
            .stdin(Stdio::null());
        if let Some(u) = &self.registry_url {
            c.env("npm_config_registry", u);
        }
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
    }

    /// `hoard store verify` finds the store whole (exit status 0).
    pub fn assert_store_whole(&self) {
        let out = self.run(&["store", "verify"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "store verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
    }

    /// Start `hoard args...` in the project with piped output (finish it with `wait_output`).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.hoard()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hoard")
    }

    /// Run `hoard args...` to completion (120 s at most).
    pub fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(self.hoard().args(args), Duration::from_secs(120))
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "hoard {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn socket(&self) -> PathBuf {
        self.runtime
            .join("hoard")
            .join(hoard_proto::socket_path(&self.store).file_name().unwrap())
    }

    /// The pid of the daemon holding this store's lock, if one runs.
    pub fn daemon_pid(&self) -> Option<i32> {
        let lock = hoard_proto::state::lock_file(&self.store);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&lock)
            .ok()?;
        if f.try_lock().is_ok() {
            let _ = f.unlock();
            return None;
        }
        std::fs::read_to_string(&lock).ok()?.trim().parse().ok()
    }

    /// Wait (bounded) until no daemon holds the store.
    pub fn wait_daemon_gone(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.daemon_pid().is_none() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn write_project(&self, pkg: &Value) {
        write_json(&self.project.join("package.json"), pkg);
    }

    /// How many store files the daemon trusts whole now (`store status`).
    pub fn trusted_files(&self) -> u64 {
        let status: Value = serde_json::from_str(&self.ok(&["--json", "store", "status"])).unwrap();
        status["trusted_files"].as_u64().unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(hoard_proto::state::log_file(&self.store)).unwrap_or_default()
    }
}

impl Drop for TestContext {
    fn drop(&mut self) {
        if let Some(pid) = self.daemon_pid() {
            unsafe { libc::kill(pid, libc::SIGTERM) };
            if !self.wait_daemon_gone(Duration::from_secs(10)) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let mounts = std::mem::take(&mut *self.mounts.lock().unwrap_or_else(|p| p.into_inner()));
        for m in mounts.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

/// `hoard-it-<test>-`: the test's own name (the test harness names each test's thread after
/// it), so that a folder left in the temp dir says which test left it.
fn temp_prefix() -> String {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("main");
    let short: String = test
        .rsplit("::")
        .next()
        .unwrap_or(test)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(24)
        .collect();
    format!("hoard-it-{short}-")
}

pub fn write_json(path: &Path, v: &Value) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_output(child, timeout)
}

pub fn wait_output(mut child: Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    // Drain pipes on threads so a chatty child cannot block.
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let t1 = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(s) = so.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut b);
        }
        b
    });
    let t2 = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(s) = se.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut b);
        }
        b
    });
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Output {
                status,
                stdout: t1.join().unwrap(),
                stderr: t2.join().unwrap(),
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let status = child.wait().unwrap();
            panic!(
                "command timed out after {timeout:?} ({status}); stderr: {}",
                String::from_utf8_lossy(&t2.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The summary line of `hoard --json` output; every line of it must be JSON.
pub fn summary(stdout: &str) -> Value {
    stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\nin {stdout}"))
        })
        .find(|v| v["type"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {stdout}"))
}

/// Whether `bin --version` runs and succeeds.
pub fn which(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Whether a test can act as another user (uid 65534): it must be root, and that user must be
/// able to reach and run the built binaries (every folder above them searchable by others).
pub fn can_act_as_nobody() -> Result<(), String> {
    if !is_root() {
        return Err("needs root to act as another user (uid 65534)".into());
    }
    shared_bins().map(|_| ())
}

/// The two binaries where every user can run them (the build folder may sit in a folder other
/// users cannot search): hard links, or copies, in a world-searchable folder under the temp dir.
pub fn shared_bins() -> Result<&'static (PathBuf, PathBuf), String> {
    use std::os::unix::fs::PermissionsExt;
    static BINS: std::sync::OnceLock<Result<(PathBuf, PathBuf), String>> =
        std::sync::OnceLock::new();
    BINS.get_or_init(|| {
        // Earlier runs' copies (their test process is gone) would keep old binaries alive.
        for e in std::fs::read_dir(std::env::temp_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            // Only `hoard-it-bin-<pid>`: a test's own folder may start the same way.
            if let Some(pid) = name.strip_prefix("hoard-it-bin-")
                && pid.bytes().all(|b| b.is_ascii_digit())
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = std::env::temp_dir().join(format!("hoard-it-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let open = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(&dir, open.clone()).map_err(|e| e.to_string())?;
        let mut out = vec![];
        for bin in [HOARD, HOARDD] {
            let to = dir.join(Path::new(bin).file_name().unwrap_or_default());
            if !to.exists() && std::fs::hard_link(bin, &to).is_err() {
                std::fs::copy(bin, &to).map_err(|e| format!("copying {bin}: {e}"))?;
            }
            std::fs::set_permissions(&to, open.clone()).map_err(|e| e.to_string())?;
            out.push(to);
        }
        Ok((out[0].clone(), out[1].clone()))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Say that `test` did not run here and why. It is printed, and recorded where `tests/run.sh`
/// reads it for the run's summary: a test that could not run must never read as a pass.
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(test), format!("{why}\n"));
}

/// Poll `f` until it is true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}
