//! The command line: every command, flag and argument of `hoard`, as clap parses them.
//!
//! Must not: do anything but describe the command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "hoard",
    version,
    about = "A fast, safe npm package installer",
    propagate_version = true
)]
pub struct Cli {
    /// Run as if started in this directory.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The store directory (default: $XDG_DATA_HOME/hoard/store).
    #[arg(long, global = true, env = "HOARD_STORE_DIR", value_name = "DIR")]
    pub store_dir: Option<PathBuf>,
    /// One JSON object per line on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail (phase timings, every deprecation).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone, Default)]
pub struct InstallFlags {
    /// Never touch the network; fail on anything missing from the store or metadata cache.
    #[arg(long)]
    pub offline: bool,
    /// Use cached metadata of any age; go online only for what is missing.
    #[arg(long)]
    pub prefer_offline: bool,
    /// Leave out a dependency type (only `dev` is supported, as --omit=dev).
    #[arg(long, value_name = "TYPE")]
    pub omit: Vec<String>,
    /// Same as --omit=dev.
    #[arg(long)]
    pub production: bool,
    /// How files get into node_modules.
    #[arg(long, value_enum, default_value_t = LinkArg::Auto)]
    pub link: LinkArg,
    /// node_modules layout (default: package.json's `"hoard": {"layout": …}`, then `layout=` in
    /// .npmrc, then hoisted).
    #[arg(long, value_enum)]
    pub layout: Option<LayoutArg>,
    /// Do not write package-lock.json.
    #[arg(long)]
    pub no_package_lock: bool,
    /// Only resolve and write package-lock.json; download and link nothing.
    #[arg(long)]
    pub package_lock_only: bool,
    /// Re-link every package even when the project looks up to date.
    #[arg(long)]
    pub force: bool,
    /// Do not run any lifecycle scripts (neither the project's nor allowed dependencies').
    #[arg(long)]
    pub ignore_scripts: bool,
    /// Only versions published at least this many days ago (npm's `min-release-age`).
    #[arg(long, value_name = "DAYS")]
    pub min_release_age: Option<String>,
    /// Only versions published at least this many minutes ago (pnpm's `minimum-release-age`).
    #[arg(long, value_name = "MINUTES")]
    pub minimum_release_age: Option<String>,
    /// Only versions published on or before this date (npm's `before`).
    #[arg(long, value_name = "DATE")]
    pub before: Option<String>,
}

// Where added packages are saved in package.json (npm's flags). A plain comment: a doc
// comment would become the `about` of every command that flattens it (their args are built
// late, `defer`).
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct SaveFlags {
    /// Save to devDependencies.
    #[arg(short = 'D', long = "save-dev")]
    pub dev: bool,
    /// Save to optionalDependencies.
    #[arg(short = 'O', long = "save-optional")]
    pub optional: bool,
    /// Save the exact version instead of a ^range.
    #[arg(short = 'E', long = "save-exact")]
    pub exact: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, Default)]
pub enum LinkArg {
    #[default]
    Auto,
    Reflink,
    Hardlink,
    Copy,
}

