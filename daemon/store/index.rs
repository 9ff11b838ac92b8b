//! The store's SQLite index: schema and migrations, one writer thread that batches rows, and a
//! reader connection for lookups.
//!
//! Owns: `<store>/v1/index.sqlite`. A committed row never names a file that is not on disk:
//! where the machine names its boot (`platform::boot_id`), the writer commits package rows at
//! once and lists them in `unsynced` with that boot; it makes their content files durable (one
//! `syncfs`) when no write has come for a while, at shutdown, or when the oldest has waited
//! too long, and then takes this boot's rows off the list. Rows still listed from an earlier
//! boot are checked at start-up (`Store::check_unsynced`). Elsewhere it syncs before each batch
//! of package rows.
//! Must not: touch content files itself (beyond the syncfs), or be called from async executor
//! threads (every method blocks; callers use `spawn_blocking`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use rustc_hash::FxHashSet;

use crate::error::{HoardError, Result};

/// Schema version kept in `PRAGMA user_version` (2 added `unsynced`; 3 keeps each package's
/// files as one blob in `file_lists` instead of a row per file in `files`).
pub const SCHEMA_VERSION: i64 = 3;

/// How long the writer waits with no new write before it syncs the rows listed in `unsynced`.
const SYNC_WHEN_IDLE: Duration = Duration::from_millis(500);

/// Rows wait in `unsynced` at most this long while writes keep coming.
const SYNC_AT_MOST_AFTER: Duration = Duration::from_secs(10);

/// One file of a package, as the index records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path inside the package, `/`-separated, first tarball component stripped.
    pub path: String,
    pub hash: [u8; 32],
    pub size: u64,
    pub executable: bool,
}

/// A package whose row was dropped, with where it came from.
#[derive(Debug, Clone)]
pub struct DroppedPackage {
    /// `name@version`.
    pub pkg_id: String,
    pub tarball_url: String,
    /// `sha512-…` of the tarball.
    pub integrity: String,
}

impl DroppedPackage {
    /// The tarball to download it again from (`name@version` split at its last `@`).
    pub fn tarball(&self) -> Option<super::TarballRef> {
        let at = self.pkg_id.rfind('@').filter(|&i| i > 0)?;
        Some(super::TarballRef {
            name: self.pkg_id[..at].to_string(),
            version: self.pkg_id[at + 1..].to_string(),
            url: self.tarball_url.clone(),
            integrity: super::integrity::Sri::parse(Some(&self.integrity), None),
            auth: None,
            remote: None,
        })
    }
}

/// A registered project as the index knows it (`project_usage`).
#[derive(Debug, Clone)]
pub struct ProjectUsage {
    pub path: String,
    /// Unix seconds of its last install.
    pub last_install: i64,
    pub packages: u64,
    pub linked_bytes: u64,
}

/// A package row with its files.
#[derive(Debug, Clone)]
pub struct PackageRecord {
    /// `name@version`.
    pub pkg_id: String,
    /// `sha512-<base64>` of the tarball bytes, computed at import.
    pub integrity: String,
    /// Hex SHA-1 of the tarball bytes (npm's legacy `shasum`); empty when the import did not
    /// compute it (it checked the tarball by sha512).
    pub sha1_hex: String,
    pub tarball_url: String,
    pub unpacked_size: u64,
    pub files: Vec<FileEntry>,
}

type Job = Box<dyn FnOnce(&rusqlite::Transaction<'_>) -> Result<()> + Send>;

enum Command {
    Insert(PackageRecord, tokio::sync::oneshot::Sender<Result<i64>>),
    Exec(Job, tokio::sync::oneshot::Sender<Result<()>>),
    /// Sync what `unsynced` lists now, and empty it.
    Sync(tokio::sync::oneshot::Sender<()>),
}

/// Handle to the index: cheap lookups on a reader connection, writes through the writer thread.
pub struct Index {
    /// Set when the index was found damaged while running and set aside: nothing more is
    /// written to it (no checkpoint at shutdown).
    broken: std::sync::atomic::AtomicBool,
    path: PathBuf,
    reader: Mutex<Connection>,
    writer: mpsc::Sender<Command>,
}

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| HoardError::index(path, e))?;
    // busy_timeout first: the other pragmas may need the lock.
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| HoardError::index(path, e))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| HoardError::index(path, e))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| HoardError::index(path, e))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| HoardError::index(path, e))?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let e = |err| HoardError::index(path, err);
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(e)?;
    if version > SCHEMA_VERSION {
        return Err(HoardError::InvalidInput(format!(
            "store index `{}` has schema version {version}, newer than this hoardd understands \
             ({SCHEMA_VERSION}); upgrade hoard or use another --store-dir",
            path.display()
        )));
    }
    let tx = conn.transaction().map_err(e)?;
    if version < 1 {
        tx.execute_batch(
            "CREATE TABLE packages (
                id INTEGER PRIMARY KEY,
                pkg_id TEXT NOT NULL,
                integrity TEXT NOT NULL,
                sha1 TEXT NOT NULL,
                tarball_url TEXT NOT NULL,
                unpacked_size INTEGER NOT NULL,
                file_count INTEGER NOT NULL,
                imported_at INTEGER NOT NULL,
                UNIQUE (integrity, pkg_id)
            );
            CREATE INDEX packages_by_sha1 ON packages(sha1);
            CREATE INDEX packages_by_pkg_id ON packages(pkg_id);
            CREATE TABLE files (
                package_id INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
                path TEXT NOT NULL,
                blake3 BLOB NOT NULL,
                size INTEGER NOT NULL,
                mode INTEGER NOT NULL,
                PRIMARY KEY (package_id, path)
            ) WITHOUT ROWID;
            CREATE TABLE projects (
                path TEXT PRIMARY KEY,
                registered_at INTEGER NOT NULL,
                last_install INTEGER NOT NULL
            );
            CREATE TABLE project_packages (
                project TEXT NOT NULL REFERENCES projects(path) ON DELETE CASCADE,
                package_id INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
                PRIMARY KEY (project, package_id)
            ) WITHOUT ROWID;",
        )
        .map_err(e)?;
    }
    if version < 2 {
        // Package rows committed before their content files were synced, with the boot they
        // were committed in (see the module comment).
        tx.execute_batch(
            "CREATE TABLE unsynced (
                package_id INTEGER PRIMARY KEY REFERENCES packages(id) ON DELETE CASCADE,
                boot TEXT NOT NULL
            );",
        )
        .map_err(e)?;
    }
    if version < 3 {
        lists_from_rows(&tx).map_err(e)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(e)?;
    tx.commit().map_err(e)?;
    if (1..3).contains(&version) {
        // The dropped `files` table left most of the file's pages free: hand them back (once;
        // ~1 s for an index of a million file rows).
        conn.execute_batch("VACUUM").map_err(e)?;
    }
    Ok(())
}

