//! Whole-file writes that a crash cannot leave half done: the bytes go to a temporary file in
//! the same folder, which is then renamed over the target. Used for package.json,
//! package-lock.json and the files hoard keeps in node_modules.
//!
//! Must not: know what the files mean.

use std::path::Path;

use crate::error::{HoardError, Result};

/// Write a file atomically (temp file in the same folder, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.hoard-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| HoardError::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| HoardError::io("replacing", path, e))
}
