//! Black-box tests: the real `hoard` and `hoardd` binaries, real sockets, a local registry on
//! 127.0.0.1 and real files. One test binary, one module per area.
//!
//! Unix only: the harness kills daemons with signals, checks file modes and link counts, and
//! acts as another uid. On Windows this binary is empty; the Windows pieces that can be checked
//! away from Windows (shim text, junction targets, retries, the socket and pipe names) are unit
//! tests in the daemon, the client and the proto crate.
#![cfg(unix)]

mod ahead;
mod browser;
mod clients;
mod context;
mod corpus;
mod daemon;
mod dashboard;
mod events;
mod foreign_lock;
mod git;
mod global;
mod habits;
mod heal;
mod install;
mod network;
mod operations;
mod pack;
mod platform;
mod project;
mod query;
mod registry;
mod scrub;
mod store;
mod supply;
mod team;
mod verdaccio;