/// Schema 3: each package's rows of `files` become one blob in `file_lists` (`file_list`),
/// and `files` goes.
fn lists_from_rows(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE file_lists (
            package_id INTEGER PRIMARY KEY REFERENCES packages(id) ON DELETE CASCADE,
            list BLOB NOT NULL
        );",
    )?;
    let mut insert = tx.prepare("INSERT INTO file_lists(package_id, list) VALUES (?1, ?2)")?;
    let mut rows = tx.prepare(
        "SELECT path, blake3, size, mode FROM files WHERE package_id = ?1 ORDER BY path",
    )?;
    let ids = (tx.prepare("SELECT id FROM packages")?)
        .query_map([], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // One package at a time (the key of `files` starts with its id): a package imported with
    // no files had no rows, and gets an empty list.
    for id in ids {
        let files = rows
            .query_map([id], |r| {
                Ok(file_entry(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        insert.execute(params![id, super::file_list::encode(&files)])?;
    }
    drop((insert, rows));
    tx.execute_batch("DROP TABLE files;")
}

/// A file row of schema 1–2 (a hash that is not 32 bytes reads as zeros, as before).
fn file_entry(path: String, blake3: Vec<u8>, size: i64, mode: i64) -> FileEntry {
    let mut hash = [0u8; 32];
    if blake3.len() == 32 {
        hash.copy_from_slice(&blake3);
    }
    FileEntry {
        path,
        hash,
        size: size.max(0) as u64,
        executable: mode & 0o111 != 0,
    }
}

/// A `file_lists` blob read back; a damaged one is an error the index reports with its path.
fn read_list(blob: &[u8]) -> rusqlite::Result<Vec<FileEntry>> {
    super::file_list::decode(blob).map_err(|why| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, why.into())
    })
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Flush every dirty page of the filesystem holding `dir` (one call makes a whole batch of
/// content files durable).
fn syncfs(dir: &Path) {
    crate::platform::sync_filesystem(dir);
}

/// Why SQLite cannot use the index at `path`, if it cannot: an empty file, a file that is not a
/// database, or one that fails `PRAGMA quick_check`. A missing file, or an error that says
/// nothing about the file itself (permissions, a lock), is not "broken": opening reports it.
fn broken(path: &Path) -> Option<String> {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    let md = std::fs::metadata(path).ok()?;
    if md.len() == 0 {
        return Some("the file was empty".into());
    }
    if !header_ok(path) {
        return Some("the file does not start with SQLite's header".into());
    }
    let corrupt = |e: &rusqlite::Error| {
        matches!(
            e.sqlite_error_code(),
            Some(NotADatabase) | Some(DatabaseCorrupt)
        )
    };
    let conn = match Connection::open(path) {
        Ok(c) => c,
        Err(e) if corrupt(&e) => return Some(e.to_string()),
        Err(_) => return None,
    };
    match conn.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0)) {
        Ok(s) if s == "ok" => None,
        Ok(s) => Some(format!("PRAGMA quick_check: {s}")),
        Err(e) if corrupt(&e) => Some(e.to_string()),
        Err(_) => None,
    }
}

/// Whether the index file starts with SQLite's magic string. (With WAL, SQLite itself may not
/// look at the file for a long time: pages it needs can all be in the log.)
fn header_ok(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"SQLite format 3\0")
}

/// Rename a broken index (and its WAL and shared-memory files, which belong to it) beside
/// itself as `index.sqlite.broken-<unix time>`. Returns the new name of the index file.
fn set_aside(path: &Path) -> Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("index.sqlite");
    let aside = path.with_file_name(format!("{name}.broken-{stamp}"));
    for suffix in ["-wal", "-shm"] {
        let from = path.with_file_name(format!("{name}{suffix}"));
        let to = path.with_file_name(format!("{name}.broken-{stamp}{suffix}"));
        match std::fs::rename(&from, &to) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(HoardError::io("setting aside", &from, e));
            }
            _ => {}
        }
    }
    std::fs::rename(path, &aside).map_err(|e| HoardError::io("setting aside", path, e))?;
    Ok(aside)
}

