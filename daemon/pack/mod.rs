//! `hoard pack`: a package folder made into the tarball npm would publish. `walk` decides the
//! files as npm-packlist does; this module reads package.json, writes the tarball as pacote
//! does (`package/` prefix, files only, in npm-packlist's order, mtime 1985-10-26T08:15:00Z,
//! uid and gid 0, modes made portable: owner read-write added, group and other write taken
//! away) and reports what `npm pack --json` reports.
//!
//! Must not: run lifecycle scripts (`prepack`/`prepare` are the client's), or talk to a
//! registry.

mod rules;
mod walk;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{HoardError, Result};

/// One file of a packed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedFile {
    pub path: String,
    pub size: u64,
    pub mode: u32,
}

/// A package packed (or only listed).
#[derive(Debug, Clone)]
pub struct Packed {
    pub name: String,
    pub version: String,
    pub filename: String,
    pub files: Vec<PackedFile>,
    pub unpacked_size: u64,
    /// The gzipped tarball, and its hashes (`sha1` hex, `sha512-` SRI).
    pub tarball: Vec<u8>,
    pub shasum: String,
    pub integrity: String,
    /// The package.json as read (for publishing).
    pub manifest: Value,
}

/// npm's tarball name: `@scope/name` → `scope-name-<version>.tgz`.
pub fn filename(name: &str, version: &str) -> String {
    let n = name.strip_prefix('@').unwrap_or(name).replacen('/', "-", 1);
    format!("{n}-{version}.tgz")
}

/// npm's date for every entry of a packed tarball (1985-10-26T08:15:00Z).
const MTIME: u64 = 499_162_500;

/// Pack the package in `dir`. Blocking.
pub fn pack(dir: &Path) -> Result<Packed> {
    let pj = dir.join("package.json");
    let bytes = std::fs::read(&pj).map_err(|e| HoardError::io("reading", &pj, e))?;
    let manifest: Value = serde_json::from_slice(&bytes).map_err(|e| {
        HoardError::InvalidInput(format!("`{}` is not valid JSON: {e}", pj.display()))
    })?;
    let field = |k: &str| {
        manifest
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (name, version) = (field("name"), field("version"));
    if name.is_empty() || version.is_empty() {
        return Err(HoardError::InvalidInput(format!(
            "`{}` needs a name and a version to be packed",
            pj.display()
        )));
    }
    if semver::Version::parse(&version).is_err() {
        return Err(HoardError::InvalidInput(format!(
            "`{}`: version `{version}` is not valid semver",
            pj.display()
        )));
    }
    let mut paths: Vec<String> = walk::files(dir, &manifest)?.into_iter().collect();
    paths.sort_by(|a, b| packlist_order(a, b));
    let mut files = Vec::with_capacity(paths.len());
    for p in paths {
        let full = dir.join(&p);
        let md = std::fs::metadata(&full).map_err(|e| HoardError::io("reading", &full, e))?;
        files.push(PackedFile {
            path: p,
            size: md.len(),
            mode: portable_mode(crate::platform::mode(&md)),
        });
    }
    let tarball = tarball(dir, &files)?;
    let unpacked_size = files.iter().map(|f| f.size).sum();
    let shasum = {
        use sha1::Digest;
        hex::encode(sha1::Sha1::digest(&tarball))
    };
    let integrity = {
        use base64::Engine;
        use sha2::Digest;
        let d = sha2::Sha512::digest(&tarball);
        format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(d)
        )
    };
    Ok(Packed {
        filename: filename(&name, &version),
        name,
        version,
        files,
        unpacked_size,
        tarball,
        shasum,
        integrity,
        manifest,
    })
}

/// node-tar's portable mode: owner read and write added, group and other write removed.
fn portable_mode(mode: u32) -> u32 {
    (mode & 0o7777 | 0o600) & !0o022
}

/// npm-packlist's order (for compressibility): extension, then basename, then path, each
/// without regard to case.
fn packlist_order(a: &str, b: &str) -> std::cmp::Ordering {
    let ext = |p: &str| {
        let base = p.rsplit('/').next().unwrap_or(p);
        match base.rfind('.') {
            Some(i) if i > 0 => base[i..].to_lowercase(),
            _ => String::new(),
        }
    };
    let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_lowercase();
    ext(a)
        .cmp(&ext(b))
        .then_with(|| base(a).cmp(&base(b)))
        .then_with(|| a.to_lowercase().cmp(&b.to_lowercase()))
        .then_with(|| a.cmp(b))
}