#[derive(ValueEnum, Debug, Clone, Copy, Default)]
pub enum LayoutArg {
    #[default]
    Hoisted,
    Isolated,
    /// Each package once in the store, shared by every project; node_modules holds symlinks.
    Global,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Install the project's dependencies; with packages, add them first (as `npm install
    /// <pkg>` does).
    #[command(visible_alias = "i")]
    Install {
        #[arg(value_name = "PKG")]
        packages: Vec<String>,
        #[command(flatten)]
        save: SaveFlags,
        #[command(flatten)]
        flags: InstallFlags,
    },
    /// Add packages to package.json and install.
    Add {
        #[arg(required = true, value_name = "PKG")]
        packages: Vec<String>,
        #[command(flatten)]
        save: SaveFlags,
        #[command(flatten)]
        flags: InstallFlags,
    },
    /// Remove packages from package.json and node_modules.
    #[command(visible_alias = "rm")]
    Remove {
        #[arg(required = true, value_name = "NAME")]
        packages: Vec<String>,
        #[command(flatten)]
        flags: InstallFlags,
    },
    /// Install exactly package-lock.json; fail if it does not match package.json.
    Ci(InstallFlags),
    /// Fill the store with what package-lock.json locks (package.json not needed), for Docker
    /// layers and CI caches; `hoard install --offline` then installs from the store.
    Fetch(InstallFlags),
    /// Re-resolve dependencies (all, or the named ones) within their ranges.
    #[command(visible_alias = "up")]
    Update {
        names: Vec<String>,
        #[command(flatten)]
        flags: InstallFlags,
    },
    /// Run a script from package.json.
    #[command(visible_alias = "run-script")]
    Run {
        script: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a bin from node_modules/.bin.
    Exec {
        bin: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a package's bin without adding it to the project.
    Dlx {
        /// `name[@range]`
        package: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// List installed packages (from package-lock.json).
    Ls {
        /// How deep to print (default 0: direct dependencies).
        #[arg(long, default_value_t = 0)]
        depth: usize,
        /// Everything (same as a very large --depth).
        #[arg(long)]
        all: bool,
    },
    /// Why is a package installed?
    Why { name: String },
    /// The installed packages matching an npm dependency selector (`npm query` syntax, e.g.
    /// `:root > .dev`, `[name^=@babel]`, `:has(> #react)`), printed as npm prints them.
    Query {
        selector: String,
        /// Exit 1 when nothing matches (npm's --expect-results).
        #[arg(long)]
        expect_results: bool,
        /// Read the tree from package-lock.json, not node_modules.
        #[arg(long)]
        package_lock_only: bool,
    },
    /// Pack this package into the tarball npm would publish (`<name>-<version>.tgz`), listing
    /// its files; `--json` prints `npm pack --json`'s array.
    Pack {
        /// List the files only; write nothing and run no scripts.
        #[arg(long)]
        dry_run: bool,
        /// Folder to write the tarball into (default: the current folder, as npm).
        #[arg(long, value_name = "DIR")]
        pack_destination: Option<std::path::PathBuf>,
    },
    /// Publish this package to its registry (`publishConfig.registry`, the scope's registry, or
    /// `registry`), as npm publishes it.
    Publish {
        /// The dist-tag to publish under (default `latest`).
        #[arg(long)]
        tag: Option<String>,
        /// `public` or `restricted` (scoped packages).
        #[arg(long)]
        access: Option<String>,
        /// Do everything but send it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Log in to a registry (npm's legacy login) and save the token in the user's .npmrc.
    #[command(alias = "adduser")]
    Login {
        #[arg(long)]
        registry: Option<String>,
        /// Log in for `@scope` (also sets `@scope:registry`).
        #[arg(long)]
        scope: Option<String>,
    },
    /// The user the registry says your credentials belong to.
    Whoami {
        #[arg(long)]
        registry: Option<String>,
        #[arg(long)]
        scope: Option<String>,
    },
    /// Revoke your token at the registry and remove it from the user's .npmrc.
    Logout {
        #[arg(long)]
        registry: Option<String>,
        #[arg(long)]
        scope: Option<String>,
    },
    /// Write package.json with npm's defaults (`npm init -y`; an existing one keeps its fields).
    Init {
        /// Accepted for npm's sake: hoard never asks.
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Bump the version (major, minor, patch, premajor, preminor, prepatch, prerelease, or a
    /// version), in package.json and package-lock.json; in a git tree, commit and tag it.
    Version {
        what: Option<String>,
        /// The prerelease identifier (`--preid beta`: 1.2.3 → 1.2.4-beta.0).
        #[arg(long)]
        preid: Option<String>,
        /// Do not commit or tag.
        #[arg(long)]
        no_git_tag_version: bool,
        #[arg(long)]
        allow_same_version: bool,
    },
    /// A package's registry data (`hoard view ms`, `hoard view ms@^2 version`, `hoard view ms
    /// dist.tarball`), asked of the registry.
    #[command(visible_aliases = ["info", "show"])]
    View { spec: String, fields: Vec<String> },
    /// Search the registry (`/-/v1/search`).
    Search {
        #[arg(required = true)]
        words: Vec<String>,
        /// At most this many results (default 20).
        #[arg(long)]
        searchlimit: Option<u32>,
    },
    /// Direct dependencies with newer versions (exit 1 when there are any, like npm).
    Outdated {
        #[arg(long)]
        offline: bool,
    },
    /// Review dependencies' install scripts and record approvals where npm keeps them
    /// (package.json's `allowScripts`).
    InstallScripts {
        #[command(subcommand)]
        action: ScriptsAction,
    },
    /// Same as `install-scripts approve`.
    ApproveScripts(ApproveArgs),
    /// Same as `install-scripts deny`.
    DenyScripts(DenyArgs),
    /// Go through the dependencies whose install scripts are unreviewed, one by one (package,
    /// version, the script text), and approve or deny each.
    ApproveBuilds,
    /// The installed packages' known vulnerabilities and malware (the registry's advisories);
    /// `hoard audit signatures` checks their registry signatures and attestations.
    /// The projects this store serves: last install, packages, in sync or not (and why).
    Projects,
    /// Whether this project needs an install (exit 0 in sync, 1 not, with the reason).
    Status,
    /// Open the local dashboard (the store, your projects, this project's tree, live installs)
    /// in a browser; the daemon serves it on 127.0.0.1 behind a per-session token.
    Ui {
        /// Print the address only; do not open a browser.
        #[arg(long)]
        no_open: bool,
    },
    Audit {
        #[command(subcommand)]
        what: Option<AuditWhat>,
        /// Exit 1 only for advisories at or above this severity (info, low, moderate, high,
        /// critical, none).
        #[arg(long, value_name = "LEVEL", global = true)]
        audit_level: Option<String>,
        /// Leave out a dependency type (only `dev`).
        #[arg(long, value_name = "TYPE", global = true)]
        omit: Vec<String>,
        #[arg(long, global = true)]
        offline: bool,
    },
    /// The daemon.
    Daemon {
        #[command(subcommand)]
        action: DaemonAction,
    },
    /// The store.
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
}

#[derive(Subcommand, Debug, Clone, Copy)]
pub enum AuditWhat {
    /// Verify registry signatures (and attestation subjects), like `npm audit signatures`.
    Signatures,
}

#[derive(Subcommand, Debug)]
pub enum ScriptsAction {
    /// List installed packages whose install scripts no allowScripts entry covers.
    Ls,
    /// Allow the named packages' install scripts (pinned to the installed versions).
    Approve(ApproveArgs),
    /// Deny the named packages' install scripts (a name-only `false`, which approvals never
    /// override).
    Deny(DenyArgs),
    /// Remove allowScripts entries that match no installed package with install scripts.
    Prune {
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ApproveArgs {
    #[arg(value_name = "PKG")]
    pub packages: Vec<String>,
    /// Every package whose install scripts are unreviewed.
    #[arg(long, conflicts_with = "packages")]
    pub all: bool,
    /// Write name-only entries that allow any version (npm's `--no-allow-scripts-pin`).
    #[arg(long)]
    pub no_allow_scripts_pin: bool,
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DenyArgs {
    #[arg(value_name = "PKG")]
    pub packages: Vec<String>,
    /// Every package whose install scripts are unreviewed.
    #[arg(long, conflicts_with = "packages")]
    pub all: bool,
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Subcommand, Debug)]
pub enum DaemonAction {
    /// Start the daemon (if not running) and print its pid.
    Start,
    /// Stop the running daemon.
    Stop,
    /// Whether a daemon runs (exit 3 when none does); never starts one.
    Status,
    /// Start the daemon if none runs and say where it listens (`--json` for tools: socket,
    /// store, pid, protocol, capabilities).
    Ensure,
    /// Stop and start again.
    Restart,
    /// Print the end of the daemon's log.
    Logs {
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum StoreAction {
    /// Size, packages, files and projects.
    Status,
    /// Re-hash every file; remove bad entries so the next install fetches them again.
    ///
    /// Exit 0: the store is whole. 1: damage was found and dealt with (damaged files moved to
    /// the store's quarantine folder, their packages dropped so the next install downloads them
    /// again, projects linking them marked stale; with --repair, downloaded again at once).
    /// 4: damage was found and left (--dry-run, or a repair that failed).
    Verify {
        /// Only report.
        #[arg(long, conflicts_with = "repair")]
        dry_run: bool,
        /// Download the damaged packages again now.
        #[arg(long)]
        repair: bool,
    },
    /// Remove packages no registered project uses.
    Prune {
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the store path.
    Path,
}
