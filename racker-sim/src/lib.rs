//! Racker sim library (see the workspace README).
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]