impl Index {
    /// Open the index at `path` like `open`, but first set aside an index SQLite cannot use
    /// (see `broken`) and start a new one. Returns a notice saying so when that happened.
    pub fn open_healing(
        path: &Path,
        files_dir: PathBuf,
        boot: Option<String>,
    ) -> Result<(Index, Option<String>)> {
        let notice = match broken(path) {
            Some(why) => {
                let aside = set_aside(path)?;
                Some(format!(
                    "the store index `{}` could not be used ({why}); it was kept as `{}` and a \
                     new index started. Package files stay; packages are downloaded again as \
                     installs need them",
                    path.display(),
                    aside.display()
                ))
            }
            None => None,
        };
        Ok((Index::open(path, files_dir, boot)?, notice))
    }

    /// Open (creating and migrating) the index at `path`. `files_dir` holds the content files
    /// the package rows name, synced as the module comment says; `boot` is this machine boot's
    /// name (`platform::boot_id`), `None` to sync before each batch.
    pub fn open(path: &Path, files_dir: PathBuf, boot: Option<String>) -> Result<Index> {
        let mut conn = open(path)?;
        migrate(&mut conn, path)?;
        let reader = open(path)?;
        let (tx, rx) = mpsc::channel::<Command>();
        let writer = Writer {
            conn,
            path: path.to_path_buf(),
            files_dir,
            boot,
            unsynced_since: None,
        };
        std::thread::Builder::new()
            .name("hoard-index-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| HoardError::io("starting the index writer for", path, e))?;
        Ok(Index {
            broken: std::sync::atomic::AtomicBool::new(false),
            path: path.to_path_buf(),
            reader: Mutex::new(reader),
            writer: tx,
        })
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| HoardError::Internal("index reader lock poisoned".into()))?;
        f(&conn).map_err(|e| HoardError::index(&self.path, e))
    }

    /// Insert a package and its files; returns once the row is committed (listed in
    /// `unsynced`, or after the batch's syncfs: see the module comment). Inserting an existing
    /// (integrity, pkg_id) returns the existing row id. Awaited on the executor: the caller
    /// waits for the writer thread without holding a blocking thread (the queue never blocks).
    pub async fn insert_package(&self, record: PackageRecord) -> Result<i64> {
        let rx = self.queue_insert(record)?;
        rx.await
            .map_err(|_| HoardError::Internal("index writer stopped".into()))?
    }

    /// `insert_package`, waited for on this thread.
    #[cfg(test)]
    pub fn insert_package_blocking(&self, record: PackageRecord) -> Result<i64> {
        let rx = self.queue_insert(record)?;
        rx.blocking_recv()
            .map_err(|_| HoardError::Internal("index writer stopped".into()))?
    }

    fn queue_insert(
        &self,
        record: PackageRecord,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<i64>>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(Command::Insert(record, tx))
            .map_err(|_| HoardError::Internal("index writer stopped".into()))?;
        Ok(rx)
    }

    /// Run `job` in a write transaction on the writer thread.
    pub fn write(
        &self,
        job: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(Command::Exec(Box::new(job), tx))
            .map_err(|_| HoardError::Internal("index writer stopped".into()))?;
        rx.blocking_recv()
            .map_err(|_| HoardError::Internal("index writer stopped".into()))?
    }

    /// Make the content files of every row listed in `unsynced` durable now, and empty the
    /// list (at shutdown; the writer does it by itself when idle).
    pub fn sync_now(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.writer.send(Command::Sync(tx)).is_ok() {
            let _ = rx.blocking_recv();
        }
    }

    /// The package rows listed in `unsynced`, with the boot each was committed in.
    pub fn unsynced(&self) -> Result<Vec<(i64, String)>> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT package_id, boot FROM unsynced ORDER BY package_id")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// Take `ids` off the `unsynced` list (their files were checked).
    pub fn forget_unsynced(&self, ids: Vec<i64>) -> Result<()> {
        self.write(move |tx| {
            let mut stmt = (tx.prepare_cached("DELETE FROM unsynced WHERE package_id = ?1"))
                .map_err(|e| HoardError::Internal(format!("`unsynced`: {e}")))?;
            for id in ids {
                (stmt.execute([id]))
                    .map_err(|e| HoardError::Internal(format!("`unsynced`: {e}")))?;
            }
            Ok(())
        })
    }

    /// Find a package by tarball integrity. `sri` may hold several hashes; the strongest one
    /// we index (sha512, then sha1) is used. Returns the row id.
    pub fn find_package(&self, sri: &crate::store::integrity::Sri) -> Result<Option<i64>> {
        if let Some(sha512) = sri.sha512_sri() {
            return self.read(|c| {
                (c.prepare_cached("SELECT id FROM packages WHERE integrity = ?1 LIMIT 1")?)
                    .query_row(params![sha512], |r| r.get(0))
                    .optional()
            });
        }
        if let Some(sha1) = sri.sha1_hex() {
            return self.read(|c| {
                (c.prepare_cached("SELECT id FROM packages WHERE sha1 = ?1 LIMIT 1")?)
                    .query_row(params![sha1], |r| r.get(0))
                    .optional()
            });
        }
        Ok(None)
    }

