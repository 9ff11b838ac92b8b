//! What the client does differently per OS: free space, private folders, starting the daemon
//! detached, exit codes, owners, and the shell scripts run in (`sh -c` on Unix; on Windows
//! `cmd.exe /d /s /c`, as npm runs them) with bins found as cmd-shim's `.cmd` files.
//!
//! Must not: talk to the daemon.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether the filesystem holding `dir` has (almost) no room left.
pub fn disk_full(dir: &Path) -> bool {
    free_bytes(dir).is_some_and(|b| b < 256 * 1024)
}

#[cfg(unix)]
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid NUL-terminated path and a zeroed struct for the call to fill.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(windows)]
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::windows::ffi::OsStrExt;
    let w: Vec<u16> = dir.as_os_str().encode_wide().chain([0]).collect();
    let mut free = 0u64;
    // SAFETY: a NUL-terminated wide path; the other outputs may be null.
    let ok = unsafe {
        windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW(
            w.as_ptr(),
            &mut free,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    (ok != 0).then_some(free)
}

/// Whether a daemon may be listening at `socket` yet: its socket file exists (Unix). A named
/// pipe cannot be looked at without taking one of its instances, so on Windows the answer is
/// always yes and connecting tells.
pub fn may_be_listening(socket: &Path) -> bool {
    cfg!(windows) || socket.exists()
}

/// Make `path` and its parents, private to the user (0700 on Unix; on Windows the profile's
/// ACL, inherited, admits only the user).
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
    }
    #[cfg(windows)]
    std::fs::create_dir_all(path)
}

/// Start `cmd` on its own, so that the terminal's Ctrl-C does not reach it: a new session on
/// Unix; a new process group without a console window on Windows.
pub fn detach(cmd: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
    }
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
        const CREATE_NO_WINDOW: u32 = 0x0800_0000;
        cmd.creation_flags(CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW);
    }
}

/// The exit code a shell would report for `status`: its code, or 128 + the signal.
pub fn exit_code(status: std::process::ExitStatus) -> u8 {
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    #[cfg(windows)]
    let signal: Option<i32> = None;
    match (status.code(), signal) {
        (Some(c), _) => u8::try_from(c).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(1),
        _ => 1,
    }
}

/// The uid owning `md` (None on Windows, which has no uids) and this process's own.
pub fn owner(md: &std::fs::Metadata) -> Option<(u32, u32)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid cannot fail.
        Some((md.uid(), unsafe { libc::geteuid() }))
    }
    #[cfg(windows)]
    {
        let _ = md;
        None
    }
}

/// npm's default `script-shell`: `sh` on Unix, `%ComSpec%` (else `cmd.exe`) on Windows.
pub fn default_shell() -> String {
    #[cfg(windows)]
    if let Some(c) = std::env::var("ComSpec").ok().filter(|c| !c.is_empty()) {
        return c;
    }
    if cfg!(windows) {
        "cmd.exe".into()
    } else {
        "sh".into()
    }
}

/// Whether `shell` is cmd.exe (which takes `/d /s /c "<line>"`, not `-c <line>`).
pub fn is_cmd(shell: &str) -> bool {
    let base = shell.rsplit(['/', '\\']).next().unwrap_or(shell);
    base.eq_ignore_ascii_case("cmd") || base.eq_ignore_ascii_case("cmd.exe")
}

/// Give `cmd` (the shell) the script `line` as npm's run-script does.
pub fn shell_args(cmd: &mut Command, shell: &str, line: &str) {
    if is_cmd(shell) {
        cmd.args(["/d", "/s", "/c"]);
        #[cfg(windows)]
        {
            use std::os::windows::process::CommandExt;
            // cmd parses its own line: `/s` strips these outer quotes, nothing else is touched.
            cmd.raw_arg(format!("\"{line}\""));
        }
        #[cfg(not(windows))]
        cmd.arg(line);
    } else {
        cmd.arg("-c").arg(line);
    }
}

/// The file to start for bin `name` in a `.bin` folder: the link itself on Unix, cmd-shim's
/// `.cmd` on Windows.
pub fn bin_file(bin_dir: &Path, name: &str) -> PathBuf {
    if cfg!(windows) {
        bin_dir.join(format!("{name}.cmd"))
    } else {
        bin_dir.join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_is_known_by_its_name_wherever_it_lives() {
        assert!(is_cmd("cmd.exe"));
        assert!(is_cmd(r"C:\Windows\System32\CMD.EXE"));
        assert!(is_cmd("cmd"));
        assert!(!is_cmd("/bin/sh"));
        assert!(!is_cmd("C:/Program Files/Git/bin/bash.exe"));
        let mut c = Command::new("sh");
        shell_args(&mut c, "/bin/sh", "echo hi");
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, ["-c", "echo hi"]);
    }
}
