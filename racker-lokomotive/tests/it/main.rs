//! Integration tests of racker-lokomotive: snapshots of whole rendered
//! directories, validity against real parsers (hcl-rs, a YAML parser, the
//! coreos Ignition schema types), exclusion, and properties.

mod exclusion;
mod fixtures;
mod node_commands;
mod original;
mod props;
mod snapshots;
mod validity;