    /// The (integrity, file list) of package row `id`.
    pub fn package_files(&self, id: i64) -> Result<(String, Vec<FileEntry>)> {
        self.read(|c| {
            let (integrity, blob): (String, Vec<u8>) = (c.prepare_cached(
                "SELECT p.integrity, f.list FROM packages p JOIN file_lists f ON f.package_id = p.id
                  WHERE p.id = ?1",
            )?)
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok((integrity, read_list(&blob)?))
        })
    }

    /// Counts: (packages, projects).
    pub fn counts(&self) -> Result<(u64, u64)> {
        self.read(|c| {
            let p: i64 = c.query_row("SELECT count(*) FROM packages", [], |r| r.get(0))?;
            let j: i64 = c.query_row("SELECT count(*) FROM projects", [], |r| r.get(0))?;
            Ok((p as u64, j as u64))
        })
    }

    /// Every package row: (id, pkg_id).
    pub fn all_packages(&self) -> Result<Vec<(i64, String)>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT id, pkg_id FROM packages")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// Every registered project path.
    pub fn projects(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT path FROM projects")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// Every registered project with its last install and what it links from the store: the
    /// number of packages and their unpacked bytes (what copies of them would take).
    pub fn project_usage(&self) -> Result<Vec<ProjectUsage>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT p.path, p.last_install, count(k.id), coalesce(sum(k.unpacked_size), 0)
                 FROM projects p
                 LEFT JOIN project_packages pp ON pp.project = p.path
                 LEFT JOIN packages k ON k.id = pp.package_id
                 GROUP BY p.path ORDER BY p.last_install DESC",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(ProjectUsage {
                    path: r.get(0)?,
                    last_install: r.get(1)?,
                    packages: r.get::<_, i64>(2)? as u64,
                    linked_bytes: r.get::<_, i64>(3)? as u64,
                })
            })?;
            rows.collect()
        })
    }

    /// Ids of packages referenced by registered projects other than `excluded`.
    pub fn referenced_excluding(
        &self,
        excluded: &std::collections::HashSet<String>,
    ) -> Result<std::collections::HashSet<i64>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT project, package_id FROM project_packages")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = std::collections::HashSet::new();
            for row in rows {
                let (project, id) = row?;
                if !excluded.contains(&project) {
                    out.insert(id);
                }
            }
            Ok(out)
        })
    }

    /// Move everything in the write-ahead log into the index file and empty the log (at
    /// shutdown: the file alone is then the whole index, and damage to it is seen at start-up).
    pub fn checkpoint(&self) -> Result<()> {
        if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        // Damage the log would paper over is kept for a look, not overwritten.
        self.check_file()?;
        self.sync_now();
        self.read(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"))
    }

    /// A cheap look at the index file (its first bytes): `IndexBroken` when something other
    /// than SQLite wrote over it. Installs call it first.
    pub fn check_file(&self) -> Result<()> {
        if self.broken.load(std::sync::atomic::Ordering::SeqCst) || header_ok(&self.path) {
            return Ok(());
        }
        Err(HoardError::IndexBroken {
            path: self.path.clone(),
            detail: "the file does not start with SQLite's header".into(),
        })
    }

    /// The index was found damaged while the daemon runs: set its files aside now (the
    /// connections keep the old files open until the daemon exits) so the next daemon starts
    /// a new index. Returns the new name. Call once, then stop the daemon.
    pub fn set_aside_now(&self) -> Result<PathBuf> {
        if self.broken.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Ok(self.path.clone());
        }
        set_aside(&self.path)
    }

    /// Know these projects (with no packages yet), as after a rebuilt index.
    pub fn add_projects(&self, paths: Vec<String>) -> Result<()> {
        self.write(move |tx| {
            let now = now_secs();
            for p in paths {
                tx.execute(
                    "INSERT OR IGNORE INTO projects(path, registered_at, last_install) \
                     VALUES (?1, ?2, ?2)",
                    params![p, now],
                )
                .map_err(|e| HoardError::Internal(format!("registering project: {e}")))?;
            }
            Ok(())
        })
    }

    /// (pkg_id, tarball URL, integrity) of each of `ids` that has a row.
    pub fn package_sources(&self, ids: &[i64]) -> Result<Vec<DroppedPackage>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT pkg_id, tarball_url, integrity FROM packages WHERE id = ?1",
            )?;
            let mut out = Vec::new();
            for id in ids {
                let row = stmt
                    .query_row([id], |r| {
                        Ok(DroppedPackage {
                            pkg_id: r.get(0)?,
                            tarball_url: r.get(1)?,
                            integrity: r.get(2)?,
                        })
                    })
                    .optional()?;
                out.extend(row);
            }
            Ok(out)
        })
    }

    /// Rows of the packages that have a file with this BLAKE3 (a scan: rare questions only).
    pub fn packages_with_file(&self, hash: &[u8; 32]) -> Result<Vec<i64>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT package_id, list FROM file_lists")?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let blob = r.get_ref(1)?.as_blob()?;
                if super::file_list::names_hash(blob, hash) {
                    out.push(r.get(0)?);
                }
            }
            Ok(out)
        })
    }

    /// Content files of the packages of registered projects, the projects installed most
    /// recently first (each file once, with its size), then those of every other package; and
    /// how many of them (at the head of the list) a registered project uses.
    pub fn files_by_recent_use(&self) -> Result<(Vec<(super::trust::Key, u64)>, usize)> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT max(p.last_install) AS latest, f.list FROM file_lists f
                   LEFT JOIN project_packages pp ON pp.package_id = f.package_id
                   LEFT JOIN projects p ON p.path = pp.project
                  GROUP BY f.package_id
                  ORDER BY latest IS NULL, latest DESC",
            )?;
            let mut rows = stmt.query([])?;
            let mut seen = std::collections::HashSet::new();
            let (mut out, mut used) = (Vec::new(), 0);
            // Each package once (a package several projects use, by the latest of them).
            while let Some(r) = rows.next()? {
                let in_project = r.get::<_, Option<i64>>(0)?.is_some();
                for f in read_list(r.get_ref(1)?.as_blob()?)? {
                    let key = (f.hash, f.executable);
                    if seen.insert(key) {
                        out.push((key, f.size));
                        used += usize::from(in_project);
                    }
                }
            }
            Ok((out, used))
        })
    }

    /// Projects that use any of `package_ids`.
    pub fn projects_using(&self, package_ids: &[i64]) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT project FROM project_packages WHERE package_id = ?1")?;
            let mut out = std::collections::BTreeSet::new();
            for id in package_ids {
                let rows = stmt.query_map([id], |r| r.get::<_, String>(0))?;
                for r in rows {
                    out.insert(r?);
                }
            }
            Ok(out.into_iter().collect())
        })
    }

    /// Record that `project` now uses exactly `package_ids`.
    pub fn register_project(&self, project: String, package_ids: Vec<i64>) -> Result<()> {
        self.project_packages(project, package_ids, true)
    }

    /// Record that `project` also uses `package_ids` (what it used stays registered).
    pub fn add_project_packages(&self, project: String, package_ids: Vec<i64>) -> Result<()> {
        self.project_packages(project, package_ids, false)
    }

    fn project_packages(
        &self,
        project: String,
        package_ids: Vec<i64>,
        exactly: bool,
    ) -> Result<()> {
        self.write(move |tx| {
            let now = now_secs();
            let e = |err| HoardError::Internal(format!("registering project: {err}"));
            tx.execute(
                "INSERT INTO projects(path, registered_at, last_install) VALUES (?1, ?2, ?2)
                 ON CONFLICT(path) DO UPDATE SET last_install = excluded.last_install",
                params![project, now],
            )
            .map_err(e)?;
            // Only the difference is written: a project installed again mostly keeps its
            // packages, and rewriting every row cost a 1,400-package install ~2.5 ms.
            let mut known: FxHashSet<i64> = FxHashSet::default();
            {
                let mut stmt = tx
                    .prepare_cached("SELECT package_id FROM project_packages WHERE project = ?1")
                    .map_err(e)?;
                let rows = stmt
                    .query_map(params![project], |r| r.get::<_, i64>(0))
                    .map_err(e)?;
                for id in rows {
                    known.insert(id.map_err(e)?);
                }
            }
            if exactly {
                let wanted: FxHashSet<i64> = package_ids.iter().copied().collect();
                let mut stmt = tx
                    .prepare_cached(
                        "DELETE FROM project_packages WHERE project = ?1 AND package_id = ?2",
                    )
                    .map_err(e)?;
                for id in known.iter().filter(|id| !wanted.contains(id)) {
                    stmt.execute(params![project, id]).map_err(e)?;
                }
            }
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO project_packages(project, package_id) VALUES (?1, ?2)",
                )
                .map_err(e)?;
            for id in package_ids.iter().filter(|id| !known.contains(id)) {
                stmt.execute(params![project, id]).map_err(e)?;
            }
            Ok(())
        })
    }
}