/// The gzipped tar of `files` under `package/`.
fn tarball(dir: &Path, files: &[PackedFile]) -> Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    for f in files {
        let full = dir.join(&f.path);
        let body = std::fs::read(&full).map_err(|e| HoardError::io("reading", &full, e))?;
        let mut h = tar::Header::new_ustar();
        h.set_size(body.len() as u64);
        h.set_mode(f.mode);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        let packed_path = format!("package/{}", f.path);
        tar.append_data(&mut h, &packed_path, body.as_slice())
            .map_err(|e| HoardError::io("packing", &full, e))?;
    }
    let gz = tar
        .into_inner()
        .map_err(|e| HoardError::Internal(format!("finishing the tarball: {e}")))?;
    gz.finish()
        .map_err(|e| HoardError::Internal(format!("finishing the tarball: {e}")))
}

/// Write `p`'s tarball into `dest` (a folder); its path.
pub fn write(p: &Packed, dest: &Path) -> Result<PathBuf> {
    let path = dest.join(&p.filename);
    let mut f = std::fs::File::create(&path).map_err(|e| HoardError::io("creating", &path, e))?;
    f.write_all(&p.tarball)
        .map_err(|e| HoardError::io("writing", &path, e))?;
    Ok(path)
}

/// The Pack RPC: pack `dir` (the request's package folder, checked by the caller), write the
/// tarball unless it is a dry run. Blocking.
pub fn serve(
    dir: PathBuf,
    req: &hoard_proto::v1::PackRequest,
) -> Result<hoard_proto::v1::PackResponse> {
    let p = pack(&dir)?;
    let tarball_path = if req.dry_run {
        None
    } else {
        let dest = req.destination.as_deref().map(PathBuf::from).unwrap_or(dir);
        Some(write(&p, &dest)?.display().to_string())
    };
    Ok(response(&p, tarball_path))
}

/// The Pack RPC's answer for `p`.
pub fn response(p: &Packed, tarball_path: Option<String>) -> hoard_proto::v1::PackResponse {
    hoard_proto::v1::PackResponse {
        files: (p.files.iter())
            .map(|f| hoard_proto::v1::PackedFile {
                path: f.path.clone(),
                size: f.size,
                mode: f.mode,
            })
            .collect(),
        size: p.tarball.len() as u64,
        unpacked_size: p.unpacked_size,
        tarball_path,
        name: p.name.clone(),
        version: p.version.clone(),
        filename: p.filename.clone(),
        shasum: p.shasum.clone(),
        integrity: p.integrity.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_modes_are_npms() {
        assert_eq!(filename("@s/a", "1.0.0"), "s-a-1.0.0.tgz");
        assert_eq!(filename("a", "2.0.0-rc.1"), "a-2.0.0-rc.1.tgz");
        assert_eq!(portable_mode(0o664), 0o644);
        assert_eq!(portable_mode(0o777), 0o755);
        assert_eq!(portable_mode(0o400), 0o600);
    }

    #[test]
    fn a_folder_packs_what_npm_would_pick() {
        let d = tempfile::tempdir().unwrap();
        let w = |p: &str, body: &str| {
            let f = d.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, body).unwrap();
        };
        w(
            "package.json",
            r#"{"name":"@s/a","version":"1.0.0","main":"main.js","files":["lib"]}"#,
        );
        w("main.js", "");
        w("lib/a.js", "a");
        w("lib/.DS_Store", "");
        w("lib/x.orig", "");
        w("README.md", "");
        w("test/t.js", "");
        w("node_modules/b/index.js", "");
        w(".npmrc", "");
        let p = pack(d.path()).unwrap();
        let names: Vec<&str> = p.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["lib/a.js", "main.js", "package.json", "README.md"]);
        let mut t = tar::Archive::new(flate2::read::GzDecoder::new(p.tarball.as_slice()));
        let entries: Vec<String> = t
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(entries[0], "package/lib/a.js");
        assert!(p.integrity.starts_with("sha512-") && p.shasum.len() == 40);
    }
}
