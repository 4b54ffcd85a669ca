//! Racker netboot library (see the workspace README).
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

// Boot content (TFTP, HTTP, assets, reports, matchbox): issue 6.
pub mod http;
pub mod matchbox;
mod profile;
pub mod report;
pub mod tftp;
pub use profile::{ContentError, IgnitionDir, IgnitionProfile, IgnitionSource};
