//! The commands, by family: `install` (install, ci, add, remove, update), `run` (run, exec,
//! dlx), `inspect` (ls, why, outdated),
//! `approve` (install-scripts, approve-builds), `audit`, `ui`, `daemon` and `store`. `main.rs` parses and dispatches
//! here.
//!
//! Must not: parse the command line.

pub mod approve;
pub mod audit;
pub mod daemon;
pub mod inspect;
pub mod install;
pub mod lookup;
pub mod pack;
pub mod project;
pub mod run;
pub mod share;
pub mod store;
pub mod ui;
