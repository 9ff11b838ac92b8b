//! What differs between the operating systems hoard runs on, behind one interface: links
//! (symlinks on Unix; junctions and bin shims on Windows). Callers never `cfg` themselves.
//!
//! Must not: decide what to link where (the linker's planners do).

use std::path::Path;

/// Put the bin `name` in `bin_dir` (a `.bin` folder), pointing at `target` (relative to
/// `bin_dir`, `/`-separated): a symlink on Unix; on Windows the three shims npm's cmd-shim
/// writes (`name`, `name.cmd`, `name.ps1`), read from the target's `#!` line.
pub fn link_bin(bin_dir: &Path, name: &str, target: &str) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, bin_dir.join(name))
    }
    #[cfg(not(unix))]
    {
        let content = std::fs::read_to_string(bin_dir.join(target)).ok();
        let s = crate::linker::shim::shims(target, content.as_deref());
        std::fs::write(bin_dir.join(format!("{name}.cmd")), s.cmd)?;
        std::fs::write(bin_dir.join(format!("{name}.ps1")), s.ps1)?;
        std::fs::write(bin_dir.join(name), s.sh)
    }
}