/// Insert a package row and its files (an existing (integrity, pkg_id) is kept as it is), and
/// list it in `unsynced` under `boot` when given: new or not, its files were just written (a
/// package downloaded again after a store file went missing rewrites them). Returns the row id
/// and whether it was listed.
fn insert_record(
    tx: &rusqlite::Transaction<'_>,
    rec: &PackageRecord,
    boot: Option<&str>,
) -> rusqlite::Result<(i64, bool)> {
    if let Some(id) = (tx
        .prepare_cached("SELECT id FROM packages WHERE integrity = ?1 AND pkg_id = ?2")?)
    .query_row(params![rec.integrity, rec.pkg_id], |r| r.get(0))
    .optional()?
    {
        // Imported again because a lockfile named it by sha1 only: that lookup finds it now.
        if !rec.sha1_hex.is_empty() {
            (tx.prepare_cached("UPDATE packages SET sha1 = ?1 WHERE id = ?2 AND sha1 = ''")?)
                .execute(params![rec.sha1_hex, id])?;
        }
        return Ok((id, list_unsynced(tx, id, boot)?));
    }
    tx.prepare_cached(
        "INSERT INTO packages(pkg_id, integrity, sha1, tarball_url, unpacked_size, file_count, imported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
            rec.pkg_id,
            rec.integrity,
            rec.sha1_hex,
            rec.tarball_url,
            rec.unpacked_size as i64,
            rec.files.len() as i64,
            now_secs()
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.prepare_cached("INSERT INTO file_lists(package_id, list) VALUES (?1, ?2)")?
        .execute(params![id, super::file_list::encode(&rec.files)])?;
    Ok((id, list_unsynced(tx, id, boot)?))
}

/// List package row `id` in `unsynced` under `boot` (when given); whether it was listed.
fn list_unsynced(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    boot: Option<&str>,
) -> rusqlite::Result<bool> {
    let Some(boot) = boot else { return Ok(false) };
    tx.prepare_cached("INSERT OR REPLACE INTO unsynced(package_id, boot) VALUES (?1, ?2)")?
        .execute(params![id, boot])?;
    Ok(true)
}

/// The error every request of a failed batch gets (a full disk says so).
fn batch_failure(path: &Path, e: &rusqlite::Error) -> HoardError {
    use rusqlite::ErrorCode::{DatabaseCorrupt, DiskFull, NotADatabase};
    match e.sqlite_error_code() {
        Some(DiskFull) => HoardError::NoSpace {
            context: "writing the store index",
            path: path.to_path_buf(),
        },
        Some(NotADatabase) | Some(DatabaseCorrupt) => HoardError::IndexBroken {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
        _ => HoardError::Internal(format!("store index `{}`: {e}", path.display())),
    }
}

/// The writer thread's state: its connection, and since when rows have waited in `unsynced`.
struct Writer {
    conn: Connection,
    path: PathBuf,
    files_dir: PathBuf,
    /// This boot's name; `None`: sync before each batch of package rows instead.
    boot: Option<String>,
    unsynced_since: Option<Instant>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Command>) {
        // Rows a daemon killed in this boot left listed: their files are in the page cache.
        // (Rows of an earlier boot stay listed until `Store::check_unsynced` has checked them.)
        if let Some(boot) = &self.boot {
            let sql = "SELECT count(*) FROM unsynced WHERE boot = ?1";
            let left: rusqlite::Result<i64> = self.conn.query_row(sql, [boot], |r| r.get(0));
            if matches!(left, Ok(n) if n > 0) {
                self.unsynced_since = Some(Instant::now());
            }
        }
        loop {
            let first = if self.unsynced_since.is_some() {
                match rx.recv_timeout(SYNC_WHEN_IDLE) {
                    Ok(c) => c,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.sync();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(c) => c,
                    Err(_) => break,
                }
            };
            let mut batch = vec![first];
            while batch.len() < 512 {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            self.batch(batch);
            if (self.unsynced_since).is_some_and(|t| t.elapsed() >= SYNC_AT_MOST_AFTER) {
                self.sync();
            }
        }
        self.sync();
    }

    /// Make the content files of the rows this boot listed in `unsynced` durable, then take
    /// them off the list (never rows of an earlier boot: their files are checked first).
    fn sync(&mut self) {
        if self.unsynced_since.take().is_none() {
            return;
        }
        syncfs(&self.files_dir);
        // Only rows listed under this boot set `unsynced_since`, so a boot is known here.
        let Some(boot) = self.boot.as_deref() else {
            return;
        };
        if let Err(e) = (self.conn).execute("DELETE FROM unsynced WHERE boot = ?1", [boot]) {
            // The rows stay listed: a start-up after a machine restart checks their files.
            tracing::warn!(error = %e, path = %self.path.display(), "could not empty `unsynced`");
        }
    }

    /// Commit one batch of commands in one transaction, and answer each.
    fn batch(&mut self, batch: Vec<Command>) {
        let inserts = batch.iter().any(|c| matches!(c, Command::Insert(..)));
        if inserts && self.boot.is_none() {
            // Content files must be durable before rows that name them are committed.
            syncfs(&self.files_dir);
        }
        let path = self.path.clone();
        let boot = self.boot.clone();
        let tx = match self.conn.transaction() {
            Ok(tx) => tx,
            Err(err) => {
                for c in batch {
                    fail(c, &path, &err);
                }
                return;
            }
        };
        let mut replies_insert = Vec::new();
        let mut replies_exec = Vec::new();
        let mut syncs = Vec::new();
        let mut listed = false;
        for c in batch {
            match c {
                Command::Insert(rec, reply) => {
                    let r = insert_record(&tx, &rec, boot.as_deref());
                    listed |= matches!(r, Ok((_, true)));
                    let r = r.map(|(id, _)| id).map_err(|e| HoardError::index(&path, e));
                    replies_insert.push((reply, r));
                }
                Command::Exec(job, reply) => replies_exec.push((reply, job(&tx))),
                Command::Sync(reply) => syncs.push(reply),
            }
        }
        let committed = tx.commit();
        if committed.is_ok() && listed && self.unsynced_since.is_none() {
            self.unsynced_since = Some(Instant::now());
        }
        for (reply, r) in replies_insert {
            let _ = reply.send(match &committed {
                Ok(()) => r,
                Err(e) => Err(batch_failure(&path, e)),
            });
        }
        for (reply, r) in replies_exec {
            let _ = reply.send(match &committed {
                Ok(()) => r,
                Err(e) => Err(batch_failure(&path, e)),
            });
        }
        if !syncs.is_empty() {
            self.sync();
            for reply in syncs {
                let _ = reply.send(());
            }
        }
    }
}

/// Answer a command whose batch could not start.
fn fail(c: Command, path: &Path, err: &rusqlite::Error) {
    match c {
        Command::Insert(_, reply) => {
            let _ = reply.send(Err(batch_failure(path, err)));
        }
        Command::Exec(_, reply) => {
            let _ = reply.send(Err(batch_failure(path, err)));
        }
        Command::Sync(reply) => {
            let _ = reply.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> PackageRecord {
        PackageRecord {
            pkg_id: format!("{name}@1.0.0"),
            integrity: format!("sha512-{name}"),
            sha1_hex: "00".into(),
            tarball_url: format!("http://127.0.0.1/{name}.tgz"),
            unpacked_size: 1,
            files: vec![FileEntry {
                path: "index.js".into(),
                hash: [7; 32],
                size: 1,
                executable: false,
            }],
        }
    }

    fn index(dir: &Path, boot: Option<&str>) -> Index {
        Index::open(
            &dir.join("index.sqlite"),
            dir.to_path_buf(),
            boot.map(String::from),
        )
        .unwrap()
    }

    #[test]
    fn rows_are_listed_unsynced_with_their_boot_until_synced() {
        let dir = tempfile::tempdir().unwrap();
        let idx = index(dir.path(), Some("boot-1"));
        let a = idx.insert_package_blocking(record("a")).unwrap();
        assert_eq!(idx.unsynced().unwrap(), vec![(a, "boot-1".to_string())]);
        idx.sync_now();
        assert_eq!(idx.unsynced().unwrap(), vec![]);
        // A row that exists is returned as is, and listed again: its files were just written.
        assert_eq!(idx.insert_package_blocking(record("a")).unwrap(), a);
        assert_eq!(idx.unsynced().unwrap(), vec![(a, "boot-1".to_string())]);
    }

    #[test]
    fn a_row_imported_by_sha512_gets_its_sha1_when_imported_again_by_sha1() {
        use crate::store::integrity::Sri;
        let dir = tempfile::tempdir().unwrap();
        let idx = index(dir.path(), None);
        let sha1 = "ab".repeat(20);
        let by_sha1 = Sri::parse(None, Some(&sha1));
        let first = PackageRecord {
            sha1_hex: String::new(),
            ..record("a")
        };
        let a = idx.insert_package_blocking(first).unwrap();
        assert_eq!(idx.find_package(&by_sha1).unwrap(), None);
        let again = PackageRecord {
            sha1_hex: sha1.clone(),
            ..record("a")
        };
        assert_eq!(idx.insert_package_blocking(again).unwrap(), a);
        assert_eq!(idx.find_package(&by_sha1).unwrap(), Some(a));
        // An empty sha1 never matches a row that lacks one.
        assert_eq!(idx.find_package(&Sri::default()).unwrap(), None);
    }

    #[test]
    fn without_a_boot_name_nothing_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let idx = index(dir.path(), None);
        idx.insert_package_blocking(record("a")).unwrap();
        assert_eq!(idx.unsynced().unwrap(), vec![]);
    }

    #[test]
    fn the_writer_syncs_by_itself_when_no_write_comes() {
        let dir = tempfile::tempdir().unwrap();
        let idx = index(dir.path(), Some("boot-1"));
        idx.insert_package_blocking(record("a")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !idx.unsynced().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "still listed after 20 s of idle");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn rows_of_an_earlier_boot_are_left_for_the_check_and_this_boots_are_synced() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = {
            let idx = index(dir.path(), Some("boot-1"));
            let a = idx.insert_package_blocking(record("a")).unwrap();
            let b = idx.insert_package_blocking(record("b")).unwrap();
            idx.sync_now();
            (a, b)
        };
        // a as the machine's last boot left it; b as a daemon of this boot killed before it
        // synced would leave it.
        let conn = Connection::open(dir.path().join("index.sqlite")).unwrap();
        conn.execute("INSERT INTO unsynced VALUES (?1, 'boot-1')", [a])
            .unwrap();
        conn.execute("INSERT INTO unsynced VALUES (?1, 'boot-2')", [b])
            .unwrap();
        drop(conn);
        let idx = index(dir.path(), Some("boot-2"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while idx.unsynced().unwrap().len() > 1 {
            assert!(Instant::now() < deadline, "{:?}", idx.unsynced().unwrap());
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(SYNC_WHEN_IDLE * 3);
        idx.sync_now();
        assert_eq!(idx.unsynced().unwrap(), vec![(a, "boot-1".to_string())]);
    }

    /// An index as schema `version` (1 or 2) left it: package `a` with two file rows (given
    /// out of path order), package `e` with none.
    fn old_index(path: &Path, version: i64) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "CREATE TABLE packages (
                id INTEGER PRIMARY KEY, pkg_id TEXT NOT NULL, integrity TEXT NOT NULL,
                sha1 TEXT NOT NULL, tarball_url TEXT NOT NULL, unpacked_size INTEGER NOT NULL,
                file_count INTEGER NOT NULL, imported_at INTEGER NOT NULL,
                UNIQUE (integrity, pkg_id));
            CREATE INDEX packages_by_sha1 ON packages(sha1);
            CREATE INDEX packages_by_pkg_id ON packages(pkg_id);
            CREATE TABLE files (
                package_id INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
                path TEXT NOT NULL, blake3 BLOB NOT NULL, size INTEGER NOT NULL,
                mode INTEGER NOT NULL, PRIMARY KEY (package_id, path)) WITHOUT ROWID;
            CREATE TABLE projects (path TEXT PRIMARY KEY, registered_at INTEGER NOT NULL,
                last_install INTEGER NOT NULL);
            CREATE TABLE project_packages (
                project TEXT NOT NULL REFERENCES projects(path) ON DELETE CASCADE,
                package_id INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
                PRIMARY KEY (project, package_id)) WITHOUT ROWID;
            INSERT INTO packages VALUES (1, 'a@1.0.0', 'sha512-a', '', 'http://x/a.tgz', 3, 2, 0);
            INSERT INTO packages VALUES (2, 'e@1.0.0', 'sha512-e', '', 'http://x/e.tgz', 0, 0, 0);
            INSERT INTO files VALUES (1, 'z.js', zeroblob(32), 1, 420);
            INSERT INTO files VALUES (1, 'bin/a', randomblob(32), 2, 493);",
        )
        .unwrap();
        if version >= 2 {
            conn.execute_batch(
                "CREATE TABLE unsynced (package_id INTEGER PRIMARY KEY REFERENCES packages(id)
                    ON DELETE CASCADE, boot TEXT NOT NULL);",
            )
            .unwrap();
        }
        conn.pragma_update(None, "user_version", version).unwrap();
    }

    #[test]
    fn older_indexes_keep_their_rows_and_file_lists() {
        for version in [1, 2] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("index.sqlite");
            old_index(&path, version);
            let blake3: Vec<u8> = Connection::open(&path)
                .unwrap()
                .query_row("SELECT blake3 FROM files WHERE path = 'bin/a'", [], |r| {
                    r.get(0)
                })
                .unwrap();
            let idx = index(dir.path(), Some("boot-1"));
            assert_eq!(idx.counts().unwrap().0, 2, "the rows are kept");
            let (integrity, files) = idx.package_files(1).unwrap();
            assert_eq!(integrity, "sha512-a");
            let want = vec![
                FileEntry {
                    path: "bin/a".into(),
                    hash: blake3.clone().try_into().unwrap(),
                    size: 2,
                    executable: true,
                },
                FileEntry {
                    path: "z.js".into(),
                    hash: [0; 32],
                    size: 1,
                    executable: false,
                },
            ];
            assert_eq!(files, want, "schema {version}");
            assert_eq!(idx.package_files(2).unwrap().1, vec![]);
            let hash: [u8; 32] = blake3.try_into().unwrap();
            assert_eq!(idx.packages_with_file(&hash).unwrap(), vec![1]);
            // The new rows go where the old ones are now.
            idx.insert_package_blocking(record("b")).unwrap();
            assert_eq!(idx.unsynced().unwrap().len(), 1);
            let conn = Connection::open(&path).unwrap();
            let v: i64 = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(v, SCHEMA_VERSION);
            let free: i64 = conn
                .pragma_query_value(None, "freelist_count", |r| r.get(0))
                .unwrap();
            assert_eq!(free, 0, "the dropped table's pages were handed back");
            let files_table: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'files'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(files_table, 0, "the per-file table is gone");
        }
    }

    #[test]
    fn file_lists_read_back_and_go_with_their_package() {
        let dir = tempfile::tempdir().unwrap();
        let idx = index(dir.path(), None);
        let mut rec = record("a");
        rec.files.push(FileEntry {
            path: "bin/cli".into(),
            hash: [9; 32],
            size: 5,
            executable: true,
        });
        let a = idx.insert_package_blocking(rec.clone()).unwrap();
        rec.files.sort_by(|x, y| x.path.cmp(&y.path));
        assert_eq!(idx.package_files(a).unwrap().1, rec.files);
        assert_eq!(idx.packages_with_file(&[9; 32]).unwrap(), vec![a]);
        assert_eq!(idx.packages_with_file(&[8; 32]).unwrap(), Vec::<i64>::new());
        let (keys, used) = idx.files_by_recent_use().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(used, 0, "no project uses it");
        idx.register_project("/p".into(), vec![a]).unwrap();
        let (_, used) = idx.files_by_recent_use().unwrap();
        assert_eq!(used, 2);
        // Used by two projects: each file still once.
        idx.register_project("/q".into(), vec![a]).unwrap();
        let (keys, used) = idx.files_by_recent_use().unwrap();
        assert_eq!((keys.len(), used), (2, 2));
        idx.write(move |tx| {
            tx.execute("DELETE FROM packages WHERE id = ?1", [a])
                .map_err(|e| HoardError::Internal(e.to_string()))?;
            Ok(())
        })
        .unwrap();
        assert_eq!(
            idx.files_by_recent_use().unwrap().0.len(),
            0,
            "the list went with it"
        );
    }

    #[test]
    fn registering_again_leaves_exactly_the_packages_given() {
        let dir = tempfile::tempdir().unwrap();
        let idx = index(dir.path(), None);
        let [a, b, c, d] =
            ["a", "b", "c", "d"].map(|n| idx.insert_package_blocking(record(n)).unwrap());
        // What project p is registered with (it is the only project).
        let of = || {
            let none = std::collections::HashSet::new();
            let mut v: Vec<i64> = idx
                .referenced_excluding(&none)
                .unwrap()
                .into_iter()
                .collect();
            v.sort();
            v
        };
        idx.register_project("p".into(), vec![a, b]).unwrap();
        assert_eq!(of(), vec![a, b]);
        idx.register_project("p".into(), vec![b, c]).unwrap();
        assert_eq!(of(), vec![b, c], "a is dropped, c added, b kept");
        idx.register_project("p".into(), vec![b, c]).unwrap();
        assert_eq!(of(), vec![b, c], "the same set again changes nothing");
        idx.add_project_packages("p".into(), vec![d]).unwrap();
        assert_eq!(of(), vec![b, c, d], "adding keeps what was there");
        idx.register_project("p".into(), vec![]).unwrap();
        assert_eq!(
            of(),
            Vec::<i64>::new(),
            "an empty install registers nothing"
        );
    }
}
