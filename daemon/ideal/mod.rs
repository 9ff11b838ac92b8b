//! npm's ideal tree, built the way arborist builds it (buildIdealTree, PlaceDep, CanPlaceDep,
//! peer sets in virtual roots, overrides), so that hoard's node_modules has the same paths as
//! npm's. `graph` is the tree model, `place` decides where a dependency goes, `build` runs the
//! queue, `overrides` reads package.json `overrides`, `collate` is npm's string order.
//!
//! Must not: talk to the registry directly (a `build::Source` supplies manifests) or write
//! files.

pub mod build;
pub mod collate;
pub mod graph;
pub mod overrides;
pub mod place;

#[cfg(test)]
mod tests;
