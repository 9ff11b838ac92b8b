//! Black-box tests: the real `hoard` and `hoardd` binaries, real sockets, a local registry on
//! 127.0.0.1 and real files. One test binary, one module per area.

mod ahead;
mod browser;
mod clients;
mod context;
mod corpus;
mod daemon;
mod dashboard;
mod events;
mod global;
mod habits;
mod heal;
mod install;
mod network;
mod operations;
mod platform;
mod query;
mod registry;
mod scrub;
mod store;
mod supply;
mod team;
